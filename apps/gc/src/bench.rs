//! `dune bench gc`: the paper's Table 6 (§5.3) in one run. Each benchmark program
//! (`apps/gc/bench`, built by `apps/gc/build-c.sh` against dune-gc and against
//! Debian's bdwgc) runs once per collector and dirty source, in a process of its
//! own; in the Dune rows the collector enters Dune mode at `GC_INIT` and libdune
//! reports the exits (`DUNE_STATS=1`). This module runs them, parses their `result` lines and formats the table,
//! the paper's figures beside it, a JSON document and an SVG chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The four programs, in the paper's order.
pub const PROGRAMS: [&str; 4] = ["gcbench", "linkedlist", "hashmap", "xml"];

/// The paper's Table 6: collections, allocation MB, heap MB, then Normal, Dune,
/// Dune TLB and Dune dirty in ms.
pub const PAPER: [(&str, [f64; 7]); 4] = [
    ("gcbench", [542.0, 938.0, 28.0, 1224.0, 1176.0, 933.0, 888.0]),
    ("linkedlist", [33971.0, 15257.0, 1387.0, 15983.0, 16884.0, 14234.0, 11760.0]),
    ("hashmap", [161.0, 10352.0, 27.0, 14160.0, 13715.0, 11124.0, 8391.0]),
    ("xml", [10.0, 1753.0, 1737.0, 6663.0, 7930.0, 7474.0, 6675.0]),
];

/// One way of running a program.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// Row label.
    pub label: &'static str,
    /// The paper's column it corresponds to, if any.
    pub paper: Option<&'static str>,
    /// `bdwgc-NAME` or `dune-NAME`.
    pub bdwgc: bool,
    /// `DUNE_GC_DIRTY`.
    pub source: &'static str,
    /// `GC_BENCH_INCREMENTAL=1`.
    pub incremental: bool,
    /// Forces bdwgc onto mprotect (`GC_USE_GETWRITEWATCH=0`).
    pub force_mprotect: bool,
    /// In Dune mode: the collector enters it at `GC_INIT` (`DUNE_GC_ENTER=1` for
    /// sources that do not need it), and `DUNE_STATS=1` reports the exits.
    pub dune_mode: bool,
}

const fn v(label: &'static str, paper: Option<&'static str>, bdwgc: bool, source: &'static str, incremental: bool, force_mprotect: bool, dune_mode: bool) -> Variant {
    Variant { label, paper, bdwgc, source, incremental, force_mprotect, dune_mode }
}

/// Every row, Linux first.
pub const VARIANTS: [Variant; 11] = [
    v("bdwgc", None, true, "", false, false, false),
    v("bdwgc incremental", None, true, "", true, false, false),
    v("bdwgc mprotect", None, true, "", true, true, false),
    v("dune-gc none", None, false, "none", false, false, false),
    v("dune-gc mprotect", Some("Normal"), false, "mprotect", true, false, false),
    v("dune-gc soft-dirty", None, false, "soft-dirty", true, false, false),
    v("dune-gc uffd", None, false, "uffd", true, false, false),
    v("dune-gc none, Dune mode", None, false, "none", false, false, true),
    v("dune-gc mprotect, Dune mode", Some("Dune"), false, "mprotect", true, false, true),
    v("dune-gc dune-fault", Some("Dune TLB"), false, "dune-fault", true, false, true),
    v("dune-gc dune-dirty", Some("Dune dirty"), false, "dune-dirty", true, false, true),
];

/// What one run measured (or why it did not run).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub program: &'static str,
    pub variant: usize,
    /// `None` when it ran; otherwise why not (unavailable source, failure).
    pub error: Option<String>,
    /// The `result` line's fields.
    pub source: String,
    pub mode: String,
    pub collections: u64,
    pub alloc_bytes: u64,
    pub heap_bytes: u64,
    pub ms: f64,
    pub pause_max_us: f64,
    pub pause_total_us: f64,
    pub faults: u64,
    pub dirty_pages: u64,
    /// From libdune's `DUNE_STATS=1` line: system calls forwarded, faults, signals, interrupted runs.
    pub exits: Option<[u64; 4]>,
}

/// Options.
pub struct Options {
    /// Where `dune-NAME` and `bdwgc-NAME` are.
    pub dir: PathBuf,
    /// Work divisor (1: the paper's sizes).
    pub scale: u64,
    /// Programs to run.
    pub programs: Vec<&'static str>,
    /// Per-run limit.
    pub limit: Duration,
    /// Runs per row; the one with the median time is reported (TCG's times vary
    /// by a quarter from run to run).
    pub reps: usize,
}

fn field<T: std::str::FromStr + Default>(line: &str, key: &str) -> T {
    line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('='))).and_then(|v| v.parse().ok()).unwrap_or_default()
}

/// Parses `dune: stats: pid P: A system calls forwarded, B faults reached the
/// runtime, C signals delivered, D interrupted runs` (summed over processes).
fn exits(stderr: &str) -> Option<[u64; 4]> {
    let mut total = None::<[u64; 4]>;
    for l in stderr.lines().filter(|l| l.starts_with("dune: stats: pid")) {
        let rest = l.splitn(4, ':').nth(3)?;
        let nums: Vec<u64> = rest.split([',', ';']).take(4).filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect();
        if nums.len() == 4 {
            let t = total.get_or_insert([0; 4]);
            for i in 0..4 {
                t[i] += nums[i];
            }
        }
    }
    total
}

/// Runs one program one way.
pub fn run_one(o: &Options, program: &'static str, variant: usize) -> Outcome {
    let v = &VARIANTS[variant];
    let mut out = Outcome { program, variant, ..Outcome::default() };
    let exe = o.dir.join(format!("{}-{program}", if v.bdwgc { "bdwgc" } else { "dune" }));
    if !exe.is_file() {
        out.error = Some(format!("{} missing: build it with apps/gc/build-c.sh", exe.display()));
        return out;
    }
    let mut cmd = Command::new(&exe);
    cmd.arg(o.scale.to_string()).env_remove("DUNE_STATS").env_remove("GC_BENCH_INCREMENTAL").env_remove("DUNE_GC_DIRTY").env_remove("DUNE_GC_ENTER");
    if v.dune_mode {
        cmd.env("DUNE_GC_ENTER", "1").env("DUNE_STATS", "1");
    }
    if !v.bdwgc {
        cmd.env("DUNE_GC_DIRTY", v.source);
    }
    if v.incremental {
        cmd.env("GC_BENCH_INCREMENTAL", "1");
    }
    if v.force_mprotect {
        cmd.env("GC_USE_GETWRITEWATCH", "0");
    }
    let tmp = std::env::temp_dir().join(format!("dune-bench-gc-{}-{program}-{variant}", std::process::id()));
    let (so, se) = (tmp.with_extension("out"), tmp.with_extension("err"));
    let files = std::fs::File::create(&so).and_then(|a| Ok((a, std::fs::File::create(&se)?)));
    let Ok((fo, fe)) = files else {
        out.error = Some(format!("cannot create {}", so.display()));
        return out;
    };
    let child = cmd.stdin(Stdio::null()).stdout(fo).stderr(fe).spawn();
    let status = match child {
        Err(e) => Err(format!("{}: {e}", exe.display())),
        Ok(mut c) => {
            let t0 = Instant::now();
            loop {
                match c.try_wait() {
                    Ok(Some(st)) => break Ok(st),
                    Ok(None) if t0.elapsed() > o.limit => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break Err(format!("still running after {} s: killed", o.limit.as_secs()));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => break Err(e.to_string()),
                }
            }
        }
    };
    let stdout = std::fs::read_to_string(&so).unwrap_or_default();
    let stderr = std::fs::read_to_string(&se).unwrap_or_default();
    let _ = (std::fs::remove_file(&so), std::fs::remove_file(&se));
    let line = stdout.lines().find(|l| l.starts_with(&format!("result {program} ")));
    match (status, line) {
        (Ok(st), Some(line)) if st.success() => {
            out.source = field(line, "source");
            out.mode = field(line, "mode");
            out.collections = field(line, "collections");
            out.alloc_bytes = field(line, "alloc_bytes");
            out.heap_bytes = field(line, "heap_bytes");
            out.ms = field(line, "ms");
            out.pause_max_us = field(line, "pause_max_us");
            out.pause_total_us = field(line, "pause_total_us");
            out.faults = field(line, "faults");
            out.dirty_pages = field(line, "dirty_pages");
            out.exits = exits(&stderr);
            if v.dune_mode && out.exits.is_none() {
                out.error = Some("no exit counters (DUNE_STATS=1 printed none)".into());
            }
        }
        (Ok(st), _) => {
            let why = stderr.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with("dune: stats")).unwrap_or("no result line").trim();
            let unavailable = why.contains("dune-gc: ") && (why.contains("kernel") || why.contains("userfaultfd") || why.contains("entering Dune mode"));
            out.error = Some(if unavailable { format!("unavailable: {}", why.trim_start_matches("dune-gc: ").trim_start_matches("dune: ")) } else { format!("failed ({st}): {why}") });
        }
        (Err(e), _) => out.error = Some(e),
    }
    out
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// The row's time, if it ran.
fn ms_of(rows: &[Outcome], program: &str, label: &str) -> Option<f64> {
    rows.iter().find(|r| r.program == program && VARIANTS[r.variant].label == label && r.error.is_none()).map(|r| r.ms)
}

/// The text report.
pub fn report(rows: &[Outcome], header: &str, scale: u64, virtual_time: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "dune bench gc: the paper's Table 6 (§5.3); every collector and dirty source, one run\n{header}");
    let _ = writeln!(s, "work divisor {scale}, the median of several runs per row (1 = the paper's sizes: GCBench depths 4..16, LinkedList 10,000 lists, HashMap 3,000,000 updates, XML 150 MB)");
    if virtual_time {
        let _ = writeln!(s, "WARNING: this CPU is emulated (QEMU TCG): times are virtual. Compare ratios, and the counts per collection, which do not depend on the machine.");
    }
    for p in PROGRAMS.iter().filter(|p| rows.iter().any(|r| r.program == **p)) {
        let _ = writeln!(s, "\n{p:<40} {:>6} {:>9} {:>8} {:>9} {:>7} {:>9} {:>9} {:>11} {:>10}", "colls", "alloc MB", "heap MB", "time ms", "vs Nrm", "pause ms", "dirty/c", "faults/c", "exits/c");
        let normal = ms_of(rows, p, "dune-gc mprotect");
        for r in rows.iter().filter(|r| r.program == *p) {
            let v = &VARIANTS[r.variant];
            let label = match v.paper {
                Some(pp) => format!("{} ({pp})", v.label),
                None if v.bdwgc && r.error.is_none() => format!("{} [{} {}]", v.label, r.source, r.mode),
                None => v.label.to_string(),
            };
            if let Some(e) = &r.error {
                let short: String = e.split("; ").next().unwrap_or(e).chars().take(110).collect();
                let _ = writeln!(s, "  {label:<38} {short}");
                continue;
            }
            let c = r.collections.max(1) as f64;
            let exits = r.exits.map_or("-".to_string(), |e| format!("{:.1}", e.iter().sum::<u64>() as f64 / c));
            let faults = if v.bdwgc { "-".to_string() } else { format!("{:.1}", r.faults as f64 / c) };
            let dirty = if v.bdwgc { "-".to_string() } else { format!("{:.0}", r.dirty_pages as f64 / c) };
            let rel = normal.map_or("-".to_string(), |n| format!("{:.2}", r.ms / n));
            let _ = writeln!(s, "  {label:<38} {:>6} {:>9.0} {:>8.1} {:>9.1} {:>7} {:>9.2} {:>9} {:>11} {:>10}", r.collections, mb(r.alloc_bytes), mb(r.heap_bytes), r.ms, rel, r.pause_max_us / 1e3, dirty, faults, exits);
        }
    }
    let _ = writeln!(s, "\nThe paper's Table 6 (Dune on VT-x, modified bdwgc), beside ours (time relative to Normal = dune-gc mprotect on Linux):");
    let _ = writeln!(s, "{:<12} {:>7} {:>9} {:>8} | {:>8} {:>8} {:>8} {:>9} | {:>8} {:>8} {:>9}", "", "colls", "alloc MB", "heap MB", "Normal", "Dune", "DuneTLB", "Dunedirty", "ours Dn", "ours TLB", "ours dirty");
    for (p, t) in PAPER.iter().filter(|(p, _)| rows.iter().any(|r| r.program == *p)) {
        let ours = |l: &str| match (ms_of(rows, p, l), ms_of(rows, p, "dune-gc mprotect")) {
            (Some(a), Some(n)) => format!("{:.2}", a / n),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "{p:<12} {:>7.0} {:>9.0} {:>8.0} | {:>8.0} {:>8.2} {:>8.2} {:>9.2} | {:>8} {:>8} {:>9}",
            t[0], t[1], t[2], t[3], t[4] / t[3], t[5] / t[3], t[6] / t[3],
            ours("dune-gc mprotect, Dune mode"), ours("dune-gc dune-fault"), ours("dune-gc dune-dirty")
        );
    }
    let _ = writeln!(s, "\nThe cost of tracking dirty pages, each mode against its own full-collection row (the lane's nested paging makes every Dune row slower than Linux alike):");
    for p in PROGRAMS {
        let ratio = |a: &str, b: &str| match (ms_of(rows, p, a), ms_of(rows, p, b)) {
            (Some(x), Some(y)) => format!("{:.2}", x / y),
            _ => "-".into(),
        };
        if rows.iter().any(|r| r.program == p) {
            let _ = writeln!(
                s,
                "  {p:<11} Linux: mprotect {} soft-dirty {} uffd {} | Dune mode: mprotect {} dune-fault {} dune-dirty {}",
                ratio("dune-gc mprotect", "dune-gc none"),
                ratio("dune-gc soft-dirty", "dune-gc none"),
                ratio("dune-gc uffd", "dune-gc none"),
                ratio("dune-gc mprotect, Dune mode", "dune-gc none, Dune mode"),
                ratio("dune-gc dune-fault", "dune-gc none, Dune mode"),
                ratio("dune-gc dune-dirty", "dune-gc none, Dune mode")
            );
        }
    }
    let _ = writeln!(s, "\nGoals: dune-dirty against bdwgc with mprotect (the paper: 26-41% faster on the first three, 0.2% slower on XML), and on XML against the best Linux row:");
    for (p, t) in PAPER.iter() {
        let (Some(dd), Some(bm)) = (ms_of(rows, p, "dune-gc dune-dirty"), ms_of(rows, p, "bdwgc mprotect")) else { continue };
        let best_linux = rows.iter().filter(|r| r.program == *p && r.error.is_none() && !VARIANTS[r.variant].dune_mode).map(|r| r.ms).fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            s,
            "  {p:<11} dune-dirty {:.1} ms vs bdwgc mprotect {:.1} ms: {:+.0}% (paper {:+.0}%); vs best Linux row {:.1} ms: {:+.0}%",
            dd, bm, (dd / bm - 1.0) * 100.0, (t[6] / t[3] - 1.0) * 100.0, best_linux, (dd / best_linux - 1.0) * 100.0
        );
    }
    s
}

/// The results as JSON.
pub fn json(rows: &[Outcome], scale: u64, virtual_time: bool) -> String {
    let esc = |x: &str| x.replace('\\', "\\\\").replace('"', "\\\"");
    let mut s = format!("{{\"suite\":\"gc\",\"scale\":{scale},\"virtual_time\":{virtual_time},\"rows\":[");
    for (i, r) in rows.iter().enumerate() {
        let v = &VARIANTS[r.variant];
        let _ = write!(
            s,
            "{}{{\"program\":\"{}\",\"variant\":\"{}\",\"paper_column\":{},\"error\":{},\"source\":\"{}\",\"mode\":\"{}\",\"collections\":{},\"alloc_bytes\":{},\"heap_bytes\":{},\"ms\":{},\"pause_max_us\":{},\"pause_total_us\":{},\"faults\":{},\"dirty_pages\":{},\"exits\":{}}}",
            if i > 0 { "," } else { "" },
            r.program,
            v.label,
            v.paper.map_or("null".into(), |p| format!("\"{p}\"")),
            r.error.as_ref().map_or("null".into(), |e| format!("\"{}\"", esc(e))),
            esc(&r.source),
            esc(&r.mode),
            r.collections,
            r.alloc_bytes,
            r.heap_bytes,
            r.ms,
            r.pause_max_us,
            r.pause_total_us,
            r.faults,
            r.dirty_pages,
            r.exits.map_or("null".into(), |e| format!("{{\"syscalls\":{},\"faults\":{},\"signals\":{},\"interrupted\":{}}}", e[0], e[1], e[2], e[3]))
        );
    }
    s.push_str("]}\n");
    s
}

/// An SVG chart, one panel per program: a labelled bar per way (time relative to
/// Normal, dune-gc mprotect on Linux, with the time itself), coloured by family
/// (bdwgc, dune-gc on Linux, dune-gc in Dune mode), the paper's ratio beside the four
/// ways it measured, and why a way has no bar.
pub fn svg(rows: &[Outcome], virtual_time: bool) -> String {
    let progs: Vec<&str> = PROGRAMS.iter().copied().filter(|p| rows.iter().any(|r| r.program == *p)).collect();
    let (w, left, right, row, head, panel_head, axis) = (1100.0, 230.0, 330.0, 20.0, 70.0, 30.0, 26.0);
    let panel_h = panel_head + VARIANTS.len() as f64 * row + axis;
    let h = head + progs.len() as f64 * panel_h + 10.0;
    // A log scale in powers of two around 1x: ratios compare by factors, and one
    // slow way (mprotect in Dune mode takes a VM exit per write fault) does not
    // squash the rest.
    let ratio = |p: &str, label: &str| Some(ms_of(rows, p, label)? / ms_of(rows, p, "dune-gc mprotect")?);
    let all: Vec<f64> = progs.iter().flat_map(|p| VARIANTS.iter().filter_map(move |v| ratio(p, v.label))).filter(|r| *r > 0.0).collect();
    let pow2 = |r: f64, up: bool| 2f64.powf(if up { r.log2().ceil() } else { r.log2().floor() });
    let lo = pow2(all.iter().copied().fold(0.5f64, f64::min) / 1.2, false);
    let hi = pow2(all.iter().copied().fold(2.0f64, f64::max) * 1.2, true);
    let x = |r: f64| left + (w - left - right) * ((r.clamp(lo, hi) / lo).ln() / (hi / lo).ln());
    let family = |vi: usize| match vi {
        0..=2 => "#888",
        3..=6 => "#4a90d9",
        _ => "#e6750a",
    };
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(s, "<text x=\"{}\" y=\"24\" font-size=\"18\" text-anchor=\"middle\">dune bench gc: time relative to Normal (dune-gc mprotect on Linux), log scale, lower is faster</text>", w / 2.0);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"44\" font-size=\"12\" fill=\"#555\" text-anchor=\"middle\">{}grey: bdwgc; blue: dune-gc on Linux; orange: dune-gc in Dune mode; black tick and grey number: the paper's ratio</text>",
        w / 2.0,
        if virtual_time { "VIRTUAL TIMES (TCG), not hardware. " } else { "" }
    );
    for (pi, p) in progs.iter().enumerate() {
        let top = head + pi as f64 * panel_h;
        let _ = writeln!(s, "<text x=\"16\" y=\"{:.1}\" font-size=\"15\">{p}</text>", top + 20.0);
        let bottom = top + panel_head + VARIANTS.len() as f64 * row;
        let mut t = lo;
        while t <= hi * 1.0001 {
            let label = if t < 1.0 { format!("{t}x") } else { format!("{t:.0}x") };
            let _ = writeln!(s, "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{3}\"/><text x=\"{0:.1}\" y=\"{4:.1}\" text-anchor=\"middle\" fill=\"#555\">{label}</text>", x(t), top + panel_head - 4.0, bottom, if t == 1.0 { "#999" } else { "#e4e4e4" }, bottom + 16.0);
            t *= 2.0;
        }
        for (vi, v) in VARIANTS.iter().enumerate() {
            let y = top + panel_head + vi as f64 * row;
            let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", left - 8.0, y + 13.0, v.label);
            // The bar, then the paper's tick over it, then the numbers.
            let run = rows.iter().find(|r| r.program == *p && r.variant == vi);
            let text = match (run, ratio(p, v.label)) {
                (Some(r), Some(q)) => {
                    let _ = writeln!(s, "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>", y + 3.0, x(q) - left, row - 6.0, family(vi));
                    format!("<text x=\"{:.1}\" y=\"{:.1}\">{q:.2}x ({:.1} ms)</text>", x(q) + 6.0, y + 13.0, r.ms)
                }
                (Some(Outcome { error: Some(e), .. }), _) => {
                    let e: String = e.chars().take(60).collect::<String>().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                    format!("<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a00\">no bar: {e}</text>", left + 6.0, y + 13.0)
                }
                _ => format!("<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777\">not run</text>", left + 6.0, y + 13.0),
            };
            if let (Some(col), Some((_, t))) = (v.paper, PAPER.iter().find(|(pp, _)| pp == p)) {
                let idx = ["Normal", "Dune", "Dune TLB", "Dune dirty"].iter().position(|c| *c == col).unwrap_or(0);
                let r = t[3 + idx] / t[3];
                let _ = writeln!(s, "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"black\" stroke-width=\"2\"/>", x(r), y + 1.0, y + row - 1.0);
                let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777\">paper {r:.2}x ({col})</text>", w - 180.0, y + 13.0);
            }
            s.push_str(&text);
            s.push('\n');
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Runs every program every way (`programs` in order, variants in order).
pub fn run(o: &Options, progress: &mut dyn FnMut(&Outcome)) -> Vec<Outcome> {
    let mut rows = Vec::new();
    for p in &o.programs {
        for vi in 0..VARIANTS.len() {
            let mut runs = vec![run_one(o, p, vi)];
            while runs.len() < o.reps.max(1) && runs[0].error.is_none() {
                let r = run_one(o, p, vi);
                if r.error.is_some() {
                    runs = vec![r];
                    break;
                }
                runs.push(r);
            }
            runs.sort_by(|a, b| a.ms.total_cmp(&b.ms));
            let r = runs.swap_remove(runs.len() / 2);
            progress(&r);
            rows.push(r);
        }
    }
    rows
}

/// Whether `p` is a program name.
pub fn program(p: &str) -> Option<&'static str> {
    PROGRAMS.iter().copied().find(|q| *q == p)
}

/// The default program directory: `<dir of dune>/../release/gc` or `<dir>/gc`.
pub fn default_dir(dune: &Path) -> PathBuf {
    let d = dune.parent().unwrap_or(Path::new("."));
    let rel = d.join("../release/gc");
    if rel.join("dune-gcbench").is_file() {
        rel
    } else {
        d.join("gc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every program a panel, every way a labelled row (a bar, or why none), the
    /// paper's ratios beside their ways; written to the temporary directory for a
    /// look (`dune-bench-gc-chart-test.svg`).
    #[test]
    fn the_chart_labels_every_way_of_every_program() {
        let mut rows = Vec::new();
        for (pi, p) in PROGRAMS.iter().enumerate() {
            for vi in 0..VARIANTS.len() {
                let error = (vi == 6 && pi == 1).then(|| "userfaultfd: not permitted".to_string());
                rows.push(Outcome { program: p, variant: vi, error, ms: 100.0 + (vi * 37 % 90) as f64 + pi as f64 * 10.0, ..Default::default() });
            }
        }
        let svg = svg(&rows, true);
        for p in PROGRAMS {
            assert!(svg.contains(&format!(">{p}</text>")), "{p}");
        }
        for v in VARIANTS {
            assert_eq!(svg.matches(&format!(">{}</text>", v.label)).count(), PROGRAMS.len(), "{}", v.label);
        }
        assert!(svg.contains("no bar: userfaultfd: not permitted") && svg.contains("paper 0.96x (Dune)") && svg.contains("VIRTUAL TIMES"), "{svg}");
        std::fs::write(std::env::temp_dir().join("dune-bench-gc-chart-test.svg"), svg).unwrap();
    }

    #[test]
    fn exit_counters_are_summed_over_processes() {
        let err = "noise\ndune: stats: pid 12: 30 system calls forwarded, 2 faults reached the runtime, 7 signals delivered, 1 interrupted runs; 9 memslots (40 MiB)\ndune: stats: pid 13: 1 system calls forwarded, 0 faults reached the runtime, 0 signals delivered, 0 interrupted runs\n";
        assert_eq!(super::exits(err), Some([31, 2, 7, 1]));
        assert_eq!(super::exits("nothing"), None);
    }

    #[test]
    fn result_fields_parse() {
        let l = "result gcbench collector=dune-gc source=dune-dirty mode=generational collections=12 alloc_bytes=99 ms=1.5";
        assert_eq!(super::field::<u64>(l, "collections"), 12);
        assert_eq!(super::field::<f64>(l, "ms"), 1.5);
        assert_eq!(super::field::<String>(l, "source"), "dune-dirty");
        assert_eq!(super::field::<u64>(l, "faults"), 0);
    }
}
