//! Packet sources.
//!
//! The boundary between capture and analysis is the [`PacketBatch`]: one buffer (a chunk of a
//! capture file, or a burst of DPDK mbufs) and the frames in it, so frames are handed to the
//! workers without being copied one by one, and memory stays bounded by the number of batches in
//! flight. Sources in this build: pcap and pcapng files (`-I`), live interfaces through libpcap
//! (`type: pcap`, [`pcap`]) and a TPACKET_V3 ring (`type: af_packet`, [`afpacket`]: frames are
//! handed out in place), DPDK ports (`type: dpdk`, with the `dpdk` cargo feature), and several
//! live interfaces at once ([`multi`]). [`bpf`] builds and checks live capture filters.
//!
//! Backing storage ([`BatchBuf`]): `Owned` is one byte buffer and a frame's `offset` is a byte
//! offset in it; `External` is storage the source owns (DPDK: the mbufs of a burst, freed when the
//! last clone of the batch is dropped, i.e. after every worker is done with it), and a frame's
//! `offset` is then the frame's index in that storage. [`PacketBatch::frame`] works for both.

#[cfg(target_os = "linux")]
pub mod afpacket;
pub mod bpf;
pub mod devices;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod dump;
pub mod file;
pub mod metrics;
pub mod multi;
pub mod pcap;
pub mod route;
pub mod step;

use crate::common::Ts;
use crate::decoder::LinkType;
use std::sync::Arc;

/// One captured frame, borrowed from its batch.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts: Ts,
    pub data: &'a [u8],
    /// Length on the wire (≥ `data.len()` when the snaplen cut the frame).
    pub orig_len: u32,
    /// pcapng files may mix link types per interface; pcap files have one.
    pub link: LinkType,
}

/// Where a frame is in its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDesc {
    pub ts: Ts,
    pub offset: u32,
    pub len: u32,
    pub orig_len: u32,
    pub link: LinkType,
}

/// Frames in storage a source keeps ownership of (DPDK mbufs, an af_packet ring block), addressed
/// by index: where each frame's bytes are, and the `owner` that keeps them valid and gives the
/// storage back when dropped (with the last clone of the batch). A frame is read through the
/// table, with no call through the owner, which is only there for its drop.
pub struct ExternalFrames<O: ?Sized + Send + Sync = dyn Send + Sync> {
    frames: Vec<(*const u8, u32)>,
    _owner: O,
}

// SAFETY: the pointers are only read, and point into memory that `owner` (Send + Sync) keeps
// valid and unchanged while this value lives (the contract of `ExternalFrames::new`).
unsafe impl<O: ?Sized + Send + Sync> Send for ExternalFrames<O> {}
// SAFETY: as for Send; nothing is written through a shared reference.
unsafe impl<O: ?Sized + Send + Sync> Sync for ExternalFrames<O> {}

impl<O: Send + Sync + 'static> ExternalFrames<O> {
    /// The frames `frames` (pointer and length of each), kept valid by `owner`.
    ///
    /// # Safety
    /// Each `(ptr, len)` must point to `len` bytes that stay readable and unchanged until
    /// `owner` is dropped.
    pub unsafe fn new(frames: Vec<(*const u8, u32)>, owner: O) -> Arc<ExternalFrames> {
        Arc::new(ExternalFrames {
            frames,
            _owner: owner,
        })
    }
}

impl<O: ?Sized + Send + Sync> ExternalFrames<O> {
    /// The bytes of frame `index` (as given in [`FrameDesc::offset`]).
    #[inline]
    pub fn frame_data(&self, index: u32) -> &[u8] {
        let (p, len) = self.frames[index as usize];
        // SAFETY: p points to len bytes that the owner keeps alive as long as self (new's
        // contract).
        unsafe { std::slice::from_raw_parts(p, len as usize) }
    }
}

/// What the frames of a batch point into. Cloning shares the storage.
#[derive(Clone)]
pub enum BatchBuf {
    /// One buffer; `FrameDesc::offset` is a byte offset.
    Owned(Arc<Vec<u8>>),
    /// Source-owned storage; `FrameDesc::offset` is an index; released when the last clone drops.
    External(Arc<ExternalFrames>),
}

impl BatchBuf {
    /// The bytes of a frame of this buffer.
    #[inline]
    pub fn data(&self, d: &FrameDesc) -> &[u8] {
        match self {
            BatchBuf::Owned(v) => {
                let start = d.offset as usize;
                &v[start..start + d.len as usize]
            }
            BatchBuf::External(x) => &x.frame_data(d.offset)[..d.len as usize],
        }
    }
}

impl From<Arc<Vec<u8>>> for BatchBuf {
    fn from(v: Arc<Vec<u8>>) -> BatchBuf {
        BatchBuf::Owned(v)
    }
}

impl std::fmt::Debug for BatchBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchBuf::Owned(v) => write!(f, "Owned({} bytes)", v.len()),
            BatchBuf::External(_) => write!(f, "External"),
        }
    }
}

impl FrameDesc {
    /// The frame, given the bytes this descriptor points to.
    pub fn with_data<'a>(&self, data: &'a [u8]) -> Frame<'a> {
        Frame {
            ts: self.ts,
            data,
            orig_len: self.orig_len,
            link: self.link,
        }
    }
}

/// Frames that share one buffer.
#[derive(Debug, Clone)]
pub struct PacketBatch {
    pub buf: BatchBuf,
    pub frames: Vec<FrameDesc>,
    /// First batch of a new pass over a looped file (`-l`): connections and transactions of the
    /// previous pass end before it, so each pass is analysed like a fresh replay.
    pub new_pass: bool,
    /// The source's clock when the batch was made, for live sources that hand out empty batches
    /// while idle so packet time (timeouts) moves on; `Ts::ZERO` = only the frames' timestamps.
    pub clock: Ts,
}

impl PacketBatch {
    pub fn frame(&self, d: &FrameDesc) -> Frame<'_> {
        d.with_data(self.buf.data(d))
    }
}

/// Errors that stop a source.
#[derive(Debug, thiserror::Error)]
pub enum SnifferError {
    #[error("{0}")]
    Open(String),
    #[error("{0}")]
    Read(String),
}

/// A source of frames.
pub trait PacketSource: Send {
    /// The link type of the first interface (pcap: the file's).
    fn link_type(&self) -> LinkType;
    /// The next batch; `Ok(None)` at the end of the capture.
    fn next_batch(&mut self) -> Result<Option<PacketBatch>, SnifferError>;
    /// Counters to log at the end (e.g. skipped unsupported link types, truncated file).
    fn summary(&self) -> String {
        String::new()
    }
    /// The capture is over: read the final counters (kernel statistics) before `summary`.
    fn finish(&mut self) {}
    /// Packets the kernel or the interface dropped before this source saw them (live capture).
    fn kernel_drops(&self) -> u64 {
        0
    }
    /// A live source: when the output is slow, events are dropped rather than the capture held
    /// back (Packetbeat's `DropIfFull`).
    fn is_live(&self) -> bool {
        false
    }
    /// One source per packet worker, each delivering whole connections (both directions) to
    /// its worker, when this source can split so (a DPDK port whose RX queues hash flows
    /// symmetrically); they replace this source, which is not read afterwards. `None`: read
    /// this source and dispatch in software.
    fn split_per_worker(&mut self, _workers: usize) -> Option<Vec<Box<dyn PacketSource>>> {
        None
    }
    /// When this source's reading loop feeds one packet worker, the worker runs on the
    /// loop's own thread (run to completion) rather than on a thread of its own.
    fn runs_worker_inline(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(offset: u32, len: u32) -> FrameDesc {
        FrameDesc {
            ts: Ts::ZERO,
            offset,
            len,
            orig_len: len,
            link: LinkType::Ethernet,
        }
    }

    #[test]
    fn frames_of_owned_and_external_storage() {
        let owned = PacketBatch {
            buf: BatchBuf::Owned(Arc::new(b"abcdef".to_vec())),
            frames: vec![desc(2, 3)],
            new_pass: false,
            clock: Ts::ZERO,
        };
        assert_eq!(owned.frame(&owned.frames[0]).data, b"cde");
        let two: Vec<Vec<u8>> = vec![b"xy".to_vec(), b"hello".to_vec()];
        let table = two.iter().map(|v| (v.as_ptr(), v.len() as u32)).collect();
        // SAFETY: the table points into the vectors' heap buffers, which `two` (the owner)
        // keeps where they are.
        let ext = PacketBatch {
            buf: BatchBuf::External(unsafe { ExternalFrames::new(table, two) }),
            frames: vec![desc(1, 5), desc(0, 2)],
            new_pass: false,
            clock: Ts::ZERO,
        };
        assert_eq!(ext.frame(&ext.frames[0]).data, b"hello");
        assert_eq!(ext.clone().frame(&ext.frames[1]).data, b"xy");
    }
}
