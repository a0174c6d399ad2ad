//! The published event (`publishTransaction` in `icmp.go`).

use super::{parser, Message, Transaction};
use crate::common::Transport;
use crate::publish::event::{ip_string, Endpoint, Event};
use crate::publish::json::ObjectWriter;

/// `publishTransaction`. The fields are put in key order (see [`crate::publish::Fields`]):
/// `icmp`, `path`, `status`, `type`.
pub fn transaction_event(t: &Transaction) -> Event {
    let mut ev = Event::new(t.ts);
    let v = t.tuple.version;
    {
        let pb = ev.pb();
        let mut src = Endpoint::new(t.tuple.src, 0);
        let mut dst = Endpoint::new(t.tuple.dst, 0);
        if let Some(req) = &t.request {
            src.bytes = req.length as u64;
        }
        if let Some(resp) = &t.response {
            dst.bytes = resp.length as u64;
        }
        pb.set_source(src);
        pb.set_destination(dst);
        pb.event.dataset = Some("icmp");
        pb.event.kind_type = &["connection"];
        pb.error_messages = t.notes.iter().map(|s| s.to_string()).collect();
        pb.network.transport = Some(if v == 6 {
            Transport::Icmpv6
        } else {
            Transport::Icmp
        });
        if let Some(req) = &t.request {
            pb.event.start = Some(req.ts);
            pb.icmp_type = req.icmp_type;
            pb.icmp_code = req.code;
        }
        if let Some(resp) = &t.response {
            pb.event.end = Some(resp.ts);
            if t.request.is_none() {
                pb.icmp_type = resp.icmp_type;
                pb.icmp_code = resp.code;
            }
        }
    }
    ev.fields.put_with("icmp", |o| {
        let mut w = ObjectWriter::new(o);
        if let Some(m) = &t.request {
            w.object("request", |w| write_message(w, v, m));
        }
        if let Some(m) = &t.response {
            w.object("response", |w| write_message(w, v, m));
        }
        w.u64("version", v as u64);
        w.end();
    });
    ev.fields.put_str("path", &ip_string(&t.tuple.dst));
    ev.fields
        .put_str("status", if t.has_error() { "Error" } else { "OK" });
    ev.fields.put_str("type", "icmp");
    ev
}

/// `icmp.request` / `icmp.response`.
fn write_message(w: &mut ObjectWriter, version: u8, m: &Message) {
    w.u64("code", m.code as u64);
    w.str(
        "message",
        &parser::human_readable(version, m.icmp_type, m.code),
    );
    w.u64("type", m.icmp_type as u64);
}
