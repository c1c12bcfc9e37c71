//! Who may run commands, as Redis decides it for its `default` user: `requirepass` (a
//! connection runs nothing but `AUTH`, `HELLO`, `QUIT` and `RESET` until it has given the
//! password; `RESET` signs it out again) and protected mode (a node whose default user has
//! no password takes clients from loopback addresses only). Redis's replies, word for
//! word; the differential test in `tests/tests/it/auth.rs` compares them with a real
//! `redis-server`. Other users, and the default user's own passwords and rules, are the
//! ACL's (`meta::acl`, replicated through the meta group); `requirepass`, a node's own
//! setting, is the default user's password on that node whatever the ACL says of it.

use std::net::IpAddr;

use meta::acl::{Users, DEFAULT_USER};
use resp::Frame;

/// The reply to a command sent before authenticating.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// The reply to a wrong password, or an unknown user.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// `HELLO` without `AUTH` before authenticating.
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already \
     authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate \
     the client and select the RESP protocol version at the same time";
/// `AUTH <password>` when the default user has none.
const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for \
     the default user. Are you sure your configuration is correct?";
/// What protected mode writes to a client it refuses, before closing the connection.
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode \
     is enabled and no password is set for the default user. In this mode connections are \
     only accepted from the loopback interface. If you want to connect from external \
     computers to Redis you may adopt one of the following solutions: 1) Just disable \
     protected mode sending the command 'CONFIG SET protected-mode no' from the loopback \
     interface by connecting to Redis from the same host the server is running, however MAKE \
     SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to \
     make this change permanent. 2) Alternatively you can just disable the protected mode by \
     editing the Redis configuration file, and setting the protected mode option to 'no', and \
     then restarting the server. 3) If you started the server manually just for testing, \
     restart it with the '--protected-mode no' option. 4) Setup a an authentication password \
     for the default user. NOTE: You only need to do one of the above things in order for the \
     server to start accepting connections from the outside.\r\n";

/// The node's rules for its clients.
#[derive(Debug, Default)]
pub struct Auth {
    /// The default user's password (`requirepass`); `None`: none is asked for.
    password: Option<Vec<u8>>,
    /// Protected mode: without a password, only loopback clients are taken.
    protected: bool,
}

impl Auth {
    /// The rules for `requirepass` (empty: no password) and protected mode.
    pub fn new(requirepass: &str, protected_mode: bool) -> Auth {
        Auth {
            password: (!requirepass.is_empty()).then(|| requirepass.as_bytes().to_vec()),
            protected: protected_mode,
        }
    }

    /// True if a new connection must sign in before anything else: the default user
    /// has a password (`requirepass`, or the ACL's), or is off.
    pub fn required(&self, users: &Users) -> bool {
        self.password.is_some() || !default_nopass(users)
    }

    /// Signs in as `user` (`None`: `AUTH <password>`, the default user) with `password`:
    /// the user's name, or the error reply.
    pub fn sign_in(
        &self,
        users: &Users,
        user: Option<&[u8]>,
        password: &[u8],
    ) -> Result<String, Frame> {
        let name = match user {
            None => DEFAULT_USER,
            Some(name) => std::str::from_utf8(name).map_err(|_| Frame::error(WRONGPASS))?,
        };
        if name == DEFAULT_USER {
            if let Some(expected) = &self.password {
                return match same(expected, password) {
                    true => Ok(name.to_string()),
                    false => Err(Frame::error(WRONGPASS)),
                };
            }
            // `AUTH <password>` to a default user without one is a mistake worth saying
            // so; `AUTH default <anything>` is fine.
            if user.is_none() && default_nopass(users) {
                return Err(Frame::error(NO_PASSWORD));
            }
        }
        match users.users.get(name) {
            Some(u) if u.accepts(password) => Ok(name.to_string()),
            _ => Err(Frame::error(WRONGPASS)),
        }
    }

    /// Protected mode's refusal of a client connecting from `peer` ([`DENIED`]), if it
    /// is refused: the default user needs no password, the client is not local, and it
    /// did not present a TLS certificate the node checked (`tls_client_auth`: it is
    /// authenticated already, so protected mode does not apply).
    pub fn refuses(
        &self,
        peer: IpAddr,
        users: &Users,
        tls_client_auth: bool,
    ) -> Option<&'static str> {
        let loopback = match peer {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        let open = self.password.is_none() && default_nopass(users);
        (self.protected && open && !tls_client_auth && !loopback).then_some(DENIED)
    }
}

/// True if the ACL's default user is on and needs no password.
fn default_nopass(users: &Users) -> bool {
    users
        .users
        .get(DEFAULT_USER)
        .is_some_and(|u| u.enabled && u.nopass)
}

/// True if `a` and `b` are equal; takes the same time wherever they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users_with(rules: &[(&str, &[&str])]) -> Users {
        let mut users = Users::default();
        for (name, rules) in rules {
            let ops = rules
                .iter()
                .map(|r| meta::acl::parse_op(r.as_bytes(), &crate::acl::known).unwrap())
                .collect();
            users.apply(&meta::acl::Change::SetUser {
                name: name.to_string(),
                ops,
            });
        }
        users
    }

    #[test]
    fn the_default_user_signs_in_with_the_password() {
        let auth = Auth::new("s3cret", true);
        let users = users_with(&[("alice", &["on", ">s3cret"])]);
        let ok = |name: &str| Ok(name.to_string());
        assert!(auth.required(&users));
        assert_eq!(auth.sign_in(&users, None, b"s3cret"), ok("default"));
        assert_eq!(
            auth.sign_in(&users, Some(b"default"), b"s3cret"),
            ok("default")
        );
        assert_eq!(
            auth.sign_in(&users, None, b"s3creT"),
            Err(Frame::error(WRONGPASS))
        );
        assert_eq!(auth.sign_in(&users, Some(b"alice"), b"s3cret"), ok("alice"));
        assert_eq!(
            auth.sign_in(&users, Some(b"bob"), b"s3cret"),
            Err(Frame::error(WRONGPASS))
        );
    }

    #[test]
    fn without_a_password_anyone_is_the_default_user() {
        let auth = Auth::new("", true);
        let users = Users::default();
        assert!(!auth.required(&users));
        assert_eq!(
            auth.sign_in(&users, Some(b"default"), b"anything"),
            Ok("default".to_string())
        );
        assert_eq!(
            auth.sign_in(&users, None, b"anything"),
            Err(Frame::error(NO_PASSWORD))
        );
        assert_eq!(
            auth.sign_in(&users, Some(b"alice"), b"secret"),
            Err(Frame::error(WRONGPASS))
        );
        let guarded = users_with(&[("default", &[">pw"])]);
        assert!(auth.required(&guarded));
        assert_eq!(
            auth.sign_in(&guarded, None, b"pw"),
            Ok("default".to_string())
        );
    }

    #[test]
    fn protected_mode_takes_loopback_clients_only_without_a_password() {
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let open = Users::default();
        for local in ["127.0.0.1", "127.9.9.9", "::1"] {
            assert_eq!(
                Auth::new("", true).refuses(local.parse().unwrap(), &open, false),
                None
            );
        }
        assert_eq!(Auth::new("", true).refuses(mapped, &open, false), None);
        assert_eq!(
            Auth::new("", true).refuses(remote, &open, false),
            Some(DENIED)
        );
        assert_eq!(Auth::new("", true).refuses(remote, &open, true), None);
        assert_eq!(Auth::new("pw", true).refuses(remote, &open, false), None);
        assert_eq!(Auth::new("", false).refuses(remote, &open, false), None);
        let guarded = users_with(&[("default", &[">pw"])]);
        assert_eq!(Auth::new("", true).refuses(remote, &guarded, false), None);
    }
}
