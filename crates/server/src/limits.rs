//! The process's file descriptor limit and `maxclients`, fitted to each other at start the
//! way Redis does it (`adjustOpenFilesLimit`): raise the soft limit of open files to what
//! `maxclients` needs if the hard limit allows; otherwise lower `maxclients` to what the
//! limit allows, and say so in Redis's words.
//!
//! A node needs descriptors besides its clients: the Raft log (sled's files, its blobs,
//! snapshot files being written, sent or received), the gRPC listener and two connections
//! per peer, the RESP listener, the runtime's own (epoll, eventfds). Redis reserves 32;
//! redraft reserves [`RESERVED_FDS`].

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tracing::{info, warn};

/// Descriptors kept for everything but client connections.
pub const RESERVED_FDS: u64 = 96;

/// The `maxclients` this process can serve: `requested` if the open files limit allows it
/// (raising the soft limit up to the hard one if needed), else as many as it allows. An
/// error when the limit leaves no room for even one client.
pub fn fit_maxclients(requested: usize) -> Result<usize, String> {
    let limit = getrlimit(Resource::Nofile);
    let (Some(mut soft), hard) = (limit.current, limit.maximum) else {
        return Ok(requested);
    };
    let needed = requested as u64 + RESERVED_FDS;
    if soft >= needed {
        return Ok(requested);
    }
    let target = hard.map_or(needed, |h| needed.min(h));
    if target > soft {
        let raised = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: hard,
            },
        );
        match raised {
            Ok(()) => {
                info!(
                    "Increased maximum number of open files to {target} (it was originally set \
                     to {soft})."
                );
                soft = target;
            }
            Err(e) => {
                warn!("Server can't set maximum open files to {target} because of OS error: {e}.")
            }
        }
    }
    if soft >= needed {
        return Ok(requested);
    }
    let fit = soft.saturating_sub(RESERVED_FDS);
    if fit == 0 {
        return Err(format!(
            "the open files limit ({soft}) leaves no descriptor for clients: redraft needs \
             {RESERVED_FDS} for itself; increase 'ulimit -n'"
        ));
    }
    warn!(
        "You requested maxclients of {requested} requiring at least {needed} max file descriptors."
    );
    warn!(
        "Current maximum open files is {soft}. maxclients has been reduced to {fit} to \
         compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    Ok(fit as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxclients_fits_the_limit() {
        let limit = getrlimit(Resource::Nofile);
        let Some(soft) = limit.current else {
            return;
        };
        // What the current limit allows is kept as is.
        let small = soft.saturating_sub(RESERVED_FDS).max(1) as usize;
        assert_eq!(fit_maxclients(small), Ok(small));
        // More than the hard limit allows is lowered to fit it.
        if let Some(hard) = limit.maximum {
            let huge = (hard + 1_000) as usize;
            let fit = fit_maxclients(huge).unwrap();
            assert!(
                fit as u64 + RESERVED_FDS <= hard,
                "{fit} for hard limit {hard}"
            );
            assert!(fit < huge);
        }
    }
}
