//! Mapping an ELF image through [`Space`], the loader's only way to touch the address
//! space, so that the monitor sees (and can mark as the program's) every region.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::elf::{page_down, page_up, ElfInfo, ElfKind, PAGE, USER_END};

/// Where [`Space::reserve`] should put a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere the space chooses.
    Anywhere,
    /// Preferably here, else anywhere.
    Hint(u64),
    /// Exactly here; an error (`EEXIST`) if anything is mapped there already.
    Exactly(u64),
}

/// An address space the loader maps a program into. Every address is page-aligned
/// except [`Space::write`]'s; `prot` is `PROT_*` bits.
///
/// The loader first [reserves](Space::reserve) each range it needs, then maps only
/// inside its reservations: an implementation may (and [`LibcSpace`] does) refuse
/// any other `map_*`, `protect`, `write` or `unmap`.
pub trait Space {
    /// Reserves `len` bytes, inaccessible, and returns the start.
    fn reserve(&mut self, at: Placement, len: u64) -> io::Result<u64>;
    /// Maps `len` bytes of `fd` from offset `off` at `addr`, private, replacing the
    /// reservation there.
    fn map_file(&mut self, addr: u64, len: u64, prot: i32, fd: BorrowedFd<'_>, off: u64) -> io::Result<()>;
    /// Maps `len` bytes of zeroes at `addr`, private, replacing the reservation there.
    fn map_anon(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()>;
    /// Changes the protection of mapped pages.
    fn protect(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()>;
    /// Copies `bytes` to `addr` (which must be mapped writable).
    fn write(&mut self, addr: u64, bytes: &[u8]) -> io::Result<()>;
    /// Unmaps part of a reservation, which stops being reserved.
    fn unmap(&mut self, addr: u64, len: u64) -> io::Result<()>;
}

/// Non-overlapping ranges `[start, end)` with a value each, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeMap<T> {
    ranges: Vec<(u64, u64, T)>,
}

impl<T: Copy> RangeMap<T> {
    /// Sets `[start, end)` to `v` (or removes it with `None`), splitting neighbours.
    pub fn set(&mut self, start: u64, end: u64, v: Option<T>) {
        if start >= end {
            return;
        }
        let mut out = Vec::with_capacity(self.ranges.len() + 2);
        for &(s, e, x) in &self.ranges {
            if e <= start || s >= end {
                out.push((s, e, x));
                continue;
            }
            if s < start {
                out.push((s, start, x));
            }
            if e > end {
                out.push((end, e, x));
            }
        }
        if let Some(v) = v {
            out.push((start, end, v));
        }
        out.sort_by_key(|r| r.0);
        self.ranges = out;
    }

    /// Whether every byte of `[start, end)` is covered by ranges whose value passes `ok`.
    pub fn covers(&self, start: u64, end: u64, ok: impl Fn(&T) -> bool) -> bool {
        let mut at = start;
        for &(s, e, ref x) in &self.ranges {
            if at >= end {
                break;
            }
            if e <= at {
                continue;
            }
            if s > at || !ok(x) {
                return false;
            }
            at = e;
        }
        at >= end
    }

    /// The ranges, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = &(u64, u64, T)> {
        self.ranges.iter()
    }
}

/// [`Space`] over this process's own address space with plain `mmap`/`mprotect`
/// (in Dune mode the monitor's own `mmap` calls go to Linux, so the monitor can use
/// it too). It remembers what it reserved and its protection, and refuses to map,
/// write or unmap anywhere else: it never `MAP_FIXED`s over a mapping it does not own,
/// and never writes to a page that is not writable.
#[derive(Debug, Default)]
pub struct LibcSpace {
    owned: RangeMap<i32>,
}

impl LibcSpace {
    /// An empty space (nothing reserved yet).
    pub fn new() -> Self {
        Self::default()
    }

    fn check(&self, addr: u64, len: u64, need: i32) -> io::Result<u64> {
        let end = addr.checked_add(len).filter(|&e| e <= USER_END && len > 0).ok_or(io::ErrorKind::InvalidInput)?;
        if !self.owned.covers(addr, end, |p| p & need == need) {
            return Err(io::Error::from_raw_os_error(if need == 0 { libc::EINVAL } else { libc::EFAULT }));
        }
        Ok(end)
    }

    fn check_fixed(&self, addr: u64, len: u64) -> io::Result<u64> {
        if addr & (PAGE - 1) != 0 || len & (PAGE - 1) != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.check(addr, len, 0)
    }
}

fn mmap(addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> io::Result<u64> {
    let off = libc::off_t::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the callers pass MAP_FIXED only for ranges this LibcSpace reserved (so
    // no Rust object lives there), and otherwise let the kernel pick a free range.
    let p = unsafe { libc::mmap(addr as *mut libc::c_void, len as usize, prot, flags, fd, off) };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as u64)
}

impl Space for LibcSpace {
    fn reserve(&mut self, at: Placement, len: u64) -> io::Result<u64> {
        if len == 0 || len & (PAGE - 1) != 0 || len > USER_END {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let base = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let got = match at {
            Placement::Anywhere => mmap(0, len, libc::PROT_NONE, base, -1, 0)?,
            Placement::Hint(a) => mmap(page_down(a), len, libc::PROT_NONE, base, -1, 0)?,
            Placement::Exactly(a) => {
                if a % PAGE != 0 || a.checked_add(len).is_none_or(|e| e > USER_END) {
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
                let got = mmap(a, len, libc::PROT_NONE, base | libc::MAP_FIXED_NOREPLACE, -1, 0)?;
                if got != a {
                    // A kernel older than 4.17 treats the flag as a hint.
                    // SAFETY: `got` is the mapping just made, which nothing refers to.
                    unsafe { libc::munmap(got as *mut libc::c_void, len as usize) };
                    return Err(io::Error::from_raw_os_error(libc::EEXIST));
                }
                got
            }
        };
        if got.checked_add(len).is_none_or(|e| e > USER_END) {
            // SAFETY: `got` is the mapping just made, which nothing refers to.
            unsafe { libc::munmap(got as *mut libc::c_void, len as usize) };
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        self.owned.set(got, got + len, Some(libc::PROT_NONE));
        Ok(got)
    }

    fn map_file(&mut self, addr: u64, len: u64, prot: i32, fd: BorrowedFd<'_>, off: u64) -> io::Result<()> {
        let end = self.check_fixed(addr, len)?;
        mmap(addr, len, prot, libc::MAP_PRIVATE | libc::MAP_FIXED, fd.as_raw_fd(), off)?;
        self.owned.set(addr, end, Some(prot));
        Ok(())
    }

    fn map_anon(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        let end = self.check_fixed(addr, len)?;
        mmap(addr, len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0)?;
        self.owned.set(addr, end, Some(prot));
        Ok(())
    }

    fn protect(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        let end = self.check_fixed(addr, len)?;
        // SAFETY: the range is this space's own (checked above); no Rust object lives there.
        if unsafe { libc::mprotect(addr as *mut libc::c_void, len as usize, prot) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.owned.set(addr, end, Some(prot));
        Ok(())
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.check(addr, bytes.len() as u64, libc::PROT_WRITE)?;
        // SAFETY: the whole destination lies in mappings this space made and keeps
        // writable (checked above), which no Rust object refers to; `bytes` is a
        // separate Rust slice, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> io::Result<()> {
        let end = self.check_fixed(addr, len)?;
        // SAFETY: the range is this space's own (checked above); no Rust object lives there.
        if unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.owned.set(addr, end, None);
        Ok(())
    }
}

/// Whose a region is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// The program's segments, bss and the reserved gaps between them.
    Program,
    /// The interpreter's (`PT_INTERP`).
    Interpreter,
    /// The initial stack.
    Stack,
    /// The inaccessible guard below the stack.
    StackGuard,
}

/// One range of the program's memory, as mapped by the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Page-aligned start.
    pub start: u64,
    /// Length, a multiple of the page size.
    pub len: u64,
    /// `PROT_*` bits (`PROT_NONE` for reserved gaps and guards).
    pub prot: i32,
    /// Whose it is.
    pub kind: RegionKind,
}

/// Where an image went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Added to every address in the file (0 for `ET_EXEC`).
    pub bias: u64,
    /// The page-aligned end of its highest segment, relocated.
    pub end: u64,
}

/// A failure while mapping, with what was being done.
#[derive(Debug)]
pub struct MapFailure {
    /// What the loader was doing.
    pub what: &'static str,
    /// The address involved.
    pub addr: u64,
    /// The length involved.
    pub len: u64,
    /// The error.
    pub source: io::Error,
}

/// Maps a validated image: reserves its whole span (at its link address for `ET_EXEC`,
/// never replacing anything; at `hint` or anywhere, aligned to its largest `p_align`,
/// for `ET_DYN`), then each segment inside the reservation. The bss is the zeroed tail
/// of the last file-backed page plus anonymous pages. Gaps stay reserved and
/// inaccessible. Records the final regions in `regions`.
pub fn map_image(
    space: &mut dyn Space,
    info: &ElfInfo,
    fd: BorrowedFd<'_>,
    hint: Option<u64>,
    kind: RegionKind,
    regions: &mut Vec<Region>,
) -> Result<Mapped, MapFailure> {
    let fail = |what, addr, len| move |source| MapFailure { what, addr, len, source };
    let (lo, hi) = info.span();
    let len = hi - lo;
    let start = match info.kind {
        ElfKind::Exec => space.reserve(Placement::Exactly(lo), len).map_err(fail("reserve", lo, len))?,
        ElfKind::Dyn => {
            let extra = info.align - PAGE;
            let total = len.checked_add(extra).filter(|&t| t <= USER_END).ok_or_else(|| fail("reserve", 0, len)(io::ErrorKind::OutOfMemory.into()))?;
            let at = match hint {
                Some(h) => Placement::Hint(h.wrapping_add(info.align - 1) & !(info.align - 1)),
                None => Placement::Anywhere,
            };
            let got = space.reserve(at, total).map_err(fail("reserve", 0, total))?;
            let aligned = (got + info.align - 1) & !(info.align - 1);
            if aligned > got {
                space.unmap(got, aligned - got).map_err(fail("trim", got, aligned - got))?;
            }
            if got + total > aligned + len {
                let tail = aligned + len;
                space.unmap(tail, got + total - tail).map_err(fail("trim", tail, got + total - tail))?;
            }
            aligned
        }
    };
    let bias = start - lo;
    let mut map = RangeMap::default();
    map.set(start, start + len, Some(libc::PROT_NONE));
    for seg in &info.loads {
        let prot = seg.prot();
        let page = bias + page_down(seg.vaddr);
        let file_end = bias + seg.vaddr + seg.filesz;
        let mem_end = page_up(bias + seg.vaddr + seg.memsz);
        let mut anon_from = page;
        if seg.filesz > 0 {
            let file_page_end = page_up(file_end);
            let zero_tail = seg.memsz > seg.filesz && file_end % PAGE != 0;
            let map_prot = if zero_tail { prot | libc::PROT_WRITE } else { prot };
            space
                .map_file(page, file_page_end - page, map_prot, fd, page_down(seg.offset))
                .map_err(fail("map segment", page, file_page_end - page))?;
            if zero_tail {
                let zeros = vec![0u8; (file_page_end - file_end) as usize];
                space.write(file_end, &zeros).map_err(fail("zero bss", file_end, zeros.len() as u64))?;
                if map_prot != prot {
                    space.protect(page, file_page_end - page, prot).map_err(fail("protect", page, file_page_end - page))?;
                }
            }
            map.set(page, file_page_end, Some(prot));
            anon_from = file_page_end;
        }
        if mem_end > anon_from {
            space.map_anon(anon_from, mem_end - anon_from, prot).map_err(fail("map bss", anon_from, mem_end - anon_from))?;
            map.set(anon_from, mem_end, Some(prot));
        }
    }
    regions.extend(map.iter().map(|&(s, e, prot)| Region { start: s, len: e - s, prot, kind }));
    Ok(Mapped { bias, end: start + len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_map_splits_and_covers() {
        let mut m = RangeMap::default();
        m.set(0x1000, 0x5000, Some(0));
        m.set(0x2000, 0x3000, Some(3));
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![(0x1000, 0x2000, 0), (0x2000, 0x3000, 3), (0x3000, 0x5000, 0)]);
        assert!(m.covers(0x1000, 0x5000, |_| true));
        assert!(m.covers(0x2100, 0x2200, |p| *p == 3));
        assert!(!m.covers(0x2100, 0x3100, |p| *p == 3));
        m.set(0x4000, 0x6000, None);
        assert!(!m.covers(0x1000, 0x5000, |_| true));
        assert!(!m.covers(0x0, 0x1000, |_| true));
    }

    #[test]
    fn libc_space_refuses_what_it_does_not_own() {
        let mut s = LibcSpace::new();
        let here = &s as *const LibcSpace as u64;
        assert!(s.write(here, b"x").is_err());
        assert!(s.map_anon(page_down(here), PAGE, libc::PROT_READ).is_err());
        let a = s.reserve(Placement::Anywhere, 4 * PAGE).unwrap();
        assert!(s.write(a, b"x").is_err(), "reserved but not writable");
        s.map_anon(a, PAGE, libc::PROT_READ | libc::PROT_WRITE).unwrap();
        s.write(a + 10, b"hello").unwrap();
        // SAFETY: `a` was just mapped readable by this test.
        assert_eq!(unsafe { std::slice::from_raw_parts((a + 10) as *const u8, 5) }, b"hello");
        assert!(s.write(a + PAGE - 2, b"abc").is_err(), "runs into a reserved page");
        // The reservation is in use: an exact reservation on top of it is refused.
        let e = s.reserve(Placement::Exactly(a), PAGE).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        s.unmap(a, 4 * PAGE).unwrap();
        assert!(s.map_anon(a, PAGE, libc::PROT_READ).is_err());
    }
}
