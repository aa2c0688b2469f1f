//! The libdune C API (crates/libdune-c, include/libdune/dune.h), exercised by C
//! programs in Dune mode: one per group (vm, trap, ring3, pages, misc), each
//! asserting from inside and printing `ok <name>`; misc also linked against
//! libdune.so.
//!
//! The programs are built on the host by `crates/libdune-c/build-c.sh` (scripts/test
//! runs it first: inside the VM lane the host's file system is read-only) into
//! `<target>/debug/capi/`. A missing or stale binary fails the test with that
//! command, never a silent pass on old code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dune_tests::{fresh, profile_dir};

/// The built program `name`, after checking it is newer than everything it is made of.
fn program(name: &str, sources: &[&str]) -> PathBuf {
    let exe = profile_dir().join("capi").join(name);
    let mut inputs = vec!["include", "crates/libdune-c/src", "crates/libdune/src", "crates/dune-x86/src", "crates/libdune-c/tests/c/check.h"];
    inputs.extend_from_slice(sources);
    fresh(exe, &inputs, "build the C API programs on the host first with crates/libdune-c/build-c.sh (scripts/test does)")
}

fn run(exe: &Path) -> Output {
    dune_tests::run_bounded(Command::new(exe))
}

/// Runs C test `name` (built from `tests/c/<source>.c`), which must succeed and
/// print `ok <source>`; returns its standard output.
fn pass(name: &str, source: &str) -> String {
    let c = format!("crates/libdune-c/tests/c/{source}.c");
    let out = run(&program(name, &[&c]));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{name}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.lines().any(|l| l == format!("ok {source}")), "{name}: no ok line\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

#[test]
fn vm_map_lookup_protect_walk_dirty_clone() {
    pass("vm", "vm");
}

#[test]
fn trap_handlers_demand_paging_and_frames() {
    pass("trap", "trap");
}

#[test]
fn ring3_syscalls_arg3_and_faults() {
    pass("ring3", "ring3");
}

#[test]
fn pages_handles_refcounts_threads() {
    pass("pages", "pages");
}

/// What misc prints besides its checks.
fn check_misc_output(stdout: &str) {
    for line in [
        "before entering",
        "printf 42 str abc 3.25 z|1 2 3 4 5 6 7 8 0.5 1.5",
        "printf from a trap handler, vector 3",
        "dune: --- Begin Trap Dump ---",
        "dune: CS 0x08 SS 0x10",
        "--- Process Map Dump ---",
        "child in Dune mode",
    ] {
        assert!(stdout.lines().any(|l| l == line), "misc: no line {line:?}\nstdout:\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("dune: RDX ") && l.ends_with("RBX 0x0000000000000b0b")), "misc: trap dump without rbx\n{stdout}");
    assert!(stdout.lines().any(|l| l.ends_with("[stack]") && l.contains(" RW-P ")), "misc: procmap dump without the stack\n{stdout}");
    assert!(stdout.contains("ASSERT(1 + 1 == 3) at "), "misc: assert message missing\n{stdout}");
}

#[test]
fn misc_printf_signals_procmap_threads_fork() {
    check_misc_output(&pass("misc", "misc"));
}

#[test]
fn misc_through_the_shared_library() {
    check_misc_output(&pass("misc-shared", "misc"));
}
