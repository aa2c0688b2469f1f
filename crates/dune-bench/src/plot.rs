//! `--plot FILE`: a log-scale grouped bar chart, one group per row, bars for the Linux
//! and Dune ways as measured and as the paper reported them.
//!
//! Text is laid out and drawn with the font embedded from `assets/` (a subset of
//! DejaVu Sans), so the chart looks the same on a machine without fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use crate::report::{Outcome, Report};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 760;

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
    match kind(path) {
        Some("svg") => draw(SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area(), report),
        Some("png") => draw(BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area(), report),
        _ => Err(PlotError(format!("{}: --plot writes .svg or .png", path.display()))),
    }
}

/// One group of bars: the row label and the four values (None: no bar), plus a word
/// for a measured way that has no number.
struct Group {
    label: String,
    /// "alternative to ptrace", for Linux-only alternatives.
    note: Option<String>,
    values: [Option<f64>; 4],
    missing: [Option<&'static str>; 2],
}

fn groups(report: &Report) -> Vec<Group> {
    let missing = |o: &Outcome| match o {
        Outcome::Ran(_) | Outcome::Absent | Outcome::Skipped => None,
        other => Some(other.status()),
    };
    report
        .rows
        .iter()
        .map(|r| Group {
            label: r.row.label.to_string(),
            note: r.row.alternative_to.map(|a| format!("(alt. to {a})")),
            values: [
                r.linux.median().filter(|v| *v > 0.0),
                r.dune.median().filter(|v| *v > 0.0),
                r.row.paper.map(|p| p.linux),
                r.row.paper.map(|p| p.dune),
            ],
            missing: [missing(&r.linux), missing(&r.dune)],
        })
        .collect()
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, report: &Report) -> Result<(), PlotError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError(format!("drawing the chart: {e}"));
    root.fill(&WHITE).map_err(err)?;
    let root = root.margin(12, 0, 0, 0);
    let title = "dune bench: Linux vs Dune, cycles per operation (log scale)";
    let root = root.titled(title, (FAMILY, 26)).map_err(err)?;
    let h = &report.host;
    let mut sub = format!("measured on {}, kernel {}, /dev/kvm {}", h.cpu, h.kernel, h.hypervisor);
    if h.emulated_cpu || h.in_vm {
        sub.push_str(" - VIRTUAL TIMES, not hardware");
    }
    if let crate::report::DuneStatus::Refused(_) = report.dune {
        sub.push_str(" - Dune way refused here");
    }
    let root = root.titled(&sub, (FAMILY, 15).into_font().color(&RGBColor(90, 90, 90))).map_err(err)?;

    let groups = groups(report);
    let all = groups.iter().flat_map(|g| g.values.iter().flatten().copied());
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = all.fold(0.0f64, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > 0.0 { (lo / 3.0, hi * 3.0) } else { (1.0, 10.0) };
    let n = groups.len().max(1) as f64;

    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..n, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_desc("TSC ticks per operation")
        .y_label_formatter(&|v| crate::report::cycles(*v))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(err)?;

    let bar = 0.8 / SERIES.len() as f64;
    for (s, (name, colour)) in SERIES.iter().enumerate() {
        let bars = groups.iter().enumerate().filter_map(|(i, g)| {
            let v = g.values[s]?;
            let x0 = i as f64 + 0.1 + s as f64 * bar;
            Some(Rectangle::new([(x0, lo), (x0 + bar * 0.92, v)], colour.filled()))
        });
        let colour = *colour;
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .draw()
        .map_err(err)?;

    // Row names under their groups, and a word where a measured bar is missing.
    let label = TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    let small = TextStyle::from((FAMILY, 12).into_font())
        .color(&RGBColor(110, 110, 110))
        .pos(Pos::new(HPos::Center, VPos::Top));
    let note = TextStyle::from((FAMILY, 12).into_font().transform(FontTransform::Rotate270))
        .color(&RGBColor(120, 120, 120))
        .pos(Pos::new(HPos::Left, VPos::Center));
    // backend_coord is in backend pixels; root's own coordinates start at its corner.
    let (bx, by) = root.get_base_pixel();
    let at = |x: f64, y: f64| {
        let (px, py) = chart.backend_coord(&(x, y));
        (px - bx, py - by)
    };
    for (i, g) in groups.iter().enumerate() {
        let (x, y) = at(i as f64 + 0.5, lo);
        root.draw(&Text::new(g.label.clone(), (x, y + 8), label.clone())).map_err(err)?;
        if let Some(n) = &g.note {
            root.draw(&Text::new(n.clone(), (x, y + 26), small.clone())).map_err(err)?;
        }
        for (s, word) in g.missing.iter().enumerate() {
            if let Some(word) = word {
                let (x, y) = at(i as f64 + 0.1 + (s as f64 + 0.5) * bar, lo);
                root.draw(&Text::new(word.to_string(), (x, y - 6), note.clone())).map_err(err)?;
            }
        }
    }
    root.present().map_err(err)?;
    Ok(())
}
