//! The PostgreSQL analyzer (Packetbeat's `protos/pgsql`).
//!
//! - [`parser`]: the wire messages of each side; [`values`]: column values as text;
//!   [`query`]: a Query's statements and a statement's method;
//! - [`event`]: the published event;
//! - this file: the connection, and pairing.
//!
//! What Packetbeat does, and so this analyzer does: one event per statement the server ran
//! and answered, with the statement (`query`, and `request` with `send_request`), its first
//! word upper-cased (`method`), `status` `OK` or `Error`, `pgsql.num_rows` and
//! `pgsql.num_fields` of the result, the server's `pgsql.error_severity`, `error_code` and
//! `error_message`, and with `send_response` the result as CSV (column names, then the first
//! `max_rows` rows, each cut to `max_row_length` bytes). A simple Query with several
//! statements is one request per statement, answered in order. An extended-protocol batch
//! (Parse, Bind, Describe, Execute … Sync) is a request with the Parse's statement; its
//! response counts its bytes from the RowDescription on. Statements run through the extended
//! protocol that start with `SET ` are not published. The startup, authentication and
//! TLS/GSS negotiation are no transactions. Only answered requests are published: requests
//! left when the connection ends, or `transaction_timeout` after the connection's last request
//! or response, are counted as unmatched; responses with no request are counted and dropped.
//! A message that does not parse drops that direction's buffered bytes (parsing restarts with
//! the next segment). A gap drops the connection's state; a response with rows already read
//! is first published with "Packet loss while capturing the response".
//!
//! Where Packetbeat goes wrong, this analyzer does not (its captures do not show any of it):
//! - Pairing follows the protocol's own sync points: every Query, Sync and FunctionCall is
//!   answered by one ReadyForQuery, so requests a failed Query or batch never ran (the
//!   statements after an error) are dropped there instead of being paired with the next
//!   responses, and a response is never paired with a request of another cycle.
//! - A Query is split at the semicolons between statements only ([`query`]), not inside
//!   string literals or comments; the method is the leading keyword after comments.
//! - Each Execute of a batch is a transaction, with the statement bound to its portal: named
//!   prepared statements (Packetbeat reads a named Parse's text from its second byte of name),
//!   Binds of earlier prepared statements (Packetbeat sees no request), pipelined batches and
//!   responses with NoData, ParameterDescription, notices or an error after ParseComplete
//!   (each of which makes Packetbeat drop the stream) are read.
//! - Binary-format values are decoded ([`values`]) instead of failing the row's parse.
//! - The one-byte answer to an SSLRequest (or GSSENCRequest) is expected as soon as the
//!   request is in; an accepted one (`S`, `G`) or a client starting TLS directly ends the
//!   analysis of the connection, which is encrypted from then on. A request's time is the
//!   time of its first byte (Packetbeat gives the first query after a startup packet the
//!   startup's time).
//! - A message longer than the 10 MiB stream cap is skipped as it arrives instead of dropping
//!   the stream (Packetbeat buffers a whole result, so a result past 10 MiB is lost): a huge
//!   DataRow counts as a row, a huge Bind still runs its statement.

pub mod config;
pub mod event;
pub mod parser;
pub mod query;
pub mod values;

#[cfg(test)]
mod tests;

use crate::common::{IpPortTuple, TcpTuple, Ts};
use crate::protos::app::{
    AppCounters, Parsed, Protocol, SectionError, StreamBuffer, Transports, TCP_MAX_DATA_IN_STREAM,
};
use crate::protos::{CommonOptions, TcpConnectionParser, TcpDirection, TcpPacket};
use crate::publish::EventSink;
use config::PgsqlConfig;
use event::{transaction_event, ErrorInfo, Request, Response};
use parser::{Backend, DataRow, Frontend, Negotiation};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Packetbeat's note for a response cut by a gap (`GapInStream`), word for word.
pub const NOTE_RESPONSE_PACKET_LOSS: &str = "Packet loss while capturing the response";

/// Prepared statements and portals a connection remembers; past this the map starts afresh.
const MAX_NAMED: usize = 1024;
/// Bytes of prepared statement text a connection remembers.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Pgsql {
    pub ports: Vec<u16>,
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
    pub max_rows: usize,
    pub max_row_length: usize,
    /// Messages longer than this are skipped, not buffered (Packetbeat's stream cap).
    pub message_limit: usize,
}

impl Protocol for Pgsql {
    const NAME: &'static str = "pgsql";
    const DEFAULT_PORTS: &'static [u16] = &[5432];
    const TRANSPORTS: Transports<Self> = Transports {
        tcp: Some(|a, _| Box::new(PgsqlConnection::new(a.proto.clone(), a.counters.clone()))),
        ..Transports::NONE
    };
    type Config = PgsqlConfig;

    fn configure(common: &CommonOptions, cfg: PgsqlConfig) -> Result<Self, SectionError> {
        // Go compares the counts as they are: a negative one keeps nothing.
        let count = |v: i64| usize::try_from(v.max(0)).unwrap_or(usize::MAX);
        Ok(Pgsql {
            ports: common.ports.clone(),
            send_request: common.send_request,
            send_response: common.send_response,
            transaction_timeout: common.transaction_timeout,
            max_rows: count(cfg.max_rows),
            max_row_length: count(cfg.max_row_length),
            message_limit: TCP_MAX_DATA_IN_STREAM,
        })
    }
}

/// Where and when a message was seen.
#[derive(Debug, Clone, Copy)]
struct At {
    ts: Ts,
    tuple: IpPortTuple,
    /// Bytes on the wire.
    size: u64,
}

/// A portal: what its Bind bound.
#[derive(Debug, Clone)]
struct Portal {
    query: Option<Arc<str>>,
    result_formats: Arc<[u8]>,
}

/// The requests between two sync points, answered by one ReadyForQuery.
#[derive(Debug, Default)]
struct Cycle {
    requests: VecDeque<Request>,
}

/// The messages of an open batch since its last Execute.
#[derive(Debug, Clone, Copy)]
struct Pending {
    ts: Ts,
    tuple: IpPortTuple,
    bytes: u64,
}

/// One direction's bytes not yet parsed.
#[derive(Default)]
struct Stream {
    buf: StreamBuffer,
    /// Bytes of an oversized message still to come, skipped.
    skip: usize,
    /// The packet of the buffer's first byte.
    ts: Ts,
    tuple: Option<IpPortTuple>,
}

/// What a connection knows beyond its buffers.
struct State {
    cfg: Arc<Pgsql>,
    counters: Arc<AppCounters>,
    /// The direction the client sends in, once known.
    client: Option<TcpDirection>,
    /// TLS or GSS encryption was agreed: nothing more can be read.
    encrypted: bool,
    /// The client asked for TLS or GSS encryption; the server's one-byte answer is due.
    negotiating: Option<Negotiation>,
    statements: HashMap<Vec<u8>, Arc<str>>,
    statement_bytes: usize,
    portals: HashMap<Vec<u8>, Portal>,
    /// Cycles waiting for their ReadyForQuery, oldest first.
    cycles: VecDeque<Cycle>,
    /// Requests in `cycles`.
    waiting: usize,
    /// The newest cycle is an extended-protocol batch still waiting for its Sync.
    batch_open: bool,
    pending: Option<Pending>,
    /// When a request was last queued or answered with more waiting (Packetbeat's cache
    /// entry for the connection expires `transaction_timeout` after that).
    last_put: Ts,
    response: Option<Response>,
    /// The current response's RowDescription: how to read its rows.
    columns: Vec<parser::Field>,
    /// The current response is a COPY FROM STDIN: the client's CopyData is its request's.
    copy_in: bool,
}

/// One PostgreSQL connection.
pub struct PgsqlConnection {
    streams: [Stream; 2],
    state: State,
}

impl PgsqlConnection {
    pub fn new(cfg: Arc<Pgsql>, counters: Arc<AppCounters>) -> PgsqlConnection {
        PgsqlConnection {
            streams: Default::default(),
            state: State {
                cfg,
                counters,
                client: None,
                encrypted: false,
                negotiating: None,
                statements: HashMap::new(),
                statement_bytes: 0,
                portals: HashMap::new(),
                cycles: VecDeque::new(),
                waiting: 0,
                batch_open: false,
                pending: None,
                last_put: Ts::ZERO,
                response: None,
                columns: Vec::new(),
                copy_in: false,
            },
        }
    }
}

/// Whether the first byte of a direction's data says it is the client's: `Some(true)` for
/// what only a client sends, `Some(false)` for what only a server sends.
fn sent_by_client(first: u8) -> Option<bool> {
    match first {
        0 | 0x16 | b'Q' | b'P' | b'B' | b'F' | b'X' | b'p' | b'f' => Some(true),
        b'R' | b'K' | b'Z' | b'T' | b'1' | b'2' | b'3' | b'I' | b'n' | b't' | b's' | b'A'
        | b'N' | b'V' | b'G' | b'W' | b'v' => Some(false),
        _ => None,
    }
}

impl State {
    /// Whether `dir` is the client's direction: the side sending to an analysed port, else
    /// the side whose first message only a client sends, else the connection's first sender.
    fn is_client(&mut self, dir: TcpDirection, tuple: &IpPortTuple, head: &[u8]) -> bool {
        let ports = &self.cfg.ports;
        let client = *self.client.get_or_insert_with(|| {
            let to_server = ports.contains(&tuple.dst_port);
            let from_server = ports.contains(&tuple.src_port);
            let sender_is_client = if to_server != from_server {
                to_server
            } else {
                head.first()
                    .and_then(|&b| sent_by_client(b))
                    .unwrap_or(dir == TcpDirection::Original)
            };
            if sender_is_client {
                dir
            } else {
                dir.other()
            }
        });
        dir == client
    }

    /// Every waiting request is dropped, counted as unmatched.
    fn drop_requests(&mut self) {
        for _ in 0..self.waiting {
            self.counters.unmatched_request();
        }
        self.waiting = 0;
        self.cycles.clear();
        self.batch_open = false;
        self.pending = None;
    }

    /// Packetbeat's per-connection transaction list expires `transaction_timeout` after it
    /// was last stored.
    fn expire(&mut self, now: Ts) {
        let timeout = self.cfg.transaction_timeout.as_nanos() as i64;
        if self.waiting > 0 && now.since(self.last_put) > timeout {
            tracing::debug!("pgsql: transactions expired");
            self.drop_requests();
        }
    }

    /// A message of an extended-protocol batch: opens the batch, counts its bytes.
    fn batch_add(&mut self, at: &At) {
        if !self.batch_open {
            self.cycles.push_back(Cycle::default());
            self.batch_open = true;
        }
        let p = self.pending.get_or_insert(Pending {
            ts: at.ts,
            tuple: at.tuple,
            bytes: 0,
        });
        p.bytes += at.size;
    }

    /// Ends the open batch: what came after its last Execute counts for that Execute.
    fn batch_close(&mut self) {
        if let Some(p) = self.pending.take() {
            if let Some(req) = self.cycles.back_mut().and_then(|c| c.requests.back_mut()) {
                req.bytes += p.bytes;
            }
        }
        self.batch_open = false;
    }

    /// Queues a request in the newest cycle.
    fn push_request(&mut self, req: Request) {
        let Some(c) = self.cycles.back_mut() else {
            return;
        };
        self.last_put = req.ts;
        self.waiting += 1;
        c.requests.push_back(req);
    }

    /// A message the server answers with ReadyForQuery on its own (Query, FunctionCall): it
    /// starts a cycle, or ends the open batch's (the server sends one ReadyForQuery for both).
    fn sync_point(&mut self) {
        if self.batch_open {
            self.batch_close();
        } else {
            self.cycles.push_back(Cycle::default());
        }
    }

    fn remember_statement(&mut self, name: &[u8], query: Option<Arc<str>>) {
        if let Some(old) = self.statements.remove(name) {
            self.statement_bytes -= old.len();
        }
        let Some(query) = query else { return };
        if self.statements.len() >= MAX_NAMED
            || self.statement_bytes + query.len() > MAX_STATEMENT_BYTES
        {
            self.statements.clear();
            self.statement_bytes = 0;
        }
        self.statement_bytes += query.len();
        self.statements.insert(name.to_vec(), query);
    }

    fn remember_portal(&mut self, name: &[u8], portal: Portal) {
        if self.portals.len() >= MAX_NAMED && !self.portals.contains_key(name) {
            self.portals.clear();
        }
        self.portals.insert(name.to_vec(), portal);
    }

    fn on_frontend(&mut self, at: At, msg: Frontend) {
        self.expire(at.ts);
        match msg {
            Frontend::Startup | Frontend::CancelRequest => {}
            Frontend::Negotiate(n) => self.negotiating = Some(n),
            Frontend::Tls => self.encrypted = true,
            Frontend::Query(q) => {
                self.sync_point();
                let request = |query: Arc<str>, publish: bool| Request {
                    ts: at.ts,
                    tuple: at.tuple,
                    bytes: at.size,
                    query: Some(query),
                    publish,
                    result_formats: Arc::from(&[][..]),
                };
                let statements = query::statements(q);
                if statements.is_empty() {
                    // The server answers an empty query with EmptyQueryResponse: it is
                    // consumed, and nothing is published for it, as in Packetbeat.
                    self.push_request(request(Arc::from(""), false));
                }
                for stmt in statements {
                    let text: Arc<str> = String::from_utf8_lossy(stmt).into();
                    self.push_request(request(text, true));
                }
            }
            Frontend::Parse { name, query } => {
                self.batch_add(&at);
                let text: Arc<str> = String::from_utf8_lossy(query).into();
                self.remember_statement(name, Some(text));
            }
            Frontend::Bind {
                portal,
                statement,
                result_formats,
            } => {
                self.batch_add(&at);
                let query = self.statements.get(statement).cloned();
                let result_formats = Arc::from(result_formats);
                self.remember_portal(
                    portal,
                    Portal {
                        query,
                        result_formats,
                    },
                );
            }
            Frontend::Execute { portal } => {
                self.batch_add(&at);
                let p = self.pending.take().unwrap_or(Pending {
                    ts: at.ts,
                    tuple: at.tuple,
                    bytes: at.size,
                });
                let (query, result_formats) = match self.portals.get(portal) {
                    Some(b) => (b.query.clone(), b.result_formats.clone()),
                    None => (None, Arc::from(&[][..])),
                };
                let publish = query.as_deref().is_some_and(|q| !q.starts_with("SET "));
                self.push_request(Request {
                    ts: p.ts,
                    tuple: p.tuple,
                    bytes: p.bytes,
                    query,
                    publish,
                    result_formats,
                });
            }
            Frontend::Sync => {
                self.batch_add(&at);
                self.batch_close();
            }
            Frontend::Close { statement, name } => {
                self.batch_add(&at);
                if statement {
                    self.remember_statement(name, None);
                } else {
                    self.portals.remove(name);
                }
            }
            Frontend::FunctionCall => self.sync_point(),
            Frontend::Copy => {
                if self.copy_in {
                    if let Some(req) = self.cycles.front_mut().and_then(|c| c.requests.front_mut())
                    {
                        req.bytes += at.size;
                    }
                }
            }
            // Describe and Flush belong to a batch; a password message or Terminate does not.
            Frontend::Other(b'D' | b'H') => self.batch_add(&at),
            Frontend::Other(_) => {}
            Frontend::Oversized { typ, head, .. } => {
                tracing::debug!("pgsql: message too large, skipped");
                self.counters.stream_too_large();
                self.on_oversized_frontend(at, typ, head);
            }
        }
    }

    /// A client message past the size limit, of which only `head` (the start of its body) is
    /// known.
    fn on_oversized_frontend(&mut self, at: At, typ: u8, head: &[u8]) {
        let cstring = |b: &[u8]| -> Option<(Vec<u8>, usize)> {
            let n = b.iter().position(|&c| c == 0)?;
            Some((b[..n].to_vec(), n + 1))
        };
        match typ {
            b'Q' => {
                // Its statements are not known: its responses are consumed unpublished.
                self.sync_point();
                self.push_request(Request {
                    ts: at.ts,
                    tuple: at.tuple,
                    bytes: at.size,
                    query: None,
                    publish: false,
                    result_formats: Arc::from(&[][..]),
                });
            }
            b'P' => {
                self.batch_add(&at);
                match cstring(head) {
                    Some((name, _)) => self.remember_statement(&name, None),
                    None => {
                        self.statements.clear();
                        self.statement_bytes = 0;
                    }
                }
            }
            b'B' => {
                // Parameters this large are still a statement run: bind it, formats unknown.
                self.batch_add(&at);
                let names = cstring(head).and_then(|(portal, n)| {
                    let (statement, _) = cstring(&head[n..])?;
                    Some((portal, statement))
                });
                match names {
                    Some((portal, statement)) => {
                        let query = self.statements.get(&statement).cloned();
                        self.remember_portal(
                            &portal,
                            Portal {
                                query,
                                result_formats: Arc::from(&[][..]),
                            },
                        );
                    }
                    None => self.portals.clear(),
                }
            }
            b'd' => self.on_frontend(at, Frontend::Copy),
            _ => {
                if self.batch_open {
                    self.batch_add(&at);
                }
            }
        }
    }

    /// The response under way, started by this message if none is.
    fn response(&mut self, at: &At) -> &mut Response {
        self.response.get_or_insert_with(|| Response {
            ts: at.ts,
            ..Response::default()
        })
    }

    fn on_backend(&mut self, out: &mut EventSink, at: At, msg: Backend) {
        self.expire(at.ts);
        if !matches!(msg, Backend::NegotiationReply(_)) {
            self.negotiating = None;
        }
        match msg {
            Backend::NegotiationReply(b) => {
                self.negotiating = None;
                if b != b'N' {
                    self.encrypted = true;
                }
            }
            Backend::RowDescription(fields) => {
                let r = self.response(&at);
                r.bytes = at.size;
                r.num_fields = fields.len();
                r.fields = fields.iter().map(|f| f.name.clone()).collect();
                self.columns = fields;
            }
            Backend::DataRow(row) => {
                self.response(&at).bytes += at.size;
                self.add_row(row);
            }
            Backend::CommandComplete(_)
            | Backend::EmptyQueryResponse
            | Backend::PortalSuspended => {
                self.response(&at).bytes += at.size;
                self.finish(out, at.ts);
            }
            Backend::ErrorResponse(e) => {
                let r = self.response(&at);
                r.bytes += at.size;
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                r.error = Some(ErrorInfo {
                    severity: text(e.severity),
                    code: text(e.code),
                    message: text(e.message),
                });
                self.finish(out, at.ts);
            }
            Backend::ReadyForQuery => {
                // The cycle is over: what it did not answer was not run.
                self.response = None;
                self.columns.clear();
                self.copy_in = false;
                if let Some(c) = self.cycles.pop_front() {
                    for _ in &c.requests {
                        self.counters.unmatched_request();
                    }
                    self.waiting = self.waiting.saturating_sub(c.requests.len());
                    if self.cycles.is_empty() {
                        self.batch_open = false;
                        self.pending = None;
                    }
                }
            }
            Backend::Step(_) => self.response(&at).bytes += at.size,
            Backend::CopyResponse(typ) => {
                self.response(&at).bytes += at.size;
                self.copy_in = typ == b'G';
            }
            Backend::CopyData | Backend::Async(_) => {
                if let Some(r) = self.response.as_mut() {
                    r.bytes += at.size;
                }
            }
            Backend::Other(_) => {}
            Backend::Oversized { typ, .. } => {
                tracing::debug!("pgsql: message too large, skipped");
                self.counters.stream_too_large();
                if typ == b'D' {
                    let r = self.response(&at);
                    r.bytes += at.size;
                    r.num_rows += 1;
                } else if let Some(r) = self.response.as_mut() {
                    r.bytes += at.size;
                }
            }
        }
    }
}

impl State {
    /// A DataRow of the current response: counted, and kept while fewer than `max_rows` are.
    fn add_row(&mut self, row: DataRow) {
        let max_len = self.cfg.max_row_length;
        let max_rows = self.cfg.max_rows;
        let Some(r) = self.response.as_mut() else {
            return;
        };
        r.num_rows += 1;
        if self.columns.is_empty() && r.num_rows == 1 {
            // No RowDescription (the client did not Describe): the row tells the count.
            r.num_fields = row.count;
        }
        if r.rows.len() >= max_rows {
            return;
        }
        let formats = match self.cycles.front().and_then(|c| c.requests.front()) {
            Some(req) if self.columns.is_empty() => Some(req.result_formats.clone()),
            _ => None,
        };
        let formats: &[u8] = formats.as_deref().unwrap_or_default();
        // Packetbeat's `parseDataRow`: columns in order while the row is shorter than
        // `max_row_length`, the one that reaches it cut; NULL is empty.
        let mut kept = Vec::with_capacity(row.count.min(64));
        let mut row_len = 0;
        for (i, value) in row.columns().enumerate() {
            if row_len >= max_len {
                break;
            }
            let (oid, format) = match self.columns.get(i) {
                Some(f) => (f.type_oid, f.format),
                None => (0, parser::result_format(formats, i)),
            };
            let text = value.map(|v| values::render(oid, format, v));
            let text: &[u8] = text.as_deref().unwrap_or_default();
            let room = max_len - row_len;
            if text.len() > room {
                kept.push(text[..utf8_cut(text, room)].to_vec());
                row_len += room;
            } else {
                kept.push(text.to_vec());
                row_len += text.len();
            }
        }
        r.rows.push(kept);
    }

    /// The current response is complete: it answers the oldest request of the oldest cycle.
    fn finish(&mut self, out: &mut EventSink, ts: Ts) {
        self.columns.clear();
        self.copy_in = false;
        let Some(resp) = self.response.take() else {
            return;
        };
        let Some(req) = self.cycles.front_mut().and_then(|c| c.requests.pop_front()) else {
            tracing::debug!("pgsql: response from unknown transaction, ignoring");
            self.counters.unmatched_response();
            return;
        };
        self.waiting = self.waiting.saturating_sub(1);
        if self.waiting > 0 {
            self.last_put = ts;
        }
        if req.publish {
            out.publish(transaction_event(&self.cfg, &req, &resp));
        } else if req.query.is_none() {
            // A statement whose text this capture did not show: nothing to report.
            self.counters.unmatched_request();
        }
    }
}

/// Where to cut `v` to at most `n` bytes without splitting a UTF-8 sequence (Packetbeat cuts
/// at `n`, and the half character becomes U+FFFD in the event).
fn utf8_cut(v: &[u8], mut n: usize) -> usize {
    let floor = n.saturating_sub(3);
    while n > floor && v.get(n).is_some_and(|&b| b & 0xC0 == 0x80) {
        n -= 1;
    }
    n
}

/// The first message of each side in a segment started in that segment's packet.
struct Segment {
    ts: Ts,
    tuple: IpPortTuple,
}

impl State {
    /// Parses and handles the messages at the start of `data`, the first of which began in
    /// `first`; returns the bytes used and those of an oversized message still to skip.
    fn drain(
        &mut self,
        out: &mut EventSink,
        client: bool,
        data: &[u8],
        mut first: Segment,
        pkt: &Segment,
    ) -> Result<(usize, usize), &'static str> {
        let limit = self.cfg.message_limit;
        let mut used = 0;
        while used < data.len() && !self.encrypted {
            let rest = &data[used..];
            let at = |size: usize| At {
                ts: first.ts,
                tuple: first.tuple,
                size: size as u64,
            };
            let (consumed, total) = if client {
                match parser::parse_frontend(rest, limit) {
                    Parsed::Message { msg, consumed } => {
                        let total = match msg {
                            Frontend::Oversized { total, .. } => total,
                            _ => consumed,
                        };
                        self.on_frontend(at(total), msg);
                        (consumed, total)
                    }
                    Parsed::Skip(n) => (n, n),
                    Parsed::Incomplete => break,
                    Parsed::Error(e) => return Err(e),
                }
            } else {
                match parser::parse_backend(rest, self.negotiating, limit) {
                    Parsed::Message { msg, consumed } => {
                        let total = match msg {
                            Backend::Oversized { total, .. } => total,
                            _ => consumed,
                        };
                        self.on_backend(out, at(total), msg);
                        (consumed, total)
                    }
                    Parsed::Skip(n) => (n, n),
                    Parsed::Incomplete => break,
                    Parsed::Error(e) => return Err(e),
                }
            };
            let consumed = consumed.clamp(1, rest.len());
            used += consumed;
            if total > consumed {
                return Ok((used, total - consumed));
            }
            first = Segment {
                ts: pkt.ts,
                tuple: pkt.tuple,
            };
        }
        Ok((used, 0))
    }

    /// A direction's bytes did not parse: they are dropped. On the server's side the response
    /// under way is lost, and with it the count of ReadyForQuery still to come, so the
    /// waiting requests are dropped too.
    fn parse_error(&mut self, client: bool, why: &str) {
        tracing::debug!("pgsql: {why}, dropping stream");
        self.counters.parse_error();
        if !client {
            self.response = None;
            self.columns.clear();
            self.copy_in = false;
            self.drop_requests();
        }
    }
}

impl TcpConnectionParser for PgsqlConnection {
    fn parse(&mut self, out: &mut EventSink, _conn: &TcpTuple, dir: TcpDirection, pkt: &TcpPacket) {
        let PgsqlConnection { streams, state } = self;
        if state.encrypted {
            return;
        }
        let st = &mut streams[dir.index()];
        let mut payload = pkt.payload;
        if st.skip > 0 {
            let n = st.skip.min(payload.len());
            st.skip -= n;
            payload = &payload[n..];
        }
        if payload.is_empty() {
            return;
        }
        let head = if st.buf.is_empty() {
            payload
        } else {
            st.buf.data()
        };
        let client = state.is_client(dir, &pkt.tuple, head);
        let seg = Segment {
            ts: pkt.ts,
            tuple: pkt.tuple,
        };
        let result = if st.buf.is_empty() {
            let first = Segment {
                ts: pkt.ts,
                tuple: pkt.tuple,
            };
            state
                .drain(out, client, payload, first, &seg)
                .map(|(used, skip)| {
                    st.buf.append(&payload[used..]);
                    st.ts = pkt.ts;
                    st.tuple = Some(pkt.tuple);
                    st.skip = skip;
                })
        } else {
            if st.buf.append_capped(payload).is_err() {
                tracing::debug!("pgsql: stream data too large, dropping TCP stream");
                state.counters.stream_too_large();
                *st = Stream::default();
                return;
            }
            let first = Segment {
                ts: st.ts,
                tuple: st.tuple.unwrap_or(pkt.tuple),
            };
            state
                .drain(out, client, st.buf.data(), first, &seg)
                .map(|(used, skip)| {
                    if used > 0 {
                        st.ts = pkt.ts;
                        st.tuple = Some(pkt.tuple);
                    }
                    st.buf.consume(used);
                    st.skip = skip;
                })
        };
        if let Err(why) = result {
            *st = Stream::default();
            state.parse_error(client, why);
        }
        if state.encrypted {
            *streams = Default::default();
        }
    }

    fn received_fin(
        &mut self,
        _out: &mut EventSink,
        _conn: &TcpTuple,
        _dir: TcpDirection,
        _ts: Ts,
    ) {
        // Packetbeat leaves what is pending to the connection's end.
    }

    fn gap_in_stream(
        &mut self,
        out: &mut EventSink,
        _conn: &TcpTuple,
        dir: TcpDirection,
        _nbytes: usize,
        ts: Ts,
    ) -> bool {
        let state = &mut self.state;
        // Packetbeat publishes a response cut by a gap when it has rows (`GapInStream`).
        let server_side = state.client.is_some_and(|c| c != dir);
        if server_side {
            if let Some(r) = state.response.as_mut().filter(|r| !r.rows.is_empty()) {
                r.notes.push(NOTE_RESPONSE_PACKET_LOSS.to_string());
                state.finish(out, ts);
            }
        }
        // Then the connection's state is dropped.
        state.drop_requests();
        true
    }

    fn expired(&mut self, _out: &mut EventSink, _conn: &TcpTuple, _now: Ts) {
        // Packetbeat publishes no request without its response.
        self.state.drop_requests();
    }
}
