//! File trees the program may read or write, and the resolver the monitor uses to reach a
//! path on the program's behalf without letting symlinks or `..` leave those trees.
//!
//! # How a path is resolved
//!
//! Each tree's root is opened `O_PATH` when it is added (following symlinks there: that is
//! the user's intent, and `/lib64` is a symlink on merged-`/usr` systems). A path is made
//! absolute against the caller's `base` and walked component by component:
//!
//! - a prefix that *is* a tree root continues from that root's fd (so nested trees
//!   re-match: `/data` read-write with `/data/ro` read-only inside it);
//! - inside a tree, the next component is opened with
//!   `openat(dirfd, name, O_PATH|O_NOFOLLOW|O_CLOEXEC)`; if it is a symlink, its target
//!   is read with `readlinkat` and spliced in (absolute: start over from `/`; relative:
//!   continue in the same directory), at most 40 links (`ELOOP`);
//! - `..` is lexical: it drops the last component of the canonical path and returns to the
//!   fd that was opened for the parent on the way down; `openat(fd, "..")` is never used,
//!   so leaving a tree is only possible by landing on another tree's root;
//! - a prefix outside every tree is allowed only while it is an ancestor of some tree root
//!   (`/` and `/usr` on the way to `/usr/lib`); anything else is `EACCES`;
//! - the last component is opened by the caller relative to the parent's fd with
//!   `O_NOFOLLOW`, so a symlink swapped in after the check fails with `ELOOP` instead of
//!   being followed.
//!
//! Access is decided on the canonical (symlink-free, `..`-free) path: the innermost tree
//! containing it says read-only or read-write. Some `/proc` entries are refused even when
//! `/proc` is allowed (see [`hard_denied`]): `mem`, `pagemap`, the magic links `cwd`,
//! Entries of `/proc/<pid>` are by allowlist (`PROC_PID_ALLOWED`: `stat`, `status`,
//! `maps`, `cgroup`, `limits`…): never `mem`, `pagemap`, the magic links, `mountinfo`,
//! `net` (names of mount points and sockets outside every tree); `fd/` and `fdinfo/`
//! only of the process itself, never below `fd/`, and no `fdinfo/` of descriptors that
//! are not the program's ([`set_hidden_fds`]); nothing of processes that are not the
//! sandbox's ([`set_own_pids`]); and never `/proc/kcore`, `/proc/kmem`,
//! `/proc/sysrq-trigger`.
//!
//! # The fast path
//!
//! The walk above costs two system calls per component (plus a `readlinkat` per
//! symlink), and inside the sandbox every one of them is a VM exit. [`Paths::open`] and
//! [`Paths::check`] therefore first try to let the kernel do the walk with `openat2(2)`
//! relative to the tree's root fd, with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: the
//! kernel then refuses (`EXDEV`) anything that would leave the root's directory —
//! absolute symlinks, `..` above it — and every magic link. The walk remains the
//! definition; the fast path is only taken where it provably gives the walk's answer,
//! and falls back to the walk otherwise:
//!
//! - The path, made absolute against `base`, must contain no `..` (the walk's `..` is
//!   lexical, the kernel's physical; they differ after a non-directory, for instance), and
//!   the innermost tree holding it lexically must be *isolated*, decided when trees are
//!   added: no other tree lies inside it or contains it (a symlink in read-write `/x`
//!   may lead into read-only `/x/ro`, which the walk, deciding on the canonical path,
//!   refuses to write; and the walk reaches `/x/ro`'s fd only through `/x`'s entries,
//!   which may be symlinks), its root is a directory opened
//!   once (not a per-lookup `/proc/self` tree), and it is neither `/` nor below `/proc`
//!   (so nothing [`hard_denied`] can lie beneath it). The path must be strictly below the
//!   root (a tree root itself keeps the walk's special handling), and a request to write
//!   needs a read-write tree (a read-only one may hold a symlink into a read-write tree:
//!   the walk decides).
//! - Soundness: with the tree isolated and the path free of `..`, the walk reaches the
//!   tree's root fd without a system call (every proper prefix of the root is outside all
//!   trees), and from there resolves exactly what the kernel resolves beneath that fd:
//!   it follows the same relative symlinks, and its lexical `..` inside a spliced target
//!   matches the kernel's physical one as long as the kernel succeeds. Whatever the
//!   kernel reaches is physically beneath the root, so the walk's canonical path starts
//!   with the tree's and, the tree being isolated, the innermost tree is the same one:
//!   same object, same `writable`; no tree root or ancestor of one can be reached
//!   ([`Access::Mutate`]), and no hard-denied entry (the tree is neither `/` nor in
//!   `/proc`; a magic link, say on a procfs mounted elsewhere, makes the kernel fail with
//!   `ELOOP` under `RESOLVE_NO_MAGICLINKS`, and the walk decides).
//! - Errors: only errors the walk must give at the same point are returned as they are
//!   (`ENOENT`, `EEXIST` for [`Paths::open`]; `ENOENT`, `ENOTDIR` for [`Paths::check`],
//!   whose kernel walk follows no symlink at all). Everything else — `EXDEV` (left the
//!   tree: maybe into another allowed tree), `ELOOP`, `EAGAIN`, `EACCES`
//!   (`fs.protected_symlinks`, search permission before a `..`), `ENOTDIR`/`EISDIR`
//!   (trailing `/` in a symlink target), `EINVAL` (flags `openat2` rejects but `openat`
//!   ignores), `ENOSYS` (before Linux 5.6: then `openat2` is not tried again) — falls back
//!   to the walk, which gives the authoritative answer.
//! - [`Paths::open`] is one `openat2` with the program's flags (symlinks followed by the
//!   kernel). A path ending in `/` uses the walk.
//! - [`Paths::check`] must also return the parent and a `canonical` path, which the
//!   monitor stores as the working directory (`chdir`) and loads (`execve`). It opens the
//!   parent with `openat2(root, dirs, O_PATH|O_DIRECTORY, … | RESOLVE_NO_SYMLINKS)` (or
//!   duplicates the root fd), then the entry with `openat(parent, name,
//!   O_PATH|O_NOFOLLOW)`, or, when the final symlink is to be followed, with `openat2(…,
//!   O_PATH, RESOLVE_NO_SYMLINKS)`. No symlink was crossed, so the lexical path is the
//!   canonical one; a symlink anywhere (`ELOOP`) falls back to the walk.
//!
//! `RESOLVE_NO_XDEV` is not used: the walk crosses mount points too, so it would only
//! send lookups below a mount point (`/dev/pts`, `/dev/shm`) to the walk.
//!
//! So `open("/usr/share/foo/bar.html")` with `/usr` allowed costs one system call instead
//! of eight, and a `stat` of it two instead of seven — not counting the walk's `close`s of
//! the fds it opened on the way, which the fast path does not have.
//!
//! # The remaining races (honestly)
//!
//! - Every directory is held open while walking, so renaming a directory *after* it was
//!   passed does not redirect the walk, but the canonical path used for the access
//!   decision can then be stale. Within one tree that is harmless (same access). Across
//!   nested trees the program could rename a read-only tree root that lives inside a
//!   read-write tree; [`Access::Mutate`] therefore refuses to rename/unlink a tree root or
//!   an ancestor of one. A process *outside* the sandbox renaming things is not defended
//!   against.
//! - Hard links: `link(/ro/file, /rw/x)` would make a read-only file writable through a
//!   read-write tree, so the monitor must ask for [`Access::Write`] on a link's source.
//! - A tree root is pinned by its fd from policy build time; a later change of what its
//!   path names is not noticed (deliberately: the fd is what was allowed).

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// An errno value to return to the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errno {}

fn last_errno() -> Errno {
    Errno(
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// What a call wants to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read, stat, list, execute, `access()`.
    Read,
    /// Write contents or metadata, create an entry in a directory (open for writing,
    /// `O_CREAT`, `O_TRUNC`, `mkdir`, `mknod`, `symlink`, `chmod`, `truncate`, `utimes`,
    /// connecting to a socket, binding one, the *source* of a hard link).
    Write,
    /// Remove or rename the entry itself (`unlink`, `rmdir`, both ends of `rename`):
    /// like [`Access::Write`], and also refused on a tree root or an ancestor of one.
    Mutate,
}

/// The outcome of [`Paths::check`].
#[derive(Debug)]
pub struct ResolvedPath {
    /// Absolute, symlink-free, `..`-free path.
    pub canonical: PathBuf,
    /// `O_PATH` fd of the directory holding the entry; `None` when the path is a tree root.
    pub parent: Option<OwnedFd>,
    /// Name of the entry in `parent` (empty when `parent` is `None`).
    pub name: CString,
    /// `O_PATH|O_NOFOLLOW` fd of the entry when it exists.
    pub node: Option<OwnedFd>,
    /// Whether the innermost tree holding the path is read-write.
    pub writable: bool,
}

#[derive(Debug)]
struct Tree {
    comps: Vec<Vec<u8>>,
    /// The root, opened when the tree was added; `None` for `/proc/self...` and
    /// `/proc/thread-self...` trees, which are opened at each lookup so that they name the
    /// calling process and thread (the monitor runs on the program's thread, and a forked
    /// child must not see its parent's `/proc/self`).
    fd: Option<OwnedFd>,
    path: CString,
    writable: bool,
    /// Whether the root is a directory (pinned by `fd`, so it cannot change).
    is_dir: bool,
    /// Whether lookups below this tree may take the `openat2` fast path (see the module
    /// documentation): recomputed by [`Paths::add`] for every tree.
    fast: bool,
    /// Whether the root's mount is `nodev` (the kernel opens no device node on it).
    nodev: bool,
}

impl Tree {
    fn root(&self) -> Result<OwnedFd, Errno> {
        match &self.fd {
            Some(fd) => dup(fd.as_fd()),
            None => open_path(&self.path, libc::O_PATH | libc::O_CLOEXEC, 0)
                .map_err(|_| Errno(libc::EACCES)),
        }
    }
}

/// The read-only and read-write trees of a policy.
#[derive(Debug, Default)]
pub struct Paths {
    trees: Vec<Tree>,
}

/// Maximum number of symlinks followed in one lookup (the kernel's limit).
pub const MAX_LINKS: u32 = 40;

fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Lexically normalised components of absolute `path`.
fn normalise(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in split(path) {
        if c == b".." {
            out.pop();
        } else {
            out.push(c.to_vec());
        }
    }
    out
}

fn join(comps: &[Vec<u8>]) -> PathBuf {
    let mut v = Vec::new();
    for c in comps {
        v.push(b'/');
        v.extend_from_slice(c);
    }
    if v.is_empty() {
        v.push(b'/');
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&v))
}

fn is_pid(c: &[u8]) -> bool {
    c == b"self" || c == b"thread-self" || (!c.is_empty() && c.iter().all(u8::is_ascii_digit))
}

/// Which processes' `/proc/<pid>` entries may be reached at all (see
/// [`set_own_pids`]); `None`: any.
static OWN_PIDS: std::sync::OnceLock<fn(i32) -> bool> = std::sync::OnceLock::new();

/// Limits `/proc/<pid>` (and `/proc/<pid>/task/<tid>`) to the processes `own` accepts:
/// the sandbox's own. Every other process's entries (`environ`, `maps`, `cmdline`…)
/// are refused like the dangerous ones of its own.
pub fn set_own_pids(own: fn(i32) -> bool) {
    let _ = OWN_PIDS.set(own);
}

/// The first descriptor number that is not the program's (the monitor's and the
/// runtime's live above it): `/proc/self/fdinfo/<n>` at or above it is refused.
static HIDDEN_FDS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MAX);

/// Sets the first descriptor number [`hard_denied`] hides in `fdinfo/`.
pub fn set_hidden_fds(first: i32) {
    HIDDEN_FDS.store(i64::from(first), Ordering::Relaxed);
}

fn hidden_fd(c: &[u8]) -> bool {
    // Names the kernel would also read as a number: digits only (leading zeros too).
    !c.is_empty() && c.iter().all(u8::is_ascii_digit) && std::str::from_utf8(c).ok().and_then(|s| s.parse::<i64>().ok()).is_none_or(|n| n >= HIDDEN_FDS.load(Ordering::Relaxed))
}

fn foreign_pid(c: &[u8]) -> bool {
    let Some(own) = OWN_PIDS.get() else { return false };
    std::str::from_utf8(c).ok().and_then(|s| s.parse::<i32>().ok()).is_some_and(|p| !own(p))
}

/// Whether canonical path `comps` is one of the `/proc` entries never reachable.
pub fn hard_denied(comps: &[Vec<u8>]) -> bool {
    if comps.first().map(Vec::as_slice) != Some(b"proc") {
        return false;
    }
    let Some(second) = comps.get(1) else {
        return false;
    };
    if matches!(second.as_slice(), b"kcore" | b"kmem" | b"sysrq-trigger") {
        return true;
    }
    if !is_pid(second) {
        return false;
    }
    if foreign_pid(second) || (comps.get(2).map(Vec::as_slice) == Some(b"task") && comps.get(3).is_some_and(|t| foreign_pid(t))) {
        return true;
    }
    let mut i = 2;
    if comps.get(2).map(Vec::as_slice) == Some(b"task") && comps.get(3).is_some_and(|t| is_pid(t)) {
        i = 4;
    }
    // Descriptors are listed for the process itself only: another sandbox process's
    // list holds the monitor's and the runtime's numbers, which its own filter hides.
    let own = |c: &[u8]| c == b"self" || c == b"thread-self" || std::str::from_utf8(c).ok().and_then(|s| s.parse::<u32>().ok()) == Some(std::process::id());
    match comps.get(i).map(Vec::as_slice) {
        None => false,
        Some(b"fd") => comps.len() > i + 1 || !own(second),
        Some(b"fdinfo") => !own(second) || comps.get(i + 1).is_some_and(|n| hidden_fd(n)),
        Some(b"task") => false,
        // By allowlist: what a program reads of its own process. Not `mem`, `pagemap`,
        // the magic links (`cwd`, `root`, `exe`, `map_files`), `mountinfo`, `mounts`,
        // `mountstats`, `net` (names of mount points and sockets outside every tree),
        // `syscall`, `stack`, `wchan`, `smaps`; nor `maps`, `environ` and `cmdline` as
        // the kernel has them (the monitor's; the program's own are served by the
        // monitor); nor anything Linux adds later.
        Some(e) => !PROC_PID_ALLOWED.contains(&e),
    }
}

/// Entries of `/proc/<pid>` (and of its tasks) the program may read.
const PROC_PID_ALLOWED: &[&[u8]] = &[
    b"stat", b"statm", b"status", b"cgroup", b"limits", b"comm", b"auxv", b"io", b"sched",
    b"schedstat", b"oom_score", b"oom_score_adj", b"oom_adj", b"loginuid", b"sessionid", b"timerslack_ns", b"personality", b"cpuset",
    b"children", b"attr", b"uid_map", b"gid_map", b"setgroups",
];

fn cstr(name: &[u8]) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| Errno(libc::EINVAL))
}

/// Set when `openat2` turned out to be missing (Linux before 5.6): the fast path is off.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// System calls (other than `close`) made by the resolver on this thread.
    static SYSCALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Lookups answered by the fast path on this thread.
    static FAST_HITS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts one system call of the resolver (tests only).
#[inline]
fn counted() {
    #[cfg(test)]
    SYSCALLS.with(|c| c.set(c.get() + 1));
}

/// Counts one lookup answered by the fast path (tests only).
#[inline]
fn fast_hit() {
    #[cfg(test)]
    FAST_HITS.with(|c| c.set(c.get() + 1));
}

/// A new descriptor for the file `fd` is open on.
fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    counted();
    fd.try_clone_to_owned().map_err(|_| Errno(libc::EMFILE))
}

/// `struct open_how` of `<linux/openat2.h>` (libc's is `#[non_exhaustive]`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dir, path, {flags, mode, resolve})`.
fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    counted();
    let how = OpenHow {
        // Zero-extended: a sign-extended flag word would set bits openat2 refuses.
        flags: u64::from(flags as u32),
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: `dir` is live for the duration of the call, `path` is NUL-terminated, `how`
    // is a valid `struct open_how` whose exact size is passed, and openat2 retains none
    // of the pointers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    // SAFETY: openat2 just returned this fd (it fits an int) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// For an error of a fast-path `openat2`: `Some(e)` when it is one of `definite`, which
/// the walk is known to give too; `None` to fall back to the walk.
fn definite(e: Errno, definite: &[i32]) -> Option<Errno> {
    if e.0 == libc::ENOSYS {
        NO_OPENAT2.store(true, Ordering::Relaxed);
    }
    definite.contains(&e.0).then_some(e)
}

/// `a/b/c` from components (none of them empty).
fn rel_path(parts: &[&[u8]]) -> Option<CString> {
    CString::new(parts.join(&b'/')).ok()
}

/// What the fast path needs: an isolated tree and the components below its root.
struct FastTarget<'a> {
    tree: &'a Tree,
    root: BorrowedFd<'a>,
    /// The components below the tree's root: at least one, none `.`, `..` or empty.
    rest: Vec<&'a [u8]>,
}

/// `openat(dir, name, flags, mode)`.
fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    counted();
    // SAFETY: `dir` is a live fd for the duration of the call, `name` is NUL-terminated,
    // and openat does not retain either pointer.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: openat just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(path, flags, mode)`.
fn open_path(path: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    counted();
    // SAFETY: `path` is NUL-terminated and open does not retain the pointer.
    let fd = unsafe { libc::open(path.as_ptr(), flags, mode) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: open just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `st_mode` file type bits of `fd`.
fn file_type(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    counted();
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is live and `st` points to writable memory of the size fstat fills.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(last_errno());
    }
    // SAFETY: fstat succeeded, so it initialised `st`.
    Ok(unsafe { st.assume_init() }.st_mode & libc::S_IFMT)
}

/// The target of the symlink `fd` (opened `O_PATH|O_NOFOLLOW`).
fn read_link(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    counted();
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `fd` is live, the empty path is NUL-terminated, and `buf` has `buf.len()`
    // writable bytes, which is the size passed.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

impl Paths {
    /// Adds tree `path` (absolute; symlinks in it are followed now). The same path added
    /// twice is read-write if either was. Refuses hard-denied `/proc` entries.
    pub fn add(&mut self, path: &Path, writable: bool) -> io::Result<()> {
        let bytes = path.as_os_str().as_bytes();
        if !bytes.starts_with(b"/") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "tree path is not absolute",
            ));
        }
        let comps = normalise(bytes);
        if hard_denied(&comps) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "path is never reachable in the sandbox",
            ));
        }
        if let Some(t) = self.trees.iter_mut().find(|t| t.comps == comps) {
            t.writable |= writable;
            return Ok(());
        }
        let c = CString::new(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        let fd = open_path(&c, libc::O_PATH | libc::O_CLOEXEC, 0)
            .map_err(|e| io::Error::from_raw_os_error(e.0))?;
        let per_lookup = comps.first().is_some_and(|p| p == b"proc")
            && comps
                .get(1)
                .is_some_and(|s| s == b"self" || s == b"thread-self");
        let is_dir = file_type(fd.as_fd()).ok() == Some(libc::S_IFDIR);
        let nodev = mount_nodev(fd.as_fd());
        let fd = if per_lookup { None } else { Some(fd) };
        self.trees.push(Tree {
            comps,
            fd,
            path: c,
            writable,
            is_dir,
            fast: false,
            nodev,
        });
        self.mark_fast();
        Ok(())
    }

    /// Decides for every tree whether lookups below it may use the fast path: its root is
    /// a directory held open, it is neither `/` nor in `/proc` (nothing hard-denied lies
    /// below it), and no other tree is inside it or contains it.
    fn mark_fast(&mut self) {
        let fast: Vec<bool> = self
            .trees
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.is_dir
                    && t.fd.is_some()
                    && t.comps.first().is_some_and(|c| c != b"proc")
                    && self.trees.iter().enumerate().all(|(j, u)| {
                        i == j || !(u.comps.starts_with(&t.comps) || t.comps.starts_with(&u.comps))
                    })
            })
            .collect();
        for (t, f) in self.trees.iter_mut().zip(fast) {
            t.fast = f;
        }
    }

    /// The trees: `(path, writable)`.
    pub fn trees(&self) -> impl Iterator<Item = (PathBuf, bool)> + '_ {
        self.trees.iter().map(|t| (join(&t.comps), t.writable))
    }

    /// Moves the trees' descriptors: each is replaced by `dup(it)` (the sandbox's
    /// monitor moves them above the program's descriptor numbers).
    pub fn relocate(&mut self, dup: &dyn Fn(BorrowedFd<'_>) -> io::Result<OwnedFd>) -> io::Result<()> {
        for t in &mut self.trees {
            if let Some(fd) = &t.fd {
                t.fd = Some(dup(fd.as_fd())?);
            }
        }
        Ok(())
    }

    /// Opens every tree's root again by its path, in the caller's (new) mount
    /// namespace: a descriptor opened before `unshare(CLONE_NEWNS)` keeps the old
    /// namespace's mounts, so files reached through it would not get the new mounts'
    /// flags (`nodev`, `nosuid`), and `/proc/self/fd` would show their paths relative
    /// to the old root. The root must still be the same file (device and inode);
    /// otherwise `EXDEV`.
    pub fn reopen_roots(&mut self) -> io::Result<()> {
        for t in &mut self.trees {
            let Some(old) = &t.fd else { continue };
            let flags = libc::O_PATH | libc::O_CLOEXEC | if t.is_dir { libc::O_DIRECTORY } else { 0 };
            let new = open_path(&t.path, flags, 0).map_err(|e| io::Error::from_raw_os_error(e.0))?;
            let id = |fd: BorrowedFd<'_>| -> io::Result<(u64, u64)> {
                let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
                // SAFETY: `fd` is live and `st` is writable memory of the size fstat fills.
                if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: fstat succeeded, so it initialised `st`.
                let st = unsafe { st.assume_init() };
                Ok((st.st_dev, st.st_ino))
            };
            if id(old.as_fd())? != id(new.as_fd())? {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            }
            t.nodev = mount_nodev(new.as_fd());
            t.fd = Some(new);
        }
        Ok(())
    }

    /// Each tree with its root's descriptor (`None` for a per-lookup `/proc/self`
    /// tree), whether it is writable, and whether its root is a directory.
    pub fn roots(&self) -> impl Iterator<Item = (PathBuf, Option<BorrowedFd<'_>>, bool, bool)> + '_ {
        self.trees.iter().map(|t| (join(&t.comps), t.fd.as_ref().map(|f| f.as_fd()), t.writable, t.is_dir))
    }

    fn tree_at(&self, comps: &[Vec<u8>]) -> Option<&Tree> {
        self.trees.iter().find(|t| t.comps == comps)
    }

    fn is_ancestor_of_tree(&self, comps: &[Vec<u8>]) -> bool {
        self.trees
            .iter()
            .any(|t| t.comps.len() > comps.len() && t.comps.starts_with(comps))
    }

    fn innermost(&self, comps: &[Vec<u8>]) -> Option<&Tree> {
        self.trees
            .iter()
            .filter(|t| comps.starts_with(&t.comps))
            .max_by_key(|t| t.comps.len())
    }

    /// Resolves `path` (relative to absolute directory `base` unless absolute) for a call
    /// that wants `want`; `follow` says whether a final symlink is followed. The entry
    /// need not exist (then `node` is `None`), but its directory must.
    pub fn check(
        &self,
        base: &Path,
        path: &[u8],
        follow: bool,
        want: Access,
    ) -> Result<ResolvedPath, Errno> {
        if let Some(r) = self.check_fast(base, path, follow, want) {
            return r;
        }
        self.check_walk(base, path, follow, want)
    }

    /// The isolated tree holding the `..`-free absolute form of `path`, strictly below
    /// its root, if the fast path may be tried for it at all (see the module
    /// documentation). Makes no system call.
    fn fast_target<'a>(
        &'a self,
        base: &'a Path,
        path: &'a [u8],
        want: Access,
    ) -> Option<FastTarget<'a>> {
        if NO_OPENAT2.load(Ordering::Relaxed)
            || path.is_empty()
            || path.contains(&0)
            || path.len() >= libc::PATH_MAX as usize
        {
            return None;
        }
        let mut comps: Vec<&[u8]> = Vec::new();
        if !path.starts_with(b"/") {
            let b = base.as_os_str().as_bytes();
            if !b.starts_with(b"/") || b.contains(&0) {
                return None;
            }
            comps.extend(split(b));
        }
        comps.extend(split(path));
        if comps.contains(&&b".."[..]) {
            return None;
        }
        let tree = self
            .trees
            .iter()
            .filter(|t| {
                t.comps.len() <= comps.len()
                    && t.comps.iter().zip(&comps).all(|(a, b)| a.as_slice() == *b)
            })
            .max_by_key(|t| t.comps.len())?;
        if !tree.fast || tree.comps.len() == comps.len() {
            return None;
        }
        if want != Access::Read && !tree.writable {
            return None;
        }
        let root = tree.fd.as_ref()?.as_fd();
        let rest = comps.split_off(tree.comps.len());
        Some(FastTarget { tree, root, rest })
    }

    /// [`Paths::check`] by `openat2`; `None` to fall back to the walk.
    fn check_fast(
        &self,
        base: &Path,
        path: &[u8],
        follow: bool,
        want: Access,
    ) -> Option<Result<ResolvedPath, Errno>> {
        let f = self.fast_target(base, path, want)?;
        let follow = follow || path.ends_with(b"/");
        let (name, dirs) = f.rest.split_last()?;
        let name = cstr(name).ok()?;
        // No symlink may be crossed (then the lexical path is the canonical one), nor a
        // magic link; `..` does not occur.
        let resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS;
        let parent = if dirs.is_empty() {
            dup(f.root)
        } else {
            openat2(
                f.root,
                &rel_path(dirs)?,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                resolve,
            )
        };
        let parent = match parent {
            Ok(p) => p,
            Err(e) => {
                // Without symlinks and `..`, the walk fails at the same component.
                let e = definite(e, &[libc::ENOENT, libc::ENOTDIR])?;
                fast_hit();
                return Some(Err(e));
            }
        };
        let node = if follow {
            // A final symlink fails with ELOOP: the walk follows it.
            openat2(
                parent.as_fd(),
                &name,
                libc::O_PATH | libc::O_CLOEXEC,
                0,
                resolve,
            )
        } else {
            openat(
                parent.as_fd(),
                &name,
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            )
        };
        let node = match node {
            Ok(n) => Some(n),
            Err(Errno(libc::ENOENT)) => None,
            Err(e) => {
                definite(e, &[]);
                return None;
            }
        };
        fast_hit();
        let mut canonical = Vec::with_capacity(path.len() + 64);
        for c in f
            .tree
            .comps
            .iter()
            .map(Vec::as_slice)
            .chain(f.rest.iter().copied())
        {
            canonical.push(b'/');
            canonical.extend_from_slice(c);
        }
        Some(Ok(ResolvedPath {
            canonical: PathBuf::from(std::ffi::OsStr::from_bytes(&canonical)),
            parent: Some(parent),
            name,
            node,
            writable: f.tree.writable,
        }))
    }

    /// [`Paths::open`] by one `openat2` beneath the tree's root; `None` to fall back to
    /// the walk.
    fn open_fast(
        &self,
        base: &Path,
        path: &[u8],
        flags: i32,
        mode: u32,
        want: Access,
    ) -> Option<Result<OwnedFd, Errno>> {
        if path.ends_with(b"/") {
            return None;
        }
        let f = self.fast_target(base, path, want)?;
        // A device node below a tree is opened only if a rule names it, and it must be
        // refused before it is opened (opening a device acts on it). One `openat2`
        // cannot tell: it takes the walk, unless the kernel refuses device nodes on
        // this mount itself (`nodev`, as in the sandbox's mount namespace) or nothing
        // is opened (`O_PATH`, checked after).
        let opath = flags & libc::O_PATH != 0;
        let devices_ok = f.tree.comps.first().is_some_and(|c| c == b"dev");
        if !opath && !f.tree.nodev && !devices_ok {
            return None;
        }
        // openat2 refuses a mode without O_CREAT/O_TMPFILE and bits beyond 07777, which
        // openat ignores.
        let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
        let mode = if creates { mode & 0o7777 } else { 0 };
        // No mount point is crossed: the tree's mount decides `nodev`.
        let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
        match openat2(f.root, &rel_path(&f.rest)?, flags, mode, resolve) {
            Ok(fd) => {
                fast_hit();
                if opath && !devices_ok && is_device(fd.as_fd()).unwrap_or(true) {
                    return Some(Err(Errno(libc::EACCES)));
                }
                Some(Ok(fd))
            }
            Err(e) => {
                let e = definite(e, &[libc::ENOENT, libc::EEXIST])?;
                fast_hit();
                Some(Err(e))
            }
        }
    }

    /// [`Paths::check`] by walking component by component: the definition.
    fn check_walk(
        &self,
        base: &Path,
        path: &[u8],
        follow: bool,
        want: Access,
    ) -> Result<ResolvedPath, Errno> {
        if path.is_empty() {
            return Err(Errno(libc::ENOENT));
        }
        if path.contains(&0) {
            return Err(Errno(libc::EINVAL));
        }
        if path.len() >= libc::PATH_MAX as usize {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let follow = follow || path.ends_with(b"/");
        // Components still to walk, last one at the end (popped from the back).
        let mut pending: Vec<Vec<u8>> = Vec::new();
        for c in split(path).rev() {
            pending.push(c.to_vec());
        }
        if !path.starts_with(b"/") {
            let b = base.as_os_str().as_bytes();
            if !b.starts_with(b"/") {
                return Err(Errno(libc::EINVAL));
            }
            for c in split(b).rev() {
                pending.push(c.to_vec());
            }
        }
        let mut comps: Vec<Vec<u8>> = Vec::new();
        // fds[0] is "/", fds[i] the fd of comps[..i]; None outside every tree.
        let mut fds: Vec<Option<OwnedFd>> = vec![self.root_fd()?];
        let mut links = 0;
        let mut missing: Option<Vec<u8>> = None;
        while let Some(c) = pending.pop() {
            if c == b".." {
                if !comps.is_empty() {
                    comps.pop();
                    fds.pop();
                }
                continue;
            }
            let last = pending.is_empty();
            comps.push(c);
            if hard_denied(&comps) {
                return Err(Errno(libc::EACCES));
            }
            if let Some(t) = self.tree_at(&comps) {
                fds.push(Some(t.root()?));
                continue;
            }
            let Some(Some(dir)) = fds.last() else {
                if self.is_ancestor_of_tree(&comps) {
                    fds.push(None);
                    continue;
                }
                return Err(Errno(libc::EACCES));
            };
            let name = cstr(comps.last().map_or(&[][..], Vec::as_slice))?;
            let fd = match openat(
                dir.as_fd(),
                &name,
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            ) {
                Ok(fd) => fd,
                Err(Errno(libc::ENOENT)) if last => {
                    missing = comps.pop();
                    break;
                }
                Err(e) => return Err(e),
            };
            if file_type(fd.as_fd())? == libc::S_IFLNK && (!last || follow) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno(libc::ELOOP));
                }
                let target = read_link(fd.as_fd())?;
                if target.is_empty() {
                    return Err(Errno(libc::ENOENT));
                }
                comps.pop();
                if target.starts_with(b"/") {
                    comps.clear();
                    fds.truncate(1);
                }
                for t in split(&target).rev() {
                    pending.push(t.to_vec());
                }
                continue;
            }
            fds.push(Some(fd));
        }
        // The final entry: either `missing` inside comps' directory, or comps itself.
        let mut full = comps.clone();
        if let Some(m) = &missing {
            full.push(m.clone());
        }
        if hard_denied(&full) {
            return Err(Errno(libc::EACCES));
        }
        let tree = self.innermost(&full).ok_or(Errno(libc::EACCES))?;
        if want != Access::Read && !tree.writable {
            return Err(Errno(libc::EACCES));
        }
        if want == Access::Mutate
            && (self.tree_at(&full).is_some() || self.is_ancestor_of_tree(&full))
        {
            return Err(Errno(libc::EACCES));
        }
        let canonical = join(&full);
        let writable = tree.writable;
        if let Some(m) = missing {
            let parent = fds.pop().flatten().ok_or(Errno(libc::EACCES))?;
            return Ok(ResolvedPath {
                canonical,
                parent: Some(parent),
                name: cstr(&m)?,
                node: None,
                writable,
            });
        }
        let node = fds.pop().flatten().ok_or(Errno(libc::EACCES))?;
        if self.tree_at(&comps).is_some() {
            return Ok(ResolvedPath {
                canonical,
                parent: None,
                name: CString::default(),
                node: Some(node),
                writable,
            });
        }
        let parent = fds.pop().flatten().ok_or(Errno(libc::EACCES))?;
        let name = cstr(comps.last().map_or(&[][..], Vec::as_slice))?;
        Ok(ResolvedPath {
            canonical,
            parent: Some(parent),
            name,
            node: Some(node),
            writable,
        })
    }

    fn root_fd(&self) -> Result<Option<OwnedFd>, Errno> {
        match self.tree_at(&[]) {
            Some(t) => Ok(Some(t.root()?)),
            None => Ok(None),
        }
    }

    /// Opens `path` for the program as `open(2)` would with `flags` and `mode`, confined to
    /// the trees. Writing (`O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_TRUNC`) needs a read-write
    /// tree. The program's flags are passed through (`O_CLOEXEC` only if it asked). A
    /// device node opens only when a rule names it ([`Paths::device_allowed`]).
    pub fn open(&self, base: &Path, path: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        if let Some(r) = self.open_direct(base, path, flags, mode) {
            return r;
        }
        self.plan_open(base, path, flags, mode)?.finish()
    }

    /// [`Paths::open`] in one `openat2` beneath the tree's root, where that gives the
    /// walk's answer (see the module documentation); `None` to take the walk
    /// ([`Paths::plan_open`]). Makes no descriptor but the result, so the caller need
    /// not hold anything against sibling threads renumbering descriptors; it may block
    /// (a FIFO).
    pub fn open_direct(&self, base: &Path, path: &[u8], flags: i32, mode: u32) -> Option<Result<OwnedFd, Errno>> {
        self.open_fast(base, path, flags, mode, open_access(flags))
    }

    /// [`Paths::open`] by the walk, up to the final `open`: the descriptors of the walk
    /// are closed, but for the one the open goes through (the entry's directory, or
    /// the entry itself for a tree root), held by the returned [`OpenPlan`].
    pub fn plan_open(&self, base: &Path, path: &[u8], flags: i32, mode: u32) -> Result<OpenPlan, Errno> {
        let excl_create = flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL;
        let follow = flags & libc::O_NOFOLLOW == 0 && !excl_create;
        let r = self.check_walk(base, path, follow, open_access(flags))?;
        let comps = normalise(r.canonical.as_os_str().as_bytes());
        let device_ok = self.device_allowed(&comps);
        if let Some(node) = &r.node {
            if !device_ok && is_device(node.as_fd())? {
                return Err(Errno(libc::EACCES));
            }
        }
        if let Some(parent) = r.parent {
            return Ok(OpenPlan { via: parent, name: Some(r.name), flags, mode, device_ok });
        }
        // A tree root: reopen the very inode its O_PATH fd holds.
        let node = r.node.ok_or(Errno(libc::EACCES))?;
        if excl_create {
            return Err(Errno(libc::EEXIST));
        }
        Ok(OpenPlan { via: node, name: None, flags, mode, device_ok })
    }

    /// [`Paths::open`] by the walk alone (tests compare it with the fast path).
    #[cfg(test)]
    fn open_walk(&self, base: &Path, path: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        self.plan_open(base, path, flags, mode)?.finish()
    }

    /// Whether a device node at canonical path `comps` may be opened: a rule names it
    /// (its tree's root is the node itself), or the tree holding it is under `/dev`
    /// (`--allow-write /dev/pts`). A rule for `/` does not name `/dev/port`.
    pub fn device_allowed(&self, comps: &[Vec<u8>]) -> bool {
        match self.innermost(comps) {
            Some(t) => t.comps.len() == comps.len() || t.comps.first().is_some_and(|c| c == b"dev"),
            None => false,
        }
    }
}

/// What [`Paths::plan_open`] leaves to do: the final `open`, through one descriptor.
#[derive(Debug)]
pub struct OpenPlan {
    /// The entry's directory, or (`name` is `None`) the entry itself.
    via: OwnedFd,
    name: Option<CString>,
    flags: i32,
    mode: u32,
    /// Whether the entry may be a device node.
    device_ok: bool,
}

impl OpenPlan {
    /// Replaces the descriptor the open goes through with `f(it)`: a caller that must
    /// not leave it at its number (the sandbox's monitor, whose program can `dup2`
    /// over it) moves it.
    pub fn move_via(self, f: impl FnOnce(OwnedFd) -> Result<OwnedFd, Errno>) -> Result<OpenPlan, Errno> {
        Ok(OpenPlan { via: f(self.via)?, ..self })
    }

    /// Performs the open.
    pub fn finish(self) -> Result<OwnedFd, Errno> {
        let fd = match &self.name {
            Some(name) => openat(self.via.as_fd(), name, self.flags | libc::O_NOFOLLOW, self.mode)?,
            None if self.flags & libc::O_PATH != 0 => return dup(self.via.as_fd()),
            None => {
                let proc_path = cstr(format!("/proc/thread-self/fd/{}", self.via.as_raw_fd()).as_bytes())?;
                open_path(&proc_path, self.flags & !(libc::O_NOFOLLOW | libc::O_CREAT), self.mode)?
            }
        };
        // A node created or swapped in after the walk looked at it.
        if !self.device_ok && self.flags & libc::O_PATH == 0 && is_device(fd.as_fd())? {
            return Err(Errno(libc::EACCES));
        }
        Ok(fd)
    }
}

/// Whether the mount `fd` lies on is `nodev`.
fn mount_nodev(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fstatvfs writes one struct statvfs into the local; a bad descriptor is an
    // error.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) == 0 && st.f_flag & libc::ST_NODEV != 0 }
}

/// Whether `fd` is a character or block device.
fn is_device(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let t = file_type(fd)?;
    Ok(t == libc::S_IFCHR || t == libc::S_IFBLK)
}

/// What opening with `flags` needs: writing (`O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_TRUNC`)
/// needs a read-write tree.
fn open_access(flags: i32) -> Access {
    if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0 {
        Access::Write
    } else {
        Access::Read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("dune-policy-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// t/ro (read-only tree), t/rw (read-write tree), t/secret (outside), with links.
    fn setup(tag: &str) -> (TempDir, Paths) {
        let t = TempDir::new(tag);
        let d = &t.0;
        for sub in ["ro/sub", "rw/inner", "secret"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("ro/file"), b"ro").unwrap();
        std::fs::write(d.join("ro/sub/deep"), b"deep").unwrap();
        std::fs::write(d.join("secret/key"), b"key").unwrap();
        std::fs::write(d.join("rw/inner/data"), b"data").unwrap();
        symlink("../secret/key", d.join("ro/up")).unwrap();
        symlink(d.join("secret/key"), d.join("ro/abs")).unwrap();
        symlink(d.join("rw/inner/data"), d.join("ro/to_rw")).unwrap();
        symlink("sub/deep", d.join("ro/rel")).unwrap();
        symlink("loop2", d.join("ro/loop1")).unwrap();
        symlink("loop1", d.join("ro/loop2")).unwrap();
        symlink("../../../../../../../../../..", d.join("ro/dotdots")).unwrap();
        symlink("/", d.join("rw/root")).unwrap();
        let mut p = Paths::default();
        p.add(&d.join("ro"), false).unwrap();
        p.add(&d.join("rw"), true).unwrap();
        (t, p)
    }

    fn rd(p: &Paths, path: &Path) -> Result<Vec<u8>, Errno> {
        let fd = p.open(
            Path::new("/"),
            path.as_os_str().as_bytes(),
            libc::O_RDONLY,
            0,
        )?;
        Ok(std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap())
    }

    /// A small deterministic generator (xorshift64*), enough to pick path components.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
            &v[self.below(v.len())]
        }
    }

    fn ino(fd: BorrowedFd<'_>) -> (u64, u64) {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `fd` is live and `st` points to writable memory of the size fstat fills.
        assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) }, 0);
        // SAFETY: fstat succeeded, so it initialised `st`.
        let st = unsafe { st.assume_init() };
        (st.st_dev, st.st_ino)
    }

    fn opt_ino(fd: &Option<OwnedFd>) -> Option<(u64, u64)> {
        fd.as_ref().map(|f| ino(f.as_fd()))
    }

    /// Comparable outcome of a check: canonical path, parent and node inodes, name,
    /// writable.
    type CheckOutcome = Result<
        (
            PathBuf,
            Option<(u64, u64)>,
            Option<(u64, u64)>,
            Vec<u8>,
            bool,
        ),
        Errno,
    >;

    fn check_outcome(r: Result<ResolvedPath, Errno>) -> CheckOutcome {
        r.map(|r| {
            (
                r.canonical,
                opt_ino(&r.parent),
                opt_ino(&r.node),
                r.name.as_bytes().to_vec(),
                r.writable,
            )
        })
    }

    fn fast_hits() -> u32 {
        FAST_HITS.with(|c| c.get())
    }

    fn syscalls() -> u32 {
        SYSCALLS.with(|c| c.get())
    }

    /// Trees for the differential test, below `d`:
    /// - `a` read-write with the read-only tree `a/ro` inside (neither takes the fast path);
    /// - `b` read-only and `c` read-write, isolated (fast path);
    /// - `e`, a symlink to `c/dir`, read-only (an isolated tree whose root is a link);
    /// - `n` read-only with the read-write tree `n/w` inside;
    /// - `tf`, a file, read-write; `secret` outside every tree.
    ///
    /// `a`, `b`, `c` hold the same files and a zoo of links: relative, absolute, into the
    /// other trees, out of all trees, loops, `..` after a directory and after a file,
    /// trailing `/`, dangling.
    fn differential_setup(d: &Path) -> Paths {
        let w = |p: &str, s: &[u8]| std::fs::write(d.join(p), s).unwrap();
        let l = |target: &str, p: &str| symlink(target, d.join(p)).unwrap();
        let ds = d.display().to_string();
        for x in ["a", "b", "c"] {
            std::fs::create_dir_all(d.join(x).join("dir/s/empty")).unwrap();
            w(&format!("{x}/f"), b"f");
            w(&format!("{x}/dir/g"), b"g");
            w(&format!("{x}/dir/s/h"), b"h");
            for (target, name) in [
                ("dir/g", "l_rel"),
                ("dir", "l_dir"),
                ("dir/s/..", "l_sdot"),
                ("f/..", "l_fdot"),
                ("l_dir/s/../g", "l_linkdot"),
                ("../b/f", "l_up"),
                ("../c/dir", "l_upc"),
                ("../secret/k", "l_esc"),
                (&format!("{ds}/{x}/f"), "l_abs"),
                (&format!("{ds}/b/dir"), "l_absb"),
                ("l_loop2", "l_loop1"),
                ("l_loop1", "l_loop2"),
                ("nothing_here", "l_dang"),
                ("dir/new_in_dir", "l_dangd"),
                (".", "l_self"),
                ("/", "l_root"),
                ("f/", "l_slash"),
                ("dir/", "l_dslash"),
                ("l_rel", "l_chain"),
                ("ro/r", "l_ro"),
                ("../ro", "dir/l_ro2"),
                ("../f", "dir/l_back"),
                ("../../dir/g", "dir/s/l_top"),
                (&format!("../../{x}/f"), "dir/l_out"),
                ("../../e/g", "dir/l_e"),
                ("../../../../../../../../..", "dir/s/l_dd"),
            ] {
                l(target, &format!("{x}/{name}"));
            }
        }
        std::fs::create_dir_all(d.join("a/ro")).unwrap();
        w("a/ro/r", b"r");
        std::fs::create_dir_all(d.join("n/w")).unwrap();
        w("n/f", b"nf");
        w("n/w/f", b"nwf");
        l("w/f", "n/l_w");
        l("../f", "n/w/l_up");
        std::fs::create_dir_all(d.join("secret")).unwrap();
        w("secret/k", b"k");
        w("tf", b"tf");
        l("c/dir", "e");
        let mut p = Paths::default();
        for (t, rw) in [
            ("a", true),
            ("a/ro", false),
            ("b", false),
            ("c", true),
            ("e", false),
            ("n", false),
            ("n/w", true),
            ("tf", true),
        ] {
            p.add(&d.join(t), rw).unwrap();
        }
        let fast: Vec<_> = p
            .trees
            .iter()
            .filter(|t| t.fast)
            .map(|t| join(&t.comps))
            .collect();
        assert_eq!(fast, [d.join("b"), d.join("c"), d.join("e")]);
        as_if_nodev(&mut p);
        p
    }

    /// The sandbox's mount namespace makes every tree `nodev`; the test directory is
    /// not, but holds no device nodes: its opens may take the fast path.
    fn as_if_nodev(p: &mut Paths) {
        for t in &mut p.trees {
            t.nodev = true;
        }
    }

    /// On a mount that is not `nodev`, an open that would act on a device node takes
    /// the walk, which checks the node before opening it; `O_PATH` (nothing opened)
    /// stays on the fast path, and a device it reaches is refused after.
    #[test]
    fn without_nodev_opens_take_the_walk() {
        use std::os::unix::ffi::OsStringExt;
        let t = TempDir::new("devwalk");
        let d = &t.0;
        std::fs::create_dir_all(d.join("t/dir")).unwrap();
        std::fs::write(d.join("t/dir/f"), b"f").unwrap();
        let mut p = Paths::default();
        p.add(&d.join("t"), false).unwrap();
        if p.trees[0].nodev {
            eprintln!("the test directory is on a nodev mount: nothing to compare");
            return;
        }
        let root = Path::new("/");
        let f = d.join("t/dir/f").into_os_string().into_vec();
        let h = fast_hits();
        assert!(p.open(root, &f, libc::O_RDONLY, 0).is_ok());
        assert_eq!(fast_hits(), h, "a plain open took the fast path on a mount without nodev");
        assert!(p.open(root, &f, libc::O_PATH, 0).is_ok());
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            assert_eq!(fast_hits(), h + 1, "O_PATH did not take the fast path");
        }
        // A device node, where root may make one: refused by both paths.
        let node = CString::new(d.join("t/dir/null").into_os_string().into_vec()).unwrap();
        // SAFETY: mknod with a NUL-terminated path.
        if unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0 {
            for flags in [libc::O_RDONLY, libc::O_PATH, libc::O_WRONLY] {
                assert_eq!(p.open(root, node.as_bytes(), flags, 0).err(), Some(Errno(libc::EACCES)), "device node, flags {flags:#o}");
            }
        }
    }

    /// The fast path gives exactly the walk's answers, for random paths over a tree full
    /// of awkward links, for every kind of access, follow flag and a range of open flags.
    #[test]
    fn fast_path_agrees_with_the_walk() {
        let t = TempDir::new("differential");
        let d = &t.0;
        let p = differential_setup(d);
        let names: &[&str] = &[
            "a",
            "b",
            "c",
            "e",
            "n",
            "w",
            "tf",
            "secret",
            "ro",
            "r",
            "f",
            "dir",
            "g",
            "s",
            "h",
            "k",
            "empty",
            "missing",
            "new_in_dir",
            "nothing_here",
            "l_rel",
            "l_dir",
            "l_sdot",
            "l_fdot",
            "l_linkdot",
            "l_up",
            "l_upc",
            "l_esc",
            "l_abs",
            "l_absb",
            "l_loop1",
            "l_dang",
            "l_dangd",
            "l_self",
            "l_root",
            "l_slash",
            "l_dslash",
            "l_chain",
            "l_ro",
            "l_back",
            "l_top",
            "l_out",
            "l_e",
            "l_dd",
            "l_w",
            "l_up",
            ".",
            "..",
            "",
            "dir",
            "dir",
            "s",
            "l_ro",
            "l_ro",
            "l_ro2",
            "l_w",
        ];
        let firsts: &[&str] = &[
            "b", "c", "e", "b", "c", "e", "a", "a", "n", "n", "tf", "secret",
        ];
        let bases: Vec<PathBuf> = ["", "a", "b", "c/dir", "c/dir/s", "e", "n", "n/w"]
            .iter()
            .map(|b| if b.is_empty() { d.clone() } else { d.join(b) })
            .collect();
        let open_flags = [
            libc::O_RDONLY,
            libc::O_RDONLY | libc::O_NOFOLLOW,
            libc::O_PATH,
            libc::O_PATH | libc::O_NOFOLLOW,
            libc::O_WRONLY,
            libc::O_RDONLY | libc::O_DIRECTORY,
            libc::O_WRONLY | libc::O_CREAT,
            libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW,
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut mismatches = Vec::new();
        let (mut lookups, mut link_opens, hits0) = (0u32, 0u32, fast_hits());
        for _ in 0..4000 {
            let base = rng.pick(&bases).clone();
            let mut path = match rng.below(10) {
                0..=5 => d.as_os_str().as_bytes().to_vec(),
                6 => Vec::new(),
                _ => b"/".to_vec(),
            };
            let in_d = !path.is_empty() && path != b"/";
            for i in 0..1 + rng.below(5) {
                if i > 0 || !path.is_empty() {
                    path.push(b'/');
                }
                // Mostly into a tree, and mostly the isolated ones.
                let c = if i == 0 && in_d {
                    rng.pick(firsts)
                } else {
                    rng.pick(names)
                };
                path.extend_from_slice(c.as_bytes());
            }
            if rng.below(10) == 0 {
                path.push(b'/');
            }
            for want in [Access::Read, Access::Write, Access::Mutate] {
                for follow in [true, false] {
                    lookups += 1;
                    let fast = check_outcome(p.check(&base, &path, follow, want));
                    let walk = check_outcome(p.check_walk(&base, &path, follow, want));
                    if fast != walk {
                        mismatches.push(format!(
                            "check({base:?}, {:?}, follow={follow}, {want:?}): fast {fast:?}, walk {walk:?}",
                            String::from_utf8_lossy(&path)
                        ));
                    }
                }
            }
            for flags in open_flags {
                lookups += 1;
                let h = fast_hits();
                // The fast path first: if it creates a file, the walk opens the same one.
                let fast = p
                    .open(&base, &path, flags | libc::O_CLOEXEC, 0o600)
                    .map(|f| ino(f.as_fd()));
                let walk = p
                    .open_walk(&base, &path, flags | libc::O_CLOEXEC, 0o600)
                    .map(|f| ino(f.as_fd()));
                if fast_hits() > h && path.windows(2).any(|w| w == b"l_") {
                    link_opens += 1;
                }
                if fast != walk {
                    mismatches.push(format!(
                        "open({base:?}, {:?}, {flags:#o}): fast {fast:?}, walk {walk:?}",
                        String::from_utf8_lossy(&path)
                    ));
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "{} mismatches:\n{}",
            mismatches.len(),
            mismatches[..mismatches.len().min(30)].join("\n")
        );
        let hits = fast_hits() - hits0;
        eprintln!(
            "{hits} of {lookups} lookups answered by the fast path, {link_opens} opens through links"
        );
        assert!(link_opens > 200, "fast opens through links: {link_opens}");
        assert!(
            hits > lookups / 10,
            "fast path barely used: {hits} of {lookups}"
        );
    }

    /// Directed cases on top of the random ones: exclusive creation, file roots, tree
    /// roots, a `..` and writes that must be refused or allowed exactly as the walk does.
    #[test]
    fn fast_path_directed_cases() {
        let t = TempDir::new("directed");
        let d = &t.0;
        let p = differential_setup(d);
        let b = |s: &str| d.join(s).into_os_string().into_vec();
        use std::os::unix::ffi::OsStringExt;
        let root = Path::new("/");
        let excl = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        // Exclusive creation: created once by the fast path, then EEXIST from both.
        let h0 = fast_hits();
        assert!(p.open(root, &b("c/dir/x1"), excl, 0o600).is_ok());
        assert_eq!(fast_hits(), h0 + 1);
        assert_eq!(
            p.open(root, &b("c/dir/x1"), excl, 0o600).err(),
            Some(Errno(libc::EEXIST))
        );
        assert_eq!(
            p.open_walk(root, &b("c/dir/x1"), excl, 0o600).err(),
            Some(Errno(libc::EEXIST))
        );
        assert_eq!(
            p.open(root, &b("c/l_dang"), excl, 0o600).err(),
            Some(Errno(libc::EEXIST))
        );
        // A dangling link followed by O_CREAT creates its target, inside the tree only.
        assert!(p
            .open(root, &b("c/l_dangd"), libc::O_WRONLY | libc::O_CREAT, 0o600)
            .is_ok());
        assert!(d.join("c/dir/new_in_dir").exists());
        // Writes into the read-only tree b through c's link, and into b directly: refused.
        assert_eq!(
            p.open(root, &b("c/l_up"), libc::O_WRONLY, 0).err(),
            Some(Errno(libc::EACCES))
        );
        assert_eq!(
            p.open(root, &b("b/f"), libc::O_WRONLY, 0).err(),
            Some(Errno(libc::EACCES))
        );
        // A link in the read-write tree a into the read-only tree a/ro inside it, and one in
        // the read-only n into the read-write n/w inside it.
        assert_eq!(
            p.open(root, &b("a/l_ro"), libc::O_WRONLY, 0).err(),
            Some(Errno(libc::EACCES))
        );
        assert_eq!(
            p.check(root, &b("a/dir/l_ro2/new"), true, Access::Write)
                .err(),
            Some(Errno(libc::EACCES))
        );
        assert!(p.open(root, &b("n/l_w"), libc::O_WRONLY, 0).is_ok());
        assert_eq!(
            p.open(root, &b("n/w/l_up"), libc::O_WRONLY, 0).err(),
            Some(Errno(libc::EACCES))
        );
        // b's link into c is writable: the walk decides.
        assert!(p.open(root, &b("b/l_upc/g"), libc::O_WRONLY, 0).is_ok());
        // Escapes.
        for esc in [
            "c/l_esc",
            "c/l_root/etc/passwd",
            "c/dir/s/l_dd/etc/passwd",
            "c/l_abs",
        ] {
            let want = if esc == "c/l_abs" {
                None
            } else {
                Some(Errno(libc::EACCES))
            };
            assert_eq!(
                p.open(root, &b(esc), libc::O_RDONLY, 0).err(),
                want,
                "{esc}"
            );
        }
        // Mode bits beyond 07777 and a mode without O_CREAT are ignored as open(2) does.
        assert!(p.open(root, &b("c/f"), libc::O_RDONLY, 0o170_777).is_ok());
        assert!(p
            .open(
                root,
                &b("c/dir/x2"),
                libc::O_WRONLY | libc::O_CREAT,
                0o100_644
            )
            .is_ok());
        // Tree roots and file roots keep the walk's handling.
        assert!(p
            .open(root, &b("c"), libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .is_ok());
        assert!(p.open(root, &b("tf"), libc::O_RDWR, 0).is_ok());
        assert_eq!(
            p.open(root, &b("tf/x"), libc::O_RDONLY, 0).err(),
            Some(Errno(libc::ENOTDIR))
        );
        let r = p.check(root, &b("c"), false, Access::Mutate).err();
        assert_eq!(r, Some(Errno(libc::EACCES)));
        // canonical: lexical when no link is crossed, the walk's when one is.
        let r = p.check(root, &b("c/dir/s"), true, Access::Read).unwrap();
        assert_eq!(r.canonical, d.join("c/dir/s"));
        let r = p.check(root, &b("c/l_dir/s"), true, Access::Read).unwrap();
        assert_eq!(r.canonical, d.join("c/dir/s"));
        let r = p.check(root, &b("e/s/h"), true, Access::Read).unwrap();
        assert_eq!((r.canonical, r.writable), (d.join("e/s/h"), false));
        let r = p
            .check(&d.join("c/dir"), b"s/../g", true, Access::Read)
            .unwrap();
        assert_eq!(r.canonical, d.join("c/dir/g"));
    }

    /// The fast path makes at most two system calls for a plain path in an isolated tree
    /// (the walk makes two per component).
    #[test]
    fn fast_path_system_call_counts() {
        let t = TempDir::new("count");
        let d = &t.0;
        std::fs::create_dir_all(d.join("usr/share/foo")).unwrap();
        std::fs::create_dir_all(d.join("usr/lib")).unwrap();
        std::fs::write(d.join("usr/lib/os-release"), b"ID=dune").unwrap();
        std::fs::write(d.join("usr/share/foo/bar.html"), b"<p>").unwrap();
        let mut p = Paths::default();
        p.add(&d.join("usr"), false).unwrap();
        as_if_nodev(&mut p);
        let root = Path::new("/");
        let count = |f: &dyn Fn()| {
            let (n, h) = (syscalls(), fast_hits());
            f();
            (syscalls() - n, fast_hits() - h)
        };
        for rel in [
            "usr/lib/os-release",
            "usr/share/foo/bar.html",
            "usr/lib/missing",
        ] {
            let path = d.join(rel);
            let path = path.as_os_str().as_bytes();
            let exists = !rel.ends_with("missing");
            let open = count(&|| assert_eq!(p.open(root, path, libc::O_RDONLY, 0).is_ok(), exists));
            let open_walk =
                count(&|| assert_eq!(p.open_walk(root, path, libc::O_RDONLY, 0).is_ok(), exists));
            let check = count(&|| {
                assert_eq!(
                    p.check(root, path, true, Access::Read)
                        .unwrap()
                        .node
                        .is_some(),
                    exists
                )
            });
            let check_walk = count(&|| {
                let r = p.check_walk(root, path, true, Access::Read).unwrap();
                assert_eq!(r.node.is_some(), exists);
            });
            let stat_rel = count(&|| {
                assert!(p
                    .check(&d.join("usr/lib"), b"os-release", false, Access::Read)
                    .is_ok())
            });
            eprintln!(
                "{rel}: open {} (walk {}), check {} (walk {}), relative check {}",
                open.0, open_walk.0, check.0, check_walk.0, stat_rel.0
            );
            if NO_OPENAT2.load(Ordering::Relaxed) {
                eprintln!("openat2 is missing here: fast path not measured");
                return;
            }
            assert_eq!(open, (1, 1), "{rel}: open");
            assert_eq!(check, (2, 1), "{rel}: check");
            assert_eq!(stat_rel, (2, 1), "{rel}: relative check");
            assert!(open_walk.0 > 2 * open.0 && check_walk.0 > check.0, "{rel}");
        }
    }

    #[test]
    fn reads_inside_and_refuses_outside() {
        let (t, p) = setup("basic");
        let d = &t.0;
        assert_eq!(rd(&p, &d.join("ro/file")).unwrap(), b"ro");
        assert_eq!(rd(&p, &d.join("ro/rel")).unwrap(), b"deep");
        assert_eq!(rd(&p, &d.join("ro/to_rw")).unwrap(), b"data"); // lands in another tree
        assert_eq!(rd(&p, &d.join("secret/key")), Err(Errno(libc::EACCES)));
        assert_eq!(rd(&p, &d.join("ro/missing")), Err(Errno(libc::ENOENT)));
        assert_eq!(rd(&p, &d.join("ro/file/x")), Err(Errno(libc::ENOTDIR)));
        // Relative to a base directory.
        let fd = p
            .open(&d.join("ro/sub"), b"../file", libc::O_RDONLY, 0)
            .unwrap();
        drop(fd);
        assert_eq!(
            p.open(&d.join("ro"), b"../secret/key", libc::O_RDONLY, 0)
                .err(),
            Some(Errno(libc::EACCES))
        );
        let r = p
            .check(
                Path::new("/"),
                d.join("ro/./sub//deep").as_os_str().as_bytes(),
                true,
                Access::Read,
            )
            .unwrap();
        assert_eq!(r.canonical, d.join("ro/sub/deep"));
        assert!(!r.writable);
        assert_eq!(
            p.check(Path::new("/"), b"", true, Access::Read).err(),
            Some(Errno(libc::ENOENT))
        );
        assert_eq!(
            p.check(Path::new("/"), b"/a\0b", true, Access::Read).err(),
            Some(Errno(libc::EINVAL))
        );
    }

    #[test]
    fn symlink_escapes_are_refused() {
        let (t, p) = setup("escape");
        let d = &t.0;
        assert_eq!(
            rd(&p, &d.join("ro/up")),
            Err(Errno(libc::EACCES)),
            "relative ../ link"
        );
        assert_eq!(
            rd(&p, &d.join("ro/abs")),
            Err(Errno(libc::EACCES)),
            "absolute link"
        );
        assert_eq!(
            rd(&p, &d.join("ro/dotdots/etc/passwd")),
            Err(Errno(libc::EACCES)),
            "../.. chain"
        );
        assert_eq!(
            rd(&p, &d.join("rw/root/etc/passwd")),
            Err(Errno(libc::EACCES)),
            "link to /"
        );
        let dd = format!("{}/ro/sub/../../../../../../../../etc/passwd", d.display());
        assert_eq!(rd(&p, Path::new(&dd)), Err(Errno(libc::EACCES)));
        assert_eq!(rd(&p, &d.join("ro/loop1")), Err(Errno(libc::ELOOP)), "loop");
        // O_NOFOLLOW on a final symlink behaves as open(2) does.
        let e = p.open(
            Path::new("/"),
            d.join("ro/rel").as_os_str().as_bytes(),
            libc::O_RDONLY | libc::O_NOFOLLOW,
            0,
        );
        assert_eq!(e.err(), Some(Errno(libc::ELOOP)));
        // Not following the final link: the link itself is inside the tree.
        let r = p
            .check(
                Path::new("/"),
                d.join("ro/abs").as_os_str().as_bytes(),
                false,
                Access::Read,
            )
            .unwrap();
        assert_eq!(r.canonical, d.join("ro/abs"));
    }

    #[test]
    fn writes_need_a_read_write_tree() {
        let (t, p) = setup("write");
        let d = &t.0;
        let b = |s: &str| d.join(s).into_os_string().into_vec();
        use std::os::unix::ffi::OsStringExt;
        let creat = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        assert_eq!(
            p.open(Path::new("/"), &b("ro/file"), libc::O_RDWR, 0).err(),
            Some(Errno(libc::EACCES))
        );
        assert_eq!(
            p.open(Path::new("/"), &b("ro/new"), creat, 0o644).err(),
            Some(Errno(libc::EACCES))
        );
        assert_eq!(
            p.open(Path::new("/"), &b("ro/to_rw"), libc::O_RDWR, 0)
                .map(drop),
            Ok(())
        );
        let fd = p
            .open(Path::new("/"), &b("rw/inner/new"), creat, 0o644)
            .unwrap();
        drop(fd);
        assert!(d.join("rw/inner/new").exists());
        assert_eq!(
            p.open(
                Path::new("/"),
                &b("rw/inner/new"),
                creat | libc::O_EXCL,
                0o644
            )
            .err(),
            Some(Errno(libc::EEXIST))
        );
        assert_eq!(
            p.open(Path::new("/"), &b("rw/nodir/new"), creat, 0o644)
                .err(),
            Some(Errno(libc::ENOENT))
        );
        assert_eq!(
            p.open(&d.join("rw"), b"inner/../x", creat, 0o600).map(drop),
            Ok(())
        );
        assert!(d.join("rw/x").exists());
        let r = p
            .check(Path::new("/"), &b("rw/inner/data"), false, Access::Mutate)
            .unwrap();
        assert!(r.writable && r.parent.is_some());
        assert_eq!(r.name.as_bytes(), b"data");
        // The trees' roots and their ancestors cannot be renamed or removed.
        assert_eq!(
            p.check(Path::new("/"), &b("rw"), false, Access::Mutate)
                .err(),
            Some(Errno(libc::EACCES))
        );
        assert_eq!(
            p.check(Path::new("/"), &b("ro/file"), false, Access::Mutate)
                .err(),
            Some(Errno(libc::EACCES))
        );
    }

    #[test]
    fn tree_root_files_and_nested_trees() {
        let (t, mut p) = setup("nested");
        let d = &t.0;
        std::fs::create_dir_all(d.join("rw/locked")).unwrap();
        std::fs::write(d.join("rw/locked/f"), b"f").unwrap();
        p.add(&d.join("rw/locked"), false).unwrap();
        p.add(Path::new("/dev/null"), true).unwrap();
        let b = |s: &str| d.join(s).as_os_str().as_bytes().to_vec();
        assert_eq!(
            p.open(Path::new("/"), &b("rw/locked/f"), libc::O_RDWR, 0)
                .err(),
            Some(Errno(libc::EACCES))
        );
        assert_eq!(
            p.open(Path::new("/"), &b("rw/inner/../locked/f"), libc::O_RDWR, 0)
                .err(),
            Some(Errno(libc::EACCES))
        );
        assert!(p
            .open(Path::new("/"), &b("rw/locked/f"), libc::O_RDONLY, 0)
            .is_ok());
        assert!(p
            .open(Path::new("/"), b"/dev/null", libc::O_WRONLY, 0)
            .is_ok());
        assert!(p
            .open(Path::new("/"), b"/dev/zero", libc::O_RDONLY, 0)
            .is_err());
        assert!(p
            .open(
                Path::new("/"),
                &b("rw"),
                libc::O_RDONLY | libc::O_DIRECTORY,
                0
            )
            .is_ok());
    }

    #[test]
    fn proc_magic_links_and_mem_are_refused() {
        let mut p = Paths::default();
        p.add(Path::new("/proc"), true).unwrap();
        for bad in [
            "/proc/self/mem",
            "/proc/thread-self/mem",
            "/proc/self/pagemap",
            "/proc/self/fd/0",
            "/proc/self/cwd",
            "/proc/self/root/etc/passwd",
            "/proc/self/exe",
            "/proc/1/mem",
            "/proc/self/map_files/x",
            "/proc/kcore",
            "/proc/sysrq-trigger",
            "/proc/./self/../self/mem",
            "/proc/self/mountinfo",
            "/proc/mounts",
            "/proc/self/net/unix",
            "/proc/net/tcp",
        ] {
            assert_eq!(
                p.open(Path::new("/"), bad.as_bytes(), libc::O_RDONLY, 0)
                    .err(),
                Some(Errno(libc::EACCES)),
                "{bad}"
            );
        }
        let pid = std::process::id();
        for bad in [
            format!("/proc/{pid}/mem"),
            format!("/proc/self/task/{pid}/mem"),
            format!("/proc/{pid}/task/{pid}/fd/0"),
        ] {
            assert_eq!(
                p.open(Path::new("/"), bad.as_bytes(), libc::O_RDONLY, 0)
                    .err(),
                Some(Errno(libc::EACCES)),
                "{bad}"
            );
        }
        // /dev/fd -> /proc/self/fd: refused too, if /dev is allowed.
        p.add(Path::new("/dev"), false).unwrap();
        assert_eq!(
            p.open(Path::new("/"), b"/dev/fd/0", libc::O_RDONLY, 0)
                .err(),
            Some(Errno(libc::EACCES))
        );
        // Harmless entries still work, and listing fd/ is allowed (closefrom-style loops).
        assert!(p
            .open(Path::new("/"), b"/proc/self/status", libc::O_RDONLY, 0)
            .is_ok());
        assert!(p
            .open(
                Path::new("/"),
                b"/proc/self/fd",
                libc::O_RDONLY | libc::O_DIRECTORY,
                0
            )
            .is_ok());
        assert!(Paths::default()
            .add(Path::new("/proc/self/mem"), false)
            .is_err());
    }
}
