//! ELF helpers (libdune's `elf.c`): `struct dune_elf` and `dune_elf_open`,
//! `dune_elf_open_mem`, `dune_elf_close`, `dune_elf_dump`, `dune_elf_iter_sh`,
//! `dune_elf_iter_ph`, `dune_elf_load_ph`.
//!
//! An image is read from a file (`pread`) or from memory, and every offset and size
//! it contains is checked against the image's length before use: a truncated or
//! garbage file gets `-EINVAL` (`-EIO` for a short read, as libdune), never a read
//! outside the image. The tables hang off `struct dune_elf` as in libdune (C code
//! reads `elf->phdr[i]`), allocated with `malloc` behind a small header that keeps
//! their length, so iteration never trusts the (program-writable) ELF header again.
//!
//! Constants are those of the System V ABI and its x86-64 supplement, as `<elf.h>`
//! names them; `header_check` compares the struct layouts with `<elf.h>`'s.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::null_mut;

use libc::{Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr};

use crate::guard;

/// `PT_LOAD`: a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `SHT_STRTAB`: a string table.
pub const SHT_STRTAB: u32 = 3;
/// `PF_X`, `PF_W`, `PF_R`: segment permissions.
pub const PF_X: u32 = 1;
/// See [`PF_X`].
pub const PF_W: u32 = 2;
/// See [`PF_X`].
pub const PF_R: u32 = 4;
/// `SHF_WRITE`, `SHF_ALLOC`, `SHF_EXECINSTR`, `SHF_MERGE`, `SHF_STRINGS`.
const SHF_WRITE: u64 = 0x1;
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;
const SHF_MERGE: u64 = 0x10;
const SHF_STRINGS: u64 = 0x20;
/// `ELFDATA2LSB`, `EV_CURRENT`.
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u32 = 1;
/// `SHN_UNDEF`: no section-name string table.
const SHN_UNDEF: u16 = 0;

const PAGE: u64 = 4096;
/// One past the highest user address (47-bit user space).
const USER_END: u64 = 1 << 47;

/// `struct dune_elf`, as libdune's.
#[repr(C)]
#[derive(Debug)]
pub struct DuneElf {
    /// The file, or -1.
    pub fd: c_int,
    /// The image in memory, or NULL.
    pub mem: *mut u8,
    /// Its length.
    pub len: c_int,
    /// The ELF header.
    pub hdr: Elf64_Ehdr,
    /// The program headers, once read.
    pub phdr: *mut Elf64_Phdr,
    /// The section headers, once read.
    pub shdr: *mut Elf64_Shdr,
    /// The section names (a NUL-terminated string table), once read.
    pub shdrstr: *mut c_char,
    /// The program's.
    pub priv_: *mut c_void,
}

/// `dune_elf_phcb`.
pub type PhCb = unsafe extern "C" fn(elf: *mut DuneElf, phdr: *mut Elf64_Phdr) -> c_int;
/// `dune_elf_shcb`.
pub type ShCb = unsafe extern "C" fn(elf: *mut DuneElf, sname: *const c_char, snum: c_int, shdr: *mut Elf64_Shdr) -> c_int;

// ---------------------------------------------------------------- tables ----

/// Bytes before a table: its length in bytes (16 keeps the table 16-byte aligned).
const PREFIX: usize = 16;

/// `len` bytes from `malloc`, zeroed, behind a header that records `len`.
fn table_alloc(len: usize) -> Option<*mut u8> {
    // SAFETY: calloc has no preconditions; the size is checked for overflow.
    let p = unsafe { libc::calloc(1, len.checked_add(PREFIX)?) } as *mut u8;
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` has PREFIX + len bytes, aligned for u64 (malloc's alignment).
    unsafe { (p as *mut u64).write(len as u64) };
    // SAFETY: within the allocation.
    Some(unsafe { p.add(PREFIX) })
}

/// The length [`table_alloc`] recorded for `t`.
///
/// # Safety
/// `t` must come from [`table_alloc`] and not be freed.
unsafe fn table_len(t: *const u8) -> usize {
    // SAFETY: the header precedes the table (the caller's contract).
    unsafe { (t.sub(PREFIX) as *const u64).read() as usize }
}

/// Frees a table from [`table_alloc`] (NULL: nothing).
///
/// # Safety
/// `t` must be NULL or come from [`table_alloc`] and not be freed yet.
unsafe fn table_free(t: *mut u8) {
    if !t.is_null() {
        // SAFETY: the allocation starts PREFIX bytes before the table.
        unsafe { libc::free(t.sub(PREFIX).cast()) };
    }
}

// ---------------------------------------------------------------- reading ----

/// Where an image's bytes come from.
enum Source<'a> {
    File(c_int),
    Mem(&'a [u8]),
}

impl Source<'_> {
    /// The source of `elf` (the memory image is the program's, alive while `elf` is used).
    ///
    /// # Safety
    /// `elf.mem`/`elf.len` must describe readable memory when `mem` is not NULL.
    unsafe fn of(elf: &DuneElf) -> Self {
        if elf.mem.is_null() {
            Source::File(elf.fd)
        } else {
            // SAFETY: the caller's contract (dune_elf_open_mem checked len >= 0).
            Source::Mem(unsafe { std::slice::from_raw_parts(elf.mem, elf.len.max(0) as usize) })
        }
    }

    /// Length of the image.
    fn size(&self) -> Result<u64, c_int> {
        match self {
            Source::Mem(m) => Ok(m.len() as u64),
            Source::File(fd) => {
                // SAFETY: an all-zero stat is a valid value to be filled in.
                let mut st: libc::stat = unsafe { core::mem::zeroed() };
                // SAFETY: fstat writes into `st`.
                if unsafe { libc::fstat(*fd, &mut st) } != 0 {
                    return Err(-last_errno());
                }
                Ok(st.st_size as u64)
            }
        }
    }

    /// Fills `buf` from `off`: `-EIO` if the image ends first.
    fn read_exact(&self, off: u64, buf: &mut [u8]) -> Result<(), c_int> {
        match self {
            Source::Mem(m) => {
                let end = off.checked_add(buf.len() as u64).ok_or(-libc::EIO)?;
                if end > m.len() as u64 {
                    return Err(-libc::EIO);
                }
                buf.copy_from_slice(&m[off as usize..end as usize]);
                Ok(())
            }
            Source::File(fd) => {
                let mut done = 0;
                while done < buf.len() {
                    let at = i64::try_from(off + done as u64).map_err(|_| -libc::EIO)?;
                    // SAFETY: pread writes at most the remaining bytes of `buf`.
                    let n = unsafe { libc::pread(*fd, buf[done..].as_mut_ptr().cast(), buf.len() - done, at) };
                    match n {
                        0 => return Err(-libc::EIO),
                        n if n < 0 && last_errno() == libc::EINTR => continue,
                        n if n < 0 => return Err(-libc::EIO),
                        n => done += n as usize,
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether `[off, off + len)` lies within the image.
    fn contains(&self, off: u64, len: u64) -> Result<bool, c_int> {
        let size = self.size()?;
        Ok(off.checked_add(len).is_some_and(|end| end <= size))
    }
}

fn last_errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Reads `len` bytes at `off` into a new table; `-EINVAL` if they are not all in
/// the image.
fn read_table(src: &Source<'_>, off: u64, len: usize, extra: usize) -> Result<*mut u8, c_int> {
    if !src.contains(off, len as u64)? {
        return Err(-libc::EINVAL);
    }
    let t = table_alloc(len.checked_add(extra).ok_or(-libc::ENOMEM)?).ok_or(-libc::ENOMEM)?;
    // SAFETY: the table has len + extra writable bytes.
    let buf = unsafe { std::slice::from_raw_parts_mut(t, len) };
    if let Err(e) = src.read_exact(off, buf) {
        // SAFETY: just allocated.
        unsafe { table_free(t) };
        return Err(e);
    }
    Ok(t)
}

// ----------------------------------------------------------------- header ----

/// Checks an ELF header: a 64-bit little-endian current-version x86-64 image.
pub fn check_header(h: &Elf64_Ehdr) -> Result<(), c_int> {
    let id = &h.e_ident;
    let magic = id[libc::EI_MAG0] == libc::ELFMAG0 && id[libc::EI_MAG1] == libc::ELFMAG1 && id[libc::EI_MAG2] == libc::ELFMAG2 && id[libc::EI_MAG3] == libc::ELFMAG3;
    if !magic || id[libc::EI_CLASS] != libc::ELFCLASS64 || id[libc::EI_DATA] != ELFDATA2LSB || id[libc::EI_VERSION] as u32 != EV_CURRENT || h.e_version != EV_CURRENT {
        return Err(-libc::EINVAL);
    }
    if h.e_machine != libc::EM_X86_64 {
        return Err(-libc::EINVAL);
    }
    Ok(())
}

/// The parts of `dune_elf_open*` after the source is set: reads and checks the header.
fn open_common(elf: &mut DuneElf) -> c_int {
    // SAFETY: mem/len were just set by the caller from the program's arguments.
    let src = unsafe { Source::of(elf) };
    let mut raw = [0u8; size_of::<Elf64_Ehdr>()];
    if let Err(e) = src.read_exact(0, &mut raw) {
        return e;
    }
    // SAFETY: Elf64_Ehdr is plain old data: any 64 bytes are a value of it.
    let h: Elf64_Ehdr = unsafe { core::ptr::read_unaligned(raw.as_ptr().cast()) };
    if let Err(e) = check_header(&h) {
        return e;
    }
    elf.hdr = h;
    0
}

/// An empty, closed `dune_elf` (what a failed open leaves, so that close is harmless).
fn reset(elf: &mut DuneElf) {
    elf.fd = -1;
    elf.mem = null_mut();
    elf.len = 0;
    elf.phdr = null_mut();
    elf.shdr = null_mut();
    elf.shdrstr = null_mut();
}

/// `int dune_elf_open(struct dune_elf *elf, const char *path)`.
///
/// # Safety
/// `elf` must be writable; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dune_elf_open(elf: *mut DuneElf, path: *const c_char) -> c_int {
    guard(-libc::EINVAL, || {
        if elf.is_null() || path.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: the caller passes a writable struct dune_elf.
        let elf = unsafe { &mut *elf };
        reset(elf);
        // SAFETY: a NUL-terminated path (the caller's contract).
        let fd = unsafe { libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return -last_errno();
        }
        elf.fd = fd;
        let r = open_common(elf);
        if r != 0 {
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
            elf.fd = -1;
        }
        r
    })
}

/// `int dune_elf_open_mem(struct dune_elf *elf, void *mem, int len)`.
///
/// # Safety
/// `elf` must be writable; `[mem, mem + len)` readable for as long as `elf` is used.
#[no_mangle]
pub unsafe extern "C" fn dune_elf_open_mem(elf: *mut DuneElf, mem: *mut c_void, len: c_int) -> c_int {
    guard(-libc::EINVAL, || {
        if elf.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: the caller passes a writable struct dune_elf.
        let elf = unsafe { &mut *elf };
        reset(elf);
        if mem.is_null() || len < 0 {
            return -libc::EINVAL;
        }
        elf.mem = mem.cast();
        elf.len = len;
        let r = open_common(elf);
        if r != 0 {
            reset(elf);
        }
        r
    })
}

/// `int dune_elf_close(struct dune_elf *elf)`.
///
/// # Safety
/// `elf` must be NULL or a `dune_elf` set up by `dune_elf_open*` (successfully or not).
#[no_mangle]
pub unsafe extern "C" fn dune_elf_close(elf: *mut DuneElf) -> c_int {
    if elf.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: the caller passes a dune_elf the open functions initialised.
    let elf = unsafe { &mut *elf };
    // SAFETY: the tables are NULL or ours, not freed (they are set to NULL here).
    unsafe {
        table_free(elf.phdr.cast());
        table_free(elf.shdr.cast());
        table_free(elf.shdrstr.cast());
    }
    elf.phdr = null_mut();
    elf.shdr = null_mut();
    elf.shdrstr = null_mut();
    if elf.mem.is_null() && elf.fd >= 0 {
        // SAFETY: the descriptor dune_elf_open opened.
        unsafe { libc::close(elf.fd) };
    }
    elf.fd = -1;
    0
}

// ----------------------------------------------------------------- tables ----

/// Reads the program headers of `elf` if not read yet.
fn load_phdrs(elf: &mut DuneElf) -> c_int {
    if !elf.phdr.is_null() {
        return 0;
    }
    let h = elf.hdr;
    if h.e_phnum == 0 {
        return 0;
    }
    if h.e_phentsize as usize != size_of::<Elf64_Phdr>() {
        return -libc::EINVAL;
    }
    // SAFETY: mem/len as set by the open functions.
    let src = unsafe { Source::of(elf) };
    match read_table(&src, h.e_phoff, h.e_phnum as usize * size_of::<Elf64_Phdr>(), 0) {
        Ok(t) => {
            elf.phdr = t.cast();
            0
        }
        Err(e) => e,
    }
}

/// Reads the section headers and their name table if not read yet.
fn load_shdrs(elf: &mut DuneElf) -> c_int {
    if !elf.shdr.is_null() {
        return 0;
    }
    let h = elf.hdr;
    if h.e_shnum == 0 {
        return 0;
    }
    if h.e_shentsize as usize != size_of::<Elf64_Shdr>() {
        return -libc::EINVAL;
    }
    // Extended numbering (e_shstrndx == SHN_XINDEX) is out of range here too.
    if h.e_shstrndx != SHN_UNDEF && h.e_shstrndx >= h.e_shnum {
        return -libc::EINVAL;
    }
    // SAFETY: mem/len as set by the open functions.
    let src = unsafe { Source::of(elf) };
    let shdr = match read_table(&src, h.e_shoff, h.e_shnum as usize * size_of::<Elf64_Shdr>(), 0) {
        Ok(t) => t as *mut Elf64_Shdr,
        Err(e) => return e,
    };
    let names = if h.e_shstrndx == SHN_UNDEF {
        // No names: every section is called "".
        table_alloc(1).ok_or(-libc::ENOMEM)
    } else {
        // SAFETY: e_shstrndx < e_shnum entries were read into `shdr`.
        let s = unsafe { shdr.add(h.e_shstrndx as usize).read_unaligned() };
        if s.sh_type != SHT_STRTAB {
            Err(-libc::EINVAL)
        } else {
            // One more byte, left zero: the table ends with a NUL whatever the file says.
            usize::try_from(s.sh_size).map_err(|_| -libc::EINVAL).and_then(|n| read_table(&src, s.sh_offset, n, 1))
        }
    };
    match names {
        Ok(n) => {
            elf.shdr = shdr;
            elf.shdrstr = n.cast();
            0
        }
        Err(e) => {
            // SAFETY: just allocated.
            unsafe { table_free(shdr.cast()) };
            e
        }
    }
}

/// `int dune_elf_iter_ph(struct dune_elf *elf, dune_elf_phcb cb)`.
///
/// # Safety
/// `elf` must be an open `dune_elf`; `cb` safe to call with it and each header.
#[no_mangle]
pub unsafe extern "C" fn dune_elf_iter_ph(elf: *mut DuneElf, cb: Option<PhCb>) -> c_int {
    let Some(cb) = cb else { return -libc::EINVAL };
    if elf.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: an open dune_elf (the caller's contract); no reference outlives this block.
    let r = guard(-libc::EINVAL, || load_phdrs(unsafe { &mut *elf }));
    if r != 0 {
        return r;
    }
    // SAFETY: as above; read through the pointer, the callback may change the struct.
    let t = unsafe { (*elf).phdr };
    if t.is_null() {
        return 0;
    }
    // SAFETY: `t` is our table, alive until close (which the callback must not call).
    let n = unsafe { table_len(t.cast()) } / size_of::<Elf64_Phdr>();
    for i in 0..n {
        // SAFETY: i < the table's length; the program's callback gets elf and the header.
        let r = unsafe { cb(elf, t.add(i)) };
        if r != 0 {
            return r;
        }
    }
    0
}

/// `int dune_elf_iter_sh(struct dune_elf *elf, dune_elf_shcb cb)`: a section whose
/// name lies outside the name table is `-EINVAL`.
///
/// # Safety
/// `elf` must be an open `dune_elf`; `cb` safe to call with it and each section.
#[no_mangle]
pub unsafe extern "C" fn dune_elf_iter_sh(elf: *mut DuneElf, cb: Option<ShCb>) -> c_int {
    let Some(cb) = cb else { return -libc::EINVAL };
    if elf.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: an open dune_elf (the caller's contract).
    let r = guard(-libc::EINVAL, || load_shdrs(unsafe { &mut *elf }));
    if r != 0 {
        return r;
    }
    // SAFETY: as above.
    let (t, names) = unsafe { ((*elf).shdr, (*elf).shdrstr) };
    if t.is_null() || names.is_null() {
        return 0;
    }
    // SAFETY: both are our tables, alive until close.
    let (n, names_len) = unsafe { (table_len(t.cast()) / size_of::<Elf64_Shdr>(), table_len(names.cast())) };
    for i in 0..n {
        // SAFETY: i < the table's length.
        let sh = unsafe { t.add(i) };
        // SAFETY: as above.
        let name = unsafe { sh.read_unaligned() }.sh_name as usize;
        // The table's last byte is a NUL we added, so a name that starts inside ends inside.
        if name >= names_len {
            return -libc::EINVAL;
        }
        // SAFETY: `name` is within the table; the program's callback gets elf, the
        // section's name, number and header.
        let r = unsafe { cb(elf, names.add(name), i as c_int, sh) };
        if r != 0 {
            return r;
        }
    }
    0
}

// ------------------------------------------------------------------ load ----

const fn page_up(x: u64) -> u64 {
    (x + PAGE - 1) & !(PAGE - 1)
}

/// Where a PT_LOAD segment goes, checked: `[start, end)` in user space.
#[derive(Debug, PartialEq, Eq)]
pub struct Placement {
    /// First byte (`p_vaddr + off`).
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// `PROT_*` of the segment.
    pub prot: c_int,
}

/// Checks `ph` against an image of `image_len` bytes and places it at `off`.
pub fn place(ph: &Elf64_Phdr, off: i64, image_len: u64, from_file: bool) -> Result<Placement, c_int> {
    if ph.p_type != PT_LOAD || ph.p_filesz > ph.p_memsz {
        return Err(-libc::EINVAL);
    }
    let start = ph.p_vaddr.checked_add_signed(off).ok_or(-libc::EINVAL)?;
    let end = start.checked_add(ph.p_memsz).ok_or(-libc::EINVAL)?;
    if end > USER_END {
        return Err(-libc::EINVAL);
    }
    if ph.p_offset.checked_add(ph.p_filesz).is_none_or(|e| e > image_len) {
        return Err(-libc::EINVAL);
    }
    // A file mapping keeps the page offset: the address and the file offset must agree.
    if from_file && ph.p_filesz != 0 && start % PAGE != ph.p_offset % PAGE {
        return Err(-libc::EINVAL);
    }
    let mut prot = libc::PROT_NONE;
    if ph.p_flags & PF_R != 0 {
        prot |= libc::PROT_READ;
    }
    if ph.p_flags & PF_W != 0 {
        prot |= libc::PROT_WRITE;
    }
    if ph.p_flags & PF_X != 0 {
        prot |= libc::PROT_EXEC;
    }
    Ok(Placement { start, end, prot })
}

/// `mmap` with `MAP_FIXED | MAP_PRIVATE`: 0 or -errno.
///
/// # Safety
/// Replaces whatever is mapped at `[addr, addr + len)`: the caller asked for it.
unsafe fn map_fixed(addr: u64, len: u64, prot: c_int, flags: c_int, fd: c_int, off: u64) -> Result<(), c_int> {
    // SAFETY: the caller's contract.
    let p = unsafe { libc::mmap(addr as *mut c_void, len as usize, prot, flags | libc::MAP_FIXED | libc::MAP_PRIVATE, fd, off as libc::off_t) };
    if p == libc::MAP_FAILED {
        return Err(-last_errno());
    }
    Ok(())
}

/// `mprotect`: 0 or -errno.
fn protect(addr: u64, len: u64, prot: c_int) -> Result<(), c_int> {
    // SAFETY: changes the protection of pages this loader just mapped.
    if unsafe { libc::mprotect(addr as *mut c_void, len as usize, prot) } != 0 {
        return Err(-last_errno());
    }
    Ok(())
}

/// Maps segment `ph` at `p` (checked by [`place`]).
fn load(src: &Source<'_>, ph: &Elf64_Phdr, p: &Placement) -> Result<(), c_int> {
    if p.end == p.start {
        return Ok(());
    }
    let base = p.start & !(PAGE - 1);
    let file_end = p.start + ph.p_filesz;
    match src {
        Source::Mem(m) => {
            // Fresh zeroed pages, filled from the image, then the segment's permissions.
            // SAFETY: the program asked for this segment at this address.
            unsafe { map_fixed(base, page_up(p.end) - base, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_ANONYMOUS, -1, 0)? };
            let bytes = &m[ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize];
            // SAFETY: [start, start + filesz) lies in the writable pages just mapped.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p.start as *mut u8, bytes.len()) };
            protect(base, page_up(p.end) - base, p.prot)
        }
        Source::File(fd) => {
            let mut zero_from = base;
            if ph.p_filesz != 0 {
                // SAFETY: as above; the file range was checked against the file's size.
                unsafe { map_fixed(base, file_end - base, p.prot, 0, *fd, ph.p_offset & !(PAGE - 1))? };
                zero_from = page_up(file_end);
                // The rest of the file's last page belongs to the segment's zeros.
                if file_end < zero_from && p.end > file_end {
                    let page = zero_from - PAGE;
                    let writable = p.prot & libc::PROT_WRITE != 0;
                    if !writable {
                        protect(page, PAGE, p.prot | libc::PROT_WRITE)?;
                    }
                    let n = (zero_from.min(page_up(p.end)) - file_end) as usize;
                    // SAFETY: [file_end, file_end + n) is in the private, now writable page.
                    unsafe { core::ptr::write_bytes(file_end as *mut u8, 0, n) };
                    if !writable {
                        protect(page, PAGE, p.prot)?;
                    }
                }
            }
            let zero_end = page_up(p.end);
            if zero_end > zero_from {
                // SAFETY: the program asked for this segment at this address.
                unsafe { map_fixed(zero_from, zero_end - zero_from, p.prot, libc::MAP_ANONYMOUS, -1, 0)? };
            }
            Ok(())
        }
    }
}

/// `int dune_elf_load_ph(struct dune_elf *elf, Elf64_Phdr *phdr, off_t off)`.
///
/// # Safety
/// `elf` must be an open `dune_elf`, `phdr` a readable program header. The segment
/// replaces whatever the process had mapped at its addresses.
#[no_mangle]
pub unsafe extern "C" fn dune_elf_load_ph(elf: *mut DuneElf, phdr: *mut Elf64_Phdr, off: libc::off_t) -> c_int {
    if elf.is_null() || phdr.is_null() {
        return -libc::EINVAL;
    }
    guard(-libc::EINVAL, || {
        // SAFETY: an open dune_elf and a readable header (the caller's contract).
        let (elf, ph) = unsafe { (&*elf, phdr.read_unaligned()) };
        // SAFETY: mem/len as set by the open functions.
        let src = unsafe { Source::of(elf) };
        let size = match src.size() {
            Ok(s) => s,
            Err(e) => return e,
        };
        let p = match place(&ph, off, size, matches!(src, Source::File(_))) {
            Ok(p) => p,
            Err(e) => return e,
        };
        match load(&src, &ph, &p) {
            Ok(()) => 0,
            Err(e) => e,
        }
    })
}

// ------------------------------------------------------------------ dump ----

fn section_type(t: u32) -> &'static str {
    match t {
        0 => "NULL",
        1 => "PROGBITS",
        2 => "SYMTAB",
        3 => "STRTAB",
        4 => "RELA",
        5 => "HASH",
        6 => "DYNAMIC",
        7 => "NOTE",
        8 => "NOBITS",
        9 => "REL",
        10 => "SHLIB",
        11 => "DYNSYM",
        14 => "INIT_ARRAY",
        15 => "FINI_ARRAY",
        16 => "PREINIT_ARRAY",
        17 => "GROUP",
        18 => "SYMTAB_SHNDX",
        19 => "RELR",
        _ => "UNKNOWN",
    }
}

fn segment_type(t: u32) -> &'static str {
    match t {
        0 => "NULL",
        1 => "LOAD",
        2 => "DYNAMIC",
        3 => "INTERP",
        4 => "NOTE",
        5 => "SHLIB",
        6 => "PHDR",
        7 => "TLS",
        0x6474_e550 => "GNU_EH_FRAME",
        0x6474_e551 => "GNU_STACK",
        0x6474_e552 => "GNU_RELRO",
        0x6474_e553 => "GNU_PROPERTY",
        _ => "UNKNOWN",
    }
}

unsafe extern "C" fn dump_sh(_elf: *mut DuneElf, sname: *const c_char, snum: c_int, shdr: *mut Elf64_Shdr) -> c_int {
    use core::fmt::Write;
    // SAFETY: called by dune_elf_iter_sh with a NUL-terminated name and a header of its table.
    let (name, s) = unsafe { (CStr::from_ptr(sname).to_string_lossy(), shdr.read_unaligned()) };
    let f = |bit: u64, c: char| if s.sh_flags & bit != 0 { c } else { ' ' };
    let mut o = crate::RawOut::new(1);
    let _ = writeln!(o, "  [{snum:2}] {name:<16} {:<16} {:016x} {:08x}", section_type(s.sh_type), s.sh_addr, s.sh_offset);
    let _ = writeln!(
        o,
        "       {:016x} {:016x} {}{}{}{}{} {:4} {:4} {:5}",
        s.sh_size,
        s.sh_entsize,
        f(SHF_WRITE, 'W'),
        f(SHF_ALLOC, 'A'),
        f(SHF_EXECINSTR, 'X'),
        f(SHF_MERGE, 'M'),
        f(SHF_STRINGS, 'S'),
        s.sh_link,
        s.sh_info,
        s.sh_addralign
    );
    0
}

unsafe extern "C" fn dump_ph(_elf: *mut DuneElf, phdr: *mut Elf64_Phdr) -> c_int {
    use core::fmt::Write;
    // SAFETY: called by dune_elf_iter_ph with a header of its table.
    let p = unsafe { phdr.read_unaligned() };
    let f = |bit: u32, c: char| if p.p_flags & bit != 0 { c } else { ' ' };
    let mut o = crate::RawOut::new(1);
    let _ = writeln!(o, "  {:<20} 0x{:016x} 0x{:016x} 0x{:016x}", segment_type(p.p_type), p.p_offset, p.p_vaddr, p.p_paddr);
    let _ = writeln!(o, "  {:<20} 0x{:016x} 0x{:016x}  {}{}{}    {:x}", "", p.p_filesz, p.p_memsz, f(PF_R, 'R'), f(PF_W, 'W'), f(PF_X, 'X'), p.p_align);
    0
}

/// `int dune_elf_dump(struct dune_elf *elf)`: section and program headers on
/// standard output, in libdune's format.
///
/// # Safety
/// `elf` must be an open `dune_elf`.
#[no_mangle]
pub unsafe extern "C" fn dune_elf_dump(elf: *mut DuneElf) -> c_int {
    use core::fmt::Write;
    if elf.is_null() {
        return -libc::EINVAL;
    }
    {
        let mut o = crate::RawOut::new(1);
        let _ = writeln!(o, "--- ELF Dump ---");
        let _ = writeln!(o, "Section Headers:");
        let _ = writeln!(o, "  [Nr] Name             Type             Address          Offset");
        let _ = writeln!(o, "       Size             EntSize          Flags Link Info  Align");
    }
    // SAFETY: an open dune_elf; dump_sh is a valid callback.
    let r = unsafe { dune_elf_iter_sh(elf, Some(dump_sh)) };
    if r != 0 {
        return r;
    }
    {
        let mut o = crate::RawOut::new(1);
        let _ = writeln!(o, "Program Headers:");
        let _ = writeln!(o, "  Type                 Offset             VirtAddr           PhysAddr");
        let _ = writeln!(o, "                       FileSiz            MemSize            Flags   Align");
    }
    // SAFETY: as above.
    unsafe { dune_elf_iter_ph(elf, Some(dump_ph)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Tests that count callbacks share these, one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());
    static PH: AtomicUsize = AtomicUsize::new(0);
    static LOADS: AtomicUsize = AtomicUsize::new(0);
    static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn closed() -> DuneElf {
        // SAFETY: DuneElf is plain data; all-zero is a valid (empty) value.
        let mut e: DuneElf = unsafe { core::mem::zeroed() };
        reset(&mut e);
        e
    }

    fn put<T: Copy>(img: &mut [u8], at: usize, v: T) {
        // SAFETY: the test images are large enough for every header they get.
        unsafe { core::ptr::write_unaligned(img[at..at + size_of::<T>()].as_mut_ptr().cast::<T>(), v) };
    }

    /// A small valid image: a PT_LOAD of 0x30 bytes at 0x1000 (file offset 0x100,
    /// memsz 0x2100) and a PT_NOTE; sections NULL, .text, .bss, .shstrtab.
    fn image() -> Vec<u8> {
        let mut img = vec![0u8; 0x400];
        // SAFETY: plain data.
        let mut h: Elf64_Ehdr = unsafe { core::mem::zeroed() };
        h.e_ident[..4].copy_from_slice(b"\x7fELF");
        h.e_ident[libc::EI_CLASS] = libc::ELFCLASS64;
        h.e_ident[libc::EI_DATA] = ELFDATA2LSB;
        h.e_ident[libc::EI_VERSION] = 1;
        h.e_type = 2;
        h.e_machine = libc::EM_X86_64;
        h.e_version = 1;
        h.e_entry = 0x1000;
        h.e_phoff = 64;
        h.e_phentsize = size_of::<Elf64_Phdr>() as u16;
        h.e_phnum = 2;
        h.e_shoff = 0x200;
        h.e_shentsize = size_of::<Elf64_Shdr>() as u16;
        h.e_shnum = 4;
        h.e_shstrndx = 3;
        h.e_ehsize = 64;
        put(&mut img, 0, h);
        let load = Elf64_Phdr { p_type: PT_LOAD, p_flags: PF_R | PF_X, p_offset: 0x100, p_vaddr: 0x1100, p_paddr: 0x1100, p_filesz: 0x30, p_memsz: 0x2100, p_align: 0x1000 };
        let note = Elf64_Phdr { p_type: 4, p_flags: PF_R, p_offset: 0x130, p_vaddr: 0, p_paddr: 0, p_filesz: 0, p_memsz: 0, p_align: 4 };
        put(&mut img, 64, load);
        put(&mut img, 64 + 56, note);
        for (i, b) in img[0x100..0x130].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let names = b"\0.text\0.bss\0.shstrtab\0";
        img[0x180..0x180 + names.len()].copy_from_slice(names);
        let sh = |name: u32, ty: u32, off: u64, size: u64| Elf64_Shdr { sh_name: name, sh_type: ty, sh_flags: 0, sh_addr: 0, sh_offset: off, sh_size: size, sh_link: 0, sh_info: 0, sh_addralign: 1, sh_entsize: 0 };
        put(&mut img, 0x200, sh(0, 0, 0, 0));
        put(&mut img, 0x240, sh(1, 1, 0x100, 0x30));
        put(&mut img, 0x280, sh(7, 8, 0x130, 0x20d0));
        put(&mut img, 0x2c0, sh(12, SHT_STRTAB, 0x180, names.len() as u64));
        img
    }

    unsafe extern "C" fn count_ph(_e: *mut DuneElf, _p: *mut Elf64_Phdr) -> c_int {
        PH.fetch_add(1, Ordering::SeqCst);
        0
    }

    unsafe extern "C" fn collect_sh(_e: *mut DuneElf, name: *const c_char, _n: c_int, _s: *mut Elf64_Shdr) -> c_int {
        // SAFETY: iter_sh passes a NUL-terminated name.
        let n = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
        NAMES.lock().unwrap_or_else(|p| p.into_inner()).push(n);
        0
    }

    unsafe extern "C" fn stop_at_load(_e: *mut DuneElf, p: *mut Elf64_Phdr) -> c_int {
        // SAFETY: a header of the table.
        if unsafe { (*p).p_type } == PT_LOAD {
            7
        } else {
            0
        }
    }

    /// Opens `img` from memory and walks it; returns (open, iter_ph, iter_sh).
    fn walk(img: &mut [u8]) -> (c_int, c_int, c_int) {
        let mut e = closed();
        // SAFETY: `img` outlives `e`'s use here.
        let o = unsafe { dune_elf_open_mem(&mut e, img.as_mut_ptr().cast(), img.len() as c_int) };
        if o != 0 {
            // SAFETY: a failed open leaves a closable dune_elf.
            assert_eq!(unsafe { dune_elf_close(&mut e) }, 0);
            return (o, 0, 0);
        }
        // SAFETY: an open dune_elf and valid callbacks.
        let r = unsafe { (dune_elf_iter_ph(&mut e, Some(count_ph)), dune_elf_iter_sh(&mut e, Some(collect_sh))) };
        // SAFETY: as above; twice is harmless.
        unsafe {
            assert_eq!(dune_elf_close(&mut e), 0);
            assert_eq!(dune_elf_close(&mut e), 0);
        }
        (o, r.0, r.1)
    }

    #[test]
    fn a_valid_image_is_walked() {
        let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        PH.store(0, Ordering::SeqCst);
        NAMES.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut img = image();
        assert_eq!(walk(&mut img), (0, 0, 0));
        assert_eq!(PH.load(Ordering::SeqCst), 2);
        assert_eq!(*NAMES.lock().unwrap_or_else(|p| p.into_inner()), ["", ".text", ".bss", ".shstrtab"]);
        let mut e = closed();
        // SAFETY: as in walk.
        unsafe {
            assert_eq!(dune_elf_open_mem(&mut e, img.as_mut_ptr().cast(), img.len() as c_int), 0);
            assert_eq!(e.hdr.e_entry, 0x1000);
            assert_eq!(dune_elf_iter_ph(&mut e, Some(stop_at_load)), 7);
            assert_eq!(dune_elf_dump(&mut e), 0);
            dune_elf_close(&mut e);
        }
    }

    #[test]
    fn bad_headers_are_refused() {
        let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let cases: [(usize, &[u8], c_int); 5] = [
            (0, b"\x7fELG", -libc::EINVAL),
            (libc::EI_CLASS, &[1], -libc::EINVAL),  // 32-bit
            (libc::EI_DATA, &[2], -libc::EINVAL),   // big endian
            (18, &[3, 0], -libc::EINVAL),           // EM_386
            (20, &[2, 0, 0, 0], -libc::EINVAL),     // e_version
        ];
        for (at, bytes, want) in cases {
            let mut img = image();
            img[at..at + bytes.len()].copy_from_slice(bytes);
            assert_eq!(walk(&mut img).0, want, "patch at {at}");
        }
        let mut short = image()[..40].to_vec();
        assert_eq!(walk(&mut short).0, -libc::EIO);
        let mut e = closed();
        // SAFETY: invalid arguments are refused before any use.
        unsafe {
            assert_eq!(dune_elf_open_mem(&mut e, core::ptr::null_mut(), 10), -libc::EINVAL);
            assert_eq!(dune_elf_open_mem(&mut e, image().as_mut_ptr().cast(), -1), -libc::EINVAL);
            assert_eq!(dune_elf_open(&mut e, c"/nonexistent/elf".as_ptr()), -libc::ENOENT);
            assert_eq!(dune_elf_close(&mut e), 0);
            assert_eq!(dune_elf_iter_ph(&mut e, None), -libc::EINVAL);
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // (offset, bytes, (iter_ph, iter_sh))
        let cases: [(usize, Vec<u8>, (c_int, c_int)); 7] = [
            (32, 0x3f0u64.to_le_bytes().to_vec(), (-libc::EINVAL, 0)),       // e_phoff: table past the end
            (54, 55u16.to_le_bytes().to_vec(), (-libc::EINVAL, 0)),          // e_phentsize
            (40, u64::MAX.to_le_bytes().to_vec(), (0, -libc::EINVAL)),       // e_shoff overflows
            (62, 4u16.to_le_bytes().to_vec(), (0, -libc::EINVAL)),           // e_shstrndx == e_shnum
            (0x2c0 + 4, 1u32.to_le_bytes().to_vec(), (0, -libc::EINVAL)),    // name table not a STRTAB
            (0x2c0 + 32, 0x10_0000u64.to_le_bytes().to_vec(), (0, -libc::EINVAL)), // name table too long
            (0x240, 0x1000u32.to_le_bytes().to_vec(), (0, -libc::EINVAL)),   // a name outside the table
        ];
        for (at, bytes, want) in cases {
            let mut img = image();
            img[at..at + bytes.len()].copy_from_slice(&bytes);
            let (o, ph, sh) = walk(&mut img);
            assert_eq!((o, (ph, sh)), (0, want), "patch at {at:#x}");
        }
    }

    #[test]
    fn every_truncation_and_garbage_is_survived() {
        let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let full = image();
        for n in 0..full.len() {
            let mut img = full[..n].to_vec();
            let (o, ph, sh) = walk(&mut img);
            if n < size_of::<Elf64_Ehdr>() {
                assert_eq!(o, -libc::EIO, "length {n}");
            } else if n < 0x2c0 + 64 {
                // The section table is cut: iter_sh refuses it.
                assert!(o == 0 && sh < 0, "length {n}: {o} {ph} {sh}");
            }
        }
        // Random bytes behind a valid identification: errors, no crash.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut img = full.clone();
            for b in img[16..0x300].iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(7) {
                    *b = x as u8;
                }
            }
            let _ = walk(&mut img);
        }
    }

    #[test]
    fn segments_are_placed_with_checks() {
        let load = Elf64_Phdr { p_type: PT_LOAD, p_flags: PF_R | PF_W, p_offset: 0x1100, p_vaddr: 0x40_1100, p_paddr: 0, p_filesz: 0x10, p_memsz: 0x20, p_align: 0x1000 };
        assert_eq!(place(&load, 0x1000_0000, 0x2000, true), Ok(Placement { start: 0x1040_1100, end: 0x1040_1120, prot: libc::PROT_READ | libc::PROT_WRITE }));
        let bad = |f: &dyn Fn(&mut Elf64_Phdr), off: i64| {
            let mut p = load;
            f(&mut p);
            place(&p, off, 0x2000, true)
        };
        assert_eq!(bad(&|p| p.p_type = 4, 0), Err(-libc::EINVAL));
        assert_eq!(bad(&|p| p.p_filesz = 0x21, 0), Err(-libc::EINVAL));
        assert_eq!(bad(&|p| p.p_offset = 0x1ff8, 0), Err(-libc::EINVAL)); // past the file
        assert_eq!(bad(&|p| p.p_offset = u64::MAX, 0), Err(-libc::EINVAL));
        assert_eq!(bad(&|p| p.p_vaddr = 0x40_1200, 0), Err(-libc::EINVAL)); // page offsets differ
        assert_eq!(bad(&|p| p.p_vaddr = u64::MAX - 8, 0), Err(-libc::EINVAL));
        assert_eq!(bad(&|_| {}, -0x50_0000), Err(-libc::EINVAL)); // below 0
        assert_eq!(bad(&|p| p.p_vaddr = 1 << 47, 0), Err(-libc::EINVAL)); // above user space
        // From memory the page offsets may differ (the bytes are copied).
        let mut p = load;
        p.p_vaddr = 0x40_1200;
        assert!(place(&p, 0, 0x2000, false).is_ok());
    }

    /// A free, page-aligned range of `len` bytes (mapped, then unmapped).
    fn free_range(len: usize) -> u64 {
        // SAFETY: an anonymous mapping the kernel places.
        let p = unsafe { libc::mmap(null_mut(), len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: our own mapping.
        unsafe { libc::munmap(p, len) };
        p as u64
    }

    #[test]
    fn a_segment_from_memory_is_loaded_and_zero_filled() {
        let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut img = image();
        let base = free_range(0x10000);
        let mut e = closed();
        // SAFETY: `img` outlives `e`; the range at `base` is free and ours.
        unsafe {
            assert_eq!(dune_elf_open_mem(&mut e, img.as_mut_ptr().cast(), img.len() as c_int), 0);
            assert_eq!(dune_elf_iter_ph(&mut e, Some(load_each)), 0);
            LOADS.store(0, Ordering::SeqCst);
            LOAD_OFF.store(base as usize - 0x1000, Ordering::SeqCst);
            assert_eq!(dune_elf_iter_ph(&mut e, Some(load_each)), 0);
            assert_eq!(LOADS.load(Ordering::SeqCst), 1);
            let seg = std::slice::from_raw_parts((base + 0x100) as *const u8, 0x2100);
            assert!(seg[..0x30].iter().enumerate().all(|(i, &b)| b == i as u8 + 1));
            assert!(seg[0x30..].iter().all(|&b| b == 0));
            dune_elf_close(&mut e);
            libc::munmap(base as *mut c_void, 0x10000);
        }
    }

    static LOAD_OFF: AtomicUsize = AtomicUsize::new(0);

    /// Loads each PT_LOAD at LOAD_OFF (skipping when it is 0).
    unsafe extern "C" fn load_each(e: *mut DuneElf, p: *mut Elf64_Phdr) -> c_int {
        let off = LOAD_OFF.load(Ordering::SeqCst);
        // SAFETY: a header of the table.
        if off == 0 || unsafe { (*p).p_type } != PT_LOAD {
            return 0;
        }
        LOADS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the test reserved the range.
        unsafe { dune_elf_load_ph(e, p, off as libc::off_t) }
    }

    #[test]
    fn this_test_binary_is_read_from_its_file_and_loaded() {
        let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        NAMES.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut e = closed();
        // SAFETY: a NUL-terminated path; `e` is ours.
        unsafe {
            assert_eq!(dune_elf_open(&mut e, c"/proc/self/exe".as_ptr()), 0);
            assert!(e.fd >= 0);
            assert_eq!(dune_elf_iter_sh(&mut e, Some(collect_sh)), 0);
        }
        let names = NAMES.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(names.iter().any(|n| n == ".text") && names.iter().any(|n| n == ".data"), "{names:?}");
        // Load the first PT_LOAD (with its file offset) elsewhere and compare with the file.
        // SAFETY: phdr is read; the first PT_LOAD is copied out.
        let first = unsafe {
            assert_eq!(dune_elf_iter_ph(&mut e, Some(count_ph)), 0);
            let n = table_len(e.phdr.cast()) / size_of::<Elf64_Phdr>();
            (0..n).map(|i| e.phdr.add(i).read()).find(|p| p.p_type == PT_LOAD && p.p_filesz > 0).expect("a PT_LOAD")
        };
        let len = (page_up(first.p_vaddr + first.p_memsz) - (first.p_vaddr & !(PAGE - 1))) as usize;
        let base = free_range(len);
        let off = base as i64 - (first.p_vaddr & !(PAGE - 1)) as i64;
        let mut ph = first;
        let file = std::fs::read("/proc/self/exe").expect("read exe");
        // SAFETY: the range at `base` is free and ours.
        unsafe {
            assert_eq!(dune_elf_load_ph(&mut e, &mut ph, off), 0);
            let got = std::slice::from_raw_parts((first.p_vaddr as i64 + off) as *const u8, first.p_filesz as usize);
            assert!(got == &file[first.p_offset as usize..(first.p_offset + first.p_filesz) as usize]);
            libc::munmap(base as *mut c_void, len);
            assert_eq!(dune_elf_close(&mut e), 0);
            assert_eq!(e.fd, -1);
        }
    }
}
