//! Outputs: where finalised events go. One module per output; each takes batches and returns
//! only when the batch is written (or fails), so the queue in front of it never loses events.

pub mod console;
pub mod file;
pub mod logstash;

use crate::config::{Config, OutputConfig};
use crate::publish::json::JsonCodec;
use crate::publish::Event;

pub trait Output: Send {
    fn name(&self) -> &'static str;
    /// Writes a batch of finalised events.
    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()>;
    /// Flushes and closes.
    fn close(&mut self) -> anyhow::Result<()>;
    /// For outputs whose `publish`/`close` may wait on a network peer: a handle another thread
    /// sets to bound that wait (`packetbeat.shutdown_timeout`); past it, what is left is
    /// reported as not delivered.
    fn deadline(&self) -> Option<Deadline> {
        None
    }
    /// How many events the output would like per `publish` call (the beater coalesces queued
    /// batches up to this); 0 = as they come.
    fn batch_hint(&self) -> usize {
        0
    }
}

/// A shutdown deadline shared between the beater and an output.
#[derive(Clone, Default, Debug)]
pub struct Deadline(std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>);

impl Deadline {
    pub fn set(&self, at: std::time::Instant) {
        *self.0.lock().unwrap() = Some(at);
    }
    pub fn passed(&self) -> bool {
        self.0
            .lock()
            .unwrap()
            .is_some_and(|t| std::time::Instant::now() >= t)
    }
}

/// `output.discard`: accepts and drops everything (for benchmarks), counting what it dropped.
#[derive(Default)]
pub struct Discard {
    pub events: u64,
}

impl Output for Discard {
    fn name(&self) -> &'static str {
        "discard"
    }
    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        self.events += events.len() as u64;
        Ok(())
    }
    fn close(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The JSON codec the configured output writes with, so packet workers can encode events ahead;
/// `None` for outputs that encode with settings of their own (logstash: `index`, `escape_html`).
pub fn codec_for(cfg: &Config) -> Option<JsonCodec> {
    match &cfg.output {
        OutputConfig::Console(c) => {
            let json = c.codec.json.clone().unwrap_or_default();
            Some(JsonCodec {
                pretty: c.pretty || json.pretty,
                escape_html: json.escape_html,
            })
        }
        OutputConfig::File(f) => {
            let json = f.codec.json.clone().unwrap_or_default();
            Some(JsonCodec {
                pretty: json.pretty,
                escape_html: json.escape_html,
            })
        }
        OutputConfig::Discard => Some(JsonCodec::default()),
        OutputConfig::Other(..) => None,
    }
}

/// Builds the configured output.
pub fn build(cfg: &Config) -> anyhow::Result<Box<dyn Output>> {
    Ok(match &cfg.output {
        OutputConfig::Console(c) => Box::new(console::Console::new(c)),
        OutputConfig::File(f) => Box::new(file::FileOutput::new(f, &cfg.paths)?),
        OutputConfig::Discard => Box::new(Discard::default()),
        OutputConfig::Other(kind, raw) if kind == "logstash" => Box::new(
            logstash::LogstashOutput::new(&logstash::load_config(raw, &cfg.source)?)?,
        ),
        OutputConfig::Other(kind, _) => {
            anyhow::bail!("output.{kind} is not implemented by this build yet (available: console, file, logstash, discard)")
        }
    })
}
