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

/// The Rust API (`Gc<T>`, `GcAllocator`) with the Dune sources.
#[test]
fn rust_api_with_dune_sources() {
    for src in ["dune-dirty", "dune-fault"] {
        let out = run_bounded({
            let mut c = Command::new(exe("dune-gc-rust"));
            c.arg(src);
            c
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.starts_with(&format!("ok rust {src}")), "{src}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("{}", stdout.trim());
    }
}

/// Finalizers, memory returned to the OS and C threads (`pthread_create` under
/// `GC_THREADS`) with the Dune sources (apps/gc/tests/c/features.c).
#[test]
fn c_api_finalizers_release_and_threads_in_dune_mode() {
    let inputs = ["apps/gc/src", "apps/gc/tests/c", "apps/gc/include", "crates/libdune/src"];
    let exe = fresh(profile_dir().join("../release/gc/features"), &inputs, "build it on the host first with apps/gc/build-c.sh (scripts/test does)");
    for src in ["dune-dirty", "dune-fault"] {
        for scenario in ["finalizers", "release", "threads"] {
            let mut cmd = Command::new(&exe);
            cmd.arg(scenario).env("DUNE_GC_DIRTY", src).env("INCREMENTAL", "1");
            let out = run_bounded(cmd);
            let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && stdout.contains(&format!("ok {scenario} source={src}")), "{src} {scenario}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
            eprint!("{stdout}");
        }
    }
}

/// A write through a translation the TLB caches as dirty, after the harvest cleared
/// D in memory, must still be seen: the source drops the translations. Without that
/// flush (the negative control) the lane must miss some, or it could not tell.
#[test]
fn dune_dirty_sees_writes_through_a_cached_dirty_translation() {
    // Every attempt must see all 50 writes with the flush (`check` fails otherwise).
    // The negative control needs one attempt where the lane kept a stale translation:
    // an exit in the window (other tests run beside this one) flushes QEMU's TLB too.
    let mut lines = Vec::new();
    for _ in 0..3 {
        let line = check(false, &["tlb"]);
        let nums: Vec<u32> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
        // "with the flush W/50 ..., without WO/50"
        assert!(nums.len() >= 4 && nums[0] == 50, "{line}");
        if nums[2] < 50 {
            return;
        }
        lines.push(line);
    }
    panic!("without the flush every write was still seen, 3 times: this machine cannot validate the invalidation: {lines:?}");
}

/// `dune bench gc` with a small work divisor: every program with every collector
/// and source runs and checks its own result, and the counts that do not depend on
/// the machine say what each source is: dune-dirty takes no write fault, dune-fault
/// takes them in ring 0 (no exit), mprotect in Dune mode takes each as a signal.
#[test]
fn bench_gc_runs_every_program_every_way() {
    let inputs = ["apps/gc/src", "apps/gc/bench", "apps/gc/include", "crates/libdune/src"];
    let how = "build them on the host first with apps/gc/build-c.sh (scripts/test does)";
    let dir = profile_dir().join("../release/gc");
    // GCBench's fixed part (a depth-18 stretch tree, a depth-16 live tree) does not
    // shrink with the divisor: the lane's time goes to the other three here.
    for p in ["linkedlist", "hashmap", "xml"] {
        fresh(dir.join(format!("dune-{p}")), &inputs, how);
    }
    let tmp = std::env::temp_dir();
    let (json, svg) = (tmp.join("dune-bench-gc-test.json"), tmp.join("dune-bench-gc-test.svg"));
    fresh(profile_dir().join("libdune_preload.so"), &["crates/dune-preload/src", "crates/libdune/src"], BUILD);
    let mut cmd = Command::new(fresh(profile_dir().join("dune"), &["crates/dune-cli/src", "apps/gc/src", "crates/libdune/src"], BUILD));
    cmd.args(["bench", "gc", "--programs", "linkedlist,hashmap,xml", "--scale", "200", "--json"]).arg(&json).arg("--plot").arg(&svg);
    let out = run_bounded(cmd);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    eprintln!("{stdout}");
    assert!(stdout.contains("The paper's Table 6") && stdout.contains("WARNING: this CPU is emulated"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 33, "3 programs x 11 ways");
    for r in rows {
        let (p, v) = (r["program"].as_str().unwrap(), r["variant"].as_str().unwrap());
        if let Some(e) = r["error"].as_str() {
            // Only a source this lane's kernel (Linux 6.1) lacks may be missing.
            assert!(v == "dune-gc uffd" || v == "dune-gc soft-dirty", "{p} / {v}: {e}");
            assert!(e.starts_with("unavailable: ") && e.contains("kernel"), "{p} / {v}: {e}");
            continue;
        }
        let n = |k: &str| r[k].as_u64().unwrap();
        assert!(n("alloc_bytes") > 0 && (n("collections") > 0 || n("alloc_bytes") < 8 << 20), "{p} / {v}: {r}");
        let exits = &r["exits"];
        match v {
            "dune-gc dune-dirty" => {
                assert_eq!(n("faults"), 0, "{p}: dune-dirty write-protects nothing: {r}");
                assert_eq!(exits["signals"], 0, "{p}: {r}");
            }
            "dune-gc dune-fault" => {
                assert!(n("faults") > 0 || n("collections") == 0, "{p}: {r}");
                // Handled in ring 0: not one reaches the runtime as an exit.
                assert!(exits["faults"].as_u64().unwrap() < n("faults") / 10 + 5, "{p}: dune-fault's faults reached the runtime: {r}");
                assert_eq!(exits["signals"], 0, "{p}: {r}");
            }
            "dune-gc mprotect, Dune mode" => assert!(exits["signals"].as_u64().unwrap() >= n("faults") && (n("faults") > 0 || n("collections") == 0), "{p}: each mprotect fault is a signal: {r}"),
            _ => {}
        }
        if v.starts_with("dune-gc") && r["source"] != "none" && n("collections") > 1 {
            assert!(n("dirty_pages") > 0, "{p} / {v}: generational, yet no dirty page: {r}");
        }
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("dune-gc dune-dirty"), "chart");
}
