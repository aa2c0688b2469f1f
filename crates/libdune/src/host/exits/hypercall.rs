//! `vmcall` and `vmmcall` as system calls, the original libdune's ABI: `rax` holds the
//! number, the arguments are in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`, the result
//! comes back in `rax`, and no other register changes.
//!
//! Two ways in, depending on what KVM offers (`kvm::setup_hypercalls`):
//!
//! - the CPU's own instruction exits to user space as `KVM_EXIT_XEN` ([`from_exit`]);
//! - the other vendor's instruction raises #UD in the guest (KVM no longer rewrites
//!   it in the guest's text, which faulted on read-only code), and the trap reaches
//!   the runtime ([`from_ud`]).
//!
//! From ring 3 neither ever reaches Linux: the exit answers `-EPERM`, and the #UD is
//! the program's (its ring-0 handler, or death by SIGILL with a report).
//!
//! Calls that create or end execution contexts from the middle of a hypercall
//! (`clone`, `clone3`, `fork`, `vfork`, `rt_sigreturn`) get `-ENOSYS`: they need the
//! `syscall` instruction's return path.

use kvm_bindings::kvm_regs;
use kvm_ioctls::SyncReg;

use crate::guest::entry;
use crate::host::report::die_fatal;
use crate::host::state::{Resume, ThreadCtx, COUNTERS};
use crate::host::sys;

use super::syscall;
use super::thread::ThreadEntry;

/// Length of `vmcall` (0f 01 c1) and `vmmcall` (0f 01 d9).
const INSN_LEN: u64 = 3;

/// Whether the three bytes are `vmcall` or `vmmcall`.
pub fn is_hypercall(insn: [u8; 3]) -> bool {
    matches!(insn, [0x0f, 0x01, 0xc1] | [0x0f, 0x01, 0xd9])
}

/// Performs system call `nr` for a hypercall made at `regs.rip`. Returns the result
/// and whether the page table changed under the vCPU.
fn perform(ctx: &mut ThreadCtx, regs: &kvm_regs, nr: u64, args: [u64; 6], thread_start: ThreadEntry) -> (i64, bool) {
    COUNTERS.syscalls.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if syscall::needs_syscall_return(nr) {
        return (-(libc::ENOSYS as i64), false);
    }
    let mut r = *regs;
    r.rcx = regs.rip + INSN_LEN;
    r.r11 = regs.rflags;
    let (ret, resume) = syscall::dispatch(ctx, &r, thread_start, nr, args);
    (ret, matches!(resume, Resume::FlushTlb))
}

/// A `KVM_EXIT_XEN` hypercall exit: the guest executed its CPU's own hypercall
/// instruction.
pub fn from_exit(ctx: &mut ThreadCtx, thread_start: ThreadEntry) {
    let run = ctx.vcpu.fd.get_kvm_run();
    // SAFETY: the exit reason is KVM_EXIT_XEN (checked by the loop), so the xen member
    // of the exit union is the one KVM filled.
    let x = unsafe { run.__bindgen_anon_1.xen };
    if x.type_ != kvm_bindings::KVM_EXIT_XEN_HCALL {
        die_fatal(&ctx.vcpu.fd, "unexpected KVM_EXIT_XEN exit type");
    }
    // SAFETY: type HCALL: the hcall member is the one KVM filled.
    let h = unsafe { x.u.hcall };
    let result = if h.cpl != 0 || h.longmode == 0 {
        // Ring 3 (or 32-bit code): never reaches Linux.
        -(libc::EPERM as i64)
    } else {
        let regs = ctx.vcpu.fd.sync_regs().regs;
        let (ret, flush) = perform(ctx, &regs, h.input, h.params, thread_start);
        if flush {
            return_through_flush(ctx, &regs, ret);
            return;
        }
        ret
    };
    // KVM reads `result` back when the vCPU runs again, puts it in rax and moves rip
    // past the instruction.
    ctx.vcpu.fd.get_kvm_run().__bindgen_anon_1.xen.u.hcall.result = result as u64;
}

/// Resumes the guest through `dune_hypercall_return_flush` (CR3 reload) with `ret` in
/// rax. Changing rip also tells KVM not to complete the hypercall itself.
fn return_through_flush(ctx: &mut ThreadCtx, regs: &kvm_regs, ret: i64) {
    let sp = regs.rsp - entry::HYPERCALL_ROOM;
    if sys::write_guest(sp, &(regs.rip + INSN_LEN).to_le_bytes()).is_err() {
        die_fatal(&ctx.vcpu.fd, "hypercall: the stack below rsp is not writable");
    }
    let r = &mut ctx.vcpu.fd.sync_regs_mut().regs;
    r.rax = ret as u64;
    r.rsp = sp;
    r.rip = entry::addr_of(entry::dune_hypercall_return_flush);
    ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
}

/// A #UD from ring 0 that the guest's dispatcher passed on: if it was a hypercall
/// instruction, performs it, updates the trap frame at `tf_addr` to resume after it
/// with the result in rax, and returns `Some(flush)` (whether the page table changed).
pub fn from_ud(ctx: &mut ThreadCtx, tf: &mut crate::guest::DuneTf, thread_start: ThreadEntry) -> Option<bool> {
    let mut insn = [0u8; 3];
    if tf.from_user() || sys::read_guest(tf.rip, &mut insn).is_err() || !is_hypercall(insn) {
        return None;
    }
    let regs = tf.to_regs();
    let (ret, flush) = perform(ctx, &regs, tf.rax, [tf.rdi, tf.rsi, tf.rdx, tf.r10, tf.r8, tf.r9], thread_start);
    tf.rax = ret as u64;
    tf.rip += INSN_LEN;
    Some(flush)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_hypercall_instructions_only() {
        assert!(is_hypercall([0x0f, 0x01, 0xc1]));
        assert!(is_hypercall([0x0f, 0x01, 0xd9]));
        assert!(!is_hypercall([0x0f, 0x0b, 0x00]));
        assert!(!is_hypercall([0x0f, 0x01, 0xd8]));
    }
}
