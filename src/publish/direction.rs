//! `network.direction`, as Packetbeat computes it: first from the host's own addresses
//! (ingress/egress), then from `internal_networks` (inbound/outbound/internal/external).
//! Named ranges follow libbeat's `conditions.NetworkContains`.

use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone)]
enum NetSpec {
    Cidr(IpNet),
    Named(&'static str),
}

/// A parsed `internal_networks` list.
#[derive(Debug, Clone, Default)]
pub struct Networks(Vec<NetSpec>);

pub const NAMED: &[&str] = &[
    "loopback",
    "global_unicast",
    "unicast",
    "link_local_unicast",
    "interface_local_multicast",
    "link_local_multicast",
    "multicast",
    "unspecified",
    "private",
    "public",
];

impl Networks {
    pub fn parse(list: &[String]) -> Result<Networks, String> {
        let mut out = Vec::new();
        for s in list {
            if let Some(n) = NAMED.iter().find(|n| **n == s.as_str()) {
                out.push(NetSpec::Named(n));
            } else if let Ok(net) = s.parse::<IpNet>() {
                out.push(NetSpec::Cidr(net));
            } else if let Ok(ip) = s.parse::<IpAddr>() {
                out.push(NetSpec::Cidr(IpNet::from(ip)));
            } else {
                return Err(format!(
                    "invalid network '{s}': expected a CIDR or one of {}",
                    NAMED.join(", ")
                ));
            }
        }
        Ok(Networks(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| match n {
            NetSpec::Cidr(net) => net.contains(&ip),
            NetSpec::Named(name) => named_contains(name, ip),
        })
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        // libbeat's own `privateIPv6` is fd00::/8 (not Go's `IsPrivate`, fc00::/7).
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff00) == 0xfd00,
    }
}

fn is_link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_link_local_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 224 && v4.octets()[1] == 0 && v4.octets()[2] == 0,
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    }
}

fn is_global_unicast(ip: IpAddr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || is_link_local_unicast(ip)
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()))
}

/// libbeat's named networks (`conditions/network.go`); false for an unknown name.
pub fn named_contains(name: &str, ip: IpAddr) -> bool {
    // Go reads an IPv4-mapped IPv6 address as the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match name {
        "loopback" => ip.is_loopback(),
        "global_unicast" | "unicast" => is_global_unicast(ip),
        "link_local_unicast" => is_link_local_unicast(ip),
        "interface_local_multicast" => {
            matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xff0f) == 0xff01)
        }
        "link_local_multicast" => is_link_local_multicast(ip),
        "multicast" => ip.is_multicast(),
        "unspecified" => ip.is_unspecified(),
        "private" => is_private(ip),
        // `isLocalOrPrivate`: other multicast ranges are public.
        "public" => {
            !(ip.is_loopback()
                || is_private(ip)
                || ip.is_unspecified()
                || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
                || is_link_local_unicast(ip)
                || is_link_local_multicast(ip)
                || matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xff0f) == 0xff01))
        }
        _ => false,
    }
}

/// `hostBasedDirection`: traffic to or from this host (loopback, link-local or one of its
/// addresses) is `ingress` / `egress`.
pub fn host_based(src: Option<IpAddr>, dst: Option<IpAddr>, local_ips: &[IpAddr]) -> &'static str {
    let own = |ip: IpAddr| {
        ip.is_loopback()
            || is_link_local_unicast(ip)
            || is_link_local_multicast(ip)
            || local_ips.contains(&ip)
    };
    if dst.is_some_and(own) {
        return "ingress";
    }
    if src.is_some_and(own) {
        return "egress";
    }
    "unknown"
}

/// `perimeterBasedDirection` against `internal_networks`.
pub fn perimeter_based(src: Option<IpAddr>, dst: Option<IpAddr>, nets: &Networks) -> &'static str {
    let s = src.is_some_and(|ip| nets.contains(ip));
    let d = dst.is_some_and(|ip| nets.contains(ip));
    match (s, d) {
        (true, true) => "internal",
        (true, false) => "outbound",
        (false, true) => "inbound",
        (false, false) => "external",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        let nets = Networks::parse(&["private".into()]).unwrap();
        let p = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(host_based(p("10.0.0.1"), p("127.0.0.1"), &[]), "ingress");
        assert_eq!(
            perimeter_based(p("10.0.0.1"), p("8.8.8.8"), &nets),
            "outbound"
        );
        assert_eq!(
            perimeter_based(p("8.8.8.8"), p("192.168.1.1"), &nets),
            "inbound"
        );
        assert_eq!(
            perimeter_based(p("10.0.0.1"), p("172.16.0.1"), &nets),
            "internal"
        );
        assert!(Networks::parse(&["nonsense".into()]).is_err());
        assert!(Networks::parse(&["10.0.0.0/8".into()])
            .unwrap()
            .contains("10.1.2.3".parse().unwrap()));
    }
}
