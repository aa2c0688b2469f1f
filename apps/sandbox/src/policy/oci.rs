//! The OCI runtime-spec seccomp profile (`linux.seccomp` of `config.json`, and the files
//! Docker, podman and Kubernetes take), plus this sandbox's `"dune"` extension section.
//!
//! Every struct denies unknown fields, and every value that can be wrong (action and
//! operator names, argument index, group names, kernel versions, architecture names,
//! flags, paths, network rules) is checked while deserialising, so that serde_json reports
//! the line and column of the offending token; [`parse`] turns that into
//! [`PolicyError::Parse`] whose `Display` is `FILE:LINE:COL: message`.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::groups;
use super::net::NetRule;
use super::PolicyError;

/// A seccomp action name (`SCMP_ACT_*`). The variant order is the restrictiveness order
/// used when several rules match one call (later = more restrictive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum SeccompAction {
    /// `SCMP_ACT_ALLOW`.
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// `SCMP_ACT_LOG`: allowed, and the monitor writes an audit line.
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// `SCMP_ACT_TRACE`: no tracer exists in the sandbox, so `ERRNO(ENOSYS)`.
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    /// `SCMP_ACT_NOTIFY`: no listener exists in the sandbox, so `ERRNO(ENOSYS)`.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
    /// `SCMP_ACT_ERRNO`.
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    /// `SCMP_ACT_TRAP`: `SIGSYS` to the calling thread.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    /// `SCMP_ACT_KILL_THREAD` (`SCMP_ACT_KILL` is its old name).
    #[serde(rename = "SCMP_ACT_KILL_THREAD", alias = "SCMP_ACT_KILL")]
    KillThread,
    /// `SCMP_ACT_KILL_PROCESS`.
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
}

/// An argument comparison operator (`SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CmpOp {
    /// `arg != value`.
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    /// `arg < value`.
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    /// `arg <= value`.
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    /// `arg == value`.
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    /// `arg >= value`.
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    /// `arg > value`.
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    /// `arg & value == valueTwo`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

/// A seccomp filter flag (`SECCOMP_FILTER_FLAG_*`). Accepted for compatibility; none
/// changes a verdict here (`LOG` would log every non-allowed call: the monitor logs those
/// anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(clippy::enum_variant_names)]
pub enum Flag {
    /// `SECCOMP_FILTER_FLAG_TSYNC`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    Tsync,
    /// `SECCOMP_FILTER_FLAG_LOG`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")]
    WaitKillableRecv,
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_NEW_LISTENER")]
    NewListener,
    /// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC_ESRCH")]
    TsyncEsrch,
}

/// The whole profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    /// Action when no rule matches.
    pub default_action: SeccompAction,
    /// errno for a `SCMP_ACT_ERRNO` default action (EPERM when absent).
    #[serde(default, deserialize_with = "errno_ret")]
    pub default_errno_ret: Option<u16>,
    /// `SCMP_ARCH_*` names; when non-empty it must include `SCMP_ARCH_X86_64`.
    #[serde(default)]
    pub architectures: Option<Vec<ScmpArch>>,
    /// Filter flags.
    #[serde(default)]
    pub flags: Option<Vec<Flag>>,
    /// Path of a seccomp-notify listener (unused: there is none in the sandbox).
    #[serde(default)]
    pub listener_path: Option<String>,
    /// Metadata for that listener (unused).
    #[serde(default)]
    pub listener_metadata: Option<String>,
    /// Docker's map from native architecture to sub-architectures.
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMapEntry>>,
    /// The rules, in file order.
    #[serde(default)]
    pub syscalls: Option<Vec<SyscallRule>>,
    /// This sandbox's extension: rules seccomp cannot express.
    #[serde(default)]
    pub dune: Option<DuneSection>,
}

/// One `archMap` entry (Docker).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArchMapEntry {
    /// The native architecture.
    pub architecture: ScmpArch,
    /// Architectures whose calls it can also make.
    #[serde(default)]
    pub sub_architectures: Option<Vec<ScmpArch>>,
}

/// One element of `syscalls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyscallRule {
    /// Call names (and `@group` names).
    #[serde(default)]
    pub names: Option<Vec<CallName>>,
    /// Legacy single name.
    #[serde(default)]
    pub name: Option<CallName>,
    /// What to do when the rule matches.
    pub action: SeccompAction,
    /// errno for `SCMP_ACT_ERRNO` (EPERM when absent).
    #[serde(default, deserialize_with = "errno_ret")]
    pub errno_ret: Option<u16>,
    /// Argument conditions, all of which must hold.
    #[serde(default)]
    pub args: Option<Vec<ArgRule>>,
    /// Free text, shown in audit lines.
    #[serde(default)]
    pub comment: Option<String>,
    /// The rule applies only if all of these hold.
    #[serde(default)]
    pub includes: Option<Filter>,
    /// The rule does not apply if any of these holds.
    #[serde(default)]
    pub excludes: Option<Filter>,
}

/// `includes` / `excludes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (the sandboxed program has none).
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    /// Architectures in Go (`amd64`) or libseccomp (`x86_64`) spelling.
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    /// Minimum kernel version `MAJOR.MINOR`.
    #[serde(default)]
    pub min_kernel: Option<KernelVersion>,
}

/// One argument condition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArgRule {
    /// Argument number, 0..=5.
    #[serde(deserialize_with = "arg_index")]
    pub index: u8,
    /// Operand.
    pub value: u64,
    /// Second operand (`SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// Operator.
    pub op: CmpOp,
}

/// The `"dune"` extension section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DuneSection {
    /// Trees the program may read.
    #[serde(default)]
    pub read_only: Option<Vec<AbsPath>>,
    /// Trees the program may read and write.
    #[serde(default)]
    pub read_write: Option<Vec<AbsPath>>,
    /// Addresses the program may both bind and connect/send to.
    #[serde(default)]
    pub net: Option<Vec<NetRule>>,
    /// Addresses the program may only bind.
    #[serde(default)]
    pub bind: Option<Vec<NetRule>>,
    /// Addresses the program may only connect/send to.
    #[serde(default)]
    pub connect: Option<Vec<NetRule>>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
    /// Whether the program may change the terminal the sandbox runs in (modes,
    /// window size, foreground group).
    #[serde(default)]
    pub tty: Option<bool>,
}

/// `"limits"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Most threads alive at once, in all the sandbox's processes.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Most processes alive at once.
    #[serde(default)]
    pub processes: Option<u32>,
    /// Most bytes of memory mapped at once, in all the sandbox's processes.
    #[serde(default)]
    pub memory: Option<u64>,
}

/// A call or `@group` name; a group name must be known (an unknown plain name is kept and
/// ignored later, as runc does for names of other architectures).
#[derive(Debug, Clone)]
pub struct CallName(pub String);

impl<'de> Deserialize<'de> for CallName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.starts_with('@') && !groups::is_group(&s) {
            return Err(de::Error::custom(format_args!(
                "unknown system call group `{s}`"
            )));
        }
        Ok(CallName(s))
    }
}

/// A known `SCMP_ARCH_*` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScmpArch(pub String);

const SCMP_ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

impl<'de> Deserialize<'de> for ScmpArch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !SCMP_ARCHES.contains(&s.as_str()) {
            return Err(de::Error::custom(format_args!(
                "unknown architecture `{s}`"
            )));
        }
        Ok(ScmpArch(s))
    }
}

/// `MAJOR.MINOR` of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion(pub u32, pub u32);

impl KernelVersion {
    /// Parses `MAJOR.MINOR[.anything]` (a `uname -r` string or a `minKernel` value).
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let mut it = s.splitn(3, '.');
        let major = it.next()?.parse().ok()?;
        let minor_s = it.next()?;
        let digits = minor_s.bytes().take_while(u8::is_ascii_digit).count();
        let minor = minor_s[..digits].parse().ok()?;
        Some(KernelVersion(major, minor))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KernelVersion::parse(&s)
            .filter(|_| !s.contains(|c: char| !c.is_ascii_digit() && c != '.'))
            .ok_or_else(|| {
                de::Error::custom(format_args!("bad kernel version `{s}`, want MAJOR.MINOR"))
            })
    }
}

/// An absolute path in the `"dune"` section.
#[derive(Debug, Clone)]
pub struct AbsPath(pub String);

impl<'de> Deserialize<'de> for AbsPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !s.starts_with('/') || s.contains('\0') {
            return Err(de::Error::custom(format_args!(
                "path `{s}` is not absolute"
            )));
        }
        Ok(AbsPath(s))
    }
}

impl<'de> Deserialize<'de> for NetRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

fn errno_ret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let v = Option::<u64>::deserialize(d)?;
    match v {
        Some(n) if n > 4095 => Err(de::Error::custom(format_args!(
            "errno {n} out of range 0..=4095"
        ))),
        Some(n) => Ok(Some(n as u16)),
        None => Ok(None),
    }
}

fn arg_index<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let n = u64::deserialize(d)?;
    if n > 5 {
        return Err(de::Error::custom(format_args!(
            "argument index {n} out of range 0..=5"
        )));
    }
    Ok(n as u8)
}

/// Parses `text` (named `file` in errors).
pub fn parse(text: &str, file: &str) -> Result<Profile, PolicyError> {
    serde_json::from_str(text).map_err(|e| {
        let line = e.line().max(1);
        let column = e.column().max(1);
        let mut message = e.to_string();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        let message = one_line(&message);
        PolicyError::Parse {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    })
}

/// The 1-based line and column of the first occurrence of `needle` in `text`, for errors
/// found after parsing (a path that cannot be opened, a missing architecture); (1, 1) if
/// it does not occur.
pub fn locate(text: &str, needle: &str) -> (usize, usize) {
    let Some(at) = text.find(needle) else {
        return (1, 1);
    };
    let before = &text[..at];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Whether an `arches` entry names x86-64 (the only architecture the sandbox runs).
pub fn is_our_arch(a: &str) -> bool {
    matches!(a, "amd64" | "x86_64" | "x86-64" | "SCMP_ARCH_X86_64")
}

/// `s` with control characters escaped, so that an error stays on one line even when it
/// quotes a key or value holding a newline.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
