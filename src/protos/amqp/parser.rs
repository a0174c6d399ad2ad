//! AMQP 0-9-1 frames and methods as Packetbeat reads them (`amqp_parser.go`,
//! `amqp_methods.go`).
//!
//! Each direction is a [`Stream`]: its bytes and one message being filled. Frames are read in
//! order; a method frame sets the message's method, arguments and fields, a content header its
//! body size and properties, body frames its body. A message completes with a method that has
//! no content, or with the body frame that fills the size its header declared. As in
//! Packetbeat the message is not renewed between messages of the same stream, so a method
//! that carries nothing new (`queue.bind-ok`, `tx.select`, …) keeps the fields of the one
//! before it in the same stream; the stream itself ends ([`Step::Reset`]) when its bytes are
//! used up, on a heartbeat read first, and on a method left out by configuration, so the next
//! segment starts a fresh stream and message. One difference on purpose: the body restarts at
//! every method frame (Packetbeat's grows over all the messages of a stream, so the second
//! delivery in a segment reported both bodies).

use super::fields::{format_timestamp, get_table, short_string, TableError};
use crate::common::Ts;
use serde_json::{Map, Value};

/// The frame-end octet every frame closes with.
pub const FRAME_END: u8 = 0xCE;

const METHOD_FRAME: u8 = 1;
const HEADER_FRAME: u8 = 2;
const BODY_FRAME: u8 = 3;
const HEARTBEAT_FRAME: u8 = 8;

/// What the parser needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ParserConfig {
    pub parse_headers: bool,
    pub parse_arguments: bool,
    pub hide_connection_information: bool,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            parse_headers: true,
            parse_arguments: true,
            hide_connection_information: true,
        }
    }
}

/// The message a stream fills (Packetbeat's `amqpMessage`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// When the stream that carries it started.
    pub ts: Ts,
    /// `queue.declare`, …; empty until a method names itself.
    pub method: &'static str,
    pub is_request: bool,
    /// What follows the method in `request` (`queue.declare hello`).
    pub request: String,
    /// The `amqp.*` fields; `None` until a method sets them.
    pub fields: Option<Map<String, Value>>,
    pub body: Vec<u8>,
    /// A method's argument bytes, or the body size a content header declared.
    pub body_size: u64,
    pub notes: Vec<String>,
}

/// Why reading stopped short of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// Broken or unsupported input: the direction's stream is dropped.
    Drop(&'static str),
    /// Packetbeat would index past the end of the frame: its recovered panic drops the
    /// parser state of both directions.
    Panic,
}

impl From<TableError> for Fail {
    fn from(e: TableError) -> Fail {
        match e {
            TableError::Invalid => Fail::Drop("invalid field table"),
            TableError::Panic => Fail::Panic,
        }
    }
}

/// What one step of a stream gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More bytes are needed.
    Wait,
    /// The stream's message is complete.
    Complete,
    /// The stream ends without an error (bytes used up, a leading heartbeat, a method left
    /// out by configuration): the next segment starts a new one.
    Reset,
    Fail(Fail),
}

/// One direction's bytes and the message they fill (Packetbeat's `amqpStream`).
#[derive(Debug, Clone, Default)]
pub struct Stream {
    data: Vec<u8>,
    offset: usize,
    /// Bytes used and let go of; Packetbeat keeps them, and they count toward its stream cap.
    released: usize,
    pub msg: Message,
}

impl Stream {
    pub fn new(ts: Ts) -> Stream {
        Stream {
            msg: Message {
                ts,
                ..Message::default()
            },
            ..Stream::default()
        }
    }

    /// Appends a segment's payload.
    pub fn append(&mut self, bytes: &[u8]) {
        if self.offset > 0 && (self.offset == self.data.len() || self.offset >= 4096) {
            self.data.drain(..self.offset);
            self.released += self.offset;
            self.offset = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    /// Every byte the stream has seen (what Packetbeat's cap applies to).
    pub fn total_len(&self) -> usize {
        self.released + self.data.len()
    }

    /// Reads frames until the message completes or the bytes run out
    /// (`amqpMessageParser`).
    pub fn step(&mut self, cfg: &ParserConfig) -> Step {
        // Packetbeat's `ok` starts false for every call: a heartbeat read first ends the
        // stream.
        let mut ok = false;
        if self.offset >= self.data.len() {
            return Step::Reset;
        }
        while self.offset < self.data.len() {
            let rest = &self.data[self.offset..];
            if rest.len() < 8 {
                return Step::Wait;
            }
            if &rest[..4] == b"AMQP" && rest[4] == 0 {
                // The protocol header a client opens with.
                self.offset += 8;
            }
            let (kind, size, content) = match read_frame(&self.data[self.offset..]) {
                FrameRead::Incomplete => return Step::Wait,
                FrameRead::Bad => return Step::Fail(Fail::Drop("missing frame end octet")),
                FrameRead::Frame {
                    kind,
                    size,
                    content,
                } => (kind, size, content),
            };
            let result = match kind {
                METHOD_FRAME => {
                    self.msg.body.clear();
                    decode_method_frame(&mut self.msg, content, cfg)
                }
                HEADER_FRAME => decode_header_frame(&mut self.msg, content, cfg).map(|_| false),
                BODY_FRAME => {
                    self.msg.body.extend_from_slice(content);
                    Ok(self.msg.body.len() as u64 >= self.msg.body_size)
                }
                HEARTBEAT_FRAME => {
                    self.offset += 8 + size;
                    if !ok {
                        return Step::Reset;
                    }
                    continue;
                }
                _ => return Step::Fail(Fail::Drop("unknown frame type")),
            };
            self.offset += 8 + size;
            match result {
                Ok(true) => return Step::Complete,
                Ok(false) => ok = true,
                Err(Fail::Drop("")) => return Step::Reset,
                Err(f) => return Step::Fail(f),
            }
        }
        if ok {
            Step::Wait
        } else {
            Step::Reset
        }
    }
}

enum FrameRead<'a> {
    Incomplete,
    Bad,
    Frame {
        kind: u8,
        size: usize,
        content: &'a [u8],
    },
}

/// A frame header and its content (`readFrameHeader`): 1 byte type, 2 bytes channel (not
/// used), 4 bytes size, the content, the frame-end octet.
fn read_frame(data: &[u8]) -> FrameRead<'_> {
    if data.len() < 8 {
        return FrameRead::Incomplete;
    }
    let size = u32::from_be_bytes([data[3], data[4], data[5], data[6]]) as usize;
    let Some(end) = size.checked_add(7) else {
        return FrameRead::Incomplete;
    };
    match data.get(end) {
        None => FrameRead::Incomplete,
        Some(&FRAME_END) => FrameRead::Frame {
            kind: data[0],
            size,
            content: &data[7..end],
        },
        Some(_) => FrameRead::Bad,
    }
}

/// Class and method ids.
mod ids {
    pub const CONNECTION: u16 = 10;
    pub const CHANNEL: u16 = 20;
    pub const EXCHANGE: u16 = 40;
    pub const QUEUE: u16 = 50;
    pub const BASIC: u16 = 60;
    pub const CONFIRM: u16 = 85;
    pub const TX: u16 = 90;
}

/// Arguments read at Packetbeat's offsets: an index past the end is its panic.
struct Args<'a>(&'a [u8]);

impl Args<'_> {
    fn u8(&self, at: usize) -> Result<u8, Fail> {
        self.0.get(at).copied().ok_or(Fail::Panic)
    }
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], Fail> {
        let s = self
            .0
            .get(at..at.checked_add(N).ok_or(Fail::Panic)?)
            .ok_or(Fail::Panic)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u16(&self, at: usize) -> Result<u16, Fail> {
        self.bytes(at).map(u16::from_be_bytes)
    }
    fn u32(&self, at: usize) -> Result<u32, Fail> {
        self.bytes(at).map(u32::from_be_bytes)
    }
    fn u64(&self, at: usize) -> Result<u64, Fail> {
        self.bytes(at).map(u64::from_be_bytes)
    }
    /// A short string whose length byte is at `at`: the string and where the next argument
    /// starts.
    fn short(&self, at: usize, what: &'static str) -> Result<(String, usize), Fail> {
        let len = self.u8(at)? as usize;
        short_string(self.0, at + 1, len).ok_or(Fail::Drop(what))
    }
    /// A long string whose 4-byte length is at `at`.
    fn long(&self, at: usize, what: &'static str) -> Result<(String, usize), Fail> {
        let len = self.u32(at)? as usize;
        short_string(self.0, at + 4, len).ok_or(Fail::Drop(what))
    }
}

/// Packetbeat's `getBitParams`: the five low bits of a flags octet.
fn bits(b: u8) -> [bool; 5] {
    [b & 1 != 0, b & 2 != 0, b & 4 != 0, b & 8 != 0, b & 16 != 0]
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The `arguments` table that ends declare, bind and consume methods, when it is there and
/// `parse_arguments` is on. The octet at `at + 1` is compared with the frame end first, as
/// Packetbeat does (so reading it may fail even with `parse_arguments` off).
fn arguments(m: &mut Message, args: &Args, at: usize, cfg: &ParserConfig) -> Result<(), Fail> {
    if args.u8(at + 1)? == FRAME_END || !cfg.parse_arguments {
        return Ok(());
    }
    match get_table(args.0, at + 1) {
        Ok((_, Some(table))) => {
            if let Some(f) = m.fields.as_mut() {
                f.insert("arguments".into(), Value::Object(table));
            }
        }
        Ok((_, None)) => {}
        Err(TableError::Invalid) => m.notes.push("Failed to parse additional arguments".into()),
        Err(TableError::Panic) => return Err(Fail::Panic),
    }
    Ok(())
}

/// Whether a method is one `hide_connection_information` leaves out (Packetbeat does not know
/// them then: the stream ends there).
fn hidden(class: u16, method: u16) -> bool {
    matches!(
        (class, method),
        (ids::CONNECTION, 10 | 11 | 30 | 31 | 40 | 41)
            | (ids::CHANNEL, 10 | 11 | 20 | 21)
            | (ids::BASIC, 10 | 11)
    )
}

/// A method frame (`decodeMethodFrame`): `Ok(complete)`. `Fail::Drop("")` asks for a quiet
/// end of the stream.
fn decode_method_frame(m: &mut Message, buf: &[u8], cfg: &ParserConfig) -> Result<bool, Fail> {
    if buf.len() < 4 {
        // Packetbeat reads on to the next frame.
        return Ok(false);
    }
    let class = u16::from_be_bytes([buf[0], buf[1]]);
    let method = u16::from_be_bytes([buf[2], buf[3]]);
    m.body_size = (buf.len() - 4) as u64;
    if cfg.hide_connection_information && hidden(class, method) {
        return Err(Fail::Drop(""));
    }
    decode_method(m, class, method, &Args(&buf[4..]), cfg)
}

fn close_info(m: &mut Message, a: &Args) -> Result<(), Fail> {
    let code = a.u16(0)?;
    m.is_request = true;
    let (text, next) = a.short(2, "failed to get error reply text")?;
    m.fields = Some(map([
        ("reply-code", code.into()),
        ("reply-text", text.into()),
        ("class-id", a.u16(next)?.into()),
        ("method-id", a.u16(next + 2)?.into()),
    ]));
    Ok(())
}

fn exchange_bind_unbind(m: &mut Message, a: &Args, cfg: &ParserConfig) -> Result<(), Fail> {
    let (destination, o) = a.short(2, "failed to get exchange bind destination")?;
    let (source, o) = a.short(o, "failed to get exchange bind source")?;
    let (routing_key, o) = a.short(o, "failed to get exchange bind routing key")?;
    m.is_request = true;
    let p = bits(a.u8(o)?);
    m.request = format!("{source} {destination}");
    m.fields = Some(map([
        ("destination", destination.into()),
        ("source", source.into()),
        ("routing-key", routing_key.into()),
        ("no-wait", p[0].into()),
    ]));
    arguments(m, a, o, cfg)
}

/// The arguments of one method, as Packetbeat's method table reads them.
fn decode_method(
    m: &mut Message,
    class: u16,
    method: u16,
    a: &Args,
    cfg: &ParserConfig,
) -> Result<bool, Fail> {
    use ids::*;
    match (class, method) {
        (CONNECTION, 10) => {
            let (major, minor) = (a.u8(0)?, a.u8(1)?);
            let (next, props) = get_table(a.0, 2)?;
            let (mechanisms, next) = a.long(next, "failed to get connection mechanisms")?;
            let (locales, _) = a.long(next, "failed to get connection locales")?;
            m.method = "connection.start";
            m.is_request = true;
            let mut f = map([
                ("version-major", major.into()),
                ("version-minor", minor.into()),
                ("mechanisms", mechanisms.into()),
                ("locales", locales.into()),
            ]);
            if let Some(p) = props {
                f.insert("server-properties".into(), Value::Object(p));
            }
            m.fields = Some(f);
        }
        (CONNECTION, 11) => {
            let (next, props) = get_table(a.0, 0)?;
            let (mechanism, next) = a.short(next, "failed to get connection mechanism")?;
            let (_, next) = a.long(next, "failed to get connection response")?;
            let (locale, _) = a.short(next, "failed to get connection locale")?;
            m.is_request = false;
            let mut f = map([("mechanism", mechanism.into()), ("locale", locale.into())]);
            if let Some(p) = props {
                f.insert("client-properties".into(), Value::Object(p));
            }
            m.fields = Some(f);
        }
        (CONNECTION, 30) => {
            // Negotiated by tune-ok: its values are the ones reported.
            m.is_request = true;
            m.method = "connection.tune";
        }
        (CONNECTION, 31) => {
            m.fields = Some(map([
                ("channel-max", a.u16(0)?.into()),
                ("frame-max", a.u32(2)?.into()),
                ("heartbeat", a.u16(6)?.into()),
            ]));
        }
        (CONNECTION, 40) => {
            m.is_request = true;
            m.method = "connection.open";
            let (host, _) = a.short(0, "failed to get virtual host")?;
            m.fields = Some(map([("virtual-host", host.into())]));
        }
        (CONNECTION, 50) => {
            close_info(m, a)?;
            m.method = "connection.close";
            m.is_request = true;
        }
        (CHANNEL, 10) => {
            m.method = "channel.open";
            m.is_request = true;
        }
        (CHANNEL, 20) => {
            m.method = "channel.flow";
            m.is_request = true;
        }
        (CHANNEL, 21) => {
            m.fields = Some(map([("active", bits(a.u8(0)?)[0].into())]));
        }
        (CHANNEL, 40) => {
            m.method = "channel.close";
            m.is_request = true;
            close_info(m, a)?;
        }
        (EXCHANGE, 10) => {
            let (exchange, o) = a.short(2, "failed to get exchange name")?;
            let (kind, o) = a.short(o, "failed to get exchange type")?;
            let p = bits(a.u8(o)?);
            m.method = "exchange.declare";
            m.is_request = true;
            m.request = exchange.clone();
            let kind = if kind.is_empty() {
                "direct".into()
            } else {
                kind
            };
            m.fields = Some(map([
                ("exchange", exchange.into()),
                ("exchange-type", kind.into()),
                ("passive", p[0].into()),
                ("durable", p[1].into()),
                ("no-wait", p[4].into()),
            ]));
            arguments(m, a, o, cfg)?;
        }
        (EXCHANGE, 20) => {
            let (exchange, o) = a.short(2, "failed to get exchange name")?;
            m.method = "exchange.delete";
            m.is_request = true;
            let p = bits(a.u8(o)?);
            m.request = exchange.clone();
            m.fields = Some(map([
                ("exchange", exchange.into()),
                ("if-unused", p[0].into()),
                ("no-wait", p[1].into()),
            ]));
        }
        (EXCHANGE, 30) => {
            m.method = "exchange.bind";
            exchange_bind_unbind(m, a, cfg)?;
        }
        (EXCHANGE, 40) => {
            m.method = "exchange.unbind";
            exchange_bind_unbind(m, a, cfg)?;
        }
        (QUEUE, 10) => {
            let (name, o) = a.short(2, "failed to get queue name")?;
            m.is_request = true;
            m.method = "queue.declare";
            let p = bits(a.u8(o)?);
            m.request = name.clone();
            m.fields = Some(map([
                ("queue", name.into()),
                ("passive", p[0].into()),
                ("durable", p[1].into()),
                ("exclusive", p[2].into()),
                ("auto-delete", p[3].into()),
                ("no-wait", p[4].into()),
            ]));
            arguments(m, a, o, cfg)?;
        }
        (QUEUE, 11) => {
            let (name, o) = a.short(0, "failed to get queue name")?;
            m.method = "queue.declare-ok";
            m.fields = Some(map([
                ("queue", name.into()),
                ("consumer-count", a.u32(o + 4)?.into()),
                ("message-count", a.u32(o)?.into()),
            ]));
        }
        (QUEUE, 20) | (QUEUE, 50) => {
            let bind = method == 20;
            let (queue, o) = a.short(2, "failed to get queue name")?;
            let (exchange, o) = a.short(o, "failed to get exchange name")?;
            let (routing_key, o) = a.short(o, "failed to get routing key")?;
            let mut f = map([
                ("queue", queue.clone().into()),
                ("routing-key", routing_key.into()),
            ]);
            if bind {
                f.insert("no-wait".into(), bits(a.u8(o)?)[0].into());
            }
            m.is_request = true;
            m.method = if bind { "queue.bind" } else { "queue.unbind" };
            m.request = format!("{queue} {exchange}");
            if !exchange.is_empty() {
                f.insert("exchange".into(), exchange.into());
            }
            m.fields = Some(f);
            arguments(m, a, o, cfg)?;
        }
        (QUEUE, 30) | (QUEUE, 40) => {
            let (queue, o) = a.short(2, "failed to get queue name")?;
            m.is_request = true;
            let p = bits(a.u8(o)?);
            m.request = queue.clone();
            if method == 30 {
                m.method = "queue.purge";
                m.fields = Some(map([("queue", queue.into()), ("no-wait", p[0].into())]));
            } else {
                m.method = "queue.delete";
                m.fields = Some(map([
                    ("queue", queue.into()),
                    ("if-unused", p[0].into()),
                    ("if-empty", p[1].into()),
                    ("no-wait", p[2].into()),
                ]));
            }
        }
        (QUEUE, 31) | (QUEUE, 41) => {
            m.method = if method == 31 {
                "queue.purge-ok"
            } else {
                "queue.delete-ok"
            };
            m.fields = Some(map([("message-count", a.u32(0)?.into())]));
        }
        (BASIC, 10) => {
            let (size, count, p) = (a.u32(0)?, a.u16(4)?, bits(a.u8(6)?));
            m.is_request = true;
            m.method = "basic.qos";
            m.fields = Some(map([
                ("prefetch-size", size.into()),
                ("prefetch-count", count.into()),
                ("global", p[0].into()),
            ]));
        }
        (BASIC, 20) => {
            let (queue, o) = a.short(2, "failed to get queue name")?;
            let (tag, o) = a.short(o, "failed to get consumer tag")?;
            let p = bits(a.u8(o)?);
            m.method = "basic.consume";
            m.is_request = true;
            m.request = queue.clone();
            m.fields = Some(map([
                ("queue", queue.into()),
                ("consumer-tag", tag.into()),
                ("no-local", p[0].into()),
                ("no-ack", p[1].into()),
                ("exclusive", p[2].into()),
                ("no-wait", p[3].into()),
            ]));
            arguments(m, a, o, cfg)?;
        }
        (BASIC, 21) | (BASIC, 31) => {
            let (tag, _) = a.short(0, "failed to get consumer tag")?;
            m.method = if method == 21 {
                "basic.consume-ok"
            } else {
                "basic.cancel-ok"
            };
            m.fields = Some(map([("consumer-tag", tag.into())]));
        }
        (BASIC, 30) => {
            let (tag, o) = a.short(0, "failed to get consumer tag")?;
            m.method = "basic.cancel";
            m.is_request = true;
            m.request = tag.clone();
            let p = bits(a.u8(o)?);
            m.fields = Some(map([
                ("consumer-tag", tag.into()),
                ("no-wait", p[0].into()),
            ]));
        }
        (BASIC, 40) => {
            let (exchange, o) = a.short(2, "failed to get exchange")?;
            let (routing_key, o) = a.short(o, "failed to get routing key")?;
            let p = bits(a.u8(o)?);
            m.method = "basic.publish";
            let mut f = map([
                ("routing-key", routing_key.into()),
                ("mandatory", p[0].into()),
                ("immediate", p[1].into()),
            ]);
            if !exchange.is_empty() {
                f.insert("exchange".into(), exchange.into());
            }
            m.fields = Some(f);
            return Ok(false);
        }
        (BASIC, 50) => {
            let code = a.u16(0)?;
            if code < 300 {
                // Not an error: Packetbeat leaves the message as it was.
                return Ok(false);
            }
            let (text, o) = a.short(2, "failed to get reply text")?;
            let (exchange, o) = a.short(o, "failed to get exchange")?;
            let (routing_key, _) = a.short(o, "failed to get routing key")?;
            m.method = "basic.return";
            m.fields = Some(map([
                ("exchange", exchange.into()),
                ("routing-key", routing_key.into()),
                ("reply-code", code.into()),
                ("reply-text", text.into()),
            ]));
            return Ok(false);
        }
        (BASIC, 60) => {
            let (tag, o) = a.short(0, "failed to get consumer tag")?;
            let delivery_tag = a.u64(o)?;
            let p = bits(a.u8(o + 8)?);
            let (exchange, o) = a.short(o + 9, "failed to get exchange")?;
            let (routing_key, _) = a.short(o, "failed to get routing key")?;
            m.method = "basic.deliver";
            let mut f = map([
                ("consumer-tag", tag.into()),
                ("delivery-tag", delivery_tag.into()),
                ("redelivered", p[0].into()),
                ("routing-key", routing_key.into()),
            ]);
            if !exchange.is_empty() {
                f.insert("exchange".into(), exchange.into());
            }
            m.fields = Some(f);
            return Ok(false);
        }
        (BASIC, 70) => {
            let (queue, o) = a.short(2, "failed to get queue")?;
            m.method = "basic.get";
            let p = bits(a.u8(o)?);
            m.is_request = true;
            m.request = queue.clone();
            m.fields = Some(map([("queue", queue.into()), ("no-ack", p[0].into())]));
        }
        (BASIC, 71) => {
            let p = bits(a.u8(8)?);
            let (exchange, o) = a.short(9, "failed to get exchange")?;
            let (routing_key, o) = a.short(o, "failed to get routing key")?;
            m.method = "basic.get-ok";
            let mut f = map([
                ("delivery-tag", a.u64(0)?.into()),
                ("redelivered", p[0].into()),
                ("routing-key", routing_key.into()),
                ("message-count", a.u32(o)?.into()),
            ]);
            if !exchange.is_empty() {
                f.insert("exchange".into(), exchange.into());
            }
            m.fields = Some(f);
            return Ok(false);
        }
        (BASIC, 72) => m.method = "basic.get-empty",
        (BASIC, 80) | (BASIC, 90) | (BASIC, 120) => {
            let p = bits(a.u8(8)?);
            let tag = a.u64(0)?;
            m.is_request = true;
            let mut f = map([("delivery-tag", tag.into()), ("multiple", p[0].into())]);
            match method {
                80 => m.method = "basic.ack",
                90 => {
                    m.method = "basic.reject";
                    m.request = tag.to_string();
                }
                _ => {
                    m.method = "basic.nack";
                    f.insert("requeue".into(), p[1].into());
                }
            }
            m.fields = Some(f);
        }
        (BASIC, 110) => {
            let p = bits(a.u8(0)?);
            m.is_request = true;
            m.method = "basic.recover";
            m.fields = Some(map([("requeue", p[0].into())]));
        }
        (TX, 10) | (TX, 20) | (TX, 30) => {
            m.is_request = true;
            m.method = match method {
                10 => "tx.select",
                20 => "tx.commit",
                _ => "tx.rollback",
            };
        }
        // The answers that carry nothing Packetbeat reports.
        (CONNECTION, 41 | 51)
        | (CHANNEL, 11 | 41)
        | (EXCHANGE, 11 | 21 | 31 | 51)
        | (QUEUE, 21 | 51)
        | (BASIC, 11 | 111)
        | (TX, 11 | 21 | 31) => {}
        // Packetbeat has no entry for the confirm class: the stream ends there.
        (CONFIRM, _) => return Err(Fail::Drop("")),
        _ => return Err(Fail::Drop("unknown or not supported method")),
    }
    Ok(true)
}

/// A content header frame (`decodeHeaderFrame`): class, weight, body size, properties.
fn decode_header_frame(m: &mut Message, buf: &[u8], cfg: &ParserConfig) -> Result<(), Fail> {
    if buf.len() < 14 {
        return Ok(());
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&buf[4..12]);
    m.body_size = u64::from_be_bytes(size);
    if cfg.parse_headers {
        properties(m, &Args(&buf[12..]))?;
    }
    Ok(())
}

/// Sets a property in the message's fields: Packetbeat's assignment to a message that no
/// method has given fields yet is its (recovered) panic.
fn set(m: &mut Message, key: &str, v: Value) -> Result<(), Fail> {
    m.fields
        .as_mut()
        .ok_or(Fail::Panic)?
        .insert(key.to_string(), v);
    Ok(())
}

/// The properties of a content header (`getMessageProperties`), in their flag order.
fn properties(m: &mut Message, d: &Args) -> Result<(), Fail> {
    let (p1, p2) = (d.u8(0)?, d.u8(1)?);
    let mut o = 2usize;
    // More flag words follow while the last one's low bit is set.
    let mut last = 1usize;
    while d.u8(last)? & 1 == 1 {
        last += 2;
        o += 2;
    }
    let drop = Fail::Drop("failed to read a content header property");
    let short = |m: &mut Message, o: &mut usize, key: &str| -> Result<(), Fail> {
        let (s, next) = d.short(*o, "").map_err(|e| match e {
            Fail::Drop(_) => drop,
            f => f,
        })?;
        set(m, key, s.into())?;
        *o = next;
        Ok(())
    };
    if p1 & 0x80 != 0 {
        short(m, &mut o, "content-type")?;
    }
    if p1 & 0x40 != 0 {
        short(m, &mut o, "content-encoding")?;
    }
    if p1 & 0x20 != 0 {
        match get_table(d.0, o) {
            Ok((next, table)) => {
                if let Some(t) = table {
                    set(m, "headers", Value::Object(t))?;
                }
                o = next;
            }
            Err(TableError::Invalid) => return Err(drop),
            Err(TableError::Panic) => return Err(Fail::Panic),
        }
    }
    if p1 & 0x10 != 0 {
        match d.u8(o)? {
            1 => set(m, "delivery-mode", "non-persistent".into())?,
            2 => set(m, "delivery-mode", "persistent".into())?,
            _ => {}
        }
        o += 1;
    }
    if p1 & 0x08 != 0 {
        set(m, "priority", d.u8(o)?.into())?;
        o += 1;
    }
    if p1 & 0x04 != 0 {
        short(m, &mut o, "correlation-id")?;
    }
    if p1 & 0x02 != 0 {
        short(m, &mut o, "reply-to")?;
    }
    if p1 & 0x01 != 0 {
        short(m, &mut o, "expiration")?;
    }
    if p2 & 0x80 != 0 {
        short(m, &mut o, "message-id")?;
    }
    if p2 & 0x40 != 0 {
        let secs = d.u64(o)? as i64;
        set(m, "timestamp", format_timestamp(secs).into())?;
        o += 8;
    }
    if p2 & 0x20 != 0 {
        short(m, &mut o, "type")?;
    }
    if p2 & 0x10 != 0 {
        short(m, &mut o, "user-id")?;
    }
    if p2 & 0x08 != 0 {
        short(m, &mut o, "app-id")?;
    }
    Ok(())
}
