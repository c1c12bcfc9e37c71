//! The connection family: `HELLO`, `SELECT`, `CLIENT`, `AUTH`, `QUIT`, `RESET`.

use bytes::Bytes;
use kv::args;
use resp::{Frame, Protocol};

use super::{subcommand_arity, unknown_subcommand};
use crate::session::Session;

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
pub(super) async fn hello(session: &mut Session, args: &[Bytes]) -> Frame {
    let mut proto = session.proto;
    let mut setname = None;
    let mut auth = None;
    if let Some(v) = args.get(1) {
        let Some(v) = resp::request::parse_int(v) else {
            return Frame::error("ERR Protocol version is not an integer or out of range");
        };
        proto = match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Frame::error("NOPROTO unsupported protocol version"),
        };
        let mut i = 2;
        while i < args.len() {
            let more = args.len() - i - 1;
            if kv::args::is(&args[i], "auth") && more >= 2 {
                auth = Some((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            } else if kv::args::is(&args[i], "setname") && more >= 1 {
                setname = Some(args[i + 1].clone());
                i += 2;
            } else {
                return Frame::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                ));
            }
        }
    }
    if let Some((user, password)) = auth {
        match sign_in(session, Some(&user), &password).await {
            Ok(name) => session.sign_in_as(name),
            Err(refused) => return refused,
        }
    }
    if !session.authenticated {
        return Frame::error(crate::auth::HELLO_NOAUTH);
    }
    if let Some(name) = setname {
        if let Err(e) = set_client_name(session, &name) {
            return e;
        }
    }
    session.set_proto(proto);
    Frame::Map(vec![
        (Frame::bulk("server"), Frame::bulk("redis")),
        (Frame::bulk("version"), Frame::bulk(crate::REDIS_VERSION)),
        (
            Frame::bulk("proto"),
            Frame::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Frame::bulk("id"), Frame::Integer(session.info.id as i64)),
        (
            Frame::bulk("mode"),
            Frame::bulk(if session.shared.engine.node().is_some() {
                "cluster"
            } else {
                "standalone"
            }),
        ),
        (Frame::bulk("role"), Frame::bulk("master")),
        (Frame::bulk("modules"), Frame::Array(vec![])),
    ])
}

/// `SELECT index`: database 0 only, with Redis Cluster's error otherwise.
pub(super) fn select(args: &[Bytes]) -> Frame {
    match resp::request::parse_int(&args[1]) {
        None => kv::Error::NotInteger.to_frame(),
        Some(0) => Frame::OK,
        Some(_) => Frame::error("ERR SELECT is not allowed in cluster mode"),
    }
}

/// `AUTH [username] password`: signs the connection in (see `crate::auth`).
pub(super) async fn auth(session: &mut Session, args: &[Bytes]) -> Frame {
    let (user, password) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1][..]), &args[2]),
        _ => return Frame::error("ERR syntax error"),
    };
    match sign_in(session, user, password).await {
        Ok(name) => {
            session.sign_in_as(name);
            Frame::OK
        }
        Err(refused) => refused,
    }
}

/// Checks `user`'s `password` against the node's users; a refusal is logged in
/// `ACL LOG` (reason `auth`), as Redis logs it.
///
/// A refusal is looked at again after a read barrier of the meta group, so a user made
/// or given a password on another node a moment ago signs in here at once.
async fn sign_in(
    session: &mut Session,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<String, Frame> {
    let users = session.shared.users();
    let mut signed = session.shared.auth.sign_in(&users, user, password);
    if signed.is_err() && session.shared.engine.acl_barrier().await.is_ok() {
        let users = session.shared.users();
        signed = session.shared.auth.sign_in(&users, user, password);
    }
    if signed.is_err() {
        let name = String::from_utf8_lossy(user.unwrap_or(b"default")).into_owned();
        let context = if session.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        session
            .shared
            .acl_log
            .add("auth", context, "AUTH".into(), name, session.info.line());
    }
    signed
}

/// `RESET`: back to a fresh connection's state.
pub(super) fn reset(session: &mut Session) -> Frame {
    session.end_multi();
    session.watches.clear();
    session.set_proto(Protocol::Resp2);
    *session.info.name.lock().unwrap_or_else(|p| p.into_inner()) = None;
    // Back to the default user: signed out if it has a password.
    session.sign_out();
    Frame::Simple("RESET")
}

/// Validates and sets a client name (`CLIENT SETNAME`, `HELLO ... SETNAME`).
pub fn set_client_name(session: &mut Session, name: &[u8]) -> Result<(), Frame> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    let name = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
    *session.info.name.lock().unwrap_or_else(|p| p.into_inner()) = name;
    Ok(())
}

pub(super) fn client(session: &mut Session, args: &[Bytes]) -> Frame {
    let sub = &args[1];
    let argc = args.len();
    let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match lower.as_str() {
        "id" if argc == 2 => Frame::Integer(session.info.id as i64),
        "setname" if argc == 3 => match set_client_name(session, &args[2]) {
            Ok(()) => Frame::OK,
            Err(e) => e,
        },
        "getname" if argc == 2 => {
            match session
                .info
                .name
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                Some(n) => Frame::bulk(n),
                None => Frame::Null,
            }
        }
        "info" if argc == 2 => {
            Frame::Verbatim("txt", Bytes::from(format!("{}\n", session.info.line())))
        }
        "list" => {
            if argc == 4 && args::is(&args[2], "type") {
                let t = String::from_utf8_lossy(&args[3]).to_ascii_lowercase();
                if !["normal", "master", "replica", "pubsub"].contains(&t.as_str()) {
                    return Frame::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&args[3])
                    ));
                }
                if t != "normal" {
                    return Frame::Verbatim("txt", Bytes::new());
                }
            } else if argc != 2 {
                return Frame::error("ERR syntax error");
            }
            let mut text = String::new();
            for c in session.shared.clients.all() {
                text.push_str(&c.line());
                text.push('\n');
            }
            Frame::Verbatim("txt", Bytes::from(text))
        }
        "help" => Frame::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "LIST [TYPE <normal|master|replica|pubsub>]",
                "    Return information about client connections.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Frame::Status(l.to_string()))
            .collect(),
        ),
        "id" | "setname" | "getname" | "info" => subcommand_arity("client", sub),
        _ => unknown_subcommand("client", sub),
    }
}
