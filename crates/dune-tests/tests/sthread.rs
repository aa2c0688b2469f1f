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
fn openat_stays_beneath_a_granted_directory() {
    scenario("directories");
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

/// The privilege-separated web server (`sthread-httpd.c`): requests are served and
/// signed through the callgate; the parser's deliberate arbitrary-read bug, aimed at
/// the key, ends only that request's sthread; a path out of the document root is
/// refused by the kernel; the server keeps serving.
#[test]
fn web_server_keeps_its_key_out_of_reach() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = std::env::temp_dir().join(format!("sthread-httpd-{}", std::process::id()));
    let docroot = dir.join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    std::fs::write(docroot.join("index.html"), "<h1>hello from an sthread</h1>\n").unwrap();
    let key = format!("PRIVATE-KEY-{:x}", std::process::id() as u64 * 0x9e37_79b9);
    std::fs::write(dir.join("key"), &key).unwrap();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let mut child = Command::new(exe("sthread-httpd"))
        .args([&port.to_string(), docroot.to_str().unwrap(), dir.join("key").to_str().unwrap(), "4"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A hang fails the test instead of stalling the run.
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(dune_tests::RUN_LIMIT);
        // SAFETY: signals the server started above (at worst a reused pid after it ended).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first.split("key at ").nth(1).map(str::trim).unwrap_or_else(|| panic!("no key address in {first:?}")).to_string();
    let get = |req: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        r
    };
    let fnv = |mut h: u64, b: &[u8]| {
        for &c in b {
            h ^= c as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    };
    let body = "<h1>hello from an sthread</h1>\n";
    let sig = format!("{:016x}", fnv(fnv(0xcbf2_9ce4_8422_2325, key.as_bytes()), body.as_bytes()));
    let ok = get("GET /index.html HTTP/1.0\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.0 200") && ok.contains(&format!("X-Signature: {sig}")) && ok.ends_with(body), "{ok}");
    let attack = get(&format!("GET /index.html HTTP/1.0\r\nX-Debug: {}\r\n\r\n", addr.trim_start_matches("0x")));
    assert!(attack.starts_with("HTTP/1.0 500"), "{attack}");
    let k8: Vec<String> = key.as_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert!(!attack.contains(&key[..8]) && !attack.contains(&k8.join("")) && !attack.contains("X-Debug-Value"), "{attack}");
    let escape = get("GET /../key HTTP/1.0\r\n\r\n");
    assert!(escape.starts_with("HTTP/1.0 404") && !escape.contains(&key), "{escape}");
    let again = get("GET / HTTP/1.0\r\n\r\n");
    assert!(again.starts_with("HTTP/1.0 200") && again.contains(&sig), "{again}");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success() && rest.contains("served 3 violations 1"), "{status:?} {rest} {err}");
    assert!(err.contains("violation kind 1"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The original Wedge `test.c` (project-dune/dune, unchanged; `apps/sthread/tests/wedge`)
/// against this library: every section runs, and it ends with its own "==== end".
#[test]
fn the_original_wedge_test_program_passes() {
    let out = run_bounded(Command::new(exe("wedge-test")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("==== parallel\n==== end"), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
}

/// The original Wedge `bench.c`, mode 0, linked `-lsthread -ldune` as its Makefile
/// does: fork, pthread and sthread latencies, each an average of five runs; the
/// sthread phase calls `gettimeofday` by `vmcall` from ring 0, as the original did.
#[test]
fn the_original_wedge_benchmark_prints_all_three_averages() {
    let out = run_bounded(Command::new(exe("wedge-bench")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let avgs: Vec<i64> = stdout.lines().filter_map(|l| l.strip_prefix("Avg ")?.split_whitespace().next()?.parse().ok()).collect();
    assert!(out.status.success() && stdout.contains("all done"), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(avgs.len(), 3, "three averages (fork, pthread, sthread): {stdout}");
    assert!(avgs.iter().all(|&a| a > 0 && a < 10_000_000), "averages in microseconds: {avgs:?}");
}
