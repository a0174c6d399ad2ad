//! A Logstash worker thread: takes windows from the output's [`WorkQueue`], sends them as
//! Lumberjack frames to its current host and reads the ACKs.
//!
//! Per connection up to `pipelining` windows are in flight (at least one); ACKs are read in
//! order. An ACK releases that many events of the oldest window (partial ACKs release a prefix); a
//! keep-alive (0) only resets the `timeout`. On any error the connection is closed, the
//! unacknowledged tails go back to the front of the queue, the window shrinks (slow start), and
//! the worker waits with equal-jitter backoff before reconnecting, to the next host in failover
//! mode. Which hosts a worker has, and how the queue is shared, is [`crate::outputs::net::balance`].

use super::protocol;
use crate::outputs::net::backoff::Backoff;
use crate::outputs::net::balance::{HostSet, Work, WorkQueue};
use crate::outputs::net::conn::{Conn, Dialer};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Logged as libbeat's `logstash` logger (and `-d logstash` selects it).
const LOG: &str = "packetbeat::outputs::logstash";

pub struct Settings {
    pub pipelining: usize,
    pub bulk_max_size: usize,
    pub slow_start: bool,
    pub compression_level: u32,
    pub ttl: Duration,
    pub backoff_init: Duration,
    pub backoff_max: Duration,
}

/// libbeat's window controller (`slow_start`).
pub struct Window {
    pub size: usize,
    max_ok: usize,
    max: usize,
    failed: bool,
}

pub const START_WINDOW: usize = 10;

impl Window {
    pub fn new(slow: bool, max: usize) -> Window {
        Window {
            size: if slow { START_WINDOW.min(max) } else { max },
            max_ok: 0,
            max,
            failed: false,
        }
    }
    /// After a fully ACKed window: ×1.5 rounded up, capped at `bulk_max_size`, and, once a
    /// window has failed, at the largest size that worked.
    pub fn grow(&mut self) {
        self.max_ok = self.max_ok.max(self.size);
        let mut next = (self.size * 3).div_ceil(2).min(self.max);
        if self.failed {
            next = next.min(self.max_ok);
        }
        self.size = next.max(1);
    }
    pub fn shrink(&mut self) {
        self.failed = true;
        self.size = (self.size / 2).max(1);
    }
}

struct InFlight {
    work: Work,
    acked: usize,
}

pub struct Worker {
    pub queue: Arc<WorkQueue>,
    pub hosts: HostSet<Dialer>,
    pub settings: Arc<Settings>,
}

/// A worker's connection and what rides on it.
struct Session {
    conn: Option<(Conn, Instant)>,
    inflight: VecDeque<InFlight>,
    window: Window,
    backoff: Backoff,
}

impl Worker {
    pub fn run(mut self) {
        let mut s = Session {
            conn: None,
            inflight: VecDeque::new(),
            window: self.new_window(),
            backoff: Backoff::new(self.settings.backoff_init, self.settings.backoff_max),
        };
        let mut out = Vec::with_capacity(1 << 20);
        let mut scratch = Vec::with_capacity(1 << 20);
        let depth = self.settings.pipelining.max(1);
        loop {
            // 1. fill the pipeline (block only when nothing is in flight)
            while s.inflight.len() < depth {
                let Some(work) = self.queue.take(s.window.size, s.inflight.is_empty()) else {
                    break;
                };
                if s.conn.as_ref().is_some_and(|(_, since)| {
                    self.settings.pipelining == 0
                        && !self.settings.ttl.is_zero()
                        && since.elapsed() >= self.settings.ttl
                }) {
                    tracing::debug!(target: LOG, "logstash: ttl expired, reconnecting to {}", self.hosts.current().label());
                    if let Some((mut c, _)) = s.conn.take() {
                        c.shutdown();
                    }
                    s.window = self.new_window();
                }
                if s.conn.is_none() {
                    match self.hosts.current().connect() {
                        Ok(c) => {
                            tracing::info!(target: LOG, "Connection to {} established", self.describe());
                            s.conn = Some((c, Instant::now()));
                        }
                        Err(e) => {
                            let why = format!("Failed to connect to {}: {e}", self.describe());
                            self.queue.metrics.error(&why);
                            tracing::error!(target: LOG, "{why}");
                            self.queue.requeue(vec![work]);
                            if !self.next_host_after_backoff(&mut s) {
                                return;
                            }
                            continue;
                        }
                    }
                }
                let (c, _) = s.conn.as_mut().unwrap();
                out.clear();
                protocol::write_window(
                    &mut out,
                    &mut scratch,
                    &work.enc,
                    work.range.clone(),
                    self.settings.compression_level,
                );
                let n = work.range.len();
                s.inflight.push_back(InFlight { work, acked: 0 });
                if let Err(e) = c.write_all(&out).and_then(|_| c.flush()) {
                    if !self.fail(&mut s, &format!("write: {e}")) {
                        return;
                    }
                    continue;
                }
                let m = &self.queue.metrics;
                m.batches.fetch_add(1, Ordering::Relaxed);
                m.write_bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
                tracing::trace!(target: LOG, "logstash: sent window of {n} events");
            }
            if s.inflight.is_empty() {
                if self.queue.stopping() {
                    if let Some((mut c, _)) = s.conn.take() {
                        c.shutdown();
                    }
                    return;
                }
                continue;
            }
            // 2. read one ACK for the oldest window
            let (c, _) = s.conn.as_mut().unwrap();
            let ack = read_ack(c);
            let m = &self.queue.metrics;
            match &ack {
                Ok(_) => m.read_bytes.fetch_add(protocol::ACK_LEN as u64, Ordering::Relaxed),
                Err(_) => m.read_errors.fetch_add(1, Ordering::Relaxed),
            };
            match ack {
                Ok(0) => {} // keep-alive
                Ok(seq) => {
                    let head = s.inflight.front_mut().unwrap();
                    let n = head.work.range.len();
                    let seq = seq as usize;
                    if seq > n || seq < head.acked {
                        let why = format!("invalid ACK sequence number {seq} (window of {n})");
                        if !self.fail(&mut s, &why) {
                            return;
                        }
                        continue;
                    }
                    let newly = seq - head.acked;
                    head.acked = seq;
                    self.queue.release(newly);
                    if seq == n {
                        s.inflight.pop_front();
                        s.window.grow();
                        s.backoff.reset();
                    }
                }
                Err(e) => {
                    if !self.fail(&mut s, &e.to_string()) {
                        return;
                    }
                }
            }
        }
    }

    fn new_window(&self) -> Window {
        Window::new(self.settings.slow_start, self.settings.bulk_max_size.max(1))
    }

    /// libbeat's name for a client: `backoff(async(tcp://host:port))`.
    fn describe(&self) -> String {
        let mode = if self.settings.pipelining > 0 {
            "async"
        } else {
            "sync"
        };
        format!("backoff({mode}(tcp://{}))", self.hosts.current().label())
    }

    /// After a failed window: closes the connection, shrinks the window, puts every
    /// unacknowledged event back on the queue, then backs off to the next host. False when the
    /// worker should end.
    fn fail(&mut self, s: &mut Session, why: &str) -> bool {
        let m = &self.queue.metrics;
        m.error(why);
        if let Some((mut c, _)) = s.conn.take() {
            c.shutdown();
        }
        s.window.shrink();
        let mut back = Vec::new();
        for f in s.inflight.drain(..) {
            let r = f.work.range.start + f.acked..f.work.range.end;
            m.failed.fetch_add(r.len() as u64, Ordering::Relaxed);
            back.push(Work {
                enc: f.work.enc,
                range: r,
            });
        }
        let n: usize = back.iter().map(|w| w.range.len()).sum();
        tracing::error!(target: LOG, "Failed to publish events caused by: {why}; {n} events will be resent");
        self.queue.requeue(back);
        self.next_host_after_backoff(s)
    }

    /// Moves to the next host and waits out the backoff; false when the output gave up meanwhile.
    fn next_host_after_backoff(&mut self, s: &mut Session) -> bool {
        self.hosts.advance();
        self.queue.sleep(s.backoff.next_wait())
    }
}

/// Reads one ACK frame.
fn read_ack(conn: &mut Conn) -> io::Result<u32> {
    let mut b = [0u8; protocol::ACK_LEN];
    conn.read_exact(&mut b).map_err(|e| {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out waiting for an ACK from logstash",
            )
        } else {
            e
        }
    })?;
    protocol::parse_ack(&b).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_grows_and_shrinks() {
        let mut w = Window::new(true, 100);
        assert_eq!(w.size, 10);
        w.grow();
        assert_eq!(w.size, 15);
        w.grow();
        assert_eq!(w.size, 23);
        w.shrink();
        assert_eq!(w.size, 11);
        for _ in 0..20 {
            w.grow();
        }
        // 23 failed; 15 is the largest that worked
        assert_eq!(w.size, 15);
        let mut w = Window::new(true, 100);
        for _ in 0..20 {
            w.grow();
        }
        assert_eq!(w.size, 100);
        let mut w = Window::new(true, 1);
        w.shrink();
        assert_eq!(w.size, 1);
        assert_eq!(Window::new(false, 2048).size, 2048);
    }
}
