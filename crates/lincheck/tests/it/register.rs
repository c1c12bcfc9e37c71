//! Hand-made register histories, valid and invalid, checked end to end through
//! `lincheck::check` (process numbers are the `p` arguments; everything is on key "x"
//! unless said otherwise).

use lincheck::history::Type;
use lincheck::{check, check_with, AnomalyKind, Options, Report, Verdict, Workload};
use serde_json::json;

use crate::build::Builder;

fn register(b: &mut Builder) -> Report {
    check(Workload::Register, &b.done())
}

/// The single anomaly of an invalid report.
fn the_anomaly(report: &Report) -> &lincheck::Anomaly {
    match &report.verdict {
        Verdict::Invalid { anomalies } if anomalies.len() == 1 => &anomalies[0],
        other => panic!("expected one anomaly, got {other}"),
    }
}

#[test]
fn sequential_writes_and_reads_are_valid() {
    let report = register(
        Builder::new()
            .r(1)
            .ret(1, None)
            .w(1, 1)
            .ok(1)
            .r(2)
            .ret(2, Some(1)),
    );
    assert_eq!(report.valid(), Some(true), "{report}");
    assert_eq!((report.counts.ops, report.counts.ok), (3, 3));
}

#[test]
fn a_stale_read_is_invalid_and_shrinks_to_three_operations() {
    let mut b = Builder::new();
    // Noise first: a valid stretch of writes and reads.
    for v in 10..20 {
        b.w(1, v).ok(1).r(2).ret(2, Some(v));
    }
    b.w(1, 1).ok(1).w(2, 2).ok(2).r(3).ret(3, Some(1));
    let report = register(&mut b);
    assert_eq!(report.valid(), Some(false));
    let anomaly = the_anomaly(&report);
    assert_eq!(anomaly.kind, AnomalyKind::NotLinearizable);
    assert_eq!(anomaly.key.as_deref(), Some("x"));
    let ops: Vec<String> = anomaly.ops.iter().map(|op| op.to_string()).collect();
    assert_eq!(
        ops,
        [
            "p1 write x 1 → ok [#40..#41]",
            "p2 write x 2 → ok [#42..#43]",
            "p3 read x → 1 [#44..#45]"
        ]
    );
    assert_eq!(anomaly.sub_history.len(), 6);
    assert!(
        anomaly.explanation.contains(": the longest order that works is [p1 write x 1 → ok [#40..#41]; p2 write x 2 → ok [#42..#43]], leaving 2, and then p3 read x → 1 [#44..#45] cannot take effect"),
        "{}",
        anomaly.explanation
    );
}

#[test]
fn a_lost_write_is_invalid() {
    let report = register(Builder::new().w(1, 1).ok(1).r(2).ret(2, None));
    let anomaly = the_anomaly(&report);
    assert_eq!(anomaly.ops.len(), 2, "{report}");
}

#[test]
fn a_read_of_a_value_never_written_is_invalid() {
    let report = register(Builder::new().w(1, 1).ok(1).r(2).ret(2, Some(5)));
    let anomaly = the_anomaly(&report);
    assert_eq!(anomaly.ops.len(), 1, "{report}");
    assert!(
        anomaly.explanation.contains("no operation ever wrote 5"),
        "{}",
        anomaly.explanation
    );
}

#[test]
fn a_read_of_a_failed_write_is_invalid() {
    let report = register(Builder::new().w(1, 1).fail(1).r(2).ret(2, Some(1)));
    assert_eq!(report.valid(), Some(false), "{report}");
    assert_eq!(report.counts.fail, 1);
}

#[test]
fn overlapping_writes_may_take_effect_in_either_order() {
    // p1 and p2 write concurrently; both return before the reads.
    let mut b = Builder::new();
    b.w(1, 1).w(2, 2).ok(1).ok(2);
    let mut one = b.clone();
    assert_eq!(
        register(one.r(3).ret(3, Some(1)).r(3).ret(3, Some(1))).valid(),
        Some(true)
    );
    let mut two = b.clone();
    assert_eq!(register(two.r(3).ret(3, Some(2))).valid(), Some(true));
    // But not both, one after the other.
    let mut both = b.clone();
    assert_eq!(
        register(both.r(3).ret(3, Some(1)).r(3).ret(3, Some(2))).valid(),
        Some(false)
    );
}

#[test]
fn a_read_overlapping_a_write_may_see_either_value() {
    let before = register(
        Builder::new()
            .w(1, 1)
            .ok(1)
            .w(1, 2)
            .r(2)
            .ret(2, Some(1))
            .ok(1),
    );
    assert_eq!(before.valid(), Some(true), "{before}");
    let after = register(
        Builder::new()
            .w(1, 1)
            .ok(1)
            .w(1, 2)
            .r(2)
            .ret(2, Some(2))
            .ok(1),
    );
    assert_eq!(after.valid(), Some(true), "{after}");
    // Two overlapping reads may not see the new value then the old one in sequence.
    let flip = register(
        Builder::new()
            .w(1, 1)
            .ok(1)
            .w(1, 2)
            .r(2)
            .ret(2, Some(2))
            .r(3)
            .ret(3, Some(1))
            .ok(1),
    );
    assert_eq!(flip.valid(), Some(false), "{flip}");
}

#[test]
fn an_info_write_may_take_effect_late_or_never() {
    // Unknown write of 1; reads long after it see nothing, then 1.
    let late = register(
        Builder::new()
            .w(1, 1)
            .info(1)
            .r(2)
            .ret(2, None)
            .r(2)
            .ret(2, None)
            .r(2)
            .ret(2, Some(1)),
    );
    assert_eq!(late.valid(), Some(true), "{late}");
    assert_eq!(late.counts.info, 1);
    let never = register(
        Builder::new()
            .w(1, 1)
            .info(1)
            .r(2)
            .ret(2, None)
            .w(2, 2)
            .ok(2),
    );
    assert_eq!(never.valid(), Some(true), "{never}");
    // Once seen, it stays (until the next write).
    let flicker = register(
        Builder::new()
            .w(1, 1)
            .info(1)
            .r(2)
            .ret(2, Some(1))
            .r(2)
            .ret(2, None),
    );
    assert_eq!(flicker.valid(), Some(false), "{flicker}");
    // Seen before it was invoked: impossible.
    let early = register(Builder::new().r(2).ret(2, Some(1)).w(1, 1).info(1));
    assert_eq!(early.valid(), Some(false), "{early}");
}

#[test]
fn an_info_write_can_take_effect_after_later_writes() {
    // p1's write of 1 is unknown; p2 writes 2 afterwards; a read may then see 1 (p1's
    // write landed last) and then keep seeing it.
    let report = register(
        Builder::new()
            .w(1, 1)
            .info(1)
            .w(2, 2)
            .ok(2)
            .r(3)
            .ret(3, Some(2))
            .r(3)
            .ret(3, Some(1))
            .r(3)
            .ret(3, Some(1)),
    );
    assert_eq!(report.valid(), Some(true), "{report}");
    // ...but not go back to 2.
    let back = register(
        Builder::new()
            .w(1, 1)
            .info(1)
            .w(2, 2)
            .ok(2)
            .r(3)
            .ret(3, Some(1))
            .r(3)
            .ret(3, Some(2)),
    );
    assert_eq!(back.valid(), Some(false), "{back}");
}

#[test]
fn info_writes_of_one_value_written_twice_stay_possible() {
    // Two writes of 7, both unknown: either may be the one a late read sees.
    let report = register(
        Builder::new()
            .w(1, 7)
            .info(1)
            .w(2, 7)
            .info(2)
            .w(3, 1)
            .ok(3)
            .r(4)
            .ret(4, Some(7)),
    );
    assert_eq!(report.valid(), Some(true), "{report}");
}

#[test]
fn an_operation_still_pending_at_the_end_counts_as_info() {
    let report = register(Builder::new().w(1, 1).r(2).ret(2, Some(1)));
    assert_eq!(report.valid(), Some(true), "{report}");
    assert_eq!(report.counts.info, 1);
}

#[test]
fn keys_are_checked_independently_and_named_in_anomalies() {
    let mut b = Builder::new();
    b.invoke(1, "write", Some("a"), json!(1))
        .complete(1, Type::Ok, json!(1));
    b.invoke(2, "write", Some("b"), json!(1))
        .complete(2, Type::Ok, json!(1));
    // Reads 1 on "a" (fine) and null on "b" (lost).
    b.invoke(3, "read", Some("a"), json!(null))
        .complete(3, Type::Ok, json!(1));
    b.invoke(3, "read", Some("b"), json!(null))
        .complete(3, Type::Ok, json!(null));
    let report = register(&mut b);
    assert_eq!(the_anomaly(&report).key.as_deref(), Some("b"), "{report}");
}

#[test]
fn a_search_over_budget_is_unknown_not_a_hang() {
    let mut b = Builder::new();
    for p in 0..6 {
        b.w(p, p as i64);
    }
    for p in 0..6 {
        b.ok(p);
    }
    let options = Options {
        max_states: 3,
        ..Options::default()
    };
    let report = check_with(Workload::Register, &b.done(), &options);
    assert_eq!(report.valid(), None, "{report}");
    assert!(
        report.to_string().contains("gave up after 3 states"),
        "{report}"
    );
}

#[test]
fn bad_values_are_a_clear_unknown() {
    let report = register(
        Builder::new()
            .invoke(1, "write", Some("x"), json!("seven"))
            .ok(1),
    );
    assert_eq!(report.valid(), None);
    assert_eq!(
        report.to_string(),
        "register: 1 ops (1 ok, 0 fail, 0 info): unknown: bad history: event #0: a write's value must be an integer or null\n"
    );
}

#[test]
fn an_invalid_report_serializes_for_verdict_json() {
    let report = register(Builder::new().w(1, 1).ok(1).r(2).ret(2, Some(5)));
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["workload"], "register");
    assert_eq!(json["valid"], false);
    assert_eq!(
        json["counts"],
        json!({"ops": 2, "ok": 2, "fail": 0, "info": 0})
    );
    assert_eq!(json["result"]["verdict"], "invalid");
    let anomaly = &json["result"]["anomalies"][0];
    assert_eq!(anomaly["kind"], "not-linearizable");
    assert_eq!(anomaly["ops"][0]["invoke_index"], 2);
    assert_eq!(anomaly["sub_history"][1]["value"], 5);
}
