//! Hostile traffic (issue: hardening): the captures `tests/adversarial/make_captures.py` writes
//! (deterministic, generated here, not committed) each run to the end with exit 0 and no panic,
//! with peak memory under the configured limits plus a fixed overhead, and the eviction
//! counters showing what was given up; and a normal capture analysed right after a hostile
//! one, in the same process, still gives exactly its own events.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The analysers on the ports the generator attacks.
const PROTOCOLS: &str = "packetbeat.protocols:
- {type: http, ports: [80]}
- {type: tls, ports: [443]}
- {type: dns, ports: [53]}
- {type: redis, ports: [6379, 6380]}
- {type: mysql, ports: [3306]}
- {type: pgsql, ports: [5432]}
- {type: memcache, ports: [11211]}
- {type: mongodb, ports: [27017]}
- {type: cassandra, ports: [9042]}
- {type: amqp, ports: [5672]}
- {type: thrift, ports: [9090]}
- {type: nfs, ports: [2049]}
- {type: sip, ports: [5060]}
";

const TCP_CONNECTIONS: u64 = 5_000;
const TRANSACTIONS: u64 = 500;
const IP_DATAGRAMS: u64 = 512;
const STREAM_BYTES: u64 = 16 << 20;
/// What a followed connection may cost besides its stream bytes (the connection, its parser's
/// state, the table entries).
const PER_CONNECTION: u64 = 2 << 10;
/// The process without traffic state: the binary, the thread stacks, the output queue of events
/// (queue.mem.events below), the defragmentation table and the allocator's slack.
const FIXED_OVERHEAD: u64 = 128 << 20;

fn limits() -> String {
    format!(
        "packetbeat.limits: {{tcp_connections: {TCP_CONNECTIONS}, stream_bytes: {STREAM_BYTES}, transactions: {TRANSACTIONS}, ip_datagrams: {IP_DATAGRAMS}}}\nqueue.mem.events: 4096\n"
    )
}

/// Writes the captures at `scale` into `dir`.
fn generate(dir: &Path, scale: &str) -> Vec<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adversarial/make_captures.py");
    let mut c = Command::new("python3");
    c.arg(&script).arg("--out").arg(dir).args(["--scale", scale]);
    if let Some(shared) = shared("pcaps") {
        c.arg("--shared").arg(shared);
    } else {
        c.args(["--only", "syn_flood,out_of_order,overlap_conflict,fragments,http_huge,dns_bombs,tls_absurd,binary_lengths,random_ports"]);
    }
    let o = common::output_within(&mut c, common::PROGRAM_LIMIT);
    assert!(
        o.status.success(),
        "make_captures.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut files = Vec::new();
    for d in [dir.to_path_buf(), dir.join("bitflips")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            files.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "pcap")),
            );
        }
    }
    files.sort();
    files
}

/// Runs packetbeat on `pcap`; exit status, stderr and the peak resident set (bytes) of the
/// process, as it reports it at exit (`VmHWM`: `wait4`'s `ru_maxrss` would start from this test
/// process's own, which the child inherits through fork and exec).
fn run_measured(home: &Path, pcap: &Path) -> (i32, String, u64) {
    let cfg = home.join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "{PROTOCOLS}{}output.file: {{path: {}}}\npath.data: {}\n",
            limits(),
            home.join("out").display(),
            home.join("data").display()
        ),
    )
    .unwrap();
    let errf = home.join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-e", "-t", "-I"])
        .arg(pcap)
        .arg("-c")
        .arg(&cfg)
        .arg("--strict.perms=false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap())
        .spawn()
        .unwrap();
    let status = child.wait_with_output().unwrap().status;
    let _ = std::fs::remove_dir_all(home.join("out"));
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    let peak = err
        .split("peak resident memory: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024);
    assert!(peak > 0 || !status.success(), "no peak memory line: {err}");
    (status.code().unwrap_or(-1), err, peak)
}

/// A counter of the exit line: the number before `label`.
fn counted(stderr: &str, label: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| l.find(label).map(|i| &l[..i]))
        .filter_map(|before| before.rsplit(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|n| n.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no {label:?} in {stderr}"))
}

#[test]
fn hostile_captures_end_cleanly_within_the_memory_bounds() {
    if require_or_skip(on_path("python3"), "python3", "apt-get install -y python3").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let files = generate(&tmp.path().join("captures"), "0.25");
    assert!(files.len() >= 9, "{files:?}");
    let bound = STREAM_BYTES + TCP_CONNECTIONS * PER_CONNECTION + FIXED_OVERHEAD;
    let home = tmp.path().join("run");
    std::fs::create_dir_all(&home).unwrap();
    let mut report = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (code, err, rss) = run_measured(&home, f);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            rss <= bound,
            "{name}: peak RSS {} MiB over the bound of {} MiB",
            rss >> 20,
            bound >> 20
        );
        match name.as_str() {
            // 250,000 SYNs of distinct connections through a table of 5,000.
            "syn_flood.pcap" => {
                let evicted = counted(&err, " connections evicted");
                assert!(evicted >= 240_000, "{name}: {evicted} evicted: {err}");
            }
            // Datagrams reassembled from the fragment floods open more DNS transactions than
            // a table holds; 50,000 first fragments never completed go through a table of 512.
            "fragments.pcap" => {
                assert!(counted(&err, " transactions evicted") > 0, "{name}: {err}");
                let dropped = counted(&err, " datagrams dropped");
                assert!(dropped >= 49_000, "{name}: {dropped} datagrams dropped: {err}");
            }
            // Pipelined requests never answered, on 500 connections: the stream budget runs out.
            "out_of_order.pcap" => {
                assert!(counted(&err, " stream allocations refused") > 0, "{name}: {err}");
            }
            _ => {}
        }
        report.push(format!("{name}: {} MiB", rss >> 20));
    }
    eprintln!(
        "peak RSS per capture (bound {} MiB):\n{}",
        bound >> 20,
        report.join("\n")
    );
}

/// `pcap` (classic, little-endian, microseconds) as its header and records.
fn records(pcap: &Path) -> (Vec<u8>, Vec<(f64, Vec<u8>)>) {
    let d = std::fs::read(pcap).unwrap();
    let u32le = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    assert_eq!(u32le(&d[0..4]), 0xa1b2_c3d4, "{}", pcap.display());
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let t = u32le(&d[off..]) as f64 + u32le(&d[off + 4..]) as f64 / 1e6;
        let len = u32le(&d[off + 8..]) as usize;
        out.push((t, d[off..off + 16 + len].to_vec()));
        off += 16 + len;
    }
    (d[..24].to_vec(), out)
}

/// The events whose endpoints are not the generator's (198.18.0.0/15).
fn not_hostile(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| {
            ["source", "destination", "client", "server"].iter().all(|k| {
                e[k]["ip"]
                    .as_str()
                    .is_none_or(|ip| !(ip.starts_with("198.18.") || ip.starts_with("198.19.")))
            })
        })
        .map(|e| {
            // What differs between two runs: the agent's ids (each run has its own data path).
            let mut e = e.clone();
            let agent = e["agent"].as_object_mut().unwrap();
            agent.remove("ephemeral_id");
            agent.remove("id");
            e
        })
        .collect()
}

#[test]
fn a_normal_capture_after_a_hostile_one_gives_its_own_events() {
    let Some(normal) = shared_or_skip("pcaps/redis_session.pcap") else {
        return;
    };
    if require_or_skip(on_path("python3"), "python3", "apt-get install -y python3").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("captures");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adversarial/make_captures.py");
    let o = common::output_within(
        &mut Command::new("python3")
            .arg(&script)
            .arg("--out")
            .arg(&dir)
            .args(["--scale", "0.05", "--only", "syn_flood,random_ports,http_huge,out_of_order"]),
        common::PROGRAM_LIMIT,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The hostile records, moved in time to end a minute before the normal capture starts,
    // then the normal capture as it is.
    let (header, normal_recs) = records(&normal);
    assert_eq!(&header[20..24], &1u32.to_le_bytes(), "an Ethernet capture, as the generator's");
    let start = normal_recs[0].0;
    let mut hostile = Vec::new();
    for name in ["syn_flood", "random_ports", "http_huge", "out_of_order"] {
        hostile.extend(records(&dir.join(format!("{name}.pcap"))).1);
    }
    let (first, last) = (hostile[0].0, hostile.last().unwrap().0);
    let shift = start - 60.0 - (last - first) - first;
    let mut combined = header.clone();
    for (t, mut rec) in hostile {
        let nt = t + shift;
        rec[0..4].copy_from_slice(&(nt.floor() as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((nt.fract() * 1e6) as u32).to_le_bytes());
        combined.extend_from_slice(&rec);
    }
    for (_, rec) in &normal_recs {
        combined.extend_from_slice(rec);
    }
    let both = tmp.path().join("hostile-then-normal.pcap");
    std::fs::write(&both, combined).unwrap();

    let cfg = format!("{PROTOCOLS}{}", limits());
    let alone = run_capture(&normal, &cfg, &[]);
    assert_eq!(alone.status, 0, "{}", alone.stderr);
    let after = run_capture(&both, &cfg, &[]);
    assert_eq!(after.status, 0, "{}", after.stderr);
    assert!(counted(&after.stderr, " connections evicted") > 0, "{}", after.stderr);
    let want = not_hostile(&alone.events);
    assert!(!want.is_empty());
    let got = not_hostile(&after.events);
    assert_eq!(got.len(), want.len(), "events after the hostile traffic");
    assert!(got == want, "the normal capture's events differ after the hostile traffic");
}
