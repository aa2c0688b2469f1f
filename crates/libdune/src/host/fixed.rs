//! A fixed-capacity vector in its own anonymous mapping.
//!
//! Runtime tables are changed on exit paths, where the guest thread may hold the
//! allocator's lock (glibc's `sysmalloc` calls `mmap` with its arena locked), so they
//! never call `malloc`. The mapping is `MAP_NORESERVE`: untouched capacity costs nothing.

use core::ptr::NonNull;

use super::reserved;

/// A vector of `Copy` values with a capacity fixed at creation.
pub struct FixedVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
}

// SAFETY: FixedVec owns its mapping exclusively, like a Vec<T>.
unsafe impl<T: Copy + Send> Send for FixedVec<T> {}

impl<T: Copy> FixedVec<T> {
    /// Maps room for `cap` elements. Allocates (via `mmap`, not `malloc`).
    pub fn with_capacity(cap: usize) -> Result<Self, i32> {
        let bytes = (cap.max(1) * core::mem::size_of::<T>()).next_multiple_of(4096);
        let p = reserved::map(bytes, libc::MAP_NORESERVE)?;
        // mmap returns page-aligned memory, aligned for any T with align <= 4096.
        const { assert!(core::mem::align_of::<T>() <= 4096) };
        Ok(FixedVec { ptr: NonNull::new(p.cast()).ok_or(libc::ENOMEM)?, len: 0, cap })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends, or returns the value back when full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        self.insert(self.len, v)
    }

    /// Inserts at `i` (`i <= len`), shifting the tail; returns the value back when full.
    pub fn insert(&mut self, i: usize, v: T) -> Result<(), T> {
        if self.len == self.cap || i > self.len {
            return Err(v);
        }
        // SAFETY: i <= len < cap, so both the shifted tail and slot i lie inside the mapping.
        unsafe {
            let p = self.ptr.as_ptr().add(i);
            core::ptr::copy(p, p.add(1), self.len - i);
            p.write(v);
        }
        self.len += 1;
        Ok(())
    }

    /// Removes and returns element `i`.
    pub fn remove(&mut self, i: usize) -> T {
        let v = self.as_slice()[i];
        // SAFETY: i < len (checked by the indexing above); the tail moves down by one.
        unsafe {
            let p = self.ptr.as_ptr().add(i);
            core::ptr::copy(p.add(1), p, self.len - i - 1);
        }
        self.len -= 1;
        v
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        (self.len > 0).then(|| self.remove(self.len - 1))
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first len elements are initialized.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the first len elements are initialized and uniquely borrowed.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for FixedVec<T> {
    fn drop(&mut self) {
        let bytes = (self.cap.max(1) * core::mem::size_of::<T>()).next_multiple_of(4096);
        // SAFETY: the mapping was created in with_capacity and is referenced only by self.
        unsafe { reserved::unmap(self.ptr.as_ptr().cast(), bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keep_order() {
        let mut v = FixedVec::<u64>::with_capacity(4).unwrap();
        v.push(1).unwrap();
        v.push(3).unwrap();
        v.insert(1, 2).unwrap();
        assert_eq!(v.as_slice(), &[1, 2, 3]);
        assert_eq!(v.remove(0), 1);
        assert_eq!(v.as_slice(), &[2, 3]);
        v.push(4).unwrap();
        v.push(5).unwrap();
        assert_eq!(v.push(6), Err(6), "full");
        assert_eq!(v.pop(), Some(5));
        assert_eq!(v.insert(9, 1), Err(1), "out of range");
    }
}
