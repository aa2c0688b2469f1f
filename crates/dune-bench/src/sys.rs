//! Small safe wrappers over the system calls the rows share: anonymous mappings,
//! protection, residency, signal handlers.

use std::io;
use std::ptr;

use crate::measure::RowError;

/// 4 KiB.
pub const PAGE: usize = 4096;

/// An anonymous private read-write mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a Mapping is an address range; the memory behind it is plain bytes that any
// thread may access (rows synchronize their own use).
unsafe impl Send for Mapping {}
// SAFETY: as above; the methods taking &self only do volatile accesses and syscalls.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `pages` pages, not populated, never backed by transparent huge pages (so
    /// every first touch is a 4 KiB fault and the TLB holds 4 KiB entries).
    pub fn anon(pages: usize) -> Result<Self, RowError> {
        let len = pages * PAGE;
        // SAFETY: an anonymous mapping at an address of the kernel's choosing touches
        // no existing memory.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RowError::last_os("mmap"));
        }
        let m = Mapping { ptr: p.cast(), len };
        // THP may be compiled out or disabled: then there is nothing to turn off.
        let _ = m.advise(libc::MADV_NOHUGEPAGE);
        Ok(m)
    }

    /// Start address.
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.len / PAGE
    }

    /// Address of byte `offset` of page `i`.
    pub fn at(&self, i: usize, offset: usize) -> *mut u8 {
        assert!(i < self.pages() && offset < PAGE);
        // SAFETY: in bounds of the mapping, checked above.
        unsafe { self.ptr.add(i * PAGE + offset) }
    }

    /// Writes `v` at the start of page `i`. If the page is protected, the access
    /// faults and the row's handler decides what happens.
    #[inline(always)]
    pub fn write(&self, i: usize, v: u64) {
        // SAFETY: the page is in bounds (checked by `at`) and mapped while self lives;
        // it is aligned, and nothing holds a Rust reference to it.
        unsafe { ptr::write_volatile(self.at(i, 0).cast::<u64>(), v) }
    }

    /// Reads the `u64` at the start of page `i`.
    #[inline(always)]
    pub fn read(&self, i: usize) -> u64 {
        // SAFETY: as in `write`.
        unsafe { ptr::read_volatile(self.at(i, 0).cast::<u64>()) }
    }

    /// Writes every page once, so later accesses do not fault for missing memory.
    pub fn populate(&self) {
        for i in 0..self.pages() {
            self.write(i, 0);
        }
    }

    /// `mprotect` of `count` pages from page `first`.
    pub fn protect(&self, first: usize, count: usize, prot: i32) -> Result<(), RowError> {
        if mprotect(self.at(first, 0) as usize, count * PAGE, prot) {
            Ok(())
        } else {
            Err(RowError::last_os("mprotect"))
        }
    }

    /// `madvise` over the whole mapping.
    pub fn advise(&self, advice: i32) -> io::Result<()> {
        // SAFETY: madvise on our own mapping; the advice values used here (NOHUGEPAGE,
        // POPULATE_WRITE) do not discard data.
        if unsafe { libc::madvise(self.ptr.cast(), self.len, advice) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// How many pages are resident (`mincore`).
    pub fn resident_pages(&self) -> Result<usize, RowError> {
        let mut vec = vec![0u8; self.pages()];
        // SAFETY: vec has one byte per page of the mapping, as mincore writes.
        if unsafe { libc::mincore(self.ptr.cast(), self.len, vec.as_mut_ptr()) } != 0 {
            return Err(RowError::last_os("mincore"));
        }
        Ok(vec.iter().filter(|&&b| b & 1 != 0).count())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `anon` and nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `mprotect` by raw address; true on success. Async-signal-safe (one system call),
/// for handlers.
#[inline(always)]
pub fn mprotect(addr: usize, len: usize, prot: i32) -> bool {
    // SAFETY: callers pass page-aligned ranges of mappings the rows own; changing their
    // protection cannot invalidate Rust references (rows hold none into them).
    unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) == 0 }
}

/// A `SA_SIGINFO` handler.
pub type SigHandler = extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);

/// A signal handler installed for as long as the guard lives; the previous
/// disposition comes back on drop.
pub struct HandlerGuard {
    sig: i32,
    old: libc::sigaction,
}

impl HandlerGuard {
    /// Installs `handler` for `sig` with an empty mask and `SA_SIGINFO | SA_NODEFER`
    /// (`SA_NODEFER`: a fault inside the handler is not blocked, so it kills instead of
    /// hanging).
    pub fn install(sig: i32, handler: SigHandler) -> Result<Self, RowError> {
        // SAFETY: sigaction with fully initialized structs; the handler is an extern "C"
        // function that lives for the whole program.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &sa, &mut old) != 0 {
                return Err(RowError::last_os("sigaction"));
            }
            Ok(HandlerGuard { sig, old })
        }
    }
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved by install.
        unsafe { libc::sigaction(self.sig, &self.old, ptr::null_mut()) };
    }
}

/// Puts the default action back for `sig` (from a handler that met a fault it does not
/// own: returning then re-executes the access and the process dies as it would have).
pub fn reset_to_default(sig: i32) {
    // SAFETY: signal() with SIG_DFL is async-signal-safe.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// The fault address of a `SIGSEGV`/`SIGBUS`.
pub fn fault_addr(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers, and si_addr is
    // the field set for memory faults.
    unsafe { (*info).si_addr() as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_faults_in_on_touch() {
        let m = Mapping::anon(8).expect("mmap");
        assert_eq!(m.resident_pages().expect("mincore"), 0);
        m.write(3, 42);
        assert_eq!(m.read(3), 42);
        assert_eq!(m.resident_pages().expect("mincore"), 1);
        m.populate();
        assert_eq!(m.resident_pages().expect("mincore"), 8);
    }
}
