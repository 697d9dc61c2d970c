//! The Redis serialization protocol (RESP2 and RESP3), as a server speaks it.
//!
//! Two halves, neither of which knows anything about storage or networking:
//!
//! * [`parse`] turns the bytes a client sent into commands *without copying them*: the parser
//!   records each argument as a [`Span`] (a byte range) into the connection's own read buffer,
//!   so a pipelined batch of thousands of commands costs no allocation at all. Parsing is
//!   incremental: a frame cut in half by the network is resumed where it stopped, not re-scanned.
//! * [`reply`] encodes replies straight into an output buffer. The same call produces the RESP2
//!   or the RESP3 form (a map in RESP3 is a flat array in RESP2, a null is `_` or `$-1`, ...),
//!   depending on what the connection negotiated with `HELLO`.
//!
//! [`scan`] is the small reader the server needs for replies that it merges (for example the
//! per-shard parts of a multi-key `MGET`).

pub mod parse;
pub mod reply;
pub mod scan;

pub use parse::{parse_i64, Limits, Parser, ProtocolError, Span};
pub use reply::{Protocol, Reply};
