//! A conservative, non-moving mark-sweep garbage collector for C and Rust programs
//! whose dirty pages can come from the guest page table (paper §5.3).
//!
//! Dirty pages come from a [`DirtySource`] chosen at run time (`DUNE_GC_DIRTY` or
//! [`init`]): `none`, `mprotect`, `soft-dirty`, `uffd`, `dune-fault`, `dune-dirty`.
//! Roots are the data and bss segments of every loaded object, the stacks and
//! registers of registered threads, and registered ranges. `capi` is bdwgc's
//! `gc.h` core. See `DESIGN.md`.

#[doc(hidden)]
pub mod bench;
pub mod capi;
#[doc(hidden)]
pub mod check;
mod rust;
mod dirty;
mod heap;
mod threads;

use std::sync::Mutex;

pub use rust::{init_rust, spawn, Gc, GcAllocator};
pub use dirty::{DirtySource, DuneDirtySource, DuneFaultSource, MprotectSource, NoneSource, SoftDirtySource, UffdSource};
use heap::{Heap, RESERVE};

/// Collections a generational collector makes between full ones.
const FULL_EVERY: u32 = 8;
/// Collect when this much was allocated since the last collection (at least).
const MIN_TRIGGER: usize = 4 << 20;
/// ... or a third of the committed heap (bdwgc's free-space divisor is 3), when more.
const TRIGGER_DIVISOR: usize = 3;

struct Collector {
    heap: Heap,
    source: Box<dyn DirtySource>,
    generational: bool,
    minors_since_full: u32,
    /// Live bytes after the last full collection: old garbage that minor
    /// collections keep (sticky marks) beyond twice that forces a full one.
    live_after_full: usize,
    roots: Vec<(usize, usize)>,
    /// Registered finalizers (object start, function, client data).
    finalizers: Vec<Finalizer>,
    /// Finalizers of objects found unreachable, not yet run (their objects and
    /// client data stay alive until they have).
    ready: Vec<Finalizer>,
    stats: Stats,
}

/// `fn(obj, client_data)`, run once after `obj` became unreachable.
pub type FinalizerFn = extern "C" fn(*mut u8, *mut u8);

#[derive(Clone, Copy)]
struct Finalizer {
    obj: usize,
    f: FinalizerFn,
    cd: usize,
}

/// Blocks wholly free for this many full collections in a row go back to the OS.
const RELEASE_AFTER: u8 = 2;

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Collections (`GC_gc_no`).
    pub collections: u64,
    /// Full ones among them.
    pub full: u64,
    /// Bytes ever allocated.
    pub total_bytes: u64,
    /// Committed heap.
    pub heap_bytes: usize,
    /// Live after the last sweep.
    pub live_bytes: usize,
    /// Dirty pages the last minor collection rescanned.
    pub dirty_pages: usize,
    /// Dirty pages all collections rescanned.
    pub dirty_pages_total: u64,
    /// Write faults the source took so far (mprotect: signals; dune-fault: ring-0
    /// faults); read live by [`stats`].
    pub faults: u64,
    /// Heap memory returned to the OS (not counted in `heap_bytes`).
    pub released_bytes: usize,
    /// Finalizers run.
    pub finalized: u64,
}

static GC: Mutex<Option<Collector>> = Mutex::new(None);
/// The counters as of the last collection, readable without the collector's lock
/// (a collection-event callback runs under it and may ask for them).
static PUBLISHED: Mutex<Stats> = Mutex::new(Stats { collections: 0, full: 0, total_bytes: 0, heap_bytes: 0, live_bytes: 0, dirty_pages: 0, dirty_pages_total: 0, faults: 0, released_bytes: 0, finalized: 0 });
/// Bytes ever allocated (updated by every allocation).
static TOTAL_BYTES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// `DUNE_GC_TRACE=1`: one line per collection on stderr (phase times, dirty pages).
static TRACE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// Whether `init` ran (read on every C allocation, without the lock).
static STARTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// Whether finalizers are waiting to run (checked after every allocation).
static FINALIZERS_READY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

std::thread_local! {
    /// Set while this thread holds the collector's lock: the collector's own
    /// allocations then come from the system allocator, not the collected heap
    /// (see [`GcAllocator`]).
    static IN_GC: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// The collector's lock, with [`IN_GC`] set while it is held.
struct Locked(std::sync::MutexGuard<'static, Option<Collector>>, bool);

impl Drop for Locked {
    fn drop(&mut self) {
        IN_GC.with(|c| c.set(self.1));
    }
}

fn lock() -> Locked {
    let g = GC.lock().unwrap_or_else(|e| e.into_inner());
    Locked(g, IN_GC.with(|c| c.replace(true)))
}

/// Whether this thread holds the collector's lock.
pub(crate) fn inside() -> bool {
    IN_GC.with(|c| c.get())
}

fn with<T>(f: impl FnOnce(&mut Collector) -> T) -> Option<T> {
    let mut g = lock();
    g.0.as_mut().map(f)
}

/// Starts the collector with a dirty source (`DUNE_GC_DIRTY` names it when `None`;
/// default `none`). Idempotent.
pub fn init(source: Option<&str>) -> Result<(), String> {
    let mut guard = lock();
    let g = &mut guard.0;
    if g.is_some() {
        return Ok(());
    }
    let heap = Heap::new().ok_or("reserving the heap")?;
    let name = source.map(str::to_owned).or_else(|| std::env::var("DUNE_GC_DIRTY").ok()).unwrap_or_else(|| "none".into());
    // The Dune sources need Dune mode, and DUNE_GC_ENTER=1 asks for it with any
    // source (the paper's "Dune" row: mprotect in Dune mode).
    let enter = name.starts_with("dune-") || std::env::var_os("DUNE_GC_ENTER").is_some_and(|v| v == "1");
    if enter && !libdune::in_dune_mode() {
        if ring0() {
            return Err(format!("{name}: this process is in Dune mode under another copy of libdune (dune run, with the collector linked statically); run it without dune run: the collector enters Dune mode itself"));
        }
        libdune::enter().map_err(|e| format!("{name}: entering Dune mode: {e}"))?;
    }
    threads::flush_on_resume(name.starts_with("dune-"));
    let source: Box<dyn DirtySource> = match name.as_str() {
        "none" => Box::new(NoneSource),
        "mprotect" => Box::new(MprotectSource::new(RESERVE)?),
        "soft-dirty" => Box::new(SoftDirtySource::new()?),
        "uffd" => Box::new(UffdSource::new(heap.base, RESERVE)?),
        "dune-dirty" => Box::new(DuneDirtySource::new()?),
        "dune-fault" => Box::new(DuneFaultSource::new(RESERVE)?),
        other => return Err(format!("DUNE_GC_DIRTY: unknown source {other:?} (none, mprotect, soft-dirty, uffd, dune-fault, dune-dirty)")),
    };
    rust::set_heap(heap.base);
    TRACE.store(std::env::var_os("DUNE_GC_TRACE").is_some_and(|v| v == "1"), core::sync::atomic::Ordering::Relaxed);
    STARTED.store(true, core::sync::atomic::Ordering::Release);
    **g = Some(Collector { heap, source, generational: false, minors_since_full: 0, live_after_full: 0, roots: Vec::new(), finalizers: Vec::new(), ready: Vec::new(), stats: Stats::default() });
    Ok(())
}

/// Whether this thread runs in ring 0 (CS's privilege level), whoever put it there.
fn ring0() -> bool {
    let cs: u16;
    // SAFETY: reads the CS selector; no memory access.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs & 3 == 0
}

/// Generational collection driven by the dirty source (`GC_enable_incremental`).
pub fn enable_generational() {
    with(|g| g.generational = g.source.name() != "none");
}

/// `size` bytes, zeroed, scanned for pointers (`GC_malloc`); null when out of memory.
pub fn malloc(size: usize) -> *mut u8 {
    alloc(size, false)
}

/// `size` bytes that hold no pointers (`GC_malloc_atomic`).
pub fn malloc_atomic(size: usize) -> *mut u8 {
    alloc(size, true)
}

fn alloc(size: usize, atomic: bool) -> *mut u8 {
    let p = with(|g| {
        if g.heap.allocated_since >= MIN_TRIGGER.max(g.heap.committed / TRIGGER_DIVISOR) {
            collect_locked(g, false);
        }
        let p = g.heap.alloc(size, atomic).or_else(|| {
            collect_locked(g, true);
            g.heap.alloc(size, atomic)
        });
        TOTAL_BYTES.store(g.heap.total_allocated, core::sync::atomic::Ordering::Relaxed);
        p.map_or(core::ptr::null_mut(), |p| p as *mut u8)
    })
    .unwrap_or(core::ptr::null_mut());
    run_finalizers();
    p
}

/// Registers `f(obj, cd)` to run once after `obj` (the start of a collected
/// object) becomes unreachable; `None` removes it. Objects reachable from `obj`
/// stay alive until it has run. Returns the previous registration, or `Err` if
/// `obj` is not the start of an object.
pub fn register_finalizer(obj: *mut u8, f: Option<FinalizerFn>, cd: *mut u8) -> Result<Option<(FinalizerFn, *mut u8)>, NotAnObject> {
    with(|g| {
        if g.heap.object_at(obj as usize).map(|o| o.0) != Some(obj as usize) {
            return Err(NotAnObject(obj as usize));
        }
        let old = g.finalizers.iter().position(|x| x.obj == obj as usize).map(|i| g.finalizers.swap_remove(i));
        if let Some(f) = f {
            g.finalizers.push(Finalizer { obj: obj as usize, f, cd: cd as usize });
        }
        Ok(old.map(|o| (o.f, o.cd as *mut u8)))
    })
    .unwrap_or(Err(NotAnObject(obj as usize)))
}

/// A finalizer was registered for an address that is not the start of a collected
/// object (or before the collector started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnObject(pub usize);

impl core::fmt::Display for NotAnObject {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x} is not the start of a collected object", self.0)
    }
}

impl std::error::Error for NotAnObject {}

std::thread_local! {
    static FINALIZING: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Runs the finalizers of objects the last collections found unreachable, outside
/// the collector's lock (a finalizer may allocate). Returns how many ran.
pub fn run_finalizers() -> usize {
    if !FINALIZERS_READY.load(core::sync::atomic::Ordering::Acquire) || FINALIZING.with(|f| f.replace(true)) {
        return 0;
    }
    FINALIZERS_READY.store(false, core::sync::atomic::Ordering::Release);
    let mut n = 0;
    while let Some(fin) = with(|g| g.ready.pop()).flatten() {
        (fin.f)(fin.obj as *mut u8, fin.cd as *mut u8);
        n += 1;
    }
    if n > 0 {
        PUBLISHED.lock().unwrap_or_else(|e| e.into_inner()).finalized += n as u64;
    }
    FINALIZING.with(|f| f.set(false));
    n
}

/// Frees an object now (`GC_free`).
pub fn free(p: *mut u8) {
    with(|g| {
        if g.heap.free(p as usize) {
            g.finalizers.retain(|f| f.obj != p as usize);
        }
    });
}

/// Adds `[start, end)` to the roots (`GC_add_roots`).
pub fn add_roots(start: usize, end: usize) {
    with(|g| g.roots.push((start, end)));
}

/// A full collection (`GC_gcollect`).
pub fn collect() {
    with(|g| collect_locked(g, true));
    run_finalizers();
}

/// A collection as the collector would choose it (minor when generational).
pub fn collect_minor() {
    with(|g| collect_locked(g, false));
    run_finalizers();
}

/// Whether `init` ran.
pub fn initialized() -> bool {
    STARTED.load(core::sync::atomic::Ordering::Acquire)
}

/// Whether collection is generational.
pub fn is_generational() -> bool {
    with(|g| g.generational).unwrap_or(false)
}

/// The dirty source's name.
pub fn source_name() -> &'static str {
    with(|g| g.source.name()).unwrap_or("none")
}

/// Size and kind (atomic) of the object starting at `p`.
pub fn size_of(p: *mut u8) -> Option<(usize, bool)> {
    with(|g| g.heap.object_at(p as usize).filter(|o| o.0 == p as usize).map(|o| (o.1, o.2))).flatten()
}

/// Makes the calling thread's stack and registers roots (every thread that holds
/// pointers to collected memory must register; `unregister_thread` before it ends).
pub fn register_thread() {
    let top = stack_top();
    // Under the collector's lock: a collection sees a thread wholly or not at all.
    let _g = lock();
    threads::register(top);
}

/// See [`register_thread`].
pub fn unregister_thread() {
    // Under the collector's lock: no collection is signalling this thread as it goes.
    let _g = lock();
    threads::unregister();
}

/// The counters.
pub fn stats() -> Stats {
    let mut s = *PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
    s.total_bytes = TOTAL_BYTES.load(core::sync::atomic::Ordering::Relaxed);
    s.faults = dirty::faults_now();
    s
}

extern "C" fn each_object(info: *mut libc::dl_phdr_info, _: usize, data: *mut libc::c_void) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info; data is our Vec.
    let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<(usize, usize)>)) };
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
            let s = (info.dlpi_addr + ph.p_vaddr) as usize;
            out.push((s, s + ph.p_memsz as usize));
        }
    }
    0
}

/// The data and bss segments of every loaded object.
fn static_roots() -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    // SAFETY: the callback matches dl_iterate_phdr's type.
    unsafe { libc::dl_iterate_phdr(Some(each_object), &mut v as *mut _ as *mut libc::c_void) };
    v
}

/// The calling thread's stack, from just below the callee-saved registers spilled
/// here to its top.
fn stack_top() -> usize {
    // SAFETY: queries this thread's attributes into locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        let (mut addr, mut size) = (core::ptr::null_mut(), 0usize);
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
            libc::pthread_attr_destroy(&mut attr);
        }
        addr as usize + size
    }
}

struct Marker<'a> {
    heap: &'a mut Heap,
    stack: Vec<(usize, usize)>,
}

impl Marker<'_> {
    #[inline]
    fn candidate(&mut self, w: usize) {
        if let Some((start, size, atomic)) = self.heap.object_at(w) {
            if self.heap.mark(start) && !atomic {
                self.stack.push((start, size));
            }
        }
    }

    /// Every aligned word of `[lo, hi)`.
    fn scan(&mut self, lo: usize, hi: usize) {
        let mut p = (lo + 7) & !7;
        while p + 8 <= hi {
            // SAFETY: callers pass readable memory (roots, the stack, heap objects).
            let w = unsafe { (p as *const usize).read_volatile() };
            self.candidate(w);
            p += 8;
        }
    }

    fn drain(&mut self) {
        while let Some((s, n)) = self.stack.pop() {
            self.scan(s, s + n);
        }
    }
}

#[inline(never)]
fn collect_locked(g: &mut Collector, force_full: bool) {
    capi::event(capi::EVENT_START);
    let full = force_full || !g.generational || g.minors_since_full >= FULL_EVERY || g.heap.live_bytes > 2 * g.live_after_full + MIN_TRIGGER;
    // Callee-saved registers may hold the only pointer to an object: spill them.
    let mut regs = [0usize; 6];
    // SAFETY: stores registers into a local array.
    unsafe {
        core::arch::asm!("mov [{0}], rbx", "mov [{0}+8], rbp", "mov [{0}+16], r12", "mov [{0}+24], r13", "mov [{0}+32], r14", "mov [{0}+40], r15", in(reg) regs.as_mut_ptr(), options(nostack));
    }
    let sp = regs.as_ptr() as usize;
    // The world stops first: a write between the harvest and the re-arm below would
    // otherwise be lost.
    let others = threads::stop_others();
    let t0 = std::time::Instant::now();
    let dirty = if full { None } else { g.source.harvest(g.heap.base, g.heap.committed).ok() };
    let t_harvest = t0.elapsed();
    let full = full || dirty.is_none();
    if full {
        g.heap.clear_marks();
    }
    let roots = static_roots();
    let top = stack_top();
    let mut m = Marker { heap: &mut g.heap, stack: Vec::new() };
    for &(lo, hi) in roots.iter().chain(g.roots.iter()) {
        m.scan(lo, hi);
    }
    m.scan(regs.as_ptr() as usize, regs.as_ptr() as usize + 48);
    if top > sp {
        m.scan(sp, top);
    }
    for &(lo, hi) in &others {
        m.scan(lo, hi);
    }
    // Finalizers' client data, and objects whose finalizers have yet to run.
    for f in g.finalizers.iter().chain(g.ready.iter()) {
        m.candidate(f.cd);
    }
    for f in &g.ready {
        m.candidate(f.obj);
    }
    let mut dirty_pages = 0;
    if let Some(d) = &dirty {
        // Old (marked) objects on pages written since: their new pointers count.
        let mut objs = Vec::new();
        for (b, &is) in d.iter().enumerate() {
            if is && b < m.heap.blocks() {
                dirty_pages += 1;
                m.heap.marked_in_block(b, &mut objs);
            }
        }
        m.stack.extend(objs);
    }
    m.drain();
    // Finalizable objects nothing reaches: their finalizers are ready, and they (and
    // what they reach) survive until those have run.
    let mut i = 0;
    while i < g.finalizers.len() {
        if m.heap.is_marked(g.finalizers[i].obj) {
            i += 1;
        } else {
            let f = g.finalizers.swap_remove(i);
            g.ready.push(f);
            FINALIZERS_READY.store(true, core::sync::atomic::Ordering::Release);
        }
    }
    for f in &g.ready {
        m.candidate(f.obj);
    }
    m.drain();
    core::hint::black_box(&regs);
    let t_mark = t0.elapsed();
    g.heap.sweep();
    let t_sweep = t0.elapsed();
    if full {
        g.heap.release_idle(RELEASE_AFTER);
    }
    if dirty.is_none() || !g.source.harvest_rearms() {
        let _ = g.source.arm(g.heap.base, g.heap.committed);
    }
    let t_arm = t0.elapsed();
    threads::resume();
    if TRACE.load(core::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "dune-gc: collection {} {}: harvest {:?}, mark {:?}, sweep {:?}, arm {:?}; {} dirty pages; heap {} KiB, live {} KiB",
            g.stats.collections + 1,
            if full { "full" } else { "minor" },
            t_harvest,
            t_mark - t_harvest,
            t_sweep - t_mark,
            t_arm - t_sweep,
            dirty.as_ref().map_or(0, |d| d.iter().filter(|&&x| x).count()),
            g.heap.committed >> 10,
            g.heap.live_bytes >> 10
        );
    }
    g.minors_since_full = if full { 0 } else { g.minors_since_full + 1 };
    if full {
        g.live_after_full = g.heap.live_bytes;
    }
    g.stats.collections += 1;
    g.stats.full += full as u64;
    g.stats.heap_bytes = g.heap.committed - g.heap.released_bytes;
    g.stats.released_bytes = g.heap.released_bytes;
    g.stats.live_bytes = g.heap.live_bytes;
    g.stats.dirty_pages = dirty_pages;
    g.stats.dirty_pages_total += dirty_pages as u64;
    {
        let mut p = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
        let finalized = p.finalized;
        *p = g.stats;
        p.finalized = finalized;
    }
    capi::publish_gc_no(g.stats.collections);
    capi::event(capi::EVENT_END);
}
