//! Trap handlers, ring 3 and signals (libdune's `trap.c`, the user-mode part of
//! `dune.S`, `dune_passthrough_syscall`).
//!
//! The runtime's handlers are plain Rust `fn`s, so each C callback is kept as an
//! address in an atomic and called from a trampoline registered with the runtime:
//! one per interrupt vector (`TRAMPOLINES`, since a handler is not told its vector),
//! one for page faults, one for ring-3 system calls, one `sigaction` handler for signals.
//!
//! Trampolines run in guest ring 0 on the trap stack (signals: on the thread's
//! stack), with the FPU state saved by the runtime. They must not panic, allocate or
//! take locks; they only load an atomic, copy the frame and call C.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use libdune::trap::{self as rtrap, IntrHandler, TrapFrame};

use crate::abi::DUNE_SIGNAL_INTR_BASE;
use crate::guard;

/// `dune_intr_cb`.
pub type IntrCb = unsafe extern "C" fn(tf: *mut TrapFrame);
/// `dune_pgflt_cb`.
pub type PgfltCb = unsafe extern "C" fn(addr: usize, fec: u64, tf: *mut TrapFrame);
/// `dune_syscall_cb`.
pub type SyscallCb = unsafe extern "C" fn(tf: *mut TrapFrame);

/// The page-fault vector.
const PF: usize = 14;

static INTR_CBS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static PGFLT_CB: AtomicUsize = AtomicUsize::new(0);
static SYSCALL_CB: AtomicUsize = AtomicUsize::new(0);

fn intr_cb(vector: usize) -> Option<IntrCb> {
    let f = INTR_CBS.get(vector)?.load(Ordering::Acquire);
    // SAFETY: INTR_CBS holds 0 or the address of an `IntrCb` stored by
    // dune_register_intr_handler.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, IntrCb>(f) })
}

fn pgflt_cb() -> Option<PgfltCb> {
    let f = PGFLT_CB.load(Ordering::Acquire);
    // SAFETY: PGFLT_CB holds 0 or the address of a `PgfltCb`.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, PgfltCb>(f) })
}

fn syscall_cb() -> Option<SyscallCb> {
    let f = SYSCALL_CB.load(Ordering::Acquire);
    // SAFETY: SYSCALL_CB holds 0 or the address of a `SyscallCb`.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, SyscallCb>(f) })
}

/// Calls the C callback of vector `V`.
fn intr_trampoline<const V: usize>(tf: &mut TrapFrame) {
    if let Some(cb) = intr_cb(V) {
        // SAFETY: the callback the program registered for V, given the frame of this
        // trap (valid and exclusively ours for the call).
        unsafe { cb(tf) }
    }
}

macro_rules! row {
    ($r:literal) => {
        [
            intr_trampoline::<{ $r * 16 }>,
            intr_trampoline::<{ $r * 16 + 1 }>,
            intr_trampoline::<{ $r * 16 + 2 }>,
            intr_trampoline::<{ $r * 16 + 3 }>,
            intr_trampoline::<{ $r * 16 + 4 }>,
            intr_trampoline::<{ $r * 16 + 5 }>,
            intr_trampoline::<{ $r * 16 + 6 }>,
            intr_trampoline::<{ $r * 16 + 7 }>,
            intr_trampoline::<{ $r * 16 + 8 }>,
            intr_trampoline::<{ $r * 16 + 9 }>,
            intr_trampoline::<{ $r * 16 + 10 }>,
            intr_trampoline::<{ $r * 16 + 11 }>,
            intr_trampoline::<{ $r * 16 + 12 }>,
            intr_trampoline::<{ $r * 16 + 13 }>,
            intr_trampoline::<{ $r * 16 + 14 }>,
            intr_trampoline::<{ $r * 16 + 15 }>,
        ]
    };
}

/// The trampoline of vector `v` is `TRAMPOLINES[v / 16][v % 16]`.
static TRAMPOLINES: [[IntrHandler; 16]; 16] = [
    row!(0),
    row!(1),
    row!(2),
    row!(3),
    row!(4),
    row!(5),
    row!(6),
    row!(7),
    row!(8),
    row!(9),
    row!(10),
    row!(11),
    row!(12),
    row!(13),
    row!(14),
    row!(15),
];

/// Page faults: the vector-14 callback if any (libdune gave it precedence), else the
/// page-fault callback. The fault counts as handled if the callback changed the frame
/// or made the access legal; otherwise the runtime handles it (lazy mappings, SIGSEGV).
fn pgflt_trampoline(addr: u64, fec: u64, tf: &mut TrapFrame) -> bool {
    let before = *tf;
    if let Some(cb) = intr_cb(PF) {
        // SAFETY: the registered vector-14 callback, given this trap's frame.
        unsafe { cb(tf) }
    } else if let Some(cb) = pgflt_cb() {
        // SAFETY: the registered page-fault callback, given this trap's frame.
        unsafe { cb(addr as usize, fec, tf) }
    } else {
        return false;
    }
    if *tf != before {
        return true;
    }
    if crate::vm::access_allowed(addr, fec) {
        // A stale translation with fewer rights would fault again.
        libdune::vm::flush_tlb_one(addr);
        return true;
    }
    false
}

/// Ring-3 system calls: as libdune's entry code, the kernel ABI's fourth argument (r10)
/// is in rcx while the callback runs (ARG3), and rcx goes back to r10 after.
fn syscall_trampoline(tf: &mut TrapFrame) {
    let Some(cb) = syscall_cb() else {
        libdune::user::passthrough_syscall(tf);
        return;
    };
    tf.rcx = tf.r10;
    // SAFETY: the registered system-call callback, given this trap's frame.
    unsafe { cb(tf) };
    tf.r10 = tf.rcx;
}

fn update_pgflt_registration() {
    if intr_cb(PF).is_some() || pgflt_cb().is_some() {
        rtrap::register_pgflt_handler(pgflt_trampoline);
    } else {
        rtrap::unregister_pgflt_handler();
    }
}

fn last_errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

/// Installs (or with `on == false` resets to the default) the handler of signal `sig`.
fn set_signal(sig: c_int, on: bool) -> Result<(), c_int> {
    // SAFETY: an all-zero `sigaction` is a valid value (SIG_DFL, no flags, empty mask).
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    if on {
        sa.sa_sigaction = signal_trampoline as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    } else {
        sa.sa_sigaction = libc::SIG_DFL;
    }
    // SAFETY: `sa` is a valid sigaction; no old action is asked for.
    if unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) } != 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// Index of each `struct dune_tf` general register in `mcontext_t.gregs`.
const GREGS: [(usize, c_int); 18] = {
    use libc::*;
    [
        (0, REG_RDI),
        (1, REG_RSI),
        (2, REG_RDX),
        (3, REG_RCX),
        (4, REG_R8),
        (5, REG_R9),
        (6, REG_R10),
        (7, REG_R11),
        (8, REG_RBX),
        (9, REG_RBP),
        (10, REG_R12),
        (11, REG_R13),
        (12, REG_R14),
        (13, REG_R15),
        (14, REG_RAX),
        (16, REG_RIP),
        (18, REG_EFL),
        (19, REG_RSP),
    ]
};

/// The frame as 21 quadwords, in field order.
fn words(tf: &mut TrapFrame) -> &mut [u64; 21] {
    // SAFETY: TrapFrame is #[repr(C)] with exactly 21 u64 fields (checked by the
    // runtime's const assertion and by header_check), so it is a [u64; 21].
    unsafe { &mut *(tf as *mut TrapFrame).cast::<[u64; 21]>() }
}

/// Signals: the callback of vector `DUNE_SIGNAL_INTR_BASE + sig`, with a frame built
/// from the signal context; register changes go back into the context.
extern "C" fn signal_trampoline(sig: c_int, _info: *mut libc::siginfo_t, uc: *mut c_void) {
    let Some(cb) = usize::try_from(DUNE_SIGNAL_INTR_BASE + sig).ok().and_then(intr_cb) else { return };
    let uc = uc.cast::<libc::ucontext_t>();
    if uc.is_null() {
        return;
    }
    // SAFETY: for an SA_SIGINFO handler the kernel (or the runtime, in Dune mode)
    // passes the interrupted context, valid and ours until the handler returns.
    let g = unsafe { &mut (*uc).uc_mcontext.gregs };
    let mut tf = TrapFrame::default();
    let w = words(&mut tf);
    for (i, r) in GREGS {
        w[i] = g[r as usize] as u64;
    }
    let csgsfs = g[libc::REG_CSGSFS as usize] as u64;
    w[15] = g[libc::REG_ERR as usize] as u64;
    w[17] = csgsfs & 0xffff;
    w[20] = csgsfs >> 48;
    // SAFETY: the callback registered for this signal, given a frame on our stack.
    unsafe { cb(&mut tf) };
    let w = words(&mut tf);
    for (i, r) in GREGS {
        g[r as usize] = w[i] as i64;
    }
}

/// `int dune_register_intr_handler(int vec, dune_intr_cb cb)`.
#[no_mangle]
pub extern "C" fn dune_register_intr_handler(vec: c_int, cb: Option<IntrCb>) -> c_int {
    guard(-libc::EINVAL, || {
        let Ok(v) = u8::try_from(vec) else { return -libc::EINVAL };
        let slot = &INTR_CBS[v as usize];
        let old = slot.swap(cb.map_or(0, |f| f as usize), Ordering::AcqRel);
        let sig = vec - DUNE_SIGNAL_INTR_BASE;
        if sig > 0 {
            if let Err(e) = set_signal(sig, cb.is_some()) {
                slot.store(old, Ordering::Release);
                return -e;
            }
        }
        if v as usize == PF {
            update_pgflt_registration();
        } else if cb.is_some() {
            if rtrap::register_intr_handler(v, TRAMPOLINES[v as usize / 16][v as usize % 16]).is_err() {
                return -libc::EINVAL;
            }
        } else {
            rtrap::unregister_intr_handler(v);
        }
        0
    })
}

/// `int dune_register_signal_handler(int signum, dune_intr_cb cb)`.
#[no_mangle]
pub extern "C" fn dune_register_signal_handler(signum: c_int, cb: Option<IntrCb>) -> c_int {
    if signum <= 0 {
        return -libc::EINVAL;
    }
    match DUNE_SIGNAL_INTR_BASE.checked_add(signum) {
        Some(vec) => dune_register_intr_handler(vec, cb),
        None => -libc::EINVAL,
    }
}

/// `void dune_register_pgflt_handler(dune_pgflt_cb cb)`.
#[no_mangle]
pub extern "C" fn dune_register_pgflt_handler(cb: Option<PgfltCb>) {
    PGFLT_CB.store(cb.map_or(0, |f| f as usize), Ordering::Release);
    update_pgflt_registration();
}

/// `void dune_register_syscall_handler(dune_syscall_cb cb)`.
#[no_mangle]
pub extern "C" fn dune_register_syscall_handler(cb: Option<SyscallCb>) {
    SYSCALL_CB.store(cb.map_or(0, |f| f as usize), Ordering::Release);
    if cb.is_some() {
        rtrap::register_syscall_handler(syscall_trampoline);
    } else {
        rtrap::unregister_syscall_handler();
    }
}

/// `int dune_jump_to_user(struct dune_tf *tf)`: -EPERM outside Dune mode.
///
/// # Safety
/// `tf` must point to a readable frame whose code and stack are mapped with PERM_U,
/// and some handler must end the session with `dune_ret_from_user`.
#[no_mangle]
pub unsafe extern "C" fn dune_jump_to_user(tf: *mut TrapFrame) -> c_int {
    if tf.is_null() {
        return -libc::EINVAL;
    }
    if !libdune::in_dune_mode() {
        return -libc::EPERM;
    }
    // SAFETY: the caller passes a readable frame; `struct dune_tf` is packed, so it
    // may be unaligned and is copied.
    let t = unsafe { tf.read_unaligned() };
    crate::util::init_user_fs();
    // SAFETY: in Dune mode; the caller vouches for the user context (dune.h).
    unsafe { libdune::user::jump_to_user(&t) as c_int }
}

/// `void dune_ret_from_user(int ret)`: ends the ring-3 session from a handler.
#[no_mangle]
pub extern "C" fn dune_ret_from_user(ret: c_int) -> ! {
    libdune::user::ret_from_user(ret as i64)
}

/// `void dune_passthrough_syscall(struct dune_tf *tf)`: the call in `tf` (arguments
/// ARG0..ARG5, so rcx is the fourth) performed by Linux, result in `tf->rax`.
/// Outside Dune mode it is made directly.
///
/// # Safety
/// `tf` must point to a readable and writable frame.
#[no_mangle]
pub unsafe extern "C" fn dune_passthrough_syscall(tf: *mut TrapFrame) {
    if tf.is_null() {
        return;
    }
    // SAFETY: the caller passes a valid frame, maybe unaligned (packed): copied.
    let mut t = unsafe { tf.read_unaligned() };
    if libdune::in_dune_mode() {
        let r10 = t.r10;
        t.r10 = t.rcx;
        libdune::user::passthrough_syscall(&mut t);
        t.r10 = r10;
    } else {
        // SAFETY: a raw system call with the frame's number and arguments, which the
        // caller asked for; the kernel checks them.
        t.rax = unsafe { libc::syscall(t.rax as libc::c_long, t.rdi, t.rsi, t.rdx, t.rcx, t.r8, t.r9) } as u64;
        if t.rax as i64 == -1 {
            t.rax = (-(last_errno() as i64)) as u64;
        }
    }
    // SAFETY: as above, the frame is writable.
    unsafe { tf.write_unaligned(t) };
}

/// `void dune_pop_trap_frame(struct dune_tf *tf)`: resumes the ring-0 context `tf`
/// (see `dune.h`); returns only when it refuses it, with errno EPERM (outside Dune
/// mode) or EINVAL.
///
/// # Safety
/// `tf` must point to a readable frame of a context that can run, as
/// [`libdune::trap::pop_trap_frame`] requires.
#[no_mangle]
pub unsafe extern "C" fn dune_pop_trap_frame(tf: *mut TrapFrame) {
    let set_errno = |e: c_int| {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = e };
    };
    if !libdune::in_dune_mode() {
        return set_errno(libc::EPERM);
    }
    if tf.is_null() {
        return set_errno(libc::EINVAL);
    }
    // SAFETY: the caller passes a readable frame, maybe unaligned (packed): copied.
    let t = unsafe { tf.read_unaligned() };
    // SAFETY: in Dune mode; the caller vouches for the context (dune.h). Returns only
    // on a refused frame.
    if unsafe { libdune::trap::pop_trap_frame(&t) }.is_err() {
        set_errno(libc::EINVAL);
    }
}

/// Copies `buf.len()` bytes at `va` into `buf` if they are all mapped readable: in
/// Dune mode by the page table in use (nothing is read otherwise), outside it with
/// `process_vm_readv`, which fails instead of faulting. Usable in trap handlers.
fn read_mapped(va: u64, buf: &mut [u8]) -> bool {
    let Some(end) = va.checked_add(buf.len() as u64) else { return false };
    if libdune::in_dune_mode() {
        let mut page = va & !0xfff;
        while page < end {
            if !crate::vm::access_allowed(page, 0) {
                return false;
            }
            page += 0x1000;
        }
        // SAFETY: every page of [va, end) is present in the table the CPU uses now,
        // and ring 0 may read any present page.
        unsafe { core::ptr::copy_nonoverlapping(va as *const u8, buf.as_mut_ptr(), buf.len()) };
        return true;
    }
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: va as *mut c_void, iov_len: buf.len() };
    // SAFETY: reads this process's own memory into `buf`; the kernel checks `remote`.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// `void dune_dump_trap_frame(struct dune_tf *tf)`: the registers, the stack and the
/// code around `rip`, on standard output, as libdune's.
///
/// # Safety
/// `tf` must point to a readable frame.
#[no_mangle]
pub unsafe extern "C" fn dune_dump_trap_frame(tf: *mut TrapFrame) {
    use core::fmt::Write;
    if tf.is_null() {
        return;
    }
    // SAFETY: the caller passes a readable frame, maybe unaligned: copied.
    let t = unsafe { tf.read_unaligned() };
    let mut o = crate::RawOut::new(1);
    let _ = writeln!(o, "dune: --- Begin Trap Dump ---");
    let _ = writeln!(o, "dune: RIP 0x{:016x}", t.rip);
    let _ = writeln!(o, "dune: CS 0x{:02x} SS 0x{:02x}", t.cs & 0xffff, t.ss & 0xffff);
    let _ = writeln!(o, "dune: ERR 0x{:08x} RFLAGS 0x{:08x}", t.err & 0xffff_ffff, t.rflags);
    for (a, x, b, y) in [
        ("RAX", t.rax, "RCX", t.rcx),
        ("RDX", t.rdx, "RBX", t.rbx),
        ("RSP", t.rsp, "RBP", t.rbp),
        ("RSI", t.rsi, "RDI", t.rdi),
        ("R8 ", t.r8, "R9 ", t.r9),
        ("R10", t.r10, "R11", t.r11),
        ("R12", t.r12, "R13", t.r13),
        ("R14", t.r14, "R15", t.r15),
    ] {
        let _ = writeln!(o, "dune: {a} 0x{x:016x} {b} 0x{y:016x}");
    }
    let _ = writeln!(o, "dune: Dumping Stack Contents...");
    for i in 0..STACK_DEPTH {
        let mut w = [0u8; 8];
        if !t.rsp.checked_add(i * 8).is_some_and(|a| read_mapped(a, &mut w)) {
            let _ = writeln!(o, "dune: reached unmapped addr");
            break;
        }
        let _ = writeln!(o, "dune: RSP{:<+3} 0x{:016x}", i * 8, u64::from_le_bytes(w));
    }
    for (what, at) in [("before IP\t", t.rip.wrapping_sub(CODE_BYTES as u64)), ("at IP\t", t.rip)] {
        let mut code = [0u8; CODE_BYTES];
        let _ = write!(o, "dune: code {what}");
        if read_mapped(at, &mut code) {
            for b in code {
                let _ = write!(o, "{b:02x} ");
            }
            let _ = writeln!(o);
        } else {
            let _ = writeln!(o, "(unmapped)");
        }
    }
    let _ = writeln!(o, "dune: --- End Trap Dump ---");
}

/// Quadwords of stack the dump shows (libdune's `STACK_DEPTH`).
const STACK_DEPTH: u64 = 12;
/// Code bytes the dump shows before and at `rip`.
const CODE_BYTES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gregs_cover_every_register_once() {
        let mut seen = [false; 23];
        for (i, r) in GREGS {
            assert!(i < 21 && ![15, 17, 20].contains(&i), "frame word {i} is not a general register");
            assert!(!seen[r as usize], "greg {r} twice");
            seen[r as usize] = true;
        }
    }

    #[test]
    fn frame_words_are_fields_in_order() {
        let mut tf = TrapFrame { rdi: 1, rax: 15, err: 16, rip: 17, ss: 21, ..Default::default() };
        let w = words(&mut tf);
        assert_eq!((w[0], w[14], w[15], w[16], w[20]), (1, 15, 16, 17, 21));
    }

    #[test]
    fn vectors_out_of_range_are_refused() {
        assert_eq!(dune_register_intr_handler(256, None), -libc::EINVAL);
        assert_eq!(dune_register_intr_handler(-1, None), -libc::EINVAL);
        assert_eq!(dune_register_signal_handler(0, None), -libc::EINVAL);
        assert_eq!(dune_register_signal_handler(libc::SIGKILL, None), -libc::EINVAL);
    }
}
