//! Waiting without holding up the runtime's other tasks.
//!
//! A group's data sits behind one mutex, taken by its state machine to apply entries and
//! by reads to run. A read that walks the key space (`KEYS` over a million keys) holds it
//! for a while, and a thread that waits for a std mutex, or runs such a read, inside a
//! task keeps its runtime worker: with two workers, one long read and one apply waiting
//! behind it leave none for the heartbeats of every other group on the node, which then
//! lose their leaders. [`lock`] and [`blocking`] tell the runtime first
//! (`tokio::task::block_in_place`), so the worker's other tasks move to another thread.
//! A lock that is free is taken at once, as before.

use std::sync::{Mutex, MutexGuard, TryLockError};

/// Locks `m`, waiting with the runtime told if another holds it. A poisoned lock is
/// taken as it is (the data was left consistent: every change runs to its end or panics
/// before touching it).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Most holds are a single command's microsecond: a short spin takes the lock then,
    // without handing the worker over (which costs a thread switch).
    for _ in 0..SPINS {
        match m.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
    blocking(|| m.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Tries for a free lock before the worker is handed over (a few microseconds).
const SPINS: usize = 256;

/// Runs `f`, which may take long, with the runtime told when called on a worker of a
/// multi-thread runtime (elsewhere, a current-thread runtime or a plain thread, it just
/// runs).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// With one worker, a task waiting for a lock held elsewhere still lets the worker's
    /// other tasks run.
    #[test]
    fn a_task_waiting_for_a_lock_leaves_its_worker_to_others() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let data = Arc::new(Mutex::new(0u32));
        let held = data.lock().unwrap();
        let waiter = {
            let data = data.clone();
            rt.spawn(async move {
                *lock(&data) += 1;
            })
        };
        let (ticked, ticks) = std::sync::mpsc::channel();
        rt.spawn(async move {
            for i in 0..3 {
                let _ = ticked.send(i);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        // The other task ticks while the waiter waits (a plain lock would keep the only
        // worker, and no tick would come).
        for i in 0..3 {
            assert_eq!(ticks.recv_timeout(Duration::from_secs(10)), Ok(i));
        }
        drop(held);
        rt.block_on(waiter).unwrap();
        assert_eq!(*data.lock().unwrap(), 1);
        // Outside a runtime, and on a current-thread one, it just locks.
        assert_eq!(*lock(&data), 1);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async { *lock(&data) += 1 });
        assert_eq!(blocking(|| *lock(&data)), 2);
    }
}
