//! The sandbox's kernel line alone, in the VM lane (its kernel is older than the
//! development machines': Landlock ABI 2, no TCP rules or scopes): the probe
//! confines itself as the sandbox does and makes, with no monitor, the calls the
//! monitor would refuse. Each must be refused by the kernel, or be reported as not
//! covered by this kernel (`apps/sandbox/tests/confine.rs` runs it on the host).

use std::path::PathBuf;
use std::process::Command;

use dune_tests::{fresh, profile_dir, run_bounded};

fn probe_bin() -> PathBuf {
    fresh(profile_dir().join("dune-confine-probe"), &["apps/sandbox/src"], "build it on the host first with `cargo build -p dune-sandbox` (scripts/test does)")
}

fn run(read_root: bool) -> String {
    let root = std::env::temp_dir().join(format!("dune-confine-lane-{}-{read_root}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["ro", "rw", "outside"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("ro/marker"), "ro\n").unwrap();
    std::fs::write(root.join("outside/secret"), "secret\n").unwrap();
    let mut cmd = Command::new(probe_bin());
    cmd.arg(root.join("ro")).arg(root.join("rw")).arg(root.join("outside"));
    if read_root {
        cmd.arg("--read-root");
    }
    let out = run_bounded(cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("ESCAPED") && out.status.success(), "{:?}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(!root.join("outside/created").exists() && !root.join("ro/newdir").exists(), "{text}");
    let _ = std::fs::remove_dir_all(&root);
    text
}

#[test]
fn the_lane_kernel_refuses_what_the_monitor_would() {
    let text = run(false);
    let layers = text.lines().last().unwrap_or_default();
    // The lane's Debian 6.1 kernel: Landlock ABI 2, seccomp, and root's namespaces.
    assert!(layers.contains("Landlock ABI") && layers.contains("seccomp yes") && layers.contains("mount namespace yes"), "{layers}");
    for what in ["create a file in a directory no tree holds", "read /etc/shadow", "chmod 04755", "socket(AF_INET, SOCK_PACKET)", "connect to 1.1.1.1:53", "ptrace", "a core dump", "any capability still held"] {
        assert!(text.lines().any(|l| l.starts_with("refused: ") && l.contains(what)), "{what}: {text}");
    }
}

#[test]
fn devices_under_a_readable_root_stay_closed_in_the_lane() {
    let text = run(true);
    for dev in ["/dev/port", "/dev/mem", "/dev/kmsg"] {
        if std::path::Path::new(dev).exists() {
            assert!(text.contains(&format!("refused: open {dev}")), "{dev}: {text}");
        }
    }
}
