//! One module per `dune` subcommand, and the error type they share.

pub mod bench;
pub mod doctor;
pub mod run;
pub mod sandbox;

use std::fmt;
use std::io;

/// Exit status for an error while running a subcommand (`EX_SOFTWARE`,
/// sysexits.h); kept apart from the statuses a subcommand returns on purpose
/// (such as `doctor`'s 0, 1, 2).
const EXIT_ERROR: u8 = 70;

/// What can go wrong while running a subcommand.
#[derive(Debug)]
pub enum Error {
    /// Writing the result to stdout failed (for example a closed pipe).
    Output(io::Error),
    /// `dune run` could not run the program.
    Run(dune_run::RunError),
    /// `dune sandbox`: a bad policy (exit 126, nothing runs).
    Policy(dune_sandbox::PolicyError),
    /// `dune sandbox` could not start the program.
    Sandbox(dune_sandbox::StartError),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Output(_) => EXIT_ERROR,
            Error::Run(e) => e.exit_code(),
            Error::Policy(_) => 126,
            Error::Sandbox(e) => e.exit_code(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Output(e) => write!(f, "cannot write to stdout: {e}"),
            Error::Run(e) => write!(f, "{e}"),
            Error::Policy(e) => write!(f, "policy: {e}"),
            Error::Sandbox(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Output(e) => Some(e),
            Error::Run(e) => Some(e),
            Error::Policy(e) => Some(e),
            Error::Sandbox(e) => Some(e),
        }
    }
}
