//! `output.redis`: events appended to a Redis list (`RPUSH`) or published on a channel
//! (`PUBLISH`), as libbeat's redis output does.
//!
//! # Protocol
//!
//! RESP2 written by hand ([`resp`]): the output sends a handful of commands and reads integer,
//! status and error replies, so a client crate would add a connection layer of its own beside
//! the shared one ([`crate::outputs::net`]: dial, TLS, SOCKS5, backoff, failover and load
//! balancing) without doing anything this does not. On connect: `AUTH password` when one is
//! set (`password`, or the one in a `redis://:pw@host` URL), `PING`, `SELECT db` when `db` is
//! not 0. A batch for a list is one `RPUSH key e1 … eN` (Redis ≥ 2.4 takes several values);
//! for a channel, N pipelined `PUBLISH key e` with their N replies read in order. When the key
//! depends on the event (`keys` rules, or a format string in `key`: see
//! [`crate::outputs::select`]), each event is its own pipelined `RPUSH`/`PUBLISH` to its key, as
//! libbeat's `publishEventsPipeline` sends it (an event no rule names a key for goes to the empty
//! key, as there). Each event is
//! the JSON the file output writes, `@metadata.beat` being `index` (lower-cased) or
//! `packetbeat` (`codec.json.pretty` and `escape_html` apply), or its `codec.format` text (see
//! [`crate::outputs::codec`]; the event is read once for the text and its key, and one the
//! format string fails on is dropped, logged and counted, as libbeat's "Encoding event
//! failed").
//!
//! # Delivery
//!
//! At least once, as the Logstash output: `publish` returns once Redis has answered for every
//! event. A connection, write or read error (or an error reply to `RPUSH`) puts what was not
//! answered back on the queue; the worker backs off (`backoff.init` to `backoff.max`) and
//! reconnects, to the next host when `loadbalance` is off. Events Redis refuses with an error
//! reply (`WRONGTYPE`, `OOM`, …) are sent again up to `max_retries` times, then dropped with a
//! log line and counted as not delivered, as libbeat drops them. While no host takes events, `publish` blocks, which holds the capture
//! back through the bounded queue in front.

pub mod config;
pub mod resp;
pub mod worker;

use crate::outputs::codec::{self as codec_mod, Codec};
use crate::outputs::net::balance::{self, WorkQueue};
use crate::outputs::net::tls::SslConfig;
use crate::outputs::net::{self as net, Encoded};
use crate::outputs::select::Selector;
use crate::outputs::{Deadline, Output, OutputType};
use crate::publish::processors::ProcEvent;
use crate::publish::Event;
use config::RedisConfig;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use worker::{RedisHost, Settings, Worker};

/// Logged as libbeat's `redis` output logger.
const LOG: &str = "packetbeat::outputs::redis";

pub struct RedisOutput {
    codec: Codec,
    beat: String,
    /// The key of each event, when it is not the same for all (`keys`, a format string).
    keys: Option<Selector>,
    queue: Arc<WorkQueue>,
    workers: Vec<JoinHandle<()>>,
    deadline: Deadline,
    chunk: usize,
    batch_hint: usize,
}

/// Decodes and checks `output.redis`.
pub fn load_config(raw: &serde_yaml::Value, source: &str) -> anyhow::Result<RedisConfig> {
    let c: RedisConfig = crate::config::types::decode(raw, "output.redis", source)?;
    codec_mod::check_namespace(raw, "output.redis")
        .and_then(|_| c.validate())
        .map_err(|e| anyhow::anyhow!("{e} (source:'{source}')"))?;
    Ok(c)
}

/// One dialer (and password) per configured host; a `rediss://` host without `ssl` settings
/// uses TLS with the system's roots, a `redis://` one never uses TLS.
pub fn hosts(c: &RedisConfig) -> anyhow::Result<Vec<RedisHost>> {
    let default_ssl = SslConfig::default();
    let mut out = Vec::new();
    for h in &c.hosts {
        let url = config::parse_host(h).map_err(|e| anyhow::anyhow!("output.redis.hosts: {e}"))?;
        let one = [url.host.clone()];
        let mut opts = c.dial_options(&one, url.tls);
        if url.tls == Some(true) && opts.ssl.is_none() {
            opts.ssl = Some(&default_ssl);
        }
        let dialer = net::dialers(&opts)?.remove(0);
        out.push(RedisHost {
            dialer,
            password: url.password.unwrap_or_else(|| c.password.clone()),
        });
    }
    Ok(out)
}

impl RedisOutput {
    pub fn new(c: &RedisConfig) -> anyhow::Result<RedisOutput> {
        let hosts = hosts(c)?;
        let selector = c.key_selector().map_err(anyhow::Error::msg)?;
        let (key, keys) = match selector.constant() {
            Some(k) => (k, None),
            None => (String::new(), Some(selector)),
        };
        let settings = Arc::new(Settings {
            key,
            datatype: c.datatype().map_err(anyhow::Error::msg)?,
            db: c.db,
            bulk_max_size: c.bulk_max_size,
            max_retries: c.max_retries.max(0) as usize,
            backoff_init: c.backoff.init.0,
            backoff_max: c.backoff.max.0,
        });
        let queue = Arc::new(WorkQueue::default());
        let start = rand::random::<u32>() as usize;
        let mut workers = Vec::new();
        for hosts in balance::assign(&hosts, c.loadbalance, c.workers_per_host(), start) {
            let w = Worker {
                queue: queue.clone(),
                hosts,
                settings: settings.clone(),
            };
            workers.push(
                std::thread::Builder::new()
                    .name("redis".into())
                    .spawn(move || w.run())?,
            );
        }
        let n = workers.len();
        Ok(RedisOutput {
            codec: c.codec().map_err(anyhow::Error::msg)?,
            beat: c.beat_name(),
            keys,
            queue,
            workers,
            deadline: Deadline::default(),
            chunk: c.bulk_max_size,
            batch_hint: c.bulk_max_size * n,
        })
    }

    fn encode(&self, events: &[Event]) -> Encoded {
        let mut enc = Encoded {
            data: Vec::with_capacity(events.len() * 1024),
            ends: Vec::with_capacity(events.len()),
            targets: Vec::new(),
        };
        for e in events {
            let start = enc.data.len();
            match &self.codec {
                Codec::Json(json) => {
                    if e.meta.contains_key("beat") {
                        json.encode_into(e, &mut enc.data);
                    } else {
                        let mut e = e.clone();
                        e.meta
                            .insert("beat".into(), serde_json::Value::from(self.beat.as_str()));
                        json.encode_into(&e, &mut enc.data);
                    }
                    if let Some(keys) = &self.keys {
                        let key = keys.select_encoded(e.timestamp, &e.meta, &enc.data[start..]);
                        enc.targets.push(key);
                    }
                }
                Codec::Format(f) => {
                    // libbeat passes `index` to the codec, which the format codec does not
                    // read: `@metadata.beat` is the event's own here. One read of the event
                    // for the text and the key.
                    let reads_key = self.keys.as_ref().is_some_and(|k| k.reads_event());
                    let ev = if f.reads_fields() || reads_key {
                        codec_mod::tree_of(e)
                    } else {
                        ProcEvent::new(e.timestamp, Default::default(), Default::default())
                    };
                    let Some(text) = f.format(e.timestamp, &ev) else {
                        continue;
                    };
                    enc.data.extend_from_slice(text.as_bytes());
                    if let Some(keys) = &self.keys {
                        enc.targets.push(keys.select(e.timestamp, &ev));
                    }
                }
            }
            enc.ends.push(enc.data.len());
        }
        enc
    }
}

impl OutputType for RedisOutput {
    type Config = RedisConfig;
    fn load(cfg: &crate::config::Config) -> anyhow::Result<RedisConfig> {
        load_config(crate::outputs::raw_section(cfg, "redis")?, &cfg.source)
    }
    fn build(c: &RedisConfig, _cfg: &crate::config::Config) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(RedisOutput::new(c)?))
    }
    // No `codec`: events are encoded here, with `@metadata.beat` from `index`. No `test`:
    // libbeat's redis output has none either ("redis output doesn't support testing").
}

impl Output for RedisOutput {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if self.queue.abandoned() {
            self.queue
                .metrics
                .not_delivered
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        for part in events.chunks(self.chunk) {
            self.queue.push(Arc::new(self.encode(part)));
        }
        self.queue.wait(&self.deadline);
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.codec.log_failed("redis");
        self.queue.close();
        let abandoned = self.queue.abandoned();
        for w in self.workers.drain(..) {
            // Past the shutdown deadline a worker may still wait on a reply (up to `timeout`).
            if !abandoned {
                let _ = w.join();
            }
        }
        let nd = self.queue.metrics.not_delivered.load(Ordering::Relaxed);
        if nd > 0 {
            tracing::warn!(target: LOG, "redis: {nd} events were not delivered before shutdown_timeout");
        }
        tracing::info!(target: LOG, "redis output: {}", self.queue.metrics.summary());
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
