//! What goes wrong, typed: why a node could not start ([`StartError`]) and why a request
//! got no reply of its own from a state machine ([`Error`]). [`Error::to_frame`] is the
//! one place such an error becomes a client's reply; openraft's and gRPC's errors are
//! matched by their types where they arise (`route`, `write`), never by their text.

use resp::Frame;
use tonic::{Code, Status};
use types::NodeId;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Storage(#[from] raft::Error),
    /// The log holds less than this node had flushed, and no other member can bring it
    /// back.
    #[error("{0}")]
    Behind(String),
    /// The data directory was written for another number of data groups.
    #[error("{0}")]
    Layout(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
}

/// What a client is told instead of a state machine's reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No leader of the group could be found in time (`NO_LEADER_WAIT`).
    #[error("CLUSTERDOWN The cluster is down")]
    ClusterDown,
    /// A write that may or may not have been applied (why, in words); it is never
    /// proposed again.
    #[error("ERR write outcome unknown: {0}")]
    UnknownOutcome(String),
    /// This node's log cannot write (a full disk, a failed write): as Redis answers when
    /// it cannot write its AOF.
    #[error("MISCONF Errors writing to the Raft log: {0}")]
    LogCannotWrite(String),
    /// A write larger than `max-request-bytes`, refused before anything was proposed.
    #[error("ERR write of {size} bytes exceeds max-request-bytes ({max})")]
    TooLarge { size: usize, max: usize },
    /// A request only the leader serves, sent elsewhere.
    #[error("ERR not the leader; {}", leader.map_or("no leader is known".to_string(), |l| format!("node {l} leads")))]
    NotLeader { leader: Option<NodeId> },
    /// A joining node that has not caught up with the leader's log yet: it stays a
    /// learner, and asks again.
    #[error("ERR node {node} is still catching up (it has the log up to {}, the leader {target}); it stays a learner until it has", matched.map_or("nothing".to_string(), |i| i.to_string()))]
    NotCaughtUp {
        node: NodeId,
        matched: Option<u64>,
        target: u64,
    },
    /// A node the group does not know.
    #[error("ERR Unknown node {0}")]
    UnknownNode(NodeId),
    /// A peer's refusal or a failed call to a peer: its gRPC code and words.
    #[error("ERR {1}")]
    Peer(Code, String),
    /// Anything else, in words (a refused membership change, a failed proposal).
    #[error("ERR {0}")]
    Failed(String),
}

/// Why the outcome of a write appended and then discarded on a change of leader is unknown.
pub(crate) const LEADER_CHANGED: &str =
    "leadership changed while it was pending (it may or may not have been applied)";

impl Error {
    /// The reply a client gets: Redis's code, then the text on one line.
    pub fn to_frame(&self) -> Frame {
        Frame::error(self.to_string().replace(['\r', '\n'], " "))
    }

    /// A peer's refusal, as a gRPC status a node sends back (see [`Error::from_status`]).
    pub(crate) fn to_status(&self) -> Status {
        let code = match self {
            Error::NotLeader { .. } => Code::FailedPrecondition,
            Error::UnknownNode(_) => Code::NotFound,
            Error::ClusterDown | Error::NotCaughtUp { .. } => Code::Unavailable,
            Error::Peer(code, _) => *code,
            _ => Code::Internal,
        };
        let text = self.to_string();
        let detail = text.strip_prefix("ERR ").unwrap_or(&text);
        Status::new(code, detail.replace(['\r', '\n'], " "))
    }

    /// What a failed call to a peer means for the client: the peer's own words and code
    /// for a refusal (see [`Error::to_status`]), or the failure of the call.
    pub(crate) fn from_status(status: &Status) -> Error {
        Error::Peer(status.code(), status.message().replace(['\r', '\n'], " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_redis_codes() {
        assert_eq!(
            Error::ClusterDown.to_frame(),
            Frame::error("CLUSTERDOWN The cluster is down")
        );
        assert_eq!(
            Error::TooLarge { size: 10, max: 5 }.to_frame(),
            Frame::error("ERR write of 10 bytes exceeds max-request-bytes (5)")
        );
        assert_eq!(
            Error::NotLeader { leader: Some(2) }.to_frame(),
            Frame::error("ERR not the leader; node 2 leads")
        );
        assert_eq!(
            Error::LogCannotWrite("disk\r\nfull".into()).to_frame(),
            Frame::error("MISCONF Errors writing to the Raft log: disk  full")
        );
    }

    #[test]
    fn a_refusal_crosses_a_peer_unchanged() {
        for refused in [
            Error::UnknownNode(7),
            Error::NotCaughtUp {
                node: 9,
                matched: None,
                target: 3,
            },
        ] {
            let status = refused.to_status();
            let relayed = Error::from_status(&status);
            assert_eq!(relayed.to_frame(), refused.to_frame());
            assert_eq!(relayed.to_status().code(), status.code());
        }
        assert_eq!(Error::UnknownNode(7).to_status().code(), Code::NotFound);
    }
}
