//! Redis's instantaneous metrics: INFO's `instantaneous_ops_per_sec`, `instantaneous_input_kbps`
//! and the other `instantaneous_*` fields. Every 100 ms a shard's cron takes the rate of each
//! counter since its last sample (`trackInstantaneousMetric`); INFO shows the mean of the last
//! 16 samples (`getInstantaneousMetric`), summed over the shards. The replication byte counters
//! are node-wide and sampled by shard 0 alone.

use std::sync::atomic::{AtomicU64, Ordering};

/// Samples kept per metric (Redis's `STATS_METRIC_SAMPLES`).
const SAMPLES: usize = 16;

/// Milliseconds between samples (Redis samples in `serverCron` with `run_with_period(100)`).
pub const PERIOD_MS: u64 = 100;

/// Bytes read from this node's master (the replication stream and the full sync's payload).
pub static NET_REPL_INPUT: AtomicU64 = AtomicU64::new(0);
/// Bytes written to this node's replicas.
pub static NET_REPL_OUTPUT: AtomicU64 = AtomicU64::new(0);

/// One counter's recent rates (per second).
#[derive(Debug, Default)]
struct Metric {
    samples: [u64; SAMPLES],
    next: usize,
    last_count: u64,
}

impl Metric {
    fn track(&mut self, count: u64, elapsed_ms: u64) {
        let delta = count.saturating_sub(self.last_count);
        self.samples[self.next] = (delta * 1000).checked_div(elapsed_ms).unwrap_or(0);
        self.next = (self.next + 1) % SAMPLES;
        self.last_count = count;
    }

    fn mean(&self) -> u64 {
        self.samples.iter().sum::<u64>() / SAMPLES as u64
    }
}

/// A shard's samplers: commands, client input and output bytes, and (shard 0) replication
/// input and output bytes.
#[derive(Debug, Default)]
pub struct Sampler {
    last_ms: u64,
    ops: Metric,
    net_in: Metric,
    net_out: Metric,
    repl_in: Metric,
    repl_out: Metric,
}

/// A shard's current rates: commands per second, then bytes per second of client input,
/// client output, replication input and replication output.
pub type Rates = [u64; 5];

impl Sampler {
    /// Takes a sample when a period has passed since the last one (the shard's cron calls this
    /// at `hz`, at least 10 times a second by default). `repl` says whether this shard samples
    /// the node-wide replication counters.
    pub fn cron(&mut self, now_ms: u64, ops: u64, net_in: u64, net_out: u64, repl: bool) {
        if self.last_ms == 0 {
            // The first call only starts the clock (Redis starts it at start-up, with zeros).
            self.last_ms = now_ms;
            self.ops.last_count = ops;
            self.net_in.last_count = net_in;
            self.net_out.last_count = net_out;
            return;
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed < PERIOD_MS {
            return;
        }
        self.last_ms = now_ms;
        self.ops.track(ops, elapsed);
        self.net_in.track(net_in, elapsed);
        self.net_out.track(net_out, elapsed);
        if repl {
            self.repl_in.track(NET_REPL_INPUT.load(Ordering::Relaxed), elapsed);
            self.repl_out.track(NET_REPL_OUTPUT.load(Ordering::Relaxed), elapsed);
        }
    }

    /// The mean of the recent samples of each metric.
    pub fn rates(&self) -> Rates {
        [self.ops.mean(), self.net_in.mean(), self.net_out.mean(), self.repl_in.mean(), self.repl_out.mean()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_mean_of_the_last_sixteen_samples() {
        let mut s = Sampler::default();
        s.cron(1_000, 0, 0, 0, false);
        // 100 commands and 2048 input bytes per 100 ms: 1000 ops/s, 20480 B/s once 16 are in.
        for i in 1..=16u64 {
            s.cron(1_000 + i * 100, i * 100, i * 2048, 0, false);
        }
        assert_eq!(s.rates()[0], 1000);
        assert_eq!(s.rates()[1], 20480);
        // A call before the period ends takes no sample.
        s.cron(1_000 + 16 * 100 + 50, 5000, 0, 0, false);
        assert_eq!(s.rates()[0], 1000);
        // Idle: the rate decays over 16 samples to 0.
        for i in 17..=32u64 {
            s.cron(1_000 + i * 100, 1600, 16 * 2048, 0, false);
        }
        assert_eq!(s.rates()[0], 0);
    }
}
