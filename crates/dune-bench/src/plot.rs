//! `--plot FILE`: log-scale bar charts in panels (system calls and faults,
//! interception, sthreads, privileged memory), one band per row with its label: bars
//! for the Linux and Dune ways as measured and as the paper reported them, each with
//! its number, and the Dune way's exits per operation.
//!
//! Text is laid out and drawn with the font embedded from `assets/` (a subset of
//! DejaVu Sans), so the chart looks the same on a machine without fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{Outcome, Report};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1400;

/// The four bars of a group: (legend, colour, value getter).
const SERIES: [(&str, RGBColor); 4] = [
    ("Linux (measured)", RGBColor(31, 119, 180)),
    ("Dune (measured)", RGBColor(230, 110, 0)),
    ("Linux (paper, 2012 Intel)", RGBColor(160, 196, 230)),
    ("Dune (paper, 2012 Intel)", RGBColor(255, 196, 130)),
];

/// Why the chart could not be written.
#[derive(Debug)]
pub struct PlotError(pub String);

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The file kinds `--plot` writes, by extension.
pub fn kind(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "svg" => Some("svg"),
        "png" => Some("png"),
        _ => None,
    }
}

/// Draws the chart into `path` (SVG or PNG, by extension).
pub fn write(report: &Report, path: &Path) -> Result<(), PlotError> {
    static REGISTER: Once = Once::new();
    let mut registered = true;
    REGISTER.call_once(|| registered = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if !registered {
        return Err(PlotError("the embedded font does not parse".into()));
    }
    let panels = panels(report);
    let size = (WIDTH, height(panels.len(), report.rows.len()));
    match kind(path) {
        Some("svg") => draw(SVGBackend::new(path, size).into_drawing_area(), report, &panels),
        Some("png") => draw(BitMapBackend::new(path, size).into_drawing_area(), report, &panels),
        _ => Err(PlotError(format!("{}: --plot writes .svg or .png", path.display()))),
    }
}

/// One row of a panel: its label, the four values (None: no bar), the word for a
/// measured way that has no number, and the Dune way's exits per operation.
struct Group {
    label: String,
    /// "alt. to ptrace", for Linux-only alternatives.
    note: Option<String>,
    values: [Option<f64>; 4],
    missing: [Option<&'static str>; 2],
    exits: Option<f64>,
}

/// The panels, in order: a title and which rows go in it.
const PANELS: [&str; 4] = [
    "System calls, page faults, page walks, traps",
    "Catching system calls: ptrace and seccomp (Linux), the sandbox (Dune)",
    "Sthreads (Wedge): creating, switching, serving a request",
    "Privileged memory: Appel-Li and dirty pages (Linux: mprotect, userfaultfd, soft-dirty)",
];

/// The panel a row belongs in (the last one for rows it does not know).
fn panel_of(name: &str) -> usize {
    match name {
        "getpid" | "pagefault" | "pagewalk" | "trap" => 0,
        n if n == "ptrace" || n.starts_with("seccomp") || n.starts_with("sandbox") => 1,
        n if n.starts_with("sthread") => 2,
        _ => 3,
    }
}

fn group(r: &crate::report::RowResult) -> Group {
    let missing = |o: &Outcome| match o {
        Outcome::Ran(_) | Outcome::Absent | Outcome::Skipped => None,
        other => Some(other.status()),
    };
    Group {
        label: r.row.label.to_string(),
        note: r.row.alternative_to.map(|a| format!("alt. to {a}")),
        values: [
            r.linux.median().filter(|v| *v > 0.0),
            r.dune.median().filter(|v| *v > 0.0),
            r.row.paper.map(|p| p.linux),
            r.row.paper.map(|p| p.dune),
        ],
        missing: [missing(&r.linux), missing(&r.dune)],
        exits: r.dune.measured().and_then(|m| m.summary.exits.as_ref()).map(|e| e.exits),
    }
}

/// The rows of each panel that has any, with the panel's title.
fn panels(report: &Report) -> Vec<(&'static str, Vec<Group>)> {
    let mut out: Vec<(&'static str, Vec<Group>)> = PANELS.iter().map(|t| (*t, Vec::new())).collect();
    for r in &report.rows {
        out[panel_of(r.row.name)].1.push(group(r));
    }
    out.retain(|(_, g)| !g.is_empty());
    out
}

/// Pixel layout: the height of the title block, of one row band, of a panel's title
/// and of its axis.
const HEAD: u32 = 96;
const ROW: u32 = 62;
const PANEL_TITLE: u32 = 30;
const AXIS: u32 = 34;
/// Width of the row labels, left of the bars.
const LABELS: u32 = 250;

/// The chart's height for `rows` rows in `panels` panels.
fn height(panels: usize, rows: usize) -> u32 {
    HEAD + panels as u32 * (PANEL_TITLE + AXIS + 16) + rows as u32 * ROW
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, report: &Report, panels: &[(&'static str, Vec<Group>)]) -> Result<(), PlotError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError(format!("drawing the chart: {e}"));
    root.fill(&WHITE).map_err(err)?;
    let grey = RGBColor(90, 90, 90);
    let left = TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let (w, _) = root.dim_in_pixel();
    let title = "dune bench: Linux vs Dune, TSC ticks per operation (log scale)";
    root.draw(&Text::new(title, (w as i32 / 2, 22), TextStyle::from((FAMILY, 24).into_font()).pos(Pos::new(HPos::Center, VPos::Center)))).map_err(err)?;
    let h = &report.host;
    let mut sub = format!("measured on {}, kernel {}, /dev/kvm {}", h.cpu, h.kernel, h.hypervisor);
    if h.emulated_cpu || h.in_vm {
        sub.push_str(" - VIRTUAL TIMES, not hardware: compare ratios and exits");
    }
    if let crate::report::DuneStatus::Refused(_) = report.dune {
        sub.push_str(" - Dune way refused here");
    }
    root.draw(&Text::new(sub, (w as i32 / 2, 48), TextStyle::from((FAMILY, 14).into_font()).color(&grey).pos(Pos::new(HPos::Center, VPos::Center)))).map_err(err)?;
    // The legend, in one line.
    let mut x = 40;
    for (name, colour) in SERIES.iter() {
        root.draw(&Rectangle::new([(x, 66), (x + 16, 80)], colour.filled())).map_err(err)?;
        root.draw(&Text::new(*name, (x + 22, 73), left.clone())).map_err(err)?;
        x += 32 + 8 * name.len() as i32;
    }
    root.draw(&Text::new("exits/op: the Dune way's VM exits per operation", (x + 10, 73), left.clone().color(&grey))).map_err(err)?;

    let all = panels.iter().flat_map(|(_, g)| g.iter().flat_map(|g| g.values.iter().flatten().copied()));
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = all.fold(0.0f64, f64::max);
    // Room right of the longest bar for its number and exits.
    let (lo, hi) = if lo.is_finite() && hi > 0.0 { (lo / 2.0, hi * 25.0) } else { (1.0, 10.0) };

    let mut rest = root.margin(HEAD, 0, 0, 0);
    for (title, groups) in panels {
        let n = groups.len();
        let (area, below) = rest.split_vertically(PANEL_TITLE + AXIS + 16 + n as u32 * ROW);
        rest = below;
        area.draw(&Text::new(*title, (16, 14), TextStyle::from((FAMILY, 17).into_font()).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(err)?;
        let plot = area.margin(PANEL_TITLE, 16, 8, 24);
        let mut chart = ChartBuilder::on(&plot)
            .x_label_area_size(AXIS)
            .y_label_area_size(LABELS)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v| crate::report::cycles(*v))
            .label_style((FAMILY, 12))
            .draw()
            .map_err(err)?;
        // Row i is the band [n-1-i, n-i): Linux and Dune measured on top, the paper's
        // two below them.
        let band = |i: usize| (n - 1 - i) as f64;
        let slot = |i: usize, s: usize| {
            let top = band(i) + 0.94 - s as f64 * 0.22;
            (top - 0.2, top)
        };
        for (s, (_, colour)) in SERIES.iter().enumerate() {
            let bars = groups.iter().enumerate().filter_map(|(i, g)| {
                let v = g.values[s]?;
                let (y0, y1) = slot(i, s);
                Some(Rectangle::new([(lo, y0), (v, y1)], colour.filled()))
            });
            chart.draw_series(bars).map_err(err)?;
        }
        let (ax, ay) = area.get_base_pixel();
        let at = |x: f64, y: f64| {
            let (px, py) = chart.backend_coord(&(x, y));
            (px - ax, py - ay)
        };
        let value = TextStyle::from((FAMILY, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let paper = value.clone().color(&RGBColor(120, 120, 120));
        let label = TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        let note = TextStyle::from((FAMILY, 12).into_font()).color(&grey).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, g) in groups.iter().enumerate() {
            let (lx, ly) = at(lo, band(i) + 0.5);
            let dy = if g.note.is_some() { 8 } else { 0 };
            area.draw(&Text::new(g.label.clone(), (lx - 10, ly - dy), label.clone())).map_err(err)?;
            if let Some(n) = &g.note {
                area.draw(&Text::new(n.clone(), (lx - 10, ly + 9), note.clone())).map_err(err)?;
            }
            for s in 0..4 {
                let (y0, y1) = slot(i, s);
                let y = (y0 + y1) / 2.0;
                let text = match (g.values[s], s) {
                    (Some(v), 1) => {
                        let mut t = crate::report::cycles(v);
                        if let Some(l) = g.values[0] {
                            t.push_str(&format!(" · {:.2}x Linux", v / l));
                        }
                        if let Some(e) = g.exits {
                            t.push_str(&format!(" · {e:.2} exits/op"));
                        }
                        t
                    }
                    (Some(v), _) => crate::report::cycles(v),
                    (None, 0 | 1) => match g.missing[s] {
                        Some(word) => format!("{} way {word}", if s == 0 { "Linux" } else { "Dune" }),
                        None => continue,
                    },
                    (None, _) => continue,
                };
                let (px, py) = at(g.values[s].unwrap_or(lo), y);
                area.draw(&Text::new(text, (px + 5, py), if s < 2 { value.clone() } else { paper.clone() })).map_err(err)?;
            }
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{ExitsPerOp, Measured, Settings, Summary};
    use crate::report::{DuneStatus, RowResult};
    use crate::rows::{Way, ROWS};

    fn ran(median: f64, exits: Option<f64>) -> Outcome {
        Outcome::Ran(Measured {
            summary: Summary {
                median,
                min: median,
                max: median,
                reps: 5,
                warmup: 1,
                ops_per_rep: 1,
                timer_overhead: 0,
                exits: exits.map(|exits| ExitsPerOp { exits, io_exits: None, irq_exits: None, halt_exits: None, syscalls: 0.0, traps: 0.0, bracket_exits: 1 }),
            },
            check: "ok".into(),
        })
    }

    /// Every row in a panel, the panels in order, and a chart (SVG and PNG) as tall as
    /// its rows need: written to the temporary directory for a look
    /// (`dune-bench-chart-test.{svg,png}`).
    #[test]
    fn every_row_has_a_panel_and_the_chart_draws() {
        let rows: Vec<RowResult> = ROWS
            .iter()
            .enumerate()
            .map(|(i, row)| RowResult {
                row,
                linux: if row.name == "softdirty" { Outcome::Unsupported("no soft-dirty".into()) } else { ran(300.0 * 3f64.powi(i as i32 % 9), None) },
                dune: match row.dune {
                    Way::Run(_) | Way::Process(_) => ran(500.0 * 2f64.powi(i as i32 % 11), Some(1.0 + i as f64 / 10.0)),
                    Way::Pending(w) => Outcome::Pending(w),
                    Way::None => Outcome::Absent,
                },
            })
            .collect();
        let report = Report {
            host: crate::host::Host {
                cpu: "Test CPU".into(),
                kernel: "6.1".into(),
                hypervisor: "kvm_amd".into(),
                hardware_virt: true,
                verdict: "ready".into(),
                verdict_kind: "ready",
                in_vm: true,
                emulated_cpu: true,
                warnings: vec![],
            },
            settings: Settings::new(true, None),
            linux_timer_overhead: 0,
            dune: DuneStatus::Ran { timer_overhead: 0, bracket: None, stats_error: None },
            rows,
        };
        let p = panels(&report);
        assert_eq!(p.len(), 4);
        assert_eq!(p.iter().map(|(_, g)| g.len()).sum::<usize>(), ROWS.len());
        assert!(p[0].1.iter().any(|g| g.label.contains("getpid")) && p[1].1.iter().any(|g| g.label.contains("ptrace")));
        for ext in ["svg", "png"] {
            let path = std::env::temp_dir().join(format!("dune-bench-chart-test.{ext}"));
            write(&report, &path).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{}", path.display());
        }
    }
}
