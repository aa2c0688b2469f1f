//! The sandbox's red-team suite (`csrc/sandbox-attack.c`), in the VM lane.
//!
//! Each attack is an escape that worked on an earlier version of the sandbox,
//! found by attacking it white-box with the code in hand; each must now be
//! contained. The policy is the red team's: everything readable (`--allow-read /`),
//! one writable tree, run as root in the lane. Every test makes its own read-only
//! and read-write directories and checks them after the attack too.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use dune_tests::{fresh, profile_dir, run_bounded};

const BUILD: &str = "build it on the host first with `cargo build -p dune-cli` (scripts/test does)";
const ATTACK: &str = env!("SANDBOX_ATTACK");

fn dune() -> PathBuf {
    fresh(profile_dir().join("dune"), &["crates/dune-cli/src", "apps/sandbox/src", "crates/libdune/src"], BUILD)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!("{:?}\nstdout:\n{}\nstderr:\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

/// A read-only directory (with a file `marker`) and a read-write one, removed on drop.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        let root = std::env::temp_dir().join(format!("dune-attack-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("ro")).unwrap();
        std::fs::create_dir_all(root.join("rw")).unwrap();
        std::fs::write(root.join("ro/marker"), "read-only\n").unwrap();
        std::fs::set_permissions(root.join("ro"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Dirs { root }
    }
    fn ro(&self) -> String {
        self.root.join("ro").to_string_lossy().into_owned()
    }
    fn rw(&self) -> String {
        self.root.join("rw").to_string_lossy().into_owned()
    }
    /// The red team's policy: read everything, write `rw`.
    fn policy(&self) -> Vec<String> {
        vec!["--allow-read".into(), "/".into(), "--allow-write".into(), self.rw()]
    }
    fn ro_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("ro")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn command(opts: &[String], attack: &[&str]) -> Command {
    let mut cmd = Command::new(dune());
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd.arg("sandbox").args(opts).arg("--").arg(ATTACK).args(attack);
    cmd
}

/// Runs an attack under `opts` and requires it contained: its last line says so,
/// it exited 0, and no line says it escaped.
fn contained(opts: &[String], attack: &[&str]) -> Output {
    let out = run_bounded(command(opts, attack));
    let name = attack[0];
    assert!(!text(&out.stdout).contains("ESCAPED"), "{name}: {}", show(&out));
    assert_eq!(text(&out.stdout).lines().last(), Some(format!("contained: {name}").as_str()), "{name}: {}", show(&out));
    assert!(out.status.success(), "{name}: {}", show(&out));
    out
}

// ---- round 0: the escapes issue 16 reports -------------------------------------------------

#[test]
fn network_without_a_rule_through_implicit_binds() {
    let d = Dirs::new("net");
    contained(&d.policy(), &["listen-unbound"]);
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    contained(&opts, &["sendto-unbound"]);
}

#[test]
fn no_core_dump_into_a_read_only_tree() {
    let d = Dirs::new("core");
    contained(&d.policy(), &["core-dump", &d.ro()]);
    assert_eq!(d.ro_entries(), ["marker"]);
}

#[test]
fn monitor_memory_never_shows_in_a_dontfork_hole() {
    let d = Dirs::new("dontfork");
    contained(&d.policy(), &["dontfork"]);
}

#[test]
fn fchmod_futimens_fchown_act_on_what_was_checked() {
    let d = Dirs::new("fchmod");
    let before = std::fs::metadata(d.ro()).unwrap();
    contained(&d.policy(), &["fchmod-race", &d.ro(), &d.rw()]);
    let after = std::fs::metadata(d.ro()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((before.mode(), before.gid(), before.mtime()), (after.mode(), after.gid(), after.mtime()));
}

#[test]
fn the_resolvers_descriptors_cannot_be_renumbered() {
    let d = Dirs::new("resolver");
    contained(&d.policy(), &["resolver-race", &d.ro(), &d.rw()]);
    assert_eq!(d.ro_entries(), ["marker"]);
}

#[test]
fn raw_and_packet_sockets_are_refused() {
    let d = Dirs::new("raw");
    contained(&d.policy(), &["raw-sockets"]);
}

#[test]
fn no_set_id_files_and_no_dangerous_madvise() {
    let d = Dirs::new("setid");
    contained(&d.policy(), &["setid-files", &d.rw()]);
    for e in std::fs::read_dir(d.rw()).unwrap() {
        let e = e.unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = e.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o6000, 0, "{:?} has mode {mode:o}", e.path());
    }
    contained(&d.policy(), &["madvise-advice"]);
}

// ---- round 0: what the issue saw in the code ------------------------------------------------

#[test]
fn mremap_never_frees_what_a_monitor_mapping_can_take() {
    let d = Dirs::new("mremap");
    contained(&d.policy(), &["mremap-race"]);
}

/// The attack forks a child and reaps it; a process outside the sandbox then takes
/// the child's pid; the attack kills that pid. The outside process must survive.
#[test]
fn a_reaped_childs_pid_reused_outside_is_never_signalled() {
    let d = Dirs::new("pid");
    let mut cmd = command(&d.policy(), &["reused-pid"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let pid: i32 = first.strip_prefix("reaped ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("unexpected output {first:?}"));
    // Have the next process made on the machine take that pid.
    let mut outsider = None;
    for _ in 0..20 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).expect("ns_last_pid (root in the lane)");
        let s = Command::new("/bin/sleep").arg("60").spawn().unwrap();
        if s.id() as i32 == pid {
            outsider = Some(s);
            break;
        }
        let mut s = s;
        let _ = s.kill();
        let _ = s.wait();
    }
    let mut outsider = outsider.expect("could not make a process with the reaped child's pid");
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = outsider.try_wait().unwrap().is_none();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(alive, "ESCAPED: the sandbox signalled pid {pid}, a process outside it: {rest:?}");
    assert!(status.success(), "{status:?} {rest:?}");
}

#[test]
fn limits_hold_across_processes() {
    let d = Dirs::new("limits");
    let policy = d.root.join("limits.json");
    std::fs::write(&policy, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"dune\": { \"readOnly\": [\"/\"], \"limits\": { \"threads\": 4, \"processes\": 4, \"memory\": 100663296 } }\n}\n").unwrap();
    let opts = vec!["--policy".to_string(), policy.to_string_lossy().into_owned()];
    contained(&opts, &["limits-across-processes"]);
}

#[test]
fn no_locks_or_leases_on_read_only_files() {
    let d = Dirs::new("locks");
    contained(&d.policy(), &["locks-on-read-only", &d.ro()]);
}

#[test]
fn the_outer_terminal_is_not_the_programs() {
    let d = Dirs::new("tty");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings are not asked for.
    let r = unsafe { libc::openpty(&mut master, &mut slave, core::ptr::null_mut(), core::ptr::null(), core::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = command(&d.policy(), &["terminal-ioctls"]);
    cmd.stdin(Stdio::from(slave));
    let out = run_bounded(cmd);
    drop(master);
    assert!(!text(&out.stdout).contains("ESCAPED") && text(&out.stdout).ends_with("contained: terminal-ioctls\n"), "{}", show(&out));
}

#[test]
fn devices_no_rule_names_cannot_be_opened() {
    let d = Dirs::new("dev");
    contained(&d.policy(), &["devices"]);
}

#[test]
fn socket_options_the_kernel_follows_are_refused() {
    let d = Dirs::new("sockopt");
    contained(&d.policy(), &["sockopt-pointers"]);
}

#[test]
fn proc_self_fd_shows_only_the_programs_descriptors() {
    let d = Dirs::new("procfd");
    contained(&d.policy(), &["proc-fd-listing"]);
}

#[test]
fn the_exec_loaders_descriptor_cannot_be_swapped() {
    let d = Dirs::new("execfd");
    let out = contained(&d.policy(), &["exec-fd-swap", &d.rw()]);
    assert!(!text(&out.stdout).contains("IMPOSTOR"), "ESCAPED: the loader ran the swapped-in file: {}", show(&out));
}

#[test]
fn the_programs_rlimit_as_does_not_starve_the_monitor() {
    let d = Dirs::new("rlimit");
    let out = contained(&d.policy(), &["rlimit-as"]);
    assert!(text(&out.stdout).contains("after the limits"), "{}", show(&out));
}

// ---- round 1: a second white-box pass over the layered monitor ------------------------------

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

/// A limits-only policy (JSON): everything readable, `rw` writable if given.
fn limits_policy(d: &Dirs, memory_mib: u64, rw: bool) -> Vec<String> {
    let policy = d.root.join("limits.json");
    let write = if rw { format!(", \"readWrite\": [\"{}\"]", d.rw()) } else { String::new() };
    std::fs::write(&policy, format!("{{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"dune\": {{ \"readOnly\": [\"/\"]{write}, \"limits\": {{ \"memory\": {} }} }}\n}}\n", memory_mib << 20)).unwrap();
    vec!["--policy".to_string(), policy.to_string_lossy().into_owned()]
}

/// Has the next process made on the machine take `pid` (`ns_last_pid`, root in the lane).
fn spawn_with_pid(pid: i32, cmd: &mut dyn FnMut() -> Command) -> std::process::Child {
    for _ in 0..20 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).expect("ns_last_pid (root in the lane)");
        let mut s = cmd().spawn().unwrap();
        if s.id() as i32 == pid {
            return s;
        }
        let _ = s.kill();
        let _ = s.wait();
    }
    panic!("could not make a process with pid {pid}");
}

#[test]
fn fchmodat2_nofollow_does_not_follow_the_link() {
    let d = Dirs::new("fchmodat2");
    let marker = d.root.join("ro/marker");
    let before = mode(&marker);
    contained(&d.policy(), &["fchmodat2-nofollow", &d.ro(), &d.rw()]);
    assert_eq!(mode(&marker), before, "ESCAPED: the read-only marker's mode changed");
}

#[test]
fn chmod_acts_on_the_name_it_checked() {
    let d = Dirs::new("chmodrace");
    let marker = d.root.join("ro/marker");
    let before = mode(&marker);
    contained(&d.policy(), &["chmod-race", &d.ro(), &d.rw()]);
    assert_eq!(mode(&marker), before, "ESCAPED: the read-only marker's mode changed");
}

#[test]
fn unix_connect_reaches_only_the_socket_it_checked() {
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let d = Dirs::new("unixrace");
    let sock = d.root.join("outside.sock");
    let l = UnixListener::bind(&sock).unwrap();
    l.set_nonblocking(true).unwrap();
    let (hits, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (h, s) = (hits.clone(), stop.clone());
    let server = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    h.fetch_add(1, Ordering::Relaxed);
                    let _ = c.write_all(b"OUTSIDE\n");
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    let out = run_bounded(command(&d.policy(), &["unix-connect-race", &d.rw(), &sock.to_string_lossy()]));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert_eq!(hits.load(Ordering::Relaxed), 0, "ESCAPED: the outside socket took connections: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The sandbox leads its process group, and a process outside it is in the group
/// too (`dune sandbox -- prog | cat` under a job-control shell). kill(0) must not
/// reach that process.
#[test]
fn kill_zero_never_reaches_an_outside_process_of_the_sandboxs_group() {
    use std::os::unix::process::CommandExt;
    let d = Dirs::new("pgrp");
    let mut cmd = command(&d.policy(), &["group-kill"]);
    cmd.process_group(0);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(first.starts_with("ready"), "unexpected output {first:?}");
    let mut outsider = Command::new("/bin/sleep").arg("60").process_group(child.id() as i32).spawn().unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = outsider.try_wait().unwrap().is_none();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(alive, "ESCAPED: the sandbox killed pid {}, a process outside it in its group: {rest:?}", outsider.id());
    assert!(status.success(), "{status:?} {rest:?}");
}

/// SIGCHLD ignored: the kernel reaps the child. A process outside then takes its pid
/// (leading a group of that number); F_SETOWN's SIGIO and kill(-pid) must not reach it.
#[test]
fn a_child_the_kernel_reaped_is_no_longer_a_target() {
    use std::os::unix::process::CommandExt;
    let d = Dirs::new("autoreap");
    let mut cmd = command(&d.policy(), &["autoreap-reuse"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let pid: i32 = first.strip_prefix("reaped ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("unexpected output {first:?}"));
    let mut outsider = spawn_with_pid(pid, &mut || {
        let mut c = Command::new("/bin/sleep");
        c.arg("60").process_group(0);
        c
    });
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let gone = outsider.try_wait().unwrap();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(gone.is_none(), "ESCAPED: pid {pid}, a process outside the sandbox, ended ({gone:?}): {rest:?}");
    assert!(status.success(), "{status:?} {rest:?}");
}

#[test]
fn memory_mapped_low_is_not_subtracted_from_later_mappings() {
    let d = Dirs::new("undercount");
    contained(&limits_policy(&d, 64, false), &["mmap-undercount", "64"]);
}

#[test]
fn an_execed_image_counts_against_the_memory_limit() {
    let d = Dirs::new("execbss");
    contained(&limits_policy(&d, 64, true), &["exec-bss", &d.rw(), "64"]);
}

#[test]
fn no_wildcard_bind_through_a_dissolved_association() {
    let d = Dirs::new("udprace");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    contained(&opts, &["udp-bind-race"]);
}

#[test]
fn no_memory_of_outside_processes_through_proc() {
    let d = Dirs::new("environ");
    let out = contained(&d.policy(), &["proc-environ"]);
    eprintln!("{}", show(&out));
}

/// On tmpfs (the lane's /tmp is an overlay, which refuses whiteouts): Linux lets
/// anyone make a whiteout (5.8 and later), a 0:0 character device node.
#[test]
fn no_whiteout_device_nodes() {
    let d = Dirs::new("whiteout");
    let shm = std::path::Path::new("/dev/shm").join(format!("dune-attack-whiteout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shm);
    let rw = if std::fs::create_dir_all(&shm).is_ok() { shm.to_string_lossy().into_owned() } else { d.rw() };
    let opts = vec!["--allow-read".to_string(), "/".to_string(), "--allow-write".to_string(), rw.clone()];
    let out = run_bounded(command(&opts, &["rename-whiteout", &rw]));
    let devices: Vec<String> = std::fs::read_dir(&rw)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| std::os::unix::fs::FileTypeExt::is_char_device(&e.file_type().unwrap()))
        .map(|e| e.path().display().to_string())
        .collect();
    let _ = std::fs::remove_dir_all(&shm);
    assert!(devices.is_empty(), "ESCAPED: device nodes in the writable tree {rw}: {devices:?}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// With a network rule the sandbox shares the host's network namespace, so its
/// abstract unix names: an autobound, listening socket is reachable from outside.
#[test]
fn no_autobound_abstract_socket_reachable_from_outside() {
    let d = Dirs::new("abstract");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let mut child = command(&opts, &["abstract-autobind"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let mut connected = false;
    if let Some(name) = first.strip_prefix("abstract ") {
        // SAFETY: a socket, an address built in a local, connect and write on it.
        unsafe {
            let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let mut sa: libc::sockaddr_un = core::mem::zeroed();
            sa.sun_family = libc::AF_UNIX as u16;
            for (i, b) in name.bytes().enumerate() {
                sa.sun_path[1 + i] = b as libc::c_char;
            }
            let len = (core::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as u32;
            if libc::connect(s, &sa as *const _ as *const libc::sockaddr, len) == 0 {
                connected = true;
                libc::write(s, b"from outside\n".as_ptr().cast(), 13);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            libc::close(s);
        }
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(!connected, "ESCAPED: connected from outside to the sandbox's abstract socket {first:?}: {rest:?}");
    assert!(status.success(), "{first:?} {status:?} {rest:?}");
}

#[test]
fn fchmods_check_walks_on_descriptors_no_sibling_can_renumber() {
    let d = Dirs::new("wwalk");
    let marker = d.root.join("ro/marker");
    let before = mode(&marker);
    contained(&d.policy(), &["writable-walk-race", &d.ro(), &d.rw()]);
    assert_eq!(mode(&marker), before, "ESCAPED: the read-only marker's mode changed");
}

/// The test listens on 127.0.0.1:P; the policy names 0.0.0.0:P only.
#[test]
fn a_rule_for_the_unspecified_address_does_not_reach_loopback() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let d = Dirs::new("unspec");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let (hits, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (h, s) = (hits.clone(), stop.clone());
    let server = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    h.fetch_add(1, Ordering::Relaxed);
                    let _ = c.write_all(b"LOOPBACK\n");
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), format!("0.0.0.0:{port}")]);
    let out = run_bounded(command(&opts, &["connect-unspecified", &port.to_string()]));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert_eq!(hits.load(Ordering::Relaxed), 0, "ESCAPED: 127.0.0.1:{port} took connections: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

#[test]
fn memory_held_in_a_memfd_counts_against_the_limit() {
    // The monitor counts mappings; file pages (a memfd, tmpfs) are the kernel's to
    // count: the sandbox's cgroup (memory.max = the limit plus the monitor's room). The
    // attack is contained when its writes fail, or when the kernel's OOM killer ends
    // it inside its cgroup; never when it holds the memory.
    let d = Dirs::new("memfd");
    let mut opts = limits_policy(&d, 64, false);
    opts.push("--stats".into());
    let out = run_bounded(command(&opts, &["memfd-memory", "64"]));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("ESCAPED"), "{}", show(&out));
    let oom = text(&out.stderr).lines().any(|l| l.contains("cgroup:") && !l.contains("OOM kills 0"));
    let refused = out.status.success() && stdout.ends_with("contained: memfd-memory\n");
    assert!(refused || (out.status.signal() == Some(libc::SIGKILL) && oom), "{}", show(&out));
}

#[test]
fn the_outer_terminals_open_file_stays_blocking() {
    let d = Dirs::new("nonblock");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings are not asked for.
    let r = unsafe { libc::openpty(&mut master, &mut slave, core::ptr::null_mut(), core::ptr::null(), core::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // The shell's view of the same open file.
    let shell = slave.try_clone().unwrap();
    let mut cmd = command(&d.policy(), &["tty-nonblock"]);
    cmd.stdin(Stdio::from(slave));
    let out = run_bounded(cmd);
    drop(master);
    // SAFETY: F_GETFL only reads the open file's flags.
    let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&shell), libc::F_GETFL) };
    assert!(fl >= 0 && fl & libc::O_NONBLOCK == 0, "ESCAPED: the shell's terminal file is now non-blocking (flags {fl:#o}): {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 2: a third white-box pass, after the round-1 fixes ------------------------------

/// The attack program's directory: policies without `/` must let the sandbox run it.
fn attack_dir() -> String {
    std::path::Path::new(ATTACK).parent().unwrap().to_string_lossy().into_owned()
}

/// The builtin policy with `ro` readable and `rw` writable, and no `/`: both trees are
/// isolated (the path resolver's `openat2` fast path applies below them).
fn isolated_policy(d: &Dirs) -> Vec<String> {
    vec!["--allow-read".into(), attack_dir(), "--allow-read".into(), d.ro(), "--allow-write".into(), d.rw()]
}

/// A JSON policy that allows every call the monitor knows (`SCMP_ACT_ALLOW`), reading
/// everything and writing `rw`.
fn allow_all_policy(d: &Dirs) -> Vec<String> {
    let policy = d.root.join("allow-all.json");
    std::fs::write(&policy, format!("{{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"dune\": {{ \"readOnly\": [\"/\"], \"readWrite\": [\"{}\"] }}\n}}\n", d.rw())).unwrap();
    vec!["--policy".to_string(), policy.to_string_lossy().into_owned()]
}

/// A free TCP port on 127.0.0.1 (nothing listens on it once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// With `--allow-net 127.0.0.1:9` only, the attack sets IP_OPTIONS with a loose source
/// route through 127.0.0.77 and sends to 127.0.0.1:9. Loopback traffic is captured
/// here (AF_PACKET, root in the lane): nothing may be sent to 127.0.0.77.
#[test]
fn a_source_route_takes_no_packet_to_an_address_no_rule_names() {
    let d = Dirs::new("srr");
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket calls on a local; the address is built in a zeroed local.
    let cap = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto as i32) };
    assert!(cap >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    unsafe {
        let mut sll: libc::sockaddr_ll = core::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = libc::if_nametoindex(c"lo".as_ptr()) as i32;
        let r = libc::bind(cap, &sll as *const _ as *const libc::sockaddr, core::mem::size_of::<libc::sockaddr_ll>() as u32);
        assert_eq!(r, 0, "bind to lo: {}", std::io::Error::last_os_error());
    }
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let out = run_bounded(command(&opts, &["ip-source-route", "127.0.0.77"]));
    let (mut udp, mut cmsg, mut tcp) = (0, 0, 0);
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: receives into a local buffer of the size given.
        let n = unsafe { libc::recv(cap, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
        let p = &buf[..n as usize];
        if p.len() < 20 || p[0] >> 4 != 4 || p[16..20] != [127, 0, 0, 77] {
            continue;
        }
        match p[9] {
            17 if p.windows(15).any(|w| w == b"DUNE-SRR-MARKER") => udp += 1,
            17 if p.windows(15).any(|w| w == b"DUNE-SRR-CMSG-M") => cmsg += 1,
            6 => tcp += 1,
            _ => {}
        }
    }
    // SAFETY: closes the capture socket made above.
    unsafe { libc::close(cap) };
    assert!(udp == 0 && cmsg == 0 && tcp == 0, "ESCAPED: {udp} UDP datagrams (IP_OPTIONS), {cmsg} (IP_RETOPTS control message) and {tcp} TCP segments went to 127.0.0.77, which no rule names: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// With `--allow-net 127.0.0.1:P` and nothing listening on P: after the refused
/// connect the attack listens on the same socket; a process outside tries to connect
/// to what it listens on.
#[test]
fn listen_after_a_refused_connect_binds_nothing_the_rules_do_not_name() {
    let d = Dirs::new("refused");
    let port = free_port();
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), format!("127.0.0.1:{port}")]);
    let mut child = command(&opts, &["listen-after-refused", &port.to_string()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut connected = false;
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        seen.push(l.clone());
        if let Some(rest) = l.strip_prefix("listening ") {
            let mut it = rest.split_whitespace();
            if let (Some(a), Some(Ok(p))) = (it.next(), it.next().map(str::parse::<u16>)) {
                if p != port {
                    if let Ok(mut s) = std::net::TcpStream::connect((if a == "0.0.0.0" { "127.0.0.1" } else { a }, p)) {
                        connected = true;
                        let _ = s.write_all(b"from outside\n");
                        std::thread::sleep(std::time::Duration::from_millis(300));
                    }
                }
            }
            break;
        }
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    assert!(!connected, "ESCAPED: a process outside connected to the sandbox's listening socket: {seen:?}");
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")) && status.success(), "{status:?} {seen:?}");
}

/// Rules: bind 127.0.0.1:B, connect [::1]:P. The test listens on 127.0.0.1:P (IPv4),
/// which no rule names; nothing listens on [::1]:P.
#[test]
fn the_unspecified_ipv6_address_is_checked_as_what_linux_reaches() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let d = Dirs::new("v6unspec");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let bport = free_port();
    l.set_nonblocking(true).unwrap();
    let (hits, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (h, s) = (hits.clone(), stop.clone());
    let server = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    h.fetch_add(1, Ordering::Relaxed);
                    let _ = c.write_all(b"IPV4-LOOPBACK\n");
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), format!("127.0.0.1:{bport}"), "--allow-net".to_string(), format!("[::1]:{port}")]);
    let out = run_bounded(command(&opts, &["connect-v6-unspecified", &bport.to_string(), &port.to_string()]));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert_eq!(hits.load(Ordering::Relaxed), 0, "ESCAPED: 127.0.0.1:{port} took connections: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The test is a subreaper for the moment: the sandbox's orphan comes to it, dies by
/// SIGKILL and is reaped here, outside the sandbox. A process outside then takes its
/// pid, with a marker in its arguments and environment.
#[test]
fn an_orphans_pid_reused_outside_is_not_the_sandboxs_in_proc() {
    let d = Dirs::new("staleslot");
    let marker = format!("dune-outsider-secret-{}", std::process::id());
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    let mut cmd = command(&d.policy(), &["stale-slot-proc", &marker]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let pid: i32 = first.strip_prefix("orphan ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("unexpected output {first:?}"));
    // Reap it here if it came to us; else wait until someone did.
    let mut st = 0;
    // SAFETY: waits for a process that is (now) this process's child, or fails.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    if r != pid {
        for _ in 0..500 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
    let m = marker.clone();
    let mut outsider = spawn_with_pid(pid, &mut || {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "sleep 30", &m]).env("DUNE_OUTSIDER", &m);
        c
    });
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(!rest.iter().any(|l| l.contains("ESCAPED")), "pid {pid}: {rest:?}");
    assert!(status.success(), "{status:?} {rest:?}");
}

fn eventfd_stat() -> libc::stat {
    // SAFETY: a new eventfd, fstat into a zeroed local, closed again.
    unsafe {
        let e = libc::eventfd(0, 0);
        let mut st: libc::stat = core::mem::zeroed();
        libc::fstat(e, &mut st);
        libc::close(e);
        st
    }
}

/// The anonymous inode is the machine's: an eventfd made here, outside, shows what
/// the sandbox did to it.
#[test]
fn the_machines_anonymous_inode_keeps_its_mode_and_times() {
    let d = Dirs::new("anoninode");
    let before = eventfd_stat();
    let out = run_bounded(command(&allow_all_policy(&d), &["anon-inode-chmod"]));
    let after = eventfd_stat();
    // Put the mode back (the times cannot be).
    // SAFETY: fchmod on an eventfd of this process.
    unsafe {
        let e = libc::eventfd(0, 0);
        libc::fchmod(e, before.st_mode & 0o7777);
        libc::close(e);
    }
    assert_eq!(
        (after.st_mode & 0o7777, after.st_mtime),
        (before.st_mode & 0o7777, before.st_mtime),
        "ESCAPED: the anonymous inode {} of every eventfd/epoll/timerfd on the machine changed from mode {:o} mtime {} to mode {:o} mtime {}: {}",
        after.st_ino,
        before.st_mode & 0o7777,
        before.st_mtime,
        after.st_mode & 0o7777,
        after.st_mtime,
        show(&out)
    );
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// A process outside takes SIGIO for the read end of a pipe (O_ASYNC, F_SETOWN) and
/// ignores SIGIO; the sandbox's stdin is that same open file.
#[test]
fn a_shared_open_files_sigio_owner_gets_no_other_signal() {
    use std::os::unix::process::CommandExt;
    let d = Dirs::new("fsetsig");
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut sleeper = Command::new("/bin/sleep");
    sleeper.arg("30");
    // SAFETY: signal() is async-signal-safe; SIGIO ignored across exec.
    unsafe {
        sleeper.pre_exec(|| {
            libc::signal(libc::SIGIO, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut outsider = sleeper.spawn().unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on the pipe's read end made above.
    unsafe {
        libc::fcntl(r.as_raw_fd(), libc::F_SETOWN, outsider.id() as i32);
        libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_ASYNC);
    }
    let wfd = w.as_raw_fd();
    let poke = |b: &[u8]| {
        // SAFETY: writes a local buffer to the pipe's write end.
        unsafe { libc::write(wfd, b.as_ptr().cast(), b.len()) };
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    // Control: SIGIO alone leaves the outsider running.
    poke(b"c");
    let mut c = [0u8; 1];
    // SAFETY: reads the control byte back into a local.
    unsafe { libc::read(r.as_raw_fd(), c.as_mut_ptr().cast(), 1) };
    assert!(outsider.try_wait().unwrap().is_none(), "the control SIGIO ended the outsider");
    let mut cmd = command(&d.policy(), &["fsetsig-shared-file"]);
    cmd.stdin(Stdio::from(r.try_clone().unwrap()));
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        seen.push(l.clone());
        if l == "ready" {
            break;
        }
    }
    poke(b"x\n");
    let gone = outsider.try_wait().unwrap();
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(gone.is_none(), "ESCAPED: the outsider (pid {}) ended ({gone:?}): the sandbox changed the signal of an open file it shares: {seen:?}", outsider.id());
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")) && status.success(), "{status:?} {seen:?}");
}

/// A character device (1:3, like /dev/null) in a read-only tree the policy names as a
/// tree, not as a device. Root in the lane makes it.
#[test]
fn a_device_node_in_an_isolated_tree_is_refused_by_the_monitor() {
    let d = Dirs::new("fastdev");
    let node = std::ffi::CString::new(format!("{}/devnode", d.ro())).unwrap();
    // SAFETY: mknod with a NUL-terminated path.
    let r = unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
    let out = run_bounded(command(&isolated_policy(&d), &["fast-open-device", &d.ro()]));
    assert!(!text(&out.stdout).contains("ESCAPED"), "ESCAPED: {}", show(&out));
    assert!(!text(&out.stdout).contains("MONITOR BYPASSED"), "the monitor let the device through (the kernel's nodev refused the real open): {}", show(&out));
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn proc_self_fdinfo_shows_only_the_programs_descriptors() {
    let d = Dirs::new("fdinfo");
    contained(&d.policy(), &["proc-fdinfo"]);
}

#[test]
fn the_monitors_arithmetic_on_program_numbers_does_not_overflow() {
    let d = Dirs::new("overflow");
    contained(&allow_all_policy(&d), &["overflow-panic"]);
}

/// `secret/present` exists outside every tree, `secret/absent` does not.
#[test]
fn execve_does_not_tell_whether_a_file_outside_every_tree_exists() {
    let d = Dirs::new("oracle");
    let secret = d.root.join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("present"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(secret.join("present"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    contained(&isolated_policy(&d), &["script-interp-oracle", &d.rw(), &secret.to_string_lossy()]);
}

/// The main thread exits first; a second thread fchmods a read-only file it opened.
#[test]
fn metadata_calls_check_the_file_after_the_main_thread_exited() {
    let d = Dirs::new("leader");
    let marker = d.root.join("ro/marker");
    let before = std::fs::metadata(&marker).unwrap();
    let out = run_bounded(command(&d.policy(), &["leader-gone", &d.ro()]));
    let after = std::fs::metadata(&marker).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((before.mode(), before.mtime()), (after.mode(), after.mtime()), "ESCAPED: the read-only marker changed: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Memory held behind PROT_NONE. The monitor's count must refuse the mapping past the
/// limit; where it does not, the cgroup (memory.max: the limit plus the monitor's room)
/// ends the program with an OOM kill, and the test says the kernel contained it.
#[test]
fn memory_behind_prot_none_still_counts() {
    let d = Dirs::new("hoard");
    let mut opts = limits_policy(&d, 64, false);
    opts.push("--stats".into());
    let out = run_bounded(command(&opts, &["mprotect-hoard", "64"]));
    let stdout = text(&out.stdout);
    let held = stdout.lines().filter_map(|l| l.strip_prefix("held ")?.strip_suffix(" MiB")?.parse::<u64>().ok()).max().unwrap_or(0);
    let oom = text(&out.stderr).lines().any(|l| l.contains("cgroup:") && !l.contains("OOM kills 0"));
    assert!(!stdout.contains("ESCAPED"), "ESCAPED: {}", show(&out));
    assert!(held <= 64, "the monitor let the program hold {held} MiB under a limit of 64 MiB ({}): {}", if oom { "the cgroup's OOM killer ended it" } else { "no OOM kill" }, show(&out));
    assert!(out.status.success(), "{}", show(&out));
}

/// A thread with a descriptor table of its own (CLOSE_RANGE_UNSHARE) chmods a file in
/// the writable tree, then fchmods the read-only marker; the leader holds the marker.
#[test]
fn a_thread_with_its_own_descriptor_table_changes_only_what_was_checked() {
    let d = Dirs::new("unshare");
    let marker = d.root.join("ro/marker");
    let before = mode(&marker);
    let out = run_bounded(command(&d.policy(), &["unshared-fd-table", &d.ro(), &d.rw()]));
    assert_eq!(mode(&marker), before, "ESCAPED: the read-only marker's mode changed: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 3: a fourth white-box pass, after the round-2 fixes ------------------------------

/// Runs `attack` under `opts`; when it prints `listening ADDR PORT`, connects from here
/// to `127.0.0.1:PORT` (IPv4) and says something. Returns whether that connection was
/// made, and everything the attack printed.
fn connect_to_listener_v4(opts: &[String], attack: &[&str]) -> (bool, Vec<String>, std::process::ExitStatus) {
    let mut child = command(opts, attack).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut connected = false;
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        seen.push(l.clone());
        if let Some(rest) = l.strip_prefix("listening ") {
            if let Some(Ok(p)) = rest.split_whitespace().nth(1).map(str::parse::<u16>) {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", p)) {
                    connected = true;
                    let _ = s.write_all(b"from outside over IPv4\n");
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            }
            break;
        }
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    (connected, seen, status)
}

/// Rules name only IPv6 (`[::]:P`, then `::/0`); a process outside connects over IPv4
/// to what the sandbox listens on.
#[test]
fn an_ipv6_wildcard_rule_takes_no_ipv4_connections() {
    let d = Dirs::new("dualstack");
    let port = free_port();
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), format!("[::]:{port}")]);
    let (explicit, seen1, status1) = connect_to_listener_v4(&opts, &["v6-wildcard-takes-ipv4", &port.to_string()]);
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "::/0".to_string()]);
    let (connected, seen, status) = connect_to_listener_v4(&opts, &["v6-wildcard-takes-ipv4", "0"]);
    assert!(!explicit && !connected, "ESCAPED: a process outside connected to the sandbox over IPv4: with only [::]:{port} allowed (bind [::]:{port}): {explicit} {seen1:?}; with only ::/0 allowed (listen's implicit bind): {connected} {seen:?}");
    assert!(!seen1.iter().any(|l| l.contains("ESCAPED")) && status1.success(), "{status1:?} {seen1:?}");
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")) && status.success(), "{status:?} {seen:?}");
}

/// Runs `attack` under `opts`; when it prints `udp-bound ADDR PORT`, sends a datagram
/// from here to `127.0.0.1:PORT`. Returns whether it was sent, and the output.
fn send_to_udp_bound(opts: &[String], attack: &[&str]) -> (bool, Vec<String>, std::process::ExitStatus) {
    let mut child = command(opts, attack).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut sent = false;
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        seen.push(l.clone());
        if let Some(rest) = l.strip_prefix("udp-bound ") {
            if let Some(Ok(p)) = rest.split_whitespace().nth(1).map(str::parse::<u16>) {
                let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                sent = u.send_to(b"datagram from outside\n", ("127.0.0.1", p)).is_ok();
            }
            break;
        }
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    (sent, seen, status)
}

/// Rules: connect and send to 192.0.2.1:9 (TEST-NET-1, no route in the lane) and to
/// 255.255.255.255:9; none for binding the wildcard. When the attack says its UDP
/// socket is bound (`udp-bound ADDR PORT`), a datagram is sent to it from here.
#[test]
fn a_failed_udp_connect_leaves_nothing_bound_to_the_wildcard() {
    let d = Dirs::new("udpfail");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "192.0.2.1:9".to_string(), "--allow-net".to_string(), "255.255.255.255:9".to_string()]);
    let (sent, seen, status) = send_to_udp_bound(&opts, &["udp-failed-connect", "192.0.2.1", "255.255.255.255"]);
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (a datagram sent from outside: {sent}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// With `--allow-net 127.0.0.1:9` only: sends without an address on unbound UDP sockets.
#[test]
fn a_send_without_an_address_binds_nothing_to_the_wildcard() {
    let d = Dirs::new("udpnoaddr");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let (sent, seen, status) = send_to_udp_bound(&opts, &["udp-send-no-address"]);
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (a datagram sent from outside: {sent}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// `secret/` lies outside every tree of the isolated policy (plus a network rule, so the
/// sandbox shares this network namespace): a tmpfs is mounted at `secret/mnt` (root in
/// the lane) and this process listens on the unix socket `secret/agent.sock`.
#[test]
fn proc_self_does_not_name_paths_outside_every_tree() {
    let d = Dirs::new("procself");
    let secret = d.root.join("secret");
    std::fs::create_dir_all(secret.join("mnt")).unwrap();
    let mnt = std::ffi::CString::new(secret.join("mnt").to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mount with NUL-terminated strings and no data.
    let mounted = unsafe { libc::mount(c"tmpfs".as_ptr(), mnt.as_ptr(), c"tmpfs".as_ptr(), 0, core::ptr::null()) } == 0;
    let listener = std::os::unix::net::UnixListener::bind(secret.join("agent.sock")).unwrap();
    let mut opts = isolated_policy(&d);
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let out = run_bounded(command(&opts, &["proc-self-outside", &secret.to_string_lossy()]));
    drop(listener);
    if mounted {
        // SAFETY: unmounts what was mounted above.
        unsafe { libc::umount(mnt.as_ptr()) };
    }
    assert!(!text(&out.stdout).contains("ESCAPED"), "ESCAPED (tmpfs mounted: {mounted}): {}", show(&out));
    assert!(out.status.success(), "{}", show(&out));
}

/// The sandbox's stdin is the read end of a pipe this process also holds (one open
/// file, as with a shell's `{ dune sandbox …; reader; } < fifo`); this process reads
/// from it after the sandbox ended, with its write end open and the pipe empty.
#[test]
fn a_shared_open_file_stays_blocking() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("sharednb");
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, _w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = command(&d.policy(), &["shared-file-nonblock"]);
    cmd.stdin(Stdio::from(r.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: fcntl F_GETFL on this process's read end.
    let fl = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETFL) };
    // With O_NONBLOCK (only then: the pipe is empty and its writer open) the read returns at once.
    let read = if fl >= 0 && fl & libc::O_NONBLOCK != 0 {
        let mut b = [0u8; 1];
        // SAFETY: reads at most one byte into a local.
        let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        format!("read() on it returned {n} ({})", std::io::Error::last_os_error())
    } else {
        String::new()
    };
    assert!(fl >= 0 && fl & libc::O_NONBLOCK == 0, "ESCAPED: the open file this process shares with the sandbox is now non-blocking (flags {fl:#o}); {read}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 4: a fifth white-box pass, after the round-3 fixes ------------------------------

/// With `--allow-net 127.0.0.1:9` only: sends with no address on unbound UDP sockets that
/// fail before EDESTADDRREQ (MSG_OOB, more than 65535 bytes).
#[test]
fn a_send_failing_otherwise_binds_nothing_to_the_wildcard() {
    let d = Dirs::new("udpother");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let (sent, seen, status) = send_to_udp_bound(&opts, &["udp-send-other-error"]);
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (a datagram sent from outside: {sent}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// With `--allow-net ::/0` only (IPv6): an IPv6 UDP socket autobound by a send with no
/// address or a failed connect; a datagram is sent to it from here over IPv4.
#[test]
fn an_autobound_ipv6_socket_takes_no_ipv4() {
    let d = Dirs::new("v6autobind");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "::/0".to_string()]);
    let (sent, seen, status) = send_to_udp_bound(&opts, &["v6-autobind-dual-stack"]);
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (an IPv4 datagram sent from outside: {sent}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// The sandbox's stdin is one end of a unix socket pair whose open file this process
/// also holds; this process reads from it after the sandbox ended, with the peer open
/// and nothing written.
#[test]
fn a_shared_sockets_timeouts_stay_the_outsiders() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("sharedsock");
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (s, _peer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = command(&d.policy(), &["shared-socket-timeout"]);
    cmd.stdin(Stdio::from(s.try_clone().unwrap()));
    let out = run_bounded(cmd);
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut len = core::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: getsockopt writes one timeval and its length into locals.
    let r = unsafe { libc::getsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&mut tv as *mut libc::timeval).cast(), &mut len) };
    let set = r == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0);
    // With a receive timeout (only then: the peer is open and nothing was written) the read returns.
    let read = if set {
        let mut b = [0u8; 1];
        let t = std::time::Instant::now();
        // SAFETY: reads at most one byte into a local.
        let n = unsafe { libc::read(s.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        format!("a blocking read() on it returned {n} ({}) after {:?}", std::io::Error::last_os_error(), t.elapsed())
    } else {
        String::new()
    };
    assert!(!set, "ESCAPED: the socket this process shares with the sandbox now has a receive timeout of {}.{:06} s; {read}: {}", tv.tv_sec, tv.tv_usec, show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The sandbox's stdin is the write end of a pipe whose open file this process also
/// holds (as a shell's `{ dune sandbox …; writer; } | reader` shares stdout). After the
/// sandbox ended, this process writes one line through that open file and reads it back
/// in short reads from the read end.
#[test]
fn a_shared_pipes_writes_stay_a_stream() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("sharedpkt");
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The write end blocking again (the read end, this process's alone, stays non-blocking).
    // SAFETY: fcntl on the write end made above.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETFL, 0) };
    let mut cmd = command(&d.policy(), &["shared-pipe-packet"]);
    cmd.stdin(Stdio::from(w.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: fcntl F_GETFL on this process's write end.
    let fl = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETFL) };
    let line = b"one line from a writer outside\n";
    // SAFETY: writes a local buffer to the pipe's write end.
    unsafe { libc::write(w.as_raw_fd(), line.as_ptr().cast(), line.len()) };
    let mut got = Vec::new();
    loop {
        let mut b = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a local.
        let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
        if n <= 0 {
            break;
        }
        got.extend_from_slice(&b[..n as usize]);
    }
    assert!(
        fl >= 0 && fl & libc::O_DIRECT == 0 && got == line,
        "ESCAPED: the pipe this process shares with the sandbox is in packet mode (flags {fl:#o}): it wrote {:?} and read back {:?}: {}",
        text(line),
        text(&got),
        show(&out)
    );
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// With `--allow-net ::/0` only (IPv6): binds of `[::]:0` raced by a sibling clearing
/// IPV6_V6ONLY with a null value; a datagram is sent to the socket from here over IPv4.
#[test]
fn a_null_v6only_value_cannot_make_a_bound_socket_dual_stack() {
    let d = Dirs::new("v6nullrace");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "::/0".to_string()]);
    let (sent, seen, status) = send_to_udp_bound(&opts, &["v6only-null-race"]);
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (an IPv4 datagram sent from outside: {sent}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// A forked child lists its parent's `/proc/PID/fd` (a sandbox process, so readable).
#[test]
fn another_sandbox_processs_fd_listing_shows_only_the_programs_descriptors() {
    let d = Dirs::new("procfdother");
    let out = run_bounded(command(&d.policy(), &["proc-fd-other-process"]));
    assert!(!text(&out.stdout).contains("ESCAPED"), "ESCAPED: another sandbox process's fd listing shows the monitor's descriptors: {}", show(&out));
    assert!(out.status.success() && text(&out.stdout).ends_with("contained: proc-fd-other-process\n"), "{}", show(&out));
}

// ---- round 5: a sixth white-box pass, after the round-4 fixes ------------------------------

/// The local address and port of the socket with inode `ino` in this network namespace's
/// `/proc/net/udp` or `udp6` (what `ss -uan` shows any process).
fn udp_socket_by_inode(ino: u64) -> Option<std::net::SocketAddr> {
    for (file, v6) in [("/proc/net/udp", false), ("/proc/net/udp6", true)] {
        let Ok(t) = std::fs::read_to_string(file) else { continue };
        for l in t.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[9].parse::<u64>().ok() != Some(ino) {
                continue;
            }
            let (addr, port) = f[1].split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            // The kernel prints each 32-bit word of the address in host order.
            let words: Vec<u32> = (0..addr.len() / 8).map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).unwrap_or(0).swap_bytes()).collect();
            let ip: std::net::IpAddr = if v6 {
                let mut b = [0u8; 16];
                for (i, w) in words.iter().enumerate().take(4) {
                    b[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
                }
                std::net::Ipv6Addr::from(b).into()
            } else {
                std::net::Ipv4Addr::from(words.first().copied().unwrap_or(0)).into()
            };
            return Some(std::net::SocketAddr::new(ip, port));
        }
    }
    None
}

/// With `--allow-net 127.0.0.1:9` only: the attack makes one IPv4 and one IPv6 UDP
/// socket and prints their inodes (`black-hole INO4 INO6`); this process finds their
/// addresses in `/proc/net/udp{,6}` and sends each a datagram from loopback.
#[test]
fn a_datagram_sockets_black_hole_takes_nothing_from_outside() {
    let d = Dirs::new("blackhole");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let mut child = command(&opts, &["black-hole-any-port"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut sent = Vec::new();
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        seen.push(l.clone());
        if let Some(rest) = l.strip_prefix("black-hole ") {
            for ino in rest.split_whitespace().filter_map(|i| i.parse::<u64>().ok()).filter(|&i| i != 0) {
                let Some(to) = udp_socket_by_inode(ino) else { continue };
                let from = if to.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
                if let Ok(u) = std::net::UdpSocket::bind(from) {
                    if u.send_to(b"datagram from outside\n", to).is_ok() {
                        sent.push(format!("to {to} from {}", u.local_addr().unwrap()));
                    }
                }
            }
            break;
        }
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (datagrams sent from outside: {sent:?}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// With `--allow-net ::/0`, `192.0.2.1:9` and `127.0.0.1:9`: IPv6 UDP sockets connect to
/// mapped addresses (one fails, one is dissolved and written to); a datagram is sent to
/// the one left on `[::]` from here over IPv4.
#[test]
fn a_connect_to_a_mapped_address_leaves_no_dual_stack_socket() {
    let d = Dirs::new("mappeddual");
    let mut opts = d.policy();
    for r in ["::/0", "192.0.2.1:9", "127.0.0.1:9"] {
        opts.extend(["--allow-net".to_string(), r.to_string()]);
    }
    let (sent, seen, status) = send_to_udp_bound(&opts, &["mapped-connect-dual-stack"]);
    assert!(!seen.iter().any(|l| l.contains("ESCAPED")), "ESCAPED (an IPv4 datagram sent from outside: {sent}): {seen:?}");
    assert!(status.success(), "{status:?} {seen:?}");
}

/// The sandbox's stdin is `ro/log` (outside the writable tree), opened here for
/// appending after a line was written to it, as a shell's `>>` would.
#[test]
fn an_inherited_append_only_file_keeps_what_others_wrote() {
    let d = Dirs::new("appendtrunc");
    let log = d.root.join("ro/log");
    let line = b"a line a process outside wrote first\n";
    std::fs::write(&log, line).unwrap();
    let f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut cmd = command(&d.policy(), &["inherited-append-truncate"]);
    cmd.stdin(Stdio::from(f));
    let out = run_bounded(cmd);
    let now = std::fs::read(&log).unwrap();
    assert!(now.starts_with(line), "ESCAPED: the file outside the writable tree the sandbox was given for appending now holds {:?} instead of starting with {:?}: {}", text(&now), text(line), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Isolated policy: `dune` (the monitor's executable) and its directory are outside
/// every tree; the attack reads `/proc/self/maps`, `smaps` and `numa_maps`.
#[test]
fn proc_self_maps_does_not_name_the_monitors_files() {
    let d = Dirs::new("procmaps");
    let exe = dune().to_string_lossy().into_owned();
    let out = run_bounded(command(&isolated_policy(&d), &["proc-maps-outside", &exe]));
    assert!(!text(&out.stdout).contains("ESCAPED"), "ESCAPED: {}", show(&out));
    assert!(out.status.success(), "{}", show(&out));
}

/// The sandbox's stdin is one end of a unix socket pair whose open file this process
/// also holds; after the sandbox ended, with the peer open and nothing written, this
/// process reads and writes through it.
#[test]
fn a_shared_socket_stays_open_for_the_outsider() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("sharedshut");
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (s, _peer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = command(&d.policy(), &["shared-socket-shutdown"]);
    cmd.stdin(Stdio::from(s.try_clone().unwrap()));
    let out = run_bounded(cmd);
    let mut b = [0u8; 1];
    // SAFETY: reads at most one byte into a local, without waiting.
    let n = unsafe { libc::recv(s.as_raw_fd(), b.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT) };
    let re = std::io::Error::last_os_error();
    // SAFETY: sends one byte from a local, without waiting or SIGPIPE.
    let w = unsafe { libc::send(s.as_raw_fd(), b"x".as_ptr().cast(), 1, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    let we = std::io::Error::last_os_error();
    assert!(
        n < 0 && w == 1,
        "ESCAPED: the socket this process shares with the sandbox was shut down: a read returned {n} (EOF at once, {re}), a write {w} ({we}; SIGPIPE for a process that keeps the default): {}",
        show(&out)
    );
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The sandbox's stdin is a memfd this process made and writes to (one open file).
#[test]
fn a_shared_memfd_stays_writable_for_the_outsider() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("sharedseal");
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor is owned here.
    let m = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"outside".as_ptr(), libc::MFD_ALLOW_SEALING)) };
    // SAFETY: writes a local buffer.
    assert_eq!(unsafe { libc::write(m.as_raw_fd(), b"first\n".as_ptr().cast(), 6) }, 6);
    let mut cmd = command(&d.policy(), &["shared-memfd-seal"]);
    cmd.stdin(Stdio::from(m.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: fcntl F_GET_SEALS on this process's memfd.
    let seals = unsafe { libc::fcntl(m.as_raw_fd(), libc::F_GET_SEALS) };
    // SAFETY: writes a local buffer.
    let w = unsafe { libc::write(m.as_raw_fd(), b"second\n".as_ptr().cast(), 7) };
    let we = std::io::Error::last_os_error();
    assert!(w == 7, "ESCAPED: the memfd this process shares with the sandbox was sealed (seals {seals:#x}): its write returned {w} ({we}): {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The inode of the UDP socket bound to local port `port` on `ip` (`/proc/net/udp`).
fn udp_inode_at(ip: [u8; 4], port: u16) -> Option<u64> {
    let want = format!("{:08X}:{:04X}", u32::from_le_bytes(ip), port);
    let t = std::fs::read_to_string("/proc/net/udp").ok()?;
    t.lines().skip(1).map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|f| f.len() >= 10 && f[1] == want).and_then(|f| f[9].parse().ok())
}

/// The socket inodes held by process `root` and its descendants.
fn sockets_of_tree(root: u32) -> std::collections::HashSet<u64> {
    let ppid = |pid: u32| -> Option<u32> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        s[s.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
    };
    let in_tree = |mut pid: u32| {
        for _ in 0..64 {
            if pid == root {
                return true;
            }
            match ppid(pid) {
                Some(p) if p > 1 => pid = p,
                _ => return false,
            }
        }
        false
    };
    let mut out = std::collections::HashSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if !in_tree(pid) {
            continue;
        }
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
            let Ok(l) = std::fs::read_link(fd.path()) else { continue };
            let l = l.to_string_lossy().into_owned();
            if let Some(ino) = l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse().ok()) {
                out.insert(ino);
            }
        }
    }
    out
}

/// With `--allow-net 127.0.0.1:9` only, the attack writes and sends with no address on
/// a new UDP socket. Loopback traffic is captured here (AF_PACKET, root in the lane).
/// A datagram may go only to a socket the sandbox itself holds (its monitor's black
/// hole, which never reads): never to a port that no socket, or a socket of another
/// process, is bound to (port 0 was "any peer" to Linux; a free port can be bound
/// by anyone).
#[test]
fn a_send_without_an_address_sends_nothing_into_the_black_hole() {
    let d = Dirs::new("blackholesend");
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket calls on a local; the address is built in a zeroed local.
    let cap = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto as i32) };
    assert!(cap >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    unsafe {
        let mut sll: libc::sockaddr_ll = core::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = libc::if_nametoindex(c"lo".as_ptr()) as i32;
        let r = libc::bind(cap, &sll as *const _ as *const libc::sockaddr, core::mem::size_of::<libc::sockaddr_ll>() as u32);
        assert_eq!(r, 0, "bind to lo: {}", std::io::Error::last_os_error());
    }
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let mut child = command(&opts, &["black-hole-send"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = vec![lines.next().and_then(Result::ok).unwrap_or_default()];
    // The program is waiting on its stdin: who holds what it sent to?
    let sandbox = sockets_of_tree(child.id());
    let mut seen = Vec::new();
    let mut held = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: receives into a local buffer of the size given.
        let n = unsafe { libc::recv(cap, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
        let p = &buf[..n as usize];
        let ihl = ((p.first().copied().unwrap_or(0) & 0xf) as usize) * 4;
        if p.len() < ihl + 8 || p[0] >> 4 != 4 || p[9] != 17 || !p.windows(22).any(|w| w == b"DUNE-BLACK-HOLE-MARKER") {
            continue;
        }
        let dport = u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]);
        let dst = [p[16], p[17], p[18], p[19]];
        if udp_inode_at(dst, dport).is_some_and(|ino| sandbox.contains(&ino)) {
            held += 1;
            continue;
        }
        seen.push(format!("{}.{}.{}.{}:{} -> {}.{}.{}.{}:{} \"{}\"", p[12], p[13], p[14], p[15], u16::from_be_bytes([p[ihl], p[ihl + 1]]), p[16], p[17], p[18], p[19], dport, text(&p[ihl + 8..])));
    }
    // SAFETY: closes the capture socket made above.
    unsafe { libc::close(cap) };
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"go\n");
    drop(stdin);
    out.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    assert!(seen.is_empty(), "ESCAPED: datagrams the program sent with no address went to a port no socket of the sandbox holds: {seen:?} (to the black hole: {held}): {out:?}");
    assert!(!out.iter().any(|l| l.contains("ESCAPED")) && out.last().is_some_and(|l| l == "contained: black-hole-send") && status.success(), "{status:?} {out:?}");
}

// ---- round 6: a seventh white-box pass, after the round-5 fixes ----------------------------

/// stdin is a pty's slave (the "outer terminal"); this process keeps the pty and reads
/// its modes after the sandbox ended.
#[test]
fn a_terminal_ioctl_acts_on_the_file_it_checked() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("ttyrace");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings are not asked for.
    let r = unsafe { libc::openpty(&mut master, &mut slave, core::ptr::null_mut(), core::ptr::null(), core::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut t) }, 0);
    assert!(t.c_lflag & libc::ECHO != 0, "a new pty echoes");
    let mut cmd = command(&d.policy(), &["tty-ioctl-race"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut t) }, 0);
    drop(master);
    assert!(t.c_lflag & libc::ECHO != 0, "ESCAPED: the outer terminal's echo is off: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a pipe's read end this process shares (and keeps a copy of).
#[test]
fn fioasync_acts_on_the_file_it_checked() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("asyncrace");
    let mut p = [0; 2];
    // SAFETY: pipe writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, _w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    let mut cmd = command(&d.policy(), &["shared-fioasync-race"]);
    cmd.stdin(Stdio::from(r.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: fcntl F_GETFL on this process's read end.
    let fl = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETFL) };
    assert!(fl >= 0 && fl & libc::O_ASYNC == 0, "ESCAPED: the open file this process shares with the sandbox now has O_ASYNC (flags {fl:#o}): {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a file in the read-only tree on which this process holds a read lease.
#[test]
fn a_lease_held_outside_stays() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("leaseunlock");
    let f = std::fs::File::open(d.root.join("ro/marker")).unwrap();
    // SAFETY: fcntl with integer arguments on a descriptor owned here.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
    assert_eq!(r, 0, "F_SETLEASE: {}", std::io::Error::last_os_error());
    let mut cmd = command(&d.policy(), &["shared-lease-unlock"]);
    cmd.stdin(Stdio::from(f.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: as above.
    let lease = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLEASE) };
    assert_eq!(lease, libc::F_RDLCK, "ESCAPED: the read lease this process holds on a file in the read-only tree is gone ({lease}): {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is the read-only directory, opened here, whose owner (SIGIO) is this process.
#[test]
fn dnotify_leaves_a_shared_files_owner_alone() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("dnotify");
    let f = std::fs::File::open(d.ro()).unwrap();
    // SAFETY: fcntl with integer arguments on a descriptor owned here.
    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETOWN, std::process::id() as i32) }, 0);
    let mut cmd = command(&d.policy(), &["shared-dnotify-owner"]);
    cmd.stdin(Stdio::from(f.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: as above.
    let owner = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETOWN) };
    assert_eq!(owner, std::process::id() as i32, "ESCAPED: the owner of the open file this process shares with the sandbox is now {owner}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a pipe's read end on whose open file this process holds a flock and an
/// OFD lock; after the sandbox, another open file of the same pipe tries both.
#[test]
fn locks_held_outside_on_a_shared_pipe_stay() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("flockpipe");
    let mut p = [0; 2];
    // SAFETY: pipe writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, _w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: flock with integer arguments on a descriptor owned here.
    assert_eq!(unsafe { libc::flock(r.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0, "flock on a pipe: {}", std::io::Error::last_os_error());
    // SAFETY: flock is plain data.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = libc::F_RDLCK as i16;
    // SAFETY: fcntl with a pointer to a local struct flock.
    let ofd = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == 0;
    {
        // The lock shows to another open file of the pipe before the attack.
        use std::os::unix::fs::OpenOptionsExt;
        let other = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(format!("/proc/self/fd/{}", r.as_raw_fd())).unwrap();
        // SAFETY: flock with integer arguments on a descriptor owned here.
        assert_ne!(unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0, "the flock does not show to another open file");
    }
    let mut cmd = command(&d.policy(), &["shared-flock-unlock"]);
    cmd.stdin(Stdio::from(r.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // Another open file of the same pipe.
    use std::os::unix::fs::OpenOptionsExt;
    let other = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(format!("/proc/self/fd/{}", r.as_raw_fd())).unwrap();
    // SAFETY: as above.
    let got = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    assert!(!got, "ESCAPED: the flock this process holds on the pipe it shares with the sandbox was released: {}", show(&out));
    if ofd {
        fl.l_type = libc::F_WRLCK as i16;
        // SAFETY: as above.
        let got = unsafe { libc::fcntl(other.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == 0;
        assert!(!got, "ESCAPED: the OFD lock this process holds on the pipe it shares with the sandbox was released: {}", show(&out));
    }
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a file in the read-only tree opened here for appending (a shell's `>>`).
#[test]
fn an_inherited_append_only_file_is_not_written_over() {
    let d = Dirs::new("noappend");
    let log = d.root.join("ro/log");
    let line = b"a line a process outside wrote first\n";
    std::fs::write(&log, line).unwrap();
    let f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut cmd = command(&d.policy(), &["inherited-append-noappend"]);
    cmd.stdin(Stdio::from(f));
    let out = run_bounded(cmd);
    let now = std::fs::read(&log).unwrap();
    assert!(now.starts_with(line), "ESCAPED: the file outside the writable tree the sandbox was given for appending now holds {:?}: {}", text(&now), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The supervisor (`dune sandbox`, this process's child) is killed with SIGKILL once
/// the program has forked; nothing of the sandbox may go on afterwards.
#[test]
fn nothing_outlives_a_killed_supervisor() {
    let d = Dirs::new("outlive");
    let rw = d.rw();
    let mut cmd = command(&d.policy(), &["outlive-supervisor", &rw]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut l = String::new();
    let t0 = std::time::Instant::now();
    while !l.contains("ready") && t0.elapsed() < std::time::Duration::from_secs(30) {
        l.clear();
        if lines.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
    }
    assert!(l.contains("ready"), "the attack did not start: {l:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let count = || std::fs::read_dir(&rw).map(|d| d.count()).unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let a = count();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let b = count();
    assert!(b == a, "ESCAPED: {} files were made in the writable tree more than a second after the supervisor was killed ({a} then {b})", b - a);
}

#[test]
fn a_racing_fd_listing_hides_the_monitors_descriptors() {
    let d = Dirs::new("fdlistrace");
    contained(&d.policy(), &["proc-fd-listing-race"]);
}

#[test]
fn poll_does_not_reach_the_monitors_descriptors() {
    let d = Dirs::new("pollfds");
    contained(&d.policy(), &["poll-monitor-fds"]);
}

/// Descriptor 3 of the sandbox is a pty's slave this process keeps; the standard
/// streams are not terminals.
#[test]
fn a_terminal_inherited_on_descriptor_3_is_the_outer_terminal() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let d = Dirs::new("ttyfd3");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings are not asked for.
    let r = unsafe { libc::openpty(&mut master, &mut slave, core::ptr::null_mut(), core::ptr::null(), core::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = command(&d.policy(), &["inherited-tty-fd3"]);
    cmd.stdin(Stdio::null());
    let raw = slave.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe; between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_bounded(cmd);
    // SAFETY: termios and winsize are plain data, filled by the calls.
    let mut t: libc::termios = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut t) }, 0);
    // SAFETY: as above.
    let mut w: libc::winsize = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut w) };
    drop(master);
    assert!(t.c_lflag & libc::ECHO != 0, "ESCAPED: the terminal this process shares with the sandbox (its descriptor 3) has echo off: {}", show(&out));
    assert!(!(w.ws_row == 3 && w.ws_col == 7), "ESCAPED: the terminal this process shares with the sandbox (its descriptor 3) is now 3x7: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Makes `fd` the sandbox's descriptor 3 (inherited).
fn pass_as_fd3(cmd: &mut Command, fd: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl are async-signal-safe; between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// stdin is one end of a unix datagram socket pair this process shares and sends
/// through (to its peer) after the sandbox ended.
#[test]
fn a_shared_unix_socket_keeps_its_peer() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("unixunspec");
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (s, peer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = command(&d.policy(), &["shared-unix-disconnect"]);
    cmd.stdin(Stdio::from(s.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: sends one byte from a local, without waiting or SIGPIPE.
    let w = unsafe { libc::send(s.as_raw_fd(), b"y".as_ptr().cast(), 1, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    let we = std::io::Error::last_os_error();
    let _ = peer;
    assert!(w == 1, "ESCAPED: the socket this process shares with the sandbox lost its peer: send returned {w} ({we}): {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a timerfd this process armed (1000 s).
#[test]
fn a_shared_timer_stays_armed() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("timerfd");
    // SAFETY: timerfd_create with integer arguments; the descriptor is owned here.
    let t = unsafe { OwnedFd::from_raw_fd(libc::timerfd_create(libc::CLOCK_MONOTONIC, 0)) };
    // SAFETY: itimerspec is plain data.
    let mut its: libc::itimerspec = unsafe { core::mem::zeroed() };
    its.it_value.tv_sec = 1000;
    // SAFETY: arms the timer with a local itimerspec.
    assert_eq!(unsafe { libc::timerfd_settime(t.as_raw_fd(), 0, &its, core::ptr::null_mut()) }, 0);
    let mut cmd = command(&d.policy(), &["shared-timerfd-disarm"]);
    cmd.stdin(Stdio::from(t.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: timerfd_gettime writes one itimerspec into the local.
    assert_eq!(unsafe { libc::timerfd_gettime(t.as_raw_fd(), &mut its) }, 0);
    assert!(its.it_value.tv_sec > 0, "ESCAPED: the timer this process armed and shares with the sandbox is disarmed: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

fn signalfd_mask(fd: i32) -> String {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    info.lines().find(|l| l.starts_with("sigmask:")).unwrap_or("").to_string()
}

/// stdin is a signalfd this process made for SIGUSR1.
#[test]
fn a_shared_signalfd_keeps_its_mask() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("signalfd");
    // SAFETY: sigset_t is plain data, filled by sigemptyset.
    let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above; signalfd with a local set; the descriptor is owned here.
    let f = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        OwnedFd::from_raw_fd(libc::signalfd(-1, &set, 0))
    };
    let before = signalfd_mask(f.as_raw_fd());
    let mut cmd = command(&d.policy(), &["shared-signalfd-mask"]);
    cmd.stdin(Stdio::from(f.try_clone().unwrap()));
    let out = run_bounded(cmd);
    let after = signalfd_mask(f.as_raw_fd());
    assert_eq!(before, after, "ESCAPED: the mask of the signalfd this process shares with the sandbox changed: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Descriptor 3 of the sandbox is an empty epoll instance of this process's; stdin an
/// eventfd this process holds, signalled.
#[test]
fn a_shared_epoll_set_stays_as_it_was() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("epolladd");
    // SAFETY: epoll_create1 and eventfd with integer arguments; owned here.
    let (ep, ev) = unsafe { (OwnedFd::from_raw_fd(libc::epoll_create1(0)), OwnedFd::from_raw_fd(libc::eventfd(1, 0))) };
    let mut cmd = command(&d.policy(), &["shared-epoll-add"]);
    cmd.stdin(Stdio::from(ev.try_clone().unwrap()));
    pass_as_fd3(&mut cmd, ep.as_raw_fd());
    let out = run_bounded(cmd);
    // SAFETY: epoll_event is plain data; epoll_wait fills at most one, without waiting.
    let mut e: libc::epoll_event = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), &mut e, 1, 0) };
    let data = e.u64;
    assert!(n == 0, "ESCAPED: the epoll set this process shares with the sandbox reports {n} event(s) (data {data:#x}) for a file it never added: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 7: an eighth white-box pass, after the round-6 fixes ----------------------------

/// Sends `fds` with one byte over the unix socket `s` (SCM_RIGHTS).
fn send_fds(s: i32, fds: &[i32]) {
    let mut byte = *b"x";
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let size = core::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(size as u32) } as usize;
    let mut ctl = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; the fields set point at locals that outlive the call.
    let mut m: libc::msghdr = unsafe { core::mem::zeroed() };
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.as_mut_ptr().cast();
    m.msg_controllen = space;
    // SAFETY: the control buffer holds one header of CMSG_LEN(size); CMSG_* only compute
    // addresses inside it, and the copy writes `size` bytes into its data.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(size as u32) as usize;
        core::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(c), size);
    }
    // SAFETY: sendmsg with the header built above.
    let r = unsafe { libc::sendmsg(s, &m, 0) };
    assert_eq!(r, 1, "sendmsg SCM_RIGHTS: {}", std::io::Error::last_os_error());
}

/// stdin is a unix stream socket; its peer (this process) has sent it, with
/// SCM_RIGHTS, a pipe's read end, a pty's slave, an armed timerfd and a memfd with
/// data, all of which this process keeps and uses. None was open when the sandbox
/// started.
#[test]
fn descriptors_received_from_outside_are_shared_with_it() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("scmrights");
    let mut sp = [0; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, sp.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (s, peer) = unsafe { (OwnedFd::from_raw_fd(sp[0]), OwnedFd::from_raw_fd(sp[1])) };
    let mut p = [0; 2];
    // Every descriptor but the socket is close-on-exec: the sandbox gets them only
    // through the socket, after it started.
    // SAFETY: pipe2 writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (pr, _pw) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings are not asked for.
    assert_eq!(unsafe { libc::openpty(&mut master, &mut slave, core::ptr::null_mut(), core::ptr::null(), core::ptr::null()) }, 0);
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: fcntl F_SETFD on descriptors owned here.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(slave.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // SAFETY: timerfd_create with integer arguments; the descriptor is owned here.
    let t = unsafe { OwnedFd::from_raw_fd(libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC)) };
    // SAFETY: itimerspec is plain data.
    let mut its: libc::itimerspec = unsafe { core::mem::zeroed() };
    its.it_value.tv_sec = 1000;
    // SAFETY: arms the timer with a local itimerspec.
    assert_eq!(unsafe { libc::timerfd_settime(t.as_raw_fd(), 0, &its, core::ptr::null_mut()) }, 0);
    // SAFETY: memfd_create with a literal name; the descriptor is owned here.
    let mfd = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"outside".as_ptr(), libc::MFD_ALLOW_SEALING | libc::MFD_CLOEXEC)) };
    // SAFETY: writes 5 bytes from a literal.
    assert_eq!(unsafe { libc::write(mfd.as_raw_fd(), b"data\n".as_ptr().cast(), 5) }, 5);
    // SAFETY: F_GETPIPE_SZ on this process's own descriptor; no memory is passed.
    let pipe_size = |f: &OwnedFd| unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETPIPE_SZ) };
    let size_before = pipe_size(&pr);
    send_fds(peer.as_raw_fd(), &[pr.as_raw_fd(), slave.as_raw_fd(), t.as_raw_fd(), mfd.as_raw_fd()]);
    let mut cmd = command(&d.policy(), &["received-fds-shared"]);
    cmd.stdin(Stdio::from(s.try_clone().unwrap()));
    let out = run_bounded(cmd);
    drop(peer);
    // SAFETY: fcntl F_GETFL on this process's own descriptor.
    let fl = unsafe { libc::fcntl(pr.as_raw_fd(), libc::F_GETFL) };
    let size_after = pipe_size(&pr);
    // SAFETY: termios is plain data, filled by tcgetattr.
    let mut tio: libc::termios = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut tio) }, 0);
    drop(master);
    // SAFETY: timerfd_gettime writes one itimerspec into the local.
    assert_eq!(unsafe { libc::timerfd_gettime(t.as_raw_fd(), &mut its) }, 0);
    let len = std::fs::metadata(format!("/proc/self/fd/{}", mfd.as_raw_fd())).map(|m| m.len()).unwrap_or(0);
    // SAFETY: fcntl F_GET_SEALS on this process's own descriptor.
    let seals = unsafe { libc::fcntl(mfd.as_raw_fd(), libc::F_GET_SEALS) };
    let mut found = Vec::new();
    if fl & libc::O_NONBLOCK != 0 {
        found.push(format!("the pipe's open file this process holds is now O_NONBLOCK (flags {fl:#o})"));
    }
    if size_after != size_before {
        found.push(format!("the pipe this process holds shrank from {size_before} to {size_after} bytes"));
    }
    if tio.c_lflag & libc::ECHO == 0 {
        found.push("the terminal this process holds has echo off".into());
    }
    if its.it_value.tv_sec == 0 {
        found.push("the timer this process armed is disarmed".into());
    }
    if len != 5 {
        found.push(format!("the memfd this process wrote now holds {len} bytes"));
    }
    if seals & libc::F_SEAL_WRITE != 0 {
        found.push(format!("the memfd this process writes is sealed ({seals:#x})"));
    }
    assert!(found.is_empty(), "ESCAPED: {}: {}", found.join("; "), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// A FIFO in the read-only tree, held open for reading and writing by this process.
#[test]
fn a_fifo_outside_the_writable_tree_keeps_its_size() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let d = Dirs::new("fifosize");
    let fifo = d.root.join("ro/fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a local path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let f = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    // SAFETY: fcntl F_GETPIPE_SZ on a descriptor owned here.
    let before = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETPIPE_SZ) };
    let out = run_bounded(command(&d.policy(), &["ro-fifo-pipe-size", fifo.to_str().unwrap()]));
    // SAFETY: as above.
    let after = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert_eq!(before, after, "ESCAPED: the FIFO outside the writable tree this process holds open shrank: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a memfd this process wrote, opened again for appending only (the way a
/// shell's `>>` hands a log over): the sandbox may add to it, never take away.
#[test]
fn an_inherited_append_only_memfd_is_not_cut() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("memfdappend");
    // SAFETY: memfd_create with a literal name; the descriptor is owned here.
    let mfd = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"log".as_ptr(), libc::MFD_CLOEXEC)) };
    let line = b"a line a process outside wrote first\n";
    // SAFETY: writes the line from a literal.
    assert_eq!(unsafe { libc::write(mfd.as_raw_fd(), line.as_ptr().cast(), line.len()) }, line.len() as isize);
    let append = std::fs::OpenOptions::new().append(true).open(format!("/proc/self/fd/{}", mfd.as_raw_fd())).unwrap();
    let mut cmd = command(&d.policy(), &["inherited-append-memfd"]);
    cmd.stdin(Stdio::from(append));
    let out = run_bounded(cmd);
    let now = std::fs::read(format!("/proc/self/fd/{}", mfd.as_raw_fd())).unwrap();
    assert!(now.starts_with(line), "ESCAPED: the memfd the sandbox was given for appending now holds {:?}: {}", text(&now), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The monitor reads the real /proc/self/maps (to serve the program its own), and the
/// runtime reads it after an `mmap` and on faults; a sibling thread duplicates the
/// lowest free number meanwhile, looking for a procfs descriptor. Round 7's finding:
/// both opened it at each read, born at the lowest free number. Now both read one
/// descriptor the runtime keeps at its own numbers (`libdune::runtime::own_maps`).
#[test]
fn the_real_maps_never_reach_the_program() {
    let d = Dirs::new("mapsrace");
    contained(&d.policy(), &["maps-fd-race"]);
}

/// The path walk's descriptors (`O_PATH`, inside the trees) are born at the lowest
/// free number, where a sibling can duplicate them: round 7's finding, second half.
/// What it gets names only what the program may already name, and every use of it
/// goes through the same checks: reopening a device no rule names, creating in the
/// read-only tree, writing or linking a read-only file must all fail.
#[test]
fn the_path_walks_descriptors_give_a_sibling_nothing_more() {
    let d = Dirs::new("walkgrab");
    let out = contained(&d.policy(), &["walk-fd-grab", &d.ro(), &d.rw()]);
    println!("{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("grabbed"), "{}", show(&out));
    assert_eq!(d.ro_entries(), ["marker"], "{}", show(&out));
}

/// stdin is a pty's slave (the outer terminal) this process keeps and reads the
/// status flags of its open file after the sandbox ended.
#[test]
fn the_outer_terminals_status_flags_stay() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("ttyappend");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the name and settings are not asked for.
    assert_eq!(unsafe { libc::openpty(&mut master, &mut slave, core::ptr::null_mut(), core::ptr::null(), core::ptr::null()) }, 0);
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: fcntl on descriptors owned here.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(slave.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // SAFETY: as above.
    let before = unsafe { libc::fcntl(slave.as_raw_fd(), libc::F_GETFL) };
    let mut cmd = command(&d.policy(), &["outer-tty-setfl"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()));
    let out = run_bounded(cmd);
    // SAFETY: as above.
    let after = unsafe { libc::fcntl(slave.as_raw_fd(), libc::F_GETFL) };
    drop(master);
    assert_eq!(before, after, "ESCAPED: the status flags of the terminal's open file this process shares with the sandbox changed from {before:#o} to {after:#o}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a pipe's read end this process shares; descriptor 3 a memfd it shares.
#[test]
fn inherited_pipes_and_memfds_keep_their_mode_and_times() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let d = Dirs::new("pipefchmod");
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, _w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: memfd_create with a literal name; the descriptor is owned here.
    let mfd = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"shared".as_ptr(), libc::MFD_CLOEXEC)) };
    let meta = |f: &OwnedFd| std::fs::metadata(format!("/proc/self/fd/{}", f.as_raw_fd())).map(|m| (m.mode(), m.mtime())).unwrap();
    let (pb, mb) = (meta(&r), meta(&mfd));
    let mut cmd = command(&d.policy(), &["inherited-pipe-fchmod"]);
    cmd.stdin(Stdio::from(r.try_clone().unwrap()));
    pass_as_fd3(&mut cmd, mfd.as_raw_fd());
    let out = run_bounded(cmd);
    let (pa, ma) = (meta(&r), meta(&mfd));
    assert!(pb == pa && mb == ma, "ESCAPED: the inodes this process shares with the sandbox changed: pipe {pb:?} -> {pa:?}, memfd {mb:?} -> {ma:?}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Descriptor 3 is an epoll set of this process's holding a signalled eventfd with
/// EPOLLIN | EPOLLONESHOT.
/// Accepted (round 7): waiting on an epoll set the sandbox was given takes its
/// events, one-shot ones included, as reading a pipe it was given takes the data:
/// that is using the descriptor as handed over. Kept, and run with `--ignored`.
#[test]
#[ignore = "accepted (issue 16, round 7): waiting on an inherited epoll set consumes its events, as reading an inherited pipe consumes its data"]
fn a_shared_epoll_sets_one_shot_event_stays() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("epolloneshot");
    // SAFETY: epoll_create1 and eventfd with integer arguments; owned here.
    let (ep, ev) = unsafe { (OwnedFd::from_raw_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC)), OwnedFd::from_raw_fd(libc::eventfd(1, libc::EFD_CLOEXEC))) };
    let mut e = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, u64: 7 };
    // SAFETY: epoll_ctl with a local event.
    assert_eq!(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, ev.as_raw_fd(), &mut e) }, 0);
    let mut cmd = command(&d.policy(), &["shared-epoll-oneshot"]);
    cmd.stdin(Stdio::null());
    pass_as_fd3(&mut cmd, ep.as_raw_fd());
    let out = run_bounded(cmd);
    // SAFETY: epoll_wait fills at most one event, without waiting.
    let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), &mut e, 1, 0) };
    assert!(n == 1, "ESCAPED: the one-shot event of the epoll set this process shares with the sandbox is gone ({n} events): {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Descriptor 3 is an inotify instance of this process's, watching the read-only
/// directory (watch 1) for new entries.
#[test]
fn a_shared_inotify_instance_keeps_its_watches() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("inotify");
    // SAFETY: inotify_init1 with integer flags; owned here.
    let ino = unsafe { OwnedFd::from_raw_fd(libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK)) };
    let c = std::ffi::CString::new(d.ro()).unwrap();
    // SAFETY: a local path.
    let wd = unsafe { libc::inotify_add_watch(ino.as_raw_fd(), c.as_ptr(), libc::IN_CREATE) };
    assert_eq!(wd, 1, "inotify_add_watch: {}", std::io::Error::last_os_error());
    let mut cmd = command(&d.policy(), &["shared-inotify-rm-watch"]);
    cmd.stdin(Stdio::null());
    pass_as_fd3(&mut cmd, ino.as_raw_fd());
    let out = run_bounded(cmd);
    std::fs::write(d.root.join("ro/new"), "x").unwrap();
    let mut buf = [0u8; 4096];
    // SAFETY: reads into a local buffer, without waiting.
    let n = unsafe { libc::read(ino.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    let mut events = Vec::new();
    let mut at = 0usize;
    while n > 0 && at + 16 <= n as usize {
        let wd = i32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
        let mask = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
        let len = u32::from_le_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
        events.push((wd, mask));
        at += 16 + len;
    }
    let created = events.iter().any(|&(w, m)| w == 1 && m & libc::IN_CREATE != 0);
    let foreign = events.iter().any(|&(w, _)| w != 1);
    assert!(created && !foreign, "ESCAPED: the watches of the inotify instance this process shares with the sandbox changed: events {events:x?}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// Descriptor 3 is a pty's master this process keeps; afterwards it opens the slave
/// by name, as a terminal program would.
#[test]
fn a_shared_pty_stays_unlocked() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("ptmxlock");
    let (mut master, mut slave) = (0, 0);
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: openpty writes two descriptors and the slave's name into a local buffer.
    assert_eq!(unsafe { libc::openpty(&mut master, &mut slave, name.as_mut_ptr(), core::ptr::null(), core::ptr::null()) }, 0);
    // SAFETY: both were just made by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: fcntl on descriptors owned here.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(slave.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // SAFETY: openpty wrote a NUL-terminated name.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    let mut cmd = command(&d.policy(), &["inherited-ptmx-lock"]);
    cmd.stdin(Stdio::null());
    pass_as_fd3(&mut cmd, master.as_raw_fd());
    let out = run_bounded(cmd);
    use std::os::unix::fs::OpenOptionsExt;
    let again = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&path);
    drop(slave);
    assert!(again.is_ok(), "ESCAPED: the pty this process shares with the sandbox is locked: opening {path} fails ({:?}): {}", again.err(), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

#[test]
fn utimes_with_a_huge_microsecond_count_leaves_the_monitor_alive() {
    let d = Dirs::new("utimesoverflow");
    let out = run_bounded(command(&d.policy(), &["utimes-overflow", &d.rw()]));
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "ESCAPED: the monitor panicked: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED"), "{}", show(&out));
    assert_eq!(text(&out.stdout).lines().last(), Some("contained: utimes-overflow"), "{}", show(&out));
}

/// A process outside (`sleep 60`, this process's child) owns the SIGIO of a pipe's
/// read end; this process sends both ends of the pipe to the sandbox over a unix
/// socket (its stdin) after it started.
#[test]
fn a_received_pipe_cannot_kill_its_owner_outside() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("sigiokill");
    let mut victim = Command::new("sleep").arg("60").stdin(Stdio::null()).spawn().unwrap();
    let mut sp = [0; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, sp.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (s, peer) = unsafe { (OwnedFd::from_raw_fd(sp[0]), OwnedFd::from_raw_fd(sp[1])) };
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: fcntl F_SETOWN with integer arguments on a descriptor owned here.
    assert_eq!(unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETOWN, victim.id() as i32) }, 0);
    send_fds(peer.as_raw_fd(), &[r.as_raw_fd(), w.as_raw_fd()]);
    let mut cmd = command(&d.policy(), &["received-pipe-sigio-kill"]);
    cmd.stdin(Stdio::from(s.try_clone().unwrap()));
    let out = run_bounded(cmd);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = victim.try_wait().unwrap();
    if status.is_none() {
        let _ = victim.kill();
        let _ = victim.wait();
    }
    assert!(status.is_none(), "ESCAPED: a process outside the sandbox ({}) ended: {status:?}: {}", victim.id(), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 8: memory, the supervisor, descriptor limits, links ----------------------------

#[test]
fn a_shared_mapping_of_a_read_only_file_stays_read_only() {
    let d = Dirs::new("sharedmapro");
    let out = contained(&d.policy(), &["shared-map-ro-write", &d.ro()]);
    eprintln!("{}", show(&out));
    assert_eq!(std::fs::read_to_string(d.root.join("ro/marker")).unwrap(), "read-only\n", "ESCAPED: the read-only file changed");
}

#[test]
fn the_supervisor_cannot_be_signalled_or_read() {
    let d = Dirs::new("parentreach");
    let out = contained(&d.policy(), &["parent-reach"]);
    eprintln!("{}", show(&out));
}

#[test]
fn raising_rlimit_nofile_reaches_no_monitor_descriptor() {
    let d = Dirs::new("nofileraise");
    let out = contained(&d.policy(), &["nofile-raise"]);
    eprintln!("{}", show(&out));
}

#[test]
fn no_exchange_or_link_between_the_trees() {
    let d = Dirs::new("renameexchange");
    let out = contained(&d.policy(), &["rename-exchange", &d.ro(), &d.rw()]);
    eprintln!("{}", show(&out));
    assert_eq!(std::fs::read_to_string(d.root.join("ro/marker")).unwrap(), "read-only\n", "ESCAPED: the read-only file changed");
    assert_eq!(d.ro_entries(), vec!["marker".to_string()], "ESCAPED: the read-only tree changed");
}

#[test]
fn the_supervisors_proc_entries_are_not_served() {
    let d = Dirs::new("procparent");
    let out = contained(&d.policy(), &["proc-parent"]);
    eprintln!("{}", show(&out));
}

/// As `proc_self_does_not_name_paths_outside_every_tree`, through other names.
#[test]
fn proc_aliases_do_not_name_paths_outside_every_tree() {
    let d = Dirs::new("procaliases");
    let secret = d.root.join("secret");
    std::fs::create_dir_all(secret.join("mnt")).unwrap();
    let mnt = std::ffi::CString::new(secret.join("mnt").to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mount with NUL-terminated strings and no data.
    let mounted = unsafe { libc::mount(c"tmpfs".as_ptr(), mnt.as_ptr(), c"tmpfs".as_ptr(), 0, core::ptr::null()) } == 0;
    let listener = std::os::unix::net::UnixListener::bind(secret.join("agent.sock")).unwrap();
    let mut opts = isolated_policy(&d);
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let out = run_bounded(command(&opts, &["proc-aliases", &secret.to_string_lossy(), &d.rw()]));
    drop(listener);
    if mounted {
        // SAFETY: unmounts what was mounted above.
        unsafe { libc::umount(mnt.as_ptr()) };
    }
    eprintln!("{}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED"), "ESCAPED (tmpfs mounted: {mounted}): {}", show(&out));
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn the_monitors_descriptors_cannot_be_reopened_by_name() {
    let d = Dirs::new("reservedreopen");
    let out = contained(&d.policy(), &["reserved-fd-reopen"]);
    eprintln!("{}", show(&out));
}

#[test]
fn no_tmpfile_linked_into_a_read_only_tree() {
    let d = Dirs::new("tmpfilelink");
    let out = contained(&d.policy(), &["tmpfile-link", &d.ro(), &d.rw()]);
    eprintln!("{}", show(&out));
    assert_eq!(d.ro_entries(), vec!["marker".to_string()], "ESCAPED: the read-only tree changed");
}

#[test]
fn a_process_sharing_the_address_space_stays_held() {
    let d = Dirs::new("clonevm");
    let out = contained(&d.policy(), &["clone-vm-process", &d.ro()]);
    eprintln!("{}", show(&out));
    assert!(!text(&out.stderr).contains("panicked"), "ESCAPED: the monitor panicked: {}", show(&out));
    assert_eq!(std::fs::read_to_string(d.root.join("ro/marker")).unwrap(), "read-only\n", "ESCAPED: the read-only file changed");
}

/// Descriptor 3 is `outside-dir/`, a directory outside every tree of the isolated
/// policy, holding `secret`.
#[test]
fn an_inherited_directory_outside_every_tree_stays_out_of_reach() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("inheriteddir");
    let outside = d.root.join("outside-dir");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "SECRET\n").unwrap();
    let dir = std::fs::File::open(&outside).unwrap();
    let mut cmd = command(&isolated_policy(&d), &["inherited-dir-escape", &d.rw()]);
    pass_as_fd3(&mut cmd, dir.as_raw_fd());
    let out = run_bounded(cmd);
    eprintln!("{}", show(&out));
    assert_eq!(std::fs::read_to_string(outside.join("secret")).ok().as_deref(), Some("SECRET\n"), "ESCAPED: the secret moved: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 9: a tenth white-box pass, after the round-8 fixes -------------------------------

/// Sends `fd` with one byte over the unix socket `s` (SCM_RIGHTS); false once the
/// receiving end is gone.
fn try_send_fd(s: i32, fd: i32) -> bool {
    let mut byte = *b"x";
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut ctl = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; the fields set point at locals that outlive the call.
    let mut m: libc::msghdr = unsafe { core::mem::zeroed() };
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.as_mut_ptr().cast();
    m.msg_controllen = space;
    // SAFETY: the control buffer holds one header of CMSG_LEN(4); the copy writes 4
    // bytes into its data.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        core::ptr::copy_nonoverlapping((&fd as *const i32).cast::<u8>(), libc::CMSG_DATA(c), 4);
    }
    // SAFETY: sendmsg with the header built above.
    unsafe { libc::sendmsg(s, &m, libc::MSG_NOSIGNAL) == 1 }
}

/// Sends the sandbox (on stdin, a socket) the read ends of 1,500 pipes this process
/// keeps, while `scenario` races their noting; none may change size.
fn received_pipes_stay_unchanged(tag: &str, scenario: &str) {
    use std::os::fd::AsRawFd;
    let d = Dirs::new(tag);
    let mut sp = [0; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, sp.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (s, peer) = unsafe { (OwnedFd::from_raw_fd(sp[0]), OwnedFd::from_raw_fd(sp[1])) };
    // Room for the pipes kept here.
    // SAFETY: rlimit is plain data; getrlimit and setrlimit read and write one.
    unsafe {
        let mut rl: libc::rlimit = core::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
    }
    let sender = std::thread::spawn(move || {
        let mut kept = Vec::new();
        while kept.len() < 1500 {
            let mut p = [0; 2];
            // SAFETY: pipe2 writes two descriptors into the local array.
            if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                break;
            }
            // SAFETY: both were just made and are owned here alone.
            let (r, _w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
            if !try_send_fd(peer.as_raw_fd(), r.as_raw_fd()) {
                break;
            }
            kept.push(r);
        }
        kept
    });
    let mut cmd = command(&d.policy(), &[scenario]);
    cmd.stdin(Stdio::from(s));
    let out = run_bounded(cmd);
    let kept = sender.join().unwrap();
    eprintln!("sent {}\n{}", kept.len(), show(&out));
    // SAFETY: F_GETPIPE_SZ on descriptors owned here; no memory is passed.
    let shrunk = kept.iter().filter(|r| unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETPIPE_SZ) } != 65536).count();
    assert_eq!(shrunk, 0, "ESCAPED: {shrunk} of the {} pipes this process made, keeps and sent to the sandbox changed size: {}", kept.len(), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// stdin is a unix stream socket; while the sandbox runs, this process makes pipes one
/// after another and sends each read end through the socket, keeping it. Each recvmsg
/// installs the descriptor at the lowest free number before the monitor notes it as
/// shared; a sibling thread spins on F_SETPIPE_SZ at that number.
#[test]
fn a_received_descriptor_is_shared_from_the_moment_it_arrives() {
    received_pipes_stay_unchanged("recvrace", "received-fd-race");
}

#[test]
fn the_monitors_descriptors_answer_no_poll_select_or_waitid() {
    let d = Dirs::new("reservedprobe");
    let out = contained(&d.policy(), &["reserved-fd-probe"]);
    eprintln!("{}", show(&out));
}

/// With a rule for 127.0.0.1:9 (so no network namespace of its own), the sandbox
/// joins 239.77.66.55 and ff15::7766:5544 and holds them until told to go on; the
/// machine's group memberships (`/proc/net/igmp`, `igmp6`) must not show them.
#[test]
fn no_multicast_membership_without_a_rule() {
    let d = Dirs::new("mcast");
    let mut opts = d.policy();
    opts.extend(["--allow-net".to_string(), "127.0.0.1:9".to_string()]);
    let mut cmd = command(&opts, &["multicast-join"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let igmp = std::fs::read_to_string("/proc/net/igmp").unwrap_or_default();
    let igmp6 = std::fs::read_to_string("/proc/net/igmp6").unwrap_or_default();
    let _ = child.stdin.as_mut().unwrap().write_all(b"go\n");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    eprintln!("{first}\n{rest:?}\n{err}");
    let v4: Vec<&str> = igmp.lines().filter(|l| l.contains("37424DEF")).collect();
    let v6: Vec<&str> = igmp6.lines().filter(|l| l.contains("ff150000000000000000000077665544")).collect();
    assert!(v4.is_empty() && v6.is_empty(), "ESCAPED: the machine's interfaces joined the sandbox's groups (the kernel reports them on the network): {v4:?} {v6:?} ({first}; {rest:?})");
    assert!(!rest.iter().any(|l| l.contains("ESCAPED")) && status.success(), "{first} {rest:?} {status:?} {err}");
}

// ---- round 10: an eleventh white-box pass, after the round-9 fixes -------------------------

#[test]
fn waitid_pidfd_checks_the_idtype_linux_reads() {
    let d = Dirs::new("waitidhigh");
    let out = contained(&d.policy(), &["waitid-which-high-bits"]);
    eprintln!("{}", show(&out));
}

/// Every forked child must run to its end, whatever a sibling of the parent was doing in
/// the monitor at the moment of the fork (here: noting received descriptors).
#[test]
fn a_fork_while_a_sibling_receives_descriptors_leaves_no_lock_held() {
    let d = Dirs::new("forkrecv");
    let out = contained(&d.policy(), &["fork-while-receiving"]);
    eprintln!("{}", show(&out));
}

/// As above, with the sibling in the runtime's descriptor-room window (setrlimit,
/// private duplicates).
#[test]
fn a_fork_while_the_runtime_raises_the_descriptor_limit_leaves_no_lock_held() {
    let d = Dirs::new("forkroom");
    let out = contained(&d.policy(), &["fork-while-room"]);
    eprintln!("{}", show(&out));
}

/// The control of `a_fork_while_a_sibling_receives_descriptors_leaves_no_lock_held`:
/// the same messages without descriptors, received without a control buffer (the
/// monitor takes neither its RECEIVED lock nor a private duplicate).
#[test]
fn a_fork_while_a_sibling_receives_plain_messages_leaves_no_lock_held() {
    let d = Dirs::new("forkrecvctl");
    let out = contained(&d.policy(), &["fork-while-receiving", "control"]);
    eprintln!("{}", show(&out));
}

/// As `a_received_descriptor_is_shared_from_the_moment_it_arrives`, received through
/// recvmmsg and recvmsg(MSG_PEEK).
#[test]
fn a_descriptor_received_by_recvmmsg_or_peeked_is_shared_from_the_moment_it_arrives() {
    received_pipes_stay_unchanged("recvracemmsg", "received-fd-race-mmsg");
}

// ---- round 11: a twelfth white-box pass, after the round-10 fixes -----------------------

/// prlimit64 with resource `RLIMIT_NOFILE | 1 << 32`: Linux reads an unsigned int, the
/// runtime's guard compares 64 bits, so the process's real descriptor limit changes
/// behind the program's view (the kernel's line for the monitor's numbers).
#[test]
fn rlimit_nofile_with_high_bits_stays_the_programs_view() {
    let d = Dirs::new("nofilehi");
    let out = contained(&d.policy(), &["nofile-high-bits"]);
    eprintln!("{}", show(&out));
}

/// The real hard limit lowered that way: the runtime cannot hand the monitor a
/// duplicate of its maps descriptor, and the fallback opens the real map at the
/// program's lowest free number, where a sibling reads it.
#[test]
fn a_lowered_real_nofile_limit_never_shows_the_real_maps() {
    let d = Dirs::new("mapsnofilehi");
    let out = contained(&d.policy(), &["maps-nofile-high-bits"]);
    eprintln!("{}", show(&out));
}

/// The same lowered limit, then fork: the child's monitor must survive.
#[test]
fn a_lowered_real_nofile_limit_does_not_kill_a_forked_child() {
    let d = Dirs::new("forknofilehi");
    let out = contained(&d.policy(), &["fork-nofile-high-bits"]);
    eprintln!("{}", show(&out));
}

// ---- round 12: a thirteenth white-box pass, after the round-11 fixes ----------------------

/// The runtime raises the real soft RLIMIT_NOFILE for every duplicate it makes
/// (`reserved::with_fd_room`); a program with every number of its own in use that
/// dup()s in a sibling's window must not get a descriptor at the reserved numbers.
#[test]
fn a_siblings_descriptor_room_gives_the_program_no_reserved_numbers() {
    let d = Dirs::new("roomfd");
    let out = contained(&d.policy(), &["room-window-fd"]);
    eprintln!("{}", show(&out));
}

/// `int N` from ring 3 at the vectors ring 0 handles (shootdown IPI, time-slice timer,
/// exceptions) must fault, never run ring 0's handler.
#[test]
fn ring_three_cannot_raise_ring_zeros_interrupt_vectors() {
    let d = Dirs::new("intvec");
    let out = contained(&d.policy(), &["int-vectors"]);
    eprintln!("{}", show(&out));
}

/// Signals aimed at the process's threads the program did not make (the monitor's
/// helpers), which the program ignores, must leave the monitor running.
#[test]
fn signals_to_the_monitors_own_threads_change_nothing() {
    let d = Dirs::new("monthreads");
    let out = contained(&d.policy(), &["monitor-thread-signals"]);
    eprintln!("{}", show(&out));
}

/// FUTEX_LOCK_PI with pid 1 (outside the sandbox) as the owner: no PI state on an
/// outside task, no probe of which pids exist outside.
#[test]
fn a_pi_futex_names_no_process_outside() {
    let d = Dirs::new("futexpi");
    let out = contained(&d.policy(), &["futex-pi-outside"]);
    eprintln!("{}", show(&out));
}

/// close_range(CLOSE_RANGE_CLOEXEC) over every number, then fork and exec: the runtime's
/// and the monitor's descriptors live on in the child.
#[test]
fn close_range_cloexec_then_fork_and_exec_keeps_the_monitor() {
    let d = Dirs::new("crcloexec");
    let out = contained(&d.policy(), &["close-range-cloexec-fork"]);
    eprintln!("{}", show(&out));
}

/// The consequence of the room window: with the runtime's reserved numbers full of the
/// program's descriptors, a forked child's runtime reads /proc/self/maps through fresh
/// descriptors at the program's numbers, where a sibling reads the real map.
#[test]
fn a_full_reserved_room_never_shows_a_forked_child_the_real_maps() {
    let d = Dirs::new("roommaps");
    let out = contained(&d.policy(), &["room-window-maps-child"]);
    eprintln!("{}", show(&out));
}

/// A pipe the sandbox starts with at descriptor 1500 (above the 0..1023 the monitor
/// looks at when it notes inherited open files, below the program's limit) is still
/// the outside's: its size and status flags must not change.
#[test]
fn a_pipe_inherited_above_1024_is_still_the_outsides() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let d = Dirs::new("highinherit");
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (r, _w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    let rfd = r.as_raw_fd();
    let mut cmd = command(&d.policy(), &["high-inherited-pipe", "1500"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut rl: libc::rlimit = core::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
            if rl.rlim_cur < 2048 && rl.rlim_max >= 2048 {
                rl.rlim_cur = rl.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            }
            if libc::dup2(rfd, 1500) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_bounded(cmd);
    // SAFETY: fcntl queries on a descriptor owned here; no memory is passed.
    let (size, fl) = unsafe { (libc::fcntl(rfd, libc::F_GETPIPE_SZ), libc::fcntl(rfd, libc::F_GETFL)) };
    eprintln!("size {size}, flags {fl:#o}\n{}", show(&out));
    assert!(size == 65536 && fl & libc::O_NONBLOCK == 0, "ESCAPED: the test's pipe changed from inside the sandbox: size {size}, flags {fl:#o}: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

// ---- round 13: a fourteenth white-box pass, after the round-12 fixes ----------------------

/// accept4 whose address the monitor cannot copy out (a read-only page): the call fails
/// with EFAULT after the kernel made the descriptor, which must not stay open; made in a
/// sibling's raised-limit window, it would sit at the runtime's reserved numbers.
#[test]
fn an_accept_that_fails_to_copy_out_leaves_no_descriptor_at_the_reserved_numbers() {
    let d = Dirs::new("accefault");
    let out = contained(&d.policy(), &["accept-efault-leak", &d.rw()]);
    eprintln!("{}", show(&out));
}

/// A fork while a sibling holds the runtime's raised descriptor limit: the child must not
/// keep the raised real limit (the kernel's line for the reserved numbers).
#[test]
fn a_fork_in_the_runtimes_room_window_keeps_the_kernels_limit() {
    let d = Dirs::new("forkroomlim");
    let out = contained(&d.policy(), &["fork-room-limit"]);
    eprintln!("{}", show(&out));
}

/// Live threads fill the runtime's reserved room with vCPU descriptors; a forked child,
/// which inherits them, must still start (its runtime needs room for a VM of its own).
#[test]
fn a_fork_with_the_runtimes_room_full_of_threads_still_starts_the_child() {
    let d = Dirs::new("roomthreads");
    let out = contained(&d.policy(), &["room-full-of-threads-fork"]);
    eprintln!("{}", show(&out));
}

/// signalfd4 on an existing signalfd must return the program's own descriptor, never the
/// number of the monitor's private duplicate it was made on.
#[test]
fn signalfd_on_an_existing_one_returns_the_programs_descriptor() {
    let d = Dirs::new("sfdret");
    let out = contained(&d.policy(), &["signalfd-returns-monitor-fd"]);
    eprintln!("{}", show(&out));
}

/// F_DUPFD whose floor is the program's limit, in a sibling's raised-limit window: the
/// kernel places the duplicate at the runtime's numbers; the program must never get it.
#[test]
fn f_dupfd_at_the_limit_in_a_room_window_gives_no_reserved_number() {
    let d = Dirs::new("dupfdfloor");
    let out = contained(&d.policy(), &["room-window-dupfd-floor"]);
    eprintln!("{}", show(&out));
}

// ---- round 14 -------------------------------------------------------------------------------

/// getsockname/getpeername with a null address and a length pointer into the monitor's
/// image (its base from auxv, its padding past .bss from the file's program headers):
/// Linux reads an int there and, when it is 0, writes the address's length. getsockopt
/// with a null value reads the monitor's ints the same way. Every length pointer must
/// be the program's memory, with or without an address buffer.
#[test]
fn length_pointers_without_an_address_are_the_programs_memory() {
    let d = Dirs::new("socknamenull");
    let dune = dune();
    let out = contained(&d.policy(), &["sockname-null-len", &dune.to_string_lossy(), &d.rw()]);
    eprintln!("{}", show(&out));
}

/// `sysenter`, the vsyscall page's entry points and an x32 system call number from
/// ring 3: none runs code or a call that is not the program's.
#[test]
fn sysenter_vsyscall_and_x32_run_nothing_of_the_monitors() {
    let d = Dirs::new("sysenter");
    let out = contained(&d.policy(), &["sysenter-vsyscall"]);
    eprintln!("{}", show(&out));
}

// ---- round 15 -------------------------------------------------------------------------------

/// mremap(MREMAP_FIXED) from a range the kernel holds as two vm areas (the monitor as
/// one): Linux unmaps the destination, the program's own range, then refuses the move.
/// The destination must never become a hole where the monitor's new mappings land
/// while it still counts as the program's memory.
#[test]
fn a_failed_fixed_mremap_leaves_no_hole_in_the_programs_range() {
    let d = Dirs::new("mremapfixfail");
    let out = contained(&d.policy(), &["mremap-fixed-fail-hole"]);
    eprintln!("{}", show(&out));
}

/// mremap shrinking in place leaves a hole until the monitor refills it; a monitor mapping
/// made meanwhile (a new thread's host stack) lands there. A sibling's read, checked
/// before and blocked in the kernel with its buffer in the tail, must never write the
/// program's bytes into it.
#[test]
fn a_blocked_read_never_writes_into_a_monitor_mapping_in_mremaps_hole() {
    let d = Dirs::new("mremaphole");
    let out = contained(&d.policy(), &["mremap-hole-read"]);
    eprintln!("{}", show(&out));
}

// ---- round 16 ---------------------------------------------------------------------------

/// A `brk` growth Linux refuses after unmapping the range (commit check, memslot
/// budget) must not leave a hole the monitor still counts as the program's: a host
/// thread's stack landing there would be the program's to `mprotect` and read.
#[test]
fn a_refused_brk_growth_leaves_no_hole_for_host_memory() {
    let d = Dirs::new("brkhole");
    let out = contained(&d.policy(), &["brk-overcommit-hole"]);
    eprintln!("{}", show(&out));
}

/// The same hole under a range the program had read-write: the monitor still takes
/// pointers into it as the program's, and Linux reads host memory there for `write`.
#[test]
fn a_refused_brk_growth_over_program_memory_gives_linux_no_host_pointer() {
    let d = Dirs::new("brkholerw");
    let out = contained(&d.policy(), &["brk-overcommit-hole-rw"]);
    eprintln!("{}", show(&out));
}

/// An mremap the kernel made but the runtime answered ENOMEM for (memslot budget): the
/// monitor's move back must not leave the old range a hole it still counts as the
/// program's.
#[test]
fn an_mremap_the_runtime_refuses_leaves_no_hole_in_the_old_range() {
    let d = Dirs::new("mremapbudget");
    let out = contained(&d.policy(), &["mremap-budget-hole"]);
    eprintln!("{}", show(&out));
}

/// A `wait4` whose status copy-out fails after the kernel reaped the child must still
/// forget the child: its pid, reused by a process outside, takes no `F_SETOWN`.
#[test]
fn a_child_reaped_by_a_failed_wait_is_no_longer_a_target() {
    let d = Dirs::new("waitefault");
    let mut cmd = command(&d.policy(), &["wait-efault-stale-child"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let pid: i32 = first.strip_prefix("child ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("unexpected output {first:?}"));
    for _ in 0..500 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut outsider = spawn_with_pid(pid, &mut || {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "sleep 30"]);
        c
    });
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let outsider_status = outsider.try_wait().unwrap();
    let _ = outsider.kill();
    let _ = outsider.wait();
    eprintln!("pid {pid}: {rest:?}; outsider: {outsider_status:?}");
    assert!(outsider_status.is_none(), "ESCAPED: the process outside that took pid {pid} was signalled: {outsider_status:?} {rest:?}");
    assert!(!rest.iter().any(|l| l.contains("ESCAPED")), "pid {pid}: {rest:?}");
    assert!(status.success(), "{status:?} {rest:?}");
}

// ---- round 17 ---------------------------------------------------------------------------

/// A process CPU clock id carries a pid (`(~pid << 3) | 2`): reading it, or making a
/// timer on it, names a process outside the sandbox (here a `sleep` of the test's, the
/// supervisor and init) with no pid check; so does `capget`'s header. Every pid the
/// program names must be the sandbox's own.
#[test]
fn cpu_clocks_and_capget_of_processes_outside_are_refused() {
    let d = Dirs::new("cpuclock");
    let mut outsider = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let pid = outsider.id().to_string();
    let out = run_bounded(command(&d.policy(), &["cpu-clock-outside", &pid]));
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(!text(&out.stdout).contains("ESCAPED"), "{}", show(&out));
    assert_eq!(text(&out.stdout).lines().last(), Some("contained: cpu-clock-outside"), "{}", show(&out));
}

/// stdin is `ro/log` (outside the writable tree), opened here for reading and
/// appending (Python's "a+"): the sandbox may add to it, never write over it, through
/// a shared writable mapping neither.
#[test]
fn an_inherited_append_only_file_is_not_written_over_through_a_mapping() {
    let d = Dirs::new("appendmmap");
    let log = d.root.join("ro/log");
    let line = b"a line a process outside wrote first\n";
    std::fs::write(&log, line).unwrap();
    let f = std::fs::OpenOptions::new().read(true).append(true).open(&log).unwrap();
    let mut cmd = command(&d.policy(), &["inherited-append-mmap"]);
    cmd.stdin(Stdio::from(f));
    let out = run_bounded(cmd);
    let now = std::fs::read(&log).unwrap();
    assert!(now.starts_with(line), "ESCAPED: the file outside the writable tree the sandbox was given for appending now holds {:?} instead of starting with {:?}: {}", text(&now), text(line), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// The same with a memfd this process wrote, handed over for reading and appending.
#[test]
fn an_inherited_append_only_memfd_is_not_written_over_through_a_mapping() {
    use std::os::fd::AsRawFd;
    let d = Dirs::new("appendmmapmemfd");
    // SAFETY: memfd_create with a literal name; the descriptor is owned here.
    let mfd = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"log".as_ptr(), libc::MFD_CLOEXEC)) };
    let line = b"a line a process outside wrote first\n";
    // SAFETY: writes the line from a literal.
    assert_eq!(unsafe { libc::write(mfd.as_raw_fd(), line.as_ptr().cast(), line.len()) }, line.len() as isize);
    let append = std::fs::OpenOptions::new().read(true).append(true).open(format!("/proc/self/fd/{}", mfd.as_raw_fd())).unwrap();
    let mut cmd = command(&d.policy(), &["inherited-append-mmap"]);
    cmd.stdin(Stdio::from(append));
    let out = run_bounded(cmd);
    let now = std::fs::read(format!("/proc/self/fd/{}", mfd.as_raw_fd())).unwrap();
    assert!(now.starts_with(line), "ESCAPED: the memfd the sandbox was given for appending now holds {:?}: {}", text(&now), show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED") && out.status.success(), "{}", show(&out));
}

/// inotify instances are root's for the whole machine (a per-user count): while the
/// sandbox holds what it could take, root's processes outside must still get one.
#[test]
fn the_sandbox_cannot_take_roots_inotify_instances_from_processes_outside() {
    let d = Dirs::new("inotifyquota");
    let mut cmd = command(&d.policy(), &["user-quota-inotify"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(first.starts_with("holding"), "unexpected output {first:?}");
    // SAFETY: inotify_init1 with a flag; the descriptor is closed right after.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    let err = std::io::Error::last_os_error();
    if fd >= 0 {
        // SAFETY: the descriptor just made.
        unsafe { libc::close(fd) };
    }
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    eprintln!("sandbox: {first}; outside: inotify_init1 = {fd} ({err}); {rest:?}");
    assert!(fd >= 0, "ESCAPED: while the sandbox holds {first:?}, a root process outside gets no inotify instance: {err}");
    assert!(status.success(), "{status:?} {rest:?}");
}

/// Queued signals are counted per user across the machine: while the sandbox holds
/// every signal it could queue, a root process outside must still queue one.
#[test]
fn the_sandbox_cannot_take_roots_pending_signals_from_processes_outside() {
    let d = Dirs::new("sigpendquota");
    let mut cmd = command(&d.policy(), &["user-quota-sigpending"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(first.starts_with("holding"), "unexpected output {first:?}");
    let sig = libc::SIGRTMIN() + 3;
    // SAFETY: blocks one real-time signal in this thread, queues it to this thread
    // (thread-directed, so no other thread takes it), and takes it back with
    // sigtimedwait before unblocking; every struct is a zeroed local.
    let (queued, err) = unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let mut info: libc::siginfo_t = core::mem::zeroed();
        info.si_signo = sig;
        info.si_code = -1; // SI_QUEUE
        let r = libc::syscall(libc::SYS_rt_tgsigqueueinfo, libc::getpid(), libc::syscall(libc::SYS_gettid), sig, &info as *const libc::siginfo_t);
        let err = std::io::Error::last_os_error();
        if r == 0 {
            let ts = libc::timespec { tv_sec: 1, tv_nsec: 0 };
            libc::sigtimedwait(&set, core::ptr::null_mut(), &ts);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        (r == 0, err)
    };
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    eprintln!("sandbox: {first}; outside: rt_tgsigqueueinfo = {queued} ({err}); {rest:?}");
    assert!(queued, "ESCAPED: while the sandbox holds {first:?}, a root process outside cannot queue a signal: {err}");
    assert!(status.success(), "{status:?} {rest:?}");
}

/// `pipe2` whose result cannot be copied out closes its new descriptors with no pin;
/// siblings race a path walk's descriptor onto that number and a read-only directory
/// after it. Nothing in the read-only tree may change, and the monitor must not close
/// a descriptor another of its threads holds (Rust's IO-safety abort when the walk
/// then closes an empty number).
#[test]
fn a_failed_pipe_copy_out_never_closes_the_path_walks_descriptor() {
    let d = Dirs::new("closeunpinned");
    let out = run_bounded(command(&d.policy(), &["close-unpinned-race", &d.ro(), &d.rw()]));
    let ro = d.ro_entries();
    assert_eq!(ro, ["marker"], "ESCAPED: the read-only tree changed: {}", show(&out));
    assert!(!text(&out.stdout).contains("ESCAPED"), "{}", show(&out));
    assert_eq!(text(&out.stdout).lines().last(), Some("contained: close-unpinned-race"), "the monitor did not survive: {}", show(&out));
}

// ---- round 18 -------------------------------------------------------------------------------

/// The vDSO is shared with the monitor (its glibc calls it in ring 0, with no SMEP):
/// no write through the kernel, the monitor's copy-outs or the memory calls may
/// change a byte of it.
#[test]
fn the_vdso_the_monitor_calls_cannot_be_written() {
    let d = Dirs::new("r18vdso");
    let out = contained(&d.policy(), &["vdso-write"]);
    eprintln!("{}", show(&out));
}

/// `SCM_CREDENTIALS` naming init, another uid or another gid is refused by the kernel
/// (no `CAP_SYS_ADMIN`, `CAP_SETUID`, `CAP_SETGID` in the sandbox).
#[test]
fn no_forged_credentials_in_control_messages() {
    let d = Dirs::new("r18creds");
    let out = contained(&d.policy(), &["scm-creds-forged"]);
    eprintln!("{}", show(&out));
}

/// A timer's thread-directed signal names only threads of the process.
#[test]
fn a_timer_signals_no_thread_outside() {
    let d = Dirs::new("r18timer");
    let out = contained(&d.policy(), &["timer-thread-outside"]);
    eprintln!("{}", show(&out));
}

/// A signal frame asking for IOPL 3, NT, no IF: ring 3 comes back without them.
#[test]
fn a_signal_frame_gives_ring_three_no_privileged_flags() {
    let d = Dirs::new("r18iopl");
    let out = contained(&d.policy(), &["sigreturn-iopl"]);
    eprintln!("{}", show(&out));
}

// ---- round 19 -------------------------------------------------------------------------------

/// epoll watches are counted per user for the whole machine (`user_struct`, which
/// follows the real uid and no namespace; no capability exempts root): while the
/// sandbox holds every watch it could add, root's processes outside must still add
/// one.
///
/// The lane's quota (889,344) takes the program about 12 minutes to fill at the
/// lane's speed, so the test lowers it to 20,000 for its run (machine-wide: the lane
/// VM only) and puts it back after.
#[test]
fn the_sandbox_cannot_take_roots_epoll_watches() {
    struct Quota(String);
    impl Drop for Quota {
        fn drop(&mut self) {
            let _ = std::fs::write("/proc/sys/fs/epoll/max_user_watches", &self.0);
        }
    }
    let _quota = Quota(std::fs::read_to_string("/proc/sys/fs/epoll/max_user_watches").unwrap());
    std::fs::write("/proc/sys/fs/epoll/max_user_watches", "20000").expect("lowering max_user_watches (root, in the lane)");
    let d = Dirs::new("r19epoll");
    let mut cmd = command(&d.policy(), &["user-quota-epoll"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(first.starts_with("holding"), "unexpected output {first:?}");
    // SAFETY: an epoll set and an eventfd of this test's own, closed right after.
    let (r, err) = unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        let ev = libc::eventfd(0, libc::EFD_CLOEXEC);
        let mut e = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
        let r = libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ev, &mut e);
        let err = std::io::Error::last_os_error();
        libc::close(ev);
        libc::close(ep);
        (r, err)
    };
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    eprintln!("sandbox: {first}; outside: epoll_ctl(ADD) = {r} ({err}); {rest:?}");
    assert!(r == 0, "ESCAPED: while the sandbox holds {first:?}, a root process outside cannot add an epoll watch: {err}");
    assert!(status.success(), "{status:?} {rest:?}");
}

/// The sandbox's own user namespace: its maps, setgroups, its quotas, capabilities and
/// calls that need one; the kept limits stay the process's.
#[test]
fn the_user_namespace_gives_no_power() {
    let d = Dirs::new("r19userns");
    let out = contained(&d.policy(), &["userns-probe"]);
    eprintln!("{}", show(&out));
}

/// utimensat, fchownat, linkat and chmod on a read-only file through a descriptor and
/// an empty path (or its /proc/self/fd name).
#[test]
fn empty_path_metadata_calls_on_a_read_only_file_change_nothing() {
    let d = Dirs::new("r19emptypath");
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(d.root.join("ro/marker")).unwrap();
    let out = contained(&d.policy(), &["empty-path-meta", &d.ro(), &d.rw()]);
    eprintln!("{}", show(&out));
    let after = std::fs::metadata(d.root.join("ro/marker")).unwrap();
    assert_eq!((before.mode(), before.gid(), before.mtime(), before.nlink()), (after.mode(), after.gid(), after.mtime(), after.nlink()), "ESCAPED: the read-only marker changed");
}

/// A program that makes itself a child subreaper takes its grandchildren's orphans from
/// the supervisor: one killed outright and reaped must not keep its slot.
#[test]
fn an_orphan_reaped_by_a_subreaper_program_leaves_no_slot() {
    let d = Dirs::new("r19subreaper");
    let out = contained(&d.policy(), &["subreaper-slot"]);
    eprintln!("{}", show(&out));
}

// ---- round 20 -------------------------------------------------------------------------------

/// splice, tee, sendfile and copy_file_range into the read-only marker through O_RDONLY
/// and O_PATH descriptors, and its /proc link reopened for writing.
#[test]
fn the_splice_family_writes_nothing_into_a_read_only_file() {
    let d = Dirs::new("r20splice");
    let out = contained(&d.policy(), &["r20-splice-ro", &d.ro(), &d.rw()]);
    eprintln!("{}", show(&out));
    assert_eq!(std::fs::read_to_string(d.root.join("ro/marker")).unwrap(), "read-only\n", "ESCAPED: the marker changed");
    assert_eq!(d.ro_entries(), ["marker"], "ESCAPED: the read-only tree changed");
}

/// /proc/<child>/... of a forked sandbox process: nothing outside the allowlist, no
/// writes.
#[test]
fn proc_entries_of_a_child_stay_closed() {
    let d = Dirs::new("r20procchild");
    let out = contained(&d.policy(), &["r20-proc-child"]);
    eprintln!("{}", show(&out));
}

/// SysV IPC, POSIX queues, PRIO_USER / IOPRIO_WHO_USER, scheduling of pid 1 and the
/// supervisor, pidfd_open, kcmp, keyrings.
#[test]
fn ipc_priorities_and_other_processes_are_out_of_reach() {
    let d = Dirs::new("r20ipcprio");
    let out = contained(&d.policy(), &["r20-ipc-prio"]);
    eprintln!("{}", show(&out));
}

/// File capabilities on a file of the writable tree, attributes on the read-only
/// marker, leases on read-only files and directories.
#[test]
fn xattrs_and_leases_change_nothing() {
    let d = Dirs::new("r20xattr");
    let out = contained(&d.policy(), &["r20-xattr-lease", &d.ro(), &d.rw()]);
    eprintln!("{}", show(&out));
    let _ = std::fs::remove_file(d.root.join("rw/r20cap"));
}

/// clone and clone3 with namespace, parent, shared-table, pidfd, set_tid and cgroup
/// flags, and odd exit signals.
#[test]
fn clone_flags_no_sandbox_process_may_have_are_refused() {
    let d = Dirs::new("r20clone");
    let out = contained(&d.policy(), &["r20-clone-flags"]);
    eprintln!("{}", show(&out));
}
