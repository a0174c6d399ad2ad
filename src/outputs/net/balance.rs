//! Failover and load balancing over an output's hosts, and the queue of serialised events that
//! the output's worker threads share.
//!
//! `publish` puts serialised batches on a [`WorkQueue`] and waits until every event is
//! acknowledged ([`WorkQueue::wait`]). Worker threads take ranges of events from the front
//! ([`WorkQueue::take`]), send them, [`release`](WorkQueue::release) what a server acknowledged
//! and, on an error, [`requeue`](WorkQueue::requeue) the rest at the front, where any worker picks
//! it up again. Which hosts a worker talks to is its [`HostSet`] ([`assign`]): with
//! `loadbalance: false` each of the `worker` workers holds every host, starts at its own one and
//! moves to the next on failure (failover); with `loadbalance: true` every host gets `worker`
//! workers of its own, all fed from the same queue, so batches spread over the hosts and a host
//! that is down simply stops taking work.

use super::{Encoded, Metrics};
use crate::outputs::Deadline;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A range of serialised events.
pub struct Work {
    pub enc: Arc<Encoded>,
    pub range: Range<usize>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Work>,
    /// Events of the current batch not yet acknowledged.
    outstanding: usize,
    closing: bool,
    /// The shutdown deadline passed: stop sending, count what is left as not delivered.
    abandoned: bool,
}

/// Events waiting to be sent, shared by the output and its workers.
#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<State>,
    /// Signalled when work is queued, the output closes or gives up.
    work: Condvar,
    /// Signalled when the last outstanding event is acknowledged.
    done: Condvar,
    pub metrics: Metrics,
}

impl WorkQueue {
    /// A reader of the counters, for [`crate::outputs::Output::metrics`].
    pub fn metrics_reader(self: &Arc<Self>) -> crate::outputs::MetricsReader {
        let q = self.clone();
        Arc::new(move || q.metrics.counters())
    }

    // The output's side.

    /// Queues serialised events.
    pub fn push(&self, enc: Arc<Encoded>) {
        let mut st = self.state.lock().unwrap();
        st.outstanding += enc.len();
        st.queue.push_back(Work {
            range: 0..enc.len(),
            enc,
        });
        self.work.notify_all();
    }

    /// True once the shutdown deadline has passed: nothing more is sent.
    pub fn abandoned(&self) -> bool {
        self.state.lock().unwrap().abandoned
    }

    /// For `publish`: true when `n` events need not be queued, because there are none or the
    /// shutdown deadline has passed (they are then counted as not delivered).
    pub fn nothing_to_send(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        if self.abandoned() {
            self.metrics
                .not_delivered
                .fetch_add(n as u64, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Waits until every queued event is acknowledged, or `deadline` passes (then the rest is
    /// counted as not delivered and the workers stop).
    pub fn wait(&self, deadline: &Deadline) {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.outstanding == 0 {
                return;
            }
            if st.abandoned || deadline.passed() {
                if !st.abandoned {
                    st.abandoned = true;
                    self.work.notify_all();
                }
                self.metrics
                    .not_delivered
                    .fetch_add(st.outstanding as u64, Ordering::Relaxed);
                st.outstanding = 0;
                st.queue.clear();
                return;
            }
            st = self
                .done
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// No more work comes: workers end once the queue is empty.
    pub fn close(&self) {
        let mut st = self.state.lock().unwrap();
        st.closing = true;
        self.work.notify_all();
    }

    // The workers' side.

    /// True when a worker with nothing in flight should end.
    pub fn stopping(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.abandoned || (st.closing && st.queue.is_empty())
    }

    /// Takes up to `max` events from the front of the queue; with `block`, waits for some unless
    /// the output is closing or abandoned.
    pub fn take(&self, max: usize, block: bool) -> Option<Work> {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.abandoned {
                return None;
            }
            if let Some(front) = st.queue.front_mut() {
                let r = front.range.clone();
                if r.len() <= max {
                    return st.queue.pop_front();
                }
                front.range.start = r.start + max;
                return Some(Work {
                    enc: front.enc.clone(),
                    range: r.start..r.start + max,
                });
            }
            if !block || st.closing {
                return None;
            }
            st = self.work.wait(st).unwrap();
        }
    }

    /// Puts unacknowledged work back at the front, in its order.
    pub fn requeue(&self, works: Vec<Work>) {
        let mut st = self.state.lock().unwrap();
        for w in works.into_iter().rev() {
            st.queue.push_front(w);
        }
        self.work.notify_all();
    }

    /// `n` more events were acknowledged.
    pub fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.metrics.acked.fetch_add(n as u64, Ordering::Relaxed);
        let mut st = self.state.lock().unwrap();
        st.outstanding = st.outstanding.saturating_sub(n);
        if st.outstanding == 0 {
            self.done.notify_all();
        }
    }

    /// `n` events are given up (counted as not delivered): the batch no longer waits for them.
    pub fn drop_events(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.metrics
            .not_delivered
            .fetch_add(n as u64, Ordering::Relaxed);
        self.metrics.dropped.fetch_add(n as u64, Ordering::Relaxed);
        let mut st = self.state.lock().unwrap();
        st.outstanding = st.outstanding.saturating_sub(n);
        if st.outstanding == 0 {
            self.done.notify_all();
        }
    }

    /// Sleeps for `d` unless the output is abandoned meanwhile; false when the worker should end.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut st = self.state.lock().unwrap();
        loop {
            if st.abandoned {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            st = self.work.wait_timeout(st, until - now).unwrap().0;
        }
    }
}

/// Starts one worker thread (named `name`) per host set of [`assign`] (the first failover set
/// starts at a random host), each running `run` with its hosts.
pub fn spawn_workers<H, F>(
    name: &str,
    hosts: &[H],
    loadbalance: bool,
    per_host: usize,
    run: F,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>>
where
    H: Clone + Send + 'static,
    F: Fn(HostSet<H>) + Send + Sync + 'static,
{
    let run = Arc::new(run);
    let start = rand::random::<u32>() as usize;
    assign(hosts, loadbalance, per_host, start)
        .into_iter()
        .map(|set| {
            let run = run.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || run(set))
        })
        .collect()
}

impl WorkQueue {
    /// The output closes: no more work; waits for the workers unless the shutdown deadline
    /// passed (a worker may then still be blocked on its peer, up to `timeout`: it is left, the
    /// process is exiting). Returns how many events were not delivered.
    pub fn close_and_join(&self, workers: &mut Vec<std::thread::JoinHandle<()>>) -> u64 {
        self.close();
        let abandoned = self.abandoned();
        for w in workers.drain(..) {
            if !abandoned {
                let _ = w.join();
            }
        }
        self.metrics.not_delivered.load(Ordering::Relaxed)
    }
}

/// The hosts one worker sends to, and the one it uses now.
#[derive(Clone, Debug)]
pub struct HostSet<H> {
    hosts: Vec<H>,
    current: usize,
}

impl<H> HostSet<H> {
    pub fn current(&self) -> &H {
        &self.hosts[self.current]
    }
    /// After a failure: the next host (failover); the same one when it is the only one.
    pub fn advance(&mut self) {
        self.current = (self.current + 1) % self.hosts.len();
    }
}

/// The host sets of an output's workers: `per_host` workers per host with `loadbalance`, else
/// `per_host` workers over all hosts, the first starting at host `start` (mod the number of
/// hosts) and each next one at the host after. `hosts` must not be empty.
pub fn assign<H: Clone>(
    hosts: &[H],
    loadbalance: bool,
    per_host: usize,
    start: usize,
) -> Vec<HostSet<H>> {
    let groups: Vec<(&[H], usize)> = if loadbalance {
        hosts.chunks(1).map(|h| (h, 0)).collect()
    } else {
        vec![(hosts, start)]
    };
    let mut sets = Vec::with_capacity(groups.len() * per_host);
    for (g, first) in groups {
        for i in 0..per_host {
            sets.push(HostSet {
                hosts: g.to_vec(),
                current: (first + i) % g.len(),
            });
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_and_loadbalance_sets() {
        let fo = assign(&["a", "b", "c"], false, 2, 4);
        assert_eq!(fo.len(), 2);
        assert_eq!((*fo[0].current(), *fo[1].current()), ("b", "c"));
        let mut s = fo[1].clone();
        s.advance();
        assert_eq!(*s.current(), "a");
        let lb = assign(&["a", "b"], true, 2, 7);
        let cur: Vec<_> = lb.iter().map(|s| *s.current()).collect();
        assert_eq!(cur, ["a", "a", "b", "b"]);
        let mut s = lb[2].clone();
        s.advance();
        assert_eq!(*s.current(), "b");
    }

    #[test]
    fn queue_splits_requeues_and_releases() {
        let q = WorkQueue::default();
        let enc = Encoded {
            data: b"abc".to_vec(),
            ends: vec![1, 2, 3],
            targets: Vec::new(),
        };
        q.push(Arc::new(enc));
        let w = q.take(2, false).unwrap();
        assert_eq!(w.range, 0..2);
        q.requeue(vec![w]);
        let w = q.take(5, false).unwrap();
        assert_eq!(w.range, 0..2);
        let w2 = q.take(5, false).unwrap();
        assert_eq!(w2.range, 2..3);
        assert!(q.take(5, false).is_none());
        q.release(3);
        q.wait(&Deadline::default());
        q.close();
        assert!(q.stopping());
        assert_eq!(q.metrics.acked.load(Ordering::Relaxed), 3);
    }
}
