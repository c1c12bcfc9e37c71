//! Who may call this node over peer TLS: the hosts a member's certificate may name (see
//! `rpc::tls`). Every source this node knows the members from counts: the founding
//! members of its configuration, the cluster map, and every group's membership (voters
//! and learners: a node being added is a learner first, and must be taken before the map
//! names it). A member's address may name it by IP or DNS name, and its announced
//! hostname counts too.

use std::collections::BTreeSet;

use crate::Node;

/// The host of `host:port` (an IPv6 host without its brackets).
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

impl Node {
    /// The hosts a calling peer's certificate may name; `None` while this node knows no
    /// member but itself (started with `--join` and not yet replicated to: the members
    /// must reach it before it can learn who they are).
    pub(crate) fn peer_hosts(&self) -> Option<Vec<String>> {
        let mut hosts = BTreeSet::new();
        let mut others = false;
        let mut add = |id: u64, grpc_addr: &str, hostname: &str| {
            others |= id != self.id;
            hosts.insert(host_of(grpc_addr).to_string());
            if !hostname.is_empty() {
                hosts.insert(hostname.to_string());
            }
        };
        for (&id, addr) in &self.config.members {
            add(id, addr, "");
        }
        if let Some(map) = self.cluster_map() {
            for (&id, m) in &map.members {
                add(id, &m.grpc_addr, m.hostname.as_deref().unwrap_or(""));
            }
        }
        for group in self.replicas() {
            let metrics = group.metrics();
            for (&id, info) in metrics.membership_config.membership().nodes() {
                add(id, &info.grpc_addr, &info.hostname);
            }
        }
        if !others && self.config.join.is_some() {
            return None;
        }
        hosts.insert(host_of(&self.config.advertise).to_string());
        hosts.remove("");
        Some(hosts.into_iter().collect())
    }
}
