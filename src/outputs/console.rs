//! `output.console`: one JSON document per event on standard output.

use crate::publish::json::JsonCodec;
use super::Output;
use crate::config::ConsoleOutputConfig;
use crate::publish::Event;
use std::io::Write;

pub struct Console {
    codec: JsonCodec,
    buf: Vec<u8>,
}

impl Console {
    pub fn new(cfg: &ConsoleOutputConfig) -> Console {
        let json = cfg.codec.json.clone().unwrap_or_default();
        Console {
            codec: JsonCodec {
                pretty: cfg.pretty || json.pretty,
                escape_html: json.escape_html,
            },
            buf: Vec::new(),
        }
    }
}

impl Output for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        self.buf.clear();
        for e in events {
            self.codec.encode_into(e, &mut self.buf);
            self.buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        std::io::stdout().flush()?;
        Ok(())
    }
}
