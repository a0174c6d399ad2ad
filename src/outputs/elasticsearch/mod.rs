//! `output.elasticsearch`: ships events to Elasticsearch's `_bulk` API as Packetbeat 8 does.
//!
//! # Requests
//!
//! Each event becomes a bulk item ([`bulk`]): a `create` action (what data streams require;
//! `@metadata.op_type: index` asks for `index`) naming the target index (`@metadata.index` or
//! `raw_index`, else the `indices` rules and the `index` format string, default the data stream
//! `packetbeat-<version>`, see [`crate::outputs::select`]) and pipeline (`pipeline`,
//! `pipelines`), then the document, which is
//! the event as the JSON codec wrote it (packet workers encode it ahead) without `@metadata`.
//! Workers send up to `bulk_max_size` items per `POST /_bulk`, gzip-compressed at
//! `compression_level`. HTTP is [`client`] (`ureq`, blocking: the output threads block on
//! their request as the Logstash workers do).
//!
//! # Results (libbeat's `bulkCollectPublishFails`)
//!
//! Per item: 2xx is indexed; 409 (the document exists) is a duplicate and done; 429 and 5xx are
//! sent again, and only those items, after backoff; any other 4xx (a mapping error, …) cannot be
//! indexed: the event is dropped with a log line naming the reason, or, with
//! `non_indexable_policy.dead_letter_index`, indexed once more into that index wrapped as libbeat
//! wraps it (dropped if that fails too). A whole request that fails (transport error, a non-200
//! status, an unreadable response) is sent again after backoff; on a transport error the
//! connection is dropped and the next host tried (failover) or another worker's host takes the
//! work (load balancing). 413 halves the request; a single event too large is dropped.
//!
//! # Delivery
//!
//! At least once: [`EsOutput::publish`] returns when every event is resolved (indexed, a
//! duplicate, dropped or dead-lettered), so while no node takes events the capture is held back
//! through the bounded queue in front. Items already indexed are never sent again; only a
//! request whose response was lost (the node died mid-request) can index a document twice, and
//! every such resend is counted (`retried`). Events that fail for a temporary reason are retried
//! until indexed (`max_retries` is accepted and not used, as in this build's Logstash output).
//!
//! # Connecting
//!
//! A worker's connection starts with `GET /` (the node's version); with
//! `allow_older_versions: false` a node older (major.minor) than the Beat is refused, as libbeat
//! refuses it. The first connection then sets up index management when
//! `setup.template.enabled` / `setup.ilm.enabled` are on ([`index_management`]): the lifecycle
//! policy where the node has ILM (otherwise logged, and the template goes without it), then the
//! index template from [`crate::setup`]; the data stream is created by the first write.

pub mod bulk;
pub mod client;
pub mod config;

use crate::outputs::net::backoff::Backoff;
use crate::outputs::net::balance::{self, HostSet, Work, WorkQueue};
use crate::outputs::net::Encoded;
use crate::outputs::select::{Case, Selector, Settings};
use crate::outputs::{Deadline, Output, OutputType};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
use crate::setup::{ilm, template, SetupConfig, Version};
use bulk::{OpType, Outcome};
use client::{Client, Shared};
use config::{EsConfig, NonIndexable};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Logged as libbeat's `elasticsearch` logger.
const LOG: &str = "packetbeat::outputs::elasticsearch";

/// What happened to the events, libbeat's bulk result counters.
#[derive(Debug, Default)]
pub struct Stats {
    pub acked: AtomicU64,
    pub duplicates: AtomicU64,
    /// Events sent again (429/5xx items, failed requests); each resend counts.
    pub retried: AtomicU64,
    /// Of `retried`: items answered 429.
    pub too_many: AtomicU64,
    /// Events that could not be indexed and were dropped (non-indexable, or no index).
    pub dropped: AtomicU64,
    /// Events indexed into the dead letter index.
    pub dead_letter: AtomicU64,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

impl Stats {
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "events acked {}, duplicates {}, retried {} (429: {}), dropped {}, dead letter {}; bulk requests {}; errors {}",
            g(&self.acked),
            g(&self.duplicates),
            g(&self.retried),
            g(&self.too_many),
            g(&self.dropped),
            g(&self.dead_letter),
            g(&self.requests),
            g(&self.errors)
        )
    }
}

/// Decodes and checks `output.elasticsearch`, with its preset applied.
pub fn load_config(raw: &serde_yaml::Value, source: &str) -> anyhow::Result<EsConfig> {
    let mut c: EsConfig = crate::config::types::decode(raw, "output.elasticsearch", source)?;
    let overridden = c
        .apply_preset(raw)
        .map_err(|e| anyhow::anyhow!("{e} (source:'{source}')"))?;
    if !overridden.is_empty() {
        tracing::warn!(target: LOG, "Fields specified in output.elasticsearch conflict with preset '{}' and were overridden: {}", c.preset, overridden.join(", "));
    }
    c.validate()
        .map_err(|e| anyhow::anyhow!("{e} (source:'{source}')"))?;
    Ok(c)
}

/// The base URL of every configured host.
pub fn urls(c: &EsConfig) -> anyhow::Result<Vec<String>> {
    c.hosts
        .iter()
        .map(|h| {
            config::make_url(&c.protocol, &c.path, h)
                .map_err(|e| anyhow::anyhow!("output.elasticsearch.hosts: {e}"))
        })
        .collect()
}

/// libbeat's `LessThanMajorMinor`.
fn older_major_minor(a: &Version, b: &Version) -> bool {
    a.major < b.major || (a.major == b.major && a.minor < b.minor)
}

/// How `setup` installs: as configured (`setup.template.overwrite`, `setup.ilm.overwrite`), or
/// overwriting both (`setup --index-management`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    AsConfigured,
    Overwrite,
}

/// ILM's endpoints are missing on this node (a distribution without the ILM module).
fn no_handler(r: &client::Response) -> bool {
    matches!(r.status, 400 | 404 | 405) && r.text().contains("no handler found")
}

/// Installs the lifecycle policy and the index template for `version` (libbeat's index
/// manager `Setup`): the ILM policy when ILM is enabled and the node has it (a node without
/// ILM is logged and the template is installed without the lifecycle setting, which such a node
/// would refuse), then the template unless it exists and is not to be overwritten.
pub fn index_management(
    c: &mut Client,
    setup: &SetupConfig,
    version: &Version,
    mode: LoadMode,
) -> Result<(), String> {
    let mut lifecycle = None;
    if setup.lifecycles_enabled {
        let l = ilm::lifecycle(setup)?;
        if ilm::check_enabled(&l, version)? {
            lifecycle = Some(l);
        }
    }
    if let Some(l) = lifecycle.as_ref().filter(|l| l.mode == ilm::Mode::Ilm) {
        let path = format!("/_ilm/policy/{}", l.name);
        let overwrite = l.overwrite || mode == LoadMode::Overwrite;
        let mut install = true;
        let mut supported = true;
        if l.check_exists && !overwrite {
            let r = c.request("GET", &path, "", None, false).map_err(|e| e.0)?;
            if r.status == 200 {
                install = false;
                tracing::info!(target: LOG, "ILM policy {} exists already.", l.name);
            } else if no_handler(&r) {
                supported = false;
            } else if r.status != 404 {
                return Err(format!(
                    "failed to check for ILM policy {}: {}: {}",
                    l.name,
                    r.status,
                    r.text()
                ));
            }
        }
        if supported && install {
            let body = serde_json::to_vec(&l.body).expect("JSON values serialise");
            let r = c
                .request("PUT", &path, "", Some(&body), false)
                .map_err(|e| e.0)?;
            if no_handler(&r) {
                supported = false;
            } else if r.status >= 300 {
                return Err(format!(
                    "failed to load ILM policy {}: {}: {}",
                    l.name,
                    r.status,
                    r.text()
                ));
            } else {
                tracing::info!(target: LOG, "ILM policy {} successfully loaded.", l.name);
            }
        }
        if !supported {
            tracing::warn!(target: LOG, "ILM is not available on this Elasticsearch node (no _ilm endpoint): policy {} not installed; the index template is loaded without a lifecycle policy", l.name);
            lifecycle = None;
        }
    }
    if !setup.template.enabled {
        tracing::info!(target: LOG, "template loading is disabled (setup.template.enabled: false)");
        return Ok(());
    }
    let (name, body) = template::template(setup, version, lifecycle.as_ref(), false)?;
    let path = format!("/_index_template/{name}");
    if !setup.template.overwrite && mode == LoadMode::AsConfigured {
        let r = c.request("GET", &path, "", None, false).map_err(|e| e.0)?;
        if r.status == 200 {
            tracing::info!(target: LOG, "Template \"{name}\" already exists and will not be overwritten.");
            return Ok(());
        }
    }
    let bytes = serde_json::to_vec(&body).expect("JSON values serialise");
    let r = c
        .request("PUT", &path, "", Some(&bytes), false)
        .map_err(|e| e.0)?;
    if r.status >= 300 {
        return Err(format!(
            "error loading template {name}: couldn't load template: {}: {}",
            r.status,
            r.text()
        ));
    }
    tracing::info!(target: LOG, "Template with name \"{name}\" loaded.");
    Ok(())
}

/// What the workers share.
struct Ctx {
    shared: Shared,
    bulk_size: usize,
    backoff_init: std::time::Duration,
    backoff_max: std::time::Duration,
    allow_older: bool,
    /// The dead letter index and the action line its items start with.
    dead_letter: Option<(String, Vec<u8>)>,
    /// Index management to run on the first connection (`None` when disabled); the flag says
    /// it is done.
    setup: Option<(SetupConfig, Mutex<bool>)>,
    stats: Stats,
}

pub struct EsOutput {
    codec: JsonCodec,
    index: Selector,
    /// `None` when neither `pipeline` nor `pipelines` is set.
    pipeline: Option<Selector>,
    ctx: Arc<Ctx>,
    queue: Arc<WorkQueue>,
    workers: Vec<JoinHandle<()>>,
    deadline: Deadline,
    batch_hint: usize,
}

/// The index selector (`index`, default `packetbeat-%{[agent.version]}`, and `indices`) and the
/// pipeline selector (`pipeline`, `pipelines`), as libbeat's index manager and Elasticsearch
/// output build them (names lower-cased).
fn selectors(c: &EsConfig) -> Result<(Selector, Option<Selector>), String> {
    let index = c
        .index
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "packetbeat-%{[agent.version]}".into());
    let index = Selector::build(
        Some(&index),
        c.indices.as_ref(),
        &Settings {
            key: "index",
            multi_key: "indices",
            fail_empty: true,
            case: Case::Lower,
        },
        "output.elasticsearch",
    )?;
    let pipeline = Selector::build(
        c.pipeline.as_deref(),
        c.pipelines.as_ref(),
        &Settings {
            key: "pipeline",
            multi_key: "pipelines",
            fail_empty: false,
            case: Case::Lower,
        },
        "output.elasticsearch",
    )?;
    Ok((index, (!pipeline.is_empty()).then_some(pipeline)))
}

impl EsOutput {
    /// The output for `c`; `setup` is index management to run on the first connection.
    pub fn new(c: &EsConfig, setup: Option<SetupConfig>) -> anyhow::Result<EsOutput> {
        let urls = urls(c)?;
        let (index, pipeline) = selectors(c).map_err(anyhow::Error::msg)?;
        let dead_letter = match c.non_indexable().map_err(anyhow::Error::msg)? {
            NonIndexable::Drop => None,
            NonIndexable::DeadLetter(i) => {
                let mut prefix = b"{\"create\":{\"_index\":".to_vec();
                crate::publish::json::write_str(&mut prefix, &i);
                prefix.extend_from_slice(b"}}\n");
                Some((i, prefix))
            }
        };
        let ctx = Arc::new(Ctx {
            shared: Shared::new(c)?,
            bulk_size: c.bulk_size(),
            backoff_init: c.backoff.init.0,
            backoff_max: c.backoff.max.0,
            allow_older: c.allow_older_versions,
            dead_letter,
            setup: setup.map(|s| (s, Mutex::new(false))),
            stats: Stats::default(),
        });
        let queue = Arc::new(WorkQueue::default());
        let (q, x) = (queue.clone(), ctx.clone());
        let workers = balance::spawn_workers(
            "elasticsearch",
            &urls,
            c.loadbalance,
            c.workers_per_host(),
            move |hosts| {
                Worker {
                    queue: q.clone(),
                    hosts,
                    ctx: x.clone(),
                }
                .run()
            },
        )?;
        let n = workers.len();
        Ok(EsOutput {
            codec: JsonCodec {
                pretty: false,
                escape_html: c.escape_html,
            },
            index,
            pipeline,
            batch_hint: ctx.bulk_size * n,
            ctx,
            queue,
            workers,
            deadline: Deadline::default(),
        })
    }

    /// The output's counters.
    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// Appends `e` as a bulk item; false (logged) when its index cannot be formatted.
    fn encode_into(&self, e: &Event, scratch: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
        let bytes: &[u8] = match &e.encoded {
            Some(b) => b,
            None => {
                scratch.clear();
                self.codec.encode_into(e, scratch);
                scratch
            }
        };
        let span = bulk::metadata_span(bytes);
        let meta_str = |k: &str| e.meta.get(k).and_then(|v| v.as_str());
        // libbeat's getEventCustomIndex: `@metadata.index`, then `raw_index`, then the selector.
        let index = match meta_str("index").or_else(|| meta_str("raw_index")) {
            Some(i) => i.to_lowercase(),
            None => self.index.select_encoded(e.timestamp, &e.meta, bytes),
        };
        if index.is_empty() {
            tracing::error!(target: LOG, "Failed to encode event meta data: failed to select event index: no index rule matched and no index format gave a name; the event is dropped");
            self.ctx.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let pipeline = match (meta_str("pipeline"), &self.pipeline) {
            (Some(p), _) => Some(p.to_lowercase()),
            (None, Some(sel)) => {
                Some(sel.select_encoded(e.timestamp, &e.meta, bytes)).filter(|p| !p.is_empty())
            }
            (None, None) => None,
        };
        let op = match meta_str("op_type") {
            Some("index") => OpType::Index,
            _ => OpType::Create,
        };
        bulk::write_item(
            out,
            op,
            &index,
            pipeline.as_deref(),
            meta_str("_id"),
            bytes,
            span,
        );
        true
    }
}

impl OutputType for EsOutput {
    type Config = EsConfig;
    fn load(cfg: &crate::config::Config) -> anyhow::Result<EsConfig> {
        load_config(
            crate::outputs::raw_section(cfg, "elasticsearch")?,
            &cfg.source,
        )
    }
    fn build(c: &EsConfig, cfg: &crate::config::Config) -> anyhow::Result<Box<dyn Output>> {
        let setup = SetupConfig::from_tree(&cfg.raw, &cfg.paths.config)
            .map_err(|e| anyhow::anyhow!("error unpacking template config: {e}"))?;
        setup
            .check_es_settings(crate::config::lookup(&cfg.raw, "setup.template"))
            .map_err(anyhow::Error::msg)?;
        let enabled = setup.template.enabled || setup.lifecycles_enabled;
        Ok(Box::new(EsOutput::new(c, enabled.then_some(setup))?))
    }
    fn codec(c: &EsConfig) -> Option<JsonCodec> {
        Some(JsonCodec {
            pretty: false,
            escape_html: c.escape_html,
        })
    }
    fn test(c: &EsConfig, out: &mut dyn Write) -> Option<anyhow::Result<bool>> {
        Some(test_output(c, out))
    }
}

impl Output for EsOutput {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        if self.queue.nothing_to_send(events.len()) {
            return Ok(());
        }
        let mut scratch = Vec::new();
        for part in events.chunks(self.ctx.bulk_size) {
            let mut enc = Encoded {
                data: Vec::with_capacity(part.len() * 1100),
                ends: Vec::with_capacity(part.len()),
                targets: Vec::new(),
            };
            for e in part {
                if self.encode_into(e, &mut scratch, &mut enc.data) {
                    enc.ends.push(enc.data.len());
                }
            }
            if !enc.is_empty() {
                self.queue.push(Arc::new(enc));
            }
        }
        self.queue.wait(&self.deadline);
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        let nd = self.queue.close_and_join(&mut self.workers);
        if nd > 0 {
            tracing::warn!(target: LOG, "elasticsearch: {nd} events were not delivered before shutdown_timeout");
        }
        tracing::info!(target: LOG, "elasticsearch output: {}", self.ctx.stats.summary());
        Ok(())
    }

    fn deadline(&self) -> Option<Deadline> {
        Some(self.deadline.clone())
    }

    fn batch_hint(&self) -> usize {
        self.batch_hint
    }

    fn metrics(&self) -> Option<crate::outputs::MetricsReader> {
        let (q, x) = (self.queue.clone(), self.ctx.clone());
        Some(Arc::new(move || {
            let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let st = &x.stats;
            crate::outputs::OutputCounters {
                dropped: g(&st.dropped),
                duplicates: g(&st.duplicates),
                too_many: g(&st.too_many),
                write_errors: g(&st.errors),
                ..q.metrics.counters()
            }
        }))
    }
}

struct Worker {
    queue: Arc<WorkQueue>,
    hosts: HostSet<String>,
    ctx: Arc<Ctx>,
}

/// Consecutive items of one buffer to send again, as one piece of work.
fn push_range(out: &mut Vec<Work>, enc: &Arc<Encoded>, i: usize) {
    if let Some(last) = out.last_mut() {
        if Arc::ptr_eq(&last.enc, enc) && last.range.end == i {
            last.range.end = i + 1;
            return;
        }
    }
    out.push(Work {
        enc: enc.clone(),
        range: i..i + 1,
    });
}

impl Worker {
    fn run(mut self) {
        let mut client: Option<Client> = None;
        let mut backoff = Backoff::new(self.ctx.backoff_init, self.ctx.backoff_max);
        let mut size = self.ctx.bulk_size;
        let mut body = Vec::new();
        loop {
            let Some(first) = self.queue.take(size, true) else {
                if self.queue.stopping() {
                    return;
                }
                continue;
            };
            let mut n = first.range.len();
            let mut works = vec![first];
            while n < size {
                match self.queue.take(size - n, false) {
                    Some(w) => {
                        n += w.range.len();
                        works.push(w);
                    }
                    None => break,
                }
            }
            if client.is_none() {
                match self.connect() {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        self.ctx.stats.errors.fetch_add(1, Ordering::Relaxed);
                        let why = format!("Failed to connect to backoff(elasticsearch({})): {e}", self.hosts.current());
                        self.queue.metrics.remember(&why);
                        tracing::error!(target: LOG, "{why}");
                        self.queue.requeue(works);
                        self.hosts.advance();
                        if !self.queue.sleep(backoff.next_wait()) {
                            return;
                        }
                        continue;
                    }
                }
            }
            let c = client.as_mut().expect("connected above");
            let payload: &[u8] = if works.len() == 1 {
                let w = &works[0];
                &w.enc.data[start_of(&w.enc, w.range.start)..w.enc.ends[w.range.end - 1]]
            } else {
                body.clear();
                for w in &works {
                    body.extend_from_slice(
                        &w.enc.data[start_of(&w.enc, w.range.start)..w.enc.ends[w.range.end - 1]],
                    );
                }
                &body
            };
            let st = &self.ctx.stats;
            st.requests.fetch_add(1, Ordering::Relaxed);
            self.queue
                .metrics
                .write_bytes
                .fetch_add(payload.len() as u64, Ordering::Relaxed);
            let resp = c.request("POST", "/_bulk", bulk::FILTER_PATH, Some(payload), true);
            let failed_request = match resp {
                Err(e) => {
                    tracing::error!(target: LOG, "failed to perform any bulk index operations: {e}");
                    client = None;
                    self.hosts.advance();
                    true
                }
                Ok(r) if r.status == 413 => {
                    if n > 1 {
                        size = (n / 2).max(1);
                        tracing::warn!(target: LOG, "bulk request of {n} events too large (413): retrying with at most {size} per request");
                        self.queue.requeue(works);
                    } else {
                        tracing::error!(target: LOG, "the bulk payload is too large for the server. Consider to adjust `http.max_content_length` parameter in Elasticsearch or `bulk_max_size` in the beat. The batch has been dropped");
                        st.dropped.fetch_add(1, Ordering::Relaxed);
                        self.queue.release(1);
                    }
                    continue;
                }
                Ok(r) if r.status != 200 => {
                    tracing::error!(target: LOG, "failed to perform any bulk index operations: {}: {}", r.status, truncate(&r.text()));
                    true
                }
                Ok(r) => match bulk::parse_response(&r.body, n) {
                    Err(e) => {
                        tracing::error!(target: LOG, "{e}");
                        true
                    }
                    Ok(items) => {
                        let retry = self.apply_results(&works, &items);
                        size = self.ctx.bulk_size;
                        if retry {
                            if !self.queue.sleep(backoff.next_wait()) {
                                return;
                            }
                        } else {
                            backoff.reset();
                        }
                        continue;
                    }
                },
            };
            if failed_request {
                st.errors.fetch_add(1, Ordering::Relaxed);
                st.retried.fetch_add(n as u64, Ordering::Relaxed);
                self.queue
                    .metrics
                    .failed
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.queue.requeue(works);
                if !self.queue.sleep(backoff.next_wait()) {
                    return;
                }
            }
        }
    }

    /// Applies the per-item results; true when some items go back to the queue for a retry.
    fn apply_results(&self, works: &[Work], items: &[bulk::ItemResult]) -> bool {
        let st = &self.ctx.stats;
        let mut resolved = 0;
        let mut again: Vec<Work> = Vec::new();
        let mut dead = Encoded::default();
        let mut k = 0;
        for w in works {
            for i in w.range.clone() {
                let item = &items[k];
                k += 1;
                let bytes = w.enc.event(i);
                let is_dead_letter = self
                    .ctx
                    .dead_letter
                    .as_ref()
                    .is_some_and(|(_, p)| bytes.starts_with(p));
                match item.outcome() {
                    Outcome::Indexed => {
                        resolved += 1;
                        if is_dead_letter {
                            st.dead_letter.fetch_add(1, Ordering::Relaxed);
                        } else {
                            st.acked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Outcome::Duplicate => {
                        resolved += 1;
                        st.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Retry => {
                        st.retried.fetch_add(1, Ordering::Relaxed);
                        if item.status == 429 {
                            st.too_many.fetch_add(1, Ordering::Relaxed);
                        }
                        push_range(&mut again, &w.enc, i);
                    }
                    Outcome::Rejected => {
                        let reason = item.error.as_deref().unwrap_or("");
                        match &self.ctx.dead_letter {
                            Some((index, _)) if !is_dead_letter => {
                                tracing::warn!(target: LOG, "Cannot index event (status={}): {reason}, trying dead letter index", item.status);
                                bulk::dead_letter_item(
                                    &mut dead.data,
                                    index,
                                    bulk::item_document(bytes),
                                    item.status,
                                    reason,
                                );
                                dead.ends.push(dead.data.len());
                            }
                            Some(_) => {
                                tracing::error!(target: LOG, "Can't deliver to dead letter index event (status={}): {reason}; dropping event!", item.status);
                                resolved += 1;
                                st.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            None => {
                                tracing::warn!(target: LOG, "Cannot index event (status={}): {reason}; dropping event!", item.status);
                                resolved += 1;
                                st.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
        }
        let retry = !again.is_empty();
        if !dead.is_empty() {
            again.push(Work {
                range: 0..dead.len(),
                enc: Arc::new(dead),
            });
        }
        if !again.is_empty() {
            let n: usize = again.iter().map(|w| w.range.len()).sum();
            tracing::debug!(target: LOG, "{n} bulk items will be sent again");
            self.queue.requeue(again);
        }
        self.queue.release(resolved);
        retry
    }

    /// Connects to the current host: the version check, then index management once per output.
    fn connect(&self) -> Result<Client, String> {
        let url = self.hosts.current().clone();
        let mut c = Client::new(url, self.ctx.shared.clone());
        let v = c.ping()?;
        tracing::info!(target: LOG, "Attempting to connect to Elasticsearch version {}", v.as_str());
        let beat = Version::parse(crate::BEAT_VERSION).expect("the beat's version parses");
        if !self.ctx.allow_older && older_major_minor(&v, &beat) {
            return Err(format!("Connection marked as failed because the onConnect callback failed: Elasticsearch is too old. Please upgrade the instance. If you would like to connect to older instances set output.elasticsearch.allow_older_versions to true. ES={}, Beat={}", v.as_str(), crate::BEAT_VERSION));
        }
        if let Some((setup, done)) = &self.ctx.setup {
            let mut done = done.lock().unwrap();
            if !*done {
                index_management(&mut c, setup, &v, LoadMode::AsConfigured).map_err(|e| {
                    format!(
                        "Connection marked as failed because the onConnect callback failed: {e}"
                    )
                })?;
                *done = true;
            }
        }
        tracing::info!(target: LOG, "Connection to backoff(elasticsearch({})) established", c.url);
        Ok(c)
    }
}

fn start_of(enc: &Encoded, i: usize) -> usize {
    if i == 0 {
        0
    } else {
        enc.ends[i - 1]
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(500) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `packetbeat test output` for Elasticsearch, as libbeat's client `Test` prints it:
///
/// ```text
/// elasticsearch: http://localhost:9200...
///   parse url... OK
///   connection...
///     parse host... OK
///     dns lookup... OK
///     addresses: 127.0.0.1
///     dial up... OK
///   TLS... WARN secure connection disabled
///   talk to server... OK
///   version: 8.17.2
/// ```
pub fn test_output(c: &EsConfig, out: &mut dyn Write) -> anyhow::Result<bool> {
    let shared = Shared::new(c)?;
    let tls = match SslConfigRef::of(c) {
        Some(ssl) => Some(crate::outputs::net::tls::client_config(
            ssl,
            "output.elasticsearch.ssl",
        )?),
        None => None,
    };
    for host in &c.hosts {
        let url = match config::make_url(&c.protocol, &c.path, host) {
            Ok(u) => u,
            Err(e) => {
                writeln!(out, "elasticsearch: {host}...")?;
                writeln!(out, "  parse url... ERROR {e}")?;
                return Ok(false);
            }
        };
        writeln!(out, "elasticsearch: {url}...")?;
        writeln!(out, "  parse url... OK")?;
        let https = url.starts_with("https://");
        let authority = url
            .split_once("://")
            .map(|(_, r)| r.split('/').next().unwrap_or(r))
            .unwrap_or("");
        let (h, port) = crate::outputs::net::host_port(authority, config::DEFAULT_PORT)
            .map_err(anyhow::Error::msg)?;
        let d = crate::outputs::net::conn::Dialer {
            host: h,
            port,
            timeout: c.timeout.0,
            tls: if https { tls.clone() } else { None },
            proxy: None,
            proxy_local_resolve: false,
        };
        if !crate::outputs::net::testing::test_dial(&d, c.ssl.as_ref(), out)? {
            return Ok(false);
        }
        let mut cl = Client::new(url, shared.clone());
        match cl.ping() {
            Ok(v) => {
                writeln!(out, "  talk to server... OK")?;
                writeln!(out, "  version: {}", v.as_str())?;
            }
            Err(e) => {
                writeln!(out, "  talk to server... ERROR {e}")?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The TLS settings `test output` checks: the `ssl` section, or the defaults for `https`.
struct SslConfigRef;

impl SslConfigRef {
    fn of(c: &EsConfig) -> Option<&crate::outputs::net::tls::SslConfig> {
        static DEFAULT: std::sync::OnceLock<crate::outputs::net::tls::SslConfig> =
            std::sync::OnceLock::new();
        let https =
            c.protocol == "https" || c.hosts.iter().any(|h| h.trim().starts_with("https://"));
        crate::outputs::net::tls::SslConfig::enabled(&c.ssl)
            .or_else(|| https.then(|| DEFAULT.get_or_init(Default::default)))
    }
}

/// `setup --index-management`: connects to the first host that answers and installs the
/// lifecycle policy and the template, overwriting them. Returns the messages to print.
pub fn setup_index_management(cfg: &crate::config::Config) -> Result<(), String> {
    let c = <EsOutput as OutputType>::load(cfg).map_err(|e| format!("{e:#}"))?;
    let setup = SetupConfig::from_tree(&cfg.raw, &cfg.paths.config)
        .map_err(|e| format!("error unpacking template config: {e}"))?;
    setup.check_es_settings(crate::config::lookup(&cfg.raw, "setup.template"))?;
    let shared = Shared::new(&c).map_err(|e| format!("{e:#}"))?;
    let mut errors = Vec::new();
    for url in urls(&c).map_err(|e| format!("{e:#}"))? {
        let mut cl = Client::new(url.clone(), shared.clone());
        match cl.ping() {
            Ok(v) => return index_management(&mut cl, &setup, &v, LoadMode::Overwrite),
            Err(e) => errors.push(format!("error connecting to Elasticsearch at {url}: {e}")),
        }
    }
    Err(format!(
        "couldn't connect to any of the configured Elasticsearch hosts. Errors: [{}]",
        errors.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        let v = |s| Version::parse(s).unwrap();
        assert!(older_major_minor(&v("8.16.9"), &v("8.17.2")));
        assert!(!older_major_minor(&v("8.17.0"), &v("8.17.2")));
        assert!(!older_major_minor(&v("9.0.0"), &v("8.17.2")));
        assert!(older_major_minor(&v("7.17.0"), &v("8.17.2")));
    }

    #[test]
    fn retry_ranges_merge() {
        let enc = Arc::new(Encoded {
            data: b"abcd".to_vec(),
            ends: vec![1, 2, 3, 4],
            targets: Vec::new(),
        });
        let mut v = Vec::new();
        for i in [0, 1, 3] {
            push_range(&mut v, &enc, i);
        }
        let r: Vec<_> = v.iter().map(|w| w.range.clone()).collect();
        assert_eq!(r, [0..2, 3..4]);
    }
}
