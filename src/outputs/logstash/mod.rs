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
//! See [`worker`] for windowing and pipelining, and [`crate::outputs::net`] for connections,
//! TLS, proxies, backoff and how workers share the hosts.

pub mod config;
pub mod protocol;
pub mod testing;
pub mod worker;

use crate::outputs::net::balance::{self, WorkQueue};
use crate::outputs::net::conn::Dialer;
use crate::outputs::net::{self as net, Encoded};
use crate::outputs::{Deadline, Output, OutputType};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
use config::LogstashConfig;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use worker::{Settings, Worker};

pub struct LogstashOutput {
    codec: JsonCodec,
    beat: Option<String>,
    queue: Arc<WorkQueue>,
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
    net::dialers(&c.dial_options())
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
        let queue = Arc::new(WorkQueue::default());
        let (q, s) = (queue.clone(), settings.clone());
        let workers = balance::spawn_workers(
            "logstash",
            &dialers,
            c.loadbalance,
            c.workers_per_host(),
            move |hosts| {
                Worker {
                    queue: q.clone(),
                    hosts,
                    settings: s.clone(),
                }
                .run()
            },
        )?;
        let n_workers = workers.len();
        Ok(LogstashOutput {
            codec: JsonCodec {
                pretty: false,
                escape_html: c.escape_html,
            },
            beat: c.beat_name(),
            queue,
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
            targets: Vec::new(),
        };
        for e in events {
            match &self.beat {
                Some(b) if e.encoded.is_none() && !e.meta.contains_key("beat") => {
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
}

impl OutputType for LogstashOutput {
    type Config = LogstashConfig;
    fn load(cfg: &crate::config::Config) -> anyhow::Result<LogstashConfig> {
        load_config(crate::outputs::raw_section(cfg, "logstash")?, &cfg.source)
    }
    fn build(c: &LogstashConfig, _cfg: &crate::config::Config) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(LogstashOutput::new(c)?))
    }
    /// Packet workers encode events ahead, as this output would (`escape_html`), unless `index`
    /// is set: then events without `@metadata.beat` get it here, before they are encoded.
    fn codec(c: &LogstashConfig) -> Option<JsonCodec> {
        c.beat_name().is_none().then_some(JsonCodec {
            pretty: false,
            escape_html: c.escape_html,
        })
    }
    fn test(c: &LogstashConfig, out: &mut dyn std::io::Write) -> Option<anyhow::Result<bool>> {
        Some(testing::test_output(c, out))
    }
}

impl Output for LogstashOutput {
    fn name(&self) -> &'static str {
        "logstash"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        if self.queue.nothing_to_send(events.len()) {
            return Ok(());
        }
        // Queued a window's worth at a time, so workers send while the rest is serialised.
        for part in events.chunks(self.chunk) {
            self.queue.push(Arc::new(self.encode(part)));
        }
        // Until every event is ACKed, or the shutdown deadline passes.
        self.queue.wait(&self.deadline);
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        let nd = self.queue.close_and_join(&mut self.workers);
        if nd > 0 {
            tracing::warn!(target: "packetbeat::outputs::logstash", "logstash: {nd} events were not delivered before shutdown_timeout");
        }
        tracing::info!(target: "packetbeat::outputs::logstash", "logstash output: {}", self.queue.metrics.summary());
        Ok(())
    }

    fn deadline(&self) -> Option<Deadline> {
        Some(self.deadline.clone())
    }

    fn batch_hint(&self) -> usize {
        self.batch_hint
    }

    fn metrics(&self) -> Option<crate::outputs::MetricsReader> {
        Some(self.queue.metrics_reader())
    }
}
