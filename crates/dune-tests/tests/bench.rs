//! `dune bench --quick` for real, in the VM lane: every row runs (or is unsupported by
//! the kernel, with a reason) and verifies its own work; the Dune way runs in Dune mode
//! with the exit counts it must have; the JSON and the chart are well formed.
//!
//! Like `runtime.rs`, this needs a `/dev/kvm` with hardware-virtualization semantics:
//! run it through `scripts/test` (QEMU lane). Elsewhere `--require-dune` makes the
//! program exit 2 and the test fail, by design.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// All rows, in table order (`dune_bench::ROWS`).
const ROWS: [&str; 21] = [
    "getpid", "pagefault", "pagewalk", "ptrace", "seccomp-trap", "seccomp-notify", "sandbox-emulated", "sandbox-forwarded",
    "sandbox-exitless", "sandbox-denied", "sthread-create", "sthread-create-fresh", "sthread-switch", "sthread-http",
    "sthread-http-pthread", "trap", "appel1", "appel1-uffd", "appel2", "appel2-uffd", "softdirty",
];
/// Rows whose Dune way libdune can run today.
const DUNE_RUNS: [&str; 15] = [
    "getpid", "pagefault", "pagewalk", "ptrace", "sandbox-emulated", "sandbox-forwarded", "sandbox-exitless", "sandbox-denied",
    "sthread-create", "sthread-create-fresh", "sthread-switch", "sthread-http", "trap", "appel1", "appel2",
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dune-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dune-benchprog"))
        .args(args)
        .env_remove("DUNE_ALLOW_EMULATED")
        .output()
        .expect("spawn dune-benchprog")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

#[test]
fn quick_bench_runs_and_verifies_every_row() {
    let json = scratch("bench.json");
    let svg = scratch("bench.svg");
    let out = bench(&["--quick", "--require-dune", "--json", json.to_str().unwrap(), "--plot", svg.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success(), "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.contains("Dune way: ran on a thread in Dune mode"), "{stdout}");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json file")).expect("JSON parses");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["dune"]["status"], "ran", "{}", doc["dune"]);
    assert_eq!(doc["dune"]["stats_error"], Value::Null, "exit counts unavailable: {}", doc["dune"]);
    let rows = doc["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(names, ROWS);

    for r in rows {
        let name = r["name"].as_str().unwrap_or_default();
        for way in ["linux", "dune"] {
            let w = &r[way];
            match w["status"].as_str().unwrap_or_default() {
                "ran" => {
                    assert_eq!(w["verified"], true, "{name} {way}: {w}");
                    assert!(!w["check"].as_str().unwrap_or_default().is_empty(), "{name} {way}: {w}");
                    let (min, median) = (num(&w["min"], "min"), num(&w["median"], "median"));
                    assert!(min > 0.0 && min <= median, "{name} {way}: {w}");
                }
                // Honest gaps: the kernel lacks a feature (with the reason), the Dune way
                // is not written yet, or the row has no Dune way.
                "unsupported" if way == "linux" => assert!(!w["reason"].as_str().unwrap_or_default().is_empty()),
                "pending" if way == "dune" && !DUNE_RUNS.contains(&name) => {}
                "none" if way == "dune" && r["alternative_to"].is_string() => {}
                other => panic!("{name} {way}: status {other}: {w}"),
            }
        }
        if DUNE_RUNS.contains(&name) {
            assert_eq!(r["dune"]["status"], "ran", "{name}: {r}");
            assert!(r["dune"]["exits"].is_object(), "{name}: no exit counts: {r}");
            assert!(num(&r["ratio"], "ratio") > 0.0);
        }
    }
    // The paper's rows whose Linux way needs nothing special must have run.
    for name in ["getpid", "pagefault", "pagewalk", "ptrace", "trap", "appel1", "appel2"] {
        let r = rows.iter().find(|r| r["name"] == name).expect("row");
        assert_eq!(r["linux"]["status"], "ran", "{name}: {r}");
    }

    // A forwarded getpid is exactly one exit, and it reaches the runtime.
    let getpid = &rows[0]["dune"]["exits"];
    let exits = num(&getpid["exits_per_op"], "exits_per_op");
    assert!((exits - 1.0).abs() <= 0.05, "getpid: {exits} exits per op: {getpid}");
    let io = num(&getpid["io_exits_per_op"], "io_exits_per_op");
    assert!((io - 1.0).abs() <= 0.05, "getpid: {io} I/O exits per op: {getpid}");
    assert_eq!(num(&getpid["forwarded_syscalls_per_op"], "syscalls"), 1.0);
    // The sandbox: an emulated call never leaves the VM, a forwarded one is one exit,
    // a denied one none (its single audit line is shared by the whole run).
    for (name, want) in [("sandbox-emulated", 0.0), ("sandbox-forwarded", 1.0), ("sandbox-denied", 0.0)] {
        let e = &rows.iter().find(|r| r["name"] == name).expect("row")["dune"]["exits"];
        let io = num(&e["io_exits_per_op"], "io_exits_per_op");
        assert!((io - want).abs() < 0.02, "{name}: {io} exits to the host per call: {e}");
    }
    // A first touch under nested paging is handled inside KVM: no exit reaches the runtime.
    let pf = &rows[1]["dune"]["exits"];
    assert!(num(&pf["io_exits_per_op"], "io_exits_per_op") < 0.05, "page fault: {pf}");
    // The privileged features never leave the guest: a ring-3 system call caught in
    // ring 0, a fault handled in ring 0, the appel rounds. No exit reaches the runtime
    // (forwarded calls, traps), none is port I/O. (KVM may still exit for host
    // interrupts, which it handles itself: exits_per_op is not asserted.)
    // A recycled sthread's create + join and a switch through a callgate are such
    // features too: nothing reaches the runtime.
    for name in ["ptrace", "trap", "appel1", "appel2", "sthread-create", "sthread-switch"] {
        let e = &rows.iter().find(|r| r["name"] == name).expect("row")["dune"]["exits"];
        assert_eq!(num(&e["io_exits_per_op"], "io_exits_per_op"), 0.0, "{name}: {e}");
        assert_eq!(num(&e["forwarded_syscalls_per_op"], "syscalls"), 0.0, "{name}: {e}");
        assert_eq!(num(&e["runtime_traps_per_op"], "traps"), 0.0, "{name}: {e}");
    }

    let chart = std::fs::read_to_string(&svg).expect("svg file");
    assert!(chart.trim_start().starts_with("<svg") && chart.trim_end().ends_with("</svg>"), "not an SVG document");
    for word in ["Linux (measured)", "Dune (measured)", "getpid", "page walk", "appel2 uffd", "Sthreads (Wedge)", "exits/op", "x Linux"] {
        assert!(chart.contains(word), "chart lacks {word:?}");
    }
}

#[test]
fn png_chart_and_usage_errors() {
    let png = scratch("getpid.png");
    let out = bench(&["--quick", "--rows", "getpid", "--plot", png.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    let bytes = std::fs::read(&png).expect("png file");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000, "not a PNG");

    let out = bench(&["--rows", "getpid,nosuchrow"]);
    assert_eq!(out.status.code(), Some(64));
    let err = text(&out.stderr);
    assert!(err.contains("unknown row 'nosuchrow'"), "{err}");
    let out = bench(&["--plot", "chart.pdf"]);
    assert_eq!(out.status.code(), Some(64));
}
