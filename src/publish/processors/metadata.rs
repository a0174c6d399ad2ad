//! Enrichment processors: `add_host_metadata`, `add_observer_metadata`, `add_process_metadata`,
//! `add_cloud_metadata`, `add_docker_metadata`, `add_kubernetes_metadata`, `dns` (reverse
//! lookups), and `rate_limit`.
//!
//! Their sources (`/proc`, `/etc/os-release`, the network interfaces, a cloud metadata
//! endpoint, the Docker API, a DNS server) are read when first needed and cached, so building
//! them (`test config`) touches nothing. The cloud metadata host (`host`) and the Docker
//! endpoint (`host: unix:///…` or `tcp://…`) are options, as in libbeat, which is what the tests
//! point at loopback servers of their own.
//!
//! A minimal HTTP/1.1 client is written here for both: the metadata services and the Docker
//! API answer one small GET (or PUT) each, over TCP or a Unix socket, which no client crate in
//! the dependency set speaks both of.

use super::fields::{append_tags, deep_update};
use super::{Opts, Outcome, ProcEvent, Processor};
use crate::publish::event::{Map, MapExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- HTTP

/// Where an HTTP request goes.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(String),
    Unix(String),
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http_request(
    ep: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let mut stream: Box<dyn Stream> = match ep {
        Endpoint::Tcp(addr) => {
            use std::net::ToSocketAddrs;
            let sa = addr
                .to_socket_addrs()
                .map_err(|e| format!("{addr}: {e}"))?
                .next()
                .ok_or_else(|| format!("{addr}: no address"))?;
            let s = std::net::TcpStream::connect_timeout(&sa, timeout)
                .map_err(|e| format!("{addr}: {e}"))?;
            s.set_read_timeout(Some(timeout)).ok();
            s.set_write_timeout(Some(timeout)).ok();
            Box::new(s)
        }
        Endpoint::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| format!("{path}: {e}"))?;
            s.set_read_timeout(Some(timeout)).ok();
            s.set_write_timeout(Some(timeout)).ok();
            Box::new(s)
        }
    };
    let host = match ep {
        Endpoint::Tcp(a) => a.as_str(),
        Endpoint::Unix(_) => "localhost",
    };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: packetbeat\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "PUT" || method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
        if buf.len() > 16 << 20 || Instant::now() > deadline {
            return Err("response too large or too slow".into());
        }
        if let Some(done) = complete_response(&buf) {
            buf.truncate(done);
            break;
        }
    }
    parse_response(&buf)
}

/// Where a response with a known length ends (servers may keep the connection open).
fn complete_response(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    (buf.len() >= head_end + len).then_some(head_end + len)
}

fn parse_response(buf: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let mut body = buf[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body).ok_or("malformed chunked body")?;
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------- host information

/// What go-sysinfo reports about this host, as `host.*` fields.
fn host_info() -> Map {
    let mut m = Map::new();
    let uts = uname();
    let hostname = gethostname::gethostname().to_string_lossy().to_lowercase();
    m.put("hostname", Value::from(hostname.as_str()));
    m.put("name", Value::from(hostname.as_str()));
    if let Some((machine, release)) = &uts {
        m.put("architecture", Value::from(machine.as_str()));
        m.put("os.kernel", Value::from(release.as_str()));
    }
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        let id = id.trim();
        if !id.is_empty() {
            m.put("id", Value::from(id));
        }
    }
    m.put("os.type", Value::from("linux"));
    if let Ok(text) = std::fs::read_to_string("/etc/os-release") {
        let kv: HashMap<&str, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"').to_string()))
            .collect();
        if let Some(v) = kv.get("NAME") {
            m.put("os.name", Value::from(v.as_str()));
        }
        if let Some(v) = kv.get("ID") {
            m.put("os.platform", Value::from(v.as_str()));
        }
        if let Some(v) = kv.get("VERSION") {
            m.put("os.version", Value::from(v.as_str()));
        }
        if let Some(v) = kv.get("VERSION_CODENAME").filter(|v| !v.is_empty()) {
            m.put("os.codename", Value::from(v.as_str()));
        }
        let family = kv
            .get("ID_LIKE")
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .or_else(|| kv.get("ID").cloned());
        if let Some(f) = family {
            let f = match f.as_str() {
                "ubuntu" | "debian" => "debian",
                "rhel" | "fedora" | "centos" => "redhat",
                other => other,
            }
            .to_string();
            m.put("os.family", Value::from(f));
        }
    }
    m.put("containerized", Value::from(containerized()));
    m
}

/// (machine, kernel release) from uname(2).
fn uname() -> Option<(String, String)> {
    // SAFETY: uname fills the struct we own; its fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        let text = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        Some((text(&u.machine), text(&u.release)))
    }
}

/// go-sysinfo's check: a container runtime's marks in PID 1's cgroup or the root.
fn containerized() -> bool {
    std::path::Path::new("/.dockerenv").exists()
        || std::fs::read_to_string("/proc/1/cgroup")
            .map(|c| c.contains("docker") || c.contains("lxc") || c.contains("kubepods"))
            .unwrap_or(false)
}

/// Addresses and MACs of the up, non-loopback interfaces (libbeat's `GetNetInfo`), MACs
/// written as ECS wants them (`00-11-22-AA-BB-CC`).
pub fn net_info() -> (Vec<String>, Vec<String>) {
    let mut ips = Vec::new();
    let mut macs = Vec::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return (ips, macs);
    };
    for ifa in addrs {
        if ifa
            .flags
            .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        let Some(addr) = ifa.address.as_ref() else {
            continue;
        };
        if let Some(ip) = crate::sniffer::devices::sockaddr_ip(addr) {
            let s = ip.to_string();
            if !ips.contains(&s) {
                ips.push(s);
            }
        } else if let Some(link) = addr.as_link_addr() {
            if let Some(mac) = link.addr() {
                if mac != [0u8; 6] {
                    let s = mac
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect::<Vec<_>>()
                        .join("-");
                    if !macs.contains(&s) {
                        macs.push(s);
                    }
                }
            }
        }
    }
    (ips, macs)
}

/// `ip` and `mac` (with `netinfo.enabled`) and the configured `geo`.
fn add_net_and_geo(m: &mut Map, netinfo: bool, geo: Option<&Map>) {
    if netinfo {
        let (ips, macs) = net_info();
        if !ips.is_empty() {
            m.put("ip", Value::from(ips));
        }
        if !macs.is_empty() {
            m.put("mac", Value::from(macs));
        }
    }
    if let Some(g) = geo {
        m.insert("geo".into(), Value::Object(g.clone()));
    }
}

/// A value computed on first use and again after `ttl` (`cache.ttl`; zero or negative: every
/// time).
struct Cached {
    ttl: Option<Duration>,
    slot: RwLock<Option<(Instant, std::sync::Arc<Map>)>>,
    load: Box<dyn Fn() -> Map + Send + Sync>,
}

impl Cached {
    fn get(&self) -> std::sync::Arc<Map> {
        if let Some(ttl) = self.ttl {
            if let Some((at, m)) = self.slot.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
                if at.elapsed() < ttl {
                    return m.clone();
                }
            }
        }
        let m = std::sync::Arc::new((self.load)());
        *self.slot.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), m.clone()));
        m
    }
}

fn geo(o: &Opts) -> Result<Option<Map>, String> {
    let mut g = Map::new();
    for k in [
        "name",
        "location",
        "continent_name",
        "country_name",
        "region_name",
        "city_name",
        "country_iso_code",
        "region_iso_code",
    ] {
        if let Some(v) = o.str_opt(&format!("geo.{k}"))? {
            if k == "location" {
                let parts: Vec<f64> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
                if parts.len() != 2 {
                    return Err(o.fail(format!(
                        "Invalid lat,lon  string for add_host_metadata: {v}"
                    )));
                }
                g.insert(k.into(), json!({"lat": parts[0], "lon": parts[1]}));
            } else {
                g.insert(k.into(), Value::from(v));
            }
        }
    }
    Ok((!g.is_empty()).then_some(g))
}

fn cache_ttl(o: &Opts) -> Result<Option<Duration>, String> {
    // A negative TTL disables the cache.
    if let Some(serde_yaml::Value::String(s)) = o.raw("cache.ttl") {
        if s.starts_with('-') {
            return Ok(None);
        }
    }
    let d = o.duration_or("cache.ttl", Duration::from_secs(300))?;
    Ok((!d.is_zero()).then_some(d))
}

// ---------------------------------------------------------------- add_host_metadata

struct AddHostMetadata {
    data: Cached,
    replace_fields: bool,
}

impl Processor for AddHostMetadata {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        // Without replace_fields, a `host` with anything besides `name` is left alone.
        if !self.replace_fields {
            if let Some(Value::Object(h)) = e.fields.get("host") {
                if h.keys().any(|k| k != "name") {
                    return Ok(true);
                }
            }
        }
        // The cache holds `{"host": {...}}`: merged as it is, each value cloned once.
        deep_update(&mut e.fields, &self.data.get(), true);
        Ok(true)
    }
    fn describe(&self) -> String {
        "add_host_metadata".into()
    }
}

pub fn add_host_metadata(o: &Opts) -> Result<Box<dyn Processor>, String> {
    o.allowed(&[
        "netinfo",
        "cache",
        "geo",
        "name",
        "replace_fields",
        "expire_update_timeout",
        "fqdn",
    ])?;
    let netinfo = o.bool_or("netinfo.enabled", true)?;
    let geo = geo(o)?;
    let name = o.str_opt("name")?;
    let load = move || {
        let mut m = host_info();
        add_net_and_geo(&mut m, netinfo, geo.as_ref());
        if let Some(n) = &name {
            m.put("name", Value::from(n.as_str()));
        }
        let mut wrapped = Map::new();
        wrapped.insert("host".into(), Value::Object(m));
        wrapped
    };
    Ok(Box::new(AddHostMetadata {
        data: Cached {
            ttl: cache_ttl(o)?,
            slot: RwLock::new(None),
            load: Box::new(load),
        },
        replace_fields: o.bool_or("replace_fields", true)?,
    }))
}

// ---------------------------------------------------------------- add_observer_metadata

struct AddObserverMetadata {
    data: Cached,
    overwrite: bool,
}

impl Processor for AddObserverMetadata {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        if !self.overwrite && e.fields.contains_key("observer") {
            return Ok(true);
        }
        deep_update(&mut e.fields, &self.data.get(), true);
        Ok(true)
    }
    fn describe(&self) -> String {
        "add_observer_metadata".into()
    }
}

pub fn add_observer_metadata(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let netinfo = o.bool_or("netinfo.enabled", true)?;
    let geo = geo(o)?;
    let load = move || {
        let mut m = Map::new();
        m.put(
            "hostname",
            Value::from(gethostname::gethostname().to_string_lossy().to_lowercase()),
        );
        m.put("type", Value::from("packetbeat"));
        m.put("vendor", Value::from("elastic"));
        add_net_and_geo(&mut m, netinfo, geo.as_ref());
        let mut wrapped = Map::new();
        wrapped.insert("observer".into(), Value::Object(m));
        wrapped
    };
    Ok(Box::new(AddObserverMetadata {
        data: Cached {
            ttl: cache_ttl(o)?,
            slot: RwLock::new(None),
            load: Box::new(load),
        },
        overwrite: o.bool_or("overwrite", false)?,
    }))
}

// ---------------------------------------------------------------- add_process_metadata

struct AddProcessMetadata {
    match_pids: Vec<String>,
    target: String,
    overwrite_keys: bool,
    include_fields: Vec<String>,
    ignore_missing: bool,
    cache: Mutex<HashMap<i64, (Instant, Option<Map>)>>,
}

fn boot_time() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn user_name(uid: u32) -> Option<String> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
        })
}

/// Docker's 64-hex container id in a process's cgroup paths.
fn container_id_of(pid: i64) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        for seg in line.split(['/', '-', '.', ':']) {
            if seg.len() == 64 && seg.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(seg.to_string());
            }
        }
    }
    None
}

/// What `/proc` says about a process, as `process.*` (and `container.id`).
fn process_info(pid: i64) -> Option<Map> {
    let dir = format!("/proc/{pid}");
    let comm = std::fs::read_to_string(format!("{dir}/comm")).ok()?;
    let mut m = Map::new();
    m.put("process.name", Value::from(comm.trim()));
    m.put("process.pid", Value::from(pid));
    if let Ok(cmd) = std::fs::read(format!("{dir}/cmdline")) {
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.is_empty() {
            m.put("process.title", Value::from(args.join(" ")));
            m.put("process.args", Value::from(args));
        }
    }
    if let Ok(exe) = std::fs::read_link(format!("{dir}/exe")) {
        m.put(
            "process.executable",
            Value::from(exe.to_string_lossy().as_ref()),
        );
    }
    if let Ok(cwd) = std::fs::read_link(format!("{dir}/cwd")) {
        m.put(
            "process.working_directory",
            Value::from(cwd.to_string_lossy().as_ref()),
        );
    }
    if let Ok(stat) = std::fs::read_to_string(format!("{dir}/stat")) {
        // Fields after the parenthesised command name.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let Some(ppid) = f.get(1).and_then(|v| v.parse::<i64>().ok()) {
                m.put("process.parent.pid", Value::from(ppid));
            }
            // SAFETY: sysconf has no preconditions.
            let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as i64;
            if let (Some(start), Some(bt)) =
                (f.get(19).and_then(|v| v.parse::<i64>().ok()), boot_time())
            {
                let ns = bt * 1_000_000_000 + start * 1_000_000_000 / ticks;
                m.put(
                    "process.start",
                    Value::from(crate::common::Ts(ns).to_rfc3339_millis()),
                );
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string(format!("{dir}/status")) {
        if let Some(uid) = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
        {
            m.put("process.owner.id", Value::from(uid.to_string()));
            if let Some(n) = user_name(uid) {
                m.put("process.owner.name", Value::from(n));
            }
        }
    }
    if let Some(cid) = container_id_of(pid) {
        m.put("container.id", Value::from(cid));
    }
    Some(m)
}

impl AddProcessMetadata {
    fn lookup(&self, pid: i64) -> Option<Map> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, m)) = cache.get(&pid) {
            if at.elapsed() < Duration::from_secs(30) {
                return m.clone();
            }
        }
        let m = process_info(pid);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(pid, (Instant::now(), m.clone()));
        m
    }
}

impl Processor for AddProcessMetadata {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        for field in &self.match_pids {
            let pid = match e.get(field) {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            };
            let Some(pid) = pid else {
                continue;
            };
            let Some(info) = self.lookup(pid) else {
                if self.ignore_missing {
                    return Ok(true);
                }
                return Err(format!("error applying add_process_metadata processor: failed to get process info for pid {pid}: no such process"));
            };
            let mut selected = Map::new();
            for (k, v) in info.iter() {
                let flat: Vec<(String, Value)> = flatten(k, v);
                for (path, val) in flat {
                    if self.include_fields.is_empty()
                        || self
                            .include_fields
                            .iter()
                            .any(|f| path == *f || path.starts_with(&format!("{f}.")))
                    {
                        selected.put(&path, val);
                    }
                }
            }
            let mut target = Map::new();
            if self.target.is_empty() {
                target = selected;
            } else {
                target.put(&self.target, Value::Object(selected));
            }
            deep_update(&mut e.fields, &target, self.overwrite_keys);
            return Ok(true);
        }
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("add_process_metadata=[match_pids={:?}]", self.match_pids)
    }
}

fn flatten(prefix: &str, v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| flatten(&format!("{prefix}.{k}"), v))
            .collect(),
        other => vec![(prefix.to_string(), other.clone())],
    }
}

pub fn add_process_metadata(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let match_pids = o.strs("match_pids")?;
    if match_pids.is_empty() {
        return Err(o.missing("match_pids"));
    }
    Ok(Box::new(AddProcessMetadata {
        match_pids,
        target: o.string_or("target", "")?,
        overwrite_keys: o.bool_or("overwrite_keys", false)?,
        include_fields: o.strs_opt("include_fields")?.unwrap_or_default(),
        ignore_missing: o.bool_or("ignore_missing", true)?,
        cache: Mutex::new(HashMap::new()),
    }))
}

// ---------------------------------------------------------------- add_cloud_metadata

/// The providers libbeat tries by default; this build fetches the ones in [`fetch_provider`].
const PROVIDERS: &[&str] = &[
    "alibaba",
    "ecs",
    "azure",
    "digitalocean",
    "aws",
    "ec2",
    "gcp",
    "hetzner",
    "huawei",
    "openstack",
    "nova",
    "openstack-ssl",
    "nova-ssl",
    "qcloud",
    "tencent",
];
const FETCHED: &[&str] = &[
    "aws",
    "ec2",
    "gcp",
    "azure",
    "digitalocean",
    "openstack",
    "nova",
];

struct AddCloudMetadata {
    host: String,
    timeout: Duration,
    providers: Vec<String>,
    overwrite: bool,
    data: OnceLock<Option<Map>>,
}

fn get_json(
    ep: &Endpoint,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Option<Value> {
    let (status, body) = http_request(ep, "GET", path, headers, timeout).ok()?;
    (status == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

fn get_text(
    ep: &Endpoint,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Option<String> {
    let (status, body) = http_request(ep, "GET", path, headers, timeout).ok()?;
    (status == 200).then(|| String::from_utf8_lossy(&body).trim().to_string())
}

/// Copies the string members `from` of a metadata document to the fields `to`.
fn put_members(m: &mut Map, doc: &Value, pairs: &[(&str, &str)]) {
    for (to, from) in pairs {
        if let Some(v) = doc.get(from).and_then(Value::as_str) {
            m.put(to, Value::from(v));
        }
    }
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// One provider's `cloud.*` (and `orchestrator.*`) fields, or `None` when it does not answer.
fn fetch_provider(name: &str, ep: &Endpoint, timeout: Duration) -> Option<Map> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut m = Map::new();
    match name {
        "aws" | "ec2" => {
            // IMDSv2: a session token first; IMDSv1 when the PUT is refused.
            let token = http_request(
                ep,
                "PUT",
                "/latest/api/token",
                &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
                timeout,
            )
            .ok()
            .filter(|(st, _)| *st == 200)
            .map(|(_, b)| String::from_utf8_lossy(&b).trim().to_string());
            let h: Vec<(&str, &str)> = token
                .as_deref()
                .map(|t| ("X-aws-ec2-metadata-token", t))
                .into_iter()
                .collect();
            let doc = get_json(
                ep,
                "/latest/dynamic/instance-identity/document",
                &h,
                timeout,
            )?;
            m.put("cloud.provider", Value::from("aws"));
            m.put("cloud.instance.id", Value::from(s(&doc, "instanceId")?));
            put_members(
                &mut m,
                &doc,
                &[
                    ("cloud.machine.type", "instanceType"),
                    ("cloud.region", "region"),
                    ("cloud.availability_zone", "availabilityZone"),
                    ("cloud.account.id", "accountId"),
                    ("cloud.image.id", "imageId"),
                ],
            );
            m.put("cloud.service.name", Value::from("EC2"));
        }
        "gcp" => {
            let doc = get_json(
                ep,
                "/computeMetadata/v1/?recursive=true&alt=json",
                &[("Metadata-Flavor", "Google")],
                timeout,
            )?;
            let inst = doc.get("instance")?;
            m.put("cloud.provider", Value::from("gcp"));
            let id = match inst.get("id")? {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return None,
            };
            m.put("cloud.instance.id", Value::from(id));
            if let Some(n) = s(inst, "name") {
                m.put("cloud.instance.name", Value::from(n));
            }
            if let Some(t) = s(inst, "machineType") {
                m.put("cloud.machine.type", Value::from(last_segment(&t)));
            }
            if let Some(z) = s(inst, "zone") {
                let zone = last_segment(&z).to_string();
                if let Some((region, _)) = zone.rsplit_once('-') {
                    m.put("cloud.region", Value::from(region));
                }
                m.put("cloud.availability_zone", Value::from(zone));
            }
            if let Some(p) = doc.get("project").and_then(|p| s(p, "projectId")) {
                m.put("cloud.project.id", Value::from(p.as_str()));
                m.put("cloud.account.id", Value::from(p));
            }
            m.put("cloud.service.name", Value::from("GCE"));
        }
        "azure" => {
            let doc = get_json(
                ep,
                "/metadata/instance/compute?api-version=2021-02-01",
                &[("Metadata", "true")],
                timeout,
            )?;
            m.put("cloud.provider", Value::from("azure"));
            m.put("cloud.instance.id", Value::from(s(&doc, "vmId")?));
            put_members(
                &mut m,
                &doc,
                &[
                    ("cloud.instance.name", "name"),
                    ("cloud.machine.type", "vmSize"),
                    ("cloud.region", "location"),
                    ("cloud.account.id", "subscriptionId"),
                ],
            );
            m.put("cloud.service.name", Value::from("Virtual Machines"));
        }
        "digitalocean" => {
            let doc = get_json(ep, "/metadata/v1.json", &[], timeout)?;
            m.put("cloud.provider", Value::from("digitalocean"));
            let id = match doc.get("droplet_id")? {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return None,
            };
            m.put("cloud.instance.id", Value::from(id));
            if let Some(r) = s(&doc, "region") {
                m.put("cloud.region", Value::from(r));
            }
            m.put("cloud.service.name", Value::from("Droplets"));
        }
        "openstack" | "nova" => {
            let base = "/2009-04-04/meta-data";
            let id = get_text(ep, &format!("{base}/instance-id"), &[], timeout)?;
            m.put("cloud.provider", Value::from("openstack"));
            m.put("cloud.instance.id", Value::from(id));
            for (k, p) in [
                ("cloud.instance.name", "hostname"),
                ("cloud.machine.type", "instance-type"),
                ("cloud.availability_zone", "placement/availability-zone"),
            ] {
                if let Some(v) = get_text(ep, &format!("{base}/{p}"), &[], timeout) {
                    m.put(k, Value::from(v));
                }
            }
            m.put("cloud.service.name", Value::from("Nova"));
        }
        _ => return None,
    }
    Some(m)
}

impl AddCloudMetadata {
    /// libbeat queries the providers in parallel and takes the first in priority order that
    /// answered; so does this, once.
    fn data(&self) -> Option<&Map> {
        self.data
            .get_or_init(|| {
                let ep = Endpoint::Tcp(self.host.clone());
                let results: Vec<Option<Map>> = std::thread::scope(|s| {
                    let handles: Vec<_> = self
                        .providers
                        .iter()
                        .map(|p| {
                            let ep = ep.clone();
                            s.spawn(move || fetch_provider(p, &ep, self.timeout))
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().ok().flatten()).collect()
                });
                let found = results.into_iter().flatten().next();
                let provider = found
                    .as_ref()
                    .and_then(|m| m.get_path("cloud.provider"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                match provider {
                    Some(p) => tracing::info!(target: "add_cloud_metadata", "add_cloud_metadata: hosting provider type detected as {p}"),
                    None => tracing::info!(target: "add_cloud_metadata", "add_cloud_metadata: hosting provider type not detected."),
                }
                found
            })
            .as_ref()
    }
}

impl Processor for AddCloudMetadata {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let Some(data) = self.data() else {
            return Ok(true);
        };
        if !self.overwrite
            && (e.fields.contains_key("cloud")
                || (data.contains_key("orchestrator") && e.fields.contains_key("orchestrator")))
        {
            return Ok(true);
        }
        deep_update(&mut e.fields, data, true);
        Ok(true)
    }
    fn describe(&self) -> String {
        format!(
            "add_cloud_metadata={}",
            self.data
                .get()
                .and_then(|d| d.as_ref())
                .map(|d| Value::Object(d.clone()).to_string())
                .unwrap_or_else(|| "{}".into())
        )
    }
}

pub fn add_cloud_metadata(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let providers = match o.strs_opt("providers")? {
        None => FETCHED
            .iter()
            .filter(|p| !["ec2", "nova"].contains(p))
            .map(|s| s.to_string())
            .collect(),
        Some(list) => {
            for p in &list {
                if !PROVIDERS.contains(&p.as_str()) {
                    return Err(o.fail(format!(
                        "unknown provider '{p}' accessing '{}.providers'",
                        o.path()
                    )));
                }
            }
            list.into_iter()
                .filter(|p| FETCHED.contains(&p.as_str()))
                .collect()
        }
    };
    Ok(Box::new(AddCloudMetadata {
        host: o.string_or("host", "169.254.169.254")?,
        timeout: o.duration_or("timeout", Duration::from_secs(3))?,
        providers,
        overwrite: o.bool_or("overwrite", false)?,
        data: OnceLock::new(),
    }))
}

// ---------------------------------------------------------------- add_docker_metadata

struct Container {
    meta: Map,
}

/// When the containers were last listed, and them by id.
type Containers = (Option<Instant>, HashMap<String, std::sync::Arc<Container>>);

struct AddDockerMetadata {
    endpoint: Endpoint,
    match_fields: Vec<String>,
    match_pids: Vec<String>,
    match_short_id: bool,
    dedot: bool,
    containers: Mutex<Containers>,
}

impl AddDockerMetadata {
    fn refresh(&self, state: &mut Containers) {
        if state
            .0
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        state.0 = Some(Instant::now());
        let Ok((200, body)) = http_request(
            &self.endpoint,
            "GET",
            "/containers/json",
            &[],
            Duration::from_secs(5),
        ) else {
            tracing::debug!(target: "add_docker_metadata", "cannot list containers at {:?}", self.endpoint);
            return;
        };
        let Ok(Value::Array(list)) = serde_json::from_slice::<Value>(&body) else {
            return;
        };
        state.1.clear();
        for c in list {
            let Some(id) = c.get("Id").and_then(Value::as_str) else {
                continue;
            };
            let mut m = Map::new();
            m.put("id", Value::from(id));
            if let Some(name) = c
                .get("Names")
                .and_then(|n| n.get(0))
                .and_then(Value::as_str)
            {
                m.put("name", Value::from(name.trim_start_matches('/')));
            }
            if let Some(img) = c.get("Image").and_then(Value::as_str) {
                m.put("image.name", Value::from(img));
            }
            if let Some(Value::Object(labels)) = c.get("Labels") {
                if !labels.is_empty() {
                    let mut l = Map::new();
                    for (k, v) in labels {
                        let k = if self.dedot {
                            k.replace('.', "_")
                        } else {
                            k.clone()
                        };
                        l.insert(k, v.clone());
                    }
                    m.insert("labels".into(), Value::Object(l));
                }
            }
            state
                .1
                .insert(id.to_string(), std::sync::Arc::new(Container { meta: m }));
        }
    }

    fn find(&self, id: &str) -> Option<std::sync::Arc<Container>> {
        let mut st = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            let hit = st.1.get(id).cloned().or_else(|| {
                (self.match_short_id && id.len() == 12)
                    .then(|| {
                        st.1.iter()
                            .find(|(k, _)| k.starts_with(id))
                            .map(|(_, c)| c.clone())
                    })
                    .flatten()
            });
            if hit.is_some() || attempt == 1 {
                return hit;
            }
            self.refresh(&mut st);
        }
        None
    }
}

impl Processor for AddDockerMetadata {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let mut cid: Option<String> = None;
        for f in &self.match_fields {
            if let Some(Value::String(s)) = e.get(f) {
                cid = Some(s.clone());
                break;
            }
        }
        if cid.is_none() {
            for f in &self.match_pids {
                let pid = match e.get(f) {
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(Value::String(s)) => s.parse().ok(),
                    _ => None,
                };
                if let Some(id) = pid.and_then(container_id_of) {
                    cid = Some(id);
                    break;
                }
            }
        }
        let Some(cid) = cid else {
            return Ok(true);
        };
        if let Some(c) = self.find(&cid) {
            let mut m = Map::new();
            m.insert("container".into(), Value::Object(c.meta.clone()));
            deep_update(&mut e.fields, &m, true);
        }
        Ok(true)
    }
    fn describe(&self) -> String {
        format!(
            "add_docker_metadata=[match_fields={:?} match_pids={:?}]",
            self.match_fields, self.match_pids
        )
    }
}

pub fn add_docker_metadata(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let host = o.string_or("host", "unix:///var/run/docker.sock")?;
    let endpoint = if let Some(p) = host.strip_prefix("unix://") {
        Endpoint::Unix(p.to_string())
    } else if let Some(a) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        Endpoint::Tcp(a.trim_end_matches('/').to_string())
    } else {
        return Err(o.fail(format!(
            "unsupported docker host '{host}' accessing '{}.host' (unix:// or tcp://)",
            o.path()
        )));
    };
    Ok(Box::new(AddDockerMetadata {
        endpoint,
        match_fields: o.strs_opt("match_fields")?.unwrap_or_default(),
        match_pids: o
            .strs_opt("match_pids")?
            .unwrap_or_else(|| vec!["process.pid".into(), "process.parent.pid".into()]),
        match_short_id: o.bool_or("match_short_id", false)?,
        dedot: o.bool_or("labels.dedot", true)?,
        containers: Mutex::new((None, HashMap::new())),
    }))
}

// ---------------------------------------------------------------- add_kubernetes_metadata

struct AddKubernetesMetadata;

impl Processor for AddKubernetesMetadata {
    fn run(&self, _e: &mut ProcEvent) -> Outcome {
        Ok(true)
    }
    fn describe(&self) -> String {
        "add_kubernetes_metadata".into()
    }
}

pub fn add_kubernetes_metadata(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let configured =
        o.raw("kube_config").is_some() || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if configured {
        tracing::warn!(target: "add_kubernetes_metadata", "add_kubernetes_metadata: the Kubernetes API is not read by packetbeat-rs; events are not enriched");
    } else {
        tracing::info!(target: "add_kubernetes_metadata", "add_kubernetes_metadata: could not initialize kubernetes client: not running in a Kubernetes cluster and no kube_config set");
    }
    Ok(Box::new(AddKubernetesMetadata))
}

// ---------------------------------------------------------------- dns

type DnsAnswer = (Instant, Result<String, String>);

struct Dns {
    fields: Vec<(String, String)>,
    nameservers: Vec<std::net::SocketAddr>,
    timeout: Duration,
    append: bool,
    tag_on_failure: Vec<String>,
    success_min_ttl: Duration,
    failure_ttl: Duration,
    capacity: usize,
    /// Each address's answer (a name or the failure) and when it expires.
    cache: Mutex<HashMap<IpAddr, DnsAnswer>>,
    next_id: std::sync::atomic::AtomicU16,
}

/// The PTR name of an address (`4.3.2.1.in-addr.arpa.`, nibbles for IPv6).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

fn ptr_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 12, 0, 1]);
    q
}

impl Dns {
    fn resolve(&self, ip: IpAddr) -> (Result<String, String>, Duration) {
        let name = reverse_name(ip);
        let mut last_err = "no nameservers".to_string();
        for ns in &self.nameservers {
            let id = self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let bind = if ns.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let sock = match std::net::UdpSocket::bind(bind) {
                Ok(s) => s,
                Err(e) => {
                    last_err = e.to_string();
                    continue;
                }
            };
            sock.set_read_timeout(Some(self.timeout)).ok();
            if let Err(e) = sock.send_to(&ptr_query(id, &name), ns) {
                last_err = e.to_string();
                continue;
            }
            let mut buf = [0u8; 1500];
            let deadline = Instant::now() + self.timeout;
            loop {
                let n = match sock.recv_from(&mut buf) {
                    Ok((n, from)) if from == *ns => n,
                    Ok(_) if Instant::now() < deadline => continue,
                    Ok(_) => {
                        last_err = "timeout".into();
                        break;
                    }
                    Err(e) => {
                        last_err = format!("lookup {name}: {e}");
                        break;
                    }
                };
                let Ok(msg) = crate::protos::dns::parser::parse_message(&buf[..n]) else {
                    last_err = "malformed response".into();
                    break;
                };
                if msg.id != id {
                    continue;
                }
                if msg.rcode != 0 {
                    return (
                        Err(format!("lookup {name}: rcode {}", msg.rcode)),
                        self.failure_ttl,
                    );
                }
                let ptr = msg.answers.iter().find_map(|r| match (&r.data, r.rtype) {
                    (crate::protos::dns::parser::RData::Name(n), 12) => {
                        Some((n.trim_end_matches('.').to_string(), r.ttl))
                    }
                    _ => None,
                });
                return match ptr {
                    Some((host, ttl)) => (
                        Ok(host),
                        Duration::from_secs(ttl as u64).max(self.success_min_ttl),
                    ),
                    None => (
                        Err(format!("lookup {name}: no PTR record was found")),
                        self.failure_ttl,
                    ),
                };
            }
        }
        (Err(last_err), self.failure_ttl)
    }

    fn lookup(&self, ip: IpAddr) -> Result<String, String> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((exp, r)) = cache.get(&ip) {
                if Instant::now() < *exp {
                    return r.clone();
                }
            }
        }
        let (r, ttl) = self.resolve(ip);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.capacity {
            let now = Instant::now();
            cache.retain(|_, (exp, _)| *exp > now);
            if cache.len() >= self.capacity {
                cache.clear();
            }
        }
        cache.insert(ip, (Instant::now() + ttl, r.clone()));
        r
    }
}

impl Processor for Dns {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let mut errs = Vec::new();
        for (from, to) in &self.fields {
            let Some(ip) = e
                .get(from)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
            else {
                continue;
            };
            match self.lookup(ip) {
                Ok(host) => {
                    if self.append {
                        match e.get(to).cloned() {
                            None => e.put(to, Value::from(host))?,
                            Some(Value::Array(mut a)) => {
                                if !a.iter().any(|x| x.as_str() == Some(&host)) {
                                    a.push(Value::from(host));
                                }
                                e.put(to, Value::Array(a))?;
                            }
                            Some(Value::String(s)) if s == host => {}
                            Some(other) => {
                                e.put(to, Value::Array(vec![other, Value::from(host)]))?
                            }
                        }
                    } else {
                        e.put(to, Value::from(host))?;
                    }
                }
                Err(err) => errs.push(format!(
                    "reverse lookup of {from} value '{ip}' failed: {err}"
                )),
            }
        }
        if errs.is_empty() {
            return Ok(true);
        }
        if !self.tag_on_failure.is_empty() {
            let _ = append_tags(e, "tags", &self.tag_on_failure);
        }
        Err(errs.join("; "))
    }
    fn describe(&self) -> String {
        format!("dns=[type=reverse, fields={:?}]", self.fields)
    }
}

fn system_nameservers() -> Vec<std::net::SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

pub fn dns(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let kind = o.string("type")?;
    if kind != "reverse" {
        return Err(o.fail(format!(
            "invalid dns type '{kind}' (only 'reverse' is supported) accessing '{}.type'",
            o.path()
        )));
    }
    let fields = o.object_opt("fields")?.ok_or_else(|| o.missing("fields"))?;
    let mut flat = Map::new();
    for (k, v) in &fields {
        for (path, val) in flatten(k, v) {
            flat.insert(path, val);
        }
    }
    let fields: Vec<(String, String)> = flat
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(o.mismatch(&format!("fields.{k}"), "string")),
        })
        .collect::<Result<_, _>>()?;
    let nameservers = match o.strs_opt("nameservers")? {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| {
                        s.parse::<IpAddr>()
                            .map(|ip| std::net::SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| {
                        o.fail(format!(
                            "invalid nameserver '{s}' accessing '{}.nameservers'",
                            o.path()
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => system_nameservers(),
    };
    let action = o.string_or("action", "append")?;
    if action != "append" && action != "replace" {
        return Err(o.fail(format!("invalid dns action '{action}' (append or replace)")));
    }
    if o.string_or("transport", "udp")? != "udp" {
        return Err(o.fail("only the udp transport is supported by packetbeat-rs"));
    }
    Ok(Box::new(Dns {
        fields,
        nameservers,
        timeout: o.duration_or("timeout", Duration::from_millis(500))?,
        append: action == "append",
        tag_on_failure: o.strs_opt("tag_on_failure")?.unwrap_or_default(),
        success_min_ttl: o.duration_or("success_cache.min_ttl", Duration::from_secs(60))?,
        failure_ttl: o.duration_or("failure_cache.ttl", Duration::from_secs(60))?,
        capacity: o.i64_or("success_cache.capacity.max", 10_000)?.max(1) as usize,
        cache: Mutex::new(HashMap::new()),
        next_id: std::sync::atomic::AtomicU16::new(rand::random()),
    }))
}

// ---------------------------------------------------------------- rate_limit

struct RateLimit {
    fields: Vec<String>,
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    text: String,
}

impl Processor for RateLimit {
    fn run(&self, e: &mut ProcEvent) -> Outcome {
        let key = self
            .fields
            .iter()
            .map(|f| e.get_owned(f).map(|v| v.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\u{0}");
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let entry = b.entry(key).or_insert((self.burst, now));
        let elapsed = now.duration_since(entry.1).as_secs_f64();
        entry.0 = (entry.0 + elapsed * self.per_sec).min(self.burst);
        entry.1 = now;
        if entry.0 >= 1.0 {
            entry.0 -= 1.0;
            Ok(true)
        } else {
            Ok(false)
        }
    }
    fn describe(&self) -> String {
        format!(
            "rate_limit=[limit=[{}],fields=[{:?}]]",
            self.text, self.fields
        )
    }
}

pub fn rate_limit(o: &Opts) -> Result<Box<dyn Processor>, String> {
    let limit = o.string("limit")?;
    let bad = || {
        o.fail(format!(
            "invalid limit '{limit}': expected <number>/<s|m|h> accessing '{}.limit'",
            o.path()
        ))
    };
    let (n, unit) = limit.split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if let Some(a) = o.raw("algorithm") {
        if let Some(m) = a.as_mapping() {
            if m.keys().any(|k| k.as_str() != Some("token_bucket")) {
                return Err(o.fail("unknown rate limiting algorithm (token_bucket is supported)"));
            }
        }
    }
    let mult = o.f64_or("algorithm.token_bucket.burst_multiplier", 1.0)?;
    Ok(Box::new(RateLimit {
        fields: o.strs_opt("fields")?.unwrap_or_default(),
        per_sec: n / secs,
        burst: (n * mult).max(1.0),
        buckets: Mutex::new(HashMap::new()),
        text: limit.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::processors::testutil::*;

    /// A loopback HTTP server answering each path with a fixed status and body; it records the
    /// requests' heads.
    pub fn http_server(
        routes: Vec<(&'static str, &'static str, u16, String)>,
    ) -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                seen2.lock().unwrap().push(head.clone());
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, body) = routes
                    .iter()
                    .find(|(m, p, _, _)| *m == method && *p == path)
                    .map(|(_, _, st, b)| (*st, b.clone()))
                    .unwrap_or((404, "not found".into()));
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (addr, seen)
    }

    #[test]
    fn host_metadata() {
        let r = run("add_host_metadata: ~", r#"{"host":{"name":"beat"}}"#).unwrap();
        let host = &r["host"];
        assert_eq!(
            host["hostname"],
            gethostname::gethostname().to_string_lossy().to_lowercase()
        );
        assert_eq!(host["name"], host["hostname"]);
        assert_eq!(host["os"]["type"], "linux");
        assert!(host["architecture"].is_string());
        assert!(host["os"]["kernel"].is_string());
        // Without netinfo, no addresses; a custom name wins.
        let r = run(
            "add_host_metadata: {netinfo.enabled: false, name: custom}",
            "{}",
        )
        .unwrap();
        assert!(r["host"].get("ip").is_none() && r["host"].get("mac").is_none());
        assert_eq!(r["host"]["name"], "custom");
        // replace_fields: false leaves a host with more than a name alone.
        let r = run(
            "add_host_metadata: {replace_fields: false}",
            r#"{"host":{"name":"x","id":"y"}}"#,
        )
        .unwrap();
        assert_eq!(r["host"], json!({"name":"x","id":"y"}));
        let r = run(
            "add_host_metadata: {geo: {name: rack1, location: '40.7128, -74.0060'}}",
            "{}",
        )
        .unwrap();
        assert_eq!(
            r["host"]["geo"]["location"],
            json!({"lat": 40.7128, "lon": -74.006})
        );
        assert_eq!(err("add_host_metadata: {cache.ttl: soon}"), "failed to unpack the add_host_metadata configuration: type mismatch accessing 'processors.0.add_host_metadata.cache.ttl' (expected duration)");
    }

    #[test]
    fn observer_metadata() {
        let r = run("add_observer_metadata: {netinfo.enabled: false}", "{}").unwrap();
        assert_eq!(r["observer"]["type"], "packetbeat");
        assert_eq!(r["observer"]["vendor"], "elastic");
        let r = run("add_observer_metadata: ~", r#"{"observer":{"x":1}}"#).unwrap();
        assert_eq!(r["observer"], json!({"x":1}));
    }

    #[test]
    fn process_metadata() {
        let me = std::process::id();
        let r = run("add_process_metadata: {match_pids: [process.pid], include_fields: [process.name, process.parent.pid]}", &format!(r#"{{"process":{{"pid":{me}}}}}"#)).unwrap();
        assert!(r["process"]["name"].is_string(), "{r}");
        assert!(r["process"]["parent"]["pid"].is_number(), "{r}");
        assert!(r["process"].get("args").is_none());
        let r = run(
            "add_process_metadata: {match_pids: [process.pid], target: proc_info}",
            &format!(r#"{{"process":{{"pid":{me}}}}}"#),
        )
        .unwrap();
        assert!(r["proc_info"]["process"]["executable"].is_string(), "{r}");
        assert!(err("add_process_metadata: {}").contains("match_pids"));
    }

    #[test]
    fn cloud_metadata_from_a_loopback_server() {
        let doc = r#"{"accountId":"111111111111","availabilityZone":"us-east-1c","imageId":"ami-abcd1234","instanceId":"i-11111111","instanceType":"t2.medium","region":"us-east-1"}"#;
        let (addr, seen) = http_server(vec![
            ("PUT", "/latest/api/token", 200, "TOKEN".into()),
            (
                "GET",
                "/latest/dynamic/instance-identity/document",
                200,
                doc.into(),
            ),
        ]);
        let r = run(
            &format!("add_cloud_metadata: {{host: '{addr}', timeout: 2s}}"),
            "{}",
        )
        .unwrap();
        assert_eq!(
            r["cloud"],
            json!({"provider":"aws","instance":{"id":"i-11111111"},"machine":{"type":"t2.medium"},"region":"us-east-1","availability_zone":"us-east-1c","account":{"id":"111111111111"},"image":{"id":"ami-abcd1234"},"service":{"name":"EC2"}})
        );
        // IMDSv2: the document was asked for with the token.
        assert!(seen
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.contains("X-aws-ec2-metadata-token: TOKEN")));
        // An event with cloud fields keeps them unless overwrite.
        let r = run(
            &format!("add_cloud_metadata: {{host: '{addr}', providers: [aws]}}"),
            r#"{"cloud":{"provider":"mine"}}"#,
        )
        .unwrap();
        assert_eq!(r["cloud"], json!({"provider":"mine"}));

        let gcp = r#"{"instance":{"id":3910564293633576924,"machineType":"projects/801/machineTypes/f1-micro","name":"test-gcp","zone":"projects/801/zones/us-east1-b"},"project":{"projectId":"my-dev"}}"#;
        let (addr, _) = http_server(vec![(
            "GET",
            "/computeMetadata/v1/?recursive=true&alt=json",
            200,
            gcp.into(),
        )]);
        let r = run(
            &format!("add_cloud_metadata: {{host: '{addr}', providers: [gcp]}}"),
            "{}",
        )
        .unwrap();
        assert_eq!(
            r["cloud"],
            json!({"provider":"gcp","instance":{"id":"3910564293633576924","name":"test-gcp"},"machine":{"type":"f1-micro"},"availability_zone":"us-east1-b","region":"us-east1","project":{"id":"my-dev"},"account":{"id":"my-dev"},"service":{"name":"GCE"}})
        );
        // Nothing answers: nothing added.
        let (addr, _) = http_server(vec![]);
        assert_eq!(
            run(&format!("add_cloud_metadata: {{host: '{addr}'}}"), "{}"),
            Some(json!({}))
        );
        assert!(err("add_cloud_metadata: {providers: [moon]}").contains("unknown provider 'moon'"));
    }

    #[test]
    fn docker_metadata_from_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let id = "a".repeat(64);
        let body = format!(
            r#"[{{"Id":"{id}","Names":["/web"],"Image":"nginx:1.25","Labels":{{"com.example.tier":"front"}}}}]"#
        );
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let (st, b) = if head.starts_with("GET /containers/json ") {
                    (200, body.clone())
                } else {
                    (404, String::new())
                };
                let _ = write!(s, "HTTP/1.1 {st} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{b}\r\n0\r\n\r\n", b.len());
            }
        });
        let cfg = format!(
            "add_docker_metadata: {{host: 'unix://{}', match_fields: [cid], match_short_id: true}}",
            sock.display()
        );
        let r = run(&cfg, &format!(r#"{{"cid":"{id}"}}"#)).unwrap();
        assert_eq!(
            r["container"],
            json!({"id": id, "name":"web","image":{"name":"nginx:1.25"},"labels":{"com_example_tier":"front"}})
        );
        let r = run(&cfg, r#"{"cid":"aaaaaaaaaaaa"}"#).unwrap();
        assert_eq!(r["container"]["name"], "web");
        let r = run(&cfg, r#"{"cid":"bbbb"}"#).unwrap();
        assert!(r.get("container").is_none());
        assert!(err("add_docker_metadata: {host: 'ftp://x'}").contains("unsupported docker host"));
    }

    #[test]
    fn kubernetes_accepted_and_inert() {
        assert_eq!(
            run("add_kubernetes_metadata: {host: node1}", r#"{"a":1}"#),
            Some(json!({"a":1}))
        );
    }

    #[test]
    fn dns_reverse_against_a_loopback_server() {
        let srv = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let queries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let q2 = queries.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = srv.recv_from(&mut buf) {
                q2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let q = &buf[..n];
                let qname_end = 12 + q[12..].iter().position(|b| *b == 0).unwrap() + 1 + 4;
                let asked = String::from_utf8_lossy(&q[12..qname_end]).to_string();
                let mut r = q[..qname_end].to_vec();
                r[2] = 0x81;
                r[3] = 0x80;
                if asked.contains("8\x018\x018\x018") {
                    r[7] = 1; // one answer
                    r.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 0x0e, 0x10]);
                    let name = b"\x0adns-google\x03com\x00";
                    r.extend_from_slice(&(name.len() as u16).to_be_bytes());
                    r.extend_from_slice(name);
                } else {
                    r[3] = 0x83; // NXDOMAIN
                }
                let _ = srv.send_to(&r, from);
            }
        });
        let cfg = format!("dns: {{type: reverse, fields: {{source.ip: source.domain, destination.ip: destination.domain}}, nameservers: ['{addr}'], tag_on_failure: [_dns_reverse_lookup_failed]}}");
        let l = proc(&cfg).unwrap();
        let mut e = ev(r#"{"source":{"ip":"8.8.8.8"},"destination":{"ip":"192.0.2.1"}}"#);
        assert!(l.run(&mut e));
        assert_eq!(e.fields["source"]["domain"], "dns-google.com");
        assert!(e.fields["destination"].get("domain").is_none());
        assert_eq!(e.fields["tags"], json!(["_dns_reverse_lookup_failed"]));
        // Both answers are cached: a second event asks nothing.
        let before = queries.load(std::sync::atomic::Ordering::SeqCst);
        let mut e = ev(r#"{"source":{"ip":"8.8.8.8"},"destination":{"ip":"192.0.2.1"}}"#);
        l.run(&mut e);
        assert_eq!(queries.load(std::sync::atomic::Ordering::SeqCst), before);
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        assert!(err("dns: {type: forward, fields: {a: b}}").contains("only 'reverse'"));
    }

    #[test]
    fn rate_limit() {
        let l = proc("rate_limit: {limit: '2/m'}").unwrap();
        let kept = (0..10).filter(|_| l.run(&mut ev("{}"))).count();
        assert_eq!(kept, 2);
        // Per key.
        let l = proc("rate_limit: {limit: '1/h', fields: [k]}").unwrap();
        assert!(l.run(&mut ev(r#"{"k":"a"}"#)));
        assert!(l.run(&mut ev(r#"{"k":"b"}"#)));
        assert!(!l.run(&mut ev(r#"{"k":"a"}"#)));
        assert!(err("rate_limit: {limit: 'lots'}").contains("invalid limit"));
    }
}
