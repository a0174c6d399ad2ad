//! `poll_default_route`: a sniffer on `default_route`, `default_route_ipv4` or
//! `default_route_ipv6` looks up the default route's device again every interval and, when it
//! has moved, closes the capture and opens it again on the new device, as Packetbeat restarts its
//! sniffer. As in Packetbeat, ten idle reads in a row (here: ten empty batches, 1 s without a
//! packet) also trigger a look-up, so a silent device is left quickly when the route moved. The analysis state (connections, transactions) carries on; counters of the closed
//! captures are kept for the summary.

use super::{PacketBatch, PacketSource, SnifferError};
use crate::decoder::LinkType;
use std::time::{Duration, Instant};

/// Opens a capture on a device.
pub type Opener = Box<dyn FnMut(&str) -> Result<Box<dyn PacketSource>, SnifferError> + Send>;

pub struct RouteFollower {
    /// The configured name (`default_route…`).
    name: String,
    device: String,
    inner: Box<dyn PacketSource>,
    open: Opener,
    interval: Duration,
    checked: Instant,
    restarts: u64,
    /// Summaries and kernel drops of the captures closed so far.
    closed: Vec<String>,
    closed_drops: u64,
    /// Empty batches in a row.
    idle: u32,
}

/// Idle batches in a row after which the route is looked up again.
const IDLE_REFRESH: u32 = 10;

impl RouteFollower {
    pub fn new(
        name: &str,
        device: String,
        interval: Duration,
        mut open: Opener,
    ) -> Result<Self, SnifferError> {
        let inner = open(&device)?;
        Ok(RouteFollower {
            name: name.to_string(),
            device,
            inner,
            open,
            interval,
            checked: Instant::now(),
            restarts: 0,
            closed: Vec::new(),
            closed_drops: 0,
            idle: 0,
        })
    }

    fn check_route(&mut self) -> Result<(), SnifferError> {
        self.checked = Instant::now();
        let dev = match super::devices::resolve_device_name(&self.name) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("poll_default_route: {e}; staying on {}", self.device);
                return Ok(());
            }
        };
        if dev == self.device {
            return Ok(());
        }
        tracing::info!(
            "The {} device moved from {} to {dev}: restarting the sniffer",
            self.name,
            self.device
        );
        let new = (self.open)(&dev)?;
        let mut old = std::mem::replace(&mut self.inner, new);
        old.finish();
        self.closed.push(old.summary());
        self.closed_drops += old.kernel_drops();
        self.device = dev;
        self.restarts += 1;
        Ok(())
    }
}

impl PacketSource for RouteFollower {
    fn link_type(&self) -> LinkType {
        self.inner.link_type()
    }

    fn next_batch(&mut self) -> Result<Option<PacketBatch>, SnifferError> {
        if self.checked.elapsed() >= self.interval || self.idle >= IDLE_REFRESH {
            self.idle = 0;
            self.check_route()?;
        }
        let batch = self.inner.next_batch()?;
        match &batch {
            Some(b) if b.frames.is_empty() => self.idle += 1,
            _ => self.idle = 0,
        }
        Ok(batch)
    }

    fn finish(&mut self) {
        self.inner.finish();
    }

    fn kernel_drops(&self) -> u64 {
        self.closed_drops + self.inner.kernel_drops()
    }

    fn is_live(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        let mut parts = self.closed.clone();
        parts.push(self.inner.summary());
        format!(
            "{} ({} restart(s) on a default route change)",
            parts.join("; "),
            self.restarts
        )
    }
}
