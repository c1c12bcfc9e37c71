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

/// One move of a rebalance: `ranges` (ascending) from group `from` to group `to`, holding
/// `keys` keys when planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedMove {
    pub ranges: Vec<(Slot, Slot)>,
    pub from: GroupId,
    pub to: GroupId,
    pub keys: u64,
}

/// Slot moves that even out the keys the groups hold (`CLUSTER REBALANCE`), from each
/// slot's group and key count (`slots[s] = (group, keys)`, every slot) and the data
/// groups. Each step takes the heaviest group's highest slots, a contiguous run holding no
/// more keys than it has above the average and the lightest group has below it, and gives
/// them to the lightest; it stops once every group is within 5% of the average (or one
/// key), when no run of whole slots fits, or after `max_moves` steps. Moves between the
/// same two groups are merged. A slot is the unit: one slot holding more keys than the
/// gap (a hot hash tag) stays where it is.
pub fn rebalance(
    slots: &[(GroupId, u64)],
    groups: &BTreeSet<GroupId>,
    max_moves: usize,
) -> Vec<PlannedMove> {
    let mut owner: Vec<GroupId> = slots.iter().map(|&(g, _)| g).collect();
    let keys: Vec<u64> = slots.iter().map(|&(_, k)| k).collect();
    let total: u64 = keys.iter().sum();
    if groups.len() < 2 || total == 0 {
        return Vec::new();
    }
    let avg = total as f64 / groups.len() as f64;
    let tolerance = (avg * 0.05).max(1.0);
    let mut moves: Vec<PlannedMove> = Vec::new();
    for _ in 0..max_moves {
        let mut held: BTreeMap<GroupId, u64> = groups.iter().map(|&g| (g, 0)).collect();
        for (s, &g) in owner.iter().enumerate() {
            if let Some(n) = held.get_mut(&g) {
                *n += keys[s];
            }
        }
        let (&heavy, &most) = held
            .iter()
            .max_by_key(|&(g, n)| (*n, std::cmp::Reverse(*g)))
            .expect("groups");
        let (&light, &least) = held.iter().min_by_key(|&(g, n)| (*n, *g)).expect("groups");
        if most as f64 - avg <= tolerance && avg - least as f64 <= tolerance {
            break;
        }
        let want = (most as f64 - avg).min(avg - least as f64).max(1.0) as u64;
        // The heavy group's highest slot with keys, then down while the run stays whole
        // (contiguous, the heavy group's) and within `want`.
        let Some(top) = (0..owner.len())
            .rev()
            .find(|&s| owner[s] == heavy && keys[s] > 0)
        else {
            break;
        };
        let mut first = top;
        let mut sum = 0u64;
        let mut s = top as isize;
        while s >= 0 && owner[s as usize] == heavy {
            let k = keys[s as usize];
            if sum + k > want {
                break;
            }
            sum += k;
            first = s as usize;
            s -= 1;
        }
        if sum == 0 {
            break;
        }
        for o in &mut owner[first..=top] {
            *o = light;
        }
        let range = (Slot(first as u16), Slot(top as u16));
        match moves.iter_mut().find(|m| m.from == heavy && m.to == light) {
            Some(m) => {
                m.ranges.push(range);
                m.ranges.sort();
                m.keys += sum;
            }
            None => moves.push(PlannedMove {
                ranges: vec![range],
                from: heavy,
                to: light,
                keys: sum,
            }),
        }
    }
    moves
}
