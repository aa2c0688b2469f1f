//! The sandbox's interception cost, end to end: a program in ring 3 of
//! `dune sandbox` makes a system call and gets the monitor's answer. Three kinds, as
//! the monitor handles them:
//!
//! - **emulated**: answered in ring 0 without leaving the VM (`arch_prctl(ARCH_GET_FS)`:
//!   the monitor keeps ring 3's FS base);
//! - **forwarded**: checked, then performed in Linux (`getpid`: one exit to the host);
//! - **forwarded, exitless**: the same `getpid` under `dune sandbox --exitless`, made
//!   by a helper thread polling shared memory (no exit while the helper is awake;
//!   with no CPU to spare for it, each call sleeps and wakes instead);
//! - **denied**: refused by the call table (an unknown call number: `ENOSYS`, with one
//!   audit line for the whole run, repeats being counted).
//!
//! The Linux column makes the same calls natively in this process. The Dune column
//! runs `dune sandbox --stats -- dune sandbox-bench-child KIND REPS OPS` (this
//! binary): the child times its own loop with the TSC and checks every answer; the
//! monitor's `--stats` line gives the machine-independent counts (system calls by
//! verdict and exits to the host), net of a run with no operations.

use std::process::Command;

use crate::measure::{verify, Ctx, ExitsPerOp, Measured, RowError, Summary};
use crate::timer;

const ARCH_GET_FS: u64 = 0x1003;
/// A number no kernel assigns (the monitor and Linux both answer ENOSYS).
const UNKNOWN: i64 = 1000;

/// One operation of `kind`; returns whether the answer was right.
fn op(kind: &str, pid: i64) -> bool {
    match kind {
        "emulated" => {
            let mut fs = 0u64;
            // SAFETY: ARCH_GET_FS writes 8 bytes to a local.
            let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_FS, &mut fs as *mut u64) };
            r == 0 && fs != 0
        }
        "forwarded" | "exitless" => {
            // SAFETY: getpid has no effect.
            let r = unsafe { libc::syscall(libc::SYS_getpid) };
            r == pid
        }
        "denied" => {
            // SAFETY: an unassigned number: refused, no effect.
            let r = unsafe { libc::syscall(UNKNOWN) };
            r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS)
        }
        _ => false,
    }
}

/// The child: `REPS` timed loops of `OPS` operations; prints one line of ticks per
/// repetition. Exit status 0, or 1 after a wrong answer (with a message).
pub fn child_main(kind: &str, reps: usize, ops: u64) -> i32 {
    // SAFETY: getpid has no effect.
    let pid = unsafe { libc::getpid() } as i64;
    let mut line = String::from("ticks");
    for _ in 0..reps {
        let t0 = timer::start();
        for _ in 0..ops {
            if !op(kind, pid) {
                eprintln!("sandbox-bench-child: a {kind} call got a wrong answer");
                return 1;
            }
        }
        let t1 = timer::stop();
        line.push_str(&format!(" {}", t1.wrapping_sub(t0)));
    }
    println!("{line}");
    0
}

/// Parsed output of one child run.
struct Run {
    ticks: Vec<u64>,
    /// From the monitor's `--stats` line: (emulated, forwarded, denied, host exits).
    stats: Option<(u64, u64, u64, u64)>,
}

fn number_before(s: &str, word: &str) -> Option<u64> {
    let i = s.find(word)?;
    s[..i].trim_end().rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The `dune` binary: `DUNE_BIN`, this program if it is `dune`, or a `dune` next to
/// it (or one directory up, for test binaries in `deps/`).
pub(crate) fn dune_binary() -> Result<std::path::PathBuf, RowError> {
    if let Some(p) = std::env::var_os("DUNE_BIN") {
        return Ok(p.into());
    }
    let me = std::env::current_exe().map_err(|e| RowError::Os { step: "current_exe", source: e })?;
    if me.file_name().is_some_and(|n| n == "dune") {
        return Ok(me);
    }
    me.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("dune"))
        .find(|p| p.is_file())
        .ok_or_else(|| RowError::Unsupported("the sandbox rows run `dune sandbox`: no `dune` binary next to this program (set DUNE_BIN)".into()))
}

fn spawn(kind: &str, reps: usize, ops: u64) -> Result<Run, RowError> {
    let exe = dune_binary()?;
    let mut cmd = Command::new(&exe);
    cmd.args(["sandbox", "--stats", "--allow-read"]).arg(&exe);
    if kind == "exitless" {
        cmd.arg("--exitless");
    }
    cmd.arg("--").arg(&exe);
    cmd.args(["sandbox-bench-child", kind, &reps.to_string(), &ops.to_string()]);
    let out = cmd.output().map_err(|e| RowError::Os { step: "spawning the benchmark child", source: e })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(125) {
        return Err(RowError::Unsupported(format!("dune sandbox cannot enter Dune mode: {}", stderr.trim())));
    }
    verify!(out.status.success(), "the {kind} child failed ({}): {}", out.status, stderr.trim());
    let ticks: Vec<u64> = stdout.lines().find_map(|l| l.strip_prefix("ticks")).map(|l| l.split_whitespace().filter_map(|t| t.parse().ok()).collect()).unwrap_or_default();
    verify!(ticks.len() == reps, "the {kind} child printed {} repetitions, not {reps}", ticks.len());
    let stats = stderr.lines().find(|l| l.contains("] stats: ")).and_then(|l| {
        let host = &l[l.find("exits to the host:")?..];
        Some((number_before(l, "emulated")?, number_before(l, "forwarded")?, number_before(l, "denied)")?, number_before(host, "system calls")?))
    });
    Ok(Run { ticks, stats })
}

fn measure(ctx: &mut Ctx, kind: &str) -> Result<Measured, RowError> {
    let s = ctx.settings();
    let ops: u64 = ctx.pick(2000, 200);
    let full = spawn(kind, s.warmup + s.reps, ops)?;
    let mut per_op: Vec<f64> = full.ticks[s.warmup..].iter().map(|&t| t.saturating_sub(ctx.timer_overhead()) as f64 / ops as f64).collect();
    per_op.sort_by(f64::total_cmp);
    let mut check = format!("{} {kind} calls in the sandboxed child, each answer checked", ops as usize * (s.warmup + s.reps));
    let exits = {
        let empty = spawn(kind, s.warmup + s.reps, 0)?;
        let (Some(f), Some(e)) = (full.stats, empty.stats) else {
            return Err(RowError::Verify("the monitor printed no --stats line".into()));
        };
        let n = ops * (s.warmup + s.reps) as u64;
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
        let (em, fw, de, host) = (d(f.0, e.0), d(f.1, e.1), d(f.2, e.2), d(f.3, e.3));
        let (want_em, want_fw, want_de) = match kind {
            "emulated" => (1.0, 0.0, 0.0),
            "forwarded" | "exitless" => (0.0, 1.0, 0.0),
            _ => (0.0, 0.0, 1.0),
        };
        verify!((em - want_em).abs() < 0.01 && (fw - want_fw).abs() < 0.01 && (de - want_de).abs() < 0.01, "the monitor counted {em:.2} emulated, {fw:.2} forwarded, {de:.2} denied per {kind} call");
        check.push_str(&format!("; the monitor counted each as {kind}, {host:.2} exits to the host per call"));
        Some(ExitsPerOp { exits: host, io_exits: Some(host), irq_exits: None, halt_exits: None, syscalls: host, traps: 0.0, bracket_exits: 0 })
    };
    Ok(Measured {
        summary: Summary {
            median: crate::measure::median(&per_op),
            min: per_op.first().copied().unwrap_or(0.0),
            max: per_op.last().copied().unwrap_or(0.0),
            reps: s.reps,
            warmup: s.warmup,
            ops_per_rep: ops,
            timer_overhead: ctx.timer_overhead(),
            exits,
        },
        check,
    })
}

/// The Linux way, in this process: the same calls, answered by Linux.
fn native(ctx: &mut Ctx, kind: &str) -> Result<Measured, RowError> {
    let ops: u64 = ctx.pick(2000, 200);
    // SAFETY: getpid has no effect.
    let pid = unsafe { libc::getpid() } as i64;
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(ops, || {
            for _ in 0..ops {
                verify!(op(kind, pid), "a {kind} call got a wrong answer");
                n += 1;
            }
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} {kind} calls, each answer checked") })
}

/// Native: `arch_prctl(ARCH_GET_FS)`.
pub fn linux_emulated(ctx: &mut Ctx) -> Result<Measured, RowError> {
    native(ctx, "emulated")
}
/// Native: `getpid`.
pub fn linux_forwarded(ctx: &mut Ctx) -> Result<Measured, RowError> {
    native(ctx, "forwarded")
}
/// Native: an unknown system call.
pub fn linux_denied(ctx: &mut Ctx) -> Result<Measured, RowError> {
    native(ctx, "denied")
}
/// In `dune sandbox`: emulated by the monitor.
pub fn sandbox_emulated(ctx: &mut Ctx) -> Result<Measured, RowError> {
    measure(ctx, "emulated")
}
/// In `dune sandbox`: forwarded to Linux.
pub fn sandbox_forwarded(ctx: &mut Ctx) -> Result<Measured, RowError> {
    measure(ctx, "forwarded")
}
/// In `dune sandbox --exitless`: forwarded through a polling helper thread.
pub fn sandbox_exitless(ctx: &mut Ctx) -> Result<Measured, RowError> {
    measure(ctx, "exitless")
}
/// In `dune sandbox`: denied.
pub fn sandbox_denied(ctx: &mut Ctx) -> Result<Measured, RowError> {
    measure(ctx, "denied")
}
