//! The queue between the packet workers and the output thread.
//!
//! Workers [`push`](EventQueue::push) batches of finalised (usually already encoded) events; the
//! output thread [`pop`](EventQueue::pop)s them, coalesced up to the output's batch hint. The
//! beater only sees [`EventQueue`]; [`MemQueue`] is the bounded in-memory queue it runs with.
//! Batches move through the queue as they are (no per-event copy or lock).

use crate::publish::Event;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// Where packet workers leave event batches for the output.
pub trait EventQueue: Send + Sync {
    /// Adds a batch. While the queue is full the caller waits, so a file capture is held back
    /// and nothing is dropped. A closed queue gives the batch back.
    fn push(&self, batch: Vec<Event>) -> Result<(), Vec<Event>>;
    /// Adds a batch only if there is room (live capture: Packetbeat's `DropIfFull`, so a slow
    /// output never holds the capture back). A full queue gives the batch back as
    /// `Err(TryPushError::Full)`, a closed one as `Err(TryPushError::Closed)`.
    fn try_push(&self, batch: Vec<Event>) -> Result<(), TryPushError>;
    /// The oldest batch, with the batches queued behind it appended while it has fewer than
    /// `max` events (0: one batch as it came). Waits while the queue is empty; `None` once it is
    /// closed and empty.
    fn pop(&self, max: usize) -> Option<Vec<Event>>;
    /// The output is done with the oldest `n` events popped (published, every one resolved).
    /// A queue that keeps events across restarts ([`super::diskqueue::DiskQueue`]) forgets them
    /// only then; popped events not acknowledged are delivered again after a restart. Nothing to
    /// do for the memory queue.
    fn ack(&self, _n: usize) {}
    /// Accepts no more batches and wakes every waiter: `pop` still returns what is queued.
    /// Called by the beater when every worker has ended, and by the output side when it stops.
    fn close(&self);
    /// Events waiting.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// How full the queue is, for the monitoring.
    fn fill(&self) -> QueueFill;
}

/// How full a queue is (`libbeat.pipeline.queue` in `/stats`): events held (waiting, or read
/// and not yet acknowledged), and for a queue bounded in bytes, its bytes and their limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueFill {
    pub events: u64,
    /// Of `events`, those the output has taken and not acknowledged yet (a queue that keeps
    /// them until then: the disk queue; the memory queue forgets an event once taken).
    pub in_flight: u64,
    /// 0 when the queue is bounded in bytes.
    pub max_events: u64,
    pub bytes: u64,
    /// 0 when the queue is bounded in events (or unbounded).
    pub max_bytes: u64,
}

/// Why [`EventQueue::try_push`] gave a batch back.
#[derive(Debug)]
pub enum TryPushError {
    Full(Vec<Event>),
    Closed(Vec<Event>),
}

/// A bounded in-memory queue of batches.
pub struct MemQueue {
    capacity: usize,
    flush: Flush,
    state: Mutex<State>,
    /// Signalled for a waiting consumer when a batch arrives or the queue closes.
    not_empty: Condvar,
    /// Signalled for waiting producers when batches are taken or the queue closes.
    not_full: Condvar,
}

#[derive(Default)]
struct State {
    batches: VecDeque<Vec<Event>>,
    events: usize,
    /// When the oldest waiting event arrived (for `flush.timeout`).
    first_at: Option<std::time::Instant>,
    closed: bool,
    /// Threads waiting on `not_empty` / `not_full` (signals are sent only when someone waits).
    consumers_waiting: usize,
    producers_waiting: usize,
}

/// `queue.mem.flush`: the output is handed events once `min_events` wait, or the oldest has
/// waited `timeout`. libbeat's defaults are 1600 and 10 s; this build's default is 0 (events go
/// as soon as the output is ready: the packet workers already hand them over in batches, and
/// a busy output takes everything queued at once), a listed difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flush {
    pub min_events: usize,
    pub timeout: std::time::Duration,
}

impl MemQueue {
    /// A queue holding up to `capacity` batches (at least one).
    pub fn new(capacity: usize) -> MemQueue {
        MemQueue::with_flush(capacity, Flush::default())
    }

    pub fn with_flush(capacity: usize, flush: Flush) -> MemQueue {
        MemQueue {
            capacity: capacity.max(1),
            flush,
            state: Mutex::new(State::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }
    }
}

impl EventQueue for MemQueue {
    fn push(&self, batch: Vec<Event>) -> Result<(), Vec<Event>> {
        let mut st = self.state.lock().unwrap();
        while st.batches.len() >= self.capacity && !st.closed {
            st.producers_waiting += 1;
            st = self.not_full.wait(st).unwrap();
            st.producers_waiting -= 1;
        }
        if st.closed {
            return Err(batch);
        }
        if st.events == 0 && self.flush.min_events > 0 {
            st.first_at = Some(std::time::Instant::now());
        }
        st.events += batch.len();
        st.batches.push_back(batch);
        if st.consumers_waiting > 0 {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    fn try_push(&self, batch: Vec<Event>) -> Result<(), TryPushError> {
        let mut st = self.state.lock().unwrap();
        if st.closed {
            return Err(TryPushError::Closed(batch));
        }
        if st.batches.len() >= self.capacity {
            return Err(TryPushError::Full(batch));
        }
        if st.events == 0 && self.flush.min_events > 0 {
            st.first_at = Some(std::time::Instant::now());
        }
        st.events += batch.len();
        st.batches.push_back(batch);
        if st.consumers_waiting > 0 {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    fn pop(&self, max: usize) -> Option<Vec<Event>> {
        let mut st = self.state.lock().unwrap();
        let mut batch = loop {
            // Held back until flush.min_events wait or the oldest has waited flush.timeout.
            let hold = match st.first_at {
                Some(t) if !st.closed && st.events < self.flush.min_events => {
                    self.flush.timeout.checked_sub(t.elapsed())
                }
                _ => None,
            };
            if let Some(left) = hold.filter(|d| !d.is_zero()) {
                st.consumers_waiting += 1;
                st = self.not_empty.wait_timeout(st, left).unwrap().0;
                st.consumers_waiting -= 1;
                continue;
            }
            if let Some(b) = st.batches.pop_front() {
                break b;
            }
            if st.closed {
                return None;
            }
            st.consumers_waiting += 1;
            st = self.not_empty.wait(st).unwrap();
            st.consumers_waiting -= 1;
        };
        while batch.len() < max {
            let Some(more) = st.batches.pop_front() else {
                break;
            };
            batch.extend(more);
        }
        st.events -= batch.len();
        st.first_at = match st.events {
            0 => None,
            _ if self.flush.min_events > 0 => Some(std::time::Instant::now()),
            _ => None,
        };
        if st.producers_waiting > 0 {
            self.not_full.notify_all();
        }
        Some(batch)
    }

    fn close(&self) {
        let mut st = self.state.lock().unwrap();
        st.closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    fn len(&self) -> usize {
        self.state.lock().unwrap().events
    }

    fn fill(&self) -> QueueFill {
        QueueFill {
            events: self.len() as u64,
            max_events: (self.capacity * super::worker::EVENT_BATCH) as u64,
            ..QueueFill::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch(n: usize) -> Vec<Event> {
        (0..n)
            .map(|_| Event::bare(crate::common::Ts::ZERO, Default::default()))
            .collect()
    }

    #[test]
    fn coalesces_up_to_the_hint_in_order() {
        let q = MemQueue::new(8);
        for n in [2, 3, 4] {
            q.push(batch(n)).unwrap();
        }
        assert_eq!(q.len(), 9);
        assert_eq!(q.pop(0).unwrap().len(), 2);
        assert_eq!(q.pop(4).unwrap().len(), 7);
        assert!(q.is_empty());
        q.push(batch(1)).unwrap();
        q.close();
        assert!(q.push(batch(1)).is_err());
        assert_eq!(q.pop(0).unwrap().len(), 1);
        assert!(q.pop(0).is_none());
    }

    #[test]
    fn flush_min_events_and_timeout_hold_events_back() {
        use std::time::{Duration, Instant};
        let q = Arc::new(MemQueue::with_flush(
            8,
            Flush {
                min_events: 5,
                timeout: Duration::from_millis(300),
            },
        ));
        // Enough events: handed over at once.
        q.push(batch(3)).unwrap();
        q.push(batch(2)).unwrap();
        let t = Instant::now();
        assert_eq!(q.pop(10).unwrap().len(), 5);
        assert!(t.elapsed() < Duration::from_millis(200));
        // Too few: held until the oldest has waited flush.timeout.
        q.push(batch(2)).unwrap();
        let t = Instant::now();
        assert_eq!(q.pop(10).unwrap().len(), 2);
        assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
        // Too few, then more arrive: handed over when min_events is reached.
        q.push(batch(1)).unwrap();
        let p = {
            let q = q.clone();
            std::thread::spawn(move || q.pop(10).unwrap().len())
        };
        std::thread::sleep(Duration::from_millis(50));
        q.push(batch(4)).unwrap();
        assert_eq!(p.join().unwrap(), 5);
        // Closing hands over what waits.
        q.push(batch(1)).unwrap();
        q.close();
        assert_eq!(q.pop(10).unwrap().len(), 1);
    }

    #[test]
    fn try_push_gives_back_when_full_or_closed() {
        let q = MemQueue::new(1);
        q.try_push(batch(2)).unwrap();
        match q.try_push(batch(3)) {
            Err(TryPushError::Full(b)) => assert_eq!(b.len(), 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.pop(0).unwrap().len(), 2);
        q.try_push(batch(1)).unwrap();
        q.close();
        assert!(matches!(q.try_push(batch(1)), Err(TryPushError::Closed(_))));
    }

    #[test]
    fn full_queue_blocks_until_popped_and_close_releases_producers() {
        let q = Arc::new(MemQueue::new(1));
        q.push(batch(1)).unwrap();
        let p = {
            let q = q.clone();
            std::thread::spawn(move || q.push(batch(2)).is_ok())
        };
        assert_eq!(q.pop(0).unwrap().len(), 1);
        assert!(p.join().unwrap());
        assert_eq!(q.pop(0).unwrap().len(), 2);
        q.push(batch(1)).unwrap();
        let p = {
            let q = q.clone();
            std::thread::spawn(move || q.push(batch(1)).is_err())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.close();
        assert!(p.join().unwrap());
    }
}
