//! The bytes on disk: segment files of checksummed frames, and the state file.
//!
//! Segment `<id>.seg`: an 8-byte header (`PBDQ`, format version as u32 LE), then frames:
//!
//! ```text
//! [u32 LE payload length][u32 LE CRC-32C of (length bytes ++ payload)][payload]
//! payload = [u64 LE seq][i64 LE @timestamp ns][u32 LE meta length][meta JSON][encoded event]
//! ```
//!
//! The checksum covers the length too, so a flipped length bit is caught like a flipped payload
//! bit. `seq` numbers every event the queue ever stored (contiguous across segments and
//! restarts): after a damaged frame the reader finds the next good one by scanning for a frame
//! whose checksum holds and whose `seq` is plausible, and the gap in `seq` says exactly how many
//! events were lost.
//!
//! `state.dat`: `PBDQSTAT`, the segment id, byte offset and `seq` of the first unacknowledged
//! frame, and a CRC-32C of those 32 bytes. It is replaced atomically (temp file, fsync, rename).

use crate::common::Ts;
use crate::publish::event::Map;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const SEGMENT_MAGIC: &[u8; 4] = b"PBDQ";
pub const SEGMENT_VERSION: u32 = 1;
/// Bytes before the first frame of a segment.
pub const SEGMENT_HEADER: u64 = 8;
/// Length and checksum before each payload.
pub const FRAME_HEADER: usize = 8;
/// seq, timestamp and meta length at the start of each payload.
const PAYLOAD_FIXED: usize = 20;
/// The smallest frame on disk, for bounding how many frames a damaged region can have held.
pub const MIN_FRAME: u64 = (FRAME_HEADER + PAYLOAD_FIXED) as u64;
/// A length field above this is damage, not a frame (events are far smaller); it keeps a
/// corrupt length from asking for a huge read.
const MAX_PAYLOAD: u32 = 1 << 30;
/// How much the reader asks the kernel for at a time.
const READ_CHUNK: usize = 256 * 1024;

const STATE_MAGIC: &[u8; 8] = b"PBDQSTAT";
const STATE_LEN: usize = 8 + 24 + 4;

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.seg"))
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.dat")
}

/// The segment header.
pub fn segment_header() -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[..4].copy_from_slice(SEGMENT_MAGIC);
    h[4..].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h
}

/// Appends one frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, seq: u64, ts: Ts, meta_json: &[u8], encoded: &[u8]) {
    let len = (PAYLOAD_FIXED + meta_json.len() + encoded.len()) as u32;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.0.to_le_bytes());
    out.extend_from_slice(&(meta_json.len() as u32).to_le_bytes());
    out.extend_from_slice(meta_json);
    out.extend_from_slice(encoded);
    let crc = frame_crc(&out[start..start + 4], &out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(len: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len), payload)
}

/// A frame read back.
#[derive(Debug)]
pub struct Record {
    pub seq: u64,
    pub timestamp: Ts,
    pub meta: Map,
    pub encoded: Vec<u8>,
}

/// What is at an offset of a segment.
#[derive(Debug)]
pub enum At {
    /// A good frame, and the offset after it.
    Frame(Record, u64),
    /// Fewer bytes than a frame header or than its length says (a torn write).
    Short,
    /// A frame whose checksum (or layout) is wrong.
    Corrupt,
}

/// Reads frames of one segment, through a buffer of its own (positioned reads, so the writer
/// appending to the same file is never disturbed).
pub struct FrameReader {
    file: File,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    buf_off: u64,
}

impl FrameReader {
    pub fn open(path: &Path) -> io::Result<FrameReader> {
        Ok(FrameReader {
            file: File::open(path)?,
            buf: Vec::new(),
            buf_off: 0,
        })
    }

    /// Whether the segment starts with this format's header.
    pub fn header_ok(&mut self, end: u64) -> io::Result<bool> {
        Ok(self.bytes(0, SEGMENT_HEADER as usize, end)? == Some(&segment_header()[..]))
    }

    /// `n` bytes at `off`, `None` when they would pass `end`.
    fn bytes(&mut self, off: u64, n: usize, end: u64) -> io::Result<Option<&[u8]>> {
        if off + n as u64 > end {
            return Ok(None);
        }
        let have = off >= self.buf_off && off + n as u64 <= self.buf_off + self.buf.len() as u64;
        if !have {
            let want = n.max(READ_CHUNK).min((end - off) as usize);
            self.buf.resize(want, 0);
            let mut got = 0;
            while got < want {
                match self.file.read_at(&mut self.buf[got..], off + got as u64)? {
                    0 => break,
                    k => got += k,
                }
            }
            self.buf.truncate(got);
            self.buf_off = off;
            if got < n {
                return Ok(None);
            }
        }
        let s = (off - self.buf_off) as usize;
        Ok(Some(&self.buf[s..s + n]))
    }

    /// The frame at `off`, reading no further than `end`.
    pub fn frame_at(&mut self, off: u64, end: u64) -> io::Result<At> {
        let Some(h) = self.bytes(off, FRAME_HEADER, end)? else {
            return Ok(At::Short);
        };
        let len = u32::from_le_bytes(h[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(h[4..8].try_into().unwrap());
        let len_bytes = len.to_le_bytes();
        if !(PAYLOAD_FIXED as u32..=MAX_PAYLOAD).contains(&len) {
            return Ok(At::Corrupt);
        }
        let Some(p) = self.bytes(off + FRAME_HEADER as u64, len as usize, end)? else {
            return Ok(At::Short);
        };
        if frame_crc(&len_bytes, p) != crc {
            return Ok(At::Corrupt);
        }
        let next = off + FRAME_HEADER as u64 + len as u64;
        Ok(decode_payload(p).map_or(At::Corrupt, |r| At::Frame(r, next)))
    }

    /// The offset of the next good frame after damage at `from`, before `end`: the first offset
    /// holding a frame whose checksum holds and whose `seq` is within `seqs` (the events that can
    /// have been there). Candidates are filtered on length and `seq` before the checksum is
    /// computed, so a scan over garbage stays linear.
    pub fn resync(
        &mut self,
        from: u64,
        end: u64,
        seqs: Option<std::ops::RangeInclusive<u64>>,
    ) -> io::Result<Option<u64>> {
        let mut off = from;
        while off + MIN_FRAME <= end {
            let head = self.bytes(off, FRAME_HEADER + 8, end)?.map(|h| {
                (
                    u32::from_le_bytes(h[..4].try_into().unwrap()),
                    u64::from_le_bytes(h[8..16].try_into().unwrap()),
                )
            });
            if let Some((len, seq)) = head {
                let fits = (PAYLOAD_FIXED as u32..=MAX_PAYLOAD).contains(&len)
                    && off + FRAME_HEADER as u64 + len as u64 <= end;
                let plausible = seqs.as_ref().is_none_or(|r| r.contains(&seq));
                if fits && plausible {
                    if let At::Frame(..) = self.frame_at(off, end)? {
                        return Ok(Some(off));
                    }
                }
            }
            off += 1;
        }
        Ok(None)
    }
}

fn decode_payload(p: &[u8]) -> Option<Record> {
    let seq = u64::from_le_bytes(p[..8].try_into().ok()?);
    let ts = i64::from_le_bytes(p[8..16].try_into().ok()?);
    let meta_len = u32::from_le_bytes(p[16..20].try_into().ok()?) as usize;
    let rest = &p[PAYLOAD_FIXED..];
    if meta_len > rest.len() {
        return None;
    }
    let meta = match meta_len {
        0 => Map::new(),
        _ => serde_json::from_slice(&rest[..meta_len]).ok()?,
    };
    Some(Record {
        seq,
        timestamp: Ts(ts),
        meta,
        encoded: rest[meta_len..].to_vec(),
    })
}

/// The first unacknowledged frame: where reading starts after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub segment: u64,
    pub offset: u64,
    pub seq: u64,
}

impl State {
    fn encode(&self) -> [u8; STATE_LEN] {
        let mut b = [0u8; STATE_LEN];
        b[..8].copy_from_slice(STATE_MAGIC);
        b[8..16].copy_from_slice(&self.segment.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.seq.to_le_bytes());
        let crc = crc32c::crc32c(&b[..32]);
        b[32..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<State> {
        if b.len() != STATE_LEN || &b[..8] != STATE_MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(b[32..].try_into().ok()?);
        if crc32c::crc32c(&b[..32]) != crc {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        Some(State {
            segment: u(8),
            offset: u(16),
            seq: u(24),
        })
    }

    /// Reads `state.dat`: `Ok(None)` when there is none, `Err` with what is wrong when it is
    /// damaged (the caller then starts at the oldest segment: more duplicates, nothing lost).
    pub fn load(dir: &Path) -> Result<Option<State>, String> {
        match std::fs::read(state_path(dir)) {
            Ok(b) => State::decode(&b)
                .map(Some)
                .ok_or_else(|| format!("{} is damaged", state_path(dir).display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", state_path(dir).display())),
        }
    }

    /// Replaces `state.dat` atomically: a crash leaves the old state or the new one, never a mix.
    /// The directory is not fsynced: losing the rename in a power cut only brings back the
    /// previous state, i.e. redelivers events, which at-least-once allows.
    pub fn store(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join("state.dat.new");
        let mut f = File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_data()?;
        std::fs::rename(&tmp, state_path(dir))
    }
}

/// fsyncs a directory, so a file created in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(frames: &[(u64, &str)]) -> Vec<u8> {
        let mut b = segment_header().to_vec();
        for (seq, doc) in frames {
            encode_frame(&mut b, *seq, Ts(*seq as i64), br#"{"k":1}"#, doc.as_bytes());
        }
        b
    }

    fn reader(bytes: &[u8]) -> (tempfile::TempDir, FrameReader) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("1.seg");
        std::fs::write(&p, bytes).unwrap();
        let r = FrameReader::open(&p).unwrap();
        (d, r)
    }

    #[test]
    fn frames_round_trip() {
        let b = segment(&[(7, "{\"a\":1}"), (8, "{}")]);
        let (_d, mut r) = reader(&b);
        let end = b.len() as u64;
        assert!(r.header_ok(end).unwrap());
        let At::Frame(rec, next) = r.frame_at(SEGMENT_HEADER, end).unwrap() else {
            panic!()
        };
        assert_eq!(
            (rec.seq, rec.timestamp, &rec.encoded[..]),
            (7, Ts(7), &b"{\"a\":1}"[..])
        );
        assert_eq!(rec.meta["k"], 1);
        let At::Frame(rec, next) = r.frame_at(next, end).unwrap() else {
            panic!()
        };
        assert_eq!(rec.seq, 8);
        assert_eq!(next, end);
        assert!(matches!(r.frame_at(next, end).unwrap(), At::Short));
    }

    #[test]
    fn damage_is_detected_and_skipped() {
        let b = segment(&[(1, "{\"a\":1}"), (2, "{\"b\":2}"), (3, "{}")]);
        let end = b.len() as u64;
        // Every single-byte flip in the second frame (length, checksum or payload) is caught,
        // and the scan lands on the third frame.
        let second = SEGMENT_HEADER + (FRAME_HEADER + PAYLOAD_FIXED + 7 + 7) as u64;
        let third = second + (FRAME_HEADER + PAYLOAD_FIXED + 7 + 7) as u64;
        for i in second..third {
            let mut c = b.clone();
            c[i as usize] ^= 0x40;
            let (_d, mut r) = reader(&c);
            assert!(
                !matches!(r.frame_at(second, end).unwrap(), At::Frame(..)),
                "{i}"
            );
            assert_eq!(r.resync(second + 1, end, Some(3..=3)).unwrap(), Some(third));
        }
        // A torn last frame.
        let (_d, mut r) = reader(&b[..b.len() - 3]);
        assert!(matches!(r.frame_at(third, end - 3).unwrap(), At::Short));
        assert_eq!(r.resync(third + 1, end - 3, None).unwrap(), None);
    }

    #[test]
    fn state_round_trips_and_rejects_damage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(State::load(d.path()), Ok(None));
        let s = State {
            segment: 3,
            offset: 99,
            seq: 1234,
        };
        s.store(d.path()).unwrap();
        assert_eq!(State::load(d.path()), Ok(Some(s)));
        let mut b = std::fs::read(state_path(d.path())).unwrap();
        b[20] ^= 1;
        std::fs::write(state_path(d.path()), b).unwrap();
        assert!(State::load(d.path()).is_err());
    }
}
