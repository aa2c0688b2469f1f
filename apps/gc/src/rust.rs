//! The Rust API: [`GcAllocator`] makes the collected heap Rust's heap (so `Vec`,
//! `Box` and the rest are scanned like any collected object, and reclaimed when
//! unreachable), and [`Gc<T>`] is a copyable pointer to a value there.
//!
//! ```no_run
//! use dune_gc::{Gc, GcAllocator};
//! #[global_allocator]
//! static A: GcAllocator = GcAllocator;
//!
//! #[derive(Clone, Copy)]
//! struct Node { value: u64, next: Option<Gc<Node>> }
//!
//! // SAFETY: GcAllocator is the global allocator; no Gc goes into thread-local
//! // storage or memory from another allocator.
//! unsafe { dune_gc::init_rust(None) }.unwrap();
//! let mut list = None;
//! for i in 0..1000 { list = Some(Gc::new(Node { value: i, next: list })); }
//! let mut all = Vec::new();                  // collected memory too: scanned
//! all.push(list.unwrap());
//! assert_eq!(all[0].get().value, 999);
//! ```

use core::alloc::{GlobalAlloc, Layout};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::alloc::System;

use crate::heap::RESERVE;

static HEAP_BASE: AtomicUsize = AtomicUsize::new(0);
static RUST_READY: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_heap(base: usize) {
    HEAP_BASE.store(base, Ordering::Release);
}

fn in_heap(p: *mut u8) -> bool {
    let base = HEAP_BASE.load(Ordering::Acquire);
    base != 0 && (p as usize).wrapping_sub(base) < RESERVE
}

/// A global allocator backed by the collected heap: install it with
/// `#[global_allocator]`, then call [`init_rust`]. Until then, and for the
/// collector's own bookkeeping, it hands out system memory (never scanned, never
/// collected); `dealloc` tells the two apart by address.
pub struct GcAllocator;

// SAFETY: alloc returns null or a fresh, zeroed block of at least `size` bytes
// aligned to `align` (small size classes are multiples of 16 from 4 KiB-aligned
// blocks, power-of-two classes are aligned to their size, large objects to 4 KiB);
// dealloc frees only what alloc returned, by the same allocator.
unsafe impl GlobalAlloc for GcAllocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !RUST_READY.load(Ordering::Acquire) || crate::inside() || l.align() > 4096 {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(l) };
        }
        let size = if l.align() > 16 { l.size().max(l.align()).next_power_of_two() } else { l.size() };
        crate::malloc(size)
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !RUST_READY.load(Ordering::Acquire) || crate::inside() || l.align() > 4096 {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc_zeroed(l) };
        }
        // SAFETY: the collector zeroes every object it allocates.
        unsafe { self.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if !in_heap(p) {
            // SAFETY: not collected memory, so the system allocator's, with this layout.
            unsafe { System.dealloc(p, l) };
        } else if !crate::inside() {
            crate::free(p);
        }
        // (Collected memory freed while this thread holds the collector's lock is
        // left to the next collection.)
    }
}

/// Makes the collected heap Rust's heap from now on (source as for [`crate::init`]).
///
/// # Safety
/// [`GcAllocator`] must be the program's global allocator (checked: an error if a
/// `Box` does not land in the collected heap), and the program must not keep a
/// [`Gc`] (or a pointer into collected memory) where the collector does not look:
/// thread-local storage, or memory from `mmap` or another allocator. Threads that
/// hold them must run through [`spawn`] or `register_thread` (a [`Gc`] cannot move
/// between threads: it is neither `Send` nor `Sync`).
pub unsafe fn init_rust(source: Option<&str>) -> Result<(), String> {
    crate::init(source)?;
    RUST_READY.store(true, Ordering::Release);
    let probe = Box::new(0u64);
    if !in_heap(&*probe as *const u64 as *mut u8) {
        RUST_READY.store(false, Ordering::Release);
        return Err("GcAllocator is not the global allocator (#[global_allocator] static A: dune_gc::GcAllocator = dune_gc::GcAllocator;)".into());
    }
    crate::register_thread();
    Ok(())
}

/// `std::thread::spawn`, with the new thread registered with the collector for its
/// whole life (its stack and registers are roots).
pub fn spawn<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        crate::register_thread();
        let r = f();
        crate::unregister_thread();
        r
    })
}

/// A pointer to a `T` in the collected heap: copyable, kept alive by any copy the
/// collector can see. `T: Copy` owns nothing that would need dropping; values are
/// read and written whole ([`get`](Gc::get), [`set`](Gc::set)), so no reference
/// into collected memory outlives a call.
pub struct Gc<T: Copy + 'static> {
    ptr: NonNull<T>,
    _not_send: PhantomData<*const T>,
}

impl<T: Copy + 'static> Clone for Gc<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Copy + 'static> Copy for Gc<T> {}

impl<T: Copy + 'static> Gc<T> {
    /// A new collected value. Panics when the heap is exhausted, or before
    /// [`init_rust`].
    pub fn new(value: T) -> Gc<T> {
        assert!(RUST_READY.load(Ordering::Acquire), "dune_gc::Gc::new before dune_gc::init_rust");
        let l = Layout::new::<T>();
        // SAFETY: GcAllocator's contract; a zero-sized T gets a one-byte object.
        let p = unsafe { GcAllocator.alloc(Layout::from_size_align(l.size().max(1), l.align()).unwrap_or(l)) } as *mut T;
        let ptr = NonNull::new(p).expect("dune_gc: the collected heap is exhausted");
        // SAFETY: a fresh object of T's size and alignment.
        unsafe { ptr.as_ptr().write(value) };
        Gc { ptr, _not_send: PhantomData }
    }

    /// A copy of the value.
    pub fn get(self) -> T {
        // SAFETY: `self` is a live copy of the pointer, so the object is reachable
        // (init_rust's contract) and holds a T; no reference escapes.
        unsafe { self.ptr.as_ptr().read() }
    }

    /// Replaces the value.
    pub fn set(self, value: T) {
        // SAFETY: as in `get`; the write goes through the pointer, no reference
        // to the object is held across it.
        unsafe { self.ptr.as_ptr().write(value) }
    }

    /// Whether two pointers name the same object.
    pub fn ptr_eq(a: Gc<T>, b: Gc<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The address.
    pub fn as_ptr(self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Copy + core::fmt::Debug + 'static> core::fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Gc").field(&self.get()).finish()
    }
}
