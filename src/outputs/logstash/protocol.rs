//! Lumberjack v2 frames, as pure functions over bytes.
//!
//! Every frame starts with the version byte `'2'` and a type byte; integers are u32 big-endian.
//! - `W` window: `'2' 'W' count` — the number of events in the window that follows.
//! - `J` JSON data: `'2' 'J' seq len json` — `seq` runs 1..=count within each window.
//! - `C` compressed: `'2' 'C' len zlib(frames)` — the zlib stream holds whole `J` frames; this
//!   client (like go-lumber's) puts all of a window's `J` frames into one `C` frame, which is what
//!   go-lumber's server requires.
//! - `A` ACK (server → client): `'2' 'A' seq` — events 1..=seq of the oldest unacknowledged
//!   window are done. `seq == count` completes the window; `0 < seq < count` is a partial ACK;
//!   `seq == 0` is a keep-alive while the server is still working.

use crate::outputs::net::Encoded;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;

pub const VERSION: u8 = b'2';
pub const WINDOW: u8 = b'W';
pub const JSON: u8 = b'J';
pub const COMPRESSED: u8 = b'C';
pub const ACK: u8 = b'A';
pub const ACK_LEN: usize = 6;

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends the `J` frames for events `range` of `enc`, numbered from 1.
pub fn write_json_frames(out: &mut Vec<u8>, enc: &Encoded, range: std::ops::Range<usize>) {
    for (seq, i) in range.enumerate() {
        let ev = enc.event(i);
        out.extend_from_slice(&[VERSION, JSON]);
        put_u32(out, seq as u32 + 1);
        put_u32(out, ev.len() as u32);
        out.extend_from_slice(ev);
    }
}

/// Appends a whole window for events `range` of `enc`: `W`, then the `J` frames, raw when
/// `level` is 0, else inside one `C` frame compressed at `level`. `scratch` is reused.
pub fn write_window(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    enc: &Encoded,
    range: std::ops::Range<usize>,
    level: u32,
) {
    out.extend_from_slice(&[VERSION, WINDOW]);
    put_u32(out, range.len() as u32);
    if level == 0 {
        write_json_frames(out, enc, range);
        return;
    }
    scratch.clear();
    write_json_frames(scratch, enc, range);
    out.extend_from_slice(&[VERSION, COMPRESSED]);
    let len_at = out.len();
    put_u32(out, 0);
    let start = out.len();
    let mut z = ZlibEncoder::new(std::mem::take(out), Compression::new(level.min(9)));
    z.write_all(scratch).expect("writing to a Vec cannot fail");
    *out = z.finish().expect("writing to a Vec cannot fail");
    let n = (out.len() - start) as u32;
    out[len_at..len_at + 4].copy_from_slice(&n.to_be_bytes());
}

/// Parses an ACK frame.
pub fn parse_ack(b: &[u8; ACK_LEN]) -> Result<u32, String> {
    if b[0] != VERSION || b[1] != ACK {
        return Err(format!(
            "lumberjack protocol error: expected an ACK frame, got bytes {:02x} {:02x}",
            b[0], b[1]
        ));
    }
    Ok(u32::from_be_bytes([b[2], b[3], b[4], b[5]]))
}

pub fn ack_frame(seq: u32) -> [u8; ACK_LEN] {
    let s = seq.to_be_bytes();
    [VERSION, ACK, s[0], s[1], s[2], s[3]]
}

/// A decoded window: (seq, JSON) per event.
pub type DecodedWindow = Vec<(u32, Vec<u8>)>;

/// Decodes a stream of writer frames into windows of (seq, JSON) pairs; for tests and debugging.
pub fn decode_windows(mut b: &[u8]) -> Result<Vec<DecodedWindow>, String> {
    fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
        b.get(at..at + 4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| "truncated".to_string())
    }
    fn frames(mut b: &[u8], out: &mut DecodedWindow) -> Result<(), String> {
        while !b.is_empty() {
            if b.len() < 2 || b[0] != VERSION {
                return Err("bad version".into());
            }
            match b[1] {
                JSON => {
                    let seq = u32_at(b, 2)?;
                    let len = u32_at(b, 6)? as usize;
                    let body = b.get(10..10 + len).ok_or("truncated JSON frame")?;
                    out.push((seq, body.to_vec()));
                    b = &b[10 + len..];
                }
                COMPRESSED => {
                    let len = u32_at(b, 2)? as usize;
                    let body = b.get(6..6 + len).ok_or("truncated C frame")?;
                    let mut inflated = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::ZlibDecoder::new(body),
                        &mut inflated,
                    )
                    .map_err(|e| e.to_string())?;
                    frames(&inflated, out)?;
                    b = &b[6 + len..];
                }
                t => return Err(format!("unexpected frame type {t}")),
            }
        }
        Ok(())
    }
    let mut windows = Vec::new();
    while !b.is_empty() {
        if b.len() < 6 || b[0] != VERSION || b[1] != WINDOW {
            return Err("expected a window frame".into());
        }
        let count = u32_at(b, 2)? as usize;
        b = &b[6..];
        let mut evs = Vec::new();
        // frames until `count` events are read
        while evs.len() < count {
            let (consumed, mut got) = one_frame(b)?;
            evs.append(&mut got);
            b = &b[consumed..];
        }
        windows.push(evs);
    }
    return Ok(windows);

    fn one_frame(b: &[u8]) -> Result<(usize, DecodedWindow), String> {
        let size = match b.get(1) {
            Some(&JSON) => 10 + u32_at(b, 6)? as usize,
            Some(&COMPRESSED) => 6 + u32_at(b, 2)? as usize,
            _ => return Err("unexpected frame".into()),
        };
        let mut out = Vec::new();
        frames(b.get(..size).ok_or("truncated")?, &mut out)?;
        Ok((size, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(evs: &[&str]) -> Encoded {
        let mut e = Encoded::default();
        for s in evs {
            e.data.extend_from_slice(s.as_bytes());
            e.ends.push(e.data.len());
        }
        e
    }

    #[test]
    fn uncompressed_window_bytes() {
        let e = enc(&[r#"{"a":1}"#, r#"{}"#]);
        let mut out = Vec::new();
        write_window(&mut out, &mut Vec::new(), &e, 0..2, 0);
        let mut want = b"2W\0\0\0\x02".to_vec();
        want.extend_from_slice(b"2J\0\0\0\x01\0\0\0\x07{\"a\":1}");
        want.extend_from_slice(b"2J\0\0\0\x02\0\0\0\x02{}");
        assert_eq!(out, want);
    }

    #[test]
    fn sequence_restarts_per_window_and_compressed_roundtrip() {
        let e = enc(&["{\"x\":0}", "{\"x\":1}", "{\"x\":2}"]);
        for level in [0, 1, 3, 9] {
            let mut out = Vec::new();
            let mut scratch = Vec::new();
            write_window(&mut out, &mut scratch, &e, 0..1, level);
            write_window(&mut out, &mut scratch, &e, 1..3, level);
            if level > 0 {
                assert_eq!(&out[6..8], b"2C");
            }
            let w = decode_windows(&out).unwrap();
            assert_eq!(w.len(), 2);
            assert_eq!(w[0], vec![(1, b"{\"x\":0}".to_vec())]);
            assert_eq!(
                w[1],
                vec![(1, b"{\"x\":1}".to_vec()), (2, b"{\"x\":2}".to_vec())]
            );
        }
    }

    #[test]
    fn compressed_length_is_backfilled() {
        let e = enc(&["{\"x\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"; 50]);
        let mut out = Vec::new();
        write_window(&mut out, &mut Vec::new(), &e, 0..50, 3);
        let len = u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
        assert_eq!(out.len(), 12 + len);
        assert_eq!(&out[12..13], &[0x78]); // zlib header
    }

    #[test]
    fn acks() {
        assert_eq!(parse_ack(&ack_frame(7)).unwrap(), 7);
        assert_eq!(parse_ack(b"2A\0\0\x01\0").unwrap(), 256);
        assert!(parse_ack(b"2W\0\0\0\x01").is_err());
        assert!(parse_ack(b"1A\0\0\0\x01").is_err());
    }
}
