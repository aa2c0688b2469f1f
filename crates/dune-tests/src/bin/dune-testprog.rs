//! Scenarios that run in Dune mode, one per subcommand. Each checks what it can from
//! inside and prints `ok <scenario>` on success; the integration tests in
//! `tests/runtime.rs` run them and check exit status and output from outside.
//!
//! Checks use `check!`, which prints the failed condition and exits 1 (a panic in
//! Dune mode would also end the process, but less legibly).

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

macro_rules! check {
    ($cond:expr $(, $($fmt:tt)*)?) => {
        if !$cond {
            eprintln!("check failed at line {}: {}", line!(), stringify!($cond));
            $(eprintln!($($fmt)*);)?
            std::process::exit(1);
        }
    };
}

fn enter() {
    if let Err(e) = libdune::enter() {
        eprintln!("enter failed: {e}");
        std::process::exit(2);
    }
    check!(libdune::in_dune_mode(), "enter() returned but CS is not ring 0");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).map(String::as_str).unwrap_or("");
    match scenario {
        "basic" => basic(),
        "registers" => registers(),
        "files" => files(),
        "threads" => threads(),
        "thread-churn" => thread_churn(),
        "fork" => fork(),
        "command" => command(),
        "exec-fail" => exec_fail(),
        "mmap" => mmap(),
        "heap" => heap(),
        "lazy" => lazy(),
        "stack-growth" => stack_growth(),
        "time" => time(),
        "segv-null" => segv_null(),
        "segv-readonly" => segv_readonly(),
        "exit-group" => exit_group(),
        "stats" => stats(),
        "signal-handler" => signal_handler(),
        "signal-fault-handler" => signal_fault_handler(),
        "signal-timers" => signal_timers(),
        "signal-restart" => signal_restart(),
        "sigchld" => sigchld(),
        "sigaltstack" => sigaltstack(),
        "signal-thread" => signal_thread(),
        "signal-default-term" => signal_default_term(),
        "stack-overflow" => stack_overflow(),
        "triple-fault" => triple_fault(),
        "vfork" => vfork(),
        "pgflt-handler" => pgflt_handler(),
        "dirty-bits" => dirty_bits(),
        "trap-handlers" => trap_handlers(),
        "ring3" => ring3(),
        "shootdown" => shootdown(),
        "handler-overflow" => handler_overflow(),
        _ => {
            eprintln!("usage: dune-testprog SCENARIO (unknown scenario {scenario:?})");
            std::process::exit(64);
        }
    }
    println!("ok {scenario}");
}

/// Enter, stay, make system calls; entering twice is harmless.
fn basic() {
    let pid = std::process::id();
    enter();
    enter();
    check!(std::process::id() == pid);
    // SAFETY: plain libc calls.
    check!(unsafe { libc::getppid() } > 0);
    let mut out = std::io::stdout().lock();
    check!(writeln!(out, "hello from ring 0").is_ok());
    drop(out);
    // Hostile pointers in system calls: the kernel refuses them, nothing crashes.
    let efault = || std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT);
    // SAFETY: deliberately bad pointers; the kernel checks them and returns EFAULT.
    unsafe {
        check!(libc::write(1, 0x10 as *const libc::c_void, 5) == -1 && efault());
        check!(libc::read(0, 0xffff_8000_0000_0000u64 as *mut libc::c_void, 5) == -1 && efault());
        // rt_sigaction is emulated by the runtime: its pointers are checked there.
        check!(libc::syscall(libc::SYS_rt_sigaction, libc::SIGUSR1, 0x18usize, 0usize, 8usize) == -1 && efault());
        check!(libc::syscall(libc::SYS_rt_sigaction, libc::SIGUSR1, 0usize, 0x18usize, 8usize) == -1 && efault());
    }
    check!(libdune::in_dune_mode());
}

thread_local! {
    static TLS_MARK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Registers that must be the same after enter: FS base (thread locals), MXCSR, x87
/// control word, XCR0, the signal mask.
fn registers() {
    TLS_MARK.with(|c| c.set(0xfeed_f00d));
    // Flush-to-zero and denormals-are-zero: a non-default MXCSR to carry over.
    let mxcsr_in: u32 = 0x1f80 | 0x8040;
    let mut fcw_in: u16 = 0;
    // SAFETY: writes MXCSR and reads the x87 control word into a local.
    unsafe {
        std::arch::asm!("ldmxcsr [{0}]", in(reg) &mxcsr_in);
        std::arch::asm!("fnstcw [{0}]", in(reg) &mut fcw_in);
    }
    // SAFETY: cpuid/xgetbv are available on x86-64 with OSXSAVE, checked via cpuid.
    let xcr0_in = unsafe { xcr0() };
    // SAFETY: sigset manipulation on locals, then one sigprocmask call.
    let mask_in = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        current_mask()
    };
    enter();
    check!(TLS_MARK.with(|c| c.get()) == 0xfeed_f00d, "thread-local lost");
    let mut mxcsr_out: u32 = 0;
    let mut fcw_out: u16 = 0;
    // SAFETY: reads into locals.
    unsafe {
        std::arch::asm!("stmxcsr [{0}]", in(reg) &mut mxcsr_out);
        std::arch::asm!("fnstcw [{0}]", in(reg) &mut fcw_out);
    }
    check!(mxcsr_out == mxcsr_in, "mxcsr {mxcsr_out:#x} != {mxcsr_in:#x}");
    check!(fcw_out == fcw_in, "fcw {fcw_out:#x} != {fcw_in:#x}");
    // SAFETY: as above; in ring 0 xgetbv reads the guest's XCR0.
    let xcr0_out = unsafe { xcr0() };
    // x87, SSE, AVX and AVX-512 state must match exactly. MPX (bits 3-4) is the one
    // component a host may have that KVM no longer offers guests; nothing is added.
    const USER_STATE: u64 = 0b1110_0111;
    check!(xcr0_out & USER_STATE == xcr0_in & USER_STATE, "xcr0 {xcr0_out:#x} != {xcr0_in:#x}");
    check!(xcr0_out & !xcr0_in == 0, "xcr0 {xcr0_out:#x} has bits the host lacks ({xcr0_in:#x})");
    // SAFETY: one sigprocmask query.
    check!(unsafe { current_mask() } == mask_in, "signal mask changed");
    // Vector code after entering: AVX where the CPU has it.
    let v: Vec<f64> = (0..4096).map(|i| i as f64 * 0.5).collect();
    let s: f64 = v.iter().sum();
    check!(s == 4096.0 * 4095.0 / 4.0);
}

unsafe fn xcr0() -> u64 {
    // SAFETY: cpuid leaf 1 always exists; xgetbv only when OSXSAVE is set.
    unsafe {
        if std::arch::x86_64::__cpuid(1).ecx & (1 << 27) == 0 {
            return 0;
        }
        std::arch::x86_64::_xgetbv(0)
    }
}

unsafe fn current_mask() -> u64 {
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask with a null new set only writes 8 bytes into `old`.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, std::ptr::null::<u64>(), &mut old as *mut u64, 8) };
    old
}

/// File I/O of several kinds.
fn files() {
    enter();
    let dir = std::env::temp_dir().join(format!("dune-files-{}", std::process::id()));
    check!(std::fs::create_dir_all(&dir).is_ok());
    let p = dir.join("data");
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    check!(std::fs::write(&p, &payload).is_ok());
    let back = std::fs::read(&p).unwrap_or_default();
    check!(back == payload, "read back {} bytes", back.len());
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).expect("open");
    check!(f.write_all(b"tail").is_ok());
    drop(f);
    let mut s = Vec::new();
    check!(std::fs::File::open(&p).and_then(|mut f| f.read_to_end(&mut s)).is_ok());
    check!(s.len() == payload.len() + 4 && s.ends_with(b"tail"));
    check!(std::fs::read_to_string("/proc/self/status").map(|t| t.contains("Pid:")).unwrap_or(false));
    check!(std::fs::remove_dir_all(&dir).is_ok());
}

/// New threads start in Dune mode by themselves; they share memory with the parent.
fn threads() {
    enter();
    let total = std::sync::Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let total = total.clone();
            std::thread::spawn(move || {
                check!(libdune::in_dune_mode(), "thread {i} is not in Dune mode");
                // Each thread allocates, makes calls, and uses its own TLS.
                TLS_MARK.with(|c| c.set(i));
                let v: Vec<u64> = (0..10_000).collect();
                std::thread::sleep(Duration::from_millis(5));
                check!(TLS_MARK.with(|c| c.get()) == i);
                total.fetch_add(v.iter().sum::<u64>() + i, Ordering::SeqCst);
            })
        })
        .collect();
    for h in handles {
        check!(h.join().is_ok());
    }
    check!(total.load(Ordering::SeqCst) == 8 * (9_999 * 10_000 / 2) + 28);
    // pthread_create directly.
    extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
        let ok = libdune::in_dune_mode();
        (if ok { arg as usize + 1 } else { 0 }) as *mut libc::c_void
    }
    let mut t: libc::pthread_t = 0;
    let mut ret: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: standard pthread create/join with a static start routine.
    unsafe {
        check!(libc::pthread_create(&mut t, std::ptr::null(), start, 41 as *mut libc::c_void) == 0);
        check!(libc::pthread_join(t, &mut ret) == 0);
    }
    check!(ret as usize == 42, "pthread returned {}", ret as usize);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Hundreds of threads one after another leave no vCPU, fd or memslot behind.
fn thread_churn() {
    enter();
    // Warm up: the first threads create the pooled vCPUs and glibc's cached stacks.
    for _ in 0..4 {
        std::thread::spawn(|| {}).join().expect("join");
    }
    let fds = open_fds();
    let slots = libdune::runtime::mem_stats().expect("stats").memslots;
    for i in 0..300u64 {
        let h = std::thread::spawn(move || {
            check!(libdune::in_dune_mode());
            i * 2
        });
        check!(h.join().ok() == Some(i * 2));
    }
    let fds_after = open_fds();
    let slots_after = libdune::runtime::mem_stats().expect("stats").memslots;
    check!(fds_after == fds, "fds {fds} -> {fds_after}");
    check!(slots_after <= slots + 2, "memslots {slots} -> {slots_after}");
}

/// fork: the child continues in Dune mode (in a VM of its own); waitpid works.
fn fork() {
    enter();
    let marker = Box::new(1234u64);
    // SAFETY: the child only uses async-signal-safe-enough code (no locks held by
    // other threads: this process has one thread) and exits with _exit.
    let pid = unsafe { libc::fork() };
    check!(pid >= 0);
    if pid == 0 {
        let ok = libdune::in_dune_mode() && *marker == 1234;
        // The child can allocate, make calls and fork again.
        let v: Vec<u8> = vec![7; 1 << 20];
        // SAFETY: fork again in the single-threaded child.
        let pid2 = unsafe { libc::fork() };
        if pid2 == 0 {
            // SAFETY: exit without running destructors in the grandchild.
            unsafe { libc::_exit(if libdune::in_dune_mode() { 7 } else { 1 }) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid2, &mut st, 0) };
        let code = if ok && v[12345] == 7 && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7 { 42 } else { 1 };
        // SAFETY: exit without running the parent's destructors twice.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    check!(unsafe { libc::waitpid(pid, &mut status, 0) } == pid);
    check!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 42, "child status {status:#x}");
    check!(libdune::in_dune_mode());
}

/// std::process::Command: fork or posix_spawn, then execve; output through pipes.
fn command() {
    enter();
    let out = Command::new("/bin/echo").arg("spawned").output().expect("spawn echo");
    check!(out.status.success());
    check!(out.stdout == b"spawned\n", "stdout {:?}", String::from_utf8_lossy(&out.stdout));
    let st = Command::new("/bin/sh").args(["-c", "exit 3"]).status().expect("spawn sh");
    check!(st.code() == Some(3));
    let st = Command::new("/bin/sh").args(["-c", "kill -TERM $$"]).status().expect("spawn sh");
    check!(st.signal() == Some(libc::SIGTERM));
    let missing = Command::new("/nonexistent/program").status();
    check!(missing.as_ref().err().map(|e| e.kind()) == Some(std::io::ErrorKind::NotFound), "{missing:?}");
    check!(libdune::in_dune_mode());
}

/// A failed execve returns its error, still in Dune mode.
fn exec_fail() {
    enter();
    let path = c"/nonexistent/exec";
    let argv = [path.as_ptr(), std::ptr::null()];
    // SAFETY: valid NUL-terminated path and argv.
    let r = unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    check!(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT));
    check!(libdune::in_dune_mode());
}

/// mmap of a file and of anonymous memory; munmap; mprotect; mremap.
fn mmap() {
    enter();
    let p = std::env::temp_dir().join(format!("dune-mmap-{}", std::process::id()));
    let data: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&p, &data).expect("write");
    let f = std::fs::File::open(&p).expect("open");
    use std::os::fd::AsRawFd;
    // SAFETY: mapping a file we own read-only and reading within its length.
    unsafe {
        let m = libc::mmap(std::ptr::null_mut(), data.len(), libc::PROT_READ, libc::MAP_PRIVATE, f.as_raw_fd(), 0);
        check!(m != libc::MAP_FAILED);
        let s = std::slice::from_raw_parts(m as *const u8, data.len());
        check!(s == &data[..], "file mapping differs");
        check!(libc::munmap(m, data.len()) == 0);
        // Anonymous, written, protected, then grown with mremap.
        let len = 64 * 4096;
        let a = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) as *mut u8;
        check!(a as *mut libc::c_void != libc::MAP_FAILED);
        for i in 0..len {
            *a.add(i) = (i % 253) as u8;
        }
        check!(libc::mprotect(a as *mut _, len, libc::PROT_READ) == 0);
        check!(*a.add(4097) == (4097 % 253) as u8);
        check!(libc::mprotect(a as *mut _, len, libc::PROT_READ | libc::PROT_WRITE) == 0);
        *a.add(5) = 99;
        let b = libc::mremap(a as *mut _, len, 4 * len, libc::MREMAP_MAYMOVE) as *mut u8;
        check!(b as *mut libc::c_void != libc::MAP_FAILED);
        check!(*b.add(5) == 99 && *b.add(len - 1) == ((len - 1) % 253) as u8);
        *b.add(4 * len - 1) = 1;
        // Unmap the middle, the rest still works.
        check!(libc::munmap(b.add(len) as *mut _, len) == 0);
        check!(*b.add(len - 1) == ((len - 1) % 253) as u8);
        *b.add(2 * len) = 5;
        check!(*b.add(2 * len) == 5);
        // MAP_FIXED over an existing mapping replaces its contents.
        let c = libc::mmap(b.add(2 * len) as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0) as *mut u8;
        check!(c == b.add(2 * len));
        check!(*c == 0, "MAP_FIXED page not fresh");
        check!(libc::munmap(b as *mut _, 4 * len) == 0);
        // madvise(MADV_DONTNEED) on private anonymous memory: reads back as zero.
        let d = libc::mmap(std::ptr::null_mut(), 8 * 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) as *mut u8;
        check!(d as *mut libc::c_void != libc::MAP_FAILED);
        *d.add(3 * 4096) = 0x77;
        check!(libc::madvise(d.add(3 * 4096) as *mut _, 4096, libc::MADV_DONTNEED) == 0);
        check!(*d.add(3 * 4096) == 0, "MADV_DONTNEED page kept its contents");
        *d.add(3 * 4096) = 0x78;
        check!(*d.add(3 * 4096) == 0x78);
        check!(libc::munmap(d as *mut _, 8 * 4096) == 0);
        // System V shared memory: shmat maps it, a forked child writes, the parent sees it.
        let id = libc::shmget(libc::IPC_PRIVATE, 64 * 1024, libc::IPC_CREAT | 0o600);
        check!(id >= 0);
        let shm = libc::shmat(id, std::ptr::null(), 0) as *mut u64;
        check!(shm as isize != -1);
        *shm = 1;
        *shm.add(8191) = 2;
        let pid = libc::fork();
        if pid == 0 {
            *shm.add(100) = 0xc0ffee;
            libc::_exit(0);
        }
        let mut st = 0;
        check!(libc::waitpid(pid, &mut st, 0) == pid && libc::WIFEXITED(st));
        check!(*shm.add(100) == 0xc0ffee && *shm == 1 && *shm.add(8191) == 2, "shared memory not shared");
        check!(libc::shmdt(shm as *const _) == 0);
        check!(libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) == 0);
    }
    let _ = std::fs::remove_file(&p);
}

/// The heap grows past its initial mapping (brk and mmap'd chunks).
fn heap() {
    enter();
    // SAFETY: sbrk(0) queries; sbrk(n) grows the break and returns the old one.
    unsafe {
        let before = libc::sbrk(0) as *mut u8;
        let old = libc::sbrk(1 << 20) as *mut u8;
        check!(old == before);
        for i in (0..(1 << 20)).step_by(4096) {
            *old.add(i) = 1;
        }
        check!(libc::sbrk(-(1 << 19)) as *mut u8 == old.add(1 << 20));
        *old.add((1 << 19) - 1) = 2;
    }
    let mut chunks = Vec::new();
    for i in 0..64 {
        let mut v = vec![0u8; 4 << 20];
        v[i] = i as u8;
        v[(4 << 20) - 1] = 1;
        chunks.push(v);
    }
    check!(chunks.iter().enumerate().all(|(i, v)| v[i] == i as u8 && v[(4 << 20) - 1] == 1));
    let mut big: Vec<u64> = Vec::new();
    for i in 0..(16 << 20) {
        big.push(i);
    }
    check!(big.iter().step_by(4099).all(|&x| big[x as usize] == x));
}

/// Memory mapped by a thread outside Dune mode is picked up on first touch.
fn lazy() {
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let outsider = std::thread::spawn(move || {
        go_rx.recv().expect("go");
        check!(!libdune::in_dune_mode(), "this thread started before enter()");
        // SAFETY: a fresh anonymous mapping, written before being shared.
        let p = unsafe {
            let p = libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            check!(p != libc::MAP_FAILED);
            *(p as *mut u64) = 0x5eed;
            p
        };
        tx.send(p as usize).expect("send");
    });
    enter();
    go_tx.send(()).expect("go");
    let p = rx.recv().expect("recv") as *mut u64;
    // SAFETY: the outsider mapped 1 MiB at p and no longer touches it.
    unsafe {
        check!(*p == 0x5eed);
        *p.add(1000) = 1;
        check!(*p.add(1000) == 1);
    }
    check!(outsider.join().is_ok());
    let traps = libdune::runtime::counters().traps.load(Ordering::Relaxed);
    check!(traps >= 1, "the first touch should have faulted to the host");
}

/// The main thread's stack grows on demand in Dune mode.
fn stack_growth() {
    #[inline(never)]
    fn recurse(n: u64) -> u64 {
        let buf = std::hint::black_box([n as u8; 4096]);
        if n == 0 { buf[0] as u64 } else { recurse(n - 1) + buf[100] as u64 }
    }
    enter();
    // About 2 MiB below the stack as mapped at enter().
    check!(recurse(500) == (1..=500u64).map(|x| x % 256).sum::<u64>());
}

/// Time read through the vDSO (rdtsc in the guest) agrees with the host's.
fn time() {
    // SAFETY: clock_gettime into a local through the raw system call (always the host's).
    let host_now = || unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_REALTIME, &mut ts);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    enter();
    let vdso = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after epoch");
    let host = host_now();
    let skew = vdso.abs_diff(host);
    check!(skew < Duration::from_millis(500), "vDSO time is {skew:?} off the host's");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let slept = t0.elapsed();
    check!(slept >= Duration::from_millis(200) && slept < Duration::from_secs(5), "slept {slept:?}");
}

/// A wild write: the process dies by SIGSEGV after a report.
fn segv_null() {
    enter();
    // SAFETY: deliberately invalid: the test expects the process to die here.
    unsafe { std::ptr::write_volatile(0x10 as *mut u64, 1) };
    eprintln!("survived a null write");
    std::process::exit(1);
}

static READ_ONLY: u64 = 77;

/// A write to read-only memory: SIGSEGV, like outside.
fn segv_readonly() {
    enter();
    check!(std::hint::black_box(READ_ONLY) == 77);
    // SAFETY: deliberately invalid: writes into .rodata.
    unsafe { std::ptr::write_volatile(std::hint::black_box(std::ptr::addr_of!(READ_ONLY)) as *mut u64, 1) };
    eprintln!("survived a write to read-only memory");
    std::process::exit(1);
}

/// exit_group ends every thread, with the status given.
fn exit_group() {
    enter();
    for _ in 0..3 {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(1));
        });
    }
    std::thread::sleep(Duration::from_millis(20));
    println!("ok exit-group");
    let _ = std::io::stdout().flush();
    std::process::exit(17);
}

/// What is registered stays bounded and below MAXPHYADDR.
fn stats() {
    enter();
    let s = libdune::runtime::mem_stats().expect("stats");
    println!("memslots {} bytes {} runtime-pages {} gpa-high {:#x} maxphyaddr {}", s.memslots, s.memslot_bytes, s.runtime_pages, s.gpa_high_water, s.maxphyaddr);
    check!(s.gpa_high_water <= 1u64 << s.maxphyaddr);
    check!(s.memslot_bytes <= s.memslot_budget);
    if let Ok(want) = std::env::var("DUNE_EXPECT_MAXPHYADDR") {
        check!(want.parse::<u8>().ok() == Some(s.maxphyaddr), "maxphyaddr {} != {want}", s.maxphyaddr);
    }
}

// ---- signals --------------------------------------------------------------------

static SEEN: AtomicU64 = AtomicU64::new(0);
static SEEN_INFO: AtomicU64 = AtomicU64::new(0);
static SEEN_FLAGS: AtomicU64 = AtomicU64::new(0);

/// Bits recorded by handlers into SEEN_FLAGS.
const IN_DUNE: u64 = 1;
const SIG_BLOCKED_INSIDE: u64 = 2;
const ON_ALTSTACK: u64 = 4;

fn install(sig: i32, handler: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void), flags: i32) {
    // SAFETY: installing a handler with a zeroed (empty) mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_SIGINFO | flags;
        check!(libc::sigaction(sig, &sa, std::ptr::null_mut()) == 0);
    }
}

fn blocked(sig: i32) -> bool {
    // SAFETY: a mask query into a local.
    unsafe { current_mask() & (1 << (sig - 1)) != 0 }
}

extern "C" fn record(sig: i32, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    let mut flags = 0;
    if libdune::in_dune_mode() {
        flags |= IN_DUNE;
    }
    if blocked(sig) {
        flags |= SIG_BLOCKED_INSIDE;
    }
    SEEN_FLAGS.fetch_or(flags, Ordering::SeqCst);
    // SAFETY: the kernel (or the runtime) passes a valid siginfo.
    let pid = unsafe { (*info).si_pid() };
    SEEN_INFO.store(pid as u64, Ordering::SeqCst);
    SEEN.fetch_add(1, Ordering::SeqCst);
}

/// A handler installed in Dune mode runs in Dune mode, with siginfo, the signal
/// blocked inside; the mask is restored after.
fn signal_handler() {
    enter();
    install(libc::SIGUSR1, record, 0);
    // SAFETY: signalling ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    check!(SEEN.load(Ordering::SeqCst) == 1, "handler ran {} times", SEEN.load(Ordering::SeqCst));
    let f = SEEN_FLAGS.load(Ordering::SeqCst);
    check!(f & IN_DUNE != 0, "handler did not run in Dune mode");
    check!(f & SIG_BLOCKED_INSIDE != 0, "signal not blocked inside its handler");
    check!(SEEN_INFO.load(Ordering::SeqCst) == std::process::id() as u64, "si_pid wrong");
    check!(!blocked(libc::SIGUSR1), "mask not restored after the handler");
    // A handler installed before enter() also runs in Dune mode (see signal-thread).
}

static FAULT_PAGE: AtomicU64 = AtomicU64::new(0);

extern "C" fn fix_fault(_sig: i32, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // SAFETY: valid siginfo for SIGSEGV; the page is ours.
    unsafe {
        let addr = (*info).si_addr() as u64;
        let page = FAULT_PAGE.load(Ordering::SeqCst);
        if addr == page && (*info).si_code == 2 /* SEGV_ACCERR */ && libdune::in_dune_mode() {
            SEEN.fetch_add(1, Ordering::SeqCst);
            libc::mprotect(page as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE);
        } else {
            libc::_exit(3);
        }
    }
}

/// A SIGSEGV handler in Dune mode gets the address, fixes the protection, and the
/// faulting write is retried.
fn signal_fault_handler() {
    enter();
    // SAFETY: a fresh mapping, written only after the handler opens it.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        check!(p != libc::MAP_FAILED);
        FAULT_PAGE.store(p as u64, Ordering::SeqCst);
        install(libc::SIGSEGV, fix_fault, 0);
        std::ptr::write_volatile(p as *mut u64, 0xabcd);
        check!(std::ptr::read_volatile(p as *const u64) == 0xabcd);
    }
    check!(SEEN.load(Ordering::SeqCst) == 1);
}

/// setitimer and timer_create deliver to handlers in Dune mode.
fn signal_timers() {
    enter();
    install(libc::SIGALRM, record, libc::SA_RESTART);
    let tv = libc::timeval { tv_sec: 0, tv_usec: 2000 };
    let it = libc::itimerval { it_interval: tv, it_value: tv };
    // SAFETY: arming a timer with valid structs.
    check!(unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) } == 0);
    let t0 = Instant::now();
    let mut x = 0u64;
    while SEEN.load(Ordering::SeqCst) < 5 && t0.elapsed() < Duration::from_secs(20) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x.is_multiple_of(1024) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let zero = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: 0 } };
    // SAFETY: disarming.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &zero, std::ptr::null_mut()) };
    check!(SEEN.load(Ordering::SeqCst) >= 5, "setitimer: {} signals", SEEN.load(Ordering::SeqCst));
    check!(SEEN_FLAGS.load(Ordering::SeqCst) & IN_DUNE != 0);
    // POSIX timer with a real-time signal.
    let rt = libc::SIGRTMIN() + 3;
    install(rt, record, 0);
    let before = SEEN.load(Ordering::SeqCst);
    // SAFETY: creating, arming and deleting a POSIX timer with valid structs.
    unsafe {
        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_SIGNAL;
        sev.sigev_signo = rt;
        let mut timer: libc::timer_t = std::ptr::null_mut();
        check!(libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer) == 0);
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: libc::timespec { tv_sec: 0, tv_nsec: 5_000_000 } };
        check!(libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) == 0);
        let t0 = Instant::now();
        while SEEN.load(Ordering::SeqCst) == before && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        libc::timer_delete(timer);
    }
    check!(SEEN.load(Ordering::SeqCst) == before + 1, "timer_create signal not delivered once");
}

extern "C" fn count_only(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    SEEN.fetch_add(1, Ordering::SeqCst);
}

/// A blocking read interrupted by a signal: restarted with SA_RESTART, EINTR without.
fn signal_restart() {
    enter();
    let one_shot = |ms: i64| {
        let it = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: ms * 1000 } };
        // SAFETY: arming a one-shot timer.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
    };
    for restart in [true, false] {
        install(libc::SIGALRM, count_only, if restart { libc::SA_RESTART } else { 0 });
        let mut fds = [0; 2];
        // SAFETY: a pipe into a local array.
        check!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0);
        let w = fds[1];
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: writing one byte to our pipe.
            unsafe { libc::write(w, b"x".as_ptr().cast(), 1) };
        });
        let before = SEEN.load(Ordering::SeqCst);
        one_shot(30);
        let mut b = [0u8; 1];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
        let err = std::io::Error::last_os_error().raw_os_error();
        check!(SEEN.load(Ordering::SeqCst) == before + 1, "SIGALRM not handled during read");
        if restart {
            check!(n == 1 && b[0] == b'x', "SA_RESTART read returned {n} ({err:?})");
        } else {
            check!(n == -1 && err == Some(libc::EINTR), "read without SA_RESTART returned {n}");
        }
        check!(writer.join().is_ok());
        // SAFETY: closing our fds.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}

/// SIGCHLD reaches its handler in Dune mode when a forked child exits.
fn sigchld() {
    enter();
    install(libc::SIGCHLD, record, libc::SA_RESTART);
    // SAFETY: fork in a single-threaded process; the child exits at once.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: exit the child without destructors.
        unsafe { libc::_exit(0) };
    }
    let t0 = Instant::now();
    while SEEN.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    check!(SEEN.load(Ordering::SeqCst) == 1, "SIGCHLD not delivered");
    check!(SEEN_INFO.load(Ordering::SeqCst) == pid as u64, "si_pid is not the child's");
    let mut st = 0;
    // SAFETY: reaping our child.
    check!(unsafe { libc::waitpid(pid, &mut st, 0) } == pid);
}

static ALT: AtomicU64 = AtomicU64::new(0);
const ALT_SIZE: usize = 64 * 1024;

extern "C" fn on_alt(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let here = &sig as *const i32 as u64;
    let base = ALT.load(Ordering::SeqCst);
    if (base..base + ALT_SIZE as u64).contains(&here) {
        SEEN_FLAGS.fetch_or(ON_ALTSTACK, Ordering::SeqCst);
    }
    record(sig, info, uc);
}

/// SA_ONSTACK handlers run on the alternate signal stack.
fn sigaltstack() {
    enter();
    let stack = vec![0u8; ALT_SIZE].leak();
    ALT.store(stack.as_ptr() as u64, Ordering::SeqCst);
    let ss = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: ALT_SIZE };
    // SAFETY: installing a leaked buffer as this thread's alternate stack.
    check!(unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } == 0);
    install(libc::SIGUSR2, on_alt, libc::SA_ONSTACK);
    // SAFETY: signalling ourselves.
    unsafe { libc::raise(libc::SIGUSR2) };
    check!(SEEN.load(Ordering::SeqCst) == 1);
    check!(SEEN_FLAGS.load(Ordering::SeqCst) & ON_ALTSTACK != 0, "handler not on the alternate stack");
}

static TID: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_tid(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // The flag first: the main thread reads it as soon as it sees the tid.
    if libdune::in_dune_mode() {
        SEEN_FLAGS.fetch_or(IN_DUNE, Ordering::SeqCst);
    }
    // SAFETY: gettid has no arguments.
    TID.store(unsafe { libc::gettid() } as u64, Ordering::SeqCst);
}

/// A handler installed before enter(), a signal sent to one thread (pthread_kill):
/// it runs on that thread, in Dune mode.
fn signal_thread() {
    install(libc::SIGUSR1, record_tid, 0);
    enter();
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: plain calls.
        tx.send((unsafe { libc::pthread_self() }, unsafe { libc::gettid() } as u64)).expect("send");
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
    });
    let (pt, tid) = rx.recv().expect("recv");
    // SAFETY: signalling a live thread of ours.
    check!(unsafe { libc::pthread_kill(pt, libc::SIGUSR1) } == 0);
    let t0 = Instant::now();
    while TID.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    check!(TID.load(Ordering::SeqCst) == tid, "handler ran on thread {} not {tid}", TID.load(Ordering::SeqCst));
    check!(SEEN_FLAGS.load(Ordering::SeqCst) & IN_DUNE != 0);
    let _ = done_tx.send(());
    check!(t.join().is_ok());
}

/// Default actions are the kernel's: SIGTERM ends the process.
fn signal_default_term() {
    enter();
    // SAFETY: signalling ourselves with the default action in place.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    std::thread::sleep(Duration::from_secs(5));
    eprintln!("survived SIGTERM");
    std::process::exit(1);
}

/// Rust's own guard-page handler works in Dune mode: the overflow is reported.
fn stack_overflow() {
    #[allow(unconditional_recursion)]
    fn down(n: u64) -> u64 {
        let b = std::hint::black_box([n; 64]);
        down(b[1] + 1) + b[2]
    }
    enter();
    let t = std::thread::spawn(|| down(0));
    let _ = t.join();
    eprintln!("survived a stack overflow");
    std::process::exit(1);
}

/// Ring 0 breaks its own IDT: #UD cannot be delivered, #DF neither, the CPU shuts
/// down. The process must die with a report, not hang.
fn triple_fault() {
    enter();
    let empty: [u8; 10] = [0; 10];
    // SAFETY: deliberately fatal: loads an IDT of limit 0, then raises #UD.
    unsafe { std::arch::asm!("lidt [{0}]", "ud2", in(reg) &empty, options(noreturn)) };
}

/// vfork: the child runs (in Dune mode, in a VM of its own) until it exits; the
/// parent waits for it.
fn vfork() {
    enter();
    // SAFETY: the vfork child only calls async-signal-safe functions and _exit.
    #[allow(deprecated)]
    let pid = unsafe { libc::vfork() };
    if pid == 0 {
        let code = if libdune::in_dune_mode() { 5 } else { 1 };
        // SAFETY: leave the child without touching the parent's state.
        unsafe { libc::_exit(code) };
    }
    check!(pid > 0);
    let mut st = 0;
    // SAFETY: reaping our child.
    check!(unsafe { libc::waitpid(pid, &mut st, 0) } == pid);
    check!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 5, "vfork child status {st:#x}");
    // posix_spawn (a CLONE_VM child that runs natively until it execs).
    let out = Command::new("/bin/sh").args(["-c", "echo spawned-$((6*7))"]).output().expect("spawn");
    check!(out.stdout == b"spawned-42\n");
}

// ---- privileged features (issue 3) ----------------------------------------------

use libdune::trap::TrapFrame;
use libdune::vm::{self, PERM_R, PERM_U, PERM_W, PERM_X};

/// Guest-only addresses, far from anything Linux maps for the process.
const DEMAND_BASE: u64 = 0x3100_0000_0000;
const DEMAND_PAGES: u64 = 100;
static DEMAND_FAULTS: AtomicU64 = AtomicU64::new(0);

fn demand_pager(addr: u64, _fec: u64, tf: &mut TrapFrame) -> bool {
    if tf.from_user() || !(DEMAND_BASE..DEMAND_BASE + DEMAND_PAGES * 4096).contains(&addr) {
        return false;
    }
    let root = vm::pgroot().expect("root");
    if vm::map_pages(root, addr & !4095, 4096, PERM_R | PERM_W).is_err() {
        return false;
    }
    DEMAND_FAULTS.fetch_add(1, Ordering::SeqCst);
    true
}

fn host_exits() -> (u64, u64) {
    let c = libdune::runtime::counters();
    (c.traps.load(Ordering::SeqCst), c.syscalls.load(Ordering::SeqCst))
}

/// A page-fault handler maps pages on demand, in ring 0, with no exit to the host.
fn pgflt_handler() {
    enter();
    libdune::trap::register_pgflt_handler(demand_pager);
    // Grow the runtime's memory up front so the handler never needs the kernel.
    for _ in 0..4 {
        let p = libdune::page::alloc().expect("page");
        libdune::page::put(p).expect("put");
    }
    let (traps0, _) = host_exits();
    for i in 0..DEMAND_PAGES {
        // SAFETY: the handler maps each page on first touch.
        unsafe { std::ptr::write_volatile((DEMAND_BASE + i * 4096 + 8) as *mut u64, i * 3) };
    }
    let (traps1, _) = host_exits();
    check!(DEMAND_FAULTS.load(Ordering::SeqCst) == DEMAND_PAGES, "handler ran {} times", DEMAND_FAULTS.load(Ordering::SeqCst));
    check!(traps1 == traps0, "{} page faults reached the host", traps1 - traps0);
    for i in 0..DEMAND_PAGES {
        // SAFETY: mapped above.
        check!(unsafe { std::ptr::read_volatile((DEMAND_BASE + i * 4096 + 8) as *const u64) } == i * 3);
    }
    // The pages are invisible to the kernel: a system call given one fails cleanly.
    // SAFETY: a write(2) from a guest-only address.
    check!(unsafe { libc::write(1, DEMAND_BASE as *const libc::c_void, 8) } == -1);
    let root = vm::pgroot().expect("root");
    let pa = vm::va_to_pa(DEMAND_BASE).expect("mapped");
    check!(libdune::page::is_allocated(pa));
    check!(vm::unmap(root, DEMAND_BASE, DEMAND_PAGES * 4096).is_ok());
    vm::flush_tlb();
    check!(!libdune::page::is_allocated(pa), "unmap did not return the page");
    // Outside the region the runtime still handles faults: a wild write is SIGSEGV.
    libdune::trap::unregister_pgflt_handler();
}

/// Accessed/dirty bits: clear, write some pages, read exactly those back as dirty.
fn dirty_bits() {
    enter();
    let base = 0x3200_0000_0000u64;
    let n = 64u64;
    let root = vm::pgroot().expect("root");
    check!(vm::map_pages(root, base, n * 4096, PERM_R | PERM_W).is_ok());
    for round in 0..3u64 {
        let _ = vm::walk(root, base, base + n * 4096, |_, e, _| {
            e.clear_bits(dune_x86::paging::PTE_A | dune_x86::paging::PTE_D);
            std::ops::ControlFlow::<()>::Continue(())
        });
        vm::flush_tlb();
        for i in (0..n).filter(|i| (i + round) % 3 == 0) {
            // SAFETY: mapped above.
            unsafe { std::ptr::write_volatile((base + i * 4096) as *mut u64, i) };
        }
        let mut dirty = Vec::new();
        let _ = vm::walk(root, base, base + n * 4096, |va, e, _| {
            if vm::accessed_dirty(e.get()).1 {
                dirty.push((va - base) / 4096);
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        let want: Vec<u64> = (0..n).filter(|i| (i + round) % 3 == 0).collect();
        check!(dirty == want, "round {round}: dirty {dirty:?}");
    }
    // A clone maps the same pages and holds a reference to each.
    let pa = vm::va_to_pa(base).expect("mapped");
    check!(libdune::page::refcount(pa) == Some(1));
    let copy = vm::clone(root).expect("clone");
    check!(libdune::page::refcount(pa) == Some(2), "clone took no reference");
    check!(vm::free(copy).is_ok());
    check!(libdune::page::refcount(pa) == Some(1), "free dropped no reference");
    check!(vm::unmap(root, base, n * 4096).is_ok());
    check!(libdune::page::refcount(pa).is_none(), "unmap left the page allocated");
    // PCID: where the CPU has it, switch to a clone tagged 1 keeping its translations
    // and back; where it does not, a clear error.
    let copy = vm::clone(root).expect("clone");
    if vm::pcid_enabled() {
        // SAFETY: a clone of the process's table maps everything running here.
        unsafe {
            check!(vm::load_cr3_pcid(copy, 1, false).is_ok());
            check!(std::fs::read_to_string("/proc/self/comm").is_ok());
            check!(vm::load_cr3_pcid(root, 0, true).is_ok());
        }
        vm::flush_tlb_all_pcids();
        check!(std::fs::read_to_string("/proc/self/comm").is_ok());
    } else {
        // SAFETY: refused before CR3 is touched.
        let e = unsafe { vm::load_cr3_pcid(copy, 1, true) };
        check!(matches!(e, Err(libdune::Error::MissingCapability(_))), "{e:?}");
    }
    vm::flush_tlb_all_pcids();
    check!(vm::free(copy).is_ok());
}

static UD_COUNT: AtomicU64 = AtomicU64::new(0);
static BP_COUNT: AtomicU64 = AtomicU64::new(0);

fn on_ud(tf: &mut TrapFrame) {
    UD_COUNT.fetch_add(1, Ordering::SeqCst);
    // A page fault inside a handler nests: the demand pager maps the page.
    // SAFETY: the demand region is handled by demand_pager.
    unsafe { std::ptr::write_volatile((DEMAND_BASE + (UD_COUNT.load(Ordering::SeqCst) % DEMAND_PAGES) * 4096) as *mut u64, 1) };
    tf.rip += 2; // skip ud2
}

fn on_bp(_tf: &mut TrapFrame) {
    BP_COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Trap handlers in ring 0: #UD and int3, 100 times each, no exit; nested #PF.
fn trap_handlers() {
    enter();
    libdune::trap::register_pgflt_handler(demand_pager);
    check!(libdune::trap::register_intr_handler(6, on_ud).is_ok());
    check!(libdune::trap::register_intr_handler(3, on_bp).is_ok());
    check!(libdune::trap::register_intr_handler(14, on_bp).is_err(), "vector 14 must go to the pgflt handler");
    for _ in 0..4 {
        let p = libdune::page::alloc().expect("page");
        libdune::page::put(p).expect("put");
    }
    let (traps0, _) = host_exits();
    for _ in 0..100 {
        // SAFETY: the #UD handler skips the instruction; int3 resumes after itself.
        unsafe { std::arch::asm!("ud2", "int3") };
    }
    let (traps1, _) = host_exits();
    check!(UD_COUNT.load(Ordering::SeqCst) == 100 && BP_COUNT.load(Ordering::SeqCst) == 100);
    check!(traps1 == traps0, "{} traps reached the host", traps1 - traps0);
    // Vector code still works after 200 traps (the FPU state was saved around them).
    let v: Vec<f64> = (0..1000).map(|i| i as f64).collect();
    check!(v.iter().sum::<f64>() == 499_500.0);
}

static SYSCALLS_SEEN: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());
static USER_RESULT: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

fn on_user_syscall(tf: &mut TrapFrame) {
    // Never blocks: the session runs on this thread alone.
    if let Ok(mut v) = SYSCALLS_SEEN.try_lock() {
        v.push(tf.rax);
    }
    match tf.rax {
        39 => libdune::user::passthrough_syscall(tf),
        60 => {
            USER_RESULT[0].store(tf.rdi, Ordering::SeqCst);
            USER_RESULT[1].store(tf.rsi, Ordering::SeqCst);
            libdune::user::ret_from_user(0x600d);
        }
        _ => tf.rax = (-(libc::EPERM as i64)) as u64,
    }
}

fn on_user_fault(_addr: u64, fec: u64, tf: &mut TrapFrame) -> bool {
    if tf.from_user() {
        libdune::user::ret_from_user(-(1000 + fec as i64));
    }
    false
}

fn on_gp(tf: &mut TrapFrame) {
    if tf.from_user() {
        libdune::user::ret_from_user(-13);
    }
}

/// Ring 3: system calls go to a ring-0 handler (logged, one passed to Linux, one
/// denied, exit ends the session); a read of a supervisor page and a privileged
/// instruction come back as faults marked as coming from ring 3.
fn ring3() {
    enter();
    let root = vm::pgroot().expect("root");
    let code = 0x3300_0000_0000u64;
    let stack = 0x3300_0010_0000u64;
    check!(vm::map_pages(root, code, 3 * 4096, PERM_R | PERM_W).is_ok());
    check!(vm::map_pages(root, stack, 4096, PERM_R | PERM_W | PERM_U).is_ok());
    let blobs: [&[u8]; 3] = [
        // getpid; keep in rbx; syscall 1000 (denied); keep in r12; exit(rbx, r12)
        &[0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc3, 0xb8, 0xe8, 0x03, 0, 0, 0x0f, 0x05, 0x49, 0x89, 0xc4, 0x48, 0x89, 0xdf, 0x4c, 0x89, 0xe6, 0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b],
        // mov (%rax), %rbx: read a supervisor page
        &[0x48, 0x8b, 0x18, 0x0f, 0x0b],
        // cli: privileged
        &[0xfa, 0x0f, 0x0b],
    ];
    for (i, b) in blobs.iter().enumerate() {
        // SAFETY: the code pages were mapped writable above, at guest-only addresses.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), (code + i as u64 * 4096) as *mut u8, b.len()) };
    }
    check!(vm::mprotect(root, code, 3 * 4096, PERM_R | PERM_X | PERM_U).is_ok());
    vm::flush_tlb();
    libdune::trap::register_syscall_handler(on_user_syscall);
    libdune::trap::register_pgflt_handler(on_user_fault);
    check!(libdune::trap::register_intr_handler(13, on_gp).is_ok());
    let (traps0, sys0) = host_exits();
    let run = |i: u64, rax: u64| {
        let tf = TrapFrame { rip: code + i * 4096, rsp: stack + 4096 - 64, rax, ..Default::default() };
        // SAFETY: code and stack are mapped with PERM_U; every blob ends in a trap
        // whose handler calls ret_from_user.
        unsafe { libdune::user::jump_to_user(&tf) }
    };
    let r = run(0, 0);
    let (traps1, sys1) = host_exits();
    check!(r == 0x600d, "session returned {r:#x}");
    let seen = SYSCALLS_SEEN.lock().map(|v| v.clone()).unwrap_or_default();
    check!(seen == vec![39, 1000, 60], "syscalls seen {seen:?}");
    check!(USER_RESULT[0].load(Ordering::SeqCst) == std::process::id() as u64, "getpid passthrough gave {}", USER_RESULT[0].load(Ordering::SeqCst));
    check!(USER_RESULT[1].load(Ordering::SeqCst) as i64 == -(libc::EPERM as i64), "denied call returned {}", USER_RESULT[1].load(Ordering::SeqCst) as i64);
    check!(traps1 == traps0 && sys1 == sys0, "ring-3 syscalls reached the host as traps/forwarded calls");
    // Supervisor memory is out of reach from ring 3: error code P|U (0x5) for a read.
    let secret = &READ_ONLY as *const u64 as u64;
    let r = run(1, secret);
    check!(r == -(1000 + 0x5), "user read of a supervisor page returned {r}");
    let r = run(2, 0);
    check!(r == -13, "cli in ring 3 returned {r}");
    // Ring 0 is intact after the sessions: TLS, allocation, system calls.
    TLS_MARK.with(|c| c.set(5));
    check!(TLS_MARK.with(|c| c.get()) == 5);
    check!(std::fs::read_to_string("/proc/self/comm").is_ok());
}

static PHASE: AtomicU64 = AtomicU64::new(0);
static READERS_WARM: AtomicU64 = AtomicU64::new(0);

/// A page-table change made by one thread is seen by the others after
/// `flush_tlb_all` (IPIs through the in-kernel APICs, no exits), while they spin on
/// the old translation.
fn shootdown() {
    enter();
    let root = vm::pgroot().expect("root");
    let va = 0x3400_0000_0000u64;
    for round in 0..20u64 {
        let old = libdune::page::alloc().expect("page");
        let new = libdune::page::alloc().expect("page");
        // SAFETY: fresh pages, reached at their ring-0 addresses.
        unsafe {
            *(libdune::page::pa_to_va(old).expect("va") as *mut u64) = 1;
            *(libdune::page::pa_to_va(new).expect("va") as *mut u64) = 2;
        }
        check!(vm::map_phys(root, va, 4096, old, PERM_R).is_ok());
        vm::flush_tlb_all();
        PHASE.store(0, Ordering::SeqCst);
        READERS_WARM.store(0, Ordering::SeqCst);
        let readers: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut warm = false;
                    loop {
                        // SAFETY: va stays mapped (to one page or the other) throughout.
                        let v = unsafe { std::ptr::read_volatile(va as *const u64) };
                        if PHASE.load(Ordering::SeqCst) == 1 {
                            // SAFETY: as above.
                            return unsafe { std::ptr::read_volatile(va as *const u64) };
                        }
                        if v == 1 && !warm {
                            warm = true;
                            READERS_WARM.fetch_add(1, Ordering::SeqCst);
                        }
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        while READERS_WARM.load(Ordering::SeqCst) < 3 {
            std::thread::yield_now();
        }
        let (traps0, _) = host_exits();
        check!(vm::map_phys(root, va, 4096, new, PERM_R).is_ok());
        vm::flush_tlb_all();
        let (traps1, _) = host_exits();
        PHASE.store(1, Ordering::SeqCst);
        for r in readers {
            let seen = r.join().expect("join");
            check!(seen == 2, "round {round}: a thread still read {seen} after the shootdown");
        }
        check!(traps1 == traps0, "the shootdown made {} trap exits", traps1 - traps0);
        check!(vm::unmap(root, va, 4096).is_ok());
        let _ = libdune::page::put(old);
        let _ = libdune::page::put(new);
    }
}

#[inline(never)]
fn deep(n: u64) -> u64 {
    let b = std::hint::black_box([n; 128]);
    if n == 0 { b[0] } else { deep(n - 1) + b[5] }
}

fn overflowing_handler(tf: &mut TrapFrame) {
    // About 1 KiB per level: far more than a handler's trap stack.
    tf.rip += 2 + deep(1 << 20);
}

/// A handler that overflows its trap stack ends the process with a report.
fn handler_overflow() {
    enter();
    check!(libdune::trap::register_intr_handler(6, overflowing_handler).is_ok());
    // SAFETY: deliberately fatal: the #UD handler recurses off its stack.
    unsafe { std::arch::asm!("ud2") };
    eprintln!("survived a trap-stack overflow");
    std::process::exit(1);
}
