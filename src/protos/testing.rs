//! What the analyzers' unit tests share: tuples and hex input, and the event as the publisher
//! writes it (common fields computed, encoded by the JSON codec, read back).

use crate::common::{IpPortTuple, TcpTuple};
use crate::publish::direction::Networks;
use crate::publish::json::JsonCodec;
use crate::publish::{Event, Map};
use serde_json::Value;

/// Bytes from hex text (two digits a byte, either case).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An address/port tuple from text.
pub fn tuple(src: &str, sport: u16, dst: &str, dport: u16) -> IpPortTuple {
    IpPortTuple::new(src.parse().unwrap(), sport, dst.parse().unwrap(), dport)
}

/// A TCP tuple of stream 1.
pub fn tcp_tuple(src: &str, sport: u16, dst: &str, dport: u16) -> TcpTuple {
    TcpTuple {
        tuple: tuple(src, sport, dst, dport),
        stream_id: 1,
    }
}

/// The event as the publisher writes it, read back as a tree without `@metadata`: the common
/// fields computed with these internal networks (no local addresses), then encoded by the
/// JSON codec.
pub fn published_with(mut e: Event, internal_networks: &[&str]) -> Map {
    if let Some(pb) = e.pb.as_mut() {
        let nets: Vec<String> = internal_networks.iter().map(|s| s.to_string()).collect();
        pb.compute_values(&[], &Networks::parse(&nets).unwrap());
    }
    let json = JsonCodec::default().encode(&e);
    let Value::Object(mut m) = serde_json::from_slice(&json).expect("the codec writes JSON") else {
        panic!("an event is a JSON object");
    };
    m.remove("@metadata");
    m
}

/// The published event (internal network `private`) flattened to dotted keys, like the golden
/// files: objects are walked, arrays and empty objects are values.
pub fn flat(e: Event) -> Map {
    fn walk(prefix: &str, v: &Value, out: &mut Map) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            _ => {
                out.insert(prefix.to_string(), v.clone());
            }
        }
    }
    let mut out = Map::new();
    walk(
        "",
        &Value::Object(published_with(e, &["private"])),
        &mut out,
    );
    out
}

/// One client/server TCP connection driven through the real TCP layer of one worker: segments
/// in (sequence numbers kept per direction), the analyzer's events out.
pub struct TcpSession {
    pub tcp: crate::protos::tcp::Tcp,
    pub out: crate::publish::EventSink,
    server_port: u16,
    seq: [u32; 2],
}

impl TcpSession {
    /// A session between 10.0.0.1:40000 and 10.0.0.2:`server_port`, analysed by `module`.
    pub fn new(
        module: std::sync::Arc<dyn crate::protos::ProtocolModule>,
        server_port: u16,
    ) -> TcpSession {
        TcpSession {
            tcp: crate::protos::tcp::Tcp::new(&crate::protos::ProtocolModules {
                modules: vec![module],
                reporters: Default::default(),
            }),
            out: crate::publish::EventSink::new(),
            server_port,
            seq: [1000, 5000],
        }
    }

    /// A segment from the client (`to_server`) or the server, at `t_ms` milliseconds.
    pub fn send(&mut self, to_server: bool, payload: &[u8], t_ms: i64) {
        use crate::decoder::TcpHeader;
        let client = ("10.0.0.1".parse().unwrap(), 40000);
        let server = ("10.0.0.2".parse().unwrap(), self.server_port);
        let (a, b) = if to_server {
            (client, server)
        } else {
            (server, client)
        };
        let d = usize::from(!to_server);
        let hdr = TcpHeader {
            src_port: a.1,
            dst_port: b.1,
            seq: self.seq[d],
            ack: 0,
            flags: TcpHeader::ACK,
        };
        self.seq[d] = self.seq[d].wrapping_add(payload.len() as u32);
        let tuple = IpPortTuple::new(a.0, a.1, b.0, b.1);
        self.tcp.process(
            &mut self.out,
            crate::common::Ts(t_ms * 1_000_000),
            tuple,
            &hdr,
            payload,
        );
    }

    /// An empty segment from the other side acknowledging everything sent so far towards the
    /// server (`to_server`) or the client: a hole before held segments becomes a gap.
    pub fn acknowledge(&mut self, to_server: bool, t_ms: i64) {
        use crate::decoder::TcpHeader;
        let client = ("10.0.0.1".parse().unwrap(), 40000);
        let server = ("10.0.0.2".parse().unwrap(), self.server_port);
        // The acknowledging side sends towards the other one.
        let (a, b) = if to_server {
            (server, client)
        } else {
            (client, server)
        };
        let hdr = TcpHeader {
            src_port: a.1,
            dst_port: b.1,
            seq: self.seq[usize::from(to_server)],
            ack: self.seq[usize::from(!to_server)],
            flags: TcpHeader::ACK,
        };
        let tuple = IpPortTuple::new(a.0, a.1, b.0, b.1);
        self.tcp.process(
            &mut self.out,
            crate::common::Ts(t_ms * 1_000_000),
            tuple,
            &hdr,
            &[],
        );
    }

    /// `n` bytes of one direction that the capture never saw (a gap before the next segment).
    pub fn skip(&mut self, to_server: bool, n: u32) {
        let d = usize::from(!to_server);
        self.seq[d] = self.seq[d].wrapping_add(n);
    }

    /// The events published so far: fields and Packetbeat's common fields, nested, before the
    /// pipeline's finalisation.
    pub fn events(&mut self) -> Vec<Value> {
        self.out
            .take()
            .into_iter()
            .map(|ev| {
                let mut m = ev.fields.to_map();
                if let Some(pb) = &ev.pb {
                    pb.marshal(&mut m);
                }
                Value::Object(m)
            })
            .collect()
    }
}
