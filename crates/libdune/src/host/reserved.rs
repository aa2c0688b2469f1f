//! What the program may not touch: the runtime's own memory and descriptors.
//!
//! A program in Dune mode may legally do anything to its own process: unmap or remap
//! any address, close every descriptor, lower its limits. The runtime lives in the
//! same process, so it keeps its resources out of the program's way:
//!
//! - **Memory.** Every mapping the runtime makes for itself (host stacks, the arena of
//!   page tables and vCPU areas, fixed tables, `kvm_run` areas) is recorded here.
//!   `munmap`, `mmap(MAP_FIXED)`, `mremap`, `mprotect` and destructive `madvise` calls
//!   that overlap one fail with `EPERM` (`exits::guard`), and nothing is lost.
//! - **Descriptors.** The runtime's descriptors (the KVM device, the VM, the vCPUs)
//!   live at numbers at or above [`fd_base`], above every number the program can use:
//!   the program sees `RLIMIT_NOFILE` capped below them (`exits::guard` answers
//!   `getrlimit`/`setrlimit`/`prlimit64` from [`limits`]), the kernel enforces the
//!   program's soft limit, and every call that names one of them fails with `EBADF`
//!   as for a descriptor that is not open. The runtime opens its descriptors with the
//!   soft limit raised for a moment ([`with_fd_room`]), so a program that exhausted or
//!   lowered its limit does not stop the runtime.
//!
//! Layer 1 of the host: uses only `sys`. Tables are fixed and lock-free (or guarded
//! by a spin lock that is never held across a blocking call): they are used on exit
//! paths, which must not allocate.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

use super::sys;

// ---- memory ------------------------------------------------------------------------

/// Runtime mappings recorded at once: host stacks and `kvm_run` areas (two per
/// vCPU), arena chunks (at most 256), fixed tables (a few).
const MAX_RANGES: usize = 4096;

/// `[start, end)` of each recorded mapping; a free slot has start 0.
static RANGES: [(AtomicU64, AtomicU64); MAX_RANGES] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_RANGES];
/// Slots below this index may be in use.
static RANGES_HIGH: AtomicUsize = AtomicUsize::new(0);

/// Bumped whenever a runtime mapping is recorded or forgotten.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Changes whenever the set of runtime mappings changes (see
/// `runtime::memory_generation`).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Records `[start, start+len)` as runtime memory. Returns false when the table is full
/// (the mapping then works but is not protected).
pub fn record(start: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    for (i, (s, e)) in RANGES.iter().enumerate() {
        if s.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            e.store(start + len, Ordering::Release);
            RANGES_HIGH.fetch_max(i + 1, Ordering::AcqRel);
            GENERATION.fetch_add(1, Ordering::AcqRel);
            return true;
        }
    }
    false
}

/// Forgets the mapping that starts at `start` (before the runtime unmaps it).
pub fn forget(start: u64) {
    let high = RANGES_HIGH.load(Ordering::Acquire);
    for (s, e) in &RANGES[..high] {
        if s.load(Ordering::Acquire) == start {
            e.store(0, Ordering::Release);
            s.store(0, Ordering::Release);
            GENERATION.fetch_add(1, Ordering::AcqRel);
            return;
        }
    }
}

/// Whether `[start, end)` overlaps runtime memory.
pub fn overlaps(start: u64, end: u64) -> bool {
    let high = RANGES_HIGH.load(Ordering::Acquire);
    RANGES[..high].iter().any(|(s, e)| {
        let (s, e) = (s.load(Ordering::Acquire), e.load(Ordering::Acquire));
        s != 0 && s < end && start < e
    })
}

/// Calls `f` with each recorded runtime mapping `(start, end)`.
pub fn for_each_range(mut f: impl FnMut(u64, u64)) {
    let high = RANGES_HIGH.load(Ordering::Acquire);
    for (s, e) in &RANGES[..high] {
        let (s, e) = (s.load(Ordering::Acquire), e.load(Ordering::Acquire));
        if s != 0 && e > s {
            f(s, e);
        }
    }
}

/// An anonymous read-write mapping for the runtime, recorded as runtime memory.
pub fn map(len: usize, extra_flags: i32) -> Result<*mut u8, i32> {
    let p = sys::mmap_anon(len, extra_flags)?;
    record(p as u64, len as u64);
    Ok(p)
}

/// Unmaps a mapping made with [`map`].
///
/// # Safety
/// Nothing may reference the range afterwards.
pub unsafe fn unmap(addr: *mut u8, len: usize) {
    forget(addr as u64);
    // SAFETY: the caller owns the range.
    unsafe { sys::munmap(addr, len) };
}

// ---- descriptors -------------------------------------------------------------------

/// Descriptors the runtime may hold at once: the KVM device, the VM, one per vCPU, a
/// few spare. Threads in Dune mode beyond this fail to start with `EAGAIN`.
pub const FD_ROOM: i32 = 1040;
/// Highest descriptor number the runtime places its own at (exclusive), whatever the
/// hard limit: the kernel's descriptor table grows to the highest open number and is
/// copied on fork, so it is kept to 64 Ki entries (512 KiB).
pub const FD_CEILING: i32 = 1 << 16;

/// First runtime descriptor number; `i32::MAX` until [`init_fds`].
static FD_BASE: AtomicI32 = AtomicI32::new(i32::MAX);
/// The runtime's descriptors end below this number (the soft limit while opening one).
static FD_END: AtomicI32 = AtomicI32::new(i32::MAX);
/// `RLIMIT_NOFILE` as the program sees it (soft, hard).
static SOFT: AtomicU64 = AtomicU64::new(0);
static HARD: AtomicU64 = AtomicU64::new(0);
/// Serializes the moments the soft limit is raised.
static ROOM_LOCK: AtomicBool = AtomicBool::new(false);

/// The first descriptor number reserved for the runtime: the program can use every
/// number below it and none above.
pub fn fd_base() -> i32 {
    FD_BASE.load(Ordering::Acquire)
}

/// Whether `fd` (as a system-call argument) names a runtime descriptor.
pub fn is_runtime_fd(fd: u64) -> bool {
    let fd = fd as i32;
    fd >= 0 && fd >= fd_base()
}

/// `RLIMIT_NOFILE` as the program sees it.
pub fn limits() -> (u64, u64) {
    (SOFT.load(Ordering::Acquire), HARD.load(Ordering::Acquire))
}

/// Sets the program's view of `RLIMIT_NOFILE` and the real soft limit that enforces it.
/// `soft <= hard <= fd_base()` is the caller's to check. Returns the raw result.
pub fn set_limits(soft: u64, hard: u64) -> i64 {
    let _g = RoomGuard::lock();
    let (_, real_hard) = real_nofile();
    let ret = set_real_nofile(soft, real_hard);
    if ret == 0 {
        SOFT.store(soft, Ordering::Release);
        HARD.store(hard, Ordering::Release);
    }
    ret
}

fn real_nofile() -> (u64, u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit64 on this process writes one struct rlimit.
    unsafe { sys::syscall6(libc::SYS_prlimit64 as u64, [0, libc::RLIMIT_NOFILE as u64, 0, &mut l as *mut _ as u64, 0, 0]) };
    (l.rlim_cur, l.rlim_max)
}

fn set_real_nofile(soft: u64, hard: u64) -> i64 {
    let l = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: prlimit64 on this process reads one struct rlimit.
    unsafe { sys::syscall6(libc::SYS_prlimit64 as u64, [0, libc::RLIMIT_NOFILE as u64, &l as *const _ as u64, 0, 0, 0]) }
}

/// The numbers for a hard limit: (first runtime number, end of the runtime's room).
pub fn plan_fds(hard: u64) -> (i32, i32) {
    let end = hard.min(FD_CEILING as u64) as i32;
    let base = (end - FD_ROOM).max(end / 2);
    (base, end)
}

/// Reserves the descriptor numbers at and above [`plan_fds`]'s base for the runtime
/// and caps the program's `RLIMIT_NOFILE` below them. Idempotent; inherited by forked
/// children (same numbers, same limits).
pub fn init_fds() {
    let _g = RoomGuard::lock();
    if FD_BASE.load(Ordering::Acquire) != i32::MAX {
        return;
    }
    let (soft, hard) = real_nofile();
    let (base, end) = plan_fds(hard);
    let vhard = hard.min(base as u64);
    let vsoft = soft.min(vhard);
    if soft > vsoft {
        set_real_nofile(vsoft, hard);
    }
    SOFT.store(vsoft, Ordering::Release);
    HARD.store(vhard, Ordering::Release);
    FD_END.store(end, Ordering::Release);
    FD_BASE.store(base, Ordering::Release);
}

struct RoomGuard;

impl RoomGuard {
    fn lock() -> RoomGuard {
        while ROOM_LOCK.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            core::hint::spin_loop();
        }
        RoomGuard
    }
}

impl Drop for RoomGuard {
    fn drop(&mut self) {
        ROOM_LOCK.store(false, Ordering::Release);
    }
}

/// Runs `f` with the real soft limit raised to the end of the runtime's room, so the
/// runtime can open descriptors when the program has used up or lowered its own
/// limit. Other threads of the program could open descriptors above their limit for
/// that moment; nothing else changes.
pub fn with_fd_room<T>(f: impl FnOnce() -> T) -> T {
    let _g = RoomGuard::lock();
    let end = FD_END.load(Ordering::Acquire);
    let (soft, hard) = real_nofile();
    let raised = end != i32::MAX && (end as u64) > soft && (end as u64) <= hard;
    if raised {
        set_real_nofile(end as u64, hard);
    }
    let r = f();
    if raised {
        set_real_nofile(soft, hard);
    }
    r
}

/// A close-on-exec duplicate of runtime descriptor `fd` at the runtime's numbers
/// (`fd` stays open: its owner closes it). Call inside [`with_fd_room`]: the numbers
/// lie above the program's soft limit. Before [`init_fds`] the duplicate goes
/// wherever the kernel puts it.
pub fn dup_high(fd: i32) -> Result<i32, i32> {
    let base = fd_base();
    let at = if base == i32::MAX { 0 } else { base };
    // SAFETY: duplicating a descriptor the runtime owns; no memory is passed.
    sys::check(unsafe { sys::syscall(libc::SYS_fcntl, fd as u64, libc::F_DUPFD_CLOEXEC as u64, at as u64) }).map(|f| f as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_plan_keeps_the_table_small_and_leaves_room() {
        assert_eq!(plan_fds(1 << 20), ((1 << 16) - FD_ROOM, 1 << 16));
        assert_eq!(plan_fds(4096), (4096 - FD_ROOM, 4096));
        // A tiny hard limit: half for the program, half for the runtime.
        assert_eq!(plan_fds(1024), (512, 1024));
        assert_eq!(plan_fds(u64::MAX), ((1 << 16) - FD_ROOM, 1 << 16));
    }

    #[test]
    fn ranges_are_recorded_found_and_forgotten() {
        // Addresses no real mapping uses in this test process.
        let a = 0x7000_0000_0000u64;
        assert!(!overlaps(a, a + 0x1000));
        assert!(record(a, 0x3000));
        assert!(overlaps(a + 0x2000, a + 0x2001));
        assert!(overlaps(a - 0x1000, a + 1));
        assert!(!overlaps(a + 0x3000, a + 0x4000));
        assert!(!overlaps(a - 0x1000, a));
        forget(a);
        assert!(!overlaps(a, a + 0x3000));
    }
}
