//! `dune run [--stats] [--] PROGRAM [ARGS...]`: runs an unmodified, dynamically
//! linked program with every thread and forked child in Dune mode (`dune_run`).

use std::ffi::OsString;
use std::process::ExitCode;

use super::Error;

/// Exit statuses, shown under `dune run --help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  the program's own (128+N when it dies by signal N, as in a shell)
  125  Dune mode could not be entered, or libdune_preload.so is missing
  126  the program cannot be run in Dune mode (not executable, statically linked,
       32-bit, not a program)
  127  the program was not found";

/// Options of `dune run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// When the program (and each forked child) exits, print the runtime's counts:
    /// forwarded system calls, faults that reached the runtime, signals, memslots.
    #[arg(long)]
    pub stats: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROGRAM [ARGS]...")]
    pub argv: Vec<OsString>,
}

/// Replaces this process with the program; returns only when it cannot be run.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let exe = std::env::current_exe().unwrap_or_default();
    let preload = match dune_run::preload_path(std::env::var_os("DUNE_PRELOAD").as_deref(), &exe) {
        Ok(p) => p,
        Err(e) => return Err(Error::Run(e)),
    };
    let opts = dune_run::RunOptions { stats: args.stats };
    Err(Error::Run(dune_run::exec(&args.argv, &opts, &preload)))
}
