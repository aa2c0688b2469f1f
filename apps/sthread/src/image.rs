//! The pristine image every sthread starts from, taken once by [`crate::init`].
//!
//! - **Read-only memory** of every loaded object (code, rodata, the vDSO): shared,
//!   mapped for ring 3 on first use, never writable.
//! - **Writable globals** (`.data`, `.bss`, `.got` of every object) and the static
//!   TLS block and thread control block of the thread that called `init`: copied
//!   into pages of the page allocator at `init`. Each compartment gets its own copy
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
}

/// The snapshot.
pub(crate) struct Image {
    /// Read-only ranges, sorted.
    pub shared: Vec<Shared>,
    /// Writable pages: VA -> guest-physical address of the pristine copy.
    pub private: BTreeMap<u64, u64>,
    /// FS base ring 3 runs with: the `init` thread's, over its private TLS pages.
    pub fs_base: u64,
}

fn down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

fn up(a: u64) -> u64 {
    (a + PAGE - 1) & !(PAGE - 1)
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
                    scan.shared.push(Shared { start: s, end: e, exec: ph.p_flags & libc::PF_X != 0 });
                }
            }
            libc::PT_TLS => scan.tls += ph.p_memsz + ph.p_align.max(16),
            _ => {}
        }
    }
    0
}

/// glibc's `struct pthread` (the TCB FS points at) fits in this much above FS.
const TCB_ABOVE: u64 = 2 * PAGE;
/// Room below FS for the static TLS surplus glibc keeps for `dlopen`ed modules.
const TLS_SURPLUS: u64 = 2 * PAGE;

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
        let tls = (down(fs.saturating_sub(scan.tls + TLS_SURPLUS)), up(fs + TCB_ABOVE));
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
                if let std::collections::btree_map::Entry::Vacant(v) = private.entry(va) {
                    let pa = page::alloc()?;
                    let to = page::pa_to_va(pa).ok_or(Error::Internal("page without an alias"))?;
                    // SAFETY: `va` is a page of a loaded object's writable segment or of
                    // this thread's TLS block, mapped read-write for the process; `to`
                    // is the alias of the fresh page.
                    unsafe { core::ptr::copy_nonoverlapping(va as *const u8, to, PAGE as usize) };
                    v.insert(pa);
                }
                va += PAGE;
            }
        }
        // The vDSO's data pages ([vvar], [vvar_vclock]): its code (a loaded object,
        // above) reads them.
        if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
            for l in maps.lines().filter(|l| l.ends_with("[vvar]") || l.ends_with("[vvar_vclock]")) {
                let range = l.split_whitespace().next().unwrap_or("");
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                        scan.shared.push(Shared { start: a, end: b, exec: false });
                    }
                }
            }
        }
        let mut shared: Vec<Shared> = scan.shared.into_iter().collect();
        shared.sort_by_key(|r| r.start);
        Ok(Image { shared, private, fs_base: fs })
    }

    /// The read-only range holding `va`, if any (never one with a private page).
    pub(crate) fn shared_at(&self, va: u64) -> Option<Shared> {
        let p = down(va);
        if self.private.contains_key(&p) {
            return None;
        }
        let i = self.shared.partition_point(|r| r.end <= p);
        self.shared.get(i).copied().filter(|r| r.start <= p)
    }
}
