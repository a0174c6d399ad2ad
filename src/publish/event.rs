//! The event an analyzer publishes, and Packetbeat's common ECS fields (`pb.Fields`).
//!
//! An analyzer fills a [`PbFields`] with the endpoints, byte counts and times it knows and puts
//! its own fields (`http.*`, `dns.*`, `url.*`, …) in [`Event::fields`]. At publish time
//! [`PbFields::compute_values`] derives what Packetbeat derives (`network.bytes`,
//! `network.community_id`, `network.type`, `network.direction`, `event.duration`,
//! `event.dataset`, `client.*` / `server.*` from source and destination), and the fields are
//! merged into the event exactly where Packetbeat's `MarshalMapStr` puts them.

use super::fields::{FieldKey, Fields};
use crate::common::{Transport, Ts};
use crate::publish::json::ObjectWriter;
use serde_json::{Map as JsonMap, Value};
use std::net::IpAddr;

pub type Map = JsonMap<String, Value>;

/// One event on its way to the outputs.
#[derive(Debug, Clone)]
pub struct Event {
    /// `@timestamp`: for a transaction, the time its first message was seen.
    pub timestamp: Ts,
    /// Extra `@metadata` keys (`raw_index`, `pipeline`, …); `beat`, `type` and `version` are added
    /// by the output codec.
    pub meta: Map,
    /// The event's own fields, put with dotted paths.
    pub fields: Fields,
    /// Common fields, merged into `fields` by the publisher.
    pub pb: Option<Box<PbFields>>,
    /// The event already serialised by the output's codec (done by the packet workers, in
    /// parallel, so the output only writes bytes).
    pub encoded: Option<Vec<u8>>,
    /// `agent.*`, `ecs.version`, `host.name` to write with the fields (set by the pipeline on
    /// its fast path; otherwise they are in `fields`).
    pub builtin: Option<std::sync::Arc<Builtin>>,
}

impl Event {
    /// `event.action`: with the common fields when the event has them (see
    /// [`EventMeta::action`]), else among its own fields.
    pub fn set_action(&mut self, action: String) {
        match self.pb.as_mut() {
            Some(pb) => pb.event.action = Some(action),
            None => self.fields.put_str("event.action", &action),
        }
    }

    /// `event.outcome`, likewise.
    pub fn set_outcome(&mut self, outcome: &'static str) {
        match self.pb.as_mut() {
            Some(pb) => pb.event.outcome = Some(outcome),
            None => self.fields.put_str("event.outcome", outcome),
        }
    }

    /// A new event with Packetbeat's default common fields (see `pb.NewFields`).
    pub fn new(timestamp: Ts) -> Event {
        Event {
            timestamp,
            meta: Map::new(),
            fields: Fields::with_capacity(24),
            pb: Some(Box::new(PbFields::new())),
            encoded: None,
            builtin: None,
        }
    }

    /// An event without common fields (e.g. from processors or tests).
    pub fn bare(timestamp: Ts, fields: Map) -> Event {
        Event {
            timestamp,
            meta: Map::new(),
            fields: Fields::from_map(&fields),
            pb: None,
            encoded: None,
            builtin: None,
        }
    }

    pub fn pb(&mut self) -> &mut PbFields {
        self.pb.get_or_insert_with(|| Box::new(PbFields::new()))
    }

    pub fn put(&mut self, key: impl Into<FieldKey>, value: impl Into<Value>) {
        self.fields.put(key, value);
    }
}

/// One side of a connection (ECS `source`, `destination`, `client`, `server`).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub domain: Option<String>,
    pub bytes: u64,
    pub packets: u64,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint {
            ip,
            port,
            domain: None,
            bytes: 0,
            packets: 0,
        }
    }

    fn marshal(&self, m: &mut Map, prefix: &str) {
        m.put(&format!("{prefix}.ip"), Value::from(self.ip.to_string()));
        if self.port != 0 {
            m.put(&format!("{prefix}.port"), Value::from(self.port));
        }
        if let Some(d) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            m.put(&format!("{prefix}.domain"), Value::from(d));
        }
        if self.bytes != 0 {
            m.put(&format!("{prefix}.bytes"), Value::from(self.bytes));
        }
        if self.packets != 0 {
            m.put(&format!("{prefix}.packets"), Value::from(self.packets));
        }
    }
}

/// ECS `network.*` as Packetbeat sets it.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub transport: Option<Transport>,
    /// Application protocol (`http`, `dns`, …).
    pub protocol: &'static str,
    pub kind: Option<&'static str>,
    pub direction: Option<&'static str>,
    pub community_id: Option<String>,
    pub bytes: u64,
    pub packets: u64,
    pub forwarded_ip: Option<String>,
}

/// ECS `event.*` as Packetbeat sets it.
#[derive(Debug, Clone)]
pub struct EventMeta {
    pub kind: &'static str,
    pub category: &'static [&'static str],
    pub kind_type: &'static [&'static str],
    pub dataset: Option<&'static str>,
    pub start: Option<Ts>,
    pub end: Option<Ts>,
    /// Nanoseconds; computed from start and end when not set.
    pub duration: Option<i64>,
    /// `end` only says when the event was last seen, not when a transaction ended (a request
    /// that got no response): no duration is computed.
    pub end_is_last_seen: bool,
    /// `event.action` and `event.outcome`, for the analyzers that set them: kept here rather
    /// than in the event's own fields, so the event keeps the pipeline's fast path (an own
    /// field under `event` would make the pipeline merge on a tree).
    pub action: Option<String>,
    pub outcome: Option<&'static str>,
}

/// Packetbeat's `pb.Fields`.
#[derive(Debug, Clone)]
pub struct PbFields {
    pub source: Option<Endpoint>,
    pub destination: Option<Endpoint>,
    pub client: Option<Endpoint>,
    pub server: Option<Endpoint>,
    pub related_ip: Vec<String>,
    pub related_user: Vec<String>,
    pub related_hosts: Vec<String>,
    pub network: Network,
    pub event: EventMeta,
    pub error_messages: Vec<String>,
    /// ICMP type and code, for the Community ID of ICMP transactions.
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl Default for PbFields {
    fn default() -> Self {
        PbFields::new()
    }
}

impl PbFields {
    pub fn new() -> PbFields {
        PbFields {
            source: None,
            destination: None,
            client: None,
            server: None,
            related_ip: Vec::new(),
            related_user: Vec::new(),
            related_hosts: Vec::new(),
            network: Network::default(),
            event: EventMeta {
                kind: "event",
                category: &["network"],
                kind_type: &["connection", "protocol"],
                dataset: None,
                start: None,
                end: None,
                duration: None,
                end_is_last_seen: false,
                action: None,
                outcome: None,
            },
            error_messages: Vec::new(),
            icmp_type: 0,
            icmp_code: 0,
        }
    }

    /// `SetSource`: also records the address in `related.ip`.
    pub fn set_source(&mut self, ep: Endpoint) {
        push_unique_owned(&mut self.related_ip, ip_string(&ep.ip));
        self.source = Some(ep);
    }

    /// `SetDestination`: also records the address in `related.ip`.
    pub fn set_destination(&mut self, ep: Endpoint) {
        push_unique_owned(&mut self.related_ip, ip_string(&ep.ip));
        self.destination = Some(ep);
    }

    pub fn add_ip(&mut self, ip: &str) {
        push_unique(&mut self.related_ip, ip);
    }

    pub fn add_user(&mut self, user: &str) {
        push_unique(&mut self.related_user, user);
    }

    pub fn add_host(&mut self, host: &str) {
        push_unique(&mut self.related_hosts, host);
    }

    /// Packetbeat's `ComputeValues`.
    pub fn compute_values(
        &mut self,
        local_ips: &[IpAddr],
        internal_networks: &crate::publish::direction::Networks,
    ) {
        if let Some(s) = &self.source {
            self.network.bytes += s.bytes;
        }
        if let Some(d) = &self.destination {
            self.network.bytes += d.bytes;
        }
        let sip = self.source.as_ref().map(|s| s.ip);
        let dip = self.destination.as_ref().map(|d| d.ip);

        if let (Some(t), Some(s), Some(d)) =
            (self.network.transport, &self.source, &self.destination)
        {
            let (sp, dp) = match t {
                Transport::Icmp | Transport::Icmpv6 => {
                    (self.icmp_type as u16, self.icmp_code as u16)
                }
                _ => (s.port, d.port),
            };
            self.network.community_id = Some(crate::publish::community_id::community_id(
                s.ip,
                sp,
                d.ip,
                dp,
                t.ip_proto(),
            ));
        }

        if self.network.kind.is_none() {
            if let Some(ip) = sip.or(dip) {
                self.network.kind = Some(if is_v4(&ip) { "ipv4" } else { "ipv6" });
            }
        }

        if self.network.direction.is_none() {
            let mut dir = crate::publish::direction::host_based(sip, dip, local_ips);
            if !internal_networks.is_empty() && dir == "unknown" {
                dir = crate::publish::direction::perimeter_based(sip, dip, internal_networks);
            }
            self.network.direction = Some(dir);
        }

        if self.event.duration.is_none() && !self.event.end_is_last_seen {
            if let (Some(s), Some(e)) = (self.event.start, self.event.end) {
                if !s.is_zero() && !e.is_zero() && e >= s {
                    self.event.duration = Some(e.since(s));
                }
            }
        }

        if self.event.dataset.is_none() && !self.network.protocol.is_empty() {
            self.event.dataset = Some(self.network.protocol);
        }
        if self.client.is_none() {
            self.client = self.source.clone();
        }
        if self.server.is_none() {
            self.server = self.destination.clone();
        }
    }

    /// Packetbeat's `MarshalMapStr`: writes the non-empty fields into `m`.
    pub fn marshal(&self, m: &mut Map) {
        if let Some(e) = &self.source {
            e.marshal(m, "source");
        }
        if let Some(e) = &self.destination {
            e.marshal(m, "destination");
        }
        if let Some(e) = &self.client {
            e.marshal(m, "client");
        }
        if let Some(e) = &self.server {
            e.marshal(m, "server");
        }
        for (key, list) in [
            ("related.ip", &self.related_ip),
            ("related.user", &self.related_user),
            ("related.hosts", &self.related_hosts),
        ] {
            if !list.is_empty() {
                m.put(key, Value::from(list.clone()));
            }
        }
        let n = &self.network;
        if let Some(t) = n.transport {
            m.put("network.transport", Value::from(t.as_str()));
        }
        if !n.protocol.is_empty() {
            m.put("network.protocol", Value::from(n.protocol));
        }
        if let Some(k) = n.kind {
            m.put("network.type", Value::from(k));
        }
        if let Some(d) = n.direction {
            m.put("network.direction", Value::from(d));
        }
        if let Some(c) = &n.community_id {
            m.put("network.community_id", Value::from(c.as_str()));
        }
        if n.bytes != 0 {
            m.put("network.bytes", Value::from(n.bytes));
        }
        if n.packets != 0 {
            m.put("network.packets", Value::from(n.packets));
        }
        if let Some(f) = &n.forwarded_ip {
            m.put("network.forwarded_ip", Value::from(f.as_str()));
        }
        let e = &self.event;
        if let Some(a) = &e.action {
            m.put("event.action", Value::from(a.as_str()));
        }
        if let Some(o) = e.outcome {
            m.put("event.outcome", Value::from(o));
        }
        m.put("event.kind", Value::from(e.kind));
        m.put("event.category", Value::from(e.category.to_vec()));
        m.put("event.type", Value::from(e.kind_type.to_vec()));
        if let Some(d) = e.dataset {
            m.put("event.dataset", Value::from(d));
        }
        if let Some(s) = e.start.filter(|t| !t.is_zero()) {
            m.put("event.start", Value::from(s.to_rfc3339()));
        }
        if let Some(s) = e.end.filter(|t| !t.is_zero()) {
            m.put("event.end", Value::from(s.to_rfc3339()));
        }
        if let Some(d) = e.duration.filter(|d| *d >= 0) {
            m.put("event.duration", Value::from(d));
        }
        match self.error_messages.len() {
            0 => {}
            1 => m.put(
                "error.message",
                Value::from(self.error_messages[0].as_str()),
            ),
            _ => m.put("error.message", Value::from(self.error_messages.clone())),
        }
    }
}

/// The fields libbeat adds to every event of this Beat, rendered once.
#[derive(Debug)]
pub struct Builtin {
    name: String,
    id: String,
    ephemeral_id: String,
    /// (top-level key, JSON object) in key order.
    rendered: [(&'static str, String); 3],
}

impl Builtin {
    pub fn new(name: &str, id: &str, ephemeral_id: &str) -> Builtin {
        let agent = serde_json::json!({
            "ephemeral_id": ephemeral_id, "id": id, "name": name, "type": "packetbeat", "version": crate::BEAT_VERSION
        });
        let ecs = serde_json::json!({ "version": crate::ECS_VERSION });
        let host = serde_json::json!({ "name": name });
        Builtin {
            name: name.to_string(),
            id: id.to_string(),
            ephemeral_id: ephemeral_id.to_string(),
            rendered: [
                ("agent", agent.to_string()),
                ("ecs", ecs.to_string()),
                ("host", host.to_string()),
            ],
        }
    }

    /// Writes them into a field tree (processors, pretty printing). `host.name` is kept when
    /// the event has one.
    pub fn put_into(&self, f: &mut Map) {
        f.put("agent.type", Value::from("packetbeat"));
        f.put("agent.name", Value::from(self.name.as_str()));
        f.put("agent.version", Value::from(crate::BEAT_VERSION));
        f.put("agent.id", Value::from(self.id.as_str()));
        f.put(
            "agent.ephemeral_id",
            Value::from(self.ephemeral_id.as_str()),
        );
        f.put("ecs.version", Value::from(crate::ECS_VERSION));
        if f.get_path("host.name").is_none() {
            f.put("host.name", Value::from(self.name.as_str()));
        }
    }

    pub fn entries(&self) -> &[(&'static str, String)] {
        &self.rendered
    }
}

fn json_time(out: &mut Vec<u8>, t: Ts) {
    out.push(b'"');
    t.write_rfc3339(out);
    out.push(b'"');
}

/// The decimal text of every octet value, padded to three bytes, and its length.
const OCTET_TEXT: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let v = i as u8;
        t[i] = if v >= 100 {
            ([b'0' + v / 100, b'0' + (v / 10) % 10, b'0' + v % 10], 3)
        } else if v >= 10 {
            ([b'0' + v / 10, b'0' + v % 10, 0], 2)
        } else {
            ([b'0' + v, 0, 0], 1)
        };
        i += 1;
    }
    t
};

/// `ip.to_string()`, without the formatting machinery for IPv4.
pub fn ip_string(ip: &IpAddr) -> String {
    let mut b = Vec::with_capacity(15);
    write_ip(&mut b, ip);
    String::from_utf8(b).expect("an address is ASCII")
}

/// An address as Go's `net.IP.String()` writes it (dotted quad for IPv4 and IPv4-mapped IPv6
/// is what `IpAddr`'s `Display` also gives; IPv4 is formatted by hand, it is on every event).
pub fn write_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Up to 15 bytes, each octet's digits from a table: this runs several times per
            // event.
            let mut buf = [0u8; 16];
            let mut n = 0;
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                let (digits, len) = OCTET_TEXT[*octet as usize];
                buf[n..n + 3].copy_from_slice(&digits);
                n += len as usize;
            }
            out.extend_from_slice(&buf[..n]);
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            let _ = write!(out, "{ip}");
        }
    }
}

impl Endpoint {
    /// The object `marshal` would build, as JSON (keys in order).
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = ObjectWriter::new(out);
        if self.bytes != 0 {
            w.u64("bytes", self.bytes);
        }
        if let Some(d) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            w.str("domain", d);
        }
        let o = w.key("ip");
        o.push(b'"');
        write_ip(o, &self.ip);
        o.push(b'"');
        if self.packets != 0 {
            w.u64("packets", self.packets);
        }
        if self.port != 0 {
            w.u64("port", self.port as u64);
        }
        w.end();
    }
}

impl PbFields {
    /// The top-level keys `marshal` would write, in key order.
    pub fn json_keys(&self) -> impl Iterator<Item = &'static str> {
        let n = &self.network;
        let has_network = n.transport.is_some()
            || !n.protocol.is_empty()
            || n.kind.is_some()
            || n.direction.is_some()
            || n.community_id.is_some()
            || n.bytes != 0
            || n.packets != 0
            || n.forwarded_ip.is_some();
        let has_related = !(self.related_ip.is_empty()
            && self.related_user.is_empty()
            && self.related_hosts.is_empty());
        [
            ("client", self.client.is_some()),
            ("destination", self.destination.is_some()),
            ("error", !self.error_messages.is_empty()),
            ("event", true),
            ("network", has_network),
            ("related", has_related),
            ("server", self.server.is_some()),
            ("source", self.source.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
    }

    /// Writes the JSON object `marshal` would build under `key` (one of `json_keys`).
    pub fn write_json(&self, key: &str, out: &mut Vec<u8>) {
        let endpoint = match key {
            "client" => Some(&self.client),
            "destination" => Some(&self.destination),
            "server" => Some(&self.server),
            "source" => Some(&self.source),
            "error" | "event" | "network" | "related" => None,
            _ => return,
        };
        if let Some(ep) = endpoint {
            if let Some(ep) = ep {
                ep.write_json(out);
            }
            return;
        }
        let mut w = ObjectWriter::new(out);
        match key {
            "error" => match self.error_messages.as_slice() {
                [one] => w.str("message", one),
                many => w.strs("message", many),
            },
            "event" => {
                let e = &self.event;
                if let Some(a) = &e.action {
                    w.str("action", a);
                }
                w.strs("category", e.category);
                if let Some(d) = e.dataset {
                    w.str("dataset", d);
                }
                if let Some(d) = e.duration.filter(|d| *d >= 0) {
                    w.i64("duration", d);
                }
                if let Some(t) = e.end.filter(|t| !t.is_zero()) {
                    json_time(w.key("end"), t);
                }
                w.str("kind", e.kind);
                if let Some(o) = e.outcome {
                    w.str("outcome", o);
                }
                if let Some(t) = e.start.filter(|t| !t.is_zero()) {
                    json_time(w.key("start"), t);
                }
                w.strs("type", e.kind_type);
            }
            "network" => {
                let n = &self.network;
                if n.bytes != 0 {
                    w.u64("bytes", n.bytes);
                }
                if let Some(c) = &n.community_id {
                    w.str("community_id", c);
                }
                if let Some(d) = n.direction {
                    w.str("direction", d);
                }
                if let Some(f) = &n.forwarded_ip {
                    w.str("forwarded_ip", f);
                }
                if n.packets != 0 {
                    w.u64("packets", n.packets);
                }
                if !n.protocol.is_empty() {
                    w.str("protocol", n.protocol);
                }
                if let Some(t) = n.transport {
                    w.str("transport", t.as_str());
                }
                if let Some(k) = n.kind {
                    w.str("type", k);
                }
            }
            _ => {
                for (k, list) in [
                    ("hosts", &self.related_hosts),
                    ("ip", &self.related_ip),
                    ("user", &self.related_user),
                ] {
                    if !list.is_empty() {
                        w.strs(k, list);
                    }
                }
            }
        }
        w.end();
    }
}

fn push_unique(list: &mut Vec<String>, v: &str) {
    if !v.is_empty() && !list.iter().any(|x| x == v) {
        list.push(v.to_string());
    }
}

/// [`push_unique`] of a string already made: it moves in, no copy.
fn push_unique_owned(list: &mut Vec<String>, v: String) {
    if !v.is_empty() && !list.iter().any(|x| *x == v) {
        list.push(v);
    }
}

fn is_v4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// Dotted-path access to nested JSON maps, like libbeat's `mapstr.M.Put`.
pub trait MapExt {
    /// Sets `a.b.c`, creating intermediate maps; replaces a non-map intermediate value.
    fn put(&mut self, path: &str, value: Value);
    /// Looks up `a.b.c`.
    fn get_path(&self, path: &str) -> Option<&Value>;
    /// Removes `a.b.c` and returns it; empty parent maps are kept, as libbeat does.
    fn delete_path(&mut self, path: &str) -> Option<Value>;
}

impl MapExt for Map {
    fn put(&mut self, path: &str, value: Value) {
        match path.split_once('.') {
            None => {
                self.insert(path.to_string(), value);
            }
            Some((head, rest)) => {
                // Look the intermediate map up before allocating its key: it usually exists.
                if let Some(entry) = self.get_mut(head) {
                    if !entry.is_object() {
                        *entry = Value::Object(Map::new());
                    }
                    if let Value::Object(inner) = entry {
                        inner.put(rest, value);
                    }
                    return;
                }
                let mut inner = Map::new();
                inner.put(rest, value);
                self.insert(head.to_string(), Value::Object(inner));
            }
        }
    }

    fn get_path(&self, path: &str) -> Option<&Value> {
        match path.split_once('.') {
            None => self.get(path),
            Some((head, rest)) => match self.get(head) {
                Some(Value::Object(inner)) => inner.get_path(rest).or_else(|| self.get(path)),
                _ => self.get(path),
            },
        }
    }

    fn delete_path(&mut self, path: &str) -> Option<Value> {
        if let Some(v) = self.remove(path) {
            return Some(v);
        }
        let (head, rest) = path.split_once('.')?;
        match self.get_mut(head) {
            Some(Value::Object(inner)) => inner.delete_path(rest),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_creates_nested_maps() {
        let mut m = Map::new();
        m.put("a.b.c", Value::from(1));
        m.put("a.b.d", Value::from("x"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"a":{"b":{"c":1,"d":"x"}}}"#
        );
        assert_eq!(m.get_path("a.b.d"), Some(&Value::from("x")));
        assert_eq!(m.delete_path("a.b.c"), Some(Value::from(1)));
        assert_eq!(m.get_path("a.b.c"), None);
    }

    #[test]
    fn ipv4_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.9.99.100",
            "198.18.230.137",
            "1.0.10.200",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_string(&ip), ip.to_string());
        }
        for v in 0..=255u8 {
            let ip = IpAddr::from([v, 255 - v, v / 3, v.wrapping_mul(7)]);
            assert_eq!(ip_string(&ip), ip.to_string());
        }
    }

    #[test]
    fn compute_values_fills_client_server_and_totals() {
        let mut f = PbFields::new();
        let mut src = Endpoint::new("10.0.0.1".parse().unwrap(), 5000);
        src.bytes = 10;
        let mut dst = Endpoint::new("8.8.8.8".parse().unwrap(), 53);
        dst.bytes = 20;
        f.set_source(src);
        f.set_destination(dst);
        f.network.transport = Some(Transport::Udp);
        f.network.protocol = "dns";
        f.event.start = Some(Ts(1_000));
        f.event.end = Some(Ts(3_500));
        let nets = crate::publish::direction::Networks::parse(&["private".to_string()]).unwrap();
        f.compute_values(&[], &nets);
        let mut m = Map::new();
        f.marshal(&mut m);
        assert_eq!(m.get_path("network.bytes"), Some(&Value::from(30)));
        assert_eq!(m.get_path("client.port"), Some(&Value::from(5000)));
        assert_eq!(m.get_path("server.ip"), Some(&Value::from("8.8.8.8")));
        assert_eq!(m.get_path("event.duration"), Some(&Value::from(2500)));
        assert_eq!(m.get_path("event.dataset"), Some(&Value::from("dns")));
        assert_eq!(m.get_path("network.type"), Some(&Value::from("ipv4")));
        assert_eq!(
            m.get_path("network.direction"),
            Some(&Value::from("outbound"))
        );
        assert_eq!(
            m.get_path("related.ip"),
            Some(&serde_json::json!(["10.0.0.1", "8.8.8.8"]))
        );
    }
}
