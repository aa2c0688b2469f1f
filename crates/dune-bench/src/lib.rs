//! The micro-benchmarks of the Dune paper (OSDI 2012), the Linux way against the Dune
//! way, in one process run: the library behind `dune bench`.
//!
//! ```text
//! dune bench [--quick] [--reps N] [--rows getpid,pagefault] [--json F] [--plot F.svg|F.png]
//! ```
//!
//! A run probes the machine ([`host`]), runs the Linux way of every selected row on
//! the calling thread, then starts a thread that calls `libdune::enter()` and runs
//! every Dune way there; the calling thread never enters Dune mode, so the output is
//! rendered natively. Each way reports TSC ticks per operation (median and minimum over
//! repetitions, after warm-up, net of the timer's overhead) and, in Dune mode, KVM
//! exits per operation read from the vCPU's binary statistics
//! ([`libdune::stats`]). Every row checks that its work really happened (the handler
//! ran N times at the right addresses, the pages were resident, the answers were the
//! interceptor's), so a broken path cannot show a fast number.
//!
//! Layout: [`rows`] (the table, one entry per row, and the functions that measure),
//! [`measure`] (repetitions and exit accounting), [`timer`], `sys` (safe wrappers),
//! [`host`], [`report`] (text and JSON), [`plot`].

pub mod json;
pub mod host;
pub mod loops;
pub mod measure;
pub mod plot;
pub mod report;
pub mod rows;
mod sys;
pub mod timer;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

pub use measure::Settings;
pub use report::{DuneStatus, Outcome, Report, RowResult};
pub use rows::{Row, Way, ROWS};

use measure::{Ctx, RowError};

/// Options of `dune bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Measured repetitions per row and way, after warm-up [default: 100, or 5 with --quick].
    #[arg(long, value_name = "N")]
    pub reps: Option<usize>,
    /// Few repetitions and small working sets (for CI).
    #[arg(long)]
    pub quick: bool,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw a log-scale bar chart, Linux vs Dune per row, to FILE (.svg or .png).
    #[arg(long, value_name = "FILE", value_parser = parse_plot_path)]
    pub plot: Option<PathBuf>,
    /// Only these rows, comma-separated (getpid, pagefault, pagewalk, ptrace, seccomp-trap,
    /// seccomp-notify, sandbox-emulated, sandbox-forwarded, sandbox-exitless, sandbox-denied, trap, appel1,
    /// appel1-uffd, appel2, appel2-uffd, softdirty).
    #[arg(long, value_name = "ROWS", value_delimiter = ',', value_parser = parse_row)]
    pub rows: Vec<String>,
    /// Exit with status 2 if the Dune way could not run (default: 0, with a warning).
    #[arg(long)]
    pub require_dune: bool,
}

/// Exit statuses, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0   every selected row ran or is unsupported by this kernel (the table says which);
      also when Dune mode was refused (emulated ring 0): the table says so
  1   a row failed: an error, or its own check found the work did not happen
  2   --require-dune and the Dune way did not run
  64  usage error (such as an unknown row)
  70  the table, JSON or chart could not be written";

fn parse_row(s: &str) -> Result<String, String> {
    let s = s.trim();
    match rows::find(s) {
        Some(r) => Ok(r.name.to_string()),
        None => Err(format!("unknown row '{s}' (rows: {})", rows::names())),
    }
}

fn parse_plot_path(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match plot::kind(&p) {
        Some(_) => Ok(p),
        None => Err("the chart is written as SVG or PNG: name the file *.svg or *.png".into()),
    }
}

/// What can stop `dune bench` after measuring.
#[derive(Debug)]
pub enum Error {
    /// Writing the table to stdout failed.
    Stdout(io::Error),
    /// Writing the JSON file failed.
    Json(PathBuf, io::Error),
    /// Drawing the chart failed.
    Plot(PathBuf, plot::PlotError),
}

impl Error {
    /// Exit status (`EX_SOFTWARE`, sysexits.h, as for other subcommands' output errors).
    pub fn exit_code(&self) -> u8 {
        70
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Stdout(e) => write!(f, "cannot write to stdout: {e}"),
            Error::Json(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            Error::Plot(p, e) => write!(f, "cannot write the chart {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for Error {}

/// Runs `dune bench`: measures, prints the table, writes the files; returns the exit
/// status (see [`EXIT_STATUS_HELP`]).
pub fn main(args: &Args) -> Result<u8, Error> {
    let settings = Settings::new(args.quick, args.reps);
    let selected: Vec<&'static Row> = if args.rows.is_empty() {
        ROWS.iter().collect()
    } else {
        ROWS.iter().filter(|r| args.rows.iter().any(|n| n == r.name)).collect()
    };
    let report = run(settings, &selected, io::stderr().is_terminal());
    let mut out = io::stdout().lock();
    out.write_all(report.text().as_bytes()).and_then(|()| out.flush()).map_err(Error::Stdout)?;
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json().to_pretty()).map_err(|e| Error::Json(path.clone(), e))?;
    }
    if let Some(path) = &args.plot {
        plot::write(&report, path).map_err(|e| Error::Plot(path.clone(), e))?;
    }
    Ok(report.exit_code(args.require_dune))
}

/// Measures `rows`: every Linux way here, then every Dune way on a thread that enters
/// Dune mode. `progress` prints one line per way on stderr.
pub fn run(settings: Settings, rows: &[&'static Row], progress: bool) -> Report {
    let host = host::Host::probe();
    let mut ctx = Ctx::linux(settings);
    let linux_timer_overhead = ctx.timer_overhead();
    let linux: Vec<Outcome> = rows.iter().map(|r| run_way(r, r.linux, &mut ctx, progress, "Linux")).collect();
    // Dune ways that start a process of their own run from here, before this process
    // has a Dune-mode thread.
    let process: Vec<Option<Outcome>> = rows
        .iter()
        .map(|r| match r.dune {
            Way::Process(f) => Some(run_way(r, Way::Run(f), &mut ctx, progress, "Dune, own process")),
            _ => None,
        })
        .collect();
    let (dune, mut dune_outcomes) = if rows.iter().any(|r| matches!(r.dune, Way::Run(_))) {
        run_dune(settings, rows, progress)
    } else {
        (DuneStatus::NotNeeded, rows.iter().map(|r| not_run(r.dune)).collect())
    };
    for (slot, p) in dune_outcomes.iter_mut().zip(process) {
        if let Some(p) = p {
            *slot = p;
        }
    }
    let rows = rows
        .iter()
        .zip(linux)
        .zip(dune_outcomes)
        .map(|((row, linux), dune)| RowResult { row, linux, dune })
        .collect();
    Report { host, settings, linux_timer_overhead, dune, rows }
}

/// Runs one way of one row and turns its result into an [`Outcome`].
fn run_way(row: &Row, way: Way, ctx: &mut Ctx, progress: bool, side: &str) -> Outcome {
    match way {
        Way::Run(f) => {
            if progress {
                eprintln!("dune bench: {} ({side} way)", row.name);
            }
            match f(ctx) {
                Ok(m) => Outcome::Ran(m),
                Err(RowError::Unsupported(why)) => Outcome::Unsupported(why),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        other => not_run(other),
    }
}

/// The outcome of a way that is not run.
fn not_run(way: Way) -> Outcome {
    match way {
        Way::Run(_) => Outcome::Refused,
        Way::Pending(why) => Outcome::Pending(why),
        Way::None => Outcome::Absent,
        // Replaced by the outcome `run` measured from the Linux side.
        Way::Process(_) => Outcome::Refused,
    }
}

/// Enters Dune mode on a new thread and runs the Dune ways there.
fn run_dune(settings: Settings, rows: &[&'static Row], progress: bool) -> (DuneStatus, Vec<Outcome>) {
    let owned: Vec<&'static Row> = rows.to_vec();
    let thread = std::thread::Builder::new().name("dune-bench".into()).spawn(move || {
        libdune::enter().map_err(|e| e.to_string())?;
        if !libdune::in_dune_mode() {
            return Err("enter() returned but the thread is not in guest ring 0".to_string());
        }
        let (mut ctx, stats_error) = Ctx::dune(settings);
        let status = DuneStatus::Ran {
            timer_overhead: ctx.timer_overhead(),
            bracket: ctx.bracket_exits(),
            stats_error: stats_error.map(|e| e.to_string()),
        };
        let outcomes: Vec<Outcome> = owned.iter().map(|r| run_way(r, r.dune, &mut ctx, progress, "Dune")).collect();
        Ok((status, outcomes))
    });
    let result = match thread {
        Ok(t) => t.join().unwrap_or_else(|_| Err("the Dune-mode thread panicked".into())),
        Err(e) => Err(format!("cannot start the Dune-mode thread: {e}")),
    };
    match result {
        Ok(r) => r,
        Err(reason) => (DuneStatus::Refused(reason), rows.iter().map(|r| not_run(r.dune)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn rows_and_plot_are_checked_at_parse_time() {
        let cli = Cli::try_parse_from(["b", "--rows", "getpid,pagewalk", "--plot", "x.SVG"]).expect("parse");
        assert_eq!(cli.args.rows, ["getpid", "pagewalk"]);
        let e = Cli::try_parse_from(["b", "--rows", "getpid,nope"]).expect_err("unknown row");
        assert!(e.to_string().contains("unknown row 'nope'"), "{e}");
        assert!(Cli::try_parse_from(["b", "--plot", "x.pdf"]).is_err());
    }

    /// The Linux ways, for real (no KVM needed): every row must run and verify, or be
    /// unsupported by this kernel with a reason.
    #[test]
    fn linux_ways_run_and_verify() {
        let rows: Vec<&'static Row> = ROWS.iter().collect();
        let mut ctx = Ctx::linux(Settings::new(true, Some(2)));
        for r in rows {
            match run_way(r, r.linux, &mut ctx, false, "Linux") {
                Outcome::Ran(m) => {
                    assert!(m.summary.median > 0.0 && m.summary.min <= m.summary.median, "{}: {m:?}", r.name);
                    assert!(!m.check.is_empty());
                }
                Outcome::Unsupported(why) => assert!(!why.is_empty()),
                other => panic!("{}: {other:?}", r.name),
            }
        }
    }
}
