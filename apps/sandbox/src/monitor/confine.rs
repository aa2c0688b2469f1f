//! The kernel's line: what the process is confined to before the program's first
//! instruction, so that a call a monitor bug lets through is still refused.
//!
//! The monitor decides every call the program makes; this module assumes it has
//! bugs. Each layer is the kernel's own and cannot be undone by the process:
//!
//! - **no new privileges** (`PR_SET_NO_NEW_PRIVS`): nothing gains privileges by
//!   `execve`, and Landlock and seccomp need it;
//! - **no capabilities**: started as root, the process drops every capability
//!   (effective, permitted, inheritable, ambient and the bounding set) and locks the
//!   secure bits, so uid 0 means nothing special: no raw sockets, no device nodes
//!   made, no module loading, no reading files it does not own by permission bits;
//! - **no core dumps**: the process is not dumpable and its hard `RLIMIT_CORE` is 0
//!   (the program's own value is kept by the monitor, `misc::rlimit`);
//! - **Landlock**: file access mirrors the policy's trees (reading in read-only trees,
//!   everything in read-write ones, reading `/proc` for the runtime's own
//!   `/proc/self/maps`); where the kernel's Landlock has them, TCP bind and connect
//!   ports mirror the network rules, and signals and abstract unix sockets are scoped
//!   to the sandbox's own processes;
//! - **seccomp**: a filter on the whole process refuses what no call of the program
//!   may ever reach, whatever the monitor says: raw and packet sockets, `ptrace`,
//!   `kexec`, `bpf`, `io_uring`, `userfaultfd`, mounts and namespaces, modules,
//!   keyrings, terminal input injection, `madvise` advice that acts on the machine's
//!   pages or drops memory at fork, set-id mode bits, making the process dumpable;
//! - **namespaces** where the process may make them (started as root): a user
//!   namespace mapping every id to itself, in which the quotas the kernel counts per
//!   user for the whole machine (inotify instances and watches) are a share of the
//!   invoking user's, and pending signals and message-queue bytes are too (by the
//!   process's limits); a mount namespace where every mount is `nodev` and `nosuid`
//!   but for the device nodes a rule names, and, when the policy allows no IP address
//!   at all, a network namespace of its own.
//!
//! [`apply`] says which layers this kernel gave ([`Layers`]); `--stats` prints them
//! and `--strict` refuses to run without Landlock and seccomp.

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::policy::net::NetRule;
use crate::policy::Policy;

/// How the sandbox runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--trace`.
    pub trace: bool,
    /// `--strict`: a missing layer (Landlock, seccomp) is an error, not a warning.
    pub strict: bool,
}

/// Which layers the kernel gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layers {
    pub no_new_privs: bool,
    /// `Some(n)`: `n` capabilities were dropped; `None`: the process had none.
    pub caps_dropped: Option<u32>,
    pub not_dumpable: bool,
    /// The kernel's Landlock ABI, when a ruleset was applied.
    pub landlock: Option<u32>,
    pub landlock_tcp: bool,
    pub landlock_scopes: bool,
    pub seccomp: bool,
    /// A user namespace of its own: the inotify instances it may hold (a share of
    /// the invoking user's).
    pub user_ns: Option<u64>,
    /// A real uid of its own, `(the invoking one, the sandbox's)`: what Linux counts
    /// per user outside any namespace (epoll watches, pipe pages, descriptors in
    /// flight) is counted for it alone.
    pub own_uid: Option<(u32, u32)>,
    pub mount_ns: bool,
    pub net_ns: bool,
    /// A session of its own (`supervise`).
    pub new_session: bool,
    /// A cgroup of its own with the policy's limits (`supervise`).
    pub cgroup: bool,
}

impl Layers {
    /// The layers that are missing, for a warning (or, with `--strict`, an error).
    pub fn missing(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if !self.no_new_privs {
            v.push("no_new_privs");
        }
        if self.landlock.is_none() {
            v.push("Landlock");
        }
        if !self.seccomp {
            v.push("seccomp");
        }
        if !self.not_dumpable {
            v.push("non-dumpable");
        }
        v
    }
}

impl fmt::Display for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        write!(f, "no_new_privs {}, capabilities {}, core dumps {}, Landlock {}", yes(self.no_new_privs), match self.caps_dropped {
            Some(n) => format!("{n} dropped"),
            None => "none held".into(),
        }, if self.not_dumpable { "off" } else { "ON" }, match self.landlock {
            Some(abi) => format!("ABI {abi} (files{}{})", if self.landlock_tcp { ", TCP ports" } else { "" }, if self.landlock_scopes { ", signal and abstract-socket scopes" } else { "" }),
            None => "unavailable".into(),
        })?;
        write!(f, ", seccomp {}, user namespace {}, mount namespace {}, network namespace {}, own session {}, cgroup {}", yes(self.seccomp), match self.user_ns {
            Some(0) => "yes".into(),
            Some(n) => format!("yes (inotify instances ≤ {n})"),
            None => "no".into(),
        }, yes(self.mount_ns), yes(self.net_ns), yes(self.new_session), yes(self.cgroup))?;
        if let Some((_, uid)) = self.own_uid {
            write!(f, ", per-user counts under uid {uid}")?;
        }
        Ok(())
    }
}

/// Why confining failed (a layer the kernel offers could not be applied).
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("{what}: {source}")]
    Os { what: &'static str, source: std::io::Error },
    #[error("--strict: the kernel gives no {0}")]
    Missing(String),
}

fn os(what: &'static str) -> impl FnOnce(std::io::Error) -> ConfineError {
    move |source| ConfineError::Os { what, source }
}

fn check(what: &'static str, r: libc::c_long) -> Result<libc::c_long, ConfineError> {
    if r < 0 {
        return Err(ConfineError::Os { what, source: std::io::Error::last_os_error() });
    }
    Ok(r)
}

/// Confines the calling process (which must have no other threads yet) for `policy`.
pub fn apply(policy: &mut Policy, opts: &Options) -> Result<Layers, ConfineError> {
    let mut l = Layers::default();
    // SAFETY: geteuid has no effect.
    let root = unsafe { libc::geteuid() } == 0 || has_cap(21 /* CAP_SYS_ADMIN */);
    if root {
        // Namespaces first: they need the capabilities dropped below. The user
        // namespace first of all: the others then belong to it.
        l.own_uid = own_real_uid();
        l.user_ns = user_namespace()?;
        l.mount_ns = mount_namespace(policy).is_ok();
        if l.mount_ns {
            // The trees' descriptors were opened in the old namespace: open them
            // again, so every file the program reaches is on the new mounts.
            policy.paths_mut().reopen_roots().map_err(os("opening the trees again in the sandbox's mount namespace"))?;
        }
        if !policy_uses_network(policy) {
            // SAFETY: a new network namespace for this single-threaded process.
            l.net_ns = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
        }
    }
    // SAFETY: prctl with integer arguments only.
    check("PR_SET_NO_NEW_PRIVS", unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as libc::c_long)?;
    l.no_new_privs = true;
    l.landlock = landlock(policy, &mut l)?;
    l.caps_dropped = drop_capabilities()?;
    // SAFETY: prctl and setrlimit with plain values.
    unsafe {
        check("PR_SET_DUMPABLE", libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) as libc::c_long)?;
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        check("RLIMIT_CORE", libc::setrlimit(libc::RLIMIT_CORE, &zero) as libc::c_long)?;
    }
    l.not_dumpable = true;
    l.seccomp = seccomp::install().map_err(os("installing the seccomp filter"))?;
    if opts.strict {
        if let Some(m) = l.missing().first() {
            return Err(ConfineError::Missing((*m).into()));
        }
    }
    Ok(l)
}

/// What this kernel offers, without applying anything (for `dune doctor`).
pub fn probe() -> Layers {
    let abi = landlock_abi();
    Layers {
        no_new_privs: true,
        // SAFETY: geteuid has no effect.
        caps_dropped: (unsafe { libc::geteuid() } == 0).then_some(0),
        not_dumpable: true,
        landlock: abi,
        landlock_tcp: abi.is_some_and(|a| a >= 4),
        landlock_scopes: abi.is_some_and(|a| a >= 6),
        seccomp: std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").is_ok_and(|s| s.contains("errno")),
        // SAFETY: geteuid has no effect.
        user_ns: (unsafe { libc::geteuid() } == 0).then_some(0),
        // SAFETY: as above.
        own_uid: (unsafe { libc::geteuid() } == 0).then_some((0, OWN_UID_BASE)),
        // SAFETY: geteuid has no effect.
        mount_ns: unsafe { libc::geteuid() } == 0,
        // SAFETY: as above.
        net_ns: unsafe { libc::geteuid() } == 0,
        new_session: true,
        cgroup: std::fs::read_to_string("/proc/self/cgroup").is_ok_and(|c| c.lines().any(|l| l.starts_with("0::"))) && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
    }
}

/// Whether the policy allows any IP address or abstract unix socket: without, the
/// sandbox can have a network namespace of its own (where neither reaches out).
fn policy_uses_network(policy: &Policy) -> bool {
    let n = policy.net();
    !n.bind_rules().is_empty() || !n.connect_rules().is_empty()
}

// ---- capabilities ----------------------------------------------------------------------

fn capget() -> [u32; 6] {
    // struct __user_cap_header_struct { version, pid } and two data structs.
    let mut hdr = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3
    let mut data = [0u32; 6];
    // SAFETY: capget writes two 12-byte data structs for version 3.
    unsafe { libc::syscall(libc::SYS_capget, hdr.as_mut_ptr(), data.as_mut_ptr()) };
    data
}

fn has_cap(cap: u32) -> bool {
    let d = capget();
    let (word, bit) = ((cap / 32) as usize, cap % 32);
    d[word * 3] & (1 << bit) != 0
}

/// Drops every capability (and the bounding set, and locks the secure bits) if the
/// process holds any. Returns how many it held.
fn drop_capabilities() -> Result<Option<u32>, ConfineError> {
    let d = capget();
    let held = (d[0] | d[1]).count_ones() + (d[3] | d[4]).count_ones();
    if held == 0 {
        return Ok(None);
    }
    // While CAP_SETPCAP is still there: the bounding set and the secure bits.
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; an unknown capability is EINVAL.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SECBIT_NOROOT, _NO_SETUID_FIXUP, _KEEP_CAPS_LOCKED, _NO_CAP_AMBIENT_RAISE and
    // their locks: uid 0 never brings capabilities back.
    const BITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_SECUREBITS, BITS, 0, 0, 0);
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    }
    let hdr = [0x2008_0522u32, 0];
    let zero = [0u32; 6];
    // SAFETY: capset reads the header and two zeroed data structs.
    check("capset", unsafe { libc::syscall(libc::SYS_capset, hdr.as_ptr(), zero.as_ptr()) })?;
    let after = capget();
    if after.iter().any(|&w| w != 0) {
        return Err(ConfineError::Os { what: "capabilities still held after capset", source: std::io::Error::from_raw_os_error(libc::EPERM) });
    }
    Ok(Some(held))
}

// ---- Landlock ----------------------------------------------------------------------

const LL_EXECUTE: u64 = 1 << 0;
const LL_WRITE_FILE: u64 = 1 << 1;
const LL_READ_FILE: u64 = 1 << 2;
const LL_READ_DIR: u64 = 1 << 3;
const LL_MAKE_CHAR: u64 = 1 << 6;
const LL_MAKE_BLOCK: u64 = 1 << 11;
const LL_TRUNCATE: u64 = 1 << 14;
const LL_IOCTL_DEV: u64 = 1 << 15;
const LL_BIND_TCP: u64 = 1 << 0;
const LL_CONNECT_TCP: u64 = 1 << 1;
const LL_SCOPE_ABSTRACT: u64 = 1 << 0;
const LL_SCOPE_SIGNAL: u64 = 1 << 1;

/// The kernel's Landlock ABI version (`None`: no Landlock).
pub fn landlock_abi() -> Option<u32> {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with no attributes only queries.
    let r = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, core::ptr::null::<u8>(), 0usize, 1u32) };
    (r > 0).then_some(r as u32)
}

/// Every file-system right of `abi`.
fn fs_rights(abi: u32) -> u64 {
    let mut r = (1 << 13) - 1; // ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2 {
        r |= 1 << 13; // REFER
    }
    if abi >= 3 {
        r |= LL_TRUNCATE;
    }
    if abi >= 5 {
        r |= LL_IOCTL_DEV;
    }
    r
}

/// The rights a file (not a directory) may be given.
fn file_rights(abi: u32) -> u64 {
    fs_rights(abi) & (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)
}

fn add_path_rule(ruleset: &OwnedFd, fd: BorrowedFd<'_>, access: u64) -> std::io::Result<()> {
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = PathBeneath { allowed_access: access, parent_fd: fd.as_raw_fd() };
    // SAFETY: the attribute struct lives for the call; LANDLOCK_RULE_PATH_BENEATH = 1.
    let r = unsafe { libc::syscall(libc::SYS_landlock_add_rule, ruleset.as_raw_fd(), 1, &attr as *const PathBeneath, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn add_port_rule(ruleset: &OwnedFd, port: u16, access: u64) -> std::io::Result<()> {
    #[repr(C)]
    struct NetPort {
        allowed_access: u64,
        port: u64,
    }
    let attr = NetPort { allowed_access: access, port: u64::from(port) };
    // SAFETY: as above; LANDLOCK_RULE_NET_PORT = 2.
    let r = unsafe { libc::syscall(libc::SYS_landlock_add_rule, ruleset.as_raw_fd(), 2, &attr as *const NetPort, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The TCP ports `rules` allow, or `None` when one of them allows any port (Landlock
/// then cannot narrow that direction).
fn ports(rules: &[NetRule]) -> Option<Vec<u16>> {
    let mut v = Vec::new();
    for r in rules {
        if let NetRule::Ip { port, .. } = r {
            v.push((*port)?);
        }
    }
    Some(v)
}

fn landlock(policy: &Policy, l: &mut Layers) -> Result<Option<u32>, ConfineError> {
    let Some(abi) = landlock_abi() else { return Ok(None) };
    let fs = fs_rights(abi);
    let n = policy.net();
    let (bind, connect) = (ports(n.bind_rules()), ports(n.connect_rules()));
    let mut net = 0;
    if abi >= 4 {
        if bind.is_some() {
            net |= LL_BIND_TCP;
        }
        if connect.is_some() {
            net |= LL_CONNECT_TCP;
        }
    }
    let scoped = if abi >= 6 { LL_SCOPE_ABSTRACT | LL_SCOPE_SIGNAL } else { 0 };
    let attr: [u64; 3] = [fs, net, scoped];
    let size = if abi >= 6 { 24 } else if abi >= 4 { 16 } else { 8 };
    // SAFETY: the attribute array is at least `size` bytes and lives for the call.
    let rs = check("landlock_create_ruleset", unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, attr.as_ptr(), size as usize, 0u32) })?;
    // SAFETY: the kernel just made this descriptor for us.
    let ruleset = unsafe { OwnedFd::from_raw_fd(rs as i32) };
    for (path, fd, writable, is_dir) in policy.paths().roots() {
        let Some(fd) = fd else { continue };
        // Writable trees get every right but making device nodes (a whiteout from
        // `renameat2` is one, and needs no privilege).
        let want = if writable { fs & !(LL_MAKE_CHAR | LL_MAKE_BLOCK) } else { LL_READ_FILE | LL_READ_DIR | LL_EXECUTE };
        let want = if is_dir { want } else { want & file_rights(abi) };
        add_path_rule(&ruleset, fd, want).map_err(|source| ConfineError::Os { what: leak(format!("Landlock rule for {}", path.display())), source })?;
    }
    // The runtime reads /proc/self/maps; the program's /proc access is the monitor's.
    let proc_path = CString::new("/proc").unwrap_or_default();
    // SAFETY: a NUL-terminated path; O_PATH opens nothing but the name.
    let pfd = unsafe { libc::open(proc_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY) };
    if pfd >= 0 {
        // SAFETY: just opened, owned here.
        let pfd = unsafe { OwnedFd::from_raw_fd(pfd) };
        add_path_rule(&ruleset, std::os::fd::AsFd::as_fd(&pfd), LL_READ_FILE | LL_READ_DIR).map_err(os("Landlock rule for /proc"))?;
    }
    if net & LL_BIND_TCP != 0 {
        for p in bind.unwrap_or_default() {
            add_port_rule(&ruleset, p, LL_BIND_TCP).map_err(os("Landlock bind port rule"))?;
        }
    }
    if net & LL_CONNECT_TCP != 0 {
        for p in connect.unwrap_or_default() {
            add_port_rule(&ruleset, p, LL_CONNECT_TCP).map_err(os("Landlock connect port rule"))?;
        }
    }
    // SAFETY: restricts this thread (the only one) and its future threads and children.
    check("landlock_restrict_self", unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) })?;
    l.landlock_tcp = net != 0;
    l.landlock_scopes = scoped != 0;
    Ok(Some(abi))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

// ---- the user namespace ---------------------------------------------------------------

/// The first of the real uids sandboxes take (plus the sandbox's pid, below 2^22): a
/// range no distribution or systemd convention hands out (systemd's container range
/// ends at 0x6FFFFFFF, its dynamic and foreign ranges start at 0x7FFE0000).
const OWN_UID_BASE: u32 = 0x7E00_0000;

/// A real uid of the sandbox's own, unique while it runs, with the effective, saved
/// and file-system uids left as they are: files are reached and made as before (the
/// file-system uid decides), but Linux counts epoll watches, pipe pages and
/// descriptors in flight per `user_struct`, which follows the real uid and no
/// namespace, so the sandbox's use of them is its own and the invoking user's
/// processes keep all of theirs. Root only (it takes `CAP_SETUID`, dropped later).
/// The program still sees the uid it was started with (`misc::ids`).
fn own_real_uid() -> Option<(u32, u32)> {
    // SAFETY: getuid and getpid have no effect.
    let (outer, me) = unsafe { (libc::getuid(), libc::getpid()) };
    let uid = OWN_UID_BASE + (me as u32 & 0x3f_ffff);
    // SAFETY: setresuid of the real uid only (-1 keeps the others); the process has
    // one thread. Refused (no CAP_SETUID): a layer missing, nothing changed.
    (unsafe { libc::setresuid(uid, u32::MAX, u32::MAX) } == 0).then_some((outer, uid))
}

/// The share of the invoking user's per-user quotas the sandbox may hold: a quarter.
const QUOTA_SHARE: u64 = 4;

/// The per-user quotas of a user namespace (`/proc/sys/user`), capped in the
/// sandbox's own at a share of the invoking user's.
const NS_QUOTAS: &[&str] = &["max_inotify_instances", "max_inotify_watches"];

/// The per-user quotas the kernel takes from the process's limits, here and in the
/// user namespace made after (its ceiling for the user outside).
const RLIMIT_QUOTAS: &[u32] = &[libc::RLIMIT_SIGPENDING, libc::RLIMIT_MSGQUEUE];

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A user namespace of the process's own, every uid and gid mapped to itself (so
/// nothing the program sees changes), in which the quotas Linux counts per user for
/// the whole machine are a share of the invoking user's. The kernel charges what the
/// sandbox holds both in its namespace and to the user outside, and refuses it at the
/// namespace's cap first: the user's processes outside keep the rest. Pending signals
/// and message-queue bytes are capped by the process's own limits, lowered first
/// (the namespace's ceiling is its creator's limit; the program's view of both is
/// kept by the monitor, `misc::rlimit`). Returns the inotify instances the sandbox
/// may hold, or `None` if the kernel makes no user namespace here (a layer missing,
/// not an error). The full identity map needs the capability outside, which the
/// process no longer has once inside: a helper forked before writes it.
fn user_namespace() -> Result<Option<u64>, ConfineError> {
    let outer: Vec<u64> = NS_QUOTAS.iter().map(|q| read_u64(&format!("/proc/sys/user/{q}")).unwrap_or(0)).collect();
    for &r in RLIMIT_QUOTAS {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one struct rlimit.
        if unsafe { libc::getrlimit(r, &mut l) } == 0 && l.rlim_cur != libc::RLIM_INFINITY {
            let share = (l.rlim_cur / QUOTA_SHARE).max(1);
            let lower = libc::rlimit { rlim_cur: share, rlim_max: share.min(l.rlim_max) };
            // SAFETY: setrlimit reads one struct rlimit; lowering needs no privilege.
            check("lowering a per-user limit", unsafe { libc::setrlimit(r, &lower) } as libc::c_long)?;
        }
    }
    // SAFETY: getpid has no effect.
    let me = unsafe { libc::getpid() };
    let maps: Vec<CString> = ["uid_map", "gid_map"].iter().map(|f| CString::new(format!("/proc/{me}/{f}")).unwrap_or_default()).collect();
    const IDENTITY: &[u8] = b"0 0 4294967295\n";
    let mut go = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    check("a pipe for the user namespace's helper", unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: both were just made and are owned here alone.
    let (go_r, go_w) = unsafe { (OwnedFd::from_raw_fd(go[0]), OwnedFd::from_raw_fd(go[1])) };
    // A plain fork by the system call (no fork handlers run): the process has one
    // thread, and the child only reads, writes two files and exits, with memory made
    // before the fork.
    // SAFETY: as above; the child never returns from the block below.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: close, read, open, write and _exit on memory made before the fork.
        unsafe {
            // Its copy of the write end closed: if no namespace is made, the read
            // sees the end of the pipe.
            libc::close(go_w.as_raw_fd());
            let mut b = 0u8;
            if libc::read(go_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(1);
            }
            for m in &maps {
                let fd = libc::open(m.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, IDENTITY.as_ptr().cast(), IDENTITY.len()) != IDENTITY.len() as isize {
                    libc::_exit(2);
                }
                libc::close(fd);
            }
            libc::_exit(0);
        }
    }
    check("forking the user namespace's helper", pid)?;
    drop(go_r);
    // SAFETY: a new user namespace for this single-threaded process.
    let made = unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0;
    if made {
        // SAFETY: writes one byte from a local.
        unsafe { libc::write(go_w.as_raw_fd(), b"g".as_ptr().cast(), 1) };
    }
    drop(go_w);
    let mut status = 0;
    // SAFETY: waits for the helper just forked; writes one int.
    while unsafe { libc::waitpid(pid as i32, &mut status, 0) } < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {}
    if !made {
        return Ok(None);
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        // Inside a namespace with no ids mapped: nothing may run like that.
        return Err(ConfineError::Os { what: "mapping the ids of the sandbox's user namespace", source: std::io::Error::from_raw_os_error(libc::EPERM) });
    }
    for (q, &o) in NS_QUOTAS.iter().zip(&outer) {
        if o > 0 {
            std::fs::write(format!("/proc/sys/user/{q}"), (o / QUOTA_SHARE).max(1).to_string()).map_err(os("capping a per-user quota in the sandbox's user namespace"))?;
        }
    }
    Ok(Some((outer[0] / QUOTA_SHARE).max(1)))
}

// ---- the mount namespace -------------------------------------------------------------

/// A mount namespace of the process's own in which every mount is `nodev` and
/// `nosuid`, but for bind mounts of the device nodes (and device trees) the policy
/// names: a device no rule names cannot be opened, whatever the monitor says, and no
/// set-id file runs with privileges.
fn mount_namespace(policy: &Policy) -> std::io::Result<()> {
    // SAFETY: unshare and mount with valid strings; changes only this process's view.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let none = CString::new("none").unwrap_or_default();
        let root = CString::new("/").unwrap_or_default();
        if libc::mount(none.as_ptr(), root.as_ptr(), core::ptr::null(), libc::MS_REC | libc::MS_SLAVE, core::ptr::null()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // The device nodes rules name: each its own bind mount, which keeps device access.
    let mut keep = Vec::new();
    for (path, _, _, _) in policy.paths().roots() {
        let b = path.as_os_str().as_encoded_bytes();
        if b == b"/dev" || b.starts_with(b"/dev/") {
            if let Ok(c) = CString::new(b) {
                // SAFETY: a bind mount of the path onto itself.
                if unsafe { libc::mount(c.as_ptr(), c.as_ptr(), core::ptr::null(), libc::MS_BIND | libc::MS_REC, core::ptr::null()) } == 0 {
                    keep.push(b.to_vec());
                }
            }
        }
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (Some(mp), Some(opts)) = (f.get(4), f.get(5)) else { continue };
        let mp = unescape(mp);
        let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID;
        if !keep.contains(&mp) {
            flags |= libc::MS_NODEV;
        }
        for o in opts.split(',') {
            flags |= match o {
                "ro" => libc::MS_RDONLY,
                "noexec" => libc::MS_NOEXEC,
                "nodev" => libc::MS_NODEV,
                "noatime" => libc::MS_NOATIME,
                "nodiratime" => libc::MS_NODIRATIME,
                "relatime" => libc::MS_RELATIME,
                _ => 0,
            };
        }
        let Ok(c) = CString::new(mp) else { continue };
        // SAFETY: a remount of an existing mount point with flags that only add
        // restrictions (a failure leaves that mount as it was).
        unsafe { libc::mount(core::ptr::null(), c.as_ptr(), core::ptr::null(), flags, core::ptr::null()) };
    }
    Ok(())
}

/// A mount point as `/proc/self/mountinfo` writes it (`\040` for a space…).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

// ---- seccomp -------------------------------------------------------------------------

pub mod seccomp {
    //! The process-wide seccomp filter: calls and arguments no call of the program
    //! may ever reach, refused by the kernel whatever the monitor decides. It stays
    //! small and allows everything else: the monitor and libdune need the rest
    //! (KVM's ioctls, memory calls, `process_vm_readv` on the process itself).

    /// `struct sock_filter`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct Insn {
        pub code: u16,
        pub jt: u8,
        pub jf: u8,
        pub k: u32,
    }

    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JSET_K: u16 = 0x45;
    const ALU_AND_K: u16 = 0x54;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const OFF_NR: u32 = 0;
    const OFF_ARCH: u32 = 4;

    fn arg(i: u32) -> u32 {
        16 + 8 * i
    }

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    fn errno(e: i32) -> u32 {
        RET_ERRNO | (e as u32 & 0xffff)
    }

    /// A check for one call: `nr`, then conditions on its arguments, each one a
    /// `(argument, mask, value, test)`: the call is refused with `err` when every
    /// condition holds.
    #[derive(Clone, Debug)]
    pub struct Rule {
        pub nr: i64,
        pub conds: Vec<Cond>,
        pub err: i32,
    }

    /// A condition on the low 32 bits of an argument.
    #[derive(Clone, Copy, Debug)]
    pub enum Cond {
        /// `(arg & mask) == value`.
        Eq(u32, u32, u32),
        /// `(arg & mask) != value`.
        Ne(u32, u32, u32),
        /// `arg & mask` has any bit set.
        Any(u32, u32),
    }

    /// The rules (see the module documentation).
    pub fn rules() -> Vec<Rule> {
        use libc::*;
        let eperm = EPERM;
        let mut v: Vec<Rule> = [
            SYS_ptrace, SYS_kexec_load, SYS_kexec_file_load, SYS_bpf, SYS_perf_event_open, SYS_userfaultfd, SYS_io_uring_setup,
            SYS_io_uring_enter, SYS_io_uring_register, SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_mount, SYS_umount2,
            SYS_pivot_root, SYS_chroot, SYS_swapon, SYS_swapoff, SYS_reboot, SYS_acct, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime,
            SYS_adjtimex, SYS_sethostname, SYS_setdomainname, SYS_iopl, SYS_ioperm, SYS_modify_ldt, SYS_add_key, SYS_keyctl, SYS_request_key,
            SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_lookup_dcookie, SYS_quotactl, SYS_fanotify_init, SYS_setns, SYS_unshare,
            SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_move_mount, SYS_open_tree, SYS_mount_setattr, SYS_pidfd_getfd, SYS_kcmp,
            SYS_vhangup, SYS_uselib, SYS_ustat, SYS_sysfs, SYS_process_madvise, SYS_syslog, SYS_migrate_pages, SYS_move_pages,
            443 /* quotactl_fd */, 448, /* process_mrelease */
        ]
        .iter()
        .map(|&nr| Rule { nr, conds: vec![], err: eperm })
        .collect();
        // clone3's flags are in memory: refused, so that C libraries fall back to
        // clone, whose namespace flags are refused below.
        v.push(Rule { nr: SYS_clone3, conds: vec![], err: ENOSYS });
        let ns = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | 0x80 /* CLONE_NEWTIME */) as u32;
        v.push(Rule { nr: SYS_clone, conds: vec![Cond::Any(0, ns)], err: eperm });
        // Sockets: unix, inet and inet6 only; stream, datagram and sequenced packets.
        v.push(Rule { nr: SYS_socket, conds: vec![Cond::Ne(0, u32::MAX, AF_UNIX as u32), Cond::Ne(0, u32::MAX, AF_INET as u32), Cond::Ne(0, u32::MAX, AF_INET6 as u32)], err: EAFNOSUPPORT });
        v.push(Rule { nr: SYS_socket, conds: vec![Cond::Ne(1, 0xf, SOCK_STREAM as u32), Cond::Ne(1, 0xf, SOCK_DGRAM as u32), Cond::Ne(1, 0xf, SOCK_SEQPACKET as u32)], err: EPERM });
        v.push(Rule { nr: SYS_socketpair, conds: vec![Cond::Ne(0, u32::MAX, AF_UNIX as u32)], err: EAFNOSUPPORT });
        // Socket filters (classic BPF needs no privilege) and TCP_ZEROCOPY_RECEIVE.
        for name in [SO_ATTACH_FILTER, SO_ATTACH_BPF, 51, 52] {
            v.push(Rule { nr: SYS_setsockopt, conds: vec![Cond::Eq(1, u32::MAX, SOL_SOCKET as u32), Cond::Eq(2, u32::MAX, name as u32)], err: eperm });
        }
        v.push(Rule { nr: SYS_getsockopt, conds: vec![Cond::Eq(1, u32::MAX, IPPROTO_TCP as u32), Cond::Eq(2, u32::MAX, 35)], err: eperm });
        // Source routes and next hops: packets to addresses no rule names (as control
        // messages too, which only the monitor sees).
        for (level, name) in [(IPPROTO_IP, IP_OPTIONS), (IPPROTO_IPV6, 57 /* IPV6_RTHDR */), (IPPROTO_IPV6, 5 /* IPV6_2292RTHDR */), (IPPROTO_IPV6, 9 /* IPV6_NEXTHOP */)] {
            v.push(Rule { nr: SYS_setsockopt, conds: vec![Cond::Eq(1, u32::MAX, level as u32), Cond::Eq(2, u32::MAX, name as u32)], err: eperm });
        }
        // A descriptor table of a thread's own: the monitor's descriptors and checks
        // assume one table.
        v.push(Rule { nr: SYS_close_range, conds: vec![Cond::Any(2, 2 /* CLOSE_RANGE_UNSHARE */)], err: EINVAL });
        // Terminal input injection and console redirection.
        for req in [0x5412u32 /* TIOCSTI */, 0x541c /* TIOCLINUX */, 0x541d /* TIOCCONS */, 0x5423 /* TIOCSETD */] {
            v.push(Rule { nr: SYS_ioctl, conds: vec![Cond::Eq(1, u32::MAX, req)], err: eperm });
        }
        // madvise advice on the machine's pages, page sharing, and dropping memory at
        // fork (the monitor keeps fork advice itself).
        for adv in [MADV_HWPOISON, 101 /* MADV_SOFT_OFFLINE */, MADV_MERGEABLE, MADV_DONTFORK, MADV_WIPEONFORK] {
            v.push(Rule { nr: SYS_madvise, conds: vec![Cond::Eq(2, u32::MAX, adv as u32)], err: eperm });
        }
        // Making the process dumpable again; rewriting its memory map's metadata.
        v.push(Rule { nr: SYS_prctl, conds: vec![Cond::Eq(0, u32::MAX, PR_SET_DUMPABLE as u32), Cond::Ne(1, u32::MAX, 0)], err: eperm });
        v.push(Rule { nr: SYS_prctl, conds: vec![Cond::Eq(0, u32::MAX, PR_SET_MM as u32)], err: eperm });
        v.push(Rule { nr: SYS_prctl, conds: vec![Cond::Eq(0, u32::MAX, PR_SET_PTRACER as u32)], err: eperm });
        // Set-id mode bits, wherever a mode is passed.
        let setid = S_ISUID | S_ISGID;
        for (nr, i) in [(SYS_chmod, 1), (SYS_fchmod, 1), (SYS_fchmodat, 2), (452 /* fchmodat2 */, 2), (SYS_open, 2), (SYS_openat, 3), (SYS_creat, 1), (SYS_mknod, 1), (SYS_mknodat, 2)] {
            v.push(Rule { nr, conds: vec![Cond::Any(i, setid)], err: eperm });
        }
        for (nr, i) in [(SYS_mkdir, 1), (SYS_mkdirat, 2)] {
            v.push(Rule { nr, conds: vec![Cond::Any(i, S_ISUID)], err: eperm });
        }
        // Whiteouts: a character device made without privilege.
        v.push(Rule { nr: SYS_renameat2, conds: vec![Cond::Any(4, RENAME_WHITEOUT)], err: eperm });
        // Personalities other than Linux's (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE...).
        v.push(Rule { nr: SYS_personality, conds: vec![Cond::Ne(0, u32::MAX, 0), Cond::Ne(0, u32::MAX, u32::MAX)], err: eperm });
        v
    }

    /// Compiles `rules` into a filter: the architecture must be x86-64 (else the
    /// process is killed), x32 numbers are refused, a matching rule returns its
    /// errno, everything else is allowed.
    pub fn compile(rules: &[Rule]) -> Vec<Insn> {
        let mut p = vec![
            insn(LD_W_ABS, 0, 0, OFF_ARCH),
            insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            insn(RET_K, 0, 0, RET_KILL_PROCESS),
            insn(LD_W_ABS, 0, 0, OFF_NR),
            insn(JGE_K, 0, 1, 0x4000_0000),
            insn(RET_K, 0, 0, errno(libc::ENOSYS)),
        ];
        for r in rules {
            // Each rule: load nr, compare; then each condition; on any mismatch jump
            // to the next rule (past this rule's return). Lengths are small.
            let mut body: Vec<Insn> = Vec::new();
            for c in &r.conds {
                match *c {
                    Cond::Eq(i, mask, val) | Cond::Ne(i, mask, val) => {
                        body.push(insn(LD_W_ABS, 0, 0, arg(i)));
                        if mask != u32::MAX {
                            body.push(insn(ALU_AND_K, 0, 0, mask));
                        }
                        // Placeholder jumps, fixed below: (holds → next insn).
                        let eq = matches!(c, Cond::Eq(..));
                        body.push(insn(JEQ_K, if eq { 0 } else { 0xff }, if eq { 0xff } else { 0 }, val));
                    }
                    Cond::Any(i, mask) => {
                        body.push(insn(LD_W_ABS, 0, 0, arg(i)));
                        body.push(insn(JSET_K, 0, 0xff, mask));
                    }
                }
            }
            body.push(insn(RET_K, 0, 0, errno(r.err)));
            // The nr check reloads nr (conditions overwrote the accumulator).
            let mut all = vec![insn(LD_W_ABS, 0, 0, OFF_NR), insn(JEQ_K, 0, 0xff, r.nr as u32)];
            all.extend(body);
            let end = all.len();
            for (k, ins) in all.iter_mut().enumerate() {
                let skip = (end - k - 1) as u8;
                if ins.jt == 0xff {
                    ins.jt = skip;
                }
                if ins.jf == 0xff {
                    ins.jf = skip;
                }
            }
            p.extend(all);
        }
        p.push(insn(RET_K, 0, 0, RET_ALLOW));
        p
    }

    /// Installs the filter on every thread of the process. False if the kernel has
    /// no seccomp filters.
    pub fn install() -> std::io::Result<bool> {
        let prog = compile(&rules());
        #[repr(C)]
        struct Fprog {
            len: u16,
            filter: *const Insn,
        }
        let f = Fprog { len: prog.len() as u16, filter: prog.as_ptr() };
        // SAFETY: SECCOMP_SET_MODE_FILTER (1) with SECCOMP_FILTER_FLAG_TSYNC (1) reads
        // the program, which lives for the call; no_new_privs is already set.
        let r = unsafe { libc::syscall(libc::SYS_seccomp, 1u32, 1u32, &f as *const Fprog) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) && !available() {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(true)
    }

    fn available() -> bool {
        std::path::Path::new("/proc/sys/kernel/seccomp").exists()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Runs the filter on a call the way the kernel does (a small BPF interpreter).
        fn run(prog: &[Insn], nr: i64, args: [u64; 6]) -> u32 {
            let mut data = [0u8; 64];
            data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
            data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
            for (i, a) in args.iter().enumerate() {
                data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
            }
            let (mut pc, mut acc) = (0usize, 0u32);
            loop {
                let i = prog[pc];
                match i.code {
                    LD_W_ABS => acc = u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                    ALU_AND_K => acc &= i.k,
                    JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
                    JGE_K => pc += if acc >= i.k { i.jt } else { i.jf } as usize,
                    JSET_K => pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize,
                    RET_K => return i.k,
                    c => panic!("opcode {c:#x}"),
                }
                pc += 1;
            }
        }

        #[test]
        fn the_filter_refuses_what_it_lists_and_allows_the_rest() {
            let p = compile(&rules());
            let e = |x| errno(x);
            assert_eq!(run(&p, libc::SYS_ptrace, [0; 6]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_getpid, [0; 6]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_ioctl, [3, 0xae80, 0, 0, 0, 0]), RET_ALLOW, "KVM_RUN");
            assert_eq!(run(&p, libc::SYS_ioctl, [0, 0x5412, 0, 0, 0, 0]), e(libc::EPERM), "TIOCSTI");
            assert_eq!(run(&p, libc::SYS_socket, [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_socket, [libc::AF_INET as u64, 10 /* SOCK_PACKET */, 0, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_socket, [libc::AF_INET as u64, libc::SOCK_RAW as u64, 1, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_socket, [libc::AF_PACKET as u64, libc::SOCK_DGRAM as u64, 0, 0, 0, 0]), e(libc::EAFNOSUPPORT));
            assert_eq!(run(&p, libc::SYS_socket, [libc::AF_INET6 as u64, (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as u64, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_madvise, [0, 4096, 101, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_madvise, [0, 4096, libc::MADV_DONTNEED as u64, 0, 0, 0]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_openat, [0, 0, 0o101, 0o4755, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_openat, [0, 0, 0o101, 0o644, 0, 0]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_mkdir, [0, 0o2755, 0, 0, 0, 0]), RET_ALLOW, "a set-group-ID directory");
            assert_eq!(run(&p, libc::SYS_chmod, [0, 0o2755, 0, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_prctl, [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_prctl, [libc::PR_SET_DUMPABLE as u64, 0, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_clone, [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_clone, [0x3d0f00, 0, 0, 0, 0, 0]), RET_ALLOW, "pthread_create's flags");
            assert_eq!(run(&p, libc::SYS_clone3, [0; 6]), e(libc::ENOSYS));
            assert_eq!(run(&p, 0x4000_0000 | libc::SYS_getpid, [0; 6]), e(libc::ENOSYS), "x32");
            assert_eq!(run(&p, libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]), e(libc::EPERM));
            assert_eq!(run(&p, libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(run(&p, libc::SYS_setsockopt, [3, libc::IPPROTO_IP as u64, libc::IP_OPTIONS as u64, 0, 0, 0]), e(libc::EPERM), "IP_OPTIONS");
            assert_eq!(run(&p, libc::SYS_setsockopt, [3, libc::IPPROTO_IPV6 as u64, 57, 0, 0, 0]), e(libc::EPERM), "IPV6_RTHDR");
            assert_eq!(run(&p, libc::SYS_setsockopt, [3, libc::IPPROTO_IP as u64, libc::IP_TOS as u64, 0, 0, 0]), RET_ALLOW, "IP_TOS");
            assert_eq!(run(&p, libc::SYS_close_range, [3, !0u32 as u64, 2, 0, 0, 0]), e(libc::EINVAL), "CLOSE_RANGE_UNSHARE");
            assert_eq!(run(&p, libc::SYS_close_range, [3, !0u32 as u64, 4, 0, 0, 0]), RET_ALLOW, "CLOSE_RANGE_CLOEXEC");
        }
    }
}
