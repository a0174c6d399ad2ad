//! `queue.disk`: libbeat's disk queue, behind the beater's [`EventQueue`].
//!
//! Events survive an output outage (the queue holds up to `max_size` bytes on disk instead of a
//! few batches in memory) and a crash or restart: what was written and not acknowledged by the
//! output is delivered again at the next start. The contract is at-least-once: the output thread
//! [`ack`](EventQueue::ack)s a batch after `publish` returned for it (every event resolved), so
//! a crash redelivers at most what was in flight, never loses what was acknowledged as stored.
//!
//! # On disk
//!
//! A directory (`queue.disk.path`) of segment files `<id>.seg` and `state.dat` (layout in
//! [`frame`]). Each pushed batch is appended to the newest segment as one frame per event:
//! `[u32 length][u32 CRC-32C][payload]`, the payload holding a sequence number, `@timestamp`,
//! the `@metadata` map and the event's encoded JSON. A segment is closed at `segment_size` and a
//! new one started; a segment is deleted once every frame in it is acknowledged. `state.dat`
//! holds the position (segment, offset, sequence number) of the first unacknowledged frame and
//! is replaced atomically at every acknowledgement.
//!
//! Why this format:
//! - Crash consistency without a journal: segments are append-only and a frame is trusted only
//!   if its checksum holds, so a write torn by a crash or power cut is recognised at the next
//!   open and skipped (counted and logged, never fatal). A damaged frame in the middle (a
//!   flipped bit) costs that frame only: the reader scans forward for the next frame whose
//!   checksum holds and whose sequence number fits, and the gap in sequence numbers is the exact
//!   count of events lost. A damaged or missing `state.dat` makes the queue start at its oldest
//!   segment: more duplicates, nothing lost. New writes after a restart always go to a new
//!   segment, never after a damaged tail.
//! - fsync policy: every pushed batch (up to 256 events from a packet worker) is written with
//!   one `write` and made durable with one `fdatasync` before `push` returns; a new segment is
//!   fsynced with its directory. A SIGKILL loses nothing pushed (the kernel has it), a power cut
//!   loses at most the batch being written. `state.dat` is fsynced before its rename; the
//!   directory after the rename is not (losing the rename only redelivers).
//! - Throughput: one `write` + `fdatasync` per batch, not per event; reading goes through the
//!   page cache in 256 KiB positioned reads on the output thread, which decodes frames without
//!   parsing the event JSON (only the small `@metadata` map). Events arrive encoded by the
//!   packet workers when the output has a codec, so the queue only copies bytes.
//!
//! # What is stored, what comes back
//!
//! The timestamp, `@metadata` and the encoded JSON. Events that arrive unencoded (outputs that
//! encode themselves: logstash, redis) are encoded with [`crate::outputs::StoredCodec`], the
//! settings those outputs would use (`index` as `@metadata.beat`, logstash's `escape_html`).
//! Events read back are `Event { timestamp, meta, encoded: Some(json), fields: empty, pb: None,
//! builtin: None }`; every output writes `encoded` as it is when present (file, console, kafka,
//! elasticsearch, logstash, redis; discard writes nothing). With `pretty` in an output's codec,
//! the stored JSON is pretty as the output would write it.
//!
//! # Options (`queue.disk.*`, see [`config`])
//!
//! `path`, `max_size` (required, as in libbeat's code; 0 = unbounded), `segment_size`,
//! `read_ahead` (events per read when the output gives no batch size), `retry_interval` /
//! `max_retry_interval` (back-off of a failed write; libbeat 8.17 reads `max_retry_interval`
//! from `retry_interval` by mistake, this build reads the option named). `write_ahead` is
//! accepted and has no effect: writes are synchronous, nothing waits in memory to be written.
//! When `max_size` is reached, `push` waits (file capture: back-pressure) and `try_push` gives
//! the batch back as full (live capture: counted drops), as the memory queue does; space is
//! freed by acknowledgements, not by reads.

pub mod config;
pub mod frame;

use super::queue::{EventQueue, TryPushError};
use crate::outputs::StoredCodec;
use crate::publish::Event;
pub use config::{queue_choice, DiskQueueSettings, QueueChoice};
use frame::{At, FrameReader, State, MIN_FRAME, SEGMENT_HEADER};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What opening the queue found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Events written by a previous run and not acknowledged: delivered again.
    pub events_pending: u64,
    /// Damaged places skipped (torn writes, bad checksums, bad segment headers).
    pub damaged_regions: u64,
    /// Events lost in them: the gap in sequence numbers, or 1 for damage at the very end
    /// (where how many frames it held cannot be known).
    pub events_lost: u64,
    /// The newest data ended in a partial frame (a write cut short by a crash).
    pub torn_tail: bool,
}

/// A segment file and how far it can be read.
#[derive(Debug)]
struct Segment {
    id: u64,
    /// The offset after its last readable frame.
    end: u64,
    /// Its size on disk (for `max_size`).
    bytes: u64,
}

struct Inner {
    /// Oldest first; the last is the one being written.
    segments: VecDeque<Segment>,
    /// Events written and not yet read.
    unread: usize,
    /// For each event read and not yet acknowledged: the position after it.
    inflight: VecDeque<State>,
    /// Events taken off `unread` by a `pop` whose disk read is still going on.
    reading: usize,
    /// Bytes of the segments plus the batches being written.
    disk_bytes: u64,
    closed: bool,
    consumers_waiting: usize,
    producers_waiting: usize,
}

struct Writer {
    file: File,
    id: u64,
    size: u64,
    next_seq: u64,
}

struct Reader {
    segment: u64,
    file: Option<FrameReader>,
    offset: u64,
    /// The sequence number the next frame should have (None: unknown, no state file).
    expected: Option<u64>,
}

/// The disk queue.
pub struct DiskQueue {
    settings: DiskQueueSettings,
    codec: StoredCodec,
    inner: Mutex<Inner>,
    writer: Mutex<Writer>,
    reader: Mutex<Reader>,
    /// Serialises `state.dat` updates and segment deletion.
    acking: Mutex<()>,
    not_empty: Condvar,
    not_full: Condvar,
    recovery: Recovery,
}

/// A batch encoded and sized, waiting for its sequence numbers.
struct Prepared {
    frames: Vec<(crate::common::Ts, Vec<u8>, Vec<u8>)>,
    bytes: u64,
}

impl DiskQueue {
    /// Opens (or creates) the queue in `settings.path`, recovering what a previous run left.
    pub fn open(settings: DiskQueueSettings, codec: StoredCodec) -> io::Result<DiskQueue> {
        let dir = settings.path.clone();
        std::fs::create_dir_all(&dir)?;
        let state = State::load(&dir).unwrap_or_else(|e| {
            tracing::warn!(
                "disk queue: {e}; reading from the oldest segment (events may be delivered twice)"
            );
            None
        });
        let mut ids = segment_ids(&dir)?;
        if let Some(s) = state {
            // Fully acknowledged segments a crash left before deleting them.
            for id in ids.iter().filter(|id| **id < s.segment) {
                remove_segment(&dir, *id);
            }
            ids.retain(|id| *id >= s.segment);
        }
        let start = match state {
            Some(s) if ids.first() == Some(&s.segment) => Some(s),
            _ => None,
        };
        let (segments, recovery, next_seq) = scan(&dir, &ids, start, state.map(|s| s.seq))?;
        let write_id = ids
            .last()
            .copied()
            .max(state.map(|s| s.segment))
            .map_or(1, |i| i + 1);
        let file = create_segment(&dir, write_id)?;
        let mut segments = segments;
        segments.push_back(Segment {
            id: write_id,
            end: SEGMENT_HEADER,
            bytes: SEGMENT_HEADER,
        });
        let first = segments.front().map_or(write_id, |s| s.id);
        let reader = Reader {
            segment: first,
            file: None,
            offset: match start {
                Some(s) if s.segment == first => s.offset.max(SEGMENT_HEADER),
                _ => SEGMENT_HEADER,
            },
            expected: state.map(|s| s.seq),
        };
        if recovery.damaged_regions > 0 {
            tracing::warn!(
                "disk queue {}: skipped {} damaged place(s){}: {} event(s) lost",
                dir.display(),
                recovery.damaged_regions,
                if recovery.torn_tail {
                    " (a torn last write)"
                } else {
                    ""
                },
                recovery.events_lost
            );
        }
        if recovery.events_pending > 0 {
            tracing::info!(
                "disk queue {}: {} event(s) from a previous run to deliver",
                dir.display(),
                recovery.events_pending
            );
        }
        let disk_bytes = segments.iter().map(|s| s.bytes).sum();
        Ok(DiskQueue {
            inner: Mutex::new(Inner {
                segments,
                unread: recovery.events_pending as usize,
                inflight: VecDeque::new(),
                reading: 0,
                disk_bytes,
                closed: false,
                consumers_waiting: 0,
                producers_waiting: 0,
            }),
            writer: Mutex::new(Writer {
                file,
                id: write_id,
                size: SEGMENT_HEADER,
                next_seq,
            }),
            reader: Mutex::new(reader),
            acking: Mutex::new(()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            settings,
            codec,
            recovery,
        })
    }

    /// What opening the queue found.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    fn prepare(&self, batch: &[Event]) -> Prepared {
        let mut frames = Vec::with_capacity(batch.len());
        let mut bytes = 0;
        for e in batch {
            let (encoded, meta) = match &e.encoded {
                Some(b) => (b.clone(), None),
                None => {
                    let mut out = Vec::with_capacity(1024);
                    let meta = self.codec.encode_into(e, &mut out);
                    (out, meta)
                }
            };
            let meta = meta.as_ref().unwrap_or(&e.meta);
            let meta_json = match meta.is_empty() {
                true => Vec::new(),
                false => serde_json::to_vec(meta).expect("JSON values serialise"),
            };
            bytes += MIN_FRAME + (meta_json.len() + encoded.len()) as u64;
            frames.push((e.timestamp, meta_json, encoded));
        }
        Prepared { frames, bytes }
    }

    /// Takes room for `bytes`; waits for it when `block`, else gives up when full.
    fn reserve(&self, bytes: u64, block: bool) -> Result<(), TryPushError> {
        let mut st = self.inner.lock().unwrap();
        loop {
            if st.closed {
                return Err(TryPushError::Closed(Vec::new()));
            }
            let max = self.settings.max_size;
            // An empty queue always takes a batch, even one larger than max_size.
            let idle = st.unread == 0 && st.reading == 0 && st.inflight.is_empty();
            if max == 0 || st.disk_bytes + bytes <= max || idle {
                st.disk_bytes += bytes;
                return Ok(());
            }
            if !block {
                return Err(TryPushError::Full(Vec::new()));
            }
            st.producers_waiting += 1;
            st = self.not_full.wait(st).unwrap();
            st.producers_waiting -= 1;
        }
    }

    /// Writes a reserved batch, retrying failed writes with back-off until it succeeds or the
    /// queue is closed (then the reservation is given back and `false` returned).
    fn write(&self, p: Prepared) -> bool {
        let mut w = self.writer.lock().unwrap();
        let mut delay = self.settings.retry_interval;
        loop {
            match self.write_once(&mut w, &p) {
                Ok(()) => return true,
                Err(e) => {
                    tracing::error!(
                        "disk queue: writing to segment {} failed: {e}; retrying in {delay:?}",
                        w.id
                    );
                    if !self.sleep_unless_closed(delay) {
                        self.inner.lock().unwrap().disk_bytes -= p.bytes;
                        return false;
                    }
                    delay = (delay * 2).min(self.settings.max_retry_interval.max(delay));
                }
            }
        }
    }

    fn write_once(&self, w: &mut Writer, p: &Prepared) -> io::Result<()> {
        let dir = &self.settings.path;
        if w.size > SEGMENT_HEADER && w.size + p.bytes > self.settings.segment_size {
            let id = w.id + 1;
            let file = create_segment(dir, id)?;
            *w = Writer {
                file,
                id,
                size: SEGMENT_HEADER,
                next_seq: w.next_seq,
            };
            let mut st = self.inner.lock().unwrap();
            st.segments.push_back(Segment {
                id,
                end: SEGMENT_HEADER,
                bytes: SEGMENT_HEADER,
            });
            st.disk_bytes += SEGMENT_HEADER;
        }
        let mut buf = Vec::with_capacity(p.bytes as usize);
        for (i, (ts, meta, encoded)) in p.frames.iter().enumerate() {
            frame::encode_frame(&mut buf, w.next_seq + i as u64, *ts, meta, encoded);
        }
        let written = w.file.write_all(&buf).and_then(|_| w.file.sync_data());
        if let Err(e) = written {
            // A partial frame must not stay in front of the next attempt.
            let _ = w.file.set_len(w.size);
            return Err(e);
        }
        w.size += buf.len() as u64;
        w.next_seq += p.frames.len() as u64;
        let mut st = self.inner.lock().unwrap();
        let seg = st.segments.back_mut().expect("the segment being written");
        seg.end = w.size;
        seg.bytes = w.size;
        st.unread += p.frames.len();
        if st.consumers_waiting > 0 {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    /// Waits `d`; `false` when the queue was closed meanwhile.
    fn sleep_unless_closed(&self, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        let mut st = self.inner.lock().unwrap();
        while !st.closed {
            let now = std::time::Instant::now();
            if now >= deadline {
                return true;
            }
            st.producers_waiting += 1;
            st = self.not_full.wait_timeout(st, deadline - now).unwrap().0;
            st.producers_waiting -= 1;
        }
        false
    }

    /// Reads up to `want` frames for the output.
    fn read(&self, want: usize) -> io::Result<Vec<Event>> {
        let mut r = self.reader.lock().unwrap();
        let mut out = Vec::with_capacity(want);
        let mut ends = Vec::with_capacity(want);
        while out.len() < want {
            let (end, next) = {
                let st = self.inner.lock().unwrap();
                let mut it = st.segments.iter().skip_while(|s| s.id < r.segment);
                match it.next() {
                    Some(s) if s.id == r.segment => (s.end, it.next().map(|s| s.id)),
                    Some(s) => (0, Some(s.id)),
                    None => (0, None),
                }
            };
            if r.offset >= end {
                match next {
                    Some(id) => {
                        r.segment = id;
                        r.offset = SEGMENT_HEADER;
                        r.file = None;
                        continue;
                    }
                    None => break,
                }
            }
            if r.file.is_none() {
                r.file = Some(FrameReader::open(&frame::segment_path(
                    &self.settings.path,
                    r.segment,
                ))?);
            }
            let (off, expected, segment) = (r.offset, r.expected, r.segment);
            let file = r.file.as_mut().unwrap();
            match file.frame_at(off, end)? {
                At::Frame(rec, next_off) => {
                    r.offset = next_off;
                    r.expected = Some(rec.seq + 1);
                    ends.push(State {
                        segment,
                        offset: next_off,
                        seq: rec.seq + 1,
                    });
                    out.push(Event {
                        timestamp: rec.timestamp,
                        meta: rec.meta,
                        fields: Default::default(),
                        pb: None,
                        encoded: Some(rec.encoded),
                        builtin: None,
                    });
                }
                // Damage the open already counted: skipped the same way.
                At::Short | At::Corrupt => {
                    let seqs = plausible_seqs(expected, off, end);
                    r.offset = file.resync(off + 1, end, seqs)?.unwrap_or(end);
                }
            }
        }
        let mut st = self.inner.lock().unwrap();
        st.inflight.extend(ends);
        st.reading = st.reading.saturating_sub(want);
        Ok(out)
    }
}

impl EventQueue for DiskQueue {
    fn push(&self, batch: Vec<Event>) -> Result<(), Vec<Event>> {
        let p = self.prepare(&batch);
        if self.reserve(p.bytes, true).is_err() || !self.write(p) {
            return Err(batch);
        }
        Ok(())
    }

    fn try_push(&self, batch: Vec<Event>) -> Result<(), TryPushError> {
        let p = self.prepare(&batch);
        match self.reserve(p.bytes, false) {
            Err(TryPushError::Full(_)) => Err(TryPushError::Full(batch)),
            Err(TryPushError::Closed(_)) => Err(TryPushError::Closed(batch)),
            Ok(()) if self.write(p) => Ok(()),
            Ok(()) => Err(TryPushError::Closed(batch)),
        }
    }

    fn pop(&self, max: usize) -> Option<Vec<Event>> {
        let limit = match max {
            0 => self.settings.read_ahead.max(1),
            n => n,
        };
        let want = {
            let mut st = self.inner.lock().unwrap();
            while st.unread == 0 {
                if st.closed {
                    return None;
                }
                st.consumers_waiting += 1;
                st = self.not_empty.wait(st).unwrap();
                st.consumers_waiting -= 1;
            }
            let n = st.unread.min(limit);
            st.unread -= n;
            st.reading += n;
            n
        };
        match self.read(want) {
            Ok(events) if !events.is_empty() => {
                if events.len() < want {
                    tracing::error!(
                        "disk queue: {} event(s) counted as written were not found",
                        want - events.len()
                    );
                }
                Some(events)
            }
            Ok(_) => {
                tracing::error!("disk queue: {want} event(s) counted as written were not found");
                None
            }
            Err(e) => {
                tracing::error!("disk queue: reading failed: {e}");
                None
            }
        }
    }

    fn ack(&self, n: usize) {
        let _one_at_a_time = self.acking.lock().unwrap();
        let done = {
            let mut st = self.inner.lock().unwrap();
            let n = n.min(st.inflight.len());
            if n == 0 {
                return;
            }
            let last = st.inflight[n - 1];
            st.inflight.drain(..n);
            last
        };
        if let Err(e) = done.store(&self.settings.path) {
            // The old state stays: those events are delivered again after a restart.
            tracing::warn!("disk queue: recording acknowledged events failed: {e}");
            return;
        }
        let doomed: Vec<u64> = {
            let mut st = self.inner.lock().unwrap();
            let mut ids = Vec::new();
            while st.segments.front().is_some_and(|s| s.id < done.segment) {
                let s = st.segments.pop_front().unwrap();
                st.disk_bytes -= s.bytes;
                ids.push(s.id);
            }
            // Freed segments, or nothing left in flight (an idle queue takes any batch).
            if st.producers_waiting > 0 {
                self.not_full.notify_all();
            }
            ids
        };
        for id in doomed {
            remove_segment(&self.settings.path, id);
        }
    }

    fn close(&self) {
        let mut st = self.inner.lock().unwrap();
        if !st.closed {
            tracing::info!(
                "disk queue {}: closed for new events; {} event(s) to read, {} read and not acknowledged",
                self.settings.path.display(),
                st.unread,
                st.inflight.len() + st.reading
            );
        }
        st.closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    fn len(&self) -> usize {
        self.inner.lock().unwrap().unread
    }

    fn fill(&self) -> super::queue::QueueFill {
        let st = self.inner.lock().unwrap();
        let in_flight = (st.reading + st.inflight.len()) as u64;
        super::queue::QueueFill {
            events: st.unread as u64 + in_flight,
            in_flight,
            max_events: 0,
            bytes: st.disk_bytes,
            max_bytes: self.settings.max_size,
        }
    }
}

/// The sequence numbers the first good frame after damage at `off` can have: after `expected`,
/// and no more frames than fit in what is left of the segment.
fn plausible_seqs(
    expected: Option<u64>,
    off: u64,
    end: u64,
) -> Option<std::ops::RangeInclusive<u64>> {
    expected.map(|e| e + 1..=e + 1 + end.saturating_sub(off) / MIN_FRAME)
}

/// Segment ids in `dir`, oldest first.
fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

fn remove_segment(dir: &Path, id: u64) {
    let p = frame::segment_path(dir, id);
    if let Err(e) = std::fs::remove_file(&p) {
        tracing::warn!("disk queue: removing {}: {e}", p.display());
    }
}

fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    let mut f = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(frame::segment_path(dir, id))?;
    f.write_all(&frame::segment_header())?;
    f.sync_data()?;
    frame::sync_dir(dir)?;
    Ok(f)
}

/// Reads the segments left by a previous run from `start` (the state file's position, when its
/// segment is the first), checking every frame: the readable end of each segment, what was
/// found, and the sequence number for the next frame written.
fn scan(
    dir: &Path,
    ids: &[u64],
    start: Option<State>,
    mut expected: Option<u64>,
) -> io::Result<(VecDeque<Segment>, Recovery, u64)> {
    let mut rec = Recovery::default();
    let mut segments = VecDeque::new();
    // Damage seen and not yet measured by the sequence number of a later good frame.
    let mut gap = false;
    let mut last_damage_short = false;
    for &id in ids {
        let path = frame::segment_path(dir, id);
        let len = std::fs::metadata(&path)?.len();
        let mut r = FrameReader::open(&path)?;
        let mut off = match start {
            Some(s) if s.segment == id => s.offset.max(SEGMENT_HEADER),
            _ => SEGMENT_HEADER,
        };
        let mut end = off;
        let mut frames = 0u64;
        if !r.header_ok(len)? {
            tracing::warn!(
                "disk queue: {} has no valid header: removed",
                path.display()
            );
            rec.damaged_regions += 1;
            gap = true;
            last_damage_short = false;
            remove_segment(dir, id);
            continue;
        }
        while off < len {
            match r.frame_at(off, len)? {
                At::Frame(f, next) => {
                    if gap {
                        rec.events_lost += match expected {
                            // Equal: the damage was counted by an earlier open, whose
                            // writes reused the lost numbers.
                            Some(e) => f.seq.saturating_sub(e),
                            None => 1,
                        };
                        gap = false;
                    }
                    expected = Some(f.seq + 1);
                    rec.events_pending += 1;
                    frames += 1;
                    off = next;
                    end = next;
                }
                damage => {
                    rec.damaged_regions += 1;
                    gap = true;
                    tracing::warn!(
                        "disk queue: {} at offset {off}: {}",
                        path.display(),
                        match damage {
                            At::Short => "a torn frame",
                            _ => "a frame with a bad checksum",
                        }
                    );
                    last_damage_short = matches!(damage, At::Short);
                    match r.resync(off + 1, len, plausible_seqs(expected, off, len))? {
                        Some(p) => off = p,
                        None => break,
                    }
                }
            }
        }
        if frames == 0 {
            // Nothing left to deliver in it (acknowledged, or emptied by damage): a later start
            // begins at the next segment with the state's sequence number.
            remove_segment(dir, id);
            continue;
        }
        let mut bytes = len;
        if end < len {
            // Damage at the end of the segment: cut it off, so that it is reported once and
            // not again at every start until the frames before it are acknowledged.
            let f = File::options().write(true).open(&path)?;
            f.set_len(end)?;
            f.sync_all()?;
            bytes = end;
        }
        segments.push_back(Segment { id, end, bytes });
    }
    if gap {
        rec.events_lost += 1;
        rec.torn_tail = last_damage_short;
    }
    Ok((segments, rec, expected.unwrap_or(0)))
}

#[cfg(test)]
mod tests;
