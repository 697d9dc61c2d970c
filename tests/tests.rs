//! End-to-end tests: each starts the real `shardis-server` binary on port 0 and talks to it over
//! TCP, through the `redis` crate or raw RESP bytes. Every suite runs against 1 shard and 4.
//!
//! | module        | covers                                                            |
//! |---------------|-------------------------------------------------------------------|
//! | `harness`     | starting servers (and Debian's redis-server), raw RESP clients    |
//! | `clients`     | redis-py, ioredis and node-redis driven as applications do, against Redis |
//! | `routing`     | keys spread over shards, hash tags, multi-shard commands, pipelines|
//! | `protocol`    | RESP2/RESP3, inline commands, malformed input, limits, disconnects |
//! | `server`      | INFO, CLIENT, CONFIG, COMMAND, AUTH, SHUTDOWN, signals, options    |
//! | `differential`| the same commands sent to Redis and to Shardis, replies compared   |
//! | `fuzz`        | random arguments to every command: answered, nothing else touched |
//! | `differential_keys` | the same, for strings, counters, keyspace, expiry and lists |
//! | `transactions`| MULTI/EXEC/WATCH, atomic across shards                             |
//! | `hash`        | hash commands, field TTLs, active field expiry, hash differential  |
//! | `scripting`   | EVAL and friends against Redis, cross-shard scripts, CL.THROTTLE   |
//! | `cjson`       | the `cjson` library in scripts against Redis, byte for byte        |
//! | `rate_limiters` | rate-limiter and counter scripts against Redis, as libraries call them |
//! | `strings`     | string and counter commands, `INCREX` against its documentation   |
//! | `keyspace`    | TTLs, active expiry, SCAN over shards, RANDOMKEY, RENAME/COPY/MOVE |
//! | `lists`       | list commands and encodings                                       |

mod harness;

mod cjson;
mod clients;
mod differential;
mod differential_keys;
mod fuzz;
mod hash;
mod keyspace;
mod lists;
mod protocol;
mod rate_limiters;
mod routing;
mod scripting;
mod server;
mod strings;
mod transactions;
