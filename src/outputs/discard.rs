//! `output.discard`: accepts and drops everything (for benchmarks), counting what it dropped.

use super::{Output, OutputType};
use crate::config::Config;
use crate::publish::json::JsonCodec;
use crate::publish::Event;

#[derive(Default)]
pub struct Discard {
    pub events: u64,
}

impl Output for Discard {
    fn name(&self) -> &'static str {
        "discard"
    }
    fn publish(&mut self, events: &[Event]) -> anyhow::Result<()> {
        self.events += events.len() as u64;
        Ok(())
    }
    fn close(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl OutputType for Discard {
    type Config = ();
    fn load(_cfg: &Config) -> anyhow::Result<()> {
        Ok(())
    }
    fn build(_c: &(), _cfg: &Config) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(Discard::default()))
    }
    fn codec(_c: &()) -> Option<JsonCodec> {
        Some(JsonCodec::default())
    }
}
