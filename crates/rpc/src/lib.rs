//! gRPC between redraft nodes: the services of `proto/` (compiled by `build.rs`), an
//! openraft network over them, and the pool of peer connections.
//!
//! - [`server::RaftService`] serves the Raft RPCs of every group in a
//!   [`registry::GroupRegistry`]; [`server::NodeService`] serves forwarding, read index,
//!   membership and status through a [`server::NodeHandler`].
//! - [`network::GrpcNetworkFactory`] is the `RaftNetworkFactory` of one group; every group
//!   shares one [`pool::PeerPool`], which keeps one HTTP/2 channel per peer.
//! - [`secret`]: the cluster secret every call to a peer carries, and the [`secret::Gate`]
//!   a server checks each call with before any handler (the secret, and in tests
//!   [`links`], links a test cut between the nodes of an in-process cluster).
//! - [`tls`]: mutual TLS between nodes, and the [`tls::Identities`] layer that checks a
//!   caller's certificate names a member.
//! - [`convert`] holds every proto ⇄ domain conversion, [`codec`] the byte encoding of
//!   openraft's structs inside proto `bytes` fields.
//!
//! Invariants: nothing a peer sends can panic this crate; it becomes a gRPC status
//! (`NOT_FOUND`, `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `UNAVAILABLE`). All nodes of a
//! cluster run the same openraft version (its structs are the payload encoding).

pub mod codec;
pub mod convert;
pub mod error;
pub mod links;
pub mod message;
pub mod network;
pub mod pool;
pub mod registry;
pub mod secret;
pub mod server;
pub mod tls;

/// Generated proto code.
pub mod pb {
    /// `proto/raft.proto`.
    #[allow(missing_docs, clippy::all)]
    pub mod raft {
        tonic::include_proto!("redraft.raft.v1");
    }
    /// `proto/node.proto`.
    #[allow(missing_docs, clippy::all)]
    pub mod node {
        tonic::include_proto!("redraft.node.v1");
    }
}

/// Largest snapshot data chunk sent or accepted: 1 MiB.
pub const MAX_CHUNK: usize = 1 << 20;

/// Largest term a peer may name. A group that elected a leader every millisecond would take
/// 8,900 years to get there; a term near `u64::MAX` can only come from a forged or corrupt
/// message, and openraft panics on a vote whose term it cannot increment (after saving it,
/// so the node would panic again at every restart).
pub const MAX_TERM: u64 = 1 << 48;

/// Largest log index a peer may name (a million entries a second for 9,000 years).
pub const MAX_INDEX: u64 = 1 << 48;

pub use error::{ConvertError, PoolError};
pub use links::Links;
pub use message::{Envelope, Forward, GroupStatus, Join, Leave, NodeStatus, ReadIndex, Role};
pub use network::{GrpcAddr, GrpcNetwork, GrpcNetworkFactory};
pub use pool::{never_sent, NodePeer, PeerPool, PoolConfig};
pub use registry::{GroupRegistry, Groups};
pub use secret::{Gate, PeerChannel, PeerSecret};
pub use server::{NodeHandler, NodeService, RaftService, DEFAULT_MAX_SNAPSHOT};
pub use tls::PeerTls;
