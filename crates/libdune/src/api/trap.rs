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
use crate::guest::{dispatch, Percpu, TSS_IST1};

use core::mem::offset_of;

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
    unsafe { pop_frame(&t) }
}

/// Bytes below the target `rsp` that [`pop_frame`] leaves alone: the System V red zone.
const RED_ZONE: usize = 128;

/// The frame's 21 quadwords go below the target stack's red zone, 16-byte aligned;
/// from there the general registers are popped and `iretq` takes `rip`..`ss`. Only
/// after the frame is off the trap stack are the trap depth and TSS.ist1 reset (so
/// a nested trap can no longer land on it), with no register to spare: by memory
/// operands. Interrupts stay off until `iretq` loads the frame's RFLAGS.
#[unsafe(naked)]
unsafe extern "C" fn pop_frame(tf: *const TrapFrame) -> ! {
    core::arch::naked_asm!(
        "cli",
        "mov {tf_rsp}(%rdi), %rax",
        "sub ${room}, %rax",
        "and $-16, %rax",
        "mov %rdi, %rsi",
        "mov %rax, %rdi",
        "mov ${words}, %ecx",
        "cld",
        "rep movsq",
        "mov %rax, %rsp",
        "movq $0, %gs:{pc_trap_depth}",
        "pushq %gs:{pc_ist1_top}",
        "popq %gs:{tss_ist1}",
        "pop %rdi",
        "pop %rsi",
        "pop %rdx",
        "pop %rcx",
        "pop %r8",
        "pop %r9",
        "pop %r10",
        "pop %r11",
        "pop %rbx",
        "pop %rbp",
        "pop %r12",
        "pop %r13",
        "pop %r14",
        "pop %r15",
        "pop %rax",
        "add $8, %rsp",
        "iretq",
        tf_rsp = const offset_of!(TrapFrame, rsp),
        room = const RED_ZONE + core::mem::size_of::<TrapFrame>(),
        words = const core::mem::size_of::<TrapFrame>() / 8,
        pc_trap_depth = const offset_of!(Percpu, trap_depth),
        pc_ist1_top = const offset_of!(Percpu, ist1_top),
        tss_ist1 = const TSS_IST1,
        options(att_syntax),
    )
}

// pop_frame pops the registers in field order, then skips `err`: the layout it needs.
const _: () = assert!(offset_of!(TrapFrame, rdi) == 0 && offset_of!(TrapFrame, rax) == 14 * 8);
const _: () = assert!(offset_of!(TrapFrame, err) == 15 * 8 && offset_of!(TrapFrame, rip) == 16 * 8);
const _: () = assert!(offset_of!(TrapFrame, ss) == 20 * 8 && core::mem::size_of::<TrapFrame>() == 21 * 8);
