//! The worker's ICMP layer: every ICMP message goes to the ICMP analyzers, whose packet-time
//! clock it moves (as the UDP layer does for UDP analyzers).

use crate::common::Ts;
use crate::protos::{IcmpAnalyzer, IcmpPacket, ProtocolModules, TickClock};
use crate::publish::EventSink;

/// The ICMP analyzers of one worker and their clock.
pub struct IcmpLayer {
    analyzers: Vec<Box<dyn IcmpAnalyzer>>,
    clock: TickClock,
}

impl IcmpLayer {
    pub fn new(modules: &ProtocolModules) -> IcmpLayer {
        IcmpLayer {
            analyzers: modules
                .modules
                .iter()
                .filter_map(|m| m.new_icmp())
                .collect(),
            clock: TickClock::default(),
        }
    }

    pub fn process(&mut self, out: &mut EventSink, pkt: &IcmpPacket) {
        self.clock.observe(pkt.ts);
        for a in &mut self.analyzers {
            a.process(out, pkt);
        }
    }

    /// The capture's clock moved on to `ts`: analyzers expire transactions. Called at batch
    /// boundaries with the same value in every worker (see `Tcp::tick`).
    pub fn tick(&mut self, out: &mut EventSink, ts: Ts) {
        if self.analyzers.is_empty() {
            return;
        }
        if self.clock.tick_due(ts) {
            for a in &mut self.analyzers {
                a.tick(out, self.clock.now());
            }
        }
    }

    pub fn flush(&mut self, out: &mut EventSink) {
        for a in &mut self.analyzers {
            a.flush(out, self.clock.now());
        }
    }
}
