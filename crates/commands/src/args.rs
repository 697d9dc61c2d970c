//! Zero-copy views of a command's arguments, and a cursor for parsing them.

use shardis_resp::{parse_i64, Span};

use crate::CmdError;

/// A command's arguments: spans into a buffer (the connection's read buffer, or the body of a
/// message from another shard). Index 0 is the command name.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    /// The arguments `spans` of `buf`.
    pub fn new(buf: &'a [u8], spans: &'a [Span]) -> Args<'a> {
        Args { buf, spans }
    }

    /// Number of arguments, the name included (Redis's `argc`).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there is not even a name.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`, or an empty slice past the end (arity is checked before any handler runs).
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.spans
            .get(i)
            .map(|s| s.of(self.buf))
            .unwrap_or_default()
    }

    /// All arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        let buf = self.buf;
        self.spans.iter().map(move |s| s.of(buf))
    }

    /// A cursor over the arguments, positioned after the first `skip`.
    pub fn cursor(&self, skip: usize) -> Cursor<'a> {
        Cursor {
            args: *self,
            pos: skip,
        }
    }
}

/// Reads arguments one by one, in the style of a small option parser.
pub struct Cursor<'a> {
    args: Args<'a>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// True when every argument has been read.
    pub fn is_done(&self) -> bool {
        self.pos >= self.args.len()
    }

    /// Arguments not yet read.
    pub fn remaining(&self) -> usize {
        self.args.len().saturating_sub(self.pos)
    }

    /// The next argument, or a syntax error if there is none.
    pub fn next_bytes(&mut self) -> Result<&'a [u8], CmdError> {
        if self.is_done() {
            return Err(CmdError::Syntax);
        }
        self.pos += 1;
        Ok(self.args.get(self.pos - 1))
    }

    /// The next argument as an integer (Redis's strict `string2ll`).
    pub fn next_i64(&mut self) -> Result<i64, CmdError> {
        parse_i64(self.next_bytes()?).ok_or(CmdError::NotInteger)
    }

    /// If the next argument equals `word` (case-insensitively), consumes it.
    pub fn eat(&mut self, word: &str) -> bool {
        if !self.is_done()
            && self
                .args
                .get(self.pos)
                .eq_ignore_ascii_case(word.as_bytes())
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}
