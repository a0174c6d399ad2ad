//! libbeat's monitoring, read from live counters while the Beat runs:
//! - the HTTP endpoint (`http.enabled`, `http.host`, `http.port`, default `localhost:5066`, or a
//!   Unix socket `http.host: unix:///path`) with `/` (the Beat's identity), `/stats` (libbeat's
//!   `beat`, `libbeat`, `system` sections and Packetbeat's own counters, each under its
//!   protocol or layer name as Packetbeat registers them: `tcp.dropped_because_of_gaps`,
//!   `http.unmatched_responses`, …), `/inputs/` (each live capture's counters, Packetbeat's
//!   af_packet `socket_drops` & co., [`crate::sniffer::metrics`]) and `/state`; `?pretty`
//!   indents;
//! - the periodic log line (`logging.metrics.enabled`, default on, every
//!   `logging.metrics.period`, default 30s): "Non-zero metrics in the last 30s" with the counters
//!   that moved, in the same structure as `/stats`.
//!
//! The packet path never waits for it: each worker leaves a copy of its counters after a batch
//! with a `try_lock` (skipped when a reader holds the slot); the capture and output threads bump
//! relaxed atomics once per batch. [`stats::snapshot`] sums them when asked.

pub mod server;
pub mod stats;

use crate::beater::worker::WorkerReport;
use crate::protos::ProtocolModule;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the monitoring reads, shared by the threads that update it.
pub struct Live {
    pub started: Instant,
    /// The Beat's name, `agent.id` and ephemeral id, shared with the workers' pipelines.
    pub info: crate::publish::pipeline::BeatInfo,
    pub output_type: &'static str,
    /// The output's own counters, for outputs that keep them (network outputs).
    pub output_metrics: Option<crate::outputs::MetricsReader>,
    /// The queue between the workers and the output (its fill).
    pub queue: Arc<dyn crate::beater::queue::EventQueue>,
    /// Each packet worker's counters, as of its last batch.
    pub workers: Vec<Mutex<WorkerReport>>,
    pub modules: Vec<Arc<dyn ProtocolModule>>,
    /// Frames the capture read.
    pub frames: AtomicU64,
    /// IPv4 datagrams the capture threads' dispatchers gave up (the workers count their own).
    pub datagrams_dropped: AtomicU64,
    /// Events the output took from the queue, and of those, the ones it resolved.
    pub output_total: AtomicU64,
    pub output_acked: AtomicU64,
    pub output_batches: AtomicU64,
    /// `publish` calls that failed (the run then ends).
    pub output_failed: AtomicU64,
}

impl Live {
    pub fn new(
        info: crate::publish::pipeline::BeatInfo,
        output: &dyn crate::outputs::Output,
        queue: Arc<dyn crate::beater::queue::EventQueue>,
        n_workers: usize,
        modules: Vec<Arc<dyn ProtocolModule>>,
    ) -> Arc<Live> {
        Arc::new(Live {
            started: Instant::now(),
            info,
            output_type: output.name(),
            output_metrics: output.metrics(),
            queue,
            workers: (0..n_workers)
                .map(|_| Mutex::new(WorkerReport::default()))
                .collect(),
            modules,
            frames: AtomicU64::new(0),
            datagrams_dropped: AtomicU64::new(0),
            output_total: AtomicU64::new(0),
            output_acked: AtomicU64::new(0),
            output_batches: AtomicU64::new(0),
            output_failed: AtomicU64::new(0),
        })
    }

    /// A worker's counters after a batch; skipped when a reader holds the slot (the next batch
    /// brings it up to date).
    pub fn worker_report(&self, worker: usize, r: &WorkerReport) {
        if let Some(slot) = self.workers.get(worker) {
            if let Ok(mut s) = slot.try_lock() {
                *s = *r;
            }
        }
    }

    /// The workers' counters summed.
    pub fn workers_total(&self) -> WorkerReport {
        let mut total = WorkerReport::default();
        for w in &self.workers {
            let r = *w.lock().unwrap_or_else(|e| e.into_inner());
            total += &r;
        }
        total
    }
}

/// `http.*` and `logging.metrics.*`, with libbeat's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringConfig {
    pub http_enabled: bool,
    pub http_host: String,
    pub http_port: u16,
    pub metrics_enabled: bool,
    pub metrics_period: Duration,
}

impl MonitoringConfig {
    pub fn from_config(cfg: &crate::config::Config) -> Result<MonitoringConfig, String> {
        use crate::config::types::lookup;
        let raw = &cfg.raw;
        let bool_at = |k: &str, d: bool| -> Result<bool, String> {
            match lookup(raw, k) {
                None | Some(serde_yaml::Value::Null) => Ok(d),
                Some(serde_yaml::Value::Bool(b)) => Ok(*b),
                Some(v) => Err(format!("expected a boolean accessing '{k}' (got {v:?})")),
            }
        };
        let port = match lookup(raw, "http.port") {
            None | Some(serde_yaml::Value::Null) => 5066,
            Some(v) => v
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("invalid port accessing 'http.port' (got {v:?})"))?,
        };
        let host = match lookup(raw, "http.host") {
            None | Some(serde_yaml::Value::Null) => "localhost".to_string(),
            Some(serde_yaml::Value::String(s)) => s.clone(),
            Some(v) => {
                return Err(format!(
                    "expected a string accessing 'http.host' (got {v:?})"
                ))
            }
        };
        let period = match lookup(raw, "logging.metrics.period") {
            None | Some(serde_yaml::Value::Null) => Duration::from_secs(30),
            Some(v) => {
                let d: crate::config::types::GoDuration = serde_yaml::from_value(v.clone())
                    .map_err(|e| format!("{e} accessing 'logging.metrics.period'"))?;
                d.0
            }
        };
        if period.is_zero() {
            return Err("logging.metrics.period must be greater than 0".into());
        }
        Ok(MonitoringConfig {
            http_enabled: bool_at("http.enabled", false)?,
            http_host: host,
            http_port: port,
            metrics_enabled: bool_at("logging.metrics.enabled", true)?,
            metrics_period: period,
        })
    }
}

/// Starts what `m` enables: the endpoint's thread and the metrics logger's. They end with the
/// process.
pub fn start(m: &MonitoringConfig, live: &Arc<Live>) -> anyhow::Result<()> {
    if m.http_enabled {
        server::start(&m.http_host, m.http_port, live.clone())?;
    }
    if m.metrics_enabled {
        let (live, period) = (live.clone(), m.metrics_period);
        std::thread::Builder::new()
            .name("monitoring".into())
            .spawn(move || stats::log_metrics_every(&live, period))?;
    }
    Ok(())
}
