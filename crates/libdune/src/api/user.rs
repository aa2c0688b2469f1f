//! Ring 3 in Dune mode: run code with user privilege and get control back on each
//! system call, fault or privileged instruction (libdune's `dune_jump_to_user`).
//!
//! Ring-3 code reaches only pages mapped with [`crate::vm::PERM_U`]. Its system calls
//! go to the handler of [`crate::trap::register_syscall_handler`], its faults to the
//! trap handlers (frames with `cs & 3 == 3`), all without an exit to the host. A
//! handler ends the session with [`ret_from_user`]; the FS base of ring 3 is its own
//! ([`set_user_fs`]).

use dune_x86::gdt;
use dune_x86::regs::rflags;

use crate::guest::{entry, DuneTf, Percpu};

fn percpu() -> *mut Percpu {
    let p: u64;
    // SAFETY: in Dune mode GS base is this vCPU's Percpu, whose first field is its address.
    unsafe { core::arch::asm!("mov {0}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags)) };
    p as *mut Percpu
}

/// Runs `tf` (rip, rsp, registers) in ring 3 until a handler calls [`ret_from_user`],
/// and returns the value it passed. `cs`, `ss` are set to the user segments; RFLAGS
/// keeps only the arithmetic flags, with interrupts on and IOPL 0 (no port access).
///
/// # Safety
/// Must run in Dune mode. The code at `tf.rip` and the stack at `tf.rsp` must be
/// mapped with `PERM_U`; a handler must eventually call `ret_from_user`.
pub unsafe fn jump_to_user(tf: &DuneTf) -> i64 {
    let mut t = *tf;
    t.cs = gdt::USER_CS as u64;
    t.ss = gdt::USER_DS as u64;
    const KEEP: u64 = rflags::CF | rflags::PF | rflags::AF | rflags::ZF | rflags::SF | rflags::DF | rflags::OF;
    // Interrupts on, so shootdown IPIs reach a vCPU running ring-3 code; IOPL 0.
    t.rflags = (t.rflags & KEEP) | rflags::FIXED | rflags::IF;
    // SAFETY: the caller vouches for the user context; the entry code saves this
    // function's callee-saved state for ret_from_user.
    unsafe { entry::__dune_jump_to_user(&t) }
}

/// Ends the current user session from a handler: [`jump_to_user`] returns `ret`.
pub fn ret_from_user(ret: i64) -> ! {
    // SAFETY: called from a handler of a session begun by jump_to_user on this vCPU;
    // the trap frames above are abandoned, as in libdune.
    unsafe { entry::__dune_ret_from_user(ret) }
}

/// The FS base ring-3 code runs with.
pub fn set_user_fs(base: u64) {
    // SAFETY: this vCPU's Percpu; read by the entry code on the next switch to ring 3.
    unsafe { (*percpu()).user_fs = base };
}

/// The FS base ring-3 code runs with (0 on a vCPU where none was set); after a trap
/// from ring 3, the value ring 3 had (it may change it with `wrfsbase`).
pub fn user_fs() -> u64 {
    // SAFETY: this vCPU's Percpu, written only by this vCPU (set_user_fs and the
    // entry code, which saves ring 3's FS base on each trap from it).
    unsafe { (*percpu()).user_fs }
}

/// Performs the ring-3 system call in `tf` in Linux; the result goes to `tf.rax`
/// (`dune_passthrough_syscall`). One exit to the host.
pub fn passthrough_syscall(tf: &mut DuneTf) {
    crate::guest::dispatch::passthrough(tf);
}
