//! Turning merged measurements into the final table, the JSON document and
//! HdrHistogram `.hgrm` percentile-distribution files.

use crate::json::Json;
use crate::options::{Config, Limit};
use crate::stats::{CmdStats, ThreadStats};
use hdrhistogram::Histogram;
use std::fmt::Write;
use std::time::Duration;

/// Everything known about a finished run.
#[derive(Debug)]
pub struct Summary<'a> {
    /// The configuration it ran with.
    pub config: &'a Config,
    /// Merged measurements of all workers.
    pub stats: ThreadStats,
    /// From the common start to the last reply.
    pub duration: Duration,
    /// Completed requests per second, one entry per elapsed second.
    pub timeline: Vec<f64>,
    /// Fatal problems (connection closed, protocol error, ...).
    pub failures: Vec<String>,
    /// Whether the user interrupted the run.
    pub interrupted: bool,
}

/// Latency figures of one row, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl Latency {
    /// Figures of a microsecond histogram, in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency {
                avg: 0.0,
                p50: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            avg: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One line of the report.
struct Row<'a> {
    name: &'a str,
    stats: &'a CmdStats,
    /// Hits/misses are meaningful (GET-like commands and totals with GETs).
    show_hits: bool,
}

impl Summary<'_> {
    fn secs(&self) -> f64 {
        self.duration.as_secs_f64().max(1e-9)
    }

    fn total(&self) -> CmdStats {
        self.stats.total()
    }

    /// Hit/miss counters of the totals only include GET-like commands.
    fn total_hits(&self) -> (u64, u64, bool) {
        let mut any = false;
        let (mut hits, mut misses) = (0, 0);
        for (spec, cs) in self.config.commands.iter().zip(&self.stats.commands) {
            if spec.counts_hits {
                any = true;
                hits += cs.hits;
                misses += cs.misses;
            }
        }
        (hits, misses, any)
    }

    /// The human-readable results table.
    pub fn table(&self) -> String {
        let total = self.total();
        let mut rows: Vec<Row<'_>> = self
            .config
            .commands
            .iter()
            .zip(&self.stats.commands)
            .map(|(spec, stats)| Row {
                name: &spec.name,
                stats,
                show_hits: spec.counts_hits,
            })
            .collect();
        let (hits, misses, any_hits) = self.total_hits();
        let mut total_row = total.clone();
        total_row.hits = hits;
        total_row.misses = misses;
        rows.push(Row {
            name: "Totals",
            stats: &total_row,
            show_hits: any_hits,
        });
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(6).max(6);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$} {:>10} {:>12} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "Type",
            "Ops",
            "Ops/sec",
            "Hits",
            "Misses",
            "Errors",
            "Avg ms",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "Max ms"
        );
        let _ = writeln!(out, "{}", "-".repeat(width + 107));
        for row in &rows {
            let l = Latency::of(&row.stats.hist);
            let (h, m) = if row.show_hits {
                (row.stats.hits.to_string(), row.stats.misses.to_string())
            } else {
                ("-".to_string(), "-".to_string())
            };
            let _ = writeln!(
                out,
                "{:<width$} {:>10} {:>12.2} {:>9} {:>9} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                row.name,
                row.stats.ops(),
                row.stats.ops() as f64 / self.secs(),
                h,
                m,
                row.stats.errors,
                l.avg,
                l.p50,
                l.p99,
                l.p999,
                l.max
            );
        }
        let _ = writeln!(
            out,
            "\n{:.2} s, {:.1} KB/s sent, {:.1} KB/s received",
            self.secs(),
            self.stats.bytes_out as f64 / 1024.0 / self.secs(),
            self.stats.bytes_in as f64 / 1024.0 / self.secs()
        );
        if total.errors > 0 {
            let _ = writeln!(out, "\n{} error replies; first ones:", total.errors);
            for s in &self.stats.error_samples {
                let name = self.command_name(s.command);
                let _ = writeln!(out, "  {name}: {}", s.message);
            }
        }
        if self.stats.pushes > 0 {
            let _ = writeln!(out, "{} RESP3 push messages ignored", self.stats.pushes);
        }
        if self.stats.unanswered > 0 {
            let _ = writeln!(out, "{} requests got no reply", self.stats.unanswered);
        }
        out
    }

    fn command_name(&self, i: usize) -> &str {
        self.config.commands.get(i).map_or("?", |c| c.name.as_str())
    }

    fn row_json(&self, name: &str, stats: &CmdStats, hits: Option<(u64, u64)>) -> Json {
        let l = Latency::of(&stats.hist);
        let round = |v: f64| Json::Num((v * 1000.0).round() / 1000.0);
        Json::obj([
            ("name", Json::str(name)),
            ("ops", Json::Int(stats.ops())),
            ("ops_per_sec", round(stats.ops() as f64 / self.secs())),
            ("errors", Json::Int(stats.errors)),
            ("hits", Json::opt_int(hits.map(|h| h.0))),
            ("misses", Json::opt_int(hits.map(|h| h.1))),
            (
                "latency_ms",
                Json::obj([
                    ("avg", round(l.avg)),
                    ("p50", round(l.p50)),
                    ("p99", round(l.p99)),
                    ("p99.9", round(l.p999)),
                    ("max", round(l.max)),
                ]),
            ),
        ])
    }

    /// The `--json-out` document.
    pub fn json(&self) -> Json {
        let c = self.config;
        let commands = c
            .commands
            .iter()
            .zip(&self.stats.commands)
            .map(|(spec, stats)| {
                let hits = spec.counts_hits.then_some((stats.hits, stats.misses));
                self.row_json(&spec.name, stats, hits)
            })
            .collect();
        let (hits, misses, any) = self.total_hits();
        let totals = self.row_json("Totals", &self.total(), any.then_some((hits, misses)));
        let (requests, test_time) = match c.limit {
            Limit::Requests(n) => (Some(n), None),
            Limit::Time(d) => (None, Some(d.as_secs())),
        };
        let config = Json::obj([
            ("host", Json::str(&c.host)),
            ("port", Json::Int(u64::from(c.port))),
            ("threads", Json::Int(c.threads as u64)),
            ("clients", Json::Int(c.clients as u64)),
            ("pipeline", Json::Int(c.pipeline as u64)),
            ("requests", Json::opt_int(requests)),
            ("test_time", Json::opt_int(test_time)),
            ("rate", Json::opt_int(c.rate)),
            ("data_size", Json::Int(c.data_size as u64)),
            ("key_prefix", Json::str(&c.key_prefix)),
            ("key_minimum", Json::Int(c.key_space.min)),
            ("key_maximum", Json::Int(c.key_space.max)),
            ("protocol", Json::Int(u64::from(c.protocol))),
            ("seed", Json::Int(c.seed)),
            (
                "commands",
                Json::Arr(
                    c.commands
                        .iter()
                        .map(|s| {
                            Json::obj([
                                ("name", Json::str(&s.name)),
                                ("weight", Json::Int(u64::from(s.weight))),
                                ("key_pattern", Json::str(&s.key_pattern.to_string())),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]);
        Json::obj([
            ("tool", Json::str("shardis-bench")),
            ("version", Json::str(env!("CARGO_PKG_VERSION"))),
            ("configuration", config),
            (
                "duration_secs",
                Json::Num((self.secs() * 1e6).round() / 1e6),
            ),
            ("commands", Json::Arr(commands)),
            ("totals", totals),
            (
                "error_samples",
                Json::Arr(
                    self.stats
                        .error_samples
                        .iter()
                        .map(|s| {
                            Json::obj([
                                ("command", Json::str(self.command_name(s.command))),
                                ("message", Json::str(&s.message)),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("unanswered", Json::Int(self.stats.unanswered)),
            ("pushes", Json::Int(self.stats.pushes)),
            ("bytes_out", Json::Int(self.stats.bytes_out)),
            ("bytes_in", Json::Int(self.stats.bytes_in)),
            (
                "ops_per_sec_timeline",
                Json::Arr(self.timeline.iter().map(|v| Json::Num(v.round())).collect()),
            ),
            (
                "failures",
                Json::Arr(self.failures.iter().map(|f| Json::str(f)).collect()),
            ),
            ("interrupted", Json::Bool(self.interrupted)),
        ])
    }

    /// `(file name suffix, histogram)` for every command plus the totals,
    /// named after the command (deduplicated) so files are easy to find.
    pub fn histograms(&self) -> Vec<(String, Histogram<u64>)> {
        let mut out: Vec<(String, Histogram<u64>)> = Vec::new();
        for (spec, stats) in self.config.commands.iter().zip(&self.stats.commands) {
            let base = sanitize(&spec.template.command_name());
            let mut name = base.clone();
            let mut n = 2;
            while out.iter().any(|(existing, _)| *existing == name) || name == "TOTALS" {
                name = format!("{base}_{n}");
                n += 1;
            }
            out.push((name, stats.hist.clone()));
        }
        out.push(("TOTALS".to_string(), self.total().hist));
        out
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "CMD".to_string()
    } else {
        s
    }
}

/// HdrHistogram's percentile-distribution text (`.hgrm`) of a microsecond
/// histogram, with values in milliseconds as HdrHistogram's plotter expects:
/// five percentile ticks per half-distance, then the mean/max footer.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / 1000.0;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / 1000.0,
            h.stdev() / 1000.0,
            h.max() as f64 / 1000.0,
        )
    };
    // HdrHistogram's sub-bucket count: 2 * 10^sigfig rounded up to a power
    // of two (the field is private in the Rust crate).
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn hgrm_format() {
        let mut h = new_histogram().unwrap();
        for v in 1..=1000u64 {
            h.saturating_record(v * 10);
        }
        let text = hgrm(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "       0.010 0.000000000000          1           1.00"
        );
        let last = lines[lines.len() - 4];
        assert!(
            last.starts_with("      10.007 1.000000000000       1000"),
            "{last}"
        );
        assert_eq!(last.split_whitespace().count(), 3);
        assert!(text.contains("#[Max     =       10.007, Total count    =         1000]"));
        assert!(text.contains("SubBuckets     =         2048]"));
        // Percentiles never decrease.
        let qs: Vec<f64> = lines[2..lines.len() - 3]
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(qs.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn latency_in_ms() {
        let mut h = new_histogram().unwrap();
        for v in [1000u64, 2000, 3000] {
            h.saturating_record(v);
        }
        let l = Latency::of(&h);
        assert!((l.avg - 2.0).abs() < 0.01);
        assert!((l.p50 - 2.0).abs() < 0.01);
        assert!((l.max - 3.0).abs() < 0.01);
        assert_eq!(Latency::of(&new_histogram().unwrap()).max, 0.0);
    }

    #[test]
    fn sanitized_names() {
        assert_eq!(sanitize("HSET"), "HSET");
        assert_eq!(sanitize("a b/c"), "a_b_c");
        assert_eq!(sanitize(""), "CMD");
    }
}
