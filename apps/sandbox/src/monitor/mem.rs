//! Memory calls: `mmap`, `munmap`, `mprotect`, `mremap` and `brk` are emulated on the
//! program's space ([`super::space`]); `madvise` advice is allowlisted; the rest act
//! only on the program's own pages.

use std::os::fd::AsRawFd;

use super::fdtable::fd;
use super::state::m;
use super::sys::{deny, fwd, neg, R};
use super::user::user;

/// `mmap(addr, len, prot, flags, fd, off)`.
pub fn mmap(a: [u64; 6]) -> R {
    let mut fd_used = a[4] as i32;
    let mut _private = None;
    if a[3] & libc::MAP_ANONYMOUS as u64 == 0 {
        fd(a[4])?;
        // Mapped through the monitor's private duplicate (the file checked is the file
        // mapped). A shared mapping of a file opened for writing is a way to write it
        // (and `mprotect` can add PROT_WRITE later): only for files the program may
        // change, not, say, a file outside the read-write trees the sandbox was given
        // for appending.
        let p = super::fdtable::private(a[4])?;
        let shared = matches!(a[3] as i32 & libc::MAP_TYPE, libc::MAP_SHARED | libc::MAP_SHARED_VALIDATE);
        // SAFETY: F_GETFL only reads the open file's status flags.
        if shared && unsafe { libc::fcntl(p.as_raw_fd(), libc::F_GETFL) } & libc::O_ACCMODE != libc::O_RDONLY && !super::fds::writable(&p) {
            return deny(&format!("mmap(MAP_SHARED) of descriptor {}", a[4] as i32), "a file opened for writing outside the read-write trees", libc::EACCES);
        }
        fd_used = p.as_raw_fd();
        _private = Some(p);
    }
    match m().space().mmap(a[0], a[1], a[2] as i32, a[3] as i32, fd_used, a[5]) {
        Ok(v) => Ok(v as i64),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => deny(&format!("mmap({:#x}, {:#x}, MAP_FIXED)", a[0], a[1]), "range is not the program's memory", libc::EPERM),
        Err(e) => Err(neg(e.raw_os_error().unwrap_or(libc::EINVAL))),
    }
}

/// `munmap`, `mprotect`, `mremap`.
pub fn remap(n: i64, a: [u64; 6]) -> R {
    let r = match n {
        libc::SYS_munmap => m().space().munmap(a[0], a[1]).map(|_| 0),
        libc::SYS_mprotect => m().space().mprotect(a[0], a[1], a[2] as i32).map(|_| 0),
        _ => m().space().mremap(a[0], a[1], a[2], a[3] as i32, a[4]).map(|v| v as i64),
    };
    r.or_else(|e| {
        let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
        if errno == libc::EPERM || (n != libc::SYS_munmap && !m().space().owns(a[0] & !4095, a[0].saturating_add(a[1].max(1)))) {
            deny(&format!("{}({:#x}, {:#x})", super::sys::name(n as u64), a[0], a[1]), "range is not the program's memory", errno)
        } else {
            Err(neg(errno))
        }
    })
}

/// `brk(addr)`.
pub fn brk(a: [u64; 6]) -> R {
    Ok(m().space().brk(a[0]) as i64)
}

/// `madvise` advice that only hints or drops the program's own pages. Not here:
/// `MADV_HWPOISON` and `MADV_SOFT_OFFLINE` (they act on the machine's pages),
/// `MADV_MERGEABLE` (pages shared with other processes: a side channel), and the
/// fork advice, which the monitor keeps itself ([`fork_advice`]).
const ADVICE: &[i32] = &[
    libc::MADV_NORMAL,
    libc::MADV_RANDOM,
    libc::MADV_SEQUENTIAL,
    libc::MADV_WILLNEED,
    libc::MADV_DONTNEED,
    libc::MADV_FREE,
    libc::MADV_REMOVE,
    libc::MADV_UNMERGEABLE,
    libc::MADV_HUGEPAGE,
    libc::MADV_NOHUGEPAGE,
    libc::MADV_DONTDUMP,
    libc::MADV_DODUMP,
    20, // MADV_COLD
    21, // MADV_PAGEOUT
    22, // MADV_POPULATE_READ
    23, // MADV_POPULATE_WRITE
    24, // MADV_DONTNEED_LOCKED
    25, // MADV_COLLAPSE
];

/// Fork advice, emulated (`space::ProgramSpace::fork_advice`).
const FORK_ADVICE: &[i32] = &[libc::MADV_DONTFORK, libc::MADV_DOFORK, libc::MADV_WIPEONFORK, libc::MADV_KEEPONFORK];

/// `madvise`, `msync`, `mlock`, `munlock`, `mlock2`: the pages the kernel acts on
/// (from the start's page to the end's) must be the program's.
pub fn advise(n: i64, a: [u64; 6]) -> R {
    let end = a[0].checked_add(a[1]).and_then(|e| e.checked_add(4095)).map(|e| e & !4095).unwrap_or(u64::MAX);
    if !m().space().owns(a[0] & !4095, end) {
        return deny(&format!("{}({:#x}, {:#x})", super::sys::name(n as u64), a[0], a[1]), "range is not the program's memory", libc::ENOMEM);
    }
    if n == libc::SYS_madvise {
        let advice = a[2] as i32;
        if FORK_ADVICE.contains(&advice) {
            return m().space().fork_advice(a[0], a[1], advice).map(|_| 0).map_err(|e| neg(e.raw_os_error().unwrap_or(libc::EINVAL)));
        }
        if !ADVICE.contains(&advice) {
            return deny(&format!("madvise({:#x}, {:#x}, {advice})", a[0], a[1]), "advice not in the sandbox's list", libc::EINVAL);
        }
    }
    fwd(n, a)
}

/// `mincore(addr, len, vec)`.
pub fn mincore(n: i64, a: [u64; 6]) -> R {
    // Sizes are the program's: no arithmetic on them may wrap.
    let pages = a[1].div_ceil(4096);
    user(a[0] & !4095, pages.checked_mul(4096).ok_or(neg(libc::ENOMEM))?)?;
    user(a[2], pages)?;
    fwd(n, a)
}
