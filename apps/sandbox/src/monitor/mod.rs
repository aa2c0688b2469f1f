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
//! The monitor's parts, from the bottom up (each uses only those above it in this
//! list; `scripts/check-layers` keeps it so):
//!
//! - [`uaccess`] (copies from ring 0 that may fault), [`audit`] (audit lines,
//!   `--trace`, `--stats`), [`limits`] (the sandbox-wide counts), [`space`] (the
//!   program's address space: the only user memory);
//! - [`state`]: the monitor and each program thread;
//! - [`user`]: pointers and copies of program memory as call arguments;
//! - [`signals`]: actions, masks, frames and `rt_sigreturn` for ring 3;
//! - [`exitless`]: forwarding through helper threads without exits;
//! - [`sys`]: forwarding and denials; [`fdtable`]: descriptor arguments and the
//!   monitor's own descriptors;
//! - the families: [`io`], [`fds`], [`files`], [`net`], [`mem`], [`procs`], [`misc`],
//!   [`sigcalls`];
//! - [`calls`]: the table of every call, on top of the families;
//! - [`confine`]: the kernel's line under all of it (Landlock, seccomp, no
//!   capabilities, no core dumps, namespaces);
//! - this file: [`start`] and the loop that runs each program thread.

pub mod audit;
pub mod calls;
pub mod confine;
pub mod exitless;
pub mod fds;
pub mod fdtable;
pub mod files;
pub mod io;
pub mod limits;
pub mod mem;
pub mod misc;
pub mod net;
pub mod procs;
pub mod sigcalls;
pub mod signals;
pub mod space;
pub mod state;
pub mod supervise;
pub mod sys;
pub mod uaccess;
pub mod user;

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize};
use std::sync::Mutex;

use libdune::user::{UserContext, UserExit};

use crate::loader::{self, StackOptions};
use crate::policy::Policy;
use space::ProgramSpace;
pub use state::{m, Flow, Monitor, Thread};

/// The vDSO mapping and the vvar pages before it, from `/proc/self/maps`.
fn vdso_ranges() -> Vec<(u64, u64, i32)> {
    let Some(maps) = space::own_maps() else { return Vec::new() };
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
pub fn start(mut policy: Policy, opts: confine::Options, exitless_helpers: usize, argv: Vec<OsString>, env: Vec<OsString>) -> Result<std::convert::Infallible, StartError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| StartError::Setup(format!("{what}: {e}"));
    let name = argv.first().cloned().ok_or_else(|| StartError::Setup("no program given".into()))?;
    // Everything that can fail on bad input is checked before Dune mode.
    let exec = loader::prepare(&name, argv, &env)?;
    let exe_path = std::fs::canonicalize(&exec.execfn).unwrap_or_else(|_| PathBuf::from(&exec.execfn));
    let (exec_argv, exec_env) = (exec.argv.clone(), exec.env.clone());
    // This process stays outside as the supervisor; the sandbox is a child, in a
    // session (and a cgroup) of its own.
    let mut supervised = supervise::split(policy.limits(), audit::stats_on()).map_err(|e| setup("starting the sandbox's process", &e))?;
    let options = libdune::Options::default();
    libdune::runtime::init(&options).map_err(|e| setup("cannot use KVM", &e))?;
    // Nothing of the sandbox outlives the supervisor (a read end of its own per process).
    supervise::arm_lifeline(supervised.lifeline.take(), &|f| libdune::runtime::dup_reserved(std::os::fd::AsFd::as_fd(&f)));
    // The monitor's descriptors go to its reserved numbers, above the program's limit:
    // the program numbers its own as natively and can name none of the monitor's.
    // SAFETY: descriptor 2 is only borrowed for the duplication; if stderr is closed
    // the duplication fails and audit lines are lost, nothing else.
    let audit_fd = libdune::runtime::dup_reserved(unsafe { std::os::fd::BorrowedFd::borrow_raw(2) }).ok();
    audit::configure(audit_fd.as_ref().map_or(2, |f| f.as_raw_fd()), opts.trace);
    std::mem::forget(audit_fd);
    let l = *policy.limits();
    limits::init(l.processes, l.threads, l.memory).map_err(|e| setup("the limits' shared page", &e))?;
    let rlimits = misc::snapshot_rlimits();
    fdtable::note_outer_files();
    net::note_inherited_sockets();
    // The kernel's line: whatever the monitor lets through, these refuse. (It may
    // open the trees again, in the sandbox's own mount namespace.)
    let mut layers = confine::apply(&mut policy, &opts).map_err(|e| setup("confining the sandbox", &e))?;
    if let Some((started, _)) = layers.own_uid {
        misc::set_started_uid(started);
    }
    net::make_black_holes(layers.net_ns);
    layers.new_session = true;
    layers.cgroup = supervised.cgroup.is_some();
    audit::set_layers(layers.to_string(), &layers.missing());
    policy.paths_mut().relocate(&|f| libdune::runtime::dup_reserved(f)).map_err(|e| setup("moving the policy's descriptors", &e))?;
    libdune::runtime::guard_descriptors();
    crate::policy::paths::set_own_pids(limits::is_sandbox_pid);
    crate::policy::paths::set_hidden_fds(fdtable::program_limit());
    // Exitless helpers are ordinary Linux threads: made before this thread enters.
    exitless::start_helpers(exitless_helpers).map_err(|e| setup("starting the exitless helpers", &e))?;
    libdune::runtime::enter(&options).map_err(|e| setup("cannot enter Dune mode", &e))?;
    uaccess::install().map_err(|e| setup("installing the fault handler", &e))?;
    signals::install_monitor_signal().map_err(|e| setup("installing the monitor's signal", &e))?;
    let cwd = std::env::current_dir().map_err(|e| setup("current directory", &e))?;
    let mut space = ProgramSpace::new();
    let mut vdso = 0;
    for (s, e, prot) in vdso_ranges() {
        space.adopt(s, e, prot).map_err(|e| setup("vDSO", &e))?;
        if prot & libc::PROT_EXEC != 0 {
            vdso = s;
        }
    }
    let stack = StackOptions { sysinfo_ehdr: (vdso != 0).then_some(vdso), hwcap2: signals::hwcap2(), ..StackOptions::default() };
    let loaded = loader::load(&exec, &mut space, &stack)?;
    drop(exec);
    space.brk_start = loaded.brk_start;
    space.brk_cur = loaded.brk_start;
    let monitor = Monitor {
        policy,
        space: Mutex::new(space),
        cwd: Mutex::new(cwd),
        threads: AtomicUsize::new(1),
        vdso,
        exe: Mutex::new(state::Identity::new(exe_path, &exec_argv, &exec_env)),
        // SAFETY: gettid has no effect.
        tids: Mutex::new(vec![unsafe { libc::syscall(libc::SYS_gettid) } as i32]),
        exec_gen: AtomicU64::new(0),
        dumpable: AtomicI32::new(1),
        rlimits: Mutex::new(rlimits),
    };
    if !state::install(monitor) {
        return Err(StartError::Setup("a sandbox already runs in this process".into()));
    }
    state::set_thread_loop(thread_loop);
    state::set_reaper(procs::reap_ended);
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
        let exit = unsafe { libdune::user::run_user(&mut t.ctx) };
        let flow = match exit {
            UserExit::Syscall => calls::handle(t),
            UserExit::Exception { vector, err, addr } => signals::exception(t, vector, err, addr),
            UserExit::Interrupt { vector } => {
                if vector == libdune::user::SIGNAL_VECTOR {
                    libdune::user::poll_signals();
                }
                Flow::Continue
            }
        };
        if let Flow::ThreadExit = flow {
            return;
        }
    }
}
