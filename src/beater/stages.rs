//! Cycles per stage (cargo feature `stage-cycles`, off by default): where a packet's time goes,
//! to pick what to optimise. Each thread keeps a [`StageClock`]: the time-stamp counter is read
//! between stages and each stage's cycles go into an HDR histogram of that thread; at the end
//! each thread hands its clock in ([`submit`]) and [`log_report`] logs one line per stage.
//!
//! Stages, and what one sample is:
//! - `capture`: the capture thread reading a batch, per frame of it (the batch's cycles ÷ its
//!   frames);
//! - `dispatch`: the capture thread spreading a batch over the workers (flow hash, IPv4
//!   reassembly), per frame likewise;
//! - `decode`: link → IP → transport, per frame;
//! - `transport`: the TCP or UDP layer (reassembly, connection table) with the analyzer's
//!   parsing and its event (the analyzers build their fields as they parse), per frame;
//! - `flows`: the flow table, per frame (with flows on);
//! - `events`: the publish pipeline (processors, `agent`/`ecs`/`host` fields), per event;
//! - `encode`: JSON encoding, per event;
//! - `output`: the output's `publish`, per event (the batch's cycles ÷ its events).
//!
//! The table gives, per stage, p50 and p99 of its samples and the mean cycles **per captured
//! frame** (the stage's total ÷ all frames), whose sum is the whole job's cycles per frame and
//! whose shares say where the time goes. Timeouts and end-of-capture flushes are not sampled.
//!
//! Without the feature every type here is empty and every call is an inline no-op.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Capture,
    Dispatch,
    Decode,
    Transport,
    Flows,
    Events,
    Encode,
    Output,
}

pub const STAGES: [(Stage, &str); 8] = [
    (Stage::Capture, "capture"),
    (Stage::Dispatch, "dispatch"),
    (Stage::Decode, "decode"),
    (Stage::Transport, "transport"),
    (Stage::Flows, "flows"),
    (Stage::Events, "events"),
    (Stage::Encode, "encode"),
    (Stage::Output, "output"),
];

#[cfg(feature = "stage-cycles")]
mod on {
    use super::{Stage, STAGES};
    use hdrhistogram::Histogram;
    use std::sync::Mutex;

    /// The time-stamp counter.
    #[inline(always)]
    pub fn now() -> u64 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: RDTSC has no preconditions.
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            use std::sync::OnceLock;
            static START: OnceLock<std::time::Instant> = OnceLock::new();
            START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
        }
    }

    pub struct StageClock {
        pub(super) hist: Vec<Histogram<u64>>,
        pub(super) total: [u64; 8],
        frames: u64,
    }

    impl Default for StageClock {
        fn default() -> Self {
            StageClock {
                hist: (0..STAGES.len())
                    .map(|_| Histogram::new_with_bounds(1, 1 << 40, 2).expect("bounds"))
                    .collect(),
                total: [0; 8],
                frames: 0,
            }
        }
    }

    impl StageClock {
        /// A mark to measure from.
        #[inline(always)]
        pub fn mark(&self) -> u64 {
            now()
        }

        /// Books the cycles since `*mark` to `stage` as `units` samples (frames or events) of
        /// equal share, and moves the mark on.
        #[inline(always)]
        pub fn lap(&mut self, stage: Stage, mark: &mut u64, units: u64) {
            let t = now();
            let cycles = t.saturating_sub(*mark);
            *mark = t;
            if units == 0 {
                return;
            }
            let i = stage as usize;
            self.total[i] += cycles;
            let _ = self.hist[i].record_n((cycles / units).max(1), units);
        }

        /// Frames this thread captured (the capture thread counts them).
        pub fn frames(&mut self, n: u64) {
            self.frames += n;
        }

        fn merge(&mut self, o: &StageClock) {
            for i in 0..STAGES.len() {
                self.total[i] += o.total[i];
                let _ = self.hist[i].add(&o.hist[i]);
            }
            self.frames += o.frames;
        }
    }

    static SUBMITTED: Mutex<Option<StageClock>> = Mutex::new(None);

    pub fn submit(c: StageClock) {
        let mut all = SUBMITTED.lock().unwrap_or_else(|e| e.into_inner());
        match all.as_mut() {
            Some(a) => a.merge(&c),
            None => *all = Some(c),
        }
    }

    pub fn log_report() {
        let all = SUBMITTED.lock().unwrap_or_else(|e| e.into_inner());
        let Some(a) = all.as_ref() else { return };
        let frames = a.frames.max(1);
        let sum: u64 = a.total.iter().sum::<u64>().max(1);
        tracing::info!(
            "stage cycles: {} frames, {:.0} cycles per frame in all (TSC; p50/p99 per sample, mean per captured frame)",
            a.frames,
            sum as f64 / frames as f64
        );
        for (i, (_, name)) in STAGES.iter().enumerate() {
            let h = &a.hist[i];
            if h.is_empty() {
                continue;
            }
            tracing::info!(
                "stage {name}: p50 {} p99 {} cycles per sample ({} samples); mean {:.1} cycles per frame, {:.1} % of the total",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.len(),
                a.total[i] as f64 / frames as f64,
                a.total[i] as f64 * 100.0 / sum as f64
            );
        }
    }
}

#[cfg(not(feature = "stage-cycles"))]
mod on {
    use super::Stage;

    #[derive(Default)]
    pub struct StageClock {
        _off: (),
    }

    /// Nothing to measure from.
    pub struct Mark;

    impl StageClock {
        #[inline(always)]
        pub fn mark(&self) -> Mark {
            Mark
        }
        #[inline(always)]
        pub fn lap(&mut self, _: Stage, _: &mut Mark, _: u64) {}
        #[inline(always)]
        pub fn frames(&mut self, _: u64) {}
    }

    #[inline(always)]
    pub fn submit(_: StageClock) {}
    #[inline(always)]
    pub fn log_report() {}
}

pub use on::*;

#[cfg(all(test, feature = "stage-cycles"))]
mod tests {
    use super::*;

    #[test]
    fn laps_are_booked_per_unit_and_merged() {
        let mut c = StageClock::default();
        let mut m = c.mark();
        std::hint::black_box((0..10_000).sum::<u64>());
        c.lap(Stage::Decode, &mut m, 4);
        c.lap(Stage::Encode, &mut m, 0);
        c.frames(4);
        assert!(c.total[Stage::Decode as usize] > 0);
        assert_eq!(c.hist[Stage::Decode as usize].len(), 4);
        assert_eq!(c.hist[Stage::Encode as usize].len(), 0);
        submit(c);
        submit(StageClock::default());
    }
}
