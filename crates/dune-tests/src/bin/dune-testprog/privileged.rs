//! Privileged features (issue 3): page-fault and trap handlers in ring 0,
//! accessed/dirty bits, ring 3, TLB shootdowns.

use std::sync::atomic::{AtomicU64, Ordering};

use libdune::trap::TrapFrame;
use libdune::vm::{self, PERM_R, PERM_U, PERM_W, PERM_X};

use crate::{enter, READ_ONLY, TLS_MARK};

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
pub(crate) fn pgflt_handler() {
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
pub(crate) fn dirty_bits() {
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
pub(crate) fn trap_handlers() {
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
pub(crate) fn ring3() {
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
pub(crate) fn shootdown() {
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

/// A hypercall instruction used as a system call (the original libdune's ABI):
/// number in rax, arguments in rdi, rsi, rdx, r10, r8, r9, result in rax, and rcx and
/// r11 (which `syscall` clobbers) intact.
macro_rules! hypercall {
    ($insn:literal, $nr:expr, $a0:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr) => {{
        let ret: i64;
        let (rcx, r11): (u64, u64);
        // SAFETY: performs system call $nr with the given arguments, as `syscall`
        // would; rcx and r11 are set before and read back after.
        unsafe {
            core::arch::asm!(
                "mov rcx, 0x1111",
                "mov r11, 0x2222",
                $insn,
                inout("rax") $nr as u64 => ret,
                in("rdi") $a0 as u64, in("rsi") $a1 as u64, in("rdx") $a2 as u64,
                in("r10") $a3 as u64, in("r8") $a4 as u64, in("r9") $a5 as u64,
                out("rcx") rcx, out("r11") r11,
            )
        };
        (ret, rcx == 0x1111 && r11 == 0x2222)
    }};
}

static TRAPS_FROM_USER: AtomicU64 = AtomicU64::new(0);

fn on_user_ud(tf: &mut TrapFrame) {
    if tf.from_user() {
        TRAPS_FROM_USER.fetch_add(1, Ordering::SeqCst);
        libdune::user::ret_from_user(-6);
    }
}

fn on_user_gp(tf: &mut TrapFrame) {
    if tf.from_user() {
        TRAPS_FROM_USER.fetch_add(1, Ordering::SeqCst);
        libdune::user::ret_from_user(-13);
    }
}

fn on_hypercall_user_syscall(tf: &mut TrapFrame) {
    // exit(rdi): the session ends with the value ring 3 got from its hypercall.
    libdune::user::ret_from_user(tf.rdi as i64);
}

/// vmcall and vmmcall as system calls in ring 0, including memory calls whose page-
/// table change must be seen at once; from ring 3 neither reaches Linux.
pub(crate) fn hypercall() {
    enter();
    let h = libdune::runtime::hypercalls();
    let v = core::arch::x86_64::__cpuid(0);
    let amd = v.ebx == u32::from_le_bytes(*b"Auth");
    let (native, foreign) = if amd { ("vmmcall", "vmcall") } else { ("vmcall", "vmmcall") };
    println!("hypercalls: {native} (native) exits: {}; {foreign} (foreign) raises #UD: {}", h.native_exit, h.foreign_ud);
    // The foreign instruction needs KVM_X86_QUIRK_FIX_HYPERCALL_INSN (Linux 6.0+), which
    // every kernel the tests run on has; the native one needs Xen hypercall
    // interception (CONFIG_KVM_XEN), which the lane's Debian kernel lacks: there KVM
    // answers it itself with -KVM_ENOSYS (-1000), and that is checked instead.
    check!(h.foreign_ud, "KVM rewrites the foreign hypercall instruction: {h:?}");
    let pid = std::process::id() as i64;
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors.
    check!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0);
    for (name, i) in [("vmcall", 0), ("vmmcall", 1)] {
        if name == native && !h.native_exit {
            let before = libdune::runtime::counters().syscalls.load(Ordering::SeqCst);
            let (r, kept) = if i == 0 { hypercall!("vmcall", libc::SYS_getpid, 0, 0, 0, 0, 0, 0) } else { hypercall!("vmmcall", libc::SYS_getpid, 0, 0, 0, 0, 0, 0) };
            let after = libdune::runtime::counters().syscalls.load(Ordering::SeqCst);
            check!(r == -1000 && kept && after == before, "{name} without interception: {r}, forwarded {}", after - before);
            continue;
        }
        let (r, kept) = if i == 0 { hypercall!("vmcall", libc::SYS_getpid, 0, 0, 0, 0, 0, 0) } else { hypercall!("vmmcall", libc::SYS_getpid, 0, 0, 0, 0, 0, 0) };
        check!(r == pid && kept, "{name} getpid = {r} (pid {pid}), rcx/r11 kept: {kept}");
        let msg = b"through a hypercall";
        let (r, kept) = if i == 0 { hypercall!("vmcall", libc::SYS_write, fds[1], msg.as_ptr(), msg.len(), 0, 0, 0) } else { hypercall!("vmmcall", libc::SYS_write, fds[1], msg.as_ptr(), msg.len(), 0, 0, 0) };
        check!(r == msg.len() as i64 && kept, "{name} write = {r}");
        let mut buf = [0u8; 32];
        // SAFETY: reads into a local buffer.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        check!(n as usize == msg.len() && &buf[..msg.len()] == msg, "{name}: pipe content");
        // mmap through the hypercall, then use the memory at once: the page table
        // changed under this vCPU, and the return path must have flushed.
        let len = 1usize << 20;
        let (p, kept) = if i == 0 {
            hypercall!("vmcall", libc::SYS_mmap, 0, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1i64, 0)
        } else {
            hypercall!("vmmcall", libc::SYS_mmap, 0, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1i64, 0)
        };
        check!(p > 0 && kept, "{name} mmap = {p:#x}");
        for off in (0..len).step_by(4096) {
            // SAFETY: the fresh 1 MiB mapping is read-write.
            unsafe { ((p as usize + off) as *mut u64).write_volatile(off as u64) };
        }
        // SAFETY: as above.
        check!(unsafe { ((p as usize + 8192) as *const u64).read_volatile() } == 8192);
        let (r, _) = if i == 0 { hypercall!("vmcall", libc::SYS_munmap, p, len, 0, 0, 0, 0) } else { hypercall!("vmmcall", libc::SYS_munmap, p, len, 0, 0, 0, 0) };
        check!(r == 0, "{name} munmap = {r}");
        // fork through a hypercall is refused (it needs syscall's return path).
        let (r, _) = if i == 0 { hypercall!("vmcall", libc::SYS_fork, 0, 0, 0, 0, 0, 0) } else { hypercall!("vmmcall", libc::SYS_fork, 0, 0, 0, 0, 0, 0) };
        check!(r == -(libc::ENOSYS as i64), "{name} fork = {r}");
    }

    // Ring 3: the foreign instruction is a fault for the ring-0 handler (#UD, or #GP
    // as KVM's emulator reports it for CPL 3), the native one answers -1 (-EPERM);
    // neither reaches Linux (a getpid would have
    // returned the pid).
    let root = vm::pgroot().expect("root");
    let code = 0x3500_0000_0000u64;
    let stack = 0x3500_0010_0000u64;
    check!(vm::map_pages(root, code, 2 * 4096, PERM_R | PERM_W).is_ok());
    check!(vm::map_pages(root, stack, 4096, PERM_R | PERM_W | PERM_U).is_ok());
    let vmcall: [u8; 3] = [0x0f, 0x01, 0xc1];
    let vmmcall: [u8; 3] = [0x0f, 0x01, 0xd9];
    for (i, insn) in [vmcall, vmmcall].iter().enumerate() {
        // mov eax, 39 (getpid); <insn>; mov rdi, rax; mov eax, 60; syscall; ud2
        let mut blob = vec![0xb8, 39, 0, 0, 0];
        blob.extend_from_slice(insn);
        blob.extend_from_slice(&[0x48, 0x89, 0xc7, 0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b]);
        // SAFETY: the code pages were mapped writable above, at guest-only addresses.
        unsafe { std::ptr::copy_nonoverlapping(blob.as_ptr(), (code + i as u64 * 4096) as *mut u8, blob.len()) };
    }
    check!(vm::mprotect(root, code, 2 * 4096, PERM_R | PERM_X | PERM_U).is_ok());
    vm::flush_tlb();
    check!(libdune::trap::register_intr_handler(6, on_user_ud).is_ok());
    check!(libdune::trap::register_intr_handler(13, on_user_gp).is_ok());
    libdune::trap::register_syscall_handler(on_hypercall_user_syscall);
    let syscalls_before = libdune::runtime::counters().syscalls.load(Ordering::SeqCst);
    let mut results = [0i64; 2];
    for (i, r) in results.iter_mut().enumerate() {
        let tf = TrapFrame { rip: code + i as u64 * 4096, rsp: stack + 4096 - 64, ..Default::default() };
        // SAFETY: code and stack are mapped with PERM_U; each blob ends in a trap or a
        // system call whose handler calls ret_from_user.
        *r = unsafe { libdune::user::jump_to_user(&tf) };
    }
    let syscalls_after = libdune::runtime::counters().syscalls.load(Ordering::SeqCst);
    let (vmcall_r, vmmcall_r) = (results[0], results[1]);
    let (foreign_r, native_r) = if amd { (vmcall_r, vmmcall_r) } else { (vmmcall_r, vmcall_r) };
    check!((foreign_r == -6 || foreign_r == -13) && TRAPS_FROM_USER.load(Ordering::SeqCst) == 1, "ring-3 {foreign}: session returned {foreign_r}");
    // -EPERM from the runtime, or KVM's own -KVM_EPERM for CPL 3: both are -1.
    check!(native_r == -1, "ring-3 {native}: rax was {native_r} (pid {pid})");
    check!(syscalls_after == syscalls_before, "ring-3 hypercalls reached Linux ({} forwarded)", syscalls_after - syscalls_before);
    libdune::trap::unregister_syscall_handler();
    libdune::trap::unregister_intr_handler(6);
    libdune::trap::unregister_intr_handler(13);
}
