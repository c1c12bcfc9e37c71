//! The byte encoding of openraft's structs inside proto `bytes` fields.
//!
//! bincode 1 with varint integers, a size limit and no trailing bytes. Both ends must use
//! these exact options; [`encode`] and [`decode`] are the only places that name them.
//!
//! Invariants: decoding never allocates more than [`MAX_PAYLOAD`] in total for one value
//! (bincode's limit counts every byte it reads and every length it preallocates against),
//! never panics, and refuses input with bytes left over.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest encoded payload accepted or produced: 64 MiB, the size of the biggest
/// AppendEntries batch a node sends (see `PoolConfig::max_message_size`).
pub const MAX_PAYLOAD: u64 = 64 << 20;

/// A payload that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid encoding of the expected type.
    #[error("undecodable {what}: {source}")]
    Decode {
        /// Which message was being decoded.
        what: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
    /// The value could not be encoded (too large, or a type serde refuses).
    #[error("unencodable {what}: {source}")]
    Encode {
        /// Which message was being encoded.
        what: &'static str,
        /// bincode's reason.
        source: bincode::Error,
    },
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_limit(MAX_PAYLOAD)
        .reject_trailing_bytes()
}

/// Encodes `value`; `what` names it in the error.
pub fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    options()
        .serialize(value)
        .map_err(|source| CodecError::Encode { what, source })
}

/// Decodes a `T` from exactly `bytes`; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    options()
        .deserialize(bytes)
        .map_err(|source| CodecError::Decode { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v: (u64, String, Vec<u8>) = (7, "x".into(), vec![1, 2, 3]);
        let b = encode("t", &v).unwrap();
        assert_eq!(decode::<(u64, String, Vec<u8>)>("t", &b).unwrap(), v);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = encode("t", &5u64).unwrap();
        b.push(0);
        assert!(decode::<u64>("t", &b).is_err());
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> claiming u64::MAX elements: the limit stops it before any allocation.
        let mut b = vec![0xff]; // varint marker for a following u64
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<u8>>("t", &b).is_err());
        assert!(decode::<Vec<String>>("t", &[0xfc, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode::<(Vec<String>, Option<u64>, bool)>("t", &bytes);
        }
    }
}
