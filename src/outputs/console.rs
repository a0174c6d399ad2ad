//! `output.console`: one JSON document per event on standard output.

use super::{Output, OutputType};
use crate::config::{Config, ConsoleOutputConfig, OutputConfig};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
use std::io::Write;

pub struct Console {
    codec: JsonCodec,
    buf: Vec<u8>,
}

/// `pretty` (or `codec.json.pretty`) and `codec.json.escape_html`.
pub fn codec(cfg: &ConsoleOutputConfig) -> JsonCodec {
    let json = cfg.codec.json.clone().unwrap_or_default();
    JsonCodec {
        pretty: cfg.pretty || json.pretty,
        escape_html: json.escape_html,
    }
}

impl Console {
    pub fn new(cfg: &ConsoleOutputConfig) -> Console {
        Console {
            codec: codec(cfg),
            buf: Vec::new(),
        }
    }
}

impl OutputType for Console {
    type Config = ConsoleOutputConfig;
    fn load(cfg: &Config) -> anyhow::Result<ConsoleOutputConfig> {
        match &cfg.output {
            OutputConfig::Console(c) => Ok(c.clone()),
            _ => Err(super::not_this_output(cfg, "console")),
        }
    }
    fn build(c: &ConsoleOutputConfig, _cfg: &Config) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(Console::new(c)))
    }
    fn codec(c: &ConsoleOutputConfig) -> Option<JsonCodec> {
        Some(codec(c))
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
