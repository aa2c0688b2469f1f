//! The system calls an sthread can make, and how each is checked.
//!
//! Every call goes through one table row: which argument is a descriptor and the
//! access it needs, which are buffers (copied in before the call, or out after it,
//! through the compartment's own table, so the kernel never sees an sthread
//! address), and which is a path. A call without a row cannot be granted at all.


// libc's SYS_* constants are lower case; they are matched as constants here.
#![allow(non_upper_case_globals)]

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

/// Descriptors the running sthread may use: its policy's, plus those it opened.
pub(crate) struct Fds {
    pub opened: Vec<(i32, u8)>,
    pub closed: Vec<i32>,
}

impl Fds {
    fn mode(&self, policy: &Policy, fd: i32) -> u8 {
        if self.closed.contains(&fd) {
            return 0;
        }
        self.opened.iter().find(|(f, _)| *f == fd).map_or_else(|| policy.fd_mode(fd), |g| g.1)
    }
}

fn ret(r: i64) -> u64 {
    r as u64
}

fn errno() -> i64 {
    -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
}

fn ready(fd: i32, events: i16) -> bool {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) != 0 }
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
/// `may_block`: false when the caller would rather hand the sthread off than block.
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
    let need = |mode: u8| -> Option<Outcome> {
        (fds.mode(policy, fd) & mode != mode || fd < 0).then_some(Outcome::Violated(Violation::Descriptor { fd, nr }))
    };
    let r: i64 = match nr {
        SYS_exit | SYS_exit_group => return Outcome::Exit(a[0]),
        SYS_read | SYS_pread64 | SYS_recvfrom => {
            if let Some(v) = need(FD_READ) {
                return v;
            }
            if nr == SYS_recvfrom && (a[4] != 0 || a[5] != 0) {
                return Outcome::Violated(Violation::Pointer { addr: a[4], nr });
            }
            if !may_block && !ready(fd, POLLIN) {
                return Outcome::WouldBlock;
            }
            let n = (a[2] as usize).min(BOUNCE);
            // Check the destination before the call consumes any data.
            if !ensure(c, a[1], n, true) {
                return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
            }
            let mut buf = vec![0u8; n];
            // SAFETY: the host call writes at most n bytes into buf.
            let r = unsafe {
                match nr {
                    SYS_read => libc::read(fd, buf.as_mut_ptr().cast(), n) as i64,
                    SYS_pread64 => libc::pread(fd, buf.as_mut_ptr().cast(), n, a[3] as i64) as i64,
                    _ => libc::recvfrom(fd, buf.as_mut_ptr().cast(), n, a[3] as i32, core::ptr::null_mut(), core::ptr::null_mut()) as i64,
                }
            };
            if r < 0 {
                errno()
            } else {
                if !c.copy_out(a[1], &buf[..r as usize]) {
                    return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
                }
                r
            }
        }
        SYS_write | SYS_pwrite64 | SYS_sendto => {
            if let Some(v) = need(FD_WRITE) {
                return v;
            }
            if nr == SYS_sendto && (a[4] != 0 || a[5] != 0) {
                return Outcome::Violated(Violation::Pointer { addr: a[4], nr });
            }
            if !may_block && !ready(fd, POLLOUT) {
                return Outcome::WouldBlock;
            }
            let n = (a[2] as usize).min(BOUNCE);
            let mut buf = vec![0u8; n];
            if !ensure(c, a[1], n, false) || !c.copy_in(a[1], &mut buf) {
                return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
            }
            // SAFETY: the host call reads n bytes from buf.
            let r = unsafe {
                match nr {
                    SYS_write => libc::write(fd, buf.as_ptr().cast(), n) as i64,
                    SYS_pwrite64 => libc::pwrite(fd, buf.as_ptr().cast(), n, a[3] as i64) as i64,
                    _ => libc::sendto(fd, buf.as_ptr().cast(), n, a[3] as i32 | MSG_NOSIGNAL, core::ptr::null(), 0) as i64,
                }
            };
            if r < 0 { errno() } else { r }
        }
        SYS_close => {
            if fds.mode(policy, fd) == 0 {
                return Outcome::Violated(Violation::Descriptor { fd, nr });
            }
            // Only what the sthread opened is closed; a granted descriptor is the
            // creator's and is only dropped from the grant.
            if let Some(i) = fds.opened.iter().position(|(f, _)| *f == fd) {
                fds.opened.remove(i);
                // SAFETY: a descriptor this sthread opened.
                if unsafe { libc::close(fd) } < 0 { errno() } else { 0 }
            } else {
                fds.closed.push(fd);
                0
            }
        }
        SYS_shutdown => {
            if let Some(v) = need(FD_WRITE) {
                return v;
            }
            // SAFETY: no memory arguments.
            let r = unsafe { libc::shutdown(fd, a[1] as i32) };
            if r < 0 { errno() } else { 0 }
        }
        SYS_lseek => {
            if fds.mode(policy, fd) == 0 {
                return Outcome::Violated(Violation::Descriptor { fd, nr });
            }
            // SAFETY: no memory arguments.
            let r = unsafe { libc::lseek(fd, a[1] as i64, a[2] as i32) };
            if r < 0 { errno() } else { r }
        }
        SYS_fstat => {
            if fds.mode(policy, fd) == 0 {
                return Outcome::Violated(Violation::Descriptor { fd, nr });
            }
            // SAFETY: stat is plain data.
            let mut st: libc::stat = unsafe { core::mem::zeroed() };
            // SAFETY: fstat writes one struct stat.
            let r = unsafe { libc::fstat(fd, &mut st) };
            if r < 0 {
                errno()
            } else {
                // SAFETY: viewing a plain struct as its bytes.
                let bytes = unsafe { core::slice::from_raw_parts((&st as *const libc::stat).cast::<u8>(), core::mem::size_of::<libc::stat>()) };
                if !ensure(c, a[1], bytes.len(), true) || !c.copy_out(a[1], bytes) {
                    return Outcome::Violated(Violation::Pointer { addr: a[1], nr });
                }
                0
            }
        }
        SYS_open | SYS_openat => {
            let (dirfd, path, flags, mode) = if nr == SYS_open { (AT_FDCWD, a[0], a[1], a[2]) } else { (a[0] as i32, a[1], a[2], a[3]) };
            // Any path needs SYS_open. Otherwise openat works only beneath a granted
            // directory descriptor, resolved by the kernel so that neither `..`, an
            // absolute path nor a symlink leaves it (openat2 RESOLVE_BENEATH).
            if dirfd == AT_FDCWD && !open_any {
                return Outcome::Violated(Violation::Descriptor { fd: dirfd, nr });
            }
            // Beneath a directory granted read-only, files open read-only: creating,
            // truncating or writing needs the directory granted for writing.
            let writes = (flags as i32) & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE) != 0;
            let need_dir = if writes && !open_any { FD_READ | FD_WRITE } else { FD_READ };
            if dirfd != AT_FDCWD && fds.mode(policy, dirfd) & need_dir != need_dir {
                return Outcome::Violated(Violation::Descriptor { fd: dirfd, nr });
            }
            let Some(mut p) = string_in(c, ensure, path, PATH_LEN) else {
                return Outcome::Violated(Violation::Pointer { addr: path, nr });
            };
            p.push(0);
            // Descriptors the sthread opens are never inherited by programs the
            // creator runs later.
            let flags = flags as i32 | O_CLOEXEC;
            let r = if dirfd == AT_FDCWD || open_any {
                // SAFETY: p is NUL-terminated.
                unsafe { libc::openat(dirfd, p.as_ptr().cast(), flags, mode as libc::c_uint) }
            } else {
                /// `struct open_how`.
                #[repr(C)]
                struct OpenHow {
                    flags: u64,
                    mode: u64,
                    resolve: u64,
                }
                const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
                const RESOLVE_BENEATH: u64 = 0x08;
                let how = OpenHow { flags: flags as u32 as u64, mode: if flags & (O_CREAT | O_TMPFILE) != 0 { mode & 0o7777 } else { 0 }, resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
                // SAFETY: p is NUL-terminated; `how` is a struct open_how of the size passed.
                unsafe { libc::syscall(SYS_openat2, dirfd, p.as_ptr(), &how as *const OpenHow, core::mem::size_of::<OpenHow>()) as i32 }
            };
            if r < 0 {
                errno()
            } else {
                let m = match flags & O_ACCMODE {
                    O_RDONLY => FD_READ,
                    O_WRONLY => FD_WRITE,
                    _ => FD_READ | FD_WRITE,
                };
                fds.opened.push((r, m));
                fds.closed.retain(|&f| f != r);
                r as i64
            }
        }
        SYS_clock_gettime | SYS_gettimeofday | SYS_getrandom => {
            let (ptr, len) = match nr {
                SYS_clock_gettime => (a[1], 16usize),
                SYS_gettimeofday => (a[0], 16usize),
                _ => (a[0], (a[1] as usize).min(BOUNCE)),
            };
            let mut buf = vec![0u8; len];
            // SAFETY: each call writes at most len bytes into buf.
            let r = unsafe {
                match nr {
                    SYS_clock_gettime => libc::syscall(SYS_clock_gettime, a[0], buf.as_mut_ptr()),
                    SYS_gettimeofday => libc::syscall(SYS_gettimeofday, buf.as_mut_ptr(), 0),
                    _ => libc::syscall(SYS_getrandom, buf.as_mut_ptr(), len, a[2]),
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
