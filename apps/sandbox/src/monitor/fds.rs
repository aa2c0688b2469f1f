//! Calls on descriptors themselves: closing and duplicating, `fcntl` and `ioctl`
//! (allowlists of commands and requests), locks, and the metadata calls that act on
//! an open file (`fchmod`, `fchown`, `futimens`).
//!
//! A check that depends on which file a descriptor names reads the monitor's private
//! duplicate of it ([`fdtable::private`]) and the call then uses that duplicate, so a
//! sibling thread renumbering descriptors in between changes nothing.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::fdtable::{self, fd, is_outer_file, is_outer_terminal, not_outer, stat_of, FileOf};
use super::state::m;
use super::sys::{deny, fwd, raw, ret, EBADF, EINVAL, R};
use super::user::{copy_in, user, word32};
use crate::policy::Access;

/// `close(fd)`: no monitor descriptor is in flight at that number meanwhile.
pub fn close(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    let _x = fdtable::exclusive();
    fwd(n, a)
}

/// `close_range(first, last, flags)`: the runtime caps it below the reserved numbers.
/// Not `CLOSE_RANGE_UNSHARE`: every thread of the sandbox shares one descriptor table,
/// which the monitor's own descriptors and checks rely on.
pub fn close_range(n: i64, a: [u64; 6]) -> R {
    if a[0] as u32 > a[1] as u32 {
        return Err(EINVAL);
    }
    if a[2] & !(libc::CLOSE_RANGE_CLOEXEC as u64) != 0 {
        return deny(&format!("close_range({}, {}, {:#x})", a[0] as u32, a[1] as u32, a[2]), "flags other than CLOSE_RANGE_CLOEXEC (a thread with a descriptor table of its own)", libc::EINVAL);
    }
    let _x = fdtable::exclusive();
    ret(raw(n, a))
}

/// `dup(fd)`: takes the lowest free number, never replaces one.
pub fn dup(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    fwd(n, a)
}

/// `dup2(old, new)`, `dup3(old, new, flags)`: replace the descriptor at `new`.
pub fn dup2(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    fd(a[1])?;
    let _x = fdtable::exclusive();
    fwd(n, a)
}

/// Whether the file `f` (a private duplicate) may be changed by the program: a file
/// in a read-write tree (or deleted from one), a pipe, a socket or a `memfd`. Never
/// an anonymous inode (the machine's eventfds, epolls and timerfds share one), and
/// never a file whose link cannot be read: what cannot be named is not the program's.
pub fn writable(f: &OwnedFd) -> bool {
    let p = match fdtable::file_of(f.as_fd()) {
        // Not one the sandbox was started with: that is the outside's too.
        FileOf::PipeOrSocket | FileOf::Memfd => return !is_outer_file(f),
        FileOf::Other => return false,
        FileOf::Path(p) | FileOf::Deleted(p) => p,
    };
    // The resolver's descriptors are born at the program's numbers.
    let _pin = fdtable::pin();
    m().policy.paths().check(&m().cwd(), p.as_os_str().as_encoded_bytes(), false, Access::Write).is_ok()
}

/// The private duplicate of `f` if the program may change its file, else a denial
/// naming `what`.
fn writable_private(f: u64, what: &str) -> Result<OwnedFd, i64> {
    let p = fdtable::private(f)?;
    if writable(&p) {
        return Ok(p);
    }
    let shown = fdtable::path_of(p.as_fd()).map_or_else(|| format!("descriptor {}", f as i32), |p| p.display().to_string());
    deny(&format!("{what} on {shown}"), "not in a read-write tree", libc::EPERM).map(|_| p)
}

/// `ftruncate` and `fallocate` (which also punches holes): what was written is
/// gone, so only files in read-write trees (a file outside them the sandbox was
/// started with, say opened for appending, is only appended to).
pub fn resize(n: i64, a: [u64; 6]) -> R {
    let what = if n == libc::SYS_ftruncate { "ftruncate" } else { "fallocate" };
    let p = writable_private(a[0], what)?;
    ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], a[3], 0, 0]))
}

/// `fchmod(fd, mode)`: only files in read-write trees, never a set-id bit.
pub fn fchmod(n: i64, a: [u64; 6]) -> R {
    if a[1] & (libc::S_ISUID | libc::S_ISGID) as u64 != 0 {
        return deny(&format!("fchmod({}, {:o})", a[0] as i32, a[1]), "set-user-ID and set-group-ID bits are not allowed", libc::EPERM);
    }
    let p = writable_private(a[0], "fchmod")?;
    ret(raw(n, [p.as_raw_fd() as u64, a[1], 0, 0, 0, 0]))
}

/// `fchown(fd, uid, gid)`: only files in read-write trees.
pub fn fchown(n: i64, a: [u64; 6]) -> R {
    let p = writable_private(a[0], "fchown")?;
    ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
}

/// `utimensat(fd, NULL, times, flags)` (`futimens`): only files in read-write trees.
pub fn futimens(n: i64, a: [u64; 6]) -> R {
    let times = if a[2] != 0 { Some(copy_in(a[2], 32)?) } else { None };
    let p = writable_private(a[0], "futimens")?;
    ret(raw(n, [p.as_raw_fd() as u64, 0, times.as_ref().map_or(0, |t| t.as_ptr() as u64), a[3], 0, 0]))
}

/// A lock on the file `f` names: taken on the private duplicate when the program may
/// change the file; on a file it may only read (which other processes on the machine
/// may lock and wait for), the lock succeeds without being taken: the program keeps
/// working, and nothing outside can be made to wait.
fn lock(f: u64, take: impl FnOnce(&OwnedFd) -> R) -> R {
    let p = fdtable::private(f)?;
    // A lock on an open file the sandbox was started with is the processes' outside
    // too (flock and OFD locks belong to the open file): never taken or released.
    if writable(&p) && !is_outer_file(&p) {
        take(&p)
    } else {
        Ok(0)
    }
}

/// `flock(fd, op)`.
pub fn flock(n: i64, a: [u64; 6]) -> R {
    lock(a[0], |p| fwd(n, [p.as_raw_fd() as u64, a[1], 0, 0, 0, 0]))
}

/// `fcntl(fd, cmd, arg)`: commands by allowlist.
pub fn fcntl(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    match a[1] as i32 {
        libc::F_GETLK | libc::F_OFD_GETLK => {
            user(a[2], 32)?;
            fwd(n, a)
        }
        libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => {
            user(a[2], 32)?;
            let fl = copy_in(a[2], 32)?;
            lock(a[0], |p| fwd(n, [p.as_raw_fd() as u64, a[1], fl.as_ptr() as u64, 0, 0, 0]))
        }
        libc::F_SETLEASE => {
            // A lease makes other processes' opens wait: only on files the program may
            // change.
            let p = fdtable::own_file(a[0], &format!("fcntl({}, F_SETLEASE)", a[0] as i32))?;
            if a[2] as i32 == libc::F_UNLCK {
                return fwd(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]);
            }
            if !writable(&p) {
                return deny(&format!("fcntl({}, F_SETLEASE)", a[0] as i32), "a lease on a file outside the read-write trees", libc::EACCES);
            }
            fwd(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0])
        }
        16 => {
            // F_GETOWN_EX
            user(a[2], 8)?;
            fwd(n, a)
        }
        15 => {
            // F_SETOWN_EX: { type, pid }; the signal goes to that thread, process or group.
            let b = copy_in(a[2], 8)?;
            let (kind, pid) = (word32(&b, 0) as i32, word32(&b, 4) as i32);
            let target = if kind == 2 { -(pid as i64) } else { pid as i64 };
            if kind == 0 {
                super::procs::own_pid(pid as i64)?
            } else {
                super::procs::kill_target(target)?
            }
            let p = fdtable::private(a[0])?;
            not_outer(&p, &format!("fcntl({}, F_SETOWN_EX)", a[0] as i32))?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], b.as_ptr() as u64, 0, 0, 0]))
        }
        libc::F_SETOWN => {
            super::procs::kill_target(a[2] as i32 as i64)?;
            let p = fdtable::private(a[0])?;
            not_outer(&p, &format!("fcntl({}, F_SETOWN, {})", a[0] as i32, a[2] as i32))?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
        }
        10 => {
            // F_SETSIG: which signal SIGIO becomes, for whoever owns the open file.
            if !super::signals::sendable(a[2] as i32 as i64) {
                return deny(&format!("fcntl(F_SETSIG, {})", a[2] as i32), "a signal the monitor keeps", libc::EINVAL);
            }
            let p = fdtable::private(a[0])?;
            not_outer(&p, &format!("fcntl({}, F_SETSIG, {})", a[0] as i32, a[2] as i32))?;
            owner_is_ours(&p, &format!("fcntl({}, F_SETSIG, {})", a[0] as i32, a[2] as i32))?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
        }
        libc::F_SETFL => {
            // The status flags of an open file the sandbox was started with are the
            // processes' outside too (one open file): on the terminal O_NONBLOCK and
            // O_ASYNC need --allow-tty; a pipe is opened again for the program alone
            // first; any other such file keeps its flags. Checked and set on one
            // private duplicate.
            let what = format!("fcntl({}, F_SETFL, {:#o})", a[0] as i32, a[2]);
            let p = fdtable::private(a[0])?;
            let cur = raw(n, [p.as_raw_fd() as u64, libc::F_GETFL as u64, 0, 0, 0, 0]);
            const SETTABLE: i32 = libc::O_APPEND | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME | libc::O_NONBLOCK;
            let changed = if cur >= 0 { (cur ^ a[2] as i64) as i32 & SETTABLE } else { 0 };
            let p = if changed == 0 || !is_outer_file(&p) {
                p
            } else if is_outer_terminal(&p) {
                // Any status flag (O_APPEND too) is the shell's open file's.
                if !m().policy.tty() {
                    return deny(&what, "changes the terminal the sandbox runs in (--allow-tty)", libc::EPERM);
                }
                p
            } else {
                if changed & libc::O_ASYNC != 0 {
                    not_outer(&p, &what)?;
                    owner_is_ours(&p, &what)?;
                }
                own_open_file(a[0], p, &what)?
            };
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
        }
        libc::F_SETPIPE_SZ => {
            // A pipe's size is the pipe's, whoever else holds it.
            let p = fdtable::own_file(a[0], &format!("fcntl({}, F_SETPIPE_SZ)", a[0] as i32))?;
            // A FIFO opened by its name is a pipe others can open too.
            if !matches!(fdtable::file_of(p.as_fd()), FileOf::PipeOrSocket) {
                return deny(&format!("fcntl({}, F_SETPIPE_SZ)", a[0] as i32), "a named FIFO, which processes outside may hold too", libc::EPERM);
            }
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
        }
        libc::F_ADD_SEALS => {
            // Seals are the file's, whoever else holds it.
            let p = fdtable::own_file(a[0], &format!("fcntl({}, F_ADD_SEALS)", a[0] as i32))?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD | libc::F_GETFL | libc::F_GETOWN | libc::F_GETPIPE_SZ
        | libc::F_GET_SEALS | 11 /* F_GETSIG */ | libc::F_GETLEASE => fwd(n, a),
        libc::F_NOTIFY => {
            // Directory notification sets the open file's owner for its SIGIO.
            let p = fdtable::own_file(a[0], &format!("fcntl({}, F_NOTIFY)", a[0] as i32))?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], 0, 0, 0]))
        }
        c => deny(&format!("fcntl({}, {c})", a[0] as i32), "command not in the sandbox's list", libc::EINVAL),
    }
}

/// Terminal requests that change the terminal (modes, window size, foreground group,
/// flushing): they act on the terminal the sandbox was started from, which is not
/// the program's unless the policy says so (`--allow-tty`).
/// Also `FIONBIO` and `FIOASYNC`: the terminal's open file is shared with the shell,
/// which would then get `EAGAIN` or `SIGIO`.
const TTY_CHANGES: &[u64] = &[0x5402, 0x5403, 0x5404, 0x5414, 0x5410, 0x540b, 0x540a, 0x5409, 0x5406, 0x5407, 0x5408, 0x5421, 0x5452];

/// `ioctl(fd, request, arg)`: requests by allowlist, with the size of what `arg`
/// points to (0: `arg` is a number).
pub fn ioctl(n: i64, a: [u64; 6]) -> R {
    fd(a[0])?;
    let req = a[1] as u32 as u64;
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
    let Some(&(_, size)) = ALLOWED.iter().find(|(r, _)| *r == req) else {
        return deny(&format!("ioctl({}, {req:#x})", a[0] as i32), "request not in the sandbox's list", libc::ENOTTY);
    };
    // Checked and made on one private duplicate: a sibling thread renumbering the
    // program's descriptor in between changes nothing.
    let p = fdtable::private(a[0])?;
    if TTY_CHANGES.contains(&req) && !m().policy.tty() {
        // Only a terminal the program opened itself (a pty it made) is its own.
        if is_outer_terminal(&p) {
            return deny(&format!("ioctl({}, {req:#x})", a[0] as i32), "changes the terminal the sandbox runs in (--allow-tty)", libc::EPERM);
        }
    }
    if req == 0x5452 {
        // FIOASYNC: as F_SETFL's O_ASYNC.
        not_outer(&p, &format!("ioctl({}, FIOASYNC)", a[0] as i32))?;
        owner_is_ours(&p, &format!("ioctl({}, FIOASYNC)", a[0] as i32))?;
    }
    if req == 0x40045431 {
        // TIOCSPTLCK: locking a pty that processes outside use.
        not_outer(&p, &format!("ioctl({}, TIOCSPTLCK)", a[0] as i32))?;
    }
    if req == 0x5421 {
        // FIONBIO: as F_SETFL's O_NONBLOCK, on an open file of the program's own.
        let v = copy_in(a[2], 4)?;
        let p = own_open_file(a[0], p, &format!("ioctl({}, FIONBIO)", a[0] as i32))?;
        return ret(raw(n, [p.as_raw_fd() as u64, req, v.as_ptr() as u64, 0, 0, 0]));
    }
    if size != 0 {
        user(a[2], size)?;
    }
    fwd(n, [p.as_raw_fd() as u64, req, a[2], 0, 0, 0])
}

/// Before a status flag (`O_NONBLOCK`, `O_DIRECT`, `O_APPEND`…) changes on the
/// program's descriptor `f` (private duplicate `p`): an open file the sandbox was
/// started with is shared with processes outside, for which it would change too. A
/// pipe or FIFO is opened again for the program alone (through its `/proc` link: the
/// same pipe, an open file of its own) and put at the program's number in place of
/// the shared one; anything else (a file, whose offset is shared; a socket; a device)
/// is refused. Returns the descriptor to change.
fn own_open_file(f: u64, p: OwnedFd, what: &str) -> Result<OwnedFd, i64> {
    if !is_outer_file(&p) || is_outer_terminal(&p) {
        return Ok(p);
    }
    let Some(st) = stat_of(p.as_raw_fd()) else { return Err(EINVAL) };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => {
            let fl = raw(libc::SYS_fcntl, [p.as_raw_fd() as u64, libc::F_GETFL as u64, 0, 0, 0, 0]);
            let cloexec = raw(libc::SYS_fcntl, [f, libc::F_GETFD as u64, 0, 0, 0, 0]);
            if fl < 0 || cloexec < 0 {
                return Err(EBADF);
            }
            let path = std::ffi::CString::new(fdtable::proc_fd(p.as_raw_fd())).map_err(|_| EINVAL)?;
            // Non-blocking: the write end of a pipe with no reader left fails (ENXIO)
            // instead of waiting. The program's own flags are set by the caller.
            let _pin = fdtable::pin();
            let r = raw(libc::SYS_open, [path.as_ptr() as u64, ((fl as i32 & libc::O_ACCMODE) | libc::O_NONBLOCK | libc::O_CLOEXEC) as u64, 0, 0, 0, 0]);
            if r < 0 {
                return deny(what, "a pipe the sandbox was started with (shared with processes outside) that cannot be opened again for the program alone", libc::EPERM).map(|_| p);
            }
            // SAFETY: the descriptor open() just made, owned here alone.
            let mine = unsafe { fdtable::adopt(r as i32) };
            let mine = fdtable::own(mine).map_err(|e| -(e.raw_os_error().unwrap_or(libc::EMFILE) as i64))?;
            drop(_pin);
            // Keep the program's own O_APPEND, O_ASYNC (off: refused on shared files)...
            raw(libc::SYS_fcntl, [mine.as_raw_fd() as u64, libc::F_SETFL as u64, fl as u64, 0, 0, 0]);
            let _x = fdtable::exclusive();
            let flags = if cloexec as i32 & libc::FD_CLOEXEC != 0 { libc::O_CLOEXEC } else { 0 };
            let r = raw(libc::SYS_dup3, [mine.as_raw_fd() as u64, f, flags as u64, 0, 0, 0]);
            if r < 0 {
                return Err(r);
            }
            Ok(mine)
        }
        _ => deny(what, "a file the sandbox was started with, shared with processes outside: its status flags are theirs too", libc::EPERM).map(|_| p),
    }
}

/// Refuses `what` (a `SIGIO` signal, `O_ASYNC`) on an open file whose `SIGIO` goes to a
/// process outside the sandbox (one received from outside can carry such an owner):
/// the signal would be the program's choice, sent to the outside.
fn owner_is_ours(f: &OwnedFd, what: &str) -> Result<(), i64> {
    let mut own = [0i32; 2];
    // F_GETOWN_EX: { type, pid }.
    if raw(libc::SYS_fcntl, [f.as_raw_fd() as u64, 16, own.as_mut_ptr() as u64, 0, 0, 0]) < 0 {
        return Ok(());
    }
    if own[1] == 0 || super::limits::is_sandbox_pid(own[1]) {
        return Ok(());
    }
    deny(what, "the open file's SIGIO goes to a process outside the sandbox", libc::EPERM).map(|_| ())
}

