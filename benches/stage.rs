//! The decode + parse stage on its own: how the packet workers scale with cores.
//!
//! The end-to-end runs of `scripts/bench` share the machine's cores between the capture thread,
//! the workers and the output thread, so on a small machine "2 workers vs 1" mostly measures
//! how much of the second core the capture and the output leave over. This benchmark takes
//! them out: the packets are read and dispatched first (not timed), then 1 and then N workers,
//! one thread each, run the real worker path on them — decoder, TCP/UDP layers, analyzers,
//! pipeline and JSON encoding, events dropped after encoding — and the time until the last
//! worker is done is the stage's time.
//!
//! `cargo bench --bench stage -- [PCAP] [MAX_MB]` (default `bench-out/corpus.pcap`, 512 MB).
//! Prints one line per worker count and the ratio; `scripts/bench` runs it.

use packetbeat::beater::dispatch::Dispatcher;
use packetbeat::beater::worker::{Worker, WorkerBatch};
use packetbeat::config::types::ProtocolSection;
use packetbeat::protos::build_modules;
use packetbeat::publish::pipeline::Pipeline;
use packetbeat::sniffer::file::FileSource;
use packetbeat::sniffer::{PacketBatch, PacketSource};
use std::path::PathBuf;
use std::time::Instant;

/// The analyzers `scripts/bench` runs, on Packetbeat's default ports.
const PROTOCOLS: &[(&str, &str)] = &[
    ("icmp", "enabled: true"),
    ("dhcpv4", "ports: [67, 68]"),
    ("dns", "ports: [53]"),
    ("http", "ports: [80, 8080, 8000, 5000, 8002]"),
    ("tls", "ports: [443, 993, 995, 5223, 8443, 8883, 9243]"),
    ("mysql", "ports: [3306]"),
    ("pgsql", "ports: [5432]"),
    ("redis", "ports: [6379]"),
    ("memcache", "ports: [11211]"),
];

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a debug-build measurement would mean nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("stage: a benchmark; run it with cargo bench --bench stage");
        return;
    }
    // The other arguments are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pcap = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("bench-out/corpus.pcap"));
    let max_bytes: usize = args
        .get(1)
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(512)
        << 20;
    let Ok(mut src) = FileSource::open(&pcap, true, 1) else {
        println!(
            "stage: {} not found; make it with scripts/bench",
            pcap.display()
        );
        return;
    };
    let mut batches: Vec<PacketBatch> = Vec::new();
    let (mut bytes, mut packets) = (0usize, 0usize);
    while bytes < max_bytes {
        match src.next_batch() {
            Ok(Some(b)) => {
                packets += b.frames.len();
                bytes += b.frames.iter().map(|f| f.len as usize).sum::<usize>();
                batches.push(b);
            }
            _ => break,
        }
    }
    let sections: Vec<ProtocolSection> = PROTOCOLS
        .iter()
        .map(|(kind, opts)| ProtocolSection {
            kind: (*kind).into(),
            options: serde_yaml::from_str(opts).expect("static options"),
            key: "bench".into(),
        })
        .collect();
    let modules = build_modules(&sections, "bench").expect("default analyzers");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "decode+parse stage on {} ({packets} packets, {:.0} MB), events encoded and dropped:",
        pcap.display(),
        bytes as f64 / 1e6
    );
    let mut one = None;
    for workers in [1, cores] {
        if workers == 1 && one.is_some() {
            continue;
        }
        // Dispatch first, untimed, exactly as the capture thread would.
        let mut dispatcher = Dispatcher::new(workers);
        let mut per_worker: Vec<Vec<WorkerBatch>> = (0..workers).map(|_| Vec::new()).collect();
        for b in &batches {
            for (i, wb) in dispatcher.split(b.clone()).into_iter().enumerate() {
                per_worker[i].push(wb);
            }
        }
        // The best of five runs: the first also pays for the allocator's first pages, and on a
        // shared machine the others' load comes and goes.
        let mut best = f64::MAX;
        let mut events = 0usize;
        for _ in 0..5 {
            let start = Instant::now();
            events = std::thread::scope(|s| {
                let handles: Vec<_> = per_worker
                    .iter()
                    .map(|mine| {
                        let modules = &modules;
                        s.spawn(move || {
                            let mut w = Worker::new(
                                modules,
                                Pipeline::for_tests(&["private"]),
                                Some(Default::default()),
                            );
                            let mut events = 0usize;
                            for wb in mine {
                                w.handle_batch(wb);
                                events += w.take_events().len();
                            }
                            w.flush();
                            events + w.take_events().len()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("worker")).sum()
            });
            best = best.min(start.elapsed().as_secs_f64());
        }
        let secs = best;
        let pps = packets as f64 / secs;
        println!(
            "  {workers} worker(s): {secs:.2} s, {:.2} Mpps, {:.0} events/s",
            pps / 1e6,
            events as f64 / secs
        );
        match one {
            None => one = Some(pps),
            Some(base) => println!("  {workers} workers vs 1: {:.2}x", pps / base),
        }
    }
}
