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
use crate::guest::{dispatch, entry};


use dune_x86::gdt;
use dune_x86::paging::is_canonical;
use dune_x86::regs::rflags;

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

/// Resumes the ring-0 context `tf` describes (libdune's `dune_pop_trap_frame`): loads
/// every register of the frame and continues at `tf.rip` on `tf.rsp` with `iretq`.
///
/// From a trap handler this leaves the trap for good, as
/// [`crate::user::ret_from_user`] does: the frames and saved FPU state of the traps
/// being handled are dropped and the trap stack is free again. Interrupts are on in
/// the resumed context (the TLB shootdown needs them); of `tf.rflags` only the
/// arithmetic and direction flags are used. FPU and SSE registers keep their values.
///
/// Returns only when it refuses `tf`: outside Dune mode, with selectors other than
/// the kernel's (`cs` = `KERNEL_CS`, `ss` = `KERNEL_DS` or null; ring 3 is entered with
/// [`crate::user::jump_to_user`]), or with a non-canonical `rip` or `rsp`.
///
/// # Safety
/// `tf` must describe a context that can run: code at `rip`, and at `rsp` a stack with
/// 296 writable bytes below it (the red zone, then the frame is copied there before the
/// switch, so `tf` itself may sit on the trap stack). The caller's context, and from a
/// handler the interrupted one, are abandoned: nothing of them runs again unless `tf`
/// leads there.
pub unsafe fn pop_trap_frame(tf: &TrapFrame) -> Result<core::convert::Infallible> {
    if !crate::in_dune_mode() {
        return Err(Error::InvalidOption { name: "pop_trap_frame", why: "runs in Dune mode only" });
    }
    if tf.cs != gdt::KERNEL_CS as u64 || (tf.ss != 0 && tf.ss != gdt::KERNEL_DS as u64) {
        return Err(Error::InvalidOption { name: "tf", why: "not a ring-0 frame (cs must be KERNEL_CS, ss KERNEL_DS or null)" });
    }
    if !is_canonical(tf.rip) || !is_canonical(tf.rsp) {
        return Err(Error::InvalidOption { name: "tf", why: "rip or rsp is not a canonical address" });
    }
    const KEEP: u64 = rflags::CF | rflags::PF | rflags::AF | rflags::ZF | rflags::SF | rflags::DF | rflags::OF;
    let mut t = *tf;
    t.rflags = (t.rflags & KEEP) | rflags::FIXED | rflags::IF;
    // SAFETY: in Dune mode (checked), with a ring-0 frame whose context the caller
    // vouches for; `t` is read (copied below tf.rsp) before anything is abandoned.
    unsafe { entry::dune_pop_frame(&t) }
}

