//! CPU time from `/proc/self/stat`: this process's own (the load generator runs in it) and
//! that of its children once they have ended and been waited for (redis-benchmark, under
//! `timeout`, which waits for it and so passes its time on). Together with a run's wall
//! time they tell how many cores a client kept busy, and so whether the client, not the
//! server, was the bottleneck.
//!
//! The fields count clock ticks of 1/100 s (`USER_HZ`, 100 on Linux), so a figure is only
//! as precise as 10 ms: runs of a second or more.

/// Whose CPU time to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Every thread of this process.
    Own,
    /// Children that have ended and been waited for.
    Children,
}

/// The user plus system CPU time of `whose`, in seconds; `None` if `/proc` cannot tell.
pub fn seconds(whose: Whose) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat, whose)
}

/// The CPU time of `whose` in the text of a `/proc/<pid>/stat` file.
pub fn parse_stat(stat: &str, whose: Whose) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses; the fields after it
    // start after its last `)`, with field 3 (the state).
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15; cutime and cstime 16 and 17.
    let (user, system) = match whose {
        Whose::Own => (14, 15),
        Whose::Children => (16, 17),
    };
    Some((ticks(user)? + ticks(system)?) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_after_the_command_name() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 150 50 30 20 20 0 1 0";
        assert_eq!(parse_stat(stat, Whose::Own), Some(2.0));
        assert_eq!(parse_stat(stat, Whose::Children), Some(0.5));
        assert_eq!(parse_stat("4242 (x) S 1 2", Whose::Own), None);
    }

    #[test]
    fn a_waited_for_child_adds_to_the_children_time() {
        let before = seconds(Whose::Children).unwrap();
        // A child that spins for about 0.3 s of CPU (bounded by its own clock check).
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s%N) + 300000000)); while [ $(date +%s%N) -lt $end ]; do :; done",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let spent = seconds(Whose::Children).unwrap() - before;
        assert!(spent >= 0.1, "children's CPU grew by only {spent} s");
    }
}
