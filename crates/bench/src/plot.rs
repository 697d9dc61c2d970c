//! A hand-written SVG chart for `--plot`: latency by percentile per command
//! (HdrHistogram-plotter style, with a logarithmic "nines" x-axis so the
//! tail gets as much room as the median) above ops/s over time.

use hdrhistogram::Histogram;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 820.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0; // room for the legend
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A plotting area in SVG coordinates with data ranges.
struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    xmax: f64,
    ymax: f64,
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        self.x0 + self.w * (x / self.xmax).clamp(0.0, 1.0)
    }
    fn py(&self, y: f64) -> f64 {
        self.y0 + self.h - self.h * (y / self.ymax).clamp(0.0, 1.0)
    }
}

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let k = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    k * mag
}

/// Axis maximum rounded up to a whole tick.
fn nice_max(v: f64) -> (f64, f64) {
    let step = nice_step(v, 5.0);
    let max = ((v / step).ceil() * step).max(step);
    (max, step)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Label for the percentile at `nines` = log10(1 / (1 - q)).
fn percentile_label(nines: u32) -> String {
    // 0 → 0%, 1 → 90%, 2 → 99%, 3 → 99.9%, 4 → 99.99%, ...
    match nines {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// `(x = log10(1/(1-q)), latency ms)` points of a microsecond histogram,
/// excluding q = 1 (infinitely far right on this axis).
fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| {
            let q = v.quantile_iterated_to();
            (
                (1.0 / (1.0 - q)).log10(),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .collect()
}

/// Renders the chart. `series` are `(name, microsecond histogram)`;
/// `timeline` is ops/s for each elapsed second.
pub fn render(title: &str, series: &[(String, &Histogram<u64>)], timeline: &[f64]) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    // Panel 1: latency by percentile.
    let points: Vec<Vec<(f64, f64)>> = series.iter().map(|(_, h)| percentile_points(h)).collect();
    let max_nines = points
        .iter()
        .flatten()
        .map(|p| p.0)
        .fold(0.0f64, f64::max)
        .ceil()
        .clamp(2.0, 7.0);
    let max_lat = points.iter().flatten().map(|p| p.1).fold(0.0f64, f64::max);
    let (ymax, ystep) = nice_max(if max_lat > 0.0 { max_lat * 1.05 } else { 1.0 });
    let lat = Panel {
        x0: LEFT,
        y0: 50.0,
        w: WIDTH - LEFT - RIGHT,
        h: 420.0,
        xmax: max_nines,
        ymax,
    };
    frame(
        &mut svg,
        &lat,
        "Percentile",
        "Latency (ms)",
        "Latency by percentile",
    );
    for n in 0..=(max_nines as u32) {
        let x = lat.px(f64::from(n));
        grid_x(&mut svg, &lat, x, &percentile_label(n));
    }
    let decimals = (-ystep.log10().floor()).max(0.0) as usize;
    y_ticks(&mut svg, &lat, ystep, |v| format!("{v:.decimals$}"));
    for (i, ((name, h), pts)) in series.iter().zip(&points).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        polyline(
            &mut svg,
            pts.iter().map(|&(x, y)| (lat.px(x), lat.py(y))),
            color,
        );
        let max_ms = if h.is_empty() {
            0.0
        } else {
            h.max() as f64 / 1000.0
        };
        legend(
            &mut svg,
            &lat,
            i,
            color,
            &format!("{name} (max {max_ms:.3} ms)"),
        );
    }

    // Panel 2: throughput over time.
    let max_ops = timeline.iter().copied().fold(0.0f64, f64::max);
    let (ymax, ystep) = nice_max(if max_ops > 0.0 { max_ops * 1.05 } else { 1.0 });
    let (xmax, xstep) = nice_max((timeline.len() as f64).max(1.0));
    let ops = Panel {
        x0: LEFT,
        y0: 560.0,
        w: WIDTH - LEFT - RIGHT,
        h: 200.0,
        xmax,
        ymax,
    };
    frame(&mut svg, &ops, "Time (s)", "ops/s", "Throughput");
    let mut t = 0.0;
    while t <= xmax + 1e-9 {
        grid_x(&mut svg, &ops, ops.px(t), &format!("{t}"));
        t += xstep;
    }
    y_ticks(&mut svg, &ops, ystep, |v| format!("{v}"));
    polyline(
        &mut svg,
        timeline
            .iter()
            .enumerate()
            .map(|(i, &v)| (ops.px(i as f64 + 1.0), ops.py(v))),
        PALETTE[0],
    );
    for (i, &v) in timeline.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
            ops.px(i as f64 + 1.0),
            ops.py(v),
            PALETTE[0]
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn frame(svg: &mut String, p: &Panel, xlabel: &str, ylabel: &str, title: &str) {
    let _ = writeln!(
        svg,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        p.x0, p.y0, p.w, p.h
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">{}</text>"#,
        p.x0 + p.w / 2.0,
        p.y0 - 8.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        p.x0 + p.w / 2.0,
        p.y0 + p.h + 36.0,
        escape(xlabel)
    );
    let (cx, cy) = (p.x0 - 58.0, p.y0 + p.h / 2.0);
    let _ = writeln!(
        svg,
        r#"<text x="{cx}" y="{cy}" text-anchor="middle" transform="rotate(-90 {cx} {cy})">{}</text>"#,
        escape(ylabel)
    );
}

fn grid_x(svg: &mut String, p: &Panel, x: f64, label: &str) {
    let _ = writeln!(
        svg,
        r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#ddd"/>"##,
        p.y0,
        p.y0 + p.h
    );
    let _ = writeln!(
        svg,
        r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
        p.y0 + p.h + 16.0,
        escape(label)
    );
}

fn y_ticks(svg: &mut String, p: &Panel, step: f64, fmt: impl Fn(f64) -> String) {
    let mut v = 0.0;
    let mut i = 0;
    while v <= p.ymax + step * 1e-6 && i < 100 {
        let y = p.py(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##,
            p.x0,
            p.x0 + p.w
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            p.x0 - 6.0,
            y + 4.0,
            escape(&fmt(v))
        );
        i += 1;
        v = step * f64::from(i);
    }
}

fn polyline(svg: &mut String, pts: impl Iterator<Item = (f64, f64)>, color: &str) {
    let mut coords = String::new();
    for (x, y) in pts {
        let _ = write!(coords, "{x:.1},{y:.1} ");
    }
    if coords.is_empty() {
        return;
    }
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
        coords.trim_end()
    );
}

fn legend(svg: &mut String, p: &Panel, i: usize, color: &str, label: &str) {
    let x = p.x0 + p.w + 14.0;
    let y = p.y0 + 10.0 + 20.0 * i as f64;
    let _ = writeln!(
        svg,
        r#"<rect x="{x}" y="{}" width="14" height="4" fill="{color}"/>"#,
        y - 4.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}">{}</text>"#,
        x + 20.0,
        y + 1.0,
        escape(label)
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn labels() {
        let got: Vec<String> = (0..5).map(percentile_label).collect();
        assert_eq!(got, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_max(0.87), (1.0, 0.2));
        assert_eq!(nice_max(12_345.0).0, 15_000.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn renders_svg() {
        let mut h = new_histogram().unwrap();
        for v in 1..=10_000u64 {
            h.saturating_record(v);
        }
        let empty = new_histogram().unwrap();
        let svg = render(
            "a <b> & c",
            &[("GET".to_string(), &h), ("SET".to_string(), &empty)],
            &[1000.0, 1200.0, 900.0],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.contains("99.99%"));
        assert!(svg.contains("GET (max 10.0"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
