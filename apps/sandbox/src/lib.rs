//! The Dune sandbox (paper §5.1): unmodified Linux programs in guest ring 3 under a
//! policy, with a trusted monitor in guest ring 0 of the same process.
//!
//! Not built yet: this crate is the place the sandbox issue fills. Planned layout,
//! one file per concern (see `apps/README.md`):
//!
//! - `loader`: the monitor's own ELF loader (static and dynamic programs, the
//!   interpreter, the initial stack and auxiliary vector);
//! - `policy`: the OCI seccomp JSON profile format, systemd-style groups, and the
//!   rules seccomp cannot express (paths, network addresses, limits);
//! - `monitor`: the ring-0 handler every ring-3 system call, fault and privileged
//!   instruction reaches, with one table of every call and its verdict and one file
//!   per family of calls; arguments are copied in once, checked, then used;
//! - `bench`: its rows for `dune bench` (lighttpd under wrk, CPU-bound programs,
//!   per-call interception cost).
//!
//! Built so far: [`policy`].

pub mod policy;
