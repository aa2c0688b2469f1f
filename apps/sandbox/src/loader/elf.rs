//! Parsing and validating an x86-64 ELF executable: its header, its program headers
//! and the name of its interpreter. `object` gives the structure layouts; every field
//! that matters is checked here, against the file's real size.

use std::io;
use std::os::unix::fs::FileExt;

use object::elf::{self, FileHeader64, ProgramHeader64};
use object::LittleEndian as LE;

/// The page size the loader maps with.
pub const PAGE: u64 = 4096;
/// The end of the user half of the address space (Linux's `TASK_SIZE` with 4-level
/// paging): no segment, reservation or stack lies at or above it.
pub const USER_END: u64 = 0x7fff_ffff_f000;
/// Linux refuses a program header table larger than 64 KiB.
pub const MAX_PHDR_BYTES: u64 = 65536;
/// At most this many program headers (a 64 KiB table of 56-byte entries).
pub const MAX_PHNUM: u16 = (MAX_PHDR_BYTES / PHENT) as u16;
/// Longest `PT_INTERP`, its NUL included (`PATH_MAX`).
pub const MAX_INTERP: u64 = 4096;
/// The size of an ELF64 program header.
const PHENT: u64 = 56;
/// The size of an ELF64 file header.
const EHDR: usize = 64;

/// Why an ELF file cannot be loaded; `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// Does not start with `\x7fELF`.
    #[error("not an ELF file")]
    NotElf,
    /// `ELFCLASS32`.
    #[error("32-bit ELF: only x86-64 programs can run")]
    Class32,
    /// Neither `ELFCLASS32` nor `ELFCLASS64`.
    #[error("unknown ELF class {0}")]
    BadClass(u8),
    /// Not little-endian.
    #[error("big-endian ELF: not an x86-64 program")]
    BigEndian,
    /// Another machine.
    #[error("ELF machine {0}: not an x86-64 program")]
    Machine(u16),
    /// Neither `ET_EXEC` nor `ET_DYN`.
    #[error("ELF type {0}: not an executable")]
    Type(u16),
    /// Shorter than the ELF header.
    #[error("truncated ELF header")]
    TruncatedHeader,
    /// `e_phentsize` is not 56.
    #[error("program header size {0}, expected 56")]
    PhentSize(u16),
    /// No program headers at all.
    #[error("no program headers")]
    NoPhdrs,
    /// More than [`MAX_PHNUM`] program headers.
    #[error("{0} program headers (at most {MAX_PHNUM})")]
    TooManyPhdrs(u16),
    /// The program header table lies (partly) beyond the end of the file.
    #[error("truncated program header table")]
    TruncatedPhdrs,
    /// A `PT_LOAD` whose file range lies beyond the end of the file.
    #[error("segment {0}: file range beyond the end of the file (truncated)")]
    SegmentTruncated(usize),
    /// `p_filesz > p_memsz`.
    #[error("segment {0}: file size exceeds memory size")]
    FileszExceedsMemsz(usize),
    /// `p_vaddr + p_memsz` overflows or lies beyond user space.
    #[error("segment {0}: address range overflows or lies beyond user space")]
    OutOfRange(usize),
    /// `p_offset % 4096 != p_vaddr % 4096`: cannot be mapped.
    #[error("segment {0}: file offset and address differ modulo the page size")]
    Misaligned(usize),
    /// Two `PT_LOAD` segments overlap in memory.
    #[error("segments {0} and {1} overlap")]
    Overlap(usize, usize),
    /// No `PT_LOAD` segment with a nonzero size.
    #[error("no loadable segment")]
    NoLoad,
    /// More than one `PT_INTERP`.
    #[error("more than one PT_INTERP")]
    MultipleInterp,
    /// `PT_INTERP` lies beyond the end of the file.
    #[error("PT_INTERP beyond the end of the file")]
    InterpOutOfFile,
    /// `PT_INTERP` does not end with a NUL byte (or has one inside).
    #[error("PT_INTERP is not a NUL-terminated string")]
    InterpNotTerminated,
    /// `PT_INTERP` shorter than 2 bytes or longer than [`MAX_INTERP`].
    #[error("PT_INTERP of {0} bytes (2 to 4096 allowed)")]
    InterpLength(u64),
    /// An interpreter that is not `ET_DYN`.
    #[error("the interpreter is not a shared object (ET_DYN)")]
    InterpNotDyn,
    /// An interpreter that names an interpreter of its own.
    #[error("the interpreter has a PT_INTERP of its own")]
    InterpHasInterp,
    /// Reading the file failed.
    #[error("read error: {0}")]
    Read(io::ErrorKind),
}

/// Whether the program is position-dependent or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: loaded at its link addresses.
    Exec,
    /// `ET_DYN`: a PIE, static-pie or shared object, loaded at any base.
    Dyn,
}

/// One validated `PT_LOAD` (addresses before relocation by the load bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index among the program headers.
    pub index: usize,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz` (nonzero).
    pub memsz: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_flags` (`PF_R`, `PF_W`, `PF_X`).
    pub flags: u32,
}

impl Segment {
    /// `PROT_*` bits from `p_flags`.
    pub fn prot(&self) -> i32 {
        let mut p = 0;
        if self.flags & elf::PF_R != 0 {
            p |= libc::PROT_READ;
        }
        if self.flags & elf::PF_W != 0 {
            p |= libc::PROT_WRITE;
        }
        if self.flags & elf::PF_X != 0 {
            p |= libc::PROT_EXEC;
        }
        p
    }
}

/// What the loader needs from a validated ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `ET_EXEC` or `ET_DYN`.
    pub kind: ElfKind,
    /// `e_entry` (unrelocated).
    pub entry: u64,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_phnum`.
    pub phnum: u16,
    /// The `PT_LOAD` segments with a nonzero `p_memsz`, sorted by address.
    pub loads: Vec<Segment>,
    /// `PT_PHDR`'s `p_vaddr`, if present.
    pub phdr_vaddr: Option<u64>,
    /// `PT_INTERP` without its NUL, if present.
    pub interp: Option<Vec<u8>>,
    /// The largest power-of-two `p_align` of the `PT_LOAD`s (at least a page, at most 1 GiB).
    pub align: u64,
    /// `PT_GNU_STACK` asks for an executable stack.
    pub exec_stack: bool,
}

impl ElfInfo {
    /// The page-aligned range `[lo, hi)` the `PT_LOAD`s span (unrelocated).
    pub fn span(&self) -> (u64, u64) {
        let lo = self.loads.first().map_or(0, |s| page_down(s.vaddr));
        let hi = self.loads.iter().map(|s| page_up(s.vaddr + s.memsz)).max().unwrap_or(lo);
        (lo, hi)
    }

    /// Where the program headers are in memory (unrelocated): `PT_PHDR` if present,
    /// else inside the first `PT_LOAD` whose file range holds the table.
    pub fn phdr_vaddr(&self) -> Option<u64> {
        if let Some(v) = self.phdr_vaddr {
            return Some(v);
        }
        let size = u64::from(self.phnum) * PHENT;
        self.loads
            .iter()
            .find(|s| s.offset <= self.phoff && self.phoff + size <= s.offset + s.filesz)
            .map(|s| s.vaddr + (self.phoff - s.offset))
    }
}

/// Rounds down to a page boundary.
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

/// Rounds up to a page boundary (callers keep `x` below [`USER_END`], so no overflow).
pub fn page_up(x: u64) -> u64 {
    page_down(x.saturating_add(PAGE - 1))
}

/// Where the parser reads bytes from: a file or, in tests, a slice.
pub trait Source {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from offset `off`; the caller keeps the range inside [`Source::size`].
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let src = usize::try_from(off)
            .ok()
            .and_then(|o| self.get(o..o.checked_add(buf.len())?))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// An open file and its size.
#[derive(Debug)]
pub struct FileSource<'a> {
    /// The file.
    pub file: &'a std::fs::File,
    /// Its size, from `fstat`.
    pub size: u64,
}

impl Source for FileSource<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, off)
    }
}

fn read<S: Source + ?Sized>(src: &S, off: u64, len: u64) -> Result<Vec<u8>, ElfError> {
    // Callers bound `len` (64 KiB at most) and keep `off + len` inside the file.
    let mut buf = vec![0; len as usize];
    src.read_at(off, &mut buf).map_err(|e| ElfError::Read(e.kind()))?;
    Ok(buf)
}

/// Reads and validates an ELF executable's header and program headers.
pub fn parse<S: Source + ?Sized>(src: &S) -> Result<ElfInfo, ElfError> {
    let size = src.size();
    let head = read(src, 0, size.min(EHDR as u64))?;
    if !head.starts_with(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    match head.get(4) {
        Some(&elf::ELFCLASS64) => {}
        Some(&elf::ELFCLASS32) => return Err(ElfError::Class32),
        Some(&c) => return Err(ElfError::BadClass(c)),
        None => return Err(ElfError::TruncatedHeader),
    }
    match head.get(5) {
        Some(&elf::ELFDATA2LSB) => {}
        Some(_) => return Err(ElfError::BigEndian),
        None => return Err(ElfError::TruncatedHeader),
    }
    let (eh, _) = object::pod::from_bytes::<FileHeader64<LE>>(&head).map_err(|_| ElfError::TruncatedHeader)?;
    let machine = eh.e_machine.get(LE);
    if machine != elf::EM_X86_64 {
        return Err(ElfError::Machine(machine));
    }
    let kind = match eh.e_type.get(LE) {
        elf::ET_EXEC => ElfKind::Exec,
        elf::ET_DYN => ElfKind::Dyn,
        t => return Err(ElfError::Type(t)),
    };
    let phentsize = eh.e_phentsize.get(LE);
    let phnum = eh.e_phnum.get(LE);
    let phoff = eh.e_phoff.get(LE);
    if u64::from(phentsize) != PHENT {
        return Err(ElfError::PhentSize(phentsize));
    }
    if phnum == 0 {
        return Err(ElfError::NoPhdrs);
    }
    if phnum > MAX_PHNUM {
        return Err(ElfError::TooManyPhdrs(phnum));
    }
    let table_len = u64::from(phnum) * PHENT;
    if phoff.checked_add(table_len).is_none_or(|end| end > size) {
        return Err(ElfError::TruncatedPhdrs);
    }
    let table = read(src, phoff, table_len)?;
    let (phdrs, _) = object::pod::slice_from_bytes::<ProgramHeader64<LE>>(&table, phnum as usize).map_err(|_| ElfError::TruncatedPhdrs)?;

    let mut loads = Vec::new();
    let mut interp_ph = None;
    let mut phdr_vaddr = None;
    let mut exec_stack = false;
    let mut align = PAGE;
    for (index, ph) in phdrs.iter().enumerate() {
        let (offset, filesz) = (ph.p_offset.get(LE), ph.p_filesz.get(LE));
        match ph.p_type.get(LE) {
            elf::PT_LOAD => {
                let (vaddr, memsz) = (ph.p_vaddr.get(LE), ph.p_memsz.get(LE));
                if filesz > 0 && offset.checked_add(filesz).is_none_or(|end| end > size) {
                    return Err(ElfError::SegmentTruncated(index));
                }
                if filesz > memsz {
                    return Err(ElfError::FileszExceedsMemsz(index));
                }
                if vaddr.checked_add(memsz).is_none_or(|end| end > USER_END) {
                    return Err(ElfError::OutOfRange(index));
                }
                if offset % PAGE != vaddr % PAGE {
                    return Err(ElfError::Misaligned(index));
                }
                let a = ph.p_align.get(LE);
                if a.is_power_of_two() {
                    align = align.max(a.min(1 << 30));
                }
                if memsz > 0 {
                    loads.push(Segment { index, vaddr, memsz, offset, filesz, flags: ph.p_flags.get(LE) });
                }
            }
            elf::PT_INTERP => {
                if interp_ph.is_some() {
                    return Err(ElfError::MultipleInterp);
                }
                interp_ph = Some((offset, filesz));
            }
            elf::PT_PHDR => phdr_vaddr = Some(ph.p_vaddr.get(LE)),
            elf::PT_GNU_STACK => exec_stack = ph.p_flags.get(LE) & elf::PF_X != 0,
            _ => {}
        }
    }
    if loads.is_empty() {
        return Err(ElfError::NoLoad);
    }
    loads.sort_by_key(|s| s.vaddr);
    for w in loads.windows(2) {
        if w[0].vaddr + w[0].memsz > w[1].vaddr {
            let (a, b) = (w[0].index.min(w[1].index), w[0].index.max(w[1].index));
            return Err(ElfError::Overlap(a, b));
        }
    }
    let interp = match interp_ph {
        None => None,
        Some((off, len)) => {
            if !(2..=MAX_INTERP).contains(&len) {
                return Err(ElfError::InterpLength(len));
            }
            if off.checked_add(len).is_none_or(|end| end > size) {
                return Err(ElfError::InterpOutOfFile);
            }
            let mut name = read(src, off, len)?;
            if name.pop() != Some(0) || name.contains(&0) || name.is_empty() {
                return Err(ElfError::InterpNotTerminated);
            }
            Some(name)
        }
    };
    Ok(ElfInfo { kind, entry: eh.e_entry.get(LE), phoff, phnum, loads, phdr_vaddr, interp, align, exec_stack })
}

/// [`parse`], then the checks an interpreter (`PT_INTERP`'s file) must pass too.
pub fn parse_interpreter<S: Source + ?Sized>(src: &S) -> Result<ElfInfo, ElfError> {
    let info = parse(src)?;
    if info.kind != ElfKind::Dyn {
        return Err(ElfError::InterpNotDyn);
    }
    if info.interp.is_some() {
        return Err(ElfError::InterpHasInterp);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid PIE: PT_PHDR, PT_INTERP, two PT_LOADs, PT_GNU_STACK.
    fn image() -> Vec<u8> {
        let mut b = vec![0u8; 0x1800];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&0x100u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        let phs: [(u32, u32, u64, u64, u64, u64); 5] = [
            (elf::PT_PHDR, 4, 64, 64, 5 * 56, 5 * 56),
            (elf::PT_INTERP, 4, 0x200, 0x200, 28, 28),
            (elf::PT_LOAD, 5, 0, 0, 0x1000, 0x1000),
            (elf::PT_LOAD, 6, 0x1000, 0x2000, 0x800, 0x3000),
            (elf::PT_GNU_STACK, 6, 0, 0, 0, 0),
        ];
        b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        for (i, &(ty, fl, off, va, fs, ms)) in phs.iter().enumerate() {
            let p = 64 + 56 * i;
            b[p..p + 4].copy_from_slice(&ty.to_le_bytes());
            b[p + 4..p + 8].copy_from_slice(&fl.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            b[p + 16..p + 24].copy_from_slice(&va.to_le_bytes());
            b[p + 32..p + 40].copy_from_slice(&fs.to_le_bytes());
            b[p + 40..p + 48].copy_from_slice(&ms.to_le_bytes());
            b[p + 48..p + 56].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        b[0x200..0x200 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        b
    }

    #[test]
    fn parses_a_valid_image() {
        let info = parse(&image()[..]).unwrap();
        assert_eq!(info.kind, ElfKind::Dyn);
        assert_eq!(info.entry, 0x100);
        assert_eq!(info.loads.len(), 2);
        assert_eq!(info.span(), (0, 0x5000));
        assert_eq!(info.phdr_vaddr(), Some(64));
        assert_eq!(info.interp.as_deref(), Some(&b"/lib64/ld-linux-x86-64.so.2"[..]));
        assert!(!info.exec_stack);
        assert_eq!(info.loads[0].prot(), libc::PROT_READ | libc::PROT_EXEC);
        assert_eq!(parse_interpreter(&image()[..]), Err(ElfError::InterpHasInterp));
    }

    #[test]
    fn phdr_without_pt_phdr_comes_from_the_segment_holding_it() {
        let mut b = image();
        b[64..68].copy_from_slice(&elf::PT_NULL.to_le_bytes());
        assert_eq!(parse(&b[..]).unwrap().phdr_vaddr(), Some(64));
    }

    /// 20,000 random corruptions of small real and synthetic ELF files, plus every
    /// truncation: never a panic, always `Ok` or an error value.
    #[test]
    fn random_corruptions_never_panic() {
        let mut seeds = vec![image()];
        for p in ["/usr/bin/busybox", "/bin/true"] {
            if let Ok(b) = std::fs::read(p) {
                seeds.push(b[..b.len().min(4096)].to_vec());
            }
        }
        for s in &seeds {
            for n in 0..=s.len() {
                let _ = parse(&s[..n]);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let specials = [0, 1, 56, 0xfff, 0x1000, USER_END, USER_END - 0x1000, u64::MAX, u64::MAX - 0xfff, 1 << 40];
        let (mut ok, mut err) = (0, 0);
        for i in 0..20_000 {
            let mut b = seeds[i % seeds.len()].clone();
            let span = (64 + 56 * 8).min(b.len());
            for _ in 0..(next() % 4 + 1) {
                match next() % 4 {
                    0 => {
                        let at = (next() as usize) % span;
                        b[at] ^= 1 << (next() % 8);
                    }
                    1 => {
                        let at = (next() as usize) % span;
                        b[at] = next() as u8;
                    }
                    _ => {
                        // Overwrite a header or program header field with a nasty value.
                        let at = ((next() as usize) % (span / 8)) * 8;
                        let v = if next() % 2 == 0 { specials[(next() as usize) % specials.len()] } else { next() };
                        let w = [2usize, 4, 8][(next() % 3) as usize];
                        b[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
                    }
                }
            }
            if next() % 4 == 0 {
                b.truncate((next() as usize) % (b.len() + 1));
            }
            match parse(&b[..]) {
                Ok(info) => {
                    ok += 1;
                    let (lo, hi) = info.span();
                    assert!(lo <= hi && hi <= USER_END);
                    for s in &info.loads {
                        assert!(s.filesz <= s.memsz && (s.filesz == 0 || s.offset + s.filesz <= b.len() as u64));
                    }
                }
                Err(_) => err += 1,
            }
        }
        assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
    }
}
