//! The cluster map, as the meta group (group 0) will replicate it: the members, the data
//! groups and their replicas, and which group owns each of the 16384 slots at which
//! epoch, with a version that grows with every change. Like `kv` for the data, this crate
//! is pure and deterministic: [`MetaState::apply`] is a function of the state and the
//! command, with no clock, no randomness and no I/O, so every replica of the meta group
//! reaches the same map, and a test can drive it directly.
//!
//! - [`placement`]: where a group's replicas go and how slots split over groups, as pure
//!   functions of their inputs.
//! - [`MetaCommand`]: what a meta log entry asks for; [`MetaState::apply`] answers each
//!   deterministically (a refused command changes nothing and says why).
//!
//! Invariants, checked after every command in the tests: once bootstrapped, every slot is
//! owned by exactly one existing group (full coverage, as Redis Cluster clients demand);
//! every replica of a group is a member; the version grows by one with every change and
//! not at all with a refusal.

pub mod acl;
pub mod jobs;
pub mod placement;

pub use jobs::{Job, JobId, Phase};

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use types::{Epoch, GroupId, NodeId, Slot};

/// How a member is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `host:port` of its RESP listener, as clients are told (`MOVED`, `CLUSTER SLOTS`).
    pub resp_addr: String,
    /// `host:port` of its gRPC listener, for peers.
    pub grpc_addr: String,
    /// A DNS name to announce instead of the address's host, if set (Kubernetes).
    pub hostname: Option<String>,
}

/// One slot range's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub group: GroupId,
    /// Grows by one each time the range changes group.
    pub epoch: Epoch,
}

/// What a meta log entry asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// The first entry of a new cluster: its members, `groups` data groups of
    /// `replication` replicas each (placed by [`placement::replicas`]), and the slots
    /// split evenly over them ([`placement::even_slots`]) at epoch 1. Refused once the
    /// cluster is bootstrapped.
    Bootstrap {
        members: BTreeMap<NodeId, Member>,
        groups: u32,
        replication: u32,
    },
    /// Adds a member, or records its new addresses.
    SetMember { id: NodeId, member: Member },
    /// Removes a member that holds no replica.
    RemoveMember { id: NodeId },
    /// Sets the replicas of an existing group (every one a member, at least one).
    SetReplicas {
        group: GroupId,
        replicas: BTreeSet<NodeId>,
    },
    /// Journals a move of `ranges` (all owned by `from`) to `to`: a new [`Job`], whose id
    /// is the map's `next_job` after it applies. Refused if a slot is moving already.
    PlanMove {
        ranges: Vec<(Slot, Slot)>,
        from: GroupId,
        to: GroupId,
    },
    /// Records that job `job` reached `phase` (forward only; the same phase again changes
    /// nothing), with the keys the source froze once known.
    MoveStep {
        job: JobId,
        phase: Phase,
        keys: Option<u64>,
    },
    /// Asks for job `job` to be cancelled: refused once it committed.
    CancelMove { job: JobId },
    /// Ends job `job`: `done` (after the release: the map gives its slots to the target
    /// with the next epoch), or aborted (only before the commit) because of `why`.
    FinishMove {
        job: JobId,
        done: bool,
        why: Option<String>,
    },
}

/// Why a command changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Refused {
    #[error("the cluster is already bootstrapped")]
    AlreadyBootstrapped,
    #[error("the cluster is not bootstrapped yet")]
    NotBootstrapped,
    #[error("{0}")]
    Invalid(String),
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("unknown group {0}")]
    UnknownGroup(GroupId),
    #[error("node {node} still holds a replica of group {group}")]
    HoldsReplica { node: NodeId, group: GroupId },
    #[error("no slot move job {0}")]
    UnknownJob(JobId),
    #[error("slot {slot} is already moving in job {job}")]
    Moving { slot: u16, job: JobId },
    #[error("slot move job {job} is {phase}: {why}")]
    JobPhase {
        job: JobId,
        phase: &'static str,
        why: &'static str,
    },
}

/// The cluster map (see the crate header).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    /// Grows by one with every change.
    pub version: u64,
    pub members: BTreeMap<NodeId, Member>,
    /// Each data group's replicas.
    pub groups: BTreeMap<GroupId, BTreeSet<NodeId>>,
    /// Slot ranges by first slot: `(last slot, owner)`; empty until bootstrapped, then
    /// covering every slot.
    pub slots: BTreeMap<Slot, (Slot, Owner)>,
    /// Slot moves, by id: those in progress and the last [`jobs::FINISHED_KEPT`] finished.
    pub jobs: BTreeMap<JobId, Job>,
    /// The id of the latest job planned (0: none yet).
    pub next_job: JobId,
}

/// The map as written before slot moves were journaled (snapshots of that time).
#[derive(Deserialize)]
struct MetaStateV1 {
    version: u64,
    members: BTreeMap<NodeId, Member>,
    groups: BTreeMap<GroupId, BTreeSet<NodeId>>,
    slots: BTreeMap<Slot, (Slot, Owner)>,
}

/// Most data groups a cluster may have (slots are the finest unit of ownership).
pub const MAX_GROUPS: u32 = Slot::COUNT as u32;

impl MetaState {
    /// True once the first [`MetaCommand::Bootstrap`] has applied.
    pub fn is_bootstrapped(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The owner of `slot` (`None` before bootstrap).
    pub fn owner(&self, slot: Slot) -> Option<Owner> {
        let (_, &(last, owner)) = self.slots.range(..=slot).next_back()?;
        (slot <= last).then_some(owner)
    }

    /// The slot ranges of `group`, ascending.
    pub fn ranges_of(&self, group: GroupId) -> Vec<(Slot, Slot)> {
        self.slots
            .iter()
            .filter(|(_, (_, o))| o.group == group)
            .map(|(&first, &(last, _))| (first, last))
            .collect()
    }

    /// The jobs not finished, in id order.
    pub fn active_jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values().filter(|j| !j.phase.is_finished())
    }

    /// Gives `ranges` to `owner`, merging neighbouring ranges of the same owner.
    fn assign(&mut self, ranges: &[(Slot, Slot)], owner: Owner) {
        let mut each: Vec<Option<Owner>> = vec![None; Slot::COUNT as usize];
        for (&first, &(last, o)) in &self.slots {
            for s in first.0..=last.0 {
                each[s as usize] = Some(o);
            }
        }
        for &(a, b) in ranges {
            for s in a.0..=b.0 {
                each[s as usize] = Some(owner);
            }
        }
        self.slots.clear();
        let mut s = 0usize;
        while s < each.len() {
            let Some(o) = each[s] else {
                s += 1;
                continue;
            };
            let mut e = s;
            while e + 1 < each.len() && each[e + 1] == Some(o) {
                e += 1;
            }
            self.slots.insert(Slot(s as u16), (Slot(e as u16), o));
            s = e + 1;
        }
    }

    /// Job `job`, unless it is unknown or finished.
    fn active_job(&mut self, job: JobId) -> Result<&mut Job, Refused> {
        let found = self.jobs.get_mut(&job).ok_or(Refused::UnknownJob(job))?;
        if found.phase.is_finished() {
            return Err(Refused::JobPhase {
                job,
                phase: found.phase.name(),
                why: "it has finished",
            });
        }
        Ok(found)
    }

    /// Drops the oldest finished jobs beyond [`jobs::FINISHED_KEPT`].
    fn forget_old_jobs(&mut self) {
        let finished: Vec<JobId> = self
            .jobs
            .values()
            .filter(|j| j.phase.is_finished())
            .map(|j| j.id)
            .collect();
        let excess = finished.len().saturating_sub(jobs::FINISHED_KEPT);
        for id in &finished[..excess] {
            self.jobs.remove(id);
        }
    }

    /// Applies `command`: the state changes (and its version grows by one), or nothing
    /// changes and the refusal says why. Deterministic.
    pub fn apply(&mut self, command: &MetaCommand) -> Result<(), Refused> {
        match command {
            MetaCommand::Bootstrap {
                members,
                groups,
                replication,
            } => {
                if self.is_bootstrapped() {
                    return Err(Refused::AlreadyBootstrapped);
                }
                if members.is_empty() {
                    return Err(Refused::Invalid("a cluster needs a member".into()));
                }
                if !(1..=MAX_GROUPS).contains(groups) {
                    return Err(Refused::Invalid(format!(
                        "{groups} groups: between 1 and {MAX_GROUPS}"
                    )));
                }
                if *replication == 0 {
                    return Err(Refused::Invalid("a group needs a replica".into()));
                }
                let ids: Vec<NodeId> = members.keys().copied().collect();
                self.members = members.clone();
                self.groups = placement::replicas(*groups, &ids, *replication as usize);
                self.slots = placement::even_slots(*groups)
                    .into_iter()
                    .map(|(first, last, group)| {
                        let owner = Owner {
                            group,
                            epoch: Epoch(1),
                        };
                        (first, (last, owner))
                    })
                    .collect();
            }
            MetaCommand::SetMember { id, member } => {
                if self.members.get(id) == Some(member) {
                    return Ok(());
                }
                self.members.insert(*id, member.clone());
            }
            MetaCommand::RemoveMember { id } => {
                if !self.members.contains_key(id) {
                    return Err(Refused::UnknownNode(*id));
                }
                if let Some((&group, _)) = self.groups.iter().find(|(_, r)| r.contains(id)) {
                    return Err(Refused::HoldsReplica { node: *id, group });
                }
                self.members.remove(id);
            }
            MetaCommand::SetReplicas { group, replicas } => {
                if !self.is_bootstrapped() {
                    return Err(Refused::NotBootstrapped);
                }
                if !self.groups.contains_key(group) {
                    return Err(Refused::UnknownGroup(*group));
                }
                if replicas.is_empty() {
                    return Err(Refused::Invalid("a group needs a replica".into()));
                }
                if let Some(&id) = replicas.iter().find(|id| !self.members.contains_key(id)) {
                    return Err(Refused::UnknownNode(id));
                }
                if self.groups.get(group) == Some(replicas) {
                    return Ok(());
                }
                self.groups.insert(*group, replicas.clone());
            }
            MetaCommand::PlanMove { ranges, from, to } => {
                if !self.is_bootstrapped() {
                    return Err(Refused::NotBootstrapped);
                }
                for g in [from, to] {
                    if !self.groups.contains_key(g) {
                        return Err(Refused::UnknownGroup(*g));
                    }
                }
                if from == to {
                    return Err(Refused::Invalid(format!(
                        "the slots are in group {from} already"
                    )));
                }
                if !jobs::well_formed(ranges) {
                    return Err(Refused::Invalid("bad slot ranges".into()));
                }
                let mut epoch = Epoch(0);
                for &(a, b) in ranges {
                    for s in a.0..=b.0 {
                        let owner = self.owner(Slot(s)).ok_or(Refused::NotBootstrapped)?;
                        if owner.group != *from {
                            return Err(Refused::Invalid(format!(
                                "slot {s} is in group {}, not {from}",
                                owner.group
                            )));
                        }
                        epoch = epoch.max(owner.epoch);
                    }
                }
                if let Some(job) = self
                    .active_jobs()
                    .find(|j| jobs::overlaps(&j.ranges, ranges))
                {
                    let slot = ranges
                        .iter()
                        .flat_map(|&(a, b)| a.0..=b.0)
                        .find(|&s| jobs::covers(&job.ranges, Slot(s)))
                        .unwrap_or(0);
                    return Err(Refused::Moving { slot, job: job.id });
                }
                self.next_job += 1;
                let id = self.next_job;
                self.jobs.insert(
                    id,
                    Job {
                        id,
                        ranges: ranges.clone(),
                        from: *from,
                        to: *to,
                        epoch,
                        phase: Phase::Planned,
                        keys: None,
                        cancel: false,
                        why: None,
                    },
                );
            }
            MetaCommand::MoveStep { job, phase, keys } => {
                let found = self.active_job(*job)?;
                if *phase == found.phase {
                    return Ok(());
                }
                if *phase < found.phase || phase.is_finished() {
                    return Err(Refused::JobPhase {
                        job: *job,
                        phase: found.phase.name(),
                        why: "a job only moves forward",
                    });
                }
                found.phase = *phase;
                if keys.is_some() {
                    found.keys = *keys;
                }
            }
            MetaCommand::CancelMove { job } => {
                let found = self.active_job(*job)?;
                if found.phase >= Phase::Committed {
                    return Err(Refused::JobPhase {
                        job: *job,
                        phase: found.phase.name(),
                        why: "the target owns the slots, so it can only go forward",
                    });
                }
                if found.cancel {
                    return Ok(());
                }
                found.cancel = true;
            }
            MetaCommand::FinishMove { job, done, why } => {
                let found = self.active_job(*job)?;
                if *done {
                    if found.phase != Phase::Released {
                        return Err(Refused::JobPhase {
                            job: *job,
                            phase: found.phase.name(),
                            why: "only a released job is done",
                        });
                    }
                    found.phase = Phase::Done;
                    let owner = Owner {
                        group: found.to,
                        epoch: Epoch(found.epoch.0 + 1),
                    };
                    let ranges = found.ranges.clone();
                    self.assign(&ranges, owner);
                } else {
                    if found.phase >= Phase::Committed {
                        return Err(Refused::JobPhase {
                            job: *job,
                            phase: found.phase.name(),
                            why: "the target owns the slots, so it can only go forward",
                        });
                    }
                    found.phase = Phase::Aborted;
                    found.why = why.clone();
                }
                self.forget_old_jobs();
            }
        }
        self.version += 1;
        Ok(())
    }

    /// The state as bytes (for snapshots of the meta group).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a map always serializes")
    }

    /// A state from [`MetaState::encode`]'s bytes; an error for anything else.
    pub fn decode(bytes: &[u8]) -> Result<MetaState, postcard::Error> {
        postcard::from_bytes(bytes).or_else(|e| match postcard::from_bytes::<MetaStateV1>(bytes) {
            Ok(old) => Ok(MetaState {
                version: old.version,
                members: old.members,
                groups: old.groups,
                slots: old.slots,
                jobs: BTreeMap::new(),
                next_job: 0,
            }),
            Err(_) => Err(e),
        })
    }
}

impl MetaCommand {
    /// The command as the bytes of a log entry.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a command always serializes")
    }

    /// A command from [`MetaCommand::encode`]'s bytes; an error for anything else.
    pub fn decode(bytes: &[u8]) -> Result<MetaCommand, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests;
