//! The system-call table: every call the program may make, and how the monitor
//! handles it. One `match` arm per call (or family); a call not listed is denied.
//!
//! Order of checks for each call: the policy ([`crate::policy::Policy::decide`]),
//! then this table. Arguments are checked here: descriptors must not be the
//! monitor's, every pointer must lie in the program's memory (`mem`), and what the
//! monitor must interpret — paths, socket addresses, I/O vectors, message headers,
//! signal masks, `clone` arguments, `execve` vectors — is copied into the monitor's
//! memory first and the copy is what is checked and used. Plain data buffers
//! (`read`, `write`) are passed to Linux in place: their contents do not matter to
//! the policy, and the program's address space never shrinks under them (`mem`).
//!
//! Calls that hand Linux a pointer it keeps using later (`set_robust_list`, `rseq`,
//! `set_tid_address`) are emulated or refused: the kernel would write through them
//! long after the check, and `rseq` would let the program redirect the host thread.

use std::ffi::CStr;

use super::{audit, files, m, net, procs, signals, uaccess, Flow, Thread};
use crate::policy::{syscalls, Action};

/// Result of a call: `Ok(value)` or `Err(-errno)`.
pub type R = Result<i64, i64>;

const NEG_EFAULT: i64 = -(libc::EFAULT as i64);
const NEG_EBADF: i64 = -(libc::EBADF as i64);
const NEG_EINVAL: i64 = -(libc::EINVAL as i64);
const NEG_EPERM: i64 = -(libc::EPERM as i64);
const NEG_ENOSYS: i64 = -(libc::ENOSYS as i64);

std::thread_local! {
    /// System calls this thread made in Linux (to tell forwarded calls from emulated).
    static RAW_CALLS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Performs a system call in Linux (one exit to the host, through the runtime).
pub fn raw(nr: i64, a: [u64; 6]) -> i64 {
    RAW_CALLS.with(|c| c.set(c.get() + 1));
    let r: i64;
    // SAFETY: the arguments were checked by the caller for this call: descriptors
    // and pointers are the program's (or the monitor's own copies).
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") nr => r, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

fn ret(r: i64) -> R {
    if r < 0 && r > -4096 { Err(r) } else { Ok(r) }
}

fn fwd(nr: i64, a: [u64; 6]) -> R {
    if super::exitless::thread_agnostic(nr) {
        if let Some(r) = super::exitless::call(nr, a) {
            // Forwarded, through the thread's helper (no exit).
            RAW_CALLS.with(|c| c.set(c.get() + 1));
            return ret(r);
        }
    }
    ret(raw(nr, a))
}

/// Whether `[addr, addr+len)` is the program's memory.
pub fn user(addr: u64, len: u64) -> Result<(), i64> {
    if m().space().contains(addr, len) { Ok(()) } else { Err(NEG_EFAULT) }
}

/// As [`user`], but a null pointer is fine (an optional argument).
pub fn opt(addr: u64, len: u64) -> Result<(), i64> {
    if addr == 0 { Ok(()) } else { user(addr, len) }
}

/// Reads program memory into `buf`; false if it is not the program's or faults.
pub fn read_user(addr: u64, buf: &mut [u8]) -> bool {
    m().space().contains(addr, buf.len() as u64) && uaccess::read(addr, buf)
}

/// Writes `data` to program memory; false if it is not the program's or faults.
pub fn write_user(addr: u64, data: &[u8]) -> bool {
    m().space().contains(addr, data.len() as u64) && uaccess::write(addr, data)
}

/// A copy of `len` bytes of program memory.
pub fn copy_in(addr: u64, len: usize) -> Result<Vec<u8>, i64> {
    let mut v = vec![0u8; len];
    if read_user(addr, &mut v) { Ok(v) } else { Err(NEG_EFAULT) }
}

/// A copy of the NUL-terminated string at `addr` (at most `max` bytes).
pub fn cstr_in(addr: u64, max: usize) -> Result<Vec<u8>, i64> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let chunk = (4096 - (at % 4096)) as usize;
        let mut b = vec![0u8; chunk.min(max - out.len())];
        if !read_user(at, &mut b) {
            return Err(NEG_EFAULT);
        }
        if let Some(n) = b.iter().position(|&c| c == 0) {
            out.extend_from_slice(&b[..n]);
            return Ok(out);
        }
        out.extend_from_slice(&b);
        at += b.len() as u64;
    }
    Err(-(libc::ENAMETOOLONG as i64))
}

/// A descriptor argument: the monitor's own and the runtime's (at or above its
/// descriptor base: the VM, vCPUs, /dev/kvm) are not the program's.
pub fn fd(x: u64) -> Result<(), i64> {
    let f = x as i32;
    if m().is_own_fd(f as i64) || libdune::runtime::descriptor_base().is_some_and(|b| f >= b) {
        return Err(NEG_EBADF);
    }
    Ok(())
}

/// A denial: one audit line, then `-errno`.
pub fn deny(what: &str, why: &str, errno: i32) -> R {
    audit::deny(what, why);
    Err(-(errno as i64))
}

/// The name of system call `nr`.
pub fn name_of(nr: u64) -> String {
    name(nr)
}

fn name(nr: u64) -> String {
    syscalls::name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// Which arguments of `nr` are paths (for `--trace`).
fn path_args(nr: u64) -> &'static [usize] {
    use libc::*;
    #[allow(non_upper_case_globals)] // libc's SYS_* names
    match nr as i64 {
        SYS_open | SYS_creat | SYS_stat | SYS_lstat | SYS_access | SYS_readlink | SYS_mkdir | SYS_unlink | SYS_rmdir | SYS_chmod
        | SYS_chown | SYS_lchown | SYS_truncate | SYS_chdir | SYS_execve | SYS_statfs | SYS_mknod | SYS_utime | SYS_utimes => &[0],
        SYS_openat | SYS_openat2 | SYS_newfstatat | SYS_statx | SYS_faccessat | SYS_faccessat2 | SYS_readlinkat | SYS_mkdirat
        | SYS_unlinkat | SYS_fchmodat | SYS_fchownat | SYS_execveat | SYS_utimensat | SYS_mknodat | SYS_inotify_add_watch | SYS_futimesat => &[1],
        SYS_rename | SYS_link | SYS_symlink => &[0, 1],
        SYS_renameat | SYS_renameat2 | SYS_linkat => &[1, 3],
        SYS_symlinkat => &[0, 2],
        _ => &[],
    }
}

/// `name(args)` as strace writes it: paths as strings, small numbers in decimal,
/// addresses in hex. Reads the paths from program memory (only under `--trace`).
fn describe(nr: u64, a: &[u64; 6]) -> String {
    let paths = path_args(nr);
    // Up to the last non-zero argument (the table does not record each call's arity).
    let n = a.iter().rposition(|&v| v != 0).map_or(0, |i| i + 1).max(paths.iter().max().map_or(0, |&i| i + 1));
    let mut out = format!("{}(", name(nr));
    for (i, &v) in a.iter().enumerate().take(n) {
        if i > 0 {
            out.push_str(", ");
        }
        if paths.contains(&i) && v != 0 {
            match cstr_in(v, 256) {
                Ok(p) => out.push_str(&format!("{:?}", String::from_utf8_lossy(&p))),
                Err(_) => out.push_str(&format!("{v:#x}")),
            }
        } else if (v as i64).unsigned_abs() < 1 << 20 {
            out.push_str(&(v as i64).to_string());
        } else {
            out.push_str(&format!("{v:#x}"));
        }
    }
    out.push(')');
    out
}

/// Handles the system call ring 3 just made (`t.ctx.tf`).
pub fn handle(t: &mut Thread) -> Flow {
    let tf = &t.ctx.tf;
    let nr = tf.rax;
    let a = [tf.rdi, tf.rsi, tf.rdx, tf.r10, tf.r8, tf.r9];
    t.last_call = (nr, a);
    let shown = if audit::tracing() { describe(nr, &a) } else { String::new() };
    let raw_before = RAW_CALLS.with(|c| c.get());
    audit::take_denied();
    let (action, why) = m().policy.explain(nr, &a);
    let verdict;
    let r: R = match action {
        Action::Allow | Action::Log => {
            if action == Action::Log {
                audit::line(&format!("logged {}({:#x}, {:#x}, {:#x}, ...): {why}", name(nr), a[0], a[1], a[2]));
            }
            match special(t, nr, a) {
                Some(flow) => return flow,
                None => {
                    verdict = "";
                    dispatch(t, nr, a)
                }
            }
        }
        Action::Errno(e) => {
            verdict = "denied by policy";
            audit::deny(&format!("{}({:#x}, {:#x}, {:#x}, ...)", name(nr), a[0], a[1], a[2]), why);
            Err(-(e as i64))
        }
        Action::Trap => {
            audit::deny(&name(nr), &format!("{why}: SIGSYS"));
            let mut info = [0u8; 128];
            info[0..4].copy_from_slice(&libc::SIGSYS.to_le_bytes());
            info[8..12].copy_from_slice(&1i32.to_le_bytes());
            signals::queue_sent(libc::SIGSYS, info.as_ptr().cast());
            t.ctx.tf.rax = NEG_ENOSYS as u64;
            return Flow::Continue;
        }
        Action::KillThread | Action::KillProcess => {
            audit::deny(&name(nr), why);
            signals::kill(t, libc::SIGSYS, &format!("{} is fatal under the policy", name(nr)));
        }
    };
    let v = match r {
        Ok(v) => v,
        Err(e) => e,
    };
    let (counter, kind) = if audit::take_denied() || matches!(action, Action::Errno(_)) {
        (&audit::STATS.denied, "denied")
    } else if RAW_CALLS.with(|c| c.get()) != raw_before {
        (&audit::STATS.forwarded, "forwarded")
    } else {
        (&audit::STATS.emulated, "emulated")
    };
    counter.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if audit::tracing() {
        let verdict = if verdict.is_empty() { kind } else { verdict.trim() };
        let errno = if (-4095..0).contains(&v) { format!(" ({})", std::io::Error::from_raw_os_error(-v as i32)) } else { String::new() };
        audit::line(&format!("{shown} = {v}{errno} [{verdict}]"));
    }
    t.ctx.tf.rax = v as u64;
    Flow::Continue
}

/// Calls that change the thread's context or end it.
fn special(t: &mut Thread, nr: u64, a: [u64; 6]) -> Option<Flow> {
    let trace = |what: &str| {
        if audit::tracing() {
            audit::line(&format!("{what}({:#x}, {:#x}, {:#x}, ...)", a[0], a[1], a[2]));
        }
    };
    Some(match nr as i64 {
        libc::SYS_rt_sigreturn => {
            trace("rt_sigreturn");
            signals::sigreturn(t)
        }
        libc::SYS_exit => {
            trace("exit");
            procs::exit_thread(t, a[0])
        }
        libc::SYS_exit_group => {
            trace("exit_group");
            procs::exit_group(a[0])
        }
        libc::SYS_clone | libc::SYS_clone3 | libc::SYS_fork | libc::SYS_vfork => procs::clone(t, nr, a),
        libc::SYS_execve | libc::SYS_execveat => procs::execve(t, nr, a),
        _ => return None,
    })
}

fn iovecs(addr: u64, n: u64) -> Result<Vec<u8>, i64> {
    if n > 1024 {
        return Err(NEG_EINVAL);
    }
    let v = copy_in(addr, (n * 16) as usize)?;
    for c in v.chunks(16) {
        let base = u64::from_le_bytes(c[0..8].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(c[8..16].try_into().unwrap_or_default());
        user(base, len)?;
    }
    Ok(v)
}

fn fd_set(addr: u64, n: u64) -> Result<(), i64> {
    opt(addr, n.div_ceil(64) * 8)
}

/// A sigset the program passes to a call that waits with it: copied, with the
/// monitor's own signals unblocked.
fn wait_mask(addr: u64, size: u64) -> Result<Option<[u8; 8]>, i64> {
    if addr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(NEG_EINVAL);
    }
    let b = copy_in(addr, 8)?;
    let mk = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    Ok(Some(signals::host_wait_mask(mk).to_le_bytes()))
}

fn sys_ioctl(a: [u64; 6]) -> R {
    fd(a[0])?;
    let req = a[1] as u32 as u64;
    // (request, size of what arg points to; 0 = arg is a number)
    const ALLOWED: &[(u64, u64)] = &[
        (0x5401, 60), (0x5402, 60), (0x5403, 60), (0x5404, 60), // TCGETS, TCSETS, TCSETSW, TCSETSF
        (0x5413, 8), (0x5414, 8), // TIOCGWINSZ, TIOCSWINSZ
        (0x540f, 4), (0x5410, 4), // TIOCGPGRP, TIOCSPGRP
        (0x541b, 4), (0x5421, 4), (0x5452, 4), // FIONREAD, FIONBIO, FIOASYNC
        (0x5450, 0), (0x5451, 0), (0x540b, 0), (0x540a, 0), (0x5409, 0), // FIONCLEX, FIOCLEX, TCFLSH, TCXONC, TCSBRK
        (0x5429, 4), // TIOCGSID
        (0x80045430, 4), // TIOCGPTN
        (0x40045431, 4), // TIOCSPTLCK
    ];
    match ALLOWED.iter().find(|(r, _)| *r == req) {
        Some(&(_, 0)) => fwd(libc::SYS_ioctl, [a[0], req, a[2], 0, 0, 0]),
        Some(&(_, n)) => {
            user(a[2], n)?;
            fwd(libc::SYS_ioctl, [a[0], req, a[2], 0, 0, 0])
        }
        None => deny(&format!("ioctl({}, {req:#x})", a[0] as i32), "request not in the sandbox's list", libc::ENOTTY),
    }
}

fn sys_fcntl(a: [u64; 6]) -> R {
    fd(a[0])?;
    match a[1] as i32 {
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => {
            user(a[2], 32)?;
        }
        16 => user(a[2], 8)?, // F_GETOWN_EX
        15 => {
            // F_SETOWN_EX: { type, pid }; the signal goes to that thread, process or group.
            let b = copy_in(a[2], 8)?;
            let (kind, pid) = (i32::from_le_bytes(b[0..4].try_into().unwrap_or_default()), i32::from_le_bytes(b[4..8].try_into().unwrap_or_default()));
            let target = if kind == 2 { -(pid as i64) } else { pid as i64 };
            if kind == 0 { own_pid(pid as i64)? } else { kill_target(target)? }
            return fwd(libc::SYS_fcntl, [a[0], a[1], b.as_ptr() as u64, 0, 0, 0]);
        }
        libc::F_SETOWN => kill_target(a[2] as i32 as i64)?,
        10 if !sendable(a[2] as i32 as i64) => return deny(&format!("fcntl(F_SETSIG, {})", a[2] as i32), "a signal the monitor keeps", libc::EINVAL),
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD | libc::F_GETFL | libc::F_SETFL | libc::F_GETOWN
        | libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ | libc::F_ADD_SEALS | libc::F_GET_SEALS | 10 | 11 /* F_SETSIG, F_GETSIG */
        | libc::F_SETLEASE | libc::F_GETLEASE | libc::F_NOTIFY => {}
        c => return deny(&format!("fcntl({}, {c})", a[0] as i32), "command not in the sandbox's list", libc::EINVAL),
    }
    fwd(libc::SYS_fcntl, a)
}

fn sys_futex(a: [u64; 6]) -> R {
    user(a[0], 4)?;
    let op = (a[1] & 0x7f) as i32;
    match op {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_LOCK_PI | libc::FUTEX_LOCK_PI2 | libc::FUTEX_WAIT_REQUEUE_PI => opt(a[3], 16)?,
        _ => {}
    }
    match op {
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP | libc::FUTEX_CMP_REQUEUE_PI | libc::FUTEX_WAIT_REQUEUE_PI => user(a[4], 4)?,
        _ => {}
    }
    fwd(libc::SYS_futex, a)
}

fn sys_prctl(a: [u64; 6]) -> R {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let n = cstr_in(a[1], 4096).map(|mut v| {
                v.truncate(15);
                v.push(0);
                v
            })?;
            fwd(libc::SYS_prctl, [a[0], n.as_ptr() as u64, 0, 0, 0, 0])
        }
        libc::PR_GET_NAME => {
            user(a[1], 16)?;
            fwd(libc::SYS_prctl, a)
        }
        libc::PR_GET_PDEATHSIG => {
            user(a[1], 4)?;
            fwd(libc::SYS_prctl, a)
        }
        libc::PR_SET_PDEATHSIG | libc::PR_GET_DUMPABLE | libc::PR_SET_DUMPABLE | libc::PR_SET_NO_NEW_PRIVS | libc::PR_GET_NO_NEW_PRIVS
        | libc::PR_GET_KEEPCAPS | libc::PR_CAPBSET_READ | libc::PR_GET_TIMERSLACK | libc::PR_SET_TIMERSLACK | libc::PR_GET_SECCOMP
        | libc::PR_SET_CHILD_SUBREAPER | libc::PR_GET_THP_DISABLE | libc::PR_SET_THP_DISABLE => fwd(libc::SYS_prctl, a),
        o => deny(&format!("prctl({o})"), "option not in the sandbox's list", libc::EINVAL),
    }
}

fn sys_arch_prctl(t: &mut Thread, a: [u64; 6]) -> R {
    const SET_FS: u64 = 0x1002;
    const GET_FS: u64 = 0x1003;
    match a[0] {
        SET_FS => {
            // The thread pointer must point into the program's own memory (0 too).
            if a[1] != 0 && !m().space().owns(a[1] & !4095, (a[1] & !4095) + 4096) {
                return deny(&format!("arch_prctl(ARCH_SET_FS, {:#x})", a[1]), "not the program's memory", libc::EPERM);
            }
            t.ctx.fs_base = a[1];
            Ok(0)
        }
        GET_FS => {
            if write_user(a[1], &t.ctx.fs_base.to_le_bytes()) { Ok(0) } else { Err(NEG_EFAULT) }
        }
        0x1001 | 0x1004 => deny("arch_prctl(ARCH_SET_GS/ARCH_GET_GS)", "GS belongs to the monitor", libc::EPERM),
        c => deny(&format!("arch_prctl({c:#x})"), "not supported in the sandbox", libc::EINVAL),
    }
}

fn kill_target(pid: i64) -> Result<(), i64> {
    // SAFETY: getpid/getpgrp have no effect.
    let (me, pg) = unsafe { (libc::getpid() as i64, libc::getpgrp() as i64) };
    // The process group only when the sandbox leads it: otherwise it holds the
    // shell or the launcher too.
    let own_group = pg == me;
    if pid == me || (own_group && (pid == 0 || pid == -pg)) || m().children.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|&c| c as i64 == pid || -(c as i64) == pid) {
        return Ok(());
    }
    Err(NEG_EPERM)
}

/// A pid argument of a call that acts on a process or thread: 0, this process, one
/// of its threads, or a child.
fn own_pid(pid: i64) -> Result<(), i64> {
    // SAFETY: getpid has no effect; tgkill with signal 0 only checks that `pid` is a
    // thread of this process.
    let mine = pid == 0 || unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), pid as i32, 0) } == 0;
    if mine || m().children.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|&c| c as i64 == pid) {
        Ok(())
    } else {
        Err(NEG_EPERM)
    }
}

/// Signal numbers the program may ask the kernel to send (to itself): not the
/// monitor's, nor the faults the monitor keeps.
fn sendable(sig: i64) -> bool {
    (0..64).contains(&sig) && sig as i32 != libc::SIGSEGV && sig as i32 != libc::SIGBUS
}

/// A descriptor whose file the program changes through it (fchmod, fchown,
/// futimens): the file must lie in a read-write tree, as for the path calls.
pub fn writable_fd(f: u64) -> Result<(), i64> {
    fd(f)?;
    let p = std::fs::read_link(format!("/proc/self/fd/{}", f as i32)).map_err(|_| NEG_EBADF)?;
    if !p.is_absolute() {
        // A pipe or socket: no file in a tree.
        return Ok(());
    }
    let cwd = m().cwd.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match m().policy.paths().check(&cwd, p.as_os_str().as_encoded_bytes(), false, crate::policy::Access::Write) {
        Ok(_) => Ok(()),
        Err(_) => deny(&format!("fchmod/fchown/futimens on {}", p.display()), "not in a read-write tree", libc::EPERM).map(|_| ()),
    }
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

/// Every other call: check, then perform.
#[allow(non_upper_case_globals)] // libc's SYS_* names
fn dispatch(t: &mut Thread, nr: u64, a: [u64; 6]) -> R {
    use libc::*;
    let n = nr as i64;
    match n {
        // ---- data on descriptors --------------------------------------------------
        SYS_read | SYS_write | SYS_pread64 | SYS_pwrite64 | SYS_getdents64 => {
            fd(a[0])?;
            user(a[1], a[2])?;
            fwd(n, a)
        }
        SYS_readv | SYS_writev | SYS_preadv | SYS_pwritev | SYS_preadv2 | SYS_pwritev2 => {
            fd(a[0])?;
            let v = iovecs(a[1], a[2])?;
            fwd(n, [a[0], v.as_ptr() as u64, a[2], a[3], a[4], a[5]])
        }
        SYS_lseek | SYS_fsync | SYS_fdatasync | SYS_ftruncate | SYS_fallocate | SYS_fadvise64 | SYS_flock | SYS_syncfs
        | SYS_listen | SYS_shutdown | SYS_readahead | SYS_sync_file_range => {
            fd(a[0])?;
            fwd(n, a)
        }
        SYS_close => {
            fd(a[0])?;
            fwd(n, a)
        }
        SYS_close_range => procs::close_range(a[0], a[1], a[2]),
        SYS_dup => {
            fd(a[0])?;
            fwd(n, a)
        }
        SYS_dup2 | SYS_dup3 => {
            fd(a[0])?;
            fd(a[1])?;
            fwd(n, a)
        }
        SYS_fcntl => sys_fcntl(a),
        SYS_ioctl => sys_ioctl(a),
        SYS_fstat => {
            fd(a[0])?;
            user(a[1], 144)?;
            fwd(n, a)
        }
        SYS_fstatfs => {
            fd(a[0])?;
            user(a[1], 120)?;
            fwd(n, a)
        }
        SYS_sendfile => {
            fd(a[0])?;
            fd(a[1])?;
            opt(a[2], 8)?;
            fwd(n, a)
        }
        SYS_splice | SYS_copy_file_range => {
            fd(a[0])?;
            fd(a[2])?;
            opt(a[1], 8)?;
            opt(a[3], 8)?;
            fwd(n, a)
        }
        SYS_tee => {
            fd(a[0])?;
            fd(a[1])?;
            fwd(n, a)
        }
        SYS_pipe | SYS_pipe2 => {
            user(a[0], 8)?;
            fwd(n, a)
        }
        SYS_poll => {
            user(a[0], a[1].saturating_mul(8))?;
            fwd(n, a)
        }
        SYS_ppoll => {
            user(a[0], a[1].saturating_mul(8))?;
            opt(a[2], 16)?;
            let mk = wait_mask(a[3], a[4])?;
            if mk.is_some() {
                t.saved_mask = Some(t.mask);
            }
            fwd(n, [a[0], a[1], a[2], mk.as_ref().map_or(0, |b| b.as_ptr() as u64), a[4], 0])
        }
        SYS_select => {
            fd_set(a[1], a[0])?;
            fd_set(a[2], a[0])?;
            fd_set(a[3], a[0])?;
            opt(a[4], 16)?;
            fwd(n, a)
        }
        SYS_pselect6 => {
            fd_set(a[1], a[0])?;
            fd_set(a[2], a[0])?;
            fd_set(a[3], a[0])?;
            opt(a[4], 16)?;
            // a[5]: { const sigset_t *ss; size_t ss_len; }
            let (mk, len) = if a[5] != 0 {
                let b = copy_in(a[5], 16)?;
                let (ss, len) = (u64::from_le_bytes(b[0..8].try_into().unwrap_or_default()), u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()));
                (wait_mask(ss, len)?, len)
            } else {
                (None, 0)
            };
            if mk.is_some() {
                t.saved_mask = Some(t.mask);
            }
            let data = [mk.as_ref().map_or(0, |b| b.as_ptr() as u64), len];
            fwd(n, [a[0], a[1], a[2], a[3], a[4], if a[5] != 0 { data.as_ptr() as u64 } else { 0 }])
        }
        SYS_epoll_create | SYS_epoll_create1 | SYS_eventfd | SYS_eventfd2 | SYS_timerfd_create | SYS_inotify_init | SYS_inotify_init1 => fwd(n, a),
        SYS_epoll_ctl => {
            fd(a[0])?;
            fd(a[2])?;
            opt(a[3], 12)?;
            fwd(n, a)
        }
        SYS_epoll_wait => {
            fd(a[0])?;
            user(a[1], a[2].saturating_mul(12))?;
            fwd(n, a)
        }
        SYS_epoll_pwait | SYS_epoll_pwait2 => {
            fd(a[0])?;
            user(a[1], a[2].saturating_mul(12))?;
            if n == SYS_epoll_pwait2 {
                opt(a[3], 16)?;
            }
            let mk = wait_mask(a[4], a[5])?;
            if mk.is_some() {
                t.saved_mask = Some(t.mask);
            }
            fwd(n, [a[0], a[1], a[2], a[3], mk.as_ref().map_or(0, |b| b.as_ptr() as u64), a[5]])
        }
        SYS_timerfd_settime => {
            fd(a[0])?;
            user(a[2], 32)?;
            opt(a[3], 32)?;
            fwd(n, a)
        }
        SYS_timerfd_gettime => {
            fd(a[0])?;
            user(a[1], 32)?;
            fwd(n, a)
        }
        SYS_signalfd4 => {
            fd(a[0])?;
            let mk = wait_mask(a[1], a[2])?.ok_or(NEG_EFAULT)?;
            fwd(n, [a[0], mk.as_ptr() as u64, a[2], a[3], 0, 0])
        }
        SYS_inotify_rm_watch => {
            fd(a[0])?;
            fwd(n, a)
        }
        SYS_memfd_create => {
            let name = cstr_in(a[0], 250)?;
            let c = std::ffi::CString::new(name).map_err(|_| NEG_EINVAL)?;
            fwd(n, [c.as_ptr() as u64, a[1], 0, 0, 0, 0])
        }
        // ---- paths -----------------------------------------------------------------
        SYS_open | SYS_openat | SYS_creat | SYS_openat2 | SYS_stat | SYS_lstat | SYS_newfstatat | SYS_statx | SYS_access
        | SYS_faccessat | SYS_faccessat2 | SYS_readlink | SYS_readlinkat | SYS_mkdir | SYS_mkdirat | SYS_unlink | SYS_unlinkat
        | SYS_rmdir | SYS_rename | SYS_renameat | SYS_renameat2 | SYS_link | SYS_linkat | SYS_symlink | SYS_symlinkat | SYS_chmod
        | SYS_fchmodat | SYS_chown | SYS_lchown | SYS_fchownat | SYS_utimensat | SYS_truncate | SYS_chdir | SYS_fchdir | SYS_mknod
        | SYS_mknodat | SYS_statfs | SYS_inotify_add_watch | SYS_getcwd | SYS_utime | SYS_utimes | SYS_futimesat => files::call(n, a),
        SYS_fchmod | SYS_fchown => {
            writable_fd(a[0])?;
            fwd(n, a)
        }
        SYS_getxattr | SYS_lgetxattr | SYS_fgetxattr | SYS_listxattr | SYS_llistxattr | SYS_flistxattr => Err(-(ENOTSUP as i64)),
        // ---- sockets ---------------------------------------------------------------
        SYS_socket | SYS_socketpair | SYS_bind | SYS_connect | SYS_accept | SYS_accept4 | SYS_sendto | SYS_recvfrom | SYS_sendmsg
        | SYS_recvmsg | SYS_getsockname | SYS_getpeername | SYS_setsockopt | SYS_getsockopt | SYS_sendmmsg | SYS_recvmmsg => net::call(n, a),
        // ---- memory ----------------------------------------------------------------
        SYS_mmap => {
            if a[3] & MAP_ANONYMOUS as u64 == 0 {
                fd(a[4])?;
            }
            match m().space().mmap(a[0], a[1], a[2] as i32, a[3] as i32, a[4] as i32, a[5]) {
                Ok(v) => Ok(v as i64),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => deny(&format!("mmap({:#x}, {:#x}, MAP_FIXED)", a[0], a[1]), "range is not the program's memory", libc::EPERM),
                Err(e) => Err(-(e.raw_os_error().unwrap_or(libc::EINVAL) as i64)),
            }
        }
        SYS_munmap | SYS_mprotect | SYS_mremap => {
            let r = match n {
                SYS_munmap => m().space().munmap(a[0], a[1]).map(|_| 0),
                SYS_mprotect => m().space().mprotect(a[0], a[1], a[2] as i32).map(|_| 0),
                _ => m().space().mremap(a[0], a[1], a[2], a[3] as i32, a[4]).map(|v| v as i64),
            };
            r.or_else(|e| {
                let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                if errno == libc::EPERM || (n != SYS_munmap && !m().space().owns(a[0] & !4095, a[0].saturating_add(a[1].max(1)))) {
                    deny(&format!("{}({:#x}, {:#x})", name(nr), a[0], a[1]), "range is not the program's memory", errno)
                } else {
                    Err(-(errno as i64))
                }
            })
        }
        SYS_brk => Ok(m().space().brk(a[0]) as i64),
        SYS_madvise | SYS_msync | SYS_mlock | SYS_munlock | SYS_mlock2 => {
            // The pages the kernel acts on: from the start's page to the end's.
            let end = a[0].checked_add(a[1]).and_then(|e| e.checked_add(4095)).map(|e| e & !4095).unwrap_or(u64::MAX);
            if !m().space().owns(a[0] & !4095, end) {
                return deny(&format!("{}({:#x}, {:#x})", name(nr), a[0], a[1]), "range is not the program's memory", libc::ENOMEM);
            }
            fwd(n, a)
        }
        SYS_mincore => {
            user(a[0] & !4095, a[1].div_ceil(4096) * 4096)?;
            user(a[2], a[1].div_ceil(4096))?;
            fwd(n, a)
        }
        SYS_membarrier => fwd(n, a),
        // ---- threads and synchronisation ------------------------------------------
        SYS_futex => sys_futex(a),
        SYS_set_tid_address => {
            t.clear_tid = a[0];
            // SAFETY: gettid has no effect.
            Ok(unsafe { libc::syscall(libc::SYS_gettid) })
        }
        SYS_set_robust_list => Ok(0),
        SYS_get_robust_list => Err(NEG_EPERM),
        SYS_rseq => Err(NEG_ENOSYS),
        SYS_sched_yield | SYS_getpid | SYS_getppid | SYS_gettid | SYS_getuid | SYS_geteuid | SYS_getgid | SYS_getegid | SYS_getpgrp
        | SYS_getpgid | SYS_getsid | SYS_setsid | SYS_setpgid | SYS_umask | SYS_alarm | SYS_pause | SYS_sync | SYS_getpriority
        | SYS_setpriority | SYS_sched_getscheduler | SYS_sched_get_priority_max | SYS_sched_get_priority_min | SYS_personality
        | SYS_timer_getoverrun | SYS_timer_delete | SYS_ioprio_get => {
            if n == SYS_personality && a[0] != 0 && a[0] != 0xffff_ffff {
                return deny(&format!("personality({:#x})", a[0]), "only PER_LINUX is allowed", libc::EPERM);
            }
            // Calls naming another process: only this one, its threads or children.
            if matches!(n, SYS_getpgid | SYS_getsid | SYS_setpgid) {
                own_pid(a[0] as i32 as i64)?;
            }
            if matches!(n, SYS_getpriority | SYS_setpriority | SYS_ioprio_get) && (a[0] != 0 /* PRIO_PROCESS / IOPRIO_WHO_PROCESS=1 */ && !(n == SYS_ioprio_get && a[0] == 1)) {
                return deny(&format!("{}({}, {})", name(nr), a[0], a[1] as i32), "only the program's own processes", libc::EPERM);
            }
            if matches!(n, SYS_getpriority | SYS_setpriority | SYS_ioprio_get) {
                own_pid(a[1] as i32 as i64)?;
            }
            fwd(n, a)
        }
        SYS_getgroups => {
            user(a[1], a[0].saturating_mul(4))?;
            fwd(n, a)
        }
        SYS_getresuid | SYS_getresgid => {
            user(a[0], 4)?;
            user(a[1], 4)?;
            user(a[2], 4)?;
            fwd(n, a)
        }
        SYS_sched_getaffinity | SYS_sched_setaffinity => {
            own_pid(a[0] as i32 as i64)?;
            user(a[2], a[1])?;
            fwd(n, a)
        }
        SYS_sched_getparam => {
            own_pid(a[0] as i32 as i64)?;
            user(a[1], 4)?;
            fwd(n, a)
        }
        SYS_getcpu => {
            opt(a[0], 4)?;
            opt(a[1], 4)?;
            fwd(n, [a[0], a[1], 0, 0, 0, 0])
        }
        // ---- time --------------------------------------------------------------------
        SYS_clock_gettime | SYS_clock_getres => {
            opt(a[1], 16)?;
            fwd(n, a)
        }
        SYS_gettimeofday => {
            opt(a[0], 16)?;
            opt(a[1], 8)?;
            fwd(n, a)
        }
        SYS_time => {
            opt(a[0], 8)?;
            fwd(n, a)
        }
        SYS_nanosleep => {
            user(a[0], 16)?;
            opt(a[1], 16)?;
            fwd(n, a)
        }
        SYS_clock_nanosleep => {
            user(a[2], 16)?;
            opt(a[3], 16)?;
            fwd(n, a)
        }
        SYS_times => {
            opt(a[0], 32)?;
            fwd(n, a)
        }
        SYS_getitimer => {
            user(a[1], 32)?;
            fwd(n, a)
        }
        SYS_setitimer => {
            user(a[1], 32)?;
            opt(a[2], 32)?;
            fwd(n, a)
        }
        SYS_timer_create => {
            // struct sigevent: a thread-directed notification must name this process.
            let mut sev = None;
            if a[1] != 0 {
                let b = copy_in(a[1], 64)?;
                let notify = i32::from_le_bytes(b[12..16].try_into().unwrap_or_default());
                let signo = i32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
                if notify != 1 /* SIGEV_NONE */ && !sendable(signo as i64) {
                    return deny(&format!("timer_create(signal {signo})"), "a signal the monitor keeps", libc::EINVAL);
                }
                if notify & 4 != 0 {
                    let tid = i32::from_le_bytes(b[16..20].try_into().unwrap_or_default());
                    // SAFETY: getpid has no effect; tgkill with signal 0 only checks.
                    if unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) } != 0 {
                        return Err(NEG_EINVAL);
                    }
                }
                sev = Some(b);
            }
            user(a[2], 4)?;
            fwd(n, [a[0], sev.as_ref().map_or(0, |b| b.as_ptr() as u64), a[2], 0, 0, 0])
        }
        SYS_timer_settime => {
            user(a[2], 32)?;
            opt(a[3], 32)?;
            fwd(n, a)
        }
        SYS_timer_gettime => {
            user(a[1], 32)?;
            fwd(n, a)
        }
        // ---- information -----------------------------------------------------------
        SYS_uname => {
            user(a[0], 390)?;
            fwd(n, a)
        }
        SYS_sysinfo => {
            user(a[0], 112)?;
            fwd(n, a)
        }
        SYS_getrusage => {
            user(a[1], 144)?;
            fwd(n, a)
        }
        SYS_getrandom => {
            user(a[0], a[1])?;
            fwd(n, a)
        }
        SYS_getrlimit => {
            user(a[1], 16)?;
            fwd(n, a)
        }
        SYS_setrlimit => {
            user(a[1], 16)?;
            fwd(n, a)
        }
        SYS_prlimit64 => {
            // SAFETY: getpid has no effect.
            if a[0] != 0 && a[0] as i32 != unsafe { libc::getpid() } {
                return deny("prlimit64", "another process", libc::EPERM);
            }
            opt(a[2], 16)?;
            opt(a[3], 16)?;
            fwd(n, a)
        }
        SYS_capget => {
            user(a[0], 8)?;
            opt(a[1], 24)?;
            fwd(n, a)
        }
        SYS_prctl => sys_prctl(a),
        SYS_arch_prctl => sys_arch_prctl(t, a),
        // ---- signals -----------------------------------------------------------------
        SYS_rt_sigaction => signals::sigaction(a[0], a[1], a[2], a[3]).pipe(ret),
        SYS_rt_sigprocmask => {
            if a[3] != 8 {
                return Err(NEG_EINVAL);
            }
            let old = t.mask;
            if a[1] != 0 {
                let b = copy_in(a[1], 8)?;
                let s = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
                let new = match a[0] as i32 {
                    SIG_BLOCK => old | s,
                    SIG_UNBLOCK => old & !s,
                    SIG_SETMASK => s,
                    _ => return Err(NEG_EINVAL),
                };
                signals::set_mask(t, new);
            }
            if a[2] != 0 && !write_user(a[2], &old.to_le_bytes()) {
                return Err(NEG_EFAULT);
            }
            Ok(0)
        }
        SYS_sigaltstack => signals::sigaltstack(t, a[0], a[1]).pipe(ret),
        SYS_rt_sigpending => signals::sigpending(t, a[0]).pipe(ret),
        SYS_rt_sigsuspend => {
            let mk = wait_mask(a[0], a[1])?.ok_or(NEG_EFAULT)?;
            t.saved_mask = Some(t.mask);
            fwd(n, [mk.as_ptr() as u64, 8, 0, 0, 0, 0])
        }
        SYS_rt_sigtimedwait => {
            let mut b = copy_in(a[0], 8)?;
            let set = u64::from_le_bytes(b[..8].try_into().unwrap_or_default()) & !signals::bit(signals::MONITOR_SIGNAL as usize);
            b[..8].copy_from_slice(&set.to_le_bytes());
            opt(a[1], 128)?;
            opt(a[2], 16)?;
            fwd(n, [b.as_ptr() as u64, a[1], a[2], 8, 0, 0])
        }
        SYS_kill | SYS_tgkill | SYS_tkill | SYS_rt_sigqueueinfo | SYS_rt_tgsigqueueinfo
            if a[if n == SYS_tgkill || n == SYS_rt_tgsigqueueinfo { 2 } else { 1 }] as i32 == signals::MONITOR_SIGNAL =>
        {
            deny(&format!("{}(.., {})", name(nr), signals::MONITOR_SIGNAL), "the monitor's own signal", libc::EINVAL)
        }
        SYS_kill => {
            kill_target(a[0] as i32 as i64).or_else(|_| deny(&format!("kill({}, {})", a[0] as i32, a[1]), "not the sandbox's own process or child", libc::EPERM).map(|_| ()))?;
            fwd(n, a)
        }
        SYS_tgkill => {
            // SAFETY: getpid has no effect.
            if a[0] as i32 != unsafe { libc::getpid() } {
                return deny(&format!("tgkill({}, {}, {})", a[0] as i32, a[1] as i32, a[2]), "another process", libc::EPERM);
            }
            fwd(n, a)
        }
        SYS_tkill => {
            // Only threads of this process: tgkill checks that.
            // SAFETY: getpid has no effect.
            fwd(SYS_tgkill, [unsafe { libc::getpid() } as u64, a[0], a[1], 0, 0, 0])
        }
        SYS_rt_sigqueueinfo => {
            kill_target(a[0] as i32 as i64)?;
            let info = sigqueue_info(&a, 2)?;
            fwd(n, [a[0], a[1], info.as_ptr() as u64, 0, 0, 0])
        }
        SYS_rt_tgsigqueueinfo => {
            // SAFETY: getpid has no effect.
            if a[0] as i32 != unsafe { libc::getpid() } {
                return Err(NEG_EPERM);
            }
            let info = sigqueue_info(&a, 3)?;
            fwd(n, [a[0], a[1], a[2], info.as_ptr() as u64, 0, 0])
        }
        // ---- processes -------------------------------------------------------------
        SYS_wait4 => {
            opt(a[1], 4)?;
            opt(a[3], 144)?;
            fwd(n, a)
        }
        SYS_waitid => {
            opt(a[2], 128)?;
            opt(a[4], 144)?;
            fwd(n, a)
        }
        _ => deny(&format!("{}({:#x}, {:#x}, {:#x}, ...)", name(nr), a[0], a[1], a[2]), "not a call the sandbox knows", libc::ENOSYS),
    }
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for i64 {}

/// A C string for a path the monitor has checked.
pub fn c(bytes: &[u8]) -> Result<std::ffi::CString, i64> {
    std::ffi::CString::new(bytes.to_vec()).map_err(|_| NEG_EINVAL)
}

/// The bytes of a C string.
pub fn bytes(c: &CStr) -> &[u8] {
    c.to_bytes()
}
