//! `output.console`: one line per event on standard output, JSON or `codec.format` text (see
//! [`super::codec`]).

use super::codec::Codec;
use super::{Output, OutputType};
use crate::config::{Config, ConsoleOutputConfig, OutputConfig};
use crate::publish::json::JsonCodec;
use crate::publish::Event;
use std::io::Write;

pub struct Console {
    codec: Codec,
    buf: Vec<u8>,
}

/// `codec.json` (`pretty`, `escape_html`) or `codec.format`; without either, `pretty`.
pub fn codec(cfg: &ConsoleOutputConfig) -> Result<Codec, String> {
    Codec::from_config(&cfg.codec, "output.console", cfg.pretty)
}

impl Console {
    pub fn new(cfg: &ConsoleOutputConfig) -> anyhow::Result<Console> {
        Ok(Console {
            codec: codec(cfg).map_err(anyhow::Error::msg)?,
            buf: Vec::new(),
        })
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
        Ok(Box::new(Console::new(c)?))
    }
    fn codec(c: &ConsoleOutputConfig) -> Option<JsonCodec> {
        codec(c).ok()?.pre_encoding()
    }
}

impl Output for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        self.buf.clear();
        for e in events {
            if self.codec.encode_into(e, &mut self.buf) {
                self.buf.push(b'\n');
            }
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.codec.log_failed("console");
        std::io::stdout().flush()?;
        Ok(())
    }
}
