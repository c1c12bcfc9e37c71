//! [`CompactBytes`]: the byte string keys, string values and collection members are
//! stored as. Up to 22 bytes live inline (no allocation), longer ones in one
//! reference-counted slice; either way the value is 24 bytes. Most keys and many values
//! are short, and the memory bar (at most 1.5 × Redis for a million small keys) depends on
//! this.
//!
//! A byte string never changes once made, so a clone of a long one shares its bytes (a
//! count increment) instead of copying them. That keeps whole-database clones cheap:
//! a snapshot clones the `Db` under the lock, and with a million 100-byte values that
//! pause went from about 180 ms (a copy per value) to about 65 ms. The price is 16 bytes
//! of counts per long string.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

const INLINE: usize = 22;

/// An immutable byte string, inline when short.
#[derive(Clone)]
pub enum CompactBytes {
    Inline {
        len: u8,
        data: [u8; INLINE],
    },
    Heap(Arc<[u8]>),
    /// A string value built in place by `APPEND` or `SETRANGE`: Redis reports these as
    /// the `raw` encoding whatever their length, so the variant keeps that fact.
    Raw(Arc<[u8]>),
    /// A short string value Redis keeps as `embstr` even if it looks like an integer
    /// (the result of `INCRBYFLOAT`).
    Text {
        len: u8,
        data: [u8; INLINE],
    },
}

impl CompactBytes {
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..bytes.len()].copy_from_slice(bytes);
            CompactBytes::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            CompactBytes::Heap(bytes.into())
        }
    }

    /// A string value as `APPEND`/`SETRANGE` leave it (the `raw` encoding).
    pub fn raw(bytes: Vec<u8>) -> Self {
        CompactBytes::Raw(bytes.into())
    }

    /// A string value that reports `embstr` whatever it holds (`INCRBYFLOAT`'s result).
    pub fn text(bytes: &[u8]) -> Self {
        match CompactBytes::new(bytes) {
            CompactBytes::Inline { len, data } => CompactBytes::Text { len, data },
            other => other,
        }
    }

    /// True for a short value made by [`CompactBytes::text`].
    pub fn is_text(&self) -> bool {
        matches!(self, CompactBytes::Text { .. })
    }

    /// The same bytes in a heap allocation of their own: marks a copy Redis would not
    /// share (`COPY` of a small integer), which `OBJECT REFCOUNT` reports as 1.
    pub fn unshared(&self) -> Self {
        match self {
            CompactBytes::Inline { .. } => CompactBytes::Heap(self.as_slice().into()),
            other => other.clone(),
        }
    }

    /// True for a value stored inline ([`CompactBytes::new`] of at most 22 bytes).
    pub fn is_inline(&self) -> bool {
        matches!(self, CompactBytes::Inline { .. })
    }

    /// True for a value built by `APPEND`/`SETRANGE`.
    pub fn is_raw(&self) -> bool {
        matches!(self, CompactBytes::Raw(_))
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, data } | CompactBytes::Text { len, data } => {
                &data[..*len as usize]
            }
            CompactBytes::Heap(b) | CompactBytes::Raw(b) => b,
        }
    }

    /// Bytes on the heap beyond the 24 bytes of the value itself (the two reference
    /// counts included; shared bytes are counted by every holder).
    pub fn heap_size(&self) -> usize {
        match self {
            CompactBytes::Inline { .. } | CompactBytes::Text { .. } => 0,
            CompactBytes::Heap(b) | CompactBytes::Raw(b) => {
                b.len() + 2 * std::mem::size_of::<usize>()
            }
        }
    }
}

impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> Self {
        CompactBytes::new(b)
    }
}

impl From<Vec<u8>> for CompactBytes {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            CompactBytes::new(&v)
        } else {
            CompactBytes::Heap(Arc::from(v))
        }
    }
}

impl From<&bytes::Bytes> for CompactBytes {
    fn from(b: &bytes::Bytes) -> Self {
        CompactBytes::new(b)
    }
}

impl Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for CompactBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for CompactBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for CompactBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for CompactBytes {}

impl PartialOrd for CompactBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CompactBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for CompactBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[u8]` does, so lookups by `&[u8]` find the entry.
        self.as_slice().hash(state)
    }
}

impl std::fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        let s = CompactBytes::new(b"hello");
        assert!(matches!(s, CompactBytes::Inline { .. }));
        assert_eq!(&*s, b"hello");
        let l = CompactBytes::new(&[7u8; 23]);
        assert!(matches!(l, CompactBytes::Heap(_)));
        assert_eq!(l.len(), 23);
        assert_eq!(CompactBytes::new(b""), CompactBytes::from(Vec::new()));
    }
}
