//! RESP, the Redis serialization protocol: requests in, replies out.
//!
//! This crate knows frames, not commands. A request is checked cheaply first
//! ([`request::check`], which allocates nothing and says [`request::Check::Incomplete`]
//! when more bytes are needed), then parsed into argument slices that share the read
//! buffer ([`request::parse`]). Replies are [`Frame`]s, encoded for the connection's
//! protocol version ([`Protocol::Resp2`] or [`Protocol::Resp3`]): RESP3 types such as
//! maps, sets and doubles fall back to their RESP2 shapes the way Redis 7 does it.
//!
//! [`Frame::to_wire`] and [`Frame::from_wire`] ([`wire`]) are a lossless binary form of a
//! frame for carrying replies between nodes.
//!
//! Invariants: no input makes this crate panic; every size is capped by [`Limits`]
//! before anything is allocated for it.

pub mod cli;
pub mod double;
pub mod frame;
pub mod request;
pub mod wire;

pub use frame::{Frame, Protocol};
pub use request::{Check, Limits, ProtocolError};
pub use wire::WireError;
