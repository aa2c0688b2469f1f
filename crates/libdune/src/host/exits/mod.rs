//! The exit handlers: what the host does when the guest leaves the VM.
//!
//! - `syscall`: a system call made in Dune mode (the LSTAR stub's `out`), performed
//!   with the guest's registers, with extra work for the calls that change the
//!   process (memory, threads, fork, FS/GS, signal actions).
//! - `exec`: `execve`, whose new image enters Dune mode again when the runtime
//!   was asked to carry it (`dune run`).
//! - `hypercall`: `vmcall`/`vmmcall` used as a system call (the original libdune's
//!   ABI), from a `KVM_EXIT_XEN` exit or from the #UD the other vendor's instruction
//!   raises.
//! - `guard`: calls that would reach the runtime's own descriptors or memory,
//!   refused before Linux sees them.
//! - `thread`: `clone`, `fork`, `vfork` and thread exit.
//! - `fault`: exceptions the guest's dispatcher passes on: lazy mappings, stack
//!   growth, stale mappings; everything else becomes a signal.
//! - `signal`: signals caught on the host and delivered to the guest with Linux's
//!   frame, and `rt_sigaction`/`rt_sigreturn`.
//!
//! They use `state` and `report` below them; `syscall` calls `thread` and `signal`,
//! `fault` calls `signal`. Nothing here imports the host loop (`run`): the loop passes
//! its thread entry in, and `syscall` hands it to `thread::clone`.
//!
//! Every function here runs on an exit path: no heap allocation (see `state`).

pub mod exec;
pub mod fault;
pub mod guard;
pub mod hypercall;
pub mod signal;
pub mod syscall;
pub mod thread;
