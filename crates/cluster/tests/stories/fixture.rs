//! Several `cluster::Node`s in one process, on loopback addresses of their own
//! (`127.8.<story>.<node id>`), joined by a network the test controls ([`rpc::Links`]: a cut
//! link fails every call over it, both ways). No RESP server: a story calls the nodes'
//! routing, write and status paths directly.
//!
//! Every wait is for a state (a leader every node names, replicas that have applied the
//! same index), bounded by [`PATIENCE`] only so that a broken build fails instead of
//! hanging; no step waits for a length of time and then assumes something happened.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{ClusterConfig, Error, Node, ReadMode};
use resp::Frame;
use types::{GroupId, NodeId, NodeInfo, Slot};

/// Longest any wait for a state may take before the story fails.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// Heartbeat of the fixture's groups: elections after 150-300 ms of silence.
const HEARTBEAT_MS: u64 = 50;
const GRPC_PORT: u16 = 7380;

/// A running in-process cluster.
pub struct Fixture {
    pub nodes: BTreeMap<NodeId, Arc<Node>>,
    pub links: rpc::Links,
    story: u8,
    _dir: tempfile::TempDir,
}

/// `cond` polled every 10 ms until it gives a value, or a panic naming `what` after
/// [`PATIENCE`].
pub async fn until<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A proposal of one command, as the server would hand it over.
pub fn command(args: &[&str]) -> kv::Proposal {
    kv::Proposal::Command {
        args: args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
        seed: 1,
    }
}

/// The first key `prefix0`, `prefix1`, ... whose slot `node` places in `group`.
pub fn key_in(node: &Node, group: GroupId, prefix: &str) -> (String, Slot) {
    (0..100_000)
        .map(|i| format!("{prefix}{i}"))
        .map(|k| {
            let slot = types::key_slot(k.as_bytes());
            (k, slot)
        })
        .find(|(_, slot)| node.group_of(*slot).id == group)
        .expect("some key falls in every group")
}

fn all_equal<T: PartialEq>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

impl Fixture {
    /// Starts `nodes` founding members with `groups` data groups each, and waits until
    /// every group is ready ([`Fixture::settled`]). `story` picks the addresses' third
    /// octet, so that stories running at once never share one.
    pub async fn start(story: u8, nodes: u64, groups: u32) -> Fixture {
        let dir = tempfile::tempdir().expect("a data directory");
        let links = rpc::Links::new();
        let ip = |id: NodeId| IpAddr::from([127, 8, story, id as u8]);
        let members: BTreeMap<NodeId, String> = (1..=nodes)
            .map(|id| (id, format!("{}:{GRPC_PORT}", ip(id))))
            .collect();
        let configs: Vec<ClusterConfig> = (1..=nodes)
            .map(|id| ClusterConfig {
                node_id: id,
                grpc_listen: members[&id].clone(),
                advertise: members[&id].clone(),
                resp_addr: format!("{}:6379", ip(id)),
                hostname: String::new(),
                members: members.clone(),
                join: None,
                data_dir: dir.path().join(format!("node{id}")),
                read_mode: ReadMode::Linearizable,
                snapshot_logs: cluster::DEFAULT_SNAPSHOT_LOGS,
                heartbeat_ms: HEARTBEAT_MS,
                unsafe_local_reads: false,
                unsafe_skip_log_checks: false,
                unsafe_local_clock: false,
                unsafe_move_without_freeze: false,
                max_request_bytes: cluster::DEFAULT_MAX_REQUEST_BYTES,
                raft_groups: groups,
                slot_move_wait: cluster::DEFAULT_SLOT_MOVE_WAIT,
                peer_secret: None,
                peer_tls: None,
                links: Some(links.clone()),
            })
            .collect();
        // Founding members start together: each initializes the groups with the same
        // membership.
        let started = futures_util::future::join_all(configs.into_iter().map(Node::start)).await;
        let nodes = started
            .into_iter()
            .map(|n| {
                let n = n.expect("a node starts");
                (n.id, n)
            })
            .collect();
        let fixture = Fixture {
            nodes,
            links,
            story,
            _dir: dir,
        };
        fixture.settled(&fixture.ids()).await;
        fixture
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&self, id: NodeId) -> &Arc<Node> {
        &self.nodes[&id]
    }

    pub fn ip(&self, id: NodeId) -> IpAddr {
        IpAddr::from([127, 8, self.story, id as u8])
    }

    /// Cuts every link between node `id` and the others.
    pub fn isolate(&self, id: NodeId) {
        let all: Vec<IpAddr> = self.ids().into_iter().map(|n| self.ip(n)).collect();
        self.links.isolate(self.ip(id), &all);
    }

    /// What node `id` tells clients about node `of`: its addresses as the groups record
    /// them.
    pub fn info(&self, id: NodeId, of: NodeId) -> NodeInfo {
        let member = self
            .node(id)
            .topology()
            .member(of)
            .cloned()
            .unwrap_or_else(|| panic!("node {id} knows node {of}"));
        NodeInfo {
            resp_addr: member.resp_addr,
            grpc_addr: member.grpc_addr,
            hostname: member.hostname,
        }
    }

    /// The leader of `group` as every one of `among` names it, once they agree on one
    /// that is among them.
    pub fn agreed_leader(&self, group: GroupId, among: &[NodeId]) -> Option<NodeId> {
        let views: Vec<Option<NodeId>> = among
            .iter()
            .map(|&id| {
                let topology = self.node(id).topology();
                topology
                    .shards
                    .iter()
                    .find(|s| s.group == group)
                    .and_then(|s| s.leader)
            })
            .collect();
        let first = views[0]?;
        (views.iter().all(|&v| v == Some(first)) && among.contains(&first)).then_some(first)
    }

    /// Waits until, among the nodes `among`, every group has a leader they all name, has
    /// taken its slots (its claim is applied on every one of them), and every member's
    /// address is known to each of them. Returns each group's leader.
    pub async fn settled(&self, among: &[NodeId]) -> BTreeMap<GroupId, NodeId> {
        let groups: Vec<GroupId> = self.node(among[0]).groups().iter().map(|g| g.id).collect();
        until("every group led, claimed and announced", || {
            let mut leaders = BTreeMap::new();
            for &g in &groups {
                leaders.insert(g, self.agreed_leader(g, among)?);
            }
            let claimed = among.iter().all(|&id| {
                self.node(id)
                    .groups()
                    .iter()
                    .all(|g| g.db().claim().is_some())
            });
            // Every member's addresses recorded, and in every group: the others can send a
            // client to each group's leader.
            let announced = among.iter().all(|&id| {
                let node = self.node(id);
                let members = node.topology().members;
                members.len() == self.nodes.len()
                    && members.iter().all(|m| !m.resp_addr.is_empty())
                    && leaders.iter().all(|(&g, &leader)| {
                        leader == id || node.redirect(key_in(node, g, "k").1).is_some()
                    })
            });
            (claimed && announced).then_some(leaders)
        })
        .await
    }

    /// Waits until every replica of `group` among `among` has applied the same entries
    /// and holds the same data (equal digests), or fails naming what differs after
    /// [`PATIENCE`]. Applied indexes are read from the metrics, which openraft updates a
    /// moment after the data (a reply can arrive before its entry's index shows), so
    /// both are compared together: a real divergence never heals, and waiting cannot
    /// hide it.
    pub async fn assert_replicas_agree(&self, group: GroupId, among: &[NodeId]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let applied: Vec<u64> = among
                .iter()
                .map(|&id| {
                    self.node(id)
                        .topology()
                        .shards
                        .iter()
                        .find(|s| s.group == group)
                        .map_or(0, |s| s.applied)
                })
                .collect();
            let digests: Vec<String> = among
                .iter()
                .map(|&id| {
                    let replica = self.node(id).group(group).expect("a replica");
                    let digest = replica.db().digest(0);
                    digest
                })
                .collect();
            if all_equal(&applied) && all_equal(&digests) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "group {group}'s replicas differ: applied {applied:?}, digests {digests:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One write through node `id`.
    pub async fn write(&self, id: NodeId, group: GroupId, args: &[&str]) -> Result<Frame, Error> {
        self.node(id).write(group, &command(args)).await
    }

    /// Heals the network and stops every node.
    pub async fn stop(self) {
        self.links.heal();
        futures_util::future::join_all(self.nodes.values().map(|n| n.shutdown())).await;
    }
}
