//! The C API (`include/dune/sandbox.h`), in the project's one C library (crates/dune-clib,
//! linked as `-ldune_sandbox` or `-ldune`): the same operations as [`crate::Sandbox`], with errors as
//! return values and a one-line message in the caller's buffer.

use std::ffi::{c_char, c_int, CStr, OsString};
use std::os::unix::ffi::OsStringExt;

use crate::{Policy, Sandbox};

/// The opaque `struct dune_sandbox`.
pub struct DuneSandbox {
    policy: Policy,
    trace: bool,
    stats: bool,
}

/// Copies `msg` into the caller's buffer, cut to fit and NUL-terminated.
///
/// # Safety
/// `err` is null or valid for `len` bytes.
unsafe fn set_err(err: *mut c_char, len: usize, msg: &str) {
    if err.is_null() || len == 0 {
        return;
    }
    let n = msg.len().min(len - 1);
    // SAFETY: the caller vouches for `len` bytes at `err`; n < len.
    unsafe {
        core::ptr::copy_nonoverlapping(msg.as_ptr(), err as *mut u8, n);
        *err.add(n) = 0;
    }
}

/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn text<'a>(s: *const c_char) -> Option<&'a CStr> {
    // SAFETY: as the caller promises.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) })
}

/// `dune_sandbox_new`.
///
/// # Safety
/// `policy_file` is null or a C string; `err` is null or valid for `errlen` bytes.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_new(policy_file: *const c_char, err: *mut c_char, errlen: usize) -> *mut DuneSandbox {
    // SAFETY: as the caller promises.
    let policy = match unsafe { text(policy_file) } {
        None => Policy::builtin(),
        Some(p) => match Policy::load(std::path::Path::new(std::ffi::OsStr::from_bytes_ext(p.to_bytes()))) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: as the caller promises.
                unsafe { set_err(err, errlen, &e.to_string()) };
                return core::ptr::null_mut();
            }
        },
    };
    Box::into_raw(Box::new(DuneSandbox { policy, trace: false, stats: false }))
}

trait FromBytes {
    fn from_bytes_ext(b: &[u8]) -> &Self;
}

impl FromBytes for std::ffi::OsStr {
    fn from_bytes_ext(b: &[u8]) -> &Self {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

/// Applies one `allow_*` call.
///
/// # Safety
/// `sb` is null or from `dune_sandbox_new`; `arg` null or a C string; `err` null or
/// valid for `errlen` bytes.
unsafe fn allow(sb: *mut DuneSandbox, arg: *const c_char, err: *mut c_char, errlen: usize, f: impl FnOnce(&mut Policy, &[u8]) -> Result<(), String>) -> c_int {
    // SAFETY: as the caller promises.
    let (Some(sb), Some(arg)) = (unsafe { sb.as_mut() }, unsafe { text(arg) }) else {
        // SAFETY: as the caller promises.
        unsafe { set_err(err, errlen, "null sandbox or argument") };
        return -1;
    };
    match f(&mut sb.policy, arg.to_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: as the caller promises.
            unsafe { set_err(err, errlen, &e) };
            -1
        }
    }
}

/// `dune_sandbox_allow_read`.
///
/// # Safety
/// As for `allow`.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_allow_read(sb: *mut DuneSandbox, path: *const c_char, err: *mut c_char, errlen: usize) -> c_int {
    // SAFETY: as the caller promises.
    unsafe { allow(sb, path, err, errlen, |p, b| p.allow_read(std::ffi::OsStr::from_bytes_ext(b)).map(|_| ()).map_err(|e| e.to_string())) }
}

/// `dune_sandbox_allow_write`.
///
/// # Safety
/// As for `allow`.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_allow_write(sb: *mut DuneSandbox, path: *const c_char, err: *mut c_char, errlen: usize) -> c_int {
    // SAFETY: as the caller promises.
    unsafe { allow(sb, path, err, errlen, |p, b| p.allow_write(std::ffi::OsStr::from_bytes_ext(b)).map(|_| ()).map_err(|e| e.to_string())) }
}

/// `dune_sandbox_allow_net`.
///
/// # Safety
/// As for `allow`.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_allow_net(sb: *mut DuneSandbox, spec: *const c_char, err: *mut c_char, errlen: usize) -> c_int {
    // SAFETY: as the caller promises.
    unsafe {
        allow(sb, spec, err, errlen, |p, b| {
            let s = std::str::from_utf8(b).map_err(|_| "address is not UTF-8".to_string())?;
            p.allow_net(s).map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// `dune_sandbox_trace`.
///
/// # Safety
/// `sb` is null or from `dune_sandbox_new`.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_trace(sb: *mut DuneSandbox, on: c_int) {
    // SAFETY: as the caller promises.
    if let Some(sb) = unsafe { sb.as_mut() } {
        sb.trace = on != 0;
    }
}

/// `dune_sandbox_stats`.
///
/// # Safety
/// `sb` is null or from `dune_sandbox_new`.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_stats(sb: *mut DuneSandbox, on: c_int) {
    // SAFETY: as the caller promises.
    if let Some(sb) = unsafe { sb.as_mut() } {
        sb.stats = on != 0;
    }
}

/// A NULL-terminated `char *[]` as owned strings.
///
/// # Safety
/// `v` is null or a NULL-terminated array of C strings.
unsafe fn strings(v: *const *const c_char) -> Vec<OsString> {
    let mut out = Vec::new();
    if v.is_null() {
        return out;
    }
    for i in 0.. {
        // SAFETY: the array is NULL-terminated, so every index up to the NULL is valid.
        let p = unsafe { *v.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: each element is a C string.
        out.push(OsString::from_vec(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()));
    }
    out
}

/// `dune_sandbox_exec`.
///
/// # Safety
/// `sb` is null or from `dune_sandbox_new` (it is freed); `argv`, `envp` are
/// NULL-terminated arrays of C strings (`envp` may be null); `err` is null or valid
/// for `errlen` bytes.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_exec(sb: *mut DuneSandbox, argv: *const *const c_char, envp: *const *const c_char, err: *mut c_char, errlen: usize) -> c_int {
    if sb.is_null() {
        // SAFETY: as the caller promises.
        unsafe { set_err(err, errlen, "null sandbox") };
        return 125;
    }
    // SAFETY: from dune_sandbox_new, and not used by the caller after this call.
    let sb = unsafe { Box::from_raw(sb) };
    // SAFETY: as the caller promises.
    let (argv, env) = unsafe { (strings(argv), strings(envp)) };
    if argv.is_empty() {
        // SAFETY: as the caller promises.
        unsafe { set_err(err, errlen, "no program given") };
        return 127;
    }
    match Sandbox::new(sb.policy).trace(sb.trace).stats(sb.stats).run(argv, env) {
        Ok(never) => match never {},
        Err(e) => {
            // SAFETY: as the caller promises.
            unsafe { set_err(err, errlen, &e.to_string()) };
            e.exit_code() as c_int
        }
    }
}

/// `dune_sandbox_free`.
///
/// # Safety
/// `sb` is null or from `dune_sandbox_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dune_sandbox_free(sb: *mut DuneSandbox) {
    if !sb.is_null() {
        // SAFETY: as the caller promises.
        drop(unsafe { Box::from_raw(sb) });
    }
}
