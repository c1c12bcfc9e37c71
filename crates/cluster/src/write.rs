//! The write path: a proposal goes to its group's leader ([`Node::on_leader`]), is stamped
//! with the leader's clock and proposed; large ones go as an upload of parts (see the
//! crate header and `raft::uploads`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use bytes::Bytes;
use openraft::errors::ClientWriteError;
use raft::{Request, TypeConfig};
use resp::Frame;
use tracing::info;
use types::{Epoch, GroupId};

use crate::error::{Error, LEADER_CHANGED};
use crate::group::Group;
use crate::route::{Attempt, Target};
use crate::{Node, COMMIT_WAIT};

/// How many times a large write lost to a change of leader is sent again.
const LARGE_ATTEMPTS: u32 = 3;
/// Parts of a large write proposed together (1 MiB).
const PART_WINDOW: usize = 16;
/// Windows of a large write in flight at once (4 MiB): other writes wait behind at most
/// these.
const WINDOWS_IN_FLIGHT: usize = 4;

/// The epoch of `group`'s claim as this replica has applied it, waiting for the claim
/// (a node just started, or a group whose leader has not claimed yet) as a write waits
/// for a leader: `CLUSTERDOWN` if none comes within [`crate::NO_LEADER_WAIT`].
async fn claim_epoch(group: &Group) -> Result<Epoch, Error> {
    let deadline = tokio::time::Instant::now() + crate::NO_LEADER_WAIT;
    loop {
        if let Some(epoch) = group.claim_epoch() {
            return Ok(epoch);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::ClusterDown);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `proposal` encoded with its route: its slot and `epoch`, the epoch of the group's
/// claim as the router sees it (see `DESIGN.md`, "Groups and slots").
fn route(epoch: Epoch, proposal: &kv::Proposal) -> Bytes {
    proposal.encode_routed(epoch).into()
}

/// The claim epoch `proposals` are routed with (see [`claim_epoch`]); any epoch for
/// entries that carry no route (expiry), which need not wait for a claim.
async fn route_epoch(group: &Group, proposals: &[kv::Proposal]) -> Result<Epoch, Error> {
    if proposals.iter().any(kv::Proposal::is_routable) {
        claim_epoch(group).await
    } else {
        Ok(Epoch(0))
    }
}

/// Why a proposal got no reply of its own.
pub(crate) enum Retry {
    /// Certainly not appended: send it again, to whoever leads now.
    Yes,
    /// Final: this error.
    No(Error),
}

impl Node {
    /// Why this node refuses writes now: a write larger than `max-request-bytes`, or a log
    /// that cannot write.
    pub(crate) fn refuse_write(&self, size: usize) -> Option<Error> {
        let max = self.config.max_request_bytes;
        if size > max {
            return Some(Error::TooLarge { size, max });
        }
        self.log_health()
            .cause()
            .map(|cause| Error::LogCannotWrite(cause.to_string()))
    }

    /// Proposes a write; its reply (see the crate header for forwarding and retries).
    ///
    /// A command or transaction carries the slot and claim epoch it was routed with (see
    /// `route`); refused by the group's claim, it was not applied, and it is routed once
    /// more if this replica has applied a newer claim since.
    pub async fn write(&self, group: GroupId, proposal: &kv::Proposal) -> Result<Frame, Error> {
        let group = self.hosted(group)?;
        let routed_with = route_epoch(group, std::slice::from_ref(proposal)).await?;
        let reply = self
            .write_encoded(group, route(routed_with, proposal))
            .await?;
        self.write_after_refusal(group, proposal, reply).await
    }

    /// `reply` unless it is a refusal by the group's claim (the slot moved, is moving, or
    /// the route's epoch is stale): then the write, which was not applied, is routed
    /// again as the slots stand now, and again while it is refused, for at most
    /// `slot-move-wait`; the last refusal (`-TRYAGAIN`) if it never got through.
    ///
    /// A transaction with watched keys is routed to its first group only: the watches'
    /// positions belong to that group's journal, so if its slot went elsewhere the `EXEC`
    /// aborts (a null reply), as Redis aborts a transaction whose watched key changed.
    async fn write_after_refusal(
        &self,
        first: &Group,
        proposal: &kv::Proposal,
        mut reply: Frame,
    ) -> Result<Frame, Error> {
        if !kv::claim::is_refusal(&reply) {
            return Ok(reply);
        }
        let watched = matches!(proposal, kv::Proposal::Exec { watches, .. } if !watches.is_empty());
        let deadline = Instant::now() + self.config.slot_move_wait;
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            self.refresh_routes();
            first.refresh_claim_epoch();
            let group = match proposal.slot() {
                Some(slot) => self.group_of(slot),
                None => first,
            };
            if watched && group.id != first.id {
                return Ok(Frame::NullArray);
            }
            group.refresh_claim_epoch();
            let epoch = claim_epoch(group).await?;
            reply = self.write_encoded(group, route(epoch, proposal)).await?;
            if !kv::claim::is_refusal(&reply) || Instant::now() >= deadline {
                return Ok(reply);
            }
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
    }

    /// Proposes a write routed with `epoch`, whatever this replica has applied: the way a
    /// router that reads the slots' epochs elsewhere (the cluster map) sends it. Every
    /// replica refuses it, with `TRYAGAIN`, if the group's claim has another epoch.
    pub async fn write_at(
        &self,
        group: GroupId,
        epoch: Epoch,
        proposal: &kv::Proposal,
    ) -> Result<Frame, Error> {
        let group = self.hosted(group)?;
        self.write_encoded(group, route(epoch, proposal)).await
    }

    /// Data group `id`, or an error for a group this node does not host.
    /// Proposes a change of the users and their rules to the meta group, through its
    /// leader wherever it is: `+OK`, the number of users removed, or the refusal.
    ///
    /// It returns once this node's replica has applied the change too, so the next
    /// command of any client of this node sees it.
    pub async fn change_acl(&self, change: meta::acl::Change) -> Result<Frame, Error> {
        let encoded = kv::Proposal::Acl(change).encode().into();
        let reply = self.write_encoded(&self.meta, encoded).await?;
        if let Err(e) = self.acl_barrier().await {
            tracing::debug!(error = %e, "an ACL change applied, but not yet here");
        }
        Ok(reply)
    }

    /// The users and their rules as this node's replica of the meta group has applied
    /// them, and their version (0: never changed).
    pub fn acl_version(&self) -> u64 {
        self.meta.db().acl().map_or(0, |u| u.version)
    }

    /// See [`Node::acl_version`].
    pub fn acl_users(&self) -> meta::acl::Users {
        self.meta.db().acl().cloned().unwrap_or_default()
    }

    pub(crate) fn hosted(&self, id: GroupId) -> Result<&Group, Error> {
        self.group(id)
            .ok_or_else(|| Error::Failed(format!("no group {id} on this node")))
    }

    pub(crate) async fn write_encoded(
        &self,
        group: &Group,
        encoded: Bytes,
    ) -> Result<Frame, Error> {
        if let Some(refused) = self.refuse_write(encoded.len()) {
            return Err(refused);
        }
        // A large write takes longer than the wait for a leader; one lost to a change of
        // leader (certainly not applied) starts over with a fresh wait, a few times.
        let large = encoded.len() > raft::uploads::PART_BYTES;
        let restarts = AtomicU32::new(0);
        let again = || {
            if large && restarts.fetch_add(1, Ordering::Relaxed) < LARGE_ATTEMPTS {
                Attempt::Restart
            } else {
                Attempt::Again
            }
        };
        let outcome = self
            .on_leader(group, |to| {
                let encoded = encoded.clone();
                async move {
                    match to {
                        // A group serves no write before its claim (see `placement`).
                        Target::Here if !group.claimed() => Attempt::Again,
                        Target::Here => match self.propose_local(group, encoded).await {
                            Ok(frame) => Attempt::Done(Ok(frame)),
                            Err(Retry::No(e)) => Attempt::Done(Err(e)),
                            Err(Retry::Yes) => again(),
                        },
                        Target::Leader { mut peer, .. } => {
                            let forward = rpc::Forward {
                                group_id: group.id,
                                args: Vec::new(),
                                proto_version: 3,
                                seed: None,
                                proposal: Some(encoded),
                            };
                            match peer.forward(forward).await {
                                Ok(reply) => Attempt::Done(Frame::from_wire(&reply).map_err(|e| {
                                    Error::UnknownOutcome(format!("bad reply from the leader: {e}"))
                                })),
                                Err(s) => match Attempt::after_call(&s, |s| {
                                    Err(Error::UnknownOutcome(format!(
                                        "forwarding to the leader failed: {}",
                                        s.message()
                                    )))
                                }) {
                                    Attempt::Again => again(),
                                    ended => ended,
                                },
                            }
                        }
                    }
                }
            })
            .await;
        outcome.and_then(|reply| reply)
    }

    /// Proposes several writes from one client's pipeline, replying in order. On the
    /// leader they are submitted together (one batch to Raft, so they share appends and
    /// flushes) and keep their order in the log. A write refused before it was appended
    /// goes the one-by-one way; one discarded after it was appended gets the
    /// unknown-outcome error (it may be in the log).
    pub async fn write_many(
        &self,
        group: GroupId,
        proposals: &[kv::Proposal],
    ) -> Vec<Result<Frame, Error>> {
        use futures_util::StreamExt;
        let group = match self.hosted(group) {
            Ok(group) => group,
            Err(e) => return proposals.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut out = Vec::with_capacity(proposals.len());
        let epoch = match route_epoch(group, proposals).await {
            Ok(epoch) => epoch,
            Err(e) => return proposals.iter().map(|_| Err(e.clone())).collect(),
        };
        let encoded: Vec<Bytes> = proposals.iter().map(|p| route(epoch, p)).collect();
        let small = encoded.iter().all(|e| e.len() <= raft::uploads::PART_BYTES);
        let refused = encoded
            .iter()
            .map(|e| e.len())
            .max()
            .and_then(|n| self.refuse_write(n));
        if proposals.len() > 1 && small && refused.is_none() && group.is_leader() && group.claimed()
        {
            let requests: Vec<Request> = encoded
                .iter()
                .map(|p| Request::encoded(self.stamp(), p.clone()))
                .collect();
            if let Ok(mut stream) = group.raft.client_write_many(requests).await {
                // `None`: refused before it was appended, to be sent again below.
                let mut results: Vec<Option<Result<Frame, Error>>> =
                    Vec::with_capacity(proposals.len());
                let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
                loop {
                    let Ok(next) = tokio::time::timeout_at(deadline, stream.next()).await else {
                        // Appended, and not committed in time: of unknown outcome, never
                        // sent again.
                        results.resize_with(proposals.len(), || Some(Err(not_committed())));
                        break;
                    };
                    let Some(result) = next else { break };
                    results.push(match result {
                        Ok(Ok(written)) => Some(Ok(written.response.0)),
                        Ok(Err(ClientWriteError::ForwardToLeader(_))) => None,
                        Ok(Err(ClientWriteError::LogEntryDiscarded(_))) => {
                            Some(Err(Error::UnknownOutcome(LEADER_CHANGED.into())))
                        }
                        Ok(Err(e)) => Some(Err(Error::Failed(format!("raft: {e}")))),
                        Err(fatal) => Some(Err(Error::UnknownOutcome(format!(
                            "the replica stopped with the write in flight: {fatal}"
                        )))),
                    });
                    if results.len() == proposals.len() {
                        break;
                    }
                }
                // Answered in order; the refused ones (a change of leader refuses every
                // write after it too) and any never answered go the one-by-one way.
                for (i, result) in results.into_iter().enumerate() {
                    out.push(match result {
                        Some(reply) => reply,
                        None => self.write_encoded(group, encoded[i].clone()).await,
                    });
                }
            }
        }
        for e in &encoded[out.len()..] {
            out.push(self.write_encoded(group, e.clone()).await);
        }
        // Refused by the group's claim: routed again as the slots stand now (in order).
        for (reply, proposal) in out.iter_mut().zip(proposals) {
            if let Ok(refused) = reply {
                if kv::claim::is_refusal(refused) {
                    let refused = std::mem::replace(refused, Frame::NullArray);
                    *reply = self.write_after_refusal(group, proposal, refused).await;
                }
            }
        }
        out
    }

    /// Proposes on this node, which believes it leads `group`.
    pub(crate) async fn propose_local(
        &self,
        group: &Group,
        encoded: Bytes,
    ) -> Result<Frame, Retry> {
        if encoded.len() > raft::uploads::PART_BYTES {
            return self.propose_large(group, encoded).await;
        }
        let request = Request::encoded(self.stamp(), encoded);
        match tokio::time::timeout(COMMIT_WAIT, group.raft.client_write(request)).await {
            Ok(result) => outcome(result),
            Err(_) => Err(Retry::No(not_committed())),
        }
    }

    /// Proposes a write larger than a part (see `raft::uploads`): its parts, at most
    /// `PART_WINDOW` in flight, then the entry that applies them. Other clients' writes
    /// interleave with the parts. Until the final entry is appended nothing can apply, so
    /// a part refused or lost to a change of leader means the write was certainly not
    /// applied, and it is sent again (as a new upload) to whoever leads.
    async fn propose_large(&self, group: &Group, encoded: Bytes) -> Result<Frame, Retry> {
        use futures_util::StreamExt;
        let upload = self.upload_ids.fetch_add(1, Ordering::Relaxed);
        let parts = raft::uploads::split(&encoded);
        let started = Instant::now();
        // Windows of parts, a few in flight at once: each is submitted when the stream
        // admits it, in order, so the parts keep their order in the log.
        let windows: Vec<(usize, Vec<Bytes>)> = parts
            .chunks(PART_WINDOW)
            .enumerate()
            .map(|(w, window)| (w * PART_WINDOW, window.to_vec()))
            .collect();
        let mut results = futures_util::stream::iter(windows)
            .map(|(first, window)| async move {
                self.propose_parts(group, upload, first, &window).await
            })
            .buffered(WINDOWS_IN_FLIGHT);
        while let Some(result) = results.next().await {
            result?;
        }
        let assemble = Request {
            now_ms: self.stamp(),
            payload: raft::Payload::Assemble {
                upload,
                parts: parts.len() as u32,
                len: encoded.len() as u64,
                crc: crc32fast::hash(&encoded),
            },
        };
        let outcome = outcome(group.raft.client_write(assemble).await);
        tracing::debug!(
            bytes = encoded.len(),
            parts = parts.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "large write proposed"
        );
        match outcome {
            // Every replica refused to assemble it (a change of term came first): not
            // applied anywhere, so it may be sent again.
            Ok(frame) if frame == Frame::error(raft::uploads::LOST) => Err(Retry::Yes),
            other => other,
        }
    }

    /// Proposes one window of a large write's parts (the first is part `first`) and waits
    /// until all are applied; `Retry::Yes` if any was refused, discarded or lost (the upload
    /// cannot complete then).
    async fn propose_parts(
        &self,
        group: &Group,
        upload: u64,
        first: usize,
        window: &[Bytes],
    ) -> Result<(), Retry> {
        use futures_util::StreamExt;
        let requests: Vec<Request> = window
            .iter()
            .enumerate()
            .map(|(i, bytes)| Request {
                now_ms: self.stamp(),
                payload: raft::Payload::Part {
                    upload,
                    seq: (first + i) as u32,
                    bytes: raft::Blob(bytes.clone()),
                },
            })
            .collect();
        let mut stream = group.raft.client_write_many(requests).await.map_err(|e| {
            info!(upload = format!("{upload:x}"), error = %e, "a large write's parts were refused");
            Retry::Yes
        })?;
        let mut answered = 0;
        while let Some(result) = stream.next().await {
            let refused = match result {
                Ok(Ok(written)) if !written.response.0.is_error() => None,
                Ok(Ok(written)) => Some(format!("{:?}", written.response.0)),
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = refused {
                info!(upload = format!("{upload:x}"), part = first + answered, why = %why,
                    "a large write's part was not applied; the write is retried");
                return Err(Retry::Yes);
            }
            answered += 1;
            if answered == window.len() {
                return Ok(());
            }
        }
        info!(
            upload = format!("{upload:x}"),
            "a large write's parts went unanswered"
        );
        Err(Retry::Yes)
    }
}

/// Why a write appended by this leader got no reply within [`COMMIT_WAIT`].
fn not_committed() -> Error {
    Error::UnknownOutcome(format!(
        "not committed within {} s (the leader may have lost its quorum)",
        COMMIT_WAIT.as_secs()
    ))
}

/// What the result of a `client_write` means for the client.
fn outcome(
    result: Result<
        openraft::raft::ClientWriteResponse<TypeConfig>,
        openraft::errors::RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    >,
) -> Result<Frame, Retry> {
    match result {
        Ok(response) => Ok(response.data.0),
        // Refused before it was appended (not leading, or a new leader not yet
        // acknowledged by a quorum): safe to send again, to whoever leads.
        Err(e) if matches!(e.api_error(), Some(ClientWriteError::ForwardToLeader(_))) => {
            Err(Retry::Yes)
        }
        // Discarded on a change of leader after it was appended: it may still be
        // committed by the next leader, so it must never be proposed again.
        Err(e) if matches!(e.api_error(), Some(ClientWriteError::LogEntryDiscarded(_))) => {
            Err(Retry::No(Error::UnknownOutcome(LEADER_CHANGED.into())))
        }
        // The replica's Raft stopped (shut down, or a fatal error) with the write in
        // hand: it may have been appended, and replicated, before it stopped.
        Err(openraft::errors::RaftError::Fatal(fatal)) => Err(Retry::No(Error::UnknownOutcome(
            format!("the replica stopped with the write in flight: {fatal}"),
        ))),
        Err(e) => Err(Retry::No(Error::Failed(format!("raft: {e}")))),
    }
}
