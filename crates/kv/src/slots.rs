//! The keyspace by hash slot: for each slot that has keys, the positions (in
//! [`crate::db::Db`]'s insertion-ordered map) of its keys. Counting a slot's keys is O(1)
//! and listing, copying or dropping them is O(keys in the slot), which `CLUSTER
//! COUNTKEYSINSLOT | GETKEYSINSLOT` and moving a slot between groups need.
//!
//! Invariants (checked by `Db::check_slots` in the tests): every key of the map appears
//! exactly once, in the list of its slot, at the place `places` records for its map
//! position (`places` mirrors the map: same length, same `swap_remove`s); a list is never
//! empty (an emptied slot is dropped). Derived from the map alone, so snapshots need not
//! carry it: loading rebuilds it. Cost: two `u32`s per key.

use std::collections::HashMap;

/// Keys by slot (see the module header).
#[derive(Clone, Debug, Default)]
pub(crate) struct SlotIndex {
    lists: HashMap<u16, Vec<u32>>,
    /// For each map position, the key's place in its slot's list.
    pub(crate) places: Vec<u32>,
}

impl SlotIndex {
    /// Records a new key of `slot` at map position `index`, the map's last.
    pub(crate) fn add(&mut self, slot: u16, index: usize) {
        let list = self.lists.entry(slot).or_default();
        list.push(index as u32);
        debug_assert_eq!(self.places.len(), index, "a new key is the map's last");
        self.places.push((list.len() - 1) as u32);
    }

    /// Forgets the key at place `pos` of `slot`'s list. When another key fills the place,
    /// returns that key's map position: its place is `pos` now.
    pub(crate) fn remove(&mut self, slot: u16, pos: u32) -> Option<u32> {
        let list = self.lists.get_mut(&slot)?;
        list.swap_remove(pos as usize);
        let filled = list.get(pos as usize).copied();
        if list.is_empty() {
            self.lists.remove(&slot);
        }
        filled
    }

    /// The key at place `pos` of `slot`'s list now sits at map position `index`.
    pub(crate) fn moved(&mut self, slot: u16, pos: u32, index: usize) {
        if let Some(p) = self
            .lists
            .get_mut(&slot)
            .and_then(|l| l.get_mut(pos as usize))
        {
            *p = index as u32;
        }
    }

    /// The map positions of `slot`'s keys, oldest place first.
    pub(crate) fn positions(&self, slot: u16) -> &[u32] {
        self.lists.get(&slot).map_or(&[], Vec::as_slice)
    }

    /// How many slots have keys.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.lists.len()
    }

    pub(crate) fn clear(&mut self) {
        self.lists.clear();
        self.places.clear();
    }
}
