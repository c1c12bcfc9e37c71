//! Nemeses: which faults a run injects, when, and the `iptables` rules of a partition.
//!
//! This module is pure: [`schedule`] turns the enabled [`Kind`]s, the run's length and a
//! seeded RNG into a list of [`Step`]s (start, hold time, faults), and [`cut`] / [`rules`]
//! turn a partition shape into the node pairs to separate and the `iptables` arguments that
//! do it. The executor in `run.rs` resolves what can only be known at run time (which node
//! leads) and applies the steps to the real processes.
//!
//! Invariants:
//! - Steps never overlap: each one is healed before the next starts, and the last ends at
//!   least [`TAIL`] before the end of the run.
//! - Every enabled kind appears in the schedule when there is room for as many steps as
//!   there are kinds (kinds are dealt round-robin from a shuffled deck).
//! - A partition never touches client traffic: rules match only node-to-node pairs of the
//!   nodes' own addresses (clients connect from 127.0.0.1).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

/// One family of faults; each can be enabled alone or combined with others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Network partitions with `iptables` (isolate the leader, majority/minority, bridge,
    /// random halves).
    Partition,
    /// `kill -9` and restart (a random node, the leader, a majority).
    Kill,
    /// `SIGSTOP`, then `SIGCONT` (the leader or a random node).
    Pause,
    /// Leadership moved under load (`shuffle-leaders`, also `transfer`): the leaders of a
    /// quarter of the data groups (at least one), chosen at random, each hand their group
    /// to a random other voter (`CLUSTER TRANSFER-LEADER <node> <group>`), again every
    /// 0.8 s while the step holds.
    ShuffleLeaders,
    /// `CLUSTER FORGET` a node, wipe its disk, add it back with `--join`.
    Membership,
    /// Fill a node's disk (every node's data directory is then a small tmpfs of its own),
    /// then free it.
    DiskFull,
    /// Slots moved between data groups under load (`CLUSTER MIGRATESLOTS`): a few of the
    /// slots the workload writes to, and a random range, each to a random other group,
    /// again every [`MOVE_EVERY`] while the step holds.
    MoveSlots,
}

/// How often the move-slots nemesis starts more moves while its step holds.
pub const MOVE_EVERY: Duration = Duration::from_millis(1_500);

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Partition,
        Kind::Kill,
        Kind::Pause,
        Kind::ShuffleLeaders,
        Kind::Membership,
        Kind::DiskFull,
        Kind::MoveSlots,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::ShuffleLeaders => "shuffle-leaders",
            Kind::Membership => "membership",
            Kind::DiskFull => "disk-full",
            Kind::MoveSlots => "move-slots",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The enabled kinds of a run, parsed from `none`, `mixed` (every kind) or a
/// comma-separated list (`partition,kill`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kinds(pub Vec<Kind>);

impl Kinds {
    /// The name used in run directories and report lines.
    pub fn name(&self) -> String {
        if self.0.is_empty() {
            "none".into()
        } else if self.0.len() == Kind::ALL.len() {
            "mixed".into()
        } else {
            self.0
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join("+")
        }
    }
}

impl FromStr for Kinds {
    type Err = String;

    fn from_str(s: &str) -> Result<Kinds, String> {
        let s = s.trim();
        match s {
            "none" => return Ok(Kinds(Vec::new())),
            "mixed" => return Ok(Kinds(Kind::ALL.to_vec())),
            _ => {}
        }
        let mut kinds = BTreeSet::new();
        for part in s.split([',', '+']).map(str::trim) {
            // The name before there were many groups to shuffle.
            let part = if part == "transfer" {
                Kind::ShuffleLeaders.name()
            } else {
                part
            };
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown nemesis `{part}`: use none, mixed, or a comma-separated list of {}",
                        Kind::ALL.map(Kind::name).join(", ")
                    )
                })?;
            kinds.insert(kind);
        }
        Ok(Kinds(kinds.into_iter().collect()))
    }
}

/// The shape of a network partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The leader alone on one side.
    IsolateLeader,
    /// A minority holding the leader, the majority on the other side.
    MajorityMinority,
    /// Two halves that cannot talk, and one node that talks to both.
    Bridge,
    /// A random split into two halves (the leader on either side).
    RandomHalves,
}

impl Shape {
    pub const ALL: [Shape; 4] = [
        Shape::IsolateLeader,
        Shape::MajorityMinority,
        Shape::Bridge,
        Shape::RandomHalves,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::IsolateLeader => "isolate-leader",
            Shape::MajorityMinority => "majority-minority",
            Shape::Bridge => "bridge",
            Shape::RandomHalves => "random-halves",
        }
    }
}

/// Which nodes a kill or pause hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Leader,
    Random,
    /// A majority of the nodes (kill only), chosen at random.
    Majority,
    /// A node a slot move in progress depends on, at random: the meta group's leader (it
    /// runs the mover), or the leader of a moving job's source or target group (only when
    /// slots are moved in the run).
    MoveParty,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Leader => "leader",
            Target::Random => "random node",
            Target::Majority => "majority",
            Target::MoveParty => "node a slot move depends on",
        }
    }
}

/// One fault, as scheduled (which concrete node is decided when it is applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Partition(Shape),
    Kill(Target),
    Pause(Target),
    ShuffleLeaders,
    /// Remove a node (the leader if `leader`, else a random one), wipe it, re-add it.
    Membership {
        leader: bool,
    },
    /// Fill the disk of the leader or of a random node.
    DiskFull(Target),
    MoveSlots,
}

impl Fault {
    pub fn kind(self) -> Kind {
        match self {
            Fault::Partition(_) => Kind::Partition,
            Fault::Kill(_) => Kind::Kill,
            Fault::Pause(_) => Kind::Pause,
            Fault::ShuffleLeaders => Kind::ShuffleLeaders,
            Fault::Membership { .. } => Kind::Membership,
            Fault::DiskFull(_) => Kind::DiskFull,
            Fault::MoveSlots => Kind::MoveSlots,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(s) => write!(f, "partition {}", s.name()),
            Fault::Kill(t) => write!(f, "kill -9 {}", t.name()),
            Fault::Pause(t) => write!(f, "pause {}", t.name()),
            Fault::ShuffleLeaders => f.write_str("shuffle leaders"),
            Fault::Membership { leader: true } => f.write_str("remove and re-add the leader"),
            Fault::Membership { leader: false } => f.write_str("remove and re-add a node"),
            Fault::DiskFull(t) => write!(f, "fill the disk of the {}", t.name()),
            Fault::MoveSlots => f.write_str("move slots"),
        }
    }
}

/// Faults applied together at `start` and healed `hold` later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub start: Duration,
    pub hold: Duration,
    pub faults: Vec<Fault>,
}

/// How long faults hold and how long the cluster runs undisturbed between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Undisturbed time before the first step and between steps (inclusive range).
    pub quiet: (Duration, Duration),
    /// How long a step's faults hold (inclusive range).
    pub hold: (Duration, Duration),
}

/// Quiet time kept at the end of a run, after the last heal.
pub const TAIL: Duration = Duration::from_secs(1);

impl Timing {
    /// Timing for a run of `total`: holds of 2-4 s and quiet spells of 1.5-3 s, so a 15 s
    /// run still has a few steps; longer runs hold faults longer (up to 3-8 s).
    pub fn for_run(total: Duration) -> Timing {
        let secs = |s: f64| Duration::from_secs_f64(s);
        if total >= Duration::from_secs(45) {
            Timing {
                quiet: (secs(2.0), secs(5.0)),
                hold: (secs(3.0), secs(8.0)),
            }
        } else {
            Timing {
                quiet: (secs(1.5), secs(3.0)),
                hold: (secs(2.0), secs(4.0)),
            }
        }
    }
}

fn between(rng: &mut impl Rng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    Duration::from_millis(rng.gen_range(lo.as_millis() as u64..=hi.as_millis() as u64))
}

/// A fault of `kind` with its variant chosen at random.
/// With `moving` (slots are moved in the run), kills and pauses also aim at the nodes a
/// move depends on; without it the draws are what they always were (so a seed replays the
/// same schedule as before).
fn fault_of(kind: Kind, rng: &mut impl Rng, moving: bool) -> Fault {
    match kind {
        Kind::Partition => Fault::Partition(*Shape::ALL.choose(rng).expect("shapes")),
        Kind::Kill if moving => Fault::Kill(
            *[
                Target::Random,
                Target::Leader,
                Target::Majority,
                Target::MoveParty,
            ]
            .choose(rng)
            .expect("targets"),
        ),
        Kind::Kill => Fault::Kill(
            *[Target::Random, Target::Leader, Target::Majority]
                .choose(rng)
                .expect("targets"),
        ),
        Kind::Pause if moving && rng.gen_bool(0.5) => Fault::Pause(Target::MoveParty),
        Kind::Pause => Fault::Pause(if rng.gen_bool(0.7) {
            Target::Leader
        } else {
            Target::Random
        }),
        Kind::ShuffleLeaders => Fault::ShuffleLeaders,
        Kind::Membership => Fault::Membership {
            leader: rng.gen_bool(0.3),
        },
        Kind::DiskFull => Fault::DiskFull(if rng.gen_bool(0.6) {
            Target::Leader
        } else {
            Target::Random
        }),
        Kind::MoveSlots => Fault::MoveSlots,
    }
}

/// The steps of a run of `total` with the `kinds` enabled (none: no steps).
///
/// Kinds are dealt from a shuffled deck, refilled when empty, so each appears before any
/// repeats; with more than one kind enabled, a third of the steps combine two kinds.
pub fn schedule(kinds: &Kinds, total: Duration, timing: Timing, rng: &mut impl Rng) -> Vec<Step> {
    let mut steps = Vec::new();
    if kinds.0.is_empty() {
        return steps;
    }
    let moving = kinds.0.contains(&Kind::MoveSlots);
    let mut deck: Vec<Kind> = Vec::new();
    let mut deal = |rng: &mut _| -> Kind {
        if deck.is_empty() {
            deck = kinds.0.clone();
            deck.shuffle(rng);
        }
        deck.pop().expect("refilled")
    };
    let mut at = between(rng, timing.quiet);
    loop {
        let hold = between(rng, timing.hold);
        if at + hold + TAIL > total {
            break;
        }
        let first = deal(rng);
        let mut chosen = vec![first];
        if kinds.0.len() > 1 && rng.gen_ratio(1, 3) {
            let second = deal(rng);
            if second != first {
                chosen.push(second);
            }
        }
        steps.push(Step {
            start: at,
            hold,
            faults: chosen
                .into_iter()
                .map(|k| fault_of(k, rng, moving))
                .collect(),
        });
        at += hold + between(rng, timing.quiet);
    }
    steps
}

/// The unordered node pairs (`a < b`) a partition of `shape` separates, for the nodes
/// `ids` (at least 2) of which `leader` leads (a random node is used when none is known).
pub fn cut(
    shape: Shape,
    ids: &[u64],
    leader: Option<u64>,
    rng: &mut impl Rng,
) -> BTreeSet<(u64, u64)> {
    let mut ids: Vec<u64> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let n = ids.len();
    if n < 2 {
        return BTreeSet::new();
    }
    let leader = leader
        .filter(|l| ids.contains(l))
        .unwrap_or_else(|| *ids.choose(rng).expect("two nodes or more"));
    let (side_a, side_b): (Vec<u64>, Vec<u64>) = match shape {
        Shape::IsolateLeader => (
            vec![leader],
            ids.iter().copied().filter(|&i| i != leader).collect(),
        ),
        Shape::MajorityMinority => {
            let mut others: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
            others.shuffle(rng);
            let minority = ((n - 1) / 2).max(1);
            let mut a = vec![leader];
            a.extend(others.drain(..minority - 1));
            (a, others)
        }
        Shape::RandomHalves => {
            ids.shuffle(rng);
            let (a, b) = ids.split_at(n / 2);
            (a.to_vec(), b.to_vec())
        }
        Shape::Bridge => {
            ids.shuffle(rng);
            if n < 3 {
                (vec![ids[0]], vec![ids[1]])
            } else {
                let mid = n / 2;
                // ids[mid] is the bridge: on neither side, so it keeps every link.
                (ids[..mid].to_vec(), ids[mid + 1..].to_vec())
            }
        }
    };
    let mut pairs = BTreeSet::new();
    for &a in &side_a {
        for &b in &side_b {
            pairs.insert((a.min(b), a.max(b)));
        }
    }
    pairs
}

/// `iptables` arguments that cut every pair, both directions, on the INPUT chain (loopback
/// traffic passes OUTPUT then INPUT, so one chain is enough); matched by source and
/// destination address, so clients on 127.0.0.1 keep reaching every node.
pub fn rules(pairs: &BTreeSet<(u64, u64)>, ip_of: impl Fn(u64) -> Ipv4Addr) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for &(a, b) in pairs {
        for (from, to) in [(a, b), (b, a)] {
            out.push(
                [
                    "-w",
                    "-A",
                    "INPUT",
                    "-s",
                    &ip_of(from).to_string(),
                    "-d",
                    &ip_of(to).to_string(),
                    "-j",
                    "DROP",
                ]
                .map(String::from)
                .to_vec(),
            );
        }
    }
    out
}

/// The sides of a partition in words: "1-2 1-3 cut" is hard to read, so components of the
/// graph that remains are listed ("[1] [2 3]"; a bridge shows as overlapping groups).
pub fn describe(pairs: &BTreeSet<(u64, u64)>, ids: &[u64]) -> String {
    // For each node, the nodes it still reaches directly.
    let mut views: BTreeSet<Vec<u64>> = BTreeSet::new();
    for &i in ids {
        let view: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&j| j == i || !pairs.contains(&(i.min(j), i.max(j))))
            .collect();
        views.insert(view);
    }
    // A bridge sees everyone: its view says nothing about the sides, unless every node
    // sees everyone (no partition at all).
    if views.len() > 1 {
        views.retain(|v| v.len() < ids.len());
    }
    // Keep the maximal views only.
    let all: Vec<Vec<u64>> = views.into_iter().collect();
    let maximal: Vec<String> = all
        .iter()
        .filter(|v| {
            !all.iter()
                .any(|w| w.len() > v.len() && v.iter().all(|x| w.contains(x)))
        })
        .map(|v| {
            format!(
                "[{}]",
                v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    maximal.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ip(id: u64) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 10 + id as u8)
    }

    #[test]
    fn kinds_parse_from_names_lists_and_shorthands() {
        assert_eq!("none".parse::<Kinds>().unwrap().0, vec![]);
        assert_eq!("mixed".parse::<Kinds>().unwrap().0, Kind::ALL.to_vec());
        assert_eq!(
            "kill,partition".parse::<Kinds>().unwrap().0,
            vec![Kind::Partition, Kind::Kill]
        );
        assert_eq!(
            "kill,partition".parse::<Kinds>().unwrap().name(),
            "partition+kill"
        );
        assert_eq!("mixed".parse::<Kinds>().unwrap().name(), "mixed");
        let err = "partition,flood".parse::<Kinds>().unwrap_err();
        assert!(
            err.contains("`flood`") && err.contains("membership"),
            "{err}"
        );
    }

    #[test]
    fn a_schedule_is_reproducible_from_its_seed_and_fits_the_run() {
        let kinds: Kinds = "mixed".parse().unwrap();
        let total = Duration::from_secs(60);
        let timing = Timing::for_run(total);
        let a = schedule(&kinds, total, timing, &mut StdRng::seed_from_u64(7));
        let b = schedule(&kinds, total, timing, &mut StdRng::seed_from_u64(7));
        let c = schedule(&kinds, total, timing, &mut StdRng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() >= 5, "{a:?}");
        let mut end = Duration::ZERO;
        for step in &a {
            assert!(step.start >= end, "steps overlap: {a:?}");
            assert!(step.hold >= timing.hold.0 && step.hold <= timing.hold.1);
            assert!(!step.faults.is_empty() && step.faults.len() <= 2);
            end = step.start + step.hold;
        }
        assert!(end + TAIL <= total);
    }

    #[test]
    fn every_enabled_kind_appears_and_no_other() {
        let total = Duration::from_secs(20);
        for seed in 0..50 {
            let kinds: Kinds = "partition,kill,pause".parse().unwrap();
            let steps = schedule(
                &kinds,
                total,
                Timing::for_run(total),
                &mut StdRng::seed_from_u64(seed),
            );
            let seen: BTreeSet<Kind> = steps
                .iter()
                .flat_map(|s| s.faults.iter().map(|f| f.kind()))
                .collect();
            assert_eq!(
                seen,
                kinds.0.iter().copied().collect(),
                "seed {seed}: {steps:?}"
            );
        }
        let none = schedule(
            &Kinds(vec![]),
            total,
            Timing::for_run(total),
            &mut StdRng::seed_from_u64(1),
        );
        assert!(none.is_empty());
    }

    #[test]
    fn kills_and_pauses_aim_at_moves_only_when_slots_move() {
        let total = Duration::from_secs(60);
        let aimed = |name: &str| -> usize {
            let kinds: Kinds = name.parse().unwrap();
            (0..50)
                .flat_map(|seed| {
                    schedule(
                        &kinds,
                        total,
                        Timing::for_run(total),
                        &mut StdRng::seed_from_u64(seed),
                    )
                })
                .flat_map(|s| s.faults)
                .filter(|f| {
                    matches!(
                        f,
                        Fault::Kill(Target::MoveParty) | Fault::Pause(Target::MoveParty)
                    )
                })
                .count()
        };
        assert!(aimed("kill,pause,move-slots") > 0);
        assert_eq!(aimed("kill,pause"), 0);
    }

    #[test]
    fn partitions_cut_the_expected_pairs() {
        let mut rng = StdRng::seed_from_u64(3);
        let three = [1, 2, 3];
        let five = [1, 2, 3, 4, 5];
        assert_eq!(
            cut(Shape::IsolateLeader, &three, Some(2), &mut rng),
            BTreeSet::from([(1, 2), (2, 3)])
        );
        for _ in 0..20 {
            // 5 nodes, leader 4 in a minority of 2: 2 x 3 = 6 pairs, all touching one side.
            let mm = cut(Shape::MajorityMinority, &five, Some(4), &mut rng);
            assert_eq!(mm.len(), 6, "{mm:?}");
            let minority: BTreeSet<u64> = five
                .iter()
                .copied()
                .filter(|&i| mm.iter().filter(|&&(a, b)| a == i || b == i).count() == 3)
                .collect();
            assert!(minority.contains(&4) && minority.len() == 2, "{mm:?}");
            // A bridge of 5: 2 x 2 pairs cut, one node in no cut pair at all.
            let bridge = cut(Shape::Bridge, &five, None, &mut rng);
            assert_eq!(bridge.len(), 4, "{bridge:?}");
            let untouched = five
                .iter()
                .filter(|&&i| bridge.iter().all(|&(a, b)| a != i && b != i))
                .count();
            assert_eq!(untouched, 1, "{bridge:?}");
            // A bridge of 3: the two ends only.
            assert_eq!(cut(Shape::Bridge, &three, None, &mut rng).len(), 1);
            // Random halves of 5: 2 x 3.
            assert_eq!(cut(Shape::RandomHalves, &five, None, &mut rng).len(), 6);
        }
    }

    #[test]
    fn rules_drop_both_directions_between_node_addresses_only() {
        let rules = rules(&BTreeSet::from([(1, 3)]), ip);
        let text: Vec<String> = rules.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            text,
            [
                "-w -A INPUT -s 127.0.0.11 -d 127.0.0.13 -j DROP",
                "-w -A INPUT -s 127.0.0.13 -d 127.0.0.11 -j DROP"
            ]
        );
        assert!(text.iter().all(|r| !r.contains("127.0.0.1 ")));
    }

    #[test]
    fn partitions_are_described_by_their_sides() {
        let ids = [1, 2, 3, 4, 5];
        let halves = BTreeSet::from([(1, 3), (1, 4), (1, 5), (2, 3), (2, 4), (2, 5)]);
        assert_eq!(describe(&halves, &ids), "[1 2] [3 4 5]");
        let bridge = BTreeSet::from([(1, 4), (1, 5), (2, 4), (2, 5)]);
        assert_eq!(describe(&bridge, &ids), "[1 2 3] [3 4 5]");
        assert_eq!(describe(&BTreeSet::new(), &ids), "[1 2 3 4 5]");
        assert_eq!(
            describe(&BTreeSet::from([(1, 2), (1, 3)]), &[1, 2, 3]),
            "[1] [2 3]"
        );
    }
}
