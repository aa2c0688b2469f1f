//! The libdune C API (crates/libdune-c, include/libdune/*.h), exercised by C
//! programs in Dune mode: one per group (vm, trap, ring3, pages, misc, cpu, layout,
//! cow, frames, elf, apic), each asserting from inside and printing `ok <name>`; misc
//! also linked against libdune.so; and an example built against the library as
//! `scripts/install` installs it, with `pkg-config --cflags --libs libdune`.
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
    let out = pass("pages", "pages");
    // dune_page_stats, before and after one more page.
    let stats: Vec<Vec<u64>> = out
        .lines()
        .filter_map(|l| l.strip_prefix("DUNE Page Allocator: "))
        .map(|l| l.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect())
        .collect();
    assert_eq!(stats.len(), 2, "{out}");
    let (before, after) = (&stats[0], &stats[1]);
    assert!(before.len() == 3 && after.len() == 3, "{out}");
    assert_eq!(after[0], before[0] + 1, "one more page allocated: {out}");
    assert!(after[0] + after[1] <= after[2] && after[1] < after[2], "{out}");
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
    // The dump goes on with the stack (twelve quadwords, mapped) and the code at rip.
    for prefix in ["dune: Dumping Stack Contents...", "dune: RSP+0  0x", "dune: RSP+88 0x", "dune: code before IP\t", "dune: code at IP\t"] {
        assert!(stdout.lines().any(|l| l.starts_with(prefix)), "misc: trap dump without {prefix:?}\n{stdout}");
    }
    // The frame's rip is after the int3 (0xcc): the last byte before it.
    assert!(stdout.lines().any(|l| l.starts_with("dune: code before IP\t") && l.ends_with("cc ")), "misc: no int3 before rip\n{stdout}");
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

#[test]
fn cpu_headers_msrs_descriptor_tables_cr3_noflush() {
    pass("cpu", "cpu");
}

#[test]
fn layout_globals_and_the_mmap_base_window() {
    let out = pass("layout", "layout");
    assert!(out.lines().any(|l| l.starts_with("phys_limit 0x")), "layout: no summary line\n{out}");
}

#[test]
fn cow_default_pgflt_handler_copies_on_write() {
    pass("cow", "cow");
}

#[test]
fn frames_pop_and_dump() {
    let out = pass("frames", "frames");
    // Outside Dune mode and in it, the dump reads the stack; unmapped memory is named.
    let stacks = out.lines().filter(|l| l.starts_with("dune: RSP+88 0x")).count();
    assert!(stacks >= 2, "frames: {stacks} full stack dumps\n{out}");
    assert!(out.lines().any(|l| l == "dune: reached unmapped addr"), "frames: no unmapped stack\n{out}");
    assert!(out.lines().any(|l| l == "dune: code at IP\t(unmapped)"), "frames: no unmapped code\n{out}");
}

#[test]
fn elf_helpers_parse_load_and_reject_bad_images() {
    let out = pass("elf", "elf");
    for line in ["--- ELF Dump ---", "Section Headers:", "Program Headers:"] {
        assert!(out.lines().any(|l| l == line), "elf: no line {line:?}\n{out}");
    }
    assert!(out.lines().any(|l| l.contains(" .text ") && l.contains("PROGBITS")), "elf: dump without .text\n{out}");
    assert!(out.lines().any(|l| l.trim_start().starts_with("LOAD ")), "elf: dump without a LOAD segment\n{out}");
}

#[test]
fn apic_ids_and_ipis() {
    pass("apic", "apic");
}

/// The installation `build-c.sh` made with `scripts/install --debug`.
fn prefix() -> PathBuf {
    profile_dir().join("capi-prefix")
}

#[test]
fn installed_library_builds_with_pkg_config() {
    let p = prefix();
    for f in ["lib/libdune.a", "lib/libdune.so", "lib/pkgconfig/libdune.pc"] {
        assert!(p.join(f).is_file(), "{} missing: run crates/libdune-c/build-c.sh", p.join(f).display());
    }
    for h in ["dune.h", "mmu.h", "mmu-x86.h", "cpu-x86.h", "local.h"] {
        let installed = std::fs::read(p.join("include/libdune").join(h)).expect("installed header");
        let source = std::fs::read(dune_tests::repo().join("include/libdune").join(h)).expect("header");
        assert!(installed == source, "installed {h} differs from include/libdune/{h}");
    }
    let pc = std::fs::read_to_string(p.join("lib/pkgconfig/libdune.pc")).expect("libdune.pc");
    assert!(pc.lines().any(|l| l == format!("prefix={}", p.display())) && pc.contains("Libs: -L${libdir} -ldune"), "libdune.pc:\n{pc}");

    let exe = program("pkgconfig-demand-paging", &["examples/c/demand-paging.c", "scripts/install"]);
    // Linked to the installed libdune.so: found through the run-time path, not otherwise.
    let mut cmd = Command::new(&exe);
    cmd.env("LD_LIBRARY_PATH", p.join("lib"));
    let out = dune_tests::run_bounded(cmd);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", exe.display(), out.status);
    let want = [
        "demand paging: touched 100 pages, 100 faults handled, 100 of 16384 pages mapped",
        "demand paging: data intact: yes, faults after rereading: 100",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "stderr:\n{stderr}");
    let mut cmd = Command::new(&exe);
    cmd.env_remove("LD_LIBRARY_PATH");
    let out = dune_tests::run_bounded(cmd);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("libdune.so"), "runs without the installed libdune.so: {out:?}");
}
