//! Dirty-page tracking: which pages of a buffer were written since the last look?
//!
//! In Dune mode the process reads its own page table, so the CPU's dirty bits
//! answer this without write-protecting anything and without faults (compare
//! userfaultfd or /proc/PID/clear_refs). Each round clears the accessed and dirty
//! bits of the buffer's entries, flushes the TLB (so the CPU sets them again on the
//! next write), writes some pages, and lists the entries the CPU marked dirty.
//!
//! Only writes made by this CPU in Dune mode set the bits: data the kernel writes
//! into the buffer on the process's behalf (`read(2)`) goes through the host's page
//! table and is not seen here.
//!
//! Run in Dune mode (the VM lane). The C version is `examples/c/dirty-tracking.c`.

use std::ops::ControlFlow;

use dune_x86::paging::{PTE_A, PTE_D};
use libdune::vm;

const PAGES: usize = 256;
const PAGE: usize = 4096;

/// Clears the bits of every page of `buf` (then flushes the TLB).
fn clear_dirty(root: vm::Root, buf: u64) -> Result<(), libdune::Error> {
    let _ = vm::walk(root, buf, buf + (PAGES * PAGE) as u64, |_, entry, _| {
        entry.clear_bits(PTE_A | PTE_D);
        ControlFlow::<()>::Continue(())
    })?;
    vm::flush_tlb();
    Ok(())
}

/// The page numbers of `buf` whose entries are dirty.
fn dirty_pages(root: vm::Root, buf: u64) -> Result<Vec<u64>, libdune::Error> {
    let mut dirty = Vec::new();
    let _ = vm::walk(root, buf, buf + (PAGES * PAGE) as u64, |va, entry, _| {
        if vm::accessed_dirty(entry.get()).1 {
            dirty.push((va - buf) / PAGE as u64);
        }
        ControlFlow::<()>::Continue(())
    })?;
    Ok(dirty)
}

fn main() -> Result<(), libdune::Error> {
    libdune::enter()?;
    let root = vm::pgroot()?;
    // An ordinary heap buffer, page aligned, every page touched once so it is mapped.
    let layout = std::alloc::Layout::from_size_align(PAGES * PAGE, PAGE).expect("layout");
    // SAFETY: a non-zero size.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!buf.is_null());
    let pages = |i: usize| -> &mut u8 {
        // SAFETY: `i < PAGES`, inside the allocation.
        unsafe { &mut *buf.add(i * PAGE) }
    };
    for i in 0..PAGES {
        *pages(i) = 1;
    }

    for round in 1..=3 {
        clear_dirty(root, buf as u64)?;
        // Write every (round * 17)th page, and read some others (reads do not count).
        let written: Vec<u64> = (0..PAGES).step_by(round * 17).map(|i| i as u64).collect();
        for &i in &written {
            *pages(i as usize) = round as u8;
        }
        let mut sum = 0u64;
        for i in (1..PAGES).step_by(5) {
            // SAFETY: inside the allocation.
            sum += u64::from(unsafe { std::ptr::read_volatile(buf.add(i * PAGE)) });
        }
        let dirty = dirty_pages(root, buf as u64)?;
        println!("dirty tracking: round {round}: wrote {} pages, dirty {:?}, same: {}", written.len(), dirty, if dirty == written { "yes" } else { "no" });
        std::hint::black_box(sum);
    }
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(buf, layout) };
    Ok(())
}
