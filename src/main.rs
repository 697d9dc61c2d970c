//! `shardis-server`: starts Shardis with redis-server's command line.
//!
//! `shardis-server [/path/to/shardis.conf] [--port N] [--bind ADDR ...] [--shards N] ...`

use shardis_server::{memory::CountingAlloc, Config};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "Usage: shardis-server [/path/to/shardis.conf] [--option value ...]

Options use redis-server's names and work as `name value` lines in the config file too:
  --port N                      TCP port (default 6379; 0 picks a free one)
  --bind ADDR [ADDR ...]        addresses to listen on (default 127.0.0.1)
  --shards N                    shards, one reactor each (default: one per core)
  --databases N                 number of databases (default 16)
  --requirepass PASSWORD        require AUTH
  --maxclients N                most connections (default 10000)
  --proto-max-bulk-len SIZE     longest argument (default 512mb)
  --client-query-buffer-limit SIZE  most unparsed input per client (default 1gb)
  --loglevel LEVEL              debug, verbose, notice, warning
  --timeout SECONDS             kept for compatibility
Examples:
  shardis-server --port 7000 --shards 4
  shardis-server /etc/shardis.conf --loglevel verbose";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("shardis-server v={}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("shardis-server: {err}\n\n{USAGE}");
            std::process::exit(1);
        }
    };
    let level = match config.loglevel.as_str() {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        "nothing" => "error",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    if let Err(err) = shardis_server::run(config) {
        eprintln!("shardis-server: {err}");
        std::process::exit(1);
    }
}
