//! Links a test has cut between nodes, for in-process clusters whose network the test
//! controls (see `crates/cluster/tests/stories`). Every node of such a cluster listens on
//! an address of its own and sends from it ([`crate::PoolConfig::local_address`]), so a
//! call is identified by its two addresses; a server given a [`Links`] refuses each call
//! over a cut link with `UNAVAILABLE`, as the network would fail it, before any handler
//! sees it ([`crate::secret::Gate`]). Production servers have none.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The cut links of one test's cluster, shared by all of its nodes.
#[derive(Clone, Debug, Default)]
pub struct Links {
    /// `(from, to)`: calls from `from` to `to` fail.
    cut: Arc<Mutex<BTreeSet<(IpAddr, IpAddr)>>>,
}

impl Links {
    /// No link cut.
    pub fn new() -> Links {
        Links::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeSet<(IpAddr, IpAddr)>) -> T) -> T {
        f(&mut self.cut.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: IpAddr, b: IpAddr) {
        self.with(|cut| {
            cut.insert((a, b));
            cut.insert((b, a));
        });
    }

    /// Cuts every link between `node` and the `others`: a partition of one.
    pub fn isolate(&self, node: IpAddr, others: &[IpAddr]) {
        for &other in others.iter().filter(|&&o| o != node) {
            self.cut(node, other);
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.with(|cut| cut.clear());
    }

    /// True if calls from `from` to `to` fail.
    pub fn is_cut(&self, from: IpAddr, to: IpAddr) -> bool {
        self.with(|cut| cut.contains(&(from, to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 8, 0, last])
    }

    #[test]
    fn a_cut_holds_both_ways_until_healed() {
        let links = Links::new();
        links.isolate(ip(1), &[ip(1), ip(2), ip(3)]);
        assert!(links.is_cut(ip(1), ip(2)) && links.is_cut(ip(3), ip(1)));
        assert!(!links.is_cut(ip(2), ip(3)), "the others still talk");
        assert!(!links.is_cut(ip(1), ip(1)), "a node reaches itself");
        links.heal();
        assert!(!links.is_cut(ip(1), ip(2)));
    }
}
