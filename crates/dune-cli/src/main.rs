//! `dune`: the command-line front end of libdune.
//!
//! One module per subcommand under `commands/`; `main` parses the arguments,
//! runs the subcommand and turns its result into the exit status. Errors are
//! printed as one line on stderr, never as a panic.
//!
//! Adding a subcommand (`run`, `bench`): write `commands/<name>.rs` with an
//! `Args` struct and a `run(&Args) -> Result<ExitCode, commands::Error>`,
//! then add a variant to [`Command`] and an arm to the `match` in `main`.

mod commands;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

/// Exit status for a command-line usage error (`EX_USAGE`, sysexits.h).
const EXIT_USAGE: u8 = 64;

/// Command line of `dune`.
#[derive(Debug, Parser)]
#[command(
    name = "dune",
    version,
    about = "Dune on upstream KVM: run a process in ring 0 of a VM that mirrors its own address space",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Say whether this machine can run Dune mode, and why not.
    #[command(after_help = commands::doctor::EXIT_STATUS_HELP)]
    Doctor(commands::doctor::Args),
    /// Run an unmodified, dynamically linked program in Dune mode (every thread and
    /// forked child, from before main).
    #[command(after_help = commands::run::EXIT_STATUS_HELP)]
    Run(commands::run::Args),
    /// Measure the Dune paper's micro-benchmarks, the Linux way and the Dune way.
    #[command(after_help = commands::bench::EXIT_STATUS_HELP)]
    Bench(commands::bench::Args),
    /// Run an unmodified program in ring 3 under a policy, with a monitor in ring 0
    /// that checks every system call (default: deny).
    #[command(after_help = commands::sandbox::EXIT_STATUS_HELP)]
    Sandbox(commands::sandbox::Args),
    /// The program `dune bench` runs inside and outside the sandbox for its
    /// sandbox rows (KIND REPS OPS).
    #[command(hide = true, name = "sandbox-bench-child")]
    SandboxBenchChild { kind: String, reps: usize, ops: u64 },
    /// The server `dune bench` measures for its sthread http row (N requests).
    #[command(hide = true, name = "sthread-bench-server")]
    SthreadBenchServer { requests: u64 },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_failure(&e),
    };
    let result = match &cli.command {
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Sandbox(args) => commands::sandbox::run(args),
        Command::SandboxBenchChild { kind, reps, ops } => Ok(ExitCode::from(dune_bench::rows::sandbox::child_main(kind, *reps, *ops) as u8)),
        Command::SthreadBenchServer { requests } => Ok(ExitCode::from(dune_bench::rows::sthread::server_main(*requests) as u8)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dune: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Help and version go out as clap renders them; a real usage error becomes
/// one line on stderr.
fn parse_failure(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Nothing better to do if stdout is gone.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            eprintln!("dune: {} (see 'dune --help')", one_line(&e.to_string()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The first non-empty line of clap's message, without its `error: ` prefix.
fn one_line(message: &str) -> &str {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments");
    line.strip_prefix("error: ").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn doctor_parses() {
        let cli = Cli::try_parse_from(["dune", "doctor", "--json"]).map_err(|e| e.to_string());
        assert!(
            matches!(cli, Ok(Cli { command: Command::Doctor(ref a) }) if a.json),
            "{cli:?}"
        );
    }

    #[test]
    fn bench_parses_and_refuses_unknown_rows() {
        let cli = Cli::try_parse_from(["dune", "bench", "--quick", "--rows", "getpid,trap"]).map_err(|e| e.to_string());
        assert!(
            matches!(cli, Ok(Cli { command: Command::Bench(ref a) }) if a.quick && a.rows == ["getpid", "trap"]),
            "{cli:?}"
        );
        let e = Cli::try_parse_from(["dune", "bench", "--rows", "getpid,frob"]).err();
        let msg = e.map(|e| one_line(&e.to_string()).to_string()).unwrap_or_default();
        assert!(msg.contains("unknown row 'frob'"), "{msg}");
    }

    #[test]
    fn usage_errors_are_one_line() {
        let e = Cli::try_parse_from(["dune", "frobnicate"]).err();
        let msg = e.map(|e| one_line(&e.to_string()).to_string());
        assert_eq!(msg.as_deref(), Some("unrecognized subcommand 'frobnicate'"));
    }
}
