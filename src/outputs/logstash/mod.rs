//! `output.logstash`: ships events to Logstash's `beats` input (or any Lumberjack v2 server) as
//! Packetbeat does.
//!
//! # Protocol (Lumberjack v2)
//!
//! The client opens a TCP (optionally TLS, optionally through SOCKS5) connection and sends
//! *windows*: a `W` frame with the event count N, then N `J` frames (`seq` 1..=N, length, the
//! event's JSON exactly as Packetbeat serialises it: `@timestamp`, `@metadata` with `beat`,
//! `type`, `version` and the event's own metadata, then the fields). With a non-zero
//! `compression_level` the N `J` frames travel zlib-compressed inside one `C` frame. The server answers with `A`
//! frames carrying the sequence number of the last event it has taken: `N` completes the window,
//! a smaller number is a partial ACK, and `0` is a keep-alive sent while it is still busy; each
//! ACK read has its own `timeout`. Frame layouts are in [`protocol`].
//!
//! # Delivery
//!
//! At least once: a batch given to [`LogstashOutput::publish`] returns only when every event is
//! ACKed. Connection loss, a timeout or a protocol error closes the connection; whatever was not
//! ACKed is sent again (after equal-jitter backoff, to the next host in failover mode), so a
//! server restart can produce duplicates but never loses events. While no host takes events,
//! `publish` blocks, which holds the capture back through the bounded queue in front.
//! See [`balance`] for threads, windowing and pipelining.

pub mod balance;
pub mod client;
pub mod config;
pub mod protocol;
pub mod socks5;
pub mod testing;
pub mod tls;

use crate::publish::json::JsonCodec;
use crate::outputs::{Deadline, Output};
use crate::publish::Event;
use balance::{Settings, Shared, Work, Worker};
use client::Dialer;
use config::LogstashConfig;
use protocol::Encoded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The output's counters (logged when it closes).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events ACKed by a server.
    pub acked: AtomicU64,
    /// Events whose window failed and that were queued again (each resend counts).
    pub failed: AtomicU64,
    /// Events given up when the shutdown deadline passed.
    pub not_delivered: AtomicU64,
    /// Windows written.
    pub batches: AtomicU64,
    /// Bytes written (frames, after compression).
    pub write_bytes: AtomicU64,
    /// Connection, write, ACK and protocol errors.
    pub errors: AtomicU64,
}

impl Metrics {
    pub fn summary(&self) -> String {
        format!(
            "events acked {}, resent {}, not delivered {}; windows {}; write bytes {}; errors {}",
            self.acked.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.not_delivered.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
            self.write_bytes.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

pub struct LogstashOutput {
    codec: JsonCodec,
    beat: Option<String>,
    shared: Arc<Shared>,
    pub metrics: Arc<Metrics>,
    workers: Vec<JoinHandle<()>>,
    deadline: Deadline,
    batch_hint: usize,
    chunk: usize,
}

/// Decodes and checks `output.logstash`.
pub fn load_config(raw: &serde_yaml::Value, source: &str) -> anyhow::Result<LogstashConfig> {
    let c: LogstashConfig = crate::config::types::decode(raw, "output.logstash", source)?;
    c.validate()
        .map_err(|e| anyhow::anyhow!("{e} (source:'{source}')"))?;
    Ok(c)
}

/// One dialer per configured host.
pub fn dialers(c: &LogstashConfig) -> anyhow::Result<Vec<Dialer>> {
    let tls = if c.ssl_enabled() {
        Some(tls::client_config(c.ssl.as_ref().unwrap())?)
    } else {
        None
    };
    let proxy = match c.proxy_url.as_deref().filter(|s| !s.is_empty()) {
        Some(u) => Some(socks5::parse(u)?),
        None => None,
    };
    c.hosts
        .iter()
        .map(|h| {
            let (host, port) =
                config::host_port(h).map_err(|e| anyhow::anyhow!("output.logstash.hosts: {e}"))?;
            Ok(Dialer {
                host,
                port,
                timeout: c.timeout.0,
                tls: tls.clone(),
                proxy: proxy.clone(),
                proxy_local_resolve: c.proxy_use_local_resolver,
            })
        })
        .collect()
}

impl LogstashOutput {
    pub fn new(c: &LogstashConfig) -> anyhow::Result<LogstashOutput> {
        let dialers = dialers(c)?;
        if c.ttl.0 > Duration::ZERO && c.pipelining > 0 {
            tracing::warn!(target: "packetbeat::outputs::logstash", "output.logstash.ttl is only supported with pipelining: 0 (as in Packetbeat); ignored");
        }
        let settings = Arc::new(Settings {
            pipelining: c.pipelining,
            bulk_max_size: if c.bulk_max_size == 0 {
                2048
            } else {
                c.bulk_max_size
            },
            slow_start: c.slow_start,
            compression_level: c.compression_level,
            ttl: c.ttl.0,
            backoff_init: c.backoff.init.0,
            backoff_max: c.backoff.max.0,
        });
        let shared = Arc::new(Shared::default());
        let metrics = Arc::new(Metrics::default());
        let per_host = c.workers_per_host();
        let mut workers = Vec::new();
        let start = rand::random::<u32>() as usize;
        let groups: Vec<(Vec<Dialer>, usize)> = if c.loadbalance {
            dialers.iter().map(|d| (vec![d.clone()], 0)).collect()
        } else {
            vec![(dialers.clone(), start)]
        };
        for (g, first) in groups {
            for i in 0..per_host {
                let w = Worker {
                    shared: shared.clone(),
                    metrics: metrics.clone(),
                    dialers: g.clone(),
                    settings: settings.clone(),
                    first_host: first + i,
                };
                workers.push(
                    std::thread::Builder::new()
                        .name("logstash".into())
                        .spawn(move || w.run())?,
                );
            }
        }
        let n_workers = workers.len();
        Ok(LogstashOutput {
            codec: JsonCodec {
                pretty: false,
                escape_html: c.escape_html,
            },
            beat: c.beat_name(),
            shared,
            metrics,
            workers,
            deadline: Deadline::default(),
            batch_hint: settings.bulk_max_size * settings.pipelining.max(1) * n_workers,
            chunk: settings.bulk_max_size,
        })
    }

    fn encode(&self, events: &[Event]) -> Encoded {
        let mut enc = Encoded {
            data: Vec::with_capacity(events.len() * 1024),
            ends: Vec::with_capacity(events.len()),
        };
        for e in events {
            match &self.beat {
                Some(b) if !e.meta.contains_key("beat") => {
                    let mut e = e.clone();
                    e.meta
                        .insert("beat".into(), serde_json::Value::from(b.as_str()));
                    self.codec.encode_into(&e, &mut enc.data);
                }
                _ => self.codec.encode_into(e, &mut enc.data),
            }
            enc.ends.push(enc.data.len());
        }
        enc
    }

    /// Waits until the queued batch is fully ACKed, or the deadline passes (then the rest is
    /// counted as not delivered).
    fn wait(&self) {
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if st.outstanding == 0 {
                return;
            }
            if st.abandoned || self.deadline.passed() {
                if !st.abandoned {
                    st.abandoned = true;
                    self.shared.work.notify_all();
                }
                self.metrics
                    .not_delivered
                    .fetch_add(st.outstanding as u64, Ordering::Relaxed);
                st.outstanding = 0;
                st.queue.clear();
                return;
            }
            st = self
                .shared
                .done
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }
}

impl Output for LogstashOutput {
    fn name(&self) -> &'static str {
        "logstash"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        {
            let st = self.shared.state.lock().unwrap();
            if st.abandoned {
                self.metrics
                    .not_delivered
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                return Ok(());
            }
        }
        // Queued a window's worth at a time, so workers send while the rest is serialised.
        for part in events.chunks(self.chunk) {
            let enc = Arc::new(self.encode(part));
            let mut st = self.shared.state.lock().unwrap();
            st.outstanding += enc.len();
            st.queue.push_back(Work {
                range: 0..enc.len(),
                enc,
            });
            self.shared.work.notify_all();
        }
        self.wait();
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        {
            let mut st = self.shared.state.lock().unwrap();
            st.closing = true;
            self.shared.work.notify_all();
        }
        let abandoned = self.shared.state.lock().unwrap().abandoned;
        for w in self.workers.drain(..) {
            // Past the shutdown deadline a worker may still be blocked reading an ACK (up to
            // `timeout`): leave it; the process is exiting.
            if !abandoned {
                let _ = w.join();
            }
        }
        let nd = self.metrics.not_delivered.load(Ordering::Relaxed);
        if nd > 0 {
            tracing::warn!(target: "packetbeat::outputs::logstash", "logstash: {nd} events were not delivered before shutdown_timeout");
        }
        tracing::info!(target: "packetbeat::outputs::logstash", "logstash output: {}", self.metrics.summary());
        Ok(())
    }

    fn deadline(&self) -> Option<Deadline> {
        Some(self.deadline.clone())
    }

    fn batch_hint(&self) -> usize {
        self.batch_hint
    }
}
