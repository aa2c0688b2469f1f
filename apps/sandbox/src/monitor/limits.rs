//! The policy's limits for the whole sandbox, not per process: threads, processes and
//! program memory are counted in one page every sandbox process shares.
//!
//! The page is an anonymous shared mapping made before the program's first
//! instruction; `fork` shares it with every child, and `execve` (the monitor's own
//! loader) keeps it. It is the monitor's memory: never user memory. Totals are
//! reserved with a compare-and-swap against the limit, so two processes racing at
//! the limit cannot both pass. Each process also keeps what it holds in a slot of
//! its own, so a process that dies without cleaning up (killed) is cleaned up by the
//! parent that reaps it.
//!
//! Where the kernel offers cgroups the same limits are also the kernel's
//! (`confine`); these counts are the monitor's line.

use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering::SeqCst};

/// Sandbox processes tracked at once (a fork beyond it fails with `EAGAIN`).
pub const MAX_PROCS: usize = 1024;

#[repr(C)]
struct Slot {
    /// The process using the slot, 0 when free.
    pid: AtomicI32,
    threads: AtomicU64,
    bytes: AtomicU64,
}

#[repr(C)]
struct Shared {
    procs: AtomicU64,
    threads: AtomicU64,
    bytes: AtomicU64,
    slots: [Slot; MAX_PROCS],
}

static SHARED: AtomicPtr<Shared> = AtomicPtr::new(core::ptr::null_mut());
/// This process's slot index + 1 (0: none yet).
static MINE: AtomicI32 = AtomicI32::new(0);

/// Limits (0: none).
static MAX: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Processes = 0,
    Threads = 1,
    Bytes = 2,
}

fn shared() -> Option<&'static Shared> {
    let p = SHARED.load(SeqCst);
    // SAFETY: set once by `init` to a shared mapping of the right size that is never
    // unmapped; all fields are atomics.
    (!p.is_null()).then(|| unsafe { &*p })
}

fn total(s: &Shared, k: Kind) -> &AtomicU64 {
    match k {
        Kind::Processes => &s.procs,
        Kind::Threads => &s.threads,
        Kind::Bytes => &s.bytes,
    }
}

/// Makes the shared page. Called once, before the supervisor forks the sandbox
/// (the supervisor frees the slots of orphans it reaps, see [`process_gone`]).
pub fn map() -> std::io::Result<()> {
    if !SHARED.load(SeqCst).is_null() {
        return Ok(());
    }
    let len = core::mem::size_of::<Shared>();
    // SAFETY: a fresh anonymous shared mapping; nothing else refers to it.
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    SHARED.store(p.cast(), SeqCst);
    Ok(())
}

/// Sets the limits and claims the first process's slot, with one process and one
/// thread counted (the page made by [`map`], or made now). Called once, before the
/// program runs.
pub fn init(processes: Option<u32>, threads: Option<u32>, bytes: Option<u64>) -> std::io::Result<()> {
    map()?;
    MAX[0].store(processes.map_or(0, u64::from), SeqCst);
    MAX[1].store(threads.map_or(0, u64::from), SeqCst);
    MAX[2].store(bytes.unwrap_or(0), SeqCst);
    let s = shared().ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
    s.procs.store(1, SeqCst);
    s.threads.store(1, SeqCst);
    claim_slot(1, 0);
    Ok(())
}

/// The limit on `k` (0: none).
pub fn limit(k: Kind) -> u64 {
    MAX[k as usize].load(SeqCst)
}

/// Reserves `n` more of `k` in the sandbox's total; false (nothing reserved) when the
/// limit would be passed.
pub fn reserve(k: Kind, n: u64) -> bool {
    let Some(s) = shared() else { return true };
    let max = limit(k);
    let t = total(s, k);
    let mut cur = t.load(SeqCst);
    loop {
        let new = cur.saturating_add(n);
        if max != 0 && new > max {
            return false;
        }
        match t.compare_exchange(cur, new, SeqCst, SeqCst) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    if let Some(slot) = my_slot(s) {
        match k {
            Kind::Threads => slot.threads.fetch_add(n, SeqCst),
            Kind::Bytes => slot.bytes.fetch_add(n, SeqCst),
            Kind::Processes => 0,
        };
    }
    true
}

/// Counts `n` more of `k` without checking the limit (what already exists: the
/// program's first image, the vDSO).
pub fn add(k: Kind, n: u64) {
    let Some(s) = shared() else { return };
    total(s, k).fetch_add(n, SeqCst);
    if let Some(slot) = my_slot(s) {
        match k {
            Kind::Threads => slot.threads.fetch_add(n, SeqCst),
            Kind::Bytes => slot.bytes.fetch_add(n, SeqCst),
            Kind::Processes => 0,
        };
    }
}

/// Gives back `n` of `k` reserved by this process.
pub fn release(k: Kind, n: u64) {
    let Some(s) = shared() else { return };
    if let Some(slot) = my_slot(s) {
        let held = match k {
            Kind::Threads => &slot.threads,
            Kind::Bytes => &slot.bytes,
            Kind::Processes => return,
        };
        let n = n.min(held.load(SeqCst));
        held.fetch_sub(n, SeqCst);
        let _ = total(s, k).fetch_update(SeqCst, SeqCst, |v| Some(v.saturating_sub(n)));
    }
}

fn my_slot(s: &Shared) -> Option<&Slot> {
    let i = MINE.load(SeqCst);
    (i > 0).then(|| &s.slots[i as usize - 1])
}

/// Claims a slot for this process holding `threads` threads and `bytes` bytes
/// (already in the totals).
fn claim_slot(threads: u64, bytes: u64) -> bool {
    let Some(s) = shared() else { return false };
    // SAFETY: getpid has no effect.
    let pid = unsafe { libc::getpid() };
    for (i, slot) in s.slots.iter().enumerate() {
        if slot.pid.compare_exchange(0, pid, SeqCst, SeqCst).is_ok() {
            slot.threads.store(threads, SeqCst);
            slot.bytes.store(bytes, SeqCst);
            MINE.store(i as i32 + 1, SeqCst);
            return true;
        }
    }
    false
}

/// Before `fork`: reserves a process, its thread and a copy of this process's
/// memory. False when a limit would be passed (nothing reserved).
pub fn before_fork(bytes: u64) -> bool {
    if !reserve(Kind::Processes, 1) {
        return false;
    }
    if !reserve_total(Kind::Threads, 1) {
        release_total(Kind::Processes, 1);
        return false;
    }
    if !reserve_total(Kind::Bytes, bytes) {
        release_total(Kind::Processes, 1);
        release_total(Kind::Threads, 1);
        return false;
    }
    true
}

/// `fork` failed after [`before_fork`]: gives the reservation back.
pub fn fork_failed(bytes: u64) {
    release_total(Kind::Processes, 1);
    release_total(Kind::Threads, 1);
    release_total(Kind::Bytes, bytes);
}

/// In the child after `fork`: a slot of its own for what [`before_fork`] reserved.
/// If none is free the child still runs, but its counts cannot be reclaimed if it is
/// killed.
pub fn after_fork_child(bytes: u64) {
    MINE.store(0, SeqCst);
    claim_slot(1, bytes);
}

fn reserve_total(k: Kind, n: u64) -> bool {
    let Some(s) = shared() else { return true };
    let max = limit(k);
    total(s, k).fetch_update(SeqCst, SeqCst, |v| (max == 0 || v.saturating_add(n) <= max).then(|| v.saturating_add(n))).is_ok()
}

fn release_total(k: Kind, n: u64) {
    if let Some(s) = shared() {
        let _ = total(s, k).fetch_update(SeqCst, SeqCst, |v| Some(v.saturating_sub(n)));
    }
}

/// Gives back everything process `pid` holds (it exited, or its parent reaped it).
/// Only the first caller for a slot does it. The supervisor, which reaps orphans,
/// calls it before the pid is free again (it waits with `WNOWAIT` first); a sandbox
/// parent, right after its `wait` returns (Linux hands pids out cyclically: a freed
/// pid comes back only after the whole pid range has been used).
pub fn process_gone(pid: i32) {
    let Some(s) = shared() else { return };
    for slot in &s.slots {
        if slot.pid.load(SeqCst) == pid && slot.pid.compare_exchange(pid, -1, SeqCst, SeqCst).is_ok() {
            let (t, b) = (slot.threads.swap(0, SeqCst), slot.bytes.swap(0, SeqCst));
            release_total(Kind::Processes, 1);
            release_total(Kind::Threads, t);
            release_total(Kind::Bytes, b);
            slot.pid.store(0, SeqCst);
            return;
        }
    }
}

/// Whether `pid` is one of the sandbox's processes (this one, or one holding a slot),
/// or a thread of this process.
pub fn is_sandbox_pid(pid: i32) -> bool {
    // SAFETY: getpid has no effect; tgkill with signal 0 only checks that `pid` is a
    // thread of this process.
    if pid == unsafe { libc::getpid() } || unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), pid, 0) } == 0 {
        return true;
    }
    shared().is_some_and(|s| s.slots.iter().any(|slot| slot.pid.load(SeqCst) == pid))
}

/// What this process holds in its slot (threads, bytes).
pub fn mine() -> (u64, u64) {
    shared().and_then(my_slot).map_or((0, 0), |s| (s.threads.load(SeqCst), s.bytes.load(SeqCst)))
}

/// The sandbox's totals (processes, threads, bytes).
pub fn totals() -> (u64, u64, u64) {
    shared().map_or((0, 0, 0), |s| (s.procs.load(SeqCst), s.threads.load(SeqCst), s.bytes.load(SeqCst)))
}
