//! Entering Dune mode (libdune's `entry.c`): `dune_init`, `dune_enter`,
//! `dune_init_and_enter` and the `pgroot` global.

use std::ffi::c_int;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::{guard, neg, report, vm};

/// libdune's `ptent_t *pgroot`: the root of the process's page table, as the address
/// at which ring 0 reaches it. Set by [`dune_init`] and [`dune_enter`]. An
/// `AtomicPtr<u64>` has the size and alignment of `ptent_t *`, so C reads it as that.
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static pgroot: AtomicPtr<u64> = AtomicPtr::new(null_mut());

/// Reads the runtime's root once and publishes it in [`pgroot`] and in the cache
/// [`vm`] uses to recognise it without the runtime lock.
fn publish_root() -> Result<(), libdune::Error> {
    let root = libdune::vm::pgroot()?;
    vm::set_pgroot(root);
    pgroot.store(root.as_ptr(), Ordering::Release);
    Ok(())
}

/// `int dune_init(bool map_full)`: creates the VM (once). `map_full` is ignored: the
/// guest page table always mirrors the whole address space.
#[no_mangle]
pub extern "C" fn dune_init(map_full: bool) -> c_int {
    let _ = map_full;
    guard(-libc::EIO, || {
        let options = match libdune::Options::from_env() {
            Ok(o) => o,
            Err(e) => {
                report("dune_init", &e);
                return neg(&e);
            }
        };
        if let Err(e) = libdune::init(&options).and_then(|()| publish_root()) {
            report("dune_init", &e);
            return neg(&e);
        }
        0
    })
}

/// `int dune_enter(void)`: puts the calling thread in Dune mode; 0 at once in a
/// thread or child that is in Dune mode already.
#[no_mangle]
pub extern "C" fn dune_enter() -> c_int {
    if libdune::in_dune_mode() {
        return 0;
    }
    guard(-libc::EIO, || {
        if let Err(e) = libdune::enter().and_then(|()| publish_root()) {
            report("dune_enter", &e);
            return neg(&e);
        }
        0
    })
}

/// `int dune_init_and_enter(void)`: [`dune_init`] then [`dune_enter`].
#[no_mangle]
pub extern "C" fn dune_init_and_enter() -> c_int {
    match dune_init(true) {
        0 => dune_enter(),
        e => e,
    }
}
