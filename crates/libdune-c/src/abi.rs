//! Values and layouts the C header shares with this crate that have no counterpart in
//! the runtime's own API. The rest (`PERM_*`, `PTE_*`, the trap frame) come from
//! `libdune` and `dune-x86` directly; `header_check` compares all of them with the
//! header.

use std::ffi::{c_char, c_int};

/// `dune_vm_lookup`'s `create`: build nothing.
pub const CREATE_NONE: c_int = 0;
/// Build down to the 4 KiB entry.
pub const CREATE_NORMAL: c_int = 1;
/// Build down to the 2 MiB entry.
pub const CREATE_BIG: c_int = 2;
/// Build down to the 1 GiB entry.
pub const CREATE_BIG_1GB: c_int = 3;

/// Signal `sig` is reported as vector `DUNE_SIGNAL_INTR_BASE + sig` (the original's
/// `kern/dune.h` value).
pub const DUNE_SIGNAL_INTR_BASE: c_int = 200;

/// `PERM_NONE`: no access.
pub const PERM_NONE: u64 = 0;

/// `PTE_USR1`..`PTE_USR3`: page-table bits for the program's own use (libdune's
/// `mmu-x86.h`), set by `PERM_USR1`..`PERM_USR3`. They lie in bits 62:59, a
/// protection key only with CR4.PKE, which the runtime leaves clear; the runtime
/// reads none of them.
pub use libdune::vm::{PTE_USR1, PTE_USR2, PTE_USR3};

/// `T_SYSCALL`: the original's spare system-call vector (`cpu-x86.h`); unused, as
/// there: ring-3 system calls arrive through SYSCALL.
pub const T_SYSCALL: u64 = 48;

/// `struct Fpregs` of `mmu-x86.h`: the 512-byte FXSAVE area (Intel SDM Vol. 1
/// section 10.5.1, Table 10-2).
#[repr(C)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct Fpregs {
    pub cwd: u16,
    pub swd: u16,
    pub twd: u16,
    pub fop: u16,
    pub rip: u64,
    pub rdp: u64,
    pub mxcsr: u32,
    pub mxcsr_mask: u32,
    pub st_space: [u32; 32],
    pub xmm_space: [u32; 64],
    pub padding: [u32; 24],
}

const _: () = assert!(size_of::<Fpregs>() == 512);
const _: () = assert!(core::mem::offset_of!(Fpregs, mxcsr) == 24 && core::mem::offset_of!(Fpregs, st_space) == 32);
const _: () = assert!(core::mem::offset_of!(Fpregs, xmm_space) == 160);

/// `struct dune_procmap_entry::type` values, as libdune's `procmap.c`.
pub mod procmap_type {
    /// A bracketed name this version does not know.
    pub const UNKNOWN: i32 = 0;
    /// A file mapping.
    pub const FILE: i32 = 1;
    /// Anonymous memory (no path).
    pub const ANONYMOUS: i32 = 2;
    /// `[heap]`.
    pub const HEAP: i32 = 3;
    /// `[stack]` (and `[stack:tid]`).
    pub const STACK: i32 = 4;
    /// `[vsyscall]`.
    pub const VSYSCALL: i32 = 5;
    /// `[vdso]`.
    pub const VDSO: i32 = 6;
    /// `[vvar]`.
    pub const VVAR: i32 = 7;
}

/// `struct dune_procmap_entry`: one line of `/proc/self/maps`.
#[repr(C)]
#[derive(Debug)]
pub struct ProcmapEntry {
    /// First address.
    pub begin: usize,
    /// One past the last address.
    pub end: usize,
    /// Offset in the file.
    pub offset: u64,
    /// Readable.
    pub r: bool,
    /// Writable.
    pub w: bool,
    /// Executable.
    pub x: bool,
    /// Private (copy on write) rather than shared.
    pub p: bool,
    /// NUL-terminated path, `""` for anonymous memory; valid during the callback.
    pub path: *mut c_char,
    /// One of [`procmap_type`].
    pub r#type: c_int,
}

/// The page-table levels `dune_vm_lookup` stops at for each `create`.
pub fn create_of(create: c_int) -> Option<dune_x86::paging::Create> {
    use dune_x86::paging::Create;
    Some(match create {
        CREATE_NONE => Create::None,
        CREATE_NORMAL => Create::Normal,
        CREATE_BIG => Create::Big,
        CREATE_BIG_1GB => Create::Big1G,
        _ => return None,
    })
}
