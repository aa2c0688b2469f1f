//! The supervisor: the process `dune sandbox` started as stays outside the sandbox,
//! and the sandbox runs in a child of it, in a session of its own.
//!
//! - **A session of its own.** The program's process groups then hold only the
//!   sandbox's processes: `kill(0)` or `kill(-group)` reach nothing outside (in a shell
//!   pipeline the sandbox's group would otherwise also hold the pipeline's other
//!   programs). The terminal is no longer the program's controlling terminal, so the
//!   kernel refuses `TIOCSTI` on it too; reading and writing it still work.
//! - **Signals** the supervisor gets (Ctrl-C, `kill` of `dune sandbox`) go to the
//!   sandbox's session leader's group.
//! - **Exit status** is the program's: the supervisor exits with the child's code, or
//!   dies by the child's signal.
//! - **cgroups**, where the kernel and the file system let the supervisor make one
//!   (cgroup v2, writable): the sandbox's processes are in a cgroup of their own with
//!   `pids.max` and `memory.max` from the policy's limits (plus room for the monitor
//!   and the runtime), so the kernel bounds threads and all memory, file pages
//!   (`memfd`, tmpfs) included. When the sandbox ends, what is left in it is killed and
//!   the cgroup removed.
//!
//! - **A lifeline.** The supervisor holds the only write end of a pipe; every sandbox
//!   process holds a read end of its own, opened for it alone, with `O_ASYNC`, itself
//!   as owner and `SIGKILL` as the signal (`F_SETSIG`). When the supervisor is gone,
//!   however it went (`SIGKILL` included), the kernel closes the write end and sends
//!   every sandbox process `SIGKILL`: nothing of the sandbox outlives it, whatever
//!   it forked, and without a cgroup too. A process made as the supervisor died
//!   finds the pipe hung up when it arms its end, and ends itself.
//!
//! Runs before Dune mode, in the process that has no other thread yet.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use crate::policy::Limits;

/// Memory the monitor and the runtime may use beside the program's own (page tables,
/// stacks, the monitor's heap), added to `memory.max`: measured in the lane, a
/// sandboxed `/bin/true` peaks at 5.8 MiB in all, and each thread adds its host stack
/// and vCPU.
const MONITOR_MEMORY: u64 = 24 << 20;
const MONITOR_MEMORY_PER_THREAD: u64 = 512 << 10;
/// Tasks beside the program's threads (exitless helpers, one per CPU at most 8).
const MONITOR_TASKS: u64 = 16;

/// What the sandbox got from the supervisor.
#[derive(Debug, Default)]
pub struct Supervised {
    /// The cgroup the sandbox's processes are in, if one could be made.
    pub cgroup: Option<PathBuf>,
    /// The read end of the lifeline (see the module's notes), to be armed.
    pub lifeline: Option<OwnedFd>,
}

/// This process's armed read end of the lifeline, at the monitor's numbers.
static LIFELINE: std::sync::Mutex<Option<OwnedFd>> = std::sync::Mutex::new(None);

/// The lifeline's lock, held across `fork` (see `procs::fork`).
pub fn lock_lifeline() -> impl Sized {
    LIFELINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Arms the lifeline in this process: a read end of its own (a new open file, whose
/// owner and signal are this process's alone), kept at `keep(fd)`'s number. Call in
/// the sandbox's first process with the supervisor's pipe, and in every child right
/// after `fork` (with `None`: the parent's end is opened again). If the supervisor is
/// already gone, the process ends here.
pub fn arm_lifeline(from: Option<OwnedFd>, keep: &dyn Fn(OwnedFd) -> std::io::Result<OwnedFd>) {
    let mut slot = LIFELINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(old) = from.or_else(|| slot.take()) else { return };
    let path = std::ffi::CString::new(format!("/proc/thread-self/fd/{}", old.as_raw_fd())).unwrap_or_default();
    // SAFETY: open with a NUL-terminated path; the result is owned below.
    let r = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    drop(old);
    if r < 0 {
        die("cannot open the supervisor's lifeline again");
    }
    // SAFETY: the descriptor open() just made, owned here alone.
    let mine = unsafe { OwnedFd::from_raw_fd(r) };
    // SAFETY: fcntl with integer arguments on our own descriptor.
    let ok = unsafe {
        libc::fcntl(r, libc::F_SETOWN, libc::getpid()) == 0
            && libc::fcntl(r, 10 /* F_SETSIG */, libc::SIGKILL) == 0
            && libc::fcntl(r, libc::F_SETFL, libc::O_ASYNC | libc::O_NONBLOCK) == 0
    };
    if !ok {
        die("cannot arm the supervisor's lifeline");
    }
    let Ok(mine) = keep(mine) else { die("cannot keep the supervisor's lifeline") };
    // Armed after the supervisor went: no signal will come.
    let mut p = libc::pollfd { fd: mine.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, zero timeout.
    if unsafe { libc::poll(&mut p, 1, 0) } != 0 {
        die("the supervisor is gone");
    }
    *slot = Some(mine);
}

fn die(why: &str) -> ! {
    eprintln!("dune sandbox: {why}");
    // SAFETY: ends this process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(125)
    }
}

fn cgroup_root() -> Option<PathBuf> {
    // Our own cgroup (v2: one line "0::/path").
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let root = PathBuf::from("/sys/fs/cgroup");
    if !root.join("cgroup.controllers").exists() {
        return None;
    }
    Some(root.join(rel.trim_start_matches('/')))
}

/// Makes a cgroup for the sandbox under the supervisor's own, with the limits; `None`
/// where that is not possible (no cgroup v2, not writable, controllers not enabled).
fn make_cgroup(limits: &Limits) -> Option<PathBuf> {
    let parent = cgroup_root()?;
    // A process may not stay in a cgroup whose controllers are delegated to children
    // (the "no internal processes" rule) unless it is the root: ask for the two we
    // need and accept what we get.
    let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids +memory");
    let dir = parent.join(format!("dune-sandbox.{}", std::process::id()));
    std::fs::create_dir(&dir).ok()?;
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    if let Some(t) = limits.threads {
        if controllers.contains("pids") {
            let _ = std::fs::write(dir.join("pids.max"), (u64::from(t) + MONITOR_TASKS).to_string());
        }
    }
    if let Some(m) = limits.memory {
        if controllers.contains("memory") {
            let threads = u64::from(limits.threads.unwrap_or(64));
            let _ = std::fs::write(dir.join("memory.max"), (m + MONITOR_MEMORY + threads * MONITOR_MEMORY_PER_THREAD).to_string());
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        }
    }
    Some(dir)
}

/// Signals the supervisor passes on to the sandbox.
const FORWARDED: &[i32] = &[libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGALRM, libc::SIGCONT];

/// The sandbox's pid, for the forwarding handler.
static CHILD: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let c = CHILD.load(core::sync::atomic::Ordering::Relaxed);
    if c > 0 {
        // SAFETY: kill is async-signal-safe; the child leads its own process group.
        unsafe { libc::kill(-c, sig) };
    }
}

/// Forks: the child returns (in a new session, in the cgroup if one was made) and
/// becomes the sandbox; the parent supervises it and never returns. `Err` if the fork
/// failed.
pub fn split(limits: &Limits, stats: bool) -> std::io::Result<Supervised> {
    let cgroup = make_cgroup(limits);
    // Orphaned sandbox processes come to the supervisor (not to init), which frees
    // their slots in the limits' page before their pids can be reused.
    super::limits::map()?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SAFETY: getpid has no effect.
    let me = unsafe { libc::getpid() };
    let mut life = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    if unsafe { libc::pipe2(life.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just made and are owned here alone.
    let (life_r, life_w) = unsafe { (OwnedFd::from_raw_fd(life[0]), OwnedFd::from_raw_fd(life[1])) };
    // SAFETY: the process has no other threads yet; the child continues this thread.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        if let Some(d) = &cgroup {
            let _ = std::fs::remove_dir(d);
        }
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // The supervisor holds the only write end.
        drop(life_w);
        // SAFETY: setsid makes this child a session and group leader; the sandbox
        // dies with its supervisor (which may have died before the prctl).
        unsafe {
            libc::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != me {
                libc::_exit(125);
            }
        }
        if let Some(d) = &cgroup {
            if std::fs::write(d.join("cgroup.procs"), std::process::id().to_string()).is_err() {
                return Ok(Supervised { cgroup: None, lifeline: Some(life_r) });
            }
        }
        return Ok(Supervised { cgroup, lifeline: Some(life_r) });
    }
    drop(life_r);
    // Kept open until this process ends, however it ends.
    std::mem::forget(life_w);
    supervise(pid, cgroup, stats)
}

fn supervise(child: i32, cgroup: Option<PathBuf>, stats: bool) -> ! {
    CHILD.store(child, core::sync::atomic::Ordering::Relaxed);
    for &sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a handler that only calls kill.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
    let mut status = 0;
    loop {
        // Any child: the sandbox, or an orphan of it. Seen first without reaping it,
        // so that an orphan's slot is freed while its pid is still taken.
        // SAFETY: a zeroed siginfo_t for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: waitid writes one siginfo_t into the local.
        let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            status = 125 << 8;
            break;
        }
        // SAFETY: waitid filled in a child's siginfo.
        let pid = unsafe { info.si_pid() };
        if pid != child {
            super::limits::process_gone(pid);
        }
        // SAFETY: reaps the child waitid reported, which has ended.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == child {
            break;
        }
    }
    if let Some(d) = cgroup {
        if stats {
            let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default().trim().to_string();
            let peak = read("memory.peak").parse::<u64>().map_or_else(|_| "?".into(), |b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64));
            let oom = read("memory.events").lines().find_map(|l| l.strip_prefix("oom_kill ")).unwrap_or("0").to_string();
            eprintln!("[dune-sandbox supervisor] cgroup: memory peak {peak} (max {}), tasks max {}, OOM kills {oom}", read("memory.max"), read("pids.max"));
        }
        // What the program left behind (daemons, stragglers) ends with it.
        let _ = std::fs::write(d.join("cgroup.kill"), "1");
        for _ in 0..200 {
            if std::fs::read_to_string(d.join("cgroup.events")).is_ok_and(|e| e.contains("populated 0")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir(&d);
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: no core of the supervisor (not dumpable: a pipe in core_pattern
        // would ignore RLIMIT_CORE); the default action for the child's signal,
        // unblocked, on ourselves.
        unsafe {
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
            libc::raise(sig);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status));
}
