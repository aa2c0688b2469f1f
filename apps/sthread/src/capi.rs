//! The C API (`include/sthread.h`), in the project's one C library (crates/dune-clib;
//! installed as `libsthread.a` and `libsthread.so` too):
//! source-compatible with the Wedge-on-Dune `sthread.h`, with errors as -1/NULL and
//! errno instead of exiting the process.

use std::ffi::{c_int, c_ulong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::calls::{Violation, SYS_CGATE};
use crate::policy::{MemProt, Policy, FD_READ, FD_WRITE};
use crate::{Error, Handle};

const MAGIC: c_ulong = 0x5743_5354_4844_0001;

/// `sc_t`.
#[repr(C)]
pub struct Sc {
    magic: c_ulong,
    policy: *mut Policy,
    reserved: [c_ulong; 6],
}

/// `struct sthread_violation`.
#[repr(C)]
#[derive(Default)]
pub struct Why {
    kind: c_int,
    errnum: c_int,
    nr: i64,
    addr: u64,
    rip: u64,
}

/// SC_PROT_COW.
const SC_PROT_COW: c_ulong = 0x1000;

fn set_errno(e: i32) {
    // SAFETY: errno is this thread's (in ring 3, the sthread's private TLS copy).
    unsafe { *libc::__errno_location() = e };
}

fn fail(e: Error) -> c_int {
    set_errno(e.errno());
    -1
}

/// Runs `f`, turning a panic into EIO.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_errno(libc::EIO);
        on_panic
    })
}

/// # Safety
/// `sc` is null or points to an `sc_t`.
unsafe fn policy<'a>(sc: *mut Sc) -> Option<&'a mut Policy> {
    // SAFETY: as promised; a policy pointer is only trusted with our magic.
    let sc = unsafe { sc.as_mut()? };
    // SAFETY: with our magic, `policy` came from Box::into_raw in sc_init.
    (sc.magic == MAGIC && !sc.policy.is_null()).then(|| unsafe { &mut *sc.policy })
}

/// `sthread_init`: Dune mode, and the snapshot every sthread starts from.
#[no_mangle]
pub extern "C" fn sthread_init() -> c_int {
    guard(-1, || crate::init().map_or_else(fail, |_| 0))
}

/// `sc_init`: an empty policy.
///
/// # Safety
/// `sc` points to writable memory for an `sc_t`.
#[no_mangle]
pub unsafe extern "C" fn sc_init(sc: *mut Sc) -> c_int {
    if sc.is_null() || crate::in_ring3() {
        set_errno(libc::EINVAL);
        return -1;
    }
    let p = Box::into_raw(Box::new(Policy::new()));
    // SAFETY: the caller's sc_t.
    unsafe { sc.write(Sc { magic: MAGIC, policy: p, reserved: [0; 6] }) };
    0
}

/// `sc_destroy`: frees the policy (sthreads already created keep their copy).
///
/// # Safety
/// `sc` is null or an `sc_t` from `sc_init`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn sc_destroy(sc: *mut Sc) {
    // SAFETY: as promised.
    if let Some(s) = unsafe { sc.as_mut() } {
        if s.magic == MAGIC && !s.policy.is_null() {
            // SAFETY: made by Box::into_raw in sc_init.
            drop(unsafe { Box::from_raw(s.policy) });
        }
        s.magic = 0;
        s.policy = core::ptr::null_mut();
    }
}

/// `sc_mem_add`: PROT_WRITE shares the tag writable, SC_PROT_COW gives a private
/// copy on write, anything else read-only.
///
/// # Safety
/// `sc` is an `sc_t` from `sc_init`.
#[no_mangle]
pub unsafe extern "C" fn sc_mem_add(sc: *mut Sc, tag: c_int, prot: c_ulong) -> c_int {
    // SAFETY: as promised.
    let Some(p) = (unsafe { policy(sc) }) else { return fail(Error::Invalid("sc_t not initialized")) };
    guard(-1, || {
        if let Err(e) = crate::global().and_then(|g| crate::lock(g).tags.get(tag).map(|_| ())) {
            return fail(e);
        }
        let m = if prot & SC_PROT_COW != 0 {
            MemProt::CopyOnWrite
        } else if prot & libc::PROT_WRITE as c_ulong != 0 {
            MemProt::Write
        } else {
            MemProt::Read
        };
        p.mem(tag, m);
        0
    })
}

/// `sc_fd_add`: PROT_READ and/or PROT_WRITE.
///
/// # Safety
/// `sc` is an `sc_t` from `sc_init`.
#[no_mangle]
pub unsafe extern "C" fn sc_fd_add(sc: *mut Sc, fd: c_int, prot: c_ulong) -> c_int {
    // SAFETY: as promised.
    let Some(p) = (unsafe { policy(sc) }) else { return fail(Error::Invalid("sc_t not initialized")) };
    let mode = (if prot & libc::PROT_READ as c_ulong != 0 { FD_READ } else { 0 }) | if prot & libc::PROT_WRITE as c_ulong != 0 { FD_WRITE } else { 0 };
    p.fd(fd, mode).map_or_else(fail, |_| 0)
}

/// `sc_sys_add`.
///
/// # Safety
/// `sc` is an `sc_t` from `sc_init`.
#[no_mangle]
pub unsafe extern "C" fn sc_sys_add(sc: *mut Sc, nr: c_int) -> c_int {
    // SAFETY: as promised.
    let Some(p) = (unsafe { policy(sc) }) else { return fail(Error::Invalid("sc_t not initialized")) };
    p.syscall(nr as i64).map_or_else(fail, |_| 0)
}

/// `sc_cgate_add`: attaches callgate `entry` running with (a copy of) `cgsc`.
///
/// # Safety
/// `sc` and `cgsc` are `sc_t`s from `sc_init`.
#[no_mangle]
pub unsafe extern "C" fn sc_cgate_add(sc: *mut Sc, entry: Option<extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void>, cgsc: *mut Sc, trusted: *mut c_void) -> c_int {
    // SAFETY: as promised.
    let Some(gp) = (unsafe { policy(cgsc) }).map(|p| p.clone()) else { return fail(Error::Invalid("callgate sc_t not initialized")) };
    // SAFETY: as promised.
    let Some(p) = (unsafe { policy(sc) }) else { return fail(Error::Invalid("sc_t not initialized")) };
    let Some(entry) = entry else { return fail(Error::Invalid("callgate entry")) };
    p.gate(entry as usize as u64, gp, trusted as u64).map_or_else(fail, |_| 0)
}

/// `sthread_create`.
///
/// # Safety
/// `st` is writable; `sc` an `sc_t` from `sc_init`; `cb` code of this program.
#[no_mangle]
pub unsafe extern "C" fn sthread_create(st: *mut c_int, sc: *mut Sc, cb: Option<crate::Body>, arg: *mut c_void) -> c_int {
    // SAFETY: as promised.
    let Some(p) = (unsafe { policy(sc) }) else { return fail(Error::Invalid("sc_t not initialized")) };
    let Some(cb) = cb else { return fail(Error::Invalid("no function")) };
    guard(-1, || match crate::create(p, cb, arg) {
        Ok(h) => {
            if !st.is_null() {
                // SAFETY: as promised.
                unsafe { *st = h.0 as c_int };
            }
            0
        }
        Err(e) => fail(e),
    })
}

fn why_of(v: &Violation) -> Why {
    let (kind, nr, addr, rip) = match *v {
        Violation::Memory { addr, rip, .. } => (1, 14, addr, rip),
        Violation::Exception { vector, rip } => (2, vector as i64, 0, rip),
        Violation::Syscall { nr, rip } => (3, nr, 0, rip),
        Violation::Descriptor { fd, nr } => (4, fd as i64, nr as u64, 0),
        Violation::Pointer { addr, nr } => (5, nr, addr, 0),
        Violation::Callgate { entry } => (6, 0, entry, 0),
    };
    Why { kind, errnum: v.errno(), nr, addr, rip }
}

/// `sthread_join_why`: as `sthread_join`, and what ended it.
///
/// # Safety
/// `ret` and `why` are null or writable.
#[no_mangle]
pub unsafe extern "C" fn sthread_join_why(st: c_int, ret: *mut *mut c_void, why: *mut Why) -> c_int {
    guard(-1, || match crate::join(Handle(st as u32)) {
        Ok(r) => {
            let w = r.as_ref().err().map(why_of).unwrap_or_default();
            // SAFETY: as promised.
            unsafe {
                if !ret.is_null() {
                    *ret = r.unwrap_or(0) as *mut c_void;
                }
                if !why.is_null() {
                    *why = w;
                }
            }
            match r {
                Ok(_) => 0,
                Err(v) => {
                    set_errno(v.errno());
                    -1
                }
            }
        }
        Err(e) => fail(e),
    })
}

/// `sthread_join`.
///
/// # Safety
/// `ret` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn sthread_join(st: c_int, ret: *mut *mut c_void) -> c_int {
    // SAFETY: as promised.
    unsafe { sthread_join_why(st, ret, core::ptr::null_mut()) }
}

/// `tag_new`: -1 with errno on failure.
#[no_mangle]
pub extern "C" fn tag_new() -> c_int {
    guard(-1, || crate::tag_new().unwrap_or_else(fail))
}

/// `tag_delete`: EBUSY while a running sthread holds it.
#[no_mangle]
pub extern "C" fn tag_delete(tag: c_int) -> c_int {
    guard(-1, || crate::tag_delete(tag).map_or_else(fail, |_| 0))
}

/// `smalloc(tag, size)`: NULL with errno on failure.
#[no_mangle]
pub extern "C" fn smalloc(tag: c_int, len: usize) -> *mut c_void {
    if crate::in_ring3() {
        set_errno(libc::EPERM);
        return core::ptr::null_mut();
    }
    guard(core::ptr::null_mut(), || match crate::smalloc(tag, len) {
        Ok(p) => p.cast(),
        Err(e) => {
            fail(e);
            core::ptr::null_mut()
        }
    })
}

/// `scalloc`: zeroed.
#[no_mangle]
pub extern "C" fn scalloc(tag: c_int, n: usize, size: usize) -> *mut c_void {
    let Some(len) = n.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    let p = smalloc(tag, len);
    if !p.is_null() {
        // SAFETY: a fresh block of len bytes.
        unsafe { core::ptr::write_bytes(p.cast::<u8>(), 0, len) };
    }
    p
}

/// `sfree`.
#[no_mangle]
pub extern "C" fn sfree(p: *mut c_void) {
    if p.is_null() || crate::in_ring3() {
        return;
    }
    guard((), || {
        let _ = crate::sfree(p.cast());
    })
}

/// `cgate(entry, perms, arg)`, from inside an sthread: one private system call
/// that the sthread runtime answers with the gate's value.
#[no_mangle]
pub extern "C" fn cgate(entry: Option<extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void>, perms: *mut Sc, arg: *mut c_void) -> *mut c_void {
    let r: i64;
    // SAFETY: a system call with no memory effects of its own; in ring 3 it goes to
    // the sthread runtime, outside an sthread Linux answers ENOSYS.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_CGATE => r, in("rdi") entry.map_or(0, |f| f as usize), in("rsi") perms, in("rdx") arg,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if (-4095..0).contains(&r) {
        set_errno(-r as i32);
        return core::ptr::null_mut();
    }
    r as *mut c_void
}

/// `struct sthread_counters`.
#[repr(C)]
pub struct Counters {
    compartments: i64,
    pooled: i64,
    sthreads: i64,
    pcids: i64,
    runtime_pages: i64,
}

/// `sthread_counters`.
///
/// # Safety
/// `c` is writable.
#[no_mangle]
pub unsafe extern "C" fn sthread_counters(c: *mut Counters) -> c_int {
    if c.is_null() {
        return fail(Error::Invalid("null"));
    }
    guard(-1, || match crate::stats() {
        Ok(s) => {
            let pages = libdune::runtime::mem_stats().map_or(-1, |m| m.runtime_pages as i64);
            // SAFETY: as promised.
            unsafe { c.write(Counters { compartments: s.compartments as i64, pooled: s.pooled as i64, sthreads: s.sthreads as i64, pcids: s.pcids as i64, runtime_pages: pages }) };
            0
        }
        Err(e) => fail(e),
    })
}

/// `sthread_set_pcid`.
#[no_mangle]
pub extern "C" fn sthread_set_pcid(enabled: c_int) {
    crate::set_pcid(enabled != 0);
}
