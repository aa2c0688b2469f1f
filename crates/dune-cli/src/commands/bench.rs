//! `dune bench`: the paper's micro-benchmarks, Linux way against Dune way, with KVM
//! exit counts. The work is done by the `dune-bench` library; this module only maps
//! its result to an exit status.

use std::process::ExitCode;

use super::Error;

pub use dune_bench::{Args, EXIT_STATUS_HELP};

/// Runs the benchmarks, prints the table, writes `--json` / `--plot`.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    match dune_bench::main(args) {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(dune_bench::Error::Stdout(e)) => Err(Error::Output(e)),
        Err(e) => {
            eprintln!("dune: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}
