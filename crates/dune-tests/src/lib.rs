//! Shared helpers for the Dune-mode test programs live in the binaries themselves.
