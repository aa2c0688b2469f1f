//! Wedge sthreads (paper §5.2, Table 5): creating a compartment and switching
//! between two, against the Linux way of isolating code, a process.
//!
//! - **create**: `fork` + `_exit` + `waitpid` against a recycled sthread (create +
//!   join of `f(x) = x + 1`; the compartment is reset through its dirty bits and
//!   reused). A second row puts `pthread_create` + join (no isolation) against a
//!   freshly built compartment (page table, private copies of the globals), freed
//!   at the end.
//! - **switch**: one switch between two isolated contexts. Linux: two processes
//!   ping-pong a byte over pipes (a round trip is two switches). Dune: an sthread
//!   calls a callgate, which runs in a compartment of its own and returns (two
//!   compartment switches per call, and the gate's reset).
//!
//! The paper's figures (µs, Table 5) are shown in cycles at its machine's 2.4 GHz.

use crate::measure::{verify, Ctx, Measured, RowError};

use dune_sthread::{Policy, Violation};

fn dune(e: dune_sthread::Error) -> RowError {
    RowError::Verify(format!("sthread: {e}"))
}

fn add_one(x: usize) -> usize {
    x + 1
}

fn joined(h: dune_sthread::Handle) -> Result<usize, RowError> {
    match dune_sthread::join(h).map_err(dune)? {
        Ok(v) => Ok(v as usize),
        Err(v) => Err(RowError::Verify(format!("the sthread was ended: {v:?}"))),
    }
}

/// Linux: fork + exit + wait.
pub fn fork_wait(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops: u64 = ctx.pick(50, 10);
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(ops, || {
            for _ in 0..ops {
                // SAFETY: the child only calls _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(7) };
                }
                verify!(pid > 0, "fork failed");
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                verify!(r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7, "child status {status:#x}");
                n += 1;
            }
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} children forked, each exited with 7") })
}

/// Linux: pthread_create + join (no isolation).
pub fn pthread_join(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops: u64 = ctx.pick(50, 10);
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(ops, || {
            for i in 0..ops as usize {
                let r = std::thread::spawn(move || add_one(i)).join();
                verify!(matches!(r, Ok(v) if v == i + 1), "thread result");
                n += 1;
            }
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} threads joined, each result checked") })
}

fn create_join(ctx: &mut Ctx, recycle: bool) -> Result<Measured, RowError> {
    dune_sthread::init().map_err(dune)?;
    dune_sthread::set_recycle(recycle);
    let policy = Policy::new();
    // Warm: the recycled path starts from a pooled compartment.
    joined(dune_sthread::spawn(&policy, add_one, 0).map_err(dune)?)?;
    let ops: u64 = ctx.pick(if recycle { 200 } else { 20 }, 10);
    let mut n = 0u64;
    let r = ctx.repeat(|rep| {
        rep.time(ops, || {
            for i in 0..ops as usize {
                let h = dune_sthread::spawn(&policy, add_one, i).map_err(dune)?;
                verify!(joined(h)? == i + 1, "sthread result");
                n += 1;
            }
            Ok(())
        })?
    });
    dune_sthread::set_recycle(true);
    let stats = dune_sthread::stats().map_err(dune)?;
    let summary = r?;
    verify!(stats.sthreads == 0, "{} sthreads left unjoined", stats.sthreads);
    let how = if recycle { "recycled" } else { "freshly built" };
    Ok(Measured { summary, check: format!("{n} sthreads ({how} compartments) joined, each result checked; {} compartments alive after", stats.compartments) })
}

/// Dune: create + join, the compartment recycled.
pub fn sthread_recycled(ctx: &mut Ctx) -> Result<Measured, RowError> {
    create_join(ctx, true)
}

/// Dune: create + join, a fresh compartment each time.
pub fn sthread_fresh(ctx: &mut Ctx) -> Result<Measured, RowError> {
    create_join(ctx, false)
}

/// Linux: one switch between two processes (a pipe round trip is two).
pub fn pipe_switch(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let rounds: u64 = ctx.pick(500, 50);
    let (mut a, mut b) = ([0i32; 2], [0i32; 2]);
    // SAFETY: two pipes into locals.
    verify!(unsafe { libc::pipe(a.as_mut_ptr()) == 0 && libc::pipe(b.as_mut_ptr()) == 0 }, "pipe");
    // SAFETY: the child only echoes bytes with read/write and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the child's copies of the parent's ends: closed so that EOF comes.
        unsafe {
            libc::close(a[1]);
            libc::close(b[0]);
        }
        let mut c = 0u8;
        // SAFETY: one byte at a time between the pipes.
        while unsafe { libc::read(a[0], (&mut c as *mut u8).cast(), 1) } == 1 {
            c = c.wrapping_add(1);
            // SAFETY: as above.
            if unsafe { libc::write(b[1], (&c as *const u8).cast(), 1) } != 1 {
                break;
            }
        }
        // SAFETY: ends the child.
        unsafe { libc::_exit(0) };
    }
    verify!(pid > 0, "fork");
    // SAFETY: the child's ends, not used here.
    unsafe {
        libc::close(a[0]);
        libc::close(b[1]);
    }
    let mut n = 0u64;
    let r = ctx.repeat(|rep| {
        rep.time(2 * rounds, || {
            for i in 0..rounds {
                let out = i as u8;
                let mut back = 0u8;
                // SAFETY: one byte each way.
                let ok = unsafe { libc::write(a[1], (&out as *const u8).cast(), 1) == 1 && libc::read(b[0], (&mut back as *mut u8).cast(), 1) == 1 };
                verify!(ok && back == out.wrapping_add(1), "echo");
                n += 1;
            }
            Ok(())
        })?
    });
    // SAFETY: closing our pipe ends makes the child see EOF and exit.
    unsafe {
        for fd in [a[1], b[0]] {
            libc::close(fd);
        }
        libc::waitpid(pid, core::ptr::null_mut(), 0);
    }
    Ok(Measured { summary: r?, check: format!("{n} round trips, each echo checked") })
}

extern "C" fn echo_gate(_trusted: *mut libc::c_void, untrusted: *mut libc::c_void) -> *mut libc::c_void {
    (untrusted as usize + 1) as *mut libc::c_void
}

/// The sthread: `n` callgate round trips; the sum of the answers.
fn gate_loop(n: usize) -> usize {
    let mut sum = 0usize;
    for i in 0..n {
        sum = sum.wrapping_add(dune_sthread::capi::cgate(Some(echo_gate), core::ptr::null_mut(), i as *mut libc::c_void) as usize);
    }
    sum
}

/// Dune: one switch between two compartments (a callgate round trip is two).
pub fn sthread_switch(ctx: &mut Ctx) -> Result<Measured, RowError> {
    dune_sthread::init().map_err(dune)?;
    let mut policy = Policy::new();
    policy.gate(echo_gate as extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> *mut libc::c_void as usize as u64, Policy::new(), 0).map_err(dune)?;
    let rounds: usize = ctx.pick(500, 50);
    let want = (1..=rounds).sum::<usize>();
    joined(dune_sthread::spawn(&policy, gate_loop, 1).map_err(dune)?)?;
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(2 * rounds as u64, || {
            let h = dune_sthread::spawn(&policy, gate_loop, rounds).map_err(dune)?;
            match dune_sthread::join(h).map_err(dune)? {
                Ok(v) => verify!(v as usize == want, "callgate answers summed to {v}, not {want}"),
                Err(v @ Violation::Callgate { .. }) | Err(v) => return Err(RowError::Verify(format!("ended: {v:?}"))),
            }
            n += rounds as u64;
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} callgate round trips, the answers' sum checked") })
}
