//! A fake-clock harness for the unit tests of the command families: it runs a command line
//! through the command table against one [`Store`], as a single shard would, and returns the
//! reply as text.

use shardis_resp::{Protocol, Reply, Span};
use shardis_store::Store;

use crate::{execute, lookup, Args, Ctx, Handler, Route, Settings};

/// One shard's store, its settings, a fake clock, the protocol and the selected database.
pub(crate) struct Harness {
    pub store: Store,
    pub settings: Settings,
    pub now: u64,
    pub proto: Protocol,
    pub db: usize,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            store: Store::new(16),
            settings: Settings::default(),
            now: 1_000_000,
            proto: Protocol::Resp2,
            db: 0,
        }
    }

    /// Runs `line` (words separated by single spaces).
    pub fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split(' ').collect();
        self.run_words(&words)
    }

    /// Runs `line` at time `now` (which stays the clock's time).
    pub fn at(&mut self, now: u64, line: &str) -> String {
        self.now = now;
        self.run(line)
    }

    /// Runs one command given word by word.
    pub fn run_words(&mut self, words: &[&str]) -> String {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for w in words {
            spans.push(Span {
                start: buf.len(),
                end: buf.len() + w.len(),
            });
            buf.extend_from_slice(w.as_bytes());
        }
        let cmd = lookup(words[0].as_bytes()).expect("known command"); // ok: test helper (module is #[cfg(test)])
        if !cmd.arity_ok(words.len()) {
            return format!(
                "-ERR wrong number of arguments for '{}' command\r\n",
                cmd.name
            );
        }
        let handler: Handler = match cmd.route {
            Route::Keyed(h) | Route::Split(h, _) | Route::Broadcast(h, _) | Route::Cursor(h) => h,
            Route::Connection(_) | Route::Transaction(_) => {
                panic!("{} is not a shard command", cmd.name) // ok: test helper (module is #[cfg(test)])
            }
        };
        let mut out = Vec::new();
        let mut ctx = Ctx {
            store: &mut self.store,
            db: self.db,
            now_ms: self.now,
            reply: Reply::new(&mut out, self.proto),
            settings: &self.settings,
            shard: 0,
            shards: 1,
        };
        execute(handler, &mut ctx, Args::new(&buf, &spans));
        String::from_utf8_lossy(&out).into_owned()
    }
}
