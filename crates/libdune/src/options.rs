//! Options of the runtime, from code or from the environment.

use crate::error::{Error, Result};

/// How Dune mode is set up. `Options::default()` is what `enter()` uses, adjusted by
/// the environment (`Options::from_env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Run even where guest ring 0 is emulated by the hypervisor (kvm_pvm): correct
    /// but about 2,000 times slower, and AVX code faults. `DUNE_ALLOW_EMULATED=1`.
    pub allow_emulated: bool,
    /// Bound on the bytes covered by KVM memslots, which cost kernel memory whether
    /// touched or not. `DUNE_MEMSLOT_BUDGET` (bytes, or with a K/M/G/T suffix).
    pub memslot_budget: u64,
    /// The KVM device. `DUNE_KVM_DEVICE`.
    pub kvm_path: std::path::PathBuf,
    /// Write a one-line summary of the runtime's exits (forwarded system calls, faults
    /// that reached the runtime, signals, memslots) to stderr when the process calls
    /// `exit_group`. `DUNE_STATS=1` (set by `dune run --stats`).
    pub stats_at_exit: bool,
    /// Carry Dune mode into every program this process `execve`s: the new image gets
    /// this library first in `LD_PRELOAD` (whatever environment the program passes)
    /// and the runtime's open KVM descriptor in `DUNE_KVM_FD`, so it enters Dune mode
    /// again even after dropping the privileges that opening `/dev/kvm` needs. Set by
    /// `libdune_preload.so` (`dune run`) to its own path.
    pub exec_preload: Option<std::path::PathBuf>,
    /// A KVM descriptor inherited from the image before `execve` (`DUNE_KVM_FD`),
    /// used instead of opening `kvm_path` when it really is `/dev/kvm`.
    pub kvm_fd: Option<i32>,
}

impl Default for Options {
    fn default() -> Self {
        Options { allow_emulated: false, memslot_budget: 64 << 30, kvm_path: "/dev/kvm".into(), stats_at_exit: false, exec_preload: None, kvm_fd: None }
    }
}

impl Options {
    /// Defaults, overridden by `DUNE_ALLOW_EMULATED`, `DUNE_MEMSLOT_BUDGET`,
    /// `DUNE_KVM_DEVICE`, `DUNE_STATS` and `DUNE_KVM_FD`.
    pub fn from_env() -> Result<Self> {
        let mut o = Options::default();
        if let Some(v) = flag("DUNE_ALLOW_EMULATED")? {
            o.allow_emulated = v;
        }
        if let Some(v) = flag("DUNE_STATS")? {
            o.stats_at_exit = v;
        }
        if let Some(v) = std::env::var_os("DUNE_KVM_FD") {
            // A stale or foreign value is ignored (the device is opened instead): it
            // comes from whatever environment the program was started with.
            o.kvm_fd = v.to_str().and_then(|s| s.parse().ok()).filter(|&fd: &i32| fd >= 0);
        }
        if let Some(v) = std::env::var_os("DUNE_MEMSLOT_BUDGET") {
            let v = v.to_str().ok_or(Error::InvalidOption { name: "DUNE_MEMSLOT_BUDGET", why: "not UTF-8" })?;
            o.memslot_budget = parse_size(v).ok_or(Error::InvalidOption { name: "DUNE_MEMSLOT_BUDGET", why: "expected a size such as 68719476736 or 64G" })?;
        }
        if let Some(v) = std::env::var_os("DUNE_KVM_DEVICE") {
            o.kvm_path = v.into();
        }
        Ok(o)
    }
}

/// A yes/no variable: `1`, `yes`, `true` or `0`, `no`, `false`, empty.
fn flag(name: &'static str) -> Result<Option<bool>> {
    let Some(v) = std::env::var_os(name) else { return Ok(None) };
    match v.to_str() {
        Some("1" | "yes" | "true") => Ok(Some(true)),
        Some("0" | "no" | "false" | "") => Ok(Some(false)),
        _ => Err(Error::InvalidOption { name, why: "expected 1 or 0" }),
    }
}

/// Parses `123`, `4K`, `16M`, `64G`, `1T`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        b't' | b'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift).filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64G"), Some(64 << 30));
        assert_eq!(parse_size("2t"), Some(2 << 40));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
