//! The garbage collector (`apps/gc`) in Dune mode, in the VM lane.
//!
//! `dune-gc-check` (built on the host by `cargo build -p dune-gc`) runs one check in
//! a process of its own: random object graphs against a model (no object reachable
//! in the model is freed or changed, garbage is freed), threads that keep lists
//! alive only from their own stacks, and the TLB-invalidation check. The Dune
//! sources enter Dune mode themselves; `mprotect` also runs under `dune run` (the
//! paper's "Dune" row: the same `mprotect` and SIGSEGV, in Dune mode).

use std::path::PathBuf;
use std::process::Command;

use dune_tests::{fresh, profile_dir, run_bounded};

const BUILD: &str = "build it on the host first with `cargo build -p dune-gc -p dune-cli -p dune-preload` (scripts/test does)";

fn exe(name: &str) -> PathBuf {
    fresh(profile_dir().join(name), &["apps/gc/src", "crates/libdune/src"], BUILD)
}

/// Runs `dune-gc-check ARGS` (under `dune run` when `run`); its `ok` line.
fn check(run: bool, args: &[&str]) -> String {
    let mut cmd = if run {
        fresh(profile_dir().join("libdune_preload.so"), &["crates/dune-preload/src", "crates/libdune/src"], BUILD);
        let mut c = Command::new(fresh(profile_dir().join("dune"), &["crates/dune-cli/src", "crates/dune-run/src", "crates/libdune/src"], BUILD));
        c.args(["run", "--"]).arg(exe("dune-gc-check"));
        c
    } else {
        Command::new(exe("dune-gc-check"))
    };
    cmd.args(args);
    let out = run_bounded(cmd);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.starts_with("ok "), "{args:?} (dune run: {run}): {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    eprintln!("{}", stdout.trim());
    stdout.into_owned()
}

#[test]
fn dune_dirty_random_graphs() {
    check(false, &["graph", "dune-dirty", "full"]);
    let line = check(false, &["graph", "dune-dirty", "generational"]);
    assert!(line.contains("ok graph dune-dirty generational dune-dirty"), "{line}");
}

#[test]
fn dune_fault_random_graphs() {
    check(false, &["graph", "dune-fault", "full"]);
    check(false, &["graph", "dune-fault", "generational"]);
}

#[test]
fn mprotect_in_dune_mode_random_graphs() {
    check(true, &["graph", "mprotect", "generational"]);
    check(true, &["graph", "none", "full"]);
}

#[test]
fn dune_sources_with_threads() {
    check(false, &["threads", "dune-dirty"]);
    check(false, &["threads", "dune-fault"]);
    check(true, &["threads", "mprotect"]);
}

/// A write through a translation the TLB caches as dirty, after the harvest cleared
/// D in memory, must still be seen: the source drops the translations. Without that
/// flush (the negative control) the lane must miss some, or it could not tell.
#[test]
fn dune_dirty_sees_writes_through_a_cached_dirty_translation() {
    let line = check(false, &["tlb"]);
    let nums: Vec<u32> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    // "with the flush W/50 ..., without WO/50"
    assert!(nums.len() >= 4, "{line}");
    assert_eq!(nums[0], 50, "{line}");
    assert!(nums[2] < 50, "without the flush every write was still seen: this machine cannot validate the invalidation: {line}");
}
