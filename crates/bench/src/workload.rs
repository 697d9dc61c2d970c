//! Workload generation: which command to send next, with which key and data.
//!
//! This is kept apart from the connection driver so the driver only sees
//! "append the next request to this buffer, tell me its command index", and
//! the generators can be tested (and reasoned about) without sockets.
//!
//! Everything here is deterministic given the per-thread seed: commands are
//! interleaved by smooth weighted round-robin (so a 1:10 ratio gives exactly
//! one SET per ten GETs, evenly spread, rather than a random mix), and keys
//! come from a seeded RNG or counters.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::str::FromStr;

/// How key numbers are drawn from `[key_minimum, key_maximum]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPattern {
    /// `R`: uniform random.
    Random,
    /// `G`: normal distribution around a median (default: middle of the
    /// range) with a standard deviation (default: range / 6), redrawn when it
    /// falls outside the range.
    Gaussian,
    /// `S`: sequential, wrapping from the maximum back to the minimum.
    Sequential,
    /// `Z`: zipfian: key `min + k - 1` has probability ∝ `k^-exp`, so the low
    /// end of the range is hot.
    Zipfian,
}

impl FromStr for KeyPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "R" | "r" => Ok(KeyPattern::Random),
            "G" | "g" => Ok(KeyPattern::Gaussian),
            "S" | "s" => Ok(KeyPattern::Sequential),
            "Z" | "z" => Ok(KeyPattern::Zipfian),
            other => Err(format!(
                "unknown key pattern {other:?} (expected R, G, S or Z)"
            )),
        }
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            KeyPattern::Random => "R",
            KeyPattern::Gaussian => "G",
            KeyPattern::Sequential => "S",
            KeyPattern::Zipfian => "Z",
        };
        f.write_str(c)
    }
}

/// The key range and distribution parameters shared by all generators.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpace {
    /// Smallest key number.
    pub min: u64,
    /// Largest key number (inclusive).
    pub max: u64,
    /// Gaussian median; `None` means the middle of the range.
    pub median: Option<f64>,
    /// Gaussian standard deviation; `None` means range / 6.
    pub stddev: Option<f64>,
    /// Zipf exponent (> 0).
    pub zipf_exp: f64,
}

/// A stateful key-number generator for one command in one thread.
#[derive(Debug, Clone)]
pub enum KeyGen {
    /// Uniform in `[min, max]`.
    Random {
        /// Lower bound.
        min: u64,
        /// Upper bound (inclusive).
        max: u64,
    },
    /// Normal, rejected outside `[min, max]`.
    Gaussian {
        /// Lower bound.
        min: u64,
        /// Upper bound (inclusive).
        max: u64,
        /// Mean.
        median: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Counter over `[min, max]`.
    Sequential {
        /// Lower bound.
        min: u64,
        /// Upper bound (inclusive).
        max: u64,
        /// Next key number.
        next: u64,
    },
    /// Zipfian over `[min, max]`.
    Zipfian {
        /// Lower bound (rank 1).
        min: u64,
        /// Sampler over ranks `1..=n`.
        zipf: Zipf,
    },
}

impl KeyGen {
    /// A generator for `pattern`. `part`/`parts` spread sequential generators
    /// of different threads over the range so they do not all write the same
    /// keys in lockstep.
    pub fn new(pattern: KeyPattern, space: &KeySpace, part: u64, parts: u64) -> KeyGen {
        let (min, max) = (space.min, space.max);
        match pattern {
            KeyPattern::Random => KeyGen::Random { min, max },
            KeyPattern::Gaussian => {
                let width = (max - min) as f64;
                KeyGen::Gaussian {
                    min,
                    max,
                    median: space.median.unwrap_or(min as f64 + width / 2.0),
                    stddev: space.stddev.unwrap_or(width / 6.0),
                }
            }
            KeyPattern::Sequential => {
                let span = u128::from(max - min) + 1;
                let offset = (span * u128::from(part) / u128::from(parts.max(1))) as u64;
                KeyGen::Sequential {
                    min,
                    max,
                    next: min + offset,
                }
            }
            KeyPattern::Zipfian => KeyGen::Zipfian {
                min,
                zipf: Zipf::new(max - min + 1, space.zipf_exp),
            },
        }
    }

    /// The next key number.
    pub fn next_key(&mut self, rng: &mut SmallRng) -> u64 {
        match self {
            KeyGen::Random { min, max } => rng.random_range(*min..=*max),
            KeyGen::Gaussian {
                min,
                max,
                median,
                stddev,
            } => {
                // Redraw outside the range rather than clamping, which would
                // pile probability onto the two end keys. Give up after a few
                // tries (only possible with a median far outside the range).
                for _ in 0..64 {
                    let v = (*median + *stddev * standard_normal(rng)).round();
                    if v >= *min as f64 && v <= *max as f64 {
                        return v as u64;
                    }
                }
                median.clamp(*min as f64, *max as f64) as u64
            }
            KeyGen::Sequential { min, max, next } => {
                let k = *next;
                *next = if k >= *max { *min } else { k + 1 };
                k
            }
            KeyGen::Zipfian { min, zipf } => *min + zipf.sample(rng) - 1,
        }
    }
}

/// A standard normal deviate by the Box–Muller transform (rand 0.9 without
/// rand_distr has no normal distribution).
fn standard_normal(rng: &mut SmallRng) -> f64 {
    // 1 - u keeps the log argument in (0, 1].
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Zipf sampler over ranks `1..=n` with exponent `s`, by rejection-inversion
/// (Hörmann & Derflinger, 1996): O(1) per sample and no table, so it works
/// for a key range of millions.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// A sampler for `n >= 1` ranks and exponent `s > 0`.
    pub fn new(n: u64, s: f64) -> Zipf {
        let n = n.max(1) as f64;
        let mut z = Zipf {
            n,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        loop {
            let u =
                self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// One piece of a template argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    /// The key drawn for the template's key placeholder number `.0` (in
    /// order of first appearance).
    Key(usize),
    Data,
}

impl Segment {
    /// What the segment stands for in a request with these keys and data.
    fn bytes<'a>(&'a self, keys: &'a [Vec<u8>], data: &'a [u8]) -> &'a [u8] {
        match self {
            Segment::Literal(b) => b,
            Segment::Key(i) => &keys[*i],
            Segment::Data => data,
        }
    }
}

/// One command of a template, pre-split into arguments.
type Command = Vec<Vec<Segment>>;

/// A request template such as `HSET __key__ field __data__`, pre-split into
/// commands and arguments so a request is encoded without re-parsing text.
///
/// A template may hold several commands separated by a standalone `;`
/// (`INCR __key__ ; EXPIRE __key__ 60 NX`): they are sent back to back and
/// form one request. Key placeholders name key draws: every occurrence of
/// `__key__` in the whole template is the same key, and so is every
/// occurrence of `__key1__`, of `__key2__` and so on, while differently
/// named placeholders are drawn independently (`MGET __key1__ __key2__`
/// reads two keys that are usually different).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    commands: Vec<Command>,
    /// Distinct key placeholders, i.e. key draws per request.
    keys: usize,
}

/// Placeholder replaced by the key (`prefix` + number); `__key1__`,
/// `__key2__` ... name further, independently drawn keys.
pub const KEY_PLACEHOLDER: &str = "__key__";
/// Placeholder replaced by `--data-size` bytes of data.
pub const DATA_PLACEHOLDER: &str = "__data__";
/// The standalone word that separates the commands of one template.
pub const COMMAND_SEPARATOR: &str = ";";

impl Template {
    /// Parses a template: arguments are separated by whitespace; double
    /// quotes group an argument containing spaces (`\"` and `\\` escape);
    /// an unquoted `;` word ends one command and starts the next.
    /// Placeholders may appear inside a larger argument (`user:__key__`).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut names: Vec<String> = Vec::new();
        let mut commands = Vec::new();
        for words in split_commands(text)? {
            let command = words
                .iter()
                .map(|w| split_placeholders(w, &mut names))
                .collect();
            commands.push(command);
        }
        Ok(Template {
            commands,
            keys: names.len(),
        })
    }

    /// The first command's name (first argument), upper-cased, for
    /// reporting.
    pub fn command_name(&self) -> String {
        self.commands
            .first()
            .and_then(|command| command.first())
            .map(|arg| {
                arg.iter()
                    .map(|seg| match seg {
                        Segment::Literal(b) => String::from_utf8_lossy(b).to_uppercase(),
                        Segment::Key(_) => KEY_PLACEHOLDER.to_string(),
                        Segment::Data => DATA_PLACEHOLDER.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many keys one request draws (distinct key placeholders).
    pub fn key_draws(&self) -> usize {
        self.keys
    }

    /// How many commands one request sends, hence how many replies it
    /// waits for.
    pub fn commands(&self) -> usize {
        self.commands.len()
    }

    /// Appends the RESP encoding of this template's commands with `keys[i]`
    /// for key placeholder `i` and `data` substituted. `keys` holds at
    /// least [`Template::key_draws`] entries.
    pub fn encode(&self, keys: &[Vec<u8>], data: &[u8], out: &mut Vec<u8>) {
        for command in &self.commands {
            push_header(out, b'*', command.len());
            for arg in command {
                let len: usize = arg.iter().map(|seg| seg.bytes(keys, data).len()).sum();
                push_header(out, b'$', len);
                for seg in arg {
                    out.extend_from_slice(seg.bytes(keys, data));
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Appends `<marker><n>\r\n` without going through `format!`.
fn push_header(out: &mut Vec<u8>, marker: u8, n: usize) {
    out.push(marker);
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `n`.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Splits a template into commands (at unquoted `;` words) of arguments.
fn split_commands(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut commands = Vec::new();
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in template {text:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => word.push(c),
                        None => return Err(format!("dangling backslash in template {text:?}")),
                    },
                    Some(c) => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!(
                    "closing quote must be followed by a space in template {text:?}"
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            if word == COMMAND_SEPARATOR {
                if args.is_empty() {
                    return Err(format!("empty command before ';' in template {text:?}"));
                }
                commands.push(std::mem::take(&mut args));
                continue;
            }
        }
        args.push(word);
    }
    if args.is_empty() {
        return Err(if commands.is_empty() {
            "empty command template".to_string()
        } else {
            format!("empty command after ';' in template {text:?}")
        });
    }
    commands.push(args);
    Ok(commands)
}

/// The key placeholder starting `rest`, if any: its name (the digits of
/// `__keyN__`, empty for `__key__`) and its length.
fn key_placeholder(rest: &str) -> Option<(&str, usize)> {
    let tail = rest.strip_prefix("__key")?;
    let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
    tail[digits..]
        .starts_with("__")
        .then(|| (&tail[..digits], "__key".len() + digits + 2))
}

/// Splits one argument into literal text and placeholders; key placeholder
/// names are numbered in `names` in order of first appearance.
fn split_placeholders(word: &str, names: &mut Vec<String>) -> Vec<Segment> {
    let mut segs = Vec::new();
    let mut literal = String::new();
    let mut rest = word;
    while let Some(c) = rest.chars().next() {
        if let Some((name, len)) = key_placeholder(rest) {
            let index = match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    names.push(name.to_string());
                    names.len() - 1
                }
            };
            segs.extend(take_literal(&mut literal));
            segs.push(Segment::Key(index));
            rest = &rest[len..];
        } else if let Some(after) = rest.strip_prefix(DATA_PLACEHOLDER) {
            segs.extend(take_literal(&mut literal));
            segs.push(Segment::Data);
            rest = after;
        } else {
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    segs.extend(take_literal(&mut literal));
    segs
}

/// The literal text gathered so far as a segment, if there is any.
fn take_literal(literal: &mut String) -> Option<Segment> {
    (!literal.is_empty()).then(|| Segment::Literal(std::mem::take(literal).into_bytes()))
}

/// One command of the workload mix.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Name shown in reports (`SET`, `GET`, or the template text).
    pub name: String,
    /// What to send.
    pub template: Template,
    /// Relative frequency.
    pub weight: u32,
    /// How its keys are chosen.
    pub key_pattern: KeyPattern,
    /// Whether null replies count as misses (GET-like commands).
    pub counts_hits: bool,
}

/// Per-thread request generator.
#[derive(Debug)]
pub struct Workload {
    commands: Vec<CommandSpec>,
    keygens: Vec<KeyGen>,
    /// Smooth weighted round-robin state, one per command.
    current: Vec<i64>,
    total_weight: i64,
    rng: SmallRng,
    prefix: Vec<u8>,
    data: Vec<u8>,
    /// The keys drawn for the request being encoded, one per key
    /// placeholder.
    keys: Vec<Vec<u8>>,
}

impl Workload {
    /// A generator for thread `thread` of `threads`, seeded with
    /// `seed + thread` so every thread differs but runs are reproducible.
    pub fn new(
        commands: &[CommandSpec],
        space: &KeySpace,
        prefix: &str,
        data_size: usize,
        seed: u64,
        thread: usize,
        threads: usize,
    ) -> Workload {
        let mut rng = SmallRng::seed_from_u64(seed.wrapping_add(thread as u64));
        // Printable data so values are readable in redis-cli; generated once
        // because memtier-style loads care about size, not content.
        let data = (0..data_size)
            .map(|_| rng.random_range(b'a'..=b'z'))
            .collect();
        let keygens = commands
            .iter()
            .map(|c| KeyGen::new(c.key_pattern, space, thread as u64, threads as u64))
            .collect();
        Workload {
            commands: commands.to_vec(),
            keygens,
            current: vec![0; commands.len()],
            total_weight: commands.iter().map(|c| i64::from(c.weight)).sum(),
            rng,
            prefix: prefix.as_bytes().to_vec(),
            data,
            keys: vec![
                Vec::with_capacity(prefix.len() + 20);
                commands
                    .iter()
                    .map(|c| c.template.key_draws())
                    .max()
                    .unwrap_or(0)
            ],
        }
    }

    /// Picks the next command by smooth weighted round-robin: every command
    /// gains its weight, the largest is chosen and pays the total. Over one
    /// cycle each command is chosen exactly `weight` times, evenly spread.
    fn pick(&mut self) -> usize {
        let mut best = 0;
        for (i, c) in self.commands.iter().enumerate() {
            self.current[i] += i64::from(c.weight);
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total_weight;
        best
    }

    /// Replies a request of command `idx` waits for.
    pub fn replies(&self, idx: usize) -> usize {
        self.commands[idx].template.commands()
    }

    /// Appends the next request (all the commands of one template) to
    /// `out`; returns its command index.
    pub fn next_request(&mut self, out: &mut Vec<u8>) -> usize {
        let idx = self.pick();
        let template = &self.commands[idx].template;
        for key in &mut self.keys[..template.key_draws()] {
            let n = self.keygens[idx].next_key(&mut self.rng);
            key.clear();
            key.extend_from_slice(&self.prefix);
            push_decimal(key, n);
        }
        template.encode(&self.keys, &self.data, out);
        idx
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn space(min: u64, max: u64) -> KeySpace {
        KeySpace {
            min,
            max,
            median: None,
            stddev: None,
            zipf_exp: 1.0,
        }
    }

    fn draw(pattern: KeyPattern, sp: &KeySpace, seed: u64, n: usize) -> Vec<u64> {
        let mut gen = KeyGen::new(pattern, sp, 0, 1);
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n).map(|_| gen.next_key(&mut rng)).collect()
    }

    const ALL: [KeyPattern; 4] = [
        KeyPattern::Random,
        KeyPattern::Gaussian,
        KeyPattern::Sequential,
        KeyPattern::Zipfian,
    ];

    #[test]
    fn keys_stay_in_range() {
        for sp in [
            space(0, 0),
            space(5, 9),
            space(100, 10_000_000),
            space(0, u64::MAX / 2),
        ] {
            for p in ALL {
                for k in draw(p, &sp, 7, 5000) {
                    assert!(k >= sp.min && k <= sp.max, "{p} gave {k} outside {sp:?}");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_keys_other_seed_other_keys() {
        let sp = space(0, 1_000_000);
        for p in [
            KeyPattern::Random,
            KeyPattern::Gaussian,
            KeyPattern::Zipfian,
        ] {
            assert_eq!(draw(p, &sp, 42, 100), draw(p, &sp, 42, 100));
            assert_ne!(draw(p, &sp, 42, 100), draw(p, &sp, 43, 100));
        }
    }

    #[test]
    fn sequential_wraps_and_partitions() {
        assert_eq!(
            draw(KeyPattern::Sequential, &space(3, 6), 0, 6),
            vec![3, 4, 5, 6, 3, 4]
        );
        let sp = space(0, 99);
        let mut second = KeyGen::new(KeyPattern::Sequential, &sp, 1, 2);
        let mut rng = SmallRng::seed_from_u64(0);
        assert_eq!(second.next_key(&mut rng), 50);
    }

    #[test]
    fn random_covers_small_range() {
        let keys = draw(KeyPattern::Random, &space(1, 4), 1, 400);
        for k in 1..=4 {
            assert!(keys.contains(&k));
        }
    }

    #[test]
    fn gaussian_centres_on_median() {
        let keys = draw(KeyPattern::Gaussian, &space(0, 60_000), 3, 20_000);
        let mean = keys.iter().sum::<u64>() as f64 / keys.len() as f64;
        assert!((mean - 30_000.0).abs() < 500.0, "mean {mean}");
        // About 68% within one standard deviation (10 000).
        let within = keys
            .iter()
            .filter(|&&k| (20_000..=40_000).contains(&k))
            .count();
        let frac = within as f64 / keys.len() as f64;
        assert!((0.64..0.72).contains(&frac), "fraction {frac}");
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let keys = draw(KeyPattern::Zipfian, &space(0, 999), 5, 50_000);
        let mut counts = vec![0usize; 1000];
        for k in &keys {
            counts[*k as usize] += 1;
        }
        // P(rank 1) = 1 / H(1000) ≈ 0.1336 for exponent 1.
        let p1 = counts[0] as f64 / keys.len() as f64;
        assert!((p1 - 0.1336).abs() < 0.01, "p1 {p1}");
        assert!(counts[0] > counts[1] && counts[1] > counts[3] && counts[3] > counts[50]);
    }

    #[test]
    fn parses_key_patterns() {
        assert_eq!("S".parse::<KeyPattern>(), Ok(KeyPattern::Sequential));
        assert_eq!("z".parse::<KeyPattern>(), Ok(KeyPattern::Zipfian));
        assert!("Q".parse::<KeyPattern>().is_err());
    }

    fn encode_keys(t: &str, keys: &[&str], data: &str) -> String {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let mut out = Vec::new();
        Template::parse(t)
            .unwrap()
            .encode(&keys, data.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn encode(t: &str, key: &str, data: &str) -> String {
        encode_keys(t, &[key], data)
    }

    #[test]
    fn template_expansion() {
        assert_eq!(
            encode("HSET __key__ f __data__", "k1", "vv"),
            "*4\r\n$4\r\nHSET\r\n$2\r\nk1\r\n$1\r\nf\r\n$2\r\nvv\r\n"
        );
        assert_eq!(
            encode("  set  user:__key__:x   __data____key__ ", "7", "ab"),
            "*3\r\n$3\r\nset\r\n$8\r\nuser:7:x\r\n$3\r\nab7\r\n"
        );
        assert_eq!(
            encode(r#"SET "a b" "q\"x" """#, "", ""),
            "*4\r\n$3\r\nSET\r\n$3\r\na b\r\n$3\r\nq\"x\r\n$0\r\n\r\n"
        );
        assert_eq!(encode("PING", "", ""), "*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn several_commands_share_one_key_draw() {
        let t = Template::parse("INCR __key__ ; EXPIRE __key__ 60 NX").unwrap();
        assert_eq!((t.commands(), t.key_draws()), (2, 1));
        assert_eq!(
            encode("INCR __key__ ; EXPIRE __key__ 60 NX", "k7", ""),
            "*2\r\n$4\r\nINCR\r\n$2\r\nk7\r\n\
             *4\r\n$6\r\nEXPIRE\r\n$2\r\nk7\r\n$2\r\n60\r\n$2\r\nNX\r\n"
        );
        // A quoted ";" is an argument; a ";" inside a word is literal text.
        assert_eq!(
            encode(r#"ECHO ";" a;b"#, "", ""),
            "*3\r\n$4\r\nECHO\r\n$1\r\n;\r\n$3\r\na;b\r\n"
        );
        assert_eq!(Template::parse(r#"ECHO ";""#).unwrap().commands(), 1);
    }

    #[test]
    fn numbered_key_placeholders_are_separate_draws() {
        let t = Template::parse("MSET __key1__ __data__ __key2__ __data__ x__key1__").unwrap();
        assert_eq!(t.key_draws(), 2);
        assert_eq!(
            encode_keys("MGET __key1__ {t}__key2__ __key1__", &["a", "b"], ""),
            "*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$4\r\n{t}b\r\n$1\r\na\r\n"
        );
        // Placeholders are numbered by first appearance, whatever their names.
        assert_eq!(
            encode_keys("GET __key9__ __key__ __key9__", &["a", "b"], ""),
            "*4\r\n$3\r\nGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n"
        );
        // Not placeholders: no closing underscores, or letters after __key.
        let literal = Template::parse("GET __key1 __keyx__ __key").unwrap();
        assert_eq!(literal.key_draws(), 0);
    }

    #[test]
    fn template_errors() {
        for bad in [
            "   ",
            "SET \"abc",
            "SET \"a\"b",
            "; PING",
            "PING ;",
            "PING ; ; PING",
            ";",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn template_metadata() {
        let t = Template::parse("hget __key__ f").unwrap();
        assert_eq!(t.command_name(), "HGET");
        assert_eq!((t.commands(), t.key_draws()), (1, 1));
        assert_eq!(Template::parse("PING").unwrap().key_draws(), 0);
        let multi = Template::parse("multi ; incr __key__ ; exec").unwrap();
        assert_eq!(multi.command_name(), "MULTI");
        assert_eq!(multi.commands(), 3);
    }

    #[test]
    fn workload_draws_each_named_key_once_per_request() {
        let cmds = [CommandSpec {
            template: Template::parse("MGET __key1__ __key2__ __key1__ ; GET __key2__").unwrap(),
            ..spec("MGET", 1)
        }];
        let mut w = Workload::new(&cmds, &space(0, 9), "k", 4, 1, 0, 1);
        let mut out = Vec::new();
        w.next_request(&mut out);
        w.next_request(&mut out);
        // Sequential keys: the first request draws k0 and k1, the next k2, k3.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*4\r\n$4\r\nMGET\r\n$2\r\nk0\r\n$2\r\nk1\r\n$2\r\nk0\r\n\
             *2\r\n$3\r\nGET\r\n$2\r\nk1\r\n\
             *4\r\n$4\r\nMGET\r\n$2\r\nk2\r\n$2\r\nk3\r\n$2\r\nk2\r\n\
             *2\r\n$3\r\nGET\r\n$2\r\nk3\r\n"
        );
    }

    fn spec(name: &str, weight: u32) -> CommandSpec {
        CommandSpec {
            name: name.to_string(),
            template: Template::parse(&format!("{name} __key__")).unwrap(),
            weight,
            key_pattern: KeyPattern::Sequential,
            counts_hits: false,
        }
    }

    #[test]
    fn weighted_round_robin_is_exact_and_spread() {
        let cmds = [spec("SET", 1), spec("GET", 3)];
        let mut w = Workload::new(&cmds, &space(0, 9), "k-", 4, 1, 0, 1);
        let mut out = Vec::new();
        let picks: Vec<usize> = (0..8).map(|_| w.next_request(&mut out)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 2);
        // Never two SETs in a row with weight 1:3.
        assert!(picks.windows(2).all(|p| p != [0, 0]));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("$3\r\nk-0\r\n"), "{text}");
    }

    #[test]
    fn zero_weight_never_picked() {
        let cmds = [spec("SET", 0), spec("GET", 1)];
        let mut w = Workload::new(&cmds, &space(0, 9), "k-", 4, 1, 0, 1);
        let mut out = Vec::new();
        assert!((0..20).all(|_| w.next_request(&mut out) == 1));
    }

    #[test]
    fn workload_is_deterministic_per_seed_and_thread() {
        let cmds = [CommandSpec {
            key_pattern: KeyPattern::Random,
            ..spec("GET", 1)
        }];
        let run = |seed, thread| {
            let mut w = Workload::new(&cmds, &space(0, 1_000_000), "p", 8, seed, thread, 2);
            let mut out = Vec::new();
            for _ in 0..50 {
                w.next_request(&mut out);
            }
            out
        };
        assert_eq!(run(9, 0), run(9, 0));
        assert_ne!(run(9, 0), run(9, 1));
        assert_eq!(run(9, 1), run(10, 0));
    }

    #[test]
    fn decimal_encoding() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
