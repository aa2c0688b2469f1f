//! `dune bench`: the paper's micro-benchmarks, Linux way against Dune way, with KVM
//! exit counts (the `dune-bench` library); `dune bench --sandbox`: the sandbox's
//! application benchmarks, native against sandboxed (`dune_sandbox::bench`). This
//! module only dispatches and maps results to an exit status.

use std::process::ExitCode;

use super::Error;

pub use dune_bench::EXIT_STATUS_HELP;

/// Options of `dune bench`.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Args {
    #[command(flatten)]
    pub bench: dune_bench::Args,
    /// Instead of the micro-benchmarks: the sandbox's application benchmarks,
    /// lighttpd under wrk and CPU-bound programs, native and in `dune sandbox`
    /// (lighttpd and wrk must be installed: scripts/bench-sandbox).
    #[arg(long)]
    pub sandbox: bool,
    /// `gc`: instead of the micro-benchmarks, the garbage collector's Table 6
    /// (§5.3): GCBench, LinkedList, HashMap and XML with every dirty source of
    /// dune-gc and with Debian's bdwgc, in one run (apps/gc/build-c.sh builds them).
    #[arg(value_name = "SUITE", value_parser = ["gc"])]
    pub suite: Option<String>,
    /// `gc`: divide the programs' work by N (1: the paper's sizes; --quick: 50).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub scale: Option<u64>,
    /// `gc`: only these programs (gcbench, linkedlist, hashmap, xml).
    #[arg(long, value_name = "PROGRAMS", value_delimiter = ',', value_parser = ["gcbench", "linkedlist", "hashmap", "xml"])]
    pub programs: Vec<String>,
    /// `gc`: where the benchmark programs are (default: target/release/gc).
    #[arg(long, value_name = "DIR")]
    pub gc_dir: Option<std::path::PathBuf>,
}

impl std::ops::Deref for Args {
    type Target = dune_bench::Args;
    fn deref(&self) -> &dune_bench::Args {
        &self.bench
    }
}

/// Runs the benchmarks, prints the table, writes `--json` / `--plot`.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    if args.sandbox {
        return sandbox(args);
    }
    if args.suite.as_deref() == Some("gc") {
        return gc(args);
    }
    match dune_bench::main(&args.bench) {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(dune_bench::Error::Stdout(e)) => Err(Error::Output(e)),
        Err(e) => {
            eprintln!("dune: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

fn sandbox(args: &Args) -> Result<ExitCode, Error> {
    use dune_sandbox::bench;
    let o = bench::Options { dune: std::env::current_exe().unwrap_or_else(|_| "dune".into()), quick: args.quick };
    let host = dune_bench::host::Host::probe();
    let result = bench::lighttpd(&o).and_then(|web| Ok((web, bench::cpu(&o)?)));
    match result {
        Ok((web, cpu)) => {
            let text = bench::report(&web, &cpu, host.emulated_cpu);
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(Error::Output)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("dune: bench --sandbox: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn gc(args: &Args) -> Result<ExitCode, Error> {
    use dune_gc::bench;
    use std::io::Write;
    let dune = std::env::current_exe().unwrap_or_else(|_| "dune".into());
    let scale = args.scale.unwrap_or(if args.quick { 50 } else { 1 });
    let programs: Vec<&'static str> = if args.programs.is_empty() { bench::PROGRAMS.to_vec() } else { args.programs.iter().filter_map(|p| bench::program(p)).collect() };
    if let Some(p) = args.plot.as_deref().filter(|p| p.extension().and_then(|e| e.to_str()) != Some("svg")) {
        eprintln!("dune: bench gc: --plot writes SVG: {} must end in .svg", p.display());
        return Ok(ExitCode::from(2));
    }
    let o = bench::Options {
        dir: args.gc_dir.clone().unwrap_or_else(|| bench::default_dir(&dune)),
        scale,
        programs,
        limit: std::time::Duration::from_secs(if scale >= 10 { 600 } else { 3600 }),
        reps: args.reps.unwrap_or(if args.quick { 1 } else { 3 }),
    };
    let host = dune_bench::host::Host::probe();
    let header = format!("machine: {} | kernel {} | {}", host.cpu, host.kernel, host.hypervisor);
    let mut err = std::io::stderr();
    let rows = bench::run(&o, &mut |r| {
        let _ = writeln!(err, "dune: bench gc: {} / {}: {}", r.program, bench::VARIANTS[r.variant].label, r.error.as_deref().map_or_else(|| format!("{:.1} ms", r.ms), str::to_owned));
    });
    let text = bench::report(&rows, &header, scale, host.emulated_cpu);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(Error::Output)?;
    for (path, body) in [(&args.json, bench::json(&rows, scale, host.emulated_cpu)), (&args.plot, bench::svg(&rows, host.emulated_cpu))] {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, body) {
                eprintln!("dune: bench gc: {}: {e}", path.display());
                return Ok(ExitCode::from(1));
            }
        }
    }
    // A run that failed (not one whose source this machine lacks) fails the command.
    let failed = rows.iter().filter(|r| r.error.as_deref().is_some_and(|e| !e.starts_with("unavailable"))).count();
    if failed > 0 {
        eprintln!("dune: bench gc: {failed} runs failed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
