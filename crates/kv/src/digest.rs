//! `DEBUG DIGEST`: a digest of the whole keyspace that replicas holding the same data
//! agree on, whatever order their keys are in.
//!
//! Each live key contributes the SHA-1 of its name, type, expiry and contents (members of
//! unordered collections sorted first); the digest is the XOR of those, so it does not
//! depend on iteration order. An empty database digests to 40 zeros, as in Redis.

use sha1_smol::Sha1;

use crate::db::Db;
use crate::value::Value;

fn field(h: &mut Sha1, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

impl Db {
    /// The digest of every key live at `now_ms`, as 40 hex characters.
    pub fn digest(&self, now_ms: i64) -> String {
        let mut acc = [0u8; 20];
        let mut any = false;
        for (key, entry) in self.iter() {
            if !Db::is_live_entry(entry, now_ms) {
                continue;
            }
            any = true;
            let mut h = Sha1::new();
            field(&mut h, key);
            field(&mut h, entry.value.type_name().as_bytes());
            h.update(&entry.expire_at().unwrap_or(-1).to_le_bytes());
            match &entry.value {
                Value::Str(s) => field(&mut h, s),
                Value::List(l) => l.items.iter().for_each(|i| field(&mut h, i)),
                Value::Hash(m) => {
                    let mut pairs: Vec<_> = m.map.iter().collect();
                    pairs.sort();
                    for (f, v) in pairs {
                        field(&mut h, f);
                        field(&mut h, v);
                    }
                }
                Value::Set(s) => {
                    let mut members: Vec<_> = s.members.iter().collect();
                    members.sort();
                    members.into_iter().for_each(|m| field(&mut h, m));
                }
                Value::ZSet(z) => {
                    for (score, member) in &z.order {
                        field(&mut h, member);
                        h.update(&score.0.to_bits().to_le_bytes());
                    }
                }
            }
            for (a, b) in acc.iter_mut().zip(h.digest().bytes()) {
                *a ^= b;
            }
        }
        // The meta group's database: its cluster map counts as one more entry.
        if let Some(map) = &self.meta {
            any = true;
            let mut h = Sha1::new();
            field(&mut h, b"cluster map");
            field(&mut h, &map.encode());
            for (a, b) in acc.iter_mut().zip(h.digest().bytes()) {
                *a ^= b;
            }
        }
        if let Some(users) = &self.acl {
            any = true;
            let mut h = Sha1::new();
            field(&mut h, b"users");
            field(&mut h, &users.encode());
            for (a, b) in acc.iter_mut().zip(h.digest().bytes()) {
                *a ^= b;
            }
        }
        if !self.moves.is_empty() {
            any = true;
            let mut h = Sha1::new();
            let mut moves = Vec::new();
            crate::moves::encode_moves(&mut moves, &self.moves);
            field(&mut h, b"slot moves");
            field(&mut h, &moves);
            for (a, b) in acc.iter_mut().zip(h.digest().bytes()) {
                *a ^= b;
            }
        }
        if !any {
            return "0".repeat(40);
        }
        acc.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn run(db: &mut Db, line: &str) {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut ctx = crate::Ctx { now_ms: 0, seed: 0 };
        kv_exec(db, &args, &mut ctx);
    }

    fn kv_exec(db: &mut Db, args: &[Bytes], ctx: &mut crate::Ctx) {
        let cmd = crate::parse(args, ctx).expect("valid");
        cmd.execute(db, 0);
    }

    #[test]
    fn same_data_same_digest_whatever_the_order() {
        let (mut a, mut b) = (Db::new(), Db::new());
        assert_eq!(a.digest(0), "0".repeat(40));
        for line in [
            "SET x 1",
            "SADD s a b c",
            "HSET h f 1 g 2",
            "ZADD z 1 m 2 n",
        ] {
            run(&mut a, line);
        }
        for line in [
            "ZADD z 2 n 1 m",
            "HSET h g 2 f 1",
            "SADD s c b a",
            "SET x 1",
        ] {
            run(&mut b, line);
        }
        assert_eq!(a.digest(0), b.digest(0));
        run(&mut b, "SET x 2");
        assert_ne!(a.digest(0), b.digest(0));
        run(&mut b, "SET x 1");
        run(&mut b, "RPUSH l a");
        assert_ne!(a.digest(0), b.digest(0), "an extra key changes the digest");
    }
}
