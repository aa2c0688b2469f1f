//! Where the dirty pages come from: one trait, one implementation per source.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::heap::BLOCK;

/// Which pages of the heap were written since the last `arm`.
pub trait DirtySource: Send {
    /// Its name (`DUNE_GC_DIRTY`).
    fn name(&self) -> &'static str;
    /// Starts tracking `[base, base+len)` afresh: every later write is reported by
    /// the next `harvest`.
    fn arm(&mut self, base: usize, len: usize) -> Result<(), String>;
    /// Pages written since `arm` (one bool per page of `[base, base+len)`).
    fn harvest(&mut self, base: usize, len: usize) -> Result<Vec<bool>, String>;
    /// Whether `harvest` also starts tracking afresh (reading and clearing are one
    /// step), so no `arm` is needed after a collection that harvested.
    fn harvest_rearms(&self) -> bool {
        false
    }
}

/// No tracking: every collection is a full one.
pub struct NoneSource;

impl DirtySource for NoneSource {
    fn name(&self) -> &'static str {
        "none"
    }
    fn arm(&mut self, _: usize, _: usize) -> Result<(), String> {
        Ok(())
    }
    fn harvest(&mut self, _: usize, len: usize) -> Result<Vec<bool>, String> {
        Ok(vec![true; len / BLOCK])
    }
}

/// Write faults any source took so far (one source runs per process).
pub(crate) fn faults_now() -> u64 {
    MPROTECT.faults.load(Ordering::Relaxed) + DUNE_FAULT.faults.load(Ordering::Relaxed)
}

/// What a fault-driven source shares with its fault handler: the armed range, a
/// bitmap with one bit per page of the reservation (mapped once, never freed, so a
/// handler can always use it), and the count of faults.
struct FaultPages {
    base: AtomicUsize,
    len: AtomicUsize,
    bits: AtomicUsize,
    bitmap_len: AtomicUsize,
    faults: AtomicU64,
}

impl FaultPages {
    const fn new() -> FaultPages {
        FaultPages { base: AtomicUsize::new(0), len: AtomicUsize::new(0), bits: AtomicUsize::new(0), bitmap_len: AtomicUsize::new(0), faults: AtomicU64::new(0) }
    }

    /// Maps the bitmap for a reservation of `reserve` bytes (once).
    fn map(&self, reserve: usize) -> Result<(), String> {
        if self.bits.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let len = (reserve / BLOCK).div_ceil(64) * 8;
        // SAFETY: a fresh anonymous mapping for the bitmap.
        let p = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err("mapping the dirty bitmap".into());
        }
        self.bitmap_len.store(len, Ordering::Release);
        self.bits.store(p as usize, Ordering::Release);
        Ok(())
    }

    /// Clears the bitmap and arms `[base, base+len)`.
    fn arm(&self, base: usize, len: usize) {
        // SAFETY: clears the bitmap `map` mapped, of `bitmap_len` bytes.
        unsafe { core::ptr::write_bytes(self.bits.load(Ordering::Acquire) as *mut u8, 0, self.bitmap_len.load(Ordering::Acquire)) };
        self.base.store(base, Ordering::Release);
        self.len.store(len, Ordering::Release);
    }

    /// From a fault handler: records pages `[first, first+n)` (clipped to the armed
    /// range) if `addr` is in the armed range; false if it is not.
    fn record(&self, addr: usize, first: usize, n: usize) -> bool {
        let (base, len, bits) = (self.base.load(Ordering::Acquire), self.len.load(Ordering::Acquire), self.bits.load(Ordering::Acquire));
        if bits == 0 || addr < base || addr >= base + len {
            return false;
        }
        for p in first..(first + n).min(len / BLOCK) {
            // SAFETY: `bits` is the mapped bitmap, one bit per page of the reservation.
            let word = unsafe { &*(bits as *const AtomicU64).add(p / 64) };
            word.fetch_or(1 << (p % 64), Ordering::AcqRel);
        }
        self.faults.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// One bool per page of `len` bytes: recorded, or committed after the arm (never
    /// protected, so dirty for all anyone knows).
    fn harvest(&self, len: usize) -> Vec<bool> {
        let armed = self.len.load(Ordering::Acquire);
        let bits = self.bits.load(Ordering::Acquire) as *const AtomicU64;
        (0..len / BLOCK)
            .map(|p| {
                // SAFETY: p is within the bitmap (one bit per reserved page).
                p * BLOCK >= armed || unsafe { &*bits.add(p / 64) }.load(Ordering::Acquire) & (1 << (p % 64)) != 0
            })
            .collect()
    }
}

// ---- mprotect + SIGSEGV ----

static MPROTECT: FaultPages = FaultPages::new();

extern "C" fn on_segv(sig: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = addr.wrapping_sub(MPROTECT.base.load(Ordering::Acquire)) / BLOCK;
    if MPROTECT.record(addr, page, 1) {
        // SAFETY: unprotects one page of the heap (async-signal-safe).
        if unsafe { libc::mprotect((addr & !(BLOCK - 1)) as *mut _, BLOCK, libc::PROT_READ | libc::PROT_WRITE) } == 0 {
            return;
        }
    }
    // Not ours: the default action, on return the access repeats and kills.
    // SAFETY: resets one signal's disposition.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Write protection with `mprotect`, write faults caught with SIGSEGV (Boehm's
/// MPROTECT_VDB; in Dune mode, the paper's "Dune" row).
pub struct MprotectSource;

impl MprotectSource {
    /// Installs the handler and the bitmap for a heap reservation of `reserve` bytes.
    pub fn new(reserve: usize) -> Result<MprotectSource, String> {
        MPROTECT.map(reserve)?;
        // SAFETY: installs a SA_SIGINFO handler; the struct is zeroed first.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_segv as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            if libc::sigaction(libc::SIGSEGV, &sa, core::ptr::null_mut()) != 0 {
                return Err("installing the SIGSEGV handler".into());
            }
        }
        Ok(MprotectSource)
    }
}

impl DirtySource for MprotectSource {
    fn name(&self) -> &'static str {
        "mprotect"
    }
    fn arm(&mut self, base: usize, len: usize) -> Result<(), String> {
        MPROTECT.arm(base, len);
        // SAFETY: protects the collector's own committed heap.
        if len > 0 && unsafe { libc::mprotect(base as *mut _, len, libc::PROT_READ) } != 0 {
            return Err("mprotect".into());
        }
        Ok(())
    }
    fn harvest(&mut self, _base: usize, len: usize) -> Result<Vec<bool>, String> {
        Ok(MPROTECT.harvest(len))
    }
}

// ---- Linux soft-dirty ----

/// `/proc/self/clear_refs` ("4") and pagemap bit 55 (Boehm's SOFT_VDB, its default
/// since 8.2).
pub struct SoftDirtySource;

impl SoftDirtySource {
    /// The source, if this kernel tracks soft-dirty bits (CONFIG_MEM_SOFT_DIRTY):
    /// probed by clearing, writing a page and reading its bit back.
    pub fn new() -> Result<SoftDirtySource, String> {
        let mut s = SoftDirtySource;
        let page = Box::new([0u8; 2 * BLOCK]);
        let p = (page.as_ptr() as usize + BLOCK - 1) & !(BLOCK - 1);
        s.arm(p, BLOCK)?;
        // SAFETY: a byte of our own buffer.
        unsafe { (p as *mut u8).write_volatile(1) };
        if s.harvest(p, BLOCK)?.first() != Some(&true) {
            return Err("soft-dirty: this kernel does not track soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)".into());
        }
        Ok(s)
    }
}

impl DirtySource for SoftDirtySource {
    fn name(&self) -> &'static str {
        "soft-dirty"
    }
    fn arm(&mut self, _: usize, _: usize) -> Result<(), String> {
        std::fs::write("/proc/self/clear_refs", "4").map_err(|e| format!("clearing soft-dirty bits: {e}"))
    }
    fn harvest(&mut self, base: usize, len: usize) -> Result<Vec<bool>, String> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
        let pages = len / BLOCK;
        let mut buf = vec![0u8; pages * 8];
        f.read_exact_at(&mut buf, (base / BLOCK * 8) as u64).map_err(|e| format!("reading pagemap: {e}"))?;
        Ok(buf.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) & (1 << 55) != 0).collect())
    }
}

// ---- Dune: the guest page table's dirty bits ----

/// `Split(n)`: the first `n` bytes of the heap are split already.
#[derive(Default)]
struct Split(usize);

impl Split {
    /// Splits whatever of `[base, base+len)` is not split yet.
    fn extend(&mut self, root: libdune::vm::Root, base: usize, len: usize) -> Result<(), String> {
        if len > self.0 {
            split_to_pages(root, base, self.0, len)?;
            self.0 = len;
        }
        Ok(())
    }
}

/// Splits the guest page table's large entries over `[base+from, base+to)` into 4 KiB
/// ones, so each D and W bit speaks for one heap page, not 512 (a 2 MiB-aligned heap
/// is mapped with 2 MiB entries; measured in the lane, the coarse bits made minor
/// collections rescan most of GCBench's old objects). Each split copies the large
/// entry's flags, D included, to all its pages: conservative, never a lost write.
/// Protecting one page and giving its write permission back is what splits it.
fn split_to_pages(root: libdune::vm::Root, base: usize, from: usize, to: usize) -> Result<(), String> {
    use libdune::vm::{PERM_R, PERM_W};
    const HUGE: usize = 2 << 20;
    let mut at = (base + from) & !(HUGE - 1);
    while at < base + to {
        if let Ok((_, dune_x86::paging::PageSize::Size2M | dune_x86::paging::PageSize::Size1G)) = libdune::vm::lookup(root, at.max(base) as u64, dune_x86::paging::Create::None) {
            let page = at.max(base) as u64;
            libdune::vm::mprotect(root, page, BLOCK as u64, PERM_R).map_err(|e| e.to_string())?;
            libdune::vm::mprotect(root, page, BLOCK as u64, PERM_R | PERM_W).map_err(|e| e.to_string())?;
        }
        at += HUGE;
    }
    Ok(())
}

/// Reads and clears the D bits of the heap's entries in the process's guest page
/// table, then drops this vCPU's cached translations, so the next write to any of
/// those pages sets D again (a TLB entry that still says "dirty" would let writes go
/// unrecorded). Single-threaded for now: other vCPUs would need a shootdown.
pub struct DuneDirtySource {
    flush: bool,
    split: Split,
}

impl DuneDirtySource {
    /// The source, in Dune mode.
    pub fn new() -> Result<DuneDirtySource, String> {
        if !libdune::in_dune_mode() {
            return Err("dune-dirty: not in Dune mode (run the program with `dune run`, or enter first)".into());
        }
        Ok(DuneDirtySource { flush: true, split: Split::default() })
    }

    /// The same source without its TLB invalidation: wrong on purpose, for the test
    /// that must catch exactly that mistake.
    #[doc(hidden)]
    pub fn without_flush_for_test() -> Result<DuneDirtySource, String> {
        let mut s = Self::new()?;
        s.flush = false;
        Ok(s)
    }

    /// Clears D over the range, collecting the pages that had it.
    fn sweep_bits(&mut self, base: usize, len: usize, mut out: Option<&mut Vec<bool>>) -> Result<(), String> {
        use core::ops::ControlFlow;
        use dune_x86::paging::{PageSize, PTE_D};
        let root = libdune::vm::pgroot().map_err(|e| e.to_string())?;
        self.split.extend(root, base, len)?;
        let _walked = libdune::vm::walk(root, base as u64, (base + len) as u64, |va, pte, size| {
            let old = pte.clear_bits(PTE_D);
            if old.contains(PTE_D) {
                if let Some(out) = out.as_deref_mut() {
                    let n = match size {
                        PageSize::Size4K => 1,
                        PageSize::Size2M => 512,
                        PageSize::Size1G => 512 * 512,
                    };
                    let first = (va as usize).saturating_sub(base) / BLOCK;
                    for p in first..(first + n).min(out.len()) {
                        out[p] = true;
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        })
        .map_err(|e| e.to_string())?;
        // The clears above are in memory; cached translations still say "dirty".
        if self.flush {
            libdune::vm::flush_tlb();
        }
        Ok(())
    }
}

impl DirtySource for DuneDirtySource {
    fn name(&self) -> &'static str {
        "dune-dirty"
    }
    fn harvest_rearms(&self) -> bool {
        true
    }
    fn arm(&mut self, base: usize, len: usize) -> Result<(), String> {
        self.sweep_bits(base, len, None)
    }
    fn harvest(&mut self, base: usize, len: usize) -> Result<Vec<bool>, String> {
        let mut out = vec![false; len / BLOCK];
        self.sweep_bits(base, len, Some(&mut out))?;
        Ok(out)
    }
}

// ---- Dune: guest PTE write protection, a ring-0 fault handler, invlpg ----

static DUNE_FAULT: FaultPages = FaultPages::new();
static DF_ROOT: AtomicU64 = AtomicU64::new(0);

/// The ring-0 page-fault handler: a write to a write-protected heap page records the
/// page, makes its entry writable again and drops that one translation. No exit.
fn on_write_fault(addr: u64, err: u64, _tf: &mut libdune::trap::TrapFrame) -> bool {
    use dune_x86::paging::{Create, PageSize, PTE_W};
    // A write (bit 1) to a present page (bit 0).
    if err & 3 != 3 {
        return false;
    }
    let Ok((pte, size)) = libdune::vm::lookup(libdune::vm::Root(DF_ROOT.load(Ordering::Acquire)), addr, Create::None) else { return false };
    let pages = match size {
        PageSize::Size4K => 1,
        PageSize::Size2M => 512,
        PageSize::Size1G => 512 * 512,
    };
    let a = addr as usize;
    let first = (a & !(pages * BLOCK - 1)).saturating_sub(DUNE_FAULT.base.load(Ordering::Acquire)) / BLOCK;
    if !DUNE_FAULT.record(a, first, pages) {
        return false;
    }
    pte.set_bits(PTE_W);
    libdune::vm::flush_tlb_one(addr);
    true
}

/// Write-protects the heap's entries in the guest page table; the first write to
/// each page faults in ring 0 (the paper's "Dune TLB" row).
pub struct DuneFaultSource {
    split: Split,
}

impl DuneFaultSource {
    /// Installs the handler (it is the process's only page-fault handler).
    pub fn new(reserve: usize) -> Result<DuneFaultSource, String> {
        if !libdune::in_dune_mode() {
            return Err("dune-fault: not in Dune mode".into());
        }
        DUNE_FAULT.map(reserve)?;
        DF_ROOT.store(libdune::vm::pgroot().map_err(|e| e.to_string())?.0, Ordering::Release);
        libdune::trap::register_pgflt_handler(on_write_fault);
        Ok(DuneFaultSource { split: Split::default() })
    }
}

impl DirtySource for DuneFaultSource {
    fn name(&self) -> &'static str {
        "dune-fault"
    }
    fn arm(&mut self, base: usize, len: usize) -> Result<(), String> {
        use core::ops::ControlFlow;
        use dune_x86::paging::PTE_W;
        DUNE_FAULT.arm(base, len);
        let root = libdune::vm::Root(DF_ROOT.load(Ordering::Acquire));
        self.split.extend(root, base, len)?;
        let _walked = libdune::vm::walk(root, base as u64, (base + len) as u64, |_, pte, _| {
            pte.clear_bits(PTE_W);
            ControlFlow::<()>::Continue(())
        })
        .map_err(|e| e.to_string())?;
        libdune::vm::flush_tlb();
        Ok(())
    }
    fn harvest(&mut self, _base: usize, len: usize) -> Result<Vec<bool>, String> {
        Ok(DUNE_FAULT.harvest(len))
    }
}

// ---- userfaultfd write-protect, async mode, read with PAGEMAP_SCAN (Linux 6.7+) ----

const UFFD_USER_MODE_ONLY: i32 = 1;
const UFFD_API: u64 = 0xaa;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
/// `_IOWR(0xaa, 0x3f, struct uffdio_api)`, `_IOWR(0xaa, 0x00, struct uffdio_register)`.
const UFFDIO_API_IOCTL: u64 = 0xc018_aa3f;
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = 0xc060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// userfaultfd write protection in asynchronous mode: the kernel resolves each
/// first write itself (no fault reaches the process), and `PAGEMAP_SCAN` reads
/// the written pages and write-protects them again in one call.
pub struct UffdSource {
    uffd: i32,
    pagemap: i32,
}

impl UffdSource {
    /// Registers `[base, base+reserve)` (the heap reservation). A kernel without
    /// asynchronous write protection or `PAGEMAP_SCAN` is refused with the reason.
    pub fn new(base: usize, reserve: usize) -> Result<UffdSource, String> {
        let os = |what: &str| format!("uffd: {what}: {}", std::io::Error::last_os_error());
        // SAFETY: the userfaultfd system call takes flags only.
        let uffd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY) } as i32;
        if uffd < 0 {
            return Err(os("userfaultfd (vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE, or no CONFIG_USERFAULTFD)"));
        }
        let close = |e: String| {
            // SAFETY: our own descriptor.
            unsafe { libc::close(uffd) };
            e
        };
        let mut api = UffdioApi { api: UFFD_API, features: UFFD_FEATURE_WP_ASYNC, ioctls: 0 };
        // SAFETY: UFFDIO_API with a valid struct.
        if unsafe { libc::ioctl(uffd, UFFDIO_API_IOCTL as _, &mut api) } != 0 {
            return Err(close(os("this kernel has no asynchronous write protection (UFFD_FEATURE_WP_ASYNC, Linux 6.7+)")));
        }
        let mut reg = UffdioRegister { start: base as u64, len: reserve as u64, mode: UFFDIO_REGISTER_MODE_WP, ioctls: 0 };
        // SAFETY: UFFDIO_REGISTER over the heap reservation, with a valid struct.
        if unsafe { libc::ioctl(uffd, UFFDIO_REGISTER as _, &mut reg) } != 0 {
            return Err(close(os("registering the heap for write protection")));
        }
        // SAFETY: opens a proc file.
        let pagemap = unsafe { libc::open(c"/proc/self/pagemap".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if pagemap < 0 {
            return Err(close(os("/proc/self/pagemap")));
        }
        let s = UffdSource { uffd, pagemap };
        // Probe PAGEMAP_SCAN on an empty range.
        s.scan(base, 0, &mut |_, _| {}).map_err(|e| format!("uffd: this kernel has no PAGEMAP_SCAN (Linux 6.7+): {e}"))?;
        Ok(s)
    }

    /// Calls `f(start, end)` for each written range of `[base, base+len)` and
    /// write-protects it again.
    fn scan(&self, base: usize, len: usize, f: &mut dyn FnMut(usize, usize)) -> Result<(), String> {
        let mut regions = [PageRegion::default(); 256];
        let (mut at, end) = (base as u64, (base + len) as u64);
        loop {
            let mut arg = PmScanArg {
                size: core::mem::size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: at,
                end,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                category_mask: PAGE_IS_WRITTEN,
                return_mask: PAGE_IS_WRITTEN,
                ..PmScanArg::default()
            };
            // SAFETY: PAGEMAP_SCAN with a valid argument and output vector.
            let n = unsafe { libc::ioctl(self.pagemap, PAGEMAP_SCAN as _, &mut arg) };
            if n < 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
            for r in &regions[..n as usize] {
                f(r.start as usize, r.end as usize);
            }
            if arg.walk_end >= end || arg.walk_end <= at {
                return Ok(());
            }
            at = arg.walk_end;
        }
    }
}

impl Drop for UffdSource {
    fn drop(&mut self) {
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(self.pagemap);
            libc::close(self.uffd);
        }
    }
}

impl DirtySource for UffdSource {
    fn name(&self) -> &'static str {
        "uffd"
    }
    fn harvest_rearms(&self) -> bool {
        true
    }
    fn arm(&mut self, base: usize, len: usize) -> Result<(), String> {
        self.scan(base, len, &mut |_, _| {})
    }
    fn harvest(&mut self, base: usize, len: usize) -> Result<Vec<bool>, String> {
        let mut out = vec![false; len / BLOCK];
        self.scan(base, len, &mut |s, e| {
            for p in (s - base) / BLOCK..((e - base) / BLOCK).min(out.len()) {
                out[p] = true;
            }
        })?;
        Ok(out)
    }
}
