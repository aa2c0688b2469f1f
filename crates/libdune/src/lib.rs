//! libdune: Dune on upstream KVM.

pub mod doctor;
