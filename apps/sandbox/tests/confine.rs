//! The kernel's line without the monitor: `dune-confine-probe` confines itself as
//! the sandbox does and then makes, natively, the calls the monitor would refuse.
//! Every one must be refused by the kernel too: a monitor bug is not an escape.
//! (The VM lane runs the same probe on its older kernel: `dune-tests`,
//! `tests/sandbox_confine.rs`.)

use std::process::Command;

fn probe(read_root: bool) -> String {
    let root = std::env::temp_dir().join(format!("dune-confine-{}-{read_root}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["ro", "rw", "outside"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("ro/marker"), "ro\n").unwrap();
    std::fs::write(root.join("outside/secret"), "secret\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dune-confine-probe"));
    cmd.arg(root.join("ro")).arg(root.join("rw")).arg(root.join("outside"));
    if read_root {
        cmd.arg("--read-root");
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!text.contains("ESCAPED"), "{text}\n{err}");
    assert!(out.status.success(), "{:?}\n{text}\n{err}", out.status);
    assert!(!root.join("outside/created").exists() && !root.join("ro/newdir").exists(), "{text}");
    let _ = std::fs::remove_dir_all(&root);
    text
}

#[test]
fn the_kernel_refuses_what_the_monitor_would() {
    let text = probe(false);
    for what in ["chmod 04755", "socket(AF_INET, SOCK_RAW)", "socket(AF_PACKET)", "ptrace", "bpf", "madvise(MADV_SOFT_OFFLINE)", "prctl(PR_SET_DUMPABLE, 1)", "raise RLIMIT_CORE", "a core dump", "ioctl(TIOCSTI)"] {
        assert!(text.lines().any(|l| l.starts_with("refused: ") && l.contains(what)), "{what}: {text}");
    }
    let layers = text.lines().last().unwrap_or_default();
    assert!(layers.starts_with("layers: no_new_privs yes") && layers.contains("seccomp yes"), "{layers}");
    // This machine's kernel (Linux 6.x with Landlock) must give Landlock: a kernel
    // without it is reported, never silently passed.
    if layers.contains("Landlock ABI") {
        for what in ["create a file in a directory no tree holds", "read /etc/shadow", "mkdir in a read-only tree"] {
            assert!(text.lines().any(|l| l.starts_with("refused: ") && l.contains(what)), "{what}: {text}");
        }
    } else {
        assert!(text.contains("not covered: files outside the trees"), "{text}");
    }
}

#[test]
fn devices_under_a_readable_root_stay_closed() {
    let text = probe(true);
    // SAFETY: geteuid has no effect.
    if unsafe { libc::geteuid() } == 0 {
        // As root the devices exist and only the kernel's layers keep them closed.
        assert!(text.lines().any(|l| l.starts_with("refused: open /dev/")), "{text}");
    }
}
