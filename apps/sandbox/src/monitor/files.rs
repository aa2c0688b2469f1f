//! Calls that name paths: each path is copied into the monitor, resolved by the
//! policy's path rules ([`crate::policy::Paths`]: symlinks and `..` cannot leave the
//! allowed trees, write access only in read-write trees), and the call is then made
//! on the descriptors the resolver holds (`*at(parent, name)`), never on the
//! program's string again.
//!
//! The resolver's descriptors are born at the program's numbers: a call holds a
//! [`fdtable::pin`] from the resolution until it is done with them, and moves the one
//! it needs up ([`fdtable::own`]) before anything that can block (opening a FIFO).
//! Mode bits are allowlisted: set-user-ID and set-group-ID bits never reach a file
//! (stripped when a file is created, refused by `chmod`); a set-group-ID directory is
//! allowed (it only passes its group on). Device nodes open only when a rule names
//! them ([`crate::policy::Paths::device_allowed`]).

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;

use super::fdtable::{self, fd};
use super::state::m;
use super::sys::{deny, raw, R};
use super::user::{c, copy_in, copy_out, cstr_in, opt, user};
use super::audit;
use super::space::own_maps;
use crate::policy::{Access, Errno, ResolvedPath};

/// Mode bits no file the program creates or changes may have.
const SETID: u64 = (libc::S_ISUID | libc::S_ISGID) as u64;

const MAX_PATH: usize = 4096;
/// An empty C string in the monitor's memory.
static EMPTY_CSTR: [u8; 1] = [0];

fn err(e: Errno) -> i64 {
    -(e.0 as i64)
}

/// The directory a relative path starts from: the current directory or `dirfd`'s.
fn base(dirfd: u64) -> Result<PathBuf, i64> {
    if dirfd as i32 == libc::AT_FDCWD {
        return Ok(m().cwd());
    }
    fd(dirfd)?;
    let p = std::fs::read_link(fdtable::proc_fd(dirfd as i32)).map_err(|_| -(libc::EBADF as i64))?;
    if !p.is_absolute() {
        return Err(-(libc::ENOTDIR as i64));
    }
    Ok(p)
}

fn path_arg(addr: u64) -> Result<Vec<u8>, i64> {
    let p = cstr_in(addr, MAX_PATH)?;
    if p.is_empty() {
        return Err(-(libc::ENOENT as i64));
    }
    Ok(p)
}

fn resolve(call: &str, dirfd: u64, addr: u64, follow: bool, want: Access) -> Result<ResolvedPath, i64> {
    let p = path_arg(addr)?;
    let b = base(dirfd)?;
    m().policy.paths().check(&b, &p, follow, want).map_err(|e| {
        if e.0 == libc::EACCES || e.0 == libc::EPERM || e.0 == libc::EXDEV {
            audit::deny(&format!("{call}(\"{}\")", String::from_utf8_lossy(&p)), &format!("outside the allowed {} trees", if want == Access::Read { "read" } else { "write" }));
        }
        err(e)
    })
}

/// `(dirfd, name)` to act on, for a resolved path: the parent directory and the
/// entry name, or the node itself with an empty name (a tree root).
fn target(r: &ResolvedPath) -> Result<(i32, std::ffi::CString, bool), i64> {
    match (&r.parent, &r.node) {
        (Some(p), _) => Ok((p.as_raw_fd(), r.name.clone(), false)),
        (None, Some(n)) => Ok((n.as_raw_fd(), c(b"")?, true)),
        (None, None) => Err(-(libc::ENOENT as i64)),
    }
}

/// Opens `p` (relative to `b`) as the policy allows: in one `openat2` when the fast
/// path applies, else by the walk, pinned until the descriptor the final open goes
/// through has moved up; the final open itself (which may block) holds nothing.
fn open_checked(b: &std::path::Path, p: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    let paths = m().policy.paths();
    if let Some(r) = paths.open_direct(b, p, flags, mode) {
        return r;
    }
    let plan = {
        let _pin = fdtable::pin();
        paths.plan_open(b, p, flags, mode)?.move_via(own)?
    };
    plan.finish()
}

/// [`fdtable::own`] for the resolver's descriptors.
fn own(f: OwnedFd) -> Result<OwnedFd, Errno> {
    fdtable::own(f).map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EMFILE)))
}

fn path_open(dirfd: u64, addr: u64, flags: u64, mode: u64) -> R {
    let p = path_arg(addr)?;
    if let Some(content) = served(&p) {
        return serve(&content, flags);
    }
    let b = base(dirfd)?;
    // A new file never gets a set-id bit.
    let mode = mode & !SETID;
    match open_checked(&b, &p, flags as i32, mode as u32) {
        Ok(f) => Ok(f.into_raw_fd() as i64),
        Err(e) => {
            if e.0 == libc::EACCES || e.0 == libc::EXDEV {
                audit::deny(&format!("open(\"{}\", {flags:#o})", String::from_utf8_lossy(&p)), "outside the allowed trees, or a device no rule names");
            }
            Err(err(e))
        }
    }
}

/// What the monitor serves itself at a `/proc` path of this process: the program's
/// own `cmdline` and `environ` (the kernel's are the monitor's: `dune`'s arguments,
/// the environment it was started with).
fn served(p: &[u8]) -> Option<Vec<u8>> {
    let rest = p.strip_prefix(b"/proc/")?;
    let (who, mut what) = rest.split_at(rest.iter().position(|&c| c == b'/')?);
    let own = who == b"self" || who == b"thread-self" || who == std::process::id().to_string().as_bytes();
    if !own {
        return None;
    }
    // A task of this process: /proc/self/task/<tid>/...
    if let Some(t) = what.strip_prefix(b"/task/") {
        let at = t.iter().position(|&c| c == b'/')?;
        what = &t[at..];
    }
    let id = || m().exe.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match what {
        b"/cmdline" => Some(id().cmdline),
        b"/environ" => Some(id().environ),
        b"/maps" => Some(program_maps()),
        _ => None,
    }
}

/// `/proc/self/maps` as the program's: the kernel's lines cut to the ranges the
/// program owns (its own mappings, the vDSO), so neither the monitor's files nor its
/// memory layout show.
fn program_maps() -> Vec<u8> {
    let owned = m().space().ranges();
    let maps = own_maps().unwrap_or_default();
    let mut out = String::new();
    for l in maps.lines() {
        let mut f = l.splitn(6, ' ');
        let (Some(range), Some(perms), Some(off), Some(dev), Some(ino)) = (f.next(), f.next(), f.next(), f.next(), f.next()) else { continue };
        let name = f.next().unwrap_or("").trim_start();
        let Some((a, b)) = range.split_once('-') else { continue };
        let (Ok(s), Ok(e), Ok(off)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16), u64::from_str_radix(off, 16)) else { continue };
        for &(os, oe) in owned.iter().filter(|&&(os, oe)| os < e && s < oe) {
            let (cs, ce) = (s.max(os), e.min(oe));
            let line = format!("{cs:08x}-{ce:08x} {perms} {:08x} {dev} {ino}", off + (cs - s));
            out.push_str(&if name.is_empty() { line } else { format!("{line:<72} {name}") });
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Opens a read-only file holding `content` for the program (a sealed `memfd`).
fn serve(content: &[u8], flags: u64) -> R {
    if flags as i32 & libc::O_ACCMODE != libc::O_RDONLY {
        return Err(-(libc::EACCES as i64));
    }
    let cloexec = if flags as i32 & libc::O_CLOEXEC != 0 { libc::MFD_CLOEXEC } else { 0 };
    let _pin = fdtable::pin();
    let f = raw(libc::SYS_memfd_create, [c"proc".as_ptr() as u64, (cloexec | libc::MFD_ALLOW_SEALING) as u64, 0, 0, 0, 0]);
    if f < 0 {
        return Err(f);
    }
    // SAFETY: the descriptor memfd_create just made, owned here until it is returned.
    let f = unsafe { fdtable::adopt(f as i32) };
    let n = raw(libc::SYS_pwrite64, [f.as_raw_fd() as u64, content.as_ptr() as u64, content.len() as u64, 0, 0, 0]);
    let seals = (libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL) as u64;
    if n != content.len() as i64 || raw(libc::SYS_fcntl, [f.as_raw_fd() as u64, libc::F_ADD_SEALS as u64, seals, 0, 0, 0]) < 0 {
        return Err(-(libc::ENOMEM as i64));
    }
    Ok(f.into_raw_fd() as i64)
}

fn path_stat(dirfd: u64, addr: u64, buf: u64, flags: u64) -> R {
    user(buf, 144)?;
    if flags & libc::AT_EMPTY_PATH as u64 != 0 && cstr_in(addr, 1).map(|v| v.is_empty()).unwrap_or(false) {
        fd(dirfd)?;
        // The monitor's own empty string: the program's could change after the check.
        return fwd_ret(raw(libc::SYS_newfstatat, [dirfd, EMPTY_CSTR.as_ptr() as u64, buf, flags, 0, 0]));
    }
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
    let r = resolve("stat", dirfd, addr, follow, Access::Read)?;
    let (d, name, empty) = target(&r)?;
    let fl = libc::AT_SYMLINK_NOFOLLOW as u64 | if empty { libc::AT_EMPTY_PATH as u64 } else { 0 };
    fwd_ret(raw(libc::SYS_newfstatat, [d as u64, name.as_ptr() as u64, buf, fl, 0, 0]))
}

fn fwd_ret(r: i64) -> R {
    if r < 0 && r > -4096 { Err(r) } else { Ok(r) }
}

/// The open calls (see `calls`): `open`, `creat`, `openat`, `openat2`.
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn open(n: i64, a: [u64; 6]) -> R {
    use libc::*;
    let cwd = AT_FDCWD as u32 as u64;
    match n {
        SYS_open => path_open(cwd, a[0], a[1], a[2]),
        SYS_creat => path_open(cwd, a[0], (O_CREAT | O_WRONLY | O_TRUNC) as u64, a[1]),
        SYS_openat => path_open(a[0], a[1], a[2], a[3]),
        SYS_openat2 => {
            // struct open_how { flags, mode, resolve }: resolve flags only narrow
            // what the monitor allows anyway.
            if a[3] < 24 {
                return Err(-(EINVAL as i64));
            }
            let how = copy_in(a[2], 24)?;
            let w = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            path_open(a[0], a[1], w(0), w(1))
        }
        _ => Err(-(ENOSYS as i64)),
    }
}

/// The other path calls (see `calls`). None of them blocks, so each holds a pin for
/// the whole call: the resolver's descriptors stay its own until they close.
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn call(n: i64, a: [u64; 6]) -> R {
    use libc::*;
    let cwd = AT_FDCWD as u32 as u64;
    let _pin = fdtable::pin();
    match n {
        SYS_stat => path_stat(cwd, a[0], a[1], 0),
        SYS_lstat => path_stat(cwd, a[0], a[1], AT_SYMLINK_NOFOLLOW as u64),
        SYS_newfstatat => path_stat(a[0], a[1], a[2], a[3]),
        SYS_statx => {
            user(a[4], 256)?;
            if a[2] & AT_EMPTY_PATH as u64 != 0 && cstr_in(a[1], 1).map(|v| v.is_empty()).unwrap_or(false) {
                fd(a[0])?;
                return fwd_ret(raw(n, [a[0], EMPTY_CSTR.as_ptr() as u64, a[2], a[3], a[4], 0]));
            }
            let r = resolve("statx", a[0], a[1], a[2] & AT_SYMLINK_NOFOLLOW as u64 == 0, Access::Read)?;
            let (d, name, empty) = target(&r)?;
            let fl = (a[2] & 0x6000) | AT_SYMLINK_NOFOLLOW as u64 | if empty { AT_EMPTY_PATH as u64 } else { 0 };
            fwd_ret(raw(n, [d as u64, name.as_ptr() as u64, fl, a[3], a[4], 0]))
        }
        SYS_access | SYS_faccessat | SYS_faccessat2 => {
            let (dirfd, addr, mode, flags) = if n == SYS_access { (cwd, a[0], a[1], 0) } else { (a[0], a[1], a[2], if n == SYS_faccessat2 { a[3] } else { 0 }) };
            let want = if mode & W_OK as u64 != 0 { Access::Write } else { Access::Read };
            let r = resolve("access", dirfd, addr, flags & AT_SYMLINK_NOFOLLOW as u64 == 0, want)?;
            let (d, name, empty) = target(&r)?;
            let fl = AT_SYMLINK_NOFOLLOW as u64 | if empty { AT_EMPTY_PATH as u64 } else { 0 };
            fwd_ret(raw(SYS_faccessat2, [d as u64, name.as_ptr() as u64, mode, fl, 0, 0]))
        }
        SYS_readlink | SYS_readlinkat => {
            let (dirfd, addr, buf, size) = if n == SYS_readlink { (cwd, a[0], a[1], a[2]) } else { (a[0], a[1], a[2], a[3]) };
            user(buf, size)?;
            // /proc/self/exe reads as the program's path (the real link is the monitor's).
            let p = path_arg(addr)?;
            if p == b"/proc/self/exe" || p == format!("/proc/{}/exe", std::process::id()).as_bytes() {
                let exe = m().exe.lock().unwrap_or_else(|e| e.into_inner()).path.clone().into_os_string().into_encoded_bytes();
                let k = exe.len().min(size as usize);
                copy_out(buf, &exe[..k])?;
                return Ok(k as i64);
            }
            let r = resolve("readlink", dirfd, addr, false, Access::Read)?;
            let (d, name, _) = target(&r)?;
            fwd_ret(raw(SYS_readlinkat, [d as u64, name.as_ptr() as u64, buf, size, 0, 0]))
        }
        SYS_mkdir | SYS_mkdirat => {
            let (dirfd, addr, mode) = if n == SYS_mkdir { (cwd, a[0], a[1]) } else { (a[0], a[1], a[2]) };
            // A set-group-ID directory only passes its group on; set-user-ID means
            // nothing on a directory.
            let mode = mode & !(S_ISUID as u64);
            let r = resolve("mkdir", dirfd, addr, false, Access::Write)?;
            let (d, name, _) = target(&r)?;
            fwd_ret(raw(SYS_mkdirat, [d as u64, name.as_ptr() as u64, mode, 0, 0, 0]))
        }
        SYS_unlink | SYS_unlinkat | SYS_rmdir => {
            let (dirfd, addr, flags) = match n {
                SYS_unlink => (cwd, a[0], 0),
                SYS_rmdir => (cwd, a[0], AT_REMOVEDIR as u64),
                _ => (a[0], a[1], a[2] & AT_REMOVEDIR as u64),
            };
            let r = resolve("unlink", dirfd, addr, false, Access::Mutate)?;
            let (d, name, _) = target(&r)?;
            fwd_ret(raw(SYS_unlinkat, [d as u64, name.as_ptr() as u64, flags, 0, 0, 0]))
        }
        SYS_rename | SYS_renameat | SYS_renameat2 => {
            let (d1, p1, d2, p2, flags) = if n == SYS_rename { (cwd, a[0], cwd, a[1], 0) } else { (a[0], a[1], a[2], a[3], if n == SYS_renameat2 { a[4] } else { 0 }) };
            // RENAME_NOREPLACE and RENAME_EXCHANGE only: RENAME_WHITEOUT leaves a
            // character device behind.
            if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) as u64 != 0 {
                return deny(&format!("renameat2(.., {flags:#x})"), "flags other than RENAME_NOREPLACE and RENAME_EXCHANGE", EINVAL);
            }
            let r1 = resolve("rename", d1, p1, false, Access::Mutate)?;
            let r2 = resolve("rename", d2, p2, false, Access::Mutate)?;
            let (fd1, n1, _) = target(&r1)?;
            let (fd2, n2, _) = target(&r2)?;
            fwd_ret(raw(SYS_renameat2, [fd1 as u64, n1.as_ptr() as u64, fd2 as u64, n2.as_ptr() as u64, flags, 0]))
        }
        SYS_link | SYS_linkat => {
            let (d1, p1, d2, p2, flags) = if n == SYS_link { (cwd, a[0], cwd, a[1], 0) } else { (a[0], a[1], a[2], a[3], a[4]) };
            let r1 = resolve("link", d1, p1, flags & AT_SYMLINK_FOLLOW as u64 != 0, Access::Write)?;
            let r2 = resolve("link", d2, p2, false, Access::Write)?;
            let (fd1, n1, _) = target(&r1)?;
            let (fd2, n2, _) = target(&r2)?;
            fwd_ret(raw(SYS_linkat, [fd1 as u64, n1.as_ptr() as u64, fd2 as u64, n2.as_ptr() as u64, 0, 0]))
        }
        SYS_symlink | SYS_symlinkat => {
            let (tgt, dirfd, addr) = if n == SYS_symlink { (a[0], cwd, a[1]) } else { (a[0], a[1], a[2]) };
            let content = c(&cstr_in(tgt, MAX_PATH)?)?;
            let r = resolve("symlink", dirfd, addr, false, Access::Write)?;
            let (d, name, _) = target(&r)?;
            fwd_ret(raw(SYS_symlinkat, [content.as_ptr() as u64, d as u64, name.as_ptr() as u64, 0, 0, 0]))
        }
        SYS_chmod | SYS_fchmodat | SYS_fchmodat2 => {
            let (dirfd, addr, mode, flags) = if n == SYS_chmod { (cwd, a[0], a[1], 0) } else { (a[0], a[1], a[2], if n == SYS_fchmodat2 { a[3] } else { 0 }) };
            if flags & !(AT_SYMLINK_NOFOLLOW as u64) != 0 {
                return Err(-(EINVAL as i64));
            }
            if mode & SETID != 0 {
                return deny(&format!("chmod(\"{}\", {mode:o})", String::from_utf8_lossy(&cstr_in(addr, 4096).unwrap_or_default())), "set-user-ID and set-group-ID bits are not allowed", EPERM);
            }
            let r = resolve("chmod", dirfd, addr, flags == 0, Access::Write)?;
            // The very file the resolver checked (its O_PATH descriptor), through its
            // /proc/self/fd link: never the name again, which a sibling could swap for
            // a symlink between the check and the call.
            let node = r.node.as_ref().ok_or(-(ENOENT as i64))?;
            // SAFETY: stat is plain data; all zeroes is a valid value.
            let mut st: libc::stat = unsafe { core::mem::zeroed() };
            // SAFETY: fstat writes one struct stat into the local.
            if unsafe { libc::fstat(node.as_raw_fd(), &mut st) } != 0 {
                return Err(-(EBADF as i64));
            }
            if st.st_mode & S_IFMT == S_IFLNK {
                // Linux cannot change a symlink's mode (fchmodat2 with NOFOLLOW).
                return Err(-(EOPNOTSUPP as i64));
            }
            let via = c(fdtable::proc_fd(node.as_raw_fd()).as_bytes())?;
            fwd_ret(raw(SYS_fchmodat, [AT_FDCWD as u64, via.as_ptr() as u64, mode, 0, 0, 0]))
        }
        SYS_chown | SYS_lchown | SYS_fchownat => {
            let (dirfd, addr, uid, gid, follow) = match n {
                SYS_chown => (cwd, a[0], a[1], a[2], true),
                SYS_lchown => (cwd, a[0], a[1], a[2], false),
                _ => (a[0], a[1], a[2], a[3], a[4] & AT_SYMLINK_NOFOLLOW as u64 == 0),
            };
            let r = resolve("chown", dirfd, addr, follow, Access::Write)?;
            let (d, name, empty) = target(&r)?;
            let fl = AT_SYMLINK_NOFOLLOW as u64 | if empty { AT_EMPTY_PATH as u64 } else { 0 };
            fwd_ret(raw(SYS_fchownat, [d as u64, name.as_ptr() as u64, uid, gid, fl, 0]))
        }
        SYS_utimensat => {
            opt(a[2], 32)?;
            let r = resolve("utimensat", a[0], a[1], a[3] & AT_SYMLINK_NOFOLLOW as u64 == 0, Access::Write)?;
            let (d, name, empty) = target(&r)?;
            let fl = AT_SYMLINK_NOFOLLOW as u64 | if empty { AT_EMPTY_PATH as u64 } else { 0 };
            fwd_ret(raw(n, [d as u64, name.as_ptr() as u64, a[2], fl, 0, 0]))
        }
        SYS_utime | SYS_utimes | SYS_futimesat => {
            let (dirfd, addr, times, len) = match n {
                SYS_utime => (cwd, a[0], a[1], 16),
                SYS_utimes => (cwd, a[0], a[1], 32),
                _ => (a[0], a[1], a[2], 32),
            };
            opt(times, len)?;
            let r = resolve("utimes", dirfd, addr, true, Access::Write)?;
            let (d, name, _) = target(&r)?;
            // Through utimensat on the resolved entry (times converted: NULL = now).
            let ts: Option<[i64; 4]> = if times == 0 {
                None
            } else {
                let b = copy_in(times, len as usize)?;
                let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
                // Microseconds the program gives, as nanoseconds: out of range is EINVAL.
                let ns = |us: i64| us.checked_mul(1000).ok_or(-(EINVAL as i64));
                Some(if n == SYS_utime { [w(0), 0, w(1), 0] } else { [w(0), ns(w(1))?, w(2), ns(w(3))?] })
            };
            fwd_ret(raw(SYS_utimensat, [d as u64, name.as_ptr() as u64, ts.as_ref().map_or(0, |t| t.as_ptr() as u64), AT_SYMLINK_NOFOLLOW as u64, 0, 0]))
        }
        SYS_truncate => {
            let p = path_arg(a[0])?;
            let b = base(cwd)?;
            // Non-blocking: a FIFO must not hold the pin (truncate refuses it anyway).
            let f = m().policy.paths().open(&b, &p, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0).map_err(err)?;
            fwd_ret(raw(SYS_ftruncate, [f.as_raw_fd() as u64, a[1], 0, 0, 0, 0]))
        }
        SYS_chdir => {
            let r = resolve("chdir", cwd, a[0], true, Access::Read)?;
            let node = r.node.as_ref().ok_or(-(ENOENT as i64))?;
            // An O_PATH descriptor of a directory is enough for fchdir.
            fwd_ret(raw(SYS_fchdir, [node.as_raw_fd() as u64, 0, 0, 0, 0, 0]))?;
            *m().cwd.lock().unwrap_or_else(|e| e.into_inner()) = r.canonical.clone();
            Ok(0)
        }
        SYS_fchdir => {
            fd(a[0])?;
            let p = base(a[0])?;
            fwd_ret(raw(n, a))?;
            *m().cwd.lock().unwrap_or_else(|e| e.into_inner()) = p;
            Ok(0)
        }
        SYS_getcwd => {
            user(a[0], a[1])?;
            let mut b = m().cwd().into_os_string().into_encoded_bytes();
            b.push(0);
            if b.len() as u64 > a[1] {
                return Err(-(ERANGE as i64));
            }
            copy_out(a[0], &b)?;
            Ok(b.len() as i64)
        }
        SYS_mknod | SYS_mknodat => {
            let (dirfd, addr, mode, dev) = if n == SYS_mknod { (cwd, a[0], a[1], a[2]) } else { (a[0], a[1], a[2], a[3]) };
            let kind = mode as u32 & S_IFMT;
            if !(kind == S_IFIFO || kind == S_IFREG || kind == S_IFSOCK || kind == 0) {
                return deny("mknod", "device nodes are not allowed", EPERM);
            }
            let mode = mode & !SETID;
            let r = resolve("mknod", dirfd, addr, false, Access::Write)?;
            let (d, name, _) = target(&r)?;
            fwd_ret(raw(SYS_mknodat, [d as u64, name.as_ptr() as u64, mode, dev, 0, 0]))
        }
        SYS_statfs => {
            user(a[1], 120)?;
            let r = resolve("statfs", cwd, a[0], true, Access::Read)?;
            let node = r.node.as_ref().ok_or(-(ENOENT as i64))?;
            fwd_ret(raw(SYS_fstatfs, [node.as_raw_fd() as u64, a[1], 0, 0, 0, 0]))
        }
        SYS_inotify_add_watch => {
            // An inotify instance the sandbox was started with is the outside's.
            let ino = fdtable::own_file(a[0], "inotify_add_watch on an inherited instance")?;
            let r = resolve("inotify_add_watch", cwd, a[1], a[2] & IN_DONT_FOLLOW as u64 == 0, Access::Read)?;
            let node = r.node.as_ref().ok_or(-(ENOENT as i64))?;
            let via = c(fdtable::proc_fd(node.as_raw_fd()).as_bytes())?;
            fwd_ret(raw(n, [ino.as_raw_fd() as u64, via.as_ptr() as u64, a[2], 0, 0, 0]))
        }
        _ => Err(-(ENOSYS as i64)),
    }
}
