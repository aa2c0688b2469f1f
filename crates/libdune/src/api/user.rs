//! Ring 3 in Dune mode: run code with user privilege and get control back on each
//! system call, fault or privileged instruction (libdune's `dune_jump_to_user`).
//!
//! Ring-3 code reaches only pages mapped with [`crate::vm::PERM_U`]. Its system calls
//! go to the handler of [`crate::trap::register_syscall_handler`], its faults to the
//! trap handlers (frames with `cs & 3 == 3`), all without an exit to the host. A
//! handler ends the session with [`ret_from_user`]; the FS base of ring 3 is its own
//! ([`set_user_fs`]).
//!
//! Two ways to use ring 3:
//!
//! - **Handlers** (libdune's way): [`jump_to_user`] runs a frame; ring-3 system calls
//!   and traps go to the handlers registered in [`crate::trap`], which run on the
//!   trap stack and end the session with [`ret_from_user`].
//! - **Sessions** ([`run_user`]): ring 3 runs a [`UserContext`] — general registers,
//!   FS base and the whole FPU/SSE/AVX state — until its next system call, exception
//!   or interrupt, and `run_user` returns a [`UserExit`] with the context saved, in
//!   ordinary ring-0 code (not a trap handler): it may block, take locks, receive
//!   signals, fork. This is what a monitor that runs untrusted programs needs.
//!
//! Ring 3 reaches only *user memory*: pages the application declared with
//! [`add_user_range`] (mirrors of the process's own mappings, kept in step with
//! `mmap`, `mprotect` and `munmap`), or mapped with [`crate::vm::PERM_U`]. The
//! runtime's memory can never become user memory. Ring 3 cannot change its GS base
//! (the entry code's per-vCPU pointer): the FSGSBASE instructions are off in Dune mode.

use dune_x86::gdt;
use dune_x86::regs::rflags;

use crate::error::{Error, Result};
use crate::guest::{entry, DuneTf, Percpu};
pub use crate::guest::session::{fpu_image_ok, fpu_is_xsave, poll_signals, run_user, xfeatures, UserContext, UserExit, SIGNAL_VECTOR};
/// The vector of a ring-3 time slice that ran out ([`arm_time_slice`]).
pub use crate::guest::timer::VECTOR as TIME_SLICE_VECTOR;

/// Arms this vCPU's one-shot time slice: if ring 3 still runs `ns` nanoseconds from
/// now, the [`run_user`] session ends with `UserExit::Interrupt { vector:
/// TIME_SLICE_VECTOR }` (the context is saved; running it again continues). Replaces a
/// slice still armed, except one of the same length with at least half of it left,
/// which is kept (so the slice ends between `ns / 2` and `ns` from now, and arming
/// again and again costs no timer write); 0 disarms. One write of the local APIC
/// timer at most, no exit to the host. Dune mode.
pub fn arm_time_slice(ns: u64) {
    crate::guest::timer::arm(ns);
}

/// Whether the time slice armed last on this vCPU ran out (during a session or in
/// ring 0 between sessions). Dune mode.
pub fn time_slice_expired() -> bool {
    crate::guest::timer::expired()
}

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
    // function's callee-saved state for ret_from_user. No FPU image: ring 3 starts
    // with ring 0's FPU registers, as in libdune.
    unsafe { entry::__dune_jump_to_user(&t, core::ptr::null()) }
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

/// Declares the process's memory `[start, start+len)` user memory: ring 3 may use
/// it with the protection the host gives it, now and after later `mmap`, `mprotect`
/// or `mremap` of the range. Page-aligned; fails on runtime memory.
pub fn add_user_range(start: u64, len: u64) -> Result<()> {
    set_user_range(start, len, true)
}

/// Takes `[start, start+len)` away from ring 3 again, on every vCPU (a TLB
/// shootdown) before it returns.
pub fn remove_user_range(start: u64, len: u64) -> Result<()> {
    set_user_range(start, len, false)?;
    crate::guest::shootdown::shootdown();
    Ok(())
}

/// Whether all of `[start, start+len)` is user memory.
pub fn is_user_range(start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len) else { return false };
    crate::host::state::with_state(|st| Ok(st.mem.is_user(start, end))).unwrap_or(false)
}

fn set_user_range(start: u64, len: u64, user: bool) -> Result<()> {
    if !start.is_multiple_of(4096) || !len.is_multiple_of(4096) {
        return Err(Error::InvalidOption { name: "range", why: "not page-aligned" });
    }
    let end = start.checked_add(len).ok_or(Error::InvalidOption { name: "range", why: "wraps around" })?;
    crate::host::state::with_state(|st| st.mem.set_user(&st.vm, start, end, user))?;
    crate::guest::dispatch::flush_tlb();
    Ok(())
}
