//! Reply encoding, straight into the connection's output buffer.
//!
//! [`Reply`] borrows the buffer and knows the protocol the client asked for, so command code
//! says *what* it answers (`map(2)`, `null()`, `double(1.5)`) and the RESP2/RESP3 difference is
//! decided here, in one place.

/// The protocol version a connection speaks (`HELLO 2` / `HELLO 3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, the default for every new connection.
    #[default]
    Resp2,
    /// RESP3, with maps, sets, doubles, booleans and a real null.
    Resp3,
}

/// Writes replies into a byte buffer.
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    proto: Protocol,
}

impl<'a> Reply<'a> {
    /// A writer that appends to `out` in the given protocol.
    pub fn new(out: &'a mut Vec<u8>, proto: Protocol) -> Reply<'a> {
        Reply { out, proto }
    }

    /// The protocol being written.
    pub fn protocol(&self) -> Protocol {
        self.proto
    }

    /// True for RESP3.
    pub fn is_resp3(&self) -> bool {
        self.proto == Protocol::Resp3
    }

    /// Bytes written so far (also to undo a partly written reply with [`Reply::truncate`]).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Drops everything written after `len`.
    pub fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
    }

    /// Appends already encoded reply bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string (`+...`). Must not contain `\r` or `\n`.
    pub fn simple(&mut self, s: &[u8]) {
        self.out.push(b'+');
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error (`-...`). `msg` starts with the error code (`ERR ...`, `WRONGTYPE ...`); line
    /// breaks are turned into spaces, as Redis does, so the reply stays one line.
    pub fn error(&mut self, msg: &str) {
        self.out.push(b'-');
        self.out.extend(
            msg.bytes()
                .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer (`:N`).
    pub fn integer(&mut self, n: i64) {
        self.out.push(b':');
        self.number(n);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string (`$N\r\n...`).
    pub fn bulk(&mut self, s: &[u8]) {
        self.header(b'$', s.len());
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (how Redis answers `GET` of an integer value).
    pub fn bulk_integer(&mut self, n: i64) {
        let mut buf = itoa::Buffer::new();
        self.bulk(buf.format(n).as_bytes());
    }

    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// A missing array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The header of an array of `n` elements; the elements follow.
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }

    /// The header of a map of `n` key/value pairs (`%` in RESP3, a flat array of `2n` in RESP2).
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', 2 * n),
            Protocol::Resp3 => self.header(b'%', n),
        }
    }

    /// The header of a set of `n` elements (`~` in RESP3, an array in RESP2).
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', n),
            Protocol::Resp3 => self.header(b'~', n),
        }
    }

    /// A double (`,` in RESP3, a bulk string in RESP2), printed as Redis does: `inf`, `-inf`,
    /// `nan`, and otherwise the shortest form that reads back to the same value.
    pub fn double(&mut self, d: f64) {
        self.double_text(format_double(d).as_bytes());
    }

    /// A number already formatted as text (Redis's `addReplyHumanLongDouble`): a double (`,`)
    /// in RESP3, a bulk string in RESP2.
    pub fn double_text(&mut self, text: &[u8]) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.out.push(b',');
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A boolean (`#t` / `#f` in RESP3, the integer 1 / 0 in RESP2).
    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Protocol::Resp2 => self.integer(i64::from(b)),
            Protocol::Resp3 => self
                .out
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// Text for humans (`INFO`, `CLIENT LIST`): a verbatim string `=N\r\ntxt:...` in RESP3, a
    /// bulk string in RESP2.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.header(b'=', text.len() + 4);
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn header(&mut self, kind: u8, n: usize) {
        self.out.push(kind);
        let mut buf = itoa::Buffer::new();
        self.out.extend_from_slice(buf.format(n).as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn number(&mut self, n: i64) {
        let mut buf = itoa::Buffer::new();
        self.out.extend_from_slice(buf.format(n).as_bytes());
    }
}

/// Formats a double as Redis's replies do: the shortest digits that read back to the same value,
/// in C's `%g` layout (exponent form below 1e-4 and from 1e17 on, with a signed two-digit
/// exponent), and `inf`, `-inf`, `nan`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if d == 0.0 || (1e-4..1e17).contains(&d.abs()) {
        return format!("{d}");
    }
    // Rust writes `1.5e20` and `1e-5`; C writes `1.5e+20` and `1e-05`.
    let text = format!("{d:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut Reply)) -> (String, String) {
        let mut a = Vec::new();
        f(&mut Reply::new(&mut a, Protocol::Resp2));
        let mut b = Vec::new();
        f(&mut Reply::new(&mut b, Protocol::Resp3));
        (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
    }

    #[test]
    fn scalar_types() {
        assert_eq!(both(|r| r.ok()).0, "+OK\r\n");
        assert_eq!(both(|r| r.integer(-42)).0, ":-42\r\n");
        assert_eq!(both(|r| r.bulk(b"hi")).0, "$2\r\nhi\r\n");
        assert_eq!(both(|r| r.error("ERR a\r\nb")).0, "-ERR a  b\r\n");
        assert_eq!(both(|r| r.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(
            both(|r| r.boolean(true)),
            (":1\r\n".into(), "#t\r\n".into())
        );
        assert_eq!(
            both(|r| r.double(1.5)),
            ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into())
        );
        assert_eq!(both(|r| r.verbatim(b"x")).1, "=5\r\ntxt:x\r\n");
        assert_eq!(
            both(|r| r.double_text(b"10.5")),
            ("$4\r\n10.5\r\n".into(), ",10.5\r\n".into())
        );
    }

    #[test]
    fn aggregates() {
        assert_eq!(both(|r| r.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|r| r.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
    }

    #[test]
    fn doubles_like_redis() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.5), "-0.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(1e-5), "1e-05");
        assert_eq!(format_double(1.5e20), "1.5e+20");
    }
}
