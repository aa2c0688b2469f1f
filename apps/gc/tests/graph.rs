//! The collector's correctness on this machine (no Dune mode): random object
//! graphs against a model and threads keeping data alive from their stacks, with
//! every source Linux offers, full and generational; and a C program built against
//! `gc.h`. The Dune sources run in the lane (crates/dune-tests/tests/gc.rs).
//! Each check runs in a process of its own (`dune-gc-check`): the collector is per
//! process.

use std::process::Command;

/// Runs `dune-gc-check ARGS`; `Ok(line)` when it printed `ok`, `Err(reason)` when the
/// source is unavailable here; panics on a failure.
fn check(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_dune-gc-check")).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(3) {
        return Err(stdout.trim().to_owned());
    }
    assert!(out.status.success() && stdout.starts_with("ok "), "{args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Ok(stdout.trim().to_owned())
}

/// Sources Linux always has must run; soft-dirty and uffd depend on the kernel
/// and must say why when missing.
fn linux_sources(what: &[&str]) {
    for src in ["none", "mprotect", "soft-dirty", "uffd"] {
        let mut args = vec![what[0], src];
        args.extend_from_slice(&what[1..]);
        match check(&args) {
            Ok(line) => eprintln!("{}", &line[..line.len().min(160)]),
            Err(why) => {
                assert!(src == "soft-dirty" || src == "uffd", "{src} must exist everywhere: {why}");
                assert!(why.contains("kernel") || why.contains("userfaultfd"), "{src}: no reason given: {why}");
                eprintln!("{src}: {why}");
            }
        }
    }
}

#[test]
fn random_graphs_full() {
    linux_sources(&["graph", "full"]);
}

#[test]
fn random_graphs_generational() {
    linux_sources(&["graph", "generational"]);
}

#[test]
fn threads_keep_their_own_lists_alive() {
    linux_sources(&["threads"]);
}

/// The Rust API (`Gc<T>` with `GcAllocator` as the global allocator):
/// `dune-gc-rust` checks lists held in a collected `Vec` against a model.
#[test]
fn rust_api_lists_in_a_collected_vec() {
    for src in ["none", "mprotect", "uffd"] {
        let out = Command::new(env!("CARGO_BIN_EXE_dune-gc-rust")).arg(src).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if src == "uffd" && out.status.code() == Some(3) {
            eprintln!("{}", stdout.trim());
            continue;
        }
        assert!(out.status.success() && stdout.starts_with(&format!("ok rust {src}")), "{src}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("{}", stdout.trim());
    }
}

#[test]
fn unknown_source_is_refused_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_dune-gc-check")).args(["graph", "dirtyish", "full"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout.contains("unknown source \"dirtyish\""), "{stdout}");
}

/// Builds `tests/c/NAME.c` against include/gc.h and the static library.
fn build_c(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    // The project's one C library (crates/dune-clib), which carries gc.h's API.
    let lib = target.join("libdune.a");
    assert!(lib.is_file(), "{} missing: run `cargo build -p dune-clib` first", lib.display());
    let exe = target.join(format!("gc-{name}"));
    let cc = Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join(format!("tests/c/{name}.c")))
        .arg("-o")
        .arg(&exe)
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm"])
        .status()
        .unwrap();
    assert!(cc.success(), "compiling tests/c/{name}.c");
    exe
}

/// The C API, a GCBench-shaped program built against include/gc.h and the static
/// library, with every source in full and generational mode.
#[test]
fn c_api_program_keeps_live_data() {
    let exe = build_c("gcbench-mini");
    for src in ["none", "mprotect", "uffd"] {
        for inc in [false, true] {
            let mut cmd = Command::new(&exe);
            cmd.env("DUNE_GC_DIRTY", src);
            if inc {
                cmd.env("INCREMENTAL", "1");
            }
            let out = cmd.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && stdout.starts_with(&format!("ok source={src}")), "{src} {inc}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
            eprintln!("{}", stdout.trim());
        }
    }
}

/// Finalizers, memory returned to the OS and threads made by `pthread_create`
/// under `GC_THREADS`, through `gc.h` (apps/gc/tests/c/features.c), with every
/// source Linux offers here, generational.
#[test]
fn c_api_finalizers_release_and_threads() {
    let exe = build_c("features");
    for src in ["none", "mprotect", "uffd"] {
        for scenario in ["finalizers", "release", "threads"] {
            let out = Command::new(&exe).arg(scenario).env("DUNE_GC_DIRTY", src).env("INCREMENTAL", "1").output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if src == "uffd" && stderr.contains("kernel") {
                eprintln!("uffd: {}", stderr.trim());
                continue;
            }
            assert!(out.status.success() && stdout.contains(&format!("ok {scenario} source={src}")), "{src} {scenario}: {stdout}\n{stderr}");
            eprint!("{stdout}");
        }
    }
}
