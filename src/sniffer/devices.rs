//! Capture devices: the list `packetbeat devices` prints and `device: N` indexes, from libpcap's
//! `pcap_findalldevs` as Packetbeat gets it (so the pseudo-devices libpcap offers, such as
//! `nflog` or `dbus-system`, are listed and numbered as there), or, when libpcap cannot list
//! them, from `getifaddrs` (through `nix::ifaddrs`) in `pcap_findalldevs` order; plus
//! Packetbeat's device name resolution (`""` → `any` on Linux, numeric indexes,
//! `default_route*`).

use std::collections::HashMap;
use std::net::IpAddr;

/// One capture device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    /// libpcap's description (only the `any` pseudo-device has one on Linux).
    pub description: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
}

/// Every capture device, in the order Packetbeat numbers them.
pub fn devices() -> Vec<Device> {
    match pcap::Device::list() {
        Ok(list) if !list.is_empty() => list
            .into_iter()
            .map(|d| Device {
                addresses: d.addresses.iter().map(|a| a.addr).collect(),
                up: d.flags.is_up(),
                running: d.flags.is_running(),
                loopback: d.flags.is_loopback(),
                description: d.desc,
                name: d.name,
            })
            .collect(),
        _ => devices_without_libpcap(),
    }
}

/// The device list from `getifaddrs`, ordered as libpcap orders it.
fn devices_without_libpcap() -> Vec<Device> {
    let mut list = system_devices();
    if cfg!(target_os = "linux") {
        list.push(Device {
            name: "any".into(),
            description: Some("Pseudo-device that captures on all interfaces".into()),
            addresses: Vec::new(),
            up: true,
            running: true,
            loopback: false,
        });
    }
    // libpcap sorts by a "figure of merit": running, up, non-loopback devices first, then by the
    // unit number at the end of the name; `any` after the real devices of its class. Stable, so
    // ties keep the system's order.
    list.sort_by_key(merit);
    list
}

/// The device list as (name, addresses), index = position (what `device: N` refers to).
pub fn device_list() -> Vec<(String, Vec<IpAddr>)> {
    devices()
        .into_iter()
        .map(|d| (d.name, d.addresses))
        .collect()
}

/// The lines `packetbeat devices` prints after `N: `
/// (`eth0 (No description available) (10.0.0.2 fe80::1)`).
pub fn format_device_names(devs: &[Device], with_description: bool, with_ip: bool) -> Vec<String> {
    devs.iter()
        .map(|d| {
            let mut s = d.name.clone();
            if with_description {
                s.push_str(&format!(
                    " ({})",
                    d.description
                        .as_deref()
                        .unwrap_or("No description available")
                ));
            }
            if with_ip {
                if d.addresses.is_empty() {
                    s.push_str(" (Not assigned ip address)");
                } else {
                    let ips: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
                    s.push_str(&format!(" ({})", ips.join(" ")));
                }
            }
            s
        })
        .collect()
}

/// Resolves a configured device name as Packetbeat's `resolveDeviceName` does: empty → `any`
/// (Linux) or `default_route`; `default_route`, `default_route_ipv4`, `default_route_ipv6` → the
/// device carrying that default route; a number → that entry of [`device_list`]; anything else
/// is returned as is.
pub fn resolve_device_name(name: &str) -> Result<String, String> {
    let mut name = name.to_string();
    if name.is_empty() {
        if cfg!(target_os = "linux") {
            return Ok("any".into());
        }
        name = "default_route".into();
    }
    if name.starts_with("default_route") {
        let iface = match name.as_str() {
            "default_route" => default_route_v4().or_else(default_route_v6),
            "default_route_ipv4" => default_route_v4(),
            "default_route_ipv6" => default_route_v6(),
            _ => return Err(format!("invalid default route: {name}")),
        };
        return iface
            .ok_or_else(|| "failed to get default route device: no route found".to_string());
    }
    let Ok(index) = name.parse::<usize>() else {
        return Ok(name);
    };
    let list = device_list();
    match list.get(index) {
        Some((n, _)) => {
            tracing::info!(target: "packetbeat::sniffer", "Resolved device index {index} to device: {n}");
            Ok(n.clone())
        }
        None => Err(format!(
            "invalid device index {index}: looking for device index {index}, but there are only {} devices",
            list.len()
        )),
    }
}

fn merit(d: &Device) -> u32 {
    let mut n: u32 = if d.name == "any" {
        0x1FFF_FFFF
    } else {
        let digits: String = d
            .name
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let digits: String = digits.chars().rev().collect();
        digits.parse::<u32>().unwrap_or(0).min(0x0FFF_FFFF)
    };
    if !d.running {
        n |= 0x8000_0000;
    }
    if !d.up {
        n |= 0x4000_0000;
    }
    if d.loopback {
        n |= 0x2000_0000;
    }
    n
}

#[cfg(unix)]
fn system_devices() -> Vec<Device> {
    use nix::net::if_::InterfaceFlags;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut order: Vec<String> = Vec::new();
    let mut by_name: HashMap<String, Device> = HashMap::new();
    for ifa in addrs {
        let flags = ifa.flags;
        let dev = by_name
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| {
                order.push(ifa.interface_name.clone());
                Device {
                    name: ifa.interface_name.clone(),
                    description: None,
                    addresses: Vec::new(),
                    up: flags.contains(InterfaceFlags::IFF_UP),
                    running: flags.contains(InterfaceFlags::IFF_RUNNING),
                    loopback: flags.contains(InterfaceFlags::IFF_LOOPBACK),
                }
            });
        if let Some(ip) = ifa.address.as_ref().and_then(sockaddr_ip) {
            dev.addresses.push(ip);
        }
    }
    order
        .into_iter()
        .filter_map(|n| by_name.remove(&n))
        .collect()
}

#[cfg(not(unix))]
fn system_devices() -> Vec<Device> {
    Vec::new()
}

/// The IP address of an interface address entry (`None` for link-layer and other families).
#[cfg(unix)]
pub(crate) fn sockaddr_ip(sa: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = sa.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// The interface of the IPv4 default route with the lowest metric (`/proc/net/route`).
fn default_route_v4() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_route_v4(&text)
}

fn parse_route_v4(text: &str) -> Option<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            let up = flags & 0x1 != 0;
            (f[1] == "00000000" && f[7] == "00000000" && up)
                .then(|| (f[6].parse::<u32>().unwrap_or(u32::MAX), f[0].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

/// The interface of the IPv6 default route with the lowest metric (`/proc/net/ipv6_route`).
fn default_route_v6() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
    parse_route_v6(&text)
}

fn parse_route_v6(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[9] == "lo" {
                return None;
            }
            let default = f[0].chars().all(|c| c == '0') && f[1] == "00";
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            let metric = u32::from_str_radix(f[5], 16).unwrap_or(u32::MAX);
            // RTF_UP, and not a reject route.
            (default && flags & 0x1 != 0 && flags & 0x0200 == 0).then(|| (metric, f[9].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn dev(name: &str, up: bool, loopback: bool) -> Device {
        Device {
            name: name.into(),
            description: None,
            addresses: Vec::new(),
            up,
            running: up,
            loopback,
        }
    }

    #[test]
    fn libpcap_and_getifaddrs_lists_agree_on_real_devices() {
        let names = |l: Vec<Device>| -> Vec<String> {
            l.into_iter()
                .filter(|d| d.name == "lo" || d.name == "any")
                .map(|d| d.name)
                .collect()
        };
        assert_eq!(names(devices()), names(devices_without_libpcap()));
    }

    #[test]
    fn list_has_any_and_loopback() {
        let names: Vec<String> = device_list().into_iter().map(|(n, _)| n).collect();
        assert!(names.iter().any(|n| n == "any"), "{names:?}");
        assert!(names.iter().any(|n| n == "lo"), "{names:?}");
        let lo = devices().into_iter().find(|d| d.name == "lo").unwrap();
        assert!(
            lo.addresses.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{lo:?}"
        );
    }

    #[test]
    fn ordering_like_pcap() {
        let mut l = [
            dev("lo", true, true),
            dev("eth1", true, false),
            dev("eth0", false, false),
            dev("any", true, false),
            dev("eth2", true, false),
        ];
        l.sort_by_key(merit);
        let names: Vec<&str> = l.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["eth1", "eth2", "any", "lo", "eth0"]);
    }

    #[test]
    fn formatting() {
        let mut d = dev("eth0", true, false);
        d.addresses = vec!["10.0.0.2".parse().unwrap(), "fe80::1".parse().unwrap()];
        let any = Device {
            description: Some("Pseudo-device that captures on all interfaces".into()),
            ..dev("any", true, false)
        };
        assert_eq!(
            format_device_names(&[d, any], true, true),
            [
                "eth0 (No description available) (10.0.0.2 fe80::1)",
                "any (Pseudo-device that captures on all interfaces) (Not assigned ip address)"
            ]
        );
    }

    #[test]
    fn resolution() {
        assert_eq!(resolve_device_name("eth9").unwrap(), "eth9");
        if cfg!(target_os = "linux") {
            assert_eq!(resolve_device_name("").unwrap(), "any");
        }
        let first = device_list()[0].0.clone();
        assert_eq!(resolve_device_name("0").unwrap(), first);
        let e = resolve_device_name("9999").unwrap_err();
        assert!(
            e.starts_with(
                "invalid device index 9999: looking for device index 9999, but there are only"
            ),
            "{e}"
        );
        assert!(resolve_device_name("default_route_ipx").is_err());
    }

    #[test]
    fn route_tables() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth1\t00000000\t0102A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n\
                  eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                  eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_route_v4(v4).as_deref(), Some("eth0"));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth2\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert_eq!(parse_route_v6(v6).as_deref(), Some("eth2"));
    }
}
