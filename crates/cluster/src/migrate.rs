//! Slot moves (see `DESIGN.md`, "Moving a slot"): the commands that plan, list and cancel
//! them, and the mover that carries each job through its steps.
//!
//! A job is planned in the meta log (`meta::MetaCommand::PlanMove`). The mover runs on
//! whichever node leads the meta group and is stateless: it reads each unfinished job's
//! phase from the map and takes the next step, each an entry in the log of the group it
//! changes (`kv::moves::Step`), then records the new phase in the meta log:
//!
//! 1. `Prepare` on the target (staged keys invisible);
//! 2. `Freeze` on the source (the slots' keys can no longer change; their count and digest
//!    are recorded);
//! 3. copy: the keys are read from this node's replica of the source, once it has applied
//!    the freeze (a read barrier), and proposed to the target as `Stage` chunks of at most
//!    [`CHUNK_KEYS`] keys or [`CHUNK_BYTES`];
//! 4. `Commit` on the target, which checks the staged count and digest against the
//!    source's and then owns the slots: the one point where ownership changes;
//! 5. `Release` on the source, only once the commit is recorded;
//! 6. `FinishMove` in the meta log: the map names the target.
//!
//! Every step is idempotent by job id, so a mover that crashes anywhere is followed by
//! another that repeats the last step and goes on. A cancelled job (or one whose commit
//! was refused) is aborted on the target first, then unfrozen on the source; a target that
//! answers that the job committed sends the job forward instead.
//!
//! For the fault tests only, `DEBUG SLOTMOVE-FAULT <point> CRASH|PAUSE|OFF` makes this
//! node's mover abort the process (as a `kill -9` would) or wait when it passes that point:
//! `after-freeze`, `mid-copy` (after the second chunk), `after-commit`, `after-release`
//! (each right after the data group's step, before the journal records it).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use meta::{Job, JobId, MetaCommand, Phase};
use resp::Frame;
use tokio::sync::watch;
use tracing::{error, info, warn};
use types::{GroupId, Slot};

use crate::error::Error;
use crate::Node;

/// How often the mover looks for jobs.
const MOVER_PAUSE: Duration = Duration::from_millis(50);
/// Most steps one `CLUSTER REBALANCE` plans.
const REBALANCE_MOVES: usize = 64;
/// Most keys in one chunk of a copy.
pub(crate) const CHUNK_KEYS: usize = 1_000;
/// Most bytes (encoded) in one chunk of a copy; a single larger key goes alone.
pub(crate) const CHUNK_BYTES: usize = 512 * 1024;

/// The points a fault can be set at ([`set_move_fault`]).
pub const FAULT_POINTS: [&str; 4] = ["after-freeze", "mid-copy", "after-commit", "after-release"];

/// What happens at a fault point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveFault {
    /// The process aborts, as after `kill -9`.
    Crash,
    /// The mover waits there (at most a minute) until the fault is cleared.
    Pause,
}

/// Longest a paused mover waits.
const PAUSE_LIMIT: Duration = Duration::from_secs(60);

static FAULT: std::sync::Mutex<Option<(&'static str, MoveFault)>> = std::sync::Mutex::new(None);

/// Sets (or clears, with `None`) the fault this process's mover meets at `point` (one of
/// [`FAULT_POINTS`]), for the fault tests (`DEBUG SLOTMOVE-FAULT`); false for an unknown
/// point.
pub fn set_move_fault(point: &str, fault: Option<MoveFault>) -> bool {
    let Some(point) = FAULT_POINTS.iter().find(|p| p.eq_ignore_ascii_case(point)) else {
        return false;
    };
    let mut held = FAULT.lock().unwrap_or_else(|p| p.into_inner());
    match fault {
        Some(f) => {
            warn!(point, fault = ?f, "a slot move fault is set (fault tests only)");
            *held = Some((point, f));
        }
        None if held.is_some_and(|(p, _)| p == *point) => *held = None,
        None => {}
    }
    true
}

/// Meets the fault set at `point`, if any.
async fn fault_point(point: &str, job: JobId) {
    let fault = |point: &str| {
        FAULT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .filter(|(p, _)| *p == point)
            .map(|(_, f)| f)
    };
    match fault(point) {
        Some(MoveFault::Crash) => {
            error!(job, point, "crashing on purpose (DEBUG SLOTMOVE-FAULT)");
            std::process::abort();
        }
        Some(MoveFault::Pause) => {
            warn!(
                job,
                point, "slot move paused on purpose (DEBUG SLOTMOVE-FAULT)"
            );
            let until = tokio::time::Instant::now() + PAUSE_LIMIT;
            while fault(point) == Some(MoveFault::Pause) && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        None => {}
    }
}

/// A step's reply taken as success or an error in words.
fn ok_or_words(reply: Frame) -> Result<Frame, String> {
    match reply {
        Frame::Error(e) => Err(e.to_string()),
        other => Ok(other),
    }
}

impl Node {
    /// Proposes a move step to data group `group`, through its leader.
    async fn propose_step(&self, group: GroupId, step: kv::moves::Step) -> Result<Frame, Error> {
        let group = self.hosted(group)?;
        let encoded: Bytes = kv::Proposal::Move(step).encode().into();
        self.write_encoded(group, encoded).await
    }

    /// Proposes a change of the cluster map; its reply (a number, or the refusal).
    async fn propose_map(&self, command: MetaCommand) -> Result<Frame, Error> {
        let encoded: Bytes = kv::Proposal::Meta(command).encode().into();
        self.write_encoded(&self.meta, encoded).await
    }

    /// Records that `job` reached `phase`.
    async fn record(&self, job: JobId, phase: Phase, keys: Option<u64>) -> Result<(), Error> {
        let reply = self
            .propose_map(MetaCommand::MoveStep { job, phase, keys })
            .await?;
        ok_or_words(reply).map(drop).map_err(Error::Failed)
    }

    /// The cluster map once every change acknowledged before the call is applied here.
    /// A cluster just founded records its map within moments: waited for, briefly.
    async fn current_map(&self) -> Result<meta::MetaState, Error> {
        let deadline = tokio::time::Instant::now() + crate::NO_LEADER_WAIT;
        loop {
            self.acl_barrier().await?;
            match self.cluster_map() {
                Some(map) if map.is_bootstrapped() => return Ok(map),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Failed(
                        "the cluster map is not bootstrapped yet".into(),
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// `CLUSTER MIGRATESLOTS`: journals moves of `ranges` to group `to`, one job per group
    /// the slots are in now (slots already in `to` are left out); the jobs' ids.
    pub async fn migrate_slots(
        &self,
        ranges: &[(Slot, Slot)],
        to: GroupId,
    ) -> Result<Vec<JobId>, Error> {
        if self.group(to).is_none() {
            return Err(Error::Failed(format!("no data group {to}")));
        }
        let map = self.current_map().await?;
        let mut by_source: std::collections::BTreeMap<GroupId, Vec<(Slot, Slot)>> =
            Default::default();
        for &(a, b) in ranges {
            for s in a.0..=b.0 {
                let slot = Slot(s);
                let Some(owner) = map.owner(slot) else {
                    continue;
                };
                if owner.group == to {
                    continue;
                }
                let list = by_source.entry(owner.group).or_default();
                match list.last_mut() {
                    Some((_, last)) if last.0 + 1 == s => *last = slot,
                    _ => list.push((slot, slot)),
                }
            }
        }
        if by_source.is_empty() {
            return Err(Error::Failed(format!(
                "the slots are in group {to} already"
            )));
        }
        let mut jobs = Vec::new();
        for (from, ranges) in by_source {
            let reply = self
                .propose_map(MetaCommand::PlanMove { ranges, from, to })
                .await?;
            match reply {
                Frame::Integer(id) => jobs.push(id as JobId),
                Frame::Error(e) => {
                    let why = e
                        .strip_prefix("ERR cluster map: ")
                        .unwrap_or(&e)
                        .to_string();
                    return Err(Error::Failed(if jobs.is_empty() {
                        why
                    } else {
                        format!("{why} (jobs {jobs:?} were planned before)")
                    }));
                }
                other => return Err(Error::Failed(format!("unexpected reply {other:?}"))),
            }
        }
        Ok(jobs)
    }

    /// `CLUSTER REBALANCE`: slot moves that even out the keys the data groups hold
    /// (`meta::placement::rebalance`, from this node's replicas), planned unless
    /// `dry_run`; the moves.
    pub async fn rebalance_slots(
        &self,
        dry_run: bool,
    ) -> Result<Vec<meta::placement::PlannedMove>, Error> {
        self.refresh_routes();
        let mut slots = Vec::with_capacity(usize::from(Slot::COUNT));
        for s in 0..Slot::COUNT {
            let group = self.group_of(Slot(s));
            slots.push((group.id, 0u64));
        }
        for group in &self.groups {
            let db = group.db();
            for (s, entry) in slots.iter_mut().enumerate() {
                if entry.0 == group.id {
                    entry.1 = db.count_in_slot(Slot(s as u16)) as u64;
                }
            }
        }
        let groups = self.groups.iter().map(|g| g.id).collect();
        let moves = meta::placement::rebalance(&slots, &groups, REBALANCE_MOVES);
        if !dry_run {
            for m in &moves {
                self.migrate_slots(&m.ranges, m.to).await?;
            }
        }
        Ok(moves)
    }

    /// `CLUSTER GETSLOTMIGRATIONS`: every job in progress and the last finished ones.
    pub async fn slot_migrations(&self) -> Result<Vec<Job>, Error> {
        Ok(self.current_map().await?.jobs.into_values().collect())
    }

    /// `CLUSTER CANCELSLOTMIGRATIONS`: asks every unfinished job (or job `only`) to be
    /// cancelled; how many were. A job that committed cannot be: it finishes.
    pub async fn cancel_slot_migrations(&self, only: Option<JobId>) -> Result<usize, Error> {
        let map = self.current_map().await?;
        let mut cancelled = 0;
        for job in map.active_jobs().filter(|j| only.is_none_or(|o| o == j.id)) {
            if job.phase >= Phase::Committed || job.cancel {
                continue;
            }
            match self
                .propose_map(MetaCommand::CancelMove { job: job.id })
                .await?
            {
                Frame::Error(e) => info!(job = job.id, why = %e, "not cancelled"),
                _ => cancelled += 1,
            }
        }
        if let Some(id) = only {
            if cancelled == 0 {
                let why = match map.jobs.get(&id) {
                    None => format!("no slot migration job {id}"),
                    Some(j) => format!(
                        "slot migration job {id} is {}: it cannot be cancelled",
                        j.phase.name()
                    ),
                };
                return Err(Error::Failed(why));
            }
        }
        Ok(cancelled)
    }

    /// Takes job `job` as far as it goes now: to its end, or to the first step that
    /// failed (the next round of the mover tries again from the phase recorded).
    async fn drive(&self, mut job: Job) -> Result<(), Error> {
        loop {
            if !self.meta.is_leader() {
                return Ok(());
            }
            // The journal as this replica (the leader's) applied it: a cancellation
            // asked for since the last step is seen before the next.
            if let Some(now) = self
                .cluster_map()
                .and_then(|m| m.jobs.get(&job.id).cloned())
            {
                if now.phase >= job.phase {
                    job = now;
                }
            }
            if job.phase.is_finished() {
                return Ok(());
            }
            let next = if job.cancel && job.phase < Phase::Committed {
                self.abort(&job, "cancelled").await?
            } else {
                self.advance(&job).await?
            };
            let Some(next) = next else { return Ok(()) };
            job = next;
        }
    }

    /// The job after one step forward (`None`: it has finished).
    async fn advance(&self, job: &Job) -> Result<Option<Job>, Error> {
        use kv::moves::Step;
        let id = job.id;
        let (phase, keys) = match job.phase {
            Phase::Planned => {
                let step = Step::Prepare {
                    job: id,
                    from: job.from,
                    ranges: job.ranges.clone(),
                };
                if let Err(why) = ok_or_words(self.propose_step(job.to, step).await?) {
                    // Nothing was frozen yet: the job cannot go on, so it ends here.
                    return self.abort(job, &why).await;
                }
                (Phase::Prepared, None)
            }
            Phase::Prepared if self.config.unsafe_move_without_freeze => {
                self.move_without_freeze(job).await?;
                (Phase::Released, None)
            }
            Phase::Prepared => {
                let step = Step::Freeze {
                    job: id,
                    to: job.to,
                    ranges: job.ranges.clone(),
                };
                match ok_or_words(self.propose_step(job.from, step).await?) {
                    Ok(Frame::Array(reply)) => {
                        fault_point("after-freeze", id).await;
                        let keys = match reply.first() {
                            Some(Frame::Integer(n)) => Some(*n as u64),
                            _ => None,
                        };
                        (Phase::Frozen, keys)
                    }
                    Ok(other) => {
                        return Err(Error::Failed(format!("freeze replied {other:?}")));
                    }
                    Err(why) => return self.abort(job, &why).await,
                }
            }
            Phase::Frozen => {
                self.copy(job).await?;
                (Phase::Copied, None)
            }
            Phase::Copied => {
                let frozen = self.frozen_record(job).await?;
                let step = Step::Commit {
                    job: id,
                    count: frozen.count,
                    digest: frozen.digest,
                };
                if let Err(why) = ok_or_words(self.propose_step(job.to, step).await?) {
                    error!(
                        job = id,
                        why, "the target refused to commit; aborting the move"
                    );
                    return self.abort(job, &why).await;
                }
                fault_point("after-commit", id).await;
                self.refresh_routes();
                (Phase::Committed, None)
            }
            Phase::Committed => {
                let step = Step::Release { job: id };
                ok_or_words(self.propose_step(job.from, step).await?).map_err(Error::Failed)?;
                fault_point("after-release", id).await;
                self.refresh_routes();
                (Phase::Released, None)
            }
            Phase::Released => {
                let finish = MetaCommand::FinishMove {
                    job: id,
                    done: true,
                    why: None,
                };
                ok_or_words(self.propose_map(finish).await?).map_err(Error::Failed)?;
                info!(job = id, from = %job.from, to = %job.to,
                    slots = %kv::moves::show_ranges(&job.ranges), "slot move done");
                self.refresh_routes();
                return Ok(None);
            }
            Phase::Done | Phase::Aborted => return Ok(None),
        };
        self.record(id, phase, keys).await?;
        let mut next = job.clone();
        next.phase = phase;
        next.keys = keys.or(job.keys);
        Ok(Some(next))
    }

    /// Aborts `job` (only before its commit): the target drops its import, then the
    /// source serves the slots again, then the journal says why. If the target answers
    /// that the job committed, the job goes forward instead.
    async fn abort(&self, job: &Job, why: &str) -> Result<Option<Job>, Error> {
        use kv::moves::Step;
        let id = job.id;
        match ok_or_words(self.propose_step(job.to, Step::Abort { job: id }).await?) {
            Ok(_) => {}
            Err(e) if e.contains("was committed") => {
                warn!(
                    job = id,
                    "the target committed before the cancellation: going on"
                );
                self.record(id, Phase::Committed, None).await?;
                let mut next = job.clone();
                next.phase = Phase::Committed;
                next.cancel = false;
                return Ok(Some(next));
            }
            Err(e) => return Err(Error::Failed(e)),
        }
        // Whatever the phase: a mover that lost the meta leadership may have frozen the
        // slots after this one read the job, and an unfreeze also bars any later freeze of
        // the job (a source that never froze records it as ended all the same).
        ok_or_words(
            self.propose_step(job.from, Step::Unfreeze { job: id })
                .await?,
        )
        .map_err(Error::Failed)?;
        let finish = MetaCommand::FinishMove {
            job: id,
            done: false,
            why: Some(why.to_string()),
        };
        ok_or_words(self.propose_map(finish).await?).map_err(Error::Failed)?;
        info!(job = id, why, "slot move aborted");
        self.refresh_routes();
        Ok(None)
    }

    /// What the source recorded when it froze `job`'s slots, from this node's replica once
    /// it has applied the freeze.
    async fn frozen_record(&self, job: &Job) -> Result<kv::moves::Frozen, Error> {
        let source = self.hosted(job.from)?;
        self.wait_read_index(source).await?;
        let db = source.db();
        db.moves().frozen.get(&job.id).cloned().ok_or_else(|| {
            Error::Failed(format!(
                "group {} holds no freeze of job {}",
                job.from, job.id
            ))
        })
    }

    /// Copies `job`'s frozen keys from this node's replica of the source to the target,
    /// in chunks (see the module header).
    async fn copy(&self, job: &Job) -> Result<(), Error> {
        let frozen = self.frozen_record(job).await?;
        let source = self.hosted(job.from)?;
        let mut sent = 0u64;
        let mut chunks = 0u64;
        let mut pending = Vec::new();
        let slots: Vec<u16> = frozen.ranges.iter().flat_map(|&(a, b)| a.0..=b.0).collect();
        let mut slots = slots.into_iter().peekable();
        while let Some(s) = slots.next() {
            // Small slots share chunks: keys gather until a chunk's worth (or the end).
            pending.extend(source.db().slot_entries(Slot(s)));
            if pending.len() < CHUNK_KEYS && slots.peek().is_some() {
                continue;
            }
            for entries in kv::moves::encode_chunks(&pending, CHUNK_KEYS, CHUNK_BYTES) {
                let n = entries_count(&entries);
                let step = kv::moves::Step::Stage {
                    job: job.id,
                    entries,
                };
                ok_or_words(self.propose_step(job.to, step).await?).map_err(Error::Failed)?;
                sent += n;
                chunks += 1;
                if chunks == 2 {
                    fault_point("mid-copy", job.id).await;
                }
            }
            pending.clear();
        }
        info!(
            job = job.id,
            keys = sent,
            chunks,
            "slot move: keys staged on the target"
        );
        Ok(())
    }
}

impl Node {
    /// UNSAFE (`--unsafe move-without-freeze`, for the fault suite's self-test): copies
    /// the slots while the source still takes writes, commits what was copied, and only
    /// then freezes and releases the source, deleting whatever it took in between (a
    /// pause in the middle widens that window). A job in this mode goes from `prepared`
    /// to `released` at once.
    async fn move_without_freeze(&self, job: &Job) -> Result<(), Error> {
        use kv::moves::Step;
        let source = self.hosted(job.from)?;
        self.wait_read_index(source).await?;
        let mut entries = Vec::new();
        for &(a, b) in &job.ranges {
            for s in a.0..=b.0 {
                entries.extend(source.db().slot_entries(Slot(s)));
            }
        }
        let (count, digest) = kv::moves::entries_digest(&entries);
        for chunk in kv::moves::encode_chunks(&entries, CHUNK_KEYS, CHUNK_BYTES) {
            let step = Step::Stage {
                job: job.id,
                entries: chunk,
            };
            ok_or_words(self.propose_step(job.to, step).await?).map_err(Error::Failed)?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let commit = Step::Commit {
            job: job.id,
            count,
            digest,
        };
        ok_or_words(self.propose_step(job.to, commit).await?).map_err(Error::Failed)?;
        self.refresh_routes();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let freeze = Step::Freeze {
            job: job.id,
            to: job.to,
            ranges: job.ranges.clone(),
        };
        ok_or_words(self.propose_step(job.from, freeze).await?).map_err(Error::Failed)?;
        let release = Step::Release { job: job.id };
        ok_or_words(self.propose_step(job.from, release).await?).map_err(Error::Failed)?;
        warn!(
            job = job.id,
            "UNSAFE: slots moved without freezing the source"
        );
        Ok(())
    }
}

/// The number of keys in an encoded chunk.
fn entries_count(entries: &[u8]) -> u64 {
    entries
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
}

/// Carries every unfinished job forward while this node leads the meta group (see the
/// module header).
pub(crate) async fn run_moves(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MOVER_PAUSE) => {}
            _ = stop.changed() => return,
        }
        if !node.meta.is_leader() {
            continue;
        }
        let jobs: Vec<Job> = match node.cluster_map() {
            Some(map) => map.active_jobs().cloned().collect(),
            None => continue,
        };
        for job in jobs {
            let id = job.id;
            if let Err(e) = node.drive(job).await {
                warn!(job = id, error = %e, "a slot move step did not complete; trying again");
            }
        }
    }
}
