//! The differential oracle: our events against the reference Packetbeat's, field by field.
//!
//! `tests/golden/events/<config>/<capture>.ndjson` holds the reference's events (normalised by
//! scripts/compat.py) for every (config, capture) pair of `tests/golden/matrix.json`. This test
//! runs our binary on the same pairs, normalises the same way, pairs every reference event with
//! the most similar of ours, prints the compat table and fails when a pair's count of exactly
//! matching events falls below `tests/golden/baseline.json`.
//!
//! Environment:
//! - `COMPAT_GOLDEN=DIR`: compare against another directory (scripts/compat uses a fresh run of
//!   the reference); the baseline is then reported but not enforced.
//! - `COMPAT_WRITE_BASELINE=1`: write the current match counts to `tests/golden/baseline.json`
//!   (with `COMPAT_ONLY`, the other pairs keep their recorded counts).
//! - `COMPAT_ONLY=SUBSTRING`: only the pairs whose `config/capture` contains it.
//! - `COMPAT_REPORT=FILE`: also write the table and the top differences to FILE.
//!
//! `tests/golden/deliberate.json` lists the fields where this project differs from the
//! reference on purpose (the reference is demonstrably wrong there), each with the rule that
//! makes ours right. A reference event whose only differences are such fields counts as
//! matched; the table says how many of the matches are such events (`purpose`) and lists the
//! rules with the number of events each one covers.

mod common;
use common::*;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Keys dropped on both sides (host-dependent), as scripts/compat.py drops them.
const DROPPED: &[&str] = &[
    "@metadata.version",
    "agent.ephemeral_id",
    "agent.id",
    "agent.name",
    "agent.version",
    "ecs.version",
    "event.start",
    "event.end",
    "network.direction",
];
const DROPPED_PREFIXES: &[&str] = &["host."];
/// The reference stamped this event with wall-clock time: `@timestamp` is not compared.
const WALL_CLOCK: &str = "<wall-clock>";
/// Fields that identify a transaction; they weigh more when pairing events.
const KEY_FIELDS: &[&str] = &[
    "type",
    "@timestamp",
    "client.ip",
    "client.port",
    "server.ip",
    "server.port",
    "source.port",
    "dns.id",
    "dns.question.name",
    "url.full",
    "http.request.method",
    "method",
    "query",
    "tls.server.ja3s",
    "icmp.request.type",
];

type Event = Map<String, Value>;

fn normalise(v: &Value) -> Event {
    let mut m = flatten(v);
    m.retain(|k, _| {
        !DROPPED.contains(&k.as_str()) && !DROPPED_PREFIXES.iter().any(|p| k.starts_with(p))
    });
    m
}

fn similarity(r: &Event, o: &Event) -> i64 {
    let mut s = 0;
    for (k, v) in r {
        if o.get(k) == Some(v) {
            s += if KEY_FIELDS.contains(&k.as_str()) {
                20
            } else {
                1
            };
        }
    }
    s
}

/// A field where ours differs from the reference on purpose.
struct Deliberate {
    /// Substring of the `config/capture` labels it applies to.
    pairs: String,
    field: String,
    rule: String,
    /// Reference events it covered in this run.
    events: std::cell::Cell<usize>,
}

fn read_deliberate(p: &Path) -> Vec<Deliberate> {
    let Ok(text) = std::fs::read_to_string(p) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&text).unwrap();
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Deliberate {
            pairs: d["pairs"].as_str().unwrap().to_string(),
            field: d["field"].as_str().unwrap().to_string(),
            rule: d["rule"].as_str().unwrap().to_string(),
            events: Default::default(),
        })
        .collect()
}

#[derive(Default, Clone)]
struct PairResult {
    ours: usize,
    reference: usize,
    /// Exact matches, and events whose only differences are deliberate ones.
    matched: usize,
    /// Of `matched`, the events with deliberate differences.
    on_purpose: usize,
    missing: usize,
    extra: usize,
    differ: usize,
    ours_status: i32,
}

#[derive(Default)]
struct FieldStat {
    count: usize,
    example: String,
}

#[derive(Default)]
struct Stats {
    /// per event type: (reference events, ours, exact matches)
    per_type: BTreeMap<String, (usize, usize, usize)>,
    /// per event type, per "kind field": count and one example
    fields: BTreeMap<String, BTreeMap<String, FieldStat>>,
}

impl Stats {
    fn note(&mut self, ty: &str, key: String, example: impl FnOnce() -> String) {
        let e = self
            .fields
            .entry(ty.to_string())
            .or_default()
            .entry(key)
            .or_default();
        e.count += 1;
        if e.example.is_empty() {
            e.example = example();
        }
    }
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 70 {
                format!("{}…", s.chars().take(70).collect::<String>())
            } else {
                s
            }
        }
    }
}

fn type_of(e: &Event) -> String {
    e.get("type")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

/// Pairs reference events with ours (greedy on similarity, same `type` only) and counts.
fn compare(
    label: &str,
    reference: &[Event],
    ours: &[Event],
    stats: &mut Stats,
    deliberate: &[Deliberate],
) -> PairResult {
    let on_purpose: Vec<&Deliberate> = deliberate
        .iter()
        .filter(|d| label.contains(&d.pairs))
        .collect();
    let rule_for = |k: &str| on_purpose.iter().find(|d| d.field == k).copied();
    let mut res = PairResult {
        ours: ours.len(),
        reference: reference.len(),
        ..Default::default()
    };
    let mut cands = Vec::new();
    for (i, r) in reference.iter().enumerate() {
        for (j, o) in ours.iter().enumerate() {
            if r.get("type") == o.get("type") {
                cands.push((similarity(r, o), i, j));
            }
        }
    }
    cands.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut r_used = vec![None; reference.len()];
    let mut o_used = vec![false; ours.len()];
    for (_, i, j) in cands {
        if r_used[i].is_none() && !o_used[j] {
            r_used[i] = Some(j);
            o_used[j] = true;
        }
    }
    for t in reference.iter().map(type_of) {
        stats.per_type.entry(t).or_default().0 += 1;
    }
    for t in ours.iter().map(type_of) {
        stats.per_type.entry(t).or_default().1 += 1;
    }
    for (i, r) in reference.iter().enumerate() {
        let ty = type_of(r);
        let Some(j) = r_used[i] else {
            stats.note(&ty, "(event missing)".into(), || label.to_string());
            continue;
        };
        let mut r = r.clone();
        let mut o = ours[j].clone();
        if r.get("@timestamp").and_then(Value::as_str) == Some(WALL_CLOCK) {
            r.remove("@timestamp");
            o.remove("@timestamp");
        }
        let mut clean = true;
        let mut rules: Vec<&Deliberate> = Vec::new();
        for (k, v) in &r {
            let (ov, rule) = (o.get(k), rule_for(k));
            if ov != Some(v) {
                if let Some(d) = rule {
                    rules.push(d);
                    continue;
                }
            }
            match ov {
                None => {
                    res.missing += 1;
                    clean = false;
                    stats.note(&ty, format!("missing {k}"), || {
                        format!("{label}: reference {}", short(Some(v)))
                    });
                }
                Some(ov) if ov != v => {
                    res.differ += 1;
                    clean = false;
                    stats.note(&ty, format!("differs {k}"), || {
                        format!(
                            "{label}: ours {} vs reference {}",
                            short(Some(ov)),
                            short(Some(v))
                        )
                    });
                }
                _ => {}
            }
        }
        for (k, v) in &o {
            if !r.contains_key(k) {
                if let Some(d) = rule_for(k) {
                    rules.push(d);
                    continue;
                }
                res.extra += 1;
                clean = false;
                stats.note(&ty, format!("extra {k}"), || {
                    format!("{label}: ours {}", short(Some(v)))
                });
            }
        }
        if clean {
            res.matched += 1;
            stats.per_type.entry(ty).or_default().2 += 1;
            if !rules.is_empty() {
                res.on_purpose += 1;
                rules.sort_by_key(|d| *d as *const Deliberate);
                rules.dedup_by_key(|d| *d as *const Deliberate);
                for d in rules {
                    d.events.set(d.events.get() + 1);
                }
            }
        }
    }
    for (j, o) in ours.iter().enumerate() {
        if !o_used[j] {
            stats.note(&type_of(o), "(event extra)".into(), || label.to_string());
        }
    }
    res
}

fn read_ndjson(p: &Path) -> Vec<Event> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<Value>(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("{}: not an object: {other}", p.display()),
        })
        .collect()
}

fn capture_of(golden_file: &str) -> String {
    format!(
        "{}.pcap",
        golden_file.trim_end_matches(".ndjson").replace("__", "/")
    )
}

#[test]
fn compat_with_reference_packetbeat() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default_golden = manifest.join("tests/golden");
    let golden = std::env::var_os("COMPAT_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_golden.clone());
    let enforce = golden == default_golden;
    let Some(pcaps) = shared_or_skip("pcaps") else {
        return;
    };
    let events = golden.join("events");
    let found = events.is_dir().then_some(());
    let what = events.display().to_string();
    if require_or_skip(found, &what, "written by `scripts/compat --regen`").is_none() {
        return;
    }
    let matrix: Value =
        serde_json::from_str(&std::fs::read_to_string(default_golden.join("matrix.json")).unwrap())
            .unwrap();
    let shutdown = matrix["common_yaml"].as_str().unwrap_or("").to_string();
    let only = std::env::var("COMPAT_ONLY").ok();

    // (config, capture, golden file)
    let mut pairs = Vec::new();
    for (name, cfg) in matrix["configs"].as_object().unwrap() {
        let dir = golden.join("events").join(name);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let capture = capture_of(f.file_name().unwrap().to_str().unwrap());
            let label = format!("{name}/{capture}");
            if only.as_deref().is_some_and(|o| !label.contains(o)) {
                continue;
            }
            let yaml = format!("{}\n{shutdown}\n", cfg["yaml"].as_str().unwrap());
            pairs.push((name.clone(), capture, f, yaml));
        }
    }
    assert!(
        !pairs.is_empty(),
        "no golden pair found under {}",
        golden.display()
    );

    // Run ours on every pair, two at a time (the machines have 2 cores).
    let next = Mutex::new(0usize);
    let runs: Mutex<HashMap<usize, (i32, Vec<Event>, String)>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some((_, capture, _, yaml)) = pairs.get(i) else {
                    break;
                };
                let run = run_capture(&pcaps.join(capture), yaml, &[]);
                let evs = run.events.iter().map(normalise).collect();
                runs.lock()
                    .unwrap()
                    .insert(i, (run.status, evs, run.stderr));
            });
        }
    });
    let runs = runs.into_inner().unwrap();

    let baseline_path = default_golden.join("baseline.json");
    let baseline: BTreeMap<String, usize> = std::fs::read_to_string(&baseline_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();

    let deliberate = read_deliberate(&default_golden.join("deliberate.json"));
    let mut stats = Stats::default();
    let mut table = String::new();
    let mut total = PairResult::default();
    // A `COMPAT_ONLY` run rewrites only its own pairs; a full run drops pairs the matrix lost.
    let mut new_baseline = if std::env::var_os("COMPAT_ONLY").is_some() {
        baseline.clone()
    } else {
        BTreeMap::new()
    };
    let mut regressions = Vec::new();
    let mut failures = Vec::new();
    let _ = writeln!(
        table,
        "{:<58} {:>11} {:>6} {:>8} {:>6} {:>7} {:>7}",
        "config/capture", "ours/ref", "match", "missing", "extra", "differ", "purpose"
    );
    for (i, (name, capture, file, _)) in pairs.iter().enumerate() {
        let label = format!("{name}/{capture}");
        let reference = read_ndjson(file);
        let (status, ours, stderr) = &runs[&i];
        if *status != 0 {
            failures.push(format!(
                "{label}: exit {status}: {}",
                stderr.lines().last().unwrap_or("")
            ));
        }
        let mut r = compare(&label, &reference, ours, &mut stats, &deliberate);
        r.ours_status = *status;
        let _ = writeln!(
            table,
            "{:<58} {:>11} {:>6} {:>8} {:>6} {:>7} {:>7}{}",
            label,
            format!("{}/{}", r.ours, r.reference),
            r.matched,
            r.missing,
            r.extra,
            r.differ,
            r.on_purpose,
            if *status != 0 { "  (exit != 0)" } else { "" }
        );
        total.ours += r.ours;
        total.reference += r.reference;
        total.matched += r.matched;
        total.missing += r.missing;
        total.extra += r.extra;
        total.differ += r.differ;
        total.on_purpose += r.on_purpose;
        new_baseline.insert(label.clone(), r.matched);
        if let Some(&b) = baseline.get(&label) {
            if r.matched < b {
                regressions.push(format!(
                    "{label}: {} exact matches, baseline {b}",
                    r.matched
                ));
            }
        }
    }
    let _ = writeln!(
        table,
        "{:<58} {:>11} {:>6} {:>8} {:>6} {:>7} {:>7}",
        format!("TOTAL ({} pairs)", pairs.len()),
        format!("{}/{}", total.ours, total.reference),
        total.matched,
        total.missing,
        total.extra,
        total.differ,
        total.on_purpose
    );
    let _ = writeln!(
        table,
        "\ndifferences on purpose (tests/golden/deliberate.json): events, pairs, field, rule"
    );
    for d in &deliberate {
        let _ = writeln!(
            table,
            "  {:>5}  {:<24} {:<36} {}",
            d.events.get(),
            d.pairs,
            d.field,
            d.rule
        );
    }
    let _ = writeln!(
        table,
        "\nper event type: reference events, ours, exact matches"
    );
    for (ty, (r, o, m)) in &stats.per_type {
        let _ = writeln!(table, "  {ty:<12} ref {r:>5}  ours {o:>5}  match {m:>5}");
    }
    let _ = writeln!(
        table,
        "\ntop differences per event type (count, field, first example):"
    );
    for (ty, fields) in &stats.fields {
        let mut v: Vec<_> = fields.iter().collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        let _ = writeln!(table, "  [{ty}]");
        for (k, f) in v.into_iter().take(12) {
            let _ = writeln!(table, "    {:>5}  {:<40} {}", f.count, k, f.example);
        }
    }
    // Straight to the process's stderr, past libtest's capture: the table shows in every
    // `cargo test` run, not only with --nocapture.
    {
        use std::io::Write as _;
        let _ = std::io::stderr()
            .write_all(format!("\ncompat table (tests/compat.rs)\n{table}").as_bytes());
    }
    if let Some(p) = std::env::var_os("COMPAT_REPORT") {
        std::fs::write(p, &table).unwrap();
    }
    if std::env::var_os("COMPAT_WRITE_BASELINE").is_some() {
        let mut s = serde_json::to_string_pretty(&new_baseline).unwrap();
        s.push('\n');
        std::fs::write(&baseline_path, s).unwrap();
        println!("baseline written to {}", baseline_path.display());
    }
    assert!(
        failures.is_empty(),
        "our binary failed:\n{}",
        failures.join("\n")
    );
    if enforce {
        assert!(
            regressions.is_empty(),
            "fewer exact matches than tests/golden/baseline.json:\n{}\n(if intended, regenerate \
             the baseline: COMPAT_WRITE_BASELINE=1 cargo test --test compat)",
            regressions.join("\n")
        );
    }
}
