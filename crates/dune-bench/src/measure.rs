//! Repetitions, warm-up, overhead subtraction and exit accounting: the harness every
//! row runs in.
//!
//! A row's function gets a [`Ctx`] and calls [`Ctx::repeat`] with a closure that does
//! one repetition: it sets up whatever it needs (untimed), brackets its timed work
//! with [`Rep::time`] (or times intervals itself and hands them to [`Rep::record`],
//! when an interval ends in a signal handler), checks that the work really happened,
//! and returns. The harness throws away the warm-up repetitions and summarizes the
//! rest as cycles per operation: median and minimum over repetitions, each already
//! net of the timer's own overhead.
//!
//! In Dune mode [`Rep::time`] also reads the vCPU's KVM statistics just outside the
//! timed region. Those reads are forwarded system calls, so they cause exits of their
//! own; the exits of an empty bracket, measured once per run, are subtracted.

use std::io;

use libdune::stats::{self, Counts, VcpuStats};

use crate::timer;

/// Which way a row is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A plain Linux process (before `libdune::enter()`).
    Linux,
    /// In Dune mode: the calling thread runs in guest ring 0.
    Dune,
}

/// How many repetitions, and how big the working sets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Measured repetitions per way, after warm-up.
    pub reps: usize,
    /// Repetitions run first and thrown away.
    pub warmup: usize,
    /// Small working sets and batches (`--quick`).
    pub quick: bool,
}

impl Settings {
    /// `--quick`: few repetitions and small working sets; `reps` overrides the count.
    pub fn new(quick: bool, reps: Option<usize>) -> Self {
        let reps = reps.unwrap_or(if quick { 5 } else { 100 }).max(1);
        Settings { reps, warmup: (reps / 10).clamp(1, 10), quick }
    }
}

/// Why a row could not produce a number.
#[derive(Debug)]
pub enum RowError {
    /// The kernel lacks what the row needs; the reason says what.
    Unsupported(String),
    /// The row ran but its own check found that the work did not happen as it must.
    Verify(String),
    /// A system call of the setup or of the measured loop failed.
    Os {
        /// The call or step.
        step: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Reading KVM's statistics failed midway.
    Stats(stats::Error),
}

impl RowError {
    /// `Os` for the last OS error, named by `step`.
    pub fn last_os(step: &'static str) -> Self {
        RowError::Os { step, source: io::Error::last_os_error() }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowError::Unsupported(why) => write!(f, "unsupported: {why}"),
            RowError::Verify(what) => write!(f, "verification failed: {what}"),
            RowError::Os { step, source } => write!(f, "{step} failed: {source}"),
            RowError::Stats(e) => write!(f, "KVM statistics: {e}"),
        }
    }
}

/// Fails with [`RowError::Verify`] unless `cond` holds.
macro_rules! verify {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err($crate::measure::RowError::Verify(format!($($fmt)*)));
        }
    };
}
pub(crate) use verify;

/// KVM exits per operation of one way (Dune mode only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitsPerOp {
    /// All VM exits, including those KVM handles in the kernel (nested page faults,
    /// host interrupts).
    pub exits: f64,
    /// Port-I/O exits: the ones that reached the runtime (forwarded syscalls, traps).
    pub io_exits: Option<f64>,
    /// Exits for host interrupts (timer ticks): noise included in `exits`.
    pub irq_exits: Option<f64>,
    /// `hlt` exits.
    pub halt_exits: Option<f64>,
    /// System calls the runtime forwarded (`libdune::runtime::counters()`).
    pub syscalls: f64,
    /// Exceptions that reached the runtime's host side.
    pub traps: f64,
    /// Exits of one empty measurement bracket, subtracted per bracket.
    pub bracket_exits: u64,
}

/// The result of one way of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Median over repetitions of cycles (TSC ticks) per operation.
    pub median: f64,
    /// Minimum over repetitions.
    pub min: f64,
    /// Maximum over repetitions.
    pub max: f64,
    /// Measured repetitions.
    pub reps: usize,
    /// Warm-up repetitions thrown away.
    pub warmup: usize,
    /// Operations per repetition.
    pub ops_per_rep: u64,
    /// Timer overhead subtracted per timed interval, ticks.
    pub timer_overhead: u64,
    /// KVM exits per operation, in Dune mode when the statistics could be read.
    pub exits: Option<ExitsPerOp>,
}

/// A summary and what the row checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The numbers.
    pub summary: Summary,
    /// What the row verified, in one line ("the handler ran 500 times, at the
    /// expected addresses").
    pub check: String,
}

/// KVM statistics of the calling thread's vCPU and the cost of reading them.
struct KvmMeter {
    stats: VcpuStats,
    /// Field-wise minimum of the deltas of an empty bracket.
    empty: Counts,
}

/// Sums over the brackets of one way.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    brackets: u64,
    ops: u64,
    exits: u64,
    io_exits: Option<u64>,
    irq_exits: Option<u64>,
    halt_exits: Option<u64>,
    syscalls: u64,
    traps: u64,
}

impl Tally {
    fn add_bracket(&mut self, ops: u64, d: &Counts, syscalls: u64, traps: u64) {
        let add = |sum: &mut Option<u64>, v: Option<u64>, first: bool| {
            *sum = match (first, *sum, v) {
                (true, _, v) => v,
                (false, Some(s), Some(v)) => Some(s + v),
                _ => None,
            }
        };
        let first = self.brackets == 0;
        self.brackets += 1;
        self.ops += ops;
        self.exits += d.exits;
        add(&mut self.io_exits, d.io_exits, first);
        add(&mut self.irq_exits, d.irq_exits, first);
        add(&mut self.halt_exits, d.halt_exits, first);
        self.syscalls += syscalls;
        self.traps += traps;
    }

    fn merge(&mut self, other: &Tally) {
        if other.brackets == 0 {
            return;
        }
        if self.brackets == 0 {
            *self = *other;
            return;
        }
        let both = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        self.brackets += other.brackets;
        self.ops += other.ops;
        self.exits += other.exits;
        self.io_exits = both(self.io_exits, other.io_exits);
        self.irq_exits = both(self.irq_exits, other.irq_exits);
        self.halt_exits = both(self.halt_exits, other.halt_exits);
        self.syscalls += other.syscalls;
        self.traps += other.traps;
    }

    /// Per operation, net of `empty` per bracket.
    fn per_op(&self, empty: &Counts) -> Option<ExitsPerOp> {
        if self.ops == 0 {
            return None;
        }
        let ops = self.ops as f64;
        let net = |sum: u64, per_bracket: u64| {
            (sum as f64 - (self.brackets * per_bracket) as f64).max(0.0) / ops
        };
        let opt = |sum: Option<u64>, per: Option<u64>| Some(net(sum?, per.unwrap_or(0)));
        Some(ExitsPerOp {
            exits: net(self.exits, empty.exits),
            io_exits: opt(self.io_exits, empty.io_exits),
            irq_exits: opt(self.irq_exits, empty.irq_exits),
            halt_exits: opt(self.halt_exits, empty.halt_exits),
            syscalls: self.syscalls as f64 / ops,
            traps: self.traps as f64 / ops,
            bracket_exits: empty.exits,
        })
    }
}

/// The measuring context of one mode.
pub struct Ctx {
    /// Linux or Dune.
    pub mode: Mode,
    settings: Settings,
    overhead: u64,
    kvm: Option<KvmMeter>,
}

impl Ctx {
    /// A context for the Linux way: calibrates the timer.
    pub fn linux(settings: Settings) -> Self {
        Ctx { mode: Mode::Linux, settings, overhead: timer::overhead(10_000), kvm: None }
    }

    /// A context for the Dune way; the calling thread must be in Dune mode. Opens the
    /// vCPU's statistics and measures an empty bracket; if the statistics cannot be
    /// read, rows still run, without exit counts, and the error is returned beside.
    pub fn dune(settings: Settings) -> (Self, Option<stats::Error>) {
        let overhead = timer::overhead(10_000);
        let (kvm, err) = match KvmMeter::open() {
            Ok(k) => (Some(k), None),
            Err(e) => (None, Some(e)),
        };
        (Ctx { mode: Mode::Dune, settings, overhead, kvm }, err)
    }

    /// The repetition settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// `normal`, or `quick` under `--quick`.
    pub fn pick<T>(&self, normal: T, quick: T) -> T {
        if self.settings.quick {
            quick
        } else {
            normal
        }
    }

    /// Timer overhead subtracted from every interval, ticks.
    pub fn timer_overhead(&self) -> u64 {
        self.overhead
    }

    /// Exits of an empty measurement bracket (Dune mode with statistics).
    pub fn bracket_exits(&self) -> Option<Counts> {
        self.kvm.as_ref().map(|k| k.empty)
    }

    /// Runs `body` for the warm-up repetitions, then for the measured ones, and
    /// summarizes. Every repetition must time at least one operation.
    pub fn repeat(
        &mut self,
        mut body: impl FnMut(&mut Rep<'_>) -> Result<(), RowError>,
    ) -> Result<Summary, RowError> {
        let Settings { reps, warmup, .. } = self.settings;
        let mut per_op = Vec::with_capacity(reps);
        let mut tally = Tally::default();
        let mut ops_per_rep = 0;
        for i in 0..warmup + reps {
            let mut rep = Rep {
                kvm: self.kvm.as_mut(),
                ticks: 0,
                pairs: 0,
                ops: 0,
                tally: Tally::default(),
            };
            body(&mut rep)?;
            if rep.ops == 0 {
                return Err(RowError::Verify("a repetition timed no operation".into()));
            }
            if i >= warmup {
                let net = rep.ticks as f64 - (rep.pairs * self.overhead) as f64;
                per_op.push(net.max(0.0) / rep.ops as f64);
                tally.merge(&rep.tally);
                ops_per_rep = rep.ops;
            }
        }
        per_op.sort_by(f64::total_cmp);
        let empty = self.kvm.as_ref().map(|k| k.empty).unwrap_or_default();
        Ok(Summary {
            median: median(&per_op),
            min: per_op.first().copied().unwrap_or(0.0),
            max: per_op.last().copied().unwrap_or(0.0),
            reps,
            warmup,
            ops_per_rep,
            timer_overhead: self.overhead,
            exits: self.kvm.as_ref().and_then(|_| tally.per_op(&empty)),
        })
    }
}

/// Median of a sorted slice (mean of the middle two for an even length).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl KvmMeter {
    fn open() -> Result<Self, stats::Error> {
        let mut stats = VcpuStats::open_current()?;
        let mut empty: Option<Counts> = None;
        for _ in 0..32 {
            let a = stats.read()?;
            let b = stats.read()?;
            let d = b.delta(&a);
            let min = |x: Option<u64>, y: Option<u64>| match (x, y) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            empty = Some(match empty {
                None => d,
                Some(e) => Counts {
                    exits: e.exits.min(d.exits),
                    io_exits: min(e.io_exits, d.io_exits),
                    irq_exits: min(e.irq_exits, d.irq_exits),
                    halt_exits: min(e.halt_exits, d.halt_exits),
                },
            });
        }
        Ok(KvmMeter { stats, empty: empty.unwrap_or_default() })
    }
}

/// One repetition in progress.
pub struct Rep<'a> {
    kvm: Option<&'a mut KvmMeter>,
    ticks: u64,
    pairs: u64,
    ops: u64,
    tally: Tally,
}

impl Rep<'_> {
    /// Times `f`, which performs `ops` operations; in Dune mode also counts the exits
    /// they cause.
    pub fn time<T>(&mut self, ops: u64, f: impl FnOnce() -> T) -> Result<T, RowError> {
        let (out, ticks) = self.watch_exits(ops, || {
            let t0 = timer::start();
            let out = f();
            let t1 = timer::stop();
            (out, t1.wrapping_sub(t0))
        })?;
        self.record(ticks, ops);
        Ok(out)
    }

    /// Adds one interval the row timed itself with [`timer::start`] / [`timer::stop`]
    /// (for example ending in a signal handler), covering `ops` operations. The timer
    /// overhead is subtracted once for it.
    pub fn record(&mut self, ticks: u64, ops: u64) {
        self.ticks += ticks;
        self.pairs += 1;
        self.ops += ops;
    }

    /// Counts the exits of `ops` operations done by `f` without timing it (for rows
    /// that time with [`record`](Self::record)). Nothing happens outside Dune mode.
    pub fn watch_exits<T>(&mut self, ops: u64, f: impl FnOnce() -> T) -> Result<T, RowError> {
        let Some(kvm) = self.kvm.as_deref_mut() else {
            return Ok(f());
        };
        let counters = libdune::runtime::counters();
        let snapshot = || {
            use std::sync::atomic::Ordering::Relaxed;
            (counters.syscalls.load(Relaxed), counters.traps.load(Relaxed))
        };
        let before = kvm.stats.read().map_err(RowError::Stats)?;
        let c0 = snapshot();
        let out = f();
        let c1 = snapshot();
        let after = kvm.stats.read().map_err(RowError::Stats)?;
        self.tally.add_bracket(ops, &after.delta(&before), c1.0 - c0.0, c1.1 - c0.1);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(Settings::new(true, None), Settings { reps: 5, warmup: 1, quick: true });
        assert_eq!(Settings::new(false, None), Settings { reps: 100, warmup: 10, quick: false });
        assert_eq!(Settings::new(false, Some(1000)).warmup, 10);
        assert_eq!(Settings::new(false, Some(0)).reps, 1);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn repeat_throws_away_warmup_and_subtracts_overhead() {
        let mut ctx = Ctx { mode: Mode::Linux, settings: Settings { reps: 3, warmup: 2, quick: true }, overhead: 10, kvm: None };
        let mut calls = 0u64;
        let s = ctx
            .repeat(|rep| {
                calls += 1;
                // Warm-up reps are slow; measured ones take 110, 210, 310 ticks for 10 ops.
                let ticks = if calls <= 2 { 100_000 } else { 100 * (calls - 2) + 10 };
                rep.record(ticks, 10);
                Ok(())
            })
            .expect("repeat");
        assert_eq!(calls, 5);
        assert_eq!((s.min, s.median, s.max), (10.0, 20.0, 30.0));
        assert_eq!((s.reps, s.warmup, s.ops_per_rep), (3, 2, 10));
        assert!(s.exits.is_none());
    }

    #[test]
    fn a_repetition_without_operations_fails() {
        let mut ctx = Ctx::linux(Settings::new(true, Some(1)));
        let e = ctx.repeat(|_| Ok(())).expect_err("no ops");
        assert!(matches!(e, RowError::Verify(_)));
    }

    #[test]
    fn time_counts_ops_and_brackets() {
        let mut ctx = Ctx::linux(Settings::new(true, Some(2)));
        let s = ctx
            .repeat(|rep| {
                let v = rep.time(4, || std::hint::black_box(3) + 1)?;
                verify!(v == 4, "closure result {v}");
                Ok(())
            })
            .expect("repeat");
        assert_eq!(s.ops_per_rep, 4);
        assert!(s.min >= 0.0 && s.min <= s.median && s.median <= s.max);
    }

    #[test]
    fn exits_per_op_are_net_of_the_bracket() {
        let mut t = Tally::default();
        let d = Counts { exits: 101, io_exits: Some(101), halt_exits: None, irq_exits: Some(0) };
        t.add_bracket(100, &d, 100, 0);
        t.add_bracket(100, &d, 100, 0);
        let empty = Counts { exits: 1, io_exits: Some(1), halt_exits: None, irq_exits: Some(0) };
        let e = t.per_op(&empty).expect("ops");
        assert_eq!((e.exits, e.io_exits, e.irq_exits, e.halt_exits), (1.0, Some(1.0), Some(0.0), None));
        assert_eq!((e.syscalls, e.traps, e.bracket_exits), (1.0, 0.0, 1));
        let mut sum = Tally::default();
        sum.merge(&t);
        sum.merge(&t);
        assert_eq!((sum.brackets, sum.ops, sum.exits), (4, 400, 404));
    }
}
