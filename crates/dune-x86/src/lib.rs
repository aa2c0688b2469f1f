//! Pure x86-64 structures used by Dune (filled in below).
