//! The host loop: entering Dune mode, and the `KVM_RUN` loop each thread in Dune mode
//! runs on its private host stack for the rest of its life.
//!
//! A thread enters Dune mode in `enter()`: its vCPU is loaded with the thread's own
//! registers, and the host side of the thread switches to a private host stack and
//! runs `KVM_RUN` in a loop. The guest side continues where `enter()` returns. Each
//! exit goes to its handler in `exits`; this is the top of the host part.

use std::sync::atomic::Ordering;

use kvm_bindings::kvm_regs;
use kvm_ioctls::VcpuExit;

use crate::error::{Error, Result};
use crate::guest::{entry, in_dune_mode, EnterFrame};
use crate::options::Options;
use super::exits::{fault, hypercall, signal, syscall};
use super::init::init;
use super::report;
use super::state::{self, lock, new_host_stack, stack_top, ThreadCtx, COUNTERS};
use super::vcpu::{self, FpuControl, FpuState};

/// Puts the calling thread into Dune mode.
pub fn enter(options: &Options) -> Result<()> {
    if in_dune_mode() {
        return Ok(());
    }
    init(options)?;
    let (fs, gs) = vcpu::current_fs_gs();
    let fpu = FpuControl::current();
    let ctx = {
        let mut g = lock();
        let st = g.as_mut().ok_or(Error::ProcMaps("runtime not initialized"))?;
        // Mappings made since init (by this thread before entering, or by others) are
        // registered now rather than one fault at a time.
        st.mem.map_all(&st.vm)?;
        let mut v = st.take_vcpu()?;
        let sregs = v.sregs(&st.template, fs);
        // SAFETY: the vCPU's Percpu, not in use by any CPU until this thread enters.
        unsafe { (*v.percpu()).saved_gs = gs };
        if let Err(e) = v.load(&sregs, &kvm_regs::default(), &FpuState::Control(fpu)) {
            st.put_vcpu(v);
            return Err(e);
        }
        match new_host_stack(v) {
            Ok(ctx) => ctx,
            Err((v, e)) => {
                st.put_vcpu(v);
                return Err(e);
            }
        }
    };
    let mut frame = EnterFrame { host_stack_top: stack_top(ctx), host_run: host_start as *const () as u64, ctx: ctx as u64, ..Default::default() };
    // SAFETY: the trampoline saves this thread's callee-saved registers, switches to the
    // host stack it was given (a fresh mapping) and calls host_start, which loads the
    // saved rsp and resume point into the vCPU. The vCPU resumes on this very stack,
    // whose contents nothing else touched, and returns 0 from here as the guest.
    let r = unsafe { entry::dune_enter_trampoline(&mut frame) };
    debug_assert_eq!(r, 0);
    Ok(())
}

/// First host function on a new host stack after `enter()`.
extern "C" fn host_start(frame: *mut EnterFrame) -> ! {
    // SAFETY: frame points into the stack of the thread that called the trampoline; the
    // guest has not started yet, so it is intact and unshared.
    let (ctx, rsp, rip) = unsafe { ((*frame).ctx as *mut ThreadCtx, (*frame).rsp, (*frame).rip) };
    // SAFETY: ctx was made by new_host_stack for this thread and is used by it alone.
    let ctx = unsafe { &mut *ctx };
    if let Err(e) = ctx.vcpu.fd.set_regs(&vcpu::initial_regs(rip, rsp)) {
        report::die_runtime_error("KVM_SET_REGS", &e);
    }
    run(ctx)
}

/// Entry of a thread created by `clone` in Dune mode (see `exits::thread::clone`).
pub(crate) extern "C" fn thread_start(ctx: *mut u8) -> ! {
    // SAFETY: the parent built the context for this thread alone.
    run(unsafe { &mut *(ctx as *mut ThreadCtx) })
}

/// The host loop: runs the vCPU and handles its exits, forever.
pub(crate) fn run(ctx: &mut ThreadCtx) -> ! {
    state::set_current(ctx);
    let in_host = ctx.vcpu.in_host_flag();
    // The guest's registers as KVM last reported them at an exit, before the runtime
    // wrote its own (see below).
    let mut at_exit = ctx.vcpu.fd.sync_regs().regs;
    loop {
        signal::deliver_pending(ctx);
        // Registers the runtime wrote for the guest (sync regs marked dirty). Measured
        // in the lane (Linux 6.1, SVM): when a signal makes KVM_RUN return EINTR at once,
        // KVM can drop them, clearing the dirty mark and reporting the registers of the
        // last exit instead; the next run would then resume the guest from that exit
        // (after an `out`, past the syscall stub with rax still the call number).
        let written = (ctx.vcpu.fd.get_kvm_run().kvm_dirty_regs & kvm_bindings::KVM_SYNC_X86_REGS as u64 != 0).then(|| ctx.vcpu.fd.sync_regs().regs);
        in_host.store(0, Ordering::SeqCst);
        let res = ctx.vcpu.fd.run();
        in_host.store(1, Ordering::SeqCst);
        let exit = match res {
            Ok(VcpuExit::IoOut(port, _)) => Exit::Io(port),
            Ok(VcpuExit::Intr) => Exit::Interrupted,
            Ok(VcpuExit::Shutdown) => Exit::Fatal("triple fault (KVM_EXIT_SHUTDOWN)"),
            Ok(VcpuExit::InternalError) => Exit::Fatal("KVM internal error: an instruction the hypervisor cannot emulate"),
            Ok(VcpuExit::FailEntry(..)) => Exit::Fatal("VM entry failed (invalid guest state)"),
            Ok(VcpuExit::Hlt) => Exit::Fatal("hlt in ring 0 with interrupts off"),
            Ok(VcpuExit::MmioRead(..) | VcpuExit::MmioWrite(..)) => Exit::Stale,
            Ok(VcpuExit::MemoryFault { .. }) => Exit::Stale,
            Ok(VcpuExit::Unsupported(kvm_bindings::KVM_EXIT_XEN)) => Exit::Hypercall,
            Ok(_) => Exit::Fatal("unexpected KVM exit"),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Exit::Interrupted,
            Err(e) if e.errno() == libc::EFAULT => Exit::Stale,
            Err(e) => report::die_runtime_error("KVM_RUN", &e),
        };
        let now = ctx.vcpu.fd.sync_regs().regs;
        report::note_exit(
            match &exit {
                Exit::Io(_) => "io",
                Exit::Interrupted => "interrupted",
                Exit::Hypercall => "hypercall",
                Exit::Stale => "stale",
                Exit::Fatal(_) => "fatal",
            },
            now.rip,
            now.rax,
            written.as_ref().map_or(0, |w| w.rip),
        );
        match (&exit, written) {
            // The guest did not run if it stands exactly where the last exit left it.
            (Exit::Interrupted, Some(w)) if (now.rip, now.rax, now.rsp) == (at_exit.rip, at_exit.rax, at_exit.rsp) && (now.rip, now.rax) != (w.rip, w.rax) => {
                ctx.vcpu.fd.sync_regs_mut().regs = w;
                ctx.vcpu.fd.set_sync_dirty_reg(kvm_ioctls::SyncReg::Register);
            }
            _ => at_exit = now,
        }
        if !matches!(exit, Exit::Stale) {
            ctx.stale_streak = 0;
        }
        match exit {
            Exit::Io(entry::PORT_SYSCALL) => syscall::handle(ctx, thread_start),
            Exit::Io(entry::PORT_TRAP) => fault::handle(ctx, thread_start),
            Exit::Hypercall => hypercall::from_exit(ctx, thread_start),
            Exit::Io(entry::PORT_PASSTHROUGH) => syscall::passthrough_tf(ctx, thread_start),
            Exit::Io(entry::PORT_SERVICE) => syscall::service(ctx),
            Exit::Io(_) => report::die_fatal(&ctx.vcpu.fd, "out to an unknown I/O port"),
            Exit::Interrupted => {
                COUNTERS.interrupts.fetch_add(1, Ordering::Relaxed);
            }
            Exit::Stale => fault::stale_mapping(ctx),
            Exit::Fatal(what) => report::die_fatal(&ctx.vcpu.fd, what),
        }
    }
}

enum Exit {
    Io(u16),
    Interrupted,
    /// `vmcall`/`vmmcall` as a system call (`KVM_EXIT_XEN`).
    Hypercall,
    /// The guest reached memory whose host mapping changed behind the runtime's back.
    Stale,
    Fatal(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_device(path: &str) -> Options {
        Options { allow_emulated: true, kvm_path: path.into(), ..Options::default() }
    }

    #[test]
    fn missing_device_is_a_clear_error() {
        let e = init(&with_device("/nonexistent/kvm")).unwrap_err();
        assert!(matches!(e, Error::NoKvm), "{e:?}");
        assert!(e.to_string().contains("/dev/kvm not found"));
        assert!(!in_dune_mode());
    }

    #[test]
    fn a_device_that_is_not_kvm_is_refused() {
        let e = init(&with_device("/dev/null")).unwrap_err();
        assert!(matches!(e, Error::MissingCapability(_)), "{e:?}");
    }

    #[test]
    fn enter_refuses_an_emulated_ring0_unless_allowed() {
        // Meaningful wherever it runs: the refusal must match what doctor detects.
        let opts = Options { allow_emulated: false, ..Options::default() };
        match crate::doctor::emulated_ring0() {
            Some(reason) => {
                let e = enter(&opts).unwrap_err();
                assert!(matches!(e, Error::EmulatedRing0(ref r) if *r == reason), "{e:?}");
                assert!(e.to_string().contains("DUNE_ALLOW_EMULATED"));
                assert!(!in_dune_mode());
            }
            None => assert!(!matches!(init(&opts), Err(Error::EmulatedRing0(_)))),
        }
    }

    #[test]
    fn user_mode_is_not_dune_mode() {
        assert!(!in_dune_mode());
    }
}
