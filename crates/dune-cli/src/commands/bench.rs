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
