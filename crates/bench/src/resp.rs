//! A minimal, incremental RESP2/RESP3 reply reader.
//!
//! The load generator never needs the *content* of a reply, only where it
//! ends and a one-line summary of it (error? null? which type?). So instead of
//! building values, [`ReplyReader`] walks the byte stream with a small state
//! machine: a stack of "elements still expected" for open aggregates and a
//! counter of payload bytes still to skip for length-prefixed strings. Each
//! byte of a large reply is looked at once, however the reply is split across
//! reads, so a 1 MiB `LRANGE` answer arriving in many TCP segments costs no
//! more than one arriving at once.
//!
//! Out-of-band data is handled as RESP3 requires: a top-level push (`>`) is
//! reported as [`ReplyKind::Push`] so the caller can skip it without matching
//! it to a request, and attributes (`|`) are skipped wherever they appear.

use thiserror::Error;

/// The type of a complete top-level reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// `+OK`
    Simple,
    /// `-ERR ...` or a RESP3 blob error `!`.
    Error,
    /// `:1`
    Integer,
    /// `$3\r\nfoo`
    Bulk,
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    /// `*N`
    Array,
    /// RESP3 `%N`
    Map,
    /// RESP3 `~N`
    Set,
    /// RESP3 `,1.5`
    Double,
    /// RESP3 `#t`
    Boolean,
    /// RESP3 `(123...`
    BigNumber,
    /// RESP3 `=N\r\ntxt:...`
    Verbatim,
    /// RESP3 `>N`: out-of-band, not an answer to a request.
    Push,
}

/// Summary of one complete top-level reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Type of the top-level value.
    pub kind: ReplyKind,
    /// For errors: the message (truncated), so the first few can be shown.
    pub error: Option<String>,
}

/// The byte stream is not RESP; the connection cannot be trusted any more.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// A value started with a byte that is no RESP type marker.
    #[error("unknown RESP type byte 0x{0:02x}")]
    UnknownType(u8),
    /// A length or count was not a valid number.
    #[error("invalid length or count {0:?}")]
    BadLength(String),
    /// A bulk payload was not followed by CRLF.
    #[error("bulk payload not terminated by CRLF")]
    MissingCrlf,
    /// RESP3 streamed strings/aggregates (`$?`, `*?`) are not supported.
    #[error("streamed RESP3 values are not supported")]
    Streamed,
}

/// Longest error message kept for display; the rest is dropped.
const MAX_ERROR_TEXT: usize = 200;

/// An open aggregate: how many child values are still expected.
#[derive(Debug)]
struct Frame {
    remaining: u64,
    /// Attributes decorate the value that follows them and are not an element
    /// of their parent, so finishing one must not count against the parent.
    is_attribute: bool,
}

#[derive(Debug)]
enum State {
    /// Waiting for a type-marker line.
    Header,
    /// Skipping the payload of a length-prefixed string, then its CRLF.
    /// `capture` is set for a top-level blob error whose text we keep.
    Payload { remaining: usize, capture: bool },
}

/// Incremental reader of a stream of RESP replies.
#[derive(Debug)]
pub struct ReplyReader {
    state: State,
    stack: Vec<Frame>,
    /// Kind of the current top-level value, once its header has been read.
    top: Option<ReplyKind>,
    /// Whether the current top-level value is an attribute (skipped).
    top_is_attribute: bool,
    error_text: Vec<u8>,
}

impl Default for ReplyReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyReader {
    /// A reader positioned at the start of a reply.
    pub fn new() -> Self {
        ReplyReader {
            state: State::Header,
            stack: Vec::new(),
            top: None,
            top_is_attribute: false,
            error_text: Vec::new(),
        }
    }

    /// Consumes bytes from `buf` until one top-level reply is complete or the
    /// buffer runs out. Returns how many bytes were consumed and the reply, if
    /// one completed. Bytes of an incomplete header line are not consumed:
    /// the caller must present them again, followed by more data.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<Reply>), ProtocolError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Payload { remaining, capture } => {
                    // Payload bytes, then the 2-byte CRLF terminator.
                    let avail = buf.len() - pos;
                    if remaining > 2 {
                        let take = avail.min(remaining - 2);
                        if capture {
                            let room = MAX_ERROR_TEXT.saturating_sub(self.error_text.len());
                            let keep = take.min(room);
                            self.error_text.extend_from_slice(&buf[pos..pos + keep]);
                        }
                        pos += take;
                        self.state = State::Payload {
                            remaining: remaining - take,
                            capture,
                        };
                        if take < avail {
                            continue;
                        }
                        return Ok((pos, None));
                    }
                    // Only (part of) the CRLF is left.
                    let take = avail.min(remaining);
                    let expected = &b"\r\n"[2 - remaining..2 - remaining + take];
                    if &buf[pos..pos + take] != expected {
                        return Err(ProtocolError::MissingCrlf);
                    }
                    pos += take;
                    if take < remaining {
                        self.state = State::Payload {
                            remaining: remaining - take,
                            capture,
                        };
                        return Ok((pos, None));
                    }
                    self.state = State::Header;
                    if let Some(reply) = self.value_done() {
                        return Ok((pos, Some(reply)));
                    }
                }
                State::Header => {
                    let Some(line_len) = find_crlf(&buf[pos..]) else {
                        return Ok((pos, None));
                    };
                    let line = &buf[pos..pos + line_len];
                    pos += line_len + 2;
                    if let Some(reply) = self.header(line)? {
                        return Ok((pos, Some(reply)));
                    }
                }
            }
        }
    }

    /// Handles one header line (without CRLF); returns a reply if that line
    /// completed the top-level value.
    fn header(&mut self, line: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        let Some((&marker, rest)) = line.split_first() else {
            return Err(ProtocolError::UnknownType(b'\r'));
        };
        let at_top = self.top.is_none() && self.stack.is_empty();
        let kind = match marker {
            b'+' => ReplyKind::Simple,
            b'-' => ReplyKind::Error,
            b':' => ReplyKind::Integer,
            b'_' => ReplyKind::Null,
            b',' => ReplyKind::Double,
            b'#' => ReplyKind::Boolean,
            b'(' => ReplyKind::BigNumber,
            b'$' => ReplyKind::Bulk,
            b'!' => ReplyKind::Error,
            b'=' => ReplyKind::Verbatim,
            b'*' => ReplyKind::Array,
            b'%' => ReplyKind::Map,
            b'~' => ReplyKind::Set,
            b'>' => ReplyKind::Push,
            b'|' => ReplyKind::Map, // attribute; handled below
            other => return Err(ProtocolError::UnknownType(other)),
        };
        if at_top {
            self.top = Some(kind);
            self.top_is_attribute = marker == b'|';
            self.error_text.clear();
            if marker == b'-' {
                let keep = rest.len().min(MAX_ERROR_TEXT);
                self.error_text.extend_from_slice(&rest[..keep]);
            }
        }
        match marker {
            b'$' | b'!' | b'=' => {
                let len = parse_len(rest)?;
                match len {
                    None if marker == b'$' => {
                        if at_top {
                            self.top = Some(ReplyKind::Null);
                        }
                        Ok(self.value_done())
                    }
                    None => Err(ProtocolError::BadLength(lossy(rest))),
                    Some(n) => {
                        let remaining = usize::try_from(n)
                            .ok()
                            .and_then(|n| n.checked_add(2))
                            .ok_or_else(|| ProtocolError::BadLength(lossy(rest)))?;
                        self.state = State::Payload {
                            remaining,
                            capture: at_top && marker == b'!',
                        };
                        Ok(None)
                    }
                }
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let count = parse_len(rest)?;
                let Some(n) = count else {
                    if marker == b'*' {
                        if at_top {
                            self.top = Some(ReplyKind::Null);
                        }
                        return Ok(self.value_done());
                    }
                    return Err(ProtocolError::BadLength(lossy(rest)));
                };
                let n = if matches!(marker, b'%' | b'|') {
                    n.checked_mul(2)
                        .ok_or_else(|| ProtocolError::BadLength(lossy(rest)))?
                } else {
                    n
                };
                if n == 0 {
                    if marker == b'|' {
                        // An empty attribute decorates nothing visible.
                        return Ok(self.attribute_done());
                    }
                    return Ok(self.value_done());
                }
                self.stack.push(Frame {
                    remaining: n,
                    is_attribute: marker == b'|',
                });
                Ok(None)
            }
            _ => Ok(self.value_done()),
        }
    }

    /// An attribute finished: it counts as no value anywhere.
    fn attribute_done(&mut self) -> Option<Reply> {
        if self.stack.is_empty() && self.top_is_attribute {
            self.top = None;
            self.top_is_attribute = false;
        }
        None
    }

    /// A complete value was read at the current depth: close finished
    /// aggregates and, if the top-level value is complete, return it.
    fn value_done(&mut self) -> Option<Reply> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return self.finish_top();
            };
            frame.remaining -= 1;
            if frame.remaining > 0 {
                return None;
            }
            let was_attribute = frame.is_attribute;
            self.stack.pop();
            if was_attribute {
                return self.attribute_done();
            }
            // The closed aggregate is itself a value of its parent: loop.
        }
    }

    fn finish_top(&mut self) -> Option<Reply> {
        let kind = self.top.take()?;
        if self.top_is_attribute {
            self.top_is_attribute = false;
            return None;
        }
        let error = (kind == ReplyKind::Error)
            .then(|| String::from_utf8_lossy(&self.error_text).into_owned());
        self.error_text.clear();
        Some(Reply { kind, error })
    }
}

/// Position of the first CRLF in `buf`.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    // memchr-like scan for '\n' then check the byte before; headers are short.
    let nl = buf.iter().position(|&b| b == b'\n')?;
    if nl > 0 && buf[nl - 1] == b'\r' {
        Some(nl - 1)
    } else {
        // A bare LF inside a header line: keep scanning past it.
        find_crlf(&buf[nl + 1..]).map(|p| p + nl + 1)
    }
}

/// Parses a length/count; `-1` means null (`None`).
fn parse_len(digits: &[u8]) -> Result<Option<u64>, ProtocolError> {
    if digits == b"-1" {
        return Ok(None);
    }
    if digits == b"?" {
        return Err(ProtocolError::Streamed);
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadLength(lossy(digits)));
    }
    Ok(Some(
        digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
    ))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces cut at `cuts` and collects the replies, the
    /// way the connection driver does: unconsumed bytes stay buffered.
    fn read_all_split(input: &[u8], cuts: &[usize]) -> Vec<Reply> {
        let mut reader = ReplyReader::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            pending.extend_from_slice(&input[last..cut]);
            last = cut;
            loop {
                let (used, reply) = reader.feed(&pending).unwrap();
                pending.drain(..used);
                match reply {
                    Some(r) => out.push(r),
                    None => break,
                }
            }
        }
        assert!(pending.is_empty(), "left over: {pending:?}");
        out
    }

    fn kinds(replies: &[Reply]) -> Vec<ReplyKind> {
        replies.iter().map(|r| r.kind).collect()
    }

    /// A stream exercising every supported type, nested aggregates,
    /// attributes and pushes.
    const STREAM: &[u8] = b"+OK\r\n\
-ERR unknown command\r\n\
:42\r\n\
$5\r\nhello\r\n\
$0\r\n\r\n\
$-1\r\n\
*-1\r\n\
*3\r\n:1\r\n$3\r\nfoo\r\n*2\r\n+a\r\n_\r\n\
*0\r\n\
%2\r\n+k1\r\n:1\r\n+k2\r\n*1\r\n#t\r\n\
~2\r\n,3.14\r\n(12345678901234567890\r\n\
_\r\n\
,inf\r\n\
#f\r\n\
(-1\r\n\
=15\r\ntxt:Some string\r\n\
!21\r\nSYNTAX invalid syntax\r\n\
>2\r\n+message\r\n$2\r\nhi\r\n\
|1\r\n+ttl\r\n:3600\r\n$3\r\nbar\r\n\
*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n\
$4\r\na\r\nb\r\n";

    fn expected() -> Vec<ReplyKind> {
        use ReplyKind::*;
        vec![
            Simple, Error, Integer, Bulk, Bulk, Null, Null, Array, Array, Map, Set, Null, Double,
            Boolean, BigNumber, Verbatim, Error, Push, Bulk, Array, Bulk,
        ]
    }

    #[test]
    fn reads_whole_stream() {
        let replies = read_all_split(STREAM, &[]);
        assert_eq!(kinds(&replies), expected());
        assert_eq!(replies[1].error.as_deref(), Some("ERR unknown command"));
        assert_eq!(replies[16].error.as_deref(), Some("SYNTAX invalid syntax"));
        assert_eq!(replies[0].error, None);
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let whole = read_all_split(STREAM, &[]);
        for cut in 1..STREAM.len() {
            assert_eq!(read_all_split(STREAM, &[cut]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn fed_one_byte_at_a_time() {
        let cuts: Vec<usize> = (1..STREAM.len()).collect();
        assert_eq!(kinds(&read_all_split(STREAM, &cuts)), expected());
    }

    #[test]
    fn incomplete_reply_yields_nothing() {
        let mut reader = ReplyReader::new();
        let (used, reply) = reader.feed(b"*2\r\n$3\r\nfo").unwrap();
        assert_eq!(reply, None);
        assert_eq!(used, 10);
        let (used, reply) = reader.feed(b"o\r\n:1").unwrap();
        assert_eq!(reply, None);
        assert_eq!(used, 3);
        let (_, reply) = reader.feed(b":1\r\n").unwrap();
        assert_eq!(reply.map(|r| r.kind), Some(ReplyKind::Array));
    }

    #[test]
    fn long_error_text_is_truncated() {
        let mut msg = b"-".to_vec();
        msg.extend(std::iter::repeat_n(b'x', 1000));
        msg.extend_from_slice(b"\r\n");
        let replies = read_all_split(&msg, &[]);
        assert_eq!(
            replies[0].error.as_ref().map(String::len),
            Some(MAX_ERROR_TEXT)
        );
    }

    #[test]
    fn rejects_garbage() {
        let mut reader = ReplyReader::new();
        assert_eq!(
            reader.feed(b"?what\r\n"),
            Err(ProtocolError::UnknownType(b'?'))
        );
        let mut reader = ReplyReader::new();
        assert!(matches!(
            reader.feed(b"$x\r\n"),
            Err(ProtocolError::BadLength(_))
        ));
        let mut reader = ReplyReader::new();
        assert_eq!(
            reader.feed(b"$1\r\nab\r\n"),
            Err(ProtocolError::MissingCrlf)
        );
        let mut reader = ReplyReader::new();
        assert_eq!(reader.feed(b"*?\r\n"), Err(ProtocolError::Streamed));
    }
}
