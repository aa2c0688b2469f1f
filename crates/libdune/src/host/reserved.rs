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
//! - **The application's descriptors.** The top of the reserved numbers (from
//!   [`app_floor`]) is for an application that runs untrusted code in ring 3 and keeps
//!   descriptors of its own (the sandbox's monitor): [`dup_app`] moves one there. Once
//!   the application says it guards the program's descriptor calls itself
//!   ([`set_app_mode`]), ring-0 calls may use those numbers; the runtime's own stay
//!   refused.
//! - **Descriptor numbers in flight.** A descriptor is always born at the lowest free
//!   number, below the program's limit, and moved up from there. Between the two a
//!   sibling thread could `dup2` another file onto that number or close it. So every
//!   such window holds [`pin`] (shared), and the calls that replace or close a given
//!   number (`close`, `dup2`, `dup3`, `close_range`) hold [`exclusive`] while they run:
//!   the guard takes it for the guest's calls, or, in application mode, the
//!   application for the program's.
//!
//! Layer 1 of the host: uses only `sys`. Tables are fixed and lock-free (or guarded
//! by a spin lock that is never held across a blocking call): they are used on exit
//! paths, which must not allocate.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

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
/// Descriptors an application may hold at once in the reserved numbers ([`dup_app`]).
pub const APP_ROOM: i32 = 1024;
/// Highest descriptor number the runtime places its own at (exclusive), whatever the
/// hard limit: the kernel's descriptor table grows to the highest open number and is
/// copied on fork, so it is kept to 64 Ki entries (512 KiB).
pub const FD_CEILING: i32 = 1 << 16;

/// First runtime descriptor number; `i32::MAX` until [`init_fds`].
static FD_BASE: AtomicI32 = AtomicI32::new(i32::MAX);
/// The runtime's descriptors end below this number (the soft limit while opening one).
static FD_END: AtomicI32 = AtomicI32::new(i32::MAX);
/// The application's descriptors start here (see [`dup_app`]).
static APP_FLOOR: AtomicI32 = AtomicI32::new(i32::MAX);
/// The application guards the program's descriptor calls itself ([`set_app_mode`]).
static APP_MODE: AtomicBool = AtomicBool::new(false);
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

/// Where the application's descriptors start (`i32::MAX` before [`init_fds`]).
pub fn app_floor() -> i32 {
    APP_FLOOR.load(Ordering::Acquire)
}

/// Whether `fd` (as a system-call argument) names a runtime descriptor: any reserved
/// number, or in application mode the runtime's part of them.
pub fn is_runtime_fd(fd: u64) -> bool {
    let fd = fd as i32;
    fd >= 0 && fd >= fd_base() && (!APP_RANGE_OPEN.load(Ordering::Acquire) || fd < app_floor())
}

/// Ring-0 calls may name the application's reserved numbers.
static APP_RANGE_OPEN: AtomicBool = AtomicBool::new(false);

/// Ring-0 calls may use the application's reserved numbers (its private duplicates);
/// the runtime still serializes the program's `close` and `dup2` itself.
pub fn open_app_range() {
    APP_RANGE_OPEN.store(true, Ordering::Release);
}

/// The application guards the program's descriptor calls (ring 3 cannot make a call
/// the runtime sees; ring 0 is the application): ring-0 calls may use the
/// application's reserved numbers, and the guard no longer serializes `close` and
/// `dup2` ([`exclusive`]) itself.
pub fn set_app_mode() {
    open_app_range();
    APP_MODE.store(true, Ordering::Release);
}

/// Whether [`set_app_mode`] was called.
pub fn app_mode() -> bool {
    APP_MODE.load(Ordering::Acquire)
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

/// The numbers for a hard limit: (first runtime number, first application number,
/// end of the reserved room). A tiny hard limit gives the program half of it and
/// splits the rest.
pub fn plan_fds(hard: u64) -> (i32, i32, i32) {
    let end = hard.min(FD_CEILING as u64) as i32;
    let base = (end - FD_ROOM - APP_ROOM).max(end / 2);
    let app = (end - APP_ROOM).max(base + (end - base) / 2);
    (base, app, end)
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
    let (base, app, end) = plan_fds(hard);
    let vhard = hard.min(base as u64);
    let vsoft = soft.min(vhard);
    if soft > vsoft {
        set_real_nofile(vsoft, hard);
    }
    SOFT.store(vsoft, Ordering::Release);
    HARD.store(vhard, Ordering::Release);
    FD_END.store(end, Ordering::Release);
    APP_FLOOR.store(app, Ordering::Release);
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
    let high = sys::check(unsafe { sys::syscall(libc::SYS_fcntl, fd as u64, libc::F_DUPFD_CLOEXEC as u64, at as u64) })? as i32;
    if base != i32::MAX && high >= app_floor() {
        // The runtime's part is full: the next number is the application's.
        // SAFETY: the duplicate just made, owned by nothing.
        unsafe { sys::syscall(libc::SYS_close, high as u64, 0, 0) };
        return Err(libc::EMFILE);
    }
    Ok(high)
}

/// A close-on-exec duplicate of `fd` at the application's reserved numbers
/// ([`app_floor`] and up), made with the soft limit raised for the moment. Runs on
/// the host side (the guest asks through the runtime's service exit).
pub fn dup_app(fd: i32) -> Result<i32, i32> {
    let floor = app_floor();
    if floor == i32::MAX {
        return Err(libc::EBADF);
    }
    // SAFETY: duplicating a descriptor of the process; no memory is passed.
    with_fd_room(|| sys::check(unsafe { sys::syscall(libc::SYS_fcntl, fd as u64, libc::F_DUPFD_CLOEXEC as u64, floor as u64) })).map(|f| f as i32)
}

// ---- descriptor numbers in flight -------------------------------------------------------

/// The lock of [`pin`] and [`exclusive`]: the number of pins, plus [`WRITER`] while a
/// call that replaces a number runs and [`WAITING`] while one waits for the pins.
static FD_LOCK: AtomicU32 = AtomicU32::new(0);
const WRITER: u32 = 1 << 31;
const WAITING: u32 = 1 << 30;

fn futex(word: &AtomicU32, op: i32, val: u32) {
    // SAFETY: a futex operation on a static word; no timeout, no second word.
    unsafe { sys::syscall6(libc::SYS_futex as u64, [word.as_ptr() as u64, op as u64, val as u64, 0, 0, 0]) };
}

std::thread_local! {
    /// Pins this thread holds, and whether it holds the exclusive side: a thread that
    /// already holds either never waits for a pin (the runtime may pin on the host
    /// side of an exit the application made while pinned, or while exclusive: reading
    /// `/proc/self/maps` for a fault), which would otherwise wait for itself.
    static HELD: core::cell::Cell<(u32, bool)> = const { core::cell::Cell::new((0, false)) };
}

/// Held while a descriptor sits at a number below the program's limit that is not
/// the program's (between its birth and its move up, or while the application uses
/// a temporary): no `close`, `dup2`, `dup3` or `close_range` can replace it meanwhile.
/// Shared: any number of threads may hold one, and a thread may nest them. Never hold
/// it across a call that can block for long.
pub struct Pin {
    /// Whether this pin is counted in the lock (not when taken under the exclusive
    /// side, which excludes everyone else already).
    counted: bool,
}

/// Takes a [`Pin`]: waits while a replacing call runs or waits, unless this thread
/// already holds a pin or the exclusive side.
pub fn pin() -> Pin {
    pin_with(WRITER | WAITING)
}

/// The runtime's own [`Pin`] (reading `/proc/self/maps`, making a vCPU): waits only
/// while a replacing call runs, not for one that waits. The runtime pins on the host
/// side of exits of a thread that may hold the application's locks (the sandbox's
/// monitor `mremap`s under the lock of the program's address space, and a pin of
/// another thread may wait for that lock while a `close` waits for the pin): waiting
/// behind the waiting `close` would close the circle.
pub fn pin_runtime() -> Pin {
    pin_with(WRITER)
}

fn pin_with(wait_for: u32) -> Pin {
    let (depth, excl) = HELD.with(|h| h.get());
    if excl {
        HELD.with(|h| h.set((depth + 1, excl)));
        return Pin { counted: false };
    }
    if depth > 0 {
        FD_LOCK.fetch_add(1, Ordering::AcqRel);
    } else {
        loop {
            let s = FD_LOCK.load(Ordering::Acquire);
            if s & wait_for == 0 {
                if FD_LOCK.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    break;
                }
                continue;
            }
            futex(&FD_LOCK, libc::FUTEX_WAIT, s);
        }
    }
    HELD.with(|h| h.set((depth + 1, excl)));
    Pin { counted: true }
}

impl Drop for Pin {
    fn drop(&mut self) {
        HELD.with(|h| {
            let (d, e) = h.get();
            h.set((d.saturating_sub(1), e));
        });
        if !self.counted {
            return;
        }
        let s = FD_LOCK.fetch_sub(1, Ordering::AcqRel);
        if s & !(WRITER | WAITING) == 1 && s & WAITING != 0 {
            futex(&FD_LOCK, libc::FUTEX_WAKE, i32::MAX as u32);
        }
    }
}

/// In a forked child, before anything else: the child has only the thread that
/// forked, so the descriptor lock holds that thread's pins and nothing of threads
/// that do not exist there (their pins would make the child's next `close` wait for
/// ever).
pub fn after_fork() {
    // Nor the room's lock: a thread that held it does not exist here.
    ROOM_LOCK.store(false, Ordering::Release);
    let (depth, excl) = HELD.with(|h| h.get());
    FD_LOCK.store(if excl { WRITER } else { depth }, Ordering::Release);
}

/// Held while a call that replaces or closes a given descriptor number runs: no
/// `Pin` of another thread is held meanwhile. One at a time; waiting ones go before
/// new pins. A thread holding a pin must not take it (it would wait for itself).
pub struct Exclusive(());

/// Takes [`Exclusive`].
pub fn exclusive() -> Exclusive {
    loop {
        let s = FD_LOCK.load(Ordering::Acquire);
        if s & !WAITING == 0 {
            if FD_LOCK.compare_exchange_weak(s, WRITER, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                HELD.with(|h| h.set((h.get().0, true)));
                return Exclusive(());
            }
            continue;
        }
        if s & WAITING == 0 && FD_LOCK.compare_exchange_weak(s, s | WAITING, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            continue;
        }
        futex(&FD_LOCK, libc::FUTEX_WAIT, s | WAITING);
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        HELD.with(|h| h.set((h.get().0, false)));
        FD_LOCK.store(0, Ordering::Release);
        futex(&FD_LOCK, libc::FUTEX_WAKE, i32::MAX as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_plan_keeps_the_table_small_and_leaves_room() {
        let top = 1 << 16;
        assert_eq!(plan_fds(1 << 20), (top - FD_ROOM - APP_ROOM, top - APP_ROOM, top));
        // 4096: half for the program.
        assert_eq!(plan_fds(4096), (2048, 4096 - APP_ROOM, 4096));
        // A tiny hard limit: half for the program, the rest split.
        assert_eq!(plan_fds(1024), (512, 768, 1024));
        assert_eq!(plan_fds(u64::MAX), (top - FD_ROOM - APP_ROOM, top - APP_ROOM, top));
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

    /// The descriptor lock is one per process: its tests take turns.
    static LOCK_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn a_thread_nests_pins_and_pins_under_its_own_exclusive() {
        let _turn = LOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let t = std::thread::spawn(|| {
            let a = pin();
            // Another thread waits for the exclusive side: a nested pin must not.
            let w = std::thread::spawn(|| drop(exclusive()));
            std::thread::sleep(std::time::Duration::from_millis(30));
            let b = pin();
            drop(b);
            drop(a);
            w.join().unwrap();
            let x = exclusive();
            let c = pin();
            drop(c);
            assert_eq!(FD_LOCK.load(Ordering::Acquire), WRITER);
            drop(x);
        });
        t.join().unwrap();
    }

    #[test]
    fn pins_exclude_a_replacing_call_and_not_each_other() {
        let _turn = LOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = (pin(), pin());
        assert_eq!(FD_LOCK.load(Ordering::Acquire), 2);
        let t = std::thread::spawn(|| {
            let _x = exclusive();
            assert_eq!(FD_LOCK.load(Ordering::Acquire) & WRITER, WRITER);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        // The writer waits for both pins, and new pins wait behind it.
        assert!(!t.is_finished());
        assert_ne!(FD_LOCK.load(Ordering::Acquire) & WAITING, 0);
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished());
        drop(b);
        t.join().unwrap();
        let _c = pin();
        assert_eq!(FD_LOCK.load(Ordering::Acquire), 1);
    }
}
