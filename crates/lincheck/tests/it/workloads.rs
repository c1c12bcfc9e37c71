//! Hand-made histories of the counter, set and list-append workloads: valid ones, and one
//! per anomaly each checker looks for.

use lincheck::history::Type;
use lincheck::{check, AnomalyKind, Report, Verdict, Workload};
use serde_json::{json, Value};

use crate::build::Builder;

fn kinds(report: &Report) -> Vec<AnomalyKind> {
    match &report.verdict {
        Verdict::Invalid { anomalies } => anomalies.iter().map(|a| a.kind).collect(),
        _ => Vec::new(),
    }
}

// Counter: `add n` and `read` on key "c".

fn add(b: &mut Builder, p: u64, n: i64) -> &mut Builder {
    b.invoke(p, "add", Some("c"), json!(n))
}

fn read(b: &mut Builder, p: u64) -> &mut Builder {
    b.invoke(p, "read", Some("c"), Value::Null)
}

#[test]
fn counter_reads_within_bounds_are_valid() {
    let mut b = Builder::new();
    read(&mut b, 1).complete(1, Type::Ok, Value::Null);
    add(&mut b, 1, 2).complete(1, Type::Ok, json!(2));
    add(&mut b, 2, 3); // unknown: may be in any later read, or not
    b.complete(2, Type::Info, json!(3));
    add(&mut b, 3, 10).complete(3, Type::Fail, json!(10));
    read(&mut b, 1).complete(1, Type::Ok, json!(5));
    add(&mut b, 4, -1);
    read(&mut b, 1).complete(1, Type::Ok, json!(1)); // concurrent with the -1
    b.complete(4, Type::Ok, json!(-1));
    read(&mut b, 1).complete(1, Type::Ok, json!(4)); // final: 2 + 3 - 1
    let report = check(Workload::Counter, &b.done());
    assert_eq!(report.valid(), Some(true), "{report}");
    assert_eq!(
        (report.counts.ops, report.counts.info, report.counts.fail),
        (8, 1, 1)
    );
}

#[test]
fn counter_lost_and_doubled_increments_are_out_of_bounds() {
    let mut lost = Builder::new();
    add(&mut lost, 1, 1).complete(1, Type::Ok, json!(1));
    add(&mut lost, 1, 1).complete(1, Type::Ok, json!(1));
    read(&mut lost, 2).complete(2, Type::Ok, json!(1));
    let report = check(Workload::Counter, &lost.done());
    assert_eq!(kinds(&report), [AnomalyKind::ReadOutOfBounds], "{report}");
    assert!(
        report
            .to_string()
            .contains("read 1, but the adds allow only 2..=2"),
        "{report}"
    );

    let mut doubled = Builder::new();
    add(&mut doubled, 1, 1).complete(1, Type::Ok, json!(1));
    add(&mut doubled, 2, 1);
    read(&mut doubled, 3).complete(3, Type::Ok, json!(3));
    doubled.complete(2, Type::Info, json!(1));
    let report = check(Workload::Counter, &doubled.done());
    assert_eq!(kinds(&report), [AnomalyKind::ReadOutOfBounds], "{report}");
}

#[test]
fn counter_a_failed_add_must_not_show() {
    let mut b = Builder::new();
    add(&mut b, 1, 5).complete(1, Type::Fail, json!(5));
    read(&mut b, 2).complete(2, Type::Ok, json!(5));
    assert_eq!(check(Workload::Counter, &b.done()).valid(), Some(false));
}

// Set: `add v` and `read` on key "s".

fn set_add(b: &mut Builder, p: u64, v: i64, kind: Type) -> &mut Builder {
    b.invoke(p, "add", Some("s"), json!(v))
        .complete(p, kind, json!(v))
}

fn set_read<'b>(b: &'b mut Builder, p: u64, values: &[i64]) -> &'b mut Builder {
    b.invoke(p, "read", Some("s"), Value::Null)
        .complete(p, Type::Ok, json!(values))
}

#[test]
fn set_reads_with_every_acknowledged_add_are_valid() {
    let mut b = Builder::new();
    set_add(&mut b, 1, 1, Type::Ok);
    set_add(&mut b, 2, 2, Type::Info); // may or may not be there
    set_add(&mut b, 3, 3, Type::Fail);
    set_read(&mut b, 4, &[1]);
    set_add(&mut b, 5, 4, Type::Ok);
    set_read(&mut b, 4, &[1, 2, 4]);
    let report = check(Workload::Set, &b.done());
    assert_eq!(report.valid(), Some(true), "{report}");
}

#[test]
fn set_anomalies() {
    let mut lost = Builder::new();
    set_add(&mut lost, 1, 1, Type::Ok);
    set_add(&mut lost, 1, 2, Type::Ok);
    set_read(&mut lost, 2, &[1, 2]);
    set_read(&mut lost, 2, &[2]);
    let report = check(Workload::Set, &lost.done());
    assert_eq!(kinds(&report), [AnomalyKind::LostWrite], "{report}");
    assert!(
        report
            .to_string()
            .contains("1 was added (ok) before the final read began"),
        "{report}"
    );

    let mut stale = Builder::new();
    set_add(&mut stale, 1, 1, Type::Ok);
    set_read(&mut stale, 2, &[]);
    set_read(&mut stale, 2, &[1]);
    assert_eq!(
        kinds(&check(Workload::Set, &stale.done())),
        [AnomalyKind::StaleRead]
    );

    let mut unexpected = Builder::new();
    set_add(&mut unexpected, 1, 1, Type::Ok);
    set_add(&mut unexpected, 1, 2, Type::Fail);
    set_read(&mut unexpected, 2, &[1, 2, 3, 1]);
    let report = check(Workload::Set, &unexpected.done());
    assert_eq!(
        kinds(&report),
        [
            AnomalyKind::UnexpectedValue,
            AnomalyKind::UnexpectedValue,
            AnomalyKind::Duplicate
        ],
        "{report}"
    );
}

#[test]
fn set_without_a_read_is_unknown() {
    let mut b = Builder::new();
    set_add(&mut b, 1, 1, Type::Ok);
    let report = check(Workload::Set, &b.done());
    assert_eq!(report.valid(), None, "{report}");
}

// List-append: transactions of ["append", k, v] and ["r", k, list].

/// A transaction by `p`, completed with `kind`; reads on the invocation carry null.
fn txn(b: &mut Builder, p: u64, kind: Type, micros: Value) -> &mut Builder {
    let invoke: Vec<Value> = micros
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            if m[0] == "r" {
                json!(["r", m[1], null])
            } else {
                m.clone()
            }
        })
        .collect();
    b.invoke(p, "txn", None, json!(invoke))
        .complete(p, kind, micros)
}

fn list_append(b: &mut Builder) -> Report {
    check(Workload::ListAppend, &b.done())
}

#[test]
fn list_append_valid_history() {
    let mut b = Builder::new();
    txn(
        &mut b,
        1,
        Type::Ok,
        json!([["append", "x", 1], ["r", "x", [1]]]),
    );
    txn(&mut b, 2, Type::Info, json!([["append", "x", 2]]));
    txn(&mut b, 3, Type::Fail, json!([["append", "x", 9]]));
    txn(
        &mut b,
        1,
        Type::Ok,
        json!([["r", "x", [1]], ["append", "y", 1]]),
    );
    txn(
        &mut b,
        1,
        Type::Ok,
        json!([["append", "x", 3], ["r", "x", [1, 2, 3]], ["r", "y", [1]]]),
    );
    txn(
        &mut b,
        4,
        Type::Ok,
        json!([["r", "x", [1, 2, 3]], ["r", "z", null]]),
    );
    let report = list_append(&mut b);
    assert_eq!(report.valid(), Some(true), "{report}");
    assert_eq!(report.counts.ops, 6);
}

#[test]
fn list_append_lost_append() {
    let mut b = Builder::new();
    txn(&mut b, 1, Type::Ok, json!([["append", "x", 1]]));
    txn(&mut b, 1, Type::Ok, json!([["append", "x", 2]]));
    txn(&mut b, 2, Type::Ok, json!([["r", "x", [1]]]));
    let report = list_append(&mut b);
    assert_eq!(kinds(&report), [AnomalyKind::LostWrite], "{report}");
}

#[test]
fn list_append_incompatible_orders() {
    let mut b = Builder::new();
    txn(&mut b, 1, Type::Ok, json!([["append", "x", 1]]));
    txn(&mut b, 2, Type::Ok, json!([["append", "x", 2]]));
    txn(&mut b, 3, Type::Ok, json!([["r", "x", [1, 2]]]));
    txn(&mut b, 3, Type::Ok, json!([["r", "x", [2, 1]]]));
    let report = list_append(&mut b);
    assert_eq!(kinds(&report), [AnomalyKind::IncompatibleOrder], "{report}");
}

#[test]
fn list_append_duplicates_and_values_never_appended() {
    let mut b = Builder::new();
    txn(&mut b, 1, Type::Ok, json!([["append", "x", 1]]));
    txn(&mut b, 1, Type::Fail, json!([["append", "x", 2]]));
    txn(&mut b, 2, Type::Ok, json!([["r", "x", [1, 1, 2, 7]]]));
    let report = list_append(&mut b);
    assert_eq!(
        kinds(&report),
        [
            AnomalyKind::Duplicate,
            AnomalyKind::UnexpectedValue,
            AnomalyKind::UnexpectedValue
        ],
        "{report}"
    );
}

#[test]
fn list_append_a_shorter_read_after_a_longer_one_is_stale() {
    let mut b = Builder::new();
    txn(&mut b, 1, Type::Info, json!([["append", "x", 1]]));
    txn(&mut b, 2, Type::Ok, json!([["r", "x", [1]]]));
    txn(&mut b, 2, Type::Ok, json!([["r", "x", []]]));
    let report = list_append(&mut b);
    assert_eq!(kinds(&report), [AnomalyKind::StaleRead], "{report}");
}

#[test]
fn list_append_a_transaction_sees_its_own_appends() {
    let mut b = Builder::new();
    txn(
        &mut b,
        1,
        Type::Ok,
        json!([["append", "x", 1], ["r", "x", []]]),
    );
    let report = list_append(&mut b);
    assert_eq!(
        kinds(&report),
        [AnomalyKind::InternalInconsistency],
        "{report}"
    );
    let mut b = Builder::new();
    txn(
        &mut b,
        1,
        Type::Ok,
        json!([["r", "x", [1]], ["append", "x", 1]]),
    );
    let report = list_append(&mut b);
    assert_eq!(
        kinds(&report),
        [AnomalyKind::InternalInconsistency],
        "{report}"
    );
}

#[test]
fn list_append_malformed_micro_operations_are_a_clear_unknown() {
    let mut b = Builder::new();
    txn(&mut b, 1, Type::Ok, json!([["push", "x", 1]]));
    let report = list_append(&mut b);
    assert_eq!(report.valid(), None);
    assert!(
        report
            .to_string()
            .contains("a micro-operation is \"append\" or \"r\""),
        "{report}"
    );
}
