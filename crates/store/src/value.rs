//! The value types a key can hold.

use crate::hash::Hash;
use crate::list::List;
use crate::thin::ThinBytes;

/// A value stored under a key.
#[derive(Debug, Clone)]
pub enum Value {
    /// A Redis string (which may be stored as an integer).
    Str(StrValue),
    /// A Redis hash, with optional per-field TTLs.
    Hash(Hash),
    /// A Redis list.
    List(Box<List>),
}

impl Value {
    /// The name `TYPE` answers for this value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
        }
    }

    /// What `OBJECT ENCODING` answers, as Redis would for the same value.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(StrValue::Int(_)) => "int",
            // Redis embeds strings of up to 44 bytes in the object header.
            Value::Str(StrValue::Raw(b)) if b.len() <= 44 => "embstr",
            Value::Str(StrValue::Raw(_) | StrValue::Growable(_)) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
        }
    }

    /// Heap and inline bytes this value uses, for `MEMORY USAGE`.
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<Value>()
            + match self {
                Value::Str(s) => s.heap_bytes(),
                Value::Hash(h) => h.memory_usage(),
                Value::List(l) => l.memory_usage(),
            }
    }
}

/// A string value. Strings that are canonical decimal integers are kept as integers, as Redis
/// does (`OBJECT ENCODING` answers `int`), which saves memory and makes `INCR` cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrValue {
    /// A string whose bytes are the canonical decimal form of this integer.
    Int(i64),
    /// Any other byte string, in an allocation of exactly its size behind a thin pointer.
    Raw(ThinBytes),
    /// A string changed in place by `APPEND` or `SETRANGE`. It keeps spare capacity, as Redis's
    /// sds does, so that a run of appends costs amortised O(1) each; Redis reports such a string
    /// as `raw` whatever its length.
    Growable(Box<Vec<u8>>),
}

impl StrValue {
    /// Stores `bytes`, as an integer when they are one in canonical form (so that reading the
    /// value back always returns exactly the bytes that were written). Like Redis, only strings
    /// of at most 20 characters are considered.
    pub fn from_bytes(bytes: &[u8]) -> StrValue {
        if bytes.len() <= 20 {
            if let Some(n) = parse_canonical_i64(bytes) {
                return StrValue::Int(n);
            }
        }
        StrValue::Raw(ThinBytes::new(bytes))
    }

    /// The value's bytes, formatting an integer into `scratch` when needed.
    pub fn as_bytes<'a>(&'a self, scratch: &'a mut itoa_buf::Buffer) -> &'a [u8] {
        match self {
            StrValue::Int(n) => scratch.format(*n),
            StrValue::Raw(b) => b,
            StrValue::Growable(v) => v,
        }
    }

    /// The value as an integer if it is one in canonical form (what `INCR` accepts: Redis's
    /// strict `string2ll`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrValue::Int(n) => Some(*n),
            StrValue::Raw(b) => parse_canonical_i64(b),
            StrValue::Growable(v) => parse_canonical_i64(v),
        }
    }

    /// Changes the bytes in place (`APPEND`, `SETRANGE`) through `f`, turning the value into
    /// a [`StrValue::Growable`] first (a `Raw` string's bytes are copied into it once).
    pub fn modify<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut bytes = match std::mem::replace(self, StrValue::Int(0)) {
            StrValue::Int(n) => Box::new(itoa_buf::Buffer::new().format(n).to_vec()),
            StrValue::Raw(b) => Box::new(b.to_vec()),
            StrValue::Growable(v) => v,
        };
        let result = f(&mut bytes);
        *self = StrValue::Growable(bytes);
        result
    }

    /// Length in bytes (`STRLEN`).
    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa_buf::Buffer::new().format(*n).len(),
            StrValue::Raw(b) => b.len(),
            StrValue::Growable(v) => v.len(),
        }
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn heap_bytes(&self) -> usize {
        match self {
            StrValue::Int(_) => 0,
            StrValue::Raw(b) => b.heap_len(),
            StrValue::Growable(v) => std::mem::size_of::<Vec<u8>>() + v.capacity(),
        }
    }
}

/// Decimal integers in the exact form Redis writes them (no `+`, no leading zeros, no `-0`).
fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
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

/// A stack buffer that formats an `i64` without allocating.
pub mod itoa_buf {
    /// Room for the longest `i64` (`-9223372036854775808`).
    #[derive(Default)]
    pub struct Buffer {
        bytes: [u8; 20],
    }

    impl Buffer {
        /// An empty buffer.
        pub fn new() -> Buffer {
            Buffer::default()
        }

        /// Writes `n` in decimal and returns the digits.
        pub fn format(&mut self, n: i64) -> &[u8] {
            let mut at = self.bytes.len();
            let mut rest = n.unsigned_abs();
            loop {
                at -= 1;
                self.bytes[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            if n < 0 {
                at -= 1;
                self.bytes[at] = b'-';
            }
            &self.bytes[at..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_two_words() {
        // What a key costs in the keyspace's dense array depends on it (see `crate::db`).
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn integers_round_trip_exactly() {
        for s in [
            "0",
            "-1",
            "123",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            let v = StrValue::from_bytes(s.as_bytes());
            assert!(matches!(v, StrValue::Int(_)), "{s}");
            assert_eq!(v.as_bytes(&mut itoa_buf::Buffer::new()), s.as_bytes());
            assert_eq!(v.len(), s.len());
        }
        for s in ["01", "+1", "-0", " 1", "1.0", "9223372036854775808", ""] {
            assert!(
                matches!(StrValue::from_bytes(s.as_bytes()), StrValue::Raw(_)),
                "{s}"
            );
        }
    }
}
