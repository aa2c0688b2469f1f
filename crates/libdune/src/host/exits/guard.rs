//! System calls that could break the runtime: checked before they reach Linux.
//!
//! The runtime shares the process with the program (`reserved`). Whatever the program
//! may legally do to its own process must leave Dune mode working, so:
//!
//! - a call that names one of the runtime's descriptors fails with `EBADF`, as for a
//!   descriptor that is not open; `close_range` stops below them; `getdents64` on
//!   `/proc/self/fd` does not list them;
//! - `getrlimit`/`setrlimit`/`prlimit64(RLIMIT_NOFILE)` of the process see and change
//!   the program's own limit, capped below the runtime's descriptors;
//! - a call that would unmap, remap, replace, re-protect or discard runtime memory
//!   fails with `EPERM`, and nothing changes.
//!
//! Arguments read from guest memory are copied in once (`sys::read_guest`) and the
//! copy is used. Runs on exit paths: no heap allocation.

use crate::host::memory::PAGE;
use crate::host::reserved;
use crate::host::sys;

const EBADF: i64 = -(libc::EBADF as i64);
const EPERM: i64 = -(libc::EPERM as i64);
const EINVAL: i64 = -(libc::EINVAL as i64);
const EFAULT: i64 = -(libc::EFAULT as i64);

/// What to do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not the guard's business: perform it as usual.
    Pass,
    /// Answered here with this result; Linux never sees it.
    Answer(i64),
    /// Perform it with these arguments instead (`close_range` capped).
    Rewrite([u64; 6]),
}

/// `KVM_GET_STATS_FD` (linux/kvm.h): the one query a program may make on a runtime
/// descriptor, its own thread's vCPU, through `libdune::stats`. The statistics
/// descriptor it returns is the program's own.
const KVM_GET_STATS_FD: u64 = 0xaece;

/// Checks system call `nr` with arguments `a` (before it is performed) made by the
/// thread whose vCPU descriptor is `own_vcpu`.
pub fn check(nr: u64, a: &[u64; 6], own_vcpu: i32) -> Verdict {
    if nr as i64 == libc::SYS_ioctl && a[0] as i32 == own_vcpu && a[1] as u32 as u64 == KVM_GET_STATS_FD {
        return Verdict::Pass;
    }
    if let Some(v) = descriptors(nr, a) {
        return v;
    }
    memory(nr, a)
}

/// Argument positions that hold a descriptor, for calls that take one.
#[allow(non_upper_case_globals)] // libc names the call numbers SYS_read and so on
fn fd_args(nr: i64) -> &'static [usize] {
    use libc::*;
    match nr {
        SYS_read | SYS_write | SYS_close | SYS_fstat | SYS_lseek | SYS_ioctl | SYS_pread64 | SYS_pwrite64 | SYS_readv | SYS_writev | SYS_dup | SYS_connect | SYS_accept
        | SYS_sendto | SYS_recvfrom | SYS_sendmsg | SYS_recvmsg | SYS_shutdown | SYS_bind | SYS_listen | SYS_getsockname | SYS_getpeername | SYS_setsockopt
        | SYS_getsockopt | SYS_fcntl | SYS_flock | SYS_fsync | SYS_fdatasync | SYS_ftruncate | SYS_getdents | SYS_fchdir | SYS_fchmod | SYS_fchown | SYS_fstatfs
        | SYS_readahead | SYS_fsetxattr | SYS_fgetxattr | SYS_flistxattr | SYS_fremovexattr | SYS_getdents64 | SYS_fadvise64 | SYS_epoll_wait | SYS_inotify_add_watch
        | SYS_inotify_rm_watch | SYS_openat | SYS_mkdirat | SYS_mknodat | SYS_fchownat | SYS_futimesat | SYS_newfstatat | SYS_unlinkat | SYS_readlinkat
        | SYS_fchmodat | SYS_faccessat | SYS_sync_file_range | SYS_vmsplice | SYS_utimensat | SYS_epoll_pwait | SYS_signalfd | SYS_timerfd_settime
        | SYS_timerfd_gettime | SYS_accept4 | SYS_signalfd4 | SYS_preadv | SYS_pwritev | SYS_name_to_handle_at | SYS_open_by_handle_at | SYS_syncfs | SYS_setns
        | SYS_finit_module | SYS_execveat | SYS_preadv2 | SYS_pwritev2 | SYS_statx | SYS_pidfd_send_signal | SYS_io_uring_enter | SYS_io_uring_register
        | SYS_open_tree | SYS_fsconfig | SYS_fsmount | SYS_fspick | SYS_pidfd_getfd | SYS_faccessat2 | SYS_process_madvise | SYS_epoll_pwait2
        | SYS_mount_setattr | SYS_landlock_add_rule | SYS_landlock_restrict_self | SYS_openat2 => &[0],
        SYS_dup2 | SYS_dup3 | SYS_sendfile | SYS_tee => &[0, 1],
        SYS_epoll_ctl => &[0, 2],
        SYS_renameat | SYS_renameat2 | SYS_linkat | SYS_splice | SYS_copy_file_range | SYS_move_mount => &[0, 2],
        SYS_symlinkat => &[1],
        _ => &[],
    }
}

fn descriptors(nr: u64, a: &[u64; 6]) -> Option<Verdict> {
    let n = nr as i64;
    if fd_args(n).iter().any(|&i| reserved::is_runtime_fd(a[i])) {
        return Some(Verdict::Answer(EBADF));
    }
    match n {
        libc::SYS_mmap if a[3] & libc::MAP_ANONYMOUS as u64 == 0 && reserved::is_runtime_fd(a[4]) => Some(Verdict::Answer(EBADF)),
        libc::SYS_close_range => {
            let (lo, hi, base) = (a[0] as u32, a[1] as u32, reserved::fd_base() as u32);
            if lo > hi || hi < base {
                None
            } else if lo >= base {
                // Nothing of the program's is open there.
                Some(Verdict::Answer(0))
            } else {
                Some(Verdict::Rewrite([a[0], (base - 1) as u64, a[2], 0, 0, 0]))
            }
        }
        libc::SYS_fcntl if matches!(a[1] as i32, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC) && a[2] as i32 as i64 >= reserved::limits().0 as i64 => Some(Verdict::Answer(EINVAL)),
        // `resource` is an unsigned int to Linux: compared as one (high bits set must not
        // slip a RLIMIT_NOFILE past as another resource).
        libc::SYS_prlimit64 if a[1] as u32 == libc::RLIMIT_NOFILE && is_self(a[0]) => Some(Verdict::Answer(nofile(a[2], a[3]))),
        libc::SYS_setrlimit if a[0] as u32 == libc::RLIMIT_NOFILE => Some(Verdict::Answer(nofile(a[1], 0))),
        libc::SYS_getrlimit if a[0] as u32 == libc::RLIMIT_NOFILE => Some(Verdict::Answer(nofile(0, a[1]))),
        _ => None,
    }
}

/// Calls that replace or close the descriptor at a given number.
pub fn replaces_descriptors(nr: u64) -> bool {
    matches!(nr as i64, libc::SYS_close | libc::SYS_dup2 | libc::SYS_dup3 | libc::SYS_close_range)
}

fn is_self(pid: u64) -> bool {
    pid as i32 == 0 || pid as i64 == sys::getpid()
}

/// `RLIMIT_NOFILE` of this process: reports the program's limits at `old` and applies
/// `new`, as `prlimit64` does (old values are those before the change).
fn nofile(new: u64, old: u64) -> i64 {
    let mut req = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    if new != 0 {
        // SAFETY: rlimit is plain data; the copy fills all of it or fails.
        let bytes = unsafe { core::slice::from_raw_parts_mut(&mut req as *mut _ as *mut u8, core::mem::size_of::<libc::rlimit>()) };
        if sys::read_guest(new, bytes).is_err() {
            return EFAULT;
        }
    }
    let (soft, hard) = reserved::limits();
    if old != 0 {
        let cur = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        // SAFETY: as above, read-only view of a local.
        let bytes = unsafe { core::slice::from_raw_parts(&cur as *const _ as *const u8, core::mem::size_of::<libc::rlimit>()) };
        if sys::write_guest(old, bytes).is_err() {
            return EFAULT;
        }
    }
    if new == 0 {
        return 0;
    }
    if req.rlim_cur > req.rlim_max {
        return EINVAL;
    }
    // Raising the hard limit needs privilege, as in Linux; above the runtime's
    // descriptors it is never possible (the process's "nr_open").
    // SAFETY: geteuid has no arguments or side effects.
    let root = unsafe { sys::syscall(libc::SYS_geteuid, 0, 0, 0) } == 0;
    if req.rlim_max > reserved::fd_base() as u64 || (req.rlim_max > hard && !root) {
        return EPERM;
    }
    reserved::set_limits(req.rlim_cur, req.rlim_max)
}

fn memory(nr: u64, a: &[u64; 6]) -> Verdict {
    let over = |start: u64, len: u64| {
        let end = start.saturating_add(len).saturating_add(PAGE - 1) & !(PAGE - 1);
        reserved::overlaps(start & !(PAGE - 1), end)
    };
    let hit = match nr as i64 {
        libc::SYS_munmap | libc::SYS_mprotect | libc::SYS_pkey_mprotect => over(a[0], a[1]),
        libc::SYS_madvise => !harmless_advice(a[2] as i32) && over(a[0], a[1]),
        libc::SYS_mmap => a[3] & libc::MAP_FIXED as u64 != 0 && over(a[0], a[1]),
        libc::SYS_mremap => over(a[0], a[1]) || (a[3] & libc::MREMAP_FIXED as u64 != 0 && over(a[4], a[2])),
        libc::SYS_shmat => a[2] & libc::SHM_REMAP as u64 != 0 && a[1] != 0 && over(a[1], shm_size(a[0])),
        _ => false,
    };
    if hit {
        Verdict::Answer(EPERM)
    } else {
        Verdict::Pass
    }
}

/// `madvise` advice that leaves memory contents and mappings as they are.
fn harmless_advice(advice: i32) -> bool {
    matches!(
        advice,
        libc::MADV_NORMAL | libc::MADV_RANDOM | libc::MADV_SEQUENTIAL | libc::MADV_WILLNEED | libc::MADV_DONTDUMP | libc::MADV_DODUMP | libc::MADV_HUGEPAGE | libc::MADV_NOHUGEPAGE
    )
}

/// Size of System V segment `id` (1 page if unknown: the attach address is checked).
fn shm_size(id: u64) -> u64 {
    // SAFETY: shmid_ds is plain data, filled by IPC_STAT.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into the local.
    let r = unsafe { sys::syscall(libc::SYS_shmctl, id, libc::IPC_STAT as u64, &mut ds as *mut _ as u64) };
    if r == 0 {
        ds.shm_segsz as u64
    } else {
        PAGE
    }
}

/// After a successful `getdents64(fd, buf, n)` that returned `len` bytes: removes the
/// runtime's descriptors from a listing of this process's `/proc/<pid>/fd`. Returns
/// the new length; 0 when every entry was the runtime's (the caller reads on).
pub fn filter_fd_listing(fd: u64, buf: u64, len: usize) -> usize {
    const MAX: usize = 16 * 1024;
    let base = reserved::fd_base();
    if base == i32::MAX || len == 0 || len > MAX {
        return len;
    }
    let mut local = [0u8; MAX];
    if sys::read_guest(buf, &mut local[..len]).is_err() {
        return len;
    }
    // d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name NUL-terminated.
    let runtime_entry = |e: &[u8]| -> bool {
        let name = &e[19..];
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        parse_decimal(name).is_some_and(|n| n >= base as u64)
    };
    let entries = || {
        let mut at = 0usize;
        core::iter::from_fn(move || {
            if at + 19 > len {
                return None;
            }
            let reclen = u16::from_le_bytes([local[at + 16], local[at + 17]]) as usize;
            if reclen < 19 || at + reclen > len {
                return None;
            }
            let r = (at, reclen);
            at += reclen;
            Some(r)
        })
    };
    if !entries().any(|(at, n)| runtime_entry(&local[at..at + n])) || !is_own_fd_dir(fd) {
        return len;
    }
    let mut out = [0u8; MAX];
    let mut w = 0;
    for (at, n) in entries() {
        if !runtime_entry(&local[at..at + n]) {
            out[w..w + n].copy_from_slice(&local[at..at + n]);
            w += n;
        }
    }
    if sys::write_guest(buf, &out[..w]).is_err() {
        return len;
    }
    w
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &c| n * 10 + (c - b'0') as u64))
}

/// Whether directory descriptor `fd` is `/proc/<pid>/fd` or `/proc/<pid>/fdinfo` (or a
/// thread's) of this process.
fn is_own_fd_dir(fd: u64) -> bool {
    let mut path = [0u8; 64];
    let mut link = [0u8; 48];
    let mut b = sys::FixedBuf::<48>::new();
    // The calling thread's table (`/proc/self` is the leader's, gone once it exits).
    let _ = core::fmt::Write::write_fmt(&mut b, format_args!("/proc/thread-self/fd/{}\0", fd as i32));
    link[..b.as_bytes().len()].copy_from_slice(b.as_bytes());
    // SAFETY: readlink into a local buffer of the size given.
    let n = unsafe { sys::syscall(libc::SYS_readlink, link.as_ptr() as u64, path.as_mut_ptr() as u64, path.len() as u64) };
    let Ok(n) = sys::check(n) else { return false };
    is_fd_dir_of(&path[..n as usize], sys::getpid() as u64)
}

/// `/proc/<pid>/fd` or `/proc/<pid>/task/<tid>/fd` (or `fdinfo`) with `pid` this
/// process.
fn is_fd_dir_of(path: &[u8], pid: u64) -> bool {
    let mut parts = path.split(|&c| c == b'/');
    if parts.next() != Some(b"") || parts.next() != Some(b"proc") || parts.next().and_then(parse_decimal) != Some(pid) {
        return false;
    }
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(b"fd" | b"fdinfo"), None, _, _) => true,
        (Some(b"task"), Some(t), Some(b"fd" | b"fdinfo"), None) => parse_decimal(t).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_directories_of_this_process_only() {
        assert!(is_fd_dir_of(b"/proc/42/fd", 42));
        assert!(is_fd_dir_of(b"/proc/42/task/43/fd", 42));
        assert!(!is_fd_dir_of(b"/proc/41/fd", 42));
        assert!(is_fd_dir_of(b"/proc/42/fdinfo", 42));
        assert!(is_fd_dir_of(b"/proc/42/task/43/fdinfo", 42));
        assert!(!is_fd_dir_of(b"/proc/42/fdinfo/3", 42));
        assert!(!is_fd_dir_of(b"/proc/42/fd/3", 42));
        assert!(!is_fd_dir_of(b"/tmp/proc/42/fd", 42));
    }

    #[test]
    fn decimal_names() {
        assert_eq!(parse_decimal(b"64496"), Some(64496));
        assert_eq!(parse_decimal(b"."), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"12a"), None);
    }

    #[test]
    fn every_descriptor_call_has_its_positions() {
        assert_eq!(fd_args(libc::SYS_close), &[0]);
        assert_eq!(fd_args(libc::SYS_dup3), &[0, 1]);
        assert_eq!(fd_args(libc::SYS_epoll_ctl), &[0, 2]);
        assert_eq!(fd_args(libc::SYS_getpid), &[] as &[usize]);
    }
}
