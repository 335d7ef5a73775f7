//! LATENCY: the latency monitor's events (LATEST, HISTORY, RESET, DOCTOR) and the per-command
//! latency histograms (HISTOGRAM). Every shard keeps its own events and histograms; the
//! subcommands fan out and merge at home.

use super::ctx::{ClientCtx, ShardState};
use super::histogram::Histogram;
use super::server::help_lines;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::table;
use crate::protocol::Reply;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[rustfmt::skip]
pub(super) static SUBCOMMANDS: &[CommandSpec] = &[
    spec("doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(doctor)),
    spec("histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(histogram)),
    spec("latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(latest)),
    spec("graph", 3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(graph)),
    spec("history", 3, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(history)),
    spec("reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, "@admin @slow @dangerous", Keys::None, Exec::Node(reset)),
    spec("help", 2, LOADING | STALE, "@slow", Keys::None, Exec::Node(help)),
];

/// Per-shard latency data as (event, max, [time, ms]...) replies, merged at home.
fn dump(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    Reply::Array(
        shard
            .latency
            .iter()
            .map(|(name, e)| {
                let mut v = vec![Reply::bulk(name.as_bytes()), Reply::Int(e.max as i64)];
                for (t, ms) in &e.samples {
                    v.push(Reply::Int(*t as i64));
                    v.push(Reply::Int(*ms as i64));
                }
                Reply::Array(v)
            })
            .collect(),
    )
}

/// One event merged over shards: its all-time maximum and the worst sample per second.
type EventSamples = (i64, BTreeMap<i64, i64>);
/// Every event merged over shards.
type Merged = BTreeMap<String, EventSamples>;

fn merge(replies: Vec<Reply>) -> Merged {
    let mut out = Merged::new();
    for r in replies {
        let Reply::Array(events) = r else { continue };
        for ev in events {
            let Reply::Array(v) = ev else { continue };
            let (Some(Reply::Bulk(name)), Some(Reply::Int(max))) = (v.first(), v.get(1)) else { continue };
            let e = out.entry(String::from_utf8_lossy(name).into_owned()).or_default();
            e.0 = e.0.max(*max);
            for pair in v[2..].chunks(2) {
                if let [Reply::Int(t), Reply::Int(ms)] = pair {
                    let s = e.1.entry(*t).or_default();
                    *s = (*s).max(*ms);
                }
            }
        }
    }
    out
}

fn latest(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::AllShards {
        run: dump,
        merge: Box::new(|_, replies| {
            Reply::Array(
                merge(replies)
                    .into_iter()
                    .filter_map(|(name, (max, samples))| {
                        let (t, ms) = samples.iter().next_back()?;
                        Some(Reply::Array(vec![
                            Reply::bulk(name.as_bytes()),
                            Reply::Int(*t),
                            Reply::Int(*ms),
                            Reply::Int(max),
                        ]))
                    })
                    .collect(),
            )
        }),
    }
}

/// A plan that merges every shard's samples and answers from event `args[2]`'s (None: the
/// event has no samples).
fn for_event(args: &[Bytes], answer: fn(&str, Option<&EventSamples>) -> Reply) -> Plan {
    let event = String::from_utf8_lossy(&args[2]).into_owned();
    Plan::AllShards { run: dump, merge: Box::new(move |_, replies| answer(&event, merge(replies).get(&event))) }
}

fn history(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    for_event(args, |_, e| {
        let samples = e.map(|e| e.1.clone()).unwrap_or_default();
        Reply::Array(samples.into_iter().map(|(t, ms)| Reply::Array(vec![Reply::Int(t), Reply::Int(ms)])).collect())
    })
}

/// LATENCY GRAPH <event> (`latency_graph`), over the last 160 samples merged from the shards.
fn graph(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    for_event(args, |event, e| {
        let Some((max, samples)) = e else {
            return Reply::error(format!("ERR No samples available for event '{event}'"));
        };
        let samples: Vec<(i64, i64)> = samples.iter().map(|(t, ms)| (*t, *ms)).collect();
        let recent = &samples[samples.len().saturating_sub(HISTORY_LEN)..];
        let now_s = (crate::storage::now_ms() / 1000) as i64;
        Reply::Verbatim(Bytes::from(super::latency_graph::render(event, recent, *max, now_s)))
    })
}

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
const HISTORY_LEN: usize = 160;

fn reset(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    fn run(shard: &mut ShardState, _db: usize, args: &[Bytes]) -> Reply {
        let before = shard.latency.len();
        if args.len() == 2 {
            shard.latency.clear();
        } else {
            shard.latency.retain(|k, _| !args[2..].iter().any(|a| a.eq_ignore_ascii_case(k.as_bytes())));
        }
        Reply::Int((before - shard.latency.len()) as i64)
    }
    Plan::AllShards {
        run,
        merge: Box::new(|_, r| {
            Reply::Int(r.iter().map(|x| if let Reply::Int(n) = x { *n } else { 0 }).max().unwrap_or(0))
        }),
    }
}

// ---- HISTOGRAM -----------------------------------------------------------------------------

/// A shard's histograms as (full name, [index, count]...) pairs (also carried by INFO).
pub(super) fn histograms_reply(shard: &ShardState) -> Reply {
    Reply::Array(
        shard
            .stats
            .cmdstats
            .iter()
            .filter_map(|(k, c)| Some((k, c.hist.as_ref()?)))
            .flat_map(|(k, h)| {
                let parts = h.sparse().into_iter().flat_map(|(i, n)| [Reply::Int(i as i64), Reply::Int(n as i64)]);
                [Reply::bulk(k.as_bytes()), Reply::Array(parts.collect())]
            })
            .collect(),
    )
}

fn dump_histograms(shard: &mut ShardState, _db: usize, _args: &[Bytes]) -> Reply {
    histograms_reply(shard)
}

/// Shards' [`histograms_reply`]s summed per command.
pub(super) fn merge_histograms<'a>(replies: impl IntoIterator<Item = &'a Reply>) -> BTreeMap<String, Histogram> {
    let mut all: BTreeMap<String, Histogram> = BTreeMap::new();
    for r in replies {
        let Reply::Array(v) = r else { continue };
        for pair in v.chunks(2) {
            let [Reply::Bulk(name), Reply::Array(parts)] = pair else { continue };
            let parts: Vec<(usize, u64)> = parts
                .chunks(2)
                .filter_map(|p| match p {
                    [Reply::Int(i), Reply::Int(n)] => Some((*i as usize, *n as u64)),
                    _ => None,
                })
                .collect();
            all.entry(String::from_utf8_lossy(name).into_owned()).or_default().add_sparse(&parts);
        }
    }
    all
}

fn cdf_reply(h: &Histogram) -> Reply {
    let buckets = h.cdf_usec().into_iter().map(|(us, n)| (Reply::Int(us as i64), Reply::Int(n as i64))).collect();
    Reply::Map(vec![
        (Reply::bulk(b"calls"), Reply::Int(h.total() as i64)),
        (Reply::bulk(b"histogram_usec"), Reply::Map(buckets)),
    ])
}

/// The full names LATENCY HISTOGRAM reports for one argument: the command (`get`,
/// `client|id`) and, for a container, its subcommands. Unknown names give none.
fn names_for(arg: &[u8]) -> Vec<&'static str> {
    let mut parts = arg.splitn(2, |&b| b == b'|');
    let Some(spec) = parts.next().and_then(table::lookup) else { return Vec::new() };
    match parts.next() {
        Some(sub) => table::lookup_sub(spec, sub).map(|s| vec![table::fullname(spec, Some(s))]).unwrap_or_default(),
        None => {
            std::iter::once(spec.name).chain(spec.subcommands.iter().map(|s| table::fullname(spec, Some(s)))).collect()
        }
    }
}

/// LATENCY HISTOGRAM [command ...]
fn histogram(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    let wanted: Option<Vec<&'static str>> =
        (args.len() > 2).then(|| args[2..].iter().flat_map(|a| names_for(a)).collect());
    Plan::AllShards {
        run: dump_histograms,
        merge: Box::new(move |_, replies| {
            let all = merge_histograms(&replies);
            let entries: Vec<(Reply, Reply)> = match &wanted {
                None => all.iter().map(|(name, h)| (Reply::bulk(name.as_bytes()), cdf_reply(h))).collect(),
                Some(names) => names
                    .iter()
                    .filter_map(|name| all.get(*name).map(|h| (Reply::bulk(name.as_bytes()), cdf_reply(h))))
                    .collect(),
            };
            Reply::Map(entries)
        }),
    }
}

// ---- DOCTOR --------------------------------------------------------------------------------

/// Redis's per-event statistics: samples, average, mean absolute deviation (ms), and the
/// seconds from the oldest sample to now.
fn event_stats(samples: &BTreeMap<i64, i64>, now_s: i64) -> (usize, i64, i64, i64) {
    let n = samples.len();
    if n == 0 {
        return (0, 0, 0, 0);
    }
    let avg = samples.values().sum::<i64>() / n as i64;
    let mad = samples.values().map(|v| (v - avg).abs()).sum::<i64>() / n as i64;
    let oldest = samples.keys().next().copied().unwrap_or(now_s);
    let period = (now_s - oldest).max(1);
    (n, avg, mad, period)
}

/// The report LATENCY DOCTOR prints, from the merged events and the configuration.
fn report(events: &Merged, cfg: &crate::config::Config, now_s: i64) -> String {
    let mut out = String::new();
    if events.is_empty() && cfg.latency_monitor_threshold == 0 {
        out.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n");
        return out;
    }
    let (mut slowlog_enable, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
    let (mut scheduler, mut hz, mut large_objects) = (false, false, false);
    let mut advices = 0;
    for (i, (event, (max, samples))) in events.iter().enumerate() {
        if i == 0 {
            out.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let (n, avg, mad, period) = event_stats(samples, now_s);
        let _ = write!(
            out,
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            i + 1,
            event,
            n,
            avg,
            mad,
            period as f64 / n.max(1) as f64,
            max
        );
        match event.as_str() {
            "command" => {
                if cfg.slowlog_log_slower_than < 0 {
                    slowlog_enable = true;
                    advices += 1;
                } else if cfg.slowlog_log_slower_than as u64 / 1000 > cfg.latency_monitor_threshold {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "expire-cycle" => {
                hz = true;
                large_objects = true;
                advices += 2;
            }
            _ => {}
        }
        out.push('\n');
    }
    if events.is_empty() && advices == 0 {
        out.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return out;
    }
    if advices == 0 {
        out.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return out;
    }
    out.push_str("\nI have a few advices for you:\n\n");
    let threshold_us = cfg.latency_monitor_threshold * 1000;
    if slowlog_enable {
        let _ = writeln!(out, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {threshold_us}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.");
    }
    if slowlog_tuning {
        let _ = writeln!(out, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold_us}'.");
    }
    if slowlog_inspect {
        out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        out.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n");
    }
    if hz && cfg.hz < 100 {
        out.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if large_objects {
        out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    out
}

fn doctor(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    Plan::AllShards {
        run: dump,
        merge: Box::new(|ctx, replies| {
            let now_s = (crate::storage::now_ms() / 1000) as i64;
            let text = report(&merge(replies), &ctx.node().config(), now_s);
            Reply::Verbatim(Bytes::from(text))
        }),
    }
}

fn help(_ctx: &mut ClientCtx<'_>, _args: &[Bytes]) -> Plan {
    help_lines(&[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help.",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctor_reports_events_and_advice() {
        let cfg = crate::config::Config { latency_monitor_threshold: 100, ..Default::default() };
        let mut events = Merged::new();
        assert!(report(&events, &cfg, 1000).starts_with("Dave, no latency spike"));
        events.insert("command".into(), (400, [(990, 300), (995, 400)].into_iter().collect()));
        let text = report(&events, &cfg, 1000);
        assert!(text.contains("1. command: 2 latency spikes (average 350ms, mean deviation 50ms, period 5.00 sec). Worst all time event 400ms."), "{text}");
        assert!(text.contains("Check your Slow Log"));
        let off = crate::config::Config::default();
        assert!(report(&Merged::new(), &off, 1000).starts_with("I'm sorry, Dave"));
    }

    #[test]
    fn histogram_names() {
        assert_eq!(names_for(b"get"), vec!["get"]);
        assert_eq!(names_for(b"client|id"), vec!["client|id"]);
        assert!(names_for(b"client").contains(&"client|list"));
        assert!(names_for(b"blabla").is_empty());
    }
}
