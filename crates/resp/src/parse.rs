//! Incremental, zero-copy parsing of client requests.
//!
//! A request is either a RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or an *inline* command
//! (`GET k\r\n`, what a person types into telnet). The parser never copies an argument: it
//! records [`Span`]s into the caller's buffer. Inline commands may contain quoted strings with
//! escapes (`SET k "a\x00b"`); those are unescaped *in place*, which is always possible because
//! an unescaped string is never longer than its escaped form.
//!
//! Errors carry Redis's exact wording, because clients and tests match on it, and limits follow
//! Redis (`proto-max-bulk-len`, 64 KiB inline lines) so a hostile client cannot make the server
//! allocate without bound.

use std::fmt;

/// Longest inline command, and longest `*N` / `$N` header line, that Redis accepts (64 KiB).
pub const INLINE_MAX: usize = 64 * 1024;

/// The byte range of one argument inside the connection's read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes of this argument in `buf`.
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }

    /// This span moved `by` bytes further into a buffer.
    #[inline]
    fn shifted(self, by: usize) -> Span {
        Span {
            start: self.start + by,
            end: self.end + by,
        }
    }
}

/// Size limits, as in Redis's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len`: the longest single argument (Redis default 512 MB).
    pub max_bulk_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
        }
    }
}

/// A malformed request. The connection answers `-ERR Protocol error: ...` and is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*N` with a non-number or a count above `i32::MAX`.
    InvalidMultibulkLength,
    /// `$N` with a non-number, a negative length or one above `proto-max-bulk-len`.
    InvalidBulkLength,
    /// Inside a multibulk, an argument that does not start with `$`.
    ExpectedDollar(u8),
    /// An inline command longer than 64 KiB without a newline.
    TooBigInlineRequest,
    /// A `*N` header longer than 64 KiB without `\r`.
    TooBigMultibulkCount,
    /// A `$N` header longer than 64 KiB without `\r`.
    TooBigBulkCount,
    /// An inline command with an unterminated or badly closed quote.
    UnbalancedQuotes,
    /// A client that has not authenticated sent a multibulk of more than 10 arguments.
    UnauthenticatedMultibulkLength,
    /// A client that has not authenticated sent an argument longer than 16 KiB.
    UnauthenticatedBulkLength,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedDollar(c) => write!(f, "expected '$', got '{}'", *c as char),
            ProtocolError::TooBigInlineRequest => f.write_str("too big inline request"),
            ProtocolError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtocolError::UnauthenticatedMultibulkLength => {
                f.write_str("unauthenticated multibulk length")
            }
            ProtocolError::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
        }
    }
}

/// Parses an integer the way Redis's `string2ll` does: optional `-`, no `+`, no leading zeros,
/// no spaces, no overflow. Redis uses this for protocol lengths and for integer arguments, so
/// `INCRBY k +1` and `INCRBY k 01` are errors there and here alike.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [first, ..] if !(b'1'..=b'9').contains(first) => return None,
        _ => {}
    }
    // Accumulate as a negative number so that i64::MIN parses without overflow.
    let mut value: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// What one call to [`Parser::parse`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command: its arguments are the last `argc` spans pushed; the next frame starts at
    /// `end`. `argc` may be 0 (an empty line or `*0`), which Redis silently ignores.
    Command {
        /// Number of arguments pushed onto the span list.
        argc: usize,
        /// Offset just past this frame.
        end: usize,
    },
    /// The buffer ends inside a frame; read more and call again. `need` is a hint of how many
    /// more bytes the frame needs at least, so a reader can grow its buffer once for a big value.
    Incomplete {
        /// Lower bound of the bytes still missing.
        need: usize,
    },
}

/// Where a multibulk frame that arrived only in part stopped.
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// Arguments still to read.
    remaining: usize,
    /// Where to resume, relative to the frame's start.
    pos: usize,
}

/// An incremental request parser; one per connection.
#[derive(Debug, Default)]
pub struct Parser {
    resume: Option<Resume>,
    /// The arguments of the unfinished frame, relative to its start (kept across calls and
    /// reused, so parsing allocates nothing once warmed up).
    saved: Vec<Span>,
}

impl Parser {
    /// A parser at a frame boundary.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// True while a multibulk frame has been read only in part.
    pub fn in_frame(&self) -> bool {
        self.resume.is_some()
    }

    /// Parses the frame that starts at `buf[start..]`, pushing its arguments onto `spans` (as
    /// absolute offsets into `buf`). `authenticated` applies Redis's tighter limits to clients
    /// that still owe a password. After `Incomplete`, call again with the same frame start
    /// (the buffer may have been compacted so that the frame now starts elsewhere; positions are
    /// kept relative to the frame).
    pub fn parse(
        &mut self,
        buf: &mut [u8],
        start: usize,
        spans: &mut Vec<Span>,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Parsed, ProtocolError> {
        let frame = buf.get_mut(start..).unwrap_or_default();
        let first = spans.len();
        let mut at = match self.resume.take() {
            Some(resume) => {
                spans.extend(self.saved.drain(..).map(|s| s.shifted(start)));
                resume
            }
            None => match frame.first() {
                None => return Ok(Parsed::Incomplete { need: 1 }),
                Some(b'*') => match multibulk_header(frame, authenticated)? {
                    Header::Incomplete => return Ok(Parsed::Incomplete { need: 1 }),
                    Header::Done { value, next } if value <= 0 => {
                        return Ok(Parsed::Command {
                            argc: 0,
                            end: start + next,
                        })
                    }
                    Header::Done { value, next } => Resume {
                        remaining: value as usize,
                        pos: next,
                    },
                },
                Some(_) => return parse_inline(frame, start, spans),
            },
        };
        while at.remaining > 0 {
            match bulk(frame, at.pos, limits, authenticated)? {
                Bulk::Incomplete(need) => {
                    // Keep what was read, relative to the frame, for the next call.
                    self.saved.extend(spans.drain(first..).map(|s| Span {
                        start: s.start - start,
                        end: s.end - start,
                    }));
                    self.resume = Some(at);
                    return Ok(Parsed::Incomplete { need });
                }
                Bulk::Done(span, next) => {
                    spans.push(span.shifted(start));
                    at.pos = next;
                    at.remaining -= 1;
                }
            }
        }
        Ok(Parsed::Command {
            argc: spans.len() - first,
            end: start + at.pos,
        })
    }
}

enum Header {
    Incomplete,
    Done { value: i64, next: usize },
}

/// Reads the `*N\r\n` line at the start of `frame`.
fn multibulk_header(frame: &[u8], authenticated: bool) -> Result<Header, ProtocolError> {
    let Some((value, next)) = header_line(frame, 0, ProtocolError::TooBigMultibulkCount)? else {
        return Ok(Header::Incomplete);
    };
    let value = value
        .filter(|&n| n <= i64::from(i32::MAX))
        .ok_or(ProtocolError::InvalidMultibulkLength)?;
    if value > 10 && !authenticated {
        return Err(ProtocolError::UnauthenticatedMultibulkLength);
    }
    Ok(Header::Done { value, next })
}

/// Finds the `\r\n`-terminated header that starts with a type byte at `frame[at]`. Returns the
/// parsed number (None if it is not a valid integer) and the offset after the `\n`.
#[allow(clippy::type_complexity)]
fn header_line(
    frame: &[u8],
    at: usize,
    too_big: ProtocolError,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    if let Some(header) = short_header(frame, at) {
        return Ok(Some(header));
    }
    any_header_line(frame, at, too_big)
}

/// [`header_line`] for any line: finds the `\r`, then parses what came before it.
#[allow(clippy::type_complexity)]
fn any_header_line(
    frame: &[u8],
    at: usize,
    too_big: ProtocolError,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let rest = frame.get(at + 1..).unwrap_or_default();
    match rest.iter().position(|&c| c == b'\r') {
        None if rest.len() > INLINE_MAX => Err(too_big),
        None => Ok(None),
        // The `\n` after the `\r` has not arrived yet.
        Some(cr) if cr + 1 >= rest.len() => Ok(None),
        Some(cr) => Ok(Some((parse_i64(&rest[..cr]), at + 1 + cr + 2))),
    }
}

/// [`header_line`]'s common case in one pass: 1 to 18 digits without a leading zero, then
/// `\r` and a byte after it. Anything else (a sign, a lone or leading `0`, a longer number, a
/// line not all here) is `None` and goes the general way, which answers such lines as Redis
/// does; this one only saves a scan for the `\r` and a second pass over the digits (a third
/// of a `GET`'s parsing).
#[inline]
fn short_header(frame: &[u8], at: usize) -> Option<(Option<i64>, usize)> {
    let digits = frame.get(at + 1..)?;
    let first = *digits.first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = i64::from(first - b'0');
    for i in 1..=18 {
        let c = *digits.get(i)?;
        if c == b'\r' {
            return (i + 1 < digits.len()).then_some((Some(value), at + i + 3));
        }
        if !c.is_ascii_digit() || i == 18 {
            return None;
        }
        // At most 18 digits: below 10^18, no overflow.
        value = value * 10 + i64::from(c - b'0');
    }
    None
}

enum Bulk {
    Incomplete(usize),
    Done(Span, usize),
}

/// Reads one `$N\r\n<N bytes>\r\n` argument at `frame[pos..]`.
fn bulk(
    frame: &[u8],
    pos: usize,
    limits: &Limits,
    authenticated: bool,
) -> Result<Bulk, ProtocolError> {
    match frame.get(pos) {
        None => return Ok(Bulk::Incomplete(1)),
        Some(b'$') => {}
        Some(&other) => return Err(ProtocolError::ExpectedDollar(other)),
    }
    let Some((len, data)) = header_line(frame, pos, ProtocolError::TooBigBulkCount)? else {
        return Ok(Bulk::Incomplete(1));
    };
    let len = len
        .filter(|&n| n >= 0 && n as u64 <= limits.max_bulk_len as u64)
        .ok_or(ProtocolError::InvalidBulkLength)? as usize;
    if len > 16 * 1024 && !authenticated {
        return Err(ProtocolError::UnauthenticatedBulkLength);
    }
    // Like Redis, the two bytes after the data are taken to be `\r\n` without checking.
    let next = data + len + 2;
    if frame.len() < next {
        return Ok(Bulk::Incomplete(next - frame.len()));
    }
    Ok(Bulk::Done(
        Span {
            start: data,
            end: data + len,
        },
        next,
    ))
}

/// Parses an inline command: one line, split into arguments by white space, with
/// double-quoted strings (escapes `\n \r \t \b \a \\ \" \xHH`) and single-quoted strings (only
/// `\'`), as Redis's `sdssplitargs` does.
fn parse_inline(
    frame: &mut [u8],
    start: usize,
    spans: &mut Vec<Span>,
) -> Result<Parsed, ProtocolError> {
    let Some(newline) = frame.iter().position(|&c| c == b'\n') else {
        if frame.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        return Ok(Parsed::Incomplete { need: 1 });
    };
    let end = start + newline + 1;
    let mut line_end = newline;
    if line_end > 0 && frame[line_end - 1] == b'\r' {
        line_end -= 1;
    }
    let line = &mut frame[..line_end];
    let before = spans.len();
    let mut read = 0;
    loop {
        while read < line.len() && is_space(line[read]) {
            read += 1;
        }
        if read == line.len() {
            break;
        }
        let arg_start = read;
        let (arg_end, next) = match line[read] {
            b'"' => unquote_double(line, read)?,
            b'\'' => unquote_single(line, read)?,
            _ => {
                while read < line.len() && !is_space(line[read]) {
                    read += 1;
                }
                (read, read)
            }
        };
        spans.push(Span {
            start: start + arg_start,
            end: start + arg_end,
        });
        read = next;
    }
    Ok(Parsed::Command {
        argc: spans.len() - before,
        end,
    })
}

/// C's `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Unescapes the double-quoted string at `line[open]` in place, writing from `open`. Returns
/// the end of the unescaped bytes and where scanning resumes.
fn unquote_double(line: &mut [u8], open: usize) -> Result<(usize, usize), ProtocolError> {
    let mut read = open + 1;
    let mut write = open;
    loop {
        let Some(&c) = line.get(read) else {
            return Err(ProtocolError::UnbalancedQuotes);
        };
        match c {
            b'"' => {
                // The closing quote must be followed by a space or the end of the line.
                if line.get(read + 1).is_some_and(|&n| !is_space(n)) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                return Ok((write, read + 1));
            }
            b'\\'
                if read + 3 < line.len()
                    && line[read + 1] == b'x'
                    && line[read + 2].is_ascii_hexdigit()
                    && line[read + 3].is_ascii_hexdigit() =>
            {
                line[write] = hex(line[read + 2]) << 4 | hex(line[read + 3]);
                read += 4;
            }
            b'\\' if read + 1 < line.len() => {
                line[write] = match line[read + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                };
                read += 2;
            }
            _ => {
                line[write] = c;
                read += 1;
            }
        }
        write += 1;
    }
}

/// Like [`unquote_double`] for single quotes, where the only escape is `\'`.
fn unquote_single(line: &mut [u8], open: usize) -> Result<(usize, usize), ProtocolError> {
    let mut read = open + 1;
    let mut write = open;
    loop {
        let Some(&c) = line.get(read) else {
            return Err(ProtocolError::UnbalancedQuotes);
        };
        match c {
            b'\'' => {
                if line.get(read + 1).is_some_and(|&n| !is_space(n)) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                return Ok((write, read + 1));
            }
            b'\\' if line.get(read + 1) == Some(&b'\'') => {
                line[write] = b'\'';
                read += 2;
            }
            _ => {
                line[write] = c;
                read += 1;
            }
        }
        write += 1;
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass header reader answers every line it takes as the general one does, and
    /// leaves it the lines it does not take.
    #[test]
    fn short_headers_read_as_any_header_does() {
        let mut lines: Vec<Vec<u8>> = [
            "$3\r\n",
            "*5\r\n",
            "$0\r\n",
            "$01\r\n",
            "$-1\r\n",
            "$+1\r\n",
            "$3\r",
            "$3",
            "$",
            "$12a\r\n",
            "$3\rX",
            "$3\n\r\n",
            "$ 3\r\n",
            "$123456789012345678\r\n",
            "$999999999999999999\r\n",
            "$1234567890123456789\r\n",
            "$9223372036854775807\r\n",
            "$9223372036854775808\r\n",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        let mut seed = 7u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let digits = seed.to_string();
            let cut = (seed % (digits.len() as u64 + 1)) as usize;
            lines.push(format!("${}\r\n", &digits[..cut]).into_bytes());
        }
        let mut taken = 0;
        for line in &lines {
            let general = any_header_line(line, 0, ProtocolError::TooBigBulkCount);
            match short_header(line, 0) {
                Some(short) => {
                    assert_eq!(
                        general,
                        Ok(Some(short)),
                        "{:?}",
                        String::from_utf8_lossy(line)
                    );
                    taken += 1;
                }
                None => assert_eq!(
                    header_line(line, 0, ProtocolError::TooBigBulkCount),
                    general
                ),
            }
        }
        assert!(taken > 1000, "{taken}");
    }

    /// Parses every frame in `input`, returning the commands as byte vectors.
    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = input.to_vec();
        let mut parser = Parser::new();
        let mut spans = Vec::new();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            match parser.parse(&mut buf, pos, &mut spans, &Limits::default(), true)? {
                Parsed::Command { argc, end } => {
                    let args = spans[spans.len() - argc..]
                        .iter()
                        .map(|s| s.of(&buf).to_vec())
                        .collect::<Vec<_>>();
                    if argc > 0 {
                        out.push(args);
                    }
                    pos = end;
                }
                Parsed::Incomplete { .. } => return Ok(out),
            }
        }
    }

    fn cmd(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_and_pipelines() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(got, vec![cmd(&["GET", "k"]), cmd(&["PING"])]);
    }

    #[test]
    fn binary_safe_and_empty_arguments() {
        let got = parse_all(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\na\r\nb\r\n").unwrap();
        assert_eq!(got, vec![vec![b"SET".to_vec(), vec![], b"a\r\nb".to_vec()]]);
    }

    #[test]
    fn resumes_a_frame_split_at_every_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nPING\r\n";
        for cut in 1..input.len() {
            let mut buf = input[..cut].to_vec();
            let mut parser = Parser::new();
            let mut spans = Vec::new();
            let limits = Limits::default();
            let first = parser
                .parse(&mut buf, 0, &mut spans, &limits, true)
                .unwrap();
            buf.extend_from_slice(&input[cut..]);
            let first = match first {
                Parsed::Incomplete { .. } => parser
                    .parse(&mut buf, 0, &mut spans, &limits, true)
                    .unwrap(),
                done => done,
            };
            let Parsed::Command { argc: 3, end } = first else {
                panic!("cut {cut}: {first:?}");
            };
            assert_eq!(spans[2].of(&buf), b"value", "cut {cut}");
            let second = parser
                .parse(&mut buf, end, &mut spans, &limits, true)
                .unwrap();
            assert_eq!(
                second,
                Parsed::Command {
                    argc: 1,
                    end: input.len()
                }
            );
        }
    }

    #[test]
    fn inline_commands_with_quotes() {
        let got = parse_all(b"set \"a b\" 'c\\'d'\r\nget  \"\\x41\\n\"\n\r\n").unwrap();
        assert_eq!(got, vec![cmd(&["set", "a b", "c'd"]), cmd(&["get", "A\n"])]);
    }

    #[test]
    fn protocol_errors_have_redis_wording() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n+OK\r\n", "Protocol error: expected '$', got '+'"),
            (
                b"*3000000000\r\n",
                "Protocol error: invalid multibulk length",
            ),
            (
                b"get \"abc\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (
                b"get \"a\"b\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (input, want) in cases {
            let err = parse_all(input).unwrap_err();
            assert_eq!(
                err.to_string(),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(
            parse_all(&long).unwrap_err(),
            ProtocolError::TooBigInlineRequest
        );
        let mut long = b"*".to_vec();
        long.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(
            parse_all(&long).unwrap_err(),
            ProtocolError::TooBigMultibulkCount
        );
    }

    #[test]
    fn bulk_length_limit() {
        let mut buf = b"*1\r\n$1025\r\n".to_vec();
        let limits = Limits { max_bulk_len: 1024 };
        let err = Parser::new().parse(&mut buf, 0, &mut Vec::new(), &limits, true);
        assert_eq!(err, Err(ProtocolError::InvalidBulkLength));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut buf = b"*11\r\n".to_vec();
        let err = Parser::new().parse(&mut buf, 0, &mut Vec::new(), &Limits::default(), false);
        assert_eq!(err, Err(ProtocolError::UnauthenticatedMultibulkLength));
    }

    #[test]
    fn empty_frames_are_ignored() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n\r\n  \r\n").unwrap(),
            Vec::<Vec<Vec<u8>>>::new()
        );
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
