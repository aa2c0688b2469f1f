//! Wedge sthreads (`apps/sthread`), through their C API, in the VM lane.
//!
//! `apps/sthread/tests/c/sthread-test.c` is built against `sthread.h` and
//! `libsthread.a` (and `libsthread.so`) on the host by `apps/sthread/build-c.sh`;
//! each test runs one of its scenarios, which prints `ok <scenario>` when every
//! check in it held. The isolation scenarios attack each boundary (memory,
//! descriptors, system calls, pointers, callgates) and require the attempt to end
//! that sthread only, with the reason `sthread_join` reports.

use std::path::PathBuf;
use std::process::Command;

use dune_tests::{fresh, profile_dir, run_bounded};

fn exe(name: &str) -> PathBuf {
    let inputs = ["apps/sthread/src", "apps/sthread/include", "apps/sthread/tests/c", "crates/libdune/src"];
    fresh(profile_dir().join(name), &inputs, "build it on the host first with apps/sthread/build-c.sh (scripts/test does)")
}

fn scenario_with(bin: &str, name: &str) -> String {
    let mut cmd = Command::new(exe(bin));
    cmd.arg(name);
    let out = run_bounded(cmd);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success() && stdout.lines().any(|l| l == format!("ok {name}")), "{bin} {name}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    stdout
}

fn scenario(name: &str) -> String {
    scenario_with("sthread-test", name)
}

#[test]
fn create_join_values_and_globals_as_at_init() {
    scenario("basic");
}

#[test]
fn shared_library_build_runs_the_same_program() {
    scenario_with("sthread-test-shared", "basic");
    scenario_with("sthread-test-shared", "callgates");
}

#[test]
fn memory_violations_are_contained() {
    scenario("memory");
}

#[test]
fn descriptor_violations_are_contained() {
    scenario("descriptors");
}

#[test]
fn system_call_violations_are_contained() {
    scenario("syscalls");
}

#[test]
fn pointer_arguments_are_checked_and_copied() {
    scenario("pointers");
}

#[test]
fn recycling_restores_dirty_pages_with_and_without_pcids() {
    scenario("recycle");
}

#[test]
fn ten_thousand_cycles_leak_nothing() {
    let out = scenario("endurance");
    assert!(out.contains("compartments"), "{out}");
}

#[test]
fn threads_run_sthreads_and_a_blocked_one_blocks_no_other() {
    scenario("threads");
}

#[test]
fn tags_grow_free_delete_and_copy_on_write() {
    scenario("tags");
}

#[test]
fn callgates_sign_without_exposing_the_key() {
    scenario("callgates");
}

#[test]
fn the_api_refuses_from_inside_an_sthread() {
    scenario("ring3-api");
}
