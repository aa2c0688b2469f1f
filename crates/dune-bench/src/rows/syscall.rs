//! getpid: the cost of a system call (in Dune mode, of a forwarded one).

use crate::measure::{verify, Ctx, Measured, Mode, RowError};
use crate::loops;

/// `syscall(SYS_getpid)` in a loop; every call must return the pid. In Dune mode each
/// call must also have been forwarded by the runtime exactly once.
pub fn getpid(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = 100u64;
    let pid = i64::from(std::process::id());
    let mut calls = 0u64;
    let summary = ctx.repeat(|rep| {
        let wrong = rep.time(ops, || loops::getpid_n(ops, pid))?;
        verify!(wrong == 0, "getpid returned something other than the pid {wrong} times");
        calls += ops;
        Ok(())
    })?;
    let mut check = format!("getpid returned the pid {calls} times");
    if ctx.mode == Mode::Dune {
        if let Some(e) = &summary.exits {
            verify!(e.syscalls == 1.0, "the runtime forwarded {} system calls per getpid, not 1", e.syscalls);
            check.push_str(", each forwarded once by the runtime");
        }
    }
    Ok(Measured { summary, check })
}
