//! The Dune sandbox (paper §5.1): unmodified Linux programs in guest ring 3 under a
//! policy, with a trusted monitor in guest ring 0 of the same process.
//!
//! One file per concern (see `apps/README.md`):
//!
//! - [`loader`]: the monitor's own ELF loader (static and dynamic programs, `#!`
//!   scripts, the interpreter, the initial stack and auxiliary vector);
//! - [`policy`]: the OCI seccomp JSON profile format, systemd-style groups, and the
//!   rules seccomp cannot express (paths, network addresses, limits);
//! - [`monitor`]: the ring-0 side every ring-3 system call, fault and privileged
//!   instruction reaches, with one table of every call and one file per family of
//!   calls; arguments are copied in once, checked, then used.
//!
//! The entry point is [`Sandbox`]: build a policy, then [`Sandbox::run`] replaces the
//! calling process with the sandboxed program, as `execve` would. The same from C:
//! [`capi`] (`include/dune/sandbox.h`, in the one C library, `-ldune_sandbox`). [`bench`](mod@bench) holds
//! the application benchmarks (`dune bench --sandbox`).

pub mod bench;
pub mod capi;
pub mod loader;
pub mod monitor;
pub mod policy;

use std::ffi::OsString;

pub use monitor::StartError;
pub use policy::{Policy, PolicyError};

/// A sandbox: a policy and options, ready to run a program.
pub struct Sandbox {
    policy: Policy,
    trace: bool,
    stats: bool,
    exitless: bool,
    strict: bool,
}

impl Sandbox {
    /// A sandbox that enforces `policy`.
    pub fn new(policy: Policy) -> Self {
        Sandbox { policy, trace: false, stats: false, exitless: false, strict: false }
    }

    /// Logs every system call of the program with its arguments and verdict.
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// When the program exits, writes what the monitor did: system calls by verdict
    /// (emulated, forwarded, denied), exceptions, signals, and exits to the host.
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = on;
        self
    }

    /// Forwards I/O calls through helper threads that poll shared memory, with no VM
    /// exit in the common case (`monitor::exitless`). Costs a polling CPU while the
    /// program is busy; worth it only with a CPU to spare.
    pub fn exitless(mut self, on: bool) -> Self {
        self.exitless = on;
        self
    }

    /// Refuses to run when the kernel lacks a layer of confinement (Landlock,
    /// seccomp) instead of warning and running with the monitor's checks alone.
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// Runs `argv` (`argv[0]` found as `execvp` does) with environment `env` in the
    /// calling process, which becomes the sandbox: the process's exit status is the
    /// program's. Returns only when the program cannot be started. Call it before the
    /// process starts other threads.
    pub fn run(self, argv: Vec<OsString>, env: Vec<OsString>) -> Result<std::convert::Infallible, StartError> {
        monitor::audit::stats_at_exit(self.stats);
        // A helper polls on a CPU of its own: with one CPU it would only take turns
        // with the thread waiting for it, so calls are forwarded the ordinary way.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let helpers = if self.exitless && cpus > 1 { cpus.clamp(1, 8) } else { 0 };
        monitor::start(self.policy, monitor::confine::Options { trace: self.trace, strict: self.strict }, helpers, argv, env)
    }
}
