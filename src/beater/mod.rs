//! Lifecycle: builds the protocol modules, the packet source, the workers, the publisher pipeline
//! and the output from the config; runs the capture until it ends (a file) or a signal arrives;
//! then drains: workers report what is pending, the queue empties, the output closes.
//!
//! Threads: capture → dispatch (the calling thread) → N packet workers (each with its own TCP/UDP
//! state, analyzers, pipeline and JSON encoder; nothing shared, no locks) → one output thread.
//! Between them are bounded queues (channels in front of the workers, an [`queue::EventQueue`]
//! in front of the output): when the output is slower than the capture, a file capture waits for
//! it (nothing is dropped), as Packetbeat does with `-I`; a live capture never waits on the
//! output: a worker that finds the queue full drops the batch and counts it (Packetbeat's
//! `DropIfFull`), and the kernel ring, not the output, is what fills when analysis falls behind.
//!
//! A source that asks for it (DPDK's `dpdk.run_to_completion`) runs each worker on the thread of
//! the receive loop that feeds it, with no channel in between, when each loop feeds one worker.
//!
//! Workers: `packetbeat.interfaces.workers` (our extension). By default a file is analysed by one
//! worker, which keeps Packetbeat's event order; with more workers the set of events is the same,
//! in another order.

pub mod diskqueue;
pub mod dispatch;
pub mod limits;
pub mod privileges;
pub mod queue;
pub mod seccomp;
pub mod stages;
pub mod worker;

use crate::config::{Config, InterfaceConfig};
use crate::outputs;
use crate::protos::build_modules;
use crate::publish::pipeline::{beat_info, Pipeline};
use crate::sniffer::dump::Dumper;
use crate::sniffer::file::FileSource;
use crate::sniffer::PacketSource;
use queue::{EventQueue, MemQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use worker::{Worker, WorkerBatch, WorkerReport};

/// Capture batches that may wait in front of each worker.
const WORKER_QUEUE: usize = 16;
/// The longest a live capture goes on reading what the kernel holds after a stop signal.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(2);
/// Event batches that may wait in front of the output.
const OUTPUT_QUEUE: usize = 64;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// What a run did, for the log line at the end and for tests.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub frames: u64,
    pub workers: usize,
    pub events_published: u64,
    pub events_dropped: u64,
}

/// Closes the queue when the output thread ends, even by an error or a panic.
struct CloseOnDrop<'a>(&'a dyn EventQueue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn open_source(
    cfg: &Config,
    iface: &InterfaceConfig,
    modules: &crate::protos::ProtocolModules,
    flows_on: bool,
) -> anyhow::Result<Box<dyn PacketSource>> {
    if let Some(file) = &iface.file {
        if iface.bpf_filter.is_some() {
            tracing::warn!("Packet filters are not applied to pcap files");
        }
        return Ok(Box::new(FileSource::open(
            file,
            iface.top_speed,
            iface.loop_count,
        )?));
    }
    if iface.kind == "dpdk" {
        return open_dpdk(iface);
    }
    let mut sources = Vec::with_capacity(cfg.interfaces.len());
    for i in &cfg.interfaces {
        sources.push(open_live(i, modules, &cfg.protocols, flows_on)?);
    }
    if sources.len() == 1 {
        return Ok(sources.remove(0));
    }
    Ok(Box::new(crate::sniffer::multi::MultiSource::new(sources)?))
}

/// Opens one live interface: its device name resolved as Packetbeat resolves it, its filter
/// (`bpf_filter` or the one generated from the protocols' ports) checked, then the sniffer of
/// its `type`; on a `default_route*` device with `poll_default_route`, one that follows the
/// route.
fn open_live(
    iface: &InterfaceConfig,
    modules: &crate::protos::ProtocolModules,
    sections: &[crate::config::types::ProtocolSection],
    flows_on: bool,
) -> anyhow::Result<Box<dyn PacketSource>> {
    use crate::sniffer::{bpf, devices, route};
    let name = iface.device.as_deref().unwrap_or("");
    let device = devices::resolve_device_name(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let filter = bpf::effective_filter(iface, modules, sections, flows_on);
    if let Some(f) = &filter {
        bpf::check(f).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if !matches!(
        iface.kind.as_str(),
        "" | "pcap" | "autodetect" | "af_packet"
    ) {
        anyhow::bail!(
            "packetbeat.interfaces: a {} interface can not be combined with other interfaces",
            iface.kind
        );
    }
    let poll = iface
        .poll_default_route
        .map(|d| d.0)
        .filter(|d| !d.is_zero() && name.starts_with("default_route"));
    let iface = iface.clone();
    let open = move |device: &str| open_sniffer(&iface, device, filter.clone());
    Ok(match poll {
        Some(interval) => Box::new(route::RouteFollower::new(
            name,
            device,
            interval,
            Box::new(open),
        )?),
        None => open(&device)?,
    })
}

/// The sniffer of `iface.type` on `device`.
fn open_sniffer(
    iface: &InterfaceConfig,
    device: &str,
    filter: Option<String>,
) -> Result<Box<dyn PacketSource>, crate::sniffer::SnifferError> {
    let device = device.to_string();
    match iface.kind.as_str() {
        #[cfg(target_os = "linux")]
        "af_packet" => Ok(Box::new(crate::sniffer::afpacket::AfPacketSource::open(
            &crate::sniffer::afpacket::AfPacketOptions {
                device,
                snaplen: iface.snaplen,
                buffer_size_mb: iface.buffer_size_mb,
                filter,
                fanout_group: iface.fanout_group,
                auto_promisc_mode: iface.auto_promisc_mode,
                metrics_interval: iface.metrics_interval.0,
            },
        )?)),
        #[cfg(not(target_os = "linux"))]
        "af_packet" => Err(crate::sniffer::SnifferError::Open(
            "af_packet capture is only available on Linux".into(),
        )),
        _ => Ok(Box::new(crate::sniffer::pcap::PcapSource::open(
            &crate::sniffer::pcap::PcapOptions {
                device,
                snaplen: iface.snaplen,
                buffer_size_mb: iface.buffer_size_mb,
                filter,
            },
        )?)),
    }
}

#[cfg(feature = "dpdk")]
fn open_dpdk(iface: &InterfaceConfig) -> anyhow::Result<Box<dyn PacketSource>> {
    use crate::sniffer::dpdk;
    let Some(handle) = dpdk::take_handle() else {
        anyhow::bail!(
            "packetbeat.interfaces.type is dpdk, but DPDK was not initialised: start with --dpdk_status enable --dpdk_port N"
        );
    };
    let device = iface.device.as_deref().unwrap_or("").trim();
    if !device.is_empty() && device.parse::<u16>().ok() != Some(handle.port) {
        anyhow::bail!(
            "packetbeat.interfaces.device is '{device}', but DPDK was started for port {} (--dpdk_port); they must be the same port number",
            handle.port
        );
    }
    Ok(Box::new(dpdk::DpdkSource::open(handle, iface)?))
}

#[cfg(not(feature = "dpdk"))]
fn open_dpdk(_iface: &InterfaceConfig) -> anyhow::Result<Box<dyn PacketSource>> {
    anyhow::bail!(
        "packetbeat.interfaces.type is dpdk, but this build has no DPDK support (built without the 'dpdk' feature)"
    )
}

/// Beyond Packetbeat: with `type: af_packet`, one live interface and several workers, one
/// af_packet socket per worker, all in one fan-out group (`fanout_group` when configured, so other
/// processes still share the interface, else one of this process's own), so the kernel spreads
/// flows over the sockets (`PACKET_FANOUT_HASH`, symmetric, with defragmentation) and capture
/// scales with the workers: each socket is read on its own thread straight into its worker.
/// Empty when that does not apply (then one capture thread dispatches to every worker).
fn open_fanout(
    cfg: &Config,
    iface: &InterfaceConfig,
    modules: &crate::protos::ProtocolModules,
    flows_on: bool,
    n_workers: usize,
) -> anyhow::Result<Vec<Box<dyn PacketSource>>> {
    let applies = iface.kind == "af_packet"
        && iface.file.is_none()
        && iface.dumpfile.is_none()
        && cfg.interfaces.len() == 1
        && n_workers > 1
        && !iface
            .device
            .as_deref()
            .is_some_and(|d| d.starts_with("default_route"));
    if !applies {
        return Ok(Vec::new());
    }
    let mut one = iface.clone();
    one.fanout_group = Some(
        iface
            .fanout_group
            .unwrap_or((std::process::id() & 0xffff) as u16),
    );
    // Promiscuous mode is set (and restored) by the first socket only.
    let mut out = Vec::with_capacity(n_workers);
    for _ in 0..n_workers {
        out.push(open_live(&one, modules, &cfg.protocols, flows_on)?);
        one.auto_promisc_mode = false;
    }
    tracing::info!(
        "af_packet: {n_workers} sockets in fanout group {}, one per packet worker",
        one.fanout_group.unwrap_or_default()
    );
    Ok(out)
}

/// What a fan-out capture thread feeds: its worker's channel, or its worker itself, run on the
/// capture thread (run to completion).
enum FanoutFeed {
    Channel(SyncSender<WorkerBatch>),
    Inline(Box<Worker>),
}

/// Reads each fan-out source on its own thread into its own worker until a signal or the end;
/// returns the frames read, the sources, finished, and the reports of the workers run inline.
fn capture_fanout(
    sources: Vec<Box<dyn PacketSource>>,
    feeds: Vec<FanoutFeed>,
    events: &dyn EventQueue,
    monitoring: &crate::monitoring::Live,
    limits: &limits::Limits,
) -> anyhow::Result<(u64, Vec<Box<dyn PacketSource>>, WorkerReport)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .into_iter()
            .zip(feeds)
            .enumerate()
            .map(|(i, (mut src, feed))| {
                std::thread::Builder::new()
                    .name(format!("sniffer-{i}"))
                    .spawn_scoped(scope, move || {
                        let mut dispatcher = dispatch::Dispatcher::new(1);
                        dispatcher.set_max_datagrams(limits.ip_datagrams);
                        let (frames, report) = match feed {
                            FanoutFeed::Channel(tx) => {
                                let senders = [tx];
                                let mut feed = Feed::Channels(&senders);
                                let frames =
                                    capture(&mut *src, None, &mut dispatcher, &mut feed, monitoring);
                                (frames, WorkerReport::default())
                            }
                            FanoutFeed::Inline(mut worker) => {
                                // This thread analyses packets.
                                enter_worker_thread(limits.stream_bytes);
                                let mut feed = Feed::Inline {
                                    worker: &mut worker,
                                    events,
                                };
                                let frames =
                                    capture(&mut *src, None, &mut dispatcher, &mut feed, monitoring);
                                (frames, worker.end(events))
                            }
                        };
                        src.finish();
                        // Another capture thread may still be reading: end it too.
                        STOP.store(true, Ordering::SeqCst);
                        frames.map(|f| (f, src, report))
                    })
            })
            .collect::<Result<_, _>>()?;
        let mut frames = 0;
        let mut done = Vec::new();
        let mut total = WorkerReport::default();
        for h in handles {
            let (f, src, report) = h
                .join()
                .map_err(|_| anyhow::anyhow!("a capture thread panicked"))??;
            frames += f;
            total += &report;
            done.push(src);
        }
        Ok((frames, done, total))
    })
}

/// Number of packet workers: configured, or one for a file (Packetbeat's event order), or one per
/// core for live capture.
fn worker_count(iface: &InterfaceConfig) -> usize {
    match iface.workers {
        0 if iface.file.is_some() => 1,
        // DPDK with several RX queues: one worker per queue.
        0 if iface.kind == "dpdk" && iface.dpdk_queues() > 1 => iface.dpdk_queues() as usize,
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
}

/// Runs Packetbeat with a loaded config. Returns when a file capture is fully processed and every
/// event has been written, or after SIGINT/SIGTERM.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    run_with_summary(cfg).map(|_| ())
}

pub fn run_with_summary(cfg: Config) -> anyhow::Result<RunSummary> {
    install_signal_handlers();
    if !crate::common::time::set_timestamp_precision(&cfg.timestamp_precision) {
        tracing::warn!(
            "timestamp.precision '{}' is not millisecond, microsecond or nanosecond: using millisecond",
            cfg.timestamp_precision
        );
    }
    let mut modules = build_modules(&cfg.protocols, &cfg.source)?;
    let flows = flow_settings(&cfg, &mut modules)?;
    let processors = crate::publish::processors::build_global(&cfg).map_err(anyhow::Error::msg)?;
    let iface = cfg.interfaces.first().cloned().unwrap_or_default();
    if cfg.interfaces.len() > 1 && iface.file.is_some() {
        tracing::info!("reading a file: only the first interface's settings are used");
    }
    if iface.file.is_some() {
        // Packetbeat's message: process attribution is for live traffic only.
        tracing::info!("Process watcher disabled when file input is used");
    } else if crate::publish::pipeline::procs_config(&cfg)?.enabled {
        tracing::info!("Process watcher enabled");
    } else {
        tracing::info!("Process watcher disabled");
    }
    let n_workers = worker_count(&iface);
    // af_packet with several workers: one socket per worker in one fan-out group, each read on
    // its own thread straight into its worker (see `open_fanout`).
    let mut fanout = open_fanout(&cfg, &iface, &modules, flows.is_some(), n_workers)?;
    let mut source = match fanout.is_empty() {
        true => open_source(&cfg, &iface, &modules, flows.is_some())?,
        false => fanout.remove(0),
    };
    // A DPDK port whose queues keep connections whole: one receive loop per queue, each into
    // its own worker (see `sniffer::dpdk`).
    if fanout.is_empty() && iface.dumpfile.is_none() && !iface.one_at_a_time {
        if let Some(mut per_worker) = source.split_per_worker(n_workers) {
            source = per_worker.remove(0);
            fanout = per_worker;
        }
    }
    if iface.one_at_a_time {
        source = Box::new(crate::sniffer::step::OneAtATime::on_terminal(source));
    }
    let live = source.is_live();
    warn_unused_dpdk(&iface);
    let mut dumper = match &iface.dumpfile {
        Some(prefix) => {
            let (d, path) = Dumper::create(prefix, source.link_type())?;
            tracing::info!("Writing every captured packet to {}", path.display());
            Some(d)
        }
        None => None,
    };

    // The capture is open: from here on, the configured user (packetbeat.run_as).
    if let Some(to) = privileges::run_as(&cfg).map_err(anyhow::Error::msg)? {
        let reopen = cfg
            .interfaces
            .iter()
            .any(|i| i.poll_default_route.is_some() || i.auto_promisc_mode);
        privileges::drop_to(&to, reopen && live).map_err(anyhow::Error::msg)?;
    }
    // Then the system call filter, on every thread (seccomp.*).
    seccomp::install(&cfg).map_err(anyhow::Error::msg)?;
    let codec = outputs::codec_for(&cfg);
    let output = outputs::build(&cfg)?;
    tracing::info!(
        "packetbeat {} started; {} packet worker(s); output: {}",
        crate::BEAT_VERSION,
        n_workers,
        output.name()
    );

    let events: Arc<dyn EventQueue> = match diskqueue::queue_choice(&cfg)? {
        diskqueue::QueueChoice::Disk(s) => Arc::new(
            diskqueue::DiskQueue::open(s.clone(), outputs::stored_codec(&cfg))
                .map_err(|e| anyhow::anyhow!("queue.disk at {}: {e}", s.path.display()))?,
        ),
        // queue.mem.events, in batches of up to EVENT_BATCH events.
        diskqueue::QueueChoice::Mem { events, flush } => Arc::new(MemQueue::with_flush(
            events.map_or(OUTPUT_QUEUE, |n| n.div_ceil(worker::EVENT_BATCH)),
            flush,
        )),
    };
    let monitoring = crate::monitoring::Live::new(
        beat_info(&cfg),
        &*output,
        events.clone(),
        n_workers,
        modules.modules.clone(),
    );
    let monitoring_cfg =
        crate::monitoring::MonitoringConfig::from_config(&cfg).map_err(anyhow::Error::msg)?;
    crate::monitoring::start(&monitoring_cfg, &monitoring)?;
    let deadline = output.deadline();
    let writer = spawn_output(output, events.clone(), monitoring.clone())?;
    let output_done = Arc::new(AtomicBool::new(false));
    if let Some(d) = deadline.clone() {
        arm_deadline_on_signal(d, output_done.clone(), cfg.shutdown_timeout);
    }
    spawn_stall_reporter(monitoring.clone(), output_done.clone());
    let limits = limits::Limits::from_config(&cfg).map_err(anyhow::Error::msg)?;
    let workers = build_workers(
        &cfg,
        &modules,
        &WorkerPlan {
            codec,
            flows,
            processors,
            count: n_workers,
            live,
            flush_on_tick: live || iface.kind == "dpdk",
            limits,
        },
        &monitoring,
    )?;
    // Each receive loop that feeds one worker runs it itself when the source asks so (DPDK's
    // run to completion); a single loop does so on a thread of its own, as a fan-out of one.
    let inline = source.runs_worker_inline()
        && dumper.is_none()
        && !iface.one_at_a_time
        && (!fanout.is_empty() || n_workers == 1);
    if inline {
        tracing::info!(
            "run to completion: {} receive loop(s), each running its packet worker on its own thread",
            n_workers
        );
    }

    let mut dispatcher = dispatch::Dispatcher::new(n_workers);
    dispatcher.flows = flows.is_some();
    dispatcher.set_max_datagrams(limits.ip_datagrams);
    let (frames, total) = if inline || !fanout.is_empty() {
        // One capture thread per source, each feeding its own worker: run inline, or on a
        // thread of its own behind a channel.
        let (feeds, threads) = if inline {
            let feeds = workers
                .into_iter()
                .map(|w| FanoutFeed::Inline(Box::new(w)))
                .collect();
            (feeds, None)
        } else {
            let (senders, handles) = spawn_workers(workers, &limits, &events)?;
            let feeds = senders.into_iter().map(FanoutFeed::Channel).collect();
            (feeds, Some(handles))
        };
        fanout.insert(0, source);
        let (frames, sources, inline_total) =
            capture_fanout(fanout, feeds, &*events, &monitoring, &limits)?;
        source = Box::new(crate::sniffer::multi::Finished(sources));
        let total = match threads {
            Some(handles) => join_workers(handles),
            None => Ok(inline_total),
        };
        (frames, total)
    } else {
        let (senders, handles) = spawn_workers(workers, &limits, &events)?;
        let frames = capture(
            &mut *source,
            dumper.as_mut(),
            &mut dispatcher,
            &mut Feed::Channels(&senders),
            &monitoring,
        )?;
        source.finish();
        drop(senders);
        (frames, join_workers(handles))
    };
    // Every worker has ended: the output takes what is queued, then closes.
    events.close();
    let total = total?;
    // An output waiting on a peer (logstash) gets until shutdown_timeout; with -I and no timeout
    // it waits until everything is acknowledged (a signal still ends the wait).
    if let Some(d) = &deadline {
        if STOP.load(Ordering::Relaxed) || !cfg.shutdown_timeout.is_zero() {
            d.set(std::time::Instant::now() + cfg.shutdown_timeout);
        }
    }
    let joined = writer
        .join()
        .map_err(|_| anyhow::anyhow!("output thread panicked"));
    output_done.store(true, Ordering::Relaxed);
    let written = joined??;

    let dropped = log_summary(&*source, &dispatcher, &monitoring, &total, written);
    log_protocol_counters(&modules);
    stages::log_report();
    tracing::info!(
        "peak resident memory: {} KiB",
        crate::monitoring::stats::peak_rss() / 1024
    );
    if monitoring_cfg.metrics_enabled {
        crate::monitoring::stats::log_totals(&monitoring);
    }
    Ok(RunSummary {
        frames,
        workers: n_workers,
        events_published: written,
        events_dropped: dropped,
    })
}

#[cfg(feature = "dpdk")]
fn warn_unused_dpdk(iface: &InterfaceConfig) {
    if let Some(h) = crate::sniffer::dpdk::take_handle() {
        tracing::warn!(
            "DPDK was initialised for port {} (--dpdk_status enable), but packetbeat.interfaces.type is not dpdk{}: the port is not used",
            h.port,
            if iface.file.is_some() { " (reading a file with -I)" } else { "" }
        );
    }
}

#[cfg(not(feature = "dpdk"))]
fn warn_unused_dpdk(_iface: &InterfaceConfig) {}

/// The output thread: takes batches off the queue until it is closed and empty, then closes the
/// output. Returns how many events were written.
fn spawn_output(
    mut output: Box<dyn outputs::Output>,
    events: Arc<dyn EventQueue>,
    monitoring: Arc<crate::monitoring::Live>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<u64>>> {
    Ok(std::thread::Builder::new().name("output".into()).spawn(
        move || -> anyhow::Result<u64> {
            privileges::shed_inherited();
            // However this thread ends, workers stop waiting to push.
            let _close = CloseOnDrop(&*events);
            let mut written = 0u64;
            // Network outputs take what is already queued in one go (pipelined windows).
            let hint = output.batch_hint();
            let deadline = output.deadline();
            let m = &monitoring;
            let mut clock = stages::StageClock::default();
            while let Some(batch) = events.pop(hint) {
                let n = batch.len() as u64;
                m.output_total.fetch_add(n, Ordering::Relaxed);
                let mut mark = clock.mark();
                if let Err(e) = output.publish(&batch) {
                    m.output_failed.fetch_add(n, Ordering::Relaxed);
                    return Err(e);
                }
                clock.lap(stages::Stage::Output, &mut mark, n);
                // Past the shutdown deadline an output gives up on what it has not sent and
                // still returns Ok: those events stay unacknowledged (a disk queue delivers
                // them again at the next start).
                if !deadline.as_ref().is_some_and(|d| d.passed()) {
                    events.ack(batch.len());
                }
                m.output_acked.fetch_add(n, Ordering::Relaxed);
                m.output_batches.fetch_add(1, Ordering::Relaxed);
                written += n;
            }
            output.close()?;
            stages::submit(clock);
            Ok(written)
        },
    )?)
}

/// How long the output may deliver nothing while events wait before it is said, and how often
/// it is said again.
const STALL_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// While events wait and the output delivers none (its peer unreachable, refusing), says so
/// every [`STALL_EVERY`]: how many events wait, and the output's last error.
fn spawn_stall_reporter(live: Arc<crate::monitoring::Live>, done: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("output-watch".into())
        .spawn(move || {
            let delivered = |out: &Option<outputs::OutputCounters>| match out {
                Some(o) => o.acked + o.dropped,
                None => live.output_acked.load(Ordering::Relaxed),
            };
            let mut last = 0;
            let mut moved = std::time::Instant::now();
            let mut said: Option<std::time::Instant> = None;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(250));
                let out = live.output_metrics.as_ref().map(|m| m());
                let fill = live.queue.fill();
                let sending = live
                    .output_total
                    .load(Ordering::Relaxed)
                    .saturating_sub(live.output_acked.load(Ordering::Relaxed));
                let queued = fill.events.saturating_sub(fill.in_flight);
                let now = delivered(&out);
                if now != last || queued + sending == 0 {
                    (last, moved, said) = (now, std::time::Instant::now(), None);
                    continue;
                }
                if moved.elapsed() >= STALL_EVERY && said.is_none_or(|t| t.elapsed() >= STALL_EVERY) {
                    let why = out
                        .as_ref()
                        .map(|o| o.last_error.as_str())
                        .filter(|e| !e.is_empty())
                        .map_or(String::new(), |e| format!("; last error: {e}"));
                    tracing::warn!(
                        "output.{}: no event delivered for {} s; {} events wait ({} queued, {} being sent){why}",
                        live.output_type,
                        moved.elapsed().as_secs(),
                        queued + sending,
                        queued,
                        sending
                    );
                    said = Some(std::time::Instant::now());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("could not start the output watch: {e}");
    }
}

/// On a signal, an output waiting on a peer gets `grace` (shutdown_timeout), even while the
/// capture is blocked on a full queue or the output is draining after the capture.
fn arm_deadline_on_signal(d: outputs::Deadline, done: Arc<AtomicBool>, grace: std::time::Duration) {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) && !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if STOP.load(Ordering::Relaxed) {
            d.set(std::time::Instant::now() + grace);
        }
    });
}

/// `packetbeat.flows`, when enabled: its settings, checked as Packetbeat checks them, and its
/// `fields`/`tags`/`index` for the pipeline (flow events have `type: flow`).
fn flow_settings(
    cfg: &Config,
    modules: &mut crate::protos::ProtocolModules,
) -> anyhow::Result<Option<crate::flows::Settings>> {
    let Some(f) = cfg.flows.as_ref().filter(|f| f.enabled) else {
        return Ok(None);
    };
    let settings = crate::flows::Settings::from_config(f)?;
    let fields = match &f.fields {
        Some(v) => Some(
            serde_json::to_value(v)
                .map_err(|e| anyhow::anyhow!("packetbeat.flows.fields: invalid fields: {e}"))?,
        ),
        None => None,
    };
    modules.reporters.insert(
        "flow",
        crate::protos::registry::ReporterMeta {
            fields,
            fields_under_root: f.fields_under_root,
            tags: f.tags.clone(),
            index: f.index.clone(),
            processors: crate::publish::processors::build_section(
                &f.processors,
                "packetbeat.flows",
            )
            .map_err(anyhow::Error::msg)?,
        },
    );
    Ok(Some(settings))
}

type WorkerHandles = Vec<std::thread::JoinHandle<WorkerReport>>;

/// What every packet worker is built with.
struct WorkerPlan {
    codec: Option<crate::publish::json::JsonCodec>,
    flows: Option<crate::flows::Settings>,
    processors: Option<Arc<crate::publish::processors::List>>,
    count: usize,
    /// Live capture: a full queue drops instead of waiting.
    live: bool,
    /// Events leave at every timeout check (live capture and DPDK), not only in full batches.
    flush_on_tick: bool,
    /// `packetbeat.limits`.
    limits: limits::Limits,
}

/// The packet workers, each with its own pipeline and analyzers.
fn build_workers(
    cfg: &Config,
    modules: &crate::protos::ProtocolModules,
    plan: &WorkerPlan,
    monitoring: &Arc<crate::monitoring::Live>,
) -> anyhow::Result<Vec<Worker>> {
    let info = &monitoring.info;
    crate::protos::app::transactions::set_max_transactions(plan.limits.transactions);
    (0..plan.count)
        .map(|i| {
            let pipeline = Pipeline::new(
                cfg,
                modules.reporters.clone(),
                info.clone(),
                plan.processors.clone(),
            )?;
            let mut worker = Worker::new(modules, pipeline, plan.codec.clone());
            worker.tcp.set_max_connections(plan.limits.tcp_connections);
            worker.decoder.set_max_datagrams(plan.limits.ip_datagrams);
            worker.flows = plan.flows.map(crate::flows::Flows::new);
            worker.live = plan.live;
            worker.flush_on_tick = plan.flush_on_tick;
            worker.monitoring = Some((monitoring.clone(), i));
            Ok(worker)
        })
        .collect()
}

/// Starts each worker on a thread of its own, with the channel that feeds it.
fn spawn_workers(
    workers: Vec<Worker>,
    limits: &limits::Limits,
    events: &Arc<dyn EventQueue>,
) -> anyhow::Result<(Vec<SyncSender<WorkerBatch>>, WorkerHandles)> {
    let mut senders = Vec::with_capacity(workers.len());
    let mut handles = Vec::with_capacity(workers.len());
    let stream_bytes = limits.stream_bytes;
    for (i, worker) in workers.into_iter().enumerate() {
        let (tx, rx) = sync_channel::<WorkerBatch>(WORKER_QUEUE);
        let events = events.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    enter_worker_thread(stream_bytes);
                    worker.run(rx, &*events)
                })?,
        );
        senders.push(tx);
    }
    Ok((senders, handles))
}

/// The set-up of a thread that runs a packet worker: no inherited capabilities, and its
/// stream buffers' budget (`packetbeat.limits.stream_bytes`, kept per thread).
fn enter_worker_thread(stream_bytes: usize) {
    privileges::shed_inherited();
    crate::protos::app::stream::budget::set_limit(stream_bytes);
}

/// Where a capture loop hands its batches.
enum Feed<'a> {
    /// The packet workers' channels, one batch for each.
    Channels(&'a [SyncSender<WorkerBatch>]),
    /// One worker, run on the capture loop's own thread (run to completion).
    Inline {
        worker: &'a mut Worker,
        events: &'a dyn EventQueue,
    },
}

impl Feed<'_> {
    /// Hands over the batches of one capture batch; `false` once a worker or the output is
    /// gone (the capture ends).
    fn deliver(&mut self, split: Vec<WorkerBatch>) -> bool {
        match self {
            Feed::Channels(senders) => senders
                .iter()
                .zip(split)
                .all(|(tx, wb)| tx.send(wb).is_ok()),
            Feed::Inline { worker, events } => split.iter().all(|wb| worker.step(wb, *events)),
        }
    }
}

/// Reads the source until it ends or a signal arrives, dumping and dispatching each batch.
/// Returns the number of frames read.
fn capture(
    source: &mut dyn PacketSource,
    mut dumper: Option<&mut Dumper>,
    dispatcher: &mut dispatch::Dispatcher,
    feed: &mut Feed,
    monitoring: &crate::monitoring::Live,
) -> anyhow::Result<u64> {
    let mut frames = 0u64;
    let mut datagrams_dropped = 0u64;
    let mut clock = stages::StageClock::default();
    // On a signal, a live source is drained first: what the kernel already holds is still
    // analysed, up to the first idle (empty) batch or DRAIN_MAX.
    let mut draining: Option<std::time::Instant> = None;
    'capture: loop {
        if draining.is_none() && STOP.load(Ordering::Relaxed) {
            if !source.is_live() {
                break;
            }
            draining = Some(std::time::Instant::now());
        }
        let mut mark = clock.mark();
        let batch = match source.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                tracing::error!("capture error: {e}");
                break;
            }
        };
        let n = batch.frames.len() as u64;
        clock.lap(stages::Stage::Capture, &mut mark, n);
        clock.frames(n);
        if let Some(t) = draining {
            if batch.frames.is_empty() || t.elapsed() >= DRAIN_MAX {
                break;
            }
        }
        frames += batch.frames.len() as u64;
        monitoring
            .frames
            .fetch_add(batch.frames.len() as u64, Ordering::Relaxed);
        if let Some(d) = dumper.as_deref_mut() {
            for f in &batch.frames {
                d.write(&batch.frame(f))?;
            }
        }
        let split = dispatcher.split(batch);
        // Waiting for a worker to take its batch is not dispatch work: not counted.
        clock.lap(stages::Stage::Dispatch, &mut mark, n);
        if !feed.deliver(split) {
            break 'capture; // a worker is gone: the output failed
        }
        let dropped = dispatcher.datagrams_dropped();
        if dropped != datagrams_dropped {
            monitoring
                .datagrams_dropped
                .fetch_add(dropped - datagrams_dropped, Ordering::Relaxed);
            datagrams_dropped = dropped;
        }
    }
    stages::submit(clock);
    Ok(frames)
}

/// Waits for every worker (also after one panicked) and sums their reports.
fn join_workers(handles: WorkerHandles) -> anyhow::Result<WorkerReport> {
    let mut total = WorkerReport::default();
    let mut panicked = false;
    for h in handles {
        match h.join() {
            Ok(r) => total += &r,
            Err(_) => panicked = true,
        }
    }
    anyhow::ensure!(!panicked, "a packet worker panicked");
    Ok(total)
}

/// The exit log line. Returns the number of events dropped.
fn log_summary(
    source: &dyn PacketSource,
    dispatcher: &dispatch::Dispatcher,
    monitoring: &crate::monitoring::Live,
    total: &WorkerReport,
    written: u64,
) -> u64 {
    let (d, t, u, p) = (&total.decoder, &total.tcp, &total.udp, &total.pipeline);
    let dropped = p.invalid + p.ignored_outgoing + p.dropped_by_processors;
    tracing::info!(
        "{}; decoder: {} packets, {} not IP, {} malformed, {} IPv4 fragments ({} datagrams reassembled, {} datagrams dropped), {} IPv6 fragments skipped; \
         tcp: {} segments, {} retransmissions, {} overlaps, {} reordered, {} gaps ({} dropped state), \
         {} connections evicted (table full), {} stream allocations refused (stream_bytes), \
         {} transactions evicted (table full); \
         udp: {} datagrams, {} analysed; flows: {} seen, {} reports, {} evicted (table full); \
         events: {} published, {} written, {} dropped; \
         drops: {} packets by the kernel, {} malformed packets, {} events at the full output queue",
        source.summary(),
        d.packets,
        d.not_ip,
        d.malformed,
        d.fragments + dispatcher.fragments,
        d.reassembled + dispatcher.reassembled,
        // The capture threads' dispatchers (one, or one per fan-out socket) count theirs there.
        d.datagrams_dropped + monitoring.datagrams_dropped.load(Ordering::Relaxed),
        d.ipv6_fragments,
        t.segments,
        t.retransmissions,
        t.overlaps,
        t.reordered,
        t.gaps,
        t.dropped_because_of_gaps,
        t.evicted,
        t.stream_bytes_refused,
        crate::protos::app::transactions::evicted(),
        u.datagrams,
        u.analysed,
        total.flows.flows,
        total.flows.reported,
        total.flows.evicted,
        p.published,
        written,
        dropped,
        source.kernel_drops(),
        d.malformed,
        total.queue_dropped,
    );
    dropped + total.queue_dropped
}

/// One log line per protocol whose counters are not all zero (parse errors, streams dropped,
/// unmatched messages), with libbeat's counter names.
fn log_protocol_counters(modules: &crate::protos::ProtocolModules) {
    for m in &modules.modules {
        let Some(c) = m.counters() else { continue };
        let counts: Vec<String> = c
            .snapshot()
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{}.{k}={v}", m.name()))
            .collect();
        if !counts.is_empty() {
            tracing::info!("{}", counts.join(", "));
        }
    }
}
