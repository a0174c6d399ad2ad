//! Live capture on a Linux `AF_PACKET` socket with a TPACKET_V3 memory-mapped ring
//! (`packetbeat.interfaces.type: af_packet`).
//!
//! **Why hand-written.** The Rust af_packet crates either copy each frame out of the ring
//! (`afpacket`, `pnet`'s datalink channel), only speak TPACKET_V1/V2 frames, or are unmaintained;
//! none lets a block of the ring be handed to other threads and given back to the kernel when
//! the last of them is done, which is what zero-copy hand-off to the packet workers needs. The
//! kernel interface is small (a handful of `setsockopt`s and one `mmap`, all in `libc`), so it is
//! written here.
//!
//! **Ring.** `buffer_size_mb` MiB of blocks of [`BLOCK_SIZE`] (256 KiB, or the smallest multiple of
//! the page size that holds a `snaplen` frame if that is larger). Packetbeat's
//! `afpacketComputeSize` makes 128-frame blocks (8 MiB each at the default `snaplen`, so 3
//! blocks for 30 MiB); smaller blocks mean a block held by a slow worker stops less of the ring.
//! The kernel retires a block after [`BLOCK_TIMEOUT_MS`] even when it is not full (gopacket's
//! default, which Packetbeat uses): that is the most a packet waits before it is seen.
//!
//! **Zero copy.** Each block the kernel hands over becomes one [`PacketBatch`] whose frames
//! point straight into the ring; the block is given back (`block_status = TP_STATUS_KERNEL`)
//! when the last worker drops its share of the batch. Blocks are read in ring order; while a
//! block is still held, the kernel cannot fill it and drops packets (counted by
//! `PACKET_STATISTICS` as drops and queue freezes), so a slow analysis costs packets, never a
//! stalled reader. The ring stays mapped until the last batch is gone.
//!
//! **VLAN tags** are stripped by the kernel into the frame header; like libpcap, the tag is put
//! back in front of the EtherType (the socket reserves 4 bytes in front of every frame for
//! it), so 802.1Q frames decode as on the wire.
//!
//! **Loopback.** A frame sent on `lo` is seen going out and coming in; as libpcap does, the
//! outgoing copy is skipped.
//!
//! **Filter.** The BPF program (`bpf_filter` or the generated one) is compiled by libpcap and
//! attached to the socket (`SO_ATTACH_FILTER`) before it is bound, so only matching frames enter
//! the ring. **Fan-out.** `fanout_group: N` joins fan-out group N with `PACKET_FANOUT_HASH |
//! PACKET_FANOUT_FLAG_DEFRAG` as Packetbeat does, so several processes share an interface by
//! flow. **Promiscuous mode.** `auto_promisc_mode` sets `IFF_PROMISC` at start when it was not
//! set and clears it again at the end (not on `any`).

use super::{BatchBuf, ExternalFrames, FrameDesc, PacketBatch, PacketSource, SnifferError};
use crate::common::Ts;
use crate::decoder::LinkType;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Bytes per ring block (at least; see the module doc).
pub const BLOCK_SIZE: usize = 256 << 10;
/// The kernel hands over a block after this long even when it is not full.
pub const BLOCK_TIMEOUT_MS: u32 = 64;
/// Room reserved in front of each frame to put a VLAN tag back.
const VLAN_TAG_LEN: usize = 4;

/// Options of an af_packet capture.
#[derive(Debug, Clone)]
pub struct AfPacketOptions {
    pub device: String,
    pub snaplen: u32,
    pub buffer_size_mb: i64,
    pub filter: Option<String>,
    pub fanout_group: Option<u16>,
    pub auto_promisc_mode: bool,
    /// How often the kernel's counters are read (`metrics_interval`); they are 32-bit and reset
    /// by each read.
    pub metrics_interval: std::time::Duration,
}

/// The mapped ring; unmapped (and the socket closed) when the source and every batch are gone.
struct Ring {
    fd: OwnedFd,
    base: *mut u8,
    size: usize,
    block_size: usize,
    blocks: usize,
    /// Blocks handed out and not given back yet. Their status stays `TP_STATUS_USER` until then,
    /// so this is what keeps the reader from reading one twice when it comes round the ring.
    held: Vec<AtomicBool>,
}

// SAFETY: the mapping is plain shared memory; each block is accessed by one owner at a time
// (the kernel, or the reader and then the batch that holds it), handed over through the block
// status word with acquire/release ordering.
unsafe impl Send for Ring {}
unsafe impl Sync for Ring {}

impl Ring {
    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY: i < blocks, so the offset is inside the mapping.
        unsafe { self.base.add(i * self.block_size) }
    }

    /// The block's status word (`tpacket_block_desc.hdr.bh1.block_status`, at offset 8).
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: the word is 4-byte aligned inside the mapping and shared with the kernel,
        // which is what atomics are for.
        unsafe { &*(self.block(i).add(8) as *const AtomicU32) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: mapped once in open(); no batch refers to it any more (they hold the Arc).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size) };
    }
}

/// One block handed to the workers: owns it, and gives it back to the kernel on drop.
struct Block {
    ring: Arc<Ring>,
    index: usize,
}

impl Drop for Block {
    fn drop(&mut self) {
        self.ring.held[self.index].store(false, Ordering::Release);
        self.ring
            .status(self.index)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// `IFF_PROMISC` set by us, cleared again on drop.
struct Promisc {
    fd: libc::c_int,
    name: String,
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all zeroes is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    r
}

fn if_flags(fd: libc::c_int, name: &str) -> std::io::Result<libc::c_short> {
    let mut r = ifreq(name);
    // SAFETY: SIOCGIFFLAGS with a valid ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut r) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS fills the flags member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_flags })
}

fn set_if_flags(fd: libc::c_int, name: &str, flags: libc::c_short) -> std::io::Result<()> {
    let mut r = ifreq(name);
    r.ifr_ifru.ifru_flags = flags;
    // SAFETY: SIOCSIFFLAGS with a valid ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &r) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Promisc {
    fn drop(&mut self) {
        match if_flags(self.fd, &self.name) {
            Ok(f) => {
                if let Err(e) = set_if_flags(
                    self.fd,
                    &self.name,
                    f & !(libc::IFF_PROMISC as libc::c_short),
                ) {
                    tracing::warn!("could not restore promiscuous mode of {}: {e}", self.name);
                } else {
                    tracing::info!("Promiscuous mode of {} turned off again", self.name);
                }
            }
            Err(e) => tracing::warn!("could not restore promiscuous mode of {}: {e}", self.name),
        }
        // SAFETY: our own dup'ed descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

pub struct AfPacketSource {
    device: String,
    ring: Arc<Ring>,
    next: usize,
    last_batch_at: Instant,
    blocks: u64,
    /// The loopback device's index, and its outgoing copies skipped.
    lo_index: i32,
    loopback_echoes: u64,
    metrics_interval: std::time::Duration,
    stats_at: Instant,
    /// Its counters, shown at `/inputs/` and in the summary: frames read (`packets`) and the
    /// kernel's, summed (each `PACKET_STATISTICS` read resets them).
    monitor: Arc<super::metrics::InputStats>,
    _promisc: Option<Promisc>,
}

fn os_err(what: &str, device: &str) -> SnifferError {
    SnifferError::Open(format!(
        "af_packet on device {device}: {what}: {}",
        std::io::Error::last_os_error()
    ))
}

fn setopt<T>(fd: libc::c_int, level: libc::c_int, opt: libc::c_int, v: &T) -> libc::c_int {
    // SAFETY: v points to a T of the given size, as the option expects.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

impl AfPacketSource {
    pub fn open(o: &AfPacketOptions) -> Result<AfPacketSource, SnifferError> {
        let dev = o.device.as_str();
        let ifindex = if dev == "any" {
            0
        } else {
            let c = std::ffi::CString::new(dev)
                .map_err(|_| SnifferError::Open(format!("invalid device name {dev:?}")))?;
            // SAFETY: a valid C string.
            let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if i == 0 {
                return Err(os_err("no such device", dev));
            }
            i as i32
        };
        // Protocol 0: nothing is queued before the filter is attached and the socket is bound.
        // SAFETY: plain socket call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET)", dev));
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        if setopt(s, libc::SOL_PACKET, libc::PACKET_VERSION, &version) < 0 {
            return Err(os_err("PACKET_VERSION TPACKET_V3", dev));
        }
        let reserve = VLAN_TAG_LEN as libc::c_uint;
        if setopt(s, libc::SOL_PACKET, libc::PACKET_RESERVE, &reserve) < 0 {
            return Err(os_err("PACKET_RESERVE", dev));
        }
        if let Some(f) = o.filter.as_deref().filter(|f| !f.is_empty()) {
            let prog = super::bpf::compile(f, 1).map_err(SnifferError::Open)?;
            let insns = prog.get_instructions();
            let fprog = libc::sock_fprog {
                len: insns.len() as u16,
                filter: insns.as_ptr() as *mut libc::sock_filter,
            };
            if setopt(s, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog) < 0 {
                return Err(os_err("SO_ATTACH_FILTER", dev));
            }
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let snap = o.snaplen.clamp(64, 262_144) as usize;
        let frame = (snap + libc::TPACKET3_HDRLEN + VLAN_TAG_LEN + 64).div_ceil(page) * page;
        let block_size = BLOCK_SIZE.max(frame).div_ceil(page) * page;
        let mb = if o.buffer_size_mb > 0 {
            o.buffer_size_mb as usize
        } else {
            24
        };
        let blocks = (mb * 1024 * 1024 / block_size).max(2);
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: frame as u32,
            tp_frame_nr: (block_size / frame * blocks) as u32,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if setopt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req) < 0 {
            return Err(os_err("PACKET_RX_RING", dev));
        }
        let size = block_size * blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                s,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_err("mmap of the ring", dev));
        }
        let ring = Arc::new(Ring {
            fd,
            base: base as *mut u8,
            size,
            block_size,
            blocks,
            held: (0..blocks).map(|_| AtomicBool::new(false)).collect(),
        });
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                s,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(os_err("bind", dev));
        }
        if let Some(group) = o.fanout_group {
            let arg: u32 =
                group as u32 | ((libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG) << 16);
            if setopt(s, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg) < 0 {
                return Err(os_err(&format!("joining fanout group {group}"), dev));
            }
        }
        let promisc = if o.auto_promisc_mode && dev != "any" {
            // SAFETY: dup of our socket, owned by the guard.
            let ctl = unsafe { libc::dup(s) };
            let flags = if_flags(ctl, dev).map_err(|e| {
                SnifferError::Open(format!("af_packet on device {dev}: SIOCGIFFLAGS: {e}"))
            })?;
            if flags & libc::IFF_PROMISC as libc::c_short == 0 {
                set_if_flags(ctl, dev, flags | libc::IFF_PROMISC as libc::c_short).map_err(
                    |e| {
                        SnifferError::Open(format!(
                            "af_packet on device {dev}: promiscuous mode: {e}"
                        ))
                    },
                )?;
                tracing::info!("Promiscuous mode of {dev} turned on (auto_promisc_mode)");
                Some(Promisc {
                    fd: ctl,
                    name: dev.to_string(),
                })
            } else {
                // SAFETY: ours, closed once.
                unsafe { libc::close(ctl) };
                None
            }
        } else {
            None
        };
        tracing::info!(
            "Capturing on device {dev} with af_packet (TPACKET_V3 ring: {blocks} blocks of {} KiB, block timeout {BLOCK_TIMEOUT_MS} ms){}{}",
            block_size / 1024,
            match &o.fanout_group {
                Some(g) => format!(", fanout group {g}"),
                None => String::new(),
            },
            match &o.filter {
                Some(f) if !f.is_empty() => format!(", BPF filter: {f}"),
                _ => String::new(),
            }
        );
        Ok(AfPacketSource {
            device: dev.to_string(),
            ring,
            next: 0,
            last_batch_at: Instant::now(),
            blocks: 0,
            // SAFETY: a valid C string.
            lo_index: unsafe { libc::if_nametoindex(c"lo".as_ptr()) } as i32,
            loopback_echoes: 0,
            metrics_interval: o.metrics_interval.max(std::time::Duration::from_secs(1)),
            stats_at: Instant::now(),
            monitor: super::metrics::InputStats::register("af_packet", dev),
            _promisc: promisc,
        })
    }

    fn wait_readable(&self, timeout: std::time::Duration) {
        self.monitor.polls.fetch_add(1, Ordering::Relaxed);
        let mut pfd = libc::pollfd {
            fd: self.ring.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd; EINTR (a signal) just returns early.
        unsafe { libc::poll(&mut pfd, 1, timeout.as_millis().max(1) as i32) };
    }

    /// Reads the frames of a block the kernel has handed over.
    fn read_block(&mut self, index: usize) -> PacketBatch {
        let ring = self.ring.clone();
        let base = ring.block(index);
        let bs = ring.block_size;
        // SAFETY: the block is ours (TP_STATUS_USER seen with acquire); the descriptor is at
        // its start.
        let (num, first) = unsafe {
            let bd = &*(base as *const libc::tpacket_block_desc);
            (bd.hdr.bh1.num_pkts, bd.hdr.bh1.offset_to_first_pkt)
        };
        let mut frames = Vec::with_capacity(num as usize);
        let mut descs = Vec::with_capacity(num as usize);
        let mut off = first as usize;
        for _ in 0..num {
            if off + std::mem::size_of::<libc::tpacket3_hdr>() > bs {
                break;
            }
            // SAFETY: the header lies inside the block (checked above).
            let h = unsafe { &mut *(base.add(off) as *mut libc::tpacket3_hdr) };
            let mut start = off + h.tp_mac as usize;
            let mut len = h.tp_snaplen as usize;
            let mut orig = h.tp_len;
            // SAFETY: the kernel writes a sockaddr_ll after the aligned frame header.
            let sll = unsafe {
                &*(base.add(off + std::mem::size_of::<libc::tpacket3_hdr>().div_ceil(16) * 16)
                    as *const libc::sockaddr_ll)
            };
            // Loopback frames are seen twice, going out and coming in; libpcap keeps one.
            let echo = sll.sll_pkttype == libc::PACKET_OUTGOING && sll.sll_ifindex == self.lo_index;
            if echo {
                self.loopback_echoes += 1;
            } else if start + len <= bs {
                let vlan = h.tp_status & libc::TP_STATUS_VLAN_VALID != 0
                    && (h.hv1.tp_vlan_tci != 0
                        || h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0);
                if vlan && len >= 12 && h.tp_mac as usize >= VLAN_TAG_LEN {
                    let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        h.hv1.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    let tci = h.hv1.tp_vlan_tci as u16;
                    // SAFETY: the 4 reserved bytes in front of the frame are inside the block;
                    // the block is ours.
                    unsafe {
                        let p = base.add(start);
                        std::ptr::copy(p, p.sub(VLAN_TAG_LEN), 12);
                        let tag = p.sub(VLAN_TAG_LEN).add(12);
                        std::ptr::copy_nonoverlapping(tpid.to_be_bytes().as_ptr(), tag, 2);
                        std::ptr::copy_nonoverlapping(tci.to_be_bytes().as_ptr(), tag.add(2), 2);
                    }
                    start -= VLAN_TAG_LEN;
                    len += VLAN_TAG_LEN;
                    orig += VLAN_TAG_LEN as u32;
                }
                descs.push(FrameDesc {
                    ts: Ts(h.tp_sec as i64 * 1_000_000_000 + h.tp_nsec as i64),
                    offset: frames.len() as u32,
                    len: len as u32,
                    orig_len: orig,
                    link: LinkType::Ethernet,
                });
                // SAFETY: start + len ≤ the block size (checked above), so the range is inside
                // the block.
                frames.push((unsafe { base.add(start) } as *const u8, len as u32));
            }
            if h.tp_next_offset == 0 {
                break;
            }
            off += h.tp_next_offset as usize;
        }
        self.monitor
            .packets
            .fetch_add(descs.len() as u64, Ordering::Relaxed);
        self.blocks += 1;
        PacketBatch {
            // SAFETY: each frame is inside the block, which belongs to user space (and is left
            // unchanged) until the Block is dropped.
            buf: BatchBuf::External(unsafe { ExternalFrames::new(frames, Block { ring, index }) }),
            frames: descs,
            new_pass: false,
            clock: Ts::ZERO,
        }
    }

    fn read_stats(&mut self) {
        // SAFETY: tpacket_stats_v3 is plain old data.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: st has len bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.ring.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if rc == 0 {
            let m = &self.monitor;
            m.kernel_packets
                .fetch_add(st.tp_packets as u64, Ordering::Relaxed);
            m.kernel_drops.fetch_add(st.tp_drops as u64, Ordering::Relaxed);
            m.queue_freezes
                .fetch_add(st.tp_freeze_q_cnt as u64, Ordering::Relaxed);
        }
    }
}

impl PacketSource for AfPacketSource {
    fn link_type(&self) -> LinkType {
        LinkType::Ethernet
    }

    fn next_batch(&mut self) -> Result<Option<PacketBatch>, SnifferError> {
        if self.stats_at.elapsed() >= self.metrics_interval {
            self.stats_at = Instant::now();
            self.read_stats();
        }
        loop {
            let i = self.next;
            if self.ring.held[i].load(Ordering::Acquire) {
                // Round the ring onto a block the workers still hold: the kernel cannot fill
                // it either (it counts drops meanwhile). Wait for it to come back.
                std::thread::sleep(std::time::Duration::from_micros(200));
                continue;
            }
            if self.ring.status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0 {
                self.next = (i + 1) % self.ring.blocks;
                self.ring.held[i].store(true, Ordering::Relaxed);
                self.last_batch_at = Instant::now();
                let b = self.read_block(i);
                if b.frames.is_empty() {
                    continue; // dropping b gives the block back
                }
                return Ok(Some(b));
            }
            let idle = self.last_batch_at.elapsed();
            if idle >= super::pcap::IDLE_TICK {
                self.last_batch_at = Instant::now();
                return Ok(Some(PacketBatch {
                    buf: BatchBuf::Owned(Arc::new(Vec::new())),
                    frames: Vec::new(),
                    new_pass: false,
                    clock: Ts::now(),
                }));
            }
            self.wait_readable(super::pcap::IDLE_TICK - idle);
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn finish(&mut self) {
        self.read_stats();
    }

    fn kernel_drops(&self) -> u64 {
        self.monitor.kernel_drops.load(Ordering::Relaxed)
    }

    fn summary(&self) -> String {
        let m = &self.monitor;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "af_packet device {}: {} frames received in {} blocks, PACKET_STATISTICS: {} packets, {} dropped by the kernel, {} ring freezes, {} outgoing loopback copies skipped",
            self.device, g(&m.packets), self.blocks, g(&m.kernel_packets), g(&m.kernel_drops), g(&m.queue_freezes), self.loopback_echoes
        )
    }
}
