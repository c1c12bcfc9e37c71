//! Large writes, replicated in parts.
//!
//! A write whose encoded proposal is larger than [`PART_BYTES`] is not one log entry: the
//! leader proposes its bytes as `Part`s `0..n` of a fresh upload id, then an `Assemble`
//! entry that names the upload, its part count, length and CRC-32. Every entry stays
//! small, so AppendEntries stay small: a follower receives a 500 MB `SET` as a stream of
//! 64 KiB entries within the normal RPC deadline, and other clients' writes interleave
//! with the parts instead of queueing behind one giant entry (they wait only for the
//! parts proposed before them, at most a window of them). The part size also keeps every
//! value the log writes to sled small enough never to become a sled "blob" (see
//! `log_store::SEGMENT_BYTES`).
//!
//! [`Uploads`] is the part of the replicated state that holds parts until they are
//! assembled. Like everything in a state machine it is deterministic: every replica
//! applies the same parts in the same order and reaches the same verdict.
//!
//! - Part 0 starts an upload (replacing any older one with that id); part `k` extends it
//!   only if it is the next part and arrives in the term the upload started in.
//! - An upload is dropped when an entry of a later term is applied: only the leader of
//!   that term proposes its parts, and no entry of an older term can follow one of a newer
//!   term in the log, so its `Assemble` can never come. It is also dropped after
//!   [`UPLOAD_IDLE_MS`] of entry time without a part (a leader that crashed and came back
//!   in the same term).
//! - `Assemble` takes the upload out and checks count, length and CRC. Anything missing or
//!   wrong is the deterministic reply [`LOST`]: the write was not applied anywhere, and the
//!   leader may propose it again as a new upload.
//! - Uploads in progress are part of snapshots ([`Uploads::write`]), so a follower that
//!   installs a snapshot taken between two parts assembles the same bytes as the others.
//!
//! Invariants: parts are shared byte slices (`Bytes`), so a snapshot's clone of the
//! uploads copies no data; an upload never holds more than [`MAX_UPLOAD_BYTES`].

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use bytes::Bytes;

/// Bytes per part of a large write (and the size above which a write is sent in parts).
pub const PART_BYTES: usize = 64 << 10;
/// An upload with no new part for this long (entry time) is dropped.
pub const UPLOAD_IDLE_MS: i64 = 60_000;
/// Most bytes one upload may hold: parts beyond it drop the upload.
pub const MAX_UPLOAD_BYTES: u64 = 4 << 30;
/// The reply to an `Assemble` whose parts are not all there: the write was not applied.
pub const LOST: &str =
    "ERR large write interrupted by a change of leader before it was applied (it was not applied)";

const SECTION: &[u8; 4] = b"UPLD";

/// One upload's parts so far.
#[derive(Clone, Debug, PartialEq)]
struct Upload {
    term: u64,
    parts: Vec<Bytes>,
    len: u64,
    touched_ms: i64,
}

/// The uploads in progress (see the module header).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Uploads {
    map: BTreeMap<u64, Upload>,
}

impl Uploads {
    /// True when no upload is in progress.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held by the uploads in progress.
    pub fn bytes(&self) -> u64 {
        self.map.values().map(|u| u.len).sum()
    }

    /// Before an entry of `term` is applied at `now_ms`: drops the uploads that can never
    /// complete (started in an older term) or that went idle.
    pub fn before_entry(&mut self, term: u64, now_ms: i64) {
        if self.map.is_empty() {
            return;
        }
        self.map.retain(|id, u| {
            let keep = u.term >= term && now_ms.saturating_sub(u.touched_ms) <= UPLOAD_IDLE_MS;
            if !keep {
                tracing::info!(
                    upload = format!("{id:x}"),
                    parts = u.parts.len(),
                    bytes = u.len,
                    "dropping an upload that cannot complete"
                );
            }
            keep
        });
    }

    /// Applies part `seq` of `upload`, proposed in `term`. An error (the upload is gone or
    /// the part out of order) drops the upload: its `Assemble` will reply [`LOST`].
    pub fn part(
        &mut self,
        term: u64,
        now_ms: i64,
        upload: u64,
        seq: u32,
        bytes: Bytes,
    ) -> Result<(), &'static str> {
        if seq == 0 {
            self.map.insert(
                upload,
                Upload {
                    term,
                    len: bytes.len() as u64,
                    parts: vec![bytes],
                    touched_ms: now_ms,
                },
            );
            return Ok(());
        }
        let fits = match self.map.get(&upload) {
            None => Err("no such upload"),
            Some(u) if u.term != term => Err("upload started in another term"),
            Some(u) if u.parts.len() != seq as usize => Err("part out of order"),
            Some(u) if u.len + bytes.len() as u64 > MAX_UPLOAD_BYTES => Err("upload too large"),
            Some(_) => Ok(()),
        };
        match fits {
            Ok(()) => {
                let u = self.map.get_mut(&upload).expect("checked above");
                u.len += bytes.len() as u64;
                u.parts.push(bytes);
                u.touched_ms = now_ms;
                Ok(())
            }
            Err(e) => {
                self.map.remove(&upload);
                Err(e)
            }
        }
    }

    /// Takes upload `upload` out and returns its bytes, joined, if it has exactly `parts`
    /// parts of `len` bytes in all with CRC-32 `crc`, proposed in `term`.
    pub fn assemble(
        &mut self,
        term: u64,
        upload: u64,
        parts: u32,
        len: u64,
        crc: u32,
    ) -> Result<Vec<u8>, String> {
        let u = self
            .map
            .remove(&upload)
            .ok_or_else(|| "no such upload".to_string())?;
        if u.term != term || u.parts.len() != parts as usize || u.len != len {
            return Err(format!(
                "upload has {} parts, {} bytes from term {}; expected {parts}, {len}, {term}",
                u.parts.len(),
                u.len,
                u.term
            ));
        }
        let mut joined = Vec::with_capacity(len as usize);
        for p in &u.parts {
            joined.extend_from_slice(p);
        }
        if crc32fast::hash(&joined) != crc {
            return Err("upload fails its checksum".into());
        }
        Ok(joined)
    }

    /// Writes the uploads as a snapshot section: `UPLD`, a `u32` count, each upload (`u64`
    /// id, `u64` term, `i64` last touched, `u32` parts, each part a `u32` length and its
    /// bytes), then the section's CRC-32.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let mut w = Crc::new(w);
        w.put(SECTION)?;
        w.put(&(self.map.len() as u32).to_le_bytes())?;
        for (id, u) in &self.map {
            w.put(&id.to_le_bytes())?;
            w.put(&u.term.to_le_bytes())?;
            w.put(&u.touched_ms.to_le_bytes())?;
            w.put(&(u.parts.len() as u32).to_le_bytes())?;
            for p in &u.parts {
                w.put(&(p.len() as u32).to_le_bytes())?;
                w.put(p)?;
            }
        }
        let sum = w.hasher.clone().finalize();
        w.inner.write_all(&sum.to_le_bytes())
    }

    /// Reads what [`Uploads::write`] wrote. Corrupt input is an `InvalidData` error.
    pub fn read(r: &mut impl Read) -> io::Result<Uploads> {
        let mut r = Crc::new(r);
        if &r.array::<4>()? != SECTION {
            return Err(invalid("snapshot has no uploads section"));
        }
        let count = u32::from_le_bytes(r.array()?);
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let id = u64::from_le_bytes(r.array()?);
            let term = u64::from_le_bytes(r.array()?);
            let touched_ms = i64::from_le_bytes(r.array()?);
            let n = u32::from_le_bytes(r.array()?);
            let mut parts = Vec::new();
            let mut len = 0u64;
            for _ in 0..n {
                let plen = u32::from_le_bytes(r.array()?) as u64;
                len += plen;
                if len > MAX_UPLOAD_BYTES {
                    return Err(invalid("snapshot upload larger than the limit"));
                }
                let mut buf = Vec::new();
                (&mut r.inner).take(plen).read_to_end(&mut buf)?;
                if buf.len() as u64 != plen {
                    return Err(invalid("snapshot upload cut short"));
                }
                r.hasher.update(&buf);
                parts.push(Bytes::from(buf));
            }
            map.insert(
                id,
                Upload {
                    term,
                    parts,
                    len,
                    touched_ms,
                },
            );
        }
        let want = r.hasher.clone().finalize();
        let mut sum = [0u8; 4];
        r.inner.read_exact(&mut sum)?;
        if u32::from_le_bytes(sum) != want {
            return Err(invalid("snapshot uploads section fails its checksum"));
        }
        Ok(Uploads { map })
    }
}

/// The parts of an encoded proposal: slices of at most [`PART_BYTES`], sharing its buffer.
pub fn split(encoded: &Bytes) -> Vec<Bytes> {
    (0..encoded.len())
        .step_by(PART_BYTES)
        .map(|at| encoded.slice(at..(at + PART_BYTES).min(encoded.len())))
        .collect()
}

/// A reader or writer that keeps a CRC-32 of what goes through it.
struct Crc<T> {
    inner: T,
    hasher: crc32fast::Hasher,
}

impl<T> Crc<T> {
    fn new(inner: T) -> Self {
        Crc {
            inner,
            hasher: crc32fast::Hasher::new(),
        }
    }
}

impl<W: Write> Crc<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.hasher.update(b);
        self.inner.write_all(b)
    }
}

impl<R: Read> Crc<R> {
    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut a = [0u8; N];
        self.inner.read_exact(&mut a)?;
        self.hasher.update(&a);
        Ok(a)
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Bytes {
        (0..n)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn parts_assemble_into_the_original() {
        let bytes = data(PART_BYTES * 2 + 17);
        let parts = split(&bytes);
        assert_eq!(parts.len(), 3);
        let mut u = Uploads::default();
        for (i, p) in parts.iter().enumerate() {
            u.part(4, 100, 9, i as u32, p.clone()).unwrap();
        }
        let crc = crc32fast::hash(&bytes);
        let joined = u.assemble(4, 9, 3, bytes.len() as u64, crc).unwrap();
        assert_eq!(joined, bytes);
        assert!(u.is_empty());
        // Assembled once: a second Assemble finds nothing.
        assert!(u.assemble(4, 9, 3, bytes.len() as u64, crc).is_err());
    }

    #[test]
    fn a_later_term_or_idleness_drops_an_upload() {
        let mut u = Uploads::default();
        u.part(4, 100, 1, 0, data(10)).unwrap();
        u.part(4, 100, 2, 0, data(10)).unwrap();
        u.before_entry(4, 200);
        assert_eq!(u.map.len(), 2);
        u.before_entry(5, 200);
        assert!(
            u.is_empty(),
            "uploads of term 4 cannot complete once term 5 applies"
        );

        u.part(5, 1_000, 3, 0, data(10)).unwrap();
        u.before_entry(5, 1_000 + UPLOAD_IDLE_MS);
        assert!(!u.is_empty());
        u.before_entry(5, 1_001 + UPLOAD_IDLE_MS);
        assert!(u.is_empty());
    }

    #[test]
    fn out_of_order_or_foreign_parts_lose_the_upload() {
        let mut u = Uploads::default();
        u.part(4, 0, 1, 0, data(10)).unwrap();
        assert!(u.part(4, 0, 1, 2, data(10)).is_err());
        assert!(u.assemble(4, 1, 1, 10, 0).is_err());
        u.part(4, 0, 1, 0, data(10)).unwrap();
        assert!(u.part(5, 0, 1, 1, data(10)).is_err());
        assert!(u.part(4, 0, 7, 1, data(10)).is_err());
        // A checksum that does not match.
        u.part(4, 0, 2, 0, data(10)).unwrap();
        assert!(u.assemble(4, 2, 1, 10, 12345).is_err());
    }

    #[test]
    fn uploads_round_trip_through_a_snapshot_section() {
        let mut u = Uploads::default();
        u.part(3, 50, 1, 0, data(100)).unwrap();
        u.part(3, 60, 1, 1, data(7)).unwrap();
        u.part(3, 70, 8, 0, Bytes::new()).unwrap();
        let mut out = Vec::new();
        u.write(&mut out).unwrap();
        let back = Uploads::read(&mut out.as_slice()).unwrap();
        assert_eq!(back, u);
        let mut empty = Vec::new();
        Uploads::default().write(&mut empty).unwrap();
        assert!(Uploads::read(&mut empty.as_slice()).unwrap().is_empty());
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            assert!(Uploads::read(&mut bad.as_slice()).is_err(), "byte {i}");
        }
        assert!(Uploads::read(&mut &out[..out.len() - 1]).is_err());
    }
}
