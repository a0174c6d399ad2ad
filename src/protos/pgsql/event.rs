//! The PostgreSQL transaction event (`publishTransaction` and `receivedPgsqlResponse` in
//! Packetbeat's `pgsql.go`): the only place its fields are written.

use super::Pgsql;
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::protos::app::csv;
use crate::publish::json::ObjectWriter;
use crate::publish::Event;
use std::sync::Arc;

/// A statement the client had the server run: one of a Query's statements, or an Execute.
#[derive(Debug, Clone)]
pub struct Request {
    /// The packet that carried the request's first byte.
    pub ts: Ts,
    pub tuple: IpPortTuple,
    /// Bytes on the wire (`source.bytes`): a Query's whole message for each of its statements,
    /// as Packetbeat counts them; an Execute's batch from its first message up to the Sync.
    pub bytes: u64,
    /// The statement's text; `None` when it ran a prepared statement this capture did not see
    /// prepared.
    pub query: Option<Arc<str>>,
    /// Whether its transaction is published (Packetbeat ignores `SET ` statements run through
    /// the extended protocol, which drivers send on connecting).
    pub publish: bool,
    /// The result format codes of its Bind (binary columns without a RowDescription).
    pub result_formats: Arc<[u8]>,
}

/// The server's error, as Packetbeat reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// A response, from its first message to the one that ends it (CommandComplete,
/// EmptyQueryResponse, ErrorResponse, PortalSuspended).
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The packet that carried the response's first byte.
    pub ts: Ts,
    /// Bytes on the wire (`destination.bytes`); a RowDescription starts the count afresh, as
    /// in Packetbeat, so an extended-protocol response counts from its RowDescription.
    pub bytes: u64,
    /// Column names of the RowDescription.
    pub fields: Vec<Vec<u8>>,
    pub num_fields: usize,
    /// The first `max_rows` rows, each cut to `max_row_length` bytes.
    pub rows: Vec<Vec<Vec<u8>>>,
    pub num_rows: u64,
    pub error: Option<ErrorInfo>,
    pub notes: Vec<String>,
}

/// The event of a request and its response.
pub fn transaction_event(cfg: &Pgsql, req: &Request, resp: &Response) -> Event {
    let t = &req.tuple;
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "pgsql",
        transport: Transport::Tcp,
        ts: req.ts,
        client: (t.src_ip, t.src_port),
        server: (t.dst_ip, t.dst_port),
        request_bytes: req.bytes,
        response_bytes: resp.bytes,
        start: Some(req.ts),
        end: Some(resp.ts),
        notes: &resp.notes,
    });
    let query = req.query.as_deref().unwrap_or_default();
    let f = &mut ev.fields;
    f.put_str("type", "pgsql");
    f.put_str("query", query);
    f.put_str("method", &super::query::method(query));
    f.put_with("pgsql", |o| {
        let mut w = ObjectWriter::new(o);
        if let Some(e) = &resp.error {
            w.str("error_code", &e.code);
            w.str("error_message", &e.message);
            w.str("error_severity", &e.severity);
        }
        w.u64("num_fields", resp.num_fields as u64);
        w.u64("num_rows", resp.num_rows);
        w.end();
    });
    f.put_str("status", if resp.error.is_some() { "Error" } else { "OK" });
    if cfg.send_request {
        f.put_str("request", query);
    }
    if cfg.send_response {
        f.put_bytes("response", &csv::dump(&resp.fields, &resp.rows));
    }
    ev
}
