//! The kernel's line alone: confines this process as the sandbox does
//! (`monitor::confine::apply`), with no monitor at all, then tries what the monitor
//! would refuse and prints whether the kernel refused it too.
//!
//!   dune-confine-probe RO RW OUTSIDE [--read-root]
//!
//! The policy is the built-in one plus `--allow-read RO --allow-write RW` (and
//! `--allow-read /` with `--read-root`). `OUTSIDE` is a directory in no tree, holding
//! a file `secret`. One line per attempt: `refused: WHAT (errno)`, `ESCAPED: WHAT`, or
//! `not covered: WHAT (why)` where this kernel has no layer for it. The last line
//! is `layers: ...`. Exit status 1 if anything escaped.

use std::ffi::CString;
use std::io::Write;

use dune_sandbox::monitor::confine::{self, Layers};
use dune_sandbox::Policy;

struct Probe {
    escaped: bool,
}

impl Probe {
    /// Reports `r` (a raw result: negative is refused) for `what`.
    fn check(&mut self, what: &str, r: i64) {
        if r < 0 {
            println!("refused: {what} ({})", std::io::Error::last_os_error());
        } else {
            println!("ESCAPED: {what}");
            self.escaped = true;
        }
    }

    fn not_covered(&self, what: &str, why: &str) {
        println!("not covered: {what} ({why})");
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: dune-confine-probe RO RW OUTSIDE [--read-root]");
        std::process::exit(2);
    }
    let (ro, rw, outside) = (&args[1], &args[2], &args[3]);
    let read_root = args.iter().any(|a| a == "--read-root");
    let mut policy = Policy::builtin();
    let built = policy.allow_read(ro).and_then(|p| p.allow_write(rw)).and_then(|p| if read_root { p.allow_read("/") } else { Ok(p) });
    if let Err(e) = built {
        eprintln!("policy: {e}");
        std::process::exit(2);
    }
    let layers: Layers = match confine::apply(&mut policy, &confine::Options::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("confine: {e}");
            std::process::exit(2);
        }
    };
    let mut p = Probe { escaped: false };
    // SAFETY: (every call below) plain system calls with NUL-terminated strings,
    // local buffers and integer arguments; each result is only reported.
    unsafe {
        // ---- files (Landlock) -------------------------------------------------------
        if layers.landlock.is_some() {
            let f = c(&format!("{outside}/created"));
            p.check("create a file in a directory no tree holds", libc::open(f.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644) as i64);
            let f = c(&format!("{ro}/marker"));
            p.check("open a file of a read-only tree for writing", libc::open(f.as_ptr(), libc::O_WRONLY) as i64);
            let f = c(&format!("{ro}/newdir"));
            p.check("mkdir in a read-only tree", libc::mkdir(f.as_ptr(), 0o755) as i64);
            if !read_root {
                let f = c(&format!("{outside}/secret"));
                p.check("read a file no tree holds", libc::open(f.as_ptr(), libc::O_RDONLY) as i64);
                p.check("read /etc/shadow", libc::open(c("/etc/shadow").as_ptr(), libc::O_RDONLY) as i64);
            }
        } else {
            p.not_covered("files outside the trees", "no Landlock");
        }
        // ---- set-id bits (seccomp) ------------------------------------------------------
        let f = c(&format!("{rw}/plain"));
        let fd = libc::open(f.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
        // The monitor reads where a descriptor's file is from /proc/self/fd: the
        // confined process must still see its own paths (not, say, a chroot's prefix).
        let shown = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        if shown != std::path::Path::new(&format!("{rw}/plain")) {
            println!("BROKEN: /proc/self/fd shows {} for {rw}/plain", shown.display());
            p.escaped = true;
        }
        p.check("chmod 04755 in the writable tree", libc::chmod(f.as_ptr(), 0o4755) as i64);
        p.check("fchmod 02755", libc::fchmod(fd, 0o2755) as i64);
        let g = c(&format!("{rw}/suid"));
        p.check("create a file with mode 04755", libc::open(g.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o4755) as i64);
        let d = c(&format!("{rw}/chr"));
        p.check("mknod a character device", libc::mknod(d.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) as i64);
        let w1 = c(&format!("{rw}/whiteout-a"));
        let w2 = c(&format!("{rw}/whiteout-b"));
        libc::close(libc::open(w1.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644));
        p.check("renameat2(RENAME_WHITEOUT): a character device", libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, w1.as_ptr(), libc::AT_FDCWD, w2.as_ptr(), libc::RENAME_WHITEOUT));
        // ---- sockets -------------------------------------------------------------------
        p.check("socket(AF_INET, SOCK_RAW)", libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) as i64);
        p.check("socket(AF_INET, SOCK_PACKET)", libc::socket(libc::AF_INET, 10, 0x0300) as i64);
        p.check("socket(AF_PACKET)", libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0x0300) as i64);
        p.check("socket(AF_NETLINK)", libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 0) as i64);
        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let filter = [0u8; 16];
        p.check("a classic BPF socket filter", libc::setsockopt(s, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, filter.as_ptr().cast(), 16) as i64);
        // A loose source route through 127.0.0.77 (type 131, length 7, pointer 4).
        let lsrr = [1u8, 131, 7, 4, 127, 0, 0, 77];
        p.check("IP_OPTIONS with a source route", libc::setsockopt(s, libc::IPPROTO_IP, libc::IP_OPTIONS, lsrr.as_ptr().cast(), 8) as i64);
        p.check("close_range(CLOSE_RANGE_UNSHARE)", libc::syscall(libc::SYS_close_range, 1000, 1000, 2));
        if layers.net_ns {
            let mut a: libc::sockaddr_in = core::mem::zeroed();
            a.sin_family = libc::AF_INET as u16;
            a.sin_port = 53u16.to_be();
            a.sin_addr.s_addr = u32::from_be_bytes([1, 1, 1, 1]).to_be();
            p.check("connect to 1.1.1.1:53 with no network rule", libc::connect(s, (&a as *const libc::sockaddr_in).cast(), 16) as i64);
        } else if layers.landlock_tcp {
            let mut a: libc::sockaddr_in = core::mem::zeroed();
            a.sin_family = libc::AF_INET as u16;
            a.sin_port = 9u16.to_be();
            a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            p.check("connect to 127.0.0.1:9 with no network rule", libc::connect(s, (&a as *const libc::sockaddr_in).cast(), 16) as i64);
        } else {
            p.not_covered("connecting with no network rule", "no network namespace, no Landlock TCP rules");
        }
        // ---- the process and the machine (seccomp, capabilities) ---------------------------
        p.check("ptrace(PTRACE_TRACEME)", libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0));
        p.check("bpf", libc::syscall(libc::SYS_bpf, 0, 0, 0));
        p.check("io_uring_setup", libc::syscall(libc::SYS_io_uring_setup, 8, [0u8; 120].as_ptr()));
        p.check("userfaultfd", libc::syscall(libc::SYS_userfaultfd, 0));
        p.check("perf_event_open", libc::syscall(libc::SYS_perf_event_open, [0u8; 128].as_ptr(), 0, -1, -1, 0));
        p.check("unshare(CLONE_NEWUSER)", libc::unshare(libc::CLONE_NEWUSER) as i64);
        p.check("mount a tmpfs", libc::mount(c("none").as_ptr(), f.as_ptr(), c("tmpfs").as_ptr(), 0, core::ptr::null()) as i64);
        p.check("kexec_load", libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0));
        p.check("init_module", libc::syscall(libc::SYS_init_module, 0, 0, 0));
        let page = libc::mmap(core::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        *(page as *mut u8) = 1;
        p.check("madvise(MADV_SOFT_OFFLINE)", libc::madvise(page, 4096, 101) as i64);
        p.check("madvise(MADV_DONTFORK)", libc::madvise(page, 4096, libc::MADV_DONTFORK) as i64);
        p.check("madvise(MADV_MERGEABLE)", libc::madvise(page, 4096, libc::MADV_MERGEABLE) as i64);
        let ch = 0u8;
        p.check("ioctl(TIOCSTI)", libc::ioctl(0, libc::TIOCSTI, &ch) as i64);
        p.check("prctl(PR_SET_DUMPABLE, 1)", libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) as i64);
        let inf = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        p.check("raise RLIMIT_CORE", libc::setrlimit(libc::RLIMIT_CORE, &inf) as i64);
        p.check("personality(READ_IMPLIES_EXEC)", libc::personality(0x0400000) as i64);
        let hdr = [0x2008_0522u32, 0];
        let mut caps = [0u32; 6];
        libc::syscall(libc::SYS_capget, hdr.as_ptr(), caps.as_mut_ptr());
        p.check("any capability still held", if caps.iter().any(|&w| w != 0) { 0 } else { -1 });
        // A core dump of a child killed by SIGQUIT, in the writable tree.
        let pid = libc::fork();
        if pid == 0 {
            libc::chdir(c(rw).as_ptr());
            libc::raise(libc::SIGQUIT);
            libc::_exit(0);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        p.check("a core dump", if libc::WIFSIGNALED(st) && libc::WCOREDUMP(st) { 0 } else { -1 });
        // Devices no rule names, under a tree that holds them (--read-root).
        if read_root {
            for dev in ["/dev/port", "/dev/mem", "/dev/kmsg"] {
                if std::path::Path::new(dev).exists() {
                    p.check(&format!("open {dev}"), libc::open(c(dev).as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) as i64);
                }
            }
        }
        // Through the tree's own descriptor too (opened again in the sandbox's mount
        // namespace, so its mounts are nodev): what the monitor's resolver would use.
        if read_root && layers.mount_ns {
            for (path, fd, _, _) in policy.paths().roots() {
                if path == std::path::Path::new("/") {
                    if let Some(fd) = fd {
                        use std::os::fd::AsRawFd;
                        for dev in ["dev/port", "dev/mem", "dev/kmsg"] {
                            if std::path::Path::new("/").join(dev).exists() {
                                p.check(&format!("open /{dev} through the root tree's descriptor"), libc::openat(fd.as_raw_fd(), c(dev).as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) as i64);
                            }
                        }
                    }
                }
            }
        }
        // A signal to a process outside the sandbox (Landlock's signal scope).
        if layers.landlock_scopes {
            p.check("kill a process outside the sandbox", libc::kill(libc::getppid(), 0) as i64);
        } else {
            p.not_covered("signals to processes outside", "no Landlock signal scope (ABI < 6)");
        }
    }
    println!("layers: {layers}");
    let _ = std::io::stdout().flush();
    std::process::exit(if p.escaped { 1 } else { 0 });
}
