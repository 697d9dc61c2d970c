//! Which shard owns a key: Redis Cluster's hash slots.
//!
//! A key's slot is CRC16(key) mod 16384, where only the part inside the first non-empty
//! `{...}` is hashed if there is one (a *hash tag*), so `{user:1}:cart` and `{user:1}:profile`
//! share a slot and therefore a shard. A table maps each slot to a shard; slots are assigned in
//! contiguous ranges, which is what later lets whole ranges move between shards or machines.

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with.
pub fn crc16(bytes: &[u8]) -> u16 {
    static TABLE: [u16; 256] = {
        let mut table = [0u16; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = (i as u16) << 8;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// The hash slot of `key`, honouring hash tags exactly as Redis Cluster does.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            // `{}` (an empty tag) does not count: the whole key is hashed.
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        },
        None => key,
    };
    crc16(hashed) & (SLOTS as u16 - 1)
}

/// The shard that owns `slot` when the slots are split evenly over `shards` (see
/// [`SlotMap::even`]); shard-side code that needs a key's owner, such as a script checking its
/// keys, uses this without a table.
pub fn even_owner(slot: usize, shards: usize) -> u16 {
    (slot * shards.max(1) / SLOTS) as u16
}

/// The owner of every slot.
#[derive(Clone, Debug)]
pub struct SlotMap {
    owner: Box<[u16]>,
}

impl SlotMap {
    /// Splits the slots into `shards` contiguous, nearly equal ranges.
    pub fn even(shards: usize) -> SlotMap {
        let shards = shards.max(1);
        let owner = (0..SLOTS).map(|slot| even_owner(slot, shards)).collect();
        SlotMap { owner }
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        usize::from(
            self.owner
                .get(usize::from(key_slot(key)))
                .copied()
                .unwrap_or(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_cluster_slots() {
        // Values from Redis Cluster's specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn ranges_are_contiguous_and_cover_every_shard() {
        let map = SlotMap::even(4);
        assert_eq!(map.owner[0], 0);
        assert_eq!(map.owner[SLOTS - 1], 3);
        assert!(map.owner.windows(2).all(|w| w[0] <= w[1]));
    }
}
