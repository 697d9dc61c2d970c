//! Configuration, read like redis-server reads it.
//!
//! `shardis-server [/path/to/shardis.conf] [--name value ...]`: the same names work as
//! `name value` lines in the file and with `CONFIG GET` / `CONFIG SET`, because all three go
//! through one table of [`Param`]s. Command-line options are applied after the file, so they win.

use std::fmt;
use std::time::Duration;

use shardis_commands::Settings;
use shardis_resp::{Limits, Parser};
use shardis_store::hash::HashLimits;

/// Every setting.
#[derive(Clone, Debug)]
pub struct Config {
    /// TCP port; 0 binds a free one (the startup log states which).
    pub port: u16,
    /// Addresses to listen on.
    pub bind: Vec<String>,
    /// Number of shards (reactors); defaults to one per available core.
    pub shards: usize,
    /// Number of databases for `SELECT`.
    pub databases: usize,
    /// Password of the default user; empty for none.
    pub requirepass: String,
    /// Longest single argument a client may send.
    pub proto_max_bulk_len: u64,
    /// Most bytes a client's unparsed input may occupy before it is disconnected.
    pub client_query_buffer_limit: u64,
    /// Most simultaneous client connections.
    pub maxclients: u64,
    /// Log verbosity (`debug`, `verbose`, `notice`, `warning`).
    pub loglevel: String,
    /// Close connections idle for this many seconds (0: never).
    pub timeout: u64,
    /// Snapshot schedule, kept for `CONFIG GET` compatibility (persistence is a later feature).
    pub save: String,
    /// Whether the append-only file is on (persistence is a later feature; only `no` is valid).
    pub appendonly: bool,
    /// `protected-mode`, kept for compatibility.
    pub protected_mode: bool,
    /// Working directory name, kept for compatibility.
    pub dir: String,
    /// Most fields a hash keeps in its compact encoding.
    pub hash_max_listpack_entries: usize,
    /// Longest field or value a hash keeps in its compact encoding.
    pub hash_max_listpack_value: usize,
    /// Milliseconds a script runs before other clients get `BUSY` and it can be killed.
    pub busy_reply_threshold: u64,
    /// Scripts may touch keys they did not declare on any shard; each script then runs under
    /// a step that holds every shard.
    pub lua_allow_undeclared_keys: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".to_owned()],
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            databases: 16,
            requirepass: String::new(),
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            maxclients: 10000,
            loglevel: "notice".to_owned(),
            timeout: 0,
            save: String::new(),
            appendonly: false,
            protected_mode: true,
            dir: ".".to_owned(),
            hash_max_listpack_entries: HashLimits::default().max_listpack_entries,
            hash_max_listpack_value: HashLimits::default().max_listpack_value,
            busy_reply_threshold: 5000,
            lua_allow_undeclared_keys: false,
        }
    }
}

/// A setting that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// No such setting.
    Unknown(String),
    /// The setting exists but the value is not valid; the reason.
    Invalid(String, String),
    /// The setting cannot change while the server runs.
    Immutable(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unknown(name) => write!(f, "unknown option '{name}'"),
            ConfigError::Invalid(name, why) => write!(f, "invalid value for '{name}': {why}"),
            ConfigError::Immutable(name) => write!(f, "'{name}' cannot be changed at run time"),
        }
    }
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &[String]) -> Result<(), String>;

/// One setting: its names, whether `CONFIG SET` may change it, and how to read and write it.
pub struct Param {
    /// The name, and older names that mean the same.
    pub names: &'static [&'static str],
    /// Whether `CONFIG SET` may change it.
    pub mutable: bool,
    get: Getter,
    set: Setter,
}

fn one(values: &[String]) -> Result<&str, String> {
    match values {
        [v] => Ok(v),
        _ => Err("wrong number of arguments".to_owned()),
    }
}

fn integer<T: std::str::FromStr>(values: &[String]) -> Result<T, String> {
    one(values)?
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_owned())
}

fn yes_no(values: &[String]) -> Result<bool, String> {
    match one(values)?.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".to_owned()),
    }
}

/// Parses a memory size the way Redis does: `1gb` is 2^30 bytes, `1g` 10^9, `512mb`, `100k`, ...
pub fn memory(values: &[String]) -> Result<u64, String> {
    let text = one(values)?.to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err("argument must be a memory value".to_owned()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| "argument must be a memory value".to_owned())
}

fn yes_no_text(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// The settings, in the order `CONFIG GET *` lists them.
pub static PARAMS: &[Param] = &[
    Param {
        names: &["port"],
        mutable: false,
        get: |c| c.port.to_string(),
        set: |c, v| {
            c.port = integer(v)?;
            Ok(())
        },
    },
    Param {
        names: &["bind"],
        mutable: false,
        get: |c| c.bind.join(" "),
        set: |c, v| {
            if v.is_empty() {
                return Err("wrong number of arguments".to_owned());
            }
            // `bind "a b"` in a config file is the same as `bind a b`.
            c.bind = v
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect();
            Ok(())
        },
    },
    Param {
        names: &["shards"],
        mutable: false,
        get: |c| c.shards.to_string(),
        set: |c, v| {
            c.shards = integer(v)?;
            if !(1..=1024).contains(&c.shards) {
                return Err("argument must be between 1 and 1024".to_owned());
            }
            Ok(())
        },
    },
    Param {
        names: &["databases"],
        mutable: false,
        get: |c| c.databases.to_string(),
        set: |c, v| {
            c.databases = integer(v)?;
            if !(1..=u32::MAX as usize).contains(&c.databases) {
                return Err("argument must be between 1 and 4294967295 inclusive".to_owned());
            }
            Ok(())
        },
    },
    Param {
        names: &["requirepass"],
        mutable: true,
        get: |c| c.requirepass.clone(),
        set: |c, v| {
            c.requirepass = one(v)?.to_owned();
            Ok(())
        },
    },
    Param {
        names: &["proto-max-bulk-len"],
        mutable: true,
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, v| {
            c.proto_max_bulk_len = memory(v)?;
            if c.proto_max_bulk_len < 1024 * 1024 {
                return Err("argument must be a memory value of at least 1mb".to_owned());
            }
            Ok(())
        },
    },
    Param {
        names: &["client-query-buffer-limit"],
        mutable: true,
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, v| {
            c.client_query_buffer_limit = memory(v)?;
            if c.client_query_buffer_limit < 1024 * 1024 {
                return Err("argument must be a memory value of at least 1mb".to_owned());
            }
            Ok(())
        },
    },
    Param {
        names: &["maxclients"],
        mutable: true,
        get: |c| c.maxclients.to_string(),
        set: |c, v| {
            c.maxclients = integer(v)?;
            Ok(())
        },
    },
    Param {
        names: &["loglevel"],
        mutable: true,
        get: |c| c.loglevel.clone(),
        set: |c, v| {
            let level = one(v)?.to_ascii_lowercase();
            if !["debug", "verbose", "notice", "warning", "nothing"].contains(&level.as_str()) {
                return Err("argument(s) must be one of the following: debug, verbose, notice, warning, nothing".to_owned());
            }
            c.loglevel = level;
            Ok(())
        },
    },
    Param {
        names: &["timeout"],
        mutable: true,
        get: |c| c.timeout.to_string(),
        set: |c, v| {
            c.timeout = integer(v)?;
            Ok(())
        },
    },
    Param {
        names: &["save"],
        mutable: true,
        get: |c| c.save.clone(),
        set: |c, v| {
            c.save = v.join(" ");
            Ok(())
        },
    },
    Param {
        names: &["appendonly"],
        mutable: true,
        get: |c| yes_no_text(c.appendonly),
        set: |c, v| {
            if yes_no(v)? {
                return Err("the append-only file is not supported yet".to_owned());
            }
            c.appendonly = false;
            Ok(())
        },
    },
    Param {
        names: &["protected-mode"],
        mutable: true,
        get: |c| yes_no_text(c.protected_mode),
        set: |c, v| {
            c.protected_mode = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        names: &["daemonize"],
        mutable: false,
        get: |_| "no".to_owned(),
        set: |_, v| match yes_no(v)? {
            false => Ok(()),
            true => Err("daemonize is not supported; use a service manager".to_owned()),
        },
    },
    Param {
        names: &["lua-allow-undeclared-keys"],
        mutable: true,
        get: |c| yes_no_text(c.lua_allow_undeclared_keys),
        set: |c, v| {
            c.lua_allow_undeclared_keys = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        names: &["busy-reply-threshold", "lua-time-limit"],
        mutable: true,
        get: |c| c.busy_reply_threshold.to_string(),
        set: |c, v| {
            c.busy_reply_threshold = integer(v)?;
            Ok(())
        },
    },
    Param {
        names: &["hash-max-listpack-entries", "hash-max-ziplist-entries"],
        mutable: true,
        get: |c| c.hash_max_listpack_entries.to_string(),
        set: |c, v| {
            c.hash_max_listpack_entries = integer(v)?;
            Ok(())
        },
    },
    Param {
        names: &["hash-max-listpack-value", "hash-max-ziplist-value"],
        mutable: true,
        get: |c| c.hash_max_listpack_value.to_string(),
        set: |c, v| {
            c.hash_max_listpack_value = integer(v)?;
            Ok(())
        },
    },
    Param {
        names: &["dir"],
        mutable: true,
        get: |c| c.dir.clone(),
        set: |c, v| {
            c.dir = one(v)?.to_owned();
            Ok(())
        },
    },
];

/// The setting called `name` (case-insensitive, any of its names).
pub fn param(name: &str) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
}

impl Config {
    /// Applies `name values...`, as from a config file line or the command line.
    pub fn apply(&mut self, name: &str, values: &[String]) -> Result<(), ConfigError> {
        let p = param(name).ok_or_else(|| ConfigError::Unknown(name.to_owned()))?;
        (p.set)(self, values).map_err(|why| ConfigError::Invalid(name.to_owned(), why))
    }

    /// Applies a setting at run time (`CONFIG SET`), refusing settings fixed at startup.
    pub fn set_at_runtime(&mut self, name: &str, values: &[String]) -> Result<(), ConfigError> {
        let p = param(name).ok_or_else(|| ConfigError::Unknown(name.to_owned()))?;
        if !p.mutable {
            return Err(ConfigError::Immutable(name.to_owned()));
        }
        let mut next = self.clone();
        (p.set)(&mut next, values).map_err(|why| ConfigError::Invalid(name.to_owned(), why))?;
        *self = next;
        Ok(())
    }

    /// The current value of every setting whose name matches `matches`, as name/value pairs.
    pub fn get_matching(&self, matches: impl Fn(&str) -> bool) -> Vec<(&'static str, String)> {
        PARAMS
            .iter()
            .filter_map(|p| {
                let name = p.names.iter().find(|n| matches(n))?;
                Some((*name, (p.get)(self)))
            })
            .collect()
    }

    /// The settings shard-side commands read (each shard keeps a copy, renewed on `CONFIG SET`).
    pub fn settings(&self) -> Settings {
        Settings {
            hash_limits: HashLimits {
                max_listpack_entries: self.hash_max_listpack_entries,
                max_listpack_value: self.hash_max_listpack_value,
            },
            busy_reply_threshold: Duration::from_millis(self.busy_reply_threshold),
        }
    }

    /// Limits the request parser enforces.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bulk_len: usize::try_from(self.proto_max_bulk_len).unwrap_or(usize::MAX),
        }
    }

    /// Idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.timeout > 0).then(|| Duration::from_secs(self.timeout))
    }

    /// Reads the command line (without the program name): an optional config file path first,
    /// then `--name value ...` options, each taking the words up to the next `--name`.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut config = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first().filter(|a| !a.starts_with("--")) {
            let text = std::fs::read_to_string(first)
                .map_err(|e| format!("can't open config file '{first}': {e}"))?;
            config.apply_file(&text)?;
            rest = &rest[1..];
        }
        while let Some(option) = rest.first() {
            let name = option
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument '{option}' (options start with --)"))?;
            let count = rest[1..]
                .iter()
                .take_while(|a| !a.starts_with("--"))
                .count();
            config
                .apply(name, &rest[1..1 + count])
                .map_err(|e| format!("option '--{name}': {e}"))?;
            rest = &rest[1 + count..];
        }
        Ok(config)
    }

    /// Applies a config file's `name value ...` lines (`#` starts a comment line; values may
    /// be quoted as in redis.conf).
    pub fn apply_file(&mut self, text: &str) -> Result<(), String> {
        for (number, line) in text.lines().enumerate() {
            let words = split_words(line).ok_or_else(|| {
                format!("config file line {}: unbalanced quotes: {line}", number + 1)
            })?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            if name.starts_with('#') {
                continue;
            }
            self.apply(name, values)
                .map_err(|e| format!("config file line {}: {e}", number + 1))?;
        }
        Ok(())
    }
}

/// Splits a line into words with Redis's quoting rules, by running it through the request
/// parser's inline-command reader, which implements exactly those rules.
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut buf = line.as_bytes().to_vec();
    buf.push(b'\n');
    let mut spans = Vec::new();
    Parser::new()
        .parse(&mut buf, 0, &mut spans, &Limits::default(), true)
        .ok()?;
    Some(
        spans
            .iter()
            .map(|s| String::from_utf8_lossy(s.of(&buf)).into_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn command_line_options() {
        let c = Config::from_args(&args(&[
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "::1",
            "--shards",
            "3",
            "--save",
            "",
        ]))
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.shards, 3);
        assert_eq!(c.save, "");
    }

    #[test]
    fn errors_name_the_option() {
        let err = Config::from_args(&args(&["--nosuch", "1"])).unwrap_err();
        assert!(err.contains("nosuch"), "{err}");
        let err = Config::from_args(&args(&["--port", "x"])).unwrap_err();
        assert!(err.contains("port"), "{err}");
        assert!(Config::from_args(&args(&["--port"])).is_err());
    }

    #[test]
    fn config_file_lines() {
        let mut c = Config::default();
        c.apply_file("# comment\n\nport 7000\nrequirepass \"a b\"\nproto-max-bulk-len 2mb\n")
            .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.requirepass, "a b");
        assert_eq!(c.proto_max_bulk_len, 2 * 1024 * 1024);
        assert!(c.apply_file("bogus 1").is_err());
    }

    #[test]
    fn runtime_changes_respect_mutability() {
        let mut c = Config::default();
        assert_eq!(
            c.set_at_runtime("port", &args(&["1"])),
            Err(ConfigError::Immutable("port".into()))
        );
        assert!(c.set_at_runtime("maxclients", &args(&["5"])).is_ok());
        assert_eq!(c.maxclients, 5);
        assert_eq!(memory(&args(&["1gb"])), Ok(1 << 30));
        assert_eq!(memory(&args(&["1g"])), Ok(1_000_000_000));
    }

    #[test]
    fn hash_limits_reach_the_settings_under_both_names() {
        let mut c = Config::default();
        assert_eq!(c.settings().hash_limits, HashLimits::default());
        c.set_at_runtime("hash-max-listpack-entries", &args(&["16"]))
            .unwrap();
        c.set_at_runtime("HASH-MAX-ZIPLIST-VALUE", &args(&["8"]))
            .unwrap();
        let limits = c.settings().hash_limits;
        assert_eq!(limits.max_listpack_entries, 16);
        assert_eq!(limits.max_listpack_value, 8);
        assert!(c
            .set_at_runtime("hash-max-listpack-value", &args(&["-1"]))
            .is_err());
        assert_eq!(
            c.get_matching(|n| n == "hash-max-ziplist-entries"),
            vec![("hash-max-ziplist-entries", "16".to_owned())]
        );
    }
}
