use super::parser::{self, DhcpOption, ParseError};
use super::*;
use crate::common::{IpPortTuple, Ts};
use crate::protos::testing::{published_with, tuple};
use crate::publish::event::{Map, MapExt};
use serde_json::{json, Value};

// UDP payloads of dhcp.pcap (Packetbeat's own test capture); request.bin and ack.bin are the
// `dhcpRequest` / `dhcpACK` bytes of Packetbeat's dhcpv4_test.go.
const DISCOVER: &[u8] = include_bytes!("testdata/discover.bin");
const OFFER: &[u8] = include_bytes!("testdata/offer.bin");
const REQUEST: &[u8] = include_bytes!("testdata/request.bin");
const ACK: &[u8] = include_bytes!("testdata/ack.bin");

/// The event as the publisher writes it, without its times.
fn published(payload: &[u8], t: IpPortTuple) -> Value {
    let msg = parser::parse(payload).unwrap();
    let mut fields = published_with(dhcp_event(Ts(1_000), &t, payload.len(), &msg), &[]);
    fields.remove("@timestamp");
    fields.delete_path("event.start");
    Value::Object(fields)
}

/// Packetbeat's TestParseDHCPRequest, field for field.
#[test]
fn request_matches_packetbeat_unit_test() {
    let got = published(REQUEST, tuple("0.0.0.0", 68, "255.255.255.255", 67));
    let expected = json!({
        "type": "dhcpv4",
        "status": "OK",
        "source": {"ip": "0.0.0.0", "port": 68, "bytes": 272},
        "destination": {"ip": "255.255.255.255", "port": 67},
        "client": {"ip": "0.0.0.0", "port": 68, "bytes": 272},
        "server": {"ip": "255.255.255.255", "port": 67},
        "event": {
            "category": ["network"],
            "type": ["connection", "protocol"],
            "dataset": "dhcpv4",
            "kind": "event"
        },
        "network": {
            "type": "ipv4",
            "direction": "unknown",
            "transport": "udp",
            "protocol": "dhcpv4",
            "bytes": 272,
            "community_id": "1:t9O1j0qj71O4wJM7gnaHtgmfev8="
        },
        "related": {"ip": ["0.0.0.0", "255.255.255.255"]},
        "dhcpv4": {
            "client_mac": "00-0B-82-01-FC-42",
            "flags": "unicast",
            "hardware_type": "Ethernet",
            "hops": 0,
            "op_code": "bootrequest",
            "seconds": 0,
            "transaction_id": "0x00003d1e",
            "option": {
                "message_type": "request",
                "parameter_request_list": ["Subnet Mask", "Router", "Domain Name Server", "NTP Servers"],
                "requested_ip_address": "192.168.0.10",
                "server_identifier": "192.168.0.1"
            }
        }
    });
    assert_eq!(got, expected);
}

/// Packetbeat's TestParseDHCPACK, field for field.
#[test]
fn ack_matches_packetbeat_unit_test() {
    let got = published(ACK, tuple("192.168.0.1", 67, "192.168.0.10", 68));
    let expected = json!({
        "type": "dhcpv4",
        "status": "OK",
        "source": {"ip": "192.168.0.1", "port": 67, "bytes": 300},
        "destination": {"ip": "192.168.0.10", "port": 68},
        "client": {"ip": "192.168.0.10", "port": 68},
        "server": {"ip": "192.168.0.1", "port": 67, "bytes": 300},
        "event": {
            "category": ["network"],
            "type": ["connection", "protocol"],
            "dataset": "dhcpv4",
            "kind": "event"
        },
        "network": {
            "type": "ipv4",
            "direction": "unknown",
            "transport": "udp",
            "protocol": "dhcpv4",
            "bytes": 300,
            "community_id": "1:VbRSZnvQqvLiQRhYHLrdVI17sLQ="
        },
        "related": {"ip": ["192.168.0.1", "192.168.0.10"]},
        "dhcpv4": {
            "assigned_ip": "192.168.0.10",
            "client_mac": "00-0B-82-01-FC-42",
            "flags": "unicast",
            "hardware_type": "Ethernet",
            "hops": 0,
            "op_code": "bootreply",
            "seconds": 0,
            "transaction_id": "0x00003d1e",
            "option": {
                "ip_address_lease_time_sec": 3600,
                "message_type": "ack",
                "rebinding_time_sec": 3150,
                "renewal_time_sec": 1800,
                "server_identifier": "192.168.0.1",
                "subnet_mask": "255.255.255.0"
            }
        }
    });
    assert_eq!(got, expected);
}

#[test]
fn discover_and_offer_match_packetbeat_system_test() {
    let d = published(DISCOVER, tuple("0.0.0.0", 68, "255.255.255.255", 67));
    assert_eq!(d["dhcpv4"]["option"]["message_type"], "discover");
    assert_eq!(d["dhcpv4"]["option"]["requested_ip_address"], "0.0.0.0");
    assert_eq!(d["dhcpv4"]["transaction_id"], "0x00003d1d");
    let o = published(OFFER, tuple("192.168.0.1", 67, "192.168.0.10", 68));
    assert_eq!(o["dhcpv4"]["option"]["message_type"], "offer");
    assert_eq!(o["dhcpv4"]["assigned_ip"], "192.168.0.10");
    assert_eq!(o["dhcpv4"]["option"]["ip_address_lease_time_sec"], 3600);
    assert_eq!(o["dhcpv4"]["option"]["subnet_mask"], "255.255.255.0");
}

fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut p = REQUEST[..240].to_vec();
    p.extend_from_slice(opts);
    p
}

/// `dhcpv4.option` of the published event, for a message with these options.
fn option_map(opts: &[u8]) -> Option<Map> {
    let p = with_options(opts);
    let msg = parser::parse(&p).unwrap();
    let t = tuple("0.0.0.0", 68, "255.255.255.255", 67);
    match published_with(dhcp_event(Ts(0), &t, p.len(), &msg), &[]).delete_path("dhcpv4.option") {
        Some(Value::Object(m)) => Some(m),
        None => None,
        Some(other) => panic!("option: {other}"),
    }
}

#[test]
fn every_mapped_option() {
    let mut o = vec![
        53, 1, 8, // inform
        28, 4, 10, 0, 0, 255, // broadcast
        57, 2, 0x05, 0xdc, // max size 1500
        60, 4, b'M', b'S', b'F', b'T', // class id
        15, 7, b'e', b'x', b'.', b'c', b'o', b'm', 0xff, // domain name (invalid UTF-8 byte)
        6, 8, 8, 8, 8, 8, 1, 1, 1, 1, // dns servers
        2, 4, 0xff, 0xff, 0xf1, 0xf0, // time offset -3600
        3, 4, 10, 0, 0, 1, // router
        4, 4, 10, 0, 0, 2, // time server
        42, 8, 10, 0, 0, 3, 10, 0, 0, 4, // ntp servers
        12, 4, b'h', b'o', b's', b't', // hostname
        56, 2, b'h', b'i', // message
        67, 3, b'p', b'x', b'e', // boot file name option
        55, 3, 1, 84, 255, // PRL with an unnamed code
    ];
    // VIVC must be last: the library compares its length with what is left.
    o.extend_from_slice(&[124, 7, 0, 0, 0, 9, 2, 0xab, 0xcd]);
    let m = Value::Object(option_map(&o).unwrap());
    assert_eq!(
        m,
        json!({
            "message_type": "inform",
            "broadcast_address": "10.0.0.255",
            "max_dhcp_message_size": 1500,
            "class_identifier": "MSFT",
            "domain_name": "ex.com\u{fffd}",
            "dns_servers": ["8.8.8.8", "1.1.1.1"],
            "utc_time_offset_sec": -3600,
            "router": "10.0.0.1",
            "time_servers": ["10.0.0.2"],
            "ntp_servers": ["10.0.0.3", "10.0.0.4"],
            "hostname": "host",
            "message": "hi",
            "boot_file_name": "pxe",
            "parameter_request_list": ["Subnet Mask", "Unknown (84)", "End"],
            "vendor_identifying_options": [{"id": 9, "data": "abcd"}]
        })
    );
}

#[test]
fn options_after_end_are_ignored_and_unknown_message_type() {
    let m = option_map(&[53, 1, 42, 255, 0, 0, 12, 1, b'x']).unwrap();
    assert_eq!(Value::Object(m), json!({"message_type": "unknown (42)"}));
    assert!(option_map(&[255, 0, 0]).is_none());
    assert!(option_map(&[]).is_none());
    // Empty lists are nil slices in Packetbeat: dropped from the event.
    assert!(option_map(&[55, 0, 255]).is_none());
    assert!(option_map(&[124, 0]).is_none());
}

#[test]
fn bad_router_drops_the_whole_option_map() {
    let msg = parser::parse(&with_options(&[
        53, 1, 1, 3, 8, 1, 1, 1, 1, 2, 2, 2, 2, 255,
    ]))
    .unwrap();
    let t = tuple("0.0.0.0", 68, "255.255.255.255", 67);
    let m = published_with(dhcp_event(Ts(0), &t, 10, &msg), &[]);
    assert!(m.get_path("dhcpv4.option").is_none());
    assert!(m.get_path("dhcpv4.op_code").is_some());
}

#[test]
fn header_fields() {
    let mut p = with_options(&[255]);
    p[0] = 7; // unknown op
    p[1] = 0; // unknown hardware type
    p[2] = 3; // hlen
    p[3] = 2; // hops
    p[10] = 0x80; // broadcast
    p[11] = 0x02; // "reserved" bit the library checks
    p[12..16].copy_from_slice(&[10, 0, 0, 5]);
    p[24..28].copy_from_slice(&[10, 0, 0, 254]);
    p[44..48].copy_from_slice(b"srv\0");
    p[108..111].copy_from_slice(b"pxe");
    let msg = parser::parse(&p).unwrap();
    let t = tuple("10.0.0.5", 68, "10.0.0.1", 67);
    let ev = dhcp_event(Ts(0), &t, p.len(), &msg);
    let d = Value::Object(ev.fields.to_map())["dhcpv4"].clone();
    assert_eq!(d["op_code"], "invalid");
    assert_eq!(d["hardware_type"], "Invalid");
    assert_eq!(d["client_mac"], "00-0B-82");
    assert_eq!(d["hops"], 2);
    assert_eq!(d["flags"], "broadcast (reserved bits not zeroed)");
    assert_eq!(d["client_ip"], "10.0.0.5");
    assert_eq!(d["relay_ip"], "10.0.0.254");
    assert_eq!(d["server_name"], "srv");
    assert_eq!(d["boot_file_name"], "pxe");
    assert!(d.get("option").is_none());
    let pb = ev.pb.as_ref().unwrap();
    assert_eq!(pb.related_ip, vec!["10.0.0.5", "10.0.0.1", "10.0.0.254"]);
}

#[test]
fn rejects_what_the_library_rejects() {
    assert_eq!(parser::parse(&REQUEST[..235]), Err(ParseError::ShortHeader));
    assert_eq!(
        parser::parse(&REQUEST[..238]),
        Err(ParseError::ShortOptions)
    );
    let mut bad = REQUEST.to_vec();
    bad[236] = 0;
    assert_eq!(parser::parse(&bad), Err(ParseError::BadMagicCookie));
    for opts in [
        &[53, 2, 1, 1][..],                // message type length must be 1
        &[53, 1][..],                      // short
        &[50, 3, 1, 2, 3][..],             // requested IP must be 4 bytes
        &[57, 1, 5][..],                   // max size must be 2 bytes
        &[6, 3, 1, 2, 3][..],              // DNS servers: multiple of 4
        &[6, 0][..],                       // DNS servers: not empty
        &[12, 5, b'a'][..],                // declared length past the end
        &[12][..],                         // code without length
        &[124, 5, 0, 0, 0, 1, 0, 255][..], // VIVC not last
    ] {
        assert!(parser::parse(&with_options(opts)).is_err(), "{opts:?}");
    }
    // Zero-length generic options are fine (the length byte is read again as a Pad).
    let ok = parser::parse(&with_options(&[12, 0, 255])).unwrap();
    assert_eq!(ok.options.len(), 3);
    assert!(matches!(ok.options[1], DhcpOption::Generic { code: 0, .. }));
}

#[test]
fn helpers_match_go_formatting() {
    assert_eq!(go_ip_string(&[192, 168, 0, 1]), "192.168.0.1");
    assert_eq!(go_ip_string(&[1, 2, 3, 4, 5]), "?0102030405");
    let mut v6 = [0u8; 16];
    v6[10] = 0xff;
    v6[11] = 0xff;
    v6[12..].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(go_ip_string(&v6), "1.2.3.4");
    assert_eq!(go_string(&[b'a', 0xe2, 0x82, b'b']), "a\u{fffd}\u{fffd}b");
    assert_eq!(flags_string(0), "unicast");
    assert_eq!(format_hw_addr(&[0xab; 16], 40), vec!["AB"; 16].join("-"));
}

#[test]
fn truncated_and_corrupted_payloads_never_panic() {
    let mut sink = EventSink::new();
    let mut a = Dhcpv4Udp::default();
    let t = tuple("0.0.0.0", 68, "255.255.255.255", 67);
    let mut n = 0;
    for base in [DISCOVER, OFFER, REQUEST, ACK] {
        for cut in 0..=base.len() {
            a.parse_udp(
                &mut sink,
                &UdpPacket {
                    ts: Ts(0),
                    tuple: t,
                    payload: &base[..cut],
                },
            );
            n += 1;
        }
        let mut seed = 0x9e37_79b9u32;
        for _ in 0..2000 {
            let mut p = base.to_vec();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = 236 + (seed as usize % (p.len() - 236));
                p[i] = (seed >> 24) as u8;
            }
            a.parse_udp(
                &mut sink,
                &UdpPacket {
                    ts: Ts(0),
                    tuple: t,
                    payload: &p,
                },
            );
            n += 1;
        }
    }
    assert!(n > 0);
    assert!(a.parse_failures() > 0);
    assert!(!sink.is_empty());
}

#[test]
fn an_option_given_twice_keeps_the_last_value() {
    // An empty parameter request list is dropped: it does not replace the earlier one.
    let m = option_map(&[12, 1, b'a', 55, 1, 1, 12, 1, b'b', 55, 0, 255]).unwrap();
    assert_eq!(
        Value::Object(m),
        json!({"hostname": "b", "parameter_request_list": ["Subnet Mask"]})
    );
}
