//! Files named and rotated as libbeat's rotator (elastic-agent-libs `file.Rotator` with a date
//! suffix) names them, for the file output and the log files alike: `<prefix>-YYYYMMDD.ndjson`;
//! a start that finds that file already there (`rotate_on_startup`, default true) and every
//! rotation after `max_size` bytes continue with `<prefix>-YYYYMMDD-1.ndjson`, `-2`, …; the date
//! part follows the local day; only the newest `keep` files stay; files are created with
//! `permissions`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct RotatorConfig {
    pub dir: PathBuf,
    pub prefix: String,
    /// Bytes after which the next write goes to a new file.
    pub max_size: u64,
    /// Files kept, the current one included.
    pub keep: usize,
    pub permissions: u32,
    /// A start that finds today's file begins a new one instead of appending.
    pub rotate_on_startup: bool,
}

pub struct Rotator {
    cfg: RotatorConfig,
    date: String,
    index: u32,
    file: Option<File>,
    size: u64,
}

fn today() -> String {
    chrono::Local::now().format("%Y%m%d").to_string()
}

impl Rotator {
    /// Creates the directory if needed and opens the file to write to.
    pub fn open(cfg: RotatorConfig) -> std::io::Result<Rotator> {
        std::fs::create_dir_all(&cfg.dir)?;
        let mut r = Rotator {
            cfg,
            date: today(),
            index: 0,
            file: None,
            size: 0,
        };
        let mut existing: Vec<u32> = r
            .list_files()
            .into_iter()
            .filter(|(d, _, _)| *d == r.date)
            .map(|(_, i, _)| i)
            .collect();
        existing.sort_unstable();
        match existing.last() {
            Some(&last) if r.cfg.rotate_on_startup => {
                r.index = last + 1;
                r.open_current(false)?;
            }
            Some(&last) => {
                r.index = last;
                r.open_current(true)?;
            }
            None => r.open_current(false)?,
        }
        Ok(r)
    }

    fn name_for(&self, date: &str, index: u32) -> String {
        if index == 0 {
            format!("{}-{}.ndjson", self.cfg.prefix, date)
        } else {
            format!("{}-{}-{}.ndjson", self.cfg.prefix, date, index)
        }
    }

    /// Every `<prefix>-YYYYMMDD[-N].ndjson` in the directory: (date, index, path).
    pub fn list_files(&self) -> Vec<(String, u32, PathBuf)> {
        let Ok(rd) = std::fs::read_dir(&self.cfg.dir) else {
            return Vec::new();
        };
        let head = format!("{}-", self.cfg.prefix);
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(rest) = name
                .strip_prefix(&head)
                .and_then(|r| r.strip_suffix(".ndjson"))
            else {
                continue;
            };
            let (date, index) = match rest.split_once('-') {
                Some((d, i)) => match i.parse::<u32>() {
                    Ok(i) => (d, i),
                    Err(_) => continue,
                },
                None => (rest, 0),
            };
            if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
                out.push((date.to_string(), index, entry.path()));
            }
        }
        out
    }

    fn open_current(&mut self, append: bool) -> std::io::Result<()> {
        let path = self.current_path();
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .mode(self.cfg.permissions)
            .open(&path)
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot open '{}': {e}", path.display()))
            })?;
        self.size = if append {
            file.metadata().map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        self.file = Some(file);
        self.purge();
        Ok(())
    }

    /// Closes the current file and opens the next one.
    pub fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let date = today();
        if date != self.date {
            self.date = date;
            self.index = 0;
        } else {
            self.index += 1;
        }
        self.open_current(false)
    }

    /// Keeps the newest `keep` files.
    fn purge(&self) {
        let mut files = self.list_files();
        if files.len() <= self.cfg.keep {
            return;
        }
        files.sort();
        let excess = files.len() - self.cfg.keep;
        for (_, _, path) in files.into_iter().take(excess) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("cannot remove old file {}: {e}", path.display());
            }
        }
    }

    pub fn current_path(&self) -> PathBuf {
        self.cfg.dir.join(self.name_for(&self.date, self.index))
    }

    /// Whether `n` more bytes would take a non-empty file past its size.
    pub fn would_overflow(&self, n: u64) -> bool {
        self.size > 0 && self.size + n > self.cfg.max_size
    }

    /// The file being written (none once closed), and the bytes it is to count.
    pub fn file(&mut self) -> Option<&mut File> {
        self.file.as_mut()
    }

    /// Counts `n` bytes as written to the current file.
    pub fn add(&mut self, n: u64) {
        self.size += n;
    }

    pub fn close(&mut self) {
        self.file = None;
    }
}

/// Whole writes: a write that would overflow the current file goes to the next one.
impl Write for Rotator {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.would_overflow(buf.len() as u64) {
            self.rotate()?;
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the file is closed"))?;
        f.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}
