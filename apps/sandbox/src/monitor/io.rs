//! Data on descriptors: reads and writes, polling and event descriptors. Buffers are
//! passed to Linux in place after the range check (their contents do not matter to
//! the policy, and the program's address space never shrinks under them); what the
//! monitor must interpret (I/O vectors, signal masks, `pselect6`'s argument block) is
//! copied in and the copy is passed.

use std::os::fd::AsRawFd;

use super::fdtable::{self, fd, own_file};
use super::signals;
use super::state::Thread;
use super::sys::{fwd, neg, EFAULT, EINVAL, R};
use super::user::{c, copy_in, copy_out, cstr_in, iovecs, opt, user, word};

/// `read`, `write`, `pread64`, `pwrite64`, `getdents64`: a buffer of `a[2]` bytes.
pub fn buffer(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    user(a[1], a[2])?;
    fwd(n, a)
}

/// `readv`, `writev` and their positioned forms: the vectors copied in.
pub fn vectored(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    // preadv2/pwritev2 flags by allowlist: RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT,
    // RWF_APPEND (not RWF_NOAPPEND: a write at an offset into an append-only file).
    if matches!(n, libc::SYS_preadv2 | libc::SYS_pwritev2) && a[5] & !0x1f != 0 {
        return Err(neg(libc::EOPNOTSUPP));
    }
    let v = iovecs(a[1], a[2])?;
    fwd(n, [a[0], v.as_ptr() as u64, a[2], a[3], a[4], a[5]])
}

/// Calls on a descriptor with plain numbers only (`lseek`, `fsync`, `ftruncate`…).
pub fn on_fd(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    fwd(n, a)
}

/// `inotify_rm_watch(fd, wd)`: not on an instance the sandbox was started with.
pub fn inotify_rm_watch(n: i64, a: [u64; 6]) -> R {
    let ino = own_file(a[0], &format!("inotify_rm_watch({}, ...)", a[0] as i32))?;
    fwd(n, [ino.as_raw_fd() as u64, a[1], 0, 0, 0, 0])
}

/// `fstat` (144 bytes) and `fstatfs` (120 bytes).
pub fn fstat(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    user(a[1], if n == libc::SYS_fstat { 144 } else { 120 })?;
    fwd(n, a)
}

/// `sendfile(out, in, offset, count)`.
pub fn sendfile(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    fd(a[1])?;
    opt(a[2], 8)?;
    fwd(n, a)
}

/// `splice` and `copy_file_range`: two descriptors and two optional offsets.
pub fn splice(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    fd(a[2])?;
    opt(a[1], 8)?;
    opt(a[3], 8)?;
    fwd(n, a)
}

/// `tee(in, out, len, flags)`.
pub fn tee(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    fd(a[1])?;
    fwd(n, a)
}

/// `pipe`, `pipe2`: two descriptors written back.
pub fn pipe(n: i64, a: [u64; 6]) -> R {
    user(a[0], 8)?;
    two_descriptors(a[0], |buf| fwd(n, [buf, a[1], 0, 0, 0, 0]))
}

/// A call that writes two new descriptors (`pipe`, `socketpair`) made into the
/// monitor's memory: a pair that is not both below the program's limit (see
/// `calls::within_limit`) goes again with `EMFILE`; otherwise it is copied out to
/// `addr`.
pub fn two_descriptors(addr: u64, call: impl FnOnce(u64) -> R) -> R {
    let mut fds = [-1i32; 2];
    let r = call(fds.as_mut_ptr() as u64)?;
    if fds.iter().any(|&f| f >= fdtable::program_limit()) {
        for f in fds {
            // SAFETY: the two descriptors this call just made; nothing else holds them.
            unsafe { libc::close(f) };
        }
        return Err(-(libc::EMFILE as i64));
    }
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&fds[0].to_le_bytes());
    b[4..].copy_from_slice(&fds[1].to_le_bytes());
    if let Err(e) = copy_out(addr, &b) {
        close_unseen(&fds);
        return Err(e);
    }
    Ok(r)
}

/// Closes descriptors a call made whose numbers never reached the program (their
/// copy-out failed), as the program's own `close` would: with the descriptor table
/// exclusive, so never while a path walk's pinned descriptor may hold one of the
/// numbers (a sibling may have closed it meanwhile and the walk taken it).
pub fn close_unseen(fds: &[i32]) {
    let _x = fdtable::exclusive();
    for &f in fds {
        // SAFETY: numbers in the program's range that no monitor descriptor holds
        // while no pin is held (the resolver's are pinned); at worst a number the
        // program reused meanwhile, its own.
        unsafe { libc::close(f) };
    }
}

/// Calls that make a new descriptor from plain numbers (`epoll_create1`, `eventfd2`,
/// `timerfd_create`, `inotify_init1`).
pub fn create(n: i64, a: [u64; 6]) -> R {
    fwd(n, a)
}

/// `memfd_create(name, flags)`: the name copied in.
pub fn memfd_create(n: i64, a: [u64; 6]) -> R {
    let name = c(&cstr_in(a[0], 250)?)?;
    fwd(n, [name.as_ptr() as u64, a[1], 0, 0, 0, 0])
}

/// A sigset the program passes to a call that waits with it: copied, with the
/// monitor's own signals unblocked.
pub fn wait_mask(addr: u64, size: u64) -> Result<Option<[u8; 8]>, i64> {
    if addr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(EINVAL);
    }
    let b = copy_in(addr, 8)?;
    Ok(Some(signals::host_wait_mask(word(&b, 0)).to_le_bytes()))
}

fn fd_set(addr: u64, n: u64) -> Result<(), i64> {
    opt(addr, n.div_ceil(64) * 8)
}

/// `poll(fds, n, timeout)`.
pub fn poll(n: i64, a: [u64; 6]) -> R {
    polled(a[0], a[1], |fds, waits| fwd(n, [fds, a[1], if waits { a[2] } else { 0 }, 0, 0, 0]))
}

/// `poll`'s and `ppoll`'s array, copied in: the kernel reads the monitor's copy, where
/// an entry naming one of the monitor's numbers (at or above the program's limit) is
/// -1, and the program gets `POLLNVAL` for it, as for a number nothing is open at. A
/// copy, not the program's array checked and passed on: a sibling could change an
/// entry after the check. `call(array, waits)` makes the call; `waits` is false when
/// such an entry makes the answer immediate (the call must not wait then).
fn polled(addr: u64, count: u64, call: impl FnOnce(u64, bool) -> R) -> R {
    let limit = fdtable::program_limit();
    if count > limit as u64 {
        return Err(EINVAL);
    }
    let mut b = copy_in(addr, count as usize * 8)?;
    let mut invalid = Vec::new();
    for (i, e) in b.chunks_exact_mut(8).enumerate() {
        let f = i32::from_le_bytes(e[..4].try_into().unwrap_or_default());
        if f >= limit {
            e[..4].copy_from_slice(&(-1i32).to_le_bytes());
            invalid.push((i, f));
        }
    }
    let r = call(b.as_mut_ptr() as u64, invalid.is_empty())?;
    for &(i, f) in &invalid {
        b[i * 8..i * 8 + 4].copy_from_slice(&f.to_le_bytes());
        b[i * 8 + 6..i * 8 + 8].copy_from_slice(&libc::POLLNVAL.to_le_bytes());
    }
    copy_out(addr, &b)?;
    Ok(r + invalid.len() as i64)
}

/// `ppoll(fds, n, timeout, sigmask, size)`.
pub fn ppoll(t: &mut Thread, n: i64, a: [u64; 6]) -> R {
    opt(a[2], 16)?;
    let mk = wait_mask(a[3], a[4])?;
    if mk.is_some() {
        t.saved_mask = Some(t.mask);
    }
    let zero = [0u64; 2];
    polled(a[0], a[1], |fds, waits| fwd(n, [fds, a[1], if waits { a[2] } else { zero.as_ptr() as u64 }, mk.as_ref().map_or(0, |b| b.as_ptr() as u64), a[4], 0]))
}

/// The `nfds` of `select` and `pselect6`, cut at the program's limit: the kernel then
/// looks at no bit of the monitor's numbers (and never at a bit a sibling sets after a
/// check).
fn select_count(nfds: u64) -> u64 {
    match nfds as i32 {
        n if n < 0 => nfds,
        n => n.min(fdtable::program_limit()) as u64,
    }
}

/// `select(n, r, w, e, timeout)`.
pub fn select(n: i64, a: [u64; 6]) -> R {
    fd_set(a[1], a[0])?;
    fd_set(a[2], a[0])?;
    fd_set(a[3], a[0])?;
    opt(a[4], 16)?;
    fwd(n, [select_count(a[0]), a[1], a[2], a[3], a[4], 0])
}

/// `pselect6(n, r, w, e, timeout, {sigmask, size})`.
pub fn pselect6(t: &mut Thread, n: i64, a: [u64; 6]) -> R {
    fd_set(a[1], a[0])?;
    fd_set(a[2], a[0])?;
    fd_set(a[3], a[0])?;
    opt(a[4], 16)?;
    let (mk, len) = if a[5] != 0 {
        let b = copy_in(a[5], 16)?;
        let (ss, len) = (word(&b, 0), word(&b, 8));
        (wait_mask(ss, len)?, len)
    } else {
        (None, 0)
    };
    if mk.is_some() {
        t.saved_mask = Some(t.mask);
    }
    let data = [mk.as_ref().map_or(0, |b| b.as_ptr() as u64), len];
    fwd(n, [select_count(a[0]), a[1], a[2], a[3], a[4], if a[5] != 0 { data.as_ptr() as u64 } else { 0 }])
}

/// `epoll_ctl(epfd, op, fd, event)`.
pub fn epoll_ctl(n: i64, a: [u64; 6]) -> R {
    fd(a[2])?;
    opt(a[3], 12)?;
    // An epoll set the sandbox was started with is the processes' outside.
    let ep = own_file(a[0], &format!("epoll_ctl({}, ...)", a[0] as i32))?;
    fwd(n, [ep.as_raw_fd() as u64, a[1], a[2], a[3], 0, 0])
}

/// `epoll_wait`, `epoll_pwait`, `epoll_pwait2`.
pub fn epoll_wait(t: &mut Thread, n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    user(a[1], a[2].saturating_mul(12))?;
    if n == libc::SYS_epoll_wait {
        return fwd(n, a);
    }
    if n == libc::SYS_epoll_pwait2 {
        opt(a[3], 16)?;
    }
    let mk = wait_mask(a[4], a[5])?;
    if mk.is_some() {
        t.saved_mask = Some(t.mask);
    }
    fwd(n, [a[0], a[1], a[2], a[3], mk.as_ref().map_or(0, |b| b.as_ptr() as u64), a[5]])
}

/// `timerfd_settime(fd, flags, new, old)` and `timerfd_gettime(fd, cur)`.
pub fn timerfd(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    if n == libc::SYS_timerfd_settime {
        user(a[2], 32)?;
        opt(a[3], 32)?;
        // A timer the sandbox was started with is armed for the processes outside.
        let t = own_file(a[0], &format!("timerfd_settime({}, ...)", a[0] as i32))?;
        return fwd(n, [t.as_raw_fd() as u64, a[1], a[2], a[3], 0, 0]);
    } else {
        user(a[1], 32)?;
    }
    fwd(n, a)
}

/// `signalfd4(fd, mask, size, flags)`: the mask copied, the monitor's signal out.
pub fn signalfd4(n: i64, a: [u64; 6]) -> R {
    let mk = wait_mask(a[1], a[2])?.ok_or(EFAULT)?;
    if a[0] as i32 == -1 {
        return fwd(n, [a[0], mk.as_ptr() as u64, a[2], a[3], 0, 0]);
    }
    // Changing the mask of an existing signalfd: not one shared with processes outside.
    let s = own_file(a[0], &format!("signalfd4({}, ...)", a[0] as i32))?;
    // Linux answers with the descriptor it was given: the program's, not the duplicate.
    fwd(n, [s.as_raw_fd() as u64, mk.as_ptr() as u64, a[2], a[3], 0, 0]).map(|_| a[0] as i32 as i64)
}

/// `getrandom(buf, len, flags)`.
pub fn getrandom(n: i64, a: [u64; 6]) -> R {
    user(a[0], a[1])?;
    if a[2] & !(libc::GRND_NONBLOCK | libc::GRND_RANDOM | 0x4 /* GRND_INSECURE */) as u64 != 0 {
        return Err(neg(libc::EINVAL));
    }
    fwd(n, a)
}
