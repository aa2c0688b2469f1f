//! Correctness checks the tests run, one collector per process (`dune-gc-check`):
//! random object graphs against a model, threads that keep data alive only from
//! their own stacks, and the TLB-invalidation check for `dune-dirty`. Each returns
//! an error describing the first thing that went wrong.

use crate::Stats;

/// Objects: [id, p0, p1, p2, p3].
const FIELDS: usize = 4;
const ROOTS_N: usize = 16;
/// The model's roots, in the data segment (a root the collector must scan).
static mut ROOTS: [usize; ROOTS_N] = [0; ROOTS_N];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn obj(p: usize) -> &'static mut [usize; 1 + FIELDS] {
    // SAFETY: callers pass live 40-byte GC objects (the model says which).
    unsafe { &mut *(p as *mut [usize; 1 + FIELDS]) }
}

fn set_root(r: usize, v: usize) {
    // SAFETY: the model's root array; the check runs on one thread at a time.
    unsafe { (*core::ptr::addr_of_mut!(ROOTS))[r] = v };
}

/// Random graphs, mutated between collections (minor ones when generational, a
/// full one every fifth round) and checked against a model after each: every
/// object reachable in the model is intact with its pointers, and garbage is freed.
/// `rounds` of 800 objects each.
pub fn graph(generational: bool, rounds: usize, seed: u64) -> Result<Stats, String> {
    if generational {
        crate::enable_generational();
    }
    let source = crate::source_name();
    let mut rng = Rng(seed | 1);
    let mut addr: Vec<usize> = Vec::new();
    let mut edges: Vec<[Option<usize>; FIELDS]> = Vec::new();
    let mut roots: [Option<usize>; ROOTS_N] = [None; ROOTS_N];
    let mut usable: Vec<usize> = Vec::new();
    for round in 0..rounds {
        for _ in 0..800 {
            let p = crate::malloc(8 * (1 + FIELDS)) as usize;
            if p == 0 {
                return Err("out of memory".into());
            }
            let id = addr.len();
            obj(p)[0] = id ^ 0x5a5a;
            addr.push(p);
            edges.push([None; FIELDS]);
            usable.push(id);
            if rng.below(4) == 0 && crate::malloc_atomic(rng.below(5000) + 1).is_null() {
                return Err("out of memory".into());
            }
        }
        // Old objects get new pointers to young ones: exactly what dirty pages must report.
        for _ in 0..2000 {
            let a = usable[rng.below(usable.len())];
            let k = rng.below(FIELDS);
            let b = if rng.below(5) == 0 { None } else { Some(usable[rng.below(usable.len())]) };
            edges[a][k] = b;
            obj(addr[a])[1 + k] = b.map_or(0, |b| addr[b]);
        }
        for (r, root) in roots.iter_mut().enumerate() {
            if rng.below(3) == 0 {
                *root = if rng.below(4) == 0 { None } else { Some(usable[rng.below(usable.len())]) };
                set_root(r, root.map_or(0, |i| addr[i]));
            }
        }
        usable.clear();
        if round % 5 == 4 {
            crate::collect();
        } else {
            crate::collect_minor();
        }
        let mut seen = vec![false; addr.len()];
        let mut todo: Vec<usize> = roots.iter().flatten().copied().collect();
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let o = obj(addr[i]);
            if o[0] != i ^ 0x5a5a {
                return Err(format!("{source}: object {i} freed or overwritten in round {round}"));
            }
            for k in 0..FIELDS {
                if o[1 + k] != edges[i][k].map_or(0, |b| addr[b]) {
                    return Err(format!("{source}: object {i} field {k} changed in round {round}"));
                }
                if let Some(b) = edges[i][k] {
                    todo.push(b);
                }
            }
            usable.push(i);
        }
        // Scribble over fresh allocations: a wrongly freed object would be reused here.
        for _ in 0..200 {
            let p = crate::malloc(8 * (1 + FIELDS)) as usize;
            obj(p).fill(0xdead_beef);
        }
    }
    let s = crate::stats();
    if s.collections < rounds as u64 {
        return Err(format!("{source}: only {} collections", s.collections));
    }
    if s.live_bytes >= s.total_bytes as usize / 4 {
        return Err(format!("{source}: garbage was not freed: {s:?}"));
    }
    if generational && source != "none" && s.full == s.collections {
        return Err(format!("{source}: generational, yet every collection was full: {s:?}"));
    }
    Ok(s)
}

/// Four threads each keep a private list alive only from their own stacks and
/// registers while they allocate, so collections stop them mid-work; every list
/// must come back intact. Generational.
pub fn threads(n: usize) -> Result<Stats, String> {
    crate::enable_generational();
    let hs: Vec<_> = (0..n)
        .map(|t| {
            std::thread::spawn(move || {
                crate::register_thread();
                let mut head = 0usize;
                for i in 0..3000usize {
                    let node = crate::malloc(16) as *mut usize;
                    // SAFETY: a fresh 16-byte object.
                    unsafe {
                        node.write(head);
                        node.add(1).write(t * 1_000_000 + i);
                    }
                    head = node as usize;
                    // Garbage, so collections happen while the threads work.
                    let _ = crate::malloc(400);
                }
                let (mut sum, mut count) = (0usize, 0usize);
                let mut p = core::hint::black_box(head);
                // Bounded: a list whose nodes were freed and reused may have become a cycle.
                while p != 0 && count <= 3000 {
                    // SAFETY: the list's nodes, alive if the collector is right.
                    unsafe {
                        sum = sum.wrapping_add((*(p as *const usize).add(1)).wrapping_sub(t * 1_000_000));
                        p = *(p as *const usize);
                    }
                    count += 1;
                }
                crate::unregister_thread();
                (count, sum)
            })
        })
        .collect();
    for (t, h) in hs.into_iter().enumerate() {
        let got = h.join().map_err(|_| format!("thread {t} panicked"))?;
        if got != (3000, 3000 * 2999 / 2) {
            return Err(format!("{}: thread {t}'s list lost nodes: (count, sum) = {got:?}", crate::source_name()));
        }
    }
    let s = crate::stats();
    if s.collections == 0 {
        return Err("no collection ran while the threads worked".into());
    }
    Ok(s)
}

/// The missing-invalidation check (Dune mode): a page is written (the TLB caches
/// it dirty), its D bit harvested, and it is written again with no system call or
/// exit in between. Returns how many of `rounds` second writes were seen with the
/// flush and without it (the negative control). With the flush, every one must be.
pub fn tlb_invalidation(rounds: u32) -> Result<(u32, u32), String> {
    use crate::dirty::{DirtySource, DuneDirtySource};
    let len = 16 * 4096;
    // SAFETY: a fresh private mapping.
    let buf = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE, -1, 0) };
    if buf == libc::MAP_FAILED {
        return Err("mmap".into());
    }
    let base = buf as usize;
    let write = |page: usize, v: u8| {
        // SAFETY: within the mapping.
        unsafe { ((base + page * 4096) as *mut u8).write_volatile(v) }
    };
    let mut seen = [0u32; 2];
    for round in 0..rounds {
        for (i, flush) in [true, false].into_iter().enumerate() {
            let mut s = if flush { DuneDirtySource::new()? } else { DuneDirtySource::without_flush_for_test()? };
            write(3, round as u8);
            s.arm(base, 8 * 4096)?;
            write(3, 1);
            let d1 = s.harvest(base, 8 * 4096)?;
            write(3, 2);
            let d2 = s.harvest(base, 8 * 4096)?;
            if flush && !(d1[3] && d2[3]) {
                return Err(format!("round {round}: a write after the harvest was missed: {d1:?} {d2:?}"));
            }
            if flush && d2[5] {
                return Err("a page never written reported dirty".into());
            }
            seen[i] += d2[3] as u32;
        }
    }
    Ok((seen[0], seen[1]))
}
