//! Soft-dirty dirty tracking: the kernel records which pages were written since the
//! last `echo 4 > /proc/self/clear_refs`; `/proc/self/pagemap` bit 55 reads it back
//! (kernel `Documentation/admin-guide/mm/soft-dirty.rst`, `pagemap.rst`). No user
//! fault handler runs: the write faults are taken and resolved in the kernel.
//!
//! `clear_refs` walks every mapping of the process, so its cost grows with the
//! process's size; the bench process is small when this row runs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::measure::{verify, Ctx, Measured, RowError};
use crate::rows::fault::APPEL_PAGES;
use crate::sys::{Mapping, PAGE};

/// pagemap entry bit: the page was written since the soft-dirty bits were cleared.
const PM_SOFT_DIRTY: u64 = 1 << 55;
/// pagemap entry bit: the page is present in RAM.
const PM_PRESENT: u64 = 1 << 63;

struct Tracker {
    clear_refs: File,
    pagemap: File,
    /// File offset of the first page's entry.
    offset: u64,
    buf: Vec<u8>,
}

impl Tracker {
    fn open(m: &Mapping) -> Result<Self, RowError> {
        let unsupported = |what: &str, e: std::io::Error| RowError::Unsupported(format!("cannot open {what}: {e}"));
        Ok(Tracker {
            clear_refs: OpenOptions::new()
                .write(true)
                .open("/proc/self/clear_refs")
                .map_err(|e| unsupported("/proc/self/clear_refs", e))?,
            pagemap: File::open("/proc/self/pagemap").map_err(|e| unsupported("/proc/self/pagemap", e))?,
            offset: (m.addr() / PAGE * 8) as u64,
            buf: vec![0; m.pages() * 8],
        })
    }

    /// Clears the soft-dirty bits of the whole process.
    fn clear(&mut self) -> Result<(), RowError> {
        self.clear_refs
            .write_all(b"4")
            .map_err(|source| RowError::Os { step: "write 4 to /proc/self/clear_refs", source })
    }

    /// Reads the pagemap entries of the mapping.
    fn scan(&mut self) -> Result<(), RowError> {
        self.pagemap
            .read_exact_at(&mut self.buf, self.offset)
            .map_err(|source| RowError::Os { step: "read /proc/self/pagemap", source })
    }

    /// How many of the scanned entries are present and soft-dirty, and how many present.
    fn counts(&self) -> (usize, usize) {
        self.buf.chunks_exact(8).fold((0, 0), |(dirty, present), e| {
            let e = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
            let p = e & PM_PRESENT != 0;
            (dirty + usize::from(p && e & PM_SOFT_DIRTY != 0), present + usize::from(p))
        })
    }
}

/// One operation: clear the soft-dirty bits, write each of 100 pages once, read their
/// 100 pagemap entries. Every repetition first checks (untimed) that clearing really
/// clears, and afterwards that all 100 pages read back dirty.
pub fn round(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let n = APPEL_PAGES;
    let m = Mapping::anon(n)?;
    m.populate();
    let mut t = Tracker::open(&m)?;
    // Does this kernel track soft-dirty bits at all (CONFIG_MEM_SOFT_DIRTY)?
    t.clear()?;
    m.write(0, 1);
    t.scan()?;
    let (dirty, present) = t.counts();
    if present == n && dirty == 0 {
        return Err(RowError::Unsupported("pagemap bit 55 is never set: kernel without CONFIG_MEM_SOFT_DIRTY".into()));
    }
    let mut rounds = 0u64;
    let summary = ctx.repeat(|rep| {
        t.clear()?;
        t.scan()?;
        let (dirty, present) = t.counts();
        verify!(present == n && dirty == 0, "after clear_refs {dirty} of {present} present pages still soft-dirty (of {n})");
        rep.time(1, || {
            t.clear()?;
            for i in 0..n {
                m.write(i, rounds);
            }
            t.scan()
        })??;
        let (dirty, present) = t.counts();
        verify!(present == n && dirty == n, "after writing all {n} pages, {dirty} of {present} present pages are soft-dirty");
        rounds += 1;
        Ok(())
    })?;
    Ok(Measured { summary, check: format!("{rounds} rounds; all {n} pages clean after clear_refs and dirty after their write") })
}
