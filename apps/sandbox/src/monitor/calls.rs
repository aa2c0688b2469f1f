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

//! The system-call table: every call the program may make, and which family handles
//! it. One `match` arm per call or group of calls; a call not listed is denied.
//!
//! Order of checks for each call: the policy ([`crate::policy::Policy::decide`]),
//! then this table, then the family's own checks. The families share what sits below
//! them: [`super::user`] (pointers and copies), [`super::fdtable`] (descriptor
//! arguments, the monitor's own descriptors), [`super::sys`] (forwarding, denials).
//! Arguments the monitor must interpret — paths, socket addresses, I/O vectors,
//! message headers, signal masks, `clone` arguments, `execve` vectors — are copied
//! into the monitor's memory first, and the copy is what is checked and used. Plain
//! data buffers (`read`, `write`) are passed to Linux in place: their contents do not
//! matter to the policy, and the program's address space never shrinks under them.
//!
//! Calls that hand Linux a pointer it keeps using later (`set_robust_list`, `rseq`,
//! `set_tid_address`) are emulated or refused: the kernel would write through them
//! long after the check, and `rseq` would let the program redirect the host thread.

use super::state::{m, Flow, Thread};
use super::sys::{self, deny, name, raw_calls, R};
use super::user::cstr_in;
use super::{audit, fdtable, fds, files, io, mem, misc, net, procs, sigcalls, signals};
use crate::policy::Action;

/// The name of system call `nr`.
pub fn name_of(nr: u64) -> String {
    name(nr)
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
    let raw_before = raw_calls();
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
                    within_limit(nr, a, dispatch(t, nr, a))
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
            t.ctx.tf.rax = sys::ENOSYS as u64;
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
    } else if raw_calls() != raw_before {
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

/// A new descriptor the kernel placed at or above the program's limit goes again, and
/// the call fails with `EMFILE`, as it would have: the runtime raises the process's
/// real limit for a moment to place descriptors at its own numbers, and a sibling's
/// call in that moment, with every number of the program's in use, gets one of them.
#[allow(non_upper_case_globals)] // libc's SYS_* names
fn within_limit(nr: u64, a: [u64; 6], r: R) -> R {
    use libc::*;
    let makes = match nr as i64 {
        // A signalfd given an existing one changes it and returns it.
        SYS_signalfd | SYS_signalfd4 if a[0] as i32 != -1 => false,
        SYS_open | SYS_openat | SYS_openat2 | SYS_creat | SYS_dup | SYS_socket | SYS_accept | SYS_accept4 | SYS_epoll_create
        | SYS_epoll_create1 | SYS_eventfd | SYS_eventfd2 | SYS_timerfd_create | SYS_signalfd | SYS_signalfd4 | SYS_inotify_init
        | SYS_inotify_init1 | SYS_memfd_create | SYS_pidfd_open | SYS_pidfd_getfd | SYS_userfaultfd | SYS_perf_event_open
        | SYS_fanotify_init | SYS_open_by_handle_at | SYS_open_tree | SYS_fsopen | SYS_fsmount | SYS_fspick => true,
        SYS_fcntl => matches!(a[1] as i32, F_DUPFD | F_DUPFD_CLOEXEC),
        _ => false,
    };
    match r {
        Ok(f) if makes && f as i32 >= fdtable::program_limit() => {
            // SAFETY: the descriptor this call just made, at a number the program
            // cannot name; nothing else holds it.
            unsafe { libc::close(f as i32) };
            Err(-(EMFILE as i64))
        }
        r => r,
    }
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

/// Every other call: which family checks and performs it.
#[allow(non_upper_case_globals)] // libc's SYS_* names
fn dispatch(t: &mut Thread, nr: u64, a: [u64; 6]) -> R {
    use libc::*;
    let n = nr as i64;
    match n {
        // ---- data on descriptors (io) ----------------------------------------------
        SYS_read | SYS_write | SYS_pread64 | SYS_pwrite64 | SYS_getdents64 => io::buffer(n, a),
        SYS_readv | SYS_writev | SYS_preadv | SYS_pwritev | SYS_preadv2 | SYS_pwritev2 => io::vectored(n, a),
        SYS_lseek | SYS_fsync | SYS_fdatasync | SYS_fadvise64 | SYS_syncfs | SYS_readahead | SYS_sync_file_range => io::on_fd(n, a),
        SYS_inotify_rm_watch => io::inotify_rm_watch(n, a),
        SYS_ftruncate | SYS_fallocate => fds::resize(n, a),
        SYS_fstat | SYS_fstatfs => io::fstat(n, a),
        SYS_sendfile => io::sendfile(n, a),
        SYS_splice | SYS_copy_file_range => io::splice(n, a),
        SYS_tee => io::tee(n, a),
        SYS_pipe | SYS_pipe2 => io::pipe(n, a),
        SYS_poll => io::poll(n, a),
        SYS_ppoll => io::ppoll(t, n, a),
        SYS_select => io::select(n, a),
        SYS_pselect6 => io::pselect6(t, n, a),
        SYS_epoll_create | SYS_epoll_create1 | SYS_eventfd | SYS_eventfd2 | SYS_timerfd_create | SYS_inotify_init | SYS_inotify_init1 => io::create(n, a),
        SYS_epoll_ctl => io::epoll_ctl(n, a),
        SYS_epoll_wait | SYS_epoll_pwait | SYS_epoll_pwait2 => io::epoll_wait(t, n, a),
        SYS_timerfd_settime | SYS_timerfd_gettime => io::timerfd(n, a),
        SYS_signalfd4 => io::signalfd4(n, a),
        SYS_memfd_create => io::memfd_create(n, a),
        SYS_getrandom => io::getrandom(n, a),
        // ---- descriptors themselves (fds) ------------------------------------------
        SYS_close => fds::close(n, a),
        SYS_close_range => fds::close_range(n, a),
        SYS_dup => fds::dup(n, a),
        SYS_dup2 | SYS_dup3 => fds::dup2(n, a),
        SYS_fcntl => fds::fcntl(n, a),
        SYS_ioctl => fds::ioctl(n, a),
        SYS_flock => fds::flock(n, a),
        SYS_fchmod => fds::fchmod(n, a),
        SYS_fchown => fds::fchown(n, a),
        SYS_utimensat if a[1] == 0 => fds::futimens(n, a),
        // ---- paths (files) ---------------------------------------------------------
        SYS_open | SYS_openat | SYS_creat | SYS_openat2 => files::open(n, a),
        SYS_stat | SYS_lstat | SYS_newfstatat | SYS_statx | SYS_access | SYS_faccessat | SYS_faccessat2 | SYS_readlink | SYS_readlinkat
        | SYS_mkdir | SYS_mkdirat | SYS_unlink | SYS_unlinkat | SYS_rmdir | SYS_rename | SYS_renameat | SYS_renameat2 | SYS_link | SYS_linkat
        | SYS_symlink | SYS_symlinkat | SYS_chmod | SYS_fchmodat | SYS_fchmodat2 | SYS_chown | SYS_lchown | SYS_fchownat | SYS_utimensat
        | SYS_truncate | SYS_chdir | SYS_fchdir | SYS_mknod | SYS_mknodat | SYS_statfs | SYS_inotify_add_watch | SYS_getcwd | SYS_utime
        | SYS_utimes | SYS_futimesat => files::call(n, a),
        SYS_getxattr | SYS_lgetxattr | SYS_fgetxattr | SYS_listxattr | SYS_llistxattr | SYS_flistxattr => Err(-(ENOTSUP as i64)),
        // ---- sockets (net) ---------------------------------------------------------
        SYS_socket | SYS_socketpair | SYS_bind | SYS_connect | SYS_listen | SYS_accept | SYS_accept4 | SYS_sendto | SYS_recvfrom | SYS_sendmsg | SYS_shutdown
        | SYS_recvmsg | SYS_getsockname | SYS_getpeername | SYS_setsockopt | SYS_getsockopt | SYS_sendmmsg | SYS_recvmmsg => net::call(n, a),
        // ---- memory (mem) ----------------------------------------------------------
        SYS_mmap => mem::mmap(a),
        SYS_munmap | SYS_mprotect | SYS_mremap => mem::remap(n, a),
        SYS_brk => mem::brk(a),
        SYS_madvise | SYS_msync | SYS_mlock | SYS_munlock | SYS_mlock2 => mem::advise(n, a),
        SYS_mincore => mem::mincore(n, a),
        SYS_membarrier => sys::fwd(n, a),
        // ---- threads and synchronisation -------------------------------------------
        SYS_futex => misc::futex(n, a),
        SYS_set_tid_address => {
            t.clear_tid = a[0];
            // SAFETY: gettid has no effect.
            Ok(unsafe { libc::syscall(libc::SYS_gettid) })
        }
        SYS_set_robust_list => Ok(0),
        SYS_get_robust_list => Err(sys::EPERM),
        SYS_rseq => Err(sys::ENOSYS),
        // ---- processes (procs) -----------------------------------------------------
        SYS_wait4 | SYS_waitid => procs::wait(n, a),
        SYS_kill | SYS_tgkill | SYS_tkill | SYS_rt_sigqueueinfo | SYS_rt_tgsigqueueinfo => procs::kill(n, a),
        SYS_getpgid | SYS_getsid | SYS_setpgid | SYS_getpriority | SYS_setpriority | SYS_ioprio_get | SYS_sched_getaffinity
        | SYS_sched_setaffinity | SYS_sched_getparam | SYS_sched_getscheduler | SYS_prlimit64 => procs::pid_call(n, a),
        // ---- who, what and when (misc) ---------------------------------------------
        SYS_sched_yield | SYS_getpid | SYS_getppid | SYS_gettid | SYS_getuid | SYS_geteuid | SYS_getgid | SYS_getegid | SYS_getpgrp
        | SYS_setsid | SYS_umask | SYS_alarm | SYS_pause | SYS_sync | SYS_sched_get_priority_max | SYS_sched_get_priority_min
        | SYS_personality | SYS_timer_getoverrun | SYS_timer_delete => misc::plain(n, a),
        SYS_getgroups | SYS_getresuid | SYS_getresgid | SYS_capget => misc::ids(n, a),
        SYS_getcpu => misc::getcpu(n, a),
        SYS_clock_gettime | SYS_clock_getres | SYS_gettimeofday | SYS_time | SYS_nanosleep | SYS_clock_nanosleep | SYS_times
        | SYS_getitimer | SYS_setitimer | SYS_timer_settime | SYS_timer_gettime => misc::time(n, a),
        SYS_timer_create => misc::timer_create(n, a),
        SYS_uname | SYS_sysinfo | SYS_getrusage => misc::info(n, a),
        SYS_getrlimit | SYS_setrlimit => misc::rlimit(n, a),
        SYS_prctl => misc::prctl(n, a),
        SYS_arch_prctl => misc::arch_prctl(t, a),
        // ---- signals (sigcalls) ----------------------------------------------------
        SYS_rt_sigaction => sigcalls::sigaction(a),
        SYS_rt_sigprocmask => sigcalls::sigprocmask(t, a),
        SYS_sigaltstack => sigcalls::sigaltstack(t, a),
        SYS_rt_sigpending => sigcalls::sigpending(t, a),
        SYS_rt_sigsuspend => sigcalls::sigsuspend(t, n, a),
        SYS_rt_sigtimedwait => sigcalls::sigtimedwait(n, a),
        _ => deny(&format!("{}({:#x}, {:#x}, {:#x}, ...)", name(nr), a[0], a[1], a[2]), "not a call the sandbox knows", libc::ENOSYS),
    }
}
