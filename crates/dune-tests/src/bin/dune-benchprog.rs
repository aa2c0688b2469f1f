//! `dune bench` as a program of this package, so that `tests/bench.rs` can run it
//! (cargo builds only a package's own binaries for its tests). Same options, same
//! output, same exit statuses as `dune bench`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "dune-benchprog", about = "dune bench, for the tests", after_help = dune_bench::EXIT_STATUS_HELP)]
struct Cli {
    #[command(flatten)]
    args: dune_bench::Args,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 64 } else { 0 });
        }
    };
    match dune_bench::main(&cli.args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("dune-benchprog: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
