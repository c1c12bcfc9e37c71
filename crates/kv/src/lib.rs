//! The Redis data model and its commands, as a deterministic library.
//!
//! `kv` knows nothing of sockets, threads, clocks, disks or Raft. A command is parsed
//! ([`command::parse`]) into a [`command::Cmd`]: a [`command::Read`] that runs against
//! `&Db`, or a [`command::Write`] that [`command::Write::apply`] applies to `&mut Db` with
//! the `now_ms` stamped into it. Everything that needs the clock or randomness happens
//! during parsing (through [`command::Ctx`]), so applying the same writes in the same order
//! gives the same state and the same replies on every replica.
//!
//! One file per Redis command family: [`strings`], [`keys`], [`hashes`], [`lists`],
//! [`sets`], [`zsets`]. Each declares its [`command::Spec`]s and its `Read`/`Write` enums.
//!
//! [`snapshot`] turns a [`Db`] into bytes and back (std `io` only), preserving everything
//! that affects later replies, for Raft snapshots.

pub mod args;
pub mod bytes;
pub mod claim;
pub mod command;
pub mod db;
pub mod digest;
pub mod error;
pub mod float;
pub mod glob;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod moves;
pub mod proposal;
pub mod rng;
pub mod scan;
pub mod sets;
mod slots;
pub mod snapshot;
pub mod strings;
pub mod value;
pub mod zsets;

pub use claim::Claim;
pub use command::{parse, Cmd, Ctx, Read, Spec, Write};
pub use db::Db;
pub use error::Error;
pub use proposal::Proposal;
pub use snapshot::SnapshotError;
