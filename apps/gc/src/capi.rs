//! The core of bdwgc's `gc.h` (`include/gc.h`), in the project's one C library
//! (crates/dune-clib; `libdune_gc.a`/`.so` is one of its names).

use std::ffi::c_void;

/// `GC_gc_no`: collections so far (a data symbol in bdwgc; programs read it).
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut GC_gc_no: usize = 0;

pub(crate) fn publish_gc_no(n: u64) {
    // SAFETY: written under the collector's lock; C readers read a word.
    unsafe { core::ptr::addr_of_mut!(GC_gc_no).write_volatile(n as usize) };
}

/// `GC_EVENT_START` and `GC_EVENT_END` of bdwgc's `GC_EventType`.
pub(crate) const EVENT_START: u32 = 0;
pub(crate) const EVENT_END: u32 = 5;
static ON_EVENT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

pub(crate) fn event(e: u32) {
    let f = ON_EVENT.load(core::sync::atomic::Ordering::Acquire);
    if f != 0 {
        // SAFETY: set by GC_set_on_collection_event from a function of this type.
        let f: extern "C" fn(u32) = unsafe { core::mem::transmute::<usize, extern "C" fn(u32)>(f) };
        f(e);
    }
}

/// `GC_set_on_collection_event`: called at the start and end of each collection
/// (with the collector's lock held: it must not allocate).
#[no_mangle]
pub extern "C" fn GC_set_on_collection_event(f: Option<extern "C" fn(u32)>) {
    ON_EVENT.store(f.map_or(0, |f| f as usize), core::sync::atomic::Ordering::Release);
}

/// `GC_incremental_protection_needs`: `GC_PROTECTS_POINTER_HEAP` (1) when the
/// source write-protects the heap (mprotect, dune-fault), else `GC_PROTECTS_NONE`.
#[no_mangle]
pub extern "C" fn GC_incremental_protection_needs() -> i32 {
    matches!(crate::source_name(), "mprotect" | "dune-fault") as i32
}

/// `GC_dune_faults` (extension): write faults the dirty source took.
#[no_mangle]
pub extern "C" fn GC_dune_faults() -> usize {
    crate::stats().faults as usize
}

/// `GC_dune_dirty_pages` (extension): dirty pages all collections rescanned.
#[no_mangle]
pub extern "C" fn GC_dune_dirty_pages() -> usize {
    crate::stats().dirty_pages_total as usize
}

/// `GC_init`: starts the collector (source from `DUNE_GC_DIRTY`); exits with a
/// message if it cannot, as bdwgc aborts.
#[no_mangle]
pub extern "C" fn GC_init() {
    if let Err(e) = crate::init(None) {
        eprintln!("dune-gc: {e}");
        std::process::exit(1);
    }
}

fn ensure() {
    if !crate::initialized() {
        GC_init();
    }
}

/// `GC_malloc`.
#[no_mangle]
pub extern "C" fn GC_malloc(n: usize) -> *mut c_void {
    ensure();
    crate::malloc(n).cast()
}

/// `GC_malloc_atomic`.
#[no_mangle]
pub extern "C" fn GC_malloc_atomic(n: usize) -> *mut c_void {
    ensure();
    crate::malloc_atomic(n).cast()
}

/// `GC_realloc`: keeps the kind and min(old, new) bytes.
#[no_mangle]
pub extern "C" fn GC_realloc(old: *mut c_void, n: usize) -> *mut c_void {
    ensure();
    if old.is_null() {
        return GC_malloc(n);
    }
    if n == 0 {
        crate::free(old.cast());
        return core::ptr::null_mut();
    }
    let Some((size, atomic)) = crate::size_of(old.cast()) else { return core::ptr::null_mut() };
    if n <= size {
        return old;
    }
    let new = if atomic { crate::malloc_atomic(n) } else { crate::malloc(n) };
    if !new.is_null() {
        // SAFETY: both are GC objects of at least `size` bytes.
        unsafe { core::ptr::copy_nonoverlapping(old as *const u8, new, size) };
        crate::free(old.cast());
    }
    new.cast()
}

/// `GC_free`.
#[no_mangle]
pub extern "C" fn GC_free(p: *mut c_void) {
    if !p.is_null() {
        crate::free(p.cast());
    }
}

/// `GC_gcollect`.
#[no_mangle]
pub extern "C" fn GC_gcollect() {
    ensure();
    crate::collect();
}

/// `GC_enable_incremental`: generational collection (unless `GC_DISABLE_INCREMENTAL`).
#[no_mangle]
pub extern "C" fn GC_enable_incremental() {
    ensure();
    if std::env::var_os("GC_DISABLE_INCREMENTAL").is_none() {
        crate::enable_generational();
    }
}

/// `GC_is_incremental_mode`.
#[no_mangle]
pub extern "C" fn GC_is_incremental_mode() -> i32 {
    crate::is_generational() as i32
}

/// `GC_get_heap_size`.
#[no_mangle]
pub extern "C" fn GC_get_heap_size() -> usize {
    crate::stats().heap_bytes
}

/// `GC_get_free_bytes`.
#[no_mangle]
pub extern "C" fn GC_get_free_bytes() -> usize {
    let s = crate::stats();
    s.heap_bytes.saturating_sub(s.live_bytes)
}

/// `GC_get_total_bytes`.
#[no_mangle]
pub extern "C" fn GC_get_total_bytes() -> usize {
    crate::stats().total_bytes as usize
}

/// `GC_get_gc_no`.
#[no_mangle]
pub extern "C" fn GC_get_gc_no() -> usize {
    crate::stats().collections as usize
}

/// `GC_add_roots`.
#[no_mangle]
pub extern "C" fn GC_add_roots(lo: *mut c_void, hi: *mut c_void) {
    ensure();
    crate::add_roots(lo as usize, hi as usize);
}

/// `GC_dirty_source` (extension): the source's name.
#[no_mangle]
pub extern "C" fn GC_dirty_source() -> *const u8 {
    match crate::source_name() {
        "mprotect" => c"mprotect".as_ptr().cast(),
        "soft-dirty" => c"soft-dirty".as_ptr().cast(),
        "uffd" => c"uffd".as_ptr().cast(),
        "dune-fault" => c"dune-fault".as_ptr().cast(),
        "dune-dirty" => c"dune-dirty".as_ptr().cast(),
        _ => c"none".as_ptr().cast(),
    }
}

/// `GC_finalization_proc`.
pub type FinalizationProc = Option<extern "C" fn(*mut c_void, *mut c_void)>;

/// `GC_register_finalizer`: `f(obj, cd)` runs once after `obj` becomes unreachable
/// (objects it reaches stay alive until then); `f == NULL` removes it. The previous
/// registration goes to `*ofn`, `*ocd` when those are not null.
///
/// # Safety
/// `ofn` and `ocd` are null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn GC_register_finalizer(obj: *mut c_void, f: FinalizationProc, cd: *mut c_void, ofn: *mut FinalizationProc, ocd: *mut *mut c_void) {
    ensure();
    // SAFETY: same ABI: both take two pointers and return nothing.
    let f = f.map(|f| unsafe { core::mem::transmute::<extern "C" fn(*mut c_void, *mut c_void), crate::FinalizerFn>(f) });
    let old = crate::register_finalizer(obj.cast(), f, cd.cast()).ok().flatten();
    // SAFETY: the caller passes null or valid out-pointers, as bdwgc requires.
    unsafe {
        if !ofn.is_null() {
            // SAFETY (inner): the same ABI, back.
            *ofn = old.map(|(f, _)| core::mem::transmute::<crate::FinalizerFn, extern "C" fn(*mut c_void, *mut c_void)>(f));
        }
        if !ocd.is_null() {
            *ocd = old.map_or(core::ptr::null_mut(), |(_, cd)| cd.cast());
        }
    }
}

/// `GC_register_finalizer_ignore_self` and `_no_order`: the same here (finalizers
/// are not ordered among themselves).
///
/// # Safety
/// As [`GC_register_finalizer`].
#[no_mangle]
pub unsafe extern "C" fn GC_register_finalizer_ignore_self(obj: *mut c_void, f: FinalizationProc, cd: *mut c_void, ofn: *mut FinalizationProc, ocd: *mut *mut c_void) {
    // SAFETY: the caller's out-pointers, under the same contract.
    unsafe { GC_register_finalizer(obj, f, cd, ofn, ocd) };
}

/// See [`GC_register_finalizer_ignore_self`].
///
/// # Safety
/// As [`GC_register_finalizer`].
#[no_mangle]
pub unsafe extern "C" fn GC_register_finalizer_no_order(obj: *mut c_void, f: FinalizationProc, cd: *mut c_void, ofn: *mut FinalizationProc, ocd: *mut *mut c_void) {
    // SAFETY: the caller's out-pointers, under the same contract.
    unsafe { GC_register_finalizer(obj, f, cd, ofn, ocd) };
}

/// `GC_invoke_finalizers`: runs the finalizers that are ready; how many ran.
#[no_mangle]
pub extern "C" fn GC_invoke_finalizers() -> i32 {
    crate::run_finalizers() as i32
}

/// `GC_get_unmapped_bytes`: heap memory returned to the OS.
#[no_mangle]
pub extern "C" fn GC_get_unmapped_bytes() -> usize {
    crate::stats().released_bytes
}

/// `GC_register_my_thread`: the calling thread's stack and registers become roots
/// (the stack base argument is ignored: the thread's own attributes say it).
/// Returns 0 (`GC_SUCCESS`).
#[no_mangle]
pub extern "C" fn GC_register_my_thread(_sb: *const c_void) -> i32 {
    ensure();
    crate::register_thread();
    0
}

/// `GC_unregister_my_thread`.
#[no_mangle]
pub extern "C" fn GC_unregister_my_thread() -> i32 {
    crate::unregister_thread();
    0
}

/// `GC_allow_register_threads`: nothing to do.
#[no_mangle]
pub extern "C" fn GC_allow_register_threads() {
    ensure();
}

struct Start {
    f: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
}

extern "C" fn start_registered(p: *mut c_void) -> *mut c_void {
    // SAFETY: GC_pthread_create passes a Box<Start> it leaked for this thread.
    let s = unsafe { Box::from_raw(p as *mut Start) };
    crate::register_thread();
    // The argument may be the only reference to collected memory: keep it on this
    // (scanned) stack until the start routine has it.
    let arg = core::hint::black_box(s.arg);
    let r = (s.f)(arg);
    crate::unregister_thread();
    r
}

/// `GC_pthread_create` (what `pthread_create` means with `GC_THREADS`): the new
/// thread is registered for its whole life.
///
/// # Safety
/// As `pthread_create`: `t` valid for writes, `attr` null or initialized.
#[no_mangle]
pub unsafe extern "C" fn GC_pthread_create(t: *mut libc::pthread_t, attr: *const libc::pthread_attr_t, f: extern "C" fn(*mut c_void) -> *mut c_void, arg: *mut c_void) -> i32 {
    ensure();
    let s = Box::into_raw(Box::new(Start { f, arg }));
    // SAFETY: the caller's pointers, as for pthread_create; `s` is ours to pass.
    let r = unsafe { libc::pthread_create(t, attr, start_registered, s.cast()) };
    if r != 0 {
        // SAFETY: the thread was not created; `s` is still ours.
        drop(unsafe { Box::from_raw(s) });
    }
    r
}

/// `GC_pthread_join`.
///
/// # Safety
/// As `pthread_join`: a joinable thread, `ret` null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn GC_pthread_join(t: libc::pthread_t, ret: *mut *mut c_void) -> i32 {
    // SAFETY: the caller's arguments, as for pthread_join.
    unsafe { libc::pthread_join(t, ret) }
}
