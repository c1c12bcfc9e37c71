//! The names of redraft's domain, once, for every crate: which node, which group, which
//! log position, which hash slot and which version of its ownership, how to reach a node,
//! and how a key maps to its slot.
//!
//! This crate sits below every other one and depends on nothing but `serde`, so storage,
//! network and routing code can share these types without depending on each other.
//! `NodeId` and `LogIndex` are plain aliases because openraft works with `u64` directly;
//! `GroupId`, `Slot` and `Epoch` are newtypes, so one can never be passed for another.

mod slot;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use slot::{key_slot, Slot};

/// A node of the cluster (openraft's `NodeId`).
pub type NodeId = u64;

/// Node `id`'s name in the Redis Cluster protocol (`CLUSTER NODES`, `MYID`, `SLOTS`): 40
/// hex digits, as Redis's node ids are, derived from the numeric id so that every node
/// names every other the same way and a name never changes: node 1 is
/// `0000000000000000000000000000000000000001`.
pub fn node_name(id: NodeId) -> String {
    format!("{id:040x}")
}

/// A position in a group's Raft log.
pub type LogIndex = u64;

/// A Raft group: group 0 is the meta group, the others own slot ranges.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct GroupId(pub u64);

impl GroupId {
    /// The meta group, which holds the cluster map.
    pub const META: GroupId = GroupId(0);
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for GroupId {
    fn from(id: u64) -> Self {
        GroupId(id)
    }
}

/// The version of a slot's ownership: it grows by one each time the slot changes group.
/// A write routed with an older epoch than the owning group's is refused.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How to reach a node, as a group's Raft membership records it: its RESP address for
/// clients (`MOVED`), its gRPC address for peers, and the hostname it announces to clients
/// (empty if none; Redis's `cluster-announce-hostname`).
///
/// Stored form: the records live in Raft logs and snapshots written before the hostname
/// existed, as two postcard strings. To read those unchanged, a record is still stored as
/// two strings, the hostname riding after a comma at the end of the RESP address
/// (`10.0.0.5:6379,redraft-0.redraft`, as Redis's `nodes.conf` writes it); neither an
/// address nor a hostname can hold a comma.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredNodeInfo", into = "StoredNodeInfo")]
pub struct NodeInfo {
    pub resp_addr: String,
    pub grpc_addr: String,
    pub hostname: String,
}

/// [`NodeInfo`] as stored (see there).
#[derive(Clone, Serialize, Deserialize)]
struct StoredNodeInfo {
    resp_addr: String,
    grpc_addr: String,
}

impl From<StoredNodeInfo> for NodeInfo {
    fn from(stored: StoredNodeInfo) -> Self {
        let (resp_addr, hostname) = match stored.resp_addr.split_once(',') {
            Some((addr, hostname)) => (addr.to_string(), hostname.to_string()),
            None => (stored.resp_addr, String::new()),
        };
        NodeInfo {
            resp_addr,
            grpc_addr: stored.grpc_addr,
            hostname,
        }
    }
}

impl From<NodeInfo> for StoredNodeInfo {
    fn from(info: NodeInfo) -> Self {
        let resp_addr = if info.hostname.is_empty() {
            info.resp_addr
        } else {
            format!("{},{}", info.resp_addr, info.hostname)
        };
        StoredNodeInfo {
            resp_addr,
            grpc_addr: info.grpc_addr,
        }
    }
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resp={} grpc={}", self.resp_addr, self.grpc_addr)?;
        if !self.hostname.is_empty() {
            write!(f, " hostname={}", self.hostname)?;
        }
        Ok(())
    }
}

/// Why `name` cannot be announced as a hostname, if it cannot: Redis's rule (letters,
/// digits, hyphens and dots, under 256 characters), which also keeps the comma of the
/// stored form (see [`NodeInfo`]) out.
pub fn check_hostname(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("Hostnames must be less than 256 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(hostname: &str) -> NodeInfo {
        NodeInfo {
            resp_addr: "10.0.0.5:6379".into(),
            grpc_addr: "10.0.0.5:7379".into(),
            hostname: hostname.into(),
        }
    }

    #[test]
    fn a_record_written_before_hostnames_reads_with_none() {
        #[derive(Serialize)]
        struct Before {
            resp_addr: String,
            grpc_addr: String,
        }
        let old = postcard::to_stdvec(&Before {
            resp_addr: "10.0.0.5:6379".into(),
            grpc_addr: "10.0.0.5:7379".into(),
        })
        .unwrap();
        let read: NodeInfo = postcard::from_bytes(&old).unwrap();
        assert_eq!(read, info(""));
        // Without a hostname the bytes are exactly the old ones.
        assert_eq!(postcard::to_stdvec(&info("")).unwrap(), old);
    }

    #[test]
    fn a_hostname_survives_the_stored_form() {
        let with = info("redraft-0.redraft.default.svc");
        let bytes = postcard::to_stdvec(&with).unwrap();
        assert_eq!(postcard::from_bytes::<NodeInfo>(&bytes).unwrap(), with);
        assert_eq!(
            with.to_string(),
            "resp=10.0.0.5:6379 grpc=10.0.0.5:7379 hostname=redraft-0.redraft.default.svc"
        );
    }

    #[test]
    fn hostnames_follow_redis_rules() {
        assert!(check_hostname("redraft-0.redraft.default.svc.cluster.local").is_ok());
        assert!(check_hostname("").is_ok());
        assert_eq!(
            check_hostname("a,b").unwrap_err(),
            "Hostnames may only contain alphanumeric characters, hyphens or dots"
        );
        assert_eq!(
            check_hostname(&"x".repeat(256)).unwrap_err(),
            "Hostnames must be less than 256 characters"
        );
        assert!(check_hostname(&"x".repeat(255)).is_ok());
    }
}
