//! Other threads' stacks: registered threads are stopped for a collection by a
//! signal whose handler spills its registers onto its stack, records its stack
//! pointer and waits until the collection is over (as bdwgc's pthread_stop_world).

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The signal (bdwgc uses SIGPWR on Linux too).
const SIG_STOP: i32 = libc::SIGPWR;

/// A registered thread: its pthread, stack top, and the stack pointer its handler saw.
struct Entry {
    thread: libc::pthread_t,
    top: usize,
    sp: AtomicUsize,
}

static THREADS: Mutex<Vec<&'static Entry>> = Mutex::new(Vec::new());
static STOPPED: AtomicUsize = AtomicUsize::new(0);
static RESUME: AtomicBool = AtomicBool::new(false);
/// Dune sources: a stopped thread drops its vCPU's translations before it runs
/// again, so none it cached before the collector cleared D or W bits survives (the
/// collector flushes its own; this replaces a shootdown while the others wait).
static FLUSH_ON_RESUME: AtomicBool = AtomicBool::new(false);

/// See [`FLUSH_ON_RESUME`].
pub fn flush_on_resume(on: bool) {
    FLUSH_ON_RESUME.store(on, Ordering::Release);
}

extern "C" fn on_stop(_: i32) {
    // Spill callee-saved registers to this frame: the collector scans from here.
    let mut regs = [0usize; 6];
    // SAFETY: stores registers into a local array.
    unsafe {
        core::arch::asm!("mov [{0}], rbx", "mov [{0}+8], rbp", "mov [{0}+16], r12", "mov [{0}+24], r13", "mov [{0}+32], r14", "mov [{0}+40], r15", in(reg) regs.as_mut_ptr(), options(nostack));
    }
    // The thread's own entry, without a lock (several handlers run at once).
    let e = MINE.with(|m| m.get());
    if e != 0 {
        // SAFETY: entries are leaked, never freed; set by `register` on this thread.
        unsafe { &*(e as *const Entry) }.sp.store(regs.as_ptr() as usize, Ordering::Release);
    }
    STOPPED.fetch_add(1, Ordering::AcqRel);
    while !RESUME.load(Ordering::Acquire) {
        core::hint::spin_loop();
        // SAFETY: sched_yield has no memory effects.
        unsafe { libc::sched_yield() };
    }
    core::hint::black_box(&regs);
    if FLUSH_ON_RESUME.load(Ordering::Acquire) {
        libdune::vm::flush_tlb();
    }
    STOPPED.fetch_sub(1, Ordering::AcqRel);
}

thread_local! {
    /// This thread's entry (0 when unregistered): a plain TLS word the stop handler
    /// reads without taking a lock.
    static MINE: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Registers the calling thread (its stack and registers become roots).
pub fn register(top: usize) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: installs the stop handler with a zeroed sigaction.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_stop as extern "C" fn(i32) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(SIG_STOP, &sa, core::ptr::null_mut());
        }
    });
    // SAFETY: pthread_self has no preconditions.
    let e: &'static Entry = Box::leak(Box::new(Entry { thread: unsafe { libc::pthread_self() }, top, sp: AtomicUsize::new(0) }));
    THREADS.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    MINE.with(|m| m.set(e as *const Entry as usize));
}

/// Unregisters the calling thread (before it exits).
pub fn unregister() {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    THREADS.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.thread != me);
    MINE.with(|m| m.set(0));
}

/// Stops every other registered thread and returns their stack ranges; `resume`
/// lets them go.
pub fn stop_others() -> Vec<(usize, usize)> {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let others: Vec<&'static Entry> = THREADS.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|e| e.thread != me).copied().collect();
    RESUME.store(false, Ordering::Release);
    let mut sent = 0;
    for e in &others {
        e.sp.store(0, Ordering::Release);
        // SAFETY: signals a registered (live) thread.
        if unsafe { libc::pthread_kill(e.thread, SIG_STOP) } == 0 {
            sent += 1;
        }
    }
    while STOPPED.load(Ordering::Acquire) < sent {
        core::hint::spin_loop();
        // SAFETY: no memory effects.
        unsafe { libc::sched_yield() };
    }
    others.iter().filter_map(|e| {
        let sp = e.sp.load(Ordering::Acquire);
        (sp != 0 && sp < e.top).then_some((sp, e.top))
    }).collect()
}

/// Lets the stopped threads run again.
pub fn resume() {
    RESUME.store(true, Ordering::Release);
    while STOPPED.load(Ordering::Acquire) > 0 {
        core::hint::spin_loop();
        // SAFETY: no memory effects.
        unsafe { libc::sched_yield() };
    }
}
