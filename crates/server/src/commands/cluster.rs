//! The cluster family: `CLUSTER FORGET`, `CLUSTER TRANSFER-LEADER`.

use bytes::Bytes;
use resp::Frame;

use crate::session::Session;

/// `CLUSTER FORGET <node-id>`: removes a node from the cluster.
/// `CLUSTER TRANSFER-LEADER <node-id>` (redraft's own; sent to the leader): hands
/// leadership to that voter.
pub(super) async fn cluster(session: &mut Session, args: &[Bytes]) -> Frame {
    if kv::args::is(&args[1], "transfer-leader") {
        if args.len() != 3 {
            return kv::Error::Arity("cluster|transfer-leader".into()).to_frame();
        }
        let Some(id) = resp::request::parse_int(&args[2]).filter(|&id| id > 0) else {
            return Frame::error(format!(
                "ERR Unknown node {}",
                String::from_utf8_lossy(&args[2])
            ));
        };
        return session.shared.engine.transfer_leader(id as u64).await;
    }
    if kv::args::is(&args[1], "forget") {
        if args.len() != 3 {
            return kv::Error::Arity("cluster|forget".into()).to_frame();
        }
        let Some(id) = resp::request::parse_int(&args[2]).filter(|&id| id > 0) else {
            return Frame::error(format!(
                "ERR Unknown node {}",
                String::from_utf8_lossy(&args[2])
            ));
        };
        return session.shared.engine.forget(id as u64).await;
    }
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try CLUSTER HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}
