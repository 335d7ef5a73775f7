//! The fuzz targets on stable: every seed (captured from redis-server 7.0 by
//! `fuzz/capture_seeds.sh`) and every input a fuzz run once failed on (`fuzz/regressions/`) is fed
//! through the same entry points the cargo-fuzz targets use (`slotcore::fuzzing`), then a short,
//! deterministic mutation run over the seeds stands in for the nightly fuzzer.

use bytes::{Bytes, BytesMut};
use slotcore::fuzzing;
use std::path::{Path, PathBuf};
use std::time::Duration;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("resp", fuzzing::resp),
    ("bus", fuzzing::bus),
    ("rdb", fuzzing::rdb),
    ("restore", fuzzing::restore),
    ("aof", fuzzing::aof),
    ("config", fuzzing::config),
];

/// Mutated inputs tried per target and seed file in the short run.
const MUTATIONS_PER_SEED: usize = 300;

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Vec<u8>)> =
        rd.filter_map(|e| e.ok()).map(|e| e.path()).map(|p| (p.clone(), std::fs::read(&p).expect("read"))).collect();
    out.sort();
    out
}

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target)
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let s = files(&fuzz_dir("seeds", target));
    assert!(!s.is_empty(), "no seeds for {target}");
    s
}

#[test]
fn seeds_and_regressions_replay() {
    for (name, run) in TARGETS {
        for kind in ["seeds", "regressions"] {
            for (path, data) in files(&fuzz_dir(kind, name)) {
                eprintln!("{name}: {}", path.display());
                run(&data);
            }
        }
    }
}

/// The captures are valid input: each must be accepted, not just survive.
#[test]
fn redis_captures_are_accepted() {
    for (path, data) in seeds("rdb") {
        let l = slotcore::persist::file::load(&data, 0, 16).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(l.records.len() >= 10, "{}: {} keys", path.display(), l.records.len());
    }
    for (path, data) in seeds("restore") {
        slotcore::persist::dump::restore(&data).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    }
    for (path, data) in seeds("bus") {
        slotcore::cluster::bus::codec::BusMessage::decode(&data)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    }
    for (path, data) in seeds("aof") {
        if path.extension().is_some_and(|e| e == "manifest") {
            let text = String::from_utf8(data).expect("utf-8");
            slotcore::aof::manifest::Manifest::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else {
            let p = slotcore::aof::load::parse(Bytes::from(data), "seed", 0, 16)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(p.valid_up_to, None, "{}", path.display());
            assert!(!p.cmds.is_empty() || !p.records.is_empty(), "{}", path.display());
        }
    }
    for (path, data) in seeds("config") {
        let text = String::from_utf8(data).expect("utf-8");
        slotcore::config::parse::load(None, &text).unwrap_or_else(|e| panic!("{}: {}", path.display(), e.fatal_text()));
    }
    for (path, data) in seeds("resp") {
        let mut buf = BytesMut::from(&data[..]);
        let mut out = Vec::new();
        let r = slotcore::protocol::request::parse_requests(&mut buf, &Default::default(), &mut out);
        assert!(r.is_ok() && !out.is_empty(), "{}: {r:?}", path.display());
    }
}

/// xorshift64*: repeatable mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A libFuzzer-like mutation: flip, set, insert, erase, duplicate, or an interesting number.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => data[at] = rng.next() as u8,
            2 => data.insert(at, rng.next() as u8),
            3 if at < data.len() => {
                let n = rng.below(data.len() - at).min(16) + 1;
                data.drain(at..at + n);
            }
            4 if at < data.len() => {
                let n = rng.below(data.len() - at).min(32) + 1;
                let piece = data[at..at + n].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, piece);
            }
            5 if at + 4 <= data.len() => {
                let v = [0u32, 1, 0x7f, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff][rng.below(7)];
                data[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            6 if at < data.len() => {
                let digits = [&b"-1"[..], b"0", b"9223372036854775807", b"4294967296", b"99999999999"][rng.below(5)];
                data.splice(at..at, digits.iter().copied());
            }
            _ => data.truncate(at),
        }
    }
}

/// A short run by default; `SLOTCORE_FUZZ_MUTATIONS=n` (per seed), `SLOTCORE_FUZZ_SECONDS=s` (cycle
/// the seeds for s seconds per target) and `SLOTCORE_FUZZ_TARGET=name` make it a long one without
/// nightly (mutation-based, not coverage-guided).
#[test]
fn short_mutation_run() {
    let per_seed = std::env::var("SLOTCORE_FUZZ_MUTATIONS").ok().and_then(|v| v.parse().ok());
    let only = std::env::var("SLOTCORE_FUZZ_TARGET").ok();
    let budget = std::env::var("SLOTCORE_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs);
    for (i, (name, run)) in TARGETS.into_iter().enumerate() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
        let started = std::time::Instant::now();
        let mut execs = 0u64;
        let seeds = seeds(name);
        let rounds = if budget.is_some() { usize::MAX } else { 1 };
        for (_, seed) in seeds.iter().cycle().take(seeds.len().saturating_mul(rounds)) {
            if budget.is_some_and(|b| started.elapsed() > b) {
                break;
            }
            for _ in 0..per_seed.unwrap_or(MUTATIONS_PER_SEED) {
                execs += 1;
                let mut data = seed.clone();
                mutate(&mut rng, &mut data);
                if std::panic::catch_unwind(|| run(&data)).is_err() {
                    let path = std::env::temp_dir().join(format!("slotcore-fuzz-{name}-{:016x}", rng.next()));
                    std::fs::write(&path, &data).expect("save the failing input");
                    panic!("{name}: a mutated seed failed; input saved to {}", path.display());
                }
            }
        }
        eprintln!("{name}: {execs} mutated inputs in {:.1}s", started.elapsed().as_secs_f64());
    }
}
