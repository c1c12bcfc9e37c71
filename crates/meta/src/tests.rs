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

fn booted(groups: u32) -> MetaState {
    let mut state = MetaState::default();
    state
        .apply(&MetaCommand::Bootstrap {
            members: members(&[1, 2, 3]),
            groups,
            replication: 3,
        })
        .unwrap();
    state
}

fn step(state: &mut MetaState, job: JobId, phase: Phase) -> Result<(), Refused> {
    state.apply(&MetaCommand::MoveStep {
        job,
        phase,
        keys: None,
    })
}

#[test]
fn a_move_changes_the_map_only_when_done() {
    let mut state = booted(4);
    // Group 1 holds 0-4095.
    let ranges = vec![(Slot(10), Slot(20)), (Slot(100), Slot(100))];
    let plan = MetaCommand::PlanMove {
        ranges: ranges.clone(),
        from: GroupId(1),
        to: GroupId(3),
    };
    state.apply(&plan).unwrap();
    assert_eq!(state.next_job, 1);
    // The same slots cannot move twice at once, even partly.
    let again = MetaCommand::PlanMove {
        ranges: vec![(Slot(20), Slot(30))],
        from: GroupId(1),
        to: GroupId(2),
    };
    assert_eq!(
        state.apply(&again),
        Err(Refused::Moving { slot: 20, job: 1 })
    );
    for phase in [
        Phase::Prepared,
        Phase::Frozen,
        Phase::Copied,
        Phase::Committed,
    ] {
        step(&mut state, 1, phase).unwrap();
        assert_eq!(state.owner(Slot(15)).unwrap().group, GroupId(1));
    }
    let version = state.version;
    step(&mut state, 1, Phase::Committed).unwrap();
    assert_eq!(
        state.version, version,
        "the same phase again changes nothing"
    );
    assert!(
        step(&mut state, 1, Phase::Frozen).is_err(),
        "never backwards"
    );
    assert!(state.apply(&MetaCommand::CancelMove { job: 1 }).is_err());
    let abort = MetaCommand::FinishMove {
        job: 1,
        done: false,
        why: None,
    };
    assert!(state.apply(&abort).is_err(), "no abort after the commit");
    let done = MetaCommand::FinishMove {
        job: 1,
        done: true,
        why: None,
    };
    assert!(state.apply(&done).is_err(), "not done before the release");
    step(&mut state, 1, Phase::Released).unwrap();
    state.apply(&done).unwrap();
    check(&state);
    for s in [10, 15, 20, 100] {
        assert_eq!(
            state.owner(Slot(s)),
            Some(Owner {
                group: GroupId(3),
                epoch: Epoch(2)
            })
        );
    }
    assert_eq!(state.owner(Slot(21)).unwrap().group, GroupId(1));
    assert_eq!(state.owner(Slot(9)).unwrap().epoch, Epoch(1));
    assert_eq!(state.jobs[&1].phase, Phase::Done);
    // Now the slots can move on, from their new group only.
    assert!(state.apply(&again).is_err(), "slot 20 is in group 3 now");
    let back = MetaCommand::PlanMove {
        ranges: vec![(Slot(15), Slot(20))],
        from: GroupId(3),
        to: GroupId(1),
    };
    state.apply(&back).unwrap();
    let job = state.jobs[&2].clone();
    assert_eq!(job.epoch, Epoch(2));
    // Cancelled before the commit: aborted, the map unchanged.
    state.apply(&MetaCommand::CancelMove { job: 2 }).unwrap();
    assert!(state.jobs[&2].cancel);
    step(&mut state, 2, Phase::Frozen).unwrap();
    state
        .apply(&MetaCommand::FinishMove {
            job: 2,
            done: false,
            why: Some("cancelled".into()),
        })
        .unwrap();
    assert_eq!(state.jobs[&2].phase, Phase::Aborted);
    assert_eq!(state.owner(Slot(15)).unwrap().group, GroupId(3));
    check(&state);
    // A finished job takes no more steps.
    assert!(step(&mut state, 2, Phase::Committed).is_err());
}

#[test]
fn bad_moves_are_refused() {
    let mut state = booted(2);
    let plan = |ranges: Vec<(u16, u16)>, from: u64, to: u64| MetaCommand::PlanMove {
        ranges: ranges
            .into_iter()
            .map(|(a, b)| (Slot(a), Slot(b)))
            .collect(),
        from: GroupId(from),
        to: GroupId(to),
    };
    let before = state.clone();
    for bad in [
        plan(vec![(0, 10)], 1, 1),
        plan(vec![(0, 10)], 1, 9),
        plan(vec![(10, 0)], 1, 2),
        plan(vec![], 1, 2),
        plan(vec![(0, 10), (5, 20)], 1, 2),
        plan(vec![(8000, 8300)], 1, 2),
    ] {
        assert!(state.apply(&bad).is_err(), "{bad:?}");
    }
    assert_eq!(state, before);
    assert!(MetaState::default()
        .apply(&plan(vec![(0, 1)], 1, 2))
        .is_err());
}

#[test]
fn finished_jobs_are_kept_up_to_a_bound() {
    let mut state = booted(2);
    for i in 0..(jobs::FINISHED_KEPT as u16 + 10) {
        state
            .apply(&MetaCommand::PlanMove {
                ranges: vec![(Slot(i), Slot(i))],
                from: GroupId(1),
                to: GroupId(2),
            })
            .unwrap();
        let job = state.next_job;
        state
            .apply(&MetaCommand::FinishMove {
                job,
                done: false,
                why: None,
            })
            .unwrap();
    }
    assert_eq!(state.jobs.len(), jobs::FINISHED_KEPT);
    assert_eq!(*state.jobs.keys().next().unwrap(), 11);
}

#[test]
fn a_map_written_before_jobs_still_reads() {
    #[derive(serde::Serialize)]
    struct Old<'a> {
        version: u64,
        members: &'a BTreeMap<NodeId, Member>,
        groups: &'a BTreeMap<GroupId, BTreeSet<NodeId>>,
        slots: &'a BTreeMap<Slot, (Slot, Owner)>,
    }
    let state = booted(3);
    let old = postcard::to_stdvec(&Old {
        version: state.version,
        members: &state.members,
        groups: &state.groups,
        slots: &state.slots,
    })
    .unwrap();
    assert_eq!(MetaState::decode(&old).unwrap(), state);
    assert_eq!(MetaState::decode(&state.encode()).unwrap(), state);
}

#[test]
fn a_rebalance_evens_out_keys_by_whole_slots() {
    let groups: BTreeSet<GroupId> = (1..=4).map(GroupId).collect();
    // Group 1 holds every key: 100 in each of its slots 0-99.
    let mut slots: Vec<(GroupId, u64)> = even_slots(4)
        .into_iter()
        .flat_map(|(a, b, g)| (a.0..=b.0).map(move |_| (g, 0)))
        .collect();
    for s in slots.iter_mut().take(100) {
        s.1 = 100;
    }
    let moves = placement::rebalance(&slots, &groups, 64);
    assert!(!moves.is_empty());
    let mut held: BTreeMap<GroupId, u64> = groups.iter().map(|&g| (g, 0)).collect();
    for (s, &(g, k)) in slots.iter().enumerate() {
        let moved = moves.iter().find(|m| {
            m.ranges
                .iter()
                .any(|&(a, b)| a.0 as usize <= s && s <= b.0 as usize)
        });
        *held.get_mut(&moved.map_or(g, |m| m.to)).unwrap() += k;
    }
    for (g, n) in &held {
        assert!(
            (2_375..=2_625).contains(n),
            "group {g} holds {n} of 10,000: {moves:?}"
        );
    }
    for m in &moves {
        assert_eq!(m.from, GroupId(1));
        assert!(m.ranges.iter().all(|&(a, b)| a <= b && b.0 < 100));
    }
    // Balanced already, or nothing to move: no moves.
    assert!(placement::rebalance(&slots[..], &BTreeSet::from([GroupId(1)]), 64).is_empty());
    let empty: Vec<(GroupId, u64)> = slots.iter().map(|&(g, _)| (g, 0)).collect();
    assert!(placement::rebalance(&empty, &groups, 64).is_empty());
    // One hot slot larger than any gap stays put.
    let mut hot = empty.clone();
    hot[5].1 = 1_000;
    assert!(placement::rebalance(&hot, &groups, 64).is_empty());
}
