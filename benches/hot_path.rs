//! Micro-benchmarks of the packet path, so regressions show up: decode + dispatch in packets/s,
//! and each analyzer (decode → TCP/UDP layer → parser → transactions → events) in MB/s of
//! captured bytes, over the seed captures of ../shared/bench (real traffic from real servers)
//! and, for ICMP and DHCPv4, which have no seed, Packetbeat's test captures in ../shared/pcaps.
//! `cargo bench --bench hot_path`; skipped when ../shared is not there.

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use packetbeat::beater::dispatch::Dispatcher;
use packetbeat::beater::worker::Worker;
use packetbeat::config::types::ProtocolSection;
use packetbeat::decoder::peek::peek;
use packetbeat::decoder::Decoder;
use packetbeat::protos::build_modules;
use packetbeat::publish::pipeline::Pipeline;
use packetbeat::sniffer::file::FileSource;
use packetbeat::sniffer::{PacketBatch, PacketSource};
use std::path::PathBuf;

fn main() {
    divan::main();
}

fn seed(name: &str) -> Option<Vec<PacketBatch>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/bench/seeds")
        .join(format!("{name}.pcap"));
    let mut src = FileSource::open(&p, true, 1).ok()?;
    let mut batches = Vec::new();
    while let Some(b) = src.next_batch().ok()? {
        batches.push(b);
    }
    Some(batches)
}

fn totals(batches: &[PacketBatch]) -> (usize, usize) {
    let frames = batches.iter().map(|b| b.frames.len()).sum();
    let bytes = batches
        .iter()
        .flat_map(|b| b.frames.iter())
        .map(|f| f.len as usize)
        .sum();
    (frames, bytes)
}

const SEEDS: &[&str] = &["http", "dns", "tls", "mysql", "pgsql", "redis", "memcache"];

#[divan::bench(args = SEEDS)]
fn decode(bencher: Bencher, name: &str) {
    let Some(batches) = seed(name) else { return };
    let (frames, _) = totals(&batches);
    let mut dec = Decoder::new();
    bencher.counter(ItemsCount::new(frames)).bench_local(|| {
        let mut ok = 0usize;
        for b in &batches {
            for d in &b.frames {
                let f = b.frame(d);
                ok += dec.decode(f.link, f.ts, f.data).is_ok() as usize;
            }
        }
        ok
    });
}

#[divan::bench(args = SEEDS)]
fn dispatch(bencher: Bencher, name: &str) {
    let Some(batches) = seed(name) else { return };
    let (frames, _) = totals(&batches);
    let mut dispatcher = Dispatcher::new(2);
    bencher.counter(ItemsCount::new(frames)).bench_local(|| {
        let mut n = 0usize;
        for b in &batches {
            for d in &b.frames {
                let f = b.frame(d);
                n += matches!(
                    peek(f.link, f.data),
                    packetbeat::decoder::peek::Peek::Flow(_)
                ) as usize;
            }
            // The clone (one copy of the frame list) because split takes the batch, as the
            // capture loop hands it on.
            n += dispatcher.split(b.clone()).len();
        }
        n
    });
}

/// Analyzers and the capture they run over: a seed of ../shared/bench (real traffic from real
/// servers) where there is one, else one of Packetbeat's test captures in ../shared/pcaps.
const ANALYZERS: &[(&str, &str, &str)] = &[
    ("http", "seed:http", "ports: [80]"),
    ("dns", "seed:dns", "ports: [53]"),
    ("tls", "seed:tls", "ports: [443]"),
    ("icmp", "pcaps/icmp/icmp4_ping.pcap", "enabled: true"),
    ("dhcpv4", "pcaps/dhcp.pcap", "ports: [67, 68]"),
    ("thrift", "pcaps/thrift_integration.pcap", "ports: [9090]"),
];

fn capture(source: &str) -> Option<Vec<PacketBatch>> {
    if let Some(name) = source.strip_prefix("seed:") {
        return seed(name);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(source);
    let mut src = FileSource::open(&p, true, 1).ok()?;
    let mut batches = Vec::new();
    while let Some(b) = src.next_batch().ok()? {
        batches.push(b);
    }
    Some(batches)
}

/// The whole worker path for one protocol: decode, transport layer, parser, transactions,
/// events finalised and encoded as JSON, in MB/s of captured bytes.
#[divan::bench(args = ANALYZERS)]
fn analyzer(bencher: Bencher, (name, source, options): (&str, &str, &str)) {
    let Some(batches) = capture(source) else {
        return;
    };
    let (_, bytes) = totals(&batches);
    let section = ProtocolSection {
        kind: name.into(),
        options: serde_yaml::from_str(options).unwrap(),
        key: "bench".into(),
    };
    let modules = build_modules(&[section], "bench").unwrap();
    let mut dispatcher = Dispatcher::new(1);
    bencher.counter(BytesCount::new(bytes)).bench_local(|| {
        let mut worker = Worker::new(
            &modules,
            Pipeline::for_tests(&["private"]),
            Some(Default::default()),
        );
        let mut events = 0usize;
        for b in &batches {
            for wb in dispatcher.split(b.clone()) {
                worker.handle_batch(&wb);
            }
            events += worker.take_events().len();
        }
        worker.flush();
        events + worker.take_events().len()
    });
}
