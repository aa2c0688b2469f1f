//! The examples (examples/rust and examples/c), run in Dune mode: each must succeed
//! and print exactly its expected lines, the Rust and the C version alike.
//!
//! They are built on the host by `crates/libdune-c/build-c.sh` (scripts/test runs it
//! first; inside the VM lane the host's file system is read-only): the Rust ones
//! into `<target>/debug/`, the C ones into `<target>/debug/capi/`. A missing or stale
//! binary fails the test with that command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dune_tests::{fresh, profile_dir};

/// The example binary `exe`, after checking it is newer than its sources.
fn built(exe: PathBuf, sources: &[&str]) -> PathBuf {
    let mut inputs = vec!["crates/libdune/src", "crates/dune-x86/src"];
    inputs.extend_from_slice(sources);
    fresh(exe, &inputs, "build the examples on the host first with crates/libdune-c/build-c.sh (scripts/test does)")
}

fn run(exe: &Path) -> Output {
    dune_tests::run_bounded(Command::new(exe))
}

/// Runs the Rust and the C version of example `name` (`examples/rust/src/bin/<rs>`,
/// `examples/c/<name>.c`); both must succeed and print exactly `want`.
fn example(name: &str, rs: &str, want: &[&str]) {
    let rust = built(profile_dir().join(name), &[&format!("examples/rust/src/bin/{rs}")]);
    let c = built(profile_dir().join("capi").join(name), &[&format!("examples/c/{name}.c"), "include", "crates/libdune-c/src"]);
    for exe in [rust, c] {
        let out = run(&exe);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", exe.display(), out.status);
        let got: Vec<&str> = stdout.lines().collect();
        assert_eq!(got, want, "{}: unexpected output\nstderr:\n{stderr}", exe.display());
    }
}

#[test]
fn demand_paging() {
    example(
        "demand-paging",
        "demand_paging.rs",
        &[
            "demand paging: touched 100 pages, 100 faults handled, 100 of 16384 pages mapped",
            "demand paging: data intact: yes, faults after rereading: 100",
        ],
    );
}

#[test]
fn dirty_tracking() {
    example(
        "dirty-tracking",
        "dirty_tracking.rs",
        &[
            "dirty tracking: round 1: wrote 16 pages, dirty [0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255], same: yes",
            "dirty tracking: round 2: wrote 8 pages, dirty [0, 34, 68, 102, 136, 170, 204, 238], same: yes",
            "dirty tracking: round 3: wrote 6 pages, dirty [0, 51, 102, 153, 204, 255], same: yes",
        ],
    );
}

#[test]
fn ring3_syscalls_logged_and_one_denied() {
    example(
        "ring3-syscalls",
        "ring3_syscalls.rs",
        &[
            "hello from ring 3",
            "ring 3 called write: allowed, returned 18",
            "ring 3 called getpid: allowed, returned our pid",
            "ring 3 called openat: denied with EACCES",
            "ring 3 called exit_group: ends the session",
            "ring 3 session returned -13",
        ],
    );
}
