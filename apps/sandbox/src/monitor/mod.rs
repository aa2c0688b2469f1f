//! The monitor: runs in guest ring 0 of the sandboxed process, runs the program in
//! ring 3, and handles every system call, exception and signal of it.
//!
//! Each program thread is a [`libdune::user::UserContext`] run by one monitor thread
//! (its own vCPU) in a loop: deliver pending signals, run ring 3 until the next event
//! ([`libdune::user::run_user`]), handle the event in ordinary ring-0 code
//! ([`calls`] for system calls, [`signals`] for exceptions and signals). The monitor
//! is the program's kernel: nothing the program asks for reaches Linux unless the
//! call table ([`calls`]) knows the call, the policy allows it, and its arguments —
//! copied into the monitor's memory first where their contents matter — check out.
//!
//! - [`mem`]: the program's address space (the only user memory) and memory calls;
//! - [`uaccess`]: copying to and from it safely from ring 0;
//! - [`calls`]: the table of every system call and its handling, with [`files`] and
//!   [`net`] for the calls that name paths and addresses, [`procs`] for threads,
//!   processes and `execve`;
//! - [`signals`]: actions, masks, frames and `rt_sigreturn` for ring 3;
//! - [`audit`]: audit lines and `--trace`.

pub mod audit;
pub mod calls;
pub mod exitless;
pub mod files;
pub mod mem;
pub mod net;
pub mod procs;
pub mod signals;
pub mod uaccess;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};

use libdune::user::{self, UserContext, UserExit};

use crate::loader::{self, StackOptions};
use crate::policy::Policy;
use mem::ProgramSpace;

/// Process-wide monitor state (one program per process).
pub struct Monitor {
    pub policy: Policy,
    pub space: Mutex<ProgramSpace>,
    /// Descriptors of the monitor's own (audit): the program may not name them.
    pub own_fds: RwLock<Vec<i32>>,
    /// The program's current directory (absolute, canonical).
    pub cwd: Mutex<PathBuf>,
    /// Live program threads.
    pub threads: AtomicUsize,
    /// The vDSO's address (AT_SYSINFO_EHDR), 0 if none.
    pub vdso: u64,
    /// Children the program forked (for `kill`).
    pub children: Mutex<Vec<i32>>,
    /// The program's path (what `/proc/self/exe` reads as).
    pub exe: Mutex<PathBuf>,
    /// Host thread ids of the monitor threads running program threads.
    pub tids: Mutex<Vec<i32>>,
    /// Bumped by `execve` in a program with several threads: every other program
    /// thread ends when it sees a new value.
    pub exec_gen: core::sync::atomic::AtomicU64,
}

static MONITOR: OnceLock<Monitor> = OnceLock::new();

/// The monitor (after [`start`]).
pub fn m() -> &'static Monitor {
    MONITOR.get().expect("the monitor is started before any program code runs")
}

impl Monitor {
    /// The program's address space.
    pub fn space(&self) -> MutexGuard<'_, ProgramSpace> {
        self.space.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `fd` is one of the monitor's own descriptors.
    pub fn is_own_fd(&self, fd: i64) -> bool {
        self.own_fds.read().unwrap_or_else(|e| e.into_inner()).iter().any(|&f| f as i64 == fd)
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

/// The vDSO mapping and the vvar pages before it, from `/proc/self/maps`.
fn vdso_ranges() -> Vec<(u64, u64, i32)> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return Vec::new() };
    let mut out = Vec::new();
    for l in maps.lines() {
        if !(l.ends_with("[vdso]") || l.ends_with("[vvar]") || l.ends_with("[vvar_vclock]")) {
            continue;
        }
        let mut it = l.split_whitespace();
        let (Some(range), Some(perm)) = (it.next(), it.next()) else { continue };
        let Some((s, e)) = range.split_once('-') else { continue };
        let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else { continue };
        let prot = if perm.starts_with('r') { libc::PROT_READ } else { 0 } | if perm.as_bytes().get(2) == Some(&b'x') { libc::PROT_EXEC } else { 0 };
        out.push((s, e, prot));
    }
    out
}

/// Where the monitor's own descriptors start: below the soft descriptor limit, high
/// enough that programs do not reach it in practice.
fn own_fd_base() -> i32 {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one struct rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    (l.rlim_cur.min(1024) as i32 - 128).max(64)
}

/// Why the sandbox could not start the program.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The program cannot be loaded (missing, not ELF, malformed…).
    #[error(transparent)]
    Load(#[from] loader::LoadError),
    /// Entering Dune mode or preparing the monitor failed.
    #[error("{0}")]
    Setup(String),
}

impl StartError {
    /// The shell-like exit status: 127 missing, 126 cannot execute, 125 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Load(e) => e.exit_code(),
            StartError::Setup(_) => 125,
        }
    }
}

/// Loads and runs the program in the calling process, which becomes the sandbox: it
/// returns only if the program cannot be started. Must be called before the process
/// has other threads.
pub fn start(mut policy: Policy, trace: bool, exitless_helpers: usize, argv: Vec<OsString>, env: Vec<OsString>) -> Result<std::convert::Infallible, StartError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| StartError::Setup(format!("{what}: {e}"));
    let name = argv.first().cloned().ok_or_else(|| StartError::Setup("no program given".into()))?;
    // Everything that can fail on bad input is checked before Dune mode.
    let exec = loader::prepare(&name, argv, &env)?;
    let exe_path = std::fs::canonicalize(&exec.execfn).unwrap_or_else(|_| PathBuf::from(&exec.execfn));
    // The monitor's descriptors go high, so the program numbers its own as natively.
    let base = own_fd_base();
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor; stderr may be closed (then audit
    // lines are lost, nothing else).
    let audit_fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, base) };
    audit::configure(if audit_fd >= 0 { audit_fd } else { 2 }, trace);
    let mut own = policy.paths_mut().relocate(base).map_err(|e| setup("moving the policy's descriptors", &e))?;
    if audit_fd >= 0 {
        own.push(audit_fd);
    }
    let options = libdune::Options::default();
    libdune::runtime::init(&options).map_err(|e| setup("cannot use KVM", &e))?;
    // Exitless helpers are ordinary Linux threads: made before this thread enters.
    exitless::start_helpers(exitless_helpers).map_err(|e| setup("starting the exitless helpers", &e))?;
    libdune::runtime::enter(&options).map_err(|e| setup("cannot enter Dune mode", &e))?;
    uaccess::install().map_err(|e| setup("installing the fault handler", &e))?;
    signals::install_monitor_signal().map_err(|e| setup("installing the monitor's signal", &e))?;
    let cwd = std::env::current_dir().map_err(|e| setup("current directory", &e))?;
    let mut space = ProgramSpace::new(policy.limits().memory.unwrap_or(0));
    let mut vdso = 0;
    for (s, e, prot) in vdso_ranges() {
        space.adopt(s, e, prot).map_err(|e| setup("vDSO", &e))?;
        if prot & libc::PROT_EXEC != 0 {
            vdso = s;
        }
    }
    let opts = StackOptions { sysinfo_ehdr: (vdso != 0).then_some(vdso), hwcap2: signals::hwcap2(), ..StackOptions::default() };
    let loaded = loader::load(&exec, &mut space, &opts)?;
    drop(exec);
    space.brk_start = loaded.brk_start;
    space.brk_cur = loaded.brk_start;
    let monitor = Monitor {
        policy,
        space: Mutex::new(space),
        own_fds: RwLock::new(own),
        cwd: Mutex::new(cwd),
        threads: AtomicUsize::new(1),
        vdso,
        children: Mutex::new(Vec::new()),
        exe: Mutex::new(exe_path),
        // SAFETY: gettid has no effect.
        tids: Mutex::new(vec![unsafe { libc::syscall(libc::SYS_gettid) } as i32]),
        exec_gen: core::sync::atomic::AtomicU64::new(0),
    };
    if MONITOR.set(monitor).is_err() {
        return Err(StartError::Setup("a sandbox already runs in this process".into()));
    }
    let ctx = UserContext::new(loaded.entry, loaded.rsp).map_err(|e| setup("ring-3 context", &e))?;
    let mask = signals::current_host_mask();
    let mut t = Thread::new(ctx, mask);
    exitless::attach();
    thread_loop(&mut t);
    // The main program thread ended with `exit` while others may still run: end
    // this thread only, as Linux does.
    procs::exit_thread_now(0)
}

/// Runs one program thread until it ends.
pub fn thread_loop(t: &mut Thread) {
    let gen = m().exec_gen.load(core::sync::atomic::Ordering::SeqCst);
    loop {
        if m().exec_gen.load(core::sync::atomic::Ordering::SeqCst) != gen && !t.execing {
            // Another thread of the program called execve: this one ends.
            procs::thread_gone();
            return;
        }
        signals::deliver(t);
        // SAFETY: ring 3 reaches only user memory (the program's); the context is
        // the program's own.
        let exit = unsafe { user::run_user(&mut t.ctx) };
        let flow = match exit {
            UserExit::Syscall => calls::handle(t),
            UserExit::Exception { vector, err, addr } => signals::exception(t, vector, err, addr),
            UserExit::Interrupt { vector } => {
                if vector == user::SIGNAL_VECTOR {
                    user::poll_signals();
                }
                Flow::Continue
            }
        };
        if let Flow::ThreadExit = flow {
            return;
        }
    }
}
