//! The privileged-feature API: what a process in Dune mode calls.
//!
//! - `vm`: its page tables (edit, look up, walk with accessed and dirty bits, clone,
//!   free) and TLB control (invlpg, CR3 reloads, PCIDs, shootdown across vCPUs);
//! - `page`: reference-counted guest-physical pages;
//! - `trap`: handlers for exceptions, page faults and ring-3 system calls, run in
//!   guest ring 0 with no exit;
//! - `user`: running code in ring 3;
//! - `stats`: KVM's per-vCPU exit statistics;
//! - `runtime`: entering Dune mode and the runtime's own counters.
//!
//! The API sits on top: it uses the host's shared state (`crate::host::state`, for the
//! page-table arena and the page allocator) and the guest's trap path
//! (`crate::guest`); neither of those uses it.

pub mod page;
pub mod runtime;
pub mod stats;
pub mod trap;
pub mod user;
pub mod vm;
