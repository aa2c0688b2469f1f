//! Basic scenarios: entering, registers carried into Dune mode, files, time,
//! memory statistics.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

use crate::{current_mask, enter, TLS_MARK};

/// Enter, stay, make system calls; entering twice is harmless.
pub(crate) fn basic() {
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

/// Registers that must be the same after enter: FS base (thread locals), MXCSR, x87
/// control word, XCR0, the signal mask.
pub(crate) fn registers() {
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

/// File I/O of several kinds.
pub(crate) fn files() {
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

/// Time read through the vDSO (rdtsc in the guest) agrees with the host's.
pub(crate) fn time() {
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

/// What is registered stays bounded and below MAXPHYADDR.
pub(crate) fn stats() {
    enter();
    let s = libdune::runtime::mem_stats().expect("stats");
    println!("memslots {} bytes {} runtime-pages {} gpa-high {:#x} maxphyaddr {}", s.memslots, s.memslot_bytes, s.runtime_pages, s.gpa_high_water, s.maxphyaddr);
    check!(s.gpa_high_water <= 1u64 << s.maxphyaddr);
    check!(s.memslot_bytes <= s.memslot_budget);
    if let Ok(want) = std::env::var("DUNE_EXPECT_MAXPHYADDR") {
        check!(want.parse::<u8>().ok() == Some(s.maxphyaddr), "maxphyaddr {} != {want}", s.maxphyaddr);
    }
}
