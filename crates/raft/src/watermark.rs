//! The log's watermark: a small file beside the sled database that remembers, for each
//! group, the last vote and the last log index this node made durable.
//!
//! sled protects its own log with checksums, but when it finds damage (a bit flipped, a
//! file cut short, garbage near the end) it treats everything after the damage as never
//! written and opens without a word. A node would then start with fewer entries than it
//! acknowledged to its leader, and with an older vote than it granted: it could vote again
//! in a term it already voted in, or for a candidate missing entries whose commit counted
//! this node's acknowledgement. The watermark is the outside witness that catches this:
//! it is written after every successful flush of the log (so it never claims more than
//! sled made durable), and compared with what sled holds at start.
//!
//! It never claims too much: a write that is lost (a crash before it reaches the disk)
//! leaves an older watermark, which only weakens the check. A truncation of the log, which
//! lowers the flushed index legitimately, writes the lowered watermark and syncs it before
//! the log is cut.
//!
//! Format: two slots of [`SLOT`] bytes, written alternately, each `RDWM`, a `u32` version,
//! a `u64` sequence number, a `u32` length, a `u32` CRC-32 of the body, and the body
//! (postcard [`Marks`]). Reading takes the valid slot with the higher sequence number, so
//! a write torn by a crash leaves the previous one. A file with no valid slot is reported
//! as damaged, not silently ignored.
//!
//! Invariants: the file is preallocated (written with zeros) when created, so rewriting a
//! slot needs no new disk space; the writer never fails the log because of the watermark
//! (an error is logged and the next flush tries again).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::typ::Vote;
use types::{GroupId, LogIndex};

const MAGIC: &[u8; 4] = b"RDWM";
const VERSION: u32 = 1;
/// Bytes per slot: room for a few hundred groups.
pub const SLOT: usize = 64 << 10;
const HEAD: usize = 4 + 4 + 8 + 4 + 4;

/// What one group made durable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupMarks {
    /// The last vote flushed.
    pub vote: Option<Vote>,
    /// The last log index flushed (lowered by truncations).
    pub flushed: Option<LogIndex>,
    /// Set while the node is catching up after it found its log behind the watermark:
    /// the index it must hold again before it votes or campaigns. Survives restarts.
    pub floor: Option<LogIndex>,
}

/// The watermark of every group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Marks {
    pub groups: BTreeMap<GroupId, GroupMarks>,
}

/// The open watermark file.
pub struct Watermark {
    file: File,
    path: PathBuf,
    seq: u64,
}

/// What the file held when it was opened.
pub enum Found {
    /// A new file: nothing was recorded before.
    New,
    /// The newest valid slot.
    Marks(Marks),
    /// The file exists but neither slot is valid.
    Damaged(String),
}

impl Watermark {
    /// Opens (or creates, preallocated) the watermark at `path`.
    pub fn open(path: &Path) -> io::Result<(Watermark, Found)> {
        let exists = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut w = Watermark {
            file,
            path: path.to_path_buf(),
            seq: 0,
        };
        if !exists || w.file.metadata()?.len() == 0 {
            w.file.write_all_at(&vec![0u8; 2 * SLOT], 0)?;
            w.file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            return Ok((w, Found::New));
        }
        let mut buf = vec![0u8; 2 * SLOT];
        let n = read_up_to(&w.file, &mut buf)?;
        buf.truncate(n);
        let slots = [parse(&buf, 0), parse(&buf, SLOT)];
        let newest = slots
            .iter()
            .filter_map(|s| s.as_ref().ok())
            .max_by_key(|(seq, _)| *seq)
            .cloned();
        match newest {
            Some((seq, marks)) => {
                w.seq = seq;
                Ok((w, Found::Marks(marks)))
            }
            None => {
                let why = slots
                    .iter()
                    .filter_map(|s| s.as_ref().err().cloned())
                    .collect::<Vec<_>>()
                    .join("; ");
                Ok((w, Found::Damaged(why)))
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `marks` into the older slot; with `sync`, waits until it is on disk.
    pub fn write(&mut self, marks: &Marks, sync: bool) -> io::Result<()> {
        let body = postcard::to_stdvec(marks).map_err(io::Error::other)?;
        if HEAD + body.len() > SLOT {
            return Err(io::Error::other(format!(
                "watermark of {} bytes does not fit its {SLOT}-byte slot",
                body.len()
            )));
        }
        let seq = self.seq + 1;
        let mut slot = Vec::with_capacity(HEAD + body.len());
        slot.extend_from_slice(MAGIC);
        slot.extend_from_slice(&VERSION.to_le_bytes());
        slot.extend_from_slice(&seq.to_le_bytes());
        slot.extend_from_slice(&(body.len() as u32).to_le_bytes());
        slot.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        slot.extend_from_slice(&body);
        let offset = (seq % 2) * SLOT as u64;
        self.file.write_all_at(&slot, offset)?;
        if sync {
            self.file.sync_data()?;
        }
        self.seq = seq;
        Ok(())
    }
}

fn read_up_to(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The slot at `offset`: its sequence number and marks, or why it is not valid.
fn parse(buf: &[u8], offset: usize) -> Result<(u64, Marks), String> {
    let slot = buf
        .get(offset..)
        .filter(|s| s.len() >= HEAD)
        .ok_or_else(|| format!("slot at {offset} is cut short"))?;
    if &slot[..4] != MAGIC {
        return Err(format!("slot at {offset} holds no watermark"));
    }
    let word = |at: usize| u32::from_le_bytes(slot[at..at + 4].try_into().expect("4 bytes"));
    if word(4) != VERSION {
        return Err(format!("slot at {offset} is version {}", word(4)));
    }
    let seq = u64::from_le_bytes(slot[8..16].try_into().expect("8 bytes"));
    let len = word(16) as usize;
    let body = slot
        .get(HEAD..HEAD + len)
        .ok_or_else(|| format!("slot at {offset} is cut short"))?;
    if crc32fast::hash(body) != word(20) {
        return Err(format!("slot at {offset} fails its checksum"));
    }
    let marks = postcard::from_bytes(body).map_err(|e| format!("slot at {offset}: {e}"))?;
    Ok((seq, marks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(flushed: u64) -> Marks {
        let mut m = Marks::default();
        m.groups.insert(
            GroupId(1),
            GroupMarks {
                vote: None,
                flushed: Some(flushed),
                floor: None,
            },
        );
        m
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wm");
        let (mut w, found) = Watermark::open(&path).unwrap();
        assert!(matches!(found, Found::New));
        for i in 1..=5 {
            w.write(&marks(i), false).unwrap();
        }
        drop(w);
        let (_, found) = Watermark::open(&path).unwrap();
        let Found::Marks(m) = found else {
            panic!("no marks")
        };
        assert_eq!(m, marks(5));

        // A torn write of the newest slot (seq 5 is in slot 1) leaves the one before.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"garbage", SLOT as u64 + HEAD as u64)
            .unwrap();
        let (mut w, found) = Watermark::open(&path).unwrap();
        let Found::Marks(m) = found else {
            panic!("no marks")
        };
        assert_eq!(m, marks(4));
        // Writing continues after the valid one.
        w.write(&marks(9), true).unwrap();
        drop(w);
        let (_, found) = Watermark::open(&path).unwrap();
        assert!(matches!(found, Found::Marks(m) if m == marks(9)));

        // Both slots garbled: damaged, and said so.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"xx", 0).unwrap();
        file.write_all_at(b"xx", SLOT as u64).unwrap();
        let (_, found) = Watermark::open(&path).unwrap();
        assert!(matches!(found, Found::Damaged(why) if why.contains("no watermark")));
    }
}
