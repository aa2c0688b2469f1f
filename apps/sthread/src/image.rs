//! The pristine image every sthread starts from, taken once by [`crate::init`].
//!
//! - **Read-only memory** of every loaded object (code, rodata, the vDSO): shared,
//!   mapped for ring 3 on first use, never writable. Each range remembers the mapping
//!   it came from (file, offset); when the program's map changes there
//!   ([`Image::current_shared`]), only what is still that mapping stays shared, so an
//!   object unloaded after `init` and the program's data mapped in its place are never
//!   an sthread's.
//! - **Writable globals** (`.data`, `.bss`, `.got` of every object) and the static
//!   TLS block and thread control block of the thread that called `init`: copied
//!   into pages of the page allocator at `init`. Of the TLS pages only the block
//!   itself is copied (glibc's static TLS size and `struct pthread`); the rest of
//!   those pages, the program's other data, is zero. Each compartment gets its own copy
//!   of those copies, so it sees the globals *as they were at init*.
//! - Not the heap, not any stack, not anything mapped later: none of it is visible.

use std::collections::BTreeMap;
use std::ffi::c_void;

use libdune::page;

use crate::error::{Error, Result};
use crate::pt::PAGE;

/// A page-aligned range `[start, end)` ring 3 may read (and execute when `exec`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shared {
    pub start: u64,
    pub end: u64,
    pub exec: bool,
    /// The vDSO's data (`[vvar]`): some of its pages are backed by nothing, and reading
    /// one even from ring 0 ends the process. Only pages the process itself has used
    /// (already in its page table) are shared.
    pub special: bool,
}

/// A read-only mapping of the map at `init`, as `/proc/self/maps` showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    start: u64,
    end: u64,
    /// `start` minus the file offset: the same for every piece of one mapping.
    base: u64,
    dev: String,
    inode: u64,
    name: String,
}

/// One line of `/proc/self/maps`.
struct MapLine {
    start: u64,
    end: u64,
    writable: bool,
    offset: u64,
    dev: String,
    inode: u64,
    name: String,
}

/// `/proc/self/maps` now, line by line (empty if it cannot be read).
fn maps_now() -> Vec<MapLine> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return Vec::new() };
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms, off, dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let (a, b) = range.split_once('-')?;
            Some(MapLine {
                start: u64::from_str_radix(a, 16).ok()?,
                end: u64::from_str_radix(b, 16).ok()?,
                writable: perms.contains('w'),
                offset: u64::from_str_radix(off, 16).ok()?,
                dev: dev.to_string(),
                inode: inode.parse().ok()?,
                name: f.collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

/// The read-only mappings of `/proc/self/maps` now.
fn read_only_mappings(maps: Vec<MapLine>) -> Vec<Origin> {
    maps.into_iter()
        .filter(|m| !m.writable)
        .map(|m| Origin { start: m.start, end: m.end, base: m.start.wrapping_sub(m.offset), dev: m.dev, inode: m.inode, name: m.name })
        .collect()
}

/// `shared` cut to what `now` still maps as it did in `origins`: the same file (or
/// special mapping) at the same offset, read-only.
fn still_shared(shared: &[Shared], origins: &[Origin], now: &[Origin]) -> Vec<Shared> {
    let mut out = Vec::new();
    for r in shared {
        for o in origins.iter().filter(|o| o.start < r.end && r.start < o.end) {
            for n in now.iter().filter(|n| n.dev == o.dev && n.inode == o.inode && n.name == o.name && n.base == o.base) {
                let (s, e) = (r.start.max(o.start).max(n.start), r.end.min(o.end).min(n.end));
                if s < e {
                    out.push(Shared { start: s, end: e, exec: r.exec, special: r.special });
                }
            }
        }
    }
    out.sort_by_key(|r| r.start);
    out.dedup_by(|b, a| a.end >= b.start && a.exec == b.exec && a.special == b.special && {
        a.end = a.end.max(b.end);
        true
    });
    out
}

/// The read-only range of `shared` (sorted) holding `va`, if any.
pub(crate) fn shared_in(shared: &[Shared], va: u64) -> Option<Shared> {
    let p = down(va);
    let i = shared.partition_point(|r| r.end <= p);
    shared.get(i).copied().filter(|r| r.start <= p)
}

/// The snapshot.
pub(crate) struct Image {
    /// Read-only ranges at `init`, sorted.
    pub shared: Vec<Shared>,
    /// The read-only mappings they came from.
    origins: Vec<Origin>,
    /// Writable pages: VA -> guest-physical address of the pristine copy, or `None`
    /// for a page that was all zero (never copied: a compartment makes it on first
    /// touch; `.bss` is mostly such pages).
    pub private: BTreeMap<u64, Option<u64>>,
    /// FS base ring 3 runs with: the `init` thread's, over its private TLS pages.
    pub fs_base: u64,
}

/// Where compartments find the shared ranges' pages: `(start, end, alias)`, sorted, a
/// read-only `MAP_SHARED` mapping of the same file made at `init` (one image per
/// process). The master's own mapping can come to hold its data without any change of
/// the map (a write through `/proc/self/mem` copies the page on write); the file's
/// pages cannot.
static ALIASES: std::sync::OnceLock<Vec<Alias>> = std::sync::OnceLock::new();

/// One alias: the range `[start, end)` of the master's map, where its alias starts,
/// the file (kept open: its size says which pages exist) and the file offset of
/// `start`.
struct Alias {
    start: u64,
    end: u64,
    at: u64,
    file: std::fs::File,
    offset: u64,
}

/// The address of the file's page behind shared page `va` (see [`ALIASES`]), or `va`
/// itself where no alias could be made (the file was gone or replaced at `init`).
pub(crate) fn alias_of(va: u64) -> u64 {
    alias_at(va).map_or(va, |a| a.at + (va - a.start))
}

/// The alias whose range holds `va` (they are sorted and disjoint).
fn alias_at(va: u64) -> Option<&'static Alias> {
    let aliases = ALIASES.get()?;
    aliases.get(aliases.partition_point(|a| a.end <= va)).filter(|a| a.start <= va)
}

fn down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

fn up(a: u64) -> u64 {
    a.saturating_add(PAGE - 1) & !(PAGE - 1)
}

struct Scan {
    shared: Vec<Shared>,
    writable: Vec<(u64, u64)>,
    tls: u64,
}

/// Binds every lazily bound PLT slot of the object now, in the process (not in a
/// compartment): the dynamic loader's lazy resolver reads its own bookkeeping
/// (`link_map`s in memory it allocated before `main`), which no compartment maps,
/// and a binding made inside a compartment would be undone by every reset.
///
/// # Safety
/// `info` describes a loaded object whose dynamic section the loader has relocated.
unsafe fn bind_now(info: &libc::dl_phdr_info) {
    const DT_PLTRELSZ: i64 = 2;
    const DT_STRTAB: i64 = 5;
    const DT_SYMTAB: i64 = 6;
    const DT_FLAGS: i64 = 30;
    const DT_FLAGS_1: i64 = 0x6fff_fffb;
    const DT_JMPREL: i64 = 23;
    const R_X86_64_JUMP_SLOT: u64 = 7;
    let base = info.dlpi_addr;
    // SAFETY: the object's program headers, as dl_iterate_phdr describes them.
    let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let Some(dynph) = phdrs.iter().find(|p| p.p_type == libc::PT_DYNAMIC) else { return };
    let (mut jmprel, mut relsz, mut symtab, mut strtab, mut now) = (0u64, 0u64, 0u64, 0u64, false);
    let mut d = base.wrapping_add(dynph.p_vaddr) as *const [i64; 2];
    loop {
        // SAFETY: the loaded object's dynamic section, read up to its DT_NULL.
        let [tag, val] = unsafe { d.read() };
        match tag {
            0 => break,
            DT_JMPREL => jmprel = val as u64,
            DT_PLTRELSZ => relsz = val as u64,
            DT_SYMTAB => symtab = val as u64,
            DT_STRTAB => strtab = val as u64,
            DT_FLAGS => now |= val & 8 != 0,
            DT_FLAGS_1 => now |= val & 1 != 0,
            _ => {}
        }
        // SAFETY: the next entry of the same section (DT_NULL not seen yet).
        d = unsafe { d.add(1) };
    }
    if now || jmprel == 0 || symtab == 0 || strtab == 0 {
        return;
    }
    // The loader relocates these in place; an unrelocated one is an offset.
    let fix = |a: u64| if a < base { a + base } else { a };
    let (jmprel, symtab, strtab) = (fix(jmprel), fix(symtab), fix(strtab));
    for i in 0..relsz / 24 {
        // SAFETY: one of DT_PLTRELSZ / 24 Elf64_Rela entries at DT_JMPREL.
        let [off, rinfo, _] = unsafe { (jmprel as *const [u64; 3]).add(i as usize).read() };
        if rinfo & 0xffff_ffff != R_X86_64_JUMP_SLOT {
            continue;
        }
        let sym = symtab + (rinfo >> 32) * 24;
        // SAFETY: st_name of a symbol the relocation names, in DT_SYMTAB.
        let name = strtab + unsafe { (sym as *const u32).read() } as u64;
        // SAFETY: a NUL-terminated name in the object's DT_STRTAB.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name as *const libc::c_char) };
        if !f.is_null() {
            // SAFETY: the relocation's GOT slot, writable while binding is lazy (a
            // BIND_NOW object, whose GOT may be read-only, was skipped above).
            unsafe { (base.wrapping_add(off) as *mut u64).write(f as u64) };
        }
    }
}

extern "C" fn each_object(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and
    // `data` is the Scan the caller passed.
    let (info, scan) = unsafe { (&*info, &mut *(data as *mut Scan)) };
    // SAFETY: dl_iterate_phdr reports loaded, relocated objects. The vDSO (no PLT,
    // a read-only dynamic section) is left alone.
    // SAFETY: dlpi_name is a NUL-terminated string or null.
    let vdso = !info.dlpi_name.is_null() && unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes().starts_with(b"linux-vdso");
    if !vdso {
        // SAFETY: as above.
        unsafe { bind_now(info) };
    }
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let start = info.dlpi_addr.wrapping_add(ph.p_vaddr);
        match ph.p_type {
            libc::PT_LOAD if ph.p_memsz > 0 => {
                let (s, e) = (down(start), up(start + ph.p_memsz));
                if ph.p_flags & libc::PF_W != 0 {
                    scan.writable.push((s, e));
                } else {
                    scan.shared.push(Shared { start: s, end: e, exec: ph.p_flags & libc::PF_X != 0, special: false });
                }
            }
            libc::PT_TLS => scan.tls += ph.p_memsz + ph.p_align.max(16),
            _ => {}
        }
    }
    0
}

/// Without glibc's layout symbols: `struct pthread` (the TCB FS points at) fits in
/// this much above FS...
const TCB_ABOVE: u64 = 2 * PAGE;
/// ...and this much below FS holds the static TLS surplus glibc keeps for `dlopen`ed
/// modules (on top of the objects' `PT_TLS`).
const TLS_SURPLUS: u64 = 2 * PAGE;

/// The static TLS block and thread control block of the calling thread: glibc puts
/// the TCB (`struct pthread`) at FS and the static TLS below it, `static_size` bytes in
/// all (`_dl_get_tls_static_info`, which counts the TCB too). `None` without glibc's
/// symbols.
fn tls_block(fs: u64) -> Option<(u64, u64)> {
    // SAFETY: dlsym with NUL-terminated names; the results are checked for null.
    let (info, tcb) = unsafe { (libc::dlsym(libc::RTLD_DEFAULT, c"_dl_get_tls_static_info".as_ptr()), libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db_sizeof_pthread".as_ptr())) };
    if info.is_null() || tcb.is_null() {
        return None;
    }
    // SAFETY: glibc's `void _dl_get_tls_static_info(size_t *size, size_t *align)`.
    let info: extern "C" fn(*mut usize, *mut usize) = unsafe { core::mem::transmute(info) };
    let (mut size, mut align) = (0usize, 0usize);
    info(&mut size, &mut align);
    // SAFETY: glibc's `const uint32_t _thread_db_sizeof_pthread`.
    let tcb = u64::from(unsafe { (tcb as *const u32).read() });
    let size = size as u64;
    (size >= tcb && tcb > 0 && size < 1 << 24).then(|| (fs - (size - tcb), fs + tcb))
}

/// Every word of the copied pages (`private`: page -> copy) that is a pointer mangled
/// with `old` (glibc's `PTR_MANGLE`: xor with the guard, rotate left by 17) into a
/// mapping of the process is mangled again with `new`. A word of other data passes
/// the test with a chance of about the mapped size in 2^64.
fn remangle(private: &BTreeMap<u64, Option<u64>>, old: u64, new: u64) -> Result<()> {
    let mut ranges: Vec<(u64, u64)> = maps_now().iter().map(|m| (m.start, m.end)).collect();
    if ranges.is_empty() {
        return Err(Error::Internal("/proc/self/maps"));
    }
    ranges.sort_unstable();
    let mapped = |p: u64| ranges.partition_point(|r| r.1 <= p) < ranges.len() && ranges[ranges.partition_point(|r| r.1 <= p)].0 <= p && p != 0;
    for pa in private.values().flatten() {
        let to = page::pa_to_va(*pa).ok_or(Error::Internal("page without an alias"))?;
        // SAFETY: the alias of a whole page of the copy, which nothing else uses yet.
        let words = unsafe { core::slice::from_raw_parts_mut(to.cast::<u64>(), (PAGE / 8) as usize) };
        for w in words.iter_mut() {
            let p = w.rotate_right(17) ^ old;
            // A mangled null (a `jmp_buf`'s frame pointer, an empty handler) or small
            // number gives the guard away as surely as a pointer does.
            if *w != 0 && (p < 0x10000 || mapped(p)) {
                *w = (p ^ new).rotate_left(17);
            }
        }
    }
    Ok(())
}

/// A read-only `MAP_SHARED` mapping of the file behind each read-only mapping that
/// holds shared ranges (see [`ALIASES`]), opened by its name and checked to be the
/// same file by its inode (the device the map shows differs from `stat`'s on some file
/// systems: 9p, overlays); a mapping whose file cannot be had so gets no alias, and
/// its ranges are not shared ([`Image::take`]).
fn file_aliases(shared: &[Shared], origins: &[Origin]) -> Vec<Alias> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for o in origins.iter().filter(|o| o.inode != 0 && o.name.starts_with('/') && shared.iter().any(|r| !r.special && r.start < o.end && o.start < r.end)) {
        let Ok(f) = std::fs::File::open(&o.name) else { continue };
        let Ok(md) = f.metadata() else { continue };
        if md.ino() != o.inode {
            continue;
        }
        let len = o.end - o.start;
        // SAFETY: a new read-only shared mapping of the file, placed by the kernel; it
        // replaces nothing.
        let p = unsafe { libc::mmap(core::ptr::null_mut(), len as usize, libc::PROT_READ, libc::MAP_SHARED, std::os::fd::AsRawFd::as_raw_fd(&f), (o.start - o.base) as libc::off_t) };
        if p != libc::MAP_FAILED {
            out.push(Alias { start: o.start, end: o.end, at: p as u64, file: f, offset: o.start - o.base });
        }
    }
    out.sort_unstable_by_key(|a| a.start);
    out
}

/// The parts of `r` whose pages are not private memory of the process: per
/// `/proc/self/pagemap` (bit 63 present, bit 61 a file page or shared), a present page
/// that is neither was written (copied on write) and holds the process's data. Pages
/// not present are the file's when they come in. Nothing if the map cannot be read.
fn file_pages(r: Shared) -> Vec<Shared> {
    use std::os::unix::fs::FileExt;
    // The vDSO's data pages are no file's and no one's private memory (the kernel's).
    if r.special {
        return vec![r];
    }
    let Ok(f) = std::fs::File::open("/proc/self/pagemap") else { return Vec::new() };
    let pages = ((r.end - r.start) / PAGE) as usize;
    let mut buf = vec![0u8; pages * 8];
    if f.read_exact_at(&mut buf, r.start / PAGE * 8).is_err() {
        return Vec::new();
    }
    let mut out: Vec<Shared> = Vec::new();
    for (i, e) in buf.chunks_exact(8).enumerate() {
        let e = u64::from_le_bytes(e.try_into().unwrap_or_default());
        let private = e & (1 << 63) != 0 && e & (1 << 61) == 0;
        if private {
            continue;
        }
        let va = r.start + i as u64 * PAGE;
        match out.last_mut() {
            Some(last) if last.end == va => last.end = va + PAGE,
            _ => out.push(Shared { start: va, end: va + PAGE, ..r }),
        }
    }
    out
}

impl Image {
    /// Takes the snapshot. Dune mode; call once.
    pub(crate) fn take() -> Result<Image> {
        let mut scan = Scan { shared: Vec::new(), writable: Vec::new(), tls: 0 };
        // SAFETY: the callback matches dl_iterate_phdr's type and only reads.
        unsafe { libc::dl_iterate_phdr(Some(each_object), &mut scan as *mut Scan as *mut c_void) };
        // The thread pointer: glibc's TCB starts with a pointer to itself (the x86-64
        // TLS ABI), which is the FS base.
        let fs: u64;
        // SAFETY: reads the first word of this thread's TCB.
        unsafe { core::arch::asm!("mov {0}, fs:0", out(reg) fs, options(nostack, readonly, preserves_flags)) };
        if fs == 0 {
            return Err(Error::Internal("no thread pointer"));
        }
        let mut private = BTreeMap::new();
        // The TLS block's bytes; its pages' other bytes are the program's and stay out.
        let (tls_lo, tls_hi) = tls_block(fs).unwrap_or((fs.saturating_sub(scan.tls + TLS_SURPLUS), fs + TCB_ABOVE));
        let tls = (down(tls_lo), up(tls_hi));
        for (i, &(s, e)) in scan.writable.iter().chain(std::iter::once(&tls)).enumerate() {
            let is_tls = i == scan.writable.len();
            let mut va = s;
            while va < e {
                let mut vec = [0u8; 1];
                // SAFETY: mincore only reports whether the page is mapped (ENOMEM if not).
                if is_tls && unsafe { libc::mincore(va as *mut c_void, PAGE as usize, vec.as_mut_ptr()) } != 0 {
                    va += PAGE;
                    continue;
                }
                let pa = match private.entry(va) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        // SAFETY: `va` is a page of a loaded object's writable segment or
                        // of this thread's TLS block, mapped read-write for the process.
                        let page = unsafe { core::slice::from_raw_parts(va as *const u8, PAGE as usize) };
                        if !is_tls && page.iter().all(|&b| b == 0) {
                            v.insert(None);
                            va += PAGE;
                            continue;
                        }
                        let pa = page::alloc()?;
                        let to = page::pa_to_va(pa).ok_or(Error::Internal("page without an alias"))?;
                        // SAFETY: `to` is the alias of the fresh page; `page` is a whole page.
                        unsafe { core::ptr::copy_nonoverlapping(page.as_ptr(), to, PAGE as usize) };
                        v.insert(Some(pa));
                        pa
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => match *o.get() {
                        Some(pa) => pa,
                        None => {
                            // A zero page of a segment that the TLS block shares.
                            let pa = page::alloc()?;
                            let to = page::pa_to_va(pa).ok_or(Error::Internal("page without an alias"))?;
                            // SAFETY: `va` is mapped read-write (see above); `to` is the
                            // alias of the fresh page.
                            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, to, PAGE as usize) };
                            o.insert(Some(pa));
                            pa
                        }
                    },
                };
                if is_tls && !scan.writable.iter().any(|&(ws, we)| ws <= va && va < we) {
                    // Zero what lies outside the block (a page shared with a writable
                    // segment keeps the segment's bytes: they are the image's anyway).
                    let to = page::pa_to_va(pa).ok_or(Error::Internal("page without an alias"))?;
                    let (keep_lo, keep_hi) = (tls_lo.clamp(va, va + PAGE) - va, tls_hi.clamp(va, va + PAGE) - va);
                    // SAFETY: the alias of a whole page of the page allocator; both
                    // ranges lie within it.
                    unsafe {
                        core::ptr::write_bytes(to, 0, keep_lo as usize);
                        core::ptr::write_bytes(to.add(keep_hi as usize), 0, (PAGE - keep_hi) as usize);
                    }
                }
                va += PAGE;
            }
        }
        // glibc's stack-protector canary (fs:0x28) and pointer guard (fs:0x30) are the
        // master's defences: the copy gets values of its own, so no sthread learns them.
        // SAFETY: reads the pointer guard of this thread's TCB.
        let old_guard: u64 = unsafe { ((fs + 0x30) as *const u64).read() };
        let mut new_guard = 0u64;
        for at in [fs + 0x28, fs + 0x30] {
            if let Some(Some(pa)) = private.get(&down(at)) {
                let to = page::pa_to_va(*pa).ok_or(Error::Internal("page without an alias"))?;
                let mut fresh = [0u8; 8];
                // SAFETY: getrandom writes at most 8 bytes into the local.
                if unsafe { libc::getrandom(fresh.as_mut_ptr().cast(), 8, 0) } != 8 {
                    return Err(Error::Internal("getrandom"));
                }
                // SAFETY: the alias of a whole page of the copy; the word lies within it
                // (fs is 8-aligned, so the word does not cross the page).
                unsafe { core::ptr::write_unaligned(to.add((at - down(at)) as usize).cast::<[u8; 8]>(), fresh) };
                new_guard = u64::from_le_bytes(fresh);
            }
        }
        // Pointers glibc keeps mangled with the guard in copied data (exit handlers,
        // jump buffers) would give the master's guard away to an sthread that knows
        // what one points to: each is mangled again with the copy's guard, so it still
        // means the same inside.
        if new_guard != 0 {
            remangle(&private, old_guard, new_guard)?;
        }
        // The vDSO's data pages ([vvar], [vvar_vclock]): its code (a loaded object,
        // above) reads them. The pages the clocks need are used once here, so that
        // they are in the process's page table (see `Shared::special`).
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        for clock in [libc::CLOCK_REALTIME, libc::CLOCK_MONOTONIC, libc::CLOCK_BOOTTIME] {
            // SAFETY: clock_gettime writes one timespec into the local.
            unsafe { libc::clock_gettime(clock, &mut ts) };
        }
        let maps = maps_now();
        for m in maps.iter().filter(|m| m.name == "[vvar]" || m.name == "[vvar_vclock]") {
            scan.shared.push(Shared { start: m.start, end: m.end, exec: false, special: true });
        }
        let mut shared: Vec<Shared> = scan.shared.into_iter().collect();
        shared.sort_by_key(|r| r.start);
        let origins = read_only_mappings(maps);
        // Only what the map shows as read-only mappings now is shared at all.
        let shared = still_shared(&shared, &origins, &origins);
        // And of it only pages that are still the file's: one the master wrote before
        // `init` (made writable, written, made read-only again) holds its data.
        let shared: Vec<Shared> = shared.into_iter().flat_map(file_pages).collect();
        let aliases = file_aliases(&shared, &origins);
        // Fail closed: a range of a file with no alias (the file gone or replaced) is
        // not shared, since the master's own mapping of it can come to hold the
        // master's data. Ranges of no file (the vDSO) have no other source.
        let of_file = |r: &Shared| origins.iter().any(|o| o.inode != 0 && o.start < r.end && r.start < o.end);
        let shared = shared.into_iter().filter(|r| r.special || !of_file(r) || aliases.iter().any(|a| a.start <= r.start && r.end <= a.end)).collect();
        let _ = ALIASES.set(aliases);
        Ok(Image { shared, origins, private, fs_base: fs })
    }

    /// The read-only ranges as the program's map is now: what is still the mapping it
    /// was at `init`.
    pub(crate) fn current_shared(&self) -> Vec<Shared> {
        still_shared(&self.shared, &self.origins, &read_only_mappings(maps_now()))
    }

    /// The read-only ranges after changes of the map, from `previous` (the ranges shared
    /// until now): they only shrink. A range is shared only while the map still shows
    /// the snapshot's mapping there ([`Image::current_shared`]), and a page any change
    /// touched after `init` (`touched`) is never shared again: a page made writable,
    /// written and made read-only again holds the master's data, not the file's. When
    /// the history of changes was lost (`complete` false), each page is asked instead:
    /// one that became private memory (written: anonymous in `/proc/self/pagemap`) is
    /// left out.
    pub(crate) fn narrowed(&self, previous: &[Shared], touched: &[(u64, u64)], complete: bool) -> Vec<Shared> {
        let mut out = Vec::new();
        for c in self.current_shared() {
            for p in previous.iter().filter(|p| p.start < c.end && c.start < p.end) {
                out.push(Shared { start: c.start.max(p.start), end: c.end.min(p.end), ..c });
            }
        }
        for &(s, e) in touched {
            let (s, e) = (down(s), up(e));
            out = out
                .into_iter()
                .flat_map(|r| {
                    let before = (r.start < s.min(r.end)).then_some(Shared { end: s.min(r.end), ..r });
                    let after = (e.max(r.start) < r.end).then_some(Shared { start: e.max(r.start), ..r });
                    before.into_iter().chain(after)
                })
                .collect();
        }
        if !complete {
            out = out.into_iter().flat_map(file_pages).collect();
        }
        out.sort_by_key(|r| r.start);
        out
    }

    /// Whether shared page `va` lies past the end of its file now (the file was cut
    /// since it was mapped): reading it, even from ring 0, raises SIGBUS and ends the
    /// process. Pages of no file are never past an end.
    pub(crate) fn past_eof(&self, va: u64) -> bool {
        let Some(a) = alias_at(va) else { return false };
        match a.file.metadata() {
            Ok(md) => a.offset + (down(va) - a.start) >= up(md.len()),
            Err(_) => true,
        }
    }

    /// Whether `[start, end)` touches a read-only range of the snapshot.
    pub(crate) fn touches_shared(&self, start: u64, end: u64) -> bool {
        self.shared.iter().any(|r| r.start < end && start < r.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(start: u64, end: u64, off: u64, inode: u64, name: &str) -> Origin {
        Origin { start, end, base: start.wrapping_sub(off), dev: "08:01".into(), inode, name: name.into() }
    }

    #[test]
    fn shared_ranges_follow_the_mapping_they_came_from() {
        let shared = [Shared { start: 0x1000, end: 0x5000, exec: true, special: false }];
        let origins = [o(0x1000, 0x5000, 0, 7, "/lib/a.so")];
        // Unchanged.
        assert_eq!(still_shared(&shared, &origins, &origins).len(), 1);
        // Unloaded: nothing shared; something else there: nothing either.
        assert!(still_shared(&shared, &origins, &[]).is_empty());
        assert!(still_shared(&shared, &origins, &[o(0x1000, 0x5000, 0, 9, "/lib/b.so")]).is_empty());
        // The same file at another offset is another mapping.
        assert!(still_shared(&shared, &origins, &[o(0x1000, 0x5000, 0x1000, 7, "/lib/a.so")]).is_empty());
        // Split by mprotect: the read-only pieces stay.
        let now = [o(0x1000, 0x2000, 0, 7, "/lib/a.so"), o(0x3000, 0x5000, 0x2000, 7, "/lib/a.so")];
        let r = still_shared(&shared, &origins, &now);
        assert_eq!(r.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(), [(0x1000, 0x2000), (0x3000, 0x5000)]);
        assert_eq!(shared_in(&r, 0x2800).map(|r| r.start), None);
        assert_eq!(shared_in(&r, 0x4fff).map(|r| r.start), Some(0x3000));
    }
}
