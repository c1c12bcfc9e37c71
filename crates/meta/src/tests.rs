use super::*;
use crate::placement::{even_slots, preferred_leader, replicas};

fn member(n: u64) -> Member {
    Member {
        resp_addr: format!("10.0.0.{n}:6379"),
        grpc_addr: format!("10.0.0.{n}:7379"),
        hostname: None,
    }
}

fn members(ids: &[u64]) -> BTreeMap<NodeId, Member> {
    ids.iter().map(|&n| (n, member(n))).collect()
}

/// Fails unless the invariants of the crate header hold.
fn check(state: &MetaState) {
    if !state.is_bootstrapped() {
        return;
    }
    let mut next = 0u32;
    for (&first, &(last, owner)) in &state.slots {
        assert_eq!(
            u32::from(first.0),
            next,
            "slots are covered without gaps or overlaps"
        );
        assert!(first <= last);
        assert!(
            state.groups.contains_key(&owner.group),
            "owner {:?} exists",
            owner.group
        );
        next = u32::from(last.0) + 1;
    }
    assert_eq!(next, u32::from(Slot::COUNT), "every slot is owned");
    for (group, replicas) in &state.groups {
        assert!(!replicas.is_empty(), "group {group} has replicas");
        for id in replicas {
            assert!(
                state.members.contains_key(id),
                "replica {id} of {group} is a member"
            );
        }
    }
}

#[test]
fn bootstrap_splits_every_slot_once_and_only_once() {
    let mut state = MetaState::default();
    assert_eq!(state.owner(Slot(0)), None);
    let boot = MetaCommand::Bootstrap {
        members: members(&[1, 2, 3]),
        groups: 16,
        replication: 3,
    };
    state.apply(&boot).unwrap();
    check(&state);
    assert_eq!(state.version, 1);
    assert_eq!(state.groups.len(), 16);
    assert_eq!(
        state.owner(Slot(0)),
        Some(Owner {
            group: GroupId(1),
            epoch: Epoch(1)
        })
    );
    assert_eq!(state.owner(Slot(16383)).map(|o| o.group), Some(GroupId(16)));
    assert_eq!(state.ranges_of(GroupId(2)), vec![(Slot(1024), Slot(2047))]);
    // Every founding member proposes the same bootstrap; only the first applies.
    let before = state.clone();
    assert_eq!(state.apply(&boot), Err(Refused::AlreadyBootstrapped));
    assert_eq!(
        state, before,
        "a refusal changes nothing, the version included"
    );
}

#[test]
fn bad_commands_are_refused_and_change_nothing() {
    let mut state = MetaState::default();
    let bad = [
        MetaCommand::Bootstrap {
            members: BTreeMap::new(),
            groups: 16,
            replication: 3,
        },
        MetaCommand::Bootstrap {
            members: members(&[1]),
            groups: 0,
            replication: 1,
        },
        MetaCommand::Bootstrap {
            members: members(&[1]),
            groups: 16385,
            replication: 1,
        },
        MetaCommand::Bootstrap {
            members: members(&[1]),
            groups: 1,
            replication: 0,
        },
        MetaCommand::SetReplicas {
            group: GroupId(1),
            replicas: BTreeSet::from([1]),
        },
        MetaCommand::RemoveMember { id: 9 },
    ];
    for command in &bad {
        assert!(state.apply(command).is_err(), "{command:?}");
        assert_eq!(state, MetaState::default(), "{command:?} changed the state");
    }
    state
        .apply(&MetaCommand::Bootstrap {
            members: members(&[1, 2, 3]),
            groups: 4,
            replication: 3,
        })
        .unwrap();
    let before = state.clone();
    for command in [
        MetaCommand::SetReplicas {
            group: GroupId(5),
            replicas: BTreeSet::from([1]),
        },
        MetaCommand::SetReplicas {
            group: GroupId(1),
            replicas: BTreeSet::new(),
        },
        MetaCommand::SetReplicas {
            group: GroupId(1),
            replicas: BTreeSet::from([1, 9]),
        },
        MetaCommand::RemoveMember { id: 2 },
    ] {
        assert!(state.apply(&command).is_err(), "{command:?}");
        assert_eq!(state, before, "{command:?} changed the state");
    }
}

#[test]
fn members_come_and_go_with_the_version() {
    let mut state = MetaState::default();
    state
        .apply(&MetaCommand::Bootstrap {
            members: members(&[1, 2, 3]),
            groups: 3,
            replication: 3,
        })
        .unwrap();
    let add = MetaCommand::SetMember {
        id: 4,
        member: member(4),
    };
    state.apply(&add).unwrap();
    assert_eq!(state.version, 2);
    state.apply(&add).unwrap();
    assert_eq!(
        state.version, 2,
        "setting what is already there is no change"
    );
    state
        .apply(&MetaCommand::SetReplicas {
            group: GroupId(2),
            replicas: BTreeSet::from([2, 3, 4]),
        })
        .unwrap();
    state
        .apply(&MetaCommand::SetReplicas {
            group: GroupId(1),
            replicas: BTreeSet::from([2, 3, 4]),
        })
        .unwrap();
    state
        .apply(&MetaCommand::SetReplicas {
            group: GroupId(3),
            replicas: BTreeSet::from([2, 3, 4]),
        })
        .unwrap();
    check(&state);
    state.apply(&MetaCommand::RemoveMember { id: 1 }).unwrap();
    assert!(!state.members.contains_key(&1));
    check(&state);
    assert_eq!(state.version, 6);
}

#[test]
fn slots_split_evenly_for_every_group_count() {
    for groups in [1, 2, 3, 7, 16, 64, 1000, 16384] {
        let ranges = even_slots(groups);
        assert_eq!(ranges.len(), groups as usize);
        let sizes: Vec<u32> = ranges
            .iter()
            .map(|&(a, b, _)| u32::from(b.0) - u32::from(a.0) + 1)
            .collect();
        assert_eq!(sizes.iter().sum::<u32>(), 16384);
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 1, "{groups} groups: sizes {min}..{max}");
    }
}

#[test]
fn replicas_and_leaders_spread_evenly() {
    for (groups, nodes, rf) in [(16, 3, 3), (16, 5, 3), (16, 4, 3), (64, 7, 3), (3, 5, 1)] {
        let ids: Vec<NodeId> = (1..=nodes).collect();
        let placed = replicas(groups, &ids, rf);
        let mut held: BTreeMap<NodeId, usize> = ids.iter().map(|&n| (n, 0)).collect();
        let mut leads: BTreeMap<NodeId, usize> = ids.iter().map(|&n| (n, 0)).collect();
        for (g, r) in &placed {
            assert_eq!(r.len(), rf.min(nodes as usize), "group {g}");
            for n in r {
                *held.get_mut(n).unwrap() += 1;
            }
            *leads.get_mut(&preferred_leader(*g, r).unwrap()).unwrap() += 1;
        }
        let spread =
            |m: &BTreeMap<NodeId, usize>| m.values().max().unwrap() - m.values().min().unwrap();
        assert!(
            spread(&held) <= 1,
            "{groups}/{nodes}/{rf}: replicas {held:?}"
        );
        if rf as u64 == nodes {
            // Every node holds every group: leaderships alone tell them apart.
            assert!(spread(&leads) <= 1, "{groups}/{nodes}: leaders {leads:?}");
        }
    }
}

#[test]
fn states_and_commands_round_trip_and_garbage_is_an_error() {
    let mut state = MetaState::default();
    let boot = MetaCommand::Bootstrap {
        members: members(&[1, 2, 3]),
        groups: 16,
        replication: 3,
    };
    assert_eq!(MetaCommand::decode(&boot.encode()).unwrap(), boot);
    state.apply(&boot).unwrap();
    assert_eq!(MetaState::decode(&state.encode()).unwrap(), state);
    assert!(MetaState::decode(&[0xff; 7]).is_err());
    assert!(MetaCommand::decode(&[9, 9, 9]).is_err());
    let bytes = state.encode();
    assert!(MetaState::decode(&bytes[..bytes.len() / 2]).is_err());
}
