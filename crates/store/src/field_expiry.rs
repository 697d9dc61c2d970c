//! The index behind active expiry of hash fields: which keys hold hashes with field TTLs, ordered
//! by the earliest field expiry of each.
//!
//! Active expiry must find the hashes with due fields without visiting every key, and must stay
//! bounded however many fields fall due at once. So each database keeps one `(earliest expiry,
//! key)` entry per hash that has field TTLs, in a B-tree: the due hashes are always at its
//! front, and each [`Hash`](crate::hash::Hash) finds its own due fields through its own TTL
//! index. Entries are exact, not lazily cleaned: the invariant is that outside a command every
//! hash with field TTLs has exactly the entry `(hash.next_expiry(), key)`. `Db::put` and
//! `Db::take` keep it for whole values; a command that changes a hash in place reports the
//! change with `Db::note_field_expiry` (the earliest expiry before and after it).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::value::Value;

/// One indexed hash: its earliest field expiry and its key. Ordered by time, then key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: u64,
    key: Box<[u8]>,
}

/// A borrowed view of a [`Due`], so that entries can be found and removed by `(time, &key)`
/// without allocating a boxed key for the lookup.
trait DueRef {
    fn parts(&self) -> (u64, &[u8]);
}

impl DueRef for Due {
    fn parts(&self) -> (u64, &[u8]) {
        (self.at, &self.key)
    }
}

impl DueRef for (u64, &[u8]) {
    fn parts(&self) -> (u64, &[u8]) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn DueRef + 'a> for Due {
    fn borrow(&self) -> &(dyn DueRef + 'a) {
        self
    }
}

// The view orders exactly as `Due`'s derived order does: time, then key bytes.
impl PartialEq for dyn DueRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn DueRef + '_ {}

impl PartialOrd for dyn DueRef + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn DueRef + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// The earliest field expiry of `value` if it is a hash with field TTLs.
pub fn next_field_expiry(value: &Value) -> Option<u64> {
    match value {
        Value::Hash(h) => h.next_expiry(),
        _ => None,
    }
}

/// Hashes with field TTLs, by earliest field expiry (see the module docs).
#[derive(Debug, Default)]
pub struct FieldExpiries {
    due: BTreeSet<Due>,
}

impl FieldExpiries {
    /// Moves `key` from its entry at `before` to one at `after` (either may be `None`: no field
    /// TTLs). Allocates only when a key enters the index.
    pub fn note(&mut self, key: &[u8], before: Option<u64>, after: Option<u64>) {
        if before == after {
            return;
        }
        if let Some(at) = before {
            self.due.remove(&(at, key) as &dyn DueRef);
        }
        if let Some(at) = after {
            self.due.insert(Due {
                at,
                key: key.into(),
            });
        }
    }

    /// Removes and returns the key with the earliest entry if that entry is `<= now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Box<[u8]>> {
        if self.due.first()?.at > now_ms {
            return None;
        }
        self.due.pop_first().map(|d| d.key)
    }

    /// Puts a key taken by [`FieldExpiries::pop_due`] back, at its new earliest expiry.
    pub fn requeue(&mut self, key: Box<[u8]>, at: u64) {
        self.due.insert(Due { at, key });
    }

    /// Number of hashes with field TTLs.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// True when no hash has field TTLs.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.due = BTreeSet::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_moves_entries_and_pop_takes_due_ones_in_order() {
        let mut f = FieldExpiries::default();
        f.note(b"a", None, Some(30));
        f.note(b"b", None, Some(10));
        f.note(b"c", None, Some(10));
        f.note(b"a", Some(30), Some(5));
        assert_eq!(f.len(), 3);
        f.note(b"c", Some(10), None);
        assert_eq!(f.len(), 2);
        // Removing an entry that is not there changes nothing.
        f.note(b"zz", Some(10), None);
        assert_eq!(f.len(), 2);
        assert_eq!(f.pop_due(4), None);
        assert_eq!(f.pop_due(100).as_deref(), Some(&b"a"[..]));
        let b = f.pop_due(100);
        assert_eq!(b.as_deref(), Some(&b"b"[..]));
        assert_eq!(f.pop_due(100), None);
        assert!(f.is_empty());
        f.requeue(b.unwrap(), 7);
        assert_eq!(f.pop_due(6), None);
        assert_eq!(f.pop_due(7).as_deref(), Some(&b"b"[..]));
    }
}
