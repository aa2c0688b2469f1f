//! The rows of the benchmark table: one [`Row`] per entry of [`ROWS`].
//!
//! A row names an operation and how to measure it the Linux way and the Dune way.
//! Adding a row, or the Dune way of an existing one, is one entry: write a function
//! `fn(&mut Ctx) -> Result<Measured, RowError>` (see `measure` for the harness; every
//! function checks that its work really happened) and put it in the table.
//! `dune bench` runs every Linux way first, in table order, then enters Dune mode on a
//! thread of its own and runs every Dune way, in table order.

mod fault;
mod intercept;
mod memory;
mod privileged;
pub mod sandbox;
mod softdirty;
pub mod sthread;
mod syscall;
mod uffd;

use crate::measure::{Ctx, Measured, RowError};

/// A function measuring one way of one row.
pub type RowFn = fn(&mut Ctx) -> Result<Measured, RowError>;

/// How one side of a row is measured.
#[derive(Clone, Copy)]
pub enum Way {
    /// Measured by this function.
    Run(RowFn),
    /// Would be measured, but libdune lacks what it needs yet (the reason says what).
    Pending(&'static str),
    /// There is no such way (a Linux-only alternative has no Dune side).
    None,
    /// Measured by this function from the Linux side: it runs a separate process that
    /// enters Dune mode itself (`dune sandbox`).
    Process(RowFn),
}

impl std::fmt::Debug for Way {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Way::Run(_) => write!(f, "Run"),
            Way::Pending(why) => write!(f, "Pending({why:?})"),
            Way::None => write!(f, "None"),
            Way::Process(_) => write!(f, "Process"),
        }
    }
}

/// The paper's figures for a row (its micro-benchmark table: cycles on a 2012 Intel
/// machine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paper {
    /// Linux.
    pub linux: f64,
    /// Dune.
    pub dune: f64,
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// Name for `--rows` and JSON.
    pub name: &'static str,
    /// Label in the table and the chart.
    pub label: &'static str,
    /// What one operation is.
    pub op: &'static str,
    /// The paper row this is a modern Linux alternative to.
    pub alternative_to: Option<&'static str>,
    /// The paper's cycles, for the paper's own rows.
    pub paper: Option<Paper>,
    /// The Linux way.
    pub linux: Way,
    /// The Dune way.
    pub dune: Way,
}


const fn paper(linux: f64, dune: f64) -> Option<Paper> {
    Some(Paper { linux, dune })
}

/// Every row, in the order of the table.
pub static ROWS: &[Row] = &[
    Row {
        name: "getpid",
        label: "getpid",
        op: "syscall(SYS_getpid), raw (in Dune mode: forwarded to the host, one exit)",
        alternative_to: None,
        paper: paper(138.0, 895.0),
        linux: Way::Run(syscall::getpid),
        dune: Way::Run(syscall::getpid),
    },
    Row {
        name: "pagefault",
        label: "page fault",
        op: "first write to a fresh 4 KiB anonymous page (THP off)",
        alternative_to: None,
        paper: paper(2687.0, 5093.0),
        linux: Way::Run(memory::page_fault),
        dune: Way::Run(memory::page_fault),
    },
    Row {
        name: "pagewalk",
        label: "page walk",
        op: "dependent load from a random 4 KiB page of a working set far larger than the TLB",
        alternative_to: None,
        paper: paper(35.8, 86.4),
        linux: Way::Run(memory::page_walk),
        dune: Way::Run(memory::page_walk),
    },
    Row {
        name: "ptrace",
        label: "ptrace",
        op: "a traced child's getpid intercepted and answered by the tracer (PTRACE_SYSEMU round trip)",
        alternative_to: None,
        paper: paper(27317.0, 1091.0),
        linux: Way::Run(intercept::ptrace_sysemu),
        dune: Way::Run(privileged::ptrace),
    },
    Row {
        name: "seccomp-trap",
        label: "seccomp trap",
        op: "getpid answered by a SIGSYS handler (seccomp-bpf SECCOMP_RET_TRAP)",
        alternative_to: Some("ptrace"),
        paper: None,
        linux: Way::Run(intercept::seccomp_trap),
        dune: Way::None,
    },
    Row {
        name: "seccomp-notify",
        label: "seccomp notify",
        op: "getpid answered by a supervisor thread (SECCOMP_RET_USER_NOTIF)",
        alternative_to: Some("ptrace"),
        paper: None,
        linux: Way::Run(intercept::seccomp_notify),
        dune: Way::None,
    },
    Row {
        name: "sandbox-emulated",
        label: "sandbox: emulated call",
        op: "a system call the sandbox monitor answers in ring 0 (arch_prctl GET_FS), end to end from ring 3",
        alternative_to: None,
        paper: None,
        linux: Way::Run(sandbox::linux_emulated),
        dune: Way::Process(sandbox::sandbox_emulated),
    },
    Row {
        name: "sandbox-forwarded",
        label: "sandbox: forwarded call",
        op: "getpid from ring 3, checked by the sandbox monitor and performed in Linux",
        alternative_to: None,
        paper: None,
        linux: Way::Run(sandbox::linux_forwarded),
        dune: Way::Process(sandbox::sandbox_forwarded),
    },
    Row {
        name: "sandbox-exitless",
        label: "sandbox: forwarded, exitless",
        op: "getpid from ring 3 forwarded by the sandbox monitor through a polling helper thread (--exitless)",
        alternative_to: None,
        paper: None,
        linux: Way::Run(sandbox::linux_forwarded),
        dune: Way::Process(sandbox::sandbox_exitless),
    },
    Row {
        name: "sandbox-denied",
        label: "sandbox: denied call",
        op: "an unknown system call from ring 3, refused by the sandbox monitor (ENOSYS)",
        alternative_to: None,
        paper: None,
        linux: Way::Run(sandbox::linux_denied),
        dune: Way::Process(sandbox::sandbox_denied),
    },
    Row {
        name: "sthread-create",
        label: "sthread create",
        op: "create + join an isolated context: fork + _exit + waitpid (Linux), a recycled sthread (Dune); paper: Table 5, µs at 2.4 GHz",
        alternative_to: None,
        paper: paper(81.0 * 2400.0, 2.0 * 2400.0),
        linux: Way::Run(sthread::fork_wait),
        dune: Way::Run(sthread::sthread_recycled),
    },
    Row {
        name: "sthread-create-fresh",
        label: "sthread create, fresh",
        op: "create + join: pthread_create, no isolation (Linux), an sthread in a freshly built compartment (Dune)",
        alternative_to: None,
        paper: None,
        linux: Way::Run(sthread::pthread_join),
        dune: Way::Run(sthread::sthread_fresh),
    },
    Row {
        name: "sthread-switch",
        label: "sthread switch",
        op: "one switch between isolated contexts: processes over pipes (Linux), an sthread and its callgate (Dune); paper: Table 5, µs at 2.4 GHz",
        alternative_to: None,
        paper: paper(0.49 * 2400.0, 0.15 * 2400.0),
        linux: Way::Run(sthread::pipe_switch),
        dune: Way::Run(sthread::sthread_switch),
    },
    Row {
        name: "sthread-http",
        label: "http request",
        op: "latency of one request over loopback, a page served in an isolated context: a forked child (Linux), an sthread holding only its connection (Dune, a separate server process); paper: Table 5, µs at 2.4 GHz",
        alternative_to: None,
        paper: paper(454.0 * 2400.0, 362.0 * 2400.0),
        linux: Way::Run(sthread::http_fork),
        dune: Way::Process(sthread::http_sthread),
    },
    Row {
        name: "sthread-http-pthread",
        label: "http request, pthread",
        op: "the same request served in a thread per request (no isolation)",
        alternative_to: Some("sthread-http"),
        paper: None,
        linux: Way::Run(sthread::http_pthread),
        dune: Way::None,
    },
    Row {
        name: "trap",
        label: "trap",
        op: "write to a protected page until the fault handler starts (SIGSEGV)",
        alternative_to: None,
        paper: paper(2821.0, 587.0),
        linux: Way::Run(fault::trap),
        dune: Way::Run(privileged::trap),
    },
    Row {
        name: "appel1",
        label: "appel1",
        op: "100 pages: each write faults, the handler unprotects its page and protects another (mprotect); per 100 pages",
        alternative_to: None,
        paper: paper(701_413.0, 94_496.0),
        linux: Way::Run(fault::appel1),
        dune: Way::Run(privileged::appel1),
    },
    Row {
        name: "appel1-uffd",
        label: "appel1 uffd",
        op: "appel1 with userfaultfd write protection and a handler thread; per 100 pages",
        alternative_to: Some("appel1"),
        paper: None,
        linux: Way::Run(uffd::appel1),
        dune: Way::None,
    },
    Row {
        name: "appel2",
        label: "appel2",
        op: "protect 100 pages with one mprotect, then each write faults and the handler unprotects its page; per 100 pages",
        alternative_to: None,
        paper: paper(684_909.0, 94_854.0),
        linux: Way::Run(fault::appel2),
        dune: Way::Run(privileged::appel2),
    },
    Row {
        name: "appel2-uffd",
        label: "appel2 uffd",
        op: "appel2 with userfaultfd write protection (one UFFDIO_WRITEPROTECT) and a handler thread; per 100 pages",
        alternative_to: Some("appel2"),
        paper: None,
        linux: Way::Run(uffd::appel2),
        dune: Way::None,
    },
    Row {
        name: "softdirty",
        label: "soft-dirty",
        op: "dirty tracking: clear_refs 4, write 100 pages, read their pagemap bit 55; per 100 pages",
        alternative_to: Some("appel2"),
        paper: None,
        linux: Way::Run(softdirty::round),
        dune: Way::None,
    },
];

/// The row named `name`.
pub fn find(name: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.name == name)
}

/// All row names, comma-separated (for messages).
pub fn names() -> String {
    ROWS.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_alternatives_point_at_paper_rows() {
        for (i, r) in ROWS.iter().enumerate() {
            assert!(ROWS[..i].iter().all(|o| o.name != r.name), "duplicate {}", r.name);
            assert!(!r.name.contains(',') && !r.name.contains(' '), "{}", r.name);
            if let Some(alt) = r.alternative_to {
                let base = find(alt).expect("alternative_to names a row");
                assert!(base.paper.is_some() && r.paper.is_none(), "{}", r.name);
                assert!(matches!(r.dune, Way::None), "{}: alternatives are Linux-only", r.name);
            }
        }
    }

    #[test]
    fn paper_rows_match_the_paper() {
        let p = |n: &str| find(n).and_then(|r| r.paper).map(|p| (p.linux, p.dune));
        assert_eq!(p("getpid"), Some((138.0, 895.0)));
        assert_eq!(p("pagefault"), Some((2687.0, 5093.0)));
        assert_eq!(p("pagewalk"), Some((35.8, 86.4)));
        assert_eq!(p("ptrace"), Some((27317.0, 1091.0)));
        assert_eq!(p("trap"), Some((2821.0, 587.0)));
        assert_eq!(p("appel1"), Some((701_413.0, 94_496.0)));
        assert_eq!(p("appel2"), Some((684_909.0, 94_854.0)));
    }
}
