//! Latency-by-percentile plots as hand-written SVG, like HdrHistogram's plotter: the x
//! axis is log-scaled in 1/(1-percentile) (0%, 90%, 99%, ... 99.999%), y is latency in ms.

use std::fmt::Write;

/// One curve: (quantile 0.0..=1.0, latency in ms) points, in increasing quantile.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 60.0;
/// Decades on the x axis: 0% to 99.999%.
const DECADES: f64 = 5.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The x position (0..=DECADES) of a quantile: log10(1/(1-q)), q = 1 at the right edge.
fn decade(q: f64) -> f64 {
    if q >= 1.0 {
        return DECADES;
    }
    (1.0 / (1.0 - q)).log10().clamp(0.0, DECADES)
}

/// A round axis top at or above `max`: 1, 2 or 5 times a power of ten.
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * power >= max {
            return m * power;
        }
    }
    10.0 * power
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn tick_label(y: f64) -> String {
    if y == 0.0 || y >= 10.0 {
        format!("{y:.0}")
    } else if y >= 1.0 {
        format!("{y:.1}")
    } else {
        let s = format!("{y:.6}");
        s.trim_end_matches('0').to_string()
    }
}

/// The SVG document: title, axes, a grid, one polyline per series with points, a legend.
pub fn svg(title: &str, series: &[Series]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let top = nice_ceiling(max);
    let x = |q: f64| LEFT + decade(q) / DECADES * plot_w;
    let y = |ms: f64| TOP + plot_h - (ms / top).clamp(0.0, 1.0) * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>
<text x="{}" y="28" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Grid and axis labels.
    out += "<g stroke=\"#ddd\" stroke-width=\"1\">\n";
    for d in 0..=DECADES as u32 {
        let px = LEFT + d as f64 / DECADES * plot_w;
        let _ = writeln!(
            out,
            r#"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}"/>"#,
            TOP + plot_h
        );
    }
    for i in 0..=5 {
        let py = TOP + plot_h - i as f64 / 5.0 * plot_h;
        let _ = writeln!(
            out,
            r#"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}"/>"#,
            LEFT + plot_w
        );
    }
    out += "</g>\n";
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    for (d, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let px = LEFT + d as f64 / DECADES * plot_w;
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            TOP + plot_h + 18.0
        );
    }
    for i in 0..=5 {
        let value = top * i as f64 / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y(value) + 4.0,
            tick_label(value)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">Percentile</text>
<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">Latency (ms)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 16.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // Curves and legend.
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if !s.points.is_empty() {
            let points: Vec<String> = s
                .points
                .iter()
                .map(|&(q, ms)| format!("{:.1},{:.1}", x(q), y(ms)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
        }
        let ly = TOP + 16.0 + i as f64 * 18.0;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"/>
<text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            ly - 4.0,
            LEFT + 36.0,
            ly - 4.0,
            LEFT + 42.0,
            ly,
            escape(&s.label)
        );
    }
    out += "</svg>\n";
    out
}

/// The points of a percentile distribution file written by `--hist-out` (HdrHistogram's
/// text format: `Value Percentile TotalCount 1/(1-Percentile)` rows; other lines, such as
/// the header and the `#[Mean ...]` footer, are skipped).
pub fn parse_distribution(text: &str) -> Result<Vec<(f64, f64)>, String> {
    let mut points = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(value), Some(percentile)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(value), Ok(quantile)) = (value.parse::<f64>(), percentile.parse::<f64>()) else {
            continue;
        };
        if !(0.0..=1.0).contains(&quantile) || !value.is_finite() {
            return Err(format!("not a percentile distribution row: {line:?}"));
        }
        points.push((quantile, value));
    }
    Ok(points)
}

/// `halb-loadtest plot OUT.svg [--title T] LABEL=FILE...`: one SVG with the curves of
/// several `--hist-out` files (for instance direct, HAProxy and halb in one workload).
pub fn main(args: &[std::ffi::OsString]) -> std::process::ExitCode {
    match plot_files(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halb-loadtest plot: {e}");
            eprintln!("usage: halb-loadtest plot OUT.svg [--title TITLE] LABEL=HIST_FILE...");
            std::process::ExitCode::from(2)
        }
    }
}

fn plot_files(args: &[std::ffi::OsString]) -> Result<(), String> {
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    let out = args.next().ok_or("no output file")?;
    let mut title = String::from("latency by percentile");
    let mut series = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--title" {
            title = args.next().ok_or("--title needs a value")?;
            continue;
        }
        // The last `=`: a label may hold one ("c=64"), a file name seldom does.
        let (label, file) = arg
            .rsplit_once('=')
            .ok_or_else(|| format!("{arg:?} is not LABEL=HIST_FILE"))?;
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let points = parse_distribution(&text).map_err(|e| format!("{file}: {e}"))?;
        if points.is_empty() {
            return Err(format!("{file}: no percentile rows"));
        }
        series.push(Series {
            label: label.to_string(),
            points,
        });
    }
    if series.is_empty() {
        return Err("no LABEL=HIST_FILE given".into());
    }
    std::fs::write(&out, svg(&title, &series)).map_err(|e| format!("cannot write {out}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales() {
        assert_eq!(decade(0.0), 0.0);
        assert!((decade(0.9) - 1.0).abs() < 1e-9);
        assert!((decade(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(decade(1.0), 5.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(0.15), 0.2);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(escape("a<b&\"c\">"), "a&lt;b&amp;&quot;c&quot;&gt;");
    }

    #[test]
    fn document() {
        let s = svg(
            "t <x>",
            &[Series {
                label: "a & b".into(),
                points: vec![(0.0, 0.1), (0.5, 0.2), (1.0, 0.9)],
            }],
        );
        assert!(s.contains("<polyline"));
        assert!(s.contains("t &lt;x&gt;"));
        assert!(s.contains("a &amp; b"));
        assert!(s.trim_end().ends_with("</svg>"));
    }
}
