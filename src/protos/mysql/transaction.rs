//! A connection's transaction and prepared statements (`receivedMysqlRequest`,
//! `receivedMysqlResponse` of Packetbeat's `mysql.go`).
//!
//! Packetbeat keeps one transaction per connection: a request opens it (a second request before
//! the response replaces the first, which is counted as unmatched), the response completes and
//! publishes it. A response with no open request is counted and dropped; a request that is
//! never answered is dropped when the transaction expires (`transaction_timeout` after it was
//! last looked at) or the connection ends, and is not published.
//!
//! The answer to `COM_STMT_PREPARE` publishes the prepare (query `Request Prepare Statement`,
//! the statement's text as a note) and remembers the statement for the connection
//! (`statement_timeout` after the statements were last looked at); `COM_STMT_EXECUTE` then
//! reports the statement's text and its parameters, `COM_STMT_CLOSE` forgets it (and, as it
//! gets no answer, is not published). An execute or close of a statement the connection does
//! not know gets query `Request Execute Statement`/`Request Close Statement` and the note
//! "The actual query being used is unknown", but leaves the transaction as it was, so it is
//! published only when it takes over an earlier request that was still open, as in Packetbeat.

use super::event::transaction_event;
use super::params::{parse_execute, Statement};
use super::parser::{Message, CMD_STMT_CLOSE, CMD_STMT_EXECUTE, CMD_STMT_PREPARE};
use super::rows::parse_response;
use super::Mysql;
use crate::common::{IpPortTuple, Ts};
use crate::protos::app::csv;
use crate::protos::app::AppCounters;
use crate::publish::EventSink;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Packetbeat's note for an execute or close of an unknown statement.
pub const NOTE_UNKNOWN_QUERY: &str = "The actual query being used is unknown";
pub const QUERY_EXECUTE_UNKNOWN: &[u8] = b"Request Execute Statement";
pub const QUERY_CLOSE_UNKNOWN: &[u8] = b"Request Close Statement";
pub const QUERY_PREPARE: &[u8] = b"Request Prepare Statement";

/// Statements a connection remembers at most (MySQL's default `max_prepared_stmt_count` for
/// the whole server); more are not remembered.
pub const MAX_STATEMENTS: usize = 16_382;

/// A response's figures (Packetbeat's `mysql` map of the event).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub affected_rows: u64,
    pub insert_id: u64,
    pub num_rows: u64,
    pub num_fields: u64,
    /// Error code and `SQLSTATE: message` of an ERR response.
    pub error: Option<(u16, Vec<u8>)>,
}

/// Packetbeat's `mysqlTransaction`.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// When it was last looked at: it expires `transaction_timeout` later.
    last_access: Ts,
    pub ts: Ts,
    pub end: Ts,
    /// The request's packet addresses: source = client.
    pub tuple: IpPortTuple,
    /// The last request's command.
    pub command: u8,
    pub query: Vec<u8>,
    pub method: String,
    /// `schema.table` of the result set's columns.
    pub path: Vec<u8>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub notes: Vec<String>,
    /// A request set it up (Packetbeat's non-nil `mysql` map): a response may complete it.
    pub request_seen: bool,
    pub outcome: Outcome,
    pub request_raw: Vec<u8>,
    pub response_raw: Vec<u8>,
    pub statement_id: u32,
    pub params: Vec<String>,
}

impl Transaction {
    fn new(now: Ts, tuple: IpPortTuple) -> Transaction {
        Transaction {
            last_access: now,
            ts: now,
            end: now,
            tuple,
            command: 0,
            query: Vec::new(),
            method: String::new(),
            path: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            notes: Vec::new(),
            request_seen: false,
            outcome: Outcome::default(),
            request_raw: Vec::new(),
            response_raw: Vec::new(),
            statement_id: 0,
            params: Vec::new(),
        }
    }
}

/// The connection's prepared statements by id.
#[derive(Debug, Default)]
struct Statements {
    last_access: Ts,
    by_id: FxHashMap<u32, Statement>,
}

/// One connection's pairing state.
pub struct Pairing {
    pub cfg: Arc<Mysql>,
    pub counters: Arc<AppCounters>,
    trans: Option<Transaction>,
    stmts: Option<Statements>,
}

/// `strings.Trim(q, " \r\n\t")`.
fn trim(q: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\r' | b'\n' | b'\t');
    let start = q.iter().position(|c| !is_ws(c)).unwrap_or(q.len());
    let end = q.iter().rposition(|c| !is_ws(c)).map_or(start, |i| i + 1);
    &q[start..end.max(start)]
}

/// The method: the query's first word in upper case (Go's `strings.ToUpper`: one-to-one case
/// mapping, invalid UTF-8 replaced).
fn method_of(query: &[u8]) -> String {
    let word = query
        .iter()
        .position(|c| matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .filter(|&i| i > 0)
        .map_or(query, |i| &query[..i]);
    if word.is_ascii() {
        return String::from_utf8_lossy(word).to_ascii_uppercase();
    }
    String::from_utf8_lossy(word)
        .chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

impl Pairing {
    pub fn new(cfg: Arc<Mysql>, counters: Arc<AppCounters>) -> Pairing {
        Pairing {
            cfg,
            counters,
            trans: None,
            stmts: None,
        }
    }

    /// Whether the open transaction waits for the answer to `COM_STMT_PREPARE`.
    pub fn expects_prepare_ok(&self) -> bool {
        self.trans
            .as_ref()
            .is_some_and(|t| t.request_seen && t.command == CMD_STMT_PREPARE)
    }

    /// The open transaction, unless it expired by `now` (looking at it renews it).
    fn transaction(&mut self, now: Ts) -> Option<&mut Transaction> {
        let timeout = self.cfg.transaction_timeout;
        if self
            .trans
            .as_ref()
            .is_some_and(|t| now > t.last_access.add(timeout))
        {
            self.trans = None;
        }
        let t = self.trans.as_mut()?;
        t.last_access = now;
        Some(t)
    }

    fn statements(stmts: &mut Option<Statements>, timeout: std::time::Duration, now: Ts) {
        if stmts
            .as_ref()
            .is_some_and(|s| now > s.last_access.add(timeout))
        {
            *stmts = None;
        }
        if let Some(s) = stmts.as_mut() {
            s.last_access = now;
        }
    }

    /// A complete request. `raw` is its packet, `ts` when it began, `now` the packet time.
    pub fn request(&mut self, msg: Message, raw: &[u8], ts: Ts, tuple: IpPortTuple, now: Ts) {
        let counters = self.counters.clone();
        if let Some(t) = self.transaction(now) {
            if t.request_seen {
                tracing::debug!("mysql: two requests without a response, dropping the old one");
                counters.unmatched_request();
            }
        } else {
            self.trans = Some(Transaction::new(now, tuple));
        }
        let Pairing {
            cfg, trans, stmts, ..
        } = self;
        let Some(trans) = trans.as_mut() else {
            return;
        };
        trans.ts = ts;
        trans.tuple = tuple;
        trans.command = msg.typ;
        let by_statement = msg.typ == CMD_STMT_EXECUTE || msg.typ == CMD_STMT_CLOSE;
        // Packetbeat keeps the text of every request but these two.
        let text: &[u8] = if by_statement {
            &[]
        } else {
            raw.get(5..).unwrap_or(&[])
        };
        if msg.statement_id != 0 {
            trans.statement_id = msg.statement_id;
            Self::statements(stmts, cfg.statement_timeout, now);
            let known = stmts.as_mut().map(|s| &mut s.by_id);
            let unknown = |trans: &mut Transaction, query: Option<&[u8]>| {
                if let Some(q) = query {
                    trans.query = q.to_vec();
                }
                trans.notes.push(NOTE_UNKNOWN_QUERY.to_string());
                trans.request_raw = text.to_vec();
                trans.bytes_in = msg.size as u64;
            };
            match (msg.typ, known) {
                (CMD_STMT_EXECUTE, Some(by_id)) => match by_id.get_mut(&msg.statement_id) {
                    Some(st) => {
                        trans.query = st.query.clone();
                        trans.params = parse_execute(raw, st);
                    }
                    None => return unknown(trans, Some(QUERY_EXECUTE_UNKNOWN)),
                },
                (CMD_STMT_CLOSE, Some(by_id)) => {
                    by_id.remove(&msg.statement_id);
                    // The close gets no answer: Packetbeat forgets the transaction.
                    self.trans = None;
                    return;
                }
                (CMD_STMT_EXECUTE, None) => return unknown(trans, Some(QUERY_EXECUTE_UNKNOWN)),
                (CMD_STMT_CLOSE, None) => return unknown(trans, Some(QUERY_CLOSE_UNKNOWN)),
                _ => return unknown(trans, None),
            }
        } else {
            trans.query = text.to_vec();
        }
        let query = trim(&trans.query).to_vec();
        trans.method = method_of(&query);
        trans.query = query;
        trans.request_seen = true;
        trans.outcome = Outcome::default();
        trans.notes = msg.notes.iter().map(|n| n.to_string()).collect();
        trans.request_raw = text.to_vec();
        trans.bytes_in = msg.size as u64;
    }

    /// A complete response: publishes the transaction it completes.
    pub fn response(&mut self, out: &mut EventSink, msg: Message, raw: &[u8], ts: Ts, now: Ts) {
        let counters = self.counters.clone();
        match self.transaction(now) {
            Some(t) if t.request_seen => {}
            _ => {
                tracing::debug!("mysql: response from unknown transaction, ignoring");
                counters.unmatched_response();
                return;
            }
        }
        let Pairing {
            cfg, trans, stmts, ..
        } = self;
        let Some(mut t) = trans.take() else {
            return;
        };
        t.outcome = Outcome {
            affected_rows: msg.affected_rows,
            insert_id: msg.insert_id,
            num_rows: msg.number_of_rows,
            num_fields: msg.number_of_fields,
            error: msg
                .is_error
                .then(|| (msg.error_code, msg.error_info.clone())),
        };
        if msg.statement_id != 0 {
            // The prepare's answer: remember the statement, report the prepare.
            Self::statements(stmts, cfg.statement_timeout, now);
            let s = stmts.get_or_insert_with(|| Statements {
                last_access: now,
                by_id: FxHashMap::default(),
            });
            if s.by_id.len() < MAX_STATEMENTS || s.by_id.contains_key(&msg.statement_id) {
                s.by_id
                    .entry(msg.statement_id)
                    .or_insert_with(|| Statement {
                        query: t.query.clone(),
                        num_params: msg.number_of_params as usize,
                        param_types: Vec::new(),
                    });
            }
            t.notes.push(String::from_utf8_lossy(&t.query).into_owned());
            t.query = QUERY_PREPARE.to_vec();
        }
        t.bytes_out = msg.size as u64;
        t.path = msg.tables;
        t.end = ts;
        if cfg.send_response && !raw.is_empty() {
            let (fields, rows) = parse_response(raw, cfg.max_rows, cfg.max_row_length);
            t.response_raw = csv::dump(&fields, &rows);
        }
        t.notes.extend(msg.notes.iter().map(|n| n.to_string()));
        out.publish(transaction_event(cfg, &t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_is_the_first_word_in_upper_case() {
        assert_eq!(method_of(b"select 1"), "SELECT");
        assert_eq!(method_of(b"drop\n table"), "DROP");
        assert_eq!(method_of(b"commit"), "COMMIT");
        assert_eq!(method_of("straße x".as_bytes()), "STRAßE");
        assert_eq!(method_of(b""), "");
        assert_eq!(trim(b" \r\n\tSELECT 1;\t "), b"SELECT 1;");
        assert_eq!(trim(b" \t "), b"");
    }
}
