//! The DPDK sniffer (`packetbeat.interfaces.type: dpdk`, cargo feature `dpdk`, on by default).
//!
//! **Start-up order.** [`early_init`] runs first thing in `main`, before clap and before any
//! config is read: it looks for `--dpdk_status enable` and `--dpdk_port N` anywhere on the raw
//! command line (`--flag value` or `--flag=value`, one or two dashes), and when present calls
//! `rte_eal_init` on the main thread with the shell-split `--dpdk_args` (or env
//! `PACKETBEAT_DPDK_ARGS`), checks that port N exists and stores a [`DpdkHandle`] in a
//! process-global. The beater later takes it with [`take_handle`] when the config says
//! `type: dpdk`, checks `device` against the handle's port, and configures and starts the port
//! ([`DpdkSource::open`]) — still on the main thread, which is the EAL main lcore and runs the
//! capture loop. Configuring is deferred to that point because the mempool, ring and queue
//! sizes come from the config (`buffer_size_mb`, `packetbeat.interfaces.dpdk.*`), which is not
//! read yet when EAL starts. `--dpdk_status disable` or no flag: DPDK is never touched.
//! EAL pins the main thread to one CPU; its previous CPU mask is restored right after
//! `rte_eal_init`, so the packet workers spawned later are not all confined to that CPU.
//! At exit, [`cleanup`] calls `rte_eal_cleanup` once the port is stopped and every mbuf is back.
//!
//! **Receive path.** `rte_eth_rx_burst` on each RX queue in turn; the mbufs of a poll round
//! become one [`PacketBatch`] whose storage is a [`MbufBurst`]: frames point straight into mbuf
//! memory (no copy) and the mbufs go back to the mempool when the last worker drops its share of
//! the batch. Multi-segment mbufs (jumbo frames, scattered RX) are the exception: they are copied
//! into an owned buffer held by the burst and freed at once. The BPF filter runs on mbuf memory;
//! rejected mbufs are freed immediately.
//!
//! **Queues and workers.** `--dpdk_queues` or `dpdk.queues` (config) RX queues; with RSS (when the
//! port has it) on a symmetric key (0x6D5A repeated, as long as the port's key), so both
//! directions of a connection land on one queue. Workers default to one per queue (one per core
//! with a single queue).
//! - **Per-queue receive**, when the port spreads flows symmetrically — symmetric RSS, or the
//!   `net_af_packet` PMD, whose queues are sockets of one `PACKET_FANOUT_HASH` group (the
//!   kernel's flow hash is the same both ways; it also reassembles IPv4 fragments first) — and
//!   there is one worker per queue: [`DpdkSource::split_per_worker`] makes one source per queue,
//!   each read on its own thread straight into its own worker (the beater's fan-out path, as
//!   for af_packet sockets), with no dispatch in between.
//! - **One receive loop** otherwise (no RSS, or workers ≠ queues, or a `--dump`): this loop
//!   polls all queues on the main lcore and the beater's dispatcher spreads frames over the
//!   workers by its symmetric flow hash, so the result never depends on how the NIC spread
//!   flows. The log says which path runs and why.
//!
//! - **Run to completion** (`dpdk.run_to_completion`, on by default): a loop that feeds exactly
//!   one worker (per-queue receive, or the one loop with one worker) runs that worker on its own
//!   thread instead of handing it batches through a channel. Each packet is received, analysed
//!   and its mbuf freed on one thread: no wake-ups between threads, and the mbufs go back
//!   through that thread's mempool cache while they are still in its CPU cache. The loop's
//!   thread gets an lcore id for that (`rte_thread_register`, when it has none: EAL's main
//!   thread has one), given back when the loop ends. On `net_null` (one queue, one worker),
//!   the whole process spends about 0.72× the CPU per packet of the two-thread pipeline; the
//!   pipeline still receives faster on one queue, as it spreads receive and analysis over two
//!   cores.
//!
//! With RSS, the fragments of an IPv4 datagram hash by address pair and are reassembled on their
//! queue, which may not be the queue of the datagram's other packets (RSS hashes those with
//! their ports); a fragmented UDP answer then meets its question only if both hashed alike.
//! `net_af_packet` has no such case (the kernel reassembles before hashing). Under overload the
//! af_packet PMD's fanout rolls a full socket's packets over to another (`FLAG_ROLLOVER`).
//!
//! **Idle.** An empty poll round spins a little, then sleeps 1 µs doubling up to
//! `dpdk.idle_sleep` (1 ms) so an idle port does not hold a core at 100 %. Every 100 ms without
//! traffic an empty batch carries the clock forward so timeouts fire. `dpdk.exit_when_idle`
//! ends the capture after that long without packets (for replays with the pcap PMD, which stops
//! delivering at the end of its file).
//!
//! **Timestamps.** When the port offers `RTE_ETH_RX_OFFLOAD_TIMESTAMP` it is enabled, and the RX
//! timestamp dynfield is looked up (`rte_mbuf_dyn_rx_timestamp_register`). The pcap PMD of 22.11
//! fills it on every mbuf (without advertising the offload) with the capture's time in
//! **microseconds** since the epoch (it opens files at microsecond precision, so nanosecond
//! captures lose their last three digits); that is what makes replays comparable with `-I`.
//! Other PMDs' timestamps are NIC clock ticks, not wall time: for those, and for ports without
//! the offload, frames get the realtime clock, read once per burst.

pub mod bpf;
pub mod sys;

use super::{BatchBuf, ExternalFrames, FrameDesc, PacketBatch, PacketSource, SnifferError};
use crate::common::Ts;
use crate::config::InterfaceConfig;
use crate::decoder::LinkType;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The port EAL was initialised for, waiting for the beater.
#[derive(Debug)]
pub struct DpdkHandle {
    pub port: u16,
    pub queues: Option<u16>,
    pub driver: String,
    pub name: String,
}

static HANDLE: Mutex<Option<DpdkHandle>> = Mutex::new(None);
static EAL_UP: AtomicBool = AtomicBool::new(false);

/// DPDK flags found on the raw command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EarlyFlags {
    pub status: Option<String>,
    pub port: Option<String>,
    pub args: Option<String>,
    pub queues: Option<String>,
}

/// Scans argv (argv[0] excluded) for the DPDK flags, in any position, as `--flag value`,
/// `--flag=value`, `-flag value` or `-flag=value`. Stops at `--`.
pub fn scan_flags(argv: &[String]) -> EarlyFlags {
    let mut f = EarlyFlags::default();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            break;
        }
        let body = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        let Some(body) = body else {
            i += 1;
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let slot = match name {
            "dpdk_status" => &mut f.status,
            "dpdk_port" => &mut f.port,
            "dpdk_args" => &mut f.args,
            "dpdk_queues" => &mut f.queues,
            _ => {
                i += 1;
                continue;
            }
        };
        match inline {
            Some(v) => *slot = Some(v),
            None => {
                *slot = argv.get(i + 1).cloned();
                i += 1;
            }
        }
        i += 1;
    }
    f
}

/// Splits EAL arguments as a POSIX shell would (quotes, backslashes and `#` comments; no
/// expansion), with `shell_words`.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    shell_words::split(s).map_err(|e| format!("invalid --dpdk_args: {e}"))
}

/// Called by `main` before anything else. `Ok(false)`: DPDK not requested (not touched).
pub fn early_init(argv: &[String]) -> Result<bool, String> {
    let f = scan_flags(argv.get(1..).unwrap_or(&[]));
    match f.status.as_deref() {
        None | Some("disable") => return Ok(false),
        Some("enable") => {}
        Some(other) => {
            return Err(format!(
                "invalid --dpdk_status '{other}': expected enable or disable"
            ))
        }
    }
    let port: u16 = match f.port.as_deref() {
        None => return Err("--dpdk_status enable needs --dpdk_port N".into()),
        Some(p) => p
            .trim()
            .parse()
            .map_err(|_| format!("invalid --dpdk_port '{p}': expected a port number"))?,
    };
    let queues = match f.queues.as_deref() {
        None => None,
        Some(q) => Some(
            q.trim()
                .parse::<u16>()
                .ok()
                .filter(|&q| q >= 1)
                .ok_or_else(|| format!("invalid --dpdk_queues '{q}': expected a number ≥ 1"))?,
        ),
    };
    let args_text = f
        .args
        .or_else(|| std::env::var("PACKETBEAT_DPDK_ARGS").ok())
        .unwrap_or_default();
    let mut eal_args = vec!["packetbeat".to_string()];
    eal_args.extend(shell_split(&args_text)?);
    eal_init(&eal_args)?;
    // SAFETY: EAL is up; plain queries.
    let valid = unsafe { sys::rte_eth_dev_is_valid_port(port) } != 0;
    if !valid {
        let avail = unsafe { sys::rte_eth_dev_count_avail() };
        cleanup();
        return Err(format!(
            "DPDK port {port} does not exist ({avail} port(s) available; ports come from the NICs bound to DPDK and the --vdev arguments in --dpdk_args)"
        ));
    }
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: the buffer is RTE_ETH_NAME_MAX_LEN (64) long as the API requires.
    let name = if unsafe { sys::rte_eth_dev_get_name_by_port(port, name.as_mut_ptr()) } == 0 {
        unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("port{port}")
    };
    // SAFETY: the port is valid; the driver name is a static string of the PMD.
    let driver = unsafe {
        let p = sys::pb_port_driver(port);
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    *HANDLE.lock().unwrap() = Some(DpdkHandle {
        port,
        queues,
        driver,
        name,
    });
    Ok(true)
}

fn eal_init(args: &[String]) -> Result<(), String> {
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| {
            CString::new(a.as_str()).map_err(|_| "--dpdk_args contains a NUL byte".to_string())
        })
        .collect::<Result<_, _>>()?;
    // EAL may permute argv and keep pointers into it: leak the strings (once per process).
    let mut ptrs: Vec<*mut libc::c_char> = cargs.into_iter().map(|c| c.into_raw()).collect();
    ptrs.push(std::ptr::null_mut());
    let argv = Box::leak(ptrs.into_boxed_slice());
    // EAL pins the calling thread to its main lcore's CPU; threads spawned later (the packet
    // workers, the output) would inherit that single CPU. Keep the mask from before and put it
    // back: the main thread stays EAL's main lcore (rte_lcore_id, mempool cache) for DPDK.
    // SAFETY: plain sched_{get,set}affinity on the calling thread with a properly sized set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let have_mask =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut mask) }
            == 0;
    // SAFETY: argv is a NULL-terminated array of C strings that lives forever.
    let rc = unsafe { sys::rte_eal_init(args.len() as libc::c_int, argv.as_mut_ptr()) };
    if rc >= 0 && have_mask {
        // SAFETY: as above.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mask) };
    }
    if rc < 0 {
        let err = unsafe { sys::pb_errno() };
        return Err(format!(
            "DPDK EAL initialisation failed ({}) with arguments '{}'",
            sys::strerror(err),
            args[1..].join(" ")
        ));
    }
    EAL_UP.store(true, Ordering::SeqCst);
    Ok(())
}

/// The handle made by [`early_init`], if DPDK was initialised (once).
pub fn take_handle() -> Option<DpdkHandle> {
    HANDLE.lock().unwrap().take()
}

/// `rte_eal_cleanup`, if EAL was initialised; call after the port is stopped.
pub fn cleanup() {
    if EAL_UP.swap(false, Ordering::SeqCst) {
        // SAFETY: EAL was initialised by this process and every lcore user is done.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// The mbufs of one poll round, owned by the batch made of them.
pub struct MbufBurst {
    mbufs: Vec<*mut sys::rte_mbuf>,
    /// Chained frames, copied out into one buffer each (their chains are already freed).
    copies: Vec<Box<[u8]>>,
}

// SAFETY: the mbufs are owned exclusively by this value until Drop returns them to the mempool
// (rte_pktmbuf_free is safe from any thread, EAL or not); the frame bytes are only read.
unsafe impl Send for MbufBurst {}
unsafe impl Sync for MbufBurst {}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        if !self.mbufs.is_empty() {
            // SAFETY: each mbuf was received by rx_burst and is freed exactly once, here.
            unsafe { sys::pb_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.mbufs.len() as u32) }
        }
    }
}

/// Empty batches while idle, so packet time moves on.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// Empty poll rounds spent spinning before sleeping.
const IDLE_SPINS: u32 = 200;
/// Poll rounds gathered into one batch at most while traffic flows.
const MAX_ROUNDS: usize = 8;

/// Stops the port when the last source reading it is gone.
struct PortGuard {
    port: u16,
    /// When a packet last arrived on any queue (ns since `epoch`), for `exit_when_idle`, which
    /// is about the port, not one queue.
    epoch: Instant,
    last_pkt_ns: std::sync::atomic::AtomicU64,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        // SAFETY: the port was started by open(); outstanding mbufs stay valid until freed.
        unsafe { sys::pb_port_stop(self.port) };
    }
}

pub struct DpdkSource {
    port: u16,
    name: String,
    driver: String,
    /// The port's RX queues.
    queues: u16,
    /// The queues this source polls: all of them, or one after `split_per_worker`.
    polled: std::ops::Range<u16>,
    burst: u16,
    hw_ts: bool,
    rss: bool,
    filter: Option<Arc<bpf::BpfFilter>>,
    /// `dpdk.per_queue`.
    per_queue_cfg: Option<bool>,
    /// `dpdk.run_to_completion`.
    run_to_completion: bool,
    idle_sleep: Duration,
    exit_when_idle: Option<Duration>,
    rx: RxState,
    guard: Arc<PortGuard>,
}

/// What one receive loop keeps for itself: its idle back-off, clock, buffer and counters.
struct RxState {
    idle_rounds: u32,
    sleep: Duration,
    last_pkt_ts: Ts,
    last_pkt_at: Instant,
    last_batch_at: Instant,
    /// Wall time of the first packet, for the receive rate in the summary.
    first_pkt_at: Option<Instant>,
    scratch: Vec<*mut sys::rte_mbuf>,
    /// What the shim read of each mbuf of `scratch`.
    info: Vec<sys::MbufInfo>,
    per_queue: Vec<u64>,
    frames: u64,
    filtered: u64,
    multiseg: u64,
    /// This loop's thread and EAL: unchecked until the first poll, then whether the loop
    /// registered the thread (see `pb_thread_register`).
    lcore: Option<bool>,
}

impl RxState {
    fn new(burst: u16, queues: u16) -> RxState {
        let now = Instant::now();
        RxState {
            idle_rounds: 0,
            sleep: Duration::from_micros(1),
            last_pkt_ts: Ts::ZERO,
            last_pkt_at: now,
            last_batch_at: now,
            first_pkt_at: None,
            scratch: vec![std::ptr::null_mut(); burst as usize],
            info: vec![sys::MbufInfo::EMPTY; burst as usize],
            per_queue: vec![0; queues as usize],
            frames: 0,
            filtered: 0,
            multiseg: 0,
            lcore: None,
        }
    }
}

// SAFETY: the raw pointers in `scratch` are only a receive buffer, empty between calls.
unsafe impl Send for DpdkSource {}

fn realtime_now() -> Ts {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ts(d.as_nanos() as i64)
}

impl DpdkSource {
    /// Configures and starts the port of `handle` with the settings of `iface`.
    pub fn open(handle: DpdkHandle, iface: &InterfaceConfig) -> Result<DpdkSource, SnifferError> {
        let cfg = &iface.dpdk;
        let filter = match iface.bpf_filter.as_deref().map(str::trim) {
            Some(e) if !e.is_empty() => {
                Some(bpf::BpfFilter::compile(e, iface.snaplen).map_err(SnifferError::Open)?)
            }
            _ => None,
        };
        // --dpdk_queues wins over the config (read before clap: the handle has it).
        let mut queues = handle.queues.unwrap_or(cfg.queues).max(1);
        let rxd = cfg.rx_descriptors.max(64);
        let burst = cfg.burst.clamp(1, 512);
        // buffer_size_mb → mempool: that many MiB of 2 KiB-data mbufs (~2.4 KiB each with
        // headers), at least enough for the rings plus the batches that may be in flight.
        let per_mbuf = 2048 + 128 + 192;
        let from_mb = (iface.buffer_size_mb.max(1) as u64 * 1024 * 1024 / per_mbuf) as u32;
        let workers = iface.workers.max(queues as usize).max(4) as u32;
        let floor = queues as u32 * rxd as u32
            + workers * 6 * MAX_ROUNDS as u32 * burst as u32 * queues as u32
            + 1024;
        let n_mbufs = from_mb.max(floor);
        let (mut ts, mut rss, mut reta) = (0, 0, 0);
        let mut err = [0 as libc::c_char; 256];
        // SAFETY: EAL is initialised (the handle exists only then); out-pointers are valid.
        let rc = unsafe {
            sys::pb_port_start(
                handle.port,
                &mut queues,
                rxd,
                n_mbufs,
                cfg.promiscuous as i32,
                &mut ts,
                &mut rss,
                &mut reta,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            return Err(SnifferError::Open(msg));
        }
        // Only the pcap PMD's timestamps are wall-clock time (the capture's); see the module doc.
        // The pcap PMD stamps every mbuf (dynfield + flag) whether or not the offload is asked
        // for, and without advertising it; its value is the capture's time in microseconds.
        let _ = ts;
        let hw_ts = handle.driver == "net_pcap";
        let spread = match (queues, rss, reta) {
            (1, _, _) => String::new(),
            (_, 0, _) => " without RSS (the port has none)".into(),
            (_, _, 0) => " with symmetric RSS (the port's redirection table left as it is: it has none we may set)".into(),
            (_, _, n) => format!(" with symmetric RSS, redirection table of {n} entries over the queues"),
        };
        tracing::info!(
            "DPDK port {} ({}, driver {}) started: {} RX queue(s){}, {} descriptors, {} mbufs, timestamps from {}{}",
            handle.port,
            handle.name,
            handle.driver,
            queues,
            spread,
            rxd,
            n_mbufs,
            if hw_ts { "the PMD" } else { "the system clock" },
            if filter.is_some() { ", BPF filter on" } else { "" },
        );
        Ok(DpdkSource {
            port: handle.port,
            name: handle.name,
            driver: handle.driver,
            queues,
            polled: 0..queues,
            burst,
            hw_ts,
            rss: rss != 0,
            filter: filter.map(Arc::new),
            per_queue_cfg: cfg.per_queue,
            run_to_completion: cfg.run_to_completion,
            idle_sleep: cfg.idle_sleep.0.max(Duration::from_micros(1)),
            exit_when_idle: cfg.exit_when_idle.map(|d| d.0),
            rx: RxState::new(burst, queues),
            guard: Arc::new(PortGuard {
                port: handle.port,
                epoch: Instant::now(),
                last_pkt_ns: Default::default(),
            }),
        })
    }

    /// Why the port hands each queue whole connections (see the module doc), if it does.
    fn symmetric_queues(&self) -> Option<&'static str> {
        match self.per_queue_cfg {
            Some(true) => Some("dpdk.per_queue: true"),
            Some(false) => None,
            None if self.rss => Some("symmetric RSS"),
            None if self.driver == "net_af_packet" => Some("af_packet fanout hash"),
            None => None,
        }
    }

    /// This source for queue `q` alone.
    fn for_queue(&self, q: u16) -> DpdkSource {
        DpdkSource {
            port: self.port,
            name: self.name.clone(),
            driver: self.driver.clone(),
            queues: self.queues,
            polled: q..q + 1,
            burst: self.burst,
            hw_ts: self.hw_ts,
            rss: self.rss,
            filter: self.filter.clone(),
            per_queue_cfg: self.per_queue_cfg,
            run_to_completion: self.run_to_completion,
            idle_sleep: self.idle_sleep,
            exit_when_idle: self.exit_when_idle,
            rx: RxState::new(self.burst, self.queues),
            guard: self.guard.clone(),
        }
    }

    /// `exit_when_idle`: no packet on any queue of the port for `limit`.
    fn port_idle_for(&self, limit: Duration) -> bool {
        let last = Duration::from_nanos(
            self.guard
                .last_pkt_ns
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        self.guard.epoch.elapsed().saturating_sub(last) >= limit
    }

    pub fn queues(&self) -> u16 {
        self.queues
    }

    /// Receives one burst from `queue` into `burst`.
    fn poll_queue(
        &mut self,
        queue: u16,
        b: &mut MbufBurst,
        slices: &mut Vec<(*const u8, u32)>,
        frames: &mut Vec<FrameDesc>,
    ) -> usize {
        // SAFETY: scratch and info hold `burst` slots each; the port and queue are started.
        let n = unsafe {
            sys::pb_rx_burst_info(
                self.port,
                queue,
                self.rx.scratch.as_mut_ptr(),
                self.burst,
                self.rx.info.as_mut_ptr(),
            )
        } as usize;
        if n == 0 {
            return 0;
        }
        self.rx.per_queue[queue as usize] += n as u64;
        if frames.capacity() == 0 {
            // The batch's first packets: room for all the rounds it may gather, once, rather
            // than growing (nothing is allocated while the port idles).
            let most = MAX_ROUNDS * self.burst as usize * self.polled.len();
            frames.reserve(most);
            b.mbufs.reserve(most);
            slices.reserve(most);
        }
        let clock = if self.hw_ts { Ts::ZERO } else { realtime_now() };
        for i in 0..n {
            let m = self.rx.scratch[i];
            let sys::MbufInfo {
                data,
                data_len,
                pkt_len,
                nb_segs: segs,
            } = self.rx.info[i];
            let mut raw_ts = 0u64;
            // SAFETY: m is a valid mbuf just received.
            let has_ts = self.hw_ts && unsafe { sys::pb_mbuf_rx_timestamp(m, &mut raw_ts) != 0 };
            let ts = if has_ts {
                Ts(raw_ts as i64 * 1000)
            } else if self.hw_ts {
                realtime_now()
            } else {
                clock
            };
            let slice = if segs > 1 {
                // Chained mbufs: copy into one buffer, free the chain now.
                self.rx.multiseg += 1;
                let mut copy = vec![0u8; pkt_len as usize].into_boxed_slice();
                // SAFETY: copy has pkt_len bytes; m is freed once and not used after.
                let got = unsafe {
                    let got = sys::pb_mbuf_copy(m, copy.as_mut_ptr(), pkt_len);
                    sys::pb_pktmbuf_free(m);
                    got
                };
                let p = copy.as_ptr();
                b.copies.push(copy);
                (p, got)
            } else {
                b.mbufs.push(m);
                (data, data_len)
            };
            if ts > self.rx.last_pkt_ts {
                self.rx.last_pkt_ts = ts; // filtered frames move the clock too
            }
            if let Some(f) = &self.filter {
                // SAFETY: the slice is alive (mbuf or copy held by b).
                let bytes = unsafe { std::slice::from_raw_parts(slice.0, slice.1 as usize) };
                if !f.matches(bytes, pkt_len) {
                    self.rx.filtered += 1;
                    continue; // its mbuf (if any) is freed with the burst
                }
            }
            frames.push(FrameDesc {
                ts,
                offset: slices.len() as u32,
                len: slice.1,
                orig_len: pkt_len,
                link: LinkType::Ethernet,
            });
            slices.push(slice);
        }
        n
    }

    /// The clock while idle: the last packet's time plus the time since it arrived.
    fn idle_clock(&self) -> Ts {
        if self.rx.last_pkt_ts.is_zero() {
            if self.hw_ts {
                Ts::ZERO // packet time is the PMD's; unknown before the first packet
            } else {
                realtime_now()
            }
        } else {
            Ts(self.rx.last_pkt_ts.0 + self.rx.last_pkt_at.elapsed().as_nanos() as i64)
        }
    }
}

impl PacketSource for DpdkSource {
    fn link_type(&self) -> LinkType {
        LinkType::Ethernet
    }

    /// One source per queue when the queues hold whole connections and each has its worker;
    /// otherwise this one loop and the software dispatch (see the module doc), and the log says
    /// why.
    fn runs_worker_inline(&self) -> bool {
        self.run_to_completion
    }

    /// The loop's thread gives back the lcore id it was given.
    fn finish(&mut self) {
        if self.rx.lcore == Some(true) {
            // SAFETY: called on the thread that registered (the loop's own, at its end).
            unsafe { sys::pb_thread_unregister() };
            self.rx.lcore = Some(false);
        }
    }

    fn split_per_worker(&mut self, workers: usize) -> Option<Vec<Box<dyn PacketSource>>> {
        let queues = self.queues as usize;
        let why = if queues < 2 {
            return None;
        } else if self.per_queue_cfg == Some(false) {
            "dpdk.per_queue: false"
        } else if self.symmetric_queues().is_none() {
            "the port has no RSS to keep connections on one queue"
        } else if workers != queues {
            "the packet workers are not one per queue"
        } else {
            tracing::info!(
                "DPDK port {}: per-queue receive: {queues} RX loops, each on its own thread straight into its packet worker ({})",
                self.port,
                self.symmetric_queues().unwrap_or_default()
            );
            return Some(
                (0..self.queues)
                    .map(|q| Box::new(self.for_queue(q)) as Box<dyn PacketSource>)
                    .collect(),
            );
        };
        tracing::info!(
            "DPDK port {}: one receive loop for {queues} RX queues and software dispatch to {workers} packet workers: {why}",
            self.port
        );
        None
    }

    fn next_batch(&mut self) -> Result<Option<PacketBatch>, SnifferError> {
        if self.rx.lcore.is_none() {
            // A loop on a thread of its own (per-queue receive) gets an lcore id, so the mbufs
            // it receives and frees go through its own mempool cache, not the shared ring.
            // SAFETY: EAL is initialised (a source exists only then).
            let rc = unsafe { sys::pb_thread_register() };
            if rc < 0 {
                tracing::warn!(
                    "DPDK port {}: no EAL lcore slot left for the receive thread of queue {}; its mbufs go through the mempool's shared ring",
                    self.port,
                    self.polled.start
                );
            }
            self.rx.lcore = Some(rc == 1);
        }
        loop {
            let mut burst = MbufBurst {
                mbufs: Vec::new(),
                copies: Vec::new(),
            };
            // Where each frame's bytes are: in an mbuf of `burst`, or in one of its copies.
            let mut slices = Vec::new();
            let mut frames = Vec::new();
            let mut received = 0;
            for _ in 0..MAX_ROUNDS {
                let mut round = 0;
                for q in self.polled.clone() {
                    round += self.poll_queue(q, &mut burst, &mut slices, &mut frames);
                }
                received += round;
                if round < self.burst as usize {
                    break; // queues are drained: hand out what we have
                }
            }
            if received > 0 {
                self.rx.idle_rounds = 0;
                self.rx.sleep = Duration::from_micros(1);
                self.rx.last_pkt_at = Instant::now();
                self.rx.first_pkt_at.get_or_insert(self.rx.last_pkt_at);
                self.guard.last_pkt_ns.store(
                    self.guard.epoch.elapsed().as_nanos() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.rx.frames += frames.len() as u64;
                if frames.is_empty() {
                    // Everything filtered out (the burst frees its mbufs). Still hand out an
                    // empty batch now and then: the clock moves on and a signal is noticed.
                    if self.rx.last_batch_at.elapsed() >= IDLE_TICK {
                        self.rx.last_batch_at = self.rx.last_pkt_at;
                        return Ok(Some(PacketBatch {
                            buf: BatchBuf::Owned(Arc::new(Vec::new())),
                            frames,
                            new_pass: false,
                            clock: self.idle_clock(),
                        }));
                    }
                    continue;
                }
                self.rx.last_batch_at = self.rx.last_pkt_at;
                return Ok(Some(PacketBatch {
                    // SAFETY: each slice points into an mbuf or a copy that `burst` holds until
                    // it is dropped.
                    buf: BatchBuf::External(unsafe { ExternalFrames::new(slices, burst) }),
                    frames,
                    new_pass: false,
                    clock: Ts::ZERO,
                }));
            }
            // Idle: spin briefly, then sleep with a growing interval.
            self.rx.idle_rounds = self.rx.idle_rounds.saturating_add(1);
            if self.rx.idle_rounds <= IDLE_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(self.rx.sleep);
                self.rx.sleep = (self.rx.sleep * 2).min(self.idle_sleep);
            }
            if let Some(limit) = self.exit_when_idle {
                if self.port_idle_for(limit) {
                    tracing::info!(
                        "DPDK port {}: no packet for {:?}, stopping the capture (exit_when_idle)",
                        self.port,
                        limit
                    );
                    return Ok(None);
                }
            }
            if self.rx.last_batch_at.elapsed() >= IDLE_TICK {
                self.rx.last_batch_at = Instant::now();
                return Ok(Some(PacketBatch {
                    buf: BatchBuf::Owned(Arc::new(Vec::new())),
                    frames: Vec::new(),
                    new_pass: false,
                    clock: self.idle_clock(),
                }));
            }
        }
    }

    fn summary(&self) -> String {
        let nq = self.queues as usize;
        let mut st = vec![0u64; 4 + nq.min(16)];
        let whole_port = self.polled.len() == nq;
        // The port's own counters once: on the source of queue 0 when each queue has its own.
        // SAFETY: st has room for 4 + nq (≤ 16) counters.
        let ok = self.polled.start == 0
            && unsafe { sys::pb_port_stats(self.port, st.as_mut_ptr(), nq.min(16) as u32) } == 0;
        let mut s = if whole_port {
            format!(
                "DPDK port {} ({}, {}): {} frames received",
                self.port, self.name, self.driver, self.rx.frames
            )
        } else {
            format!(
                "DPDK port {} ({}, {}) queue {}: {} frames received",
                self.port, self.name, self.driver, self.polled.start, self.rx.frames
            )
        };
        if ok {
            s.push_str(&format!(
                ", port stats: ipackets {}, imissed {}, ierrors {}, rx_nombuf {}",
                st[0], st[1], st[2], st[3]
            ));
        }
        if let Some(first) = self.rx.first_pkt_at {
            let secs = self.rx.last_pkt_at.duration_since(first).as_secs_f64();
            if secs > 0.0 {
                s.push_str(&format!(
                    ", {:.0} packets/s from first to last packet ({secs:.3} s)",
                    self.rx.frames as f64 / secs
                ));
            }
        }
        if whole_port {
            let per: Vec<String> = self
                .rx.per_queue
                .iter()
                .enumerate()
                .map(|(q, n)| format!("q{q} {n}"))
                .collect();
            s.push_str(&format!(
                "; per queue: {}{}",
                per.join(", "),
                if self.rss { " (symmetric RSS)" } else { "" }
            ));
        }
        if self.rx.filtered > 0 {
            s.push_str(&format!(", {} filtered out by bpf_filter", self.rx.filtered));
        }
        if self.rx.multiseg > 0 {
            s.push_str(&format!(", {} multi-segment frames copied", self.rx.multiseg));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_anywhere_both_spellings() {
        let f = scan_flags(&v(&[
            "-e",
            "run",
            "--dpdk_port=1",
            "-c",
            "x.yml",
            "--dpdk_status",
            "enable",
            "-dpdk_args",
            "--no-huge -m 512",
            "--dpdk_queues=2",
        ]));
        assert_eq!(f.status.as_deref(), Some("enable"));
        assert_eq!(f.port.as_deref(), Some("1"));
        assert_eq!(f.args.as_deref(), Some("--no-huge -m 512"));
        assert_eq!(f.queues.as_deref(), Some("2"));
        assert_eq!(scan_flags(&v(&["run", "-I", "x"])), EarlyFlags::default());
        assert_eq!(
            scan_flags(&v(&["--", "--dpdk_status", "enable"])).status,
            None
        );
    }

    #[test]
    fn shell_split_quotes() {
        assert_eq!(
            shell_split(r#"--no-huge  -m 512 --vdev 'net_pcap0,rx_pcap=/a b.pcap' "x\"y" a\ b"#)
                .unwrap(),
            v(&[
                "--no-huge",
                "-m",
                "512",
                "--vdev",
                "net_pcap0,rx_pcap=/a b.pcap",
                "x\"y",
                "a b"
            ])
        );
        assert_eq!(
            shell_split("'open").unwrap_err(),
            "invalid --dpdk_args: missing closing quote"
        );
        assert!(shell_split("").unwrap().is_empty());
    }
}
