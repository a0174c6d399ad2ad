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
