//! Command-line options (memtier_benchmark's names and defaults where they
//! exist) and their validation into a [`Config`].
//!
//! clap rejects malformed values itself; cross-option checks that clap cannot
//! express (key range order, template syntax, CPU ids) are reported through
//! clap's error type too, so every bad invocation exits with status 2 and a
//! message in the same style.

use crate::workload::{CommandSpec, KeyPattern, KeySpace, Template};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use std::path::PathBuf;
use std::time::Duration;

/// Requests per client when neither `--requests` nor `--test-time` is given
/// (memtier's default).
pub const DEFAULT_REQUESTS: u64 = 10_000;

const AFTER_HELP: &str = "\
WORKLOAD
  Without --command the mix is SET/GET in --ratio (e.g. 1:10: one SET for every
  ten GETs, interleaved evenly, not randomly). With --command only the given
  templates are sent; give a weight as a numeric prefix before a colon:

    --command 'HSET __key__ f __data__' --command '3:HGET __key__ f'

  sends three HGETs per HSET. __key__ becomes --key-prefix followed by a key
  number drawn by the key pattern; __data__ becomes --data-size bytes.
  Arguments are separated by spaces; \"double quotes\" group one with spaces.

  Every __key__ of a template is the same key. Numbered placeholders
  __key1__, __key2__ ... are further keys, each drawn independently once per
  request (and the same wherever the same name recurs):

    --command 'MGET __key1__ __key2__ __key3__'

  A standalone ; separates commands sent back to back as one request, all
  sharing the template's key draws (a quoted \";\" is an ordinary argument):

    --command 'INCR __key__ ; EXPIRE __key__ 60 NX'

  Such a request counts as one operation in every figure (ops/s, latency,
  --pipeline, --requests, --rate); its latency runs until the reply to its
  last command, and it counts as an error if any of its replies is one.

KEY PATTERNS
  R uniform random, G gaussian (--key-median, --key-stddev), S sequential,
  Z zipfian (--key-zipf-exp; low key numbers are hot). --key-pattern S:R sets
  the SET and GET patterns separately; --command templates use the first.

OPEN LOOP
  --rate N sends N requests/s in total on a fixed schedule. Latency is
  measured from each request's scheduled time, so a stalled server is charged
  for the requests it delayed (coordinated-omission correction).

  With --requests N each thread sends clients × N requests on its schedule.

EXIT STATUS
  0 success; 1 connection refused or closed by the server, protocol error, or
  requests left unanswered; 2 bad usage; 130 interrupted (results still shown).
  Error replies (-ERR ...) are counted and reported but do not fail the run.";

/// Raw command line, as clap parses it.
#[derive(Debug, Parser)]
#[command(
    name = "shardis-bench",
    version,
    about = "memtier-style load generator for Redis-compatible (RESP) servers",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Server host name or address.
    #[arg(
        short = 's',
        long,
        visible_alias = "server",
        default_value = "127.0.0.1"
    )]
    pub host: String,

    /// Server port.
    #[arg(short = 'p', long, default_value_t = 6379)]
    pub port: u16,

    /// Worker threads, each running its own event loop.
    #[arg(short = 't', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Connections per thread.
    #[arg(short = 'c', long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,

    /// Requests kept outstanding per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub pipeline: u32,

    /// Requests per client (default 10000 unless --test-time is given).
    #[arg(short = 'n', long, conflicts_with = "test_time", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Run for this many seconds instead of a request count.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub test_time: Option<u64>,

    /// SET:GET ratio for the default workload.
    #[arg(long, default_value = "1:10", value_parser = parse_ratio)]
    pub ratio: (u32, u32),

    /// Value size in bytes for __data__ / SET.
    #[arg(short = 'd', long, default_value_t = 32)]
    pub data_size: usize,

    /// Prefix of every key.
    #[arg(long, default_value = "memtier-")]
    pub key_prefix: String,

    /// Smallest key number.
    #[arg(long, default_value_t = 0)]
    pub key_minimum: u64,

    /// Largest key number (inclusive).
    #[arg(long, default_value_t = 10_000_000)]
    pub key_maximum: u64,

    /// Key pattern: R, G, S or Z, or SET:GET such as R:R or S:Z.
    #[arg(long, default_value = "R:R", value_parser = parse_key_patterns)]
    pub key_pattern: (KeyPattern, KeyPattern),

    /// Gaussian pattern: median key number (default: middle of the range).
    #[arg(long)]
    pub key_median: Option<f64>,

    /// Gaussian pattern: standard deviation (default: range / 6).
    #[arg(long)]
    pub key_stddev: Option<f64>,

    /// Zipfian pattern: exponent, 0 < EXP < 5.
    #[arg(long, default_value_t = 1.0)]
    pub key_zipf_exp: f64,

    /// Custom command template, repeatable: '[WEIGHT:]TEMPLATE' (see below).
    #[arg(long = "command", value_name = "[WEIGHT:]TEMPLATE")]
    pub commands: Vec<String>,

    /// Total requests per second over all connections (open loop).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,

    /// RNG seed; thread i uses SEED + i. Random (and printed) if absent.
    #[arg(long)]
    pub seed: Option<u64>,

    /// RESP version; 3 sends HELLO 3 on every connection first.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub protocol: u8,

    /// Write the results as JSON to FILE.
    #[arg(long, visible_alias = "json-out-file", value_name = "FILE")]
    pub json_out: Option<PathBuf>,

    /// Write PREFIX_<command>.hgrm latency distributions (HdrHistogram text).
    #[arg(long, value_name = "PREFIX")]
    pub hdr_file_prefix: Option<String>,

    /// Pin worker threads to these CPUs, e.g. 0,1 or 0-3 (round-robin).
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,

    /// Write an SVG chart of latency percentiles and ops/s over time.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// A parsed `--cpus` list (a newtype so clap does not treat it as repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// How the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Each connection sends this many requests.
    Requests(u64),
    /// Stop sending after this long.
    Time(Duration),
}

/// Validated configuration for a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` to connect to.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Worker threads.
    pub threads: usize,
    /// Connections per thread.
    pub clients: usize,
    /// Outstanding requests per connection.
    pub pipeline: usize,
    /// When the run stops.
    pub limit: Limit,
    /// Total requests/s for open loop; `None` for closed loop.
    pub rate: Option<u64>,
    /// The command mix.
    pub commands: Vec<CommandSpec>,
    /// Key range and distribution parameters.
    pub key_space: KeySpace,
    /// Key prefix.
    pub key_prefix: String,
    /// Value size.
    pub data_size: usize,
    /// Base seed.
    pub seed: u64,
    /// RESP version.
    pub protocol: u8,
    /// JSON output path.
    pub json_out: Option<PathBuf>,
    /// `.hgrm` output prefix.
    pub hdr_file_prefix: Option<String>,
    /// CPUs to pin threads to.
    pub cpus: Vec<usize>,
    /// SVG output path.
    pub plot: Option<PathBuf>,
}

fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("expected SET:GET such as 1:10, got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("expected SET:GET such as 1:10, got {s:?}"))
    };
    let ratio = (parse(a)?, parse(b)?);
    if ratio == (0, 0) {
        return Err("ratio 0:0 sends nothing".to_string());
    }
    Ok(ratio)
}

fn parse_key_patterns(s: &str) -> Result<(KeyPattern, KeyPattern), String> {
    match s.split_once(':') {
        Some((set, get)) => Ok((set.parse()?, get.parse()?)),
        None => {
            let p: KeyPattern = s.parse()?;
            Ok((p, p))
        }
    }
}

fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list entry {part:?} (expected e.g. 0,1 or 0-3)");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() {
        return Err("empty CPU list".to_string());
    }
    Ok(CpuList(cpus))
}

/// Splits `WEIGHT:TEMPLATE`; a template without a numeric prefix weighs 1.
fn parse_weighted(text: &str) -> Result<(u32, &str), String> {
    if let Some((w, rest)) = text.split_once(':') {
        let w = w.trim();
        if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
            let weight = w
                .parse::<u32>()
                .map_err(|_| format!("weight {w:?} too large in --command {text:?}"))?;
            return Ok((weight, rest));
        }
    }
    Ok((1, text))
}

impl Args {
    /// Checks what clap cannot and builds the run configuration.
    pub fn into_config(self) -> Result<Config, String> {
        if self.key_minimum > self.key_maximum {
            return Err(format!(
                "--key-minimum ({}) is larger than --key-maximum ({})",
                self.key_minimum, self.key_maximum
            ));
        }
        if !(self.key_zipf_exp > 0.0 && self.key_zipf_exp < 5.0) {
            return Err(format!(
                "--key-zipf-exp must be in (0, 5), got {}",
                self.key_zipf_exp
            ));
        }
        if let Some(sd) = self.key_stddev {
            if !(sd.is_finite() && sd > 0.0) {
                return Err(format!("--key-stddev must be positive, got {sd}"));
            }
        }
        if let Some(m) = self.key_median {
            if !m.is_finite() {
                return Err(format!("--key-median must be a number, got {m}"));
            }
        }
        let (set_pattern, get_pattern) = self.key_pattern;
        let commands = if self.commands.is_empty() {
            let (set_w, get_w) = self.ratio;
            let mut cmds = Vec::new();
            for (name, text, weight, pattern, hits) in [
                ("SET", "SET __key__ __data__", set_w, set_pattern, false),
                ("GET", "GET __key__", get_w, get_pattern, true),
            ] {
                if weight > 0 {
                    cmds.push(CommandSpec {
                        name: name.to_string(),
                        template: Template::parse(text)?,
                        weight,
                        key_pattern: pattern,
                        counts_hits: hits,
                    });
                }
            }
            cmds
        } else {
            let mut cmds = Vec::new();
            for text in &self.commands {
                let (weight, body) = parse_weighted(text)?;
                let template =
                    Template::parse(body).map_err(|e| format!("--command {text:?}: {e}"))?;
                if weight == 0 {
                    continue;
                }
                let name = body.split_whitespace().collect::<Vec<_>>().join(" ");
                cmds.push(CommandSpec {
                    counts_hits: template.command_name() == "GET",
                    name,
                    template,
                    weight,
                    key_pattern: set_pattern,
                });
            }
            if cmds.is_empty() {
                return Err("every --command has weight 0".to_string());
            }
            cmds
        };
        let cpus = match self.cpus {
            Some(CpuList(list)) => {
                let available: Vec<usize> = core_affinity::get_core_ids()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                if let Some(bad) = list.iter().find(|c| !available.contains(c)) {
                    return Err(format!(
                        "--cpus: CPU {bad} is not available (available: {available:?})"
                    ));
                }
                list
            }
            None => Vec::new(),
        };
        let limit = match (self.requests, self.test_time) {
            (_, Some(secs)) => Limit::Time(Duration::from_secs(secs)),
            (Some(n), None) => Limit::Requests(n),
            (None, None) => Limit::Requests(DEFAULT_REQUESTS),
        };
        let seed = self.seed.unwrap_or_else(random_seed);
        Ok(Config {
            host: self.host,
            port: self.port,
            threads: self.threads as usize,
            clients: self.clients as usize,
            pipeline: self.pipeline as usize,
            limit,
            rate: self.rate,
            commands,
            key_space: KeySpace {
                min: self.key_minimum,
                max: self.key_maximum,
                median: self.key_median,
                stddev: self.key_stddev,
                zipf_exp: self.key_zipf_exp,
            },
            key_prefix: self.key_prefix,
            data_size: self.data_size,
            seed,
            protocol: self.protocol,
            json_out: self.json_out,
            hdr_file_prefix: self.hdr_file_prefix,
            cpus,
            plot: self.plot,
        })
    }
}

/// A seed from the clock, for runs that did not ask for one (it is printed
/// so the run can be repeated).
fn random_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
        .unwrap_or(0)
}

/// Parses the process arguments; on any error prints clap's message and
/// exits with status 2.
pub fn parse() -> Config {
    let args = Args::parse();
    match args.into_config() {
        Ok(config) => config,
        Err(msg) => Args::command()
            .error(ErrorKind::ValueValidation, msg)
            .exit(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn try_parse(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["shardis-bench"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .into_config()
    }

    #[test]
    fn defaults() {
        let c = try_parse(&[]).unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 6379);
        assert_eq!((c.threads, c.clients, c.pipeline), (1, 50, 1));
        assert_eq!(c.limit, Limit::Requests(DEFAULT_REQUESTS));
        assert_eq!(c.key_prefix, "memtier-");
        assert_eq!((c.key_space.min, c.key_space.max), (0, 10_000_000));
        assert_eq!(c.data_size, 32);
        assert_eq!(c.protocol, 2);
        let names: Vec<_> = c
            .commands
            .iter()
            .map(|c| (c.name.as_str(), c.weight))
            .collect();
        assert_eq!(names, [("SET", 1), ("GET", 10)]);
        assert!(c.rate.is_none());
    }

    #[test]
    fn memtier_style_values() {
        let c = try_parse(&[
            "--key-pattern",
            "S:Z",
            "--ratio",
            "0:1",
            "--test-time",
            "5",
            "--cpus",
            "0",
            "--seed",
            "7",
            "--protocol",
            "3",
            "-t",
            "2",
            "-c",
            "3",
        ])
        .unwrap();
        assert_eq!(c.limit, Limit::Time(Duration::from_secs(5)));
        assert_eq!(c.commands.len(), 1);
        assert_eq!(c.commands[0].name, "GET");
        assert_eq!(c.commands[0].key_pattern, KeyPattern::Zipfian);
        assert_eq!((c.seed, c.protocol, c.threads, c.clients), (7, 3, 2, 3));
        assert_eq!(c.cpus, vec![0]);
    }

    #[test]
    fn weighted_commands() {
        let c = try_parse(&[
            "--command",
            "HSET __key__ f __data__",
            "--command",
            "3:HGET __key__ f",
            "--command",
            "0:DEL __key__",
            "--command",
            "get  __key__",
        ])
        .unwrap();
        let got: Vec<_> = c
            .commands
            .iter()
            .map(|c| (c.name.as_str(), c.weight, c.counts_hits))
            .collect();
        assert_eq!(
            got,
            [
                ("HSET __key__ f __data__", 1, false),
                ("HGET __key__ f", 3, false),
                ("get __key__", 1, true)
            ]
        );
    }

    #[test]
    fn multi_command_template() {
        let c = try_parse(&["--command", "2:INCR __key__ ; EXPIRE __key__ 60 NX"]).unwrap();
        assert_eq!(c.commands.len(), 1);
        let spec = &c.commands[0];
        assert_eq!(spec.name, "INCR __key__ ; EXPIRE __key__ 60 NX");
        assert_eq!(spec.weight, 2);
        assert_eq!(
            (spec.template.commands(), spec.template.key_draws()),
            (2, 1)
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,1"), Ok(CpuList(vec![0, 1])));
        assert_eq!(parse_cpu_list("0-2,5"), Ok(CpuList(vec![0, 1, 2, 5])));
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn rejects_bad_arguments() {
        let cases: &[&[&str]] = &[
            &["--threads", "0"],
            &["--clients", "x"],
            &["--pipeline", "0"],
            &["--ratio", "1-10"],
            &["--ratio", "0:0"],
            &["--key-pattern", "Q"],
            &["--key-pattern", "R:X"],
            &["--protocol", "4"],
            &["--requests", "10", "--test-time", "5"],
            &["--requests", "0"],
            &["--rate", "0"],
            &["--key-minimum", "10", "--key-maximum", "5"],
            &["--key-zipf-exp", "0"],
            &["--key-stddev", "-1"],
            &["--command", "SET \"unterminated"],
            &["--command", "0:PING"],
            &["--command", "INCR __key__ ;"],
            &["--cpus", "99999"],
            &["--port", "70000"],
            &["--no-such-flag"],
        ];
        for case in cases {
            assert!(try_parse(case).is_err(), "{case:?} was accepted");
        }
    }

    #[test]
    fn validation_errors_exit_with_usage_status() {
        let err = Args::command().error(ErrorKind::ValueValidation, "x");
        assert_eq!(err.exit_code(), 2);
        let err = Args::try_parse_from(["shardis-bench", "--threads", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
