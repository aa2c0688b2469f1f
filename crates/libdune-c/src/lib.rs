//! The original libdune C interface (`include/libdune/*.h`) over the Rust runtime.
//!
//! Built into `libdune.a` and `libdune.so` by `crates/dune-clib` (the project's one C
//! library, with the other components' C APIs), so a C program written for Dune is
//! rebuilt unchanged, from an installation (`scripts/install --prefix DIR`):
//!
//! ```sh
//! cc $(pkg-config --cflags libdune) prog.c $(pkg-config --libs libdune)
//! ```
//!
//! or from the build tree:
//!
//! ```sh
//! cc -I include prog.c -L target/debug -l:libdune.a -lpthread -ldl -lm
//! ```
//!
//! Each module is one concern of the original library, exporting its functions with
//! their C names: [`entry`] (`dune_init`, `dune_enter`, the `pgroot` global),
//! [`layout`] (`phys_limit`, `mmap_base`, `stack_base`), [`trap`] (handler
//! registration, ring 3, signals, `dune_pop_trap_frame`, `dune_dump_trap_frame`),
//! [`vm`] (page tables, `load_cr3`, the copy-on-write fault handler), [`page`] (the
//! page allocator and `struct page`), [`apic`] (x2APIC IPIs), [`elf`] (the ELF
//! helpers), [`procmap`], [`util`] (`dune_printf`, `dune_mmap`, the ring-3 FS base,
//! ...). [`abi`] holds the constants the headers share with Rust; `header_check` (a
//! unit test) compiles a C program with the headers and compares every macro and
//! offset.
//!
//! Conventions at the boundary:
//! - Errors are `-errno` ([`errno_of`] maps the runtime's errors), as in libdune.
//! - No panic crosses into C: exported functions that run non-trivial Rust code go
//!   through `guard`; trap-path code (trampolines) is written not to panic.
//! - C callbacks are kept as function addresses in atomics and called from Rust
//!   trampolines registered with the runtime (whose handlers are plain `fn`s).

pub mod abi;
pub mod apic;
pub mod elf;
pub mod entry;
pub mod layout;
pub mod page;
pub mod procmap;
pub mod trap;
pub mod util;
pub mod vm;

#[cfg(test)]
mod header_check;

use std::ffi::c_int;

/// Runs `f`, turning a panic into `fallback` (the panic message is printed by the hook).
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The errno that best describes a runtime error (positive).
pub fn errno_of(e: &libdune::Error) -> c_int {
    use dune_x86::paging::Error as Pt;
    use libdune::Error as E;
    match e {
        E::NoKvm => libc::ENOENT,
        E::KvmAccess => libc::EACCES,
        E::KvmOpen(io) => io.raw_os_error().unwrap_or(libc::EIO),
        E::MissingCapability(_) => libc::ENOSYS,
        E::EmulatedRing0(_) => libc::EOPNOTSUPP,
        E::Kvm { source, .. } => source.errno(),
        E::Os { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        E::TooManyVcpus(_) => libc::EAGAIN,
        E::MemslotBudget { .. } | E::GuestPhysExhausted(_) | E::TableFull(_) => libc::ENOMEM,
        E::PageTable(Pt::OutOfTables) => libc::ENOMEM,
        E::PageTable(Pt::NotMapped(_)) => libc::ENOENT,
        E::PageTable(_) => libc::EINVAL,
        E::ProcMaps(_) => libc::EIO,
        E::InvalidOption { .. } => libc::EINVAL,
    }
}

/// `-errno` of `e`, as an `int` result.
pub(crate) fn neg(e: &libdune::Error) -> c_int {
    -errno_of(e)
}

/// A `core::fmt::Write` sink that formats into a fixed stack buffer and writes it to
/// a file descriptor with `write(2)`: no allocation and no stdio lock, so it is usable
/// in trap handlers, and its output is not reordered against C's `dune_printf`.
pub(crate) struct RawOut {
    fd: c_int,
    buf: [u8; 512],
    len: usize,
}

impl RawOut {
    pub(crate) fn new(fd: c_int) -> Self {
        RawOut { fd, buf: [0; 512], len: 0 }
    }

    /// Writes what is buffered.
    pub(crate) fn flush(&mut self) {
        util::write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl core::fmt::Write for RawOut {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl Drop for RawOut {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Prints `dune: <what>: <error>` on standard error (the original printed its
/// failures too; an errno alone loses the reason, e.g. an emulated ring 0).
pub(crate) fn report(what: &str, e: &libdune::Error) {
    use core::fmt::Write;
    let mut out = RawOut::new(2);
    let _ = writeln!(out, "dune: {what}: {e}");
}
