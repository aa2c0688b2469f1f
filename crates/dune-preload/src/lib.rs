//! `libdune_preload.so`: enters Dune mode from an ELF constructor.
//!
//! `dune run PROGRAM` starts PROGRAM with this library in `LD_PRELOAD`. The dynamic
//! loader runs its constructor after libc's and before the program's own, so the
//! program's main thread is in Dune mode before `main`; threads and forked children
//! follow by the runtime's own rules. At `execve` the runtime puts this library first
//! in the new image's `LD_PRELOAD`, whatever environment the program passes, with its
//! KVM descriptor (`Options::exec_preload`), so the next image enters again, even
//! after the program dropped the privileges needed to open `/dev/kvm`.
//!
//! If Dune mode cannot be entered the program does not run natively in disguise: the
//! constructor prints one line and ends the process with status 125.

/// Status when Dune mode cannot be entered (as `env` and `timeout` use 125 for their
/// own failures).
const EXIT_CANNOT_ENTER: i32 = 125;

/// This library's own path, from the dynamic loader.
fn own_path() -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: dladdr fills `info` for an address inside this library (the
    // constructor); dli_fname then points at the loader's NUL-terminated copy of the
    // path, valid while the library stays loaded (for the life of the process).
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(enter_dune_mode as *const libc::c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(info.dli_fname).to_bytes();
        Some(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name)))
    }
}

extern "C" fn enter_dune_mode() {
    let entered = libdune::Options::from_env().and_then(|mut o| {
        // Programs this one execs enter Dune mode too, with this library.
        o.exec_preload = own_path();
        libdune::enter_with(&o)
    });
    if let Err(e) = entered {
        let msg = format!("dune: cannot enter Dune mode: {e}\n");
        // SAFETY: writes the message from a live buffer, then ends the process.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(EXIT_CANNOT_ENTER);
        }
    }
}

/// The constructor: the dynamic loader calls every function in `.init_array`.
#[used]
#[link_section = ".init_array"]
static ENTER: extern "C" fn() = enter_dune_mode;
