//! The TCP adapter for message-oriented protocols: the analyzer supplies a pure incremental
//! parser and what a complete message does to the connection; the adapter does the buffering,
//! Packetbeat's stream cap, dropping a stream that does not parse, and the FIN, gap and end
//! hooks of [`TcpConnectionParser`].
//!
//! Bytes are parsed straight from the segment while nothing is buffered: only the incomplete
//! tail of a segment is copied, so a stream of whole messages is never copied at all.

use super::{Analyzer, AppCounters, Protocol, StreamBuffer};
use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::protos::{TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;

/// What the parser made of a direction's unconsumed bytes (Suricata's `AppLayerResult`).
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<M> {
    /// A complete message, which used the first `consumed` bytes.
    Message { msg: M, consumed: usize },
    /// The first `n` bytes carry no message to report (padding, a message the analyzer ignores).
    Skip(usize),
    /// More bytes are needed.
    Incomplete,
    /// Not this protocol, or broken: the direction's stream is dropped and the error counted.
    Error(&'static str),
}

/// Where and when a complete message was seen.
#[derive(Debug, Clone, Copy)]
pub struct MessageAt<'a> {
    /// The connection (its first packet's tuple and the stream id).
    pub conn: &'a TcpTuple,
    pub dir: TcpDirection,
    /// The packet that carried the message's first byte.
    pub ts: Ts,
    /// That packet's addresses (source = sender).
    pub tuple: IpPortTuple,
    /// Bytes the message used on the wire.
    pub size: usize,
    /// The analyzer's counters, for the requests and responses pairing leaves unmatched.
    pub counters: &'a AppCounters,
}

/// A message-oriented protocol over TCP. `Stream` is what the parser keeps per direction
/// between calls (often nothing); `Conn` is the connection's state: its pairing.
pub trait MessageProtocol: Protocol {
    type Message;
    type Stream: Default + Send + 'static;
    type Conn: Send + 'static;

    fn new_conn(&self, conn: &TcpTuple) -> Self::Conn;

    /// Parses the next message from the start of `data` (a pure function of its arguments).
    fn parse(
        &self,
        stream: &mut Self::Stream,
        dir: TcpDirection,
        data: &[u8],
    ) -> Parsed<Self::Message>;

    /// A complete message: pair it, publish what it completes.
    fn on_message(
        &self,
        conn: &mut Self::Conn,
        out: &mut EventSink,
        at: &MessageAt,
        msg: Self::Message,
    );

    /// The sender of `dir` closed its side.
    fn on_fin(&self, _conn: &mut Self::Conn, _out: &mut EventSink, _dir: TcpDirection, _ts: Ts) {}

    /// `nbytes` of `dir` were lost. Return `true` to drop the connection's state (the TCP layer
    /// then starts afresh with a new stream id), Packetbeat's answer for most protocols.
    fn on_gap(
        &self,
        _conn: &mut Self::Conn,
        _out: &mut EventSink,
        _dir: TcpDirection,
        _nbytes: usize,
        _ts: Ts,
    ) -> bool {
        true
    }

    /// The connection ended (closed, idle, or the capture's end): report what is pending
    /// (`counters` takes the requests that end unanswered).
    fn on_end(&self, conn: &mut Self::Conn, out: &mut EventSink, now: Ts, counters: &AppCounters);
}

/// One direction: the unconsumed bytes, the parser's state, and when the first of those bytes
/// arrived.
struct Stream<S> {
    buf: StreamBuffer,
    state: S,
    ts: Ts,
    tuple: IpPortTuple,
}

/// A connection of a [`MessageProtocol`] (the framework's [`TcpConnectionParser`]).
pub struct MessageConnection<P: MessageProtocol> {
    analyzer: Analyzer<P>,
    streams: [Option<Stream<P::Stream>>; 2],
    conn: P::Conn,
}

impl<P: MessageProtocol> MessageConnection<P> {
    pub fn new(analyzer: Analyzer<P>, conn: &TcpTuple) -> MessageConnection<P> {
        let state = analyzer.proto.new_conn(conn);
        MessageConnection {
            analyzer,
            streams: [None, None],
            conn: state,
        }
    }

    /// The constructor the protocol puts in its `Transports::tcp`.
    pub fn boxed(analyzer: &Analyzer<P>, conn: &TcpTuple) -> Box<dyn TcpConnectionParser> {
        Box::new(MessageConnection::new(analyzer.clone(), conn))
    }

    /// The connection's state (for tests and for protocols that inspect it).
    pub fn state(&self) -> &P::Conn {
        &self.conn
    }

    /// Parses as many messages from `data` as it holds; returns how many bytes they used, or
    /// `None` when the stream is to be dropped.
    #[allow(clippy::too_many_arguments)]
    fn parse_messages(
        proto: &P,
        counters: &AppCounters,
        state: &mut P::Stream,
        conn_state: &mut P::Conn,
        out: &mut EventSink,
        conn: &TcpTuple,
        dir: TcpDirection,
        mut ts: Ts,
        tuple: IpPortTuple,
        pkt_ts: Ts,
        data: &[u8],
    ) -> Result<usize, &'static str> {
        let mut used = 0;
        while used < data.len() {
            match proto.parse(state, dir, &data[used..]) {
                Parsed::Message { msg, consumed } => {
                    let consumed = consumed.clamp(1, data.len() - used);
                    let at = MessageAt {
                        conn,
                        dir,
                        ts,
                        tuple,
                        size: consumed,
                        counters,
                    };
                    proto.on_message(conn_state, out, &at, msg);
                    used += consumed;
                }
                Parsed::Skip(n) => used += n.clamp(1, data.len() - used),
                Parsed::Incomplete => break,
                Parsed::Error(why) => return Err(why),
            }
            // Whatever follows a message started in the packet at hand.
            ts = pkt_ts;
        }
        Ok(used)
    }
}

impl<P: MessageProtocol> TcpConnectionParser for MessageConnection<P> {
    fn parse(&mut self, out: &mut EventSink, conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        if pkt.payload.is_empty() {
            return;
        }
        let d = dir.index();
        let MessageConnection {
            analyzer,
            streams,
            conn: conn_state,
        } = self;
        let st = streams[d].get_or_insert_with(|| Stream {
            buf: StreamBuffer::default(),
            state: P::Stream::default(),
            ts: pkt.ts,
            tuple: pkt.tuple,
        });
        let proto = &*analyzer.proto;
        let result = if st.buf.is_empty() {
            st.ts = pkt.ts;
            st.tuple = pkt.tuple;
            let r = Self::parse_messages(
                proto,
                &analyzer.counters,
                &mut st.state,
                conn_state,
                out,
                conn,
                dir,
                pkt.ts,
                pkt.tuple,
                pkt.ts,
                pkt.payload,
            );
            r.map(|used| st.buf.append(&pkt.payload[used..]))
        } else {
            if st.buf.append_capped(pkt.payload).is_err() {
                tracing::debug!("{}: stream data too large, dropping TCP stream", P::NAME);
                analyzer.counters.stream_too_large();
                streams[d] = None;
                return;
            }
            let r = Self::parse_messages(
                proto,
                &analyzer.counters,
                &mut st.state,
                conn_state,
                out,
                conn,
                dir,
                st.ts,
                st.tuple,
                pkt.ts,
                st.buf.data(),
            );
            r.map(|used| {
                if used > 0 {
                    st.ts = pkt.ts;
                    st.tuple = pkt.tuple;
                }
                st.buf.consume(used);
            })
        };
        if let Err(why) = result {
            tracing::debug!("{}: {why}, dropping stream", P::NAME);
            analyzer.counters.parse_error();
            streams[d] = None;
        }
    }

    fn received_fin(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, ts: Ts) {
        self.analyzer.proto.on_fin(&mut self.conn, out, dir, ts);
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        dir: TcpDirection,
        nbytes: usize,
        ts: Ts,
    ) -> bool {
        let drop = self
            .analyzer
            .proto
            .on_gap(&mut self.conn, out, dir, nbytes, ts);
        if drop {
            // The pending requests are reported now, as their expiry would report them.
            self.analyzer
                .proto
                .on_end(&mut self.conn, out, ts, &self.analyzer.counters);
        } else {
            self.streams[dir.index()] = None;
        }
        drop
    }

    fn expired(&mut self, out: &mut EventSink, _conn: &TcpTuple, now: Ts) {
        self.analyzer
            .proto
            .on_end(&mut self.conn, out, now, &self.analyzer.counters);
    }
}
