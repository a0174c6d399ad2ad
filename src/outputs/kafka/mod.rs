//! `output.kafka`: events produced to Kafka topics, as libbeat's kafka output does.
//!
//! # Topics and keys
//!
//! The topic of an event comes from the `topics` rules, then `topic` (libbeat's
//! `outil.BuildSelectorFromConfig` with `topic`/`topics`, names kept as written: see
//! [`crate::outputs::select`]); an event for which neither names a topic is dropped with
//! libbeat's "Dropping event: no topic could be selected" and counted. The record key is the
//! `key` format string ([`crate::common::fmtstr`]) run on the event; a key that cannot be
//! formatted (a field is missing) or comes out empty is no key, as libbeat and sarama leave it
//! (the `hash` partitioner then picks a random partition). A fixed topic and key (the beat's
//! version fields count as fixed) are computed once: nothing is read per event. Otherwise the
//! encoded event is parsed once for both, as the Elasticsearch output does for `indices`.
//!
//! # Record values
//!
//! The event's JSON (`codec.json`, with `pretty` and `escape_html`), or its `codec.format` text
//! (see [`crate::outputs::codec`]; the event read back once for the text, the topic and the
//! key). An event the format string fails on is dropped, logged and counted, as libbeat's
//! "Dropping event".
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
//! serialises and compresses. A `publish` call's events are split per topic, then per partition
//! of their topic, and each partition's records into produce requests of at most
//! `bulk_max_size` records and `max_message_bytes` bytes; all requests of a round, of every
//! topic, are in flight together (one connection per broker), compression runs on the output
//! thread. A topic's partitions are read on its first use on a connection (and read again on
//! the next connection); each topic keeps its own partitioner state, as sarama does.
//!
//! # Delivery
//!
//! At least once: `publish` returns once the broker acknowledged every event, or the event
//! was dropped and counted. A request that fails with a retriable error (connection lost,
//! timeout, no leader, not enough replicas…) is sent again after `backoff.init` … `backoff.max`
//! without limit, reconnecting (and re-reading the topics' partitions) first, so an unreachable
//! cluster holds the capture back through the bounded queue. So does a topic whose partitions
//! cannot be read (no such topic on a broker without `auto.create.topics.enable`): the batch's
//! other topics are sent meanwhile, but the batch waits for it (where libbeat gives such
//! events up once its batch retries are spent). A request the broker refuses for good (`MESSAGE_TOO_LARGE`,
//! `CORRUPT_MESSAGE`, authorization…) is sent again up to `max_retries` times (-1: without
//! limit), then its events are dropped with a log line and counted. A request whose answer was
//! lost may have been written: its events are then in the topic twice (counted as resent). An
//! event whose record is bigger than `max_message_bytes` is dropped before it is sent, logged
//! and counted; the rest of the batch goes on. Past `packetbeat.shutdown_timeout`, what is left
//! is counted as not delivered.

pub mod config;
pub mod partition;

use crate::common::fmtstr::FormatString;
use crate::common::Ts;
use crate::outputs::codec::{self as codec_mod, Codec};
use crate::outputs::net::backoff::Backoff;
use crate::outputs::net::tls::SslConfig;
use crate::outputs::net::{Encoded, Metrics};
use crate::outputs::select::{event_of, Selector};
use crate::outputs::{Deadline, Output, OutputType};
use crate::publish::event::Map;
use crate::publish::json::JsonCodec;
use crate::publish::processors::ProcEvent;
use crate::publish::Event;
use config::{Compression, KafkaConfig, Partitioner, SaslMechanism};
use partition::Partitioning;
use rskafka::client::error::{Error as KError, ProtocolError};
use rskafka::client::partition::{
    Compression as KCompression, PartitionClient, UnknownTopicHandling,
};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
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
    codec: Codec,
    producer: Producer,
}

/// What sends batches (apart from the runtime it runs on).
struct Producer {
    /// `topics` and `topic`.
    topic: Selector,
    /// The topic of every event, when the selector depends on none.
    fixed_topic: Option<String>,
    /// The record key of every event (`None`: no key), when `key` depends on no event.
    key: Option<Vec<u8>>,
    /// `key` when it is formatted per event.
    key_format: Option<FormatString>,
    /// A per-event topic or key reads the event's fields: the event is then parsed, once for
    /// both.
    reads_event: bool,
    headers: BTreeMap<String, Vec<u8>>,
    compression: KCompression,
    max_message_bytes: usize,
    bulk_max_size: usize,
    max_retries: i64,
    timeout: Duration,
    refresh_every: Duration,
    reachable_only: bool,
    backoff: Backoff,
    partitioner: Partitioner,
    /// Each topic's partitioner state, from the topic's first use (sarama keeps one per topic,
    /// across reconnections).
    partitioning: HashMap<String, Partitioning>,
    builder: BuilderSettings,
    conn: Option<Connected>,
    /// Its counters; `dropped` are the events dropped before sending (no topic, too large, or
    /// no hash field with `random: false`).
    metrics: Arc<Metrics>,
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

/// A client and the partitions of the topics used on it.
struct Connected {
    client: Client,
    /// Read on a topic's first use on this connection.
    topics: HashMap<String, Arc<TopicPartitions>>,
    at: Instant,
}

/// A topic's partitions (ids sorted) and a client for each.
struct TopicPartitions {
    ids: Vec<i32>,
    clients: Vec<Arc<PartitionClient>>,
}

/// A batch's events for one topic.
struct TopicEvents {
    name: String,
    /// Events (index into the batch, record size) not given a partition yet.
    waiting: Vec<(usize, usize)>,
    /// The topic's partitions on the current connection, once read.
    parts: Option<Arc<TopicPartitions>>,
}

/// One produce request's worth of events: indexes into the batch's [`Encoded`].
struct Chunk {
    /// Index into the batch's [`TopicEvents`].
    topic: usize,
    /// Index into the topic's partitions.
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

/// Whether an event's topic or key depends on its fields (else nothing is read to route it).
fn routing_reads_event(c: &KafkaConfig) -> Result<bool, String> {
    let topic = c.topic_selector()?;
    let key = c.key_format()?;
    Ok(
        (topic.constant().is_none() && topic.reads_event())
            || key.is_some_and(|f| f.reads_fields()),
    )
}

/// Decodes and checks `output.kafka`.
pub fn load_config(raw: &serde_yaml::Value, source: &str) -> anyhow::Result<KafkaConfig> {
    let c: KafkaConfig = crate::config::types::decode(raw, "output.kafka", source)?;
    codec_mod::check_namespace(raw, "output.kafka")
        .and_then(|_| c.validate())
        .map_err(|e| anyhow::anyhow!("{e} (source:'{source}')"))?;
    Ok(c)
}

impl KafkaOutput {
    pub fn new(c: &KafkaConfig) -> anyhow::Result<KafkaOutput> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(KafkaOutput {
            rt,
            codec: c.codec().map_err(anyhow::Error::msg)?,
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
        let topic = c.topic_selector().map_err(anyhow::Error::msg)?;
        let fixed_topic = topic.constant();
        let key_format = c.key_format().map_err(anyhow::Error::msg)?;
        // libbeat formats the key to bytes and sarama writes empty ones as no key (and the hash
        // partitioner then picks a random partition).
        let (key, key_format) = match key_format {
            None => (None, None),
            Some(f) => match f.constant() {
                Some(k) if k.is_empty() => (None, None),
                Some(k) => (Some(k.into_bytes()), None),
                None => (None, Some(f)),
            },
        };
        let reads_event = (fixed_topic.is_none() && topic.reads_event())
            || key_format.as_ref().is_some_and(|f| f.reads_fields());
        Ok(Producer {
            topic,
            fixed_topic,
            key,
            key_format,
            reads_event,
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
            partitioner: c.partitioner().map_err(anyhow::Error::msg)?,
            partitioning: HashMap::new(),
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
            record_bytes: 0,
            deadline: Deadline::default(),
            abandoned: false,
        })
    }

    /// Whether events get their topic or key from themselves (else every event goes to
    /// `fixed_topic` with `key`, and nothing is computed per event).
    fn routes_per_event(&self) -> bool {
        self.fixed_topic.is_none() || self.key_format.is_some()
    }

    /// The topic (empty: none selected; unused with a fixed topic) and the record key (when
    /// formatted per event) of event `e`, encoded as `doc`.
    fn route(&self, e: &Event, doc: &[u8]) -> (String, Option<Vec<u8>>) {
        let ts = e.timestamp;
        let ev = if self.reads_event {
            event_of(ts, &e.meta, doc)
        } else {
            ProcEvent::new(ts, Map::new(), Map::new())
        };
        self.route_event(ts, &ev)
    }

    /// [`Producer::route`] for the event read already.
    fn route_event(&self, ts: Ts, ev: &ProcEvent) -> (String, Option<Vec<u8>>) {
        let topic = match self.fixed_topic {
            Some(_) => String::new(),
            None => self.topic.select(ts, ev),
        };
        // libbeat's getEventMessage: a key that cannot be formatted (a field is missing) is
        // left out, the event is still sent.
        let key = self
            .key_format
            .as_ref()
            .and_then(|f| f.run(ts, ev).ok())
            .filter(|k| !k.is_empty())
            .map(String::into_bytes);
        (topic, key)
    }

    /// Event `i`'s record key: its own (`keys`, when formatted per event) or the fixed one.
    fn key_of<'a>(&'a self, keys: &'a [Option<Vec<u8>>], i: usize) -> Option<&'a [u8]> {
        if self.key_format.is_some() {
            keys[i].as_deref()
        } else {
            self.key.as_deref()
        }
    }

    /// The record for event `i`, its bytes copied from the batch.
    fn record(&self, enc: &Encoded, i: usize, ts: i64, key: Option<&[u8]>) -> Record {
        Record {
            key: key.map(<[u8]>::to_vec),
            value: Some(enc.event(i).to_vec()),
            headers: self.headers.clone(),
            timestamp: rskafka::chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default(),
        }
    }

    /// The size sarama counts against `max_message_bytes` for an event of `len` bytes.
    fn record_size(&self, len: usize, key_len: usize) -> usize {
        len + RECORD_OVERHEAD
            + key_len
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD)
                .sum::<usize>()
    }

    /// Splits one topic's events into produce requests: per partition, in order, at most
    /// `bulk_max_size` records and `max_message_bytes` bytes each.
    fn chunks(&self, topic: usize, per_partition: Vec<Vec<(usize, usize)>>) -> Vec<Chunk> {
        let mut out = Vec::new();
        let empty = |p| Chunk {
            topic,
            partition: p,
            events: Vec::new(),
            bytes: 0,
            refusals: 0,
        };
        for (p, events) in per_partition.into_iter().enumerate() {
            let mut cur = empty(p);
            for (i, size) in events {
                if !cur.events.is_empty()
                    && (cur.events.len() >= self.bulk_max_size
                        || cur.bytes + size > self.max_message_bytes)
                {
                    out.push(std::mem::replace(&mut cur, empty(p)));
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

    /// A connected client (made again every `metadata.refresh_frequency`, which re-reads the
    /// topics' partitions on their next use).
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
        if self.conn.is_none() {
            tracing::info!(target: LOG, "Connection to kafka({}) established", b.hosts.join(","));
        }
        self.conn = Some(Connected {
            client,
            topics: HashMap::new(),
            at: Instant::now(),
        });
        Ok(())
    }

    /// `topic`'s partitions on the current connection, read on first use (a broker with
    /// `auto.create.topics.enable` creates the topic then).
    async fn partitions(&mut self, topic: &str) -> Result<Arc<TopicPartitions>, KError> {
        let conn = self.conn.as_mut().expect("called when connected");
        if let Some(p) = conn.topics.get(topic) {
            return Ok(p.clone());
        }
        let timeout = self.builder.timeout;
        let ids = with_timeout(timeout, partitions_of(&conn.client, topic)).await?;
        let mut clients = Vec::with_capacity(ids.len());
        for &id in &ids {
            let pc = with_timeout(
                timeout,
                conn.client
                    .partition_client(topic.to_string(), id, UnknownTopicHandling::Retry),
            )
            .await?;
            clients.push(Arc::new(pc));
        }
        if !self.partitioning.contains_key(topic) {
            tracing::info!(target: LOG, "Kafka topic {topic} has {} partitions", ids.len());
            self.partitioning.insert(
                topic.to_string(),
                Partitioning::new(self.partitioner.clone()),
            );
        }
        let p = Arc::new(TopicPartitions { ids, clients });
        conn.topics.insert(topic.to_string(), p.clone());
        Ok(p)
    }

    /// The batch's events grouped by topic (in order of first appearance), each event with its
    /// record size; events over `max_message_bytes` are dropped here.
    fn group(&self, enc: &Encoded, keys: &[Option<Vec<u8>>]) -> Vec<TopicEvents> {
        let new_group = |name: &str, capacity| TopicEvents {
            name: name.to_string(),
            waiting: Vec::with_capacity(capacity),
            parts: None,
        };
        let mut groups: Vec<TopicEvents> = Vec::new();
        // Topic → group, for per-event topics; runs of one topic skip the lookup.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut last = 0;
        if let Some(t) = &self.fixed_topic {
            groups.push(new_group(t, enc.len()));
        }
        for i in 0..enc.len() {
            if self.fixed_topic.is_none() {
                let name = enc.targets[i].as_str();
                if groups.get(last).is_none_or(|g| g.name != name) {
                    last = *index.entry(name).or_insert_with(|| {
                        groups.push(new_group(name, 0));
                        groups.len() - 1
                    });
                }
            }
            let key_len = self.key_of(keys, i).map_or(0, <[u8]>::len);
            let size = self.record_size(enc.event(i).len(), key_len);
            if size > self.max_message_bytes {
                tracing::error!(target: LOG, "Kafka (topic={}): dropping too large message of size {size}.", groups[last].name);
                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                groups[last].waiting.push((i, size));
            }
        }
        groups
    }

    /// Gives the topic's waiting events their partitions and cuts them into produce requests.
    fn assign(
        &mut self,
        g: usize,
        groups: &mut [TopicEvents],
        enc: &Encoded,
        keys: &[Option<Vec<u8>>],
    ) -> Vec<Chunk> {
        let group = &mut groups[g];
        let Some(parts) = &group.parts else {
            return Vec::new();
        };
        let n = parts.clients.len();
        let partitioning = self
            .partitioning
            .entry(group.name.clone())
            .or_insert_with(|| Partitioning::new(self.partitioner.clone()));
        let mut per: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        for (i, size) in std::mem::take(&mut group.waiting) {
            let key = match &self.key_format {
                Some(_) => keys[i].as_deref(),
                None => self.key.as_deref(),
            };
            match partitioning.pick(key, enc.event(i), n as u32) {
                Some(p) => per[p as usize].push((i, size)),
                None => {
                    tracing::error!(target: LOG, "Hashing partition key failed: a hash field is missing; dropping the event");
                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.chunks(g, per)
    }

    /// Sends a batch until every event is acknowledged or dropped. `enc.targets` holds each
    /// event's topic unless there is a fixed one; `keys` each event's record key when `key` is
    /// formatted per event.
    async fn send(&mut self, enc: &Encoded, ts: &[i64], keys: &[Option<Vec<u8>>]) {
        let mut groups = self.group(enc, keys);
        let mut pending: Vec<Chunk> = Vec::new();
        loop {
            if self.deadline.passed() {
                self.abandon(&pending, &groups);
                return;
            }
            if let Err(e) = self.connect().await {
                let why = format!("Kafka connect fails with: {}", reason(&e));
                self.metrics.error(&why);
                tracing::error!(target: LOG, "{why}");
                self.conn = None;
                self.wait_backoff().await;
                continue;
            }
            // The partitions of each topic with events left (read again after a reconnection).
            let mut needed = vec![false; groups.len()];
            for c in &pending {
                needed[c.topic] = true;
            }
            let mut unread = false;
            for (g, group) in groups.iter_mut().enumerate() {
                group.parts = None;
                if !needed[g] && group.waiting.is_empty() {
                    continue;
                }
                match self.partitions(&group.name).await {
                    Ok(p) => group.parts = Some(p),
                    Err(e) => {
                        let why = format!("Kafka connect fails with: {} (topic={})", reason(&e), group.name);
                        self.metrics.error(&why);
                        tracing::error!(target: LOG, "{why}");
                        unread = true;
                    }
                }
            }
            for g in 0..groups.len() {
                let chunks = self.assign(g, &mut groups, enc, keys);
                pending.extend(chunks);
            }
            // Requests of topics whose partitions could not be read wait for the next round.
            let (ready, mut held): (Vec<Chunk>, Vec<Chunk>) = pending
                .into_iter()
                .partition(|c| groups[c.topic].parts.is_some());
            if ready.is_empty() && held.is_empty() && !unread {
                self.backoff.reset();
                return;
            }
            let compression = self.compression;
            let timeout = self.timeout;
            let reqs = ready.iter().map(|c| {
                let parts = groups[c.topic]
                    .parts
                    .as_ref()
                    .expect("ready chunks have them");
                let records: Vec<Record> = c
                    .events
                    .iter()
                    .map(|&i| self.record(enc, i, ts[i], self.key_of(keys, i)))
                    .collect();
                let pc = parts.clients[c.partition.min(parts.clients.len() - 1)].clone();
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
                    held.extend(ready);
                    self.abandon(&held, &groups);
                    return;
                }
            };
            self.metrics
                .batches
                .fetch_add(ready.len() as u64, Ordering::Relaxed);
            let mut still = Vec::new();
            // (topic, partition) of the requests that failed with a retriable error.
            let mut failed_parts: Vec<(usize, usize)> = Vec::new();
            let mut reconnect = unread;
            for (mut c, r) in ready.into_iter().zip(results) {
                let n = c.events.len();
                let topic = groups[c.topic].name.as_str();
                match r {
                    Ok(_) => {
                        self.metrics.acked.fetch_add(n as u64, Ordering::Relaxed);
                        // The client compresses out of sight: what is counted (also as
                        // `write.bytes`) is the records' size before compression.
                        self.record_bytes += c.bytes as u64;
                        self.metrics
                            .write_bytes
                            .fetch_add(c.bytes as u64, Ordering::Relaxed);
                    }
                    Err(e) if retriable(&e) => {
                        self.metrics.error(format!("Kafka (topic={topic}): {}", reason(&e)));
                        self.metrics.failed.fetch_add(n as u64, Ordering::Relaxed);
                        let parts = groups[c.topic]
                            .parts
                            .as_ref()
                            .expect("sent chunks have them");
                        let id = parts.ids[c.partition.min(parts.ids.len() - 1)];
                        tracing::error!(target: LOG, "Kafka (topic={topic}, partition {id}): {}; {n} events will be resent", reason(&e));
                        reconnect = true;
                        failed_parts.push((c.topic, c.partition));
                        still.push(c);
                    }
                    Err(e) => {
                        self.metrics.error(format!("Kafka (topic={topic}): the broker refused events ({})", reason(&e)));
                        c.refusals += 1;
                        if self.max_retries >= 0 && c.refusals > self.max_retries {
                            tracing::error!(target: LOG, "Kafka (topic={topic}): the broker refused {n} events {} times ({}); dropping them", c.refusals, reason(&e));
                            self.metrics.dropped.fetch_add(n as u64, Ordering::Relaxed);
                        } else {
                            tracing::error!(target: LOG, "Kafka (topic={topic}): the broker refused {n} events ({}); retrying", reason(&e));
                            self.metrics.failed.fetch_add(n as u64, Ordering::Relaxed);
                            still.push(c);
                        }
                    }
                }
            }
            still.extend(held);
            if still.is_empty() && !unread {
                self.backoff.reset();
                return;
            }
            // `reachable_only`: events of a partition that failed go to the partitions of the
            // same topic that took their requests, when some did.
            if self.reachable_only {
                still = spread_over_reachable(still, &failed_parts, &groups);
            }
            if reconnect {
                self.conn = None;
            }
            pending = still;
            self.wait_backoff().await;
        }
    }

    async fn wait_backoff(&mut self) {
        let until = Instant::now() + self.backoff.next_wait();
        while Instant::now() < until && !self.deadline.passed() {
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
    }

    /// Past the shutdown deadline: what is not acknowledged is not delivered.
    fn abandon(&mut self, pending: &[Chunk], groups: &[TopicEvents]) {
        let left = pending.iter().map(|c| c.events.len()).sum::<usize>()
            + groups.iter().map(|g| g.waiting.len()).sum::<usize>();
        self.metrics
            .not_delivered
            .fetch_add(left as u64, Ordering::Relaxed);
        self.abandoned = true;
    }
}

/// Moves the requests of a topic's failed partitions to the topic's other partitions, round
/// robin, when some of them took their requests.
fn spread_over_reachable(
    chunks: Vec<Chunk>,
    failed: &[(usize, usize)],
    groups: &[TopicEvents],
) -> Vec<Chunk> {
    let mut turn = 0;
    chunks
        .into_iter()
        .map(|mut c| {
            if !failed.contains(&(c.topic, c.partition)) {
                return c;
            }
            let Some(parts) = &groups[c.topic].parts else {
                return c;
            };
            let ok: Vec<usize> = (0..parts.clients.len())
                .filter(|&p| !failed.contains(&(c.topic, p)))
                .collect();
            if !ok.is_empty() {
                c.partition = ok[turn % ok.len()];
                turn += 1;
            }
            c
        })
        .collect()
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
        // Said once at start, where the client cannot do what the options ask (module doc).
        if c.required_acks != -1 {
            tracing::info!(target: LOG, "kafka: required_acks {} is met by acks=all (-1): each produce request waits for every in-sync replica", c.required_acks);
        }
        if c.compression != "none" && c.compression_level != 4 {
            tracing::warn!(target: LOG, "kafka: compression_level {} is not applied: {} compresses at its codec's default level", c.compression_level, c.compression);
        }
        Ok(Box::new(KafkaOutput::new(c)?))
    }
    fn codec(c: &KafkaConfig) -> Option<JsonCodec> {
        let codec = c.codec().ok()?;
        match &codec {
            // The routing reads the event too: it is read back from compact JSON.
            Codec::Format(_) if routing_reads_event(c).unwrap_or(false) => {
                Some(JsonCodec::default())
            }
            _ => codec.pre_encoding(),
        }
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
        // Each event's key, when formatted per event.
        let mut keys = Vec::new();
        let per_event = p.routes_per_event();
        for e in events {
            let start = enc.data.len();
            let routed = match &self.codec {
                Codec::Json(j) => {
                    j.encode_into(e, &mut enc.data);
                    per_event.then(|| p.route(e, &enc.data[start..]))
                }
                Codec::Format(f) => {
                    // One read of the event for the value, the topic and the key.
                    let ev = if f.reads_fields() || p.reads_event {
                        codec_mod::tree_of(e)
                    } else {
                        ProcEvent::new(e.timestamp, Map::new(), Map::new())
                    };
                    let Some(text) = f.format(e.timestamp, &ev) else {
                        // libbeat's getEventMessage fails on the codec's error: "Dropping
                        // event" (logged by the codec).
                        p.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    enc.data.extend_from_slice(text.as_bytes());
                    per_event.then(|| p.route_event(e.timestamp, &ev))
                }
            };
            if let Some((topic, key)) = routed {
                if p.fixed_topic.is_none() {
                    if topic.is_empty() {
                        // libbeat's getEventMessage (errNoTopicsSelected), logged as its
                        // Publish does.
                        tracing::error!(target: LOG, "Dropping event: no topic could be selected");
                        p.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                        enc.data.truncate(start);
                        continue;
                    }
                    enc.targets.push(topic);
                }
                if p.key_format.is_some() {
                    keys.push(key);
                }
            }
            enc.ends.push(enc.data.len());
            ts.push(e.timestamp.nanos() / 1_000_000);
        }
        if !enc.is_empty() {
            self.rt.block_on(p.send(&enc, &ts, &keys));
        }
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.codec.log_failed("kafka");
        let p = &mut self.producer;
        p.conn = None;
        let nd = p.metrics.not_delivered.load(Ordering::Relaxed);
        if nd > 0 {
            tracing::warn!(target: LOG, "kafka: {nd} events were not delivered before shutdown_timeout");
        }
        tracing::info!(target: LOG, "kafka output: {}; dropped {}; record bytes {}", p.metrics.summary(), p.metrics.dropped.load(Ordering::Relaxed), p.record_bytes);
        Ok(())
    }

    fn deadline(&self) -> Option<Deadline> {
        Some(self.producer.deadline.clone())
    }

    fn batch_hint(&self) -> usize {
        self.producer.bulk_max_size
    }

    fn metrics(&self) -> Option<crate::outputs::MetricsReader> {
        let m = self.producer.metrics.clone();
        Some(Arc::new(move || m.counters()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Ts;

    fn producer(y: &str) -> Producer {
        let raw = crate::config::tree::normalize(serde_yaml::from_str(y).unwrap());
        let c = load_config(&raw, "t").unwrap();
        Producer::new(&c).unwrap()
    }

    fn batch(docs: &[&str], p: &Producer) -> (Encoded, Vec<Option<Vec<u8>>>) {
        let mut enc = Encoded {
            data: Vec::new(),
            ends: Vec::new(),
            targets: Vec::new(),
        };
        let mut keys = Vec::new();
        for d in docs {
            let (topic, key) = p.route(&Event::new(Ts(0)), d.as_bytes());
            enc.data.extend_from_slice(d.as_bytes());
            enc.ends.push(enc.data.len());
            enc.targets.push(topic);
            keys.push(key);
        }
        (enc, keys)
    }

    #[test]
    fn fixed_topic_and_key_are_not_computed_per_event() {
        let p = producer("hosts: [h]\ntopic: 'pb-%{[agent.version]}'\nkey: k");
        assert!(!p.routes_per_event());
        assert_eq!(
            p.fixed_topic.as_deref(),
            Some(format!("pb-{}", crate::BEAT_VERSION).as_str())
        );
        assert_eq!(p.key.as_deref(), Some(&b"k"[..]));
        // An empty key is no key, as sarama writes it.
        let p = producer("hosts: [h]\ntopic: t\nkey: ''");
        assert!(!p.routes_per_event() && p.key.is_none());
        // A key from the time alone is per event, but reads no field.
        let p = producer("hosts: [h]\ntopic: t\nkey: '%{+yyyy}'");
        assert!(p.routes_per_event() && !p.reads_event);
        assert_eq!(
            p.route(&Event::new(Ts(0)), b"{}").1.as_deref(),
            Some(&b"1970"[..])
        );
    }

    #[test]
    fn events_are_grouped_per_topic_with_their_own_keys() {
        let p = producer(
            "hosts: [h]\ntopic: rest\nkey: '%{[source.ip]}'\nmax_message_bytes: 100\n\
             topics:\n- topic: 'pb-%{[type]}'\n  when.or:\n  - equals.type: dns\n  - equals.type: http\n",
        );
        assert!(p.routes_per_event() && p.reads_event);
        let big = format!(r#"{{"type":"dns","pad":"{}"}}"#, "x".repeat(100));
        let docs = [
            r#"{"type":"dns","source":{"ip":"10.0.0.1"}}"#,
            r#"{"type":"flow","source":{"ip":"10.0.0.2"}}"#,
            r#"{"type":"http"}"#,
            &big,
            r#"{"type":"dns","source":{"ip":"10.0.0.3"}}"#,
        ];
        let (enc, keys) = batch(&docs, &p);
        assert_eq!(
            enc.targets,
            ["pb-dns", "rest", "pb-http", "pb-dns", "pb-dns"]
        );
        // No source.ip: no key (libbeat leaves out a key that cannot be formatted).
        assert_eq!(keys[0].as_deref(), Some(&b"10.0.0.1"[..]));
        assert_eq!(keys[2], None);
        let groups = p.group(&enc, &keys);
        let got: Vec<(&str, Vec<usize>)> = groups
            .iter()
            .map(|g| (g.name.as_str(), g.waiting.iter().map(|w| w.0).collect()))
            .collect();
        // In order of first appearance; the event over max_message_bytes is dropped.
        assert_eq!(
            got,
            [
                ("pb-dns", vec![0, 4]),
                ("rest", vec![1]),
                ("pb-http", vec![2])
            ]
        );
        assert_eq!(p.metrics.dropped.load(Ordering::Relaxed), 1);
        // The record size counts each event's own key.
        assert_eq!(
            groups[0].waiting[0].1,
            docs[0].len() + RECORD_OVERHEAD + "10.0.0.1".len()
        );
        assert_eq!(groups[2].waiting[0].1, docs[2].len() + RECORD_OVERHEAD);
    }

    #[test]
    fn with_codec_format_workers_encode_json_only_when_the_event_is_read() {
        let codec = |y: &str| {
            let raw = crate::config::tree::normalize(serde_yaml::from_str(y).unwrap());
            <KafkaOutput as OutputType>::codec(&load_config(&raw, "t").unwrap())
        };
        let time_only = "hosts: [h]\ntopic: t\ncodec.format.string: '%{[@timestamp]} x'";
        assert!(codec(time_only).is_none());
        // The key, the topic or the format string reads a field: compact JSON to read back.
        for y in [
            format!("{time_only}\nkey: '%{{[source.ip]}}'"),
            "hosts: [h]\ntopic: '%{[type]}'\ncodec.format.string: x".to_string(),
            "hosts: [h]\ntopic: t\ncodec.format.string: '%{[type]}'".to_string(),
        ] {
            let j = codec(&y).unwrap_or_else(|| panic!("{y}"));
            assert!(!j.pretty && !j.escape_html, "{y}");
        }
        // codec.json as configured.
        assert!(
            codec("hosts: [h]\ntopic: t\ncodec.json.pretty: true")
                .unwrap()
                .pretty
        );
    }

    #[test]
    fn an_event_without_a_topic_gets_an_empty_one() {
        let p = producer("hosts: [h]\ntopics: [{topic: a, when.equals.type: dns}]");
        assert!(p.fixed_topic.is_none());
        let (enc, _) = batch(&[r#"{"type":"dns"}"#, r#"{"type":"flow"}"#], &p);
        assert_eq!(enc.targets, ["a", ""]);
    }
}
