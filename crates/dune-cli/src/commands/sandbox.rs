//! `dune sandbox [--policy FILE] [--allow-read PATH]... [--allow-write PATH]...
//! [--allow-net ADDR[:PORT]]... [--trace] -- PROGRAM [ARGS...]`: runs the program in
//! ring 3 under the policy (`dune_sandbox`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use dune_sandbox::{Policy, Sandbox};

use super::Error;

/// Exit statuses, shown under `dune sandbox --help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  the program's own (128+N when it dies by signal N, as in a shell)
  125  Dune mode could not be entered
  126  the program cannot be run (not executable, malformed, 32-bit), or the policy
       is invalid (nothing runs)
  127  the program was not found

Policy: the default is the built-in one (ordinary programs run, reading only system
directories and what --allow-read gives, writing only what --allow-write gives, no
network). --policy takes an OCI seccomp profile (Docker's format), with an optional
\"dune\" section for file trees, network addresses and limits.";

/// Options of `dune sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An OCI runtime-spec seccomp profile (JSON), e.g. Docker's default profile.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Let the program read this file or tree.
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<PathBuf>,
    /// Let the program read and write this file or tree.
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<PathBuf>,
    /// Let the program bind, connect and send to this address (IPv4, [IPv6], with
    /// an optional /PREFIX and :PORT).
    #[arg(long = "allow-net", value_name = "ADDR[:PORT]")]
    pub allow_net: Vec<String>,
    /// Log every system call with its arguments and verdict to stderr.
    #[arg(long)]
    pub trace: bool,
    /// Forward I/O calls through helper threads polling shared memory: no VM exit
    /// per call while the program is busy (needs a CPU to spare for the polling).
    #[arg(long)]
    pub exitless: bool,
    /// When the program exits, print the monitor's counts: system calls by verdict
    /// (emulated, forwarded, denied), exceptions, signals, exits to the host; and at
    /// start, the kernel's layers of confinement in force.
    #[arg(long)]
    pub stats: bool,
    /// Refuse to run when the kernel lacks a layer of confinement (Landlock,
    /// seccomp) instead of warning and relying on the monitor alone.
    #[arg(long)]
    pub strict: bool,
    /// Let the program change the terminal the sandbox runs in (modes, window size,
    /// foreground process group).
    #[arg(long = "allow-tty")]
    pub allow_tty: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROGRAM [ARGS]...")]
    pub argv: Vec<OsString>,
}

/// Replaces this process with the sandboxed program; returns only when it cannot run.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let mut policy = match &args.policy {
        Some(p) => Policy::load(p).map_err(Error::Policy)?,
        None => Policy::builtin(),
    };
    for p in &args.allow_read {
        policy.allow_read(p).map_err(Error::Policy)?;
    }
    for p in &args.allow_write {
        policy.allow_write(p).map_err(Error::Policy)?;
    }
    for a in &args.allow_net {
        policy.allow_net(a).map_err(Error::Policy)?;
    }
    if args.allow_tty {
        policy.allow_tty();
    }
    let env: Vec<OsString> = std::env::vars_os().map(|(k, v)| {
        let mut s = k;
        s.push("=");
        s.push(v);
        s
    }).collect();
    match Sandbox::new(policy).trace(args.trace).stats(args.stats).exitless(args.exitless).strict(args.strict).run(args.argv.clone(), env) {
        Ok(never) => match never {},
        Err(e) => Err(Error::Sandbox(e)),
    }
}
