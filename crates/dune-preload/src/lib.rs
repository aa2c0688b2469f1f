//! `libdune_preload.so`: enters Dune mode from an ELF constructor.
//!
//! `dune run PROGRAM` starts PROGRAM with this library in `LD_PRELOAD`. The dynamic
//! loader runs its constructor after libc's and before the program's own, so the
//! program's main thread is in Dune mode before `main`; threads and forked children
//! follow by the runtime's own rules, and `execve` carries `LD_PRELOAD` (the
//! environment) into the next image, which enters again.
//!
//! If Dune mode cannot be entered the program does not run natively in disguise: the
//! constructor prints one line and ends the process with status 125.

/// Status when Dune mode cannot be entered (as `env` and `timeout` use 125 for their
/// own failures).
const EXIT_CANNOT_ENTER: i32 = 125;

extern "C" fn enter_dune_mode() {
    if let Err(e) = libdune::enter() {
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
