//! The results of a run, as a text table and as JSON.

use std::fmt::Write;

use libdune::stats::Counts;

use crate::host::Host;
use crate::json::Value;
use crate::measure::{ExitsPerOp, Measured, Settings};
use crate::rows::Row;

/// What became of one way of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Measured and verified.
    Ran(Measured),
    /// The kernel lacks what the row needs.
    Unsupported(String),
    /// An error, or the row's own check failed: no number.
    Failed(String),
    /// Dune mode could not be entered (see [`DuneStatus::Refused`]).
    Refused,
    /// libdune lacks what this way needs.
    Pending(&'static str),
    /// The row has no such way.
    Absent,
    /// Not run: the row was not selected for this way.
    Skipped,
}

impl Outcome {
    /// Short name, as in JSON `status`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Ran(_) => "ran",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::Failed(_) => "failed",
            Outcome::Refused => "refused",
            Outcome::Pending(_) => "pending",
            Outcome::Absent => "none",
            Outcome::Skipped => "skipped",
        }
    }

    /// The measurement, if it ran.
    pub fn measured(&self) -> Option<&Measured> {
        match self {
            Outcome::Ran(m) => Some(m),
            _ => None,
        }
    }

    /// The median, if it ran.
    pub fn median(&self) -> Option<f64> {
        self.measured().map(|m| m.summary.median)
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Unsupported(r) | Outcome::Failed(r) => Some(r),
            Outcome::Pending(r) => Some(r),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        let mut fields = vec![("status", Value::from(self.status()))];
        match self {
            Outcome::Ran(m) => {
                let s = &m.summary;
                fields.extend([
                    ("verified", Value::from(true)),
                    ("check", Value::from(m.check.as_str())),
                    ("median", Value::from(s.median)),
                    ("min", Value::from(s.min)),
                    ("max", Value::from(s.max)),
                    ("reps", Value::from(s.reps)),
                    ("warmup", Value::from(s.warmup)),
                    ("ops_per_rep", Value::from(s.ops_per_rep)),
                    ("timer_overhead", Value::from(s.timer_overhead)),
                    ("exits", Value::opt(s.exits.as_ref(), exits_json)),
                ]);
            }
            other => {
                if let Some(r) = other.reason() {
                    fields.push(("reason", Value::from(r)));
                }
            }
        }
        Value::Object(fields)
    }
}

fn exits_json(e: &ExitsPerOp) -> Value {
    Value::Object(vec![
        ("exits_per_op", Value::from(e.exits)),
        ("io_exits_per_op", Value::opt(e.io_exits, Value::from)),
        ("irq_exits_per_op", Value::opt(e.irq_exits, Value::from)),
        ("halt_exits_per_op", Value::opt(e.halt_exits, Value::from)),
        ("forwarded_syscalls_per_op", Value::from(e.syscalls)),
        ("runtime_traps_per_op", Value::from(e.traps)),
        ("bracket_exits_subtracted", Value::from(e.bracket_exits)),
    ])
}

/// One row's results.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// The row.
    pub row: &'static Row,
    /// The Linux way.
    pub linux: Outcome,
    /// The Dune way.
    pub dune: Outcome,
}

impl RowResult {
    /// Dune median / Linux median, when both ran.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.dune.median()? / self.linux.median()?)
    }
}

/// Whether the Dune ways ran.
#[derive(Debug, Clone, PartialEq)]
pub enum DuneStatus {
    /// A thread entered Dune mode and ran them.
    Ran {
        /// Timer overhead in Dune mode, ticks.
        timer_overhead: u64,
        /// Exits of an empty measurement bracket, when the statistics could be read.
        bracket: Option<Counts>,
        /// Why exits could not be counted, if so.
        stats_error: Option<String>,
    },
    /// `libdune::enter()` refused or failed.
    Refused(String),
    /// No selected row has a Dune way to run.
    NotNeeded,
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// Where it ran.
    pub host: Host,
    /// Repetitions.
    pub settings: Settings,
    /// Timer overhead of the Linux way, ticks.
    pub linux_timer_overhead: u64,
    /// The Dune side.
    pub dune: DuneStatus,
    /// One entry per selected row, in table order.
    pub rows: Vec<RowResult>,
}

/// Exit status: a row failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: `--require-dune` and the Dune way did not run.
pub const EXIT_NO_DUNE: u8 = 2;

impl Report {
    /// True if any way of any row failed.
    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(|r| matches!(r.linux, Outcome::Failed(_)) || matches!(r.dune, Outcome::Failed(_)))
    }

    /// 0; [`EXIT_FAILED`] if a row failed; [`EXIT_NO_DUNE`] if `require_dune` and
    /// Dune mode was refused.
    pub fn exit_code(&self, require_dune: bool) -> u8 {
        if self.any_failed() {
            EXIT_FAILED
        } else if require_dune && matches!(self.dune, DuneStatus::Refused(_)) {
            EXIT_NO_DUNE
        } else {
            0
        }
    }

    /// The text table with its header and notes.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let dune_overhead = match &self.dune {
            DuneStatus::Ran { timer_overhead, .. } => format!(", Dune {timer_overhead}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "dune bench: cycles (TSC ticks) per operation, median and minimum of {} repetitions after {} warm-up; \
             timer overhead subtracted (Linux {}{dune_overhead} ticks)",
            s.reps, s.warmup, self.linux_timer_overhead
        );
        let h = &self.host;
        let _ = writeln!(out, "host: {}; kernel {}; /dev/kvm: {}", h.cpu, h.kernel, h.hypervisor);
        let _ = writeln!(out, "{}", h.verdict);
        for w in &h.warnings {
            let _ = writeln!(out, "WARNING: {w}");
        }
        if let DuneStatus::Refused(reason) = &self.dune {
            let _ = writeln!(out, "WARNING: the Dune way did NOT run: {reason}");
        }
        out.push('\n');
        out.push_str(&self.table());
        out.push('\n');
        out.push_str(&self.notes());
        out
    }

    fn table(&self) -> String {
        const HEAD: [&str; 11] = [
            "row", "Linux med", "min", "Dune med", "min", "Dune/Linux", "exits/op", "user/op", "paper Linux", "paper Dune", "paper D/L",
        ];
        let mut lines: Vec<[String; 11]> = vec![HEAD.map(String::from)];
        for r in &self.rows {
            let label = if r.row.alternative_to.is_some() { format!("  {}", r.row.label) } else { r.row.label.to_string() };
            let (lmed, lmin) = cells(&r.linux);
            let (dmed, dmin) = cells(&r.dune);
            let exits = r.dune.measured().and_then(|m| m.summary.exits);
            let paper = r.row.paper;
            lines.push([
                label,
                lmed,
                lmin,
                dmed,
                dmin,
                r.ratio().map_or(String::new(), |x| format!("{x:.2}x")),
                exits.map_or(String::new(), |e| format!("{:.2}", e.exits)),
                exits.and_then(|e| e.io_exits).map_or(String::new(), |x| format!("{x:.2}")),
                paper.map_or(String::new(), |p| cycles(p.linux)),
                paper.map_or(String::new(), |p| cycles(p.dune)),
                paper.map_or(String::new(), |p| format!("{:.2}x", p.dune / p.linux)),
            ]);
        }
        let widths: Vec<usize> = (0..HEAD.len()).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for l in &lines {
            let mut line = format!("{:<w$}", l[0], w = widths[0]);
            for c in 1..HEAD.len() {
                let _ = write!(line, "  {:>w$}", l[c], w = widths[c]);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn notes(&self) -> String {
        let mut out = String::new();
        match &self.dune {
            DuneStatus::Ran { bracket, stats_error, .. } => {
                let _ = write!(out, "Dune way: ran on a thread in Dune mode (guest ring 0).");
                match (bracket, stats_error) {
                    (Some(b), _) => {
                        let _ = writeln!(
                            out,
                            " exits/op: all KVM exits of its vCPU per operation (KVM_GET_STATS_FD), including those KVM \
                             handles itself (nested page faults, host interrupts); user/op: those that reached the runtime \
                             (port I/O: forwarded syscalls, traps). The {} exit(s) of each statistics read are subtracted.",
                            b.exits
                        );
                    }
                    (None, Some(e)) => {
                        let _ = writeln!(out, " Exits not counted: {e}");
                    }
                    (None, None) => out.push('\n'),
                }
            }
            DuneStatus::Refused(_) => {
                let _ = writeln!(out, "Dune way: refused (the reason is in the warning above): no Dune-way number was measured.");
            }
            DuneStatus::NotNeeded => {}
        }
        let _ = writeln!(out, "appel1, appel2 and their alternatives: one operation is a round over 100 pages.");
        // Pending ways, grouped by reason.
        let mut pending: Vec<(&str, Vec<&str>)> = Vec::new();
        for r in &self.rows {
            if let Outcome::Pending(why) = r.dune {
                match pending.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, names)) => names.push(r.row.name),
                    None => pending.push((why, vec![r.row.name])),
                }
            }
        }
        for (why, names) in pending {
            let _ = writeln!(out, "Dune way pending for {}: {why}.", names.join(", "));
        }
        for r in &self.rows {
            for (way, o) in [("Linux", &r.linux), ("Dune", &r.dune)] {
                if let Outcome::Unsupported(why) | Outcome::Failed(why) = o {
                    let _ = writeln!(out, "{} ({way} way): {}: {why}", r.row.name, o.status());
                }
            }
        }
        out
    }

    /// The JSON document written by `--json`.
    pub fn to_json(&self) -> Value {
        let dune = match &self.dune {
            DuneStatus::Ran { timer_overhead, bracket, stats_error } => Value::Object(vec![
                ("status", Value::from("ran")),
                ("timer_overhead", Value::from(*timer_overhead)),
                ("bracket_exits", Value::opt(bracket.as_ref(), |b| Value::from(b.exits))),
                ("stats_error", Value::opt(stats_error.as_deref(), Value::from)),
            ]),
            DuneStatus::Refused(reason) => {
                Value::Object(vec![("status", Value::from("refused")), ("reason", Value::from(reason.as_str()))])
            }
            DuneStatus::NotNeeded => Value::Object(vec![("status", Value::from("not-needed"))]),
        };
        let rows = self
            .rows
            .iter()
            .map(|r| {
                Value::Object(vec![
                    ("name", Value::from(r.row.name)),
                    ("label", Value::from(r.row.label)),
                    ("op", Value::from(r.row.op)),
                    ("alternative_to", Value::opt(r.row.alternative_to, Value::from)),
                    (
                        "paper",
                        Value::opt(r.row.paper, |p| {
                            Value::Object(vec![("linux", Value::from(p.linux)), ("dune", Value::from(p.dune))])
                        }),
                    ),
                    ("linux", r.linux.to_json()),
                    ("dune", r.dune.to_json()),
                    ("ratio", Value::opt(r.ratio(), Value::from)),
                ])
            })
            .collect();
        Value::Object(vec![
            ("tool", Value::from("dune bench")),
            ("version", Value::from(env!("CARGO_PKG_VERSION"))),
            ("unit", Value::from("TSC ticks per operation")),
            ("ok", Value::from(!self.any_failed())),
            ("host", self.host.to_json()),
            (
                "settings",
                Value::Object(vec![
                    ("reps", Value::from(self.settings.reps)),
                    ("warmup", Value::from(self.settings.warmup)),
                    ("quick", Value::from(self.settings.quick)),
                ]),
            ),
            ("linux_timer_overhead", Value::from(self.linux_timer_overhead)),
            ("dune", dune),
            ("rows", Value::Array(rows)),
        ])
    }
}

/// (median, min) cells of a way.
fn cells(o: &Outcome) -> (String, String) {
    match o {
        Outcome::Ran(m) => (cycles(m.summary.median), cycles(m.summary.min)),
        Outcome::Absent => ("-".into(), String::new()),
        Outcome::Failed(_) => ("FAILED".into(), String::new()),
        other => (other.status().into(), String::new()),
    }
}

/// Cycles as the paper prints them: one decimal below 100, thousands separators above.
pub fn cycles(x: f64) -> String {
    if !x.is_finite() {
        return "?".into();
    }
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Summary;
    use crate::rows::{find, ROWS};

    #[test]
    fn cycles_format() {
        assert_eq!(cycles(35.84), "35.8");
        assert_eq!(cycles(138.0), "138");
        assert_eq!(cycles(2687.4), "2,687");
        assert_eq!(cycles(701_413.0), "701,413");
        assert_eq!(cycles(f64::NAN), "?");
    }

    fn measured(median: f64, exits: Option<f64>) -> Outcome {
        Outcome::Ran(Measured {
            summary: Summary {
                median,
                min: median * 0.9,
                max: median * 1.5,
                reps: 5,
                warmup: 1,
                ops_per_rep: 100,
                timer_overhead: 30,
                exits: exits.map(|x| ExitsPerOp {
                    exits: x,
                    io_exits: Some(x),
                    irq_exits: Some(0.0),
                    halt_exits: None,
                    syscalls: x,
                    traps: 0.0,
                    bracket_exits: 1,
                }),
            },
            check: "ok".into(),
        })
    }

    fn host() -> Host {
        Host {
            cpu: "Test CPU".into(),
            kernel: "6.1".into(),
            hypervisor: "kvm_amd".into(),
            hardware_virt: true,
            verdict: "Dune mode: ready".into(),
            verdict_kind: "ready",
            in_vm: true,
            emulated_cpu: false,
            warnings: vec!["virtual".into()],
        }
    }

    #[test]
    fn table_and_json_carry_every_row() {
        let rows = ROWS
            .iter()
            .map(|row| RowResult {
                row,
                linux: if row.name == "softdirty" { Outcome::Unsupported("no soft-dirty".into()) } else { measured(200.0, None) },
                dune: match row.dune {
                    crate::rows::Way::Run(_) => measured(1000.0, Some(1.0)),
                    crate::rows::Way::Pending(w) => Outcome::Pending(w),
                    crate::rows::Way::None => Outcome::Absent,
                    crate::rows::Way::Process(_) => measured(1000.0, Some(1.0)),
                },
            })
            .collect();
        let report = Report {
            host: host(),
            settings: Settings::new(true, None),
            linux_timer_overhead: 30,
            dune: DuneStatus::Ran { timer_overhead: 40, bracket: Some(Counts { exits: 1, ..Default::default() }), stats_error: None },
            rows,
        };
        let text = report.text();
        assert!(text.contains("WARNING: virtual"), "{text}");
        let getpid = text.lines().find(|l| l.starts_with("getpid")).expect("getpid line");
        assert!(getpid.contains("200") && getpid.contains("1,000") && getpid.contains("5.00x") && getpid.contains("138"), "{getpid}");
        assert!(text.contains("softdirty (Linux way): unsupported: no soft-dirty"), "{text}");
        assert!(!text.contains("Dune way pending"), "every row has a Dune way now: {text}");
        let json = report.to_json().to_pretty();
        for r in ROWS {
            assert!(json.contains(&format!("\"name\": \"{}\"", r.name)), "{}", r.name);
        }
        assert_eq!(report.exit_code(true), 0);
        assert!(find("getpid").is_some());
    }

    #[test]
    fn refused_and_failed_exit_codes() {
        let row = find("getpid").expect("row");
        let mut report = Report {
            host: host(),
            settings: Settings::new(true, None),
            linux_timer_overhead: 30,
            dune: DuneStatus::Refused("emulated".into()),
            rows: vec![RowResult { row, linux: measured(100.0, None), dune: Outcome::Refused }],
        };
        assert!(report.text().contains("WARNING: the Dune way did NOT run: emulated"));
        assert_eq!(report.exit_code(false), 0);
        assert_eq!(report.exit_code(true), EXIT_NO_DUNE);
        report.rows[0].linux = Outcome::Failed("verification failed: x".into());
        assert_eq!(report.exit_code(false), EXIT_FAILED);
        assert!(report.to_json().to_pretty().contains("\"ok\": false"));
    }
}
