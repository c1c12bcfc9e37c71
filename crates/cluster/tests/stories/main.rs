//! Routing and ownership stories on an in-process cluster whose network the test controls
//! (see `fixture`). Each story waits for states, never for lengths of time, so none
//! depends on how fast the machine is.

mod fixture;

use cluster::Error;
use fixture::{key_in, until, Fixture};
use resp::Frame;
use types::{GroupId, NodeId};

/// The node leading the fewest groups, other than `not`.
fn least_loaded(
    leaders: &std::collections::BTreeMap<GroupId, NodeId>,
    ids: &[NodeId],
    not: NodeId,
) -> NodeId {
    ids.iter()
        .copied()
        .filter(|&id| id != not)
        .min_by_key(|&id| leaders.values().filter(|&&l| l == id).count())
        .expect("another node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_names_each_groups_leader_and_follows_a_transfer() {
    let fx = Fixture::start(1, 3, 4).await;
    let ids = fx.ids();
    let leaders = fx.settled(&ids).await;
    for (&group, &leader) in &leaders {
        let (_, slot) = key_in(fx.node(1), group, "k");
        for &id in &ids {
            let expected = (id != leader).then(|| fx.info(id, leader));
            assert_eq!(
                fx.node(id).redirect(slot),
                expected,
                "node {id} sends slot {slot:?} of group {group} to its leader {leader}"
            );
        }
    }

    // Group 1's leadership moves: the old leader now redirects there, the new one serves.
    let group = GroupId(1);
    let (old, (_, slot)) = (leaders[&group], key_in(fx.node(1), group, "k"));
    let new = least_loaded(&leaders, &ids, old);
    fx.node(old)
        .transfer_group_leader(group, new)
        .await
        .expect("the transfer");
    until("every node to name the new leader", || {
        (fx.agreed_leader(group, &ids) == Some(new)).then_some(())
    })
    .await;
    assert_eq!(fx.node(old).redirect(slot), Some(fx.info(old, new)));
    assert_eq!(fx.node(new).redirect(slot), None, "the new leader serves");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_node_acknowledges_nothing_and_loses_nothing() {
    let fx = Fixture::start(2, 3, 3).await;
    let ids = fx.ids();
    let leaders = fx.settled(&ids).await;
    // Cut off a node that leads a group, so that both of its roles are tried.
    let cut = leaders[&GroupId(1)];
    let majority: Vec<NodeId> = ids.iter().copied().filter(|&id| id != cut).collect();
    fx.isolate(cut);
    // At once, a write to the group it leads: it still holds its lease, so it appends the
    // write and cannot commit it. It must not wait for the heal (`COMMIT_WAIT`).
    let groups: Vec<GroupId> = leaders.keys().copied().collect();
    let (early_key, _) = key_in(fx.node(1), GroupId(1), "n");
    let early = {
        let node = fx.node(cut).clone();
        let incr = fixture::command(&["INCR", &early_key]);
        tokio::spawn(async move { node.write(GroupId(1), &incr).await })
    };
    // The others elect leaders among themselves and keep writing every group.
    fx.settled(&majority).await;
    for &group in &groups {
        let (key, _) = key_in(fx.node(1), group, "n");
        assert_eq!(
            fx.write(majority[0], group, &["INCR", &key]).await,
            Ok(Frame::Integer(1)),
            "the majority writes group {group}"
        );
    }
    // Through the cut-off node no write is acknowledged, and none waits for the heal: a
    // group it no longer hears from is down once it has waited for a leader
    // (`NO_LEADER_WAIT`); one it still believes it leads either refuses the write (its
    // lease ran out) or appends it and cannot commit it (`COMMIT_WAIT`): of unknown
    // outcome. The story's own bound only turns a hang into a failure.
    for &group in &groups {
        let (key, _) = key_in(fx.node(1), group, "n");
        let attempt = tokio::time::timeout(
            cluster::COMMIT_WAIT + cluster::NO_LEADER_WAIT + fixture::PATIENCE,
            fx.write(cut, group, &["INCR", &key]),
        )
        .await;
        match attempt {
            Ok(Err(Error::ClusterDown | Error::UnknownOutcome(_))) => {}
            Err(_) => panic!("a write to group {group} through the cut-off node never ended"),
            Ok(other) => {
                panic!("a cut-off node acknowledged a write to group {group}: {other:?}")
            }
        }
    }
    let bound = cluster::COMMIT_WAIT + cluster::NO_LEADER_WAIT + fixture::PATIENCE;
    match tokio::time::timeout(bound, early).await {
        Ok(Ok(Err(Error::UnknownOutcome(_) | Error::ClusterDown))) => {}
        other => panic!("the write the cut-off leader took at once: {other:?}"),
    }
    // Healed, it follows the new leaders; each counter counts the majority's write and
    // this one, never the cut-off node's attempt, and every replica agrees.
    fx.links.heal();
    fx.settled(&ids).await;
    for &group in &groups {
        let (key, _) = key_in(fx.node(1), group, "n");
        assert_eq!(
            fx.write(cut, group, &["INCR", &key]).await,
            Ok(Frame::Integer(2)),
            "group {group} applied the cut-off attempt nowhere"
        );
        fx.assert_replicas_agree(group, &ids).await;
    }
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_for_a_slot_its_group_does_not_serve_is_refused_by_every_replica() {
    let fx = Fixture::start(3, 3, 2).await;
    let ids = fx.ids();
    let (key, slot) = key_in(fx.node(1), GroupId(1), "own");
    // Proposed to group 2 with group 2's epoch (as a stale route would be, and without
    // the write path's routing again), through every node in turn: the leader's state
    // machine refuses it, and so does every replica's, alike.
    for &id in &ids {
        let reply = fx
            .node(id)
            .write_at(
                GroupId(2),
                types::Epoch(1),
                &fixture::command(&["SET", &key, "wrong"]),
            )
            .await;
        match reply {
            Ok(Frame::Error(e)) if e.starts_with("TRYAGAIN") && e.contains(&slot.0.to_string()) => {
            }
            other => panic!("node {id}: group 2 took a write for slot {slot:?}: {other:?}"),
        }
    }
    fx.assert_replicas_agree(GroupId(2), &ids).await;
    for &id in &ids {
        for group in fx.node(id).groups() {
            assert!(
                group.db().get(key.as_bytes(), 0).is_none(),
                "node {id}, group {}: the refused write changed nothing",
                group.id
            );
        }
    }
    // The group that owns the slot takes it.
    assert_eq!(
        fx.write(2, GroupId(1), &["SET", &key, "right"]).await,
        Ok(Frame::OK)
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meta_group_keeps_the_cluster_map_through_a_forget() {
    let fx = Fixture::start(4, 3, 4).await;
    let ids = fx.ids();
    // Every replica of the meta group holds the same map: the three members as clients
    // reach them, every group on all three, the slots as the layout splits them.
    let map = until("every node to hold the whole map", || {
        let maps: Vec<_> = ids.iter().map(|&id| fx.node(id).cluster_map()).collect();
        let first = maps[0].clone()?;
        let whole = first.members.len() == 3
            && first.members.values().all(|m| !m.resp_addr.is_empty())
            && first.groups.values().all(|r| r.len() == 3);
        (whole && maps.iter().all(|m| m.as_ref() == Some(&first))).then_some(first)
    })
    .await;
    assert_eq!(map.groups.len(), 4);
    for group in fx.node(1).groups() {
        let (_, slot) = key_in(fx.node(1), group.id, "m");
        assert_eq!(map.owner(slot).map(|o| o.group), Some(group.id));
    }
    assert_eq!(map.members[&2].resp_addr, fx.info(1, 2).resp_addr);

    // CLUSTER FORGET of node 3 (through node 1): it leaves every group, and then the map.
    fx.node(1).forget(3).await.expect("the forget");
    let after = until("the map to drop node 3", || {
        let map = fx.node(1).cluster_map()?;
        (!map.members.contains_key(&3)).then_some(map)
    })
    .await;
    assert!(after.version > map.version);
    assert!(
        after.groups.values().all(|r| r.iter().eq([1, 2].iter())),
        "{:?}",
        after.groups
    );
    let digest = |id: NodeId| fx.node(id).meta().db().digest(0);
    until("both remaining replicas to hold the same map", || {
        (digest(1) == digest(2)).then_some(())
    })
    .await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_routed_with_an_older_claims_epoch_is_refused_by_every_replica() {
    let fx = Fixture::start(5, 3, 2).await;
    let ids = fx.ids();
    let group = GroupId(1);
    let (key, _) = key_in(fx.node(1), group, "epoch");
    let incr = ["INCR", key.as_str()];
    let mut count = 0;
    // Every node routes a write with the claim it has applied (epoch 1) and remembers it.
    for &id in &ids {
        count += 1;
        assert_eq!(fx.write(id, group, &incr).await, Ok(Frame::Integer(count)));
    }
    // The group claims its slots again with a newer epoch, as a slot move will.
    let held = fx
        .node(1)
        .group(group)
        .expect("a replica")
        .db()
        .claim()
        .cloned();
    let renewed = kv::Claim {
        epoch: 2,
        ..held.expect("a claim")
    };
    let claim = kv::Proposal::Claim(renewed);
    assert_eq!(fx.node(1).write(group, &claim).await, Ok(Frame::OK));
    until("every replica to apply the newer claim", || {
        ids.iter()
            .all(|&id| {
                let replica = fx.node(id).group(group).expect("a replica");
                let epoch = replica.db().claim().map(|c| c.epoch);
                epoch == Some(2)
            })
            .then_some(())
    })
    .await;
    // Routed with the old epoch, through every node: every replica refuses it alike.
    for &id in &ids {
        let reply = fx
            .node(id)
            .write_at(group, types::Epoch(1), &fixture::command(&incr))
            .await;
        match reply {
            Ok(Frame::Error(e)) if e.starts_with("TRYAGAIN") && e.contains("epoch 1") => {}
            other => panic!("node {id}: a write routed with epoch 1 was taken: {other:?}"),
        }
    }
    fx.assert_replicas_agree(group, &ids).await;
    // Each node still remembers epoch 1: its next write is refused once, routed again with
    // epoch 2 and applied once. The counter shows no refused attempt counted.
    for &id in &ids {
        count += 1;
        assert_eq!(fx.write(id, group, &incr).await, Ok(Frame::Integer(count)));
    }
    fx.assert_replicas_agree(group, &ids).await;
    fx.stop().await;
}
