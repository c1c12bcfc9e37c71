//! Hash slots: Redis Cluster's 16384 buckets of keys, and the function that puts a key in
//! one (CRC16-XMODEM of the key, or of its hash tag, modulo 16384: the Redis Cluster
//! specification, "Keys distribution model").

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the 16384 hash slots.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Slot(pub u16);

impl Slot {
    /// How many slots there are.
    pub const COUNT: u16 = 16384;

    /// The slot numbered `n`, if there is one.
    pub fn new(n: i64) -> Option<Slot> {
        (0..i64::from(Slot::COUNT))
            .contains(&n)
            .then_some(Slot(n as u16))
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The slot of `key`. When the key holds a `{` followed later by a `}` with at least one
/// byte between them, only the bytes between the first `{` and the first `}` after it are
/// hashed (the hash tag), so `{user1}.name` and `{user1}.mail` share a slot; `{}` or an
/// unclosed `{` leaves the whole key hashed.
pub fn key_slot(key: &[u8]) -> Slot {
    Slot(crc16(hash_tag(key)) % Slot::COUNT)
}

/// The part of `key` that decides its slot.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

/// CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection, no final xor.
fn crc16(bytes: &[u8]) -> u16 {
    static TABLE: [u16; 256] = table();
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// The byte-at-a-time table of [`crc16`], computed at compile time.
const fn table() -> [u16; 256] {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_xmodem_check_value() {
        // The catalogue's check value of CRC-16/XMODEM over "123456789"; Redis Cluster's
        // specification gives the same.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn hash_tags_follow_redis() {
        let table: &[(&[u8], &[u8])] = &[
            (b"foo", b"foo"),
            (b"{user1000}.following", b"user1000"),
            (b"{user1000}.followers", b"user1000"),
            (b"foo{}{bar}", b"foo{}{bar}"),
            (b"foo{{bar}}zap", b"{bar"),
            (b"foo{bar}{zap}", b"bar"),
            (b"{}", b"{}"),
            (b"{a", b"{a"),
            (b"a}", b"a}"),
            (b"}{a}", b"a"),
            (b"", b""),
        ];
        for &(key, tag) in table {
            assert_eq!(hash_tag(key), tag, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn known_slots() {
        // Values Redis 7.0 answers to CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), Slot(12182));
        assert_eq!(key_slot(b"bar"), Slot(5061));
        assert_eq!(key_slot(b"123456789"), Slot(0x31C3));
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
    }

    #[test]
    fn slots_equal_redis_for_the_recorded_keys() {
        // `CLUSTER KEYSLOT` of a real Redis 7.0.15 cluster for 2071 keys: the hash-tag edge
        // cases and seeded random ones (tools/record-cluster-golden).
        let table = include_str!("../../../tests/tests/it/golden/cluster/keyslot.tsv");
        let mut checked = 0;
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (hex, slot) = line.split_once('\t').expect("hex<TAB>slot");
            let key: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            assert_eq!(
                key_slot(&key),
                Slot(slot.parse().expect("slot")),
                "key {hex}"
            );
            checked += 1;
        }
        assert!(checked > 2000, "only {checked} keys in the table");
    }

    #[test]
    fn slot_numbers_are_checked() {
        assert_eq!(Slot::new(0), Some(Slot(0)));
        assert_eq!(Slot::new(16383), Some(Slot(16383)));
        assert_eq!(Slot::new(16384), None);
        assert_eq!(Slot::new(-1), None);
    }
}
