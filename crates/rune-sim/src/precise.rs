//! Sub-millisecond sleeps. Tokio's timer wheel has a 1 ms resolution and rounds every
//! deadline *up* to the next tick, so a chunk due at `received + 50 ms` leaves up to 1 ms
//! late (0.5 ms on average) — too coarse for a server whose timing is the ground truth a
//! load generator is checked against. Deadlines here are kept by one dedicated thread that
//! waits on a condition variable with a timeout (a futex with an hrtimer on Linux: tens of
//! microseconds of slack) and completes a oneshot when each is due.
//!
//! Long waits first sleep on Tokio's timer until [`COARSE_MARGIN`] before the deadline, so
//! the thread only handles the last stretch. The thread is started on first use and lives
//! as long as the process (it sleeps when nothing is due).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How close to the deadline the coarse Tokio sleep ends (its rounding error is < 1 ms).
const COARSE_MARGIN: Duration = Duration::from_millis(2);

/// Pending deadlines, earliest first. A `std::sync::Mutex` because it is held only for a
/// heap push/pop, never across an `.await`, and the timer thread is not a Tokio task.
struct Timer {
    queue: Mutex<Queue>,
    /// Signalled when a new earliest deadline is pushed.
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Senders by id; a dropped receiver (cancelled sleep) just fails the send.
    senders: std::collections::HashMap<u64, oneshot::Sender<()>>,
    next_id: u64,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer =
            Box::leak(Box::new(Timer { queue: Mutex::new(Queue::default()), wake: Condvar::new() }));
        let spawned = std::thread::Builder::new().name("rune-sim-timer".into()).spawn(move || run(t));
        if let Err(error) = spawned {
            tracing::error!(%error, "rune-sim: cannot start the precise timer thread; chunks will be late");
        }
        t
    })
}

fn run(t: &'static Timer) {
    let mut q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        while let Some(Reverse((at, id))) = q.heap.peek().copied() {
            if at > now {
                break;
            }
            q.heap.pop();
            if let Some(tx) = q.senders.remove(&id) {
                let _ = tx.send(());
            }
        }
        q = match q.heap.peek() {
            Some(Reverse((at, _))) => {
                let wait = at.saturating_duration_since(Instant::now());
                t.wake.wait_timeout(q, wait).unwrap_or_else(|e| e.into_inner()).0
            }
            None => t.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Sleeps until `deadline` with sub-millisecond accuracy.
pub(crate) async fn sleep_until(deadline: tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > COARSE_MARGIN {
        tokio::time::sleep_until(deadline - COARSE_MARGIN).await;
    }
    let at = deadline.into_std();
    if at <= Instant::now() {
        return;
    }
    let (tx, rx) = oneshot::channel();
    let t = timer();
    {
        let mut q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
        let id = q.next_id;
        q.next_id = q.next_id.wrapping_add(1);
        let earliest = q.heap.peek().is_none_or(|Reverse((first, _))| at < *first);
        q.heap.push(Reverse((at, id)));
        q.senders.insert(id, tx);
        if earliest {
            t.wake.notify_one();
        }
    }
    // An error means the timer thread could not start: fall back to Tokio's timer.
    if rx.await.is_err() {
        tokio::time::sleep_until(deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never early, and (on an idle machine) far closer than Tokio's 1 ms tick; the upper
    /// bound is generous because CI machines stall.
    #[tokio::test]
    async fn wakes_on_time() {
        for ms in [0.3, 2.5, 7.7] {
            let start = tokio::time::Instant::now();
            let deadline = start + Duration::from_secs_f64(ms / 1000.0);
            sleep_until(deadline).await;
            let late = tokio::time::Instant::now().saturating_duration_since(deadline);
            assert!(tokio::time::Instant::now() >= deadline);
            assert!(late < Duration::from_millis(500), "{late:?} late");
        }
    }
}
