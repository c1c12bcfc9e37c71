//! Which data group serves each slot, as this node sees it: the table every command is
//! routed by ([`Node::group_of`]), and what `CLUSTER SLOTS` and `INFO` show.
//!
//! The groups' state machines are the authority (`kv::claim`, `kv::moves`); every node
//! holds a replica of every data group, so the table is read from them: a slot goes to
//! the group whose applied claim covers it and which has not frozen it for a move; failing
//! that, to the group that froze it (which holds its writes until the move ends); failing
//! that, to the group its last owner says it went to; failing that, to the cluster map's
//! owner, and to the layout the cluster was founded with before there is a map. A replica
//! that lags only makes a command try again: the group that applies it checks the slot
//! and the route's epoch, identically on every replica.
//!
//! [`refresh_routes`] rebuilds the table whenever a group's claim or moves change (it
//! looks every [`REFRESH_PAUSE`]), and a command refused by a group's claim rebuilds it at
//! once ([`Node::refresh_routes`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use types::{GroupId, Slot};

use crate::Node;

/// How often [`refresh_routes`] looks for changed claims.
const REFRESH_PAUSE: Duration = Duration::from_millis(20);

/// The table: a group id per slot, and what it was built from.
pub(crate) struct Routes {
    table: RwLock<Arc<Table>>,
}

struct Table {
    groups: Vec<GroupId>,
    /// Per data group, (claim epoch, moves frozen, moves ended) when built.
    seen: Vec<(u64, usize, usize)>,
}

impl Routes {
    /// A table from the founding layout.
    pub(crate) fn new(layout: &[(Slot, Slot, GroupId)]) -> Routes {
        let mut groups = vec![GroupId(1); Slot::COUNT as usize];
        for &(a, b, g) in layout {
            for s in a.0..=b.0 {
                groups[s as usize] = g;
            }
        }
        Routes {
            table: RwLock::new(Arc::new(Table {
                groups,
                seen: Vec::new(),
            })),
        }
    }

    fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Asked for every command: a read lock, no copy of the table's handle.
    pub(crate) fn get(&self, slot: Slot) -> GroupId {
        self.table.read().unwrap_or_else(|p| p.into_inner()).groups[slot.0 as usize]
    }

    /// Every slot range of `group`, ascending.
    pub(crate) fn ranges_of(&self, group: GroupId) -> Vec<(Slot, Slot)> {
        let table = self.table();
        let mut out: Vec<(Slot, Slot)> = Vec::new();
        for (s, &g) in table.groups.iter().enumerate() {
            if g != group {
                continue;
            }
            let s = Slot(s as u16);
            match out.last_mut() {
                Some((_, last)) if last.0 + 1 == s.0 => *last = s,
                _ => out.push((s, s)),
            }
        }
        out
    }
}

impl Node {
    /// The data group that serves `slot` now, as this node sees it (see the module
    /// header).
    pub fn group_of(&self, slot: Slot) -> &crate::Group {
        let id = self.routes.get(slot);
        self.group(id).unwrap_or(&self.groups[0])
    }

    /// Longest a command for a moving slot is held (`slot-move-wait`).
    pub fn slot_move_wait(&self) -> Duration {
        self.config.slot_move_wait
    }

    /// The slot ranges `group` serves, as this node sees it.
    pub(crate) fn ranges_of(&self, group: GroupId) -> Vec<(Slot, Slot)> {
        self.routes.ranges_of(group)
    }

    /// Rebuilds the table from the groups' applied claims and moves if any changed since
    /// it was built; true if it changed.
    pub fn refresh_routes(&self) -> bool {
        let seen: Vec<(u64, usize, usize)> = self
            .groups
            .iter()
            .map(|group| {
                let db = group.db();
                let moves = db.moves();
                (
                    db.claim().map_or(0, |c| c.epoch),
                    moves.frozen.len(),
                    moves.ended.len(),
                )
            })
            .collect();
        let old = self.routes.table();
        if old.seen == seen {
            return false;
        }
        // Per slot: a serving group, a freezing group, where it went.
        let n = Slot::COUNT as usize;
        let mut serving: Vec<Option<GroupId>> = vec![None; n];
        let mut frozen: Vec<Option<GroupId>> = vec![None; n];
        let mut gone: Vec<Option<GroupId>> = vec![None; n];
        for group in &self.groups {
            let db = group.db();
            let moves = db.moves();
            for f in moves.frozen.values() {
                for &(a, b) in &f.ranges {
                    for s in a.0..=b.0 {
                        frozen[s as usize] = Some(group.id);
                    }
                }
            }
            // Two groups claim a slot only between a move's commit and the source's
            // release, and the source has frozen it then: the other one serves it.
            if let Some(claim) = db.claim() {
                for &(a, b) in &claim.ranges {
                    for s in a.0..=b.0 {
                        if frozen[s as usize] != Some(group.id) {
                            serving[s as usize] = Some(group.id);
                        }
                    }
                }
            }
            for (&a, &(b, to)) in &moves.gone {
                for s in a.0..=b.0 {
                    gone[s as usize] = Some(to);
                }
            }
        }
        let map = self.meta.db().meta().cloned();
        let mut groups = old.groups.clone();
        for (s, route) in groups.iter_mut().enumerate() {
            let mapped = map
                .as_ref()
                .and_then(|m| m.owner(Slot(s as u16)))
                .map(|o| o.group);
            if let Some(g) = serving[s].or(frozen[s]).or(gone[s]).or(mapped) {
                *route = g;
            }
        }
        let changed = groups != old.groups;
        *self.routes.table.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(Table { groups, seen });
        changed
    }
}

/// Keeps the table current (see the module header).
pub(crate) async fn refresh_routes(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    loop {
        node.refresh_routes();
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
}
