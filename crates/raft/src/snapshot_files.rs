//! A group's snapshot files: `<data_dir>/snapshots/group-<id>/snap-<position>.snap`.
//!
//! A file is a header (the snapshot's Raft meta and the last applied `now_ms`), the key
//! space in [`kv::Db::write_snapshot`]'s format, and (from version 2) the large writes in
//! progress ([`Uploads::write`]). The file is the unit sent to a follower: whoever
//! receives one installs exactly these bytes.
//!
//! Header: the magic `REDRAFTSNAP`, a `u32` version, a `u32` length, that many bytes of
//! postcard-encoded [`Header`], and their 64-bit FNV-1a checksum (little-endian). The key
//! space and the uploads carry checksums of their own. Version 1 files (no uploads) are
//! still read.
//!
//! Invariants:
//! - A snapshot file exists under its final name only when complete and durable: it is
//!   written to a temporary name, fsynced, renamed, and the directory fsynced. Temporary
//!   files left by a crash are removed at open.
//! - `<position>` is the last included log index plus one (0 for an empty snapshot),
//!   zero-padded so names sort as positions. The newest file is the current snapshot;
//!   only the two newest are kept.
//! - Reading a file that is corrupt (bad header, checksum, or body) is an error, never a
//!   panic or a half-loaded database.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::log_store::{decode, encode};
use crate::typ::SnapshotMeta;
use crate::uploads::Uploads;
use types::GroupId;

const MAGIC: &[u8; 11] = b"REDRAFTSNAP";
/// The version written; 1 (without the uploads section) is read too.
const VERSION: u32 = 2;
/// Largest header accepted: a membership config is a few kilobytes at most.
const MAX_HEADER: usize = 16 << 20;
/// How many snapshot files are kept.
const KEEP: usize = 2;

/// What a snapshot file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The last log id and membership the snapshot includes.
    pub meta: SnapshotMeta,
    /// The `now_ms` the last applied entry ran with (applies never go back in time).
    pub now_ms: i64,
}

/// The snapshot directory of one group. Cheap to clone; renames and deletions are
/// serialized among clones.
#[derive(Clone)]
pub struct SnapshotFiles {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Held while files are renamed into place or removed.
    lock: Mutex<()>,
    /// Makes temporary names unique within the process.
    next_tmp: AtomicU64,
}

impl SnapshotFiles {
    /// Opens (creating it if needed) the snapshot directory of `group` under `data_dir`,
    /// removing temporary files left by a crash.
    pub fn open(data_dir: &Path, group: GroupId) -> io::Result<SnapshotFiles> {
        let dir = data_dir.join("snapshots").join(format!("group-{group}"));
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().contains(".tmp") {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(SnapshotFiles {
            inner: Arc::new(Inner {
                dir,
                lock: Mutex::new(()),
                next_tmp: AtomicU64::new(0),
            }),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Writes a snapshot of `db` and `uploads` durably and returns its path. Blocking: run
    /// it on a blocking thread.
    pub fn write(&self, header: &Header, db: &kv::Db, uploads: &Uploads) -> io::Result<PathBuf> {
        let tmp = self.tmp_path();
        let result = (|| {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            write_header(&mut w, header)?;
            db.write_snapshot(&mut w)?;
            uploads.write(&mut w)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            self.publish(&tmp, position(&header.meta), false)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Installs a snapshot file received from the leader: copies it, checks that it is a
    /// whole snapshot for `meta`, and makes it the current one (newer files are removed).
    /// Returns what it holds. Blocking.
    pub fn install(&self, meta: &SnapshotMeta, data: &mut File) -> io::Result<Loaded> {
        let tmp = self.tmp_path();
        let result = (|| {
            data.rewind()?;
            let mut copy = File::create(&tmp)?;
            io::copy(
                &mut BufReader::with_capacity(1 << 20, &mut *data),
                &mut copy,
            )?;
            copy.sync_all()?;
            drop(copy);
            let loaded = load(&tmp)?;
            if &loaded.header.meta != meta {
                return Err(invalid(format!(
                    "snapshot file is for {} but was installed as {}",
                    loaded.header.meta, meta
                )));
            }
            self.publish(&tmp, position(meta), true)?;
            Ok(loaded)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// The newest snapshot file, open at its start, with its header and path, if any.
    /// The file is opened under the directory lock, so a concurrent publish cannot remove
    /// it first (an open file stays readable after it is removed).
    pub fn latest(&self) -> io::Result<Option<(Header, File, PathBuf)>> {
        let _guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some((_, path)) = self.list()?.pop() else {
            return Ok(None);
        };
        let mut file = File::open(&path)?;
        let header = read_header(&mut BufReader::new(&mut file))?;
        file.rewind()?;
        Ok(Some((header, file, path)))
    }

    /// Renames `tmp` to the name for `position`, then keeps the [`KEEP`] newest files, or
    /// (for an install) the installed one and the next older.
    fn publish(&self, tmp: &Path, position: u64, install: bool) -> io::Result<PathBuf> {
        let path = self.inner.dir.join(format!("snap-{position:020}.snap"));
        let _guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        fs::rename(tmp, &path)?;
        File::open(&self.inner.dir)?.sync_all()?;
        let mut files = self.list()?;
        if install {
            for (p, old) in &files {
                if *p > position {
                    fs::remove_file(old)?;
                }
            }
            files.retain(|(p, _)| *p <= position);
        }
        let excess = files.len().saturating_sub(KEEP);
        for (_, old) in files.drain(..excess) {
            fs::remove_file(old)?;
        }
        Ok(path)
    }

    /// Snapshot files, oldest first, by position.
    fn list(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.inner.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let pos = name
                .strip_prefix("snap-")
                .and_then(|n| n.strip_suffix(".snap"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(pos) = pos {
                files.push((pos, entry.path()));
            }
        }
        files.sort();
        Ok(files)
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.inner.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.inner
            .dir
            .join(format!("incoming-{}-{n}.tmp", std::process::id()))
    }
}

/// What a snapshot file holds.
pub struct Loaded {
    pub header: Header,
    pub db: kv::Db,
    pub uploads: Uploads,
}

/// Reads a whole snapshot file. Blocking.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let (version, header) = read_versioned_header(&mut r)?;
    let db = kv::Db::read_snapshot_prefix(&mut r).map_err(|e| match e {
        kv::SnapshotError::Io(e) => e,
        other => invalid(format!("{}: {other}", path.display())),
    })?;
    let uploads = if version >= 2 {
        Uploads::read(&mut r).map_err(|e| invalid(format!("{}: {e}", path.display())))?
    } else {
        Uploads::default()
    };
    let mut rest = [0u8; 1];
    if r.read(&mut rest)? != 0 {
        return Err(invalid(format!(
            "{}: bytes after the end of the snapshot",
            path.display()
        )));
    }
    Ok(Loaded {
        header,
        db,
        uploads,
    })
}

/// The position a snapshot file is named by: last index + 1, or 0 when empty.
fn position(meta: &SnapshotMeta) -> u64 {
    meta.last_log_id
        .as_ref()
        .map_or(0, |l| l.index.saturating_add(1))
}

fn write_header(w: &mut impl Write, header: &Header) -> io::Result<()> {
    let body = encode(header)?;
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&(body.len() as u32).to_le_bytes())?;
    w.write_all(&body)?;
    w.write_all(&fnv(&body).to_le_bytes())
}

/// Reads and checks a header, leaving `r` at the start of the key space.
pub fn read_header(r: &mut impl Read) -> io::Result<Header> {
    read_versioned_header(r).map(|(_, h)| h)
}

fn read_versioned_header(r: &mut impl Read) -> io::Result<(u32, Header)> {
    let mut magic = [0u8; 11];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("not a redraft snapshot file".into()));
    }
    let mut word = [0u8; 4];
    r.read_exact(&mut word)?;
    let version = u32::from_le_bytes(word);
    if !(1..=VERSION).contains(&version) {
        return Err(invalid(format!("unsupported snapshot version {version}")));
    }
    r.read_exact(&mut word)?;
    let len = u32::from_le_bytes(word) as usize;
    if len > MAX_HEADER {
        return Err(invalid(format!("snapshot header of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let mut sum = [0u8; 8];
    r.read_exact(&mut sum)?;
    if u64::from_le_bytes(sum) != fnv(&body) {
        return Err(invalid("snapshot header checksum mismatch".into()));
    }
    Ok((version, decode(&body)?))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
