//! BPF filters for live capture: the filter Packetbeat generates from the enabled protocols'
//! ports when `bpf_filter` is not set, and the check that a filter compiles (at start and in
//! `packetbeat test config`).
//!
//! The generated string is Packetbeat's `ProtocolsStruct.BpfFilter` (packetbeat/protos/protos.go)
//! as `setupSniffer` (packetbeat/beater/processor.go) calls it: protocols in protocol-id order
//! (the order Packetbeat registers them in, which is their package names' order: the order of
//! [`ANALYZERS`](crate::protos::registry::ANALYZERS)), each port as `tcp port N`, `udp port N`,
//! or `port N` for a protocol whose Go plugin handles both transports, then `icmp or icmp6` when an
//! ICMP section is enabled, joined with ` or `; `with_vlans` turns `F` into `F or (vlan and (F))`.
//! No filter is generated when flows are enabled (flows count every packet).

use crate::config::types::ProtocolSection;
use crate::protos::registry::{ProtocolCommonConfig, ANALYZERS};
use crate::protos::ProtocolModules;

/// Which transports Packetbeat's Go plugin of a protocol implements (`TCPPlugin`, `UDPPlugin`):
/// this, not the configured transport, decides between `tcp port`, `udp port` and `port`.
fn go_transports(name: &str) -> (bool, bool) {
    match name {
        "dhcpv4" => (false, true),
        "dns" | "memcache" | "sip" => (true, true),
        _ => (true, false),
    }
}

/// The filter Packetbeat would generate: `None` when it generates none (flows enabled).
/// `modules` are the built analyzers (their ports, defaults applied); `sections` supply the
/// ports of protocols this build accepts but does not analyse, which Packetbeat filters on too.
pub fn generated_filter(
    modules: &ProtocolModules,
    sections: &[ProtocolSection],
    with_vlans: bool,
    flows_enabled: bool,
) -> Option<String> {
    if flows_enabled {
        return None;
    }
    let mut with_icmp = false;
    // Protocol name → its ports; a protocol configured twice keeps the last (Packetbeat's
    // register overwrites).
    let mut ports: Vec<(&'static str, Vec<u16>)> = Vec::new();
    let mut set = |name: &'static str, p: Vec<u16>| {
        ports.retain(|(n, _)| *n != name);
        ports.push((name, p));
    };
    for m in &modules.modules {
        if m.name() == "icmp" {
            with_icmp = true;
            continue;
        }
        let p = if !m.tcp_ports().is_empty() {
            m.tcp_ports()
        } else {
            m.udp_ports()
        };
        set(m.name(), p.to_vec());
    }
    for s in sections {
        let Some(entry) = ANALYZERS.iter().find(|e| e.name == s.kind) else {
            continue;
        };
        if entry.build.is_some() {
            continue; // built above
        }
        let common: ProtocolCommonConfig =
            serde_yaml::from_value(s.options.clone()).unwrap_or_default();
        if common.enabled {
            set(entry.name, common.ports);
        }
    }
    let mut exprs: Vec<String> = Vec::new();
    for entry in ANALYZERS.iter() {
        let Some((_, p)) = ports.iter().find(|(n, _)| *n == entry.name) else {
            continue;
        };
        let (tcp, udp) = go_transports(entry.name);
        for port in p {
            exprs.push(match (tcp, udp) {
                (true, false) => format!("tcp port {port}"),
                (false, true) => format!("udp port {port}"),
                _ => format!("port {port}"),
            });
        }
    }
    if with_icmp {
        exprs.push("icmp".into());
        exprs.push("icmp6".into());
    }
    let filter = exprs.join(" or ");
    Some(if with_vlans {
        format!("{filter} or (vlan and ({filter}))")
    } else {
        filter
    })
}

/// The filter an interface captures with: its `bpf_filter`, else the generated one; `None` (or
/// an empty string) captures everything.
pub fn effective_filter(
    iface: &crate::config::InterfaceConfig,
    modules: &ProtocolModules,
    sections: &[ProtocolSection],
    flows_enabled: bool,
) -> Option<String> {
    match iface.bpf_filter.as_deref() {
        Some(f) if !f.is_empty() => Some(f.to_string()),
        _ => generated_filter(modules, sections, iface.with_vlans, flows_enabled)
            .filter(|f| !f.is_empty()),
    }
}

/// Compiles `expr` for `linktype` (a DLT number) as libpcap would for a live capture (with
/// libpcap's default snaplen); the error is libpcap's message.
pub fn compile(expr: &str, linktype: i32) -> Result<pcap::BpfProgram, String> {
    let dead = pcap::Capture::dead_with_precision(pcap::Linktype(linktype), pcap::Precision::Micro)
        .map_err(|e| format!("pcap_open_dead: {e}"))?;
    dead.compile(expr, true)
        .map_err(|e| format!("invalid bpf_filter '{expr}': {e}"))
}

/// Checks that `expr` compiles for an Ethernet device (what `packetbeat test config` and the
/// start of a capture check).
pub fn check(expr: &str) -> Result<(), String> {
    compile(expr, 1).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protos::build_modules;

    fn sections(yaml: &str) -> Vec<ProtocolSection> {
        let list: Vec<serde_yaml::Value> = serde_yaml::from_str(yaml).unwrap();
        list.into_iter()
            .enumerate()
            .map(|(i, v)| {
                let mut m = v.as_mapping().unwrap().clone();
                let kind = m.remove("type").unwrap().as_str().unwrap().to_string();
                ProtocolSection {
                    kind,
                    options: serde_yaml::Value::Mapping(m),
                    key: format!("packetbeat.protocols.{i}"),
                }
            })
            .collect()
    }

    fn filter(yaml: &str, vlans: bool) -> String {
        let s = sections(yaml);
        let m = build_modules(&s, "test").unwrap();
        generated_filter(&m, &s, vlans, false).unwrap()
    }

    /// The protocols of the stock packetbeat.yml, listed out of id order: the filter follows
    /// Packetbeat's ids (amqp < cassandra < dhcpv4 < dns < http < memcache < mongodb < mysql <
    /// nfs < pgsql < redis < sip < thrift < tls), DNS, memcache and SIP as `port N`, DHCP as
    /// `udp port`, ICMP last.
    #[test]
    fn stock_config_string() {
        let yaml = r#"
- type: icmp
  enabled: true
- type: tls
  ports: [443, 993, 995, 5223, 8443, 8883, 9243]
- type: http
  ports: [80, 8080, 8000, 5000, 8002]
- type: dhcpv4
  ports: [67, 68]
- type: dns
  ports: [53]
- type: amqp
  ports: [5672]
- type: cassandra
  ports: [9042]
- type: memcache
  ports: [11211]
- type: mysql
  ports: [3306, 3307]
- type: pgsql
  ports: [5432]
- type: redis
  ports: [6379]
- type: thrift
  ports: [9090]
- type: mongodb
  ports: [27017]
- type: nfs
  ports: [2049]
- type: sip
  ports: [5060]
"#;
        assert_eq!(
            filter(yaml, false),
            "tcp port 5672 or tcp port 9042 or udp port 67 or udp port 68 or port 53 or \
             tcp port 80 or tcp port 8080 or tcp port 8000 or tcp port 5000 or tcp port 8002 or \
             port 11211 or tcp port 27017 or tcp port 3306 or tcp port 3307 or tcp port 2049 or \
             tcp port 5432 or tcp port 6379 or port 5060 or tcp port 9090 or tcp port 443 or \
             tcp port 993 or tcp port 995 or tcp port 5223 or tcp port 8443 or tcp port 8883 or \
             tcp port 9243 or icmp or icmp6"
        );
    }

    #[test]
    fn vlans_disabled_sections_and_no_icmp() {
        let yaml = "[{type: http, ports: [80]}, {type: redis, ports: [6379], enabled: false}, {type: icmp, enabled: false}]";
        assert_eq!(filter(yaml, false), "tcp port 80");
        assert_eq!(
            filter(yaml, true),
            "tcp port 80 or (vlan and (tcp port 80))"
        );
        // ICMP alone: Packetbeat's string starts with the ICMP terms.
        assert_eq!(
            filter("[{type: icmp}]", true),
            "icmp or icmp6 or (vlan and (icmp or icmp6))"
        );
    }

    #[test]
    fn no_filter_with_flows_and_bpf_filter_wins() {
        let s = sections("[{type: http, ports: [80]}]");
        let m = build_modules(&s, "test").unwrap();
        assert_eq!(generated_filter(&m, &s, false, true), None);
        let mut iface = crate::config::InterfaceConfig::default();
        assert_eq!(
            effective_filter(&iface, &m, &s, false).as_deref(),
            Some("tcp port 80")
        );
        assert_eq!(effective_filter(&iface, &m, &s, true), None);
        iface.bpf_filter = Some("udp".into());
        assert_eq!(
            effective_filter(&iface, &m, &s, true).as_deref(),
            Some("udp")
        );
    }

    #[test]
    fn compile_checks() {
        assert!(check("tcp port 80 or (vlan and (tcp port 80))").is_ok());
        let e = check("tcp port eighty").unwrap_err();
        assert!(
            e.starts_with("invalid bpf_filter 'tcp port eighty': "),
            "{e}"
        );
        // SLL (the `any` device) compiles the same expressions.
        assert!(compile("udp port 53", 113).is_ok());
    }
}
