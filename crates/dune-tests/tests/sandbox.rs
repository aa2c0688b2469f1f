//! `dune sandbox`: unmodified programs in ring 3 under a policy, in the VM lane.
//!
//! Two parts: ordinary programs must work (busybox, python3, sqlite3, a
//! multi-threaded C program, fork and exec, signals and timers), and the adversarial
//! suite (`csrc/sandbox-escape.c`): every escape attempt must be contained — the
//! call fails or the program is killed — with the monitor reporting it.
//!
//! `dune` is built on the host before the lane runs (`cargo build -p dune-cli`).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use dune_tests::{fresh, profile_dir, run_bounded};

const BUILD: &str = "build it on the host first with `cargo build -p dune-cli` (scripts/test does)";

fn dune() -> PathBuf {
    fresh(profile_dir().join("dune"), &["crates/dune-cli/src", "apps/sandbox/src", "crates/libdune/src"], BUILD)
}

fn sandbox(opts: &[&str], argv: &[&str]) -> Output {
    let mut cmd = Command::new(dune());
    // cargo's library path points into the build tree, outside the sandbox's trees.
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd.arg("sandbox").args(opts).arg("--").args(argv);
    run_bounded(cmd)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!("{:?}\nstdout:\n{}\nstderr:\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    text(&out.stdout)
}

const ESCAPE: &str = env!("SANDBOX_ESCAPE");
const WORKLOAD: &str = env!("SANDBOX_WORKLOAD");

// ---- ordinary programs --------------------------------------------------------------

#[test]
fn busybox_static_shell_pipelines() {
    let out = ok(&sandbox(&[], &["/usr/bin/busybox", "sh", "-c", "echo hello | tr a-z A-Z; /usr/bin/busybox seq 1 100 | /usr/bin/busybox wc -l; echo $((6*7))"]));
    assert_eq!(out, "HELLO\n100\n42\n");
}

#[test]
fn dynamic_programs_and_exit_status() {
    assert_eq!(ok(&sandbox(&[], &["/bin/echo", "dynamic", "PIE"])), "dynamic PIE\n");
    let out = sandbox(&[], &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    // Death by a signal is the program's, as in a shell.
    let out = sandbox(&[], &["/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{}", show(&out));
}

#[test]
fn python3_threads_signals_subprocess() {
    let code = "import threading,signal,subprocess,time,sqlite3\n\
r=[]\n\
ts=[threading.Thread(target=lambda i=i:r.append(i*i)) for i in range(6)]\n\
[t.start() for t in ts]; [t.join() for t in ts]\n\
print(sorted(r))\n\
signal.signal(signal.SIGALRM, lambda s,f: print('alarm'))\n\
signal.setitimer(signal.ITIMER_REAL, 0.05); time.sleep(0.3)\n\
print(subprocess.run(['/bin/echo','child'],capture_output=True).stdout.decode().strip())\n\
db=sqlite3.connect(':memory:'); db.execute('create table t(x)'); db.executemany('insert into t values(?)',[(i,) for i in range(100)])\n\
print(db.execute('select sum(x) from t').fetchone()[0])\n";
    let out = ok(&sandbox(&[], &["/usr/bin/python3", "-c", code]));
    assert_eq!(out, "[0, 1, 4, 9, 16, 25]\nalarm\nchild\n4950\n");
}

#[test]
fn sqlite3_shell() {
    let out = ok(&sandbox(&[], &["/usr/bin/sqlite3", ":memory:", "create table t(x); insert into t values(1),(2),(3); select sum(x), count(*) from t;"]));
    assert_eq!(out, "6|3\n");
}

#[test]
fn c_threads_fork_exec_signals_timers() {
    for (what, want) in [("threads", "threads: counter 160000, per-thread 160000\n"), ("fork-exec", "child-exec\nfork-exec: ok\n"), ("signals", "signals: ok (spun 1)\n")] {
        let out = sandbox(&[], &[WORKLOAD, what]);
        assert_eq!(ok(&out), want, "{what}: {}", show(&out));
    }
}

#[test]
fn vdso_time_needs_no_system_call_and_exit_group_ends_every_thread() {
    let out = sandbox(&["--stats"], &[WORKLOAD, "vdso"]);
    assert_eq!(ok(&out), "vdso: ok\n");
    let err = text(&out.stderr);
    let line = err.lines().find(|l| l.contains("] stats: ")).unwrap_or_else(|| panic!("{}", show(&out)));
    let calls: u64 = line.split("stats: ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    assert!(calls < 1000, "20,000 clock_gettime calls must go through the vDSO, not the monitor: {line}");
    let out = sandbox(&[], &[WORKLOAD, "exit-group"]);
    assert_eq!(ok(&out), "exit-group: ok\n");
    let out = sandbox(&[], &[WORKLOAD, "exec-threads"]);
    assert_eq!(ok(&out), "exec-threads: ok\n");
}

#[test]
fn scripts_and_docker_default_profile() {
    let dir = std::env::temp_dir().join(format!("dune-sandbox-script-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"script says $1\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = ok(&sandbox(&["--allow-read", dir.to_str().unwrap()], &[script.to_str().unwrap(), "hi"]));
    assert_eq!(out, "script says hi\n");
    // Docker's own default seccomp profile, unchanged, as the policy.
    let docker = dune_tests::repo().join("apps/sandbox/policy/docker-default.json");
    let out = ok(&sandbox(&["--policy", docker.to_str().unwrap()], &["/usr/bin/python3", "-c", "import os; print(os.getpid() > 0)"]));
    assert_eq!(out, "True\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn policy_limits_on_threads_and_memory() {
    let dir = std::env::temp_dir().join(format!("dune-sandbox-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("limits.json");
    std::fs::write(&policy, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"dune\": { \"limits\": { \"threads\": 3, \"memory\": 268435456 } }\n}\n").unwrap();
    let p = policy.to_str().unwrap();
    // Threads that stay alive: with the main thread, the third new one is refused
    // (EAGAIN: "can't start new thread"), with an audit line.
    let code = "import threading\ne=threading.Event(); ts=[]\ntry:\n  for i in range(8):\n    t=threading.Thread(target=e.wait); t.start(); ts.append(t)\n  print('started', len(ts))\nexcept RuntimeError:\n  print('refused after', len(ts))\ne.set(); [t.join() for t in ts]\n";
    let out = sandbox(&["--policy", p], &["/usr/bin/python3", "-c", code]);
    assert_eq!(ok(&out), "refused after 2\n");
    audited(&out, "the policy allows 3 threads");
    // 256 MiB of memory: python3 runs, but a 512 MiB buffer is a MemoryError.
    let code = "import sys\ntry:\n  b = bytearray(512 << 20)\n  print('allocated')\nexcept MemoryError:\n  print('MemoryError')\nb = bytearray(16 << 20); print(len(b))\n";
    assert_eq!(ok(&sandbox(&["--policy", p], &["/usr/bin/python3", "-c", code])), "MemoryError\n16777216\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exitless_forwarding_keeps_semantics_and_avoids_exits() {
    // The same programs with calls forwarded through polling helpers: threads, fork
    // and exec, signals (a timer interrupting a blocking read through the helper).
    for (what, want) in [("threads", "threads: counter 160000, per-thread 160000\n"), ("fork-exec", "child-exec\nfork-exec: ok\n"), ("signals", "signals: ok (spun 1)\n")] {
        let out = sandbox(&["--exitless"], &[WORKLOAD, what]);
        assert_eq!(ok(&out), want, "{what}: {}", show(&out));
    }
    // Many reads and writes through a pipe in one process: forwarded without exits.
    // (Forked children have no helpers: only one process is measured.)
    let code = "import os\nr, w = os.pipe()\nn = 0\nfor _ in range(2500):\n  os.write(w, b'x'); n += len(os.read(r, 1))\nprint(n)\n";
    let out = sandbox(&["--exitless", "--stats"], &["/usr/bin/python3", "-c", code]);
    assert_eq!(ok(&out), "2500\n");
    let err = text(&out.stderr);
    let stats: Vec<&str> = err.lines().filter(|l| l.contains("] stats: ")).collect();
    assert!(!stats.is_empty(), "{}", show(&out));
    // The shell and its forked children (which have no helpers) print stats too; the
    // exitless process is the one with the most forwarded calls.
    let num = |l: &str, w: &str| -> u64 {
        let i = l.find(w).unwrap_or(0);
        l[..i].trim_end().rsplit(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let exits = |l: &str| num(&l[l.find("exits to the host:").unwrap_or(0)..], "system calls");
    let busiest = stats.iter().max_by_key(|l| num(l, "forwarded")).unwrap();
    let (forwarded, exits) = (num(busiest, "forwarded"), exits(busiest));
    assert!(forwarded > 4000, "{busiest}");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        // A CPU to spare: the helper answers without exits.
        assert!(exits * 2 < forwarded, "{busiest}");
    } else {
        // One CPU: no helper (it could only take turns with the thread waiting for
        // it); every call takes the ordinary path, one exit each, no more.
        assert!(exits >= forwarded && exits < forwarded + forwarded / 4, "{busiest}");
    }
}

#[test]
fn files_need_allow_read_and_allow_write() {
    let dir = std::env::temp_dir().join(format!("dune-sandbox-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.txt"), "secret data\n").unwrap();
    let d = dir.to_str().unwrap();
    let script = format!("cat {d}/in.txt && echo written > {d}/out.txt && cat {d}/out.txt");
    // Without permission: the read is refused, with an audit line.
    let out = sandbox(&[], &["/bin/sh", "-c", &script]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(text(&out.stderr).contains("denied open(\""), "{}", show(&out));
    // Read-only: reading works, writing is refused.
    let out = sandbox(&["--allow-read", d], &["/bin/sh", "-c", &script]);
    assert!(text(&out.stdout).starts_with("secret data\n") && !out.status.success(), "{}", show(&out));
    assert!(!dir.join("out.txt").exists());
    // Read-write: both.
    let out = ok(&sandbox(&["--allow-write", d], &["/bin/sh", "-c", &script]));
    assert_eq!(out, "secret data\nwritten\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn network_needs_allow_net() {
    let code = "import socket\ns=socket.socket()\ntry:\n  s.bind(('127.0.0.1', 0)); print('bound')\nexcept OSError as e:\n  print('refused', e.errno)\n";
    assert_eq!(ok(&sandbox(&[], &["/usr/bin/python3", "-c", code])), "refused 13\n");
    assert_eq!(ok(&sandbox(&["--allow-net", "127.0.0.1"], &["/usr/bin/python3", "-c", code])), "bound\n");
}

#[test]
fn trace_logs_calls_and_verdicts() {
    let out = sandbox(&["--trace"], &["/usr/bin/busybox", "cat", "/etc/shadow"]);
    let err = text(&out.stderr);
    assert!(err.contains("write(") || err.contains("openat("), "{}", show(&out));
    assert!(err.contains("denied open(\"/etc/shadow\""), "{}", show(&out));
}

#[test]
fn c_api_static_and_shared() {
    const BUILD_C: &str = "build them on the host first with apps/sandbox/build-c.sh (scripts/test does)";
    let inputs = ["apps/sandbox/src", "apps/sandbox/include", "apps/sandbox/tests/c", "crates/libdune/src"];
    for bin in ["sandbox-capi", "sandbox-capi-shared"] {
        let exe = fresh(profile_dir().join(bin), &inputs, BUILD_C);
        let mut cmd = Command::new(&exe);
        cmd.env_remove("LD_LIBRARY_PATH").args(["-", "/usr/share", "/usr/bin/busybox", "sh", "-c", "echo from C; cat /etc/shadow"]);
        let out = run_bounded(cmd);
        // The program ran (ring 3, built-in policy): its output, its exit status, the
        // monitor's denial of /etc/shadow.
        assert_eq!(text(&out.stdout), "from C\n", "{bin}: {}", show(&out));
        assert!(text(&out.stderr).contains("denied open(\"/etc/shadow\""), "{bin}: {}", show(&out));
        // A malformed policy: no sandbox, the file and line in the message.
        let bad = std::env::temp_dir().join(format!("dune-capi-policy-{}.json", std::process::id()));
        std::fs::write(&bad, "{\"defaultAction\": \"SCMP_ACT_NOPE\"}\n").unwrap();
        let mut cmd = Command::new(&exe);
        cmd.args([bad.to_str().unwrap(), "/etc", "/bin/true"]);
        let out = run_bounded(cmd);
        assert_eq!(out.status.code(), Some(4), "{bin}: {}", show(&out));
        assert!(text(&out.stdout).starts_with(&format!("policy error: {}:1:", bad.display())), "{bin}: {}", show(&out));
        // A missing program: the shell's 127 and a message.
        let mut cmd = Command::new(&exe);
        cmd.args(["-", "/etc", "/no/such/program"]);
        let out = run_bounded(cmd);
        assert_eq!(out.status.code(), Some(127), "{bin}: {}", show(&out));
        std::fs::remove_file(&bad).unwrap();
    }
}

// ---- bad input ------------------------------------------------------------------

#[test]
fn bad_programs_and_policies_are_one_line_errors() {
    let dir = std::env::temp_dir().join(format!("dune-sandbox-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let notelf = dir.join("notelf");
    std::fs::write(&notelf, "just text\n").unwrap();
    std::fs::set_permissions(&notelf, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut trunc = std::fs::read("/usr/bin/busybox").unwrap();
    trunc.truncate(3000);
    let truncated = dir.join("truncated");
    std::fs::write(&truncated, trunc).unwrap();
    std::fs::set_permissions(&truncated, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let policy = dir.join("policy.json");
    std::fs::write(&policy, "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"bogus\": 1\n}\n").unwrap();
    let cases: [(&[&str], &[&str], i32); 4] = [
        (&[], &["/no/such/program"], 127),
        (&[], &[notelf.to_str().unwrap()], 126),
        (&[], &[truncated.to_str().unwrap()], 126),
        (&["--policy", policy.to_str().unwrap()], &["/bin/true"], 126),
    ];
    for (opts, argv, code) in cases {
        let out = sandbox(opts, argv);
        assert_eq!(out.status.code(), Some(code), "{argv:?}: {}", show(&out));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {}", show(&out));
        assert!(err.starts_with("dune: "), "{}", show(&out));
    }
    let out = sandbox(&["--policy", policy.to_str().unwrap()], &["/bin/true"]);
    assert!(text(&out.stderr).contains("policy.json:3:"), "file and line: {}", show(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- the adversarial suite -------------------------------------------------------

/// Runs one escape attempt; returns its output.
fn attempt(name: &str, opts: &[&str], extra: &[&str]) -> Output {
    let mut argv = vec![ESCAPE, name];
    argv.extend_from_slice(extra);
    sandbox(opts, &argv)
}

/// The attempt was refused: the program saw every call fail and said so.
fn refused(name: &str, opts: &[&str], extra: &[&str]) -> Output {
    let out = attempt(name, opts, extra);
    assert_eq!(text(&out.stdout).lines().last(), Some(format!("contained: {name}").as_str()), "{name}: {}", show(&out));
    assert!(out.status.success(), "{name}: {}", show(&out));
    out
}

/// The program was killed by `sig`, and the monitor said why.
fn killed(name: &str, sig: i32) {
    let out = attempt(name, &[], &[]);
    assert_eq!(out.status.signal(), Some(sig), "{name}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED"), "{name}: {}", show(&out));
    assert!(text(&out.stderr).contains("killed the program with signal"), "{name}: the monitor reports it: {}", show(&out));
}

fn audited(out: &Output, what: &str) {
    assert!(text(&out.stderr).contains(what), "audit line {what:?} missing: {}", show(out));
}

#[test]
fn escape_proc_self_mem() {
    let out = refused("proc-self-mem", &["--allow-read", "/proc"], &[]);
    audited(&out, "denied open(\"/proc/self/mem\"");
}

#[test]
fn escape_process_vm_and_ptrace() {
    audited(&refused("process-vm", &[], &[]), "denied process_vm_readv");
    audited(&refused("ptrace", &[], &[]), "denied ptrace");
}

#[test]
fn escape_io_uring_ldt_personality() {
    audited(&refused("io-uring", &[], &[]), "denied io_uring_setup");
    let out = refused("modify-ldt", &[], &[]);
    audited(&out, "denied modify_ldt");
    audited(&out, "personality");
}

#[test]
fn escape_memory_calls_over_the_monitor() {
    let out = refused("monitor-memory-calls", &[], &[]);
    for call in ["mprotect(", "munmap(", "mremap(", "mmap(", "madvise("] {
        audited(&out, &format!("denied {call}"));
    }
}

#[test]
fn escape_pointers_into_the_monitor() {
    refused("monitor-pointers", &[], &[]);
    audited(&refused("handler-in-monitor", &[], &[]), "denied rt_sigaction");
    let out = refused("fs-gs-base", &[], &[]);
    audited(&out, "ARCH_SET_FS");
    audited(&out, "ARCH_SET_GS");
}

#[test]
fn escape_unknown_and_dangerous_calls() {
    let out = refused("unknown-syscalls", &[], &[]);
    audited(&out, "denied syscall_1000");
    audited(&out, "denied bpf");
}

#[test]
fn escape_closing_every_descriptor_leaves_the_monitor_intact() {
    let out = refused("close-everything", &[], &[]);
    // The monitor's audit descriptor survived the program's close/dup2 sweep.
    audited(&out, "denied open(\"/etc/shadow\"");
}

#[test]
fn escape_toctou_path_swap_by_a_sibling_thread() {
    refused("toctou-path", &[], &[]);
}

#[test]
fn escape_symlinks_out_of_a_writable_tree() {
    let dir = std::env::temp_dir().join(format!("dune-sandbox-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    audited(&refused("symlink-escape", &["--allow-write", d], &[d]), "denied open(");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn escape_gs_selector_page_zero_and_runtime_descriptors() {
    refused("gs-selector", &[], &[]);
    refused("runtime-fds", &[], &[]);
}

#[test]
fn escape_network_and_signals_to_other_processes() {
    audited(&refused("network", &[], &[]), "not allowed by the network rules");
    audited(&refused("signals-to-others", &[], &[]), "denied kill(1");
}

#[test]
fn escape_hypercalls_and_32_bit_entries_kill_the_program() {
    killed("int80", libc::SIGSEGV);
    // sysenter: #UD or #GP, the program dies.
    let out = attempt("sysenter", &[], &[]);
    assert!(matches!(out.status.signal(), Some(libc::SIGILL | libc::SIGSEGV)), "{}", show(&out));
    audited(&out, "killed the program with signal");
    // A hypercall carrying exit_group(42): killed (#UD/#GP) or refused with an error
    // (KVM answers hypercalls at CPL 3 with -KVM_EPERM); never exit status 42.
    for name in ["vmcall", "vmmcall"] {
        let out = attempt(name, &[], &[]);
        let contained = out.status.success() && text(&out.stdout).ends_with(&format!("contained: {name}\n"));
        let killed = matches!(out.status.signal(), Some(libc::SIGILL | libc::SIGSEGV)) && text(&out.stderr).contains("killed the program with signal");
        assert!(contained || killed, "{name}: {}", show(&out));
    }
}

#[test]
fn escape_privileged_instructions_kill_the_program() {
    for name in ["hlt", "cli", "outb", "mov-cr3", "wrmsr", "lgdt"] {
        let out = attempt(name, &[], &[]);
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{name}: {}", show(&out));
        audited(&out, "denied privileged instruction");
    }
    killed("wrgsbase", libc::SIGILL);
}

#[test]
fn escape_touching_monitor_memory_kills_the_program() {
    killed("read-monitor", libc::SIGSEGV);
    killed("jump-monitor", libc::SIGSEGV);
    killed("far-jump-ring0", libc::SIGSEGV);
    killed("sigreturn-ring0", libc::SIGSEGV);
}
