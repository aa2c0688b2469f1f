//! Audit lines and `--trace`: one line per denial always, one line per system call
//! under `--trace`. Written to the monitor's own duplicate of the standard error it
//! started with, a descriptor the program can neither see nor close.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::io::Write;

static FD: AtomicI32 = AtomicI32::new(2);
static TRACE: AtomicBool = AtomicBool::new(false);

/// The descriptor audit lines go to.
pub fn fd() -> i32 {
    FD.load(Ordering::Relaxed)
}

/// Sets where lines go and whether every call is traced.
pub fn configure(fd: i32, trace: bool) {
    FD.store(fd, Ordering::Relaxed);
    TRACE.store(trace, Ordering::Relaxed);
}

/// Whether `--trace` is on.
pub fn tracing() -> bool {
    TRACE.load(Ordering::Relaxed)
}

/// Writes one line (`text` without its newline) in a single `write`.
pub fn line(text: &str) {
    let mut b = Vec::with_capacity(text.len() + 32);
    // SAFETY: getpid and gettid have no effect.
    let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
    let _ = write!(b, "[dune-sandbox {pid}");
    if tid != pid as i64 {
        let _ = write!(b, "/{tid}");
    }
    let _ = writeln!(b, "] {text}");
    // SAFETY: writes the buffer to the audit descriptor (one write: lines from several
    // threads do not interleave).
    unsafe { libc::write(fd(), b.as_ptr().cast(), b.len()) };
}

std::thread_local! {
    /// Whether a denial was reported since the last [`take_denied`].
    static DENIED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    /// The last denial line of this thread and how often it repeated since.
    static LAST: core::cell::RefCell<(String, u64)> = const { core::cell::RefCell::new((String::new(), 0)) };
}

/// A denied call: always reported, but a line identical to the thread's previous one
/// is counted instead of written again (a program retrying a denied call in a loop
/// would otherwise flood the log); the count is written with the next different line
/// or at exit.
pub fn deny(what: &str, why: &str) {
    DENIED.with(|d| d.set(true));
    let text = format!("denied {what}: {why}");
    let repeated = LAST.with(|l| {
        let mut l = l.borrow_mut();
        if l.0 == text {
            l.1 += 1;
            return None;
        }
        let before = (l.1 > 0).then(|| format!("(the previous denial repeated {} more times)", l.1));
        *l = (text.clone(), 0);
        Some(before)
    });
    match repeated {
        None => {}
        Some(before) => {
            if let Some(b) = before {
                line(&b);
            }
            line(&text);
        }
    }
}

/// Whether this thread reported a denial since the last call (and clears it).
pub fn take_denied() -> bool {
    DENIED.with(|d| d.replace(false))
}

/// Writes the pending repeat count of this thread's last denial (before exit).
pub fn flush() {
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        if l.1 > 0 {
            line(&format!("(the previous denial repeated {} more times)", l.1));
            l.1 = 0;
        }
    });
}

/// What the monitor did, process-wide (`--stats`).
pub struct Stats {
    pub emulated: core::sync::atomic::AtomicU64,
    pub forwarded: core::sync::atomic::AtomicU64,
    pub denied: core::sync::atomic::AtomicU64,
    pub exceptions: core::sync::atomic::AtomicU64,
    pub signals: core::sync::atomic::AtomicU64,
}

/// The counters.
pub static STATS: Stats = Stats {
    emulated: core::sync::atomic::AtomicU64::new(0),
    forwarded: core::sync::atomic::AtomicU64::new(0),
    denied: core::sync::atomic::AtomicU64::new(0),
    exceptions: core::sync::atomic::AtomicU64::new(0),
    signals: core::sync::atomic::AtomicU64::new(0),
};

static STATS_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// The kernel layers the sandbox runs under (`confine::Layers`), for `--stats`.
static LAYERS: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Records the kernel layers in force; with `missing` ones, a warning line now.
pub fn set_layers(layers: String, missing: &[&str]) {
    if !missing.is_empty() {
        line(&format!("warning: this kernel gives no {}: only the monitor enforces what they would", missing.join(", ")));
    }
    if STATS_AT_EXIT.load(Ordering::Relaxed) {
        line(&format!("layers: {layers}"));
    }
    *LAYERS.lock().unwrap_or_else(|e| e.into_inner()) = layers;
}

/// The lock of the layers' text, held across `fork` (see `procs::fork`).
pub fn lock_layers() -> impl Sized {
    LAYERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kernel layers in force.
pub fn layers() -> String {
    LAYERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether `--stats` is on.
pub fn stats_on() -> bool {
    STATS_AT_EXIT.load(Ordering::Relaxed)
}

/// Prints the counters when the program exits (`--stats`).
pub fn stats_at_exit(on: bool) {
    STATS_AT_EXIT.store(on, Ordering::Relaxed);
}

/// Before the process ends: the repeat count, and the counters if asked for.
pub fn at_exit() {
    flush();
    if !STATS_AT_EXIT.load(Ordering::Relaxed) {
        return;
    }
    let s = &STATS;
    let c = libdune::runtime::counters();
    let (e, f, d) = (s.emulated.load(Ordering::Relaxed), s.forwarded.load(Ordering::Relaxed), s.denied.load(Ordering::Relaxed));
    line(&format!(
        "stats: {} system calls ({e} emulated, {f} forwarded, {d} denied), {} exceptions, {} signals delivered; exits to the host: {} system calls, {} traps, {} interruptions",
        e + f + d,
        s.exceptions.load(Ordering::Relaxed),
        s.signals.load(Ordering::Relaxed),
        c.syscalls.load(Ordering::Relaxed),
        c.traps.load(Ordering::Relaxed),
        c.interrupts.load(Ordering::Relaxed)
    ));
}
