//! The sandbox's policy: which system calls the program may make, which files it may
//! read or write, which addresses it may bind or reach, and its resource limits.
//!
//! Pure Rust, no KVM: the ring-0 monitor asks [`Policy::decide`] for every system call
//! (an array index plus argument checks), then, for calls that name a path or an
//! address, [`Policy::paths`] / [`Policy::check_sockaddr`], and enforces
//! [`Policy::limits`].
//!
//! # Sources of a policy
//!
//! - [`Policy::builtin`]: the default, described below.
//! - [`Policy::from_json`] / [`Policy::load`]: an OCI runtime-spec seccomp profile (the
//!   format of Docker, podman and Kubernetes; Docker's `default.json` loads unchanged),
//!   with systemd-style `@group` names allowed in `names`, and an optional `"dune"`
//!   section for what seccomp cannot express:
//!
//!   ```json
//!   "dune": {
//!     "readOnly": ["/srv/data"], "readWrite": ["/tmp/work"],
//!     "net": ["127.0.0.1:8080", "[::1]:80"], "bind": ["0.0.0.0/0:8000"],
//!     "connect": ["10.0.0.0/8"], "limits": {"threads": 64, "memory": 1073741824}
//!   }
//!   ```
//!
//!   `net` rules allow both `bind` and `connect`/send; `bind` and `connect` allow one
//!   direction (see [`net`] for the syntax). A profile's file trees are the built-in
//!   runtime trees (below) plus its `readOnly`/`readWrite`.
//! - Builder methods for the command line: [`Policy::allow_read`] (`--allow-read`),
//!   [`Policy::allow_write`] (`--allow-write`), [`Policy::allow_net`] (`--allow-net`).
//!
//! # Profile semantics
//!
//! Only rules for x86-64 apply (`includes.arches` must name `amd64`/`x86_64` when
//! present, `excludes.arches` must not). The program has no capabilities: a rule with a
//! non-empty `includes.caps` never applies, one with a non-empty `excludes.caps` always
//! does. `minKernel` is compared with the running kernel. Names unknown on x86-64 are
//! ignored (as runc does); unknown `@groups` are errors. When several rules match a call,
//! the most restrictive action wins (`KILL_PROCESS > KILL_THREAD > TRAP > ERRNO >
//! TRACE/NOTIFY > LOG > ALLOW`; among equals, an unconditional rule, else the first in the
//! file); no match gives `defaultAction`. `SCMP_ACT_TRACE` and `SCMP_ACT_NOTIFY` become
//! `ERRNO(ENOSYS)`: the sandbox has no tracer or listener. `SCMP_ACT_ERRNO` without
//! `errnoRet` is `EPERM` (`defaultErrnoRet` for the default action). x32-ABI numbers are
//! `ENOSYS`; other numbers outside the table get the default action.
//!
//! # The hard floor
//!
//! Whatever a profile says, these calls are `ERRNO(EPERM)`: they would act on the real
//! host process that hosts the monitor or on other processes, or bypass per-call
//! interception: `ptrace`, `process_vm_readv/writev`, `pidfd_getfd`, `io_uring_*` (its
//! queued operations are never seen as calls), `modify_ldt`, `iopl`, `ioperm`,
//! `kexec_load`, `kexec_file_load`, `init_module`, `finit_module`, `delete_module`, `bpf`,
//! `perf_event_open`, `userfaultfd`, the mount family (`mount`, `umount2`, `pivot_root`,
//! `chroot`, `fsopen`, `fsconfig`, `fsmount`, `fspick`, `move_mount`, `open_tree`,
//! `mount_setattr`), `unshare`, `setns`, the keyring (`add_key`, `keyctl`, `request_key`),
//! and `seccomp`/`landlock_*` (they would confine the monitor too).
//!
//! # The built-in policy
//!
//! Default action `ERRNO(ENOSYS)` (so C libraries fall back from calls they probe, such
//! as `clone3`). Allowed: systemd's `@system-service` group, plus `close_range`,
//! `epoll_pwait2`, `futex_waitv`, `futex_wake`/`wait`/`requeue`, `cachestat`, `fchmodat2`,
//! `memfd_create`, `statx`, `getrandom`, minus the following, which are `ERRNO(EPERM)`:
//! `@keyring`, `@setuid`, `capset`, `setfsuid`, `setfsgid`, `kcmp`, `migrate_pages`,
//! `move_pages`, `name_to_handle_at`, the `@aio` `io_uring_*` calls and the hard floor.
//! With arguments: `clone` with any namespace flag (`CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
//! NEWUSER|NEWPID|NEWNET`) is `EPERM`; `clone3` is allowed here because the monitor
//! copies its arguments in and applies the same flag checks as for `clone`; `personality` other than `0` (`PER_LINUX`) and
//! `0xffffffff` (query) is `EPERM`; `socket` other than `AF_UNIX`, `AF_INET`, `AF_INET6` is
//! `EAFNOSUPPORT`; `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)` are `EPERM` (low 32 bits of the
//! request compared, as the kernel does).
//!
//! Files: read-only `/usr`, `/lib`, `/lib64`, `/lib32`, `/bin`, `/sbin`, `/etc/ld.so.cache`,
//! `/etc/ld.so.conf`, `/etc/ld.so.conf.d`, `/etc/localtime`, `/etc/nsswitch.conf`,
//! `/etc/passwd`, `/etc/group`, `/etc/hosts`, `/etc/resolv.conf`, `/etc/host.conf`,
//! `/etc/gai.conf`, `/etc/services`, `/etc/protocols`, `/etc/os-release`, `/dev/zero`,
//! `/dev/urandom`, `/dev/random`, `/dev/full`, `/proc/self` (its dangerous entries are
//! never reachable, see [`paths`]), `/proc/meminfo`, `/proc/cpuinfo`, `/proc/stat`,
//! `/sys/devices/system/cpu` (CPU counts for thread pools); read-write `/dev/null` and
//! `/dev/tty`. Those missing on the machine are skipped. No network; no limits.
//!
//! What the monitor must still do: confine `kill`/`tgkill`/`tkill`/`pidfd_open`/
//! `sched_set*`/`setpriority`/`prlimit64` to the sandbox's own processes, apply the path
//! rules to every call taking a path, and the network rules to `bind`, `connect`,
//! `sendto`/`sendmsg`/`sendmmsg`.

pub mod groups;
pub mod net;
pub mod oci;
pub mod paths;
pub mod syscalls;

use std::fmt;
use std::path::Path;

use net::{NetOp, NetPolicy, NetRule, NetVerdict};
use oci::{CmpOp, KernelVersion, SeccompAction};
pub use paths::{Access, Errno, OpenPlan, Paths, ResolvedPath};

/// What the monitor does with one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Perform it.
    Allow,
    /// Perform it and write an audit line.
    Log,
    /// Return `-errno` without performing it.
    Errno(u16),
    /// Deliver `SIGSYS` to the calling thread.
    Trap,
    /// Kill the calling thread.
    KillThread,
    /// Kill the whole program.
    KillProcess,
}

/// Why loading or building a policy failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A profile is not valid JSON, has an unknown key, or a bad value.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// File name (as given).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A profile file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// File name.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// A tree could not be added (`--allow-read`/`--allow-write`).
    #[error("{path}: {source}")]
    Tree {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A network rule is malformed (`--allow-net`).
    #[error(transparent)]
    Net(#[from] net::NetRuleError),
}

/// Resource limits, for the whole sandbox (all its processes together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most threads alive at once, if limited.
    pub threads: Option<u32>,
    /// Most processes alive at once, if limited.
    pub processes: Option<u32>,
    /// Most bytes of memory mapped accessible at once, if limited.
    pub memory: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct ArgCond {
    index: u8,
    op: CmpOp,
    value: u64,
    value_two: u64,
}

impl ArgCond {
    #[inline]
    fn holds(&self, args: &[u64; 6]) -> bool {
        let a = args[usize::from(self.index) % 6];
        match self.op {
            CmpOp::Ne => a != self.value,
            CmpOp::Lt => a < self.value,
            CmpOp::Le => a <= self.value,
            CmpOp::Eq => a == self.value,
            CmpOp::Ge => a >= self.value,
            CmpOp::Gt => a > self.value,
            CmpOp::MaskedEq => a & self.value == self.value_two,
        }
    }
}

/// A verdict with its restrictiveness and the index of its reason in `Policy::labels`.
#[derive(Debug, Clone, Copy)]
struct Hit {
    rank: u8,
    action: Action,
    label: u32,
}

#[derive(Debug)]
struct CondRule {
    hit: Hit,
    args: Box<[ArgCond]>,
}

#[derive(Debug, Default)]
struct Entry {
    base: Option<Hit>,
    conds: Box<[CondRule]>,
}

/// A rule ready to compile: from a profile entry or from the built-in policy.
struct Rule {
    nrs: Vec<u64>,
    action: SeccompAction,
    errno: u16,
    args: Vec<ArgCond>,
    label: String,
}

const FLOOR_RANK: u8 = u8::MAX;

const HARD_FLOOR: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "modify_ldt",
    "iopl",
    "ioperm",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "add_key",
    "keyctl",
    "request_key",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
];

fn rank(a: SeccompAction) -> u8 {
    a as u8
}

fn to_action(a: SeccompAction, errno: u16) -> Action {
    match a {
        SeccompAction::Allow => Action::Allow,
        SeccompAction::Log => Action::Log,
        SeccompAction::Trace | SeccompAction::Notify => Action::Errno(libc::ENOSYS as u16),
        SeccompAction::Errno => Action::Errno(errno),
        SeccompAction::Trap => Action::Trap,
        SeccompAction::KillThread => Action::KillThread,
        SeccompAction::KillProcess => Action::KillProcess,
    }
}

/// A complete policy. Build it once; [`Policy::decide`] is cheap.
#[derive(Debug)]
pub struct Policy {
    table: Box<[Entry]>,
    default: Hit,
    labels: Vec<String>,
    paths: Paths,
    net: NetPolicy,
    limits: Limits,
    tty: bool,
}

const X32_LABEL: u32 = 0;
const FLOOR_LABEL: u32 = 1;
const DEFAULT_LABEL: u32 = 2;

impl Policy {
    fn compile(default: SeccompAction, default_errno: u16, rules: Vec<Rule>) -> Policy {
        let mut labels = vec![
            "denied: x32 ABI not supported".to_owned(),
            "denied by the sandbox's hard floor".to_owned(),
            "by defaultAction".to_owned(),
        ];
        let mut table: Vec<Entry> = (0..syscalls::NR_LIMIT).map(|_| Entry::default()).collect();
        let mut conds: Vec<Vec<CondRule>> = (0..syscalls::NR_LIMIT).map(|_| Vec::new()).collect();
        for r in rules {
            let label = labels.len() as u32;
            labels.push(r.label);
            let hit = Hit {
                rank: rank(r.action),
                action: to_action(r.action, r.errno),
                label,
            };
            for &nr in &r.nrs {
                let Some(e) = table.get_mut(nr as usize) else {
                    continue;
                };
                if r.args.is_empty() {
                    if e.base.is_none_or(|b| hit.rank > b.rank) {
                        e.base = Some(hit);
                    }
                } else {
                    conds[nr as usize].push(CondRule {
                        hit,
                        args: r.args.clone().into_boxed_slice(),
                    });
                }
            }
        }
        for (e, mut c) in table.iter_mut().zip(conds) {
            // A conditional rule no more restrictive than an unconditional match never
            // changes the verdict.
            if let Some(b) = e.base {
                c.retain(|cr| cr.hit.rank > b.rank);
            }
            e.conds = c.into_boxed_slice();
        }
        let floor = Hit {
            rank: FLOOR_RANK,
            action: Action::Errno(libc::EPERM as u16),
            label: FLOOR_LABEL,
        };
        for name in HARD_FLOOR {
            if let Some(nr) = syscalls::number(name) {
                table[nr as usize] = Entry {
                    base: Some(floor),
                    conds: Box::new([]),
                };
            }
        }
        Policy {
            table: table.into_boxed_slice(),
            default: Hit {
                rank: 0,
                action: to_action(default, default_errno),
                label: DEFAULT_LABEL,
            },
            labels,
            paths: Paths::default(),
            net: NetPolicy::default(),
            limits: Limits::default(),
            tty: false,
        }
    }

    #[inline]
    fn hit(&self, nr: u64, args: &[u64; 6]) -> Hit {
        if nr & syscalls::X32_SYSCALL_BIT != 0 {
            return Hit {
                rank: FLOOR_RANK,
                action: Action::Errno(libc::ENOSYS as u16),
                label: X32_LABEL,
            };
        }
        let Some(e) = usize::try_from(nr).ok().and_then(|i| self.table.get(i)) else {
            return self.default;
        };
        let mut best = e.base;
        for c in e.conds.iter() {
            if best.is_none_or(|b| c.hit.rank > b.rank) && c.args.iter().all(|a| a.holds(args)) {
                best = Some(c.hit);
            }
        }
        best.unwrap_or(self.default)
    }

    /// The action for system call `nr` with arguments `args`.
    #[inline]
    pub fn decide(&self, nr: u64, args: &[u64; 6]) -> Action {
        self.hit(nr, args).action
    }

    /// The action and why, for the audit line: `"by defaultAction"`, `"by rule 12
    /// (comment)"`, `"by builtin rule: ..."`, `"denied by the sandbox's hard floor"`.
    pub fn explain(&self, nr: u64, args: &[u64; 6]) -> (Action, &str) {
        let h = self.hit(nr, args);
        (h.action, &self.labels[h.label as usize])
    }

    /// The file trees, to change (the monitor moves their descriptors).
    pub fn paths_mut(&mut self) -> &mut Paths {
        &mut self.paths
    }

    /// The file rules.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The network rules.
    pub fn net(&self) -> &NetPolicy {
        &self.net
    }

    /// The resource limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sets the limits.
    pub fn set_limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// Whether the program may change the terminal the sandbox runs in (`--allow-tty`,
    /// `"tty": true`): its modes, window size and foreground process group.
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// Lets the program change the terminal the sandbox runs in (`--allow-tty`).
    pub fn allow_tty(&mut self) -> &mut Self {
        self.tty = true;
        self
    }

    /// Allows reading tree `path` (`--allow-read PATH`).
    pub fn allow_read(&mut self, path: impl AsRef<Path>) -> Result<&mut Self, PolicyError> {
        self.add_tree(path.as_ref(), false)
    }

    /// Allows reading and writing tree `path` (`--allow-write PATH`).
    pub fn allow_write(&mut self, path: impl AsRef<Path>) -> Result<&mut Self, PolicyError> {
        self.add_tree(path.as_ref(), true)
    }

    fn add_tree(&mut self, path: &Path, writable: bool) -> Result<&mut Self, PolicyError> {
        self.paths
            .add(path, writable)
            .map_err(|source| PolicyError::Tree {
                path: path.display().to_string(),
                source,
            })?;
        Ok(self)
    }

    /// Allows binding and connecting/sending to `spec` (`--allow-net ADDR[/PREFIX][:PORT]`).
    pub fn allow_net(&mut self, spec: &str) -> Result<&mut Self, PolicyError> {
        let rule: NetRule = spec.parse()?;
        self.net.allow_bind(rule.clone());
        self.net.allow_connect(rule);
        Ok(self)
    }

    /// Decides `op` on raw socket address `sa`, resolving an `AF_UNIX` path against
    /// `base` through the path rules. `Ok(None)`: allowed as is. `Ok(Some(r))`: an allowed
    /// socket path; the monitor should reach it through `r` (e.g. as
    /// `/proc/self/fd/<parent>/<name>`), not by the program's path, to stay race-free.
    pub fn check_sockaddr(
        &self,
        op: NetOp,
        sa: &[u8],
        base: &Path,
    ) -> Result<Option<ResolvedPath>, Errno> {
        match self.net.check(op, sa)? {
            NetVerdict::Allow => Ok(None),
            NetVerdict::UnixPath {
                path,
                access,
                follow,
            } => self.paths.check(base, &path, follow, access).map(Some),
        }
    }

    /// Loads a profile from file `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_json(&text, &file)
    }

    /// Parses profile `text` (named `file` in errors) for the running kernel.
    pub fn from_json(text: &str, file: &str) -> Result<Policy, PolicyError> {
        Self::from_json_for_kernel(text, file, running_kernel())
    }

    /// Parses profile `text` as if the kernel were `kernel` (`minKernel` checks); `None`
    /// (unknown) makes every `minKernel` rule inapplicable.
    pub fn from_json_for_kernel(
        text: &str,
        file: &str,
        kernel: Option<KernelVersion>,
    ) -> Result<Policy, PolicyError> {
        let profile = oci::parse(text, file)?;
        let located = |needle: &str, message: String| {
            let (line, column) = oci::locate(text, needle);
            PolicyError::Parse {
                file: file.to_owned(),
                line,
                column,
                message: oci::one_line(&message),
            }
        };
        if let Some(archs) = &profile.architectures {
            if !archs.is_empty()
                && !archs
                    .iter()
                    .any(|a| a.0 == "SCMP_ARCH_X86_64" || a.0 == "SCMP_ARCH_NATIVE")
            {
                return Err(located(
                    "\"architectures\"",
                    "architectures do not include SCMP_ARCH_X86_64".to_owned(),
                ));
            }
        }
        let mut rules = Vec::new();
        for (i, r) in profile.syscalls.unwrap_or_default().into_iter().enumerate() {
            if !applies(&r, kernel) {
                continue;
            }
            let mut nrs = Vec::new();
            for n in r.names.iter().flatten().chain(r.name.iter()) {
                if n.0.starts_with('@') {
                    nrs.extend(groups::expand(&n.0).unwrap_or_default());
                } else if let Some(nr) = syscalls::number(&n.0) {
                    nrs.push(nr);
                }
            }
            let args = r
                .args
                .iter()
                .flatten()
                .map(|a| ArgCond {
                    index: a.index,
                    op: a.op,
                    value: a.value,
                    value_two: a.value_two,
                })
                .collect();
            let label = match &r.comment {
                Some(c) if !c.is_empty() => format!("by rule {i} ({c})"),
                _ => format!("by rule {i}"),
            };
            rules.push(Rule {
                nrs,
                action: r.action,
                errno: r.errno_ret.unwrap_or(libc::EPERM as u16),
                args,
                label,
            });
        }
        let mut policy = Policy::compile(
            profile.default_action,
            profile.default_errno_ret.unwrap_or(libc::EPERM as u16),
            rules,
        );
        policy.add_runtime_trees();
        if let Some(d) = profile.dune {
            for (list, writable) in [(d.read_only, false), (d.read_write, true)] {
                for p in list.unwrap_or_default() {
                    policy.paths.add(Path::new(&p.0), writable).map_err(|e| {
                        located(
                            &serde_json::to_string(&p.0).unwrap_or_default(),
                            format!("{}: {e}", p.0),
                        )
                    })?;
                }
            }
            for r in d.net.unwrap_or_default() {
                policy.net.allow_bind(r.clone());
                policy.net.allow_connect(r);
            }
            for r in d.bind.unwrap_or_default() {
                policy.net.allow_bind(r);
            }
            for r in d.connect.unwrap_or_default() {
                policy.net.allow_connect(r);
            }
            if let Some(l) = d.limits {
                policy.limits = Limits {
                    threads: l.threads,
                    processes: l.processes,
                    memory: l.memory,
                };
            }
            policy.tty = d.tty.unwrap_or(false);
        }
        Ok(policy)
    }

    fn add_runtime_trees(&mut self) {
        for p in RUNTIME_READ {
            // Missing on this machine: nothing to allow.
            let _ = self.paths.add(Path::new(p), false);
        }
        for p in RUNTIME_WRITE {
            let _ = self.paths.add(Path::new(p), true);
        }
    }

    /// The built-in default policy (see the module documentation).
    pub fn builtin() -> Policy {
        let nrs = |names: &[&str]| -> Vec<u64> {
            names
                .iter()
                .flat_map(|n| {
                    if n.starts_with('@') {
                        groups::expand(n).unwrap_or_default()
                    } else {
                        syscalls::number(n).into_iter().collect()
                    }
                })
                .collect()
        };
        let eperm = libc::EPERM as u16;
        let cond = |index, op, value, value_two| ArgCond {
            index,
            op,
            value,
            value_two,
        };
        let mut rules = vec![Rule {
            nrs: nrs(&[
                "@system-service",
                "close_range",
                "epoll_pwait2",
                "futex_waitv",
                "futex_wake",
                "futex_wait",
                "futex_requeue",
                "cachestat",
                "fchmodat2",
                "memfd_create",
                "statx",
                "getrandom",
            ]),
            action: SeccompAction::Allow,
            errno: 0,
            args: Vec::new(),
            label: "by builtin rule: allowed calls".to_owned(),
        }];
        rules.push(Rule {
            nrs: nrs(&[
                "@keyring",
                "@setuid",
                "capset",
                "setfsuid",
                "setfsgid",
                "kcmp",
                "migrate_pages",
                "move_pages",
                "name_to_handle_at",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
            ]),
            action: SeccompAction::Errno,
            errno: eperm,
            args: Vec::new(),
            label: "by builtin rule: denied calls".to_owned(),
        });
        for flag in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ] {
            let f = flag as u64;
            rules.push(Rule {
                nrs: nrs(&["clone"]),
                action: SeccompAction::Errno,
                errno: eperm,
                args: vec![cond(0, CmpOp::MaskedEq, f, f)],
                label: "by builtin rule: clone with a namespace flag".to_owned(),
            });
        }
        rules.push(Rule {
            nrs: nrs(&["personality"]),
            action: SeccompAction::Errno,
            errno: eperm,
            args: vec![cond(0, CmpOp::Ne, 0, 0), cond(0, CmpOp::Ne, 0xffff_ffff, 0)],
            label: "by builtin rule: personality other than PER_LINUX or query".to_owned(),
        });
        rules.push(Rule {
            nrs: nrs(&["socket"]),
            action: SeccompAction::Errno,
            errno: libc::EAFNOSUPPORT as u16,
            args: vec![
                cond(0, CmpOp::Ne, libc::AF_UNIX as u64, 0),
                cond(0, CmpOp::Ne, libc::AF_INET as u64, 0),
                cond(0, CmpOp::Ne, libc::AF_INET6 as u64, 0),
            ],
            label: "by builtin rule: socket family other than unix, inet, inet6".to_owned(),
        });
        for req in [libc::TIOCSTI, 0x541C /* TIOCLINUX */] {
            rules.push(Rule {
                nrs: nrs(&["ioctl"]),
                action: SeccompAction::Errno,
                errno: eperm,
                args: vec![cond(1, CmpOp::MaskedEq, 0xffff_ffff, req)],
                label: "by builtin rule: terminal input injection".to_owned(),
            });
        }
        let mut p = Policy::compile(SeccompAction::Errno, libc::ENOSYS as u16, rules);
        p.add_runtime_trees();
        p
    }
}

/// Trees every policy may read: what running programs at all needs.
pub const RUNTIME_READ: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/os-release",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
    "/dev/full",
    "/proc/self",
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/stat",
    "/sys/devices/system/cpu",
];

/// Trees every policy may read and write.
pub const RUNTIME_WRITE: &[&str] = &["/dev/null", "/dev/tty"];

fn applies(r: &oci::SyscallRule, kernel: Option<KernelVersion>) -> bool {
    if let Some(inc) = &r.includes {
        if inc.caps.as_ref().is_some_and(|c| !c.is_empty()) {
            return false;
        }
        if let Some(a) = &inc.arches {
            if !a.is_empty() && !a.iter().any(|a| oci::is_our_arch(a)) {
                return false;
            }
        }
        if let Some(min) = inc.min_kernel {
            if kernel.is_none_or(|k| k < min) {
                return false;
            }
        }
    }
    if let Some(exc) = &r.excludes {
        // Excluded for holders of these capabilities: the program holds none.
        if let Some(a) = &exc.arches {
            if a.iter().any(|a| oci::is_our_arch(a)) {
                return false;
            }
        }
        if let Some(min) = exc.min_kernel {
            if kernel.is_some_and(|k| k >= min) {
                return false;
            }
        }
    }
    true
}

/// `MAJOR.MINOR` of the running kernel (`uname`).
pub fn running_kernel() -> Option<KernelVersion> {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: `u` points to writable memory the size of `struct utsname`, which uname fills.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: uname succeeded, so it initialised `u`.
    let u = unsafe { u.assume_init() };
    // SAFETY: the kernel NUL-terminates `release` within the array.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    KernelVersion::parse(&release.to_string_lossy())
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Log => f.write_str("log"),
            Action::Errno(e) => write!(f, "errno {e}"),
            Action::Trap => f.write_str("trap"),
            Action::KillThread => f.write_str("kill thread"),
            Action::KillProcess => f.write_str("kill process"),
        }
    }
}

#[cfg(test)]
mod tests;
