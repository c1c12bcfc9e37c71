//! redraft's integration tests, in one test binary: a differential test against a real
//! `redis-server`, protocol tests with raw bytes, and real clients (the `redis` crate and
//! `redis-cli`) against an in-process redraft, and cluster stories with real `redraft`
//! processes on loopback.

mod acl;
mod auth;
mod clients;
mod cluster;
mod cluster_protocol;
mod diff;
mod faults;
mod gen;
mod glob;
mod harness;
mod history;
mod limits;
mod moves;
mod nodes;
mod protocol;
mod tls;
