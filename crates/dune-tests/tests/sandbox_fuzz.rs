//! The sandbox's fuzzer (`csrc/sandbox-fuzz.c`) in the VM lane: random system calls
//! with hostile arguments from several threads and forked children, under a policy
//! with one read-only tree, one writable tree, and a directory outside both that
//! holds a canary secret (the policy file, also outside, holds another in a rule's
//! comment: it lives in the monitor's memory).
//!
//! Invariants, each of which can fail:
//! - nothing outside the writable tree was created or changed (the read-only tree and
//!   the outside directory are compared entry by entry, contents included);
//! - the canary never reaches the program (the fuzzer scans every buffer a call may
//!   have written; its output must not hold the secret);
//! - the monitor never dies: the fuzzer runs to its end and says so, and no fatal
//!   runtime report appears.
//!
//! Bounded here (`DUNE_FUZZ_SECONDS`, default 12, and `DUNE_FUZZ_SEEDS`, default 2);
//! `scripts/fuzz-sandbox` runs it for longer.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use dune_tests::{fresh, profile_dir, run_bounded_for};

const FUZZ: &str = env!("SANDBOX_FUZZ");

fn dune() -> PathBuf {
    fresh(profile_dir().join("dune"), &["crates/dune-cli/src", "apps/sandbox/src", "crates/libdune/src"], "build it on the host first with `cargo build -p dune-cli` (scripts/test does)")
}

/// Every entry under `root`: its kind, mode, owner, size, times, and contents or
/// link target.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        let what = if m.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&p).ok())
        } else if m.is_file() {
            format!("file {:?}", std::fs::read(&p).ok())
        } else if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                todo.extend(rd.flatten().map(|e| e.path()));
            }
            "dir".to_string()
        } else {
            format!("other {:o}", m.mode())
        };
        out.insert(p, format!("{what} mode {:o} uid {} gid {} mtime {}.{} ctime {}.{}", m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()));
    }
    out
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn fuzzing_the_monitor_breaks_no_invariant() {
    let seconds = env_num("DUNE_FUZZ_SECONDS", 12);
    let seeds = env_num("DUNE_FUZZ_SEEDS", 2);
    let first = env_num("DUNE_FUZZ_SEED", u64::from(std::process::id()));
    let (mut calls, mut scans, mut forks) = (0u64, 0u64, 0u64);
    for seed in first..first + seeds {
        let root = std::env::temp_dir().join(format!("dune-fuzz-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (rw, ro, outside) = (root.join("rw"), root.join("ro"), root.join("outside"));
        for d in [&rw, &ro, &outside, &outside.join("dir")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let secret = format!("CANARY-{seed:x}-{}", std::process::id());
        std::fs::write(ro.join("marker"), "read-only\n").unwrap();
        std::fs::write(outside.join("secret"), format!("{secret}\n")).unwrap();
        std::fs::write(outside.join("dir/deep"), format!("{secret}\n")).unwrap();
        let policy = outside.join("policy.json");
        std::fs::write(
            &policy,
            format!(
                "{{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{{\"names\": [\"reboot\"], \"action\": \"SCMP_ACT_ERRNO\", \"comment\": \"{secret}-in-the-monitor\"}}],\n \"dune\": {{\"readOnly\": [{:?}], \"readWrite\": [{:?}], \"limits\": {{\"threads\": 64, \"processes\": 16}}}}}}\n",
                ro.to_string_lossy(),
                rw.to_string_lossy()
            ),
        )
        .unwrap();
        let (before_ro, before_out) = (snapshot(&ro), snapshot(&outside));
        let mut cmd = Command::new(dune());
        cmd.env_remove("LD_LIBRARY_PATH").current_dir(&rw);
        cmd.arg("sandbox").arg("--policy").arg(&policy);
        if std::env::var_os("DUNE_FUZZ_TRACE").is_some() {
            cmd.arg("--trace");
        }
        cmd.arg("--").arg(FUZZ).arg(seed.to_string()).arg(seconds.to_string()).arg(&rw).arg(&ro).arg(&outside);
        let out = run_bounded_for(cmd, std::time::Duration::from_secs(seconds + 90));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let shown = || format!("seed {seed}: {:?}\nstdout:\n{stdout}\nstderr (last 60 lines):\n{}", out.status, stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
        assert!(!stdout.contains(&secret), "the canary reached the program: {}", shown());
        assert!(!stdout.contains("FINDING"), "{}", shown());
        for bad in ["fatal", "panicked", "monitor bug", "RUST_BACKTRACE"] {
            assert!(!stderr.contains(bad), "the monitor died ({bad}): {}", shown());
        }
        // The fuzzer writes random bytes to its own stdout too: its report is the last
        // line that holds one.
        let last = stdout.lines().rev().find_map(|l| l.find("fuzz: ").map(|i| l[i..].to_string())).unwrap_or_default();
        assert!(out.status.success() && last.starts_with("fuzz: ") && last.ends_with(" 0 findings"), "{}", shown());
        assert_eq!(before_ro, snapshot(&ro), "the read-only tree changed: {}", shown());
        assert_eq!(before_out, snapshot(&outside), "the directory outside every tree changed: {}", shown());
        let num = |w: &str| last.split(", ").find(|p| p.ends_with(w)).and_then(|p| p.split(' ').next()).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let c = last.trim_start_matches("fuzz: ");
        calls += c.split(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        forks += num("forks");
        scans += num("scans");
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!("fuzz: {seeds} seeds of {seconds} s: {calls} calls, {forks} forks, {scans} canary scans, 2 trees compared per seed: no invariant broken");
    assert!(calls > 1000 * seeds, "too few calls to mean anything: {calls}");
}
