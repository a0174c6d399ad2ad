//! `output.file`, named and rotated as Packetbeat 8 does (libbeat's file output on the
//! elastic-agent-libs rotator with a date suffix, [`Rotator`]): events go to
//! `<filename>-YYYYMMDD.ndjson`; a run that finds that file already there (`rotate_on_startup`,
//! default true) and every rotation after `rotate_every_kb` continue with
//! `<filename>-YYYYMMDD-1.ndjson`, `-2`, …; only the newest `number_of_files` files are kept;
//! files are created with `permissions` (0600). One line per event: its JSON, or its
//! `codec.format` text (see [`super::codec`]).

use super::codec::Codec;
use super::{Output, OutputType};
use crate::common::rotator::{Rotator, RotatorConfig};
use crate::config::{Config, FileOutputConfig, OutputConfig, Paths};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
use std::io::{IoSlice, Write};
use std::path::PathBuf;

/// Lines (and their newlines) per `writev`, within the kernel's `IOV_MAX` of 1024.
const MAX_IOV: usize = 1024;

pub struct FileOutput {
    /// Written with one `writev` per batch (or per file, across a rotation): the lines go
    /// from the events' buffers straight to the kernel.
    files: Rotator,
    codec: Codec,
    buf: Vec<u8>,
}

/// Reads `permissions` as libbeat does: an octal number (`0600`, or `600` written as a
/// string). `key` names the option in the message.
pub fn parse_permissions(v: &Option<serde_yaml::Value>, key: &str) -> anyhow::Result<u32> {
    let Some(v) = v else { return Ok(0o600) };
    let text = match v {
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.clone(),
        other => anyhow::bail!("{key}: expected an octal number, got {other:?}"),
    };
    // The digits are octal whether YAML read `0600` as a number or a string.
    let t = text.trim_start_matches("0o");
    let perm = u32::from_str_radix(t, 8)
        .ok()
        .filter(|p| *p <= 0o777)
        .ok_or_else(|| anyhow::anyhow!("{key}: '{text}' is not valid octal permission bits"))?;
    Ok(perm)
}

/// `codec.json` (`pretty`, `escape_html`) or `codec.format`.
pub fn codec(cfg: &FileOutputConfig) -> Result<Codec, String> {
    Codec::from_config(&cfg.codec, "output.file", false)
}

impl OutputType for FileOutput {
    type Config = FileOutputConfig;
    fn load(cfg: &Config) -> anyhow::Result<FileOutputConfig> {
        match &cfg.output {
            OutputConfig::File(f) => Ok(f.clone()),
            _ => Err(super::not_this_output(cfg, "file")),
        }
    }
    fn build(c: &FileOutputConfig, cfg: &Config) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(FileOutput::new(c, &cfg.paths)?))
    }
    fn codec(c: &FileOutputConfig) -> Option<JsonCodec> {
        codec(c).ok()?.pre_encoding()
    }
}

impl FileOutput {
    pub fn new(cfg: &FileOutputConfig, paths: &Paths) -> anyhow::Result<FileOutput> {
        let dir = cfg.path.clone().unwrap_or_else(|| paths.home.join("data"));
        let files = Rotator::open(RotatorConfig {
            dir: dir.clone(),
            prefix: if cfg.filename.is_empty() {
                "packetbeat".into()
            } else {
                cfg.filename.clone()
            },
            max_size: cfg.rotate_every_kb.max(1) * 1024,
            keep: cfg.number_of_files.max(2) as usize,
            permissions: parse_permissions(&cfg.permissions, "output.file.permissions")?,
            rotate_on_startup: cfg.rotate_on_startup,
        })
        .map_err(|e| anyhow::anyhow!("output.file: in '{}': {e}", dir.display()))?;
        Ok(FileOutput {
            files,
            codec: codec(cfg).map_err(anyhow::Error::msg)?,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Writes the collected lines to the current file.
    fn write_pending(&mut self, pending: &mut Vec<IoSlice>) -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let f = self
            .files
            .file()
            .ok_or_else(|| anyhow::anyhow!("output.file: file is closed"))?;
        let mut slices: &mut [IoSlice] = pending;
        while !slices.is_empty() {
            match f.write_vectored(slices) {
                Ok(0) => anyhow::bail!("output.file: the file takes no more bytes"),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        pending.clear();
        Ok(())
    }

    pub fn current_path(&self) -> PathBuf {
        self.files.current_path()
    }
}

impl Output for FileOutput {
    fn name(&self) -> &'static str {
        "file"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        // Lines not written by the workers (JSON of events they did not encode, and every
        // `codec.format` line) are made here first, into one buffer, so that every line is a
        // slice that lives until the write. `None`: the event is dropped (the format string
        // failed on it).
        let mut scratch = std::mem::take(&mut self.buf);
        scratch.clear();
        let json = matches!(self.codec, Codec::Json(_));
        let mut ranges = Vec::new();
        for e in events.iter().filter(|e| !json || e.encoded.is_none()) {
            let start = scratch.len();
            let kept = self.codec.encode_into(e, &mut scratch);
            ranges.push(kept.then_some(start..scratch.len()));
        }
        let mut ranges = ranges.into_iter();
        let mut pending: Vec<IoSlice> = Vec::with_capacity(2 * events.len().min(MAX_IOV / 2));
        let mut result = Ok(());
        for e in events {
            let line: &[u8] = match &e.encoded {
                Some(bytes) if json => bytes,
                _ => match ranges.next().expect("one range per event encoded here") {
                    Some(r) => &scratch[r],
                    None => continue,
                },
            };
            let len = line.len() as u64 + 1;
            if self.files.would_overflow(len) {
                result = self
                    .write_pending(&mut pending)
                    .and_then(|_| Ok(self.files.rotate()?));
                if result.is_err() {
                    break;
                }
            }
            pending.push(IoSlice::new(line));
            pending.push(IoSlice::new(b"\n"));
            self.files.add(len);
            if pending.len() >= MAX_IOV {
                result = self.write_pending(&mut pending);
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self.write_pending(&mut pending);
        }
        drop(pending);
        self.buf = scratch;
        result
    }

    fn close(&mut self) -> anyhow::Result<()> {
        // Everything is with the kernel already; not synced to disk: libbeat's rotator closes
        // the file without an fsync too, and waiting for the writeback of a large output would
        // only delay exit.
        self.codec.log_failed("file");
        self.files.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Ts;
    use std::path::Path;

    fn cfg(dir: &Path) -> FileOutputConfig {
        FileOutputConfig {
            path: Some(dir.to_path_buf()),
            ..Default::default()
        }
    }

    fn event(n: i64) -> Event {
        let mut e = Event::bare(Ts(n), Default::default());
        e.put("type", "test");
        e.put("n", n);
        e
    }

    #[test]
    fn names_and_rotates_like_packetbeat() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::default();
        let d = chrono::Local::now().format("%Y%m%d").to_string();
        let mut o = FileOutput::new(&cfg(tmp.path()), &paths).unwrap();
        o.publish(&[event(1)]).unwrap();
        o.close().unwrap();
        assert!(tmp.path().join(format!("packetbeat-{d}.ndjson")).exists());
        // A second run continues with -1, a third with -2.
        let mut o = FileOutput::new(&cfg(tmp.path()), &paths).unwrap();
        o.publish(&[event(2)]).unwrap();
        o.close().unwrap();
        let mut o = FileOutput::new(&cfg(tmp.path()), &paths).unwrap();
        o.publish(&[event(3)]).unwrap();
        o.close().unwrap();
        let second =
            std::fs::read_to_string(tmp.path().join(format!("packetbeat-{d}-1.ndjson"))).unwrap();
        assert!(second.contains("\"n\":2"));
        let third =
            std::fs::read_to_string(tmp.path().join(format!("packetbeat-{d}-2.ndjson"))).unwrap();
        assert!(third.contains("\"n\":3"));
    }

    #[test]
    fn rotates_by_size_and_keeps_number_of_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = cfg(tmp.path());
        c.rotate_every_kb = 1;
        c.number_of_files = 3;
        let mut o = FileOutput::new(&c, &Paths::default()).unwrap();
        for i in 0..100 {
            o.publish(&[event(i)]).unwrap();
        }
        o.close().unwrap();
        let files = o.files.list_files();
        assert_eq!(files.len(), 3, "{files:?}");
        // The newest file holds the last event.
        let newest = o.current_path();
        assert!(std::fs::read_to_string(newest)
            .unwrap()
            .contains("\"n\":99"));
        let mode = std::fs::metadata(o.current_path()).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[test]
    fn codec_format_writes_one_line_per_event_and_drops_the_ones_it_fails_on() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = cfg(tmp.path());
        c.codec.format = Some(crate::config::types::FormatCodecConfig {
            enabled: None,
            string: Some("%{[type]} n=%{[n]}".into()),
        });
        let mut o = FileOutput::new(&c, &Paths::default()).unwrap();
        // Pre-encoded by the workers (the JSON is read back), not encoded, and one without `n`.
        let mut encoded = event(1);
        encoded.encoded = Some(JsonCodec::default().encode(&encoded));
        let mut no_n = Event::bare(Ts(3), Default::default());
        no_n.put("type", "test");
        o.publish(&[encoded, no_n, event(2)]).unwrap();
        o.close().unwrap();
        let text = std::fs::read_to_string(o.current_path()).unwrap();
        assert_eq!(text, "test n=1\ntest n=2\n");
        assert_eq!(o.codec.failed(), 1);
    }

    #[test]
    fn permissions_are_octal() {
        assert_eq!(
            parse_permissions(&Some(serde_yaml::Value::from("0644")), "p").unwrap(),
            0o644
        );
        assert_eq!(
            parse_permissions(&Some(serde_yaml::Value::from(600)), "p").unwrap(),
            0o600
        );
        assert!(parse_permissions(&Some(serde_yaml::Value::from("0999")), "p").is_err());
    }
}
