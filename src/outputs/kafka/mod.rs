//! `output.kafka`: events produced to one Kafka topic, as libbeat's kafka output does.
//!
//! # Client
//!
//! [`rskafka`] (InfluxData's pure-Rust client): it speaks the producer side of the protocol
//! this output needs (metadata, produce with record batches v2, ApiVersions negotiation),
//! compresses with gzip, snappy, lz4 and zstd, authenticates with SASL PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512, and does TLS with rustls, so it takes the same rustls configuration as the
//! other network outputs ([`crate::outputs::net::tls`]). `rdkafka` would bring librdkafka's
//! C build (and OpenSSL, libsasl2, zlib) for a producer whose own threads and queue we do not
//! want: the beater already has a bounded queue in front of the output. What rskafka does not
//! do is said where it matters: it always asks for `acks=all` (-1), so `required_acks: 1`
//! and `0` are met by a stronger guarantee; it compresses at its codecs' default levels
//! (`compression_level` is checked, not applied); `bulk_flush_frequency`,
//! `channel_buffer_size`, `keep_alive`, `metadata.full` and `metadata.retry.*` configure
//! sarama's internals and have no counterpart here (accepted, not used); `broker_timeout` too
//! (the broker waits for replicas up to rskafka's fixed 30 s). The client and its dependencies
//! (tokio, rsasl, zstd-sys and lz4-sys compiled with `cc`, no cmake or system libraries) took
//! 2 min 9 s of CPU in a clean debug build here, counting crates the project already had.
//!
//! # Threads, copies, batching
//!
//! No thread of its own: the output owns a current-thread tokio runtime that runs only inside
//! `publish`, on the beater's output thread. Packet workers encode events ahead (the output
//! returns its JSON codec from [`OutputType::codec`]); `publish` copies each event's bytes
//! once into one buffer ([`Encoded`]) and once per attempt into the record the client
//! serialises and compresses. A `publish` call's events are split per partition, and each
//! partition's records into produce requests of at most `bulk_max_size` records and
//! `max_message_bytes` bytes; all requests of a round are in flight together (one connection
//! per broker), compression runs on the output thread.
//!
//! # Delivery
//!
//! At least once: `publish` returns once the broker acknowledged every event, or the event
//! was dropped and counted. A request that fails with a retriable error (connection lost,
//! timeout, no leader, not enough replicas…) is sent again after `backoff.init` … `backoff.max`
//! without limit, reconnecting (and re-reading the topic's partitions) first, so an unreachable
//! cluster holds the capture back through the bounded queue; a request the broker refuses for
//! good (`MESSAGE_TOO_LARGE`, `CORRUPT_MESSAGE`, authorization…) is sent again up to
//! `max_retries` times (-1: without limit), then its events are dropped with a log line and
//! counted. A request whose answer was lost may have been written: its events are then in the
//! topic twice (counted as resent). An event whose record is bigger than `max_message_bytes`
//! is dropped before it is sent, logged and counted; the rest of the batch goes on. Past
//! `packetbeat.shutdown_timeout`, what is left is counted as not delivered.

pub mod config;
pub mod partition;

use crate::outputs::net::backoff::Backoff;
use crate::outputs::net::tls::SslConfig;
use crate::outputs::net::{Encoded, Metrics};
use crate::outputs::{Deadline, Output, OutputType};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
use config::{Compression, KafkaConfig, SaslMechanism};
use partition::Partitioning;
use rskafka::client::error::{Error as KError, ProtocolError};
use rskafka::client::partition::{
    Compression as KCompression, PartitionClient, UnknownTopicHandling,
};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Logged as libbeat's `kafka` output logger.
const LOG: &str = "packetbeat::outputs::kafka";

/// Bytes a v2 record adds to its key, value and headers at most (sarama's
/// `maximumRecordOverhead`), counted against `max_message_bytes` as sarama counts it.
const RECORD_OVERHEAD: usize = 36;
/// Per header, beside its key and value (two varint lengths).
const HEADER_OVERHEAD: usize = 10;

pub struct KafkaOutput {
    rt: tokio::runtime::Runtime,
    codec: JsonCodec,
    producer: Producer,
}

/// What sends batches (apart from the runtime it runs on).
struct Producer {
    topic: String,
    key: Option<Vec<u8>>,
    headers: BTreeMap<String, Vec<u8>>,
    compression: KCompression,
    max_message_bytes: usize,
    bulk_max_size: usize,
    max_retries: i64,
    timeout: Duration,
    refresh_every: Duration,
    reachable_only: bool,
    backoff: Backoff,
    partitioning: Partitioning,
    builder: BuilderSettings,
    conn: Option<Connected>,
    metrics: Arc<Metrics>,
    /// Events dropped before sending (too large, or no hash field with `random: false`).
    dropped: AtomicU64,
    /// Bytes of the acknowledged records (before compression).
    record_bytes: u64,
    deadline: Deadline,
    abandoned: bool,
}

/// What a client is built from (rskafka's builder is consumed by `build`).
struct BuilderSettings {
    hosts: Vec<String>,
    client_id: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslConfig>,
    backoff_init: Duration,
    backoff_max: Duration,
    timeout: Duration,
}

/// A client and the topic's partitions.
struct Connected {
    _client: Client,
    partitions: Vec<Arc<PartitionClient>>,
    at: Instant,
}

/// One produce request's worth of events: indexes into the batch's [`Encoded`].
struct Chunk {
    partition: usize,
    events: Vec<usize>,
    bytes: usize,
    /// Times the broker refused it for good.
    refusals: i64,
}

/// Whether an error is worth retrying without limit (the cluster may come back or move the
/// partition) or is the broker refusing the request itself.
fn retriable(e: &KError) -> bool {
    match e {
        KError::ServerError { protocol_error, .. } => matches!(
            protocol_error,
            ProtocolError::LeaderNotAvailable
                | ProtocolError::NotLeaderOrFollower
                | ProtocolError::RequestTimedOut
                | ProtocolError::BrokerNotAvailable
                | ProtocolError::ReplicaNotAvailable
                | ProtocolError::NetworkException
                | ProtocolError::NotEnoughReplicas
                | ProtocolError::NotEnoughReplicasAfterAppend
                | ProtocolError::UnknownTopicOrPartition
                | ProtocolError::KafkaStorageError
                | ProtocolError::NotController
                | ProtocolError::FencedLeaderEpoch
                | ProtocolError::UnknownLeaderEpoch
                | ProtocolError::OffsetNotAvailable
        ),
        _ => true,
    }
}

/// The broker's reason, without the request dump rskafka appends.
fn reason(e: &KError) -> String {
    match e {
        KError::ServerError {
            protocol_error,
            error_message,
            ..
        } => match error_message {
            Some(m) => format!("{protocol_error}: {m}"),
            None => protocol_error.to_string(),
        },
        other => other.to_string(),
    }
}

/// Decodes and checks `output.kafka`.
pub fn load_config(raw: &serde_yaml::Value, source: &str) -> anyhow::Result<KafkaConfig> {
    let c: KafkaConfig = crate::config::types::decode(raw, "output.kafka", source)?;
    c.validate()
        .map_err(|e| anyhow::anyhow!("{e} (source:'{source}')"))?;
    Ok(c)
}

/// `codec.json.pretty` and `codec.json.escape_html`.
pub fn codec(c: &KafkaConfig) -> JsonCodec {
    let json = c.codec.json.clone().unwrap_or_default();
    JsonCodec {
        pretty: json.pretty,
        escape_html: json.escape_html,
    }
}

impl KafkaOutput {
    pub fn new(c: &KafkaConfig) -> anyhow::Result<KafkaOutput> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(KafkaOutput {
            rt,
            codec: codec(c),
            producer: Producer::new(c)?,
        })
    }
}

impl Producer {
    fn new(c: &KafkaConfig) -> anyhow::Result<Producer> {
        let tls = match SslConfig::enabled(&c.ssl) {
            Some(ssl) => Some(crate::outputs::net::tls::client_config(
                ssl,
                "output.kafka.ssl",
            )?),
            None => None,
        };
        let sasl = c.sasl_mechanism().map_err(anyhow::Error::msg)?.map(|m| {
            let cred = Credentials::new(c.username.clone(), c.password.clone());
            match m {
                SaslMechanism::Plain => SaslConfig::Plain(cred),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(cred),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(cred),
            }
        });
        let hosts = c
            .hosts
            .iter()
            .map(|h| {
                let (host, port) = crate::outputs::net::host_port(h, config::DEFAULT_PORT)
                    .map_err(|e| anyhow::anyhow!("output.kafka.hosts: {e}"))?;
                Ok(if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Producer {
            topic: c.topic().to_string(),
            key: c.key.as_ref().map(|k| k.as_bytes().to_vec()),
            headers: c
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.as_bytes().to_vec()))
                .collect(),
            compression: match c.compression().map_err(anyhow::Error::msg)? {
                Compression::None => KCompression::NoCompression,
                Compression::Gzip => KCompression::Gzip,
                Compression::Snappy => KCompression::Snappy,
                Compression::Lz4 => KCompression::Lz4,
                Compression::Zstd => KCompression::Zstd,
            },
            max_message_bytes: c.max_message_bytes,
            bulk_max_size: c.bulk_max_size,
            max_retries: c.max_retries,
            timeout: c.timeout.0,
            refresh_every: c.metadata.refresh_frequency.0,
            reachable_only: c.reachable_only(),
            backoff: Backoff::new(c.backoff.init.0, c.backoff.max.0),
            partitioning: Partitioning::new(c.partitioner().map_err(anyhow::Error::msg)?),
            builder: BuilderSettings {
                hosts,
                client_id: c.client_id.clone(),
                tls,
                sasl,
                backoff_init: c.backoff.init.0,
                backoff_max: c.backoff.max.0,
                timeout: c.timeout.0,
            },
            conn: None,
            metrics: Arc::new(Metrics::default()),
            dropped: AtomicU64::new(0),
            record_bytes: 0,
            deadline: Deadline::default(),
            abandoned: false,
        })
    }

    /// The record for event `i`, its bytes copied from the batch.
    fn record(&self, enc: &Encoded, i: usize, ts: i64) -> Record {
        Record {
            key: self.key.clone(),
            value: Some(enc.event(i).to_vec()),
            headers: self.headers.clone(),
            timestamp: rskafka::chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default(),
        }
    }

    /// The size sarama counts against `max_message_bytes` for an event of `len` bytes.
    fn record_size(&self, len: usize) -> usize {
        len + RECORD_OVERHEAD
            + self.key.as_ref().map_or(0, |k| k.len())
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD)
                .sum::<usize>()
    }

    /// Splits the batch into produce requests: per partition, in order, at most
    /// `bulk_max_size` records and `max_message_bytes` bytes each.
    fn chunks(&self, per_partition: Vec<Vec<(usize, usize)>>) -> Vec<Chunk> {
        let mut out = Vec::new();
        for (p, events) in per_partition.into_iter().enumerate() {
            let mut cur = Chunk {
                partition: p,
                events: Vec::new(),
                bytes: 0,
                refusals: 0,
            };
            for (i, size) in events {
                if !cur.events.is_empty()
                    && (cur.events.len() >= self.bulk_max_size
                        || cur.bytes + size > self.max_message_bytes)
                {
                    let next = Chunk {
                        partition: p,
                        events: Vec::new(),
                        bytes: 0,
                        refusals: 0,
                    };
                    out.push(std::mem::replace(&mut cur, next));
                }
                cur.events.push(i);
                cur.bytes += size;
            }
            if !cur.events.is_empty() {
                out.push(cur);
            }
        }
        out
    }

    /// A connected client with the topic's partitions (read again every
    /// `metadata.refresh_frequency`).
    async fn connect(&mut self) -> Result<(), KError> {
        if let Some(c) = &self.conn {
            if self.refresh_every.is_zero() || c.at.elapsed() < self.refresh_every {
                return Ok(());
            }
        }
        let b = &self.builder;
        let mut cb = ClientBuilder::new(b.hosts.clone())
            .client_id(b.client_id.as_str())
            // rskafka's own retries end after `timeout`; past it the error comes back here and
            // the batch is retried on a new connection.
            .backoff_config(rskafka::BackoffConfig {
                init_backoff: b.backoff_init.min(Duration::from_millis(250)),
                max_backoff: b.backoff_max.min(Duration::from_secs(1)),
                base: 2.0,
                deadline: Some(b.timeout),
            });
        if let Some(tls) = &b.tls {
            cb = cb.tls_config(tls.clone());
        }
        if let Some(sasl) = &b.sasl {
            cb = cb.sasl_config(sasl.clone());
        }
        let client = with_timeout(b.timeout, cb.build()).await?;
        let ids = with_timeout(b.timeout, partitions_of(&client, &self.topic)).await?;
        let mut partitions = Vec::with_capacity(ids.len());
        for id in ids {
            let pc = with_timeout(
                b.timeout,
                client.partition_client(self.topic.clone(), id, UnknownTopicHandling::Retry),
            )
            .await?;
            partitions.push(Arc::new(pc));
        }
        if self.conn.is_none() {
            tracing::info!(target: LOG, "Connection to kafka({}) established; topic {} has {} partitions", b.hosts.join(","), self.topic, partitions.len());
        }
        self.conn = Some(Connected {
            _client: client,
            partitions,
            at: Instant::now(),
        });
        Ok(())
    }

    /// Sends a batch until every event is acknowledged or dropped.
    async fn send(&mut self, enc: &Encoded, ts: &[i64]) {
        let total = enc.len();
        // Oversized events are dropped up front; the rest keep their order.
        let mut sizes = Vec::with_capacity(total);
        for i in 0..total {
            let size = self.record_size(enc.event(i).len());
            if size > self.max_message_bytes {
                tracing::error!(target: LOG, "Kafka (topic={}): dropping too large message of size {size}.", self.topic);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                sizes.push(None);
            } else {
                sizes.push(Some(size));
            }
        }
        let mut pending: Vec<Chunk> = Vec::new();
        let mut assigned = false;
        loop {
            if self.deadline.passed() {
                self.abandon(&pending, assigned, &sizes);
                return;
            }
            if let Err(e) = self.connect().await {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target: LOG, "Kafka connect fails with: {}", reason(&e));
                self.conn = None;
                self.wait_backoff().await;
                continue;
            }
            let parts = self
                .conn
                .as_ref()
                .expect("connected above")
                .partitions
                .clone();
            let n_parts = parts.len() as u32;
            if !assigned {
                let mut per: Vec<Vec<(usize, usize)>> = vec![Vec::new(); parts.len()];
                for (i, size) in sizes.iter().enumerate() {
                    let Some(size) = *size else { continue };
                    match self
                        .partitioning
                        .pick(self.key.as_deref(), enc.event(i), n_parts)
                    {
                        Some(p) => per[p as usize].push((i, size)),
                        None => {
                            tracing::error!(target: LOG, "Hashing partition key failed: a hash field is missing; dropping the event");
                            self.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                pending = self.chunks(per);
                assigned = true;
            }
            if pending.is_empty() {
                return;
            }
            let compression = self.compression;
            let timeout = self.timeout;
            let reqs = pending.iter().map(|c| {
                let records: Vec<Record> = c
                    .events
                    .iter()
                    .map(|&i| self.record(enc, i, ts[i]))
                    .collect();
                let pc = parts[c.partition.min(parts.len() - 1)].clone();
                async move { with_timeout(timeout, pc.produce(records, compression)).await }
            });
            let all = futures::future::join_all(reqs);
            // Past the shutdown deadline the output stops waiting for answers.
            let deadline = self.deadline.clone();
            let passed = async move {
                while !deadline.passed() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            futures::pin_mut!(all, passed);
            let results = match futures::future::select(all, passed).await {
                futures::future::Either::Left((r, _)) => r,
                futures::future::Either::Right(_) => {
                    self.abandon(&pending, assigned, &sizes);
                    return;
                }
            };
            self.metrics
                .batches
                .fetch_add(pending.len() as u64, Ordering::Relaxed);
            let mut still = Vec::new();
            let mut failed_parts = Vec::new();
            let mut reconnect = false;
            for (mut c, r) in pending.into_iter().zip(results) {
                let n = c.events.len();
                match r {
                    Ok(_) => {
                        self.metrics.acked.fetch_add(n as u64, Ordering::Relaxed);
                        // The client compresses out of sight: what is counted is the records'
                        // size before compression (`write_bytes` stays for compressed bytes).
                        self.record_bytes += c.bytes as u64;
                    }
                    Err(e) if retriable(&e) => {
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        self.metrics.failed.fetch_add(n as u64, Ordering::Relaxed);
                        tracing::error!(target: LOG, "Kafka (topic={}, partition {}): {}; {n} events will be resent", self.topic, c.partition, reason(&e));
                        reconnect = true;
                        failed_parts.push(c.partition);
                        still.push(c);
                    }
                    Err(e) => {
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        c.refusals += 1;
                        if self.max_retries >= 0 && c.refusals > self.max_retries {
                            tracing::error!(target: LOG, "Kafka (topic={}): the broker refused {n} events {} times ({}); dropping them", self.topic, c.refusals, reason(&e));
                            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
                        } else {
                            tracing::error!(target: LOG, "Kafka (topic={}): the broker refused {n} events ({}); retrying", self.topic, reason(&e));
                            self.metrics.failed.fetch_add(n as u64, Ordering::Relaxed);
                            still.push(c);
                        }
                    }
                }
            }
            if still.is_empty() {
                self.backoff.reset();
                return;
            }
            // `reachable_only`: events of a partition that failed go to the partitions that took
            // their requests, when some did.
            if self.reachable_only && failed_parts.len() < parts.len() {
                still = self.spread_over_reachable(still, &failed_parts, parts.len());
            }
            if reconnect {
                self.conn = None;
            }
            pending = still;
            self.wait_backoff().await;
        }
    }

    /// Moves the chunks of failed partitions to the others, round robin.
    fn spread_over_reachable(&self, chunks: Vec<Chunk>, failed: &[usize], n: usize) -> Vec<Chunk> {
        let ok: Vec<usize> = (0..n).filter(|p| !failed.contains(p)).collect();
        chunks
            .into_iter()
            .enumerate()
            .map(|(k, mut c)| {
                if failed.contains(&c.partition) {
                    c.partition = ok[k % ok.len()];
                }
                c
            })
            .collect()
    }

    async fn wait_backoff(&mut self) {
        let until = Instant::now() + self.backoff.next_wait();
        while Instant::now() < until && !self.deadline.passed() {
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
    }

    /// Past the shutdown deadline: what is not acknowledged is not delivered.
    fn abandon(&mut self, pending: &[Chunk], assigned: bool, sizes: &[Option<usize>]) {
        let left = if assigned {
            pending.iter().map(|c| c.events.len()).sum::<usize>()
        } else {
            sizes.iter().filter(|s| s.is_some()).count()
        };
        self.metrics
            .not_delivered
            .fetch_add(left as u64, Ordering::Relaxed);
        self.abandoned = true;
    }
}

/// The topic's partition ids; a metadata request for the topic itself first lets a broker
/// with `auto.create.topics.enable` create it, as sarama's does.
async fn partitions_of(client: &Client, topic: &str) -> Result<Vec<i32>, KError> {
    for attempt in 0..2 {
        let topics = client.list_topics().await?;
        if let Some(t) = topics.iter().find(|t| t.name == topic) {
            if !t.partitions.is_empty() {
                let mut ids: Vec<i32> = t.partitions.iter().copied().collect();
                ids.sort_unstable();
                return Ok(ids);
            }
        }
        if attempt == 0 {
            client
                .partition_client(topic.to_string(), 0, UnknownTopicHandling::Retry)
                .await?;
        }
    }
    Err(KError::ServerError {
        protocol_error: ProtocolError::UnknownTopicOrPartition,
        error_message: Some(format!("topic {topic} not found")),
        request: rskafka::client::error::RequestContext::Topic(topic.to_string()),
        response: None,
        is_virtual: true,
    })
}

async fn with_timeout<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, KError>>,
) -> Result<T, KError> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r,
        Err(_) => Err(KError::Timeout),
    }
}

impl OutputType for KafkaOutput {
    type Config = KafkaConfig;
    fn load(cfg: &crate::config::Config) -> anyhow::Result<KafkaConfig> {
        load_config(crate::outputs::raw_section(cfg, "kafka")?, &cfg.source)
    }
    fn build(c: &KafkaConfig, _cfg: &crate::config::Config) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(KafkaOutput::new(c)?))
    }
    fn codec(c: &KafkaConfig) -> Option<JsonCodec> {
        Some(codec(c))
    }
    // No `test`: libbeat's kafka output has none either ("kafka output doesn't support
    // testing").
}

impl Output for KafkaOutput {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let p = &mut self.producer;
        if p.abandoned {
            p.metrics
                .not_delivered
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        let mut enc = Encoded {
            data: Vec::with_capacity(events.len() * 1024),
            ends: Vec::with_capacity(events.len()),
            targets: Vec::new(),
        };
        let mut ts = Vec::with_capacity(events.len());
        for e in events {
            self.codec.encode_into(e, &mut enc.data);
            enc.ends.push(enc.data.len());
            ts.push(e.timestamp.nanos() / 1_000_000);
        }
        self.rt.block_on(self.producer.send(&enc, &ts));
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        let p = &mut self.producer;
        p.conn = None;
        let nd = p.metrics.not_delivered.load(Ordering::Relaxed);
        if nd > 0 {
            tracing::warn!(target: LOG, "kafka: {nd} events were not delivered before shutdown_timeout");
        }
        tracing::info!(target: LOG, "kafka output: {}; dropped {}; record bytes {}", p.metrics.summary(), p.dropped.load(Ordering::Relaxed), p.record_bytes);
        Ok(())
    }

    fn deadline(&self) -> Option<Deadline> {
        Some(self.producer.deadline.clone())
    }

    fn batch_hint(&self) -> usize {
        self.producer.bulk_max_size
    }
}
