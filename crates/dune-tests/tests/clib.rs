//! The project's one C library (crates/dune-clib) under every name, in every
//! combination: `crates/dune-clib/tests/c/combine.c` built for each pair of the C APIs
//! (dune.h, sthread.h, gc.h, dune/sandbox.h) and for all four, linked with the matching
//! `-l` options statically in both orders and dynamically. Each program uses every API
//! it was built with for real (Dune mode and ring 0, a collection that keeps live
//! blocks, an sthread's return value, /bin/true in the sandbox) and checks that one copy
//! of the library is loaded (none in a static program).
//!
//! Built on the host by `crates/dune-clib/build-c.sh` (scripts/test runs it).

use std::process::Command;

use dune_tests::{fresh, profile_dir};

const COMBOS: [&[&str]; 7] = [
    &["dune", "sthread"],
    &["dune", "gc"],
    &["dune", "sandbox"],
    &["sthread", "gc"],
    &["sthread", "sandbox"],
    &["gc", "sandbox"],
    &["dune", "sthread", "gc", "sandbox"],
];

fn combination(apis: &[&str], link: &str) {
    let name = format!("combine-{}-{link}", apis.join("-"));
    let exe = fresh(
        profile_dir().join("clib").join(&name),
        &["crates/dune-clib", "crates/libdune-c/src", "crates/libdune/src", "apps/sthread/src", "apps/gc/src", "apps/sandbox/src"],
        "build it on the host first with crates/dune-clib/build-c.sh (scripts/test does)",
    );
    let out = dune_tests::run_bounded(Command::new(&exe));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    // What the program did, in the order it did it (the sandbox first, in a child).
    let order = ["sandbox", "dune", "gc", "sthread"];
    let did: Vec<&str> = order.iter().copied().filter(|a| apis.contains(a)).collect();
    let copies = if link == "shared" { 1 } else { 0 };
    let want = format!("ok {} (library objects loaded: {copies})", did.join(" "));
    assert_eq!(stdout.trim(), want, "{name}\nstderr:\n{stderr}");
}

fn all(link: &str) {
    for apis in COMBOS {
        combination(apis, link);
    }
}

#[test]
fn every_combination_linked_statically() {
    all("static");
}

#[test]
fn every_combination_linked_statically_other_order() {
    all("static-rev");
}

#[test]
fn every_combination_linked_dynamically() {
    all("shared");
}
