//! Reading encoded replies back, for the few places where the server merges replies that other
//! shards produced (the per-shard parts of `DEL k1 k2`, `MGET`, `DBSIZE`, `KEYS`).
//!
//! The input is always the server's own well-formed output, so this is a small reader that
//! only finds value boundaries; it returns `None` on anything it does not understand.

use crate::parse::parse_i64;

/// The offset just past the reply value that starts at `buf[pos]`.
pub fn value_end(buf: &[u8], pos: usize) -> Option<usize> {
    let kind = *buf.get(pos)?;
    let (line, next) = line(buf, pos + 1)?;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(next),
        b'$' | b'=' | b'!' => match parse_i64(line)? {
            -1 => Some(next),
            n => Some(next + usize::try_from(n).ok()? + 2),
        },
        b'*' | b'~' | b'>' | b'%' => {
            let n = parse_i64(line)?;
            let count = if kind == b'%' { n.checked_mul(2)? } else { n };
            let mut at = next;
            for _ in 0..count.max(0) {
                at = value_end(buf, at)?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// The integer of an `:N` reply that fills all of `buf`.
pub fn integer(buf: &[u8]) -> Option<i64> {
    let (line, next) = line(buf, 1)?;
    (buf.first() == Some(&b':') && next == buf.len())
        .then(|| parse_i64(line))
        .flatten()
}

/// True if `buf` holds an error reply.
pub fn is_error(buf: &[u8]) -> bool {
    buf.first() == Some(&b'-')
}

/// The elements of the array (or set) reply that fills `buf`, as byte slices.
pub fn elements(buf: &[u8]) -> Option<Vec<&[u8]>> {
    if !matches!(buf.first(), Some(b'*') | Some(b'~')) {
        return None;
    }
    let (line, mut at) = line(buf, 1)?;
    let n = usize::try_from(parse_i64(line)?).ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let end = value_end(buf, at)?;
        out.push(buf.get(at..end)?);
        at = end;
    }
    Some(out)
}

/// The header line that starts at `buf[from]`: its text and the offset after its `\r\n`.
fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let cr = rest.iter().position(|&c| c == b'\r')?;
    Some((&rest[..cr], from + cr + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_value_boundaries() {
        let buf = b"*3\r\n$1\r\na\r\n$-1\r\n:5\r\n+OK\r\n";
        assert_eq!(value_end(buf, 0), Some(buf.len() - 5));
        assert_eq!(
            elements(&buf[..buf.len() - 5]).unwrap(),
            vec![&b"$1\r\na\r\n"[..], b"$-1\r\n", b":5\r\n"]
        );
        assert_eq!(integer(b":-12\r\n"), Some(-12));
        assert_eq!(integer(b"-ERR x\r\n"), None);
        assert_eq!(value_end(b"%1\r\n+a\r\n:1\r\n", 0), Some(12));
    }
}
