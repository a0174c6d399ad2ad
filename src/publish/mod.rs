//! Publishing: events from the analyzers to the outputs.
//!
//! `EventSink` collects what an analyzer publishes while it handles a packet (no locks, no
//! allocation beyond the events themselves); the beater hands the collected batch to the
//! [`pipeline::Pipeline`], which finalises each event as libbeat and Packetbeat's publisher do
//! (common fields, `agent.*`, `host.*`, `ecs.version`, `fields`, `tags`, processors) and passes
//! it on to the output through a bounded queue that blocks rather than drops when reading a file.

pub mod community_id;
pub mod direction;
pub mod event;
pub mod fields;
pub mod json;
pub mod pipeline;
pub mod processors;
pub mod procs;

pub use event::{Endpoint, Event, Map, MapExt, PbFields};
pub use fields::{FieldKey, Fields};

/// Collects the events analyzers publish while a packet is processed.
#[derive(Default, Debug)]
pub struct EventSink {
    pub events: Vec<Event>,
}

impl EventSink {
    pub fn new() -> EventSink {
        EventSink { events: Vec::new() }
    }

    pub fn publish(&mut self, event: Event) {
        self.events.push(event);
    }

    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}
