//! The `/stats` document, in libbeat's shape (`beat`, `libbeat`, `system`), with Packetbeat's
//! own counters under the names Packetbeat registers them with (`tcp.dropped_because_of_gaps`,
//! `<protocol>.unmatched_requests` / `unmatched_responses`) and this build's layer counters under
//! `packetbeat`; and the periodic metrics log line made from two of them.
//!
//! Process figures come from the kernel (`getrusage`, `/proc/self`): CPU time, resident memory,
//! open files and their limit, threads (libbeat's `runtime.goroutines` counts its goroutines:
//! here, the process's threads).

use super::Live;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn cpu_ms() -> (u64, u64) {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0, 0);
    }
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    (ms(ru.ru_utime), ms(ru.ru_stime))
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Resident and virtual bytes (`/proc/self/statm`).
fn memory() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    let (size, rss) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (rss * page_size(), size * page_size())
}

/// The process's peak resident memory in bytes (`VmHWM`: of this program since it started, not
/// inherited from whatever started it).
pub fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn threads() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn handles() -> Value {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    // SAFETY: getrlimit fills the struct it is given.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    let (soft, hard) = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        (lim.rlim_cur as u64, lim.rlim_max as u64)
    } else {
        (0, 0)
    };
    json!({"limit": {"hard": hard, "soft": soft}, "open": open})
}

fn load() -> Value {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let l: Vec<f64> = s
        .split_whitespace()
        .take(3)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let (l1, l5, l15) = (
        l.first().copied().unwrap_or(0.0),
        l.get(1).copied().unwrap_or(0.0),
        l.get(2).copied().unwrap_or(0.0),
    );
    let cores = cores() as f64;
    let norm = |v: f64| (v / cores * 1000.0).round() / 1000.0;
    json!({"1": l1, "5": l5, "15": l15, "norm": {"1": norm(l1), "5": norm(l5), "15": norm(l15)}})
}

fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// The `/stats` document now.
pub fn snapshot(live: &Live) -> Value {
    let (user, system) = cpu_ms();
    let (rss, virt) = memory();
    let w = live.workers_total();
    let total = live.output_total.load(Ordering::Relaxed);
    let acked = live.output_acked.load(Ordering::Relaxed);
    let published = w.pipeline.published;
    let filtered =
        w.pipeline.invalid + w.pipeline.ignored_outgoing + w.pipeline.dropped_by_processors;
    let fill = live.queue.fill();
    // The output's own view when it keeps one: what its peer acknowledged, refused or had.
    let out = live.output_metrics.as_ref().map(|m| m());
    let out_acked = out.as_ref().map_or(acked, |o| o.acked);
    let inputs = crate::sniffer::metrics::live_inputs();
    let kernel_dropped: u64 = inputs.iter().map(|i| i.dropped()).sum();
    let mut doc = json!({
        "beat": {
            "cpu": {
                "system": {"ticks": system, "time": {"ms": system}},
                "total": {"ticks": user + system, "time": {"ms": user + system}, "value": user + system},
                "user": {"ticks": user, "time": {"ms": user}},
            },
            "handles": handles(),
            "info": {
                "ephemeral_id": live.info.ephemeral_id,
                "name": "packetbeat",
                "uptime": {"ms": live.started.elapsed().as_millis() as u64},
                "version": crate::BEAT_VERSION,
            },
            "memstats": {"rss": rss, "memory_sys": virt},
            "runtime": {"goroutines": threads()},
        },
        "libbeat": {
            "config": {"module": {"running": 0, "starts": 0, "stops": 0}, "reloads": 0, "scans": 0},
            "output": {
                "events": {
                    "acked": out_acked,
                    "active": total - acked.min(total),
                    "batches": live.output_batches.load(Ordering::Relaxed),
                    "dropped": out.as_ref().map_or(0, |o| o.dropped),
                    "duplicates": out.as_ref().map_or(0, |o| o.duplicates),
                    "failed": live.output_failed.load(Ordering::Relaxed) + out.as_ref().map_or(0, |o| o.failed),
                    "toomany": out.as_ref().map_or(0, |o| o.too_many),
                    "total": total,
                },
                "read": {
                    "bytes": out.as_ref().map_or(0, |o| o.read_bytes),
                    "errors": out.as_ref().map_or(0, |o| o.read_errors),
                },
                "type": live.output_type,
                "write": {
                    "bytes": out.as_ref().map_or(0, |o| o.write_bytes),
                    "errors": out.as_ref().map_or(0, |o| o.write_errors),
                },
            },
            "pipeline": {
                "clients": live.workers.len(),
                "events": {
                    "active": fill.events,
                    "dropped": w.queue_dropped,
                    "failed": 0,
                    "filtered": filtered,
                    "published": published,
                    "retry": 0,
                    "total": published + filtered,
                },
                "queue": queue_json(acked, &fill),
            },
        },
        "system": {"cpu": {"cores": cores()}, "load": load()},
        "tcp": {"dropped_because_of_gaps": w.tcp.dropped_because_of_gaps},
        "packetbeat": {
            "packets": {
                "received": live.frames.load(Ordering::Relaxed),
                "kernel_dropped": kernel_dropped,
            },
            "decoder": {
                "packets": w.decoder.packets,
                "not_ip": w.decoder.not_ip,
                "malformed": w.decoder.malformed,
                "ipv4_fragments": w.decoder.fragments,
                "ipv4_reassembled": w.decoder.reassembled,
                "ipv4_datagrams_dropped": w.decoder.datagrams_dropped
                    + live.datagrams_dropped.load(Ordering::Relaxed),
                "ipv6_fragments": w.decoder.ipv6_fragments,
            },
            "tcp": {
                "segments": w.tcp.segments,
                "payload_bytes": w.tcp.payload_bytes,
                "retransmissions": w.tcp.retransmissions,
                "overlaps": w.tcp.overlaps,
                "reordered": w.tcp.reordered,
                "gaps": w.tcp.gaps,
                "connections": w.tcp.connections,
                "expired": w.tcp.expired,
                "closed": w.tcp.closed,
                "evicted": w.tcp.evicted,
                "stream_bytes_refused": w.tcp.stream_bytes_refused,
            },
            "udp": {"datagrams": w.udp.datagrams, "analysed": w.udp.analysed},
            "transactions": {"evicted": crate::protos::app::transactions::evicted()},
            "flows": {"seen": w.flows.flows, "reported": w.flows.reported, "evicted": w.flows.evicted},
        },
    });
    let top = doc.as_object_mut().expect("an object");
    for m in &live.modules {
        let Some(c) = m.counters() else { continue };
        let mut counters = Map::new();
        for (k, v) in c.snapshot() {
            counters.insert(k.to_string(), v.into());
        }
        top.insert(m.name().to_string(), Value::Object(counters));
    }
    doc
}

/// `libbeat.pipeline.queue`: the memory queue's fill in events, the disk queue's in bytes
/// (`max_bytes`, `filled.bytes`), `filled.pct` against whichever bounds it.
fn queue_json(acked: u64, fill: &crate::beater::queue::QueueFill) -> Value {
    let ratio = |n: u64, max: u64| {
        if max == 0 {
            0.0
        } else {
            ((n as f64 / max as f64) * 10_000.0).round() / 10_000.0
        }
    };
    if fill.max_bytes > 0 || fill.max_events == 0 {
        json!({
            "acked": acked,
            "max_bytes": fill.max_bytes,
            "filled": {
                "bytes": fill.bytes,
                "events": fill.events,
                "pct": ratio(fill.bytes, fill.max_bytes),
            },
        })
    } else {
        json!({
            "acked": acked,
            "max_events": fill.max_events,
            "filled": {"events": fill.events, "pct": ratio(fill.events, fill.max_events)},
        })
    }
}

/// The `/inputs/` document: one entry per live capture.
pub fn inputs() -> Value {
    Value::Array(
        crate::sniffer::metrics::live_inputs()
            .iter()
            .map(|i| i.to_json())
            .collect(),
    )
}

/// Gauges (reported as they are, when not zero) rather than counters (reported as the change).
fn is_gauge(path: &str) -> bool {
    path.starts_with("beat.info")
        || path.starts_with("beat.handles")
        || path.starts_with("beat.memstats")
        || path.starts_with("beat.runtime")
        || path.starts_with("system.")
        || path.ends_with(".active")
        || path.starts_with("libbeat.pipeline.queue.filled")
        || path.starts_with("libbeat.pipeline.queue.max_events")
        || path.starts_with("libbeat.pipeline.queue.max_bytes")
        || path == "libbeat.pipeline.clients"
        || path == "libbeat.output.type"
}

/// libbeat's "Non-zero metrics" content: the counters that moved since `prev` (their change),
/// and the gauges that are not zero, in the document's structure.
pub fn non_zero_delta(prev: &Value, now: &Value) -> Value {
    fn walk(prev: Option<&Value>, now: &Value, path: &str) -> Option<Value> {
        match now {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    if let Some(x) = walk(prev.and_then(|pv| pv.get(k)), v, &p) {
                        out.insert(k.clone(), x);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Number(n) if is_gauge(path) => {
                (n.as_f64().unwrap_or(0.0) != 0.0).then(|| now.clone())
            }
            Value::Number(n) => {
                let before = prev.and_then(Value::as_u64).unwrap_or(0);
                let d = n.as_u64().unwrap_or(0).saturating_sub(before);
                (d != 0).then(|| Value::from(d))
            }
            Value::String(s) if is_gauge(path) && !s.is_empty() => Some(now.clone()),
            _ => None,
        }
    }
    walk(Some(prev), now, "").unwrap_or_else(|| json!({}))
}

/// Logs the metrics that moved, every `period`, until the process ends.
pub fn log_metrics_every(live: &Live, period: Duration) {
    let mut prev = json!({});
    let label = go_duration(period);
    loop {
        std::thread::sleep(period);
        let now = snapshot(live);
        let delta = non_zero_delta(&prev, &now);
        tracing::info!(
            target: "packetbeat::monitoring",
            monitoring = %json!({"metrics": delta, "ecs.version": "1.6.0"}),
            "Non-zero metrics in the last {label}"
        );
        prev = now;
    }
}

/// libbeat's last metrics line at exit: every counter that is not zero, since the start.
pub fn log_totals(live: &Live) {
    let totals = non_zero_delta(&json!({}), &snapshot(live));
    tracing::info!(
        target: "packetbeat::monitoring",
        monitoring = %json!({"metrics": totals, "ecs.version": "1.6.0"}),
        "Total metrics"
    );
}

/// A duration as Go's `time.Duration.String` writes the usual periods (`30s`, `1m0s`, `500ms`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(super::go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(super::go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(super::go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(super::go_duration(Duration::from_millis(200)), "200ms");
    }

    use super::*;

    #[test]
    fn deltas_keep_moved_counters_and_nonzero_gauges() {
        let prev =
            json!({"libbeat": {"output": {"events": {"acked": 10, "active": 0}}}, "tcp": {"x": 3}});
        let now = json!({
            "libbeat": {"output": {"events": {"acked": 25, "active": 4}, "type": "file"}},
            "tcp": {"x": 3},
            "beat": {"memstats": {"rss": 100}, "info": {"uptime": {"ms": 5}}},
        });
        assert_eq!(
            non_zero_delta(&prev, &now),
            json!({
                "libbeat": {"output": {"events": {"acked": 15, "active": 4}, "type": "file"}},
                "beat": {"memstats": {"rss": 100}, "info": {"uptime": {"ms": 5}}},
            })
        );
    }
}
