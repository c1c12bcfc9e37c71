//! Every conversion between proto messages ([`crate::pb`]) and domain messages
//! ([`crate::message`]), one `From`/`TryFrom` pair per message.
//!
//! Invariants: conversions from proto validate everything a handler relies on and fail with
//! a [`ConvertError`] (which becomes `INVALID_ARGUMENT`), never a panic; the debugging copies
//! (`term`, `entries`) are filled from the payload when encoding and ignored when decoding,
//! because the payload is the truth.

use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest};
use openraft::vote::{RaftLeaderId, RaftTerm, RaftVote};
use openraft::RaftTypeConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;
use types::GroupId;

use crate::codec::{decode, encode};
use crate::error::ConvertError;
use crate::message::{
    Envelope, Forward, GroupStatus, Join, Leave, NodeStatus, ReadIndex, Reply, Role,
    SnapshotHeader, VoteCall,
};
use crate::pb::{node as npb, raft as rpb};

/// Longest `host:port` accepted in a `Join`.
const MAX_ADDR_LEN: usize = 255;

fn term_of<C: RaftTypeConfig>(vote: &C::Vote) -> u64 {
    vote.leader_id().term().as_u64().unwrap_or(0)
}

// ---- Raft service ----

impl<C: RaftTypeConfig> TryFrom<Envelope<VoteCall<C>>> for rpb::VoteRequest {
    type Error = ConvertError;
    fn try_from(m: Envelope<VoteCall<C>>) -> Result<Self, ConvertError> {
        Ok(rpb::VoteRequest {
            group_id: m.group_id.0,
            target: m.target,
            term: term_of::<C>(&m.body.req.vote),
            pre_vote: m.body.pre_vote,
            payload: encode("VoteRequest", &m.body.req)?.into(),
        })
    }
}

impl<C: RaftTypeConfig> TryFrom<rpb::VoteRequest> for Envelope<VoteCall<C>> {
    type Error = ConvertError;
    fn try_from(m: rpb::VoteRequest) -> Result<Self, ConvertError> {
        Ok(Envelope {
            group_id: GroupId(m.group_id),
            target: m.target,
            body: VoteCall {
                pre_vote: m.pre_vote,
                req: decode("VoteRequest", &m.payload)?,
            },
        })
    }
}

impl<C: RaftTypeConfig> TryFrom<Envelope<AppendEntriesRequest<C>>> for rpb::AppendEntriesRequest {
    type Error = ConvertError;
    fn try_from(m: Envelope<AppendEntriesRequest<C>>) -> Result<Self, ConvertError> {
        rpb::AppendEntriesRequest::try_from(Envelope {
            group_id: m.group_id,
            target: m.target,
            body: &m.body,
        })
    }
}

impl<C: RaftTypeConfig> TryFrom<Envelope<&AppendEntriesRequest<C>>> for rpb::AppendEntriesRequest {
    type Error = ConvertError;
    fn try_from(m: Envelope<&AppendEntriesRequest<C>>) -> Result<Self, ConvertError> {
        Ok(rpb::AppendEntriesRequest {
            group_id: m.group_id.0,
            target: m.target,
            term: term_of::<C>(&m.body.vote),
            entries: m.body.entries.len() as u64,
            payload: encode("AppendEntriesRequest", m.body)?.into(),
        })
    }
}

impl<C: RaftTypeConfig> TryFrom<rpb::AppendEntriesRequest> for Envelope<AppendEntriesRequest<C>> {
    type Error = ConvertError;
    fn try_from(m: rpb::AppendEntriesRequest) -> Result<Self, ConvertError> {
        Ok(Envelope {
            group_id: GroupId(m.group_id),
            target: m.target,
            body: decode("AppendEntriesRequest", &m.payload)?,
        })
    }
}

impl<C: RaftTypeConfig> TryFrom<Envelope<TransferLeaderRequest<C>>> for rpb::TransferLeaderRequest {
    type Error = ConvertError;
    fn try_from(m: Envelope<TransferLeaderRequest<C>>) -> Result<Self, ConvertError> {
        Ok(rpb::TransferLeaderRequest {
            group_id: m.group_id.0,
            target: m.target,
            term: term_of::<C>(m.body.from_leader()),
            payload: encode("TransferLeaderRequest", &m.body)?.into(),
        })
    }
}

impl<C: RaftTypeConfig> TryFrom<rpb::TransferLeaderRequest> for Envelope<TransferLeaderRequest<C>> {
    type Error = ConvertError;
    fn try_from(m: rpb::TransferLeaderRequest) -> Result<Self, ConvertError> {
        Ok(Envelope {
            group_id: GroupId(m.group_id),
            target: m.target,
            body: decode("TransferLeaderRequest", &m.payload)?,
        })
    }
}

/// The header chunk of a snapshot transfer (its `data` is empty; data chunks follow).
impl<C: RaftTypeConfig> TryFrom<Envelope<SnapshotHeader<C>>> for rpb::SnapshotChunk {
    type Error = ConvertError;
    fn try_from(m: Envelope<SnapshotHeader<C>>) -> Result<Self, ConvertError> {
        Ok(rpb::SnapshotChunk {
            group_id: m.group_id.0,
            target: m.target,
            header: encode("SnapshotHeader", &m.body)?.into(),
            data: Default::default(),
            last: false,
        })
    }
}

/// Reads the header of a transfer's first chunk (its `data` is left to the caller).
impl<C: RaftTypeConfig> TryFrom<&rpb::SnapshotChunk> for Envelope<SnapshotHeader<C>> {
    type Error = ConvertError;
    fn try_from(m: &rpb::SnapshotChunk) -> Result<Self, ConvertError> {
        if m.header.is_empty() {
            return Err(ConvertError::invalid(
                "header",
                "the first snapshot chunk must carry the header",
            ));
        }
        Ok(Envelope {
            group_id: GroupId(m.group_id),
            target: m.target,
            body: decode("SnapshotHeader", &m.header)?,
        })
    }
}

impl<T: Serialize> TryFrom<Reply<T>> for rpb::RaftReply {
    type Error = ConvertError;
    fn try_from(r: Reply<T>) -> Result<Self, ConvertError> {
        Ok(rpb::RaftReply {
            payload: encode("RaftReply", &r.0)?.into(),
        })
    }
}

impl<T: DeserializeOwned> TryFrom<rpb::RaftReply> for Reply<T> {
    type Error = ConvertError;
    fn try_from(r: rpb::RaftReply) -> Result<Self, ConvertError> {
        Ok(Reply(decode("RaftReply", &r.payload)?))
    }
}

// ---- Node service ----

impl From<Forward> for npb::ForwardRequest {
    fn from(f: Forward) -> Self {
        npb::ForwardRequest {
            group_id: f.group_id.0,
            args: f.args,
            proto_version: f.proto_version,
            seed: f.seed,
            proposal: f.proposal,
        }
    }
}

impl TryFrom<npb::ForwardRequest> for Forward {
    type Error = ConvertError;
    fn try_from(f: npb::ForwardRequest) -> Result<Self, ConvertError> {
        if !matches!(f.proto_version, 2 | 3) {
            return Err(ConvertError::invalid(
                "proto_version",
                format!("{} is not a RESP version (2 or 3)", f.proto_version),
            ));
        }
        if f.args.is_empty() && f.proposal.is_none() {
            return Err(ConvertError::invalid(
                "args",
                "a command needs at least its name",
            ));
        }
        Ok(Forward {
            group_id: GroupId(f.group_id),
            args: f.args,
            proto_version: f.proto_version,
            seed: f.seed,
            proposal: f.proposal,
        })
    }
}

impl From<ReadIndex> for npb::ReadIndexReply {
    fn from(r: ReadIndex) -> Self {
        npb::ReadIndexReply {
            read_index: r.read_index,
            leader: r.leader,
            term: r.term,
        }
    }
}

impl From<npb::ReadIndexReply> for ReadIndex {
    fn from(r: npb::ReadIndexReply) -> Self {
        ReadIndex {
            read_index: r.read_index,
            leader: r.leader,
            term: r.term,
        }
    }
}

fn check_addr(field: &'static str, addr: &str) -> Result<(), ConvertError> {
    if addr.is_empty() || addr.len() > MAX_ADDR_LEN {
        return Err(ConvertError::invalid(
            field,
            format!("{} bytes is not a host:port", addr.len()),
        ));
    }
    // A member's record stores a hostname after a comma (see `types::NodeInfo`).
    if addr.contains(',') {
        return Err(ConvertError::invalid(field, "a host:port holds no comma"));
    }
    Ok(())
}

impl From<Join> for npb::JoinRequest {
    fn from(j: Join) -> Self {
        npb::JoinRequest {
            node_id: j.node_id,
            resp_addr: j.resp_addr,
            grpc_addr: j.grpc_addr,
            forwarded: j.forwarded,
            group_id: j.group.map(|g| g.0),
            hostname: j.hostname,
        }
    }
}

impl TryFrom<npb::JoinRequest> for Join {
    type Error = ConvertError;
    fn try_from(j: npb::JoinRequest) -> Result<Self, ConvertError> {
        check_addr("resp_addr", &j.resp_addr)?;
        check_addr("grpc_addr", &j.grpc_addr)?;
        types::check_hostname(&j.hostname).map_err(|e| ConvertError::invalid("hostname", e))?;
        Ok(Join {
            node_id: j.node_id,
            resp_addr: j.resp_addr,
            grpc_addr: j.grpc_addr,
            hostname: j.hostname,
            forwarded: j.forwarded,
            group: j.group_id.map(GroupId),
        })
    }
}

impl From<Leave> for npb::LeaveRequest {
    fn from(l: Leave) -> Self {
        npb::LeaveRequest {
            node_id: l.node_id,
            group_id: l.group.map(|g| g.0),
        }
    }
}

impl From<npb::LeaveRequest> for Leave {
    fn from(l: npb::LeaveRequest) -> Self {
        Leave {
            node_id: l.node_id,
            group: l.group_id.map(GroupId),
        }
    }
}

impl From<Role> for npb::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Leader => npb::Role::Leader,
            Role::Follower => npb::Role::Follower,
            Role::Candidate => npb::Role::Candidate,
            Role::Learner => npb::Role::Learner,
            Role::Shutdown => npb::Role::Shutdown,
        }
    }
}

impl TryFrom<npb::Role> for Role {
    type Error = ConvertError;
    fn try_from(r: npb::Role) -> Result<Self, ConvertError> {
        Ok(match r {
            npb::Role::Leader => Role::Leader,
            npb::Role::Follower => Role::Follower,
            npb::Role::Candidate => Role::Candidate,
            npb::Role::Learner => Role::Learner,
            npb::Role::Shutdown => Role::Shutdown,
            npb::Role::Unspecified => return Err(ConvertError::invalid("role", "unspecified")),
        })
    }
}

impl From<GroupStatus> for npb::GroupStatus {
    fn from(g: GroupStatus) -> Self {
        npb::GroupStatus {
            group_id: g.group_id.0,
            role: npb::Role::from(g.role).into(),
            term: g.term,
            leader: g.leader,
            commit: g.commit,
            applied: g.applied,
        }
    }
}

impl TryFrom<npb::GroupStatus> for GroupStatus {
    type Error = ConvertError;
    fn try_from(g: npb::GroupStatus) -> Result<Self, ConvertError> {
        let role = npb::Role::try_from(g.role)
            .map_err(|_| ConvertError::invalid("role", format!("unknown value {}", g.role)))?;
        Ok(GroupStatus {
            group_id: GroupId(g.group_id),
            role: role.try_into()?,
            term: g.term,
            leader: g.leader,
            commit: g.commit,
            applied: g.applied,
        })
    }
}

impl From<NodeStatus> for npb::StatusReply {
    fn from(s: NodeStatus) -> Self {
        npb::StatusReply {
            node_id: s.node_id,
            groups: s.groups.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<npb::StatusReply> for NodeStatus {
    type Error = ConvertError;
    fn try_from(s: npb::StatusReply) -> Result<Self, ConvertError> {
        Ok(NodeStatus {
            node_id: s.node_id,
            groups: s
                .groups
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn forward_round_trip_and_validation() {
        let f = Forward {
            group_id: GroupId(3),
            args: vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"v"),
            ],
            proto_version: 3,
            seed: Some(9),
            proposal: None,
        };
        let p: npb::ForwardRequest = f.clone().into();
        assert_eq!(Forward::try_from(p.clone()).unwrap(), f);
        let bad = npb::ForwardRequest {
            proto_version: 7,
            ..p.clone()
        };
        assert!(Forward::try_from(bad).is_err());
        let empty = npb::ForwardRequest { args: vec![], ..p };
        assert!(Forward::try_from(empty).is_err());
    }

    #[test]
    fn status_round_trip_and_unknown_role() {
        let s = NodeStatus {
            node_id: 1,
            groups: vec![GroupStatus {
                group_id: GroupId(0),
                role: Role::Leader,
                term: 4,
                leader: Some(1),
                commit: Some(10),
                applied: None,
            }],
        };
        let p: npb::StatusReply = s.clone().into();
        assert_eq!(NodeStatus::try_from(p.clone()).unwrap(), s);
        let mut bad = p;
        bad.groups[0].role = 99;
        assert!(NodeStatus::try_from(bad).is_err());
    }

    #[test]
    fn join_needs_addresses() {
        let j = Join {
            node_id: 2,
            resp_addr: "redraft-1:6379".into(),
            grpc_addr: "redraft-1:7379".into(),
            hostname: "redraft-1.redraft".into(),
            forwarded: true,
            group: Some(GroupId(3)),
        };
        let p: npb::JoinRequest = j.clone().into();
        assert_eq!(Join::try_from(p.clone()).unwrap(), j);
        assert!(Join::try_from(npb::JoinRequest {
            grpc_addr: String::new(),
            ..p.clone()
        })
        .is_err());
        // A comma would end the address in the stored record (see `types::NodeInfo`).
        assert!(Join::try_from(npb::JoinRequest {
            resp_addr: "redraft-1:6379,evil".into(),
            ..p.clone()
        })
        .is_err());
        assert!(Join::try_from(npb::JoinRequest {
            hostname: "a,b".into(),
            ..p
        })
        .is_err());
    }

    #[test]
    fn leave_and_read_index_round_trip() {
        for group in [Some(GroupId(2)), Some(GroupId::META), None] {
            let l = Leave { node_id: 5, group };
            assert_eq!(Leave::from(npb::LeaveRequest::from(l)), l, "{group:?}");
        }
        let r = ReadIndex {
            read_index: 42,
            leader: 1,
            term: 3,
        };
        assert_eq!(ReadIndex::from(npb::ReadIndexReply::from(r)), r);
    }
}
