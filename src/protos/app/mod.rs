//! The app-layer framework every analyzer is built on (Packetbeat's `protos` plugin interface
//! and `protos/applayer`; the shape of Suricata's `applayertemplate`).
//!
//! An analyzer declares what it is with [`Protocol`]: its name, default ports and transaction
//! timeout, its typed options, the settings it resolves from them once, and the transports it
//! analyses ([`Transports`]). The framework does the rest once for all of them: decoding the
//! section, the module shared by the packet workers ([`Module`]), one analyzer instance per
//! worker, the stream buffer with Packetbeat's 10 MiB cap ([`stream`]), pairing on packet time
//! ([`transactions`]), the fields every transaction event shares ([`event`]), and the TCP adapter for message-oriented protocols ([`message`]): a pure
//! incremental parser in, paired transactions out.
//!
//! # Adding an analyzer
//!
//! Copy `src/protos/template/` to `src/protos/<name>/` and follow it:
//! 1. `config.rs`: the section's protocol-specific keys, `#[serde(default)]`, Packetbeat's names
//!    and defaults (the common keys — `ports`, `send_request`, `transaction_timeout`, `fields`,
//!    … — are decoded by the framework into [`CommonOptions`]).
//! 2. `parser.rs`: a pure function from the unconsumed bytes of one direction to
//!    [`Parsed`]: a complete message and how many bytes it used, "incomplete", bytes to skip, or
//!    an error (the stream is then dropped and the error counted). Unit-test it by splitting
//!    captured messages at every byte.
//! 3. `transaction.rs` (when pairing is more than "the next response answers the oldest
//!    request"): what is kept per connection, on [`RequestQueue`] or [`TransactionTable`].
//! 4. `event.rs`: the only file that writes event fields, with `publish::json`'s writer.
//! 5. `mod.rs`: the module doc (what Packetbeat does and so this analyzer does), `impl
//!    Protocol` (name, config, `configure`, `TRANSPORTS`) and, for message protocols,
//!    `impl MessageProtocol` (parse, then what a message does to the connection's pairing).
//! 6. One line in `protos/registry.rs`'s `ANALYZERS` table.
//!
//! Analyzers whose shape the message adapter does not fit (HTTP skips bodies without buffering
//! them; TLS publishes once per connection; DNS over TCP decodes one message per segment as
//! Packetbeat does; Thrift's `capture_reply: false` silences a direction until a call goes the
//! other way) implement [`TcpConnectionParser`] themselves, with the same shared pieces.

pub mod csv;
pub mod event;
pub mod message;
pub mod stream;
pub mod transactions;

pub use message::{MessageAt, MessageConnection, MessageProtocol, Parsed};
pub use stream::{StreamBuffer, StreamTooLarge, TCP_MAX_DATA_IN_STREAM};
pub use transactions::{Found, RequestQueue, TransactionTable};

use super::{
    CommonOptions, IcmpAnalyzer, ProtocolModule, TcpAnalyzer, TcpConnectionParser, UdpAnalyzer,
    DEFAULT_TRANSACTION_TIMEOUT,
};
use crate::common::TcpTuple;
use crate::config::types::{decode, ConfigError, ProtocolSection};
use crate::protos::registry::ProtocolCommonConfig;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What an analyzer is. The implementing type is the analyzer's resolved settings, shared
/// read-only by every worker.
pub trait Protocol: Sized + Send + Sync + 'static {
    /// Packetbeat's protocol name: the section's `type`, the event's `type` and
    /// `network.protocol`, and the debug selector.
    const NAME: &'static str;
    /// Ports analysed when the section lists none.
    const DEFAULT_PORTS: &'static [u16] = &[];
    /// `transaction_timeout` when the section does not set it.
    const DEFAULT_TRANSACTION_TIMEOUT: Duration = DEFAULT_TRANSACTION_TIMEOUT;
    /// How the analyzer meets the transports.
    const TRANSPORTS: Transports<Self>;
    /// The section's protocol-specific keys.
    type Config: DeserializeOwned;

    /// Resolves the settings once. An error names the offending key, relative to the section.
    fn configure(common: &CommonOptions, cfg: Self::Config) -> Result<Self, SectionError>;
}

/// A bad value in a protocol section: the key (relative to the section) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionError {
    pub key: &'static str,
    pub message: String,
}

/// What one worker's instance of an analyzer gets: the settings and the module's counters.
pub struct Analyzer<P> {
    pub proto: Arc<P>,
    pub counters: Arc<AppCounters>,
}

impl<P> Clone for Analyzer<P> {
    fn clone(&self) -> Self {
        Analyzer {
            proto: self.proto.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// The transports an analyzer takes part in, each as the constructor of its per-connection or
/// per-worker state. `None`: the protocol does not run there.
pub struct Transports<P: 'static> {
    pub tcp: Option<fn(&Analyzer<P>, &TcpTuple) -> Box<dyn TcpConnectionParser>>,
    pub udp: Option<fn(&Analyzer<P>) -> Box<dyn UdpAnalyzer>>,
    pub icmp: Option<fn(&Analyzer<P>) -> Box<dyn IcmpAnalyzer>>,
}

impl<P: 'static> Transports<P> {
    pub const NONE: Transports<P> = Transports {
        tcp: None,
        udp: None,
        icmp: None,
    };
}

/// Counters of a protocol across all workers. They change only on the rare paths (a stream
/// dropped, a message that does not parse), so relaxed atomics cost nothing on the packet path.
#[derive(Debug, Default)]
pub struct AppCounters {
    /// Messages that did not parse; their stream was dropped.
    pub parse_errors: AtomicU64,
    /// Streams dropped for buffering more than [`TCP_MAX_DATA_IN_STREAM`].
    pub streams_too_large: AtomicU64,
    /// Requests published without a response (Packetbeat's `<proto>.unmatched_requests`).
    pub unmatched_requests: AtomicU64,
    /// Responses without a request (`<proto>.unmatched_responses`).
    pub unmatched_responses: AtomicU64,
}

impl AppCounters {
    pub fn parse_error(&self) {
        self.parse_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_too_large(&self) {
        self.streams_too_large.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unmatched_request(&self) {
        self.unmatched_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unmatched_response(&self) {
        self.unmatched_responses.fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, value)` of every counter, for the exit summary.
    pub fn snapshot(&self) -> [(&'static str, u64); 4] {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("parse_errors", c(&self.parse_errors)),
            ("streams_too_large", c(&self.streams_too_large)),
            ("unmatched_requests", c(&self.unmatched_requests)),
            ("unmatched_responses", c(&self.unmatched_responses)),
        ]
    }
}

/// A configured protocol: built once from its section, shared by the workers, each of which
/// gets its own analyzer instances from it.
pub struct Module<P: Protocol> {
    analyzer: Analyzer<P>,
    ports: Vec<u16>,
    timeout: Duration,
}

impl<P: Protocol> Module<P> {
    pub fn new(proto: P, common: &CommonOptions) -> Module<P> {
        Module {
            analyzer: Analyzer {
                proto: Arc::new(proto),
                counters: Arc::default(),
            },
            ports: common.ports.clone(),
            timeout: common.transaction_timeout,
        }
    }

    pub fn settings(&self) -> &Arc<P> {
        &self.analyzer.proto
    }
}

impl<P: Protocol> ProtocolModule for Module<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn tcp_ports(&self) -> &[u16] {
        if P::TRANSPORTS.tcp.is_some() {
            &self.ports
        } else {
            &[]
        }
    }

    fn udp_ports(&self) -> &[u16] {
        if P::TRANSPORTS.udp.is_some() {
            &self.ports
        } else {
            &[]
        }
    }

    fn new_tcp(&self) -> Option<Box<dyn TcpAnalyzer>> {
        let new_connection = P::TRANSPORTS.tcp?;
        Some(Box::new(TcpSide {
            analyzer: self.analyzer.clone(),
            timeout: self.timeout,
            new_connection,
        }))
    }

    fn new_udp(&self) -> Option<Box<dyn UdpAnalyzer>> {
        P::TRANSPORTS.udp.map(|new| new(&self.analyzer))
    }

    fn new_icmp(&self) -> Option<Box<dyn IcmpAnalyzer>> {
        P::TRANSPORTS.icmp.map(|new| new(&self.analyzer))
    }

    fn counters(&self) -> Option<&AppCounters> {
        Some(&self.analyzer.counters)
    }
}

/// A protocol's TCP side in one worker: it starts a parser for each connection.
struct TcpSide<P: 'static> {
    analyzer: Analyzer<P>,
    timeout: Duration,
    new_connection: fn(&Analyzer<P>, &TcpTuple) -> Box<dyn TcpConnectionParser>,
}

impl<P: Protocol> TcpAnalyzer for TcpSide<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn connection_timeout(&self) -> Duration {
        self.timeout
    }

    fn new_connection(&mut self, conn: &TcpTuple) -> Box<dyn TcpConnectionParser> {
        (self.new_connection)(&self.analyzer, conn)
    }
}

/// The common options as the protocol sees them: its default ports and timeout applied.
pub fn common_options<P: Protocol>(common: &ProtocolCommonConfig) -> CommonOptions {
    CommonOptions {
        ports: if common.ports.is_empty() {
            P::DEFAULT_PORTS.to_vec()
        } else {
            common.ports.clone()
        },
        send_request: common.send_request,
        send_response: common.send_response,
        transaction_timeout: common
            .transaction_timeout
            .map_or(P::DEFAULT_TRANSACTION_TIMEOUT, |d| d.0),
    }
}

/// Builds protocol `P`'s module from its section (the registry's factory for `P`).
pub fn build<P: Protocol>(
    common: &ProtocolCommonConfig,
    section: &ProtocolSection,
    source: &str,
) -> Result<Arc<dyn ProtocolModule>, ConfigError> {
    let cfg: P::Config = decode(&section.options, &section.key, source)?;
    let common = common_options::<P>(common);
    let proto = P::configure(&common, cfg)
        .map_err(|e| ConfigError::at(e.message, &format!("{}.{}", section.key, e.key), source))?;
    Ok(Arc::new(Module::new(proto, &common)))
}
