//! The disk queue against a model (a list of unacknowledged events), through random pushes,
//! pops, acknowledgements, restarts and damage to its files.

use super::*;
use crate::common::Ts;
use crate::publish::json::JsonCodec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

fn plain() -> StoredCodec {
    StoredCodec {
        codec: JsonCodec {
            pretty: false,
            escape_html: false,
        },
        beat: None,
    }
}

fn open(dir: &Path, max: u64, segment: u64) -> DiskQueue {
    let mut s = DiskQueueSettings::new(dir.to_path_buf(), max, segment);
    s.read_ahead = 7;
    s.retry_interval = Duration::from_millis(10);
    DiskQueue::open(s, plain()).unwrap()
}

fn meta_of(id: u64) -> crate::publish::event::Map {
    let mut m = crate::publish::event::Map::new();
    if id.is_multiple_of(3) {
        m.insert("pipeline".into(), json!(format!("p{id}")));
    }
    m
}

fn encoded_of(id: u64) -> Vec<u8> {
    format!(
        r#"{{"id":"{id:08}","pad":"{}"}}"#,
        "x".repeat((id % 13) as usize)
    )
    .into_bytes()
}

fn event(id: u64) -> Event {
    let mut e = Event::bare(Ts(id as i64 * 1000), Default::default());
    e.meta = meta_of(id);
    e.encoded = Some(encoded_of(id));
    e
}

/// The id of an event read back, after checking the rest of it came back as it went in.
fn id_of(e: &Event) -> u64 {
    let doc: Value = serde_json::from_slice(e.encoded.as_ref().unwrap()).unwrap();
    let id: u64 = doc["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(e.encoded.as_deref(), Some(&encoded_of(id)[..]));
    assert_eq!(e.timestamp, Ts(id as i64 * 1000));
    assert_eq!(e.meta, meta_of(id));
    assert!(e.pb.is_none() && e.builtin.is_none());
    id
}

struct Harness {
    dir: tempfile::TempDir,
    q: Option<DiskQueue>,
    /// Unacknowledged events, oldest first; the first `popped` are in flight.
    model: VecDeque<u64>,
    popped: usize,
    next_id: u64,
    /// The newest event written, while it is the last frame on disk.
    last_written: Option<u64>,
}

impl Harness {
    fn q(&self) -> &DiskQueue {
        self.q.as_ref().unwrap()
    }

    fn reopen(&mut self) -> Recovery {
        self.q = None;
        self.q = Some(open(self.dir.path(), 0, 500));
        self.popped = 0;
        self.q().recovery()
    }

    fn pop(&mut self, max: usize) -> Vec<u64> {
        assert_eq!(self.q().len(), self.model.len() - self.popped);
        let got: Vec<u64> = self.q().pop(max).unwrap().iter().map(id_of).collect();
        let limit = if max == 0 { 7 } else { max };
        assert!(!got.is_empty() && got.len() <= limit);
        let want: Vec<u64> = self
            .model
            .range(self.popped..)
            .take(got.len())
            .copied()
            .collect();
        assert_eq!(got, want);
        self.popped += got.len();
        got
    }

    /// After damage: everything left comes back in order except `lost`, then all is acked.
    fn drain_expecting(&mut self, lost: &[u64]) {
        let want: Vec<u64> = self
            .model
            .iter()
            .copied()
            .filter(|i| !lost.contains(i))
            .collect();
        let mut got = Vec::new();
        while self.q().len() > 0 {
            got.extend(self.q().pop(5).unwrap().iter().map(id_of));
        }
        assert_eq!(got, want);
        self.q().ack(got.len());
        self.model.clear();
        self.popped = 0;
    }

    /// The segment file holding event `id`, and the range of its frame.
    fn frame_of(&self, id: u64) -> (PathBuf, std::ops::Range<usize>) {
        let needle = format!(r#"{{"id":"{id:08}""#);
        for seg in segment_ids(self.dir.path()).unwrap() {
            let p = frame::segment_path(self.dir.path(), seg);
            let b = std::fs::read(&p).unwrap();
            if let Some(pos) = b.windows(needle.len()).position(|w| w == needle.as_bytes()) {
                let meta = meta_of(id);
                let meta_len = if meta.is_empty() {
                    0
                } else {
                    serde_json::to_vec(&meta).unwrap().len()
                };
                let start = pos - meta_len - 20 - 8;
                return (p, start..pos + encoded_of(id).len());
            }
        }
        panic!("event {id} not on disk")
    }
}

#[test]
fn behaves_as_the_model_through_restarts_and_damage() {
    for seed in 0..16u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path(), 0, 500);
        let mut h = Harness {
            dir,
            q: Some(q),
            model: VecDeque::new(),
            popped: 0,
            next_id: 1,
            last_written: None,
        };
        let (mut damaged, mut counted) = (0u64, 0u64);
        for _ in 0..120 {
            match rng.gen_range(0..100) {
                0..=34 => {
                    let n = rng.gen_range(1..=5);
                    let batch: Vec<Event> = (h.next_id..h.next_id + n).map(event).collect();
                    if rng.gen_bool(0.5) {
                        h.q().push(batch).unwrap();
                    } else {
                        h.q().try_push(batch).unwrap();
                    }
                    h.model.extend(h.next_id..h.next_id + n);
                    h.next_id += n;
                    h.last_written = Some(h.next_id - 1);
                }
                35..=59 if h.model.len() > h.popped => {
                    h.pop(rng.gen_range(0..=6));
                }
                60..=79 if h.popped > 0 => {
                    let n = rng.gen_range(1..=h.popped);
                    h.q().ack(n);
                    h.model.drain(..n);
                    h.popped -= n;
                }
                80..=89 => {
                    let r = h.reopen();
                    assert_eq!(r.events_pending, h.model.len() as u64, "seed {seed}");
                    assert_eq!((r.damaged_regions, r.events_lost), (0, 0), "seed {seed}");
                }
                90..=94 if h.last_written.is_some() => {
                    // A crash in the middle of the last write: part of its last frame is there.
                    let id = h.last_written.take().unwrap();
                    let (path, frame) = h.frame_of(id);
                    h.q = None;
                    let cut = rng.gen_range(1..frame.len());
                    std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len((frame.end - cut) as u64)
                        .unwrap();
                    let r = h.reopen();
                    let unacked = h.model.contains(&id);
                    assert_eq!(r.torn_tail, unacked, "seed {seed}");
                    assert_eq!(r.events_lost, unacked as u64, "seed {seed}");
                    h.drain_expecting(&[id]);
                    damaged += 1;
                    counted += r.events_lost;
                }
                95..=99 if !h.model.is_empty() => {
                    // One flipped byte anywhere in the frame of an unacknowledged event.
                    let id = h.model[rng.gen_range(0..h.model.len())];
                    let (path, frame) = h.frame_of(id);
                    h.q = None;
                    let mut b = std::fs::read(&path).unwrap();
                    b[rng.gen_range(frame)] ^= rng.gen_range(1..=255u8);
                    std::fs::write(&path, b).unwrap();
                    let r = h.reopen();
                    assert_eq!(r.events_lost, 1, "seed {seed}");
                    assert!(r.damaged_regions >= 1, "seed {seed}");
                    h.drain_expecting(&[id]);
                    h.last_written = None;
                    damaged += 1;
                    counted += 1;
                }
                _ => {}
            }
        }
        // Whatever was left comes back after a last restart.
        let r = h.reopen();
        assert_eq!(r.events_pending, h.model.len() as u64);
        h.drain_expecting(&[]);
        assert!(counted <= damaged);
        // Everything acknowledged: only the segment being written and the last one read stay.
        assert!(segment_ids(h.dir.path()).unwrap().len() <= 2, "seed {seed}");
    }
}

#[test]
fn max_size_holds_back_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(open(dir.path(), 1500, 600));
    let mut id = 1;
    loop {
        match q.try_push((id..id + 4).map(event).collect()) {
            Ok(()) => id += 4,
            Err(TryPushError::Full(b)) => {
                assert_eq!(b.len(), 4);
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(id > 5, "several batches fit");
    // Reading frees nothing: the events are still on disk until acknowledged.
    let n = q.pop(0).unwrap().len();
    assert!(matches!(
        q.try_push((id..id + 4).map(event).collect()),
        Err(TryPushError::Full(_))
    ));
    let waiting = {
        let q = q.clone();
        std::thread::spawn(move || q.push((id..id + 4).map(event).collect()).is_ok())
    };
    std::thread::sleep(Duration::from_millis(30));
    assert!(!waiting.is_finished());
    // Acknowledging what fills the first segments lets the waiting push in.
    while q.len() > 0 {
        q.pop(0);
    }
    q.ack(usize::MAX);
    assert!(waiting.join().unwrap());
    assert!(n > 0);
    // A closed queue gives a waiting producer its batch back.
    while q.try_push(vec![event(99)]).is_ok() {}
    let waiting = {
        let q = q.clone();
        std::thread::spawn(move || q.push(vec![event(100)]).is_err())
    };
    std::thread::sleep(Duration::from_millis(20));
    q.close();
    assert!(waiting.join().unwrap());
}

#[test]
fn unencoded_events_are_stored_as_the_output_encodes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = DiskQueueSettings::new(dir.path().to_path_buf(), 0, 1 << 20);
    s.read_ahead = 10;
    let codec = StoredCodec {
        beat: Some("myindex".into()),
        ..plain()
    };
    let q = DiskQueue::open(s, codec.clone()).unwrap();
    let mut fields = crate::publish::event::Map::new();
    fields.insert("type".into(), json!("dns"));
    fields.insert("html".into(), json!("<b>"));
    let e = Event::bare(Ts(1_700_000_000_123_000_000), fields);
    q.push(vec![e.clone()]).unwrap();
    let back = q.pop(0).unwrap().remove(0);
    let mut with_beat = e.clone();
    with_beat.meta.insert("beat".into(), json!("myindex"));
    assert_eq!(back.meta, with_beat.meta);
    assert_eq!(back.encoded, Some(codec.codec.encode(&with_beat)));
    let doc: Value = serde_json::from_slice(back.encoded.as_ref().unwrap()).unwrap();
    assert_eq!(doc["@metadata"]["beat"], "myindex");
    assert_eq!(doc["html"], "<b>");
    q.ack(1);
    // Acknowledged: nothing comes back after a restart.
    drop(q);
    let q = open(dir.path(), 0, 1 << 20);
    assert_eq!(q.recovery(), Recovery::default());
    assert_eq!(q.len(), 0);
}

#[test]
fn damaged_state_file_means_redelivery_not_loss() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(dir.path(), 0, 1 << 20);
    q.push((1..=6).map(event).collect()).unwrap();
    assert_eq!(q.pop(3).unwrap().len(), 3);
    q.ack(3);
    drop(q);
    let q = open(dir.path(), 0, 1 << 20);
    assert_eq!(q.recovery().events_pending, 3);
    drop(q);
    std::fs::write(frame::state_path(dir.path()), b"garbage").unwrap();
    let q = open(dir.path(), 0, 1 << 20);
    let ids: Vec<u64> = q.pop(10).unwrap().iter().map(id_of).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(q.recovery().events_lost, 0);
}
