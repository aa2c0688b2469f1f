//! Exception and interrupt handlers that run in Dune mode (libdune's `trap.c`).
//!
//! Handlers run in guest ring 0 on the vCPU's trap stack, with no exit to the host,
//! for any thread in Dune mode. They receive the interrupted registers as a
//! [`TrapFrame`] (libdune's `struct dune_tf`); changing it (say `rip`) changes where the
//! interrupted code resumes. A frame from ring 3 has `cs & 3 == 3`.
//!
//! A handler must not take a lock the interrupted code may hold (the allocator's, the
//! runtime's: see `vm` and `page`), and has about 12 KiB of stack. A fault inside a
//! handler nests (up to about six levels); deeper, or on the trap stack's guard page,
//! the process ends with a report.

pub use crate::guest::dispatch::{IntrHandler, PgfltHandler, SyscallHandler};
pub use crate::guest::DuneTf as TrapFrame;
use crate::guest::dispatch;

use crate::error::{Error, Result};

/// The page-fault vector: handled by [`register_pgflt_handler`].
pub const PAGE_FAULT: u8 = 14;

/// Runs `h` for every trap with `vector` (libdune's `dune_register_intr_handler`).
pub fn register_intr_handler(vector: u8, h: IntrHandler) -> Result<()> {
    if vector == PAGE_FAULT {
        return Err(Error::InvalidOption { name: "vector", why: "page faults go to register_pgflt_handler" });
    }
    dispatch::set_intr_handler(vector, Some(h));
    Ok(())
}

/// Removes the handler of `vector`: those traps go to the runtime again.
pub fn unregister_intr_handler(vector: u8) {
    dispatch::set_intr_handler(vector, None);
}

/// Runs `h(address, error_code, frame)` for every page fault
/// (`dune_register_pgflt_handler`). It returns whether it handled the fault; `false`
/// leaves it to the runtime (memory mapped behind its back, or the signal Linux would send).
pub fn register_pgflt_handler(h: PgfltHandler) {
    dispatch::set_pgflt_handler(Some(h));
}

/// Removes the page-fault handler.
pub fn unregister_pgflt_handler() {
    dispatch::set_pgflt_handler(None);
}

/// Runs `h` for every system call made in ring 3 (`dune_register_syscall_handler`).
/// It may rewrite arguments, set `rax` (an errno as `-errno`), pass the call to Linux
/// with [`crate::user::passthrough_syscall`], or end the session with
/// [`crate::user::ret_from_user`]. Without a handler, ring-3 calls go to Linux.
pub fn register_syscall_handler(h: SyscallHandler) {
    dispatch::set_syscall_handler(Some(h));
}

/// Removes the system-call handler.
pub fn unregister_syscall_handler() {
    dispatch::set_syscall_handler(None);
}
