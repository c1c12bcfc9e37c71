//! Where things go, as pure functions: how the 16384 slots split over the data groups,
//! where each group's replicas live, and which replica should lead it, so that replicas
//! and leaderships spread evenly over the nodes.

use std::collections::{BTreeMap, BTreeSet};

use types::{GroupId, NodeId, Slot};

/// The slots split into `groups` contiguous ranges of equal size (±1), group 1 first:
/// `(first, last, group)`, covering every slot. `groups` must be in `1..=16384`.
pub fn even_slots(groups: u32) -> Vec<(Slot, Slot, GroupId)> {
    let count = u32::from(Slot::COUNT);
    let groups = groups.clamp(1, count);
    (0..groups)
        .map(|g| {
            let first = g * count / groups;
            let next = (g + 1) * count / groups;
            (
                Slot(first as u16),
                Slot((next - 1) as u16),
                GroupId(u64::from(g) + 1),
            )
        })
        .collect()
}

/// The replicas of groups `1..=groups`, `replication` each (at most one per node), spread
/// evenly: group `g` takes the `replication` nodes starting at the `g`-th of `nodes`
/// (ascending, wrapping), so each node holds `groups * replication / nodes` replicas, ±1.
pub fn replicas(
    groups: u32,
    nodes: &[NodeId],
    replication: usize,
) -> BTreeMap<GroupId, BTreeSet<NodeId>> {
    let mut nodes = nodes.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    let per_group = replication.min(nodes.len());
    (1..=u64::from(groups))
        .map(|g| {
            let start = (g - 1) as usize;
            let set = (0..per_group)
                .map(|k| nodes[(start + k) % nodes.len()])
                .collect();
            (GroupId(g), set)
        })
        .collect()
}

/// The replica that should lead `group` for leaderships to spread evenly: the
/// `group`-th of its replicas, ascending and wrapping (with the placement of
/// [`replicas`], every node is preferred for about `groups / nodes` groups).
pub fn preferred_leader(group: GroupId, replicas: &BTreeSet<NodeId>) -> Option<NodeId> {
    if replicas.is_empty() {
        return None;
    }
    let i = (group.0.saturating_sub(1) as usize) % replicas.len();
    replicas.iter().nth(i).copied()
}
