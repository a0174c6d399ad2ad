//! The DPDK capture path with real DPDK (EAL without hugepages or NICs: `--no-huge --no-pci`,
//! virtual devices). EAL initialises once per process, so every case runs the binary.
//!
//! - Differential: every Ethernet capture of `../shared/pcaps` replayed by the pcap PMD gives
//!   exactly the events `-I` gives (multisets, agent ids dropped). Captures of other link types
//!   (Linux SLL, BSD loopback/NULL) are skipped: the pcap PMD hands their bytes over as if they
//!   were Ethernet frames and says nothing of the file's link type.
//! - Per-queue receive: every Ethernet capture cut in two by host pair, one file per RX queue of
//!   the pcap PMD, each queue read on its own thread into its own worker: again exactly the
//!   events of `-I`.
//! - Multi-queue: two RX queues of the pcap PMD (one file each; one receive loop and the
//!   software dispatch), and `net_af_packet` with `qpairs=2` on a veth pair with tcpreplay on
//!   the other end (per-queue receive): every transaction once.
//! - Errors: each misuse gives one `Exiting: ...` line and exit code 1.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn prefix() -> String {
    format!(
        "pbtest{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn eal(prefix: &str, vdevs: &str) -> String {
    format!("--no-huge --no-pci -m 256 --log-level=lib.eal:warning --file-prefix {prefix} {vdevs}")
}

/// Runs the binary with `config` (plus an output.file section) and `args`; returns the output
/// and the events written.
fn run(config: &str, args: &[&str]) -> (Output, Vec<Value>) {
    run_env(config, args, &[])
}

fn run_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Vec<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let cfg_path = tmp.path().join("packetbeat.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "{config}\noutput.file:\n  path: {}\n  filename: packetbeat\npath.data: {}\n",
            out_dir.display(),
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .arg("-e")
        .arg("-c")
        .arg(&cfg_path)
        .arg("--strict.perms=false")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run packetbeat");
    let mut events = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&out_dir) {
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            for line in std::fs::read_to_string(&f).unwrap().lines() {
                events.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    (output, events)
}

fn cleanup_prefix(prefix: &str) {
    let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(prefix));
}

/// Like [`run_dpdk`], calling `started` (on another thread) once the capture has started.
fn run_dpdk_then(
    config: &str,
    vdevs: &str,
    extra: &[&str],
    started: impl FnOnce(&Path) + Send,
) -> (Output, Vec<Value>) {
    use std::io::BufRead;
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let cfg_path = tmp.path().join("packetbeat.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "{config}\noutput.file:\n  path: {}\n  filename: packetbeat\npath.data: {}\n",
            out_dir.display(),
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .arg("-e")
        .arg("-c")
        .arg(&cfg_path)
        .args([
            "--strict.perms=false",
            "--dpdk_status",
            "enable",
            "--dpdk_port",
            "0",
        ])
        .arg("--dpdk_args")
        .arg(eal(&p, vdevs))
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run packetbeat");
    let mut stderr = Vec::new();
    std::thread::scope(|s| {
        let mut started = Some(started);
        for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.contains("packet worker(s)") {
                if let Some(f) = started.take() {
                    let out_dir = out_dir.clone();
                    s.spawn(move || f(&out_dir));
                }
            }
            stderr.extend_from_slice(line.as_bytes());
            stderr.push(b'\n');
        }
    });
    let status = child.wait().unwrap();
    cleanup_prefix(&p);
    let mut events = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&out_dir) {
        for f in rd.flatten() {
            for line in std::fs::read_to_string(f.path()).unwrap().lines() {
                events.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    (
        Output {
            status,
            stdout: Vec::new(),
            stderr,
        },
        events,
    )
}

/// Runs the DPDK path on port 0 with the given vdevs.
fn run_dpdk(config: &str, vdevs: &str, extra: &[&str]) -> (Output, Vec<Value>) {
    let p = prefix();
    let args = eal(&p, vdevs);
    let mut all = vec![
        "--dpdk_status",
        "enable",
        "--dpdk_port",
        "0",
        "--dpdk_args",
        args.as_str(),
    ];
    all.extend_from_slice(extra);
    let r = run(config, &all);
    cleanup_prefix(&p);
    r
}

const DPDK_IFACE: &str =
    "packetbeat.interfaces:\n  type: dpdk\n  device: 0\n  dpdk.exit_when_idle: 500ms\n";

fn dpdk_config(protocols: &str) -> String {
    // ALL_PROTOCOLS starts with `packetbeat.interfaces.internal_networks`: keep it in the map.
    let protocols = protocols.replace("packetbeat.interfaces.internal_networks: [private]", "");
    format!("{DPDK_IFACE}  internal_networks: [private]\n{protocols}")
}

fn normalise(events: &[Value], drop: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .map(|e| {
            let mut m = flatten(e);
            m.remove("agent.ephemeral_id");
            m.remove("agent.id");
            for k in drop {
                m.remove(*k);
            }
            serde_json::to_string(&m).unwrap()
        })
        .collect();
    out.sort();
    out
}

/// Whether a classic pcap's first record is stamped at or past 2^31 s (January 2038).
fn clock_past_2038(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    let Some(ts) = b.get(24..28) else {
        return false;
    };
    let ts = [ts[0], ts[1], ts[2], ts[3]];
    match b.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]) => {
            u32::from_le_bytes(ts) >= 1 << 31
        }
        Some([0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d]) => {
            u32::from_be_bytes(ts) >= 1 << 31
        }
        _ => false,
    }
}

/// The capture's (first interface's) link type.
fn link_type(path: &Path) -> Option<u32> {
    let b = std::fs::read(path).ok()?;
    let u32le = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u32be = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
    match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => Some(u32le(20) & 0xffff),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => Some(u32be(20) & 0xffff),
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            // Section header block, then the first interface description block.
            let le = b[8..12] == [0x4d, 0x3c, 0x2b, 0x1a];
            let rd = |o: usize| if le { u32le(o) } else { u32be(o) };
            let mut pos = rd(4) as usize;
            while pos + 12 <= b.len() {
                let (kind, len) = (rd(pos), rd(pos + 4) as usize);
                if kind == 1 {
                    let lt = &b[pos + 8..pos + 10];
                    return Some(if le {
                        u16::from_le_bytes([lt[0], lt[1]])
                    } else {
                        u16::from_be_bytes([lt[0], lt[1]])
                    } as u32);
                }
                if len == 0 {
                    break;
                }
                pos += len;
            }
            None
        }
        _ => None,
    }
}

/// Every Ethernet capture through the DPDK path gives exactly the events `-I` gives. `split`:
/// the capture is cut in two by host pair (one file per RX queue of the pcap PMD, as a NIC
/// hashing flows symmetrically would spread it) and read by one receive loop per queue, each
/// straight into its own worker (`dpdk.per_queue: true`); otherwise one queue, one loop.
/// `workers`: `packetbeat.interfaces.workers` (0: the default, one per core). `inline`: each
/// receive loop feeding one worker runs it on its own thread (`dpdk.run_to_completion`, on by
/// default), which the log must say; otherwise the workers have threads of their own.
fn differential(split: bool, workers: usize, inline: bool) {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let (eth, skipped): (Vec<_>, Vec<_>) =
        captures.into_iter().partition(|p| link_type(p) == Some(1));
    for p in &skipped {
        eprintln!(
            "skipped {}: link type {:?} is not Ethernet; the pcap PMD would hand it over as Ethernet",
            p.display(),
            link_type(p)
        );
    }
    let mut config = dpdk_config(ALL_PROTOCOLS);
    if split {
        config = config.replace(DPDK_IFACE, &format!("{DPDK_IFACE}  dpdk.per_queue: true\n"));
    }
    config = config.replace(
        DPDK_IFACE,
        &format!("{DPDK_IFACE}  workers: {workers}\n  dpdk.run_to_completion: {inline}\n"),
    );
    let loops = if split { 2 } else { 1 };
    let expect_inline = inline && (split || workers == 1);
    let tmp = tempfile::tempdir().unwrap();
    let failures = std::sync::Mutex::new(Vec::new());
    let compared = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(pcap) = eth.get(i) else { break };
                let want = run_capture(pcap, ALL_PROTOCOLS, &[]);
                let (vdev, extra): (String, &[&str]) = if split {
                    let (a, b) = (tmp.path().join(format!("{i}-a.pcap")), tmp.path().join(format!("{i}-b.pcap")));
                    split_by_host_pair(pcap, &a, &b);
                    (
                        format!("--vdev net_pcap0,rx_pcap={},rx_pcap={}", a.display(), b.display()),
                        &["--dpdk_queues", "2"],
                    )
                } else {
                    (format!("--vdev net_pcap0,rx_pcap={}", pcap.display()), &[])
                };
                let (out, got) = run_dpdk(&config, &vdev, extra);
                let stderr = String::from_utf8_lossy(&out.stderr);
                if split && !stderr.contains("per-queue receive: 2 RX loops") {
                    failures.lock().unwrap().push(format!("{}: not per-queue: {stderr}", pcap.display()));
                }
                let said = format!("run to completion: {loops} receive loop(s)");
                if stderr.contains(&said) != expect_inline {
                    failures.lock().unwrap().push(format!(
                        "{}: expected run to completion: {expect_inline}: {stderr}",
                        pcap.display()
                    ));
                }
                // DPDK's pcap PMD takes its times from libpcap, which reads a record's seconds
                // as signed 32-bit: a capture written past 2038 comes out 2^32 s earlier there
                // (the file reader reads them unsigned, as the pcap format defines them).
                let drop: &[&str] = if clock_past_2038(pcap) {
                    &["@timestamp", "event.start", "event.end"]
                } else {
                    &[]
                };
                let (w, g) = (normalise(&want.events, drop), normalise(&got, drop));
                compared.fetch_add(w.len(), Ordering::SeqCst);
                if out.status.code() != Some(0) || w != g {
                    let missing: Vec<_> = w.iter().filter(|e| !g.contains(e)).take(2).collect();
                    let extra: Vec<_> = g.iter().filter(|e| !w.contains(e)).take(2).collect();
                    failures.lock().unwrap().push(format!(
                        "{}: exit {:?}, {} events with -I, {} with DPDK\nmissing: {missing:#?}\nextra: {extra:#?}\n{}",
                        pcap.display(),
                        out.status.code(),
                        w.len(),
                        g.len(),
                        stderr.lines().rev().take(3).collect::<Vec<_>>().join("\n")
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} captures differ:\n{}",
        failures.len(),
        eth.len(),
        failures.join("\n\n")
    );
    let compared = compared.into_inner();
    assert!(compared > 100, "only {compared} events compared");
    eprintln!(
        "{} Ethernet captures identical through DPDK{}{} ({compared} events); {} skipped (not Ethernet)",
        eth.len(),
        if split { ", two queues read per queue" } else { "" },
        if expect_inline { ", run to completion" } else { ", worker threads" },
        skipped.len()
    );
}

/// One queue, software dispatch to a worker per core.
#[test]
fn differential_every_ethernet_capture() {
    differential(false, 0, true);
}

/// One queue and one worker: the receive loop runs the worker.
#[test]
fn differential_every_ethernet_capture_run_to_completion() {
    differential(false, 1, true);
}

/// Two queues, each loop running its own worker.
#[test]
fn per_queue_receive_every_ethernet_capture_split_by_flow() {
    differential(true, 2, true);
}

/// Two queues, each loop feeding a worker thread of its own.
#[test]
fn per_queue_receive_into_worker_threads_every_ethernet_capture() {
    differential(true, 2, false);
}

/// Writes the frames of `pcap` (classic, Ethernet) into `a` and `b` by a symmetric hash of the
/// IP address pair (both directions, and every fragment, of a conversation in one file; frames
/// that are not IP in `a`).
fn split_by_host_pair(pcap: &Path, a: &Path, b: &Path) {
    let d = std::fs::read(pcap).unwrap();
    let le = d[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || d[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let rd = |o: usize| {
        let x: [u8; 4] = d[o..o + 4].try_into().unwrap();
        if le { u32::from_le_bytes(x) } else { u32::from_be_bytes(x) }
    };
    let (mut out_a, mut out_b) = (d[..24].to_vec(), d[..24].to_vec());
    let mut off = 24;
    while off + 16 <= d.len() {
        let len = rd(off + 8) as usize;
        let end = (off + 16 + len).min(d.len());
        let frame = &d[off + 16..end];
        let mut at = 12;
        let mut etype = 0u16;
        while at + 2 <= frame.len() {
            etype = u16::from_be_bytes([frame[at], frame[at + 1]]);
            at += 2;
            if matches!(etype, 0x8100 | 0x88a8 | 0x9100) {
                at += 2;
                continue;
            }
            break;
        }
        let addrs = match etype {
            0x0800 if frame.len() >= at + 20 => Some((&frame[at + 12..at + 16], &frame[at + 16..at + 20])),
            0x86dd if frame.len() >= at + 40 => Some((&frame[at + 8..at + 24], &frame[at + 24..at + 40])),
            _ => None,
        };
        let second = addrs.is_some_and(|(x, y)| {
            let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
            lo.iter().chain(hi).fold(0x811c_9dc5u32, |h, &c| (h ^ u32::from(c)).wrapping_mul(0x0100_0193)) & 1 == 1
        });
        if second { &mut out_b } else { &mut out_a }.extend_from_slice(&d[off..end]);
        off = end;
    }
    std::fs::write(a, out_a).unwrap();
    std::fs::write(b, out_b).unwrap();
}

#[test]
fn two_pcap_queues_every_transaction_once() {
    let (Some(a), Some(b)) = (
        shared_or_skip("pcaps/http_basicauth.pcap"),
        shared_or_skip("pcaps/dns_google_com.pcap"),
    ) else {
        return;
    };
    let mut want = run_capture(&a, ALL_PROTOCOLS, &[]).events;
    want.extend(run_capture(&b, ALL_PROTOCOLS, &[]).events);
    assert!(want.len() >= 2);
    let vdev = format!(
        "--vdev net_pcap0,rx_pcap={},rx_pcap={}",
        a.display(),
        b.display()
    );
    let (out, got) = run_dpdk(&dpdk_config(ALL_PROTOCOLS), &vdev, &["--dpdk_queues", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("2 RX queue(s)"), "{stderr}");
    assert!(stderr.contains("2 packet worker(s)"), "{stderr}");
    // The pcap PMD has no RSS: one receive loop, and the dispatcher keeps connections whole.
    assert!(
        stderr.contains("one receive loop for 2 RX queues and software dispatch to 2 packet workers: the port has no RSS"),
        "{stderr}"
    );
    assert_eq!(normalise(&got, &[]), normalise(&want, &[]), "{stderr}");
}

struct Veth(String);
impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn af_packet_two_queues_on_veth_with_tcpreplay() {
    let Some(caps) = ["dns_google_com.pcap", "dns_mx.pcap", "http_post.pcap"]
        .iter()
        .map(|c| shared_or_skip(&format!("pcaps/{c}")))
        .collect::<Option<Vec<PathBuf>>>()
    else {
        return;
    };
    let tcpreplay = Command::new("tcpreplay").arg("-V").output().ok().map(drop);
    if require_or_skip(tcpreplay, "tcpreplay", HOW_DEPS).is_none() {
        return;
    }
    let (a, b) = (
        format!("pbva{}", std::process::id() % 100000),
        format!("pbvb{}", std::process::id() % 100000),
    );
    let ok = Command::new("ip")
        .args(["link", "add", &a, "type", "veth", "peer", "name", &b])
        .status()
        .is_ok_and(|s| s.success());
    let how =
        "`ip link add ... type veth` failed: it needs iproute2 (`bash scripts/install-deps`) \
               and root or CAP_NET_ADMIN";
    if require_or_skip(ok.then_some(()), "a veth pair", how).is_none() {
        return;
    }
    let _guard = Veth(a.clone());
    for dev in [&a, &b] {
        assert!(Command::new("ip")
            .args(["link", "set", dev, "up"])
            .status()
            .unwrap()
            .success());
    }
    // Only DNS and HTTP: the veth also carries the kernel's own IPv6 chatter.
    let protocols =
        "packetbeat.protocols:\n  - type: dns\n    ports: [53]\n  - type: http\n    ports: [80]\n";
    let mut want = Vec::new();
    for c in &caps {
        want.extend(run_capture(c, protocols, &[]).events);
    }
    assert!(want.len() >= 3, "{want:?}");
    let config = format!(
        "packetbeat.interfaces:\n  type: dpdk\n  device: 0\n  dpdk.exit_when_idle: 2s\n{protocols}"
    );
    let vdev = format!("--vdev net_af_packet0,iface={a},qpairs=2");
    // Replay once the port is up (the log line after it started), not after a guessed delay.
    let replay = std::sync::Mutex::new(None);
    let (out, got) = run_dpdk_then(&config, &vdev, &["--dpdk_queues", "2"], |_| {
        *replay.lock().unwrap() = Some(
            Command::new("tcpreplay")
                .arg("-q")
                .arg(format!("--intf1={b}"))
                .arg("--pps=2000")
                .args(&caps)
                .output()
                .unwrap(),
        );
    });
    let replayed = replay
        .into_inner()
        .unwrap()
        .expect("the port never started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        replayed.status.success(),
        "tcpreplay: {}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("2 RX queue(s)"), "{stderr}");
    // The PMD's queues are sockets of one fanout group (a symmetric flow hash): each queue is
    // read on its own thread straight into its own worker.
    assert!(
        stderr.contains("per-queue receive: 2 RX loops, each on its own thread straight into its packet worker (af_packet fanout hash)"),
        "{stderr}"
    );
    assert!(stderr.contains("queue 0: ") && stderr.contains("queue 1: "), "{stderr}");
    // Timestamps are the receive time here; everything else must match, each event once.
    let time_keys = ["@timestamp", "event.start", "event.end", "event.duration"];
    assert_eq!(
        normalise(&got, &time_keys),
        normalise(&want, &time_keys),
        "{stderr}"
    );
}

fn assert_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Exiting: "))
        .unwrap_or_else(|| panic!("no Exiting line: {stderr}"));
    assert!(line.contains(needle), "{line}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("Exiting")).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn misuse_errors() {
    let cfg = dpdk_config("");
    // type dpdk, no flags.
    let (out, _) = run(&cfg, &[]);
    assert_error(&out, "DPDK was not initialised");
    // --dpdk_status disable: DPDK untouched (no EAL output), same error.
    let (out, _) = run(&cfg, &["--dpdk_status", "disable", "--dpdk_port", "0"]);
    assert_error(&out, "DPDK was not initialised");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("EAL"));
    // Port of the config differs from the handle's.
    let null = "--vdev net_null0 --vdev net_null1";
    let (out, _) = run_dpdk(&cfg.replace("device: 0", "device: 1"), null, &[]);
    assert_error(&out, "DPDK was started for port 0");
    // A port that does not exist (flags after the subcommand, `=` spelling).
    let p = prefix();
    let args = format!("--dpdk_args={}", eal(&p, null));
    let (out, _) = run(
        &cfg.replace("device: 0", "device: 7"),
        &["run", "--dpdk_port=7", &args, "--dpdk_status=enable"],
    );
    cleanup_prefix(&p);
    assert_error(&out, "DPDK port 7 does not exist");
    // EAL failing.
    let (out, _) = run(
        &cfg,
        &[
            "--dpdk_status",
            "enable",
            "--dpdk_port",
            "0",
            "--dpdk_args",
            "--no-huge --no-pci --definitely-not-an-eal-flag",
        ],
    );
    assert_error(&out, "DPDK EAL initialisation failed");
    // EAL arguments from the environment when --dpdk_args is absent.
    let (out, _) = run_env(
        &cfg,
        &["--dpdk_status", "enable", "--dpdk_port", "0"],
        &[(
            "PACKETBEAT_DPDK_ARGS",
            "--no-huge --no-pci --not-an-eal-flag-either",
        )],
    );
    assert_error(&out, "--not-an-eal-flag-either");
    // --dpdk_status enable without a port.
    let (out, _) = run(&cfg, &["--dpdk_status", "enable"]);
    assert_error(&out, "needs --dpdk_port");
}

/// Events leave the packet workers at every timeout check on the DPDK path too, not only in
/// full batches: while the port idles after a short replay (before `exit_when_idle` ends the
/// run), every event of the capture is already written.
#[test]
fn events_are_written_while_the_port_idles() {
    let Some(pcap) = shared_or_skip("pcaps/http_basicauth.pcap") else {
        return;
    };
    let want = run_capture(&pcap, ALL_PROTOCOLS, &[]).events.len();
    assert!(want > 0 && want < 256, "{want}");
    let cfg = dpdk_config(ALL_PROTOCOLS).replace("exit_when_idle: 500ms", "exit_when_idle: 8s");
    let seen = std::sync::Mutex::new(0usize);
    let (out, got) = run_dpdk_then(
        &cfg,
        &format!("--vdev net_pcap0,rx_pcap={}", pcap.display()),
        &[],
        |dir| {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(6);
            while std::time::Instant::now() < until {
                let n: usize = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.flatten()
                            .map(|f| {
                                std::fs::read_to_string(f.path())
                                    .unwrap_or_default()
                                    .lines()
                                    .count()
                            })
                            .sum()
                    })
                    .unwrap_or(0);
                *seen.lock().unwrap() = n;
                if n >= want {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        },
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(got.len(), want, "{stderr}");
    assert_eq!(
        *seen.lock().unwrap(),
        want,
        "events written while the port idled: {stderr}"
    );
}

#[test]
fn bpf_filter_drops_and_invalid_filter_errors() {
    let Some(pcap) = shared_or_skip("pcaps/dns_google_com.pcap") else {
        return;
    };
    // A filter that drops everything: no DNS event.
    let cfg = dpdk_config(ALL_PROTOCOLS).replace(
        "  type: dpdk\n",
        "  type: dpdk\n  bpf_filter: \"tcp port 80\"\n",
    );
    let (out, got) = run_dpdk(
        &cfg,
        &format!("--vdev net_pcap0,rx_pcap={}", pcap.display()),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(got.is_empty(), "{got:?}");
    assert!(stderr.contains("filtered out by bpf_filter"), "{stderr}");
    // An invalid filter is an error.
    let bad = cfg.replace("tcp port 80", "tcp port eighty");
    let (out, _) = run_dpdk(&bad, "--vdev net_null0", &[]);
    assert_error(&out, "invalid bpf_filter");
}

#[test]
fn sigterm_stops_port_flushes_and_cleans_up() {
    let Some(pcap) = shared_or_skip("pcaps/http_basicauth.pcap") else {
        return;
    };
    // infinite_rx: the pcap PMD replays the file forever, so only the signal ends the run.
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let cfg_path = tmp.path().join("packetbeat.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "packetbeat.interfaces: {{type: dpdk, device: 0}}\npacketbeat.protocols: [{{type: http, ports: [80]}}]\noutput.file:\n  path: {}\n  filename: packetbeat\npath.data: {}\n",
            out_dir.display(),
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let p = prefix();
    let child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-c"])
        .arg(&cfg_path)
        .args([
            "--strict.perms=false",
            "--dpdk_status",
            "enable",
            "--dpdk_port",
            "0",
            "--dpdk_args",
        ])
        .arg(eal(
            &p,
            &format!("--vdev net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()),
        ))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    cleanup_prefix(&p);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("port stats: ipackets"), "{stderr}");
    assert!(stderr.contains("per queue: q0 "), "{stderr}");
    let written: usize = std::fs::read_dir(&out_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
                .sum()
        })
        .unwrap_or(0);
    assert!(written >= 1, "no events flushed: {stderr}");
}
