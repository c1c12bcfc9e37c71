//! `INFO replication` as redraft writes it, parsed once for every harness (the
//! integration stories' process cluster and the Jepsen suite's).

use std::collections::BTreeMap;

/// One field of an `INFO` reply's `field:value` lines, trimmed.
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A node's Raft state, from the `raft_*` fields of `INFO replication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftInfo {
    pub role: String,
    pub term: u64,
    /// `None` when the node knows no leader (`raft_leader_id` empty, `0` or `none`).
    pub leader: Option<u64>,
    pub commit: u64,
    pub applied: u64,
    pub last_snapshot: u64,
    /// `raft_voters` (comma-separated ids), when the node reports it.
    pub voters: Option<Vec<u64>>,
    /// `raft_last_log_index` and `raft_log_size`, when the node reports them.
    pub last_log: Option<u64>,
    pub log_size: Option<u64>,
    /// Each data group as this node sees it, from its
    /// `raft_group_<id>:role=..,term=..,leader=..,...,voters=1 2 3,...` line (empty when
    /// the node reports no such lines).
    pub groups: BTreeMap<u64, GroupInfo>,
}

/// One data group's line of `INFO replication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub voters: Vec<u64>,
    /// The slot ranges the node routes to the group (`slots=a-b c-d`; empty when the
    /// line has none).
    pub slots: Vec<(u16, u16)>,
}

impl GroupInfo {
    /// True if the node routes `slot` to this group.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

impl RaftInfo {
    /// The last index purged from the log (`raft_last_log_index - raft_log_size`), when the
    /// node reports both.
    pub fn purged(&self) -> Option<u64> {
        Some(self.last_log?.saturating_sub(self.log_size?))
    }

    /// Parses `INFO replication` text; says which field is missing or malformed.
    pub fn parse(text: &str) -> Result<RaftInfo, String> {
        let fields: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
            .collect();
        let get = |k: &str| {
            fields
                .get(k)
                .map(|v| v.trim())
                .ok_or_else(|| format!("INFO replication has no `{k}:` field: {text:?}"))
        };
        let num = |k: &str| -> Result<u64, String> {
            let v = get(k)?;
            if v.is_empty() || v == "none" {
                return Ok(0);
            }
            v.parse()
                .map_err(|_| format!("INFO replication `{k}:{v}` is not a number"))
        };
        let leader =
            match get("raft_leader_id")? {
                "" | "0" | "none" | "-" => None,
                v => Some(v.parse().map_err(|_| {
                    format!("INFO replication `raft_leader_id:{v}` is not a node id")
                })?),
            };
        let mut groups = BTreeMap::new();
        for (key, value) in &fields {
            let Some(group) = key.strip_prefix("raft_group_") else {
                continue;
            };
            let Ok(group) = group.parse::<u64>() else {
                continue;
            };
            let field = |name: &str| {
                value
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .ok_or_else(|| format!("INFO `{key}:{value}` has no {name}"))
            };
            let bad = |what: &str| format!("INFO `{key}:{value}`: bad {what}");
            let voters = field("voters")?
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::parse::<u64>)
                .collect::<Result<Vec<u64>, _>>()
                .map_err(|_| bad("voters"))?;
            let leader = match field("leader")? {
                "none" | "" => None,
                l => Some(l.parse().map_err(|_| bad("leader"))?),
            };
            let slots = match field("slots") {
                Err(_) => Vec::new(),
                Ok(text) => text
                    .split(' ')
                    .filter(|r| !r.is_empty())
                    .map(|r| {
                        let (a, b) = r.split_once('-').unwrap_or((r, r));
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect::<Option<Vec<(u16, u16)>>>()
                    .ok_or_else(|| bad("slots"))?,
            };
            groups.insert(
                group,
                GroupInfo {
                    role: field("role")?.to_string(),
                    term: field("term")?.parse().map_err(|_| bad("term"))?,
                    leader,
                    voters,
                    slots,
                },
            );
        }
        Ok(RaftInfo {
            groups,
            role: get("role")?.to_string(),
            term: num("raft_term")?,
            leader,
            commit: num("raft_commit_index")?,
            applied: num("raft_applied_index")?,
            last_snapshot: num("raft_last_snapshot_index")?,
            last_log: fields
                .contains_key("raft_last_log_index")
                .then(|| num("raft_last_log_index"))
                .transpose()?,
            log_size: fields
                .contains_key("raft_log_size")
                .then(|| num("raft_log_size"))
                .transpose()?,
            voters: match fields.get("raft_voters") {
                None => None,
                Some(v) => Some(
                    v.split(',')
                        .filter(|x| !x.trim().is_empty())
                        .map(|x| x.trim().parse::<u64>())
                        .collect::<Result<Vec<u64>, _>>()
                        .map_err(|_| {
                            format!("INFO replication `raft_voters:{v}` is not a list of ids")
                        })?,
                ),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_a_node_says() {
        let text = "# Replication\r\nrole:leader\r\nraft_term:7\r\nraft_leader_id:2\r\n\
                    raft_commit_index:10\r\nraft_applied_index:9\r\nraft_last_snapshot_index:0\r\n\
                    raft_voters:1,2,3\r\nraft_last_log_index:12\r\nraft_log_size:4\r\n";
        let i = RaftInfo::parse(text).unwrap();
        assert_eq!((i.role.as_str(), i.term, i.leader), ("leader", 7, Some(2)));
        assert_eq!(i.voters, Some(vec![1, 2, 3]));
        assert!(i.groups.is_empty());
        let groups = format!(
            "{text}raft_group_1:role=leader,term=7,leader=2,commit=10,applied=9,last_log=12,\
             voters=1 2 3,slots=0-8191\r\nraft_group_2:role=follower,term=3,leader=1,commit=4,\
             applied=4,last_log=4,voters=1 3,slots=8192-16383\r\n"
        );
        let g = RaftInfo::parse(&groups).unwrap().groups;
        assert_eq!(
            g.get(&1),
            Some(&GroupInfo {
                role: "leader".into(),
                term: 7,
                leader: Some(2),
                voters: vec![1, 2, 3],
                slots: vec![(0, 8191)],
            })
        );
        assert_eq!(g[&2].voters, vec![1, 3]);
        assert!(g[&2].serves(8192) && !g[&2].serves(8191));
        assert_eq!(g[&2].leader, Some(1));
        assert_eq!(i.purged(), Some(8));
        assert_eq!(field(text, "raft_voters"), Some("1,2,3"));
        let none = text.replace("raft_leader_id:2", "raft_leader_id:none");
        assert_eq!(RaftInfo::parse(&none).unwrap().leader, None);
        assert!(RaftInfo::parse(&text.replace("raft_term:7", "raft_term:x")).is_err());
        assert!(RaftInfo::parse("role:leader\n").is_err());
    }
}
