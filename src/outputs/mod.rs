//! Outputs: where finalised events go. One module per output; each takes batches and returns
//! only when the batch is written (or fails), so the queue in front of it never loses events.
//!
//! [`OUTPUTS`] lists every output of this build, one line each: `output.<name>` and the type
//! implementing [`OutputType`] (its options, how it is built, the codec packet workers encode
//! with, its `packetbeat test output`). [`build`], [`codec_for`] and [`test`] read that table;
//! adding an output is its module and one line there. What network outputs share (connections,
//! TLS, proxies, backoff, failover and load balancing) is [`net`]; how they name an event's
//! target (`index`/`indices`, `topic`/`topics`, `key`/`keys`) is [`select`]; the codecs of the
//! outputs that take one (`codec.json`, `codec.format`) are [`codec`].

pub mod codec;
pub mod console;
pub mod discard;
pub mod elasticsearch;
pub mod file;
pub mod kafka;
pub mod logstash;
pub mod net;
pub mod redis;
pub mod select;

use crate::config::{Config, OutputConfig};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
pub use discard::Discard;
use std::io::Write;

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
    /// For outputs that count what their peer did with the events: a reader of those counters
    /// for the monitoring (`libbeat.output.*` in `/stats`), callable from any thread.
    fn metrics(&self) -> Option<MetricsReader> {
        None
    }
}

/// An output's counters as libbeat names them under `libbeat.output`: `events.acked`,
/// `events.failed` (sent again), `events.dropped`, `events.duplicates`, `events.toomany`,
/// `write.bytes`, `write.errors`, `read.bytes`, `read.errors`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutputCounters {
    pub acked: u64,
    pub failed: u64,
    pub dropped: u64,
    pub duplicates: u64,
    pub too_many: u64,
    pub write_bytes: u64,
    pub write_errors: u64,
    pub read_bytes: u64,
    pub read_errors: u64,
    /// The output's last error ("" when none), for the stall message.
    pub last_error: String,
}

/// Reads an output's [`OutputCounters`] (see [`Output::metrics`]).
pub type MetricsReader = std::sync::Arc<dyn Fn() -> OutputCounters + Send + Sync>;

/// One kind of output: its options and what is made from them.
pub trait OutputType {
    /// The options under `output.<name>`.
    type Config;
    /// Reads the options from the configuration (whose `output` is this output's section).
    fn load(cfg: &Config) -> anyhow::Result<Self::Config>;
    fn build(c: &Self::Config, cfg: &Config) -> anyhow::Result<Box<dyn Output>>;
    /// The JSON codec the output writes with, so packet workers can encode events ahead; `None`
    /// when the output encodes with settings of its own.
    fn codec(_c: &Self::Config) -> Option<JsonCodec> {
        None
    }
    /// `packetbeat test output`: prints its checks, `Ok(false)` at the first failure; `None` when
    /// the output has no test.
    fn test(_c: &Self::Config, _out: &mut dyn Write) -> Option<anyhow::Result<bool>> {
        None
    }
}

/// An output of this build: its name under `output` and its [`OutputType`], type-erased.
pub struct Registered {
    pub name: &'static str,
    check: fn(&Config) -> anyhow::Result<()>,
    build: fn(&Config) -> anyhow::Result<Box<dyn Output>>,
    codec: fn(&Config) -> Option<JsonCodec>,
    test: fn(&Config, &mut dyn Write) -> Result<Tested, String>,
}

impl Registered {
    pub const fn of<T: OutputType>(name: &'static str) -> Registered {
        Registered {
            name,
            check: check_as::<T>,
            build: build_as::<T>,
            codec: codec_as::<T>,
            test: test_as::<T>,
        }
    }
}

fn check_as<T: OutputType>(cfg: &Config) -> anyhow::Result<()> {
    T::load(cfg).map(|_| ())
}

fn build_as<T: OutputType>(cfg: &Config) -> anyhow::Result<Box<dyn Output>> {
    T::build(&T::load(cfg)?, cfg)
}

fn codec_as<T: OutputType>(cfg: &Config) -> Option<JsonCodec> {
    T::codec(&T::load(cfg).ok()?)
}

fn test_as<T: OutputType>(cfg: &Config, out: &mut dyn Write) -> Result<Tested, String> {
    let c = T::load(cfg).map_err(|e| format!("{e:#}"))?;
    match T::test(&c, out) {
        None => Ok(Tested::Unsupported),
        Some(Ok(true)) => Ok(Tested::Passed),
        Some(Ok(false)) => Ok(Tested::Failed),
        Some(Err(e)) => Err(format!("Error initializing output: {e:#}")),
    }
}

/// Every output of this build, in the order messages list them.
pub static OUTPUTS: &[Registered] = &[
    Registered::of::<console::Console>("console"),
    Registered::of::<file::FileOutput>("file"),
    Registered::of::<logstash::LogstashOutput>("logstash"),
    Registered::of::<redis::RedisOutput>("redis"),
    Registered::of::<kafka::KafkaOutput>("kafka"),
    Registered::of::<Discard>("discard"),
    Registered::of::<elasticsearch::EsOutput>("elasticsearch"),
];

/// The outputs Packetbeat 8 has (and the config accepts) that this build does not.
pub fn unimplemented() -> impl Iterator<Item = &'static str> {
    crate::config::build::KNOWN_OUTPUTS
        .iter()
        .copied()
        .filter(|n| !OUTPUTS.iter().any(|o| o.name == *n))
}

/// The name of the configured output (`output.<name>`).
pub fn configured_name(cfg: &Config) -> &str {
    match &cfg.output {
        OutputConfig::Console(_) => "console",
        OutputConfig::File(_) => "file",
        OutputConfig::Discard => "discard",
        OutputConfig::Other(kind, _) => kind,
    }
}

/// The configured output's entry in [`OUTPUTS`].
fn registered(cfg: &Config) -> anyhow::Result<&'static Registered> {
    let name = configured_name(cfg);
    OUTPUTS.iter().find(|o| o.name == name).ok_or_else(|| {
        let available: Vec<&str> = OUTPUTS.iter().map(|o| o.name).collect();
        anyhow::anyhow!(
            "output.{name} is not implemented by this build yet (available: {})",
            available.join(", ")
        )
    })
}

/// `test config`: the configured output exists in this build and its options load as `run`
/// would load them (nothing is connected).
pub fn check(cfg: &Config) -> anyhow::Result<()> {
    (registered(cfg)?.check)(cfg)
}

/// The raw section of an output the config carries untyped (`OutputConfig::Other`).
pub fn raw_section<'a>(cfg: &'a Config, name: &str) -> anyhow::Result<&'a serde_yaml::Value> {
    match &cfg.output {
        OutputConfig::Other(kind, raw) if kind == name => Ok(raw),
        _ => Err(not_this_output(cfg, name)),
    }
}

/// The error of an [`OutputType::load`] given another output's configuration.
pub fn not_this_output(cfg: &Config, name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "output.{name}: the configured output is output.{}",
        configured_name(cfg)
    )
}

/// The JSON codec the configured output writes with, so packet workers can encode events ahead;
/// `None` for outputs that encode with settings of their own (logstash with `index`: the
/// events' `@metadata.beat`).
pub fn codec_for(cfg: &Config) -> Option<JsonCodec> {
    registered(cfg).ok().and_then(|o| (o.codec)(cfg))
}

/// How a queue that keeps events serialised (`queue.disk`) encodes the events packet workers did
/// not: as the configured output would, so what it reads back is what the output would have
/// written. Outputs without a [`codec_for`] encode with settings of their own (logstash and redis:
/// `@metadata.beat` from `index`; logstash: `escape_html`), repeated here.
#[derive(Debug, Clone)]
pub struct StoredCodec {
    pub codec: JsonCodec,
    /// `@metadata.beat` for events that do not carry one.
    pub beat: Option<String>,
}

impl StoredCodec {
    /// Encodes `e` into `out`; returns its metadata when `beat` had to be added to it (the
    /// queue stores that metadata, so the output, seeing `beat`, keeps the bytes as they are).
    pub fn encode_into(&self, e: &Event, out: &mut Vec<u8>) -> Option<crate::publish::event::Map> {
        match &self.beat {
            Some(b) if e.encoded.is_none() && !e.meta.contains_key("beat") => {
                let mut e = e.clone();
                e.meta
                    .insert("beat".into(), serde_json::Value::from(b.as_str()));
                self.codec.encode_into(&e, out);
                Some(e.meta)
            }
            _ => {
                self.codec.encode_into(e, out);
                None
            }
        }
    }
}

/// The [`StoredCodec`] of the configured output.
pub fn stored_codec(cfg: &Config) -> StoredCodec {
    let plain = JsonCodec {
        pretty: false,
        escape_html: false,
    };
    if let Some(codec) = codec_for(cfg) {
        return StoredCodec { codec, beat: None };
    }
    match configured_name(cfg) {
        "logstash" => match <logstash::LogstashOutput as OutputType>::load(cfg) {
            Ok(c) => StoredCodec {
                codec: JsonCodec {
                    pretty: false,
                    escape_html: c.escape_html,
                },
                beat: c.beat_name(),
            },
            Err(_) => StoredCodec {
                codec: plain,
                beat: None,
            },
        },
        "redis" => StoredCodec {
            codec: plain,
            beat: <redis::RedisOutput as OutputType>::load(cfg)
                .ok()
                .map(|c| c.beat_name()),
        },
        _ => StoredCodec {
            codec: plain,
            beat: None,
        },
    }
}

/// Builds the configured output.
pub fn build(cfg: &Config) -> anyhow::Result<Box<dyn Output>> {
    (registered(cfg)?.build)(cfg)
}

/// What `packetbeat test output` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tested {
    Passed,
    /// A check failed (printed to the output).
    Failed,
    /// The output has no test.
    Unsupported,
}

/// `packetbeat test output` for the configured output, printing its checks to `out`. The error
/// is the message to exit with.
pub fn test(cfg: &Config, out: &mut dyn Write) -> Result<Tested, String> {
    let o = registered(cfg).map_err(|e| e.to_string())?;
    (o.test)(cfg, out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        crate::config::load_from_str(yaml, "t.yml", &[]).unwrap()
    }

    #[test]
    fn table_matches_the_known_outputs() {
        let known = crate::config::build::KNOWN_OUTPUTS;
        for o in OUTPUTS {
            assert!(
                known.contains(&o.name),
                "{} is not a libbeat output",
                o.name
            );
        }
        let missing: Vec<_> = unimplemented().collect();
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(
            OUTPUTS.len() + missing.len(),
            known.len(),
            "one entry per output"
        );
    }

    #[test]
    fn builds_through_the_table() {
        let c = cfg("output.console: {pretty: true}\n");
        assert_eq!(build(&c).unwrap().name(), "console");
        assert!(codec_for(&c).unwrap().pretty);
        assert_eq!(test(&c, &mut Vec::new()), Ok(Tested::Unsupported));
        let c = cfg("output.discard: {}\n");
        assert_eq!(build(&c).unwrap().name(), "discard");
        assert!(codec_for(&c).is_some());
        // Logstash: the workers encode with its escape_html, unless `index` sets the events'
        // @metadata.beat in the output.
        let c = cfg("output.logstash: {hosts: ['127.0.0.1:1'], escape_html: true}\n");
        assert!(codec_for(&c).is_some_and(|j| j.escape_html && !j.pretty));
        let c = cfg("output.logstash: {hosts: ['127.0.0.1:1'], index: pb}\n");
        assert!(codec_for(&c).is_none());
    }
}
