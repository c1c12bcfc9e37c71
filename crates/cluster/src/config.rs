//! What a node is started with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use types::NodeId;

/// Default number of applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_LOGS: u64 = 20_000;

/// How reads are served (see the crate header); `--read-consistency` and the TOML file
/// name them in lower case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// The leader confirms it still leads (ReadIndex) before reading.
    #[default]
    Linearizable,
    /// The leader reads while its lease holds, without a round trip. Stale only if clocks
    /// drift more than the lease allows.
    Lease,
    /// Any node reads its own state: fast, and may return old data.
    Stale,
}

impl ReadMode {
    /// Every mode's name, as the command line takes it.
    pub const NAMES: [&'static str; 3] = ["linearizable", "lease", "stale"];

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Linearizable => "linearizable",
            ReadMode::Lease => "lease",
            ReadMode::Stale => "stale",
        }
    }
}

impl std::str::FromStr for ReadMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown read consistency '{s}' (one of {})",
                    Self::NAMES.join(", ")
                )
            })
    }
}

/// What a node needs to take part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node_id: NodeId,
    /// `ip:port` the gRPC server listens on.
    pub grpc_listen: String,
    /// `host:port` peers reach this node's gRPC server at.
    pub advertise: String,
    /// `host:port` clients reach this node's RESP server at.
    pub resp_addr: String,
    /// The hostname announced to clients besides the address (`--announce-hostname`);
    /// empty: none.
    pub hostname: String,
    /// Founding members (id → gRPC `host:port`); empty for a one-member cluster.
    pub members: BTreeMap<NodeId, String>,
    /// A member's gRPC address to ask for admission (a node added to a running cluster).
    pub join: Option<String>,
    pub data_dir: PathBuf,
    pub read_mode: ReadMode,
    /// Applied entries between snapshots.
    pub snapshot_logs: u64,
    /// Leader heartbeat, milliseconds; elections start after 3-6 heartbeats of silence.
    pub heartbeat_ms: u64,
    /// UNSAFE: serve every read from this node's own state, with no ReadIndex and no
    /// lease, whatever `read_mode` says. Only for proving that the fault-injection suite
    /// catches stale reads; never in production.
    pub unsafe_local_reads: bool,
    /// UNSAFE: skip the log's checksums and its comparison with the watermark at start, so
    /// a damaged log loses acknowledged writes silently. Only for proving that the
    /// damaged-log tests catch that; never in production.
    pub unsafe_skip_log_checks: bool,
    /// UNSAFE: each replica applies writes with its own clock instead of the entry's time,
    /// so replicas compute different expiry times and diverge. Only for proving that the
    /// fault-injection suite's replica checks catch that; never in production.
    pub unsafe_local_clock: bool,
    /// UNSAFE: slot moves copy the source's keys while it still takes writes, and the
    /// source deletes its keys at the release (the bug of the systems the design card
    /// names). Only for proving that the fault-injection suite catches lost writes in a
    /// move; never in production.
    pub unsafe_move_without_freeze: bool,
    /// Largest write (its encoded proposal) accepted; larger ones are refused before
    /// anything is proposed.
    pub max_request_bytes: usize,
    /// Data groups the 16384 slots are spread over (fixed when the cluster is founded).
    pub raft_groups: u32,
    /// Longest a command for a slot being moved is held before it is answered
    /// `-TRYAGAIN` (see `migrate`).
    pub slot_move_wait: std::time::Duration,
    /// The cluster secret: every call to a peer carries it, and the gRPC server refuses
    /// calls without it (`rpc::secret`). `None`: calls are taken from anyone who reaches
    /// the port.
    pub peer_secret: Option<rpc::PeerSecret>,
    /// Mutual TLS with peers (`rpc::tls`): the gRPC server takes calls only from peers
    /// whose certificate chains to the CA and names a member; calls to peers go over TLS.
    /// `None`: plain TCP.
    pub peer_tls: Option<rpc::PeerTls>,
    /// Links a test has cut between the nodes of an in-process cluster: the gRPC server
    /// refuses calls over them. `None` in production.
    pub links: Option<rpc::Links>,
}

/// Default [`ClusterConfig::slot_move_wait`].
pub const DEFAULT_SLOT_MOVE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Default [`ClusterConfig::raft_groups`].
pub const DEFAULT_RAFT_GROUPS: u32 = 16;

/// Data groups a heartbeat of `heartbeat_ms` can carry. Every group runs its own openraft
/// core (a 10 ms tick and its heartbeats; openraft does not batch heartbeats of several
/// groups), so the cost grows with the groups and shrinks with the heartbeat. Measured on
/// a 2-core machine with three nodes: 16 groups idle at about 0.05 core per node, 64 at
/// 0.14, and 256 at a 50 ms heartbeat miss heartbeats and churn elections. Two groups per
/// millisecond of heartbeat (100 at 50 ms) keeps well below that; one slot per group at
/// most.
pub fn max_raft_groups(heartbeat_ms: u64) -> u32 {
    (heartbeat_ms.saturating_mul(2)).clamp(1, types::Slot::COUNT as u64) as u32
}

/// Checks `--raft-groups` against the heartbeat (see [`max_raft_groups`]).
pub fn check_raft_groups(groups: u32, heartbeat_ms: u64) -> Result<(), String> {
    let max = max_raft_groups(heartbeat_ms);
    if groups == 0 {
        return Err("raft-groups must be at least 1".into());
    }
    if groups > max {
        return Err(format!(
            "raft-groups {groups} is more than a {heartbeat_ms} ms heartbeat can carry (at \
             most {max}: every group sends its own heartbeats, and too many groups miss them \
             and churn elections); use fewer groups or a longer heartbeat-ms"
        ));
    }
    Ok(())
}

/// Default [`ClusterConfig::max_request_bytes`]: 600 MiB, room for one value of Redis's
/// largest bulk string (`proto-max-bulk-len`, 512 MB) with its command around it.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 600 << 20;
