//! The Rust API's check, in a process of its own (it replaces the global
//! allocator): `dune-gc-rust SOURCE`. Lists of `Gc<Node>` held in a `Vec` (itself in
//! the collected heap) are rebuilt, spliced and dropped for many collections and
//! checked against a model; threads started with `dune_gc::spawn` build their own.
//! Prints `ok rust SOURCE: ...`, `UNAVAILABLE: why` (exit 3) or the failure (exit 1).

use dune_gc::{Gc, GcAllocator};

#[global_allocator]
static A: GcAllocator = GcAllocator;

#[derive(Clone, Copy)]
struct Node {
    value: u64,
    next: Option<Gc<Node>>,
}

fn sum(mut l: Option<Gc<Node>>) -> (u64, u64) {
    let (mut s, mut n) = (0, 0);
    while let Some(g) = l {
        let node = g.get();
        s += node.value;
        n += 1;
        l = node.next;
    }
    (s, n)
}

fn build(from: u64, n: u64) -> Option<Gc<Node>> {
    let mut l = None;
    for i in 0..n {
        l = Some(Gc::new(Node { value: from + i, next: l }));
    }
    l
}

fn run() -> Result<String, String> {
    let mut lists: Vec<Option<Gc<Node>>> = Vec::new();
    let mut model: Vec<(u64, u64)> = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..300u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = 50 + x % 400;
        let from = round * 1000;
        if lists.len() < 64 {
            lists.push(build(from, n));
            model.push(((from..from + n).sum(), n));
        } else {
            // Replace one list (the old one is garbage) and splice another onto a
            // fresh head: an old object gets a pointer to a young one.
            let i = (x as usize >> 8) % lists.len();
            lists[i] = build(from, n);
            model[i] = ((from..from + n).sum(), n);
            let j = (x as usize >> 20) % lists.len();
            if let Some(head) = lists[j] {
                let extra = Gc::new(Node { value: 7, next: head.get().next });
                head.set(Node { value: head.get().value, next: Some(extra) });
                model[j].0 += 7;
                model[j].1 += 1;
            }
        }
        if round % 10 == 9 {
            dune_gc::collect_minor();
        }
        for (k, l) in lists.iter().enumerate() {
            if sum(*l) != model[k] {
                return Err(format!("round {round}: list {k} is {:?}, the model says {:?}", sum(*l), model[k]));
            }
        }
    }
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            dune_gc::spawn(move || {
                let mut keep = Vec::new();
                for r in 0..50 {
                    keep.push(build(t * 1_000_000 + r * 100, 100));
                    let _garbage = build(0, 200);
                }
                keep.iter().map(|l| sum(*l)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        let got = h.join().map_err(|_| format!("thread {t} panicked"))?;
        let want: u64 = (0..50u64).map(|r| (0..100u64).map(|i| t as u64 * 1_000_000 + r * 100 + i).sum::<u64>()).sum();
        if got != (want, 5000) {
            return Err(format!("thread {t}: {got:?}, expected {:?}", (want, 5000)));
        }
    }
    dune_gc::collect();
    let s = dune_gc::stats();
    if s.collections < 5 || s.live_bytes * 4 > s.total_bytes as usize {
        return Err(format!("too few collections or garbage not freed: {s:?}"));
    }
    Ok(format!("{s:?}"))
}

fn main() {
    let source = std::env::args().nth(1).unwrap_or_else(|| "none".into());
    // SAFETY: GcAllocator is this program's global allocator (above); no Gc is kept
    // in thread-local storage or foreign memory; threads run through dune_gc::spawn.
    if let Err(e) = unsafe { dune_gc::init_rust(Some(&source)) } {
        println!("UNAVAILABLE: {e}");
        std::process::exit(3);
    }
    dune_gc::enable_generational();
    match run() {
        Ok(s) => println!("ok rust {source}: {s}"),
        Err(e) => {
            println!("FAILED rust {source}: {e}");
            std::process::exit(1);
        }
    }
}
