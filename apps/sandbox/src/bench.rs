//! The sandbox's application benchmarks (`dune bench --sandbox`), native and
//! sandboxed side by side in one run:
//!
//! - **lighttpd** (Debian's package) serving a small static page to `wrk` over
//!   loopback, with 1 and with 100 connections: requests per second natively, in the
//!   sandbox, and in the sandbox with `--exitless`; from the monitor's `--stats` the
//!   system calls per request by verdict and the exits to the host per request (the
//!   paper's Table 4 figures beside them);
//! - **CPU-bound programs** (the paper used SPEC2000): compressors, a hash, sqlite
//!   and python, timed end to end, best of a few runs each way.
//!
//! It starts and stops every server itself; lighttpd and wrk must be installed
//! (`scripts/bench-sandbox` installs them and runs this in the VM lane).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A program it needs is missing.
    #[error("{0} is not installed (scripts/bench-sandbox installs what the benchmark needs)")]
    Missing(&'static str),
    /// Something failed on the way.
    #[error("{0}")]
    Failed(String),
}

fn failed(what: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(what.to_string())
}

/// What to run: `dune` (the binary that sandboxes), quick or full sizes.
pub struct Options {
    /// The `dune` binary (runs `dune sandbox`).
    pub dune: PathBuf,
    /// Short runs and small inputs.
    pub quick: bool,
}

fn find(prog: &'static str) -> Result<PathBuf, BenchError> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(prog);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(BenchError::Missing(prog))
}

fn sandboxed(dune: &Path, opts: &[&str], argv: &[&str]) -> Command {
    let mut c = Command::new(dune);
    c.arg("sandbox").args(opts).arg("--").args(argv);
    c
}

/// Monitor counts from a `--stats` line: emulated, forwarded, denied, host exits.
pub fn parse_stats(stderr: &str) -> Option<[u64; 4]> {
    let l = stderr.lines().rev().find(|l| l.contains("] stats: "))?;
    let before = |s: &str, w: &str| -> Option<u64> {
        let i = s.find(w)?;
        s[..i].trim_end().rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let host = &l[l.find("exits to the host:")?..];
    Some([before(l, "emulated")?, before(l, "forwarded")?, before(l, "denied)")?, before(host, "system calls")?])
}

// ---- lighttpd ---------------------------------------------------------------------

/// One lighttpd measurement.
#[derive(Debug, Clone)]
pub struct Web {
    pub connections: u32,
    pub native_rps: f64,
    pub sandbox_rps: f64,
    /// Per request in the sandbox: emulated, forwarded, denied calls, host exits.
    pub per_request: [f64; 4],
    /// The same with `--exitless`: requests per second, host exits per request.
    pub exitless_rps: f64,
    pub exitless_exits: f64,
}

fn wait_port(port: u16, child: &mut Child) -> Result<(), BenchError> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(failed(format!("lighttpd exited before serving ({st})")));
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            let mut b = Vec::new();
            let _ = s.read_to_end(&mut b);
            if b.starts_with(b"HTTP/1.") && b.windows(5).any(|w| w == b"hello") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(failed("lighttpd did not answer within 60 s"))
}

/// Runs wrk; returns (requests per second, requests).
fn wrk(wrk: &Path, port: u16, conns: u32, secs: u32) -> Result<(f64, u64), BenchError> {
    let out = Command::new(wrk)
        .args(["-t1", "--timeout", "30s", &format!("-c{conns}"), &format!("-d{secs}s"), &format!("http://127.0.0.1:{port}/index.html")])
        .output()
        .map_err(|e| failed(format!("wrk: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok());
    let reqs = text.lines().find_map(|l| l.split_once(" requests in ")).and_then(|(n, _)| n.trim().parse().ok());
    // A socket error or two at the end of a run (connections cut when wrk stops) is
    // normal; non-2xx answers or more errors than 1 in 1000 requests are not.
    let socket_errors: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |l| l.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum());
    let bad = text.lines().any(|l| l.contains("Non-2xx"));
    match (rps, reqs) {
        (Some(r), Some(n)) if !bad && n > 0 && socket_errors * 1000 <= n => Ok((r, n)),
        _ => Err(failed(format!("wrk did not report clean results:\n{text}"))),
    }
}

fn stop(child: Child) -> Result<String, BenchError> {
    // SAFETY: our own child; SIGTERM asks lighttpd to shut down (it then exits, and
    // the monitor prints its --stats line).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().map_err(|e| failed(format!("waiting for lighttpd: {e}")))?;
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// lighttpd under wrk with 1 and 100 connections, natively and sandboxed.
pub fn lighttpd(o: &Options) -> Result<Vec<Web>, BenchError> {
    let lighttpd = find("lighttpd")?;
    let wrk_bin = find("wrk")?;
    let dir = std::env::temp_dir().join(format!("dune-bench-www-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    let page = format!("<html><body>hello from lighttpd{}</body></html>\n", " ".repeat(200));
    std::fs::write(dir.join("index.html"), page).map_err(failed)?;
    let port = 18080;
    let conf = dir.join("lighttpd.conf");
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{}\"\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\nindex-file.names = (\"index.html\")\nmimetype.assign = (\".html\" => \"text/html\")\nserver.max-worker = 0\nserver.max-connections = 1024\nserver.max-fds = 2048\nserver.max-keep-alive-requests = 1000000\n",
            dir.display()
        ),
    )
    .map_err(failed)?;
    let secs = if o.quick { 3 } else { 10 };
    let (d, c) = (dir.to_string_lossy().into_owned(), conf.to_string_lossy().into_owned());
    let l = lighttpd.to_string_lossy().into_owned();
    let argv = [l.as_str(), "-D", "-f", c.as_str()];
    let mut out = Vec::new();
    for conns in [1u32, 100] {
        let mut native = Command::new(&lighttpd).args(&argv[1..]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(failed)?;
        wait_port(port, &mut native)?;
        let (native_rps, _) = wrk(&wrk_bin, port, conns, secs)?;
        stop(native)?;
        let net = format!("127.0.0.1:{port}");
        let mut runs = Vec::new();
        for extra in [None, Some("--exitless")] {
            let mut opts = vec!["--stats", "--allow-read", &d, "--allow-net", &net];
            opts.extend(extra);
            let mut sb = sandboxed(&o.dune, &opts, &argv).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(failed)?;
            wait_port(port, &mut sb)?;
            let (rps, reqs) = wrk(&wrk_bin, port, conns, secs)?;
            let err = stop(sb)?;
            let s = parse_stats(&err).ok_or_else(|| failed(format!("no --stats line from the sandboxed lighttpd:\n{err}")))?;
            runs.push((rps, s.map(|v| v as f64 / reqs as f64)));
        }
        out.push(Web { connections: conns, native_rps, sandbox_rps: runs[0].0, per_request: runs[0].1, exitless_rps: runs[1].0, exitless_exits: runs[1].1[3] });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

// ---- CPU-bound programs -------------------------------------------------------------

/// One CPU-bound program: best wall-clock seconds natively and sandboxed.
#[derive(Debug, Clone)]
pub struct Cpu {
    pub name: &'static str,
    pub native: f64,
    /// Under `dune run` (Dune mode in ring 0, no monitor): the cost of the VM alone;
    /// `None` when `dune run` cannot run it (a static program, no preload library).
    pub dune_run: Option<f64>,
    pub sandbox: f64,
    /// System calls the sandboxed run made (all verdicts) and its exits to the host.
    pub calls: u64,
    pub exits: u64,
}

fn time_once(mut c: Command) -> Result<(f64, String), BenchError> {
    let t0 = Instant::now();
    let out = c.stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(failed)?;
    let secs = t0.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(failed(format!("{c:?} failed ({}): {err}", out.status)));
    }
    Ok((secs, err))
}

/// The CPU-bound programs, natively and sandboxed (best of `runs` each).
pub fn cpu(o: &Options) -> Result<Vec<Cpu>, BenchError> {
    let dir = std::env::temp_dir().join(format!("dune-bench-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(failed)?;
    // Deterministic, compressible input: text from a fixed linear congruential stream.
    let size = if o.quick { 400_000 } else { 4_000_000 };
    let mut x: u64 = 12345;
    let words = ["dune", "kernel", "ring", "page", "table", "monitor", "sandbox", "vmcall", "exit", "fault", "signal", "thread"];
    let mut text = String::with_capacity(size + 16);
    while text.len() < size {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        text.push_str(words[(x >> 33) as usize % words.len()]);
        text.push(if (x >> 20).is_multiple_of(11) { '\n' } else { ' ' });
    }
    let input = dir.join("input.txt");
    std::fs::write(&input, &text).map_err(failed)?;
    let i = input.to_string_lossy().into_owned();
    let rows = if o.quick { 20_000 } else { 300_000 };
    let loops = if o.quick { 100_000 } else { 2_000_000 };
    let sql = format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{rows}) SELECT count(*), sum(i*i % 97), count(DISTINCT i % 1000) FROM n;");
    let py = format!("s=0\nfor k in range({loops}):\n  s=(s*31+k)%1000003\nprint(s)");
    let progs: Vec<(&'static str, Vec<String>)> = vec![
        ("gzip -9", vec![find("gzip")?.display().to_string(), "-9".into(), "-c".into(), i.clone()]),
        ("bzip2 -9", vec![find("bzip2")?.display().to_string(), "-9".into(), "-c".into(), i.clone()]),
        ("xz -6", vec![find("xz")?.display().to_string(), "-6".into(), "-c".into(), "-T1".into(), i.clone()]),
        ("zstd -19", vec![find("zstd")?.display().to_string(), "-19".into(), "-c".into(), "-q".into(), i.clone()]),
        ("sha256sum", vec![find("sha256sum")?.display().to_string(), i.clone()]),
        ("sqlite3", vec![find("sqlite3")?.display().to_string(), ":memory:".into(), sql]),
        ("python3", vec![find("python3")?.display().to_string(), "-c".into(), py]),
    ];
    let runs = if o.quick { 1 } else { 3 };
    let mut out = Vec::new();
    // First the sandbox's own start-up and exit, with a program that does nothing.
    let progs: Vec<(&'static str, Vec<String>)> = std::iter::once(("true (start-up)", vec![find("true")?.display().to_string()])).chain(progs).collect();
    for (name, argv) in progs {
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut native = f64::MAX;
        let mut sandbox = f64::MAX;
        let mut dune_run: Option<f64> = Some(f64::MAX);
        let mut stats = [0u64; 4];
        for _ in 0..runs {
            let mut c = Command::new(a[0]);
            c.args(&a[1..]);
            native = native.min(time_once(c)?.0);
            if let Some(best) = dune_run {
                let mut c = Command::new(&o.dune);
                c.arg("run").arg("--").args(&a);
                dune_run = time_once(c).ok().map(|(t, _)| best.min(t));
            }
            let (t, err) = time_once(sandboxed(&o.dune, &["--stats", "--allow-read", &i], &a))?;
            sandbox = sandbox.min(t);
            stats = parse_stats(&err).ok_or_else(|| failed(format!("{name}: no --stats line:\n{err}")))?;
        }
        out.push(Cpu { name, native, dune_run, sandbox, calls: stats[0] + stats[1] + stats[2], exits: stats[3] });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// The whole report as text.
pub fn report(web: &[Web], cpu: &[Cpu], tcg: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "dune bench --sandbox: native Linux and dune sandbox, side by side in one run");
    if tcg {
        let _ = writeln!(s, "WARNING: the CPU is QEMU's software emulation (TCG): times are virtual and say nothing about hardware; the call and exit counts are what carry over");
    }
    let _ = writeln!(s, "\nlighttpd, a small static page, wrk over loopback (requests/second)");
    let _ = writeln!(s, "{:<12} {:>9} {:>9} {:>7}  {:>8} {:>8} {:>8} {:>9}  {:>9} {:>7} {:>9}   paper Linux / Dune", "connections", "native", "sandbox", "ratio", "emul/req", "fwd/req", "deny/req", "exits/req", "exitless", "ratio", "exits/req");
    for w in web {
        let paper = if w.connections == 1 { "2,236 / 2,206" } else { "24,609 / 24,255" };
        let _ = writeln!(
            s,
            "{:<12} {:>9.0} {:>9.0} {:>6.1}%  {:>8.2} {:>8.2} {:>8.2} {:>9.2}  {:>9.0} {:>6.1}% {:>9.3}   {paper}",
            w.connections,
            w.native_rps,
            w.sandbox_rps,
            100.0 * w.sandbox_rps / w.native_rps,
            w.per_request[0],
            w.per_request[1],
            w.per_request[2],
            w.per_request[3],
            w.exitless_rps,
            100.0 * w.exitless_rps / w.native_rps,
            w.exitless_exits
        );
    }
    let _ = writeln!(s, "\nCPU-bound programs (best wall-clock seconds)");
    let _ = writeln!(s, "{:<16} {:>9} {:>9} {:>9} {:>9} {:>13} {:>12}   {:>7} {:>7}", "program", "native", "dune run", "sandbox", "slowdown", "net of start", "vs dune run", "calls", "exits");
    // The start-up row (a program that does nothing) is the fixed cost of entering
    // the sandbox: creating the VM, loading the program, tearing down. `dune run` is
    // Dune mode without the monitor: what the VM alone costs.
    let startup = cpu.iter().find(|c| c.name.ends_with("(start-up)")).map_or(0.0, |c| (c.sandbox - c.native).max(0.0));
    let (mut sum, mut sum_net, mut n, mut sum_mon, mut n_mon) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for c in cpu {
        let slow = 100.0 * (c.sandbox / c.native - 1.0);
        let net = 100.0 * ((c.sandbox - startup) / c.native - 1.0);
        let run = c.dune_run.map_or_else(|| "-".to_string(), |t| format!("{t:.3}"));
        if c.name.ends_with("(start-up)") {
            let _ = writeln!(s, "{:<16} {:>9.3} {:>9} {:>9.3} {:>+8.3}s {:>13} {:>12}   {:>7} {:>7}", c.name, c.native, run, c.sandbox, c.sandbox - c.native, "", "", c.calls, c.exits);
            continue;
        }
        sum += slow;
        sum_net += net;
        n += 1.0;
        // The monitor's own share: the sandbox against Dune mode without a monitor.
        let monitor = c.dune_run.map_or_else(|| "-".to_string(), |t| format!("{:.1}%", 100.0 * (c.sandbox / t - 1.0)));
        if let Some(t) = c.dune_run {
            sum_mon += 100.0 * (c.sandbox / t - 1.0);
            n_mon += 1.0;
        }
        let _ = writeln!(s, "{:<16} {:>9.3} {:>9} {:>9.3} {:>8.1}% {:>12.1}% {:>12}   {:>7} {:>7}", c.name, c.native, run, c.sandbox, slow, net, monitor, c.calls, c.exits);
    }
    if n > 0.0 {
        let mon = if n_mon > 0.0 { format!("{:.1}%", sum_mon / n_mon) } else { "-".into() };
        let _ = writeln!(s, "{:<16} {:>39.1}% {:>12.1}% {:>12}   (paper, SPEC2000: 2.9% average)", "average", sum / n, sum_net / n, mon);
    }
    s
}
