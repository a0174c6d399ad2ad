//! The Thrift analyzer (Packetbeat's `protos/thrift`).
//!
//! Each direction of a connection is a stream of Thrift messages ([`parser`]): binary protocol
//! (strict and old-style headers) or, as this project's addition, compact protocol
//! (`protocol_type: compact`, which Packetbeat refuses), unframed (`transport_type: socket`) or
//! framed. Calls and oneway calls are requests; replies and exceptions (declared exceptions in
//! the reply struct, `TApplicationException` as message type 3) answer them, paired per
//! connection as Packetbeat pairs them ([`transaction`]). One event per call ([`event`]), its
//! arguments and return value rendered as Packetbeat renders them; `idl_files` ([`idl`]) name
//! the arguments, the declared exceptions and the service.
//!
//! The analyzer keeps its own TCP connection state rather than the framework's message
//! adapter, for two behaviours of Packetbeat's that reach across a message's bounds and
//! across directions: with `capture_reply: false` a reply is read to its header and the rest
//! of that direction is ignored until the next call goes the other way; and a gap in a reply
//! already begun publishes the call with what was read and the note "Packet loss while
//! capturing the response". A message that does not parse drops its direction's buffered
//! bytes (counted); parsing restarts with the next segment.
//!
//! - [`config`]: the section's options; [`idl`]: the IDL reader;
//! - [`parser`]: the pure incremental parser and the value rendering;
//! - [`transaction`]: the pairing; [`event`]: the event;
//! - this file: the protocol's declaration and its connections.

pub mod config;
pub mod event;
pub mod idl;
pub mod parser;
pub mod transaction;

#[cfg(test)]
mod tests;

use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::protos::app::{Analyzer, Parsed, Protocol, SectionError, StreamBuffer, Transports};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::ThriftConfig;
use event::{Reply, Request, PACKET_LOSS};
use idl::Idl;
use parser::{format_struct, Message, Options, Partial};
use std::time::Duration;
use transaction::Pairing;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Thrift {
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
    pub opts: Options,
    pub idl: Option<Idl>,
}

impl Protocol for Thrift {
    const NAME: &'static str = "thrift";
    const DEFAULT_PORTS: &'static [u16] = &[9090];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(ThriftConnection::boxed),
        ..Transports::NONE
    };
    type Config = ThriftConfig;

    fn configure(common: &CommonOptions, cfg: ThriftConfig) -> Result<Self, SectionError> {
        let framed = match cfg.transport_type.as_str() {
            "socket" => false,
            "framed" => true,
            other => {
                return Err(SectionError {
                    key: "transport_type",
                    message: format!("Transport type `{other}` not known"),
                })
            }
        };
        let compact = match cfg.protocol_type.as_str() {
            "binary" => false,
            "compact" => true,
            other => {
                return Err(SectionError {
                    key: "protocol_type",
                    message: format!("Protocol type `{other}` not known"),
                })
            }
        };
        let count = |key: &'static str, v: i64| {
            usize::try_from(v).map_err(|_| SectionError {
                key,
                message: format!("{key} must not be negative"),
            })
        };
        let idl = if cfg.idl_files.is_empty() {
            None
        } else {
            Some(Idl::load(&cfg.idl_files).map_err(|message| SectionError {
                key: "idl_files",
                message,
            })?)
        };
        Ok(Thrift {
            send_request: common.send_request,
            send_response: common.send_response,
            transaction_timeout: common.transaction_timeout,
            opts: Options {
                framed,
                compact,
                string_max_size: count("string_max_size", cfg.string_max_size)?,
                collection_max_size: count("collection_max_size", cfg.collection_max_size)?,
                drop_after_n_struct_fields: count(
                    "drop_after_n_struct_fields",
                    cfg.drop_after_n_struct_fields,
                )?,
                capture_reply: cfg.capture_reply,
                obfuscate_strings: cfg.obfuscate_strings,
            },
            idl,
        })
    }
}

/// A complete message as the pairing takes it.
pub enum Seen {
    Request(Request),
    Reply(Reply),
}

impl Thrift {
    /// What Packetbeat makes of a message at its STOP (or cut short, with `notes`): the
    /// arguments of a call, the return value or exceptions of a reply, named by the IDL.
    pub fn seen(&self, msg: Message, ts: Ts, tuple: IpPortTuple, notes: Vec<String>) -> Seen {
        let method = self.idl.as_ref().and_then(|i| i.find(&msg.header.method));
        let max = self.opts.collection_max_size;
        if msg.header.is_request() {
            let mut params = String::new();
            format_struct(
                &msg.fields,
                method.map_or(&[][..], |m| &m.params),
                max,
                &mut params,
            );
            return Seen::Request(Request {
                ts,
                tuple,
                size: msg.size,
                params,
                service: method.map(|m| m.service.clone()).unwrap_or_default(),
                method: msg.header.method,
            });
        }
        let mut reply = Reply {
            ts,
            size: msg.size,
            method: msg.header.method,
            return_value: String::new(),
            exceptions: String::new(),
            has_exception: false,
            notes,
        };
        // A reply cut short by a gap, or read to its header only, reports no value.
        if reply.notes.is_empty() && !msg.header_only {
            match msg.fields.first() {
                Some(f) if f.id == 0 => reply.return_value = f.value.clone(),
                Some(_) => {
                    format_struct(
                        &msg.fields,
                        method.map_or(&[][..], |m| &m.exceptions),
                        max,
                        &mut reply.exceptions,
                    );
                    reply.has_exception = true;
                }
                None => {}
            }
        }
        Seen::Reply(reply)
    }
}

/// One direction of a connection.
struct Dir {
    buf: StreamBuffer,
    partial: Partial,
    /// When the first unconsumed byte arrived, and that packet's addresses.
    ts: Ts,
    tuple: IpPortTuple,
    /// A reply was read to its header (`capture_reply: false`): the direction is ignored until
    /// a call goes the other way.
    skip: bool,
    /// No message completed since the direction's parse (re)started: a gap then drops the
    /// connection, as Packetbeat's stream then holds a message begun.
    fresh: bool,
}

/// A Thrift connection (the framework's [`TcpConnectionParser`]).
pub struct ThriftConnection {
    analyzer: Analyzer<Thrift>,
    dirs: [Option<Dir>; 2],
    pairing: Pairing,
}

impl ThriftConnection {
    pub fn new(analyzer: Analyzer<Thrift>) -> ThriftConnection {
        ThriftConnection {
            analyzer,
            dirs: [None, None],
            pairing: Pairing::default(),
        }
    }

    /// The constructor in [`Thrift::TRANSPORTS`].
    pub fn boxed(analyzer: &Analyzer<Thrift>, _conn: &TcpTuple) -> Box<dyn TcpConnectionParser> {
        Box::new(ThriftConnection::new(analyzer.clone()))
    }

    /// Hands a complete message to the pairing; a call lifts the other direction's skip, a
    /// reply read to its header only starts this direction's.
    fn complete(&mut self, out: &mut EventSink, d: usize, seen: Seen) {
        let proto = &*self.analyzer.proto;
        let counters = &*self.analyzer.counters;
        match seen {
            Seen::Request(req) => {
                if let Some(other) = self.dirs[1 - d].as_mut() {
                    other.skip = false;
                }
                self.pairing.request(proto, out, req, counters);
            }
            Seen::Reply(reply) => self.pairing.reply(proto, out, reply, counters),
        }
    }

    /// Parses the messages at the start of `data` (which direction `d` received first at
    /// `ts`, from `tuple`); returns the bytes they used, or why the direction is dropped.
    fn parse_messages(
        &mut self,
        out: &mut EventSink,
        d: usize,
        data: &[u8],
        mut ts: Ts,
        mut tuple: IpPortTuple,
        pkt: &TcpPacket,
    ) -> Result<usize, &'static str> {
        let mut used = 0;
        while used < data.len() {
            let st = self.dirs[d].as_mut().expect("the direction exists");
            match parser::parse(&self.analyzer.proto.opts, &mut st.partial, &data[used..]) {
                Parsed::Message { msg, consumed } => {
                    used += consumed;
                    st.fresh = false;
                    let header_only = msg.header_only;
                    if header_only {
                        // Packetbeat flushes the rest and ignores the direction from here on.
                        st.skip = true;
                        used = data.len();
                    }
                    let seen = self.analyzer.proto.seen(msg, ts, tuple, Vec::new());
                    self.complete(out, d, seen);
                    if header_only {
                        break;
                    }
                }
                Parsed::Skip(n) => used += n.max(1),
                Parsed::Incomplete => break,
                Parsed::Error(why) => return Err(why),
            }
            ts = pkt.ts;
            tuple = pkt.tuple;
        }
        Ok(used.min(data.len()))
    }
}

impl TcpConnectionParser for ThriftConnection {
    fn parse(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
            return;
        }
        let d = dir.index();
        let st = self.dirs[d].get_or_insert_with(|| Dir {
            buf: StreamBuffer::default(),
            partial: Partial::default(),
            ts: pkt.ts,
            tuple: pkt.tuple,
            skip: false,
            fresh: true,
        });
        if st.skip {
            return;
        }
        let result = if st.buf.is_empty() {
            // Nothing buffered: parse straight from the segment, keep only its incomplete tail.
            st.ts = pkt.ts;
            st.tuple = pkt.tuple;
            let (ts, tuple) = (st.ts, st.tuple);
            self.parse_messages(out, d, pkt.payload, ts, tuple, pkt)
                .map(|used| {
                    if let Some(st) = self.dirs[d].as_mut() {
                        if !st.skip {
                            st.buf.append(&pkt.payload[used..]);
                        }
                    }
                })
        } else {
            if st.buf.append_capped(pkt.payload).is_err() {
                tracing::debug!("thrift: stream data too large, dropping TCP stream");
                self.analyzer.counters.stream_too_large();
                self.dirs[d] = None;
                return;
            }
            let (ts, tuple) = (st.ts, st.tuple);
            let data = std::mem::take(&mut st.buf);
            let r = self.parse_messages(out, d, data.data(), ts, tuple, pkt);
            if let Some(st) = self.dirs[d].as_mut() {
                st.buf = data;
                if let Ok(used) = r {
                    st.buf.consume(used);
                    if used > 0 {
                        st.ts = pkt.ts;
                        st.tuple = pkt.tuple;
                    }
                }
            }
            r.map(|_| ())
        };
        if let Err(why) = result {
            tracing::debug!("thrift: {why}, dropping stream");
            self.analyzer.counters.parse_error();
            self.dirs[d] = None;
        }
    }

    fn received_fin(&mut self, out: &mut EventSink, _conn: &TcpTuple, _dir: TcpDirection, ts: Ts) {
        let proto = &*self.analyzer.proto;
        self.pairing.fin(proto, out, ts, &self.analyzer.counters);
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        dir: TcpDirection,
        _nbytes: usize,
        _ts: Ts,
    ) -> bool {
        let d = dir.index();
        let Some(st) = self.dirs[d].as_mut() else {
            return false;
        };
        if st.buf.is_empty() && !st.fresh {
            // No message begun: nothing is lost but the gap itself.
            return false;
        }
        let cut_reply = match st.partial.begun() {
            Some((h, _)) if !h.is_request() => {
                let end = st.partial.offset();
                st.partial.take_begun(end)
            }
            _ => None,
        };
        if let Some(msg) = cut_reply {
            let (ts, tuple) = (st.ts, st.tuple);
            let seen = self
                .analyzer
                .proto
                .seen(msg, ts, tuple, vec![PACKET_LOSS.to_string()]);
            self.complete(out, d, seen);
        }
        // Thrift is binary and length-based: the connection is dropped, as Packetbeat does.
        self.pairing.end(&self.analyzer.counters);
        true
    }

    fn expired(&mut self, _out: &mut EventSink, _conn: &TcpTuple, _now: Ts) {
        self.pairing.end(&self.analyzer.counters);
    }
}
