//! Signals: handlers, faults fixed by a handler, timers, restarts, SIGCHLD,
//! sigaltstack, per-thread signals, default actions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{current_mask, enter};

static SEEN: AtomicU64 = AtomicU64::new(0);
static SEEN_INFO: AtomicU64 = AtomicU64::new(0);
static SEEN_FLAGS: AtomicU64 = AtomicU64::new(0);

/// Bits recorded by handlers into SEEN_FLAGS.
const IN_DUNE: u64 = 1;
const SIG_BLOCKED_INSIDE: u64 = 2;
const ON_ALTSTACK: u64 = 4;

fn install(sig: i32, handler: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void), flags: i32) {
    // SAFETY: installing a handler with a zeroed (empty) mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_SIGINFO | flags;
        check!(libc::sigaction(sig, &sa, std::ptr::null_mut()) == 0);
    }
}

fn blocked(sig: i32) -> bool {
    // SAFETY: a mask query into a local.
    unsafe { current_mask() & (1 << (sig - 1)) != 0 }
}

extern "C" fn record(sig: i32, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    let mut flags = 0;
    if libdune::in_dune_mode() {
        flags |= IN_DUNE;
    }
    if blocked(sig) {
        flags |= SIG_BLOCKED_INSIDE;
    }
    SEEN_FLAGS.fetch_or(flags, Ordering::SeqCst);
    // SAFETY: the kernel (or the runtime) passes a valid siginfo.
    let pid = unsafe { (*info).si_pid() };
    SEEN_INFO.store(pid as u64, Ordering::SeqCst);
    SEEN.fetch_add(1, Ordering::SeqCst);
}

/// A handler installed in Dune mode runs in Dune mode, with siginfo, the signal
/// blocked inside; the mask is restored after.
pub(crate) fn signal_handler() {
    enter();
    install(libc::SIGUSR1, record, 0);
    // SAFETY: signalling ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    check!(SEEN.load(Ordering::SeqCst) == 1, "handler ran {} times", SEEN.load(Ordering::SeqCst));
    let f = SEEN_FLAGS.load(Ordering::SeqCst);
    check!(f & IN_DUNE != 0, "handler did not run in Dune mode");
    check!(f & SIG_BLOCKED_INSIDE != 0, "signal not blocked inside its handler");
    check!(SEEN_INFO.load(Ordering::SeqCst) == std::process::id() as u64, "si_pid wrong");
    check!(!blocked(libc::SIGUSR1), "mask not restored after the handler");
    // A handler installed before enter() also runs in Dune mode (see signal-thread).
}

static FAULT_PAGE: AtomicU64 = AtomicU64::new(0);

extern "C" fn fix_fault(_sig: i32, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // SAFETY: valid siginfo for SIGSEGV; the page is ours.
    unsafe {
        let addr = (*info).si_addr() as u64;
        let page = FAULT_PAGE.load(Ordering::SeqCst);
        if addr == page && (*info).si_code == 2 /* SEGV_ACCERR */ && libdune::in_dune_mode() {
            SEEN.fetch_add(1, Ordering::SeqCst);
            libc::mprotect(page as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE);
        } else {
            libc::_exit(3);
        }
    }
}

/// A SIGSEGV handler in Dune mode gets the address, fixes the protection, and the
/// faulting write is retried.
pub(crate) fn signal_fault_handler() {
    enter();
    // SAFETY: a fresh mapping, written only after the handler opens it.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        check!(p != libc::MAP_FAILED);
        FAULT_PAGE.store(p as u64, Ordering::SeqCst);
        install(libc::SIGSEGV, fix_fault, 0);
        std::ptr::write_volatile(p as *mut u64, 0xabcd);
        check!(std::ptr::read_volatile(p as *const u64) == 0xabcd);
    }
    check!(SEEN.load(Ordering::SeqCst) == 1);
}

/// setitimer and timer_create deliver to handlers in Dune mode.
pub(crate) fn signal_timers() {
    enter();
    install(libc::SIGALRM, record, libc::SA_RESTART);
    let tv = libc::timeval { tv_sec: 0, tv_usec: 2000 };
    let it = libc::itimerval { it_interval: tv, it_value: tv };
    // SAFETY: arming a timer with valid structs.
    check!(unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) } == 0);
    let t0 = Instant::now();
    let mut x = 0u64;
    while SEEN.load(Ordering::SeqCst) < 5 && t0.elapsed() < Duration::from_secs(20) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x.is_multiple_of(1024) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let zero = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: 0 } };
    // SAFETY: disarming.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &zero, std::ptr::null_mut()) };
    check!(SEEN.load(Ordering::SeqCst) >= 5, "setitimer: {} signals", SEEN.load(Ordering::SeqCst));
    check!(SEEN_FLAGS.load(Ordering::SeqCst) & IN_DUNE != 0);
    // POSIX timer with a real-time signal.
    let rt = libc::SIGRTMIN() + 3;
    install(rt, record, 0);
    let before = SEEN.load(Ordering::SeqCst);
    // SAFETY: creating, arming and deleting a POSIX timer with valid structs.
    unsafe {
        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_SIGNAL;
        sev.sigev_signo = rt;
        let mut timer: libc::timer_t = std::ptr::null_mut();
        check!(libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer) == 0);
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: libc::timespec { tv_sec: 0, tv_nsec: 5_000_000 } };
        check!(libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) == 0);
        let t0 = Instant::now();
        while SEEN.load(Ordering::SeqCst) == before && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        libc::timer_delete(timer);
    }
    check!(SEEN.load(Ordering::SeqCst) == before + 1, "timer_create signal not delivered once");
}

extern "C" fn count_only(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    SEEN.fetch_add(1, Ordering::SeqCst);
}

/// A blocking read interrupted by a signal: restarted with SA_RESTART, EINTR without.
pub(crate) fn signal_restart() {
    enter();
    let one_shot = |ms: i64| {
        let it = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: ms * 1000 } };
        // SAFETY: arming a one-shot timer.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
    };
    for restart in [true, false] {
        install(libc::SIGALRM, count_only, if restart { libc::SA_RESTART } else { 0 });
        let mut fds = [0; 2];
        // SAFETY: a pipe into a local array.
        check!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0);
        let w = fds[1];
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: writing one byte to our pipe.
            unsafe { libc::write(w, b"x".as_ptr().cast(), 1) };
        });
        let before = SEEN.load(Ordering::SeqCst);
        one_shot(30);
        let mut b = [0u8; 1];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
        let err = std::io::Error::last_os_error().raw_os_error();
        check!(SEEN.load(Ordering::SeqCst) == before + 1, "SIGALRM not handled during read");
        if restart {
            check!(n == 1 && b[0] == b'x', "SA_RESTART read returned {n} ({err:?})");
        } else {
            check!(n == -1 && err == Some(libc::EINTR), "read without SA_RESTART returned {n}");
        }
        check!(writer.join().is_ok());
        // SAFETY: closing our fds.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}

/// SIGCHLD reaches its handler in Dune mode when a forked child exits.
pub(crate) fn sigchld() {
    enter();
    install(libc::SIGCHLD, record, libc::SA_RESTART);
    // SAFETY: fork in a single-threaded process; the child exits at once.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: exit the child without destructors.
        unsafe { libc::_exit(0) };
    }
    let t0 = Instant::now();
    while SEEN.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    check!(SEEN.load(Ordering::SeqCst) == 1, "SIGCHLD not delivered");
    check!(SEEN_INFO.load(Ordering::SeqCst) == pid as u64, "si_pid is not the child's");
    let mut st = 0;
    // SAFETY: reaping our child.
    check!(unsafe { libc::waitpid(pid, &mut st, 0) } == pid);
}

static ALT: AtomicU64 = AtomicU64::new(0);
const ALT_SIZE: usize = 64 * 1024;

extern "C" fn on_alt(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let here = &sig as *const i32 as u64;
    let base = ALT.load(Ordering::SeqCst);
    if (base..base + ALT_SIZE as u64).contains(&here) {
        SEEN_FLAGS.fetch_or(ON_ALTSTACK, Ordering::SeqCst);
    }
    record(sig, info, uc);
}

/// SA_ONSTACK handlers run on the alternate signal stack.
pub(crate) fn sigaltstack() {
    enter();
    let stack = vec![0u8; ALT_SIZE].leak();
    ALT.store(stack.as_ptr() as u64, Ordering::SeqCst);
    let ss = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: ALT_SIZE };
    // SAFETY: installing a leaked buffer as this thread's alternate stack.
    check!(unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } == 0);
    install(libc::SIGUSR2, on_alt, libc::SA_ONSTACK);
    // SAFETY: signalling ourselves.
    unsafe { libc::raise(libc::SIGUSR2) };
    check!(SEEN.load(Ordering::SeqCst) == 1);
    check!(SEEN_FLAGS.load(Ordering::SeqCst) & ON_ALTSTACK != 0, "handler not on the alternate stack");
}

static TID: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_tid(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // The flag first: the main thread reads it as soon as it sees the tid.
    if libdune::in_dune_mode() {
        SEEN_FLAGS.fetch_or(IN_DUNE, Ordering::SeqCst);
    }
    // SAFETY: gettid has no arguments.
    TID.store(unsafe { libc::gettid() } as u64, Ordering::SeqCst);
}

/// A handler installed before enter(), a signal sent to one thread (pthread_kill):
/// it runs on that thread, in Dune mode.
pub(crate) fn signal_thread() {
    install(libc::SIGUSR1, record_tid, 0);
    enter();
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: plain calls.
        tx.send((unsafe { libc::pthread_self() }, unsafe { libc::gettid() } as u64)).expect("send");
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
    });
    let (pt, tid) = rx.recv().expect("recv");
    // SAFETY: signalling a live thread of ours.
    check!(unsafe { libc::pthread_kill(pt, libc::SIGUSR1) } == 0);
    let t0 = Instant::now();
    while TID.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    check!(TID.load(Ordering::SeqCst) == tid, "handler ran on thread {} not {tid}", TID.load(Ordering::SeqCst));
    check!(SEEN_FLAGS.load(Ordering::SeqCst) & IN_DUNE != 0);
    let _ = done_tx.send(());
    check!(t.join().is_ok());
}

/// Default actions are the kernel's: SIGTERM ends the process.
pub(crate) fn signal_default_term() {
    enter();
    // SAFETY: signalling ourselves with the default action in place.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    std::thread::sleep(Duration::from_secs(5));
    eprintln!("survived SIGTERM");
    std::process::exit(1);
}

static STRESS_HITS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_hit(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    STRESS_HITS.fetch_add(1, Ordering::Relaxed);
}

fn set_disposition(sig: i32, handler: usize) {
    // SAFETY: a zeroed sigaction with only the handler (and SA_SIGINFO for a function) set.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
        sa.sa_flags = libc::SA_SIGINFO;
    }
    // SAFETY: installs the action built above.
    unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
}

/// Handlers changed while signals are in flight (CPython's
/// test_stress_modifying_handlers): a signal caught under one action and delivered
/// after the program switched to SIG_IGN or SIG_DFL is dropped or takes the default
/// action, as in Linux; it never ends the process.
pub(crate) fn signal_modify_handlers() {
    enter();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // SAFETY: pthread_self has no preconditions.
    let main = unsafe { libc::pthread_self() } as usize;
    let s = stop.clone();
    let sender = std::thread::spawn(move || {
        let mut sent = 0u64;
        while !s.load(Ordering::Relaxed) {
            // SAFETY: signals to the main thread, which outlives this thread; SIGWINCH's
            // default action is to ignore it.
            unsafe {
                libc::pthread_kill(main as libc::pthread_t, libc::SIGUSR1);
                libc::pthread_kill(main as libc::pthread_t, libc::SIGWINCH);
            }
            sent += 1;
            std::thread::yield_now();
        }
        sent
    });
    let t0 = Instant::now();
    let mut rounds = 0u64;
    while t0.elapsed() < Duration::from_secs(3) || rounds < 200 {
        set_disposition(libc::SIGUSR1, count_hit as *const () as usize);
        set_disposition(libc::SIGWINCH, count_hit as *const () as usize);
        std::hint::black_box((0..200).sum::<u64>());
        set_disposition(libc::SIGUSR1, libc::SIG_IGN);
        set_disposition(libc::SIGWINCH, libc::SIG_DFL);
        // A forwarded call: pending signals are delivered at the exit.
        // SAFETY: getpid has no side effects.
        unsafe { libc::getpid() };
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap_or(0);
    set_disposition(libc::SIGUSR1, libc::SIG_IGN);
    check!(sent > 0 && rounds >= 200, "sent {sent}, rounds {rounds}");
    check!(STRESS_HITS.load(Ordering::Relaxed) > 0, "no signal reached a handler ({sent} sent)");
}
