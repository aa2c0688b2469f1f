//! A heap-backed [`FrameSource`] for unit tests.

use std::boxed::Box;
use std::vec::Vec;

use crate::paging::entry::Pte;
use crate::paging::mapper::Mapper;
use crate::paging::table::{FrameSource, PageTable};

/// Physical address of the first table; nonzero so a zero address is never valid.
const BASE: u64 = 0x10_0000;

/// Tables live in boxes indexed by `(pa - BASE) / 4096`; freed slots become
/// `None` so a use after free shows up as `InvalidTable`.
#[derive(Default)]
pub(crate) struct TestFrames {
    tables: Vec<Option<Box<PageTable>>>,
    /// Tables handed out so far.
    pub(crate) allocs: usize,
    /// Tables returned so far.
    pub(crate) frees: usize,
    /// Refuse allocations once `allocs` reaches this.
    pub(crate) limit: Option<usize>,
}

impl TestFrames {
    /// A source that refuses allocations after `limit` tables.
    pub(crate) fn with_limit(limit: usize) -> Self {
        TestFrames {
            limit: Some(limit),
            ..TestFrames::default()
        }
    }

    /// Tables currently allocated.
    pub(crate) fn live(&self) -> usize {
        self.allocs - self.frees
    }
}

impl FrameSource for TestFrames {
    fn alloc_table(&mut self) -> Option<u64> {
        if self.limit.is_some_and(|limit| self.allocs >= limit) {
            return None;
        }
        // Fill with garbage: the mapper must clear new tables itself.
        let table = Box::new(PageTable::new());
        for e in table.entries() {
            e.set(Pte(0xdead_beef_0000_0fff));
        }
        self.tables.push(Some(table));
        self.allocs += 1;
        Some(BASE + (self.tables.len() as u64 - 1) * 4096)
    }

    fn free_table(&mut self, pa: u64) {
        let slot = self.tables.get_mut(((pa - BASE) / 4096) as usize);
        assert!(
            slot.and_then(Option::take).is_some(),
            "double free of {pa:#x}"
        );
        self.frees += 1;
    }

    fn table(&self, pa: u64) -> Option<&PageTable> {
        if pa < BASE || pa & 0xfff != 0 {
            return None;
        }
        self.tables.get(((pa - BASE) / 4096) as usize)?.as_deref()
    }
}

/// A mapper over fresh test frames and its root.
pub(crate) fn mapper() -> (Mapper<TestFrames>, u64) {
    let mut m = Mapper::new(TestFrames::default());
    let root = m.new_root().expect("root");
    (m, root)
}
