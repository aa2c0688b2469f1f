//! Descriptors: which numbers are the program's, and how the monitor holds its own.
//!
//! The program and the monitor share one descriptor table, and a sibling thread of
//! the program can `dup2` or close any number below its limit at any moment. So:
//!
//! - **The monitor's descriptors never live at the program's numbers.** Every
//!   descriptor the monitor keeps (tree roots, the audit descriptor, the exec
//!   loader's files, children's pidfds, private duplicates) sits at the application's
//!   reserved numbers above the program's `RLIMIT_NOFILE` (libdune's
//!   `runtime::dup_reserved`): the program cannot name them ([`fd`] answers `EBADF`),
//!   cannot `dup2` onto them (the kernel refuses numbers above its limit), and does
//!   not see them in `/proc/self/fd`.
//! - **A descriptor the monitor opens is born at a low number**, and while it is
//!   there the monitor holds a [`pin`]: the program's `close`, `dup2`, `dup3` and
//!   `close_range` take [`exclusive`] and wait. A pin is never held across a call that
//!   can block (opening a FIFO, connecting): the descriptor moves up first ([`own`]).
//! - **A check on a program descriptor and the call it guards act on one open
//!   file**: [`private`] takes the monitor's own duplicate of whatever the number
//!   names at that instant, the check reads that duplicate, and the call uses it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use libdune::runtime::{DescriptorPin, DescriptorsExclusive};

use super::sys::EBADF;

/// The first number the program cannot use (its `RLIMIT_NOFILE` is capped below it).
pub fn program_limit() -> i32 {
    libdune::runtime::descriptor_base().unwrap_or(i32::MAX)
}

/// A descriptor argument of the program's: numbers at or above [`program_limit`] are
/// the runtime's or the monitor's, and do not exist for the program (`EBADF`).
pub fn fd(x: u64) -> Result<(), i64> {
    let f = x as i32;
    if f >= program_limit() {
        return Err(EBADF);
    }
    Ok(())
}

/// Pins descriptor numbers while the monitor holds one at a low number.
pub fn pin() -> DescriptorPin {
    libdune::runtime::pin_descriptors()
}

/// Taken around the program's calls that replace or close a given number.
pub fn exclusive() -> DescriptorsExclusive {
    libdune::runtime::exclusive_descriptors()
}

/// Moves `fd` up to the monitor's reserved numbers (a duplicate there; `fd` closes).
/// Call with a [`pin`] held since `fd` was born.
pub fn own(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    libdune::runtime::dup_reserved(std::os::fd::AsFd::as_fd(&fd))
}

/// The monitor's own duplicate of whatever the program's descriptor `f` names now
/// (`EBADF` if nothing, or not the program's).
pub fn private(f: u64) -> Result<OwnedFd, i64> {
    fd(f)?;
    if (f as i32) < 0 {
        return Err(EBADF);
    }
    // SAFETY: the number is only borrowed for the duplication, which the runtime does
    // atomically (F_DUPFD_CLOEXEC); if it is not open the call fails with EBADF.
    let b = unsafe { BorrowedFd::borrow_raw(f as i32) };
    libdune::runtime::dup_reserved(b).map_err(|e| -(e.raw_os_error().unwrap_or(libc::EBADF) as i64))
}

/// The link of `fd` in the calling thread's descriptor table, as the kernel shows it.
/// `/proc/thread-self`, not `/proc/self`: `/proc/self/fd` is the thread-group
/// leader's table, which is gone once the leader exits.
pub fn link_of(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    std::fs::read_link(proc_fd(fd.as_raw_fd())).ok()
}

/// The calling thread's `/proc` link of descriptor `fd` (see [`link_of`]).
pub fn proc_fd(fd: i32) -> String {
    format!("/proc/thread-self/fd/{fd}")
}

/// The path `fd` was opened at, as the kernel shows it (`None` for pipes, sockets,
/// anonymous files, and files that were deleted).
pub fn path_of(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    match file_of(fd) {
        FileOf::Path(p) => Some(p),
        _ => None,
    }
}

/// What an open file is, for a decision that depends on it.
#[derive(Debug, PartialEq, Eq)]
pub enum FileOf {
    /// A file with a name in the file system.
    Path(PathBuf),
    /// A file whose last name was removed; the path it had.
    Deleted(PathBuf),
    /// A `memfd` (its inode is its creator's alone).
    Memfd,
    /// A pipe or a socket: an inode of its own.
    PipeOrSocket,
    /// Anything else: an anonymous inode (one inode shared by every eventfd, epoll,
    /// timerfd and signalfd on the machine), or a file whose link could not be read.
    Other,
}

/// Classifies `fd` by its link and, for a deleted file, its link count.
pub fn file_of(fd: BorrowedFd<'_>) -> FileOf {
    let Some(p) = link_of(fd) else { return FileOf::Other };
    let b = p.as_os_str().as_encoded_bytes();
    if b.starts_with(b"pipe:[") || b.starts_with(b"socket:[") {
        return FileOf::PipeOrSocket;
    }
    if !p.is_absolute() {
        return FileOf::Other;
    }
    // SAFETY: fstat writes one struct stat into the local; a bad descriptor is an error.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return FileOf::Other;
    }
    if st.st_nlink > 0 {
        // A name that merely ends in " (deleted)" is a name.
        return FileOf::Path(p);
    }
    let Some(stem) = b.strip_suffix(b" (deleted)") else { return FileOf::Other };
    if stem.starts_with(b"/memfd:") {
        return FileOf::Memfd;
    }
    FileOf::Deleted(PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(stem)))
}

/// A raw descriptor the monitor just made (a syscall's result), owned.
///
/// # Safety
/// `fd` must be a descriptor nothing else owns.
pub unsafe fn adopt(fd: i32) -> OwnedFd {
    // SAFETY: as the caller promises.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---- files shared with processes outside ---------------------------------------------

/// What the sandbox was started with: the devices of the terminals among its
/// standard streams (plus `/dev/tty` and `/dev/console`, which name them), and the
/// files (device and inode) of every descriptor it inherited. Those open files are
/// shared with processes outside.
struct Outer {
    terminals: Vec<u64>,
    files: Vec<(u64, u64)>,
}

static OUTER: std::sync::OnceLock<Outer> = std::sync::OnceLock::new();

pub fn stat_of(f: i32) -> Option<libc::stat> {
    // SAFETY: fstat writes one struct stat into the local; a bad descriptor is an error.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(f, &mut st) } == 0).then_some(st)
}

pub fn rdev(f: i32) -> Option<u64> {
    stat_of(f).filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR).map(|st| st.st_rdev)
}

/// Records the terminals and files the sandbox starts with (before the program runs).
pub fn note_outer_files() {
    let mut terminals = vec![libc::makedev(5, 0), libc::makedev(5, 1)];
    // Every descriptor the sandbox starts with, at any number below the runtime's
    // (listed: not a range guessed), before the program runs.
    let base = libdune::runtime::descriptor_base().unwrap_or(i32::MAX);
    let inherited: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|&f| f < base).collect(),
        Err(_) => (0..base.min(1 << 20)).collect(),
    };
    // A terminal on any descriptor the sandbox starts with, not only 0 to 2.
    for &f in &inherited {
        // SAFETY: isatty only queries the descriptor.
        if unsafe { libc::isatty(f) } == 1 {
            terminals.extend(rdev(f));
        }
    }
    let files = inherited.into_iter().filter_map(stat_of).map(|st| (st.st_dev, st.st_ino)).collect();
    let _ = OUTER.set(Outer { terminals, files });
}

/// Open files (device and inode) and terminals (device numbers) the program received
/// in `SCM_RIGHTS` messages: whoever sent them holds them too.
static RECEIVED: std::sync::Mutex<Received> = std::sync::Mutex::new((Vec::new(), Vec::new()));

/// Files (device, inode) and terminals (device numbers).
type Received = (Vec<(u64, u64)>, Vec<u64>);

/// Held across a `recvmsg` that may carry descriptors and the noting of what came
/// ([`Receiving::note`]): the kernel puts received descriptors at the program's
/// lowest free numbers, and until they are noted a sibling's call would take them for
/// the program's own. While this is held, [`is_outer_file`] waits (it reads the
/// noted files under the same lock), and no `close` or `dup2` renumbers what came
/// (the pin). Never held across a call that blocks: the receive does not wait.
pub struct Receiving {
    _pin: DescriptorPin,
    noted: std::sync::MutexGuard<'static, Received>,
}

/// The lock of the noted files, held across `fork` (see `procs::fork`).
pub fn lock_noted() -> impl Sized {
    RECEIVED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes [`Receiving`].
pub fn receiving() -> Receiving {
    let _pin = pin();
    Receiving { _pin, noted: RECEIVED.lock().unwrap_or_else(|e| e.into_inner()) }
}

/// The descriptors in the `SCM_RIGHTS` messages of control buffer `ctl`.
pub fn received(ctl: &[u8]) -> Vec<i32> {
    let mut out = Vec::new();
    // struct cmsghdr: len u64, level i32, type i32, then data, aligned to 8.
    let mut at = 0usize;
    while at + 16 <= ctl.len() {
        let len = u64::from_le_bytes(ctl[at..at + 8].try_into().unwrap_or_default()) as usize;
        if len < 16 || at + len > ctl.len() {
            break;
        }
        let (level, ty) = (i32::from_le_bytes(ctl[at + 8..at + 12].try_into().unwrap_or_default()), i32::from_le_bytes(ctl[at + 12..at + 16].try_into().unwrap_or_default()));
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            out.extend(ctl[at + 16..at + len].chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        }
        at += len.next_multiple_of(8);
    }
    out
}

impl Receiving {
    /// Notes the descriptors in the control messages `ctl` that `recvmsg` just wrote
    /// as shared with processes outside (a descriptor sent from inside is noted too:
    /// the monitor cannot tell the sender, and treating it as shared only refuses
    /// more).
    pub fn note(&mut self, ctl: &[u8]) {
        let r = &mut self.noted;
        for fd in received(ctl) {
            let Some(st) = stat_of(fd) else { continue };
            if !r.0.contains(&(st.st_dev, st.st_ino)) {
                r.0.push((st.st_dev, st.st_ino));
            }
            // SAFETY: isatty only queries the descriptor.
            if unsafe { libc::isatty(fd) } == 1 && !r.1.contains(&st.st_rdev) {
                r.1.push(st.st_rdev);
            }
        }
    }
}

/// Whether `f` is a terminal the sandbox runs in, or one it received (rather than one
/// the program made).
pub fn is_outer_terminal(f: &OwnedFd) -> bool {
    rdev(f.as_raw_fd()).is_some_and(|r| OUTER.get().is_some_and(|o| o.terminals.contains(&r)) || RECEIVED.lock().unwrap_or_else(|e| e.into_inner()).1.contains(&r))
}

/// Whether `f` is a file the sandbox was started with, or the terminal it runs in:
/// its open file is shared with processes outside, so who gets its `SIGIO`, and
/// which signal that is, are theirs to set.
pub fn is_outer_file(f: &OwnedFd) -> bool {
    is_outer_terminal(f)
        || stat_of(f.as_raw_fd()).is_some_and(|st| {
            let key = (st.st_dev, st.st_ino);
            OUTER.get().is_some_and(|o| o.files.contains(&key)) || RECEIVED.lock().unwrap_or_else(|e| e.into_inner()).0.contains(&key)
        })
}

/// A private duplicate of the program's descriptor `f`, for a call that changes the
/// open file's own state (a timer, a signal mask, an epoll set, a lease, an
/// association): refused (`EPERM`) on an open file the sandbox was started with,
/// whose state is the processes' outside too. The call acts on the duplicate, the
/// object checked.
pub fn own_file(f: u64, what: &str) -> Result<OwnedFd, i64> {
    let p = private(f)?;
    not_outer(&p, what)?;
    Ok(p)
}

/// Refuses `what` (`EPERM`) on `p` if it is an open file shared with processes
/// outside (see [`is_outer_file`]).
pub fn not_outer(p: &OwnedFd, what: &str) -> Result<(), i64> {
    if is_outer_file(p) {
        return super::sys::deny(what, "an open file the sandbox was started with, shared with processes outside", libc::EPERM).map(|_| ());
    }
    Ok(())
}
