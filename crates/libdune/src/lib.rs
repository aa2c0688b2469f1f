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
//! Layout, host side first: [`runtime`] (the VM, the per-thread host loop), `vcpu`
//! (CPU state), `memory` and `pagetable` (memslots and the guest page table),
//! `syscall`, `thread`, `signal`, `trap` (what exits do), `procmap`, `sys`, `fixed`
//! (allocation-free helpers for exit paths), `guest` (all entry assembly), [`doctor`].

pub mod doctor;
mod error;
mod fixed;
mod guest;
pub mod memory;
mod options;
pub mod page;
mod pagetable;
mod procmap;
pub mod runtime;
mod signal;
pub mod stats;
mod sys;
mod syscall;
mod thread;
pub mod trap;
pub mod user;
mod fault;
mod vcpu;
pub mod vm;

pub use error::{Error, Result};
pub use memory::MemStats;
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
