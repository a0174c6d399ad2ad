//! Live capture on real traffic: two network namespaces joined by a veth pair, real servers from
//! Debian in one (nginx, redis-server, dnsmasq) and real clients in the other (curl, redis-cli,
//! dig). Our packetbeat sniffs inside a namespace (`ip netns exec`) with each sniffer type and
//! with one and two workers, is stopped with SIGINT, and must have reported every request once,
//! with its fields and `network.direction`. One test sniffs `lo`, one `any`. The addresses
//! (198.18.0.0/24, the benchmarking range) exist only inside the test's namespaces, which a
//! guard removes even when the test fails. Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN).

mod common;

use common::{field, on_path, require_or_skip, HOW_DEPS};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SERVER_IP: &str = "198.18.0.1";
const CLIENT_IP: &str = "198.18.0.2";
const REQUESTS: usize = 4;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces and their veth pair, and the servers started in them: servers are killed and
/// the namespaces deleted on drop, also when the test panics.
struct Net {
    srv: String,
    cli: String,
    srv_if: String,
    cli_if: String,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every tool the tests run, or `None` (skip; under CI=true a failure naming what is missing).
fn tools() -> Option<()> {
    for t in [
        "ip",
        "nginx",
        "redis-server",
        "redis-cli",
        "dnsmasq",
        "curl",
        "dig",
    ] {
        require_or_skip(on_path(t), t, HOW_DEPS)?;
    }
    Some(())
}

impl Net {
    /// The namespaces, or `None` when they cannot be made (not root: skip, or fail under CI).
    fn new() -> Option<Net> {
        tools()?;
        let id = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (srv, cli) = (format!("pbsrv{id}"), format!("pbcli{id}"));
        let made = ip(&["netns", "add", &srv]);
        let net = Net {
            srv: srv.clone(),
            cli: cli.clone(),
            srv_if: format!("pbs{id}"),
            cli_if: format!("pbc{id}"),
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let made = made && ip(&["netns", "add", &cli]);
        require_or_skip(
            made.then_some(()),
            "network namespaces",
            "`ip netns add` failed: the live capture tests need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2",
        )?;
        must(&[
            "link",
            "add",
            &net.srv_if,
            "netns",
            &srv,
            "type",
            "veth",
            "peer",
            "name",
            &net.cli_if,
            "netns",
            &cli,
        ]);
        for (ns, dev, addr) in [
            (&srv, &net.srv_if, SERVER_IP),
            (&cli, &net.cli_if, CLIENT_IP),
        ] {
            must(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            must(&["-n", ns, "link", "set", dev, "up"]);
            must(&["-n", ns, "link", "set", "lo", "up"]);
        }
        Some(net)
    }

    fn exec(&self, ns: &str, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, prog]);
        c
    }

    fn spawn(&mut self, ns: &str, prog: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join(format!("{prog}.log"))).unwrap();
        let child = self
            .exec(ns, prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {prog}: {e}"));
        self.children.push(child);
    }

    /// nginx (also on 127.0.0.1 for the loopback test), redis-server and dnsmasq in the server
    /// namespace, each answering before this returns.
    fn start_servers(&mut self) {
        let d = self.dir.path().to_path_buf();
        let conf = d.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off; master_process off; pid {pid}; error_log stderr;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
                   fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
                   server {{ listen 80;\n\
                     location /missing {{ return 404; }}\n\
                     location / {{ default_type text/plain; return 200 \"hello\\n\"; }} }} }}\n",
                pid = d.join("nginx.pid").display(),
                d = d.display()
            ),
        )
        .unwrap();
        let srv = self.srv.clone();
        self.spawn(
            &srv,
            "nginx",
            &["-p", d.to_str().unwrap(), "-c", conf.to_str().unwrap()],
        );
        self.spawn(
            &srv,
            "redis-server",
            &[
                "--bind",
                SERVER_IP,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                d.to_str().unwrap(),
            ],
        );
        self.spawn(
            &srv,
            "dnsmasq",
            &[
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                &format!("--listen-address={SERVER_IP}"),
                "--address=/example.test/198.18.0.99",
                "--user=root",
                &format!("--pid-file={}", d.join("dnsmasq.pid").display()),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        let cli = self.cli.clone();
        let ready = |prog: &str, args: &[&str]| -> bool {
            self.exec(&cli, prog)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let url = format!("http://{SERVER_IP}/");
        let at = format!("@{SERVER_IP}");
        while !(ready("curl", &["-sf", "-o", "/dev/null", &url])
            && ready("redis-cli", &["-h", SERVER_IP, "PING"])
            && ready(
                "dig",
                &[&at, "ready.example.test", "+short", "+tries=1", "+time=1"],
            ))
        {
            assert!(
                Instant::now() < deadline,
                "servers did not come up: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for p in ["nginx", "redis-server", "dnsmasq"] {
            let t = std::fs::read_to_string(self.dir.path().join(format!("{p}.log")))
                .unwrap_or_default();
            s.push_str(&format!("\n--- {p}:\n{t}"));
        }
        s
    }

    /// The requests every test checks: HTTP (200 and 404), Redis SET and GET, DNS A queries.
    fn run_clients(&self, ns: &str, server: &str) {
        let run = |prog: &str, args: &[&str]| {
            let out = self.exec(ns, prog).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{prog} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        for i in 0..REQUESTS {
            run(
                "curl",
                &["-s", "-o", "/dev/null", &format!("http://{server}/req{i}")],
            );
            run(
                "curl",
                &[
                    "-s",
                    "-o",
                    "/dev/null",
                    &format!("http://{server}/missing{i}"),
                ],
            );
            if server == SERVER_IP {
                run(
                    "redis-cli",
                    &["-h", server, "SET", &format!("key{i}"), &format!("v{i}")],
                );
                assert_eq!(
                    run("redis-cli", &["-h", server, "GET", &format!("key{i}")]).trim(),
                    format!("v{i}")
                );
                let answer = run(
                    "dig",
                    &[
                        &format!("@{server}"),
                        &format!("host{i}.example.test"),
                        "A",
                        "+short",
                    ],
                );
                assert_eq!(answer.trim(), "198.18.0.99");
            }
        }
    }
}

/// A running packetbeat; SIGINT and its events on [`Sniffer::stop`].
struct Sniffer {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_sniffer(net: &Net, ns: &str, name: &str, iface: &str) -> Sniffer {
    let dir = net.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "packetbeat.interfaces:\n{iface}\n\
             packetbeat.protocols:\n\
             - type: http\n  ports: [80, 8080]\n\
             - type: redis\n  ports: [6379]\n\
             - type: dns\n  ports: [53]\n\
             output.file:\n  path: {out}\n  filename: packetbeat\n\
             path.data: {data}\npath.logs: {data}\n",
            out = dir.join("out").display(),
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    spawn_sniffer(net, ns, dir, &cfg, &[])
}

/// packetbeat with `-c cfg` and `args` in namespace `ns`, writing its log to `dir/stderr`;
/// returns once it is capturing.
fn spawn_sniffer(net: &Net, ns: &str, dir: PathBuf, cfg: &Path, args: &[&str]) -> Sniffer {
    let log = std::fs::File::create(dir.join("stderr")).unwrap();
    let child = net
        .exec(ns, env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "--strict.perms=false", "-c"])
        .arg(cfg)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let s = Sniffer {
        child: Some(child),
        dir,
    };
    // Ready once the workers are up (the capture is open before they start).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = s.stderr();
        if text.contains("packet worker(s)") {
            break;
        }
        assert!(
            Instant::now() < deadline && !text.contains("Exiting"),
            "packetbeat did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

impl Sniffer {
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// SIGINT (the capture first analyses what the kernel already holds); exit status 0
    /// required.
    fn stop(self) -> (Vec<Value>, String) {
        self.stop_with(libc::SIGINT)
    }

    fn stop_with(mut self, signal: i32) -> (Vec<Value>, String) {
        std::thread::sleep(Duration::from_millis(200));
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("packetbeat did not stop on SIGINT: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self.stderr();
        assert_eq!(status.code(), Some(0), "{stderr}");
        (read_events(&self.dir.join("out")), stderr)
    }
}

fn read_events(dir: &Path) -> Vec<Value> {
    let mut events = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return events;
    };
    let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            events.push(serde_json::from_str(line).unwrap());
        }
    }
    events
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| field(e, "type") == t).collect()
}

/// Every request of [`Net::run_clients`] once, with its fields and `direction`.
fn check_events(events: &[Value], server: &str, direction: &str, with_redis_dns: bool, log: &str) {
    let ctx = || format!("{} events: {events:#?}\n--- log:\n{log}", events.len());
    let http = of_type(events, "http");
    assert_eq!(http.len(), 2 * REQUESTS, "HTTP transactions: {}", ctx());
    for i in 0..REQUESTS {
        for (path, status) in [(format!("/req{i}"), 200), (format!("/missing{i}"), 404)] {
            let found: Vec<_> = http
                .iter()
                .filter(|e| field(e, "url.path") == path.as_str())
                .collect();
            assert_eq!(found.len(), 1, "{path} once: {}", ctx());
            let e = found[0];
            assert_eq!(field(e, "http.response.status_code"), status, "{}", ctx());
            assert_eq!(field(e, "http.request.method"), "GET");
            assert_eq!(field(e, "server.ip"), server);
            assert_eq!(field(e, "server.port"), 80);
            assert_eq!(
                field(e, "status"),
                if status == 200 { "OK" } else { "Error" }
            );
            assert_eq!(field(e, "network.direction"), direction, "{}", ctx());
            assert_eq!(field(e, "network.transport"), "tcp");
        }
    }
    if !with_redis_dns {
        return;
    }
    let redis = of_type(events, "redis");
    assert_eq!(redis.len(), 2 * REQUESTS, "Redis transactions: {}", ctx());
    for i in 0..REQUESTS {
        for method in ["SET", "GET"] {
            let key = format!("key{i}");
            let found: Vec<_> = redis
                .iter()
                .filter(|e| field(e, "method") == method && field(e, "resource") == key.as_str())
                .collect();
            assert_eq!(found.len(), 1, "{method} {key} once: {}", ctx());
            assert_eq!(field(found[0], "network.direction"), direction);
            assert_eq!(field(found[0], "client.ip"), CLIENT_IP);
        }
    }
    let dns = of_type(events, "dns");
    assert_eq!(dns.len(), REQUESTS, "DNS transactions: {}", ctx());
    for i in 0..REQUESTS {
        let name = format!("host{i}.example.test");
        let found: Vec<_> = dns
            .iter()
            .filter(|e| field(e, "dns.question.name") == name.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{name} once: {}", ctx());
        let e = found[0];
        assert_eq!(field(e, "dns.response_code"), "NOERROR");
        assert_eq!(
            field(e, "dns.resolved_ip"),
            &serde_json::json!(["198.18.0.99"])
        );
        assert_eq!(field(e, "network.direction"), direction);
        assert_eq!(field(e, "network.transport"), "udp");
    }
}

/// Whether `ip link` shows `dev` in promiscuous mode, and what it printed.
fn promiscuous(ns: &str, dev: &str) -> (bool, String) {
    let out = Command::new("ip")
        .args(["-n", ns, "link", "show", "dev", dev])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (text.contains("PROMISC"), text)
}

/// Sniffs the server's end of the veth (requests arrive: `ingress`) or the client's (`egress`).
fn veth_case(kind: &str, workers: usize, on_client: bool) {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let (ns, dev, direction) = if on_client {
        (net.cli.clone(), net.cli_if.clone(), "egress")
    } else {
        (net.srv.clone(), net.srv_if.clone(), "ingress")
    };
    let promisc = kind == "af_packet";
    let iface = format!(
        "  type: {kind}\n  device: {dev}\n  workers: {workers}\n  auto_promisc_mode: {promisc}"
    );
    let sniffer = start_sniffer(&net, &ns, &format!("{kind}-{workers}"), &iface);
    if promisc {
        let (on, link) = promiscuous(&ns, &dev);
        assert!(on, "auto_promisc_mode: {link}");
    }
    let cli = net.cli.clone();
    net.run_clients(&cli, SERVER_IP);
    let (events, log) = sniffer.stop();
    check_events(&events, SERVER_IP, direction, true, &log);
    assert!(
        log.contains(&format!("{workers} packet worker(s)")),
        "{log}"
    );
    assert!(log.contains("0 dropped by the kernel"), "{log}");
    // af_packet with several workers: one socket per worker, the kernel spreading flows.
    assert_eq!(
        log.contains(&format!("{workers} sockets in fanout group")),
        kind == "af_packet" && workers > 1,
        "{log}"
    );
    if promisc {
        let (on, link) = promiscuous(&ns, &dev);
        assert!(!on, "promiscuous mode not restored: {link}");
    }
}

#[test]
fn pcap_one_worker() {
    veth_case("pcap", 1, false);
}

#[test]
fn pcap_two_workers() {
    veth_case("pcap", 2, false);
}

#[test]
fn af_packet_one_worker() {
    veth_case("af_packet", 1, false);
}

#[test]
fn af_packet_two_workers_on_the_client_side() {
    veth_case("af_packet", 2, true);
}

/// `lo` inside the server namespace: curl to nginx on 127.0.0.1, with both sniffers; every
/// request once (the loopback device shows each frame going out and coming in).
#[test]
fn loopback_with_both_sniffers() {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    for kind in ["pcap", "af_packet"] {
        let iface = format!("  type: {kind}\n  device: lo\n  workers: 2");
        let sniffer = start_sniffer(&net, &net.srv.clone(), &format!("lo-{kind}"), &iface);
        let srv = net.srv.clone();
        net.run_clients(&srv, "127.0.0.1");
        let (events, log) = sniffer.stop();
        check_events(&events, "127.0.0.1", "ingress", false, &log);
    }
}

/// `any` (the default device) in the list form, with both sniffers: the veth's traffic once.
#[test]
fn any_device_and_list_form() {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let (srv, cli) = (net.srv.clone(), net.cli.clone());
    for kind in ["pcap", "af_packet"] {
        let iface = format!("  - type: {kind}\n    device: any\n    workers: 2");
        let sniffer = start_sniffer(&net, &srv, &format!("any-{kind}"), &iface);
        net.run_clients(&cli, SERVER_IP);
        let (events, log) = sniffer.stop();
        check_events(&events, SERVER_IP, "ingress", true, &log);
        assert!(log.contains(&format!("{kind} device any")), "{log}");
    }
}

/// Two interfaces at once (list form): the veth with af_packet and `lo` with libpcap.
#[test]
fn two_interfaces_at_once() {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let srv = net.srv.clone();
    let iface = format!(
        "  - type: af_packet\n    device: {}\n    workers: 2\n  - type: pcap\n    device: lo",
        net.srv_if
    );
    let sniffer = start_sniffer(&net, &srv, "two", &iface);
    let cli = net.cli.clone();
    net.run_clients(&cli, SERVER_IP);
    net.run_clients(&srv, "127.0.0.1");
    let (events, log) = sniffer.stop();
    let (veth, lo): (Vec<Value>, Vec<Value>) = events
        .into_iter()
        .partition(|e| field(e, "server.ip") == SERVER_IP);
    check_events(&veth, SERVER_IP, "ingress", true, &log);
    check_events(&lo, "127.0.0.1", "ingress", false, &log);
    assert!(
        log.contains("af_packet device") && log.contains("pcap device lo"),
        "{log}"
    );
}

/// An invalid `bpf_filter` is an error at start and in `test config` (exit 1), as in Packetbeat.
#[test]
fn invalid_filter_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("packetbeat.yml");
    std::fs::write(
        &cfg,
        "packetbeat.interfaces:\n  device: lo\n  bpf_filter: \"tcp port eighty\"\n\
         packetbeat.protocols:\n- type: http\n  ports: [80]\noutput.discard: {}\n",
    )
    .unwrap();
    for args in [&["test", "config"][..], &["run"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .args(args)
            .args(["--strict.perms=false", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("invalid bpf_filter 'tcp port eighty'"),
            "{args:?}: {stderr}"
        );
    }
}

/// The stock packetbeat.yml, unchanged apart from `-E` overrides for the output and the device,
/// reports live traffic (flows on, so no BPF filter); stopped by SIGTERM.
#[test]
fn stock_config_with_sigterm() {
    let Some(stock) = common::shared_or_skip("reference/packetbeat/packetbeat.yml") else {
        return;
    };
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let dir = net.dir.path().join("stock");
    std::fs::create_dir_all(&dir).unwrap();
    let out = format!("output.file.path={}", dir.join("out").display());
    let data = dir.join("data");
    let device = format!("packetbeat.interfaces.device={}", net.srv_if);
    let srv = net.srv.clone();
    let sniffer = spawn_sniffer(
        &net,
        &srv,
        dir,
        &stock,
        &[
            "-E",
            "output.elasticsearch.enabled=false",
            "-E",
            &out,
            "-E",
            &device,
            "--path.data",
            data.to_str().unwrap(),
            "--path.logs",
            data.to_str().unwrap(),
        ],
    );
    let cli = net.cli.clone();
    net.run_clients(&cli, SERVER_IP);
    let (events, log) = sniffer.stop_with(libc::SIGTERM);
    let (flows, rest): (Vec<Value>, Vec<Value>) =
        events.into_iter().partition(|e| field(e, "type") == "flow");
    check_events(&rest, SERVER_IP, "ingress", true, &log);
    assert!(
        flows.iter().any(|f| field(f, "destination.port") == 6379),
        "a flow for the Redis connections: {flows:#?}"
    );
}

/// A replay into the veth at top speed: every frame sent is either received or counted as
/// dropped by the kernel (`received + dropped = sent`), for both sniffers.
#[test]
fn replay_drop_accounting() {
    let Some(pcap) = common::shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    if require_or_skip(on_path("tcpreplay"), "tcpreplay", HOW_DEPS).is_none() {
        return;
    }
    let Some(net) = Net::new() else { return };
    // No IPv6 on the veth: the kernel's own neighbour discovery would add frames.
    for ns in [&net.srv, &net.cli] {
        let _ = net
            .exec(ns, "sysctl")
            .args(["-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            .status();
    }
    for kind in ["pcap", "af_packet"] {
        // Flows on: no generated filter, every frame counts. The monitoring endpoint on a Unix
        // socket, reachable from outside the namespace.
        let sock = net.dir.path().join(format!("{kind}.sock"));
        let iface = format!(
            "  type: {kind}\n  device: {}\n  buffer_size_mb: 4\n  metrics_interval: 1s\n\
             packetbeat.flows: {{}}\nhttp: {{enabled: true, host: 'unix://{}'}}",
            net.srv_if,
            sock.display()
        );
        let sniffer = start_sniffer(&net, &net.srv.clone(), &format!("replay-{kind}"), &iface);
        let loops = "3000";
        let out = net
            .exec(&net.cli, "tcpreplay")
            .args([
                "-q",
                "--topspeed",
                "-l",
                loops,
                &format!("--intf1={}", net.cli_if),
            ])
            .arg(&pcap)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "tcpreplay: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "Actual: 400 packets (...) sent in ..."
        let sent: u64 = text
            .split("Actual: ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("tcpreplay output: {text}"));
        // The monitoring's view, while the capture runs: its device's counters at /inputs/
        // settle on what was sent, and /stats sums the drops.
        let get = |path: &str| -> serde_json::Value {
            let s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            let (status, body) = common::http_get(s, path);
            assert_eq!(status, 200, "{body}");
            serde_json::from_str(&body).unwrap()
        };
        let t0 = Instant::now();
        // One entry per socket (af_packet with several workers has one each).
        let input = loop {
            let inputs = get("/inputs/");
            let all = inputs.as_array().unwrap();
            assert!(!all.is_empty(), "{inputs}");
            let (mut packets, mut drops) = (0, 0);
            for i in all {
                assert_eq!(i["input"], kind, "{inputs}");
                assert_eq!(i["device"], net.srv_if.as_str(), "{inputs}");
                let n = |k: &str| i[k].as_u64().unwrap_or_else(|| panic!("{k} in {i}"));
                packets += n("packets");
                drops += if kind == "af_packet" {
                    n("socket_drops")
                } else {
                    n("kernel_drops") + n("interface_drops")
                };
            }
            if packets + drops == sent {
                break (inputs, drops);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{kind}: {inputs} of {sent} sent"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let stats = get("/stats");
        assert_eq!(
            stats["packetbeat"]["packets"]["kernel_dropped"].as_u64(),
            Some(input.1),
            "{stats}"
        );
        eprintln!("{kind} /inputs/: {}", input.0);
        let (_, log) = sniffer.stop();
        // Summed over the capture's sockets (af_packet with several workers has one each).
        let num = |after: &str| -> u64 {
            let mut total = 0;
            let mut rest = log.as_str();
            while let Some(i) = rest.find(after) {
                total += rest[..i]
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .last()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
                rest = &rest[i + after.len()..];
            }
            assert!(total > 0 || log.contains(after), "{after:?} in {log}");
            total
        };
        let received = num(" frames received");
        let dropped = num(" dropped by the kernel");
        assert!(received > 0, "{log}");
        eprintln!("{kind}: sent {sent}, received {received}, dropped {dropped}");
        assert_eq!(received + dropped, sent, "{kind}: {log}");
    }
}

/// `device: default_route` with `poll_default_route`: when the default route moves to another
/// device, the sniffer follows it (sniffing on the client's side, where the route is).
#[test]
fn poll_default_route_follows_the_route() {
    let Some(mut net) = Net::new() else { return };
    let (srv2, cli2) = (format!("{}b", net.srv_if), format!("{}b", net.cli_if));
    must(&[
        "link", "add", &srv2, "netns", &net.srv, "type", "veth", "peer", "name", &cli2, "netns",
        &net.cli,
    ]);
    for (ns, dev, addr) in [
        (&net.srv, &srv2, "198.18.1.1"),
        (&net.cli, &cli2, "198.18.1.2"),
    ] {
        must(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
        must(&["-n", ns, "link", "set", dev, "up"]);
    }
    must(&[
        "-n",
        &net.cli,
        "route",
        "add",
        "default",
        "via",
        SERVER_IP,
        "dev",
        &net.cli_if,
    ]);
    net.start_servers();
    let cli = net.cli.clone();
    let iface = "  type: pcap\n  device: default_route\n  poll_default_route: 1s\n  workers: 1";
    let sniffer = start_sniffer(&net, &cli, "route", iface);
    assert!(
        sniffer
            .stderr()
            .contains(&format!("Capturing on device {}", net.cli_if)),
        "{}",
        sniffer.stderr()
    );
    let curl = |url: &str| {
        let ok = net
            .exec(&cli, "curl")
            .args(["-sf", "-o", "/dev/null", url])
            .status()
            .unwrap()
            .success();
        assert!(ok, "curl {url}");
    };
    curl(&format!("http://{SERVER_IP}/before"));
    must(&[
        "-n",
        &cli,
        "route",
        "replace",
        "default",
        "via",
        "198.18.1.1",
        "dev",
        &cli2,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Restarted, and the new capture open (the request must not come between the two).
    while !sniffer
        .stderr()
        .contains(&format!("Capturing on device {cli2} "))
    {
        assert!(
            Instant::now() < deadline,
            "no restart: {}",
            sniffer.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    curl("http://198.18.1.1/after");
    let (events, log) = sniffer.stop();
    let paths: Vec<&Value> = of_type(&events, "http")
        .into_iter()
        .map(|e| field(e, "url.path"))
        .collect();
    assert_eq!(paths, ["/before", "/after"], "{log}");
    assert!(log.contains("1 restart(s)"), "{log}");
}

/// `packetbeat.ignore_outgoing` on the client's side: its requests go out (`egress`), so none is
/// published, and the exit summary counts them as dropped.
#[test]
fn ignore_outgoing_on_live_traffic() {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let cli = net.cli.clone();
    let iface = format!("  device: {}\npacketbeat.ignore_outgoing: true", net.cli_if);
    let sniffer = start_sniffer(&net, &cli, "outgoing", &iface);
    net.run_clients(&cli, SERVER_IP);
    let (events, log) = sniffer.stop();
    assert!(events.is_empty(), "{events:#?}");
    // 8 HTTP + 8 Redis + 4 DNS transactions, all egress.
    assert!(log.contains("0 written, 20 dropped"), "{log}");
}

/// 802.1Q frames replayed into the veth (`http_over_vlan.pcap`): the receiving kernel takes the
/// tag out of the frame into its metadata, and both sniffers must put it back, so flow events
/// carry the `flow.vlan` a file replay of the capture gives; with `with_vlans` the generated
/// filter keeps the tagged request.
#[test]
fn vlan_tags_are_kept() {
    let Some(pcap) = common::shared_or_skip("pcaps/http_over_vlan.pcap") else {
        return;
    };
    if require_or_skip(on_path("tcpreplay"), "tcpreplay", HOW_DEPS).is_none() {
        return;
    }
    let Some(net) = Net::new() else { return };
    let want = common::run_capture(
        &pcap,
        "packetbeat.protocols:\n- type: http\n  ports: [8080]\npacketbeat.flows: {}",
        &[],
    );
    let want_vlan = of_type(&want.events, "flow")
        .first()
        .map(|f| field(f, "flow.vlan").clone())
        .unwrap_or_else(|| panic!("no flow from the file: {}", want.stderr));
    assert!(!want_vlan.is_null());
    let srv = net.srv.clone();
    for kind in ["pcap", "af_packet"] {
        for flows in [false, true] {
            let iface = format!(
                "  type: {kind}\n  device: {}\n  with_vlans: true\n  workers: 1{}",
                net.srv_if,
                if flows { "\npacketbeat.flows: {}" } else { "" }
            );
            let sniffer = start_sniffer(&net, &srv, &format!("vlan-{kind}-{flows}"), &iface);
            let out = net
                .exec(&net.cli, "tcpreplay")
                .args(["-q", &format!("--intf1={}", net.cli_if)])
                .arg(&pcap)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (events, log) = sniffer.stop();
            let http = of_type(&events, "http");
            assert_eq!(http.len(), 1, "{kind}: {events:#?}\n{log}");
            if flows {
                // The HTTP connection's flow (the veth also carries the kernel's IPv6 chatter).
                let vlans: Vec<&Value> = of_type(&events, "flow")
                    .into_iter()
                    .filter(|f| field(f, "destination.port") == 8080)
                    .map(|f| field(f, "flow.vlan"))
                    .collect();
                assert!(
                    !vlans.is_empty() && vlans.iter().all(|v| **v == want_vlan),
                    "{kind}: flow.vlan {vlans:?}, want {want_vlan}"
                );
            } else {
                assert!(log.contains("or (vlan and ("), "{log}");
            }
        }
    }
}

/// A request still unanswered when SIGINT arrives ends as at the end of a file: an HTTP
/// request to a server that accepts and never answers is published as an unmatched request.
#[test]
fn sigint_reports_open_transactions() {
    let Some(mut net) = Net::new() else { return };
    let (srv, cli) = (net.srv.clone(), net.cli.clone());
    let listener = format!(
        "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{SERVER_IP}',8080))\ns.listen()\nc=s.accept()\ntime.sleep(60)\n"
    );
    net.spawn(&srv, "python3", &["-c", &listener]);
    let iface = format!("  device: {}", net.srv_if);
    let sniffer = start_sniffer(&net, &srv, "open", &iface);
    let mut waiting = net
        .exec(&cli, "curl")
        .args([
            "-s",
            "--retry",
            "5",
            "--retry-connrefused",
            "--max-time",
            "30",
        ])
        .arg(format!("http://{SERVER_IP}:8080/never-answered"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Time for curl to start and send on a loaded machine; its request is all this needs.
    std::thread::sleep(Duration::from_millis(2500));
    let (events, log) = sniffer.stop();
    let _ = waiting.kill();
    let _ = waiting.wait();
    let http = of_type(&events, "http");
    assert_eq!(http.len(), 1, "{events:#?}\n{log}");
    assert_eq!(field(http[0], "url.path"), "/never-answered");
    assert_eq!(field(http[0], "network.direction"), "ingress");
    assert!(
        field(http[0], "http.response.status_code").is_null(),
        "{:#}",
        http[0]
    );
}

/// `fanout_group`: two processes on one interface share its traffic by flow; together they
/// report every request once.
#[test]
fn fanout_group_shares_an_interface_between_processes() {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let (srv, cli) = (net.srv.clone(), net.cli.clone());
    let iface = format!(
        "  type: af_packet\n  device: {}\n  fanout_group: 7\n  workers: 1",
        net.srv_if
    );
    let a = start_sniffer(&net, &srv, "fanout-a", &iface);
    let b = start_sniffer(&net, &srv, "fanout-b", &iface);
    net.run_clients(&cli, SERVER_IP);
    let (mut events, log_a) = a.stop();
    let (events_b, log_b) = b.stop();
    assert!(
        !events.is_empty() && !events_b.is_empty(),
        "{log_a}\n{log_b}"
    );
    events.extend(events_b);
    check_events(
        &events,
        SERVER_IP,
        "ingress",
        true,
        &format!("{log_a}\n{log_b}"),
    );
}

/// `packetbeat.procs`: sniffing the server's side, each transaction names the server process
/// that owns the local end (`destination.process` and `process`: nginx with the name
/// `monitored` gives it, redis-server as its own name), with its pid, parent, executable and
/// arguments; the client's end is not local, so it has none.
#[test]
fn procs_name_the_local_server_processes() {
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    let srv = net.srv.clone();
    let iface = format!(
        "  device: {}\npacketbeat.procs:\n  enabled: true\n  monitored:\n    - process: web\n      cmdline_grep: nginx",
        net.srv_if
    );
    let sniffer = start_sniffer(&net, &srv, "procs", &iface);
    let cli = net.cli.clone();
    net.run_clients(&cli, SERVER_IP);
    let (events, log) = sniffer.stop();
    assert!(log.contains("Process watcher enabled"), "{log}");
    let cmdline = |pid: &Value| {
        std::fs::read(format!("/proc/{}/cmdline", pid.as_u64().unwrap()))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    };
    // Debian's redis-server binary is a link to redis-check-rdb: the executable is what
    // /proc/<pid>/exe names, the program name is in the arguments.
    for (kind, name, exe) in [
        ("http", "web", "nginx"),
        ("redis", "redis-server", "redis-server"),
    ] {
        let evs = of_type(&events, kind);
        assert!(!evs.is_empty(), "no {kind} events: {log}");
        for e in evs {
            let p = &e["destination"]["process"];
            assert_eq!(p["name"], name, "{e}");
            let pid = p["pid"].as_u64().unwrap();
            let real_exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
            assert_eq!(
                p["executable"].as_str().unwrap(),
                real_exe.to_str().unwrap(),
                "{e}"
            );
            assert!(cmdline(&p["pid"]).contains(exe), "{e}");
            assert!(p["parent"]["pid"].as_u64().unwrap() > 0, "{e}");
            assert!(p["args"][0].as_str().unwrap().contains(exe), "{e}");
            assert!(p["start"].as_str().unwrap().starts_with("20"), "{e}");
            assert_eq!(e["process"], *p, "{e}");
            assert!(e["source"].get("process").is_none(), "{e}");
        }
    }
}

/// `packetbeat.run_as`: root only to open the capture, then the `nobody` user for every thread,
/// none of them with a capability left; the traffic is still reported.
#[test]
fn run_as_drops_root_once_the_capture_is_open() {
    use std::os::unix::fs::PermissionsExt;
    let Some(mut net) = Net::new() else { return };
    net.start_servers();
    // What packetbeat creates after the drop (the output file, path.data) must be writable by
    // the user it becomes.
    let dir = net.dir.path().join("run-as");
    for d in [
        net.dir.path().to_path_buf(),
        dir.clone(),
        dir.join("out"),
        dir.join("data"),
    ] {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let iface = format!(
        "  type: af_packet\n  device: {}\n  workers: 2\npacketbeat.run_as.user: nobody",
        net.srv_if
    );
    let sniffer = start_sniffer(&net, &net.srv.clone(), "run-as", &iface);
    let pid = sniffer.child.as_ref().unwrap().id();
    // The start line comes before the workers' threads and the system call filter: wait (on a
    // loaded machine, a while) until the threads are there and every one is filtered.
    let list = || -> Vec<PathBuf> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.filter_map(|t| t.ok().map(|t| t.path())).collect())
            .unwrap_or_default()
    };
    let filtered = |t: &PathBuf| {
        std::fs::read_to_string(t.join("status")).is_ok_and(|s| {
            s.lines()
                .any(|l| l.split_whitespace().eq(["Seccomp:", "2"]))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tasks = list();
    while !(tasks.len() > 2 && tasks.iter().all(filtered)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        tasks = list();
    }
    assert!(tasks.len() > 2, "{tasks:?}");
    for t in &tasks {
        let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_else(|| panic!("{k} in {status}"))
        };
        assert_eq!(field("Uid:"), ["65534"; 4], "{t:?}: {status}");
        assert!(field("Gid:").iter().all(|g| *g != "0"), "{t:?}: {status}");
        assert_eq!(field("CapEff:"), ["0000000000000000"], "{t:?}: {status}");
        assert_eq!(field("NoNewPrivs:"), ["1"], "{t:?}: {status}");
        // The built-in system call filter (seccomp.*), on every thread.
        assert_eq!(field("Seccomp:"), ["2"], "{t:?}: {status}");
        assert_eq!(field("Seccomp_filters:"), ["1"], "{t:?}: {status}");
    }
    let cli = net.cli.clone();
    net.run_clients(&cli, SERVER_IP);
    let (events, log) = sniffer.stop();
    assert!(
        log.contains("Dropped privileges: running as user nobody (65534)"),
        "{log}"
    );
    check_events(&events, SERVER_IP, "ingress", true, &log);
}
