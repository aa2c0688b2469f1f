//! systemd-style system call groups (`@basic-io`, `@system-service`, ...).
//!
//! The membership lists are facts taken from systemd's `src/shared/seccomp-util.c`
//! (`syscall_filter_sets[]`, the v247-era table: it has `@pkey`, `clone3`, `faccessat2`,
//! `openat2`, the `io_uring_*` calls in `@aio`), plus `@sandbox` from later systemd
//! (landlock and `seccomp`). The table below is our own, written for this crate. Names of
//! other architectures (`_llseek`, `mmap2`, `*_time64`, ...) are kept so the lists read like
//! systemd's; they are simply not found in the x86-64 table when a group is expanded.
//! A member starting with `@` is another group; `@known` is every x86-64 call.

use super::syscalls;

/// `(group name, members)`; a member starting with `@` names another group.
#[rustfmt::skip]
pub static GROUPS: &[(&str, &[&str])] = &[
    ("@default", &[
        "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
        "clock_nanosleep", "clock_nanosleep_time64", "execve", "exit", "exit_group", "futex",
        "futex_time64", "get_robust_list", "get_thread_area", "getegid", "getegid32", "geteuid",
        "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getpgid", "getpgrp",
        "getpid", "getppid", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
        "getsid", "gettid", "gettimeofday", "getuid", "getuid32", "membarrier", "nanosleep",
        "pause", "prlimit64", "restart_syscall", "rseq", "rt_sigreturn", "sched_yield",
        "set_robust_list", "set_thread_area", "set_tid_address", "set_tls", "sigreturn", "time",
        "ugetrlimit",
    ]),
    ("@aio", &[
        "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
        "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup",
    ]),
    ("@basic-io", &[
        "_llseek", "close", "dup", "dup2", "dup3", "lseek", "pread64", "preadv", "preadv2",
        "pwrite64", "pwritev", "pwritev2", "read", "readv", "write", "writev",
    ]),
    ("@chown", &["chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32"]),
    ("@clock", &[
        "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
        "settimeofday", "stime",
    ]),
    ("@cpu-emulation", &["modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old"]),
    ("@debug", &[
        "lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "rtas",
        "sys_debug_setcontext",
    ]),
    ("@file-system", &[
        "access", "chdir", "chmod", "close", "creat", "faccessat", "faccessat2", "fallocate",
        "fchdir", "fchmod", "fchmodat", "fcntl", "fcntl64", "fgetxattr", "flistxattr",
        "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
        "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "lgetxattr",
        "link", "linkat", "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "lstat",
        "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "mmap", "mmap2", "munmap",
        "newfstatat", "oldfstat", "oldlstat", "oldstat", "open", "openat", "openat2",
        "readlink", "readlinkat", "removexattr", "rename", "renameat", "renameat2", "rmdir",
        "setxattr", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat",
        "truncate", "truncate64", "unlink", "unlinkat", "utime", "utimensat",
        "utimensat_time64", "utimes",
    ]),
    ("@io-event", &[
        "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
        "epoll_pwait", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll",
        "ppoll_time64", "pselect6", "pselect6_time64", "select",
    ]),
    ("@ipc", &[
        "ipc", "memfd_create", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
        "msgget", "msgrcv", "msgsnd", "pipe", "pipe2", "process_vm_readv", "process_vm_writev",
        "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl",
        "shmdt", "shmget",
    ]),
    ("@keyring", &["add_key", "keyctl", "request_key"]),
    ("@memlock", &["mlock", "mlock2", "mlockall", "munlock", "munlockall"]),
    ("@module", &["delete_module", "finit_module", "init_module"]),
    ("@mount", &[
        "chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "move_mount", "open_tree",
        "pivot_root", "umount", "umount2",
    ]),
    ("@network-io", &[
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send",
        "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketcall",
        "socketpair",
    ]),
    ("@obsolete", &[
        "_sysctl", "afs_syscall", "bdflush", "break", "create_module", "ftime",
        "get_kernel_syms", "getpmsg", "gtty", "idle", "lock", "mpx", "prof", "profil",
        "putpmsg", "query_module", "security", "sgetmask", "ssetmask", "stty", "sysfs",
        "tuxcall", "ulimit", "uselib", "ustat", "vserver",
    ]),
    ("@pkey", &["pkey_alloc", "pkey_free", "pkey_mprotect"]),
    ("@privileged", &[
        "@chown", "@clock", "@module", "@raw-io", "@reboot", "@swap", "_sysctl", "acct", "bpf",
        "capset", "chroot", "fanotify_init", "fanotify_mark", "nfsservctl", "open_by_handle_at",
        "pivot_root", "quotactl", "setdomainname", "setfsuid", "setfsuid32", "setgroups",
        "setgroups32", "sethostname", "setresuid", "setresuid32", "setreuid", "setreuid32",
        "setuid", "setuid32", "vhangup",
    ]),
    ("@process", &[
        "arch_prctl", "capget", "clone", "clone3", "execveat", "fork", "getrusage", "kill",
        "pidfd_open", "pidfd_send_signal", "prctl", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "setns", "swapcontext", "tgkill", "times", "tkill", "unshare", "vfork", "wait4",
        "waitid", "waitpid",
    ]),
    ("@raw-io", &["ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"]),
    ("@reboot", &["kexec_file_load", "kexec_load", "reboot"]),
    ("@resources", &[
        "ioprio_set", "mbind", "migrate_pages", "move_pages", "nice", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "set_mempolicy", "setpriority",
        "setrlimit",
    ]),
    ("@sandbox", &["landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "seccomp"]),
    ("@setuid", &[
        "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid",
        "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid",
        "setuid32",
    ]),
    ("@signal", &[
        "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigtimedwait_time64", "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4",
        "sigpending", "sigprocmask", "sigsuspend",
    ]),
    ("@swap", &["swapoff", "swapon"]),
    ("@sync", &[
        "fdatasync", "fsync", "msync", "sync", "sync_file_range", "sync_file_range2", "syncfs",
    ]),
    ("@system-service", &[
        "@aio", "@basic-io", "@chown", "@default", "@file-system", "@io-event", "@ipc",
        "@keyring", "@memlock", "@network-io", "@process", "@resources", "@setuid", "@signal",
        "@sync", "@timer", "brk", "capget", "capset", "copy_file_range", "fadvise64",
        "fadvise64_64", "flock", "get_mempolicy", "getcpu", "getpriority", "getrandom", "ioctl",
        "ioprio_get", "kcmp", "madvise", "mprotect", "mremap", "name_to_handle_at",
        "oldolduname", "olduname", "personality", "readahead", "readdir", "remap_file_pages",
        "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
        "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
        "sched_rr_get_interval_time64", "sched_yield", "sendfile", "sendfile64", "setfsgid",
        "setfsgid32", "setfsuid", "setfsuid32", "setpgid", "setsid", "splice", "sysinfo", "tee",
        "umask", "uname", "userfaultfd", "vmsplice",
    ]),
    ("@timer", &[
        "alarm", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
        "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
        "timerfd_settime64", "times",
    ]),
];

/// Whether `name` is a known group (including `@known`).
pub fn is_group(name: &str) -> bool {
    name == "@known" || GROUPS.iter().any(|&(g, _)| g == name)
}

/// The x86-64 numbers of every call in group `name` (nested groups expanded; names unknown
/// on x86-64 skipped), sorted and without duplicates; `None` if there is no such group.
pub fn expand(name: &str) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    if !expand_into(name, &mut out, 0) {
        return None;
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

fn expand_into(name: &str, out: &mut Vec<u64>, depth: u32) -> bool {
    if name == "@known" {
        out.extend(syscalls::TABLE.iter().map(|&(nr, _)| nr));
        return true;
    }
    // Groups nest at most a few levels; the bound keeps a mistaken cycle from recursing forever.
    if depth > 8 {
        return false;
    }
    let Some(&(_, members)) = GROUPS.iter().find(|&&(g, _)| g == name) else {
        return false;
    };
    for m in members {
        if m.starts_with('@') {
            if !expand_into(m, out, depth + 1) {
                return false;
            }
        } else if let Some(nr) = syscalls::number(m) {
            out.push(nr);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(group: &str, call: &str) -> bool {
        expand(group)
            .unwrap()
            .contains(&syscalls::number(call).unwrap())
    }

    #[test]
    fn every_group_expands_and_nested_groups_resolve() {
        for &(g, members) in GROUPS {
            assert!(expand(g).is_some(), "{g}");
            for m in members.iter().filter(|m| m.starts_with('@')) {
                assert!(is_group(m), "{g} names unknown {m}");
            }
        }
        assert!(expand("@nope").is_none());
        assert!(!is_group("read"));
    }

    #[test]
    fn memberships() {
        assert!(has("@basic-io", "read"));
        assert!(has("@system-service", "read")); // via @basic-io
        assert!(has("@system-service", "clock_gettime")); // via @default
        assert!(has("@system-service", "timerfd_create")); // via @timer
        assert!(has("@privileged", "reboot")); // via @reboot
        assert!(has("@privileged", "chown")); // via @chown
        assert!(has("@mount", "mount"));
        assert!(!has("@system-service", "ptrace"));
        assert!(!has("@system-service", "mount"));
        assert_eq!(expand("@known").unwrap().len(), syscalls::TABLE.len());
        // Names of other architectures are skipped, not errors.
        assert_eq!(expand("@swap").unwrap().len(), 2);
        assert!(expand("@basic-io").unwrap().len() < 16);
    }
}
