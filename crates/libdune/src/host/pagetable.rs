//! The host's view of the guest page table: `dune_x86::paging::Mapper` over tables
//! kept in runtime memory, with guest-physical addresses translated by `Memory`.

use dune_x86::paging::{FrameSource, Mapper, PageSize, PageTable as Table, PTE_NX, PTE_U, PTE_W};
use kvm_ioctls::VmFd;

use crate::error::{Error, Result};
use super::memory::{Memory, PAGE};
use super::procmap::Vma;
use super::report::warn_runtime_error;

/// Host protection of a range, as guest page-table permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    /// Readable (or anything at all: x86 pages are readable when present).
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Reachable from ring 3: only for ranges the application declared user memory
    /// (`user::add_user_range`).
    pub user: bool,
}

impl Perms {
    /// Read and write, no execute.
    pub const RW: Perms = Perms { read: true, write: true, exec: false, user: false };

    /// From `PROT_*` bits.
    pub fn from_prot(prot: i32) -> Perms {
        Perms { read: prot & libc::PROT_READ != 0, write: prot & libc::PROT_WRITE != 0, exec: prot & libc::PROT_EXEC != 0, user: false }
    }

    /// From a line of `/proc/self/maps`.
    pub fn of(v: &Vma) -> Perms {
        Perms { read: v.read, write: v.write, exec: v.exec, user: false }
    }

    /// No access: such ranges are not mapped in the guest.
    pub fn is_none(&self) -> bool {
        !(self.read || self.write || self.exec)
    }

    /// Leaf flags (without P, which the mapper adds). Guest ring 0 honours W because
    /// CR0.WP is set. The U bit is set only for user memory: the rest of the
    /// process's memory is ring 0's.
    pub fn flags(&self) -> u64 {
        (if self.write { PTE_W } else { 0 }) | (if self.exec { 0 } else { PTE_NX }) | (if self.user { PTE_U } else { 0 })
    }
}

/// The guest page table: its root's guest-physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTable {
    root: u64,
}

/// Largest step of one mapping operation; tables for it are reserved up front so the
/// arena never grows in the middle of an operation (growing maps the new chunk, which
/// would edit the same tables).
const STEP: u64 = 1 << 30;
/// Tables one `STEP` can need: 512 PTs + 2 PDs + 2 PDPTs, and splits at both ends.
const TABLES_PER_STEP: u64 = 512 + 8;

impl PageTable {
    /// No table yet.
    pub const EMPTY: PageTable = PageTable { root: 0 };

    /// A table whose root is the zeroed page at `root`.
    pub fn new(root: u64) -> Self {
        PageTable { root }
    }

    /// Guest-physical address of the root.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Whether there is no table yet.
    pub fn is_empty(&self) -> bool {
        self.root == 0
    }

    /// Maps `[va, va+len)` to `[gpa, gpa+len)` with `perms`, replacing what was there.
    pub fn map(&self, mem: &mut Memory, vm: &VmFd, va: u64, gpa: u64, len: u64, perms: Perms) -> Result<()> {
        let mut done = 0;
        while done < len {
            let step = (len - done).min(STEP - ((va + done) & (STEP - 1)));
            mem.reserve_pages(vm, TABLES_PER_STEP)?;
            let mut m = Mapper::new(Frames(mem));
            let (v, g) = (va + done, gpa + done);
            replace_range(&mut m, self.root, v, g, step, perms.flags(), PageSize::Size2M).map_err(Error::PageTable)?;
            done += step;
        }
        Ok(())
    }

    /// Clears the entries of `[start, end)`. Splitting a large page needs a table; the
    /// arena always keeps some in reserve, so this does not fail in practice.
    pub fn unmap(&self, mem: &mut Memory, start: u64, end: u64) {
        if let Err(e) = Mapper::new(Frames(mem)).unmap_range(self.root, start..end) {
            warn_runtime_error("clearing guest page-table entries", &Error::PageTable(e));
        }
    }
}

/// Maps `[va, va+len)` to `[pa, pa+len)`, replacing what is there. Same-size leaves
/// are replaced by one atomic store each, so other vCPUs never see the range absent;
/// only where page sizes differ is the old mapping removed first.
pub(crate) fn replace_range<F: FrameSource>(m: &mut Mapper<F>, root: u64, va: u64, pa: u64, len: u64, flags: u64, max: PageSize) -> core::result::Result<(), dune_x86::paging::Error> {
    match m.map_range(root, va, pa, len, flags, max) {
        Err(dune_x86::paging::Error::SizeConflict(_)) => {
            m.unmap_range(root, va..va + len)?;
            m.map_range(root, va, pa, len, flags, max)
        }
        r => r,
    }
}

/// Page-table memory as the mapper sees it (under the runtime lock).
pub(crate) struct Frames<'a>(&'a mut Memory);

impl<'a> Frames<'a> {
    /// Tables allocated from and reached through `mem`.
    pub(crate) fn new(mem: &'a mut Memory) -> Self {
        Frames(mem)
    }
}

impl FrameSource for Frames<'_> {
    fn alloc_table(&mut self) -> Option<u64> {
        self.0.alloc_reserved_page()
    }

    fn free_table(&mut self, pa: u64) {
        self.0.free_page(pa)
    }

    fn table(&self, pa: u64) -> Option<&Table> {
        if !pa.is_multiple_of(PAGE) {
            return None;
        }
        let hva = self.0.gpa_to_hva(pa)?;
        // SAFETY: hva is the host address of a registered, page-aligned guest-physical
        // page, mapped for as long as its region is registered (which outlives this
        // borrow of Memory). A `Table` is 512 atomics, so shared references to memory
        // the guest or the CPU may write concurrently are sound.
        Some(unsafe { &*(hva as *const Table) })
    }
}
