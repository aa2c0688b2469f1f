//! Exitless forwarding (`--exitless`): system calls the monitor forwards to Linux
//! without a VM exit in the common case.
//!
//! Every forwarded call is normally one exit to user space (`KVM_RUN` returns, the
//! runtime makes the call, `KVM_RUN` again): about 1–3 µs on hardware, several times
//! the original Dune's in-kernel `vmcall`. Here each program thread gets a *helper*:
//! a plain Linux thread (made before the process entered Dune mode, so it is not in
//! the VM) that polls a request slot in shared memory. The monitor writes the call
//! into the slot and polls for the answer in ring 0; the helper makes the call and
//! writes the result. Neither side leaves its CPU: no VM exit at all.
//!
//! - Only calls whose effect does not depend on the calling thread go this way (I/O
//!   on descriptors, sockets, `epoll`); everything else is forwarded as before.
//! - Waiting is bounded: after a short spin, the monitor sleeps on a futex (one exit,
//!   as before) and the helper wakes it; an idle helper sleeps too, and a request to
//!   a sleeping helper costs one exit to wake it. So a busy server pays no exits, an
//!   idle one burns no CPU.
//! - Signals: the helper blocks every signal but the monitor's own. If a signal for
//!   the program arrives while its call waits in the helper (a blocking `epoll_wait`),
//!   the monitor interrupts the helper with that signal, and the call returns `EINTR`
//!   as it would have.
//! - It needs a CPU for the helper to poll on: with one CPU it only adds latency.
//! - Threads take helpers from a fixed pool; a thread without one, and forked
//!   children (who have no helpers: `fork` copies only the calling thread), forward
//!   calls as before.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;

use super::signals;

/// Spins before sleeping: the monitor waiting for an answer, the helper for work.
const GUEST_SPINS: u32 = 20_000;
const HELPER_SPINS: u32 = 200_000;

/// One request slot, shared by a monitor thread and its helper.
#[repr(C, align(64))]
pub struct Slot {
    /// Bumped by the monitor for each request (the helper's futex word).
    req: AtomicU32,
    /// Set to `req`'s value by the helper when the answer is ready (the monitor's
    /// futex word).
    done: AtomicU32,
    /// The helper is asleep on `req`.
    helper_sleeps: AtomicU32,
    /// The monitor is asleep on `done`.
    guest_sleeps: AtomicU32,
    nr: AtomicU64,
    args: [AtomicU64; 6],
    ret: AtomicU64,
    /// The helper's thread id (to interrupt it).
    tid: AtomicI32,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            req: AtomicU32::new(0),
            done: AtomicU32::new(0),
            helper_sleeps: AtomicU32::new(0),
            guest_sleeps: AtomicU32::new(0),
            nr: AtomicU64::new(0),
            args: [const { AtomicU64::new(0) }; 6],
            ret: AtomicU64::new(0),
            tid: AtomicI32::new(0),
        }
    }
}

/// The pool of helpers' slots not in use by a program thread.
static FREE: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

std::thread_local! {
    /// This monitor thread's slot, if it has a helper.
    static MINE: core::cell::Cell<Option<&'static Slot>> = const { core::cell::Cell::new(None) };
}

fn futex(word: &AtomicU32, op: i32, val: u32) -> i64 {
    // SAFETY: a futex operation on a word of a 'static slot; no timeout.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, 0usize, 0usize, 0u32) as i64 }
}

/// The helper: makes the calls written to its slot, forever.
fn helper(slot: &'static Slot) {
    // Only the monitor's own signal may reach a helper (to interrupt a call).
    // SAFETY: a full set minus one signal, applied to this thread.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, signals::MONITOR_SIGNAL);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, core::ptr::null_mut());
    }
    // SAFETY: gettid has no effect.
    slot.tid.store(unsafe { libc::syscall(libc::SYS_gettid) } as i32, SeqCst);
    let mut last = slot.req.load(SeqCst);
    loop {
        let mut spins = 0;
        while slot.req.load(SeqCst) == last {
            spins += 1;
            if spins < HELPER_SPINS {
                core::hint::spin_loop();
                continue;
            }
            slot.helper_sleeps.store(1, SeqCst);
            if slot.req.load(SeqCst) == last {
                futex(&slot.req, libc::FUTEX_WAIT, last);
            }
            slot.helper_sleeps.store(0, SeqCst);
            spins = 0;
        }
        last = slot.req.load(SeqCst);
        let a: [u64; 6] = core::array::from_fn(|i| slot.args[i].load(SeqCst));
        // SAFETY: the monitor checked this call and its arguments exactly as for the
        // ordinary forwarding path, and waits until the answer is written.
        let r = unsafe { libc::syscall(slot.nr.load(SeqCst) as i64, a[0], a[1], a[2], a[3], a[4], a[5]) };
        let r = if r == -1 { -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64) } else { r };
        slot.ret.store(r as u64, SeqCst);
        slot.done.store(last, SeqCst);
        if slot.guest_sleeps.load(SeqCst) != 0 {
            futex(&slot.done, libc::FUTEX_WAKE, 1);
        }
    }
}

/// Starts `n` helpers. Called before the process enters Dune mode, so that they
/// are ordinary Linux threads.
pub fn start_helpers(n: usize) -> std::io::Result<()> {
    for _ in 0..n {
        let slot: &'static Slot = Box::leak(Box::new(Slot::new()));
        std::thread::Builder::new().name("dune-exitless".into()).stack_size(64 * 1024).spawn(move || helper(slot))?;
        while slot.tid.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        FREE.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
    }
    Ok(())
}

/// The pool, locked (a forking thread holds it across `fork`).
pub fn lock_pool() -> std::sync::MutexGuard<'static, Vec<&'static Slot>> {
    FREE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives the calling program thread a helper, if one is free.
pub fn attach() {
    let s = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    MINE.with(|m| m.set(s));
}

/// Returns the calling thread's helper to the pool (thread exit).
pub fn detach() {
    if let Some(s) = MINE.with(|m| m.take()) {
        FREE.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }
}

/// In a forked child: no helper exists there.
pub fn forget_after_fork() {
    MINE.with(|m| m.set(None));
    FREE.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Whether call `nr` may be made by another thread with the same result.
pub fn thread_agnostic(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_getpid | libc::SYS_read | libc::SYS_write | libc::SYS_readv | libc::SYS_writev | libc::SYS_pread64 | libc::SYS_pwrite64
            | libc::SYS_sendfile | libc::SYS_recvfrom | libc::SYS_sendto | libc::SYS_recvmsg | libc::SYS_sendmsg
            | libc::SYS_accept | libc::SYS_accept4 | libc::SYS_epoll_wait | libc::SYS_epoll_ctl | libc::SYS_close
            | libc::SYS_fstat | libc::SYS_lseek | libc::SYS_shutdown | libc::SYS_setsockopt
            | libc::SYS_getsockopt | libc::SYS_poll
    )
}

/// Makes call `nr` through this thread's helper; `None` when the thread has none
/// (the caller forwards it the ordinary way).
pub fn call(nr: i64, a: [u64; 6]) -> Option<i64> {
    let slot = MINE.with(|m| m.get())?;
    slot.nr.store(nr as u64, SeqCst);
    for (i, v) in a.iter().enumerate() {
        slot.args[i].store(*v, SeqCst);
    }
    let seq = slot.req.load(SeqCst).wrapping_add(1);
    slot.req.store(seq, SeqCst);
    if slot.helper_sleeps.load(SeqCst) != 0 {
        // One exit to wake an idle helper.
        raw(libc::SYS_futex, [slot.req.as_ptr() as u64, libc::FUTEX_WAKE as u64, 1, 0, 0, 0]);
    }
    let mut spins = 0;
    let mut interrupted = false;
    while slot.done.load(SeqCst) != seq {
        spins += 1;
        if spins < GUEST_SPINS {
            core::hint::spin_loop();
            continue;
        }
        // A long call (a blocking wait): sleep until the helper answers, and let a
        // signal for the program interrupt it, as it would the call itself.
        if !interrupted && signals::program_signal_pending() {
            interrupt(slot);
            interrupted = true;
        }
        slot.guest_sleeps.store(1, SeqCst);
        if slot.done.load(SeqCst) != seq {
            let r = raw(libc::SYS_futex, [slot.done.as_ptr() as u64, libc::FUTEX_WAIT as u64, seq.wrapping_sub(1) as u64, 0, 0, 0]);
            if r == -(libc::EINTR as i64) && !interrupted && signals::program_signal_pending() {
                interrupt(slot);
                interrupted = true;
            }
        }
        slot.guest_sleeps.store(0, SeqCst);
        spins = 0;
    }
    Some(slot.ret.load(SeqCst) as i64)
}

/// A system call of the monitor's own (a futex, a signal to a helper): `-errno` on
/// failure.
fn raw(nr: i64, a: [u64; 6]) -> i64 {
    // SAFETY: futex and tgkill calls on the monitor's own words and threads.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 { -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64) } else { r }
}

/// Interrupts the helper's call with the monitor's signal (it returns `EINTR`).
fn interrupt(slot: &Slot) {
    // SAFETY: getpid has no effect.
    let pid = unsafe { libc::getpid() } as u64;
    raw(libc::SYS_tgkill, [pid, slot.tid.load(SeqCst) as u64, signals::MONITOR_SIGNAL as u64, 0, 0, 0]);
}
