//! `packetbeat.procs`: which local process owns each end of a transaction, from `/proc`, as
//! Packetbeat's process watcher (`packetbeat/procs`) finds it: for an end whose address is
//! local (loopback or one of the host's addresses), the socket bound to that address and port
//! (or to the wildcard address) in `/proc/net/{tcp,tcp6,udp,udp6}`, its inode found among the
//! `/proc/<pid>/fd` links, and that process's details (`name`, `args`, `executable`, `pid`,
//! `parent.pid`, `start`; the name replaced by `monitored[].process` when the command line
//! contains its `cmdline_grep`). The events get `source.process.*` / `destination.process.*`,
//! and `process.*` (the destination's, else the source's), as Packetbeat's `pb.Fields` writes
//! them.
//!
//! Each packet worker has its own watcher (no lock between workers). A lookup that misses
//! re-reads the socket tables, at most once per `max_proc_read_freq` (10ms) per worker;
//! process details are cached for 30 s (Packetbeat's `processCacheExpiration`), so a recycled
//! PID is noticed. Hand-written: the mapping is Packetbeat's own, and the `procfs` crate would
//! only replace the few lines that read these files.

use crate::config::types::GoDuration;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CACHE_EXPIRATION: Duration = Duration::from_secs(30);

/// `packetbeat.procs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProcsConfig {
    pub enabled: bool,
    pub max_proc_read_freq: Option<GoDuration>,
    pub monitored: Vec<Monitored>,
    /// Accepted as Packetbeat accepts it (its 8.x watcher does not use it either).
    pub refresh_pids_freq: Option<GoDuration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Monitored {
    pub process: String,
    pub cmdline_grep: String,
}

/// One process, as events carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    pub args: Vec<String>,
    pub exe: String,
    /// Nanoseconds since the epoch.
    pub start: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

pub struct ProcWatcher {
    root: PathBuf,
    monitored: Vec<Monitored>,
    max_read_freq: Duration,
    local_ips: Vec<IpAddr>,
    /// Local (address, port) → PID, per transport.
    sockets: HashMap<Proto, HashMap<(IpAddr, u16), u32>>,
    last_read: HashMap<Proto, Instant>,
    cache: HashMap<u32, (Arc<Process>, Instant)>,
    boot_time_s: Option<i64>,
    clock_ticks: i64,
}

impl ProcWatcher {
    /// The watcher for `cfg` (reading `/proc`), or `None` when it is disabled.
    pub fn new(cfg: &ProcsConfig, local_ips: Vec<IpAddr>) -> Option<ProcWatcher> {
        cfg.enabled
            .then(|| ProcWatcher::with_root(cfg, local_ips, PathBuf::from("/proc")))
    }

    pub fn with_root(cfg: &ProcsConfig, local_ips: Vec<IpAddr>, root: PathBuf) -> ProcWatcher {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcWatcher {
            boot_time_s: boot_time(&root),
            root,
            monitored: cfg.monitored.clone(),
            max_read_freq: cfg
                .max_proc_read_freq
                .map_or(Duration::from_millis(10), |d| d.0),
            local_ips,
            sockets: HashMap::new(),
            last_read: HashMap::new(),
            cache: HashMap::new(),
            clock_ticks: if ticks > 0 { ticks as i64 } else { 100 },
        }
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.local_ips.contains(&ip)
    }

    /// The process owning the local end `ip:port`, if any.
    pub fn find(&mut self, proto: Proto, ip: IpAddr, port: u16) -> Option<Arc<Process>> {
        if !self.is_local(ip) {
            return None;
        }
        if let Some(pid) = self.lookup(proto, ip, port) {
            return self.process(pid);
        }
        let due = self
            .last_read
            .get(&proto)
            .is_none_or(|t| t.elapsed() >= self.max_read_freq);
        if !due {
            return None;
        }
        self.last_read.insert(proto, Instant::now());
        self.read_sockets(proto);
        let pid = self.lookup(proto, ip, port)?;
        self.process(pid)
    }

    /// The more specific binding first, then the wildcard address, as Packetbeat's
    /// `lookupMapping`.
    fn lookup(&self, proto: Proto, ip: IpAddr, port: u16) -> Option<u32> {
        let m = self.sockets.get(&proto)?;
        let any: IpAddr = match ip {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        m.get(&(ip, port)).or_else(|| m.get(&(any, port))).copied()
    }

    fn read_sockets(&mut self, proto: Proto) {
        let files: [&str; 2] = match proto {
            Proto::Tcp => ["net/tcp", "net/tcp6"],
            Proto::Udp => ["net/udp", "net/udp6"],
        };
        let mut by_inode: HashMap<u64, (IpAddr, u16)> = HashMap::new();
        for f in files {
            if let Ok(text) = std::fs::read_to_string(self.root.join(f)) {
                for (addr, inode) in parse_socket_table(&text) {
                    by_inode.insert(inode, addr);
                }
            }
        }
        let mut map = HashMap::new();
        if !by_inode.is_empty() {
            for (pid, inode) in socket_inodes(&self.root) {
                if let Some(addr) = by_inode.get(&inode) {
                    map.insert(*addr, pid);
                }
            }
        }
        let now = Instant::now();
        self.cache
            .retain(|_, (_, t)| now.duration_since(*t) < CACHE_EXPIRATION);
        self.sockets.insert(proto, map);
    }

    fn process(&mut self, pid: u32) -> Option<Arc<Process>> {
        if let Some((p, t)) = self.cache.get(&pid) {
            if t.elapsed() < CACHE_EXPIRATION {
                return Some(p.clone());
            }
        }
        let mut p = read_process(&self.root, pid, self.boot_time_s, self.clock_ticks)?;
        let cmdline = p.args.join(" ");
        if let Some(m) = self
            .monitored
            .iter()
            .find(|m| cmdline.contains(m.cmdline_grep.as_str()))
        {
            p.name = m.process.clone();
        }
        let p = Arc::new(p);
        self.cache.insert(pid, (p.clone(), Instant::now()));
        Some(p)
    }
}

/// Adds the processes owning the event's local ends: `source.process.*`,
/// `destination.process.*`, and `process.*` (the destination's, else the source's).
pub fn enrich(
    w: &mut ProcWatcher,
    pb: &crate::publish::event::PbFields,
    fields: &mut crate::publish::fields::Fields,
) {
    use crate::common::tuple::Transport;
    let proto = match pb.network.transport {
        Some(Transport::Tcp) => Proto::Tcp,
        Some(Transport::Udp) => Proto::Udp,
        _ => return,
    };
    let src = pb.source.as_ref().and_then(|e| w.find(proto, e.ip, e.port));
    let dst = pb
        .destination
        .as_ref()
        .and_then(|e| w.find(proto, e.ip, e.port));
    if let Some(p) = &src {
        put_process(fields, "source.process", p);
    }
    if let Some(p) = &dst {
        put_process(fields, "destination.process", p);
    }
    if let Some(p) = dst.as_ref().or(src.as_ref()) {
        put_process(fields, "process", p);
    }
}

/// ECS `process` as Packetbeat's `makeProcess` fills it.
fn put_process(fields: &mut crate::publish::fields::Fields, prefix: &str, p: &Process) {
    if !p.name.is_empty() {
        fields.put_str(format!("{prefix}.name"), &p.name);
    }
    if !p.args.is_empty() {
        fields.put_strs(format!("{prefix}.args"), &p.args);
    }
    if !p.exe.is_empty() {
        fields.put_str(format!("{prefix}.executable"), &p.exe);
    }
    fields.put_u64(format!("{prefix}.pid"), p.pid as u64);
    if p.ppid != 0 {
        fields.put_u64(format!("{prefix}.parent.pid"), p.ppid as u64);
    }
    if let Some(start) = p.start {
        fields.put_str(
            format!("{prefix}.start"),
            &crate::common::Ts(start).to_rfc3339(),
        );
    }
}

/// `(local address, port)` and inode of each socket in a `/proc/net/{tcp,udp}[6]` table.
pub fn parse_socket_table(text: &str) -> Vec<((IpAddr, u16), u64)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 10 {
            continue;
        }
        let Some(local) = parse_hex_addr(w[1]) else {
            continue;
        };
        let Ok(inode) = w[9].parse::<u64>() else {
            continue;
        };
        if inode != 0 {
            out.push((local, inode));
        }
    }
    out
}

/// `0100007F:0050` (IPv4) or the 32-hex-digit IPv6 form: the kernel prints each 32-bit word
/// of the address as a native integer, so the word's native bytes are the address bytes.
fn parse_hex_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(std::net::Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(&ip[i * 8..i * 8 + 8])?);
            }
            IpAddr::V6(std::net::Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Every `(pid, socket inode)` among the processes' open files.
fn socket_inodes(root: &Path) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(root) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                let l = link.to_string_lossy();
                if let Some(inode) = l
                    .strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                {
                    out.push((pid, inode));
                }
            }
        }
    }
    out
}

fn boot_time(root: &Path) -> Option<i64> {
    std::fs::read_to_string(root.join("stat"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A process's details from `/proc/<pid>`; the name as Packetbeat's `procName` picks it (the
/// comm, unless it may be truncated at 15 bytes and argv[0] is known).
fn read_process(root: &Path, pid: u32, boot_s: Option<i64>, ticks: i64) -> Option<Process> {
    let dir = root.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // `pid (comm) state ppid … starttime(22nd)`: comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ppid = rest.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let start = match (rest.get(19).and_then(|v| v.parse::<i64>().ok()), boot_s) {
        (Some(st), Some(b)) => Some(b * 1_000_000_000 + st * 1_000_000_000 / ticks),
        _ => None,
    };
    let args: Vec<String> = std::fs::read(dir.join("cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let exe = std::fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = if comm.len() < 15 || args.is_empty() {
        comm
    } else {
        Path::new(&args[0])
            .file_name()
            .map_or(comm, |n| n.to_string_lossy().into_owned())
    };
    Some(Process {
        pid,
        ppid,
        name,
        args,
        exe,
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_tables() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 0 1\n";
        let v = parse_socket_table(t);
        assert_eq!(v, vec![(("127.0.0.1".parse().unwrap(), 8080), 12345)]);
        let t6 = "header\n 0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 777 1\n";
        assert_eq!(
            parse_socket_table(t6),
            vec![(("::1".parse().unwrap(), 80), 777)]
        );
    }

    /// The watcher on this very process: a listening socket it opens is found with its pid,
    /// name, args and executable; a remote address is never looked up.
    #[test]
    fn finds_the_owner_of_a_local_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let cfg = ProcsConfig {
            enabled: true,
            monitored: vec![Monitored {
                process: "the-test".into(),
                cmdline_grep: "packetbeat".into(),
            }],
            ..Default::default()
        };
        let mut w = ProcWatcher::new(&cfg, Vec::new()).unwrap();
        let p = w
            .find(Proto::Tcp, "127.0.0.1".parse().unwrap(), port)
            .expect("this process owns the socket");
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.name, "the-test");
        assert!(p.exe.contains("packetbeat"), "{}", p.exe);
        assert!(p.start.is_some() && p.ppid > 0);
        assert!(w
            .find(Proto::Tcp, "192.0.2.1".parse().unwrap(), port)
            .is_none());
        assert!(w
            .find(Proto::Udp, "127.0.0.1".parse().unwrap(), port)
            .is_none());
    }
}
