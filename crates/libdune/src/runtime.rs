//! The process-wide runtime: one KVM VM per process, one vCPU per thread in Dune
//! mode, and the host loop each such thread runs.
//!
//! A thread enters Dune mode in `enter()`: its vCPU is loaded with the thread's own
//! registers, and the host side of the thread switches to a private host stack and
//! runs `KVM_RUN` in a loop for the rest of the thread's life. The guest side continues
//! where `enter()` returns.
//!
//! # Exit paths never allocate
//! Everything the loop calls after an exit (system calls, faults, thread creation,
//! fork) runs while the guest side of the same thread may hold a lock in the middle
//! of `malloc` (glibc's `sysmalloc` calls `mmap` with its arena locked; `fork` locks
//! every arena). Those paths use only fixed tables made at `init` (`fixed`, `memory`)
//! and pre-reserved `Vec` capacity.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use kvm_bindings::kvm_regs;
use kvm_ioctls::{Kvm, VcpuExit, VmFd};

use dune_x86::exception;
use dune_x86::gdt::{self, PrivilegeLevel};
use dune_x86::idt::{GateType, IdtEntry};
use dune_x86::tss::Ist;

use crate::error::{Error, Result};
use crate::guest::{entry, EnterFrame};
use crate::memory::{MemStats, Memory, PAGE};
use crate::options::Options;
use crate::pagetable::Perms;
use crate::vcpu::{self, FpuControl, FpuState, Template, Vcpu};
use crate::signal::{self, ThreadSignals};
use crate::{fault, syscall, sys};

/// Host stack of each thread in Dune mode (its `ThreadCtx` sits at the top).
pub const HOST_STACK: usize = 256 * 1024;

/// The VM and everything shared by its vCPUs.
pub struct State {
    pub(crate) kvm: Kvm,
    pub(crate) vm: VmFd,
    pub(crate) mem: Memory,
    pub(crate) template: Template,
    free_vcpus: Vec<Vcpu>,
    next_vcpu_id: u64,
    max_vcpus: usize,
    /// The options the VM was made with.
    pub options: Options,
}

/// Exits handled by the host loops of all vCPUs, by kind (see [`counters`]).
#[derive(Debug, Default)]
pub struct Counters {
    /// System calls forwarded to the host.
    pub syscalls: AtomicU64,
    /// Exceptions that reached the host (lazy mappings, fatal faults).
    pub traps: AtomicU64,
    /// `KVM_RUN` returns because of a signal.
    pub interrupts: AtomicU64,
}

/// The exit counters.
pub static COUNTERS: Counters = Counters { syscalls: AtomicU64::new(0), traps: AtomicU64::new(0), interrupts: AtomicU64::new(0) };

/// The exit counters of this process, for tests and benchmarks.
pub fn counters() -> &'static Counters {
    &COUNTERS
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Locks the runtime state. Exit paths hold it only while changing shared tables.
pub(crate) fn lock() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on the initialized state.
pub(crate) fn with_state<T>(f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
    let mut g = lock();
    let st = g.as_mut().ok_or(Error::ProcMaps("runtime not initialized"))?;
    f(st)
}

/// Whether the calling thread runs in Dune mode (guest ring 0): the privilege level
/// is in the low bits of CS, which no one but the CPU sets.
pub fn in_dune_mode() -> bool {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs & 3 == 0
}

/// Creates the VM if needed. Idempotent; `options` of later calls are ignored.
pub fn init(options: &Options) -> Result<()> {
    let mut g = lock();
    if g.is_some() {
        return Ok(());
    }
    if !options.allow_emulated {
        if let Some(reason) = crate::doctor::emulated_ring0() {
            return Err(Error::EmulatedRing0(reason));
        }
    }
    let kvm = open_kvm(&options.kvm_path)?;
    for (cap, name) in [
        (kvm_ioctls::Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
        (kvm_ioctls::Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
        (kvm_ioctls::Cap::Xcrs, "KVM_CAP_XCRS"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(Error::MissingCapability(name));
        }
    }
    let vm = kvm.create_vm().map_err(Error::kvm("KVM_CREATE_VM"))?;
    // Intel needs a TSS range for real-mode emulation even if never used; AMD ignores it.
    vm.set_tss_address(0xfffb_d000).map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
    // Local APICs for TLB-shootdown IPIs (guest::shootdown); before any vCPU exists.
    vm.create_irq_chip().map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
    let maxphy = Template::maxphyaddr(&kvm)?;
    let mut mem = Memory::new(&vm, maxphy, kvm.get_nr_memslots(), options.memslot_budget)?;
    let idt = build_idt(&vm, &mut mem)?;
    let template = Template::new(&kvm, idt, mem.root())?;
    let max_vcpus = kvm.get_max_vcpus();
    let free_vcpus = Vec::with_capacity(max_vcpus);
    mem.map_all(&vm)?;
    signal::import_handlers();
    *g = Some(State { kvm, vm, mem, template, free_vcpus, next_vcpu_id: 0, max_vcpus, options: options.clone() });
    Ok(())
}

fn open_kvm(path: &std::path::Path) -> Result<Kvm> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidOption { name: "kvm_path", why: "contains a NUL byte" })?;
    let kvm = Kvm::new_with_path(&c).map_err(|e| match e.errno() {
        libc::ENOENT => Error::NoKvm,
        libc::EACCES | libc::EPERM => Error::KvmAccess,
        _ => Error::KvmOpen(std::io::Error::from_raw_os_error(e.errno())),
    })?;
    if kvm.get_api_version() != 12 {
        return Err(Error::MissingCapability("KVM API version 12 (is this really /dev/kvm?)"));
    }
    Ok(kvm)
}

/// The IDT, shared by all vCPUs: every vector goes to its stub on IST1.
fn build_idt(vm: &VmFd, mem: &mut Memory) -> Result<u64> {
    let gpa = mem.alloc_page(vm)?;
    let hva = mem.gpa_to_hva(gpa).ok_or(Error::TableFull("IDT lookup"))?;
    for v in 0..=255u8 {
        // int3 and into may be used from ring 3 later (DPL 3); everything else is ring 0.
        let dpl = if v == exception::BP || v == exception::OF { PrivilegeLevel::Ring3 } else { PrivilegeLevel::Ring0 };
        let ist = if v == exception::DF { Ist::Ist2 } else { Ist::Ist1 };
        let gate = IdtEntry::new(entry::trap_stub(v), gdt::KERNEL_CS, GateType::Interrupt, dpl, Some(ist));
        // SAFETY: the IDT page is runtime memory owned here; 256 gates of 16 bytes fill it.
        unsafe { core::ptr::write_unaligned((hva as *mut [u64; 2]).add(v as usize), gate.to_words()) };
    }
    Ok(hva)
}

impl State {
    /// A vCPU for a new thread: from the pool, or a new one.
    pub(crate) fn take_vcpu(&mut self) -> Result<Vcpu> {
        if let Some(v) = self.free_vcpus.pop() {
            return Ok(v);
        }
        if self.next_vcpu_id as usize >= self.max_vcpus {
            return Err(Error::TooManyVcpus(self.max_vcpus));
        }
        let v = Vcpu::create(&self.vm, &mut self.mem, &self.template, self.next_vcpu_id)?;
        self.next_vcpu_id += 1;
        Ok(v)
    }

    /// Returns the vCPU of a thread that exited.
    pub(crate) fn put_vcpu(&mut self, v: Vcpu) {
        // The capacity was reserved for max_vcpus: this never reallocates.
        if self.free_vcpus.len() < self.free_vcpus.capacity() {
            self.free_vcpus.push(v);
        }
    }

    /// In a forked child: a new VM with the same memory, and this thread's vCPU in it.
    pub(crate) fn rebuild_after_fork(&mut self, vcpu: &mut Vcpu) -> Result<()> {
        self.free_vcpus.clear();
        self.vm = self.kvm.create_vm().map_err(Error::kvm("KVM_CREATE_VM (forked child)"))?;
        self.vm.set_tss_address(0xfffb_d000).map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
        self.vm.create_irq_chip().map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
        self.mem.reregister(&self.vm)?;
        // The parent's other vCPUs do not run in the child: never wait for them.
        crate::guest::shootdown::mark_gone_except(vcpu.percpu());
        vcpu.recreate(&self.vm, &self.template)?;
        // Other vCPU ids belong to threads that do not exist in the child; new threads
        // get fresh ids from the high-water mark.
        Ok(())
    }
}

/// Per-thread host context, stored at the top of the thread's host stack.
pub struct ThreadCtx {
    pub(crate) vcpu: Vcpu,
    /// Base and length of the host stack mapping (which contains this struct).
    pub(crate) stack: (u64, u64),
    /// Last lazily-mapped fault (address, rip), to tell a fix from a loop.
    pub(crate) last_fault: (u64, u64),
    /// Signals caught for this thread, waiting for delivery to the guest.
    pub(crate) sig: ThreadSignals,
    /// Consecutive exits for stale mappings (a loop means a bad address).
    pub(crate) stale_streak: u32,
}

/// Maps a host stack with a guard page and places `ctx` at its top. Returns the
/// context pointer; the usable stack ends just below it (16-byte aligned).
pub(crate) fn new_host_stack(mut vcpu: Vcpu) -> core::result::Result<*mut ThreadCtx, (Vcpu, Error)> {
    let base = match sys::mmap_anon(HOST_STACK, 0) {
        Ok(p) => p as u64,
        Err(e) => return Err((vcpu, Error::os_errno("mmap host stack", e))),
    };
    // SAFETY: the first page of the fresh mapping becomes the guard page.
    unsafe { sys::syscall(libc::SYS_mprotect, base, PAGE, libc::PROT_NONE as u64) };
    let top = base + HOST_STACK as u64;
    let ctx = ((top - core::mem::size_of::<ThreadCtx>() as u64) & !63) as *mut ThreadCtx;
    let run: *mut kvm_bindings::kvm_run = vcpu.fd.get_kvm_run();
    // SAFETY: ctx lies inside the fresh mapping, aligned, and is not referenced elsewhere.
    unsafe { ctx.write(ThreadCtx { vcpu, stack: (base, HOST_STACK as u64), last_fault: (0, 0), sig: ThreadSignals::new(run), stale_streak: 0 }) };
    Ok(ctx)
}

/// Top of the usable host stack below `ctx`.
pub(crate) fn stack_top(ctx: *mut ThreadCtx) -> u64 {
    (ctx as u64 - 64) & !15
}

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
        fault::die_runtime_error("KVM_SET_REGS", &e);
    }
    run(ctx)
}

/// Entry of a thread created by `clone` in Dune mode (see `syscall::clone_thread`).
pub(crate) extern "C" fn thread_start(ctx: *mut u8) -> ! {
    // SAFETY: the parent built the context for this thread alone.
    run(unsafe { &mut *(ctx as *mut ThreadCtx) })
}

/// The host loop: runs the vCPU and handles its exits, forever.
pub(crate) fn run(ctx: &mut ThreadCtx) -> ! {
    signal::set_current(ctx);
    let in_host = ctx.vcpu.in_host_flag();
    loop {
        signal::deliver_pending(ctx);
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
            Ok(_) => Exit::Fatal("unexpected KVM exit"),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Exit::Interrupted,
            Err(e) if e.errno() == libc::EFAULT => Exit::Stale,
            Err(e) => fault::die_runtime_error("KVM_RUN", &e),
        };
        if !matches!(exit, Exit::Stale) {
            ctx.stale_streak = 0;
        }
        match exit {
            Exit::Io(entry::PORT_SYSCALL) => syscall::handle(ctx),
            Exit::Io(entry::PORT_TRAP) => fault::handle(ctx),
            Exit::Io(entry::PORT_PASSTHROUGH) => syscall::passthrough_tf(ctx),
            Exit::Io(_) => fault::die_fatal(ctx, "out to an unknown I/O port"),
            Exit::Interrupted => {
                COUNTERS.interrupts.fetch_add(1, Ordering::Relaxed);
            }
            Exit::Stale => fault::stale_mapping(ctx),
            Exit::Fatal(what) => fault::die_fatal(ctx, what),
        }
    }
}

enum Exit {
    Io(u16),
    Interrupted,
    /// The guest reached memory whose host mapping changed behind the runtime's back.
    Stale,
    Fatal(&'static str),
}

/// The file descriptor of the calling thread's vCPU, if it is in Dune mode: for
/// `KVM_GET_STATS_FD` (exit counts per vCPU) and other per-vCPU queries. Only ioctls
/// that do not change the vCPU's state are safe on it.
pub fn current_vcpu_fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let ctx = signal::current();
    // SAFETY: a non-null CURRENT is this thread's own context, alive while it runs.
    (!ctx.is_null()).then(|| unsafe { (*ctx).vcpu.fd.as_raw_fd() })
}

/// Memory statistics of the VM, or `None` before `init`.
pub fn mem_stats() -> Option<MemStats> {
    lock().as_ref().map(|s| s.mem.stats())
}

/// Host mapping changed: make the guest page table follow it.
pub(crate) fn map_range(start: u64, end: u64, perms: Perms) -> Result<()> {
    with_state(|st| st.mem.map(&st.vm, start, end, perms))
}

/// Host mapping went away: clear it from the guest page table and the memslots.
pub(crate) fn unmap_range(start: u64, end: u64) -> Result<()> {
    with_state(|st| st.mem.unmap(&st.vm, start, end))
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
