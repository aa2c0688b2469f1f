//! Everything else the program may ask: time and timers, who it is, the system's
//! name and load, futexes, `prctl` and `arch_prctl` (allowlisted), and resource
//! limits, some of which the monitor keeps for the program instead of applying them
//! to the process they share.

use super::state::{m, Thread};
use super::sys::{deny, fwd, neg, own_thread, EFAULT, EINVAL, EPERM, R};
use super::user::{copy_in, copy_out, cstr_in, opt, user, word};

/// The real uid the program was started with, when the sandbox runs under one of its
/// own (`confine::own_real_uid`); `u32::MAX`: none.
static STARTED_UID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);

/// Records the real uid the program sees (the sandbox's own is for Linux's counts).
pub fn set_started_uid(uid: u32) {
    STARTED_UID.store(uid, core::sync::atomic::Ordering::Relaxed);
}

fn started_uid() -> Option<u32> {
    Some(STARTED_UID.load(core::sync::atomic::Ordering::Relaxed)).filter(|&u| u != u32::MAX)
}

/// Calls with no pointer and no target but the caller (`getpid`, `sched_yield`,
/// `umask`, `alarm`, `setsid`…).
pub fn plain(n: i64, a: [u64; 6]) -> R {
    if n == libc::SYS_getuid {
        if let Some(uid) = started_uid() {
            return Ok(uid as i64);
        }
    }
    if n == libc::SYS_personality && a[0] != 0 && a[0] != 0xffff_ffff {
        return deny(&format!("personality({:#x})", a[0]), "only PER_LINUX is allowed", libc::EPERM);
    }
    fwd(n, a)
}

/// `getgroups(n, list)`, `getresuid`/`getresgid(r, e, s)`, `capget(hdr, data)`.
pub fn ids(n: i64, a: [u64; 6]) -> R {
    match n {
        libc::SYS_getgroups => user(a[1], a[0].saturating_mul(4))?,
        libc::SYS_capget => {
            // The header names a process (its pid): only this one or its own threads,
            // checked and passed on as a monitor copy (a sibling cannot change it
            // between the two), and copied back (the kernel writes the version there).
            let mut hdr = copy_in(a[0], 8)?;
            opt(a[1], 24)?;
            let pid = super::user::word32(&hdr, 4) as i32;
            if super::procs::self_pid(pid as i64).is_err() {
                return deny(&format!("capget(pid {pid})"), "a process outside the sandbox", libc::EPERM);
            }
            let r = fwd(n, [hdr.as_mut_ptr() as u64, a[1], 0, 0, 0, 0]);
            copy_out(a[0], &hdr)?;
            return r;
        }
        _ => {
            user(a[0], 4)?;
            user(a[1], 4)?;
            user(a[2], 4)?;
        }
    }
    if let Some(started) = started_uid().filter(|_| n == libc::SYS_getresuid) {
        // The kernel writes into monitor memory; the program sees the uid it started with.
        let mut ids = [0u32; 3];
        let [r, e, s] = &mut ids;
        fwd(n, [r as *mut u32 as u64, e as *mut u32 as u64, s as *mut u32 as u64, 0, 0, 0])?;
        ids[0] = started;
        for (i, id) in ids.iter().enumerate() {
            copy_out(a[i], &id.to_le_bytes())?;
        }
        return Ok(0);
    }
    fwd(n, a)
}

/// `getcpu(cpu, node, cache)`: the cache argument is unused by Linux; never passed.
pub fn getcpu(n: i64, a: [u64; 6]) -> R {
    opt(a[0], 4)?;
    opt(a[1], 4)?;
    fwd(n, [a[0], a[1], 0, 0, 0, 0])
}

/// Whether a clock id may be used: the system clocks, and the CPU clocks of this
/// process and its threads. A CPU clock id carries a pid (`(~pid << 3) | type`, bit
/// 2 for a thread's) that Linux checks no permission on: another process's CPU time,
/// or a timer tied to it, is not the program's. Dynamic clocks (type 3) are refused.
fn clock_allowed(clock: i32) -> bool {
    if clock >= 0 {
        return true;
    }
    let pid = !(clock >> 3);
    clock & 3 != 3 && super::procs::self_pid(pid as i64).is_ok()
}

/// The clocks, sleeps and timers: each pointer checked for its struct's size.
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn time(n: i64, a: [u64; 6]) -> R {
    use libc::*;
    if matches!(n, SYS_clock_gettime | SYS_clock_getres | SYS_clock_nanosleep) && !clock_allowed(a[0] as i32) {
        return deny(&format!("clock {}", a[0] as i32), "the CPU clock of a process outside the sandbox", EINVAL);
    }
    match n {
        SYS_clock_gettime | SYS_clock_getres => opt(a[1], 16)?,
        SYS_gettimeofday => {
            opt(a[0], 16)?;
            opt(a[1], 8)?;
        }
        SYS_time => opt(a[0], 8)?,
        SYS_nanosleep => {
            user(a[0], 16)?;
            opt(a[1], 16)?;
        }
        SYS_clock_nanosleep => {
            user(a[2], 16)?;
            opt(a[3], 16)?;
        }
        SYS_times => opt(a[0], 32)?,
        SYS_getitimer => user(a[1], 32)?,
        SYS_setitimer => {
            user(a[1], 32)?;
            opt(a[2], 32)?;
        }
        SYS_timer_settime => {
            user(a[2], 32)?;
            opt(a[3], 32)?;
        }
        SYS_timer_gettime => user(a[1], 32)?,
        _ => return Err(neg(ENOSYS)),
    }
    fwd(n, a)
}

/// `timer_create(clock, sevp, id)`: a thread-directed notification must name a
/// thread of this process, and the signal must be one the program may send itself.
pub fn timer_create(n: i64, a: [u64; 6]) -> R {
    if !clock_allowed(a[0] as i32) {
        return deny(&format!("timer_create(clock {})", a[0] as i32), "the CPU clock of a process outside the sandbox", libc::EINVAL);
    }
    let mut sev = None;
    if a[1] != 0 {
        let b = copy_in(a[1], 64)?;
        let signo = super::user::word32(&b, 8) as i32;
        let notify = super::user::word32(&b, 12) as i32;
        if notify != 1 /* SIGEV_NONE */ && !super::signals::sendable(signo as i64) {
            return deny(&format!("timer_create(signal {signo})"), "a signal the monitor keeps", libc::EINVAL);
        }
        if notify & 4 != 0 {
            let tid = super::user::word32(&b, 16) as i32;
            // SAFETY: getpid has no effect; tgkill with signal 0 only checks.
            if !own_thread(tid) {
                return Err(EINVAL);
            }
        }
        sev = Some(b);
    }
    user(a[2], 4)?;
    fwd(n, [a[0], sev.as_ref().map_or(0, |b| b.as_ptr() as u64), a[2], 0, 0, 0])
}

/// `uname`, `sysinfo`, `getrusage`: one struct written back.
pub fn info(n: i64, a: [u64; 6]) -> R {
    match n {
        libc::SYS_uname => user(a[0], 390)?,
        libc::SYS_sysinfo => user(a[0], 112)?,
        _ => user(a[1], 144)?,
    }
    fwd(n, a)
}

/// `futex(addr, op, val, timeout, addr2, val3)`.
pub fn futex(n: i64, a: [u64; 6]) -> R {
    user(a[0], 4)?;
    let op = (a[1] & 0x7f) as i32;
    // Priority-inheritance futexes name their owner by a thread id the kernel reads
    // from the program's memory, in the machine's pid space: a program could attach
    // kernel state to any process outside, and learn which pids exist. Not offered
    // (glibc then refuses PTHREAD_PRIO_INHERIT mutexes with ENOTSUP).
    if matches!(op, libc::FUTEX_LOCK_PI | libc::FUTEX_LOCK_PI2 | libc::FUTEX_TRYLOCK_PI | libc::FUTEX_UNLOCK_PI | libc::FUTEX_WAIT_REQUEUE_PI | libc::FUTEX_CMP_REQUEUE_PI) {
        return super::sys::deny("futex(.., FUTEX_*_PI)", "priority-inheritance futexes name threads outside the sandbox", libc::ENOSYS);
    }
    match op {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_LOCK_PI | libc::FUTEX_LOCK_PI2 | libc::FUTEX_WAIT_REQUEUE_PI => opt(a[3], 16)?,
        _ => {}
    }
    match op {
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP | libc::FUTEX_CMP_REQUEUE_PI | libc::FUTEX_WAIT_REQUEUE_PI => user(a[4], 4)?,
        _ => {}
    }
    fwd(n, a)
}

/// `prctl`: options by allowlist. `PR_SET_DUMPABLE` is the monitor's to answer: the
/// process stays non-dumpable (no core file, no `/proc/<pid>` access by others).
pub fn prctl(n: i64, a: [u64; 6]) -> R {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let name = cstr_in(a[1], 4096).map(|mut v| {
                v.truncate(15);
                v.push(0);
                v
            })?;
            fwd(n, [a[0], name.as_ptr() as u64, 0, 0, 0, 0])
        }
        libc::PR_GET_NAME => {
            user(a[1], 16)?;
            fwd(n, a)
        }
        libc::PR_GET_PDEATHSIG => {
            user(a[1], 4)?;
            fwd(n, a)
        }
        libc::PR_GET_DUMPABLE => Ok(m().dumpable.load(core::sync::atomic::Ordering::Relaxed) as i64),
        libc::PR_SET_DUMPABLE => {
            if a[1] > 1 {
                return Err(EINVAL);
            }
            m().dumpable.store(a[1] as i32, core::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        libc::PR_SET_PDEATHSIG => {
            if !super::signals::sendable(a[1] as i64) {
                return deny(&format!("prctl(PR_SET_PDEATHSIG, {})", a[1]), "a signal the monitor keeps", libc::EINVAL);
            }
            fwd(n, a)
        }
        libc::PR_SET_NO_NEW_PRIVS | libc::PR_GET_NO_NEW_PRIVS | libc::PR_GET_KEEPCAPS | libc::PR_CAPBSET_READ | libc::PR_GET_TIMERSLACK
        | libc::PR_SET_TIMERSLACK | libc::PR_GET_SECCOMP | libc::PR_SET_CHILD_SUBREAPER | libc::PR_GET_THP_DISABLE | libc::PR_SET_THP_DISABLE => fwd(n, a),
        o => deny(&format!("prctl({o})"), "option not in the sandbox's list", libc::EINVAL),
    }
}

/// `arch_prctl`: the program's FS base (in its own memory); GS belongs to the monitor.
pub fn arch_prctl(t: &mut Thread, a: [u64; 6]) -> R {
    const SET_FS: u64 = 0x1002;
    const GET_FS: u64 = 0x1003;
    match a[0] {
        SET_FS => {
            // The thread pointer must point into the program's own memory (0 too).
            if a[1] != 0 && !m().space().owns(a[1] & !4095, (a[1] & !4095) + 4096) {
                return deny(&format!("arch_prctl(ARCH_SET_FS, {:#x})", a[1]), "not the program's memory", libc::EPERM);
            }
            t.ctx.fs_base = a[1];
            Ok(0)
        }
        GET_FS => {
            copy_out(a[1], &t.ctx.fs_base.to_le_bytes())?;
            Ok(0)
        }
        0x1001 | 0x1004 => deny("arch_prctl(ARCH_SET_GS/ARCH_GET_GS)", "GS belongs to the monitor", libc::EPERM),
        c => deny(&format!("arch_prctl({c:#x})"), "not supported in the sandbox", libc::EINVAL),
    }
}

/// Limits the monitor keeps for the program: they would bind the monitor too, or
/// undo a layer of confinement (the process's core limit is 0 and stays so; its
/// pending-signal and message-queue limits are a share of the invoking user's,
/// `confine::user_namespace`).
const KEPT: &[u32] = &[libc::RLIMIT_CORE, libc::RLIMIT_AS, libc::RLIMIT_DATA, libc::RLIMIT_STACK, libc::RLIMIT_NPROC, libc::RLIMIT_SIGPENDING, libc::RLIMIT_MSGQUEUE];

/// Records the limits the monitor keeps, as the process has them now (at start,
/// before confinement lowers the core limit).
pub fn snapshot_rlimits() -> Vec<(u32, u64, u64)> {
    KEPT.iter()
        .map(|&r| {
            let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit writes one struct rlimit.
            unsafe { libc::getrlimit(r, &mut l) };
            (r, l.rlim_cur, l.rlim_max)
        })
        .collect()
}

/// `getrlimit(res, old)`, `setrlimit(res, new)`, and `prlimit64` on this process as
/// `[res, new, old]`.
pub fn rlimit(n: i64, a: [u64; 6]) -> R {
    let (res, new, old) = match n {
        libc::SYS_getrlimit => (a[0], 0, a[1]),
        libc::SYS_setrlimit => (a[0], a[1], 0),
        _ => (a[0], a[1], a[2]),
    };
    // Linux reads an unsigned int: decided on it, and that is what is passed on.
    let res = res as u32 as u64;
    if !KEPT.contains(&(res as u32)) {
        // The rest is the process's (RLIMIT_NOFILE through the runtime, which keeps
        // the program's own view of it).
        opt(new, 16)?;
        opt(old, 16)?;
        return fwd(libc::SYS_prlimit64, [0, res, new, old, 0, 0]);
    }
    let req = if new != 0 { Some(copy_in(new, 16)?) } else { None };
    let mut kept = m().rlimits.lock().unwrap_or_else(|e| e.into_inner());
    let Some(entry) = kept.iter_mut().find(|e| e.0 == res as u32) else { return Err(EINVAL) };
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&entry.1.to_le_bytes());
        b[8..].copy_from_slice(&entry.2.to_le_bytes());
        if !super::user::write_user(old, &b) {
            return Err(EFAULT);
        }
    }
    if let Some(b) = req {
        let (soft, hard) = (word(&b, 0), word(&b, 8));
        if soft > hard {
            return Err(EINVAL);
        }
        // Raising a hard limit takes a privilege the program does not have.
        if hard > entry.2 {
            return Err(EPERM);
        }
        *entry = (res as u32, soft, hard);
        if matches!(res as u32, libc::RLIMIT_AS | libc::RLIMIT_DATA) {
            let bytes = kept.iter().filter(|e| matches!(e.0, libc::RLIMIT_AS | libc::RLIMIT_DATA)).map(|e| e.1).min().unwrap_or(u64::MAX);
            // The space's lock is taken with no other held (fork takes them in order).
            drop(kept);
            m().space().rlimit_bytes = bytes;
        }
    }
    Ok(0)
}
