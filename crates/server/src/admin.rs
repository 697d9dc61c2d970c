//! Server commands: `INFO`, `CONFIG`, `COMMAND`, `TIME`, `SHUTDOWN`.
//!
//! Each shard keeps its own counters and its own copy of the configuration; these commands ask
//! every shard (one control message each) and sum or update, so no state is shared between
//! reactors.

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use shardis_commands::pattern::glob_match;
use shardis_commands::table::{flag, COMMANDS};
use shardis_commands::{lookup, Args, CmdError, Command};
use shardis_resp::Reply;

use crate::config::ConfigError;
use crate::connection::{Flow, Outcome, REDIS_VERSION};
use crate::memory;
use crate::shard::{Control, ResponseBody, Shard, Stats};

/// The sections `INFO` (and `INFO default`) prints, in order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
    "shards",
];

/// `INFO [section ...]`.
pub async fn info(shard: &Rc<Shard>, args: Args<'_>, reply: &mut Reply<'_>) -> Outcome {
    let mut wanted: Vec<String> = args
        .iter()
        .skip(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    if wanted.is_empty()
        || wanted
            .iter()
            .any(|s| matches!(s.as_str(), "default" | "all" | "everything"))
    {
        wanted = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let stats: Vec<Stats> = shard
        .broadcast(|| Control::Stats)
        .await
        .into_iter()
        .filter_map(|a| {
            if let ResponseBody::Stats(s) = a {
                Some(s)
            } else {
                None
            }
        })
        .collect();
    let mut text = String::new();
    for section in DEFAULT_SECTIONS
        .iter()
        .filter(|s| wanted.iter().any(|w| w == *s))
    {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(shard, section, &stats, &mut text);
    }
    reply.verbatim(text.as_bytes());
    Ok(Flow::Continue)
}

fn write_section(shard: &Shard, section: &str, stats: &[Stats], text: &mut String) {
    let config = shard.config.borrow();
    let sum = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
    let uptime = shard.started.elapsed().as_secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Writing to a String cannot fail.
    let mut line = |s: String| {
        text.push_str(&s);
        text.push_str("\r\n");
    };
    match section {
        "server" => {
            line("# Server".into());
            line(format!("redis_version:{REDIS_VERSION}"));
            line(format!("shardis_version:{}", env!("CARGO_PKG_VERSION")));
            line("redis_mode:standalone".into());
            line(format!(
                "os:{} {}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ));
            line("arch_bits:64".into());
            line("multiplexing_api:io_uring".into());
            line(format!("process_id:{}", std::process::id()));
            line(format!("tcp_port:{}", shard.listening_port()));
            line(format!("server_time_usec:{}", now.as_micros()));
            line(format!("uptime_in_seconds:{uptime}"));
            line(format!("uptime_in_days:{}", uptime / 86400));
            line(format!("shards:{}", shard.count));
        }
        "clients" => {
            line("# Clients".into());
            line(format!("connected_clients:{}", sum(|s| s.clients as u64)));
            line(format!("maxclients:{}", config.maxclients));
            line("blocked_clients:0".into());
        }
        "memory" => {
            let used = sum(|s| s.allocated.max(0) as u64);
            let rss = memory::resident_bytes();
            line("# Memory".into());
            line(format!("used_memory:{used}"));
            line(format!("used_memory_human:{}", memory::human(used)));
            line(format!("used_memory_rss:{rss}"));
            line(format!("used_memory_rss_human:{}", memory::human(rss)));
            line("maxmemory:0".into());
            line("maxmemory_policy:noeviction".into());
            line("mem_allocator:libc".into());
        }
        "persistence" => {
            line("# Persistence".into());
            line("loading:0".into());
            line("async_loading:0".into());
            line("rdb_changes_since_last_save:0".into());
            line("rdb_bgsave_in_progress:0".into());
            line(format!(
                "rdb_last_save_time:{}",
                now.as_secs().saturating_sub(uptime)
            ));
            line("rdb_last_bgsave_status:ok".into());
            line("aof_enabled:0".into());
            line("aof_rewrite_in_progress:0".into());
        }
        "stats" => {
            line("# Stats".into());
            line(format!(
                "total_connections_received:{}",
                sum(|s| s.connections)
            ));
            line(format!("total_commands_processed:{}", sum(|s| s.commands)));
            line(format!("total_net_input_bytes:{}", sum(|s| s.net_in)));
            line(format!("total_net_output_bytes:{}", sum(|s| s.net_out)));
            line(format!("rejected_connections:{}", sum(|s| s.rejected)));
            line("expired_keys:0".into());
            line("evicted_keys:0".into());
        }
        "replication" => {
            line("# Replication".into());
            line("role:master".into());
            line("connected_slaves:0".into());
        }
        "cpu" => {
            let (user, sys) = memory::cpu_seconds();
            line("# CPU".into());
            line(format!("used_cpu_sys:{sys:.6}"));
            line(format!("used_cpu_user:{user:.6}"));
        }
        "keyspace" => {
            line("# Keyspace".into());
            for db in 0..config.databases {
                let (keys, expires) = stats
                    .iter()
                    .filter_map(|s| s.keys.get(db))
                    .fold((0, 0), |(k, e), &(dk, de)| (k + dk, e + de));
                if keys > 0 {
                    line(format!("db{db}:keys={keys},expires={expires},avg_ttl=0"));
                }
            }
        }
        "shards" => {
            line("# Shards".into());
            for (i, s) in stats.iter().enumerate() {
                let keys: usize = s.keys.iter().map(|k| k.0).sum();
                line(format!(
                    "shard{i}:keys={keys},clients={},commands={},used_memory={}",
                    s.clients,
                    s.commands,
                    s.allocated.max(0)
                ));
            }
        }
        _ => {}
    }
}

/// `CONFIG GET | SET | RESETSTAT | REWRITE | HELP`.
pub async fn config(shard: &Rc<Shard>, args: Args<'_>, reply: &mut Reply<'_>) -> Outcome {
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let arity_error = || CmdError::WrongArity(format!("config|{sub}"));
    match sub.as_str() {
        "get" => {
            if args.len() < 3 {
                return Err(arity_error());
            }
            let patterns: Vec<&[u8]> = args.iter().skip(2).collect();
            let pairs = shard.config.borrow().get_matching(|name| {
                patterns
                    .iter()
                    .any(|p| glob_match(p, name.as_bytes(), true))
            });
            reply.map(pairs.len());
            for (name, value) in pairs {
                reply.bulk(name.as_bytes());
                reply.bulk(value.as_bytes());
            }
        }
        "set" => {
            if args.len() < 4 || args.len() % 2 != 0 {
                return Err(arity_error());
            }
            let mut next = shard.config.borrow().clone();
            for pair in (2..args.len()).step_by(2) {
                let name = String::from_utf8_lossy(args.get(pair)).into_owned();
                let value = String::from_utf8_lossy(args.get(pair + 1)).into_owned();
                let values: Vec<String> =
                    if name.eq_ignore_ascii_case("save") || name.eq_ignore_ascii_case("bind") {
                        value.split_whitespace().map(str::to_owned).collect()
                    } else {
                        vec![value]
                    };
                next.set_at_runtime(&name, &values).map_err(|e| match e {
                    ConfigError::Unknown(n) => CmdError::Other(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{n}'"
                    )),
                    ConfigError::Invalid(n, why) => CmdError::Other(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{n}') - {why}"
                    )),
                    ConfigError::Immutable(n) => CmdError::Other(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{n}') - can't set immutable config"
                    )),
                })?;
            }
            shard
                .broadcast(|| Control::Configure(Box::new(next.clone())))
                .await;
            reply.ok();
        }
        "resetstat" => {
            shard.broadcast(|| Control::ResetStats).await;
            reply.ok();
        }
        "rewrite" => {
            return Err(CmdError::Other(
                "ERR The server is running without a config file".to_owned(),
            ))
        }
        "help" => {
            let lines: &[&str] = &[
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "HELP",
                "    Print this help.",
            ];
            reply.array(lines.len());
            lines.iter().for_each(|l| reply.simple(l.as_bytes()));
        }
        _ => {
            return Err(CmdError::UnknownSubcommand {
                sub: String::from_utf8_lossy(args.get(1)).into_owned(),
                command: "CONFIG",
            })
        }
    }
    Ok(Flow::Continue)
}

/// `COMMAND [COUNT | LIST | INFO name ... | DOCS name ...]`.
pub fn command(args: Args<'_>, reply: &mut Reply<'_>) -> Outcome {
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let named = || -> Vec<Option<&'static Command>> { args.iter().skip(2).map(lookup).collect() };
    match sub.as_str() {
        "" => {
            reply.array(COMMANDS.len());
            COMMANDS.iter().for_each(|c| command_info(c, reply));
        }
        "count" => reply.integer(COMMANDS.len() as i64),
        "list" => {
            reply.array(COMMANDS.len());
            COMMANDS.iter().for_each(|c| reply.bulk(c.name.as_bytes()));
        }
        "info" => {
            let commands = if args.len() == 2 {
                COMMANDS.iter().map(Some).collect()
            } else {
                named()
            };
            reply.array(commands.len());
            for c in commands {
                match c {
                    Some(c) => command_info(c, reply),
                    None => reply.null_array(),
                }
            }
        }
        "docs" => {
            let commands: Vec<&Command> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                named().into_iter().flatten().collect()
            };
            reply.map(commands.len());
            for c in commands {
                reply.bulk(c.name.as_bytes());
                reply.map(3);
                reply.bulk(b"summary");
                reply.bulk(c.summary.as_bytes());
                reply.bulk(b"since");
                reply.bulk(c.since.as_bytes());
                reply.bulk(b"group");
                reply.bulk(c.group.as_bytes());
            }
        }
        _ => {
            return Err(CmdError::UnknownSubcommand {
                sub: String::from_utf8_lossy(args.get(1)).into_owned(),
                command: "COMMAND",
            })
        }
    }
    Ok(Flow::Continue)
}

/// One command's `COMMAND INFO` entry, in Redis 7's ten-field layout.
fn command_info(c: &Command, reply: &mut Reply<'_>) {
    reply.array(10);
    reply.bulk(c.name.as_bytes());
    reply.integer(i64::from(c.arity));
    let flags: Vec<&str> = flag::NAMES
        .iter()
        .filter(|(f, _)| c.has(*f))
        .map(|(_, n)| *n)
        .collect();
    reply.set(flags.len());
    flags.iter().for_each(|f| reply.simple(f.as_bytes()));
    reply.integer(i64::from(c.first_key));
    reply.integer(i64::from(c.last_key));
    reply.integer(i64::from(c.step));
    let mut category = String::new();
    let _ = write!(category, "@{}", c.group);
    reply.set(1);
    reply.simple(category.as_bytes());
    reply.set(0);
    reply.array(0);
    reply.array(0);
}

/// `TIME`: seconds and microseconds, as two bulk strings.
pub fn time(reply: &mut Reply<'_>) -> Outcome {
    shardis_commands::server::time_reply(reply);
    Ok(Flow::Continue)
}

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`: stops every shard; the connection closes
/// without a reply, as in Redis.
pub async fn shutdown(shard: &Rc<Shard>, args: Args<'_>) -> Outcome {
    let mut cursor = args.cursor(1);
    let mut abort = false;
    while !cursor.is_done() {
        if cursor.eat("abort") {
            abort = true;
        } else if !(cursor.eat("nosave")
            || cursor.eat("save")
            || cursor.eat("now")
            || cursor.eat("force"))
        {
            return Err(CmdError::Syntax);
        }
    }
    if abort {
        return Err(CmdError::Other("ERR No shutdown in progress.".to_owned()));
    }
    tracing::info!("User requested shutdown...");
    shard.broadcast(|| Control::Shutdown).await;
    Ok(Flow::Close)
}
