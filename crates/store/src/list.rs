//! The value type behind Redis lists.
//!
//! Elements are boxed byte strings in a `VecDeque`, so both ends push and pop in O(1) and an
//! index is O(1) too. Redis keeps a small list as one listpack and a large one as a quicklist,
//! and `OBJECT ENCODING` tells which; to answer as Redis 7.2+ does, the list tracks the exact
//! size its contents would have as one listpack and follows Redis's conversion rules with the
//! default `list-max-listpack-size -2` (8 KiB): it becomes a quicklist when an insertion would
//! take the listpack past the limit (Redis estimates the insertion by the elements' raw lengths),
//! and back when a removal leaves it at half the limit or less. (Redis converts back only while
//! its quicklist has a single node; this model assumes it has one whenever the contents fit.)

use std::collections::VecDeque;

/// Most bytes one listpack may hold (`list-max-listpack-size -2`).
const LISTPACK_LIMIT: usize = 8 * 1024;
/// A listpack's 6-byte header plus its end byte.
const LISTPACK_EMPTY: usize = 7;

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (`LPUSH`, `LPOP`, `LEFT`).
    Head,
    /// The tail (`RPUSH`, `RPOP`, `RIGHT`).
    Tail,
}

/// A list of byte strings.
#[derive(Debug, Clone)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
    /// The size of the contents as one listpack.
    listpack_bytes: usize,
    /// True while Redis would hold this list as a quicklist.
    quicklist: bool,
}

impl Default for List {
    fn default() -> List {
        List {
            items: VecDeque::new(),
            listpack_bytes: LISTPACK_EMPTY,
            quicklist: false,
        }
    }
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.items.get(index).map(|e| &**e)
    }

    /// The elements, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|e| &**e)
    }

    /// The elements from `start` to `end` inclusive (both in range, `start <= end`).
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> {
        self.items.range(start..=end).map(|e| &**e)
    }

    /// Pushes `elements` one by one at `end` (so `LPUSH a b` leaves `b` first).
    pub fn push<'a>(&mut self, end: End, elements: impl Iterator<Item = &'a [u8]> + Clone) {
        self.growing(elements.clone().map(<[u8]>::len).sum());
        for e in elements {
            self.listpack_bytes += listpack_entry_size(e);
            match end {
                End::Head => self.items.push_front(e.into()),
                End::Tail => self.items.push_back(e.into()),
            }
        }
    }

    /// Removes and returns the element at `end`.
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        let e = match end {
            End::Head => self.items.pop_front(),
            End::Tail => self.items.pop_back(),
        }?;
        self.listpack_bytes -= listpack_entry_size(&e);
        self.shrunk();
        Some(e)
    }

    /// Replaces the element at `index`; false if out of range. (Like Redis, the encoding is
    /// checked for the new value's size even when the index turns out to be out of range.)
    pub fn set(&mut self, index: usize, value: &[u8]) -> bool {
        self.growing(value.len());
        if index >= self.items.len() {
            return false;
        }
        if let Some(slot) = self.items.get_mut(index) {
            self.listpack_bytes =
                self.listpack_bytes - listpack_entry_size(slot) + listpack_entry_size(value);
            *slot = value.into();
        }
        self.shrunk();
        true
    }

    /// Inserts `value` before (or `after`) the first element equal to `pivot`; false if there
    /// is none. (Like Redis, the encoding is checked for the new value's size first, pivot or
    /// not.)
    pub fn insert_at_pivot(&mut self, pivot: &[u8], value: &[u8], after: bool) -> bool {
        self.growing(value.len());
        let Some(i) = self.items.iter().position(|e| **e == *pivot) else {
            return false;
        };
        self.listpack_bytes += listpack_entry_size(value);
        self.items.insert(i + usize::from(after), value.into());
        true
    }

    /// Keeps only the elements from `start` to `end` inclusive; an empty range (`start > end`)
    /// empties the list.
    pub fn trim(&mut self, start: usize, end: usize) {
        let len = self.items.len();
        if start > end || start >= len {
            self.items.clear();
        } else {
            self.items.truncate(end + 1);
            self.items.drain(..start);
        }
        self.listpack_bytes = LISTPACK_EMPTY
            + self
                .items
                .iter()
                .map(|e| listpack_entry_size(e))
                .sum::<usize>();
        self.shrunk();
    }

    /// Removes up to `limit` elements equal to `element` (all of them when `limit` is `None`),
    /// searching from `from`; returns how many were removed (`LREM`).
    pub fn remove_matching(&mut self, element: &[u8], limit: Option<usize>, from: End) -> usize {
        let total = self.items.iter().filter(|e| ***e == *element).count();
        let removing = total.min(limit.unwrap_or(usize::MAX));
        if removing == 0 {
            return 0;
        }
        // Matches are numbered from the head; the ones numbered skip+1 ..= skip+removing go.
        let skip = match from {
            End::Head => 0,
            End::Tail => total - removing,
        };
        let mut seen = 0;
        self.items.retain(|e| {
            if **e != *element {
                return true;
            }
            seen += 1;
            seen <= skip || seen > skip + removing
        });
        self.listpack_bytes -= removing * listpack_entry_size(element);
        self.shrunk();
        removing
    }

    /// What `OBJECT ENCODING` answers.
    pub fn encoding(&self) -> &'static str {
        if self.quicklist {
            "quicklist"
        } else {
            "listpack"
        }
    }

    /// Bytes used by the elements and their slots.
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<List>()
            + self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.items.iter().map(|i| i.len()).sum::<usize>()
    }

    /// Before adding elements of `raw_bytes` in total: a listpack that would pass the limit
    /// becomes a quicklist (Redis's `listTypeTryConvertListpack`).
    fn growing(&mut self, raw_bytes: usize) {
        if !self.quicklist && self.listpack_bytes.saturating_add(raw_bytes) > LISTPACK_LIMIT {
            self.quicklist = true;
        }
    }

    /// After removing elements: a quicklist at half the limit or less becomes a listpack again
    /// (Redis's `listTypeTryConvertQuicklist` when shrinking).
    fn shrunk(&mut self) {
        if self.quicklist && self.listpack_bytes <= LISTPACK_LIMIT / 2 {
            self.quicklist = false;
        }
    }
}

/// The bytes `element` takes in a listpack: its encoding, data and back-length. Strings that
/// are canonical integers are stored as integers of 1 to 9 bytes, as `lpEncodeGetType` does.
fn listpack_entry_size(element: &[u8]) -> usize {
    let encoded = match parse_integer(element) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..=4095).contains(&v) => 2,
        Some(v) if (-32768..=32767).contains(&v) => 3,
        Some(v) if (-8_388_608..=8_388_607).contains(&v) => 4,
        Some(v) if i32::try_from(v).is_ok() => 5,
        Some(_) => 9,
        None => match element.len() {
            n if n < 64 => 1 + n,
            n if n < 4096 => 2 + n,
            n => 5 + n,
        },
    };
    let backlen = match encoded {
        n if n <= 127 => 1,
        n if n < 16383 => 2,
        n if n < 2_097_151 => 3,
        n if n < 268_435_455 => 4,
        _ => 5,
    };
    encoded + backlen
}

/// Canonical decimal integers of at most 20 characters, as listpack's `lpStringToInt64`.
fn parse_integer(s: &[u8]) -> Option<i64> {
    if s.len() > 20 {
        return None;
    }
    match crate::value::StrValue::from_bytes(s) {
        crate::value::StrValue::Int(n) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(items: &[&str]) -> List {
        let mut l = List::new();
        l.push(End::Tail, items.iter().map(|s| s.as_bytes()));
        l
    }

    fn contents(l: &List) -> Vec<String> {
        l.iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }

    #[test]
    fn push_pop_both_ends() {
        let mut l = List::new();
        l.push(End::Head, [&b"a"[..], b"b"].into_iter());
        l.push(End::Tail, [&b"c"[..]].into_iter());
        assert_eq!(contents(&l), ["b", "a", "c"]);
        assert_eq!(l.pop(End::Tail).as_deref(), Some(&b"c"[..]));
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"b"[..]));
        assert_eq!(l.len(), 1);
        assert_eq!(l.listpack_bytes, LISTPACK_EMPTY + 3);
    }

    #[test]
    fn remove_matching_from_either_end() {
        let mut l = list_of(&["x", "a", "x", "b", "x"]);
        assert_eq!(l.remove_matching(b"x", Some(2), End::Tail), 2);
        assert_eq!(contents(&l), ["x", "a", "b"]);
        let mut l = list_of(&["x", "a", "x", "b", "x"]);
        assert_eq!(l.remove_matching(b"x", Some(2), End::Head), 2);
        assert_eq!(contents(&l), ["a", "b", "x"]);
        assert_eq!(l.remove_matching(b"x", None, End::Head), 1);
        assert_eq!(l.remove_matching(b"nope", None, End::Head), 0);
        assert_eq!(contents(&l), ["a", "b"]);
    }

    #[test]
    fn trim_keeps_a_range() {
        let mut l = list_of(&["a", "b", "c", "d"]);
        l.trim(1, 2);
        assert_eq!(contents(&l), ["b", "c"]);
        l.trim(1, 0);
        assert!(l.is_empty());
    }

    #[test]
    fn listpack_sizes_match_redis() {
        // Entry sizes from listpack.c: integers take 1-9 bytes, strings 1, 2 or 5 bytes of
        // header; each entry adds a back-length of 1-5 bytes.
        assert_eq!(listpack_entry_size(b"5"), 2);
        assert_eq!(listpack_entry_size(b"-1"), 3);
        assert_eq!(listpack_entry_size(b"1000000"), 5);
        assert_eq!(listpack_entry_size(b"9223372036854775807"), 10);
        assert_eq!(listpack_entry_size(b"01"), 4);
        assert_eq!(listpack_entry_size(&[b'x'; 63]), 65);
        assert_eq!(listpack_entry_size(&[b'x'; 200]), 204);
    }

    #[test]
    fn encoding_converts_both_ways_with_hysteresis() {
        let mut l = List::new();
        let big = [b'x'; 100];
        for _ in 0..79 {
            l.push(End::Tail, [&big[..]].into_iter());
        }
        // 7 + 79 * 103 = 8144 bytes; the next 100-byte element would pass 8192.
        assert_eq!(l.encoding(), "listpack");
        l.push(End::Tail, [&big[..]].into_iter());
        assert_eq!(l.encoding(), "quicklist");
        while l.listpack_bytes > 4096 + 103 {
            l.pop(End::Head);
            assert_eq!(l.encoding(), "quicklist");
        }
        l.pop(End::Head);
        assert_eq!(l.encoding(), "listpack");
        // Redis checks the size of an insertion before it looks for the pivot or the index.
        let huge = [b'y'; 9000];
        assert!(!l.insert_at_pivot(b"no such pivot", &huge, true));
        assert_eq!(l.encoding(), "quicklist");
        let mut l = List::new();
        l.push(End::Tail, [&b"a"[..]].into_iter());
        assert!(!l.set(5, &huge));
        assert_eq!(l.encoding(), "quicklist");
        assert!(l.insert_at_pivot(b"a", b"b", true) && l.get(1) == Some(&b"b"[..]));
    }
}
