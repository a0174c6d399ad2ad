//! The MySQL transaction event (`publishTransaction` of Packetbeat's `mysql.go`): the only
//! place its fields are written.

use super::transaction::Transaction;
use super::Mysql;
use crate::common::Transport;
use crate::protos::app;
use crate::publish::Event;

/// A completed transaction: Packetbeat publishes only those.
pub fn transaction_event(cfg: &Mysql, t: &Transaction) -> Event {
    let tu = &t.tuple;
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol: "mysql",
        transport: Transport::Tcp,
        ts: t.ts,
        client: (tu.src_ip, tu.src_port),
        server: (tu.dst_ip, tu.dst_port),
        request_bytes: t.bytes_in,
        response_bytes: t.bytes_out,
        start: Some(t.ts),
        end: Some(t.end),
        notes: &t.notes,
    });
    let f = &mut ev.fields;
    f.put_str("method", &t.method);
    let o = &t.outcome;
    f.put_u64("mysql.affected_rows", o.affected_rows);
    if let Some((code, message)) = &o.error {
        f.put_u64("mysql.error_code", u64::from(*code));
        f.put_bytes("mysql.error_message", message);
    }
    f.put_u64("mysql.insert_id", o.insert_id);
    f.put_u64("mysql.num_fields", o.num_fields);
    f.put_u64("mysql.num_rows", o.num_rows);
    if !t.params.is_empty() {
        f.put_strs("params", &t.params);
    }
    if !t.path.is_empty() {
        f.put_bytes("path", &t.path);
    }
    f.put_bytes("query", &t.query);
    if cfg.send_request {
        f.put_bytes("request", &t.request_raw);
    }
    if cfg.send_response {
        f.put_bytes("response", &t.response_raw);
    }
    f.put_str("status", if o.error.is_some() { "Error" } else { "OK" });
    f.put_str("type", "mysql");
    ev
}
