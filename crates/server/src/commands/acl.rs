//! `ACL`: users and their rules, Redis's subcommands and replies. Changes (`SETUSER`,
//! `DELUSER`, `LOAD`) go through the meta group's log ([`crate::Engine::change_acl`]),
//! so they hold on every node and survive restarts; the rest reads what this node has
//! applied. `LOG` is the node's own, as in Redis; `SAVE` and `LOAD` use this node's
//! `aclfile`.

use bytes::Bytes;
use meta::acl::Change;
use rand::RngCore;
use resp::Frame;

use super::{lookup, subcommand_error, Command};
use crate::acl::{self, Denied};
use crate::session::Session;

/// Redis's reply to `ACL SAVE` and `ACL LOAD` without an ACL file.
const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You \
     may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
     (assuming you have a Redis configuration file set) in order to store users in the Redis \
     configuration.";

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

pub(super) async fn acl(session: &mut Session, args: &[Bytes]) -> Frame {
    if let Some(error) = subcommand_error(args) {
        return error;
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    // What reads the users sees every change acknowledged before it, made on any node.
    if matches!(
        sub.as_str(),
        "getuser" | "list" | "users" | "dryrun" | "save"
    ) {
        if let Err(e) = session.shared.engine.acl_barrier().await {
            return e;
        }
    }
    match sub.as_str() {
        "setuser" => setuser(session, args).await,
        "getuser" => getuser(session, &args[2]),
        "deluser" => {
            let names = args[2..]
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            session
                .shared
                .engine
                .change_acl(Change::DelUsers(names))
                .await
        }
        "list" => Frame::Array(
            session
                .shared
                .users()
                .describe()
                .into_iter()
                .map(Frame::bulk)
                .collect(),
        ),
        "users" => Frame::Array(
            session
                .shared
                .users()
                .users
                .keys()
                .map(|n| Frame::bulk(n.clone()))
                .collect(),
        ),
        "whoami" => Frame::bulk(session.user.clone()),
        "cat" => cat(args.get(2)),
        "genpass" => genpass(args.get(2)),
        "log" => log(session, args.get(2)),
        "dryrun" => dryrun(session, args),
        "save" => save(session),
        "load" => load(session).await,
        _ => Frame::Array(HELP.iter().map(|l| Frame::Simple(l)).collect()),
    }
}

/// `ACL SETUSER name rule...`: the rules are read here (a password becomes its hash) and
/// applied in the meta group's log, all or none.
async fn setuser(session: &mut Session, args: &[Bytes]) -> Frame {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    if !meta::acl::valid_name(&name) || args[2].contains(&0) {
        return Frame::error(format!("ERR {}", meta::acl::BAD_NAME));
    }
    let mut ops = Vec::with_capacity(args.len() - 3);
    for rule in &args[3..] {
        match meta::acl::parse_op(rule, &acl::known) {
            Ok(op) => ops.push(op),
            Err(why) => return modifier_error(rule, &why),
        }
    }
    let reply = session
        .shared
        .engine
        .change_acl(Change::SetUser { name, ops })
        .await;
    // A rule refused where it applies (`ACLRULE <number> <why>`) is named as the client
    // wrote it.
    if let Frame::Error(text) = &reply {
        if let Some(rest) = text.strip_prefix(kv::proposal::RULE_REFUSED) {
            let mut parts = rest.trim_start().splitn(2, ' ');
            let at: Option<usize> = parts.next().and_then(|n| n.parse().ok());
            if let (Some(rule), Some(why)) = (at.and_then(|at| args.get(3 + at)), parts.next()) {
                return modifier_error(rule, why);
            }
        }
    }
    reply
}

fn modifier_error(rule: &[u8], why: &str) -> Frame {
    Frame::error(format!(
        "ERR Error in ACL SETUSER modifier '{}': {why}",
        String::from_utf8_lossy(rule)
    ))
}

/// `ACL GETUSER name`: flags, passwords (hashes), commands, keys, channels and selectors
/// (none), as Redis 7.0 replies; nil for no such user.
fn getuser(session: &Session, name: &[u8]) -> Frame {
    let users = session.shared.users();
    let Some(user) = users.users.get(&*String::from_utf8_lossy(name)) else {
        return Frame::Null;
    };
    Frame::Map(vec![
        (
            Frame::bulk("flags"),
            Frame::Array(user.flags().into_iter().map(Frame::bulk).collect()),
        ),
        (
            Frame::bulk("passwords"),
            Frame::Array(
                user.passwords
                    .iter()
                    .map(|h| Frame::bulk(h.clone()))
                    .collect(),
            ),
        ),
        (
            Frame::bulk("commands"),
            Frame::bulk(user.describe_commands()),
        ),
        (Frame::bulk("keys"), Frame::bulk(user.describe_keys())),
        (
            Frame::bulk("channels"),
            Frame::bulk(user.describe_channels()),
        ),
        (Frame::bulk("selectors"), Frame::Array(Vec::new())),
    ])
}

/// `ACL CAT [category]`.
fn cat(category: Option<&Bytes>) -> Frame {
    let Some(category) = category else {
        return Frame::Array(
            meta::acl::CATEGORIES
                .iter()
                .map(|c| Frame::bulk(*c))
                .collect(),
        );
    };
    let name = String::from_utf8_lossy(category).to_ascii_lowercase();
    match acl::category_bit(&name) {
        Some(bit) => Frame::Array(acl::commands_in(bit).into_iter().map(Frame::bulk).collect()),
        None => Frame::error(format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(category)
        )),
    }
}

/// `ACL GENPASS [bits]`: random hex digits from the operating system's generator, four
/// bits each (256 bits by default).
fn genpass(bits: Option<&Bytes>) -> Frame {
    let bits = match bits.map(|b| resp::request::parse_int(b)) {
        None => 256,
        Some(None) => return kv::Error::NotInteger.to_frame(),
        Some(Some(n)) if (1..=4096).contains(&n) => n as usize,
        Some(Some(_)) => {
            return Frame::error(
                "ERR ACL GENPASS argument must be the number of bits for the output password, \
                 a positive number up to 4096",
            )
        }
    };
    let chars = bits.div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    Frame::bulk(hex)
}

/// `ACL LOG [count | RESET]`.
fn log(session: &Session, arg: Option<&Bytes>) -> Frame {
    // Redis shows the latest ten unless asked for another number.
    let count = match arg {
        None => Some(10),
        Some(a) if kv::args::is(a, "reset") => {
            session.shared.acl_log.reset();
            return Frame::OK;
        }
        Some(a) => match resp::request::parse_int(a) {
            Some(n) => Some(n.max(0) as usize),
            None => return kv::Error::NotInteger.to_frame(),
        },
    };
    let now = std::time::Instant::now();
    let entries = session.shared.acl_log.latest(count);
    Frame::Array(
        entries
            .into_iter()
            .map(|e| {
                let age = now.duration_since(e.created).as_secs_f64();
                Frame::Map(vec![
                    (Frame::bulk("count"), Frame::Integer(e.count as i64)),
                    (Frame::bulk("reason"), Frame::bulk(e.reason)),
                    (Frame::bulk("context"), Frame::bulk(e.context)),
                    (Frame::bulk("object"), Frame::bulk(e.object)),
                    (Frame::bulk("username"), Frame::bulk(e.username)),
                    (Frame::bulk("age-seconds"), Frame::Double(age)),
                    (Frame::bulk("client-info"), Frame::bulk(e.client_info)),
                ])
            })
            .collect(),
    )
}

/// `ACL DRYRUN user command [arg...]`: whether `user` may run the command (`+OK`), or
/// why not, without running it.
fn dryrun(session: &Session, args: &[Bytes]) -> Frame {
    let users = session.shared.users();
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    if !users.users.contains_key(&name) {
        return Frame::error(format!("ERR User '{name}' not found"));
    }
    let command_args = &args[3..];
    let Some(command) = lookup(&command_args[0]) else {
        return Frame::error(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&command_args[0])
        ));
    };
    let (cmd_name, keys) = match command {
        Command::Data(spec) if spec.arity_ok(command_args.len()) => {
            (spec.name, spec.key_positions(command_args))
        }
        Command::Connection(spec) if spec.arity_ok(command_args.len()) => {
            (spec.name, super::key_positions(spec, command_args.len()))
        }
        Command::Data(spec) => return kv::Error::Arity(spec.name.into()).to_frame(),
        Command::Connection(spec) => return kv::Error::Arity(spec.name.into()).to_frame(),
    };
    let Some(access) = session.shared.acl.access(&users, &name) else {
        return Frame::error(format!("ERR User '{name}' not found"));
    };
    match access.check(cmd_name, command_args, &keys) {
        Ok(()) => Frame::OK,
        Err(denied @ (Denied::Command(_) | Denied::Key(_))) => Frame::bulk(denied.dry_run()),
    }
}

/// `ACL SAVE`: this node's `aclfile` rewritten with the users (written aside, then
/// renamed over it).
fn save(session: &Session) -> Frame {
    let Some(path) = session.shared.config.aclfile() else {
        return Frame::error(NO_ACLFILE);
    };
    let mut text = session.shared.users().describe().join("\n");
    text.push('\n');
    let aside = path.with_extension("tmp-save");
    let written = std::fs::write(&aside, text).and_then(|()| std::fs::rename(&aside, path));
    match written {
        Ok(()) => Frame::OK,
        Err(e) => Frame::error(format!(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information ({e})"
        )),
    }
}

/// `ACL LOAD`: the users of this node's `aclfile` replace every user, on every node; a
/// file with an error changes nothing.
async fn load(session: &Session) -> Frame {
    let Some(path) = session.shared.config.aclfile() else {
        return Frame::error(NO_ACLFILE);
    };
    match read_aclfile(path) {
        Ok(users) => {
            session
                .shared
                .engine
                .change_acl(Change::Replace(users))
                .await
        }
        Err(why) => Frame::error(format!("ERR {why}")),
    }
}

/// The users of an ACL file, or why it cannot be read.
pub fn read_aclfile(
    path: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, meta::acl::User>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    meta::acl::parse_file(&text, &acl::known).map_err(|why| format!("{}:{why}", path.display()))
}
