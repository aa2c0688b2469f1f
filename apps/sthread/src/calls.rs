//! The system calls an sthread can make, and how each is checked.
//!
//! Every call goes through one table row: which argument is a descriptor and the
//! access it needs, which are buffers (copied in before the call, or out after it,
//! through the compartment's own table, so the kernel never sees an sthread
//! address), and which is a path. A call without a row cannot be granted at all.


// libc's SYS_* constants are lower case; they are matched as constants here.
#![allow(non_upper_case_globals)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use crate::compartment::Compartment;
use crate::policy::{supported, Policy, FD_READ, FD_WRITE};

/// Most bytes one call moves (longer reads and writes are short, as the kernel's may be).
const BOUNCE: usize = 64 << 10;
/// Longest path.
const PATH_LEN: usize = 4096;

/// A private system call: a callgate (rdi = entry, rsi = NULL, rdx = argument).
pub const SYS_CGATE: i64 = 0x5744_0001;

/// Why an sthread was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A memory access outside what it was granted.
    Memory { addr: u64, rip: u64, write: bool },
    /// Another exception (invalid opcode, privileged instruction, ...).
    Exception { vector: u8, rip: u64 },
    /// A system call it was not granted.
    Syscall { nr: i64, rip: u64 },
    /// A descriptor it was not granted, or not with that access.
    Descriptor { fd: i32, nr: i64 },
    /// A pointer argument to memory it cannot reach.
    Pointer { addr: u64, nr: i64 },
    /// A callgate its policy does not carry.
    Callgate { entry: u64 },
}

impl Violation {
    /// The errno `sthread_join` reports.
    pub fn errno(&self) -> i32 {
        match self {
            Violation::Memory { .. } | Violation::Pointer { .. } => libc::EFAULT,
            Violation::Exception { .. } => libc::EILSEQ,
            Violation::Syscall { .. } => libc::ENOSYS,
            Violation::Descriptor { .. } => libc::EBADF,
            Violation::Callgate { .. } => libc::EPERM,
        }
    }
}

/// What the run loop does after a call.
pub(crate) enum Outcome {
    /// Resume ring 3 (the result is in rax).
    Resume,
    /// The sthread ends with this value.
    Exit(u64),
    /// The sthread ends.
    Violated(Violation),
    /// The call would block: hand the sthread to a thread of its own, then retry.
    WouldBlock,
    /// A callgate invocation: run it, put its result in rax.
    Gate { entry: u64, arg: u64 },
}

/// Descriptors an sthread opens, at most (beyond: `EMFILE`), so that it cannot use up
/// the process's.
pub const MAX_OPENED: usize = 64;

/// Descriptors the running sthread may use. Each is held as an open file, never as a
/// number the master could reuse: a grant is a duplicate made when the sthread
/// started, and what it opens moves to a duplicate too, both at the application's
/// reserved numbers (`libdune::runtime::dup_reserved`), which the master's own calls
/// never hand out.
pub(crate) struct Fds {
    /// The policy's grants by the number the sthread was given: the open file that
    /// number named when it started (`None` if it named none, or was closed since by
    /// the sthread), and the access.
    grants: Vec<(i32, Option<Arc<OwnedFd>>, u8)>,
    /// What it opened, with the access; the sthread knows each by its duplicate's number.
    opened: Vec<(OwnedFd, u8)>,
    /// The file type (`S_IFMT` bits) of descriptors held above, by the number the
    /// calls use, once known: an open file's type never changes, and a number leaves
    /// this list when its descriptor closes.
    kinds: Vec<(i32, u32)>,
}

/// The open files a policy's descriptor numbers named when an sthread was made, for
/// every number its callgates grant (at any depth): a gate called later gets these,
/// never what the numbers name by then.
pub(crate) type Held = Vec<(i32, Option<Arc<OwnedFd>>)>;

/// A duplicate of what `fd` names now, at the application's reserved numbers (`None`
/// if it names nothing).
fn hold(fd: i32) -> crate::Result<Option<Arc<OwnedFd>>> {
    // SAFETY: the number is only borrowed for the duplication; if it names nothing the
    // duplication fails with EBADF.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    match libdune::runtime::dup_reserved(b) {
        Ok(d) => Ok(Some(Arc::new(d))),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(None),
        Err(_) => Err(crate::Error::NoMemory("reserved descriptors for an sthread's grants")),
    }
}

/// The open files of every descriptor number `policy`'s callgates grant, taken now.
pub(crate) fn hold_gate_grants(policy: &Policy) -> crate::Result<Held> {
    fn walk(p: &Policy, out: &mut Held) -> crate::Result<()> {
        for gate in &p.gates {
            for &(fd, _) in &gate.policy.fds {
                if !out.iter().any(|(n, _)| *n == fd) {
                    out.push((fd, hold(fd)?));
                }
            }
            walk(&gate.policy, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(policy, &mut out)?;
    Ok(out)
}

impl Fds {
    /// Takes the grants of `policy`: the open files `held` took for them when the
    /// sthread was made (a callgate's), or those their numbers name now.
    pub(crate) fn new(policy: &Policy, held: Option<&Held>) -> crate::Result<Fds> {
        let mut grants = Vec::with_capacity(policy.fds.len());
        for &(fd, mode) in &policy.fds {
            let file = match held {
                Some(h) => h.iter().find(|(n, _)| *n == fd).and_then(|(_, f)| f.clone()),
                None => hold(fd)?,
            };
            grants.push((fd, file, mode));
        }
        Ok(Fds { grants, opened: Vec::new(), kinds: Vec::new() })
    }

    /// The descriptor the call uses for the sthread's `fd`, with its access.
    fn get(&self, fd: i32) -> Option<(i32, u8)> {
        if let Some((o, m)) = self.opened.iter().find(|(o, _)| o.as_raw_fd() == fd) {
            return Some((o.as_raw_fd(), *m));
        }
        self.grants.iter().find(|g| g.0 == fd).and_then(|(_, o, m)| o.as_ref().map(|o| (o.as_raw_fd(), *m)))
    }

    fn mode(&self, fd: i32) -> u8 {
        self.get(fd).map_or(0, |g| g.1)
    }

    /// The file type of held descriptor `raw`, if known already.
    fn known(&self, raw: i32) -> Option<u32> {
        self.kinds.iter().find(|k| k.0 == raw).map(|k| k.1)
    }

    /// The file type of held descriptor `raw` (0 if it cannot be read).
    fn kind(&mut self, raw: i32) -> u32 {
        if let Some(k) = self.known(raw) {
            return k;
        }
        let k = stat_of(raw).map_or(0, |st| st.st_mode & libc::S_IFMT);
        if k != 0 {
            self.kinds.push((raw, k));
        }
        k
    }

    /// Notes that held descriptor `raw` is of type `kind`.
    fn learn(&mut self, raw: i32, kind: u32) {
        if !self.kinds.iter().any(|k| k.0 == raw) {
            self.kinds.push((raw, kind));
        }
    }

    /// Forgets what was known about `raw` (its descriptor is closing).
    fn forget(&mut self, raw: i32) {
        self.kinds.retain(|k| k.0 != raw);
    }
}

fn ret(r: i64) -> u64 {
    r as u64
}

fn errno() -> i64 {
    -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
}

fn stat_of(fd: i32) -> Option<libc::stat> {
    // SAFETY: fstat writes one struct stat into the zeroed local.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

fn int_ioctl(fd: i32, req: libc::c_ulong) -> Option<i64> {
    let mut v: libc::c_int = 0;
    // SAFETY: FIONREAD, TIOCOUTQ write one int.
    (unsafe { libc::ioctl(fd, req, &mut v) } == 0).then_some(i64::from(v))
}

/// Whether character device `fd` is a memory device (`/dev/null`, `/dev/zero`,
/// `/dev/full`, `/dev/urandom`: major 1), which takes any read or write at once.
fn memory_device(fd: i32) -> bool {
    stat_of(fd).is_some_and(|st| libc::major(st.st_rdev) == 1)
}

fn poll_ready(fd: i32, events: i16) -> bool {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Which way a call moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

/// The `send` flags an sthread may pass, by allowlist. Not `MSG_ZEROCOPY`: the kernel
/// would read the bytes from the library's bounce buffer when they go out, long after
/// the call, when that memory holds the master's data again. Not `MSG_FASTOPEN` (an
/// address) or anything Linux adds later.
const SEND_FLAGS: u64 = (libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE | libc::MSG_EOR | libc::MSG_OOB | libc::MSG_CONFIRM) as u64;

/// The `recv` flags an sthread may pass, by allowlist (not `MSG_ERRQUEUE`, whose
/// messages are the socket's owner's, or anything Linux adds later).
const RECV_FLAGS: u64 = (libc::MSG_DONTWAIT | libc::MSG_WAITALL | libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_OOB | libc::MSG_CMSG_CLOEXEC) as u64;

/// Whether moving `n` bytes through `fd` (of type `kind`; `waitall`: `MSG_WAITALL`)
/// could block, from the call and the file: a non-blocking file or `MSG_DONTWAIT`
/// never does, directories and block devices never do; a pipe blocks a write of more
/// than `PIPE_BUF` bytes, or one with no free page, and a read with nothing to read; a
/// socket blocks a read with nothing queued (with `MSG_WAITALL`, fewer than `n` bytes);
/// anything else (regular files, which in procfs may wait, terminals, other devices)
/// blocks unless poll says ready now. Socket writes are sent with `MSG_DONTWAIT`
/// instead (see the callers). When in doubt: it could.
fn could_block(fd: i32, kind: u32, dir: Dir, n: usize, waitall: bool, dontwait: bool) -> bool {
    // MSG_DONTWAIT is a socket's flag: elsewhere the call fails (ENOTSOCK) or ignores it.
    if dontwait && kind == libc::S_IFSOCK {
        return false;
    }
    let events = if dir == Dir::In { libc::POLLIN } else { libc::POLLOUT };
    let waits = match kind {
        // A regular file on a disk never blocks (poll says ready); one in procfs or
        // sysfs may (/proc/kmsg): asked like any other.
        libc::S_IFDIR | libc::S_IFBLK => false,
        libc::S_IFIFO if dir == Dir::Out => {
            // A pipe is written in pages: free bytes say nothing (16 chunks of 4000
            // bytes fill every page). POLLOUT means a free page, where a write of at
            // most PIPE_BUF bytes fits whole; a longer one may wait. No reader (POLLERR):
            // the write fails at once.
            let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
            // SAFETY: one pollfd, zero timeout.
            unsafe { libc::poll(&mut p, 1, 0) };
            !(p.revents & libc::POLLERR != 0 || (p.revents & libc::POLLOUT != 0 && n <= libc::PIPE_BUF))
        }
        libc::S_IFSOCK if dir == Dir::In && waitall => int_ioctl(fd, libc::FIONREAD).is_none_or(|q| q < n as i64) && !poll_ready(fd, libc::POLLHUP | libc::POLLRDHUP),
        // POLLOUT says some room exists, not that `n` bytes fit: a terminal takes every
        // byte before it returns, an eventfd waits while the sum would overflow. Of the
        // other files only regular ones and the memory devices (/dev/null, /dev/zero,
        // /dev/full, /dev/urandom: major 1) are known to take a write whole now.
        libc::S_IFCHR if dir == Dir::Out => !memory_device(fd),
        k if dir == Dir::Out && k != libc::S_IFREG => true,
        _ => !poll_ready(fd, events),
    };
    // Only a call that could wait asks whether the file is non-blocking.
    waits && fcntl_nonblock(fd) != Some(true)
}

/// Whether the process has a file size limit (then a write past it raises `SIGXFSZ`).
fn fsize_limited() -> bool {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the local.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut l) };
    r != 0 || l.rlim_cur != libc::RLIM_INFINITY
}

/// Makes a write with signal `sig` held back: a write to a pipe with no reader
/// (`SIGPIPE`, `EPIPE`) or past the file size limit (`SIGXFSZ`, `EFBIG`) must not end
/// the master (the sthread gets the error); a signal it did not cause stays pending.
fn write_holding(sig: i32, f: impl FnOnce() -> i64) -> i64 {
    // SAFETY: sigset operations on locals; the mask is restored below.
    unsafe {
        let mut pipe: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        let mut pending: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, sig);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        libc::sigpending(&mut pending);
        let was = libc::sigismember(&pending, sig) == 1;
        let r = f();
        // Raised by this write (it may still have written part: a blocking write whose
        // reader went away returns what it wrote, and the signal): taken back.
        libc::sigpending(&mut pending);
        if !was && libc::sigismember(&pending, sig) == 1 {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            libc::sigtimedwait(&pipe, core::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        r
    }
}

/// Makes a read or write of a terminal with `SIGTTIN` and `SIGTTOU` blocked: a
/// background master's read then fails with `EIO` and its write goes ahead, instead of
/// the kernel stopping the master's whole process group (a blocked job-control signal
/// counts as ignored and is never sent).
fn job_control_held(f: impl FnOnce() -> i64) -> i64 {
    // SAFETY: sigset operations on locals; the mask is restored below.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTIN);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        r
    }
}

/// Maps what the policy allows of a range before a copy (see `Compartment::ensure`).
pub(crate) type Ensure<'a> = &'a dyn Fn(&mut Compartment, u64, usize, bool) -> bool;

/// A C string of at most `max` bytes at `va`, page by page.
fn string_in(c: &mut Compartment, ensure: Ensure<'_>, va: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = va;
    while out.len() < max {
        let n = ((4096 - (at & 4095)) as usize).min(max - out.len());
        let mut buf = vec![0u8; n];
        if !ensure(c, at, n, false) || !c.copy_in(at, &mut buf) {
            return None;
        }
        if let Some(z) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..z]);
            return Some(out);
        }
        out.extend_from_slice(&buf);
        at = at.checked_add(n as u64)?;
    }
    None
}

/// Handles the call in `tf` (number in rax, arguments in rdi, rsi, rdx, r10, r8, r9).
/// `may_block`: false when the caller would rather hand the sthread off than block;
/// then a call that could block returns [`Outcome::WouldBlock`] before doing anything.
pub(crate) fn handle(c: &mut Compartment, ensure: Ensure<'_>, policy: &Policy, fds: &mut Fds, tf: &mut libdune::trap::TrapFrame, may_block: bool) -> Outcome {
    use libc::*;
    let nr = tf.rax as i64;
    let a = [tf.rdi, tf.rsi, tf.rdx, tf.r10, tf.r8, tf.r9];
    if nr == SYS_CGATE {
        if a[1] != 0 {
            tf.rax = ret(-(EINVAL as i64));
            return Outcome::Resume;
        }
        return Outcome::Gate { entry: a[0], arg: a[2] };
    }
    let always = matches!(nr, SYS_read | SYS_write | SYS_close | SYS_exit | SYS_exit_group);
    // open() is openat(AT_FDCWD) in today's libc: a grant of SYS_open covers it.
    let open_any = policy.allows(SYS_open);
    if !(always || (supported(nr) && (policy.allows(nr) || (nr == SYS_openat && open_any)))) {
        return Outcome::Violated(Violation::Syscall { nr, rip: tf.rip });
    }
    let fd = a[0] as i32;
    // The descriptor the call uses for the sthread's `fd`, if it holds it with `mode`.
    let held = |mode: u8| -> Result<i32, Outcome> {
        match fds.get(fd) {
            Some((raw, m)) if m & mode == mode && fd >= 0 => Ok(raw),
            _ => Err(Outcome::Violated(Violation::Descriptor { fd, nr })),
        }
    };
    let r: i64 = match nr {
        SYS_exit | SYS_exit_group => return Outcome::Exit(a[0]),
        SYS_read | SYS_pread64 | SYS_recvfrom => {
            let raw = match held(FD_READ) {
                Ok(r) => r,
                Err(v) => return v,
            };
            if nr == SYS_recvfrom && (a[4] != 0 || a[5] != 0) {
                return Outcome::Violated(Violation::Pointer { addr: a[4], nr });
            }
            if nr == SYS_recvfrom && a[3] & !RECV_FLAGS != 0 {
                tf.rax = ret(-(EINVAL as i64));
                return Outcome::Resume;
            }
            let n = (a[2] as usize).min(BOUNCE);
            let (waitall, dontwait) = (nr == SYS_recvfrom && a[3] as i32 & MSG_WAITALL != 0, nr == SYS_recvfrom && a[3] as i32 & MSG_DONTWAIT != 0);
            // Check the destination before the call consumes any data.
            if !ensure(c, a[1], n, true) {
                return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
            }
            let mut buf = vec![0u8; n];
            // MSG_WAITALL waits for the rest of what it asks however much is queued now
            // (another reader may take it, an out-of-band byte counts in FIONREAD but is
            // not read): never on a thread that must not block.
            if !may_block && waitall {
                return Outcome::WouldBlock;
            }
            // A socket that must not block is read with MSG_DONTWAIT: one call, what is
            // there now, or nothing; with nothing there a blocking read moves to a
            // thread of its own (the data is still queued). Not a socket: ENOTSOCK,
            // remembered, and the file decides below.
            let kind = fds.known(raw);
            if !may_block && nr != SYS_pread64 && !waitall && kind.is_none_or(|k| k == S_IFSOCK) {
                let flags = if nr == SYS_recvfrom { a[3] as i32 } else { 0 } | MSG_DONTWAIT;
                // SAFETY: the host call writes at most n bytes into buf.
                let r = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), n, flags) } as i64;
                let r = if r < 0 { errno() } else { r };
                if r != -(libc::ENOTSOCK as i64) {
                    fds.learn(raw, S_IFSOCK);
                    if r == -(EAGAIN as i64) && !dontwait && fcntl_nonblock(raw) == Some(false) {
                        return Outcome::WouldBlock;
                    }
                    // MSG_TRUNC reports a datagram's whole length: copy what was read.
                    if r > 0 && !c.copy_out(a[1], &buf[..(r as usize).min(n)]) {
                        return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
                    }
                    tf.rax = ret(r);
                    return Outcome::Resume;
                }
                // Not a socket: its type, for the checks below and next time.
                fds.kind(raw);
            }
            // Anything else that must not block is read with RWF_NOWAIT where the file
            // takes it (pipes, FIFOs): one call, the check and the read together, so no
            // other reader can empty it in between. Files that do not take it
            // (EOPNOTSUPP) are judged as before.
            if !may_block && nr == SYS_read {
                let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: n };
                // SAFETY: one iovec over buf, which the call writes at most n bytes into;
                // offset -1 is the file's current position.
                let r = unsafe { libc::preadv2(raw, &iov, 1, -1, libc::RWF_NOWAIT) } as i64;
                let r = if r < 0 { errno() } else { r };
                // A pipe on a kernel whose pipes do not take RWF_NOWAIT: to a thread of
                // its own if it is blocking (a poll and a read are two calls another
                // reader can come between).
                // The same for terminals and other character devices but the memory
                // devices (a terminal never takes RWF_NOWAIT).
                let racy = match fds.kind(raw) {
                    S_IFIFO => true,
                    S_IFCHR => !memory_device(raw),
                    _ => false,
                };
                if r == -(libc::EOPNOTSUPP as i64) && racy && fcntl_nonblock(raw) == Some(false) {
                    return Outcome::WouldBlock;
                }
                if r != -(libc::EOPNOTSUPP as i64) && r != -(libc::EINVAL as i64) && r != -(libc::ESPIPE as i64) {
                    if r == -(EAGAIN as i64) && fcntl_nonblock(raw) == Some(false) {
                        return Outcome::WouldBlock;
                    }
                    if r > 0 && !c.copy_out(a[1], &buf[..(r as usize).min(n)]) {
                        return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
                    }
                    tf.rax = ret(r);
                    return Outcome::Resume;
                }
            }
            if !may_block && could_block(raw, fds.kind(raw), Dir::In, n, waitall, dontwait) {
                return Outcome::WouldBlock;
            }
            // SAFETY: the host call writes at most n bytes into buf.
            let mut call = || unsafe {
                let r = match nr {
                    SYS_read => libc::read(raw, buf.as_mut_ptr().cast(), n) as i64,
                    SYS_pread64 => libc::pread(raw, buf.as_mut_ptr().cast(), n, a[3] as i64) as i64,
                    _ => libc::recvfrom(raw, buf.as_mut_ptr().cast(), n, a[3] as i32, core::ptr::null_mut(), core::ptr::null_mut()) as i64,
                };
                if r < 0 { errno() } else { r }
            };
            let r = if fds.kind(raw) == S_IFCHR { job_control_held(call) } else { call() };
            if r < 0 {
                r
            } else {
                if !c.copy_out(a[1], &buf[..(r as usize).min(n)]) {
                    return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
                }
                r
            }
        }
        SYS_write | SYS_pwrite64 | SYS_sendto => {
            let raw = match held(FD_WRITE) {
                Ok(r) => r,
                Err(v) => return v,
            };
            if nr == SYS_sendto && (a[4] != 0 || a[5] != 0) {
                return Outcome::Violated(Violation::Pointer { addr: a[4], nr });
            }
            if nr == SYS_sendto && a[3] & !SEND_FLAGS != 0 {
                tf.rax = ret(-(EINVAL as i64));
                return Outcome::Resume;
            }
            let n = (a[2] as usize).min(BOUNCE);
            let kind = fds.kind(raw);
            if nr == SYS_sendto && kind != S_IFSOCK {
                tf.rax = ret(-(ENOTSOCK as i64));
                return Outcome::Resume;
            }
            let dontwait = nr == SYS_sendto && a[3] as i32 & MSG_DONTWAIT != 0;
            // A socket is written with MSG_DONTWAIT when it must not block: what fits
            // is sent now (a short write), nothing is sent if nothing fits.
            let socket_now = kind == S_IFSOCK && nr != SYS_pwrite64 && !may_block;
            if !may_block && !socket_now && could_block(raw, kind, Dir::Out, n, false, dontwait) {
                return Outcome::WouldBlock;
            }
            let mut buf = vec![0u8; n];
            if !ensure(c, a[1], n, false) || !c.copy_in(a[1], &mut buf) {
                return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
            }
            let flags = if nr == SYS_sendto { a[3] as i32 } else { 0 } | MSG_NOSIGNAL | if socket_now { MSG_DONTWAIT } else { 0 };
            // SAFETY: the host call reads n bytes from buf.
            let call = || unsafe {
                let r = match nr {
                    _ if kind == S_IFSOCK && nr != SYS_pwrite64 => libc::send(raw, buf.as_ptr().cast(), n, flags) as i64,
                    SYS_pwrite64 => libc::pwrite(raw, buf.as_ptr().cast(), n, a[3] as i64) as i64,
                    _ => libc::write(raw, buf.as_ptr().cast(), n) as i64,
                };
                if r < 0 { errno() } else { r }
            };
            // A pipe written on a thread that must not block: one pwritev2(RWF_NOWAIT),
            // the check and the write together (another writer may take the free page
            // between a poll and a blocking write).
            if !may_block && kind == S_IFIFO && nr == SYS_write {
                let iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: n };
                // SAFETY: one iovec over buf, which the call reads n bytes of; offset -1
                // is the current position.
                let nowait = || unsafe {
                    let r = libc::pwritev2(raw, &iov, 1, -1, libc::RWF_NOWAIT) as i64;
                    if r < 0 { errno() } else { r }
                };
                let r = write_holding(libc::SIGPIPE, nowait);
                // A kernel whose pipes do not take RWF_NOWAIT (before 6.3? EOPNOTSUPP):
                // a blocking pipe's write goes to a thread of its own.
                if r == -(libc::EOPNOTSUPP as i64) && fcntl_nonblock(raw) == Some(false) {
                    return Outcome::WouldBlock;
                }
                if r != -(libc::EOPNOTSUPP as i64) {
                    if r == -(EAGAIN as i64) && fcntl_nonblock(raw) == Some(false) {
                        return Outcome::WouldBlock;
                    }
                    tf.rax = ret(r);
                    return Outcome::Resume;
                }
            }
            let r = match kind {
                S_IFIFO => write_holding(libc::SIGPIPE, call),
                S_IFREG if fsize_limited() => write_holding(libc::SIGXFSZ, call),
                S_IFCHR => job_control_held(call),
                _ => call(),
            };
            if socket_now && r == -(EAGAIN as i64) && !dontwait && fcntl_nonblock(raw) == Some(false) {
                return Outcome::WouldBlock;
            }
            r
        }
        SYS_close => {
            if fds.mode(fd) == 0 {
                return Outcome::Violated(Violation::Descriptor { fd, nr });
            }
            // What the sthread opened closes; a grant is only dropped (the master's
            // descriptor is the master's).
            if let Some((raw, _)) = fds.get(fd) {
                fds.forget(raw);
            }
            if let Some(i) = fds.opened.iter().position(|(o, _)| o.as_raw_fd() == fd) {
                drop(fds.opened.remove(i));
            } else if let Some(g) = fds.grants.iter_mut().find(|g| g.0 == fd) {
                g.1 = None;
            }
            0
        }
        SYS_shutdown => {
            // Shutting a direction needs that direction: reading for SHUT_RD, writing
            // for SHUT_WR, both for SHUT_RDWR.
            let need = match a[1] as i32 {
                SHUT_RD => FD_READ,
                SHUT_WR => FD_WRITE,
                SHUT_RDWR => FD_READ | FD_WRITE,
                _ => {
                    tf.rax = ret(-(EINVAL as i64));
                    return Outcome::Resume;
                }
            };
            let raw = match held(need) {
                Ok(r) => r,
                Err(v) => return v,
            };
            // SAFETY: no memory arguments.
            let r = unsafe { libc::shutdown(raw, a[1] as i32) };
            if r < 0 { errno() } else { 0 }
        }
        SYS_lseek => {
            let raw = match held(0) {
                Ok(r) => r,
                Err(v) => return v,
            };
            // SAFETY: no memory arguments.
            let r = unsafe { libc::lseek(raw, a[1] as i64, a[2] as i32) };
            if r < 0 { errno() } else { r }
        }
        SYS_fstat => {
            let raw = match held(0) {
                Ok(r) => r,
                Err(v) => return v,
            };
            match stat_of(raw) {
                None => errno(),
                Some(st) => {
                    // SAFETY: viewing a plain struct as its bytes.
                    let bytes = unsafe { core::slice::from_raw_parts((&st as *const libc::stat).cast::<u8>(), core::mem::size_of::<libc::stat>()) };
                    if !ensure(c, a[1], bytes.len(), true) || !c.copy_out(a[1], bytes) {
                        return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
                    }
                    0
                }
            }
        }
        SYS_open | SYS_openat => return open_checked(c, ensure, fds, tf, nr, open_any, may_block),
        // Only the system's clocks: not the CPU-time clocks (of the master's process or
        // of a thread the id names) or a clock a descriptor names.
        SYS_clock_gettime if !matches!(a[0] as i64, 0 | 1 | 4..=9 | 11) => -(EINVAL as i64),
        SYS_clock_gettime | SYS_gettimeofday | SYS_getrandom => {
            let (ptr, len) = match nr {
                SYS_clock_gettime => (a[1], 16usize),
                SYS_gettimeofday => (a[0], 16usize),
                _ => (a[0], (a[1] as usize).min(BOUNCE)),
            };
            let mut buf = vec![0u8; len];
            // SAFETY: each call writes at most len bytes into buf. getrandom never
            // waits: GRND_NONBLOCK is added (it blocks only before the pool is ready).
            let r = unsafe {
                match nr {
                    SYS_clock_gettime => libc::syscall(SYS_clock_gettime, a[0], buf.as_mut_ptr()),
                    SYS_gettimeofday => libc::syscall(SYS_gettimeofday, buf.as_mut_ptr(), 0),
                    _ => libc::syscall(SYS_getrandom, buf.as_mut_ptr(), len, (a[2] as u32 & (GRND_RANDOM | GRND_NONBLOCK)) | GRND_NONBLOCK),
                }
            };
            if r < 0 {
                errno()
            } else {
                let n = if nr == SYS_getrandom { r as usize } else { len };
                if !ensure(c, ptr, n, true) || !c.copy_out(ptr, &buf[..n]) {
                    return Outcome::Violated(Violation::Pointer { addr: ptr, nr });
                }
                r
            }
        }
        SYS_nanosleep => {
            if !may_block {
                return Outcome::WouldBlock;
            }
            let mut ts = [0u8; 16];
            if !ensure(c, a[0], 16, false) || !c.copy_in(a[0], &mut ts) {
                return Outcome::Violated(Violation::Pointer { addr: a[0], nr });
            }
            // SAFETY: a timespec read from the sthread's copy; no remainder pointer.
            let r = unsafe { libc::syscall(SYS_nanosleep, ts.as_ptr(), 0usize) };
            if r < 0 { errno() } else { 0 }
        }
        // No arguments that matter.
        _ => {
            // SAFETY: getpid-like calls and sched_yield take no pointers.
            let r = unsafe { libc::syscall(nr) };
            if r < 0 { errno() } else { r }
        }
    };
    tf.rax = ret(r);
    Outcome::Resume
}

/// Whether `fd` is in non-blocking mode.
fn fcntl_nonblock(fd: i32) -> Option<bool> {
    // SAFETY: F_GETFL has no side effects.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (fl >= 0).then_some(fl & libc::O_NONBLOCK != 0)
}

/// `open` and `openat`. Any path needs `SYS_open`; otherwise `openat` works only
/// beneath a granted directory, resolved by the kernel so that neither `..`, an
/// absolute path nor a symlink leaves it (`RESOLVE_BENEATH`). Never through a magic
/// link (`/proc/self/fd/N`, `/proc/self/root`: `RESOLVE_NO_MAGICLINKS`), never into
/// procfs (its `self` is the master), never a set-id bit on a new file, never more than
/// [`MAX_OPENED`] at once. When the caller must not block, the file is opened
/// non-blocking first: a FIFO (whose blocking open waits for its other end) is closed
/// again and the call handed off; anything else is set back to blocking.
fn open_checked(c: &mut Compartment, ensure: Ensure<'_>, fds: &mut Fds, tf: &mut libdune::trap::TrapFrame, nr: i64, open_any: bool, may_block: bool) -> Outcome {
    use libc::*;
    let a = [tf.rdi, tf.rsi, tf.rdx, tf.r10];
    let (dirfd, path, flags, mode) = if nr == SYS_open { (AT_FDCWD, a[0], a[1] as i32, a[2]) } else { (a[0] as i32, a[1], a[2] as i32, a[3]) };
    if dirfd == AT_FDCWD && !open_any {
        return Outcome::Violated(Violation::Descriptor { fd: dirfd, nr });
    }
    // Beneath a directory granted read-only, files open read-only: creating,
    // truncating or writing needs the directory granted for writing.
    // (O_TMPFILE includes O_DIRECTORY's bit: only both bits together are a create.)
    let writes = flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND) != 0 || flags & O_TMPFILE == O_TMPFILE;
    let need_dir = if writes && !open_any { FD_READ | FD_WRITE } else { FD_READ };
    let dir = if dirfd == AT_FDCWD {
        AT_FDCWD
    } else {
        match fds.get(dirfd) {
            Some((raw, m)) if m & need_dir == need_dir => raw,
            _ => return Outcome::Violated(Violation::Descriptor { fd: dirfd, nr }),
        }
    };
    let Some(mut p) = string_in(c, ensure, path, PATH_LEN) else {
        return Outcome::Violated(Violation::Pointer { addr: path, nr });
    };
    p.push(0);
    let done = |tf: &mut libdune::trap::TrapFrame, r: i64| {
        tf.rax = ret(r);
        Outcome::Resume
    };
    if fds.opened.len() >= MAX_OPENED {
        return done(tf, -(EMFILE as i64));
    }
    /// `struct open_how`.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_BENEATH: u64 = 0x08;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let want_nonblock = flags & O_NONBLOCK != 0;
    // Descriptors the sthread opens are never inherited by programs the master runs.
    // Never the master's controlling terminal either (O_NOCTTY).
    let oflags = flags | O_CLOEXEC | O_NOCTTY | if may_block { 0 } else { O_NONBLOCK };
    let creates = flags & O_CREAT != 0 || flags & O_TMPFILE == O_TMPFILE;
    let resolve = RESOLVE_NO_MAGICLINKS | if dirfd == AT_FDCWD || open_any { 0 } else { RESOLVE_BENEATH };
    let how = OpenHow { flags: oflags as u32 as u64, mode: if creates { mode & 0o1777 } else { 0 }, resolve };
    // SAFETY: p is NUL-terminated; `how` is a struct open_how of the size passed.
    let r = unsafe { libc::syscall(SYS_openat2, dir, p.as_ptr(), &how as *const OpenHow, core::mem::size_of::<OpenHow>()) };
    if r < 0 {
        return done(tf, errno());
    }
    // SAFETY: the descriptor openat2 just made, owned here alone.
    let f = unsafe { OwnedFd::from_raw_fd(r as i32) };
    // SAFETY: fstatfs writes one struct statfs into the zeroed local.
    let mut sfs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut sfs) } != 0 || sfs.f_type as i64 == PROC_SUPER_MAGIC {
        return done(tf, -(EACCES as i64));
    }
    if !may_block && !want_nonblock {
        if stat_of(f.as_raw_fd()).is_none_or(|st| st.st_mode & S_IFMT == S_IFIFO) {
            return Outcome::WouldBlock;
        }
        // SAFETY: F_SETFL on the descriptor just opened.
        unsafe { libc::fcntl(f.as_raw_fd(), F_SETFL, oflags & !O_NONBLOCK) };
    }
    let held = match libdune::runtime::dup_reserved(f.as_fd()) {
        Ok(h) => h,
        Err(_) => return done(tf, -(EMFILE as i64)),
    };
    drop(f);
    let m = match flags & O_ACCMODE {
        O_RDONLY => FD_READ,
        O_WRONLY => FD_WRITE,
        _ => FD_READ | FD_WRITE,
    };
    let n = held.as_raw_fd();
    fds.opened.push((held, m));
    done(tf, i64::from(n))
}
