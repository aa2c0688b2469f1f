//! Threads, processes and programs (`clone`, `fork`, `vfork`, `execve`, `exit`,
//! `wait`), and the processes the program may name (`kill` and the calls that take a
//! pid).
//!
//! - A new program thread (`CLONE_THREAD`) is a new monitor thread — its own vCPU —
//!   running the child's ring-3 context.
//! - Any other `clone`, `fork` and `vfork` is a `fork` of the whole sandbox: the
//!   child is the same monitor with the same policy, continuing the program's thread
//!   with 0 in rax. `CLONE_VM` without `CLONE_THREAD` (vfork, posix_spawn) therefore
//!   gets a copy of the memory, not a share of it; the parent does not wait. The
//!   child's memory is checked against the kernel's map, and the program's fork
//!   advice applied ([`super::space::ProgramSpace::after_fork`]).
//! - Children are held by pidfd: a signal to a child goes through its pidfd, so once
//!   the child is reaped its pid, even reused by a process outside the sandbox, names
//!   nothing the program may signal.
//! - Threads, processes and memory count for the whole sandbox ([`super::limits`]).
//! - `execve` loads the new image inside the same sandbox with the monitor's own
//!   loader, which opens the program and its interpreters through the path rules.
//!   Nothing is ever executed outside the sandbox, and set-user-ID bits mean nothing.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use libdune::user::UserContext;

use super::fdtable;
use super::limits::{self, Kind};
use super::signals;
use super::state::{m, run_thread, Flow, Thread};
use super::sys::{deny, fwd, neg, own_thread, raw, ret, EPERM, R};
use super::user::{copy_in, copy_out, cstr_in, opt, user, write_user};
use super::{audit, exitless};
use crate::loader::{self, StackOptions};
use crate::policy::Access;

const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_SETTLS: u64 = libc::CLONE_SETTLS as u64;
const CLONE_PARENT_SETTID: u64 = libc::CLONE_PARENT_SETTID as u64;
const CLONE_CHILD_SETTID: u64 = libc::CLONE_CHILD_SETTID as u64;
const CLONE_CHILD_CLEARTID: u64 = libc::CLONE_CHILD_CLEARTID as u64;
/// Flags a new thread may have (what glibc and musl pass), and the namespace and
/// other flags no sandboxed clone may.
const THREAD_FLAGS: u64 = CLONE_VM | CLONE_THREAD | libc::CLONE_FS as u64 | libc::CLONE_FILES as u64 | libc::CLONE_SIGHAND as u64
    | libc::CLONE_SYSVSEM as u64 | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | libc::CLONE_DETACHED as u64;
const FORK_FLAGS: u64 = CLONE_VM | libc::CLONE_VFORK as u64 | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | 0xff;

fn gettid() -> i32 {
    // SAFETY: gettid has no effect.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

fn getpid() -> i32 {
    // SAFETY: getpid has no effect.
    unsafe { libc::getpid() }
}

fn set_result(t: &mut Thread, r: R) -> Flow {
    let v = match r {
        Ok(v) => v,
        Err(e) => e,
    };
    if audit::tracing() {
        audit::line(&format!("{} = {v}", super::sys::name(t.last_call.0)));
    }
    t.ctx.tf.rax = v as u64;
    Flow::Continue
}

// ---- children ------------------------------------------------------------------------

/// The program's children in this process, each with its pidfd (at the monitor's
/// reserved numbers).
static CHILDREN: Mutex<Vec<(i32, OwnedFd)>> = Mutex::new(Vec::new());

fn children() -> std::sync::MutexGuard<'static, Vec<(i32, OwnedFd)>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `pid` is a child of this process that has not been reaped.
fn is_child(pid: i64) -> bool {
    children().iter().any(|(c, _)| *c as i64 == pid)
}

/// A child was reaped (`wait4`/`waitid` returned it): its pid means nothing now, and
/// what it held of the limits goes back.
fn reaped(pid: i32) {
    children().retain(|(c, _)| *c != pid);
    limits::process_gone(pid);
}

/// Sends `sig` (with `info`, or none) to child `pid` through its pidfd.
fn signal_child(pid: i64, sig: u64, info: Option<&[u8]>) -> Option<R> {
    let kids = children();
    let (_, fd) = kids.iter().find(|(c, _)| *c as i64 == pid)?;
    Some(ret(raw(libc::SYS_pidfd_send_signal, [fd.as_raw_fd() as u64, sig, info.map_or(0, |i| i.as_ptr() as u64), 0, 0, 0])))
}

/// Reaps every child that ended (for a program that ignores SIGCHLD, as the kernel
/// would have): each through its pidfd, so nothing else is reaped.
pub fn reap_ended() {
    let ended: Vec<i32> = children()
        .iter()
        .filter(|(_, fd)| {
            let mut info = [0u8; 128];
            // P_PIDFD (3), WEXITED | WNOHANG: reaps this child if it ended.
            raw(libc::SYS_waitid, [3, fd.as_raw_fd() as u64, info.as_mut_ptr() as u64, (libc::WEXITED | libc::WNOHANG) as u64, 0, 0]) == 0
                && i32::from_le_bytes(info[16..20].try_into().unwrap_or_default()) != 0
        })
        .map(|(p, _)| *p)
        .collect();
    for pid in ended {
        reaped(pid);
    }
}

// ---- clone, fork, vfork ------------------------------------------------------------

/// `clone`, `clone3`, `fork`, `vfork`.
pub fn clone(t: &mut Thread, nr: u64, a: [u64; 6]) -> Flow {
    let r = match nr as i64 {
        libc::SYS_fork | libc::SYS_vfork => fork(t, libc::SIGCHLD as u64, 0, 0, 0, 0),
        _ => {
            let (flags, sp, ptid, ctid, tls) = if nr as i64 == libc::SYS_clone3 {
                match clone3_args(a[0], a[1]) {
                    Ok(x) => x,
                    Err(e) => return set_result(t, Err(e)),
                }
            } else {
                (a[0], a[1], a[2], a[3], a[4])
            };
            if flags & CLONE_SETTLS != 0 && tls != 0 && !m().space().owns(tls & !4095, (tls & !4095) + 4096) {
                deny(&format!("clone({flags:#x}, tls {tls:#x})"), "thread pointer is not the program's memory", libc::EPERM)
            } else if flags & CLONE_THREAD != 0 {
                if flags & !THREAD_FLAGS != 0 || flags & (CLONE_VM | libc::CLONE_SIGHAND as u64) != CLONE_VM | libc::CLONE_SIGHAND as u64 {
                    deny(&format!("clone({flags:#x})"), "thread flags the sandbox does not support", libc::EINVAL)
                } else {
                    spawn(t, flags, sp, ptid, ctid, tls)
                }
            } else if flags & !FORK_FLAGS != 0 {
                deny(&format!("clone({flags:#x})"), "flags the sandbox does not support (namespaces, shared files or signal handlers)", libc::EINVAL)
            } else {
                fork(t, flags, sp, ptid, ctid, tls)
            }
        }
    };
    set_result(t, r)
}

/// `struct clone_args` copied in, as `clone`'s (flags | exit signal, stack top,
/// parent tid, child tid, tls). Features `clone` lacks (pidfd, set_tid, cgroup) are
/// refused.
fn clone3_args(addr: u64, size: u64) -> Result<(u64, u64, u64, u64, u64), i64> {
    if !(64..=4096).contains(&size) {
        return Err(-(libc::EINVAL as i64));
    }
    let b = copy_in(addr, size as usize)?;
    let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) = (w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7));
    let rest_zero = b[64..].iter().all(|&x| x == 0);
    // `pidfd` is read only with CLONE_PIDFD (glibc fills it in anyway).
    let _ = pidfd;
    if flags & libc::CLONE_PIDFD as u64 != 0 || !rest_zero || exit_signal > 64 || flags & 0xff != 0 {
        return Err(-(libc::EINVAL as i64));
    }
    let sp = if stack != 0 { stack.checked_add(stack_size).ok_or(-(libc::EINVAL as i64))? } else { 0 };
    Ok((flags | exit_signal, sp, parent_tid, child_tid, tls))
}

fn spawn(t: &mut Thread, flags: u64, sp: u64, ptid: u64, ctid: u64, tls: u64) -> R {
    if flags & CLONE_PARENT_SETTID != 0 && !m().space().contains(ptid, 4) || flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 && !m().space().contains(ctid, 4) {
        return Err(neg(libc::EFAULT));
    }
    if !limits::reserve(Kind::Threads, 1) {
        let max = limits::limit(Kind::Threads);
        return deny("clone(CLONE_THREAD)", &format!("the policy allows {max} threads"), libc::EAGAIN);
    }
    let mut ctx = match UserContext::new(t.ctx.tf.rip, t.ctx.tf.rsp) {
        Ok(c) => c,
        Err(_) => {
            limits::release(Kind::Threads, 1);
            return Err(neg(libc::ENOMEM));
        }
    };
    ctx.tf = t.ctx.tf;
    ctx.tf.rax = 0;
    if sp != 0 {
        ctx.tf.rsp = sp;
    }
    ctx.fs_base = if flags & CLONE_SETTLS != 0 { tls } else { t.ctx.fs_base };
    ctx.fpu_mut().copy_from_slice(t.ctx.fpu());
    let mask = t.mask;
    let (tx, rx) = std::sync::mpsc::channel();
    m().threads.fetch_add(1, Ordering::SeqCst);
    let spawned = std::thread::Builder::new().name("dune-sandbox".into()).stack_size(256 * 1024).spawn(move || {
        let tid = gettid();
        if flags & CLONE_CHILD_SETTID != 0 {
            write_user(ctid, &tid.to_le_bytes());
        }
        m().tids.lock().unwrap_or_else(|e| e.into_inner()).push(tid);
        let _ = tx.send(tid);
        let mut th = Thread::new(ctx, mask);
        if flags & CLONE_CHILD_CLEARTID != 0 {
            th.clear_tid = ctid;
        }
        exitless::attach();
        run_thread(&mut th);
        exitless::detach();
    });
    if spawned.is_err() {
        m().threads.fetch_sub(1, Ordering::SeqCst);
        limits::release(Kind::Threads, 1);
        return Err(neg(libc::EAGAIN));
    }
    let tid = rx.recv().map_err(|_| neg(libc::EAGAIN))?;
    if flags & CLONE_PARENT_SETTID != 0 {
        write_user(ptid, &tid.to_le_bytes());
    }
    Ok(tid as i64)
}

fn fork(t: &mut Thread, flags: u64, sp: u64, ptid: u64, ctid: u64, tls: u64) -> R {
    if flags & 0xff != libc::SIGCHLD as u64 && flags & 0xff != 0 {
        return deny(&format!("clone({flags:#x})"), "exit signals other than SIGCHLD", libc::EINVAL);
    }
    // The child counts as a process, a thread and a copy of this process's memory.
    let bytes = m().space().accessible();
    if !limits::before_fork(bytes) {
        return deny("fork", "the policy's limits on processes, threads or memory", libc::EAGAIN);
    }
    // Hold every lock of the monitor across fork, in one order, so the child gets
    // them consistent (another thread holding one at the moment of fork would leave it
    // locked for ever in the child), and a pin: the pidfd is born at the program's
    // numbers.
    let pin = fdtable::pin();
    let space = m().space();
    let cwd = m().cwd.lock().unwrap_or_else(|e| e.into_inner());
    let mut kids = children();
    let others = (
        m().tids.lock().unwrap_or_else(|e| e.into_inner()),
        m().exe.lock().unwrap_or_else(|e| e.into_inner()),
        m().rlimits.lock().unwrap_or_else(|e| e.into_inner()),
        signals::actions(),
        exitless::lock_pool(),
    );
    // The monitor's other locks, each taken alone elsewhere (never with one above).
    let leaves = (fdtable::lock_noted(), super::net::lock_bound(), audit::lock_layers(), super::supervise::lock_lifeline());
    // SAFETY: fork from the monitor (glibc's, so its locks are consistent in the
    // child; the runtime gives the child a VM of its own); the child continues this
    // thread's loop with the locks above released as the guards drop, and nothing
    // else of the parent's.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EAGAIN);
        drop((leaves, others, space, cwd, kids, pin));
        limits::fork_failed(bytes);
        return Err(neg(e));
    }
    if pid == 0 {
        let (mut tids, exe, rlimits, acts, mut pool) = others;
        *tids = vec![gettid()];
        // No helper exists in the child.
        pool.clear();
        drop((tids, exe, rlimits, acts, pool, leaves));
        exitless::forget_after_fork();
        // The parent's children are not this process's: their pidfds close.
        kids.clear();
        limits::after_fork_child(bytes);
        drop((cwd, kids));
        let mut space = space;
        space.after_fork();
        drop((space, pin));
        // A lifeline of its own: its SIGKILL comes when the supervisor goes.
        super::supervise::arm_lifeline(None, &|f| libdune::runtime::dup_reserved(std::os::fd::AsFd::as_fd(&f)));
        m().threads.store(1, Ordering::SeqCst);
        if sp != 0 {
            t.ctx.tf.rsp = sp;
        }
        if flags & CLONE_SETTLS != 0 {
            t.ctx.fs_base = tls;
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            write_user(ctid, &gettid().to_le_bytes());
        }
        t.clear_tid = if flags & CLONE_CHILD_CLEARTID != 0 { ctid } else { 0 };
        return Ok(0);
    }
    drop(leaves);
    // The child's pidfd. It cannot have been reaped and its pid reused meanwhile:
    // reaping it takes a wait this process makes, and a pid comes round again only
    // after the whole pid space.
    let pidfd = raw(libc::SYS_pidfd_open, [pid as u64, 0, 0, 0, 0, 0]);
    if pidfd >= 0 {
        // SAFETY: pidfd_open made this descriptor for this process alone.
        let low = unsafe { fdtable::adopt(pidfd as i32) };
        match fdtable::own(low) {
            Ok(fd) => kids.push((pid, fd)),
            Err(e) => audit::line(&format!("child {pid}: cannot keep its pidfd ({e}); the program may not signal it")),
        }
    }
    drop((others, space, cwd, kids, pin));
    if flags & CLONE_PARENT_SETTID != 0 {
        write_user(ptid, &pid.to_le_bytes());
    }
    Ok(pid as i64)
}

// ---- exit --------------------------------------------------------------------------

/// `exit`: ends the calling program thread (the process with the last one).
pub fn exit_thread(t: &mut Thread, code: u64) -> Flow {
    if t.clear_tid != 0 && write_user(t.clear_tid, &0u32.to_le_bytes()) {
        raw(libc::SYS_futex, [t.clear_tid, libc::FUTEX_WAKE as u64, 1, 0, 0, 0]);
    }
    if m().threads.fetch_sub(1, Ordering::SeqCst) == 1 {
        exit_group(code);
    }
    limits::release(Kind::Threads, 1);
    forget_tid();
    Flow::ThreadExit
}

fn forget_tid() {
    let me = gettid();
    m().tids.lock().unwrap_or_else(|e| e.into_inner()).retain(|&t| t != me);
}

/// A program thread ends because another one called `execve`.
pub fn thread_gone() {
    forget_tid();
    m().threads.fetch_sub(1, Ordering::SeqCst);
    limits::release(Kind::Threads, 1);
}

/// Before `execve` in a program with several threads: ends every other program
/// thread, as Linux does, and waits for them (each sees `exec_gen` change when it
/// next comes back to the monitor; the monitor's signal brings back those in ring 3
/// or blocked in a call).
fn end_other_threads(t: &mut Thread) -> Result<(), i64> {
    t.execing = true;
    m().exec_gen.fetch_add(1, Ordering::SeqCst);
    let me = gettid();
    let start = std::time::Instant::now();
    while m().threads.load(Ordering::SeqCst) > 1 {
        let others: Vec<i32> = m().tids.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().filter(|&x| x != me).collect();
        for tid in others {
            // SAFETY: a signal to a thread of this process, whose handler does nothing.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signals::MONITOR_SIGNAL) };
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            t.execing = false;
            return Err(-(libc::EAGAIN as i64));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(())
}

/// Ends the calling host thread (the main thread's program thread ended first).
pub fn exit_thread_now(code: u64) -> ! {
    loop {
        raw(libc::SYS_exit, [code, 0, 0, 0, 0, 0]);
    }
}

/// `exit_group`: the whole program ends with `code`.
pub fn exit_group(code: u64) -> ! {
    audit::at_exit();
    limits::process_gone(getpid());
    loop {
        raw(libc::SYS_exit_group, [code, 0, 0, 0, 0, 0]);
    }
}

// ---- execve ------------------------------------------------------------------------

fn string_vector(addr: u64) -> Result<Vec<OsString>, i64> {
    let mut out = Vec::new();
    let mut total = 0usize;
    if addr == 0 {
        return Ok(out);
    }
    for i in 0.. {
        if i > 65536 {
            return Err(-(libc::E2BIG as i64));
        }
        let p = copy_in(addr.wrapping_add(i * 8), 8)?;
        let p = u64::from_le_bytes(p[..8].try_into().unwrap_or_default());
        if p == 0 {
            break;
        }
        let s = cstr_in(p, 128 * 1024).map_err(|e| if e == -(libc::ENAMETOOLONG as i64) { -(libc::E2BIG as i64) } else { e })?;
        total += s.len() + 1;
        if total > 2 * 1024 * 1024 {
            return Err(-(libc::E2BIG as i64));
        }
        out.push(OsString::from_vec(s));
    }
    Ok(out)
}

/// `execve` and `execveat`: a new image in the same sandbox.
pub fn execve(t: &mut Thread, nr: u64, a: [u64; 6]) -> Flow {
    let r = exec_prepare(nr, a);
    let (exec, shown) = match r {
        Ok(x) => x,
        Err(e) => return set_result(t, Err(e)),
    };
    if audit::tracing() {
        audit::line(&format!("execve(\"{shown}\") = 0"));
    }
    if m().threads.load(Ordering::SeqCst) > 1 {
        if let Err(e) = end_other_threads(t) {
            return set_result(t, deny(&format!("execve(\"{shown}\")"), "the program's other threads did not end", -e as i32));
        }
    }
    // The point of no return: the old image goes.
    close_on_exec();
    signals::reset_on_exec();
    let opts = StackOptions { sysinfo_ehdr: (m().vdso != 0).then_some(m().vdso), hwcap2: signals::hwcap2(), ..StackOptions::default() };
    let mut space = m().space();
    space.clear();
    let loaded = match loader::load(&exec, &mut *space, &opts) {
        Ok(l) => l,
        Err(e) => {
            drop(space);
            signals::kill(t, libc::SIGSEGV, &format!("execve failed after the old image was gone: {e}"));
        }
    };
    space.brk_start = loaded.brk_start;
    space.brk_cur = loaded.brk_start;
    drop(space);
    let exe = super::state::Identity::new(std::path::PathBuf::from(&exec.execfn), &exec.argv, &exec.env);
    drop(exec);
    match UserContext::new(loaded.entry, loaded.rsp) {
        Ok(ctx) => t.ctx = ctx,
        Err(e) => signals::kill(t, libc::SIGSEGV, &format!("execve: {e}")),
    }
    t.altstack = (0, libc::SS_DISABLE, 0);
    t.clear_tid = 0;
    *m().exe.lock().unwrap_or_else(|e| e.into_inner()) = exe;
    Flow::Continue
}

/// Opens a file of the new image (the program, a `#!` interpreter, `PT_INTERP`)
/// through the path rules, for reading, relative to `base`; the descriptor goes to
/// the monitor's reserved numbers before the pin drops (a sibling thread cannot swap
/// another file in for the loader). Non-blocking: a FIFO is refused by the loader.
fn open_image(base: &std::path::Path, p: &std::path::Path) -> std::io::Result<std::fs::File> {
    let _pin = fdtable::pin();
    let f = m().policy.paths().open(base, p.as_os_str().as_encoded_bytes(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC, 0).map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    Ok(std::fs::File::from(fdtable::own(f)?))
}

fn exec_prepare(nr: u64, a: [u64; 6]) -> Result<(loader::Exec, String), i64> {
    let (dirfd, path, argv, envp, flags) = if nr as i64 == libc::SYS_execve { (libc::AT_FDCWD as u32 as u64, a[0], a[1], a[2], 0) } else { (a[0], a[1], a[2], a[3], a[4]) };
    if flags & !(libc::AT_SYMLINK_NOFOLLOW as u64) != 0 {
        return Err(neg(libc::EINVAL));
    }
    let p = cstr_in(path, 4096)?;
    let argv = string_vector(argv)?;
    let env = string_vector(envp)?;
    let shown = String::from_utf8_lossy(&p).into_owned();
    let base = if dirfd as i32 == libc::AT_FDCWD {
        m().cwd()
    } else {
        fdtable::fd(dirfd)?;
        std::fs::read_link(fdtable::proc_fd(dirfd as i32)).map_err(|_| neg(libc::EBADF))?
    };
    let check = |path: &[u8]| -> Result<std::path::PathBuf, i64> {
        let _pin = fdtable::pin();
        m().policy.paths().check(&base, path, flags == 0, Access::Read).map(|r| r.canonical).map_err(|e| {
            if e.0 == libc::EACCES || e.0 == libc::EXDEV {
                audit::deny(&format!("execve(\"{}\")", String::from_utf8_lossy(path)), "outside the allowed read trees");
            }
            neg(e.0)
        })
    };
    let canonical = check(&p)?;
    let mut argv = argv;
    if argv.is_empty() {
        argv.push(canonical.clone().into_os_string());
    }
    let root = std::path::PathBuf::from("/");
    let exec = loader::prepare_with(canonical.as_os_str(), argv, &env, &|f| open_image(&root, f)).map_err(|e| {
        if audit::tracing() {
            audit::line(&format!("execve(\"{shown}\"): {e}"));
        }
        neg(match e.exit_code() {
            127 => libc::ENOENT,
            _ => libc::ENOEXEC,
        })
    })?;
    // What actually runs — a script's interpreter, the ELF interpreter — must be
    // readable under the policy too (the opener enforced it; this names the file in
    // the audit line).
    for img in std::iter::once(&exec.program).chain(exec.interp.iter()) {
        check(img.path.as_os_str().as_encoded_bytes())?;
    }
    Ok((exec, shown))
}

/// Closes the program's close-on-exec descriptors (the monitor's sit above the
/// program's numbers and are never listed): with the program's other threads gone,
/// nothing else changes the table meanwhile.
fn close_on_exec() {
    let _x = fdtable::exclusive();
    let limit = fdtable::program_limit();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|&f| f < limit).collect();
    for f in fds {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let fl = unsafe { libc::fcntl(f, libc::F_GETFD) };
        if fl >= 0 && fl & libc::FD_CLOEXEC != 0 {
            // SAFETY: a program descriptor marked close-on-exec, closed as exec would.
            unsafe { libc::close(f) };
        }
    }
}

// ---- the processes the program may name ------------------------------------------------

/// A target of `kill`: this process, a child (its pid), or this process's group when
/// the sandbox leads it (otherwise the group holds the shell or the launcher too), or
/// a child's group.
pub fn kill_target(pid: i64) -> Result<(), i64> {
    // SAFETY: getpgrp has no effect.
    let (me, pg) = (getpid() as i64, unsafe { libc::getpgrp() } as i64);
    let own_group = pg == me;
    if pid == me || (own_group && (pid == 0 || pid == -pg)) || is_child(pid) || (pid < -1 && is_child(-pid)) {
        return Ok(());
    }
    Err(EPERM)
}

/// A pid argument of a call that acts on a process or thread: 0, this process, one
/// of its threads, or a child.
pub fn own_pid(pid: i64) -> Result<(), i64> {
    if self_pid(pid).is_ok() || is_child(pid) { Ok(()) } else { Err(EPERM) }
}

/// A pid argument of a call that changes a process (priority, affinity, scheduling,
/// limits) or reads what Linux shows of any process without a permission check (CPU
/// clocks, capabilities): 0, this process or one of its threads only.
pub fn self_pid(pid: i64) -> Result<(), i64> {
    if pid == 0 || own_thread(pid as i32) { Ok(()) } else { Err(EPERM) }
}

fn sigqueue_info(a: &[u64; 6], at: usize) -> Result<Vec<u8>, i64> {
    let mut info = copy_in(a[at], 128)?;
    // Only what a process may send itself (si_code < 0), as Linux requires.
    let code = i32::from_le_bytes(info[8..12].try_into().unwrap_or_default());
    if code >= 0 {
        info[8..12].copy_from_slice(&(-1i32).to_le_bytes());
    }
    Ok(info)
}

/// `kill`, `tgkill`, `tkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo`.
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn kill(n: i64, a: [u64; 6]) -> R {
    use libc::*;
    let sig = a[if n == SYS_tgkill || n == SYS_rt_tgsigqueueinfo { 2 } else { 1 }];
    if sig as i32 == signals::MONITOR_SIGNAL {
        return deny(&format!("{}(.., {})", super::sys::name(n as u64), signals::MONITOR_SIGNAL), "the monitor's own signal", EINVAL);
    }
    let me = self::getpid() as i64;
    match n {
        SYS_kill => {
            let pid = a[0] as i32 as i64;
            if pid > 0 && pid != me {
                // A child through its pidfd: a reaped child's pid names nothing.
                return signal_child(pid, sig, None).unwrap_or_else(|| deny(&format!("kill({pid}, {sig})"), "not the sandbox's own process or child", EPERM));
            }
            if kill_target(pid).is_err() {
                return deny(&format!("kill({pid}, {sig})"), "not the sandbox's own process or child", EPERM);
            }
            fwd(n, a)
        }
        SYS_tgkill | SYS_rt_tgsigqueueinfo if a[0] as i32 as i64 != me => deny(&format!("{}({}, ..)", super::sys::name(n as u64), a[0] as i32), "another process", EPERM),
        SYS_tgkill => fwd(n, a),
        // Only threads of this process: tgkill checks that.
        SYS_tkill => fwd(SYS_tgkill, [me as u64, a[0], a[1], 0, 0, 0]),
        SYS_rt_sigqueueinfo => {
            let pid = a[0] as i32 as i64;
            let info = sigqueue_info(&a, 2)?;
            if pid != me {
                return signal_child(pid, sig, Some(&info)).unwrap_or_else(|| deny(&format!("rt_sigqueueinfo({pid}, {sig})"), "not the sandbox's own process or child", EPERM));
            }
            fwd(n, [a[0], a[1], info.as_ptr() as u64, 0, 0, 0])
        }
        SYS_rt_tgsigqueueinfo => {
            let info = sigqueue_info(&a, 3)?;
            fwd(n, [a[0], a[1], a[2], info.as_ptr() as u64, 0, 0])
        }
        _ => Err(neg(ENOSYS)),
    }
}

/// `wait4` and `waitid`: a reaped child is forgotten (its pidfd closes, what it held
/// of the limits goes back), whatever happens to the copy-outs after: the kernel
/// writes status, info and rusage into the monitor's buffers, and a child it reaped
/// is forgotten before they are copied to the program (which may fail). A child
/// still remembered after it was reaped would leave its pid a target for signals and
/// `F_SETOWN` once a process outside reuses it.
pub fn wait(n: i64, a: [u64; 6]) -> R {
    let mut ru = [0u8; 144];
    // The rusage pointer: wait4's fourth argument, waitid's fifth.
    let ru_arg = if n == libc::SYS_wait4 { a[3] } else { a[4] };
    let ru_ptr = if ru_arg != 0 { ru.as_mut_ptr() as u64 } else { 0 };
    if n == libc::SYS_wait4 {
        opt(a[1], 4)?;
        opt(a[3], 144)?;
        let mut status = 0i32;
        let pid = fwd(n, [a[0], &mut status as *mut i32 as u64, a[2], ru_ptr, 0, 0])?;
        if pid > 0 && (libc::WIFEXITED(status) || libc::WIFSIGNALED(status)) {
            reaped(pid as i32);
        }
        // As Linux: written only for a child that changed state.
        if pid > 0 && a[1] != 0 {
            copy_out(a[1], &status.to_le_bytes())?;
        }
        if pid > 0 && a[3] != 0 {
            copy_out(a[3], &ru)?;
        }
        return Ok(pid);
    }
    // P_PIDFD: the descriptor is the program's (the monitor's pidfds of its children
    // sit above the program's numbers).
    // Decided on the int Linux reads (`which`), and that int is what is passed on.
    let which = a[0] as i32;
    if which == libc::P_PIDFD as i32 {
        fdtable::fd(a[1])?;
    }
    opt(a[2], 128)?;
    opt(a[4], 144)?;
    let mut info = [0u8; 128];
    let r = fwd(n, [which as u32 as u64, a[1], info.as_mut_ptr() as u64, a[3], ru_ptr, 0])?;
    let code = i32::from_le_bytes(info[8..12].try_into().unwrap_or_default());
    let pid = i32::from_le_bytes(info[16..20].try_into().unwrap_or_default());
    if pid > 0 && a[3] & libc::WNOWAIT as u64 == 0 && matches!(code, libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED) {
        reaped(pid);
    }
    if a[2] != 0 {
        copy_out(a[2], &info)?;
    }
    if a[4] != 0 {
        copy_out(a[4], &ru)?;
    }
    Ok(r)
}

/// Calls that take a pid: reading about this process, its threads or its children;
/// changing this process or its threads only.
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn pid_call(n: i64, a: [u64; 6]) -> R {
    use libc::*;
    match n {
        SYS_getpgid | SYS_getsid => {
            own_pid(a[0] as i32 as i64)?;
            fwd(n, a)
        }
        SYS_setpgid => {
            // The kernel allows only this process and its children.
            own_pid(a[0] as i32 as i64)?;
            fwd(n, a)
        }
        SYS_getpriority | SYS_setpriority | SYS_ioprio_get => {
            // PRIO_PROCESS (0) / IOPRIO_WHO_PROCESS (1) only.
            let which_ok = a[0] == 0 || (n == SYS_ioprio_get && a[0] == 1);
            if !which_ok {
                return deny(&format!("{}({}, {})", super::sys::name(n as u64), a[0], a[1] as i32), "only the program's own processes", EPERM);
            }
            let pid = a[1] as i32 as i64;
            if n == SYS_setpriority { self_pid(pid)? } else { own_pid(pid)? }
            fwd(n, a)
        }
        SYS_sched_getaffinity | SYS_sched_setaffinity => {
            let pid = a[0] as i32 as i64;
            if n == SYS_sched_setaffinity { self_pid(pid)? } else { own_pid(pid)? }
            user(a[2], a[1])?;
            fwd(n, a)
        }
        SYS_sched_getparam => {
            own_pid(a[0] as i32 as i64)?;
            user(a[1], 4)?;
            fwd(n, a)
        }
        SYS_sched_getscheduler => {
            own_pid(a[0] as i32 as i64)?;
            fwd(n, a)
        }
        SYS_prlimit64 => {
            if a[0] != 0 && a[0] as i32 != self::getpid() {
                return deny("prlimit64", "another process", EPERM);
            }
            super::misc::rlimit(n, [a[1], a[2], a[3], 0, 0, 0])
        }
        _ => Err(neg(ENOSYS)),
    }
}
