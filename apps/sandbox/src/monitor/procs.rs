//! Threads, processes and programs: `clone`, `fork`, `vfork`, `execve`, `exit`.
//!
//! - A new program thread (`CLONE_THREAD`) is a new monitor thread — its own vCPU —
//!   running the child's ring-3 context.
//! - Any other `clone`, `fork` and `vfork` is a `fork` of the whole sandbox: the
//!   child is the same monitor with the same policy, continuing the program's thread
//!   with 0 in rax. `CLONE_VM` without `CLONE_THREAD` (vfork, posix_spawn) therefore
//!   gets a copy of the memory, not a share of it; the parent does not wait.
//! - `execve` loads the new image inside the same sandbox with the monitor's own
//!   loader, after checking the program and its interpreter against the path rules.
//!   Nothing is ever executed outside the sandbox, and set-user-ID bits mean nothing.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::Ordering;

use libdune::user::UserContext;

use super::calls::{copy_in, cstr_in, deny, raw, write_user, R};
use super::{audit, m, signals, thread_loop, Flow, Thread};
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

fn set_result(t: &mut Thread, r: R) -> Flow {
    let v = match r {
        Ok(v) => v,
        Err(e) => e,
    };
    if audit::tracing() {
        audit::line(&format!("{} = {v}", super::calls::name_of(t.last_call.0)));
    }
    t.ctx.tf.rax = v as u64;
    Flow::Continue
}

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
    let max = m().policy.limits().threads.unwrap_or(0) as u64;
    if max != 0 && m().threads.load(Ordering::SeqCst) as u64 >= max {
        return deny("clone(CLONE_THREAD)", &format!("the policy allows {max} threads"), libc::EAGAIN);
    }
    if flags & CLONE_PARENT_SETTID != 0 && !m().space().contains(ptid, 4) || flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 && !m().space().contains(ctid, 4) {
        return Err(-(libc::EFAULT as i64));
    }
    let mut ctx = UserContext::new(t.ctx.tf.rip, t.ctx.tf.rsp).map_err(|_| -(libc::ENOMEM as i64))?;
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
        super::exitless::attach();
        thread_loop(&mut th);
        super::exitless::detach();
    });
    if spawned.is_err() {
        m().threads.fetch_sub(1, Ordering::SeqCst);
        return Err(-(libc::EAGAIN as i64));
    }
    let tid = rx.recv().map_err(|_| -(libc::EAGAIN as i64))?;
    if flags & CLONE_PARENT_SETTID != 0 {
        write_user(ptid, &tid.to_le_bytes());
    }
    Ok(tid as i64)
}

fn fork(t: &mut Thread, flags: u64, sp: u64, ptid: u64, ctid: u64, tls: u64) -> R {
    if flags & 0xff != libc::SIGCHLD as u64 && flags & 0xff != 0 {
        return deny(&format!("clone({flags:#x})"), "exit signals other than SIGCHLD", libc::EINVAL);
    }
    // Hold the monitor's locks across fork so the child gets them consistent.
    let space = m().space();
    let cwd = m().cwd.lock().unwrap_or_else(|e| e.into_inner());
    let mut children = m().children.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: fork from the monitor; the child continues this thread's loop with the
    // locks above released as the guards drop, and nothing else of the parent's.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(-(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EAGAIN) as i64));
    }
    if pid == 0 {
        super::exitless::forget_after_fork();
        children.clear();
        drop((space, cwd, children));
        m().threads.store(1, Ordering::SeqCst);
        *m().tids.lock().unwrap_or_else(|e| e.into_inner()) = vec![gettid()];
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
    children.push(pid);
    drop((space, cwd, children));
    if flags & CLONE_PARENT_SETTID != 0 {
        write_user(ptid, &pid.to_le_bytes());
    }
    Ok(pid as i64)
}

/// `exit`: ends the calling program thread (the process with the last one).
pub fn exit_thread(t: &mut Thread, code: u64) -> Flow {
    if t.clear_tid != 0 && write_user(t.clear_tid, &0u32.to_le_bytes()) {
        raw(libc::SYS_futex, [t.clear_tid, libc::FUTEX_WAKE as u64, 1, 0, 0, 0]);
    }
    if m().threads.fetch_sub(1, Ordering::SeqCst) == 1 {
        exit_group(code);
    }
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
    loop {
        raw(libc::SYS_exit_group, [code, 0, 0, 0, 0, 0]);
    }
}

/// `close_range`, never over the monitor's own descriptors.
pub fn close_range(first: u64, last: u64, flags: u64) -> R {
    let (first, last) = (first as u32, last as u32);
    if first > last {
        return Err(-(libc::EINVAL as i64));
    }
    let mut own: Vec<u32> = m().own_fds.read().unwrap_or_else(|e| e.into_inner()).iter().map(|&f| f as u32).collect();
    own.sort_unstable();
    let mut at = first;
    for f in own {
        if f < at || f > last {
            continue;
        }
        if f > at {
            let r = raw(libc::SYS_close_range, [at as u64, (f - 1) as u64, flags, 0, 0, 0]);
            if r < 0 {
                return Err(r);
            }
        }
        match f.checked_add(1) {
            Some(n) => at = n,
            None => return Ok(0),
        }
    }
    if at <= last {
        let r = raw(libc::SYS_close_range, [at as u64, last as u64, flags, 0, 0, 0]);
        if r < 0 {
            return Err(r);
        }
    }
    Ok(0)
}

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
        let p = copy_in(addr + i * 8, 8)?;
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
    let keep: Vec<i32> = std::iter::once(&exec.program).chain(exec.interp.iter()).map(|i| std::os::fd::AsRawFd::as_raw_fd(&i.file)).collect();
    close_on_exec(&keep);
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
    let exe = std::path::PathBuf::from(&exec.execfn);
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

fn exec_prepare(nr: u64, a: [u64; 6]) -> Result<(loader::Exec, String), i64> {
    let (dirfd, path, argv, envp, flags) = if nr as i64 == libc::SYS_execve { (libc::AT_FDCWD as u32 as u64, a[0], a[1], a[2], 0) } else { (a[0], a[1], a[2], a[3], a[4]) };
    if flags & !(libc::AT_SYMLINK_NOFOLLOW as u64) != 0 {
        return Err(-(libc::EINVAL as i64));
    }
    let p = cstr_in(path, 4096)?;
    let argv = string_vector(argv)?;
    let env = string_vector(envp)?;
    let shown = String::from_utf8_lossy(&p).into_owned();
    let base = if dirfd as i32 == libc::AT_FDCWD {
        m().cwd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    } else {
        super::calls::fd(dirfd)?;
        std::fs::read_link(format!("/proc/self/fd/{}", dirfd as i32)).map_err(|_| -(libc::EBADF as i64))?
    };
    let check = |path: &[u8]| -> Result<std::path::PathBuf, i64> {
        m().policy.paths().check(&base, path, flags == 0, Access::Read).map(|r| r.canonical).map_err(|e| {
            if e.0 == libc::EACCES || e.0 == libc::EXDEV {
                audit::deny(&format!("execve(\"{}\")", String::from_utf8_lossy(path)), "outside the allowed read trees");
            }
            -(e.0 as i64)
        })
    };
    let canonical = check(&p)?;
    let mut argv = argv;
    if argv.is_empty() {
        argv.push(canonical.clone().into_os_string());
    }
    let exec = loader::prepare(canonical.as_os_str(), argv, &env).map_err(|e| {
        if audit::tracing() {
            audit::line(&format!("execve(\"{shown}\"): {e}"));
        }
        -(match e.exit_code() {
            127 => libc::ENOENT,
            _ => libc::ENOEXEC,
        } as i64)
    })?;
    // What actually runs — a script's interpreter, the ELF interpreter — must be
    // readable under the policy too.
    for img in std::iter::once(&exec.program).chain(exec.interp.iter()) {
        check(img.path.as_os_str().as_encoded_bytes())?;
    }
    Ok((exec, shown))
}

/// Closes the program's close-on-exec descriptors (never the monitor's).
fn close_on_exec(keep: &[i32]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for f in fds {
        if m().is_own_fd(f as i64) || keep.contains(&f) {
            continue;
        }
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let fl = unsafe { libc::fcntl(f, libc::F_GETFD) };
        if fl >= 0 && fl & libc::FD_CLOEXEC != 0 {
            // SAFETY: a program descriptor marked close-on-exec, closed as exec would.
            unsafe { libc::close(f) };
        }
    }
}
