//! Where slots and leaderships live: the layout of slots over data groups (fixed when
//! the cluster is founded, and recorded in the data directory), each group's claim of
//! its slots, and leaders balanced over the nodes.
//!
//! - **Layout.** `--raft-groups N` spreads the 16384 slots evenly over groups `1..=N`
//!   (`meta::placement::even_slots`). The number is written to `<data-dir>/raft-groups`
//!   on the first start; a later start with another number is refused (the groups hold
//!   the data of their slots, so changing it needs slot moves). A data directory written
//!   before there were several groups holds group 1 only: it starts with
//!   `--raft-groups 1`, and is refused otherwise with an error that says so.
//! - **Claims.** A group serves its slots once its state machine has applied its claim
//!   (`kv::Proposal::Claim`); from then on every replica refuses, at apply, writes for
//!   other slots. The leader of a group without one proposes it ([`claim_slots`]); routing
//!   sends no write to a group before its claim is applied (`write`).
//! - **Leaders.** Each node should lead about `groups / voters` groups, so that writes and
//!   reads spread over every node. [`balance_leaders`] runs on every node: once the
//!   leaders have looked uneven for three seconds, it hands groups it leads, one at a
//!   time, to caught-up voters that lead at least two fewer groups (the group's preferred
//!   leader first, `meta::placement::preferred_leader`), as long as a step helps. After a
//!   start, a restart or a failover the counts even out within a few seconds; `CLUSTER
//!   REBALANCE-LEADERS` runs the same steps at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};
use types::{GroupId, NodeId, Slot};

use crate::error::{Error, StartError};
use crate::group::Group;
use crate::{ClusterConfig, Node};

/// The file that records the number of data groups, in the data directory.
const LAYOUT_FILE: &str = "raft-groups";
/// How often [`claim_slots`] looks for groups without a claim.
const CLAIM_PAUSE: Duration = Duration::from_millis(50);
/// How often [`balance_leaders`] looks at the leaders.
const BALANCE_PAUSE: Duration = Duration::from_secs(1);
/// A voter whose log is more than this many entries behind the leader's is not handed a
/// leadership: it would have to catch up first, and writes would wait.
const CAUGHT_UP: u64 = 64;
/// Looks in a row ([`BALANCE_PAUSE`] apart) that must find the leaders uneven before the
/// balancer moves any.
const SETTLE: u32 = 3;
/// Longest a leadership transfer of the balancer waits for the new leader.
const TRANSFER_WAIT: Duration = Duration::from_secs(2);

/// Checks the data directory against `--raft-groups` and records the number on the
/// first start (see the module header); the layout of slots over the groups.
pub(crate) async fn check_layout(
    config: &ClusterConfig,
    log_db: &raft::LogDb,
) -> Result<Vec<(Slot, Slot, GroupId)>, StartError> {
    let groups = config.raft_groups;
    let path = config.data_dir.join(LAYOUT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let held: u32 = text.trim().parse().map_err(|_| {
                StartError::Layout(format!(
                    "{} does not hold a number of groups ({:?})",
                    path.display(),
                    text.trim()
                ))
            })?;
            if held != groups {
                return Err(StartError::Layout(format!(
                    "the data directory {} holds {held} data groups, and this node was \
                     started with --raft-groups {groups}: start it with --raft-groups {held} \
                     (the number of groups is fixed when the cluster is founded)",
                    config.data_dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if groups != 1 && holds_group_one(log_db)? {
                return Err(StartError::Layout(format!(
                    "the data directory {} was written by a redraft with one data group; \
                     start it with --raft-groups 1 to keep its data (or move it aside to \
                     start an empty node)",
                    config.data_dir.display()
                )));
            }
            write_layout(&path, groups)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(meta::placement::even_slots(groups))
}

/// True if the log database holds anything of group 1 (a vote, entries).
fn holds_group_one(log_db: &raft::LogDb) -> Result<bool, StartError> {
    let db = log_db.sled()?;
    for name in db.tree_names() {
        if name.starts_with(b"group-1/")
            && !db
                .open_tree(&name)
                .map_err(std::io::Error::other)?
                .is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes the layout file durably (a temporary file renamed over it, then the directory
/// synced).
fn write_layout(path: &Path, groups: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{groups}")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Node {
    /// The slot ranges of `group` in the layout the cluster was founded with (its first
    /// claim).
    pub(crate) fn layout_ranges_of(&self, group: GroupId) -> Vec<(Slot, Slot)> {
        self.layout
            .iter()
            .filter(|&&(_, _, g)| g == group)
            .map(|&(a, b, _)| (a, b))
            .collect()
    }

    /// `CLUSTER REBALANCE-LEADERS`: hands leaderships this node holds beyond its share to
    /// voters with fewer, until no such step helps; how many were handed over.
    pub async fn rebalance_leaders(&self) -> Result<usize, Error> {
        let mut moved = 0;
        for _ in 0..self.groups.len() {
            match self.balance_step().await {
                Some(Ok(())) => moved += 1,
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(moved)
    }

    /// Hands one group this node leads to a caught-up voter leading at least two fewer
    /// groups (the group's preferred leader first); `None` when no such move exists.
    async fn balance_step(&self) -> Option<Result<(), Error>> {
        let (group, to) = self.balance_choice()?;
        info!(group = %group.id, to, "balancing leaders: handing a group over");
        Some(self.transfer_group(group, to, TRANSFER_WAIT).await)
    }

    /// The move [`Node::balance_step`] would make.
    fn balance_choice(&self) -> Option<(&Group, NodeId)> {
        if self.log_health().cause().is_some() {
            return None;
        }
        let leaders: Vec<Option<NodeId>> = self.groups.iter().map(|g| g.leader_id()).collect();
        let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
        for group in &self.groups {
            for v in group.metrics().membership_config.membership().voter_ids() {
                counts.entry(v).or_insert(0);
            }
        }
        for leader in leaders.iter().flatten() {
            *counts.entry(*leader).or_insert(0) += 1;
        }
        let mine = *counts.get(&self.id)?;
        let mut choice: Option<(&Group, NodeId)> = None;
        for (group, leader) in self.groups.iter().zip(&leaders) {
            if *leader != Some(self.id) {
                continue;
            }
            let voters: BTreeSet<NodeId> = group
                .metrics()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            let preferred = meta::placement::preferred_leader(group.id, &voters);
            let fewest = voters
                .iter()
                .copied()
                .filter(|&v| v != self.id && caught_up(group, v))
                .min_by_key(|v| (counts.get(v).copied().unwrap_or(0), Some(*v) != preferred));
            let Some(to) = fewest else { continue };
            if counts.get(&to).copied().unwrap_or(0) + 2 > mine {
                continue;
            }
            let better = choice.is_none() || Some(to) == preferred;
            if better {
                choice = Some((group, to));
                if Some(to) == preferred {
                    break;
                }
            }
        }
        choice
    }
}

/// True if voter `v` of `group` (led here) has the leader's log within [`CAUGHT_UP`].
pub(crate) fn caught_up(group: &Group, v: NodeId) -> bool {
    let m = group.metrics();
    let last = m.last_log_index.unwrap_or(0);
    m.replication
        .as_ref()
        .and_then(|r| r.get(&v).cloned())
        .flatten()
        .is_some_and(|matched| matched.index() + CAUGHT_UP >= last)
}

/// Proposes the claim of every group this node leads that has none, and checks the
/// claims applied against this node's layout, until every group's claim is applied here.
pub(crate) async fn claim_slots(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut reported = BTreeSet::new();
    loop {
        let mut unclaimed = 0;
        for group in &node.groups {
            let expected = kv::Claim {
                epoch: 1,
                ranges: node.layout_ranges_of(group.id),
            };
            let held = group.db().claim().cloned();
            match held {
                // A later epoch: slots have moved since the first claim.
                Some(held) if held.ranges == expected.ranges || held.epoch > 1 => {}
                Some(held) => {
                    unclaimed += 1;
                    if reported.insert(group.id) {
                        error!(group = %group.id, held = ?held.ranges, expected = ?expected.ranges,
                            "the group serves other slots than this node's layout says: the \
                             founding nodes were started with different --raft-groups");
                    }
                }
                None => {
                    unclaimed += 1;
                    if group.is_leader() {
                        let encoded = kv::Proposal::Claim(expected).encode().into();
                        match node.propose_local(group, encoded).await {
                            Ok(reply) if !reply.is_error() => {
                                info!(group = %group.id, "claimed its slots");
                            }
                            Ok(reply) => warn!(group = %group.id, ?reply, "slot claim refused"),
                            Err(_) => {}
                        }
                    }
                }
            }
        }
        if unclaimed == 0 {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(CLAIM_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Evens out the leaders over the nodes (see the module header): once the same kind of
/// move has been possible for [`SETTLE`] looks in a row, every helpful step at once.
/// Waiting lets a node that is shutting down (it hands its groups away and leads none for
/// a moment) go without being handed groups back.
pub(crate) async fn balance_leaders(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut uneven_for = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(BALANCE_PAUSE) => {}
            _ = stop.changed() => return,
        }
        if node.balance_choice().is_none() {
            uneven_for = 0;
            continue;
        }
        uneven_for += 1;
        if uneven_for < SETTLE {
            continue;
        }
        uneven_for = 0;
        // Every helpful step at once: after a start or a restart many may be due.
        for _ in 0..node.groups.len() {
            match node.balance_step().await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "a leadership hand-over did not complete");
                    break;
                }
                None => break,
            }
        }
    }
}
