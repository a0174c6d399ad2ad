//! `backoff.init` / `backoff.max`: how long a network output waits before reconnecting after an
//! error. Equal jitter, as libbeat's backoff: each wait is d/2 + rand[0, d/2), with d starting at
//! 2×init and doubling up to max; a success starts over.

use crate::config::types::GoDuration;
use serde::Deserialize;
use std::time::Duration;

/// `output.X.backoff`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BackoffConfig {
    pub init: GoDuration,
    pub max: GoDuration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            init: GoDuration(Duration::from_secs(1)),
            max: GoDuration(Duration::from_secs(60)),
        }
    }
}

/// Equal-jitter backoff: waits d/2 + rand[0, d/2), d from 2×init doubling up to max.
pub struct Backoff {
    init: Duration,
    max: Duration,
    d: Duration,
}

impl Backoff {
    pub fn new(init: Duration, max: Duration) -> Backoff {
        Backoff {
            init,
            max,
            d: (init * 2).min(max.max(init)),
        }
    }
    pub fn from_config(c: &BackoffConfig) -> Backoff {
        Backoff::new(c.init.0, c.max.0)
    }
    pub fn reset(&mut self) {
        self.d = (self.init * 2).min(self.max.max(self.init));
    }
    pub fn next_wait(&mut self) -> Duration {
        let half = self.d / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            half.mul_f64(rand::random::<f64>())
        };
        self.d = (self.d * 2).min(self.max.max(self.init));
        half + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_equal_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let d1 = b.next_wait();
        assert!(
            d1 >= Duration::from_secs(1) && d1 < Duration::from_secs(2),
            "{d1:?}"
        );
        let d2 = b.next_wait();
        assert!(
            d2 >= Duration::from_secs(2) && d2 < Duration::from_secs(4),
            "{d2:?}"
        );
        let d3 = b.next_wait();
        assert!(
            d3 >= Duration::from_secs(2) && d3 < Duration::from_secs(4),
            "{d3:?}"
        );
        b.reset();
        assert!(b.next_wait() < Duration::from_secs(2));
    }
}
