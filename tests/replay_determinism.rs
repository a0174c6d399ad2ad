//! A capture gives the same events however it is replayed: as fast as possible (`-t`) or at
//! its own pace, by one worker or by several. Timeouts fire at points of the capture (packet
//! time), never at points of the batching, which the pace and the worker count change.
//!
//! Every capture of `../shared/pcaps` with the stock analyzers (the compat matrix's `default`
//! config). The paced replays sleep through the captures' own durations (about ten minutes in
//! all), so they run many at a time.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;

/// The events, without the fields that differ from run to run, in a stable order.
fn comparable(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .map(|e| {
            let mut m = flatten(e);
            m.retain(|k, _| !k.starts_with("agent.") && !k.starts_with("host."));
            serde_json::to_string(&m).unwrap()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn paced_and_fast_replays_by_one_or_two_workers_agree() {
    let Some(captures) = captures_or_skip() else {
        return;
    };
    let matrix: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/matrix.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let base = format!(
        "{}\n{}\n",
        matrix["configs"]["default"]["yaml"].as_str().unwrap(),
        matrix["common_yaml"].as_str().unwrap()
    );
    let with_workers = |n: usize| format!("{base}packetbeat.interfaces.workers: {n}\n");
    // (capture, mode) -> events; modes: 0 = -t one worker, 1 = -t two workers, 2 = paced two.
    let jobs: Vec<(usize, usize)> = (0..captures.len())
        .flat_map(|c| [(c, 2), (c, 0), (c, 1)])
        .collect();
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, usize, i32, Vec<String>, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        // Paced replays mostly sleep: many run at once.
        for _ in 0..32 {
            s.spawn(|| loop {
                let job = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    jobs.get(*n - 1).copied()
                };
                let Some((c, mode)) = job else { break };
                let cfg = with_workers(if mode == 0 { 1 } else { 2 });
                let run = replay(&captures[c], &cfg, mode != 2, &[]);
                let last = run.stderr.lines().last().unwrap_or("").to_string();
                results
                    .lock()
                    .unwrap()
                    .push((c, mode, run.status, comparable(&run.events), last));
            });
        }
    });
    let mut by: std::collections::BTreeMap<(usize, usize), (i32, Vec<String>, String)> =
        Default::default();
    for (c, mode, status, evs, last) in results.into_inner().unwrap() {
        by.insert((c, mode), (status, evs, last));
    }
    let mut problems = Vec::new();
    let mut events = 0;
    for (c, path) in captures.iter().enumerate() {
        let name: PathBuf = path.iter().skip_while(|p| *p != "pcaps").skip(1).collect();
        let fast_one = &by[&(c, 0)];
        events += fast_one.1.len();
        for (mode, what) in [(1, "-t, 2 workers"), (2, "paced, 2 workers")] {
            let other = &by[&(c, mode)];
            if other.0 != fast_one.0 {
                problems.push(format!(
                    "{}: exit {} ({what}) vs {} (-t, 1 worker): {}",
                    name.display(),
                    other.0,
                    fast_one.0,
                    other.2
                ));
            } else if other.1 != fast_one.1 {
                let only_other: Vec<_> =
                    other.1.iter().filter(|e| !fast_one.1.contains(e)).collect();
                let only_fast: Vec<_> =
                    fast_one.1.iter().filter(|e| !other.1.contains(e)).collect();
                problems.push(format!(
                    "{}: {} events ({what}) vs {} (-t, 1 worker); only in {what}: {:.600?}; only in -t, 1 worker: {:.600?}",
                    name.display(),
                    other.1.len(),
                    fast_one.1.len(),
                    only_other.first(),
                    only_fast.first()
                ));
            }
        }
    }
    assert!(events > 0, "no events at all");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
