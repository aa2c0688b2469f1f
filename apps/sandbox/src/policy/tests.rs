//! Tests of the whole policy: Docker's profile, the built-in policy, errors, and bounded
//! fuzzing of the profile parser.

use super::*;

const DOCKER: &str = include_str!("../../policy/docker-default.json");
const K: Option<KernelVersion> = Some(KernelVersion(6, 8));

fn nr(name: &str) -> u64 {
    syscalls::number(name).unwrap_or_else(|| panic!("{name}"))
}

fn d(p: &Policy, name: &str, args: [u64; 6]) -> Action {
    p.decide(nr(name), &args)
}

const EPERM: Action = Action::Errno(libc::EPERM as u16);
const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);
const Z: [u64; 6] = [0; 6];

#[test]
fn docker_default_profile_loads_and_decides() {
    let p = Policy::from_json_for_kernel(DOCKER, "docker-default.json", K).unwrap();
    for ok in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "execve",
        "futex",
        "exit_group",
    ] {
        assert_eq!(d(&p, ok, Z), Action::Allow, "{ok}");
    }
    for denied in [
        "reboot",
        "kexec_load",
        "init_module",
        "mount",
        "swapon",
        "setns",
    ] {
        assert_eq!(d(&p, denied, Z), EPERM, "{denied}");
    }
    let (_, why) = p.explain(nr("reboot"), &Z);
    assert!(why == "by defaultAction" || why.contains("floor"), "{why}");
    assert_eq!(p.explain(nr("swapon"), &Z).1, "by defaultAction");
    // clone: allowed without namespace flags, denied with CLONE_NEWUSER.
    let sigchld = libc::SIGCHLD as u64;
    assert_eq!(d(&p, "clone", [sigchld, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(
        d(
            &p,
            "clone",
            [sigchld | libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
        ),
        EPERM
    );
    // clone3 is ENOSYS for holders of no CAP_SYS_ADMIN (the rule's errnoRet 38).
    assert_eq!(d(&p, "clone3", Z), ENOSYS);
    // personality: 0, 8, 0x20000, 0x20008, 0xffffffff only.
    for ok in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            d(&p, "personality", [ok, 0, 0, 0, 0, 0]),
            Action::Allow,
            "{ok:#x}"
        );
    }
    assert_eq!(d(&p, "personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
    // socket: everything but AF_VSOCK (40).
    assert_eq!(
        d(&p, "socket", [libc::AF_INET as u64, 1, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        d(&p, "socket", [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0]),
        EPERM
    );
    // ptrace is allowed by Docker on >= 4.8, but the sandbox's floor refuses it.
    assert_eq!(
        p.explain(nr("ptrace"), &Z),
        (EPERM, "denied by the sandbox's hard floor")
    );
    // Out-of-table and x32 numbers.
    assert_eq!(p.decide(10_000, &Z), EPERM);
    assert_eq!(p.decide(syscalls::X32_SYSCALL_BIT, &Z), ENOSYS);
}

#[test]
fn docker_profile_names_unknown_on_x86_64_are_ignored() {
    // Docker lists arm-only names (arm_fadvise64_64, ...); the profile loads regardless.
    assert!(DOCKER.contains("\"arm_fadvise64_64\""));
    assert!(syscalls::number("arm_fadvise64_64").is_none());
    let j = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["no_such_call","read"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let p = Policy::from_json_for_kernel(j, "t.json", K).unwrap();
    assert_eq!(d(&p, "read", Z), Action::Allow);
}

#[test]
fn min_kernel_caps_and_arches() {
    let j = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
        {"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.10"}},
        {"names":["write"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["close"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["dup"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390x"]}},
        {"names":["dup2"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64"]}},
        {"names":["dup3"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64"]}},
        {"name":"lseek","action":"SCMP_ACT_LOG"}]}"#;
    let new = Policy::from_json_for_kernel(j, "t", Some(KernelVersion(6, 1))).unwrap();
    let old = Policy::from_json_for_kernel(j, "t", Some(KernelVersion(5, 4))).unwrap();
    assert_eq!(d(&new, "read", Z), Action::Allow);
    assert_eq!(d(&old, "read", Z), ENOSYS);
    assert_eq!(d(&new, "write", Z), ENOSYS);
    assert_eq!(d(&new, "close", Z), Action::Allow);
    assert_eq!(d(&new, "dup", Z), ENOSYS);
    assert_eq!(d(&new, "dup2", Z), Action::Allow);
    assert_eq!(d(&new, "dup3", Z), ENOSYS);
    assert_eq!(d(&new, "lseek", Z), Action::Log);
    assert!(running_kernel().is_some());
}

#[test]
fn most_restrictive_match_wins_and_args_all_hold() {
    let j = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["read"],"action":"SCMP_ACT_LOG"},
        {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"comment":"fd 7",
         "args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"}]},
        {"names":["read"],"action":"SCMP_ACT_KILL_PROCESS",
         "args":[{"index":0,"value":9,"op":"SCMP_CMP_EQ"},{"index":2,"value":100,"op":"SCMP_CMP_GT"}]},
        {"names":["read"],"action":"SCMP_ACT_TRAP",
         "args":[{"index":0,"value":9,"op":"SCMP_CMP_EQ"}]},
        {"names":["write"],"action":"SCMP_ACT_TRACE"},
        {"names":["write"],"action":"SCMP_ACT_KILL"},
        {"names":["close"],"action":"SCMP_ACT_NOTIFY"},
        {"names":["dup"],"action":"SCMP_ACT_KILL_THREAD",
         "args":[{"index":5,"value":240,"valueTwo":16,"op":"SCMP_CMP_MASKED_EQ"}]},
        {"names":["@basic-io"],"action":"SCMP_ACT_LOG"},
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO",
         "args":[{"index":1,"value":3,"op":"SCMP_CMP_LT"},{"index":1,"value":1,"op":"SCMP_CMP_GE"},
                 {"index":1,"value":2,"op":"SCMP_CMP_NE"},{"index":1,"value":1,"op":"SCMP_CMP_LE"}]}]}"#;
    let p = Policy::from_json_for_kernel(j, "t", K).unwrap();
    assert_eq!(d(&p, "read", Z), Action::Log);
    assert_eq!(
        p.explain(nr("read"), &[7, 0, 0, 0, 0, 0]),
        (Action::Errno(5), "by rule 1 (fd 7)")
    );
    assert_eq!(d(&p, "read", [9, 0, 50, 0, 0, 0]), Action::Trap);
    assert_eq!(d(&p, "read", [9, 0, 101, 0, 0, 0]), Action::KillProcess);
    assert_eq!(d(&p, "write", Z), Action::KillThread);
    assert_eq!(d(&p, "close", Z), Action::Errno(libc::ENOSYS as u16));
    assert_eq!(d(&p, "dup", [0, 0, 0, 0, 0, 0x1f]), Action::KillThread);
    assert_eq!(d(&p, "dup", [0, 0, 0, 0, 0, 0x2f]), Action::Log); // via @basic-io
    assert_eq!(d(&p, "getpid", [0, 1, 0, 0, 0, 0]), EPERM);
    assert_eq!(d(&p, "getpid", [0, 2, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(
        p.explain(nr("getppid"), &Z),
        (Action::Allow, "by defaultAction")
    );
}

fn err_of(j: &str) -> String {
    match Policy::from_json_for_kernel(j, "p.json", K) {
        Ok(_) => panic!("accepted: {j}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_have_file_line_column() {
    let e = err_of("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"bogus\": 1\n}");
    assert!(e.starts_with("p.json:3:"), "{e}");
    assert!(e.contains("unknown field `bogus`"), "{e}");
    assert!(!e.contains('\n'));
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\"syscalls\": [\n {\"names\": [\"read\"],\n  \"action\": \"SCMP_ACT_MAYBE\"}]}");
    assert!(e.starts_with("p.json:4:"), "{e}");
    assert!(e.contains("SCMP_ACT_MAYBE"), "{e}");
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n \"args\": [{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}");
    assert!(e.starts_with("p.json:3:") && e.contains("index 6"), "{e}");
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_ABOUT\"}]}]}");
    assert!(
        e.starts_with("p.json:3:") && e.contains("SCMP_CMP_ABOUT"),
        "{e}"
    );
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\n\"syscalls\": [{\"names\": [\"@nonsense\"], \"action\": \"SCMP_ACT_ALLOW\"}]}");
    assert!(e.starts_with("p.json:3:") && e.contains("@nonsense"), "{e}");
    let e =
        err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_ARM\"]}");
    assert!(e.starts_with("p.json:1:") && e.contains("X86_64"), "{e}");
    let e = err_of(
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"dune\": {\"net\": [\"1.2.3.4:99999\"]}}",
    );
    assert!(e.starts_with("p.json:2:") && e.contains("bad port"), "{e}");
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"dune\": {\n\"readOnly\": [\"/no/such/dir/anywhere\"]}}");
    assert!(
        e.starts_with("p.json:3:") && e.contains("/no/such/dir/anywhere"),
        "{e}"
    );
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"five\"}}]}");
    assert!(e.contains("kernel version"), "{e}");
    let e = err_of("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 70000}");
    assert!(e.contains("out of range"), "{e}");
    let e = err_of("{\"defaultAction\": ");
    assert!(e.starts_with("p.json:1:"), "{e}");
    let e = err_of("");
    assert!(e.starts_with("p.json:1:"), "{e}");
    let e = Policy::load(Path::new("/no/such/profile.json"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/no/such/profile.json: "), "{e}");
}

#[test]
fn dune_section_and_builders() {
    let t = std::env::temp_dir().join(format!("dune-policy-dune-{}", std::process::id()));
    std::fs::create_dir_all(&t).unwrap();
    let j = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","dune":{{"readOnly":["/etc"],"readWrite":[{t:?}],
        "net":["127.0.0.1:8080"],"bind":["0.0.0.0/0:9000"],"connect":["[::1]:80"],
        "limits":{{"threads":8,"processes":3,"memory":1048576}},"tty":true}}}}"#
    );
    let mut p = Policy::from_json_for_kernel(&j, "t", K).unwrap();
    assert_eq!(
        *p.limits(),
        Limits {
            threads: Some(8),
            processes: Some(3),
            memory: Some(1 << 20)
        }
    );
    assert!(p.tty());
    assert_eq!(p.net().bind_rules().len(), 2);
    assert_eq!(p.net().connect_rules().len(), 2);
    assert!(p.paths().trees().any(|(path, w)| path == t && w));
    assert!(p
        .paths()
        .trees()
        .any(|(path, w)| path == Path::new("/usr") && !w));
    p.allow_read("/var")
        .unwrap()
        .allow_net("10.0.0.0/8")
        .unwrap();
    assert!(p.allow_write("/no/such/dir").is_err());
    assert!(p.allow_net("nonsense").is_err());
    // A unix socket path goes through the path rules.
    let mut sa = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    sa.extend_from_slice(t.join("sock").as_os_str().as_encoded_bytes());
    let r = p
        .check_sockaddr(NetOp::Bind, &sa, Path::new("/"))
        .unwrap()
        .unwrap();
    assert!(r.writable && r.node.is_none());
    let mut sa = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    sa.extend_from_slice(b"/etc/sock");
    assert_eq!(
        p.check_sockaddr(NetOp::Bind, &sa, Path::new("/")).err(),
        Some(Errno(libc::EACCES))
    );
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn builtin_policy() {
    let p = Policy::builtin();
    for ok in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "mprotect",
        "brk",
        "execve",
        "wait4",
        "rt_sigaction",
        "rt_sigreturn",
        "timer_create",
        "timerfd_create",
        "clock_nanosleep",
        "futex",
        "set_robust_list",
        "rseq",
        "arch_prctl",
        "pipe2",
        "dup2",
        "getdents64",
        "newfstatat",
        "statx",
        "kill",
        "tgkill",
        "epoll_wait",
        "poll",
        "getrandom",
        "sched_getaffinity",
        "prlimit64",
        "uname",
        "sysinfo",
        "madvise",
        "fork",
        "vfork",
        "connect",
        "bind",
        "sendto",
        "recvfrom",
        "ioctl",
        "fcntl",
        "getcwd",
        "chdir",
        "unlink",
        "rename",
        "mkdir",
        "exit_group",
        "close_range",
        "memfd_create",
    ] {
        assert_eq!(d(&p, ok, Z), Action::Allow, "{ok}");
    }
    for floor in [
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "io_uring_setup",
        "modify_ldt",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "mount",
        "umount2",
        "fsopen",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
    ] {
        assert_eq!(d(&p, floor, Z), EPERM, "{floor}");
    }
    for denied in ["setuid", "setresuid", "setgid", "capset", "kcmp"] {
        assert_eq!(d(&p, denied, Z), EPERM, "{denied}");
    }
    assert_eq!(d(&p, "reboot", Z), ENOSYS);
    assert_eq!(d(&p, "swapon", Z), ENOSYS);
    assert_eq!(d(&p, "clone3", Z), Action::Allow, "the monitor copies clone3's arguments in and checks them");
    // clone: threads and fork-like clones, but no namespaces.
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    assert_eq!(d(&p, "clone", [thread, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(
        d(&p, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    for ns in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
    ] {
        let (a, why) = p.explain(
            nr("clone"),
            &[libc::SIGCHLD as u64 | ns as u64, 0, 0, 0, 0, 0],
        );
        assert_eq!(a, EPERM);
        assert!(why.contains("namespace"), "{why}");
    }
    // personality: PER_LINUX and the query only.
    assert_eq!(d(&p, "personality", [0, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(
        d(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(d(&p, "personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(d(&p, "personality", [8, 0, 0, 0, 0, 0]), EPERM);
    // socket families.
    for fam in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
        assert_eq!(d(&p, "socket", [fam as u64, 1, 0, 0, 0, 0]), Action::Allow);
    }
    let eaf = Action::Errno(libc::EAFNOSUPPORT as u16);
    assert_eq!(
        d(&p, "socket", [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0]),
        eaf
    );
    assert_eq!(
        d(&p, "socket", [libc::AF_PACKET as u64, 3, 0, 0, 0, 0]),
        eaf
    );
    assert_eq!(
        d(
            &p,
            "socket",
            [(1 << 32) | libc::AF_INET as u64, 1, 0, 0, 0, 0]
        ),
        eaf
    );
    // ioctl: TIOCSTI denied even with junk in the upper 32 bits.
    assert_eq!(d(&p, "ioctl", [0, libc::TCGETS, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(d(&p, "ioctl", [0, libc::TIOCSTI, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        d(&p, "ioctl", [0, (7 << 32) | libc::TIOCSTI, 0, 0, 0, 0]),
        EPERM
    );
    // Unknown numbers: ENOSYS, so libc can fall back.
    assert_eq!(p.decide(466, &Z), ENOSYS);
    assert_eq!(p.decide(u64::MAX, &Z), ENOSYS);
    // Files: the runtime trees, read-only; /dev/null writable; nothing else.
    let paths = p.paths();
    let root = Path::new("/");
    assert!(
        paths.open(root, b"/usr/bin/env", libc::O_RDONLY, 0).is_ok()
            || !Path::new("/usr/bin/env").exists()
    );
    assert_eq!(
        paths.open(root, b"/usr/bin/env", libc::O_RDWR, 0).err(),
        Some(Errno(libc::EACCES))
    );
    assert!(paths.open(root, b"/dev/null", libc::O_WRONLY, 0).is_ok());
    assert!(paths.open(root, b"/etc/passwd", libc::O_RDONLY, 0).is_ok());
    assert_eq!(
        paths.open(root, b"/etc/shadow", libc::O_RDONLY, 0).err(),
        Some(Errno(libc::EACCES))
    );
    assert_eq!(
        paths.open(root, b"/home", libc::O_RDONLY, 0).err(),
        Some(Errno(libc::EACCES))
    );
    assert_eq!(
        paths.open(root, b"/proc/self/mem", libc::O_RDONLY, 0).err(),
        Some(Errno(libc::EACCES))
    );
    assert!(paths
        .open(root, b"/proc/self/status", libc::O_RDONLY, 0)
        .is_ok());
    // The kernel's maps are the monitor's: the monitor serves the program's own.
    assert_eq!(
        paths.open(root, b"/proc/self/maps", libc::O_RDONLY, 0).err(),
        Some(Errno(libc::EACCES))
    );
    assert_eq!(
        paths
            .open(root, b"/tmp/x", libc::O_WRONLY | libc::O_CREAT, 0o600)
            .err(),
        Some(Errno(libc::EACCES))
    );
    // No network by default.
    let mut sa = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    sa.extend_from_slice(&[0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        p.check_sockaddr(NetOp::Connect, &sa, root).err(),
        Some(Errno(libc::EACCES))
    );
    assert_eq!(*p.limits(), Limits::default());
}

/// xorshift64*: a small deterministic generator for the fuzz tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const KEYS: &[&str] = &[
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "archMap",
    "syscalls",
    "names",
    "name",
    "action",
    "errnoRet",
    "args",
    "index",
    "value",
    "valueTwo",
    "op",
    "comment",
    "includes",
    "excludes",
    "caps",
    "arches",
    "minKernel",
    "dune",
    "readOnly",
    "readWrite",
    "net",
    "limits",
    "threads",
    "memory",
    "bogus",
];

const VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "6",
    "18446744073709551616",
    "1.5",
    "\"\"",
    "\"SCMP_ACT_KILL\"",
    "\"@system-service\"",
    "\"@nope\"",
    "[]",
    "{}",
    "[1]",
    "{\"a\":1}",
    "\"SCMP_CMP_EQ\"",
    "\"5.4\"",
    "\"/\"",
    "\"127.0.0.1:80\"",
    "\"x\"",
];

fn mutate(rng: &mut Rng, src: &str) -> Vec<u8> {
    let mut b = src.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(7) {
            0 => {
                // Byte flip.
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let n = rng.below(b.len() + 1);
                b.truncate(n);
            }
            2 => {
                // Random printable/structural byte inserted.
                let i = rng.below(b.len() + 1);
                let set = b"{}[],:\"0123456789eE-+.\\ \nabcxyz@";
                let c = set[rng.below(set.len())];
                b.insert(i, c);
            }
            3 | 4 => {
                // Rename a key.
                let s = String::from_utf8_lossy(&b).into_owned();
                let from = KEYS[rng.below(KEYS.len())];
                let to = KEYS[rng.below(KEYS.len())];
                let pat = format!("\"{from}\"");
                if let Some(i) = s.match_indices(&pat).map(|(i, _)| i).nth(rng.below(4)) {
                    b = format!("{}\"{to}\"{}", &s[..i], &s[i + pat.len()..]).into_bytes();
                }
            }
            _ => {
                // Change a value's type: replace what follows a `:` up to `,` `}` or `]`.
                let colons: Vec<usize> = b
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c == b':')
                    .map(|(i, _)| i)
                    .collect();
                if !colons.is_empty() {
                    let at = colons[rng.below(colons.len())] + 1;
                    let end = b[at..]
                        .iter()
                        .position(|&c| matches!(c, b',' | b'}' | b']'))
                        .map_or(b.len(), |e| at + e);
                    let v = VALUES[rng.below(VALUES.len())].as_bytes();
                    b.splice(at..end, v.iter().copied());
                }
            }
        }
    }
    b
}

/// Parses one input: `Some(true)` if it loaded, `Some(false)` if it was a located error,
/// `None` if it was not UTF-8 (the loader takes `&str`).
fn check_one(input: &[u8]) -> Option<bool> {
    let text = std::str::from_utf8(input).ok()?;
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    match Policy::from_json_for_kernel(text, "fuzz.json", K) {
        Ok(p) => {
            // Whatever loaded must decide without panicking.
            for nr in [0, 1, 56, 59, 101, 135, 169, 435, 10_000] {
                let _ = p.decide(nr, &[u64::MAX, 0, 1, 2, 3, 4]);
            }
            Some(true)
        }
        Err(PolicyError::Parse {
            line,
            column,
            file,
            message,
        }) => {
            assert_eq!(file, "fuzz.json");
            assert!(
                line >= 1 && line <= lines,
                "line {line} of {lines}: {message}\n{text}"
            );
            assert!(column >= 1);
            assert!(!message.contains('\n'), "{message}");
            Some(false)
        }
        Err(e) => panic!("unexpected error kind {e}"),
    }
}

/// Runs `n` mutations of `srcs` and checks both outcomes occurred often.
fn fuzz(seed: u64, srcs: &[&str], n: usize) {
    let mut rng = Rng(seed);
    let (mut ok, mut err) = (0, 0);
    for round in 0..n {
        let m = mutate(&mut rng, srcs[round % srcs.len()]);
        match check_one(&m) {
            Some(true) => ok += 1,
            Some(false) => err += 1,
            None => {}
        }
    }
    assert!(ok > n / 20 && err > n / 4, "ok {ok}, errors {err} of {n}");
}

#[test]
fn fuzz_docker_profile_mutations() {
    fuzz(0x9e37_79b9_7f4a_7c15, &[DOCKER], 3000);
}

#[test]
fn fuzz_small_profile_mutations() {
    let small = [
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],
"flags":["SECCOMP_FILTER_FLAG_LOG"],"listenerPath":"/x","listenerMetadata":"m",
"syscalls":[{"names":["read","@basic-io"],"action":"SCMP_ACT_ALLOW","comment":"c",
"args":[{"index":0,"value":1,"valueTwo":0,"op":"SCMP_CMP_EQ"}],
"includes":{"caps":[],"arches":["amd64"],"minKernel":"4.8"},"excludes":{}}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"write","action":"SCMP_ACT_ERRNO","errnoRet":13}],
"dune":{"readOnly":["/usr"],"readWrite":["/dev/null"],"net":["127.0.0.1:80","[::1]/128:443"],
"bind":["0.0.0.0/0"],"connect":["unix:@x"],"limits":{"threads":4,"memory":4096}}}"#,
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}]}"#,
    ];
    fuzz(0x0123_4567_89ab_cdef, &small, 20_000);
    // Every prefix of the Docker profile (truncation at each of a few hundred points).
    for cut in (0..DOCKER.len()).step_by(97) {
        check_one(&DOCKER.as_bytes()[..cut]);
    }
}
