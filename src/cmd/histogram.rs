//! Per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM).
//!
//! The layout is HdrHistogram's, as Redis configures it: values in nanoseconds from 1 to
//! 1 second, two significant digits. Values below 256 have their own counter; above, every
//! power-of-two range is split into 128 equal sub-buckets. So percentiles and the
//! power-of-two cumulative distribution come out as Redis computes them.
//!
//! The counters are kept in groups of [`GROUP`] (one half power-of-two range each), a group
//! allocated on its first sample: a command's latencies usually fall in a few ranges, so a
//! histogram holds a few KB, not the 24 KB of the flat array. Each shard keeps its own
//! histogram per command (INFO and LATENCY HISTOGRAM merge them), so the flat array cost
//! every shard 24 KB for each command it first ran: with four shards, the first write of each
//! kind after start-up used four times Redis's memory, which a `maxmemory` margin of 100 KB
//! noticed.

/// Largest value tracked (1 s in ns); larger samples are counted here.
pub const MAX_NS: u64 = 1_000_000_000;
/// log2 of the sub-bucket count (256: two significant digits).
const SUB_BUCKET_BITS: u32 = 8;
const SUB_BUCKET_COUNT: u64 = 1 << SUB_BUCKET_BITS;
const SUB_BUCKET_HALF_BITS: u32 = SUB_BUCKET_BITS - 1;
const SUB_BUCKET_HALF: u64 = 1 << SUB_BUCKET_HALF_BITS;
/// Power-of-two buckets needed to reach `MAX_NS`.
const BUCKETS: u64 = 23;
/// Counters in the flat array.
pub const COUNTS_LEN: usize = ((BUCKETS + 1) * SUB_BUCKET_HALF) as usize;

/// Counters per group (a half power-of-two range).
const GROUP: usize = SUB_BUCKET_HALF as usize;
/// Groups in the flat layout.
const GROUPS: usize = COUNTS_LEN / GROUP;

/// One command's latency distribution.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// The flat layout's counters, [`GROUP`] at a time; a group never counted is absent.
    groups: [Option<Box<[u64; GROUP]>>; GROUPS],
    total: u64,
}

fn bucket_of(v: u64) -> u32 {
    let pow2ceiling = 64 - (v | (SUB_BUCKET_COUNT - 1)).leading_zeros();
    pow2ceiling - (SUB_BUCKET_HALF_BITS + 1)
}

fn index_of(v: u64) -> usize {
    let b = bucket_of(v);
    let sub = v >> b;
    (((b as u64 + 1) << SUB_BUCKET_HALF_BITS) + sub - SUB_BUCKET_HALF) as usize
}

/// The lowest value counted at `index`.
fn value_at(index: usize) -> u64 {
    let mut b = (index as i64 >> SUB_BUCKET_HALF_BITS) - 1;
    let mut sub = (index as u64 & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
    if b < 0 {
        sub -= SUB_BUCKET_HALF;
        b = 0;
    }
    sub << b
}

/// The lowest value counted with `v`.
fn lowest_equivalent(v: u64) -> u64 {
    let b = bucket_of(v);
    (v >> b) << b
}

/// The highest value counted with `v`.
fn highest_equivalent(v: u64) -> u64 {
    let b = bucket_of(v);
    let sub = v >> b;
    let range_bits = if sub >= SUB_BUCKET_COUNT { b + 1 } else { b };
    lowest_equivalent(v) + (1u64 << range_bits) - 1
}

impl Histogram {
    /// Counts one sample of `ns` nanoseconds (clamped to 1 ns .. 1 s, as Redis).
    pub fn record(&mut self, ns: u64) {
        let v = ns.clamp(1, MAX_NS);
        *self.slot(index_of(v)) += 1;
        self.total += 1;
    }

    /// The counter at `index` (< [`COUNTS_LEN`]), its group allocated if needed.
    fn slot(&mut self, index: usize) -> &mut u64 {
        &mut self.groups[index / GROUP].get_or_insert_with(|| Box::new([0; GROUP]))[index % GROUP]
    }

    /// The counter at `index` (0 past the end or in a group never counted).
    fn count(&self, index: usize) -> u64 {
        self.groups.get(index / GROUP).and_then(Option::as_deref).map_or(0, |g| g[index % GROUP])
    }

    /// The counters in index order (every index of the flat layout).
    fn counts(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.iter().flat_map(|g| {
            let group: &[u64] = g.as_deref().map_or(&[0; GROUP], |g| &g[..]);
            group.iter().copied()
        })
    }

    /// Samples counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The non-zero counters as (index, count), to carry between shards.
    pub fn sparse(&self) -> Vec<(usize, u64)> {
        self.counts().enumerate().filter(|&(_, c)| c > 0).collect()
    }

    /// Adds counters carried by [`Histogram::sparse`] (indexes out of range are ignored).
    pub fn add_sparse(&mut self, parts: &[(usize, u64)]) {
        for &(i, c) in parts {
            if i < COUNTS_LEN {
                *self.slot(i) += c;
                self.total += c;
            }
        }
    }

    /// The value (ns) at `percentile` (0..=100), as HdrHistogram reports it.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let p = percentile.min(100.0);
        let wanted = (((p / 100.0) * self.total as f64) + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut seen = 0;
        let mut value = 0;
        for (i, c) in self.counts().enumerate() {
            seen += c;
            if seen >= wanted {
                value = value_at(i);
                break;
            }
        }
        if percentile == 0.0 {
            lowest_equivalent(value)
        } else {
            highest_equivalent(value)
        }
    }

    /// The cumulative distribution over power-of-two ranges from 1024 ns, in microseconds:
    /// (upper bound µs, samples up to it), only where the count grows (Redis's LATENCY
    /// HISTOGRAM, HdrHistogram's logarithmic iterator).
    pub fn cdf_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut index: i64 = -1;
        let mut cumulative = 0u64;
        let mut value = 0u64;
        let mut highest = 0u64;
        let mut level = 1024u64;
        let mut level_lowest = lowest_equivalent(level);
        let mut previous = 0u64;
        loop {
            let more_buckets = (index + 1) < COUNTS_LEN as i64;
            let has_next = cumulative < self.total;
            let peek_above = more_buckets && value_at((index + 1) as usize) > level_lowest;
            if !(has_next || peek_above) {
                break;
            }
            // One step of the iterator: move until the value reaches the reporting level.
            loop {
                if value >= level_lowest {
                    level *= 2;
                    level_lowest = lowest_equivalent(level);
                    break;
                }
                index += 1;
                if index >= COUNTS_LEN as i64 {
                    break;
                }
                let i = index as usize;
                cumulative += self.count(i);
                value = value_at(i);
                highest = highest_equivalent(value);
            }
            if cumulative > previous {
                out.push((highest / 1000, cumulative));
            }
            previous = cumulative;
            if index >= COUNTS_LEN as i64 {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_round_trip() {
        for v in [1u64, 2, 255, 256, 257, 1000, 1024, 50_000_000, MAX_NS] {
            let i = index_of(v);
            assert!(i < COUNTS_LEN);
            assert!(value_at(i) <= v && v <= highest_equivalent(value_at(i)), "{v}");
        }
    }

    #[test]
    fn percentiles_and_cdf() {
        let mut h = Histogram::default();
        for _ in 0..99 {
            h.record(1_000);
        }
        h.record(50_000_000);
        assert_eq!(h.total(), 100);
        assert_eq!(h.value_at_percentile(50.0), 1_003);
        assert!(h.value_at_percentile(100.0) >= 50_000_000);
        let cdf = h.cdf_usec();
        assert_eq!(cdf.first(), Some(&(1, 99)));
        assert_eq!(cdf.last().map(|c| c.1), Some(100));
        let mut m = Histogram::default();
        m.add_sparse(&h.sparse());
        assert_eq!(m.value_at_percentile(99.9), h.value_at_percentile(99.9));
    }

    #[test]
    fn only_counted_groups_hold_memory() {
        let mut h = Histogram::default();
        for v in [1_000u64, 1_500, 2_000, MAX_NS] {
            h.record(v);
        }
        assert_eq!(h.groups.iter().filter(|g| g.is_some()).count(), 3);
        assert_eq!(h.counts().count(), COUNTS_LEN);
        assert_eq!(h.count(index_of(MAX_NS)), 1);
        assert_eq!(h.count(COUNTS_LEN), 0);
    }
}
