//! The monitor's state: the process-wide [`Monitor`] and each program thread's
//! [`Thread`]. The bottom of the monitor's layers with `space`, `uaccess` and `audit`:
//! every other part reads this, and this reads none of them but the program's space.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard, OnceLock};

use libdune::user::UserContext;

use super::space::ProgramSpace;
use crate::policy::Policy;

/// What the program is, as `/proc/self` shows it to the program.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Its path (`/proc/self/exe`).
    pub path: PathBuf,
    /// Its arguments, each NUL-terminated (`/proc/self/cmdline`).
    pub cmdline: Vec<u8>,
    /// Its environment, each NUL-terminated (`/proc/self/environ`).
    pub environ: Vec<u8>,
}

impl Identity {
    /// The identity of a program started at `path` with `argv` and `env`.
    pub fn new(path: PathBuf, argv: &[std::ffi::OsString], env: &[std::ffi::OsString]) -> Identity {
        let join = |v: &[std::ffi::OsString]| v.iter().flat_map(|s| s.as_encoded_bytes().iter().copied().chain([0])).collect();
        Identity { path, cmdline: join(argv), environ: join(env) }
    }
}

/// Process-wide monitor state (one program per process).
pub struct Monitor {
    pub policy: Policy,
    pub space: Mutex<ProgramSpace>,
    /// The program's current directory (absolute, canonical).
    pub cwd: Mutex<PathBuf>,
    /// Live program threads of this process.
    pub threads: AtomicUsize,
    /// The vDSO's address (AT_SYSINFO_EHDR), 0 if none.
    pub vdso: u64,
    /// The program's path, arguments and environment (what `/proc/self/exe`,
    /// `cmdline` and `environ` show; the kernel's are the monitor's).
    pub exe: Mutex<Identity>,
    /// Host thread ids of the monitor threads running program threads.
    pub tids: Mutex<Vec<i32>>,
    /// Bumped by `execve` in a program with several threads: every other program
    /// thread ends when it sees a new value.
    pub exec_gen: AtomicU64,
    /// What the program set with `PR_SET_DUMPABLE` (the process itself stays
    /// non-dumpable: no core dump, no `/proc` access by other processes).
    pub dumpable: AtomicI32,
    /// Resource limits the monitor keeps for the program instead of applying them to
    /// the process (they would bind the monitor too): (resource, soft, hard).
    pub rlimits: Mutex<Vec<(u32, u64, u64)>>,
}

static MONITOR: OnceLock<Monitor> = OnceLock::new();

/// The monitor (after `start`).
pub fn m() -> &'static Monitor {
    MONITOR.get().expect("the monitor is started before any program code runs")
}

/// Installs the monitor; false if one exists.
pub fn install(monitor: Monitor) -> bool {
    MONITOR.set(monitor).is_ok()
}

impl Monitor {
    /// The program's address space.
    pub fn space(&self) -> MutexGuard<'_, ProgramSpace> {
        self.space.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The program's current directory.
    pub fn cwd(&self) -> PathBuf {
        self.cwd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Per-thread state of a program thread, owned by its monitor thread.
pub struct Thread {
    pub ctx: UserContext,
    /// The program's blocked-signal mask for this thread.
    pub mask: u64,
    /// `sigaltstack`: (sp, flags, size).
    pub altstack: (u64, i32, u64),
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID`: cleared and woken at thread exit.
    pub clear_tid: u64,
    /// The mask to restore after a signal interrupts a call that waits with a
    /// temporary one (sigsuspend, ppoll, pselect6, epoll_pwait).
    pub saved_mask: Option<u64>,
    /// The last system call (number, arguments), for restarting it.
    pub last_call: (u64, [u64; 6]),
    /// This thread is the one running `execve` (the others end).
    pub execing: bool,
}

impl Thread {
    pub fn new(ctx: UserContext, mask: u64) -> Self {
        Thread { ctx, mask, altstack: (0, libc::SS_DISABLE, 0), clear_tid: 0, saved_mask: None, last_call: (0, [0; 6]), execing: false }
    }
}

/// What handling an event decided about the thread.
pub enum Flow {
    /// Run ring 3 again.
    Continue,
    /// The thread has ended (its monitor thread returns).
    ThreadExit,
}

/// Reaps the children that ended, for a program whose SIGCHLD is ignored
/// (`procs::reap_ended`, registered at start like the thread loop).
static REAPER: OnceLock<fn()> = OnceLock::new();

/// Registers the reaper (once, at start).
pub fn set_reaper(f: fn()) {
    let _ = REAPER.set(f);
}

/// Reaps the children that ended.
pub fn reap_children() {
    if let Some(f) = REAPER.get() {
        f();
    }
}

/// The loop that runs one program thread (`monitor::thread_loop`), registered by the
/// top of the monitor so that the parts below it can start threads without
/// importing it.
static THREAD_LOOP: OnceLock<fn(&mut Thread)> = OnceLock::new();

/// Registers the thread loop (once, at start).
pub fn set_thread_loop(f: fn(&mut Thread)) {
    let _ = THREAD_LOOP.set(f);
}

/// Runs program thread `t` until it ends.
pub fn run_thread(t: &mut Thread) {
    if let Some(f) = THREAD_LOOP.get() {
        f(t);
    }
}
