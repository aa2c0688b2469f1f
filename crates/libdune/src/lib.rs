//! libdune: Dune on upstream KVM.
//!
//! A process calls [`enter`] and keeps running as itself, its memory, files and system
//! calls unchanged, but now in ring 0 of a KVM virtual machine whose page table maps
//! the process's own address space (guest virtual == host virtual). From there it can
//! use privileged CPU features directly.
//!
//! ```no_run
//! libdune::enter()?;                                  // this thread is now in guest ring 0
//! let name = std::fs::read("/etc/hostname")?;         // system calls still work
//! std::thread::spawn(|| { /* also in Dune mode */ }).join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! libdune has three parts, and dependencies run one way:
//!
//! - `api` (re-exported here as [`vm`], [`page`], [`trap`], [`user`], [`stats`],
//!   [`runtime`]): the privileged-feature API the process calls. It uses the two
//!   parts below.
//! - `host`: the Linux-thread side: the VM, vCPUs, memory and memslots, the guest
//!   page table, and the exit handlers (system calls, faults, signals, threads and
//!   fork), in layers described in its module doc.
//! - `guest`: everything that runs in guest ring 0 or that the CPU reads directly:
//!   all entry assembly (`guest::entry`), the ring-0 trap dispatcher, the TLB
//!   shootdown, and the `#[repr(C)]` layouts the assembly uses. It uses nothing of
//!   the other parts.
//!
//! [`doctor`] (can this machine run Dune mode) stands apart; the host asks it whether
//! guest ring 0 is emulated. Everything uses `dune-x86` for x86 structures.

mod api;
pub mod doctor;
mod error;
mod guest;
mod host;
mod options;

pub use api::{page, runtime, stats, trap, user, vm};
pub use error::{Error, Result};
pub use host::memory::MemStats;
pub use options::Options;
pub use runtime::{in_dune_mode, Counters};

/// Puts the calling thread into Dune mode, with options from the environment.
/// Calling it again in Dune mode (or from a thread or child that inherited it) returns
/// `Ok(())` and changes nothing.
pub fn enter() -> Result<()> {
    runtime::enter(&Options::from_env()?)
}

/// Like [`enter`], with explicit options (the environment is not read).
pub fn enter_with(options: &Options) -> Result<()> {
    runtime::enter(options)
}

/// Creates the VM without entering Dune mode; later calls and `enter` reuse it.
pub fn init(options: &Options) -> Result<()> {
    runtime::init(options)
}
