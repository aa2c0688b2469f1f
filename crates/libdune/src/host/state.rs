//! The state every part of the host shares: the VM (`State`, behind one lock), each
//! thread's host context (`ThreadCtx`, at the top of its host stack, with its signal
//! state), the exit counters, and how a system-call exit resumes the guest (`Resume`).
//!
//! It sits below the exit handlers and the host loop, which use it; beneath it are
//! only `vcpu`, `memory`, `pagetable` and `sys`.
//!
//! # Exit paths never allocate
//! Everything the loop calls after an exit (system calls, faults, thread creation,
//! fork) runs while the guest side of the same thread may hold a lock in the middle
//! of `malloc` (glibc's `sysmalloc` calls `mmap` with its arena locked; `fork` locks
//! every arena). Those paths use only fixed tables made at `init` (`fixed`, `memory`)
//! and pre-reserved `Vec` capacity.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard};

use kvm_ioctls::{Kvm, VmFd};

use crate::error::{Error, Result};
use super::kvm;
use super::memory::{MemStats, Memory, PAGE};
use super::pagetable::Perms;
use super::{reserved, sys};
use super::vcpu::{Template, Vcpu};

/// Signal numbers 1..=64, indexed directly.
pub const NSIG: usize = 65;

/// Host stack of each thread in Dune mode (its `ThreadCtx` sits at the top).
pub const HOST_STACK: usize = 256 * 1024;

/// The VM and everything shared by its vCPUs.
pub struct State {
    pub(crate) kvm: Kvm,
    pub(crate) vm: VmFd,
    pub(crate) mem: Memory,
    pub(crate) template: Template,
    pub(crate) free_vcpus: Vec<Vcpu>,
    pub(crate) next_vcpu_id: u64,
    pub(crate) max_vcpus: usize,
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
    /// Signals delivered to a handler in the guest.
    pub signals: AtomicU64,
}

/// The exit counters.
pub static COUNTERS: Counters = Counters { syscalls: AtomicU64::new(0), traps: AtomicU64::new(0), interrupts: AtomicU64::new(0), signals: AtomicU64::new(0) };

/// Whether `exit_group` writes a summary of the counters to stderr
/// (`Options::stats_at_exit`, `DUNE_STATS=1`, `dune run --stats`).
pub static STATS_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// Writes one line with this process's exits by kind and its memslots to `fd`.
/// Allocation-free: called on the `exit_group` path.
pub fn write_stats(fd: i32) {
    use core::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut b = sys::FixedBuf::<256>::new();
    let pid = sys::getpid();
    let c = &COUNTERS;
    let _ = write!(
        b,
        "dune: stats: pid {pid}: {} system calls forwarded, {} faults reached the runtime, {} signals delivered, {} interrupted runs",
        c.syscalls.load(Relaxed),
        c.traps.load(Relaxed),
        c.signals.load(Relaxed),
        c.interrupts.load(Relaxed)
    );
    // try_lock: a thread of the program may have died holding the lock; the counters
    // above are still worth writing.
    if let Ok(g) = STATE.try_lock() {
        if let Some(st) = g.as_ref() {
            let m = st.mem.stats();
            let _ = write!(b, "; {} memslots ({} MiB)", m.memslots, m.memslot_bytes >> 20);
        }
    }
    let _ = writeln!(b);
    sys::write_all(fd, b.as_bytes());
}

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

/// x2APIC destination that reaches every vCPU (`send_msi`).
pub(crate) const MSI_BROADCAST: u8 = 0xff;

/// Sends `vector` to the local APIC whose x2APIC ID is `dest` ([`MSI_BROADCAST`]: every
/// vCPU's) through the in-kernel irqchip (`KVM_SIGNAL_MSI`: physical destination, fixed
/// delivery, edge). A vCPU takes it whenever it next has interrupts on.
pub(crate) fn send_msi(dest: u8, vector: u8) -> Result<()> {
    let msi = kvm_bindings::kvm_msi { address_lo: 0xfee0_0000 | (u32::from(dest) << 12), address_hi: 0, data: u32::from(vector), ..Default::default() };
    with_state(|st| st.vm.signal_msi(msi).map(drop).map_err(Error::kvm("KVM_SIGNAL_MSI")))
}

/// The runtime's numbers kept free for a forked child (see `State::take_vcpu`).
const FORK_ROOM: i32 = 8;

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
        // A thread never takes the last of the runtime's numbers: a forked child needs
        // some for its own VM, its vCPU and its map (the parent's threads' vCPU
        // descriptors are still open there). The vCPU made goes again (its id stays
        // used: KVM keeps a vCPU for the VM's life).
        if std::os::fd::AsRawFd::as_raw_fd(&v.fd) >= crate::host::reserved::app_floor().saturating_sub(FORK_ROOM) {
            drop(v);
            return Err(Error::TooManyVcpus(self.next_vcpu_id as usize));
        }
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
        self.vm = kvm::create_vm(&self.kvm, "KVM_CREATE_VM (forked child)")?;
        self.vm.set_tss_address(0xfffb_d000).map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
        self.vm.create_irq_chip().map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
        self.mem.reregister(&self.vm)?;
        // The child's memory is what the kernel gave it, not the parent's record: a
        // range marked MADV_DONTFORK is gone, and so is any user memory there.
        self.mem.resync_all(&self.vm)?;
        self.mem.prune_user(&self.vm)?;
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
    let base = match reserved::map(HOST_STACK, 0) {
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

/// Per-thread signal state, part of `ThreadCtx`.
pub struct ThreadSignals {
    /// Signals caught by the host, not yet delivered to the guest.
    pub pending: AtomicU64,
    /// Their `siginfo_t`, raw.
    pub infos: [core::cell::UnsafeCell<[u8; 128]>; NSIG],
    /// This vCPU's `kvm_run`, for `immediate_exit`.
    pub run: *mut kvm_bindings::kvm_run,
    /// A call with a temporary mask (sigsuspend, ppoll, pselect6, epoll_pwait) was
    /// interrupted: deliver whatever is pending, as the kernel does under that mask.
    pub ignore_mask_once: bool,
}

impl ThreadSignals {
    /// State for a thread whose vCPU has `run` mapped.
    pub fn new(run: *mut kvm_bindings::kvm_run) -> Self {
        ThreadSignals { pending: AtomicU64::new(0), infos: [const { core::cell::UnsafeCell::new([0; 128]) }; NSIG], run, ignore_mask_once: false }
    }
}

std::thread_local! {
    /// This thread's host context while it is in Dune mode. Const-initialized and
    /// without a destructor, so reading it is a plain TLS load: safe in a signal handler.
    static CURRENT: core::cell::Cell<*mut ThreadCtx> = const { core::cell::Cell::new(core::ptr::null_mut()) };
}

/// Records `ctx` as the calling thread's context (called by the host loop's owner).
pub fn set_current(ctx: *mut ThreadCtx) {
    CURRENT.with(|c| c.set(ctx));
}

/// The calling thread's context, if it is in Dune mode. Guest and host sides of a
/// thread share its TLS, so this works from either.
pub fn current() -> *mut ThreadCtx {
    CURRENT.with(|c| c.get())
}

/// The file descriptor of the calling thread's vCPU, if it is in Dune mode: for
/// `KVM_GET_STATS_FD` (exit counts per vCPU) and other per-vCPU queries. Only ioctls
/// that do not change the vCPU's state are safe on it.
pub fn current_vcpu_fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let ctx = current();
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

/// How the guest resumes after a call.
pub enum Resume {
    /// At the return address, like `sysret`.
    Normal,
    /// Through `dune_syscall_return_flush`: the page table changed under this vCPU.
    FlushTlb,
    /// With registers the call set itself (`rt_sigreturn`, a forked child's start).
    Restored,
}


