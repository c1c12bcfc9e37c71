//! Raft storage for redraft: the openraft type configuration, a sled log store with group
//! commit, and the state machine that applies log entries to the `kv` database.
//!
//! One node has one sled database ([`LogDb`]) shared by every group it hosts; each group
//! has its own log ([`LogStore`]) and state machine ([`StateMachine`]) over a
//! `kv::Db` that the server reads. [`open`] builds both halves of a group; the caller
//! passes them to `openraft::Raft::new` with its network.
//!
//! The path of a write through this crate: the leader proposes a [`typ::Request`] (its
//! `now_ms` and a [`kv::Proposal`]); openraft appends it with [`LogStore`], which reports
//! it persisted only after a sled flush covers it; once committed, [`StateMachine`]
//! applies it at `max(now_ms, last applied now_ms)` and returns the reply frame as a
//! [`typ::Response`]. Snapshots are files written from a clone of the database while
//! applies go on; a restart loads the newest one and openraft replays the log after it.

pub mod log_store;
pub mod patient;
pub mod snapshot_files;
pub mod state_machine;
pub mod typ;
pub mod uploads;
pub mod watermark;

use std::path::PathBuf;

pub use log_store::{
    Behind, Health, LogDb, LogOptions, LogStats, LogStore, VerifyError, LOG_FORMAT,
};
pub use state_machine::{is_transient, open, Opened, SnapshotBuilder, StateMachine};
pub use typ::{Blob, Payload, Request, Response, TypeConfig};

/// Why a group's storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sled database or the group's trees.
    #[error("log store: {0}")]
    Log(#[source] std::io::Error),
    /// The snapshot directory or a snapshot file (a corrupt file is reported here).
    #[error("snapshot {path}: {source}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The log failed its checks at start (a damaged record in its acknowledged part).
    #[error(transparent)]
    Verify(#[from] VerifyError),
}
