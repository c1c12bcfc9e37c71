use bytes::Bytes;
use resp::Frame;
use types::{key_slot, GroupId, Slot};

use super::*;
use crate::Proposal;

const NOW: i64 = 1_000_000;

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|s| Bytes::from(s.to_string()))
        .collect()
}

fn run(db: &mut Db, line: &str) -> Frame {
    Proposal::Command {
        args: args(line),
        seed: 1,
    }
    .apply(db, NOW)
}

fn step(db: &mut Db, step: Step) -> Frame {
    // Through the log's encoding, as a replica sees it.
    let bytes = Proposal::Move(step).encode();
    Proposal::decode(&bytes).unwrap().apply(db, NOW)
}

fn claimed(ranges: &[(u16, u16)]) -> Db {
    let mut db = Db::new();
    let claim = Claim {
        epoch: 1,
        ranges: ranges.iter().map(|&(a, b)| (Slot(a), Slot(b))).collect(),
    };
    assert_eq!(Proposal::Claim(claim).apply(&mut db, NOW), Frame::OK);
    db
}

/// A key whose slot is `slot` (`{tag}` hash tags found by search).
fn key_in(slot: u16, n: usize) -> String {
    (0u64..)
        .map(|i| format!("{{t{i}}}:{n}"))
        .find(|k| key_slot(k.as_bytes()).0 == slot)
        .unwrap()
}

fn frozen_counts(reply: &Frame) -> (u64, [u8; 20]) {
    let Frame::Array(items) = reply else {
        panic!("freeze replied {reply:?}")
    };
    let (Frame::Integer(n), Frame::Bulk(d)) = (&items[0], &items[1]) else {
        panic!("freeze replied {reply:?}")
    };
    (*n as u64, from_hex(d).unwrap())
}

/// Source owns 0-99, target 100-199; keys in slots 10 and 11 (moving) and 50 (staying).
fn two_groups() -> (Db, Db, Vec<String>) {
    let mut source = claimed(&[(0, 99)]);
    let target = claimed(&[(100, 199)]);
    let mut moving = Vec::new();
    for n in 0..5 {
        let k = key_in(10 + (n % 2) as u16, n);
        assert_eq!(run(&mut source, &format!("SET {k} v{n}")), Frame::OK);
        moving.push(k);
    }
    run(&mut source, &format!("SADD {} a b c", key_in(11, 9)));
    moving.push(key_in(11, 9));
    run(&mut source, &format!("SET {} x PX 5000", key_in(10, 8)));
    moving.push(key_in(10, 8));
    run(&mut source, &format!("SET {} stays", key_in(50, 0)));
    (source, target, moving)
}

fn copy(source: &Db, target: &mut Db, job: JobId, ranges: &[(Slot, Slot)], chunk: usize) {
    let mut keys = Vec::new();
    for &(a, b) in ranges {
        for s in a.0..=b.0 {
            keys.extend(source.raw_keys_in_slot(Slot(s)).into_iter().cloned());
        }
    }
    for part in keys.chunks(chunk) {
        let entries = encode_entries(
            part.iter()
                .map(|k| (&k[..], source.keys.get(&**k).unwrap())),
        );
        let reply = step(target, Step::Stage { job, entries });
        assert_eq!(reply, Frame::Integer(part.len() as i64));
    }
}

#[test]
fn a_move_hands_the_slots_over_at_the_commit_and_not_before() {
    let (mut source, mut target, moving) = two_groups();
    let ranges = vec![(Slot(10), Slot(11))];
    let prepare = Step::Prepare {
        job: 7,
        from: GroupId(1),
        ranges: ranges.clone(),
    };
    assert_eq!(step(&mut target, prepare.clone()), Frame::OK);
    let freeze = Step::Freeze {
        job: 7,
        to: GroupId(2),
        ranges: ranges.clone(),
    };
    let (count, digest) = frozen_counts(&step(&mut source, freeze.clone()));
    assert_eq!(count, moving.len() as u64);
    // Frozen: writes and reads of the moving slots wait; others go on.
    let refused = run(&mut source, &format!("SET {} new", moving[0]));
    assert!(crate::claim::is_refusal(&refused), "{refused:?}");
    assert!(source.get(moving[0].as_bytes(), NOW).is_some());
    assert!(crate::claim::unserved_read(&source, &args(&format!("GET {}", moving[0]))).is_some());
    assert_eq!(
        run(&mut source, &format!("SET {} ok", key_in(50, 1))),
        Frame::OK
    );
    assert!(crate::claim::is_refusal(&run(&mut source, "FLUSHALL")));
    // A frozen key that expires stays until the move ends.
    let expired = Proposal::ExpireKeys(vec![Bytes::from(moving[6].clone())]);
    expired.apply(&mut source, NOW + 10_000);
    assert!(source.keys.contains_key(moving[6].as_bytes()));

    copy(&source, &mut target, 7, &ranges, 3);
    // Staged keys are invisible on the target, and writes there are not served yet.
    assert_eq!(target.len(), 0);
    assert!(target.get(moving[0].as_bytes(), NOW).is_none());
    assert!(crate::claim::is_refusal(&run(
        &mut target,
        &format!("SET {} t", moving[0])
    )));

    // A wrong count or digest does not commit.
    let wrong = Step::Commit {
        job: 7,
        count,
        digest: [0; 20],
    };
    assert!(step(&mut target, wrong).is_error());
    let commit = Step::Commit {
        job: 7,
        count,
        digest,
    };
    assert_eq!(step(&mut target, commit.clone()), Frame::OK);
    assert_eq!(target.claim().unwrap().epoch, 2);
    assert_eq!(
        target.claim().unwrap().ranges,
        vec![(Slot(10), Slot(11)), (Slot(100), Slot(199))]
    );
    for k in &moving[..5] {
        assert_eq!(
            run(&mut target, &format!("GET {k}")),
            source_value(&mut source, k)
        );
    }
    assert_eq!(
        run(&mut target, &format!("SCARD {}", moving[5])),
        Frame::Integer(3)
    );
    assert_eq!(target.len(), moving.len());
    // Committed: an abort is refused, the commit again is a no-op.
    assert!(step(&mut target, Step::Abort { job: 7 }).is_error());
    assert_eq!(step(&mut target, commit), Frame::OK);
    assert_eq!(step(&mut target, prepare), Frame::OK);
    assert_eq!(target.claim().unwrap().epoch, 2);

    // Release: the source deletes and remembers where the slots went.
    assert_eq!(step(&mut source, Step::Release { job: 7 }), Frame::OK);
    assert_eq!(step(&mut source, Step::Release { job: 7 }), Frame::OK);
    assert_eq!(source.len(), 2, "only slot 50's keys stay");
    assert_eq!(
        source.claim().unwrap().ranges,
        vec![(Slot(0), Slot(9)), (Slot(12), Slot(99))]
    );
    assert_eq!(source.claim().unwrap().epoch, 2);
    assert_eq!(source.moves().gone_to(Slot(11)), Some(GroupId(2)));
    assert_eq!(source.moves().gone_to(Slot(12)), None);
    assert!(crate::claim::is_refusal(&run(
        &mut source,
        &format!("SET {} x", moving[0])
    )));
    assert!(
        step(&mut source, freeze).is_error(),
        "a released job never freezes again"
    );
    assert_eq!(run(&mut source, "FLUSHALL"), Frame::OK);
}

fn source_value(source: &mut Db, key: &str) -> Frame {
    // The source still holds the key until the release; read it without the claim check.
    match source.get(key.as_bytes(), NOW) {
        Some(crate::value::Value::Str(s)) => Frame::Bulk(Bytes::copy_from_slice(s)),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn an_aborted_job_never_commits_and_the_source_serves_again() {
    let (mut source, mut target, moving) = two_groups();
    let ranges = vec![(Slot(10), Slot(11))];
    step(
        &mut target,
        Step::Prepare {
            job: 3,
            from: GroupId(1),
            ranges: ranges.clone(),
        },
    );
    let (count, digest) = frozen_counts(&step(
        &mut source,
        Step::Freeze {
            job: 3,
            to: GroupId(2),
            ranges: ranges.clone(),
        },
    ));
    copy(&source, &mut target, 3, &ranges, 100);
    assert_eq!(step(&mut target, Step::Abort { job: 3 }), Frame::OK);
    assert!(step(
        &mut target,
        Step::Commit {
            job: 3,
            count,
            digest
        }
    )
    .is_error());
    assert!(step(
        &mut target,
        Step::Stage {
            job: 3,
            entries: encode_entries([])
        }
    )
    .is_error());
    assert_eq!(target.len(), 0);
    assert_eq!(step(&mut source, Step::Unfreeze { job: 3 }), Frame::OK);
    assert!(step(&mut source, Step::Release { job: 3 }).is_error());
    assert_eq!(
        run(&mut source, &format!("SET {} after", moving[0])),
        Frame::OK
    );
    assert_eq!(source.claim().unwrap().epoch, 1);
}

#[test]
fn steps_are_refused_where_they_do_not_fit() {
    let (mut source, mut target, _) = two_groups();
    // The target cannot import slots it owns; the source cannot freeze slots it does not.
    let own = Step::Prepare {
        job: 1,
        from: GroupId(1),
        ranges: vec![(Slot(150), Slot(150))],
    };
    assert!(step(&mut target, own).is_error());
    let foreign = Step::Freeze {
        job: 1,
        to: GroupId(2),
        ranges: vec![(Slot(99), Slot(100))],
    };
    assert!(step(&mut source, foreign).is_error());
    // Two jobs cannot freeze the same slot.
    let first = Step::Freeze {
        job: 2,
        to: GroupId(2),
        ranges: vec![(Slot(10), Slot(20))],
    };
    assert!(!step(&mut source, first).is_error());
    let second = Step::Freeze {
        job: 3,
        to: GroupId(3),
        ranges: vec![(Slot(20), Slot(30))],
    };
    assert!(step(&mut source, second).is_error());
    // A key outside the job's slots is not staged.
    step(
        &mut target,
        Step::Prepare {
            job: 2,
            from: GroupId(1),
            ranges: vec![(Slot(10), Slot(20))],
        },
    );
    let k = key_in(50, 0);
    let entries = encode_entries([(k.as_bytes(), source.keys.get(k.as_bytes()).unwrap())]);
    assert!(step(&mut target, Step::Stage { job: 2, entries }).is_error());
    // A group without a claim takes no part.
    assert!(step(&mut Db::new(), Step::Abort { job: 1 }).is_error());
}

#[test]
fn a_snapshot_keeps_a_move_in_progress() {
    let (mut source, mut target, _) = two_groups();
    let ranges = vec![(Slot(10), Slot(11))];
    step(
        &mut target,
        Step::Prepare {
            job: 5,
            from: GroupId(1),
            ranges: ranges.clone(),
        },
    );
    let (count, digest) = frozen_counts(&step(
        &mut source,
        Step::Freeze {
            job: 5,
            to: GroupId(2),
            ranges: ranges.clone(),
        },
    ));
    copy(&source, &mut target, 5, &ranges, 2);
    let reload = |db: &Db| {
        let mut bytes = Vec::new();
        db.write_snapshot(&mut bytes).unwrap();
        Db::read_snapshot(&mut bytes.as_slice()).unwrap()
    };
    let mut source2 = reload(&source);
    let mut target2 = reload(&target);
    assert_eq!(source2.moves(), source.moves());
    assert_eq!(target2.moves(), target.moves());
    assert_eq!(source2.digest(NOW), source.digest(NOW));
    // The restored replicas finish the move as the originals do.
    for t in [&mut target, &mut target2] {
        assert_eq!(
            step(
                t,
                Step::Commit {
                    job: 5,
                    count,
                    digest
                }
            ),
            Frame::OK
        );
    }
    for s in [&mut source, &mut source2] {
        assert_eq!(step(s, Step::Release { job: 5 }), Frame::OK);
    }
    assert_eq!(target2.digest(NOW), target.digest(NOW));
    assert_eq!(source2.digest(NOW), source.digest(NOW));
    assert_eq!(reload(&source2).moves(), source.moves());
}

#[test]
fn slot_sets_join_and_subtract() {
    let r = |v: &[(u16, u16)]| -> Vec<(Slot, Slot)> {
        v.iter().map(|&(a, b)| (Slot(a), Slot(b))).collect()
    };
    assert_eq!(union(&r(&[(0, 5)]), &r(&[(6, 9)])), r(&[(0, 9)]));
    assert_eq!(
        minus(&r(&[(0, 16383)]), &r(&[(0, 0), (100, 200)])),
        r(&[(1, 99), (201, 16383)])
    );
    assert!(overlaps(&r(&[(0, 5)]), &r(&[(5, 9)])));
    assert!(!overlaps(&r(&[(0, 5)]), &r(&[(6, 9)])));
    assert!(contains_all(&r(&[(0, 10)]), &r(&[(2, 3), (10, 10)])));
    assert_eq!(show_ranges(&r(&[(1, 1), (3, 9)])), "1 3-9");
    assert_eq!(from_hex(hex(&[0xab; 20]).as_bytes()), Some([0xab; 20]));
}

#[test]
fn an_unfreeze_before_any_freeze_bars_the_job_from_freezing() {
    let (mut source, _, moving) = two_groups();
    assert_eq!(step(&mut source, Step::Unfreeze { job: 9 }), Frame::OK);
    let late = Step::Freeze {
        job: 9,
        to: GroupId(2),
        ranges: vec![(Slot(10), Slot(11))],
    };
    assert!(step(&mut source, late).is_error());
    assert_eq!(
        run(&mut source, &format!("SET {} still", moving[0])),
        Frame::OK
    );
}
