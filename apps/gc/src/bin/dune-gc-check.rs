//! Runs one correctness check of `dune_gc::check` in a process of its own (the
//! collector is per process), in Dune mode when the source needs it:
//!
//!   dune-gc-check graph SOURCE full|generational
//!   dune-gc-check threads SOURCE
//!   dune-gc-check tlb
//!
//! Prints `ok ...` and the counters, or `UNAVAILABLE: why` (exit 3) for a source
//! this kernel or machine lacks, or the failure (exit 1).

use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (what, source) = match a.as_slice() {
        ["graph", s, "full" | "generational"] | ["threads", s] => (a[0], *s),
        ["tlb"] => ("tlb", "dune-dirty"),
        _ => {
            eprintln!("usage: dune-gc-check graph SOURCE full|generational | threads SOURCE | tlb");
            exit(2)
        }
    };
    // The TLB check uses the source alone, without a collector (whose heap
    // reservation changes when this lane's TCG happens to drop translations).
    let ready = if what == "tlb" { libdune::enter().map_err(|e| e.to_string()) } else { dune_gc::init(Some(source)) };
    if let Err(e) = ready {
        println!("UNAVAILABLE: {e}");
        exit(3);
    }
    let r = match what {
        "graph" => dune_gc::check::graph(a[2] == "generational", 40, 0x9e37_79b9_7f4a_7c15).map(|s| format!("{s:?}")),
        "threads" => dune_gc::check::threads(4).map(|s| format!("{s:?}")),
        _ => dune_gc::check::tlb_invalidation(50).map(|(w, wo)| format!("with the flush {w}/50 second writes seen, without {wo}/50")),
    };
    match r {
        Ok(s) => println!("ok {} {}: {s}", args.join(" "), if what == "tlb" { source } else { dune_gc::source_name() }),
        Err(e) => {
            println!("FAILED {}: {e}", args.join(" "));
            exit(1)
        }
    }
}
