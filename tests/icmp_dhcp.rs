//! ICMP and DHCPv4 end to end: the binary on Packetbeat's own captures, checked against what
//! Packetbeat's system tests (test_0050_icmp.py, test_0066_dhcp.py), its unit tests and the
//! libbeat Community ID vectors expect.

mod common;
use common::*;
use serde_json::{json, Value};
use std::net::IpAddr;

const CONFIG: &str = r#"
packetbeat.protocols:
  - type: icmp
    enabled: true
  - type: dhcpv4
    ports: [67, 68]
"#;

fn run(pcap: &str) -> Option<Vec<Value>> {
    let path = shared_or_skip(&format!("pcaps/{pcap}"))?;
    let run = run_capture(&path, CONFIG, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    Some(run.events)
}

fn s<'a>(v: &'a Value, path: &str) -> &'a Value {
    get(v, path).unwrap_or(&Value::Null)
}

/// `assert_common_fields` and `assert_common_icmp{4,6}_fields` of test_0050_icmp.py.
fn assert_icmp_echo(o: &Value, v6: bool) {
    assert_eq!(s(o, "type"), "icmp");
    assert_eq!(s(o, "event.dataset"), "icmp");
    assert_eq!(s(o, "source.bytes"), 4);
    assert_eq!(s(o, "destination.bytes"), 4);
    assert!(get(o, "server.port").is_none());
    assert!(get(o, "transport").is_none());
    assert_eq!(s(o, "status"), "OK");
    assert_eq!(s(o, "icmp.request.message"), "EchoRequest");
    assert_eq!(s(o, "icmp.response.message"), "EchoReply");
    assert_eq!(s(o, "icmp.request.code"), 0);
    assert_eq!(s(o, "icmp.response.code"), 0);
    assert_eq!(s(o, "event.kind"), "event");
    assert_eq!(s(o, "event.category"), &json!(["network"]));
    assert_eq!(s(o, "event.type"), &json!(["connection"]));
    assert!(get(o, "network.protocol").is_none());
    assert!(get(o, "error").is_none());
    if v6 {
        assert_eq!(s(o, "icmp.version"), 6);
        assert_eq!(s(o, "network.transport"), "ipv6-icmp");
        assert_eq!(s(o, "network.type"), "ipv6");
        assert_eq!(s(o, "server.ip"), "::2");
        assert_eq!(s(o, "client.ip"), "::1");
        assert_eq!(s(o, "path"), "::2");
        assert_eq!(s(o, "icmp.request.type"), 128);
        assert_eq!(s(o, "icmp.response.type"), 129);
        assert_eq!(
            s(o, "network.community_id"),
            "1:9UpHcZHFAOl8WqZVOs5YRQ5wDGE="
        );
    } else {
        assert_eq!(s(o, "icmp.version"), 4);
        assert_eq!(s(o, "network.transport"), "icmp");
        assert_eq!(s(o, "network.type"), "ipv4");
        assert_eq!(s(o, "server.ip"), "10.0.0.2");
        assert_eq!(s(o, "client.ip"), "10.0.0.1");
        assert_eq!(s(o, "path"), "10.0.0.2");
        assert_eq!(s(o, "icmp.request.type"), 8);
        assert_eq!(s(o, "icmp.response.type"), 0);
        assert_eq!(
            s(o, "network.community_id"),
            "1:YcMyyWJfhc95EW1GfXt6jlZ3DiQ="
        );
    }
    assert_eq!(s(o, "network.bytes"), 8);
    assert_eq!(
        s(o, "related.ip"),
        &json!([s(o, "client.ip"), s(o, "server.ip")])
    );
}

/// `@timestamp` exactly as the system tests expect it (milliseconds), equal to `event.start`.
fn assert_ts(o: &Value, expected: &str) {
    assert_eq!(s(o, "@timestamp"), expected);
    assert_eq!(s(o, "event.start"), expected);
}

#[test]
fn icmp_2_pings() {
    let Some(objs) = run("icmp/icmp_2_pings.pcap") else {
        return;
    };
    assert_eq!(objs.len(), 2);
    assert_ts(&objs[0], "2015-10-19T21:47:49.900Z");
    assert_eq!(s(&objs[0], "event.duration"), 12152000);
    assert_ts(&objs[1], "2015-10-19T21:47:49.924Z");
    assert_eq!(s(&objs[1], "event.duration"), 11935000);
    for o in &objs {
        assert_icmp_echo(o, false);
    }
}

#[test]
fn icmp4_ping() {
    let Some(objs) = run("icmp/icmp4_ping.pcap") else {
        return;
    };
    assert_eq!(objs.len(), 1);
    assert_ts(&objs[0], "2015-10-19T20:49:23.817Z");
    assert_eq!(s(&objs[0], "event.duration"), 20130000);
    assert_eq!(s(&objs[0], "event.end"), "2015-10-19T20:49:23.837Z");
    assert_icmp_echo(&objs[0], false);
}

#[test]
fn icmp4_ping_over_vlan() {
    let Some(objs) = run("icmp/icmp4_ping_over_vlan.pcap") else {
        return;
    };
    assert_eq!(objs.len(), 1);
    assert_ts(&objs[0], "2015-10-19T20:49:23.849Z");
    assert_eq!(s(&objs[0], "event.duration"), 12192000);
    assert_icmp_echo(&objs[0], false);
}

#[test]
fn icmp6_ping() {
    let Some(objs) = run("icmp/icmp6_ping.pcap") else {
        return;
    };
    assert_eq!(objs.len(), 1);
    assert_ts(&objs[0], "2015-10-19T20:49:23.872Z");
    assert_eq!(s(&objs[0], "event.duration"), 16439000);
    assert_icmp_echo(&objs[0], true);
}

#[test]
fn icmp6_ping_over_vlan() {
    let Some(objs) = run("icmp/icmp6_ping_over_vlan.pcap") else {
        return;
    };
    assert_eq!(objs.len(), 1);
    assert_ts(&objs[0], "2015-10-19T20:49:23.901Z");
    assert_eq!(s(&objs[0], "event.duration"), 12333000);
    assert_icmp_echo(&objs[0], true);
}

/// A lone echo request inside QinQ: published at the end of the capture as on timeout.
#[test]
fn unanswered_request_in_qinq() {
    let Some(objs) = run("802.1q-q-in-q-icmp.pcap") else {
        return;
    };
    assert_eq!(objs.len(), 1);
    let o = &objs[0];
    assert_eq!(s(o, "status"), "Error");
    assert_eq!(
        s(o, "error.message"),
        "Request was received without an associated response."
    );
    assert_eq!(s(o, "icmp.request.message"), "EchoRequest");
    assert!(get(o, "icmp.response").is_none());
    assert!(get(o, "event.end").is_none() && get(o, "event.duration").is_none());
    assert!(get(o, "destination.bytes").is_none());
    assert_eq!(s(o, "source.ip"), "192.168.1.1");
    assert_eq!(s(o, "path"), "192.168.1.2");
}

/// golden/libbeat_flowhash/<pcap>.log: `ts | community_id | src dst proto type code`.
type FlowhashEntry = (IpAddr, IpAddr, u8, u8, String);

fn flowhash_log(name: &str) -> Option<Vec<FlowhashEntry>> {
    let path = shared_or_skip(&format!("golden/libbeat_flowhash/{name}.log"))?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(
        text.lines()
            .filter_map(|l| {
                let parts: Vec<&str> = l.split(" | ").collect();
                let f: Vec<&str> = parts.get(2)?.split_whitespace().collect();
                let proto: u8 = f.get(2)?.parse().ok()?;
                if proto != 1 && proto != 58 {
                    return None;
                }
                Some((
                    f[0].parse().ok()?,
                    f[1].parse().ok()?,
                    proto,
                    f[3].parse().ok()?,
                    parts[1].to_string(),
                ))
            })
            .collect(),
    )
}

fn check_flowhash(pcap: &str) {
    let (Some(objs), Some(log)) = (run(&format!("libbeat_flowhash/{pcap}")), flowhash_log(pcap))
    else {
        return;
    };
    // Every ICMP message is a request (published as its own event) except the echo replies,
    // which all find their request in these captures.
    let replies = log
        .iter()
        .filter(|(_, _, p, t, _)| (*p == 1 && *t == 0) || (*p == 58 && *t == 129))
        .count();
    assert_eq!(objs.len(), log.len() - replies, "{pcap}");
    for o in &objs {
        let src: IpAddr = s(o, "source.ip").as_str().unwrap().parse().unwrap();
        let dst: IpAddr = s(o, "destination.ip").as_str().unwrap().parse().unwrap();
        let ty = s(o, "icmp.request.type").as_u64().unwrap() as u8;
        let id = s(o, "network.community_id").as_str().unwrap();
        assert!(
            log.iter()
                .any(|(a, b, _, t, c)| *a == src && *b == dst && *t == ty && c == id),
            "{pcap}: no packet {src} -> {dst} type {ty} with {id}"
        );
    }
}

#[test]
fn community_id_matches_libbeat_vectors_icmp4() {
    check_flowhash("icmp.pcap");
}

#[test]
fn community_id_matches_libbeat_vectors_icmp6() {
    check_flowhash("icmp6.pcap");
}

/// Neighbour discovery and errors in icmp6.pcap: requests without counterpart.
#[test]
fn icmp6_non_echo_messages() {
    let Some(objs) = run("libbeat_flowhash/icmp6.pcap") else {
        return;
    };
    let find = |msg: &str| {
        objs.iter()
            .find(|o| s(o, "icmp.request.message") == msg)
            .unwrap()
    };
    let ns = find("NeighborSolicitation");
    assert_eq!(s(ns, "status"), "OK");
    assert_eq!(s(ns, "source.bytes"), 24);
    assert!(get(ns, "error").is_none());
    let te = find("TimeExceeded(HopLimitExceeded)");
    assert_eq!(s(te, "status"), "Error");
    assert!(get(te, "error").is_none());
    let du = find("DestinationUnreachable(PortUnreachable)");
    assert_eq!(s(du, "status"), "Error");
    let rs = find("RouterSolicitation");
    assert!(get(rs, "source.bytes").is_none());
    assert_eq!(s(rs, "path"), "ff02::2");
}

#[test]
fn dhcp() {
    let Some(objs) = run("dhcp.pcap") else { return };
    assert_eq!(objs.len(), 4);
    let prl = json!(["Subnet Mask", "Router", "Domain Name Server", "NTP Servers"]);
    for (i, o) in objs.iter().enumerate() {
        // test_0066_dhcp.py (its 6.x names: client_ip → client.ip, ip/port → server.*,
        // transport → network.transport).
        assert_eq!(s(o, "client.port"), 68);
        assert_eq!(s(o, "server.port"), 67);
        assert_eq!(s(o, "dhcpv4.client_mac"), "00-0B-82-01-FC-42");
        assert_eq!(s(o, "dhcpv4.flags"), "unicast");
        assert_eq!(s(o, "dhcpv4.hardware_type"), "Ethernet");
        assert_eq!(s(o, "dhcpv4.hops"), 0);
        assert_eq!(s(o, "dhcpv4.seconds"), 0);
        assert_eq!(s(o, "status"), "OK");
        assert_eq!(s(o, "network.transport"), "udp");
        assert_eq!(s(o, "network.protocol"), "dhcpv4");
        assert_eq!(s(o, "event.dataset"), "dhcpv4");
        assert_eq!(s(o, "type"), "dhcpv4");
        assert_eq!(s(o, "event.start"), s(o, "@timestamp"));
        assert!(get(o, "event.end").is_none());
        let xid = if i < 2 { "0x00003d1d" } else { "0x00003d1e" };
        assert_eq!(s(o, "dhcpv4.transaction_id"), xid);
        if i % 2 == 0 {
            assert_eq!(s(o, "client.ip"), "0.0.0.0");
            assert_eq!(s(o, "server.ip"), "255.255.255.255");
            assert_eq!(s(o, "dhcpv4.op_code"), "bootrequest");
            assert_eq!(s(o, "dhcpv4.option.parameter_request_list"), &prl);
            assert_eq!(s(o, "source.bytes"), 272);
            assert_eq!(s(o, "client.bytes"), 272);
            assert!(get(o, "dhcpv4.assigned_ip").is_none());
            assert_eq!(
                s(o, "network.community_id"),
                "1:t9O1j0qj71O4wJM7gnaHtgmfev8="
            );
        } else {
            assert_eq!(s(o, "client.ip"), "192.168.0.10");
            assert_eq!(s(o, "server.ip"), "192.168.0.1");
            assert_eq!(s(o, "dhcpv4.op_code"), "bootreply");
            assert_eq!(s(o, "dhcpv4.assigned_ip"), "192.168.0.10");
            assert_eq!(s(o, "dhcpv4.option.ip_address_lease_time_sec"), 3600);
            assert_eq!(s(o, "dhcpv4.option.rebinding_time_sec"), 3150);
            assert_eq!(s(o, "dhcpv4.option.renewal_time_sec"), 1800);
            assert_eq!(s(o, "dhcpv4.option.server_identifier"), "192.168.0.1");
            assert_eq!(s(o, "dhcpv4.option.subnet_mask"), "255.255.255.0");
            assert_eq!(s(o, "source.bytes"), 300);
            assert_eq!(s(o, "server.bytes"), 300);
            assert!(get(o, "client.bytes").is_none());
            assert_eq!(s(o, "related.ip"), &json!(["192.168.0.1", "192.168.0.10"]));
            assert_eq!(
                s(o, "network.community_id"),
                "1:VbRSZnvQqvLiQRhYHLrdVI17sLQ="
            );
        }
    }
    assert_eq!(s(&objs[0], "dhcpv4.option.message_type"), "discover");
    assert_eq!(s(&objs[0], "dhcpv4.option.requested_ip_address"), "0.0.0.0");
    assert_eq!(s(&objs[1], "dhcpv4.option.message_type"), "offer");
    assert_eq!(s(&objs[2], "dhcpv4.option.message_type"), "request");
    assert_eq!(
        s(&objs[2], "dhcpv4.option.requested_ip_address"),
        "192.168.0.10"
    );
    assert_eq!(
        s(&objs[2], "dhcpv4.option.server_identifier"),
        "192.168.0.1"
    );
    assert_eq!(s(&objs[3], "dhcpv4.option.message_type"), "ack");
}

/// dhcpv4 without `ports` listens on 67 and 68, as in Packetbeat.
#[test]
fn dhcp_default_ports() {
    let Some(path) = shared_or_skip("pcaps/dhcp.pcap") else {
        return;
    };
    let run = run_capture(&path, "packetbeat.protocols:\n  - type: dhcpv4\n", &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.events.len(), 4);
}

/// Packetbeat 8's own ICMPv6 event for this capture (elastic/integrations
/// network_traffic/data_stream/icmp/sample_event.json, agent 8.0.0-beta1), minus what depends
/// on the host, the agent and the replay's timing.
#[test]
fn icmp6_ping_matches_packetbeat_8_sample_event() {
    let Some(objs) = run("icmp/icmp6_ping.pcap") else {
        return;
    };
    let o = &objs[0];
    let expected = json!({
        "client": {"bytes": 4, "ip": "::1"},
        "destination": {"bytes": 4, "ip": "::2"},
        "icmp": {
            "request": {"code": 0, "message": "EchoRequest", "type": 128},
            "response": {"code": 0, "message": "EchoReply", "type": 129},
            "version": 6
        },
        "network": {
            "bytes": 8,
            "community_id": "1:9UpHcZHFAOl8WqZVOs5YRQ5wDGE=",
            "direction": "egress",
            "transport": "ipv6-icmp",
            "type": "ipv6"
        },
        "path": "::2",
        "related": {"ip": ["::1", "::2"]},
        "server": {"bytes": 4, "ip": "::2"},
        "source": {"bytes": 4, "ip": "::1"},
        "status": "OK",
        "type": "icmp"
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&o[k], v, "{k}");
    }
    let mut event = o["event"].clone();
    for k in ["start", "end", "duration"] {
        event.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(
        event,
        json!({"category": ["network"], "dataset": "icmp", "kind": "event", "type": ["connection"]})
    );
}

/// Packetbeat 8's own DHCPv4 event for the DISCOVER of this capture (elastic/integrations
/// network_traffic docs, agent 8.0.0), minus host, agent and time.
#[test]
fn dhcp_discover_matches_packetbeat_8_sample_event() {
    let Some(objs) = run("dhcp.pcap") else { return };
    let o = &objs[0];
    let expected = json!({
        "client": {"bytes": 272, "ip": "0.0.0.0", "port": 68},
        "destination": {"ip": "255.255.255.255", "port": 67},
        "dhcpv4": {
            "client_mac": "00-0B-82-01-FC-42",
            "flags": "unicast",
            "hardware_type": "Ethernet",
            "hops": 0,
            "op_code": "bootrequest",
            "option": {
                "message_type": "discover",
                "parameter_request_list": ["Subnet Mask", "Router", "Domain Name Server", "NTP Servers"],
                "requested_ip_address": "0.0.0.0"
            },
            "seconds": 0,
            "transaction_id": "0x00003d1d"
        },
        "network": {
            "bytes": 272,
            "community_id": "1:t9O1j0qj71O4wJM7gnaHtgmfev8=",
            "direction": "unknown",
            "protocol": "dhcpv4",
            "transport": "udp",
            "type": "ipv4"
        },
        "related": {"ip": ["0.0.0.0", "255.255.255.255"]},
        "server": {"ip": "255.255.255.255", "port": 67},
        "source": {"bytes": 272, "ip": "0.0.0.0", "port": 68},
        "status": "OK",
        "type": "dhcpv4"
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&o[k], v, "{k}");
    }
    let mut event = o["event"].clone();
    event.as_object_mut().unwrap().remove("start");
    assert_eq!(
        event,
        json!({"category": ["network"], "dataset": "dhcpv4", "kind": "event", "type": ["connection", "protocol"]})
    );
}
