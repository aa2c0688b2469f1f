//! Entering Dune mode (libdune's `entry.c`): `dune_init`, `dune_enter`,
//! `dune_init_and_enter` and the `pgroot` global (the layout globals are in
//! [`crate::layout`]).

use std::ffi::c_int;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::{guard, layout, neg, report, vm};

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

/// The first time: the layout globals (`phys_limit`, `mmap_base`, `stack_base`).
/// 0, or -errno after a report on stderr.
fn publish_layout(what: &str) -> c_int {
    if layout::published() {
        return 0;
    }
    crate::apic::init();
    let bits = libdune::runtime::mem_stats().map_or(0, |m| m.maxphyaddr);
    match layout::publish(bits) {
        Ok(()) => 0,
        Err(e) => {
            use core::fmt::Write;
            let _ = writeln!(crate::RawOut::new(2), "dune: {what}: {e}");
            match e {
                layout::LayoutError::Proc(_) => -libc::EIO,
                layout::LayoutError::NoWindow => -libc::ENOMEM,
            }
        }
    }
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
        publish_layout("dune_init")
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
        publish_layout("dune_enter")
    })
}

/// `int dune_enter_ex(void *percpu)` (IX's libdune): as [`dune_enter`]. Here the
/// runtime keeps its own per-vCPU area (the GS base in ring 0 is the runtime's), so
/// `percpu`, the caller's block for it, is not used; 0 or -errno as `dune_enter`.
#[no_mangle]
pub extern "C" fn dune_enter_ex(_percpu: *mut core::ffi::c_void) -> c_int {
    dune_enter()
}

/// `int dune_init_and_enter(void)`: [`dune_init`] then [`dune_enter`].
#[no_mangle]
pub extern "C" fn dune_init_and_enter() -> c_int {
    match dune_init(true) {
        0 => dune_enter(),
        e => e,
    }
}
