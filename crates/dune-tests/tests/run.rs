//! `dune run`: unmodified programs in Dune mode, in the VM lane.
//!
//! `dune` and `libdune_preload.so` are built on the host before the lane runs
//! (`scripts/test`: `cargo build -p dune-cli -p dune-preload`); a missing or stale
//! binary fails the test with that command. The program under test is `dune-probe`,
//! which does not link libdune: it reads its own privilege level from CS.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use dune_tests::{fresh, profile_dir, run_bounded};

const BUILD: &str = "build them on the host first with `cargo build -p dune-cli -p dune-preload` (scripts/test does)";

fn dune() -> PathBuf {
    let inputs = ["crates/dune-cli/src", "crates/dune-run/src", "crates/libdune/src"];
    fresh(profile_dir().join("dune"), &inputs, BUILD)
}

fn preload() -> PathBuf {
    fresh(profile_dir().join("libdune_preload.so"), &["crates/dune-preload/src", "crates/libdune/src"], BUILD)
}

fn probe() -> &'static str {
    env!("CARGO_BIN_EXE_dune-probe")
}

fn dune_run(args: &[&str]) -> Output {
    preload();
    let mut cmd = Command::new(dune());
    cmd.arg("run").args(args);
    run_bounded(cmd)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    stdout
}

#[test]
fn main_thread_threads_and_forked_children_run_in_ring0() {
    let native = run_bounded({
        let mut c = Command::new(probe());
        c.arg("threads");
        c
    });
    assert_eq!(ok(&native).lines().next(), Some("ring 3"), "natively the probe runs in ring 3");
    let out = ok(&dune_run(&[probe(), "threads"]));
    assert_eq!(out.lines().filter(|l| l.ends_with("ring 0")).count(), 5, "{out}");
    let out = ok(&dune_run(&[probe(), "fork"]));
    assert_eq!(out.trim(), "child ring 0");
}

#[test]
fn programs_started_by_the_program_are_in_dune_mode_too() {
    // sh (dynamic) runs in Dune mode and execs the probe, which enters again.
    let script = format!("{} ring; echo sh done", probe());
    let out = ok(&dune_run(&["sh", "-c", &script]));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["ring 0", "sh done"], "{out}");
}

#[test]
fn closing_every_descriptor_keeps_dune_mode_working() {
    let out = ok(&dune_run(&[probe(), "closeall"]));
    assert!(out.starts_with("ring 0\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("ring 0")).count(), 6, "{out}");
}

#[test]
fn exit_status_signals_and_streams_pass_through() {
    assert_eq!(dune_run(&[probe(), "exit", "7"]).status.code(), Some(7));
    assert_eq!(dune_run(&["sh", "-c", "exit 3"]).status.code(), Some(3));
    let killed = dune_run(&[probe(), "kill", "15"]);
    assert_eq!(killed.status.signal(), Some(libc::SIGTERM), "{:?}", killed.status);
    let segv = dune_run(&["sh", "-c", "kill -SEGV $$"]);
    assert_eq!(segv.status.signal(), Some(libc::SIGSEGV), "{:?}", segv.status);
    // stdin to stdout through `cat`, stderr kept apart.
    preload();
    let mut child = Command::new(dune())
        .args(["run", "sh", "-c", "cat; echo err >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dune run");
    child.stdin.take().expect("stdin").write_all(b"line one\nline two\n").expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stdout), "line one\nline two\n");
    assert_eq!(text(&out.stderr), "err\n");
}

#[test]
fn the_program_gets_the_signal_dispositions_a_shell_gives() {
    // The same signals ignored as natively: the Rust runtime ignores SIGPIPE in `dune`
    // itself, which an exec would pass on (then `dune run yes | head` would end `yes`
    // with EPIPE).
    let native = run_bounded({
        let mut c = Command::new("grep");
        c.args(["^SigIgn:", "/proc/self/status"]);
        c
    });
    let want = ok(&native);
    let mask = u64::from_str_radix(want.trim().trim_start_matches("SigIgn:").trim(), 16).expect("SigIgn mask");
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "natively SIGPIPE is not ignored: {want}");
    assert_eq!(ok(&dune_run(&["grep", "^SigIgn:", "/proc/self/status"])), want);
    let out = ok(&dune_run(&["sh", "-c", "yes | head -n 1; echo done"]));
    assert_eq!(out, "y\ndone\n");
}

#[test]
fn stats_count_forwarded_calls_per_process() {
    let out = dune_run(&["--stats", "sh", "-c", &format!("{} ring", probe())]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("dune: stats: pid ")).collect();
    // One line for sh and one for the probe it started.
    assert_eq!(lines.len(), 2, "{stderr}");
    for l in lines {
        let n: u64 = l.split(": ").nth(3).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(n > 5, "too few forwarded calls in {l:?}");
        assert!(l.contains("memslots"), "{l}");
    }
}

#[test]
fn bad_programs_get_a_shells_message_and_status() {
    let cases: [(&[&str], i32, &str); 5] = [
        (&["no-such-program-anywhere"], 127, "dune: no-such-program-anywhere: command not found"),
        (&["/no/such/file"], 127, "dune: /no/such/file: No such file or directory"),
        (&["/etc/passwd"], 126, "dune: /etc/passwd: Permission denied"),
        (&["/etc"], 126, "dune: /etc: Is a directory"),
        (&["/bin/busybox", "true"], 126, "dune: /bin/busybox: statically linked"),
    ];
    for (args, status, msg) in cases {
        let out = dune_run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
        assert!(stderr.starts_with(msg), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line expected: {stderr}");
    }
    // A file that is executable but neither ELF nor a script.
    let junk = std::env::temp_dir().join(format!("dune-run-junk-{}", std::process::id()));
    std::fs::write(&junk, b"\x01\x02 not a program").expect("write");
    std::fs::set_permissions(&junk, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let out = dune_run(&[junk.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&junk);
    assert_eq!(out.status.code(), Some(126));
    assert!(text(&out.stderr).contains("Exec format error"), "{}", text(&out.stderr));
}

#[test]
fn exec_with_a_cleared_environment_or_dropped_privileges_stays_in_dune_mode() {
    // `env -i` passes no LD_PRELOAD; nobody may not open /dev/kvm: the runtime hands
    // the next image both (the preload library first, its KVM descriptor).
    let script = format!("env -i {p} ring; setpriv --reuid=65534 --regid=65534 --clear-groups {p} ring", p = probe());
    let out = ok(&dune_run(&["sh", "-c", &script]));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["ring 0", "ring 0"], "{out}");
}
