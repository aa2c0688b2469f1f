//! Demand paging: a page-fault handler that maps memory on first touch.
//!
//! A 64 MiB region at guest-only addresses starts empty. The handler runs in ring 0
//! on every page fault, with no exit to the host; for an address in the region it
//! maps one fresh zeroed page and returns `true` (handled: the access is retried).
//! Other faults (returning `false`) go to the runtime as usual.
//!
//! Run in Dune mode (the VM lane: `scripts/vm-run target/debug/demand-paging`).
//! The C version is `examples/c/demand-paging.c`.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use libdune::trap::TrapFrame;
use libdune::vm::{self, PERM_R, PERM_W};

/// Nothing of the process lives here: only the guest page table will map it.
const REGION: u64 = 0x3800_0000_0000;
const REGION_PAGES: u64 = 16384; // 64 MiB
const PAGE: u64 = 4096;

static FAULTS: AtomicU64 = AtomicU64::new(0);

/// Runs in ring 0 on each page fault.
fn on_page_fault(addr: u64, _error_code: u64, tf: &mut TrapFrame) -> bool {
    let in_region = (REGION..REGION + REGION_PAGES * PAGE).contains(&addr);
    if tf.from_user() || !in_region {
        return false; // not ours: the runtime handles it
    }
    let Ok(root) = vm::pgroot() else { return false };
    if vm::map_pages(root, addr & !(PAGE - 1), PAGE, PERM_R | PERM_W).is_err() {
        return false;
    }
    FAULTS.fetch_add(1, Ordering::Relaxed);
    true
}

fn main() -> Result<(), libdune::Error> {
    libdune::enter()?;
    libdune::trap::register_pgflt_handler(on_page_fault);

    // Touch 100 pages spread over the region (97 is odd, so all are distinct).
    let pages: Vec<u64> = (0..100).map(|i| i * 97 % REGION_PAGES).collect();
    for &p in &pages {
        // SAFETY: the first access faults and the handler maps the page.
        unsafe { std::ptr::write_volatile((REGION + p * PAGE) as *mut u64, p) };
    }
    // Count what is mapped in the region now.
    let root = vm::pgroot()?;
    let mut mapped = 0;
    let _ = vm::walk(root, REGION, REGION + REGION_PAGES * PAGE, |_, _, _| {
        mapped += 1;
        ControlFlow::<()>::Continue(())
    })?;
    println!("demand paging: touched {} pages, {} faults handled, {} of {} pages mapped", pages.len(), FAULTS.load(Ordering::Relaxed), mapped, REGION_PAGES);

    // The data is there, and further accesses no longer fault.
    // SAFETY: these pages are mapped.
    let intact = pages.iter().all(|&p| unsafe { std::ptr::read_volatile((REGION + p * PAGE) as *const u64) } == p);
    println!("demand paging: data intact: {}, faults after rereading: {}", if intact { "yes" } else { "no" }, FAULTS.load(Ordering::Relaxed));

    libdune::trap::unregister_pgflt_handler();
    vm::unmap(root, REGION, REGION_PAGES * PAGE)?; // gives the pages back
    vm::flush_tlb();
    Ok(())
}
