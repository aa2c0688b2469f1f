//! The heap: one reservation, committed in chunks, 4 KiB blocks of one size class
//! each (or runs of blocks for large objects). All metadata lives off the heap, so
//! the collector's own writes never touch (and never dirty) heap pages except when
//! it zeroes a fresh allocation.

pub(crate) const BLOCK: usize = 4096;
pub(crate) const GRANULE: usize = 16;
const SLOTS_MAX: usize = BLOCK / GRANULE;
const WORDS: usize = SLOTS_MAX / 64;
/// Small-object size classes (bytes); larger objects take whole blocks.
pub(crate) const CLASSES: [usize; 14] = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048];
pub(crate) const RESERVE: usize = 64 << 30;
const CHUNK: usize = 2 << 20;
const HUGE: usize = 2 << 20;

/// `SLOT_OF[class][granule]`: the slot of class `class` that granule `granule` of a
/// block falls in (no division on the marking path).
static SLOT_OF: [[u8; SLOTS_MAX]; CLASSES.len()] = {
    let mut t = [[0u8; SLOTS_MAX]; CLASSES.len()];
    let mut c = 0;
    while c < CLASSES.len() {
        let mut g = 0;
        while g < SLOTS_MAX {
            let slot = g * GRANULE / CLASSES[c];
            t[c][g] = if slot < 255 { slot as u8 } else { 255 };
            g += 1;
        }
        c += 1;
    }
    t
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Free,
    Small { class: u8 },
    LargeHead { blocks: u32 },
    LargeCont { head: u32 },
    /// Block 0, never used: the collector's own statics hold the heap's base
    /// address, which would otherwise keep the object there alive forever.
    Reserved,
}

#[derive(Clone, Copy)]
pub(crate) struct Meta {
    pub kind: Kind,
    pub atomic: bool,
    pub alloc: [u64; WORDS],
    pub mark: [u64; WORDS],
}

impl Meta {
    const FREE: Meta = Meta { kind: Kind::Free, atomic: false, alloc: [0; WORDS], mark: [0; WORDS] };
}

fn bit(b: &[u64; WORDS], i: usize) -> bool {
    b[i / 64] & (1 << (i % 64)) != 0
}

/// The first clear bit below `n`.
fn first_zero(b: &[u64; WORDS], n: usize) -> Option<usize> {
    for (w, &word) in b.iter().enumerate() {
        if word != u64::MAX {
            let i = w * 64 + (!word).trailing_zeros() as usize;
            return (i < n).then_some(i);
        }
    }
    None
}

fn set(b: &mut [u64; WORDS], i: usize, v: bool) {
    if v {
        b[i / 64] |= 1 << (i % 64);
    } else {
        b[i / 64] &= !(1 << (i % 64));
    }
}

pub(crate) struct Heap {
    pub base: usize,
    pub committed: usize,
    pub meta: Vec<Meta>,
    /// Per class and kind (scanned, atomic): blocks that may have a free slot.
    avail: Vec<Vec<usize>>,
    /// Wholly free blocks (rebuilt by each sweep; more may lie beyond).
    free_blocks: Vec<usize>,
    /// Bytes of live objects after the last sweep, and allocated since.
    pub live_bytes: usize,
    pub allocated_since: usize,
    pub total_allocated: u64,
    /// Per block: full collections it has been wholly free in a row, and whether its
    /// memory went back to the OS (MADV_DONTNEED; it reads as zeros when reused).
    idle: Vec<u8>,
    released: Vec<bool>,
    pub released_bytes: usize,
}

impl Heap {
    pub(crate) fn new() -> Option<Heap> {
        // SAFETY: a fresh inaccessible reservation, 2 MiB more than needed so the
        // heap can start on a 2 MiB boundary: with chunks of 2 MiB, the kernel can back
        // them with huge pages, and in Dune mode KVM can map them with large nested
        // entries (measured in the lane: Dune mode's extra cost on HashMap went from
        // 3.8x to none).
        let p = unsafe { libc::mmap(core::ptr::null_mut(), RESERVE + HUGE, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0) };
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = (p as usize).next_multiple_of(HUGE);
        let p = base as *mut libc::c_void;
        (p != libc::MAP_FAILED).then(|| Heap { base: p as usize, committed: 0, meta: Vec::new(), avail: vec![Vec::new(); 2 * CLASSES.len()], free_blocks: Vec::new(), live_bytes: 0, allocated_since: 0, total_allocated: 0, idle: Vec::new(), released: Vec::new(), released_bytes: 0 })
    }

    pub(crate) fn class_of(size: usize) -> Option<usize> {
        CLASSES.iter().position(|&c| c >= size)
    }

    pub(crate) fn blocks(&self) -> usize {
        self.meta.len()
    }

    pub(crate) fn block_addr(&self, b: usize) -> usize {
        self.base + b * BLOCK
    }

    /// Commits `n` more blocks (a chunk at least).
    fn grow(&mut self, n: usize) -> bool {
        let add = (n * BLOCK).max(CHUNK).next_multiple_of(CHUNK);
        if self.committed + add > RESERVE {
            return false;
        }
        // SAFETY: makes part of our own reservation accessible.
        if unsafe { libc::mprotect((self.base + self.committed) as *mut _, add, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return false;
        }
        let first = self.committed == 0;
        self.committed += add;
        self.meta.resize(self.committed / BLOCK, Meta::FREE);
        if first {
            self.meta[0].kind = Kind::Reserved;
        }
        self.idle.resize(self.meta.len(), 0);
        self.released.resize(self.meta.len(), false);
        true
    }

    fn free_run(&mut self, n: usize) -> Option<usize> {
        loop {
            let mut run = 0;
            for i in 0..self.meta.len() {
                if self.meta[i].kind == Kind::Free {
                    run += 1;
                    if run == n {
                        return Some(i + 1 - n);
                    }
                } else {
                    run = 0;
                }
            }
            // A free run at the end grows into the new chunk.
            if !self.grow(n - run) {
                return None;
            }
        }
    }

    /// An object of `size` bytes, zeroed; None when out of memory.
    pub(crate) fn alloc(&mut self, size: usize, atomic: bool) -> Option<usize> {
        let size = size.max(1);
        let (p, bytes) = match Self::class_of(size) {
            Some(c) => (self.alloc_small(c, atomic)?, CLASSES[c]),
            None => {
                let n = size.div_ceil(BLOCK);
                let b = if n == 1 { self.take_free_block()? } else { self.free_run(n)? };
                for i in b..b + n {
                    self.reuse(i);
                }
                self.meta[b] = Meta { kind: Kind::LargeHead { blocks: n as u32 }, atomic, ..Meta::FREE };
                set(&mut self.meta[b].alloc, 0, true);
                for i in 1..n {
                    self.meta[b + i] = Meta { kind: Kind::LargeCont { head: b as u32 }, ..Meta::FREE };
                }
                (self.block_addr(b), n * BLOCK)
            }
        };
        // SAFETY: a fresh object of `bytes` bytes in committed heap memory.
        unsafe { core::ptr::write_bytes(p as *mut u8, 0, bytes) };
        self.allocated_since += bytes;
        self.total_allocated += bytes as u64;
        Some(p)
    }

    fn alloc_small(&mut self, c: usize, atomic: bool) -> Option<usize> {
        let size = CLASSES[c];
        let slots = BLOCK / size;
        let list = 2 * c + atomic as usize;
        loop {
            let b = match self.avail[list].last() {
                Some(&b) => b,
                None => {
                    let b = self.take_free_block()?;
                    self.reuse(b);
                    self.meta[b] = Meta { kind: Kind::Small { class: c as u8 }, atomic, ..Meta::FREE };
                    self.avail[list].push(b);
                    b
                }
            };
            let m = &mut self.meta[b];
            let ours = matches!(m.kind, Kind::Small { class } if class as usize == c) && m.atomic == atomic;
            match first_zero(&m.alloc, slots).filter(|_| ours) {
                Some(slot) => {
                    set(&mut m.alloc, slot, true);
                    return Some(self.base + b * BLOCK + slot * size);
                }
                None => {
                    self.avail[list].pop();
                }
            }
        }
    }

    /// Block `b` is being used again.
    fn reuse(&mut self, b: usize) {
        self.idle[b] = 0;
        if std::mem::replace(&mut self.released[b], false) {
            self.released_bytes -= BLOCK;
        }
    }

    /// After a full collection: blocks wholly free for `after` full collections in a
    /// row go back to the OS, in runs (one `madvise` per run). Returns the bytes
    /// released now.
    pub(crate) fn release_idle(&mut self, after: u8) -> usize {
        for (m, idle) in self.meta.iter().zip(self.idle.iter_mut()) {
            *idle = if m.kind == Kind::Free { idle.saturating_add(1) } else { 0 };
        }
        let releasable = |h: &Heap, b: usize| h.meta[b].kind == Kind::Free && !h.released[b] && h.idle[b] >= after;
        let (mut now, mut b) = (0, 0);
        while b < self.meta.len() {
            if !releasable(self, b) {
                b += 1;
                continue;
            }
            let start = b;
            while b < self.meta.len() && releasable(self, b) {
                b += 1;
            }
            // SAFETY: whole free blocks of our own committed heap; nothing points
            // into them (free), and they read back as zeros.
            if unsafe { libc::madvise((self.base + start * BLOCK) as *mut _, (b - start) * BLOCK, libc::MADV_DONTNEED) } == 0 {
                self.released[start..b].fill(true);
                self.released_bytes += (b - start) * BLOCK;
                now += (b - start) * BLOCK;
            }
        }
        now
    }

    fn take_free_block(&mut self) -> Option<usize> {
        loop {
            while let Some(b) = self.free_blocks.pop() {
                if self.meta[b].kind == Kind::Free {
                    return Some(b);
                }
            }
            let start = self.meta.len();
            if !self.grow(1) {
                return None;
            }
            self.free_blocks.extend((start..self.meta.len()).rev());
        }
    }

    /// The object containing `p` (an interior pointer counts): its start, size and
    /// whether it is atomic (holds no pointers).
    #[inline]
    pub(crate) fn object_at(&self, p: usize) -> Option<(usize, usize, bool)> {
        let off = p.wrapping_sub(self.base);
        if off >= self.committed {
            return None;
        }
        let b = off / BLOCK;
        let m = self.meta.get(b)?;
        match m.kind {
            Kind::Free | Kind::Reserved => None,
            Kind::Small { class } => {
                let size = CLASSES[class as usize];
                let slot = SLOT_OF[class as usize][(off % BLOCK) / GRANULE] as usize;
                (slot < BLOCK / size && bit(&m.alloc, slot)).then(|| (self.block_addr(b) + slot * size, size, m.atomic))
            }
            Kind::LargeHead { blocks } => bit(&self.meta[b].alloc, 0).then(|| (self.block_addr(b), blocks as usize * BLOCK, self.meta[b].atomic)),
            Kind::LargeCont { head } => {
                let h = head as usize;
                match self.meta[h].kind {
                    Kind::LargeHead { blocks } => Some((self.block_addr(h), blocks as usize * BLOCK, self.meta[h].atomic)),
                    _ => None,
                }
            }
        }
    }

    /// Sets the mark of the object at `start`; false if it was set already.
    #[inline]
    pub(crate) fn mark(&mut self, start: usize) -> bool {
        let off = start - self.base;
        let b = off / BLOCK;
        let slot = match self.meta[b].kind {
            Kind::Small { class } => SLOT_OF[class as usize][(off % BLOCK) / GRANULE] as usize,
            _ => 0,
        };
        let m = &mut self.meta[b];
        if bit(&m.mark, slot) {
            return false;
        }
        set(&mut m.mark, slot, true);
        true
    }

    pub(crate) fn is_marked(&self, start: usize) -> bool {
        let off = start - self.base;
        let b = off / BLOCK;
        let slot = match self.meta[b].kind {
            Kind::Small { class } => SLOT_OF[class as usize][(off % BLOCK) / GRANULE] as usize,
            _ => 0,
        };
        bit(&self.meta[b].mark, slot)
    }

    pub(crate) fn clear_marks(&mut self) {
        for m in &mut self.meta {
            m.mark = [0; WORDS];
        }
    }

    /// The marked objects overlapping block `b` (for rescanning dirty pages).
    pub(crate) fn marked_in_block(&self, b: usize, out: &mut Vec<(usize, usize)>) {
        match self.meta[b].kind {
            Kind::Small { class } if !self.meta[b].atomic => {
                let size = CLASSES[class as usize];
                for s in 0..BLOCK / size {
                    if bit(&self.meta[b].alloc, s) && bit(&self.meta[b].mark, s) {
                        out.push((self.block_addr(b) + s * size, size));
                    }
                }
            }
            Kind::LargeHead { .. } | Kind::LargeCont { .. } => {
                if let Some((start, size, false)) = self.object_at(self.block_addr(b)) {
                    if self.is_marked(start) {
                        out.push((start, size));
                    }
                }
            }
            _ => {}
        }
    }

    /// Frees every allocated, unmarked object. Returns (objects, bytes) freed.
    pub(crate) fn sweep(&mut self) -> (usize, usize) {
        let (mut n, mut bytes, mut live) = (0, 0, 0);
        for b in 0..self.meta.len() {
            match self.meta[b].kind {
                Kind::Small { class } => {
                    let size = CLASSES[class as usize];
                    let m = &mut self.meta[b];
                    let mut any = false;
                    for s in 0..BLOCK / size {
                        if bit(&m.alloc, s) {
                            if bit(&m.mark, s) {
                                any = true;
                                live += size;
                            } else {
                                set(&mut m.alloc, s, false);
                                n += 1;
                                bytes += size;
                            }
                        }
                    }
                    if !any {
                        *m = Meta::FREE;
                    }
                }
                Kind::LargeHead { blocks } => {
                    let size = blocks as usize * BLOCK;
                    if bit(&self.meta[b].mark, 0) {
                        live += size;
                    } else {
                        for i in 0..blocks as usize {
                            self.meta[b + i] = Meta::FREE;
                        }
                        n += 1;
                        bytes += size;
                    }
                }
                _ => {}
            }
        }
        self.live_bytes = live;
        self.allocated_since = 0;
        for l in &mut self.avail {
            l.clear();
        }
        self.free_blocks.clear();
        for b in (0..self.meta.len()).rev() {
            match self.meta[b].kind {
                Kind::Free => self.free_blocks.push(b),
                Kind::Small { class } => self.avail[2 * class as usize + self.meta[b].atomic as usize].push(b),
                _ => {}
            }
        }
        (n, bytes)
    }

    /// Frees one object now (`GC_free`).
    pub(crate) fn free(&mut self, p: usize) -> bool {
        let Some((start, _, _)) = self.object_at(p) else { return false };
        if start != p {
            return false;
        }
        let b = (p - self.base) / BLOCK;
        match self.meta[b].kind {
            Kind::Small { class } => {
                let s = (p - self.block_addr(b)) / CLASSES[class as usize];
                set(&mut self.meta[b].alloc, s, false);
                set(&mut self.meta[b].mark, s, false);
            }
            Kind::LargeHead { blocks } => {
                for i in 0..blocks as usize {
                    self.meta[b + i] = Meta::FREE;
                }
            }
            _ => return false,
        }
        true
    }
}
