//! Scenarios where the program does what it legally may to its own process and
//! Dune mode must keep working: closing every descriptor, taking descriptor numbers,
//! lowering and exhausting its descriptor limit, unmapping or remapping anything.

use std::io::{Read, Write};

use crate::enter;

/// Work that needs every part of the runtime: a forwarded call, a new thread (a
/// new vCPU: a new runtime descriptor), new memory (memslots), a forked child (a new
/// VM), file I/O.
fn runtime_still_works(what: &str) {
    // SAFETY: getpid has no side effects.
    check!(unsafe { libc::getpid() } > 0, "{what}: getpid");
    // Three threads at once: at least two need a vCPU (and its descriptor) made now.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                let v: Vec<u64> = (0..100_000).collect();
                (libdune::in_dune_mode(), v.iter().sum::<u64>())
            })
        })
        .collect();
    for h in hs {
        let (in_dune, sum) = h.join().unwrap_or((false, 0));
        check!(in_dune && sum == 4_999_950_000, "{what}: a new thread did not run in Dune mode");
    }
    let big = vec![7u8; 32 << 20];
    check!(big.iter().map(|&b| b as u64).sum::<u64>() == 7 * (32 << 20), "{what}: new memory");
    // SAFETY: fork in a process whose other threads have ended; the child only
    // computes, checks Dune mode and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let v: Vec<u32> = (0..1000).collect();
        let ok = libdune::in_dune_mode() && v.iter().sum::<u32>() == 499_500;
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(if ok { 0 } else { 3 }) };
    }
    check!(pid > 0, "{what}: fork failed");
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    check!(unsafe { libc::waitpid(pid, &mut status, 0) } == pid, "{what}: waitpid");
    check!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{what}: forked child status {status:#x}");
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fd_list() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd").map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default()
}

/// Every way a program closes descriptors it does not know about.
pub(crate) fn close_all() {
    enter();
    let base = libdune::runtime::descriptor_base().unwrap_or(i32::MAX);
    check!(base > 3 && base < i32::MAX, "descriptor base {base}");
    // The runtime's descriptors exist (readlink by path names no descriptor)...
    let link = std::fs::read_link(format!("/proc/self/fd/{base}")).map(|p| p.display().to_string()).unwrap_or_default();
    check!(link.contains("kvm"), "no runtime descriptor at {base}: {link:?}");
    // ...but the program's listing does not show them.
    let listed = fd_list();
    check!(listed.iter().all(|&fd| fd < base), "listing shows runtime descriptors: {listed:?}");

    // 1. A loop over /proc/self/fd, closing everything but stdio.
    for fd in fd_list() {
        if fd > 2 {
            // SAFETY: closing descriptors this program does not use any more.
            unsafe { libc::close(fd) };
        }
    }
    runtime_still_works("after closing /proc/self/fd");
    // 2. close() of every number up to the limit, as closefrom fallbacks do.
    // SAFETY: closing the runtime's numbers must fail and change nothing.
    let r = unsafe { libc::close(base) };
    check!(r == -1 && errno() == libc::EBADF, "close(runtime fd) = {r}, errno {}", errno());
    for fd in 3..base + 64 {
        // SAFETY: as above; the program owns nothing above 2 now.
        unsafe { libc::close(fd) };
    }
    runtime_still_works("after close() of every number");
    // 3. close_range(3, ~0U, 0), as Python's and glibc's closefrom do.
    // SAFETY: closes descriptors 3 and up.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    check!(r == 0, "close_range = {r}, errno {}", errno());
    // SAFETY: as above, with the close-on-exec flag.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    check!(r == 0, "close_range(CLOEXEC) = {r}");
    runtime_still_works("after close_range(3, ~0U)");
    // 4. In a forked child, what subprocess libraries do before execve: close
    // everything, then go on (and exec a program).
    // SAFETY: the child closes descriptors, runs work and execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        runtime_still_works("forked child after close_range");
        let st = std::process::Command::new("true").status();
        // SAFETY: ends the child.
        unsafe { libc::_exit(if st.map(|s| s.success()).unwrap_or(false) { 0 } else { 4 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    check!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child that closed everything: status {status:#x}");
    // The runtime's descriptors are still there.
    let link = std::fs::read_link(format!("/proc/self/fd/{base}")).map(|p| p.display().to_string()).unwrap_or_default();
    check!(link.contains("kvm"), "runtime descriptor gone: {link:?}");
}

/// dup2/dup3/fcntl/ioctl on the runtime's numbers, the descriptor limit lowered and
/// exhausted.
pub(crate) fn descriptors() {
    enter();
    let base = libdune::runtime::descriptor_base().unwrap_or(i32::MAX);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: writes one rlimit.
    check!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0);
    check!(lim.rlim_max <= base as u64 && lim.rlim_cur <= lim.rlim_max, "limit {}/{} not below the runtime's {base}", lim.rlim_cur, lim.rlim_max);
    // Numbers the program can use are the program's: dup2 onto the highest.
    let top = lim.rlim_cur as i32 - 1;
    // SAFETY: dup2/close on the program's own numbers.
    check!(unsafe { libc::dup2(1, top) } == top, "dup2(1, {top}) failed: {}", errno());
    // SAFETY: as above.
    unsafe { libc::close(top) };
    // The runtime's numbers behave as numbers beyond the limit: EBADF, nothing changes.
    for (what, r) in [
        // SAFETY: each call names a runtime descriptor and must fail without effect.
        ("dup2", unsafe { libc::dup2(1, base) }),
        // SAFETY: as above.
        ("dup3", unsafe { libc::dup3(1, base + 1, libc::O_CLOEXEC) }),
        // SAFETY: as above.
        ("dup", unsafe { libc::dup(base) }),
        // SAFETY: as above.
        ("fcntl", unsafe { libc::fcntl(base, libc::F_GETFD) }),
        // SAFETY: as above.
        ("fcntl F_SETFD", unsafe { libc::fcntl(base, libc::F_SETFD, 0) }),
        // SAFETY: as above: KVM_RUN on the VM's first vCPU descriptor, from the program.
        ("ioctl", unsafe { libc::ioctl(base + 2, 0xae80) }),
        // SAFETY: as above; a null buffer, so nothing could be read anyway.
        ("read", unsafe { libc::read(base, std::ptr::null_mut(), 0) as i32 }),
    ] {
        check!(r == -1 && errno() == libc::EBADF, "{what} on a runtime descriptor: {r}, errno {}", errno());
    }
    // F_DUPFD at or above the limit: EINVAL, as for any number beyond it.
    // SAFETY: fcntl on stdout.
    let r = unsafe { libc::fcntl(1, libc::F_DUPFD, base) };
    check!(r == -1 && errno() == libc::EINVAL, "F_DUPFD above the limit: {r}");
    // setrlimit above the runtime's numbers: refused.
    let high = libc::rlimit { rlim_cur: base as u64 + 10, rlim_max: base as u64 + 10 };
    // SAFETY: reads one rlimit.
    check!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &high) } == -1 && errno() == libc::EPERM, "raising the limit past the runtime");
    runtime_still_works("after dup2/fcntl/ioctl on runtime descriptors");

    // The limit lowered below what is open: the runtime still opens descriptors for
    // new threads and forked children.
    let low = libc::rlimit { rlim_cur: 16, rlim_max: lim.rlim_max };
    // SAFETY: reads one rlimit.
    check!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) } == 0, "lowering the limit: {}", errno());
    let mut seen = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: writes one rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut seen) };
    check!(seen.rlim_cur == 16, "getrlimit after lowering: {}", seen.rlim_cur);
    runtime_still_works("with RLIMIT_NOFILE lowered to 16");

    // Descriptors exhausted: open until EMFILE, then threads, memory and fork.
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => {
                check!(e.raw_os_error() == Some(libc::EMFILE), "open failed with {e}, not EMFILE");
                break;
            }
        }
    }
    check!(!held.is_empty() || fd_list().len() >= 16, "nothing opened");
    // Lazy mappings read /proc/self/maps: memory mapped behind the runtime's back.
    // SAFETY: a raw mmap the runtime does not see, then touched from Dune mode.
    let p = unsafe { libc::syscall(libc::SYS_mmap, 0usize, 1usize << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    check!(p > 0, "mmap");
    // SAFETY: the mapping is 1 MiB, read-write.
    unsafe { (p as *mut u8).add(4096).write_volatile(9) };
    runtime_still_works("with descriptors exhausted");
    let mut buf = [0u8; 4];
    drop(held.pop());
    check!(std::fs::File::open("/dev/zero").and_then(|mut f| f.read_exact(&mut buf)).is_ok(), "file I/O after EMFILE");
    drop(held);
    let normal = libc::rlimit { rlim_cur: lim.rlim_cur, rlim_max: lim.rlim_max };
    // SAFETY: reads one rlimit.
    check!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &normal) } == 0, "restoring the limit");
    runtime_still_works("after EMFILE");
    let _ = std::io::stdout().flush();
}

/// The runtime's memory: every call that would unmap, remap, replace, re-protect or
/// discard it fails with EPERM, and nothing is lost.
pub(crate) fn memory_guard() {
    enter();
    let ranges = libdune::runtime::reserved_memory();
    check!(ranges.len() >= 3, "runtime ranges: {ranges:?}");
    let mut tried = 0;
    for &(s, e) in &ranges {
        let len = (e - s) as usize;
        let p = s as *mut libc::c_void;
        let eperm = |what: &str, r: i64| {
            check!(r == -1 && errno() == libc::EPERM, "{what} over runtime memory {s:#x}-{e:#x}: {r}, errno {}", errno());
        };
        // SAFETY: each call targets runtime memory and must be refused without effect.
        eperm("munmap", unsafe { libc::munmap(p, len) } as i64);
        // SAFETY: as above.
        eperm("mprotect", unsafe { libc::mprotect(p, 4096, libc::PROT_NONE) } as i64);
        // SAFETY: as above.
        eperm("madvise(DONTNEED)", unsafe { libc::madvise(p, len, libc::MADV_DONTNEED) } as i64);
        // SAFETY: as above.
        let r = unsafe { libc::mmap(p, 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0) };
        eperm("mmap(MAP_FIXED)", if r == libc::MAP_FAILED { -1 } else { 0 });
        // SAFETY: as above.
        let r = unsafe { libc::mremap(p, len, len + 4096, libc::MREMAP_MAYMOVE) };
        eperm("mremap", if r == libc::MAP_FAILED { -1 } else { 0 });
        tried += 1;
    }
    // Moving the program's own mapping on top of runtime memory.
    let (s, _) = ranges[0];
    let above = |addr: u64| ranges.iter().map(|r| r.0).filter(|&r| r > addr).min();
    // SAFETY: a fresh private mapping of the program's.
    let own = unsafe { libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    check!(own != libc::MAP_FAILED);
    // SAFETY: the new address is runtime memory: refused.
    let r = unsafe { libc::mremap(own, 8192, 8192, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, s as *mut libc::c_void) };
    check!(r == libc::MAP_FAILED && errno() == libc::EPERM, "mremap(MREMAP_FIXED) onto runtime memory");
    // A range that covers the program's memory and runtime memory: refused whole, the
    // program's part still mapped.
    // SAFETY: writes into the program's own mapping.
    unsafe { (own as *mut u8).write_volatile(5) };
    let (lo, hi) = (own as u64, above(own as u64).unwrap_or(0));
    check!(hi > lo, "no runtime memory above {lo:#x}: {ranges:?}");
    {
        // SAFETY: refused because it reaches runtime memory.
        let r = unsafe { libc::munmap(own, (hi - lo + 4096) as usize) };
        check!(r == -1 && errno() == libc::EPERM, "munmap across program and runtime memory: {r}");
        // SAFETY: the program's mapping must still be there.
        check!(unsafe { (own as *const u8).read_volatile() } == 5, "program memory lost");
    }
    // The program's own memory is still the program's.
    // SAFETY: the program's own mapping.
    check!(unsafe { libc::munmap(own, 8192) } == 0, "munmap of program memory");
    check!(tried == ranges.len());
    runtime_still_works("after attacks on runtime memory");
}

static FAULTS_CAUGHT: [std::sync::atomic::AtomicU64; 4] = [const { std::sync::atomic::AtomicU64::new(0) }; 4];
static ALT_HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A fault handler like a language runtime's: records the signal and skips the
/// faulting instruction (each test fault below is a 2-byte or 3-byte instruction whose
/// length the handler is told through a register).
extern "C" fn skip_fault(sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let slot = match sig {
        libc::SIGSEGV => 0,
        libc::SIGBUS => 1,
        libc::SIGILL => 2,
        _ => 3,
    };
    FAULTS_CAUGHT[slot].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the kernel's (here the runtime's) ucontext for this signal; r15 holds the
    // length of the faulting instruction (set by the code that faults on purpose).
    unsafe {
        let ctx = &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext;
        ctx.gregs[libc::REG_RIP as usize] += ctx.gregs[libc::REG_R15 as usize];
    }
}

extern "C" fn on_alt(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    let here = &_sig as *const i32 as u64;
    let mut ss = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: 0, ss_size: 0 };
    // SAFETY: queries this thread's alternate stack into a local.
    unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) };
    let (lo, hi) = (ss.ss_sp as u64, ss.ss_sp as u64 + ss.ss_size as u64);
    if (lo..hi).contains(&here) {
        ALT_HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn handle(sig: i32, f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void), flags: i32) {
    // SAFETY: installs a handler built from a zeroed sigaction.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = f as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | flags;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Signals a program may use however it likes: every signal blocked, its own fault
/// handlers for SIGSEGV, SIGBUS, SIGILL and SIGFPE, an alternate stack in every
/// thread, the real-time signals.
pub(crate) fn signals_robust() {
    use std::sync::atomic::Ordering;
    enter();
    // 1. Every signal blocked (as a thread pool's workers do): the runtime still works,
    // and a signal sent meanwhile arrives when unblocked.
    // SAFETY: a full set, then blocking it on this thread.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: fills and applies the sets above.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
    }
    handle(libc::SIGRTMIN() + 3, on_alt, 0);
    // SAFETY: a signal to this very thread, blocked for now.
    unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGRTMIN() + 3) };
    runtime_still_works("with every signal blocked");
    // SAFETY: sigset_t is plain data; zeroed is an empty set.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: writes the pending set into the local.
    unsafe { libc::sigpending(&mut pending) };
    // SAFETY: reads the local set.
    check!(unsafe { libc::sigismember(&pending, libc::SIGRTMIN() + 3) } == 1, "blocked real-time signal not pending");
    // SAFETY: restores the previous mask: the pending signal is delivered now.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    check!(ALT_HITS.load(Ordering::SeqCst) == 0, "handler ran on an alternate stack that does not exist");

    // 2. Fault handlers of the program's own, as JVMs and language runtimes install.
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
        handle(sig, skip_fault, libc::SA_NODEFER);
    }
    // SIGSEGV: a read of address 0 (mov (%rax), %rax: 3 bytes).
    // SAFETY: the handler skips the faulting instruction.
    unsafe { core::arch::asm!("mov r15, 3", "mov rax, [rax]", inout("rax") 0u64 => _, out("r15") _) };
    // SIGILL: ud2 (2 bytes).
    // SAFETY: as above.
    unsafe { core::arch::asm!("mov r15, 2", "ud2", out("r15") _) };
    // SIGFPE: div %rcx by zero (3 bytes: 48 f7 f1).
    // SAFETY: as above.
    unsafe { core::arch::asm!("mov r15, 3", "xor edx, edx", "div rcx", inout("rax") 1u64 => _, inout("rcx") 0u64 => _, out("rdx") _, out("r15") _) };
    // SIGBUS: a read past the end of a one-byte file mapped as a whole page... is a
    // page beyond EOF: map two pages of a 1-byte file and read the second.
    let path = std::env::temp_dir().join(format!("dune-sigbus-{}", std::process::id()));
    check!(std::fs::write(&path, b"x").is_ok());
    let f = std::fs::File::open(&path).expect("open");
    // SAFETY: a private read-only mapping of the file, two pages long.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ, libc::MAP_PRIVATE, std::os::fd::AsRawFd::as_raw_fd(&f), 0) };
    check!(p != libc::MAP_FAILED);
    // SAFETY: the second page lies beyond EOF: SIGBUS, skipped by the handler.
    unsafe { core::arch::asm!("mov r15, 3", "mov rax, [rax]", inout("rax") p as u64 + 4096 => _, out("r15") _) };
    // SAFETY: unmaps the mapping made above.
    unsafe { libc::munmap(p, 8192) };
    // SIGBUS again: a page the program has already used (so the guest maps it), of a
    // file cut short afterwards, shared and private (as a library's data).
    for flags in [libc::MAP_SHARED, libc::MAP_PRIVATE] {
        check!(std::fs::write(&path, [7u8; 8192]).is_ok());
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open");
        // SAFETY: a read-only mapping of the whole two-page file.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ, flags, std::os::fd::AsRawFd::as_raw_fd(&f), 0) };
        check!(p != libc::MAP_FAILED);
        // SAFETY: both pages lie within the file for now.
        check!(unsafe { core::ptr::read_volatile((p as *const u8).add(4096)) } == 7, "the second page before the cut");
        check!(f.set_len(1).is_ok());
        // SAFETY: the second page now lies beyond EOF: SIGBUS, skipped by the handler.
        unsafe { core::arch::asm!("mov r15, 3", "mov rax, [rax]", inout("rax") p as u64 + 4096 => _, out("r15") _) };
        // SAFETY: unmaps the mapping made above.
        unsafe { libc::munmap(p, 8192) };
    }
    let _ = std::fs::remove_file(&path);
    let caught: Vec<u64> = FAULTS_CAUGHT.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    check!(caught == [1, 3, 1, 1], "SIGSEGV, SIGBUS (3 times), SIGILL, SIGFPE caught: {caught:?}");

    // 3. An alternate stack in every thread, a signal handled on each.
    handle(libc::SIGUSR2, on_alt, libc::SA_ONSTACK);
    let hs: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut stack = vec![0u8; 64 * 1024];
                let ss = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: stack.len() };
                // SAFETY: the stack outlives its use: it is disabled before it drops.
                unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) };
                // SAFETY: a signal to this thread, handled on its alternate stack.
                unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2) };
                let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
                // SAFETY: disables the alternate stack before it is freed.
                unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
                libdune::in_dune_mode()
            })
        })
        .collect();
    for h in hs {
        check!(h.join().unwrap_or(false), "thread with an alternate stack");
    }
    check!(ALT_HITS.load(Ordering::SeqCst) == 4, "handlers on alternate stacks: {}", ALT_HITS.load(Ordering::SeqCst));
    runtime_still_works("after the program's own fault handlers and alternate stacks");
}
