//! The openraft type configuration of every redraft group, and short names for
//! openraft's long generic ones.
//!
//! A log entry's application data is a [`Request`]: the leader's clock when it proposed
//! the write, and a [`Payload`]: a [`kv::Proposal`] in its byte encoding, or one part of a
//! large one. Applying it yields a
//! [`Response`]: the reply frame. Openraft serializes both (with its `serde` feature) when
//! they cross the network; [`Response`] goes through [`resp::Frame::to_wire`], which keeps
//! every frame variant exactly.
//!
//! Invariants: `declare_raft_types!` appears once, here; other modules name openraft types
//! through the aliases below.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use types::{NodeId, NodeInfo};

/// A write, as a log entry carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The leader's clock when it proposed the entry, Unix milliseconds. Applying uses
    /// `max(now_ms, the last applied now_ms)`, so time never goes back in apply order.
    pub now_ms: i64,
    /// What to apply.
    pub payload: Payload,
}

/// What a log entry asks the state machine to do.
///
/// A write whose encoding is larger than a part ([`crate::uploads::PART_BYTES`]) is not
/// proposed as one entry: its bytes travel as numbered `Part`s of one upload, then an
/// `Assemble` entry applies them joined, as if they had been one `Proposal`. Every log
/// entry stays small, so a 500 MB `SET` replicates as a stream of small AppendEntries
/// that other clients' writes interleave with (see [`crate::uploads`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A [`kv::Proposal`] in its byte encoding.
    Proposal(Blob),
    /// Part `seq` (from 0) of upload `upload`.
    Part { upload: u64, seq: u32, bytes: Blob },
    /// The end of upload `upload`: its `parts` parts hold `len` bytes with CRC-32 `crc`;
    /// joined, they are a [`kv::Proposal`] to apply now.
    Assemble {
        upload: u64,
        parts: u32,
        len: u64,
        crc: u32,
    },
}

impl Default for Payload {
    fn default() -> Self {
        Payload::Proposal(Blob::default())
    }
}

impl Request {
    /// A request for `proposal` stamped with `now_ms`.
    pub fn new(now_ms: i64, proposal: &kv::Proposal) -> Self {
        Request::encoded(now_ms, proposal.encode().into())
    }

    /// A request for an already encoded [`kv::Proposal`].
    pub fn encoded(now_ms: i64, proposal: Bytes) -> Self {
        Request {
            now_ms,
            payload: Payload::Proposal(Blob(proposal)),
        }
    }

    /// Roughly the bytes this request takes in a log entry.
    pub fn size(&self) -> usize {
        16 + match &self.payload {
            Payload::Proposal(b) | Payload::Part { bytes: b, .. } => b.0.len(),
            Payload::Assemble { .. } => 24,
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the contents: keys and values stay out of logs.
        match &self.payload {
            Payload::Proposal(b) => {
                write!(f, "Request(now_ms={}, {} bytes)", self.now_ms, b.0.len())
            }
            Payload::Part { upload, seq, bytes } => write!(
                f,
                "Part(now_ms={}, upload={upload:x}, seq={seq}, {} bytes)",
                self.now_ms,
                bytes.0.len()
            ),
            Payload::Assemble {
                upload, parts, len, ..
            } => write!(
                f,
                "Assemble(now_ms={}, upload={upload:x}, {parts} parts, {len} bytes)",
                self.now_ms
            ),
        }
    }
}

/// Bytes that serialize as one byte string (a length and the bytes, which postcard and
/// bincode copy in one go) rather than as a sequence of numbers, and that clone without
/// copying (a large write's parts are slices of one buffer).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Bytes);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(v.into())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BlobVisitor)
    }
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
        Ok(Blob(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
        Ok(Blob(v.into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
        // Self-describing formats (JSON) write bytes as a sequence of numbers.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Blob(bytes.into()))
    }
}

/// The reply to a write: what applying it returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Response(pub resp::Frame);

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.to_wire())
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Response;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a frame in resp's wire encoding")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Response, E> {
        resp::Frame::from_wire(v).map(Response).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Response, A::Error> {
        // Self-describing formats (JSON) write bytes as a sequence of numbers.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        self.visit_bytes(&bytes)
    }
}

openraft::declare_raft_types!(
    /// The openraft types of every redraft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = NodeInfo,
);

use openraft::type_config::alias as a;

/// A log entry.
pub type Entry = a::EntryOf<TypeConfig>;
/// A log entry's payload (blank, normal, membership).
pub type EntryPayload = a::EntryPayloadOf<TypeConfig>;
/// A log position with the leader that wrote it.
pub type LogId = a::LogIdOf<TypeConfig>;
/// A vote (term and candidate or leader).
pub type Vote = a::VoteOf<TypeConfig>;
/// A membership config with the log id that introduced it.
pub type StoredMembership = a::StoredMembershipOf<TypeConfig>;
/// A membership config.
pub type Membership = openraft::Membership<NodeId, NodeInfo>;
/// What a snapshot covers: its last log id and membership.
pub type SnapshotMeta = a::SnapshotMetaOf<TypeConfig>;
/// A snapshot's meta and its data (a file, see [`crate::state_machine`]).
pub type Snapshot = a::SnapshotOf<TypeConfig, std::fs::File>;
/// The first and last log ids of the log.
pub type LogState = openraft::storage::LogState<TypeConfig>;
/// The callback that reports an append persisted.
pub type IOFlushed = openraft::storage::IOFlushed<TypeConfig>;
/// An entry to apply, with the responder of the client waiting for it (leader only).
pub type EntryResponder = openraft::storage::EntryResponder<TypeConfig>;
/// openraft's storage error for this config.
pub type StorageError = openraft::StorageError<TypeConfig>;
/// One group's Raft instance.
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderIdExt;
    use resp::Frame;

    use super::*;

    #[test]
    fn entries_and_responses_round_trip_through_postcard() {
        let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(3, 7);
        let proposal = kv::Proposal::Command {
            args: vec!["SET".into(), "k".into(), "v".into()],
            seed: 42,
        };
        let entry = Entry::new_normal(LogId::new(leader, 9), Request::new(1_700, &proposal));
        let bytes = postcard::to_stdvec(&entry).unwrap();
        let back: Entry = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, entry);
        let EntryPayload::Normal(Request {
            payload: Payload::Proposal(bytes),
            ..
        }) = back.payload
        else {
            panic!("not a normal entry")
        };
        assert_eq!(kv::Proposal::decode(&bytes.0).unwrap(), proposal);
        // Bytes travel as one byte string: a 1 MiB part encodes in about 1 MiB.
        let part = Request {
            now_ms: 1,
            payload: Payload::Part {
                upload: 7,
                seq: 3,
                bytes: Blob(Bytes::from(vec![5u8; 1 << 20])),
            },
        };
        let bytes = postcard::to_stdvec(&part).unwrap();
        assert!(bytes.len() < (1 << 20) + 32, "{}", bytes.len());
        assert_eq!(postcard::from_bytes::<Request>(&bytes).unwrap(), part);

        let reply = Response(Frame::Array(vec![
            Frame::OK,
            Frame::Double(2.5),
            Frame::Map(vec![(Frame::bulk("a"), Frame::Null)]),
        ]));
        let bytes = postcard::to_stdvec(&reply).unwrap();
        assert_eq!(postcard::from_bytes::<Response>(&bytes).unwrap(), reply);
        assert!(postcard::from_bytes::<Response>(&[3, 99, 0, 0]).is_err());
    }

    #[test]
    fn request_display_hides_contents() {
        let r = Request::encoded(5, Bytes::from_static(b"secret"));
        assert_eq!(r.to_string(), "Request(now_ms=5, 6 bytes)");
    }
}
