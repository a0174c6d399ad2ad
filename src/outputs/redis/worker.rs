//! A redis worker thread: takes batches from the output's [`WorkQueue`], writes them to its
//! current host and reads the replies.

use super::config::DataType;
use super::resp::{self, Reply};
use super::LOG;
use crate::outputs::net::backoff::Backoff;
use crate::outputs::net::balance::{HostSet, Work, WorkQueue};
use crate::outputs::net::conn::{Conn, Dialer};
use std::io::{self, BufReader, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub struct Settings {
    /// The key of every event, unless the batch names one per event (`Encoded::targets`).
    pub key: String,
    pub datatype: DataType,
    pub db: i64,
    pub bulk_max_size: usize,
    pub max_retries: usize,
    pub backoff_init: Duration,
    pub backoff_max: Duration,
}

/// One host and the password it wants.
#[derive(Clone)]
pub struct RedisHost {
    pub dialer: Dialer,
    pub password: String,
}

pub struct Worker {
    pub queue: Arc<WorkQueue>,
    pub hosts: HostSet<RedisHost>,
    pub settings: Arc<Settings>,
}

/// What became of a batch.
enum Sent {
    /// Every event was taken.
    Done,
    /// Redis refused these events with an error reply (the connection is fine).
    Refused(Vec<Work>, String),
}

impl Worker {
    pub fn run(mut self) {
        let mut conn: Option<BufReader<Conn>> = None;
        let mut backoff = Backoff::new(self.settings.backoff_init, self.settings.backoff_max);
        let mut out = Vec::with_capacity(1 << 20);
        while let Some(mut work) = self.queue.take(self.settings.bulk_max_size, true) {
            let mut refusals = 0;
            loop {
                if conn.is_none() {
                    match self.connect() {
                        Ok(c) => {
                            tracing::info!(target: LOG, "Connection to redis({}) established", self.label());
                            conn = Some(c);
                        }
                        Err(e) => {
                            let why = format!("Failed to connect to redis({}): {e}", self.label());
                            self.queue.metrics.error(&why);
                            tracing::error!(target: LOG, "{why}");
                            if !self.next_host_after(&mut backoff) {
                                self.queue.requeue(vec![work]);
                                return;
                            }
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected above");
                match self.send(c, &work, &mut out) {
                    Ok(Sent::Done) => {
                        backoff.reset();
                        break;
                    }
                    Ok(Sent::Refused(rest, why)) => {
                        refusals += 1;
                        let n: usize = rest.iter().map(|w| w.range.len()).sum();
                        self.queue.metrics.error(format!("redis refused {n} events ({why})"));
                        if refusals > self.settings.max_retries {
                            // libbeat drops events past max_retries; a refused command would
                            // otherwise block the pipeline for good.
                            tracing::error!(target: LOG, "redis refused {n} events {refusals} times ({why}); dropping them");
                            self.queue.drop_events(n);
                            break;
                        }
                        tracing::error!(target: LOG, "redis refused {n} events ({why}); retrying");
                        self.queue
                            .metrics
                            .failed
                            .fetch_add(n as u64, Ordering::Relaxed);
                        if !self.queue.sleep(backoff.next_wait()) {
                            self.queue.requeue(rest);
                            return;
                        }
                        // Retried on this connection: it is fine, the command was refused.
                        self.queue.requeue(rest);
                        match self.queue.take(self.settings.bulk_max_size, true) {
                            Some(w) => work = w,
                            None => return,
                        }
                    }
                    Err(e) => {
                        let n = work.range.len();
                        let m = &self.queue.metrics;
                        m.error(format!("Failed to publish events caused by: {e}"));
                        m.failed.fetch_add(n as u64, Ordering::Relaxed);
                        tracing::error!(target: LOG, "Failed to publish events caused by: {e}; {n} events will be resent");
                        if let Some(mut c) = conn.take() {
                            c.get_mut().shutdown();
                        }
                        if !self.next_host_after(&mut backoff) {
                            self.queue.requeue(vec![work]);
                            return;
                        }
                    }
                }
            }
        }
        if let Some(mut c) = conn.take() {
            c.get_mut().shutdown();
        }
    }

    fn label(&self) -> String {
        self.hosts.current().dialer.label()
    }

    /// Connects and sets the connection up: `AUTH`, `PING`, `SELECT` (libbeat's
    /// `initRedisConn`).
    fn connect(&self) -> io::Result<BufReader<Conn>> {
        let h = self.hosts.current();
        let mut c = BufReader::new(h.dialer.connect()?);
        let mut cmds: Vec<Vec<&[u8]>> = Vec::new();
        if !h.password.is_empty() {
            cmds.push(vec![b"AUTH", h.password.as_bytes()]);
        }
        cmds.push(vec![b"PING"]);
        let db = self.settings.db.to_string();
        if self.settings.db != 0 {
            cmds.push(vec![b"SELECT", db.as_bytes()]);
        }
        for cmd in cmds {
            let mut out = Vec::new();
            resp::command(&mut out, cmd.iter().copied());
            c.get_mut().write_all(&out)?;
            c.get_mut().flush()?;
            if let Reply::Error(e) = resp::read_reply(&mut c)? {
                let name = String::from_utf8_lossy(cmd[0]);
                return Err(io::Error::other(format!("{name}: {e}")));
            }
        }
        Ok(c)
    }

    /// Writes one batch and reads its replies.
    fn send(&self, c: &mut BufReader<Conn>, work: &Work, out: &mut Vec<u8>) -> io::Result<Sent> {
        let key = self.settings.key.as_bytes();
        let per_event = !work.enc.targets.is_empty();
        let command: &[u8] = match self.settings.datatype {
            DataType::List => b"RPUSH",
            DataType::Channel => b"PUBLISH",
        };
        // One command per event (each reply read in order) when the key differs per event or
        // the data type is a channel; one RPUSH of the whole batch otherwise.
        let pipelined = per_event || self.settings.datatype == DataType::Channel;
        out.clear();
        if pipelined {
            for i in work.range.clone() {
                let k = match per_event {
                    true => work.enc.targets[i].as_bytes(),
                    false => key,
                };
                resp::command(out, [command, k, work.enc.event(i)].into_iter());
            }
        } else {
            let events = work.range.clone().map(|i| work.enc.event(i));
            let args = std::iter::once(command)
                .chain(std::iter::once(key))
                .chain(events);
            resp::command(out, ExactIter(args, work.range.len() + 2));
        }
        c.get_mut().write_all(out)?;
        c.get_mut().flush()?;
        let m = &self.queue.metrics;
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.write_bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
        if !pipelined {
            return match resp::read_reply(c)? {
                Reply::Error(e) => Ok(Sent::Refused(
                    vec![Work {
                        enc: work.enc.clone(),
                        range: work.range.clone(),
                    }],
                    e,
                )),
                _ => {
                    self.queue.release(work.range.len());
                    Ok(Sent::Done)
                }
            };
        }
        let mut refused = Vec::new();
        let mut why = String::new();
        for i in work.range.clone() {
            match resp::read_reply(c)? {
                Reply::Error(e) => {
                    why = e;
                    refused.push(Work {
                        enc: work.enc.clone(),
                        range: i..i + 1,
                    });
                }
                _ => self.queue.release(1),
            }
        }
        Ok(if refused.is_empty() {
            Sent::Done
        } else {
            Sent::Refused(refused, why)
        })
    }

    /// Moves to the next host and waits out the backoff; false when the output gave up meanwhile.
    fn next_host_after(&mut self, backoff: &mut Backoff) -> bool {
        self.hosts.advance();
        self.queue.sleep(backoff.next_wait())
    }
}

/// An iterator with a known length (a chain of `once`s and a range map has none).
struct ExactIter<I>(I, usize);

impl<'a, I: Iterator<Item = &'a [u8]>> Iterator for ExactIter<I> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let v = self.0.next()?;
        self.1 -= 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<'a, I: Iterator<Item = &'a [u8]>> ExactSizeIterator for ExactIter<I> {}
