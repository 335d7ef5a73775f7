//! Unit tests of [`super::Master`].

use super::*;

fn attach(id: u64, psync: Option<(&str, i64)>, fd: i32) -> Attach {
    Attach {
        id,
        fd,
        addr: "127.0.0.1:5000".into(),
        laddr: "127.0.0.1:6379".into(),
        name: String::new(),
        db: 0,
        created_ms: 0,
        facts: ReplicaFacts { listening_port: 7000, capa_eof: true, capa_psync2: true, ..Default::default() },
        psync: psync.map(|(a, b)| (a.to_string(), b)),
        leftover: Vec::new(),
    }
}

fn settings() -> Settings {
    let mut s = Settings::from_config(&crate::config::Config::default());
    s.diskless_delay = 0;
    s
}

fn drain(rx: &mut crate::replication::attached::OutReceiver) -> Vec<u8> {
    let mut v = Vec::new();
    loop {
        match rx.try_recv(&mut v, 64 * 1024) {
            Some(Out::Data(b)) => v.extend_from_slice(&b),
            Some(Out::Stream(_)) => {}
            Some(Out::Close) | None => return v,
        }
    }
}

#[test]
fn full_then_partial_resync() {
    let repl = Replication::new();
    let mut m = Master::new(&repl, settings(), 1000);
    send(&repl, Request::Attach(Box::new(attach(1, Some(("?", -1)), -1))));
    let mut feed = repl.feed.take_receiver().unwrap();
    let item = feed.try_recv().unwrap();
    m.feed(&repl, item, 1000);
    let mut actions = m.take_actions();
    let Some(Action::Start { mut rx, .. }) = actions.drain(..1).next() else { panic!("no start") };
    let Action::Snapshot { id: snap, mut repl_info, .. } = actions.remove(0) else { panic!("no snapshot") };
    assert!(repl.feed.active());
    // A write before the mark is not the replica's; one after is.
    let u = |k: &str| FeedItem::Units {
        shard: 0,
        units: vec![Unit::new(0, vec![vec![Bytes::from("set"), Bytes::from(k.to_string()), Bytes::from("v")]])],
        atomic: false,
    };
    // Committed after the snapshot was asked for but before its mark: in the snapshot.
    m.feed(&repl, u("before"), 1000);
    m.commit(&repl);
    m.feed(&repl, FeedItem::Mark { shard: 0, snapshot: snap }, 1000);
    let off = m.offset();
    // Another shard's mark of the same snapshot right after changes nothing.
    m.feed(&repl, FeedItem::Mark { shard: 1, snapshot: snap }, 1000);
    let replid = repl.with_status(|s| s.replid.clone());
    let info = repl_info.try_recv().unwrap().unwrap();
    assert_eq!((info.replid.as_str(), info.offset), (replid.as_str(), off));
    m.feed(&repl, u("after"), 1000);
    m.commit(&repl);
    assert!(m.snapshot_pending(snap).is_some(), "its replica waits for it");
    m.snapshot_data(snap, Bytes::from_static(b"REDIS0010..."));
    m.snapshot_end(&repl, snap, Ok(()));
    let got = drain(&mut rx);
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with(&format!("+FULLRESYNC {replid} {off}\r\n$EOF:")), "{text}");
    assert!(text.contains("\r\nREDIS0010..."), "{text}");
    assert!(!text.contains("before") && !text.contains("after"), "stream withheld until ACK");
    m.ack(&repl, 1, off, 1000);
    let text = String::from_utf8_lossy(&drain(&mut rx)).into_owned();
    assert!(text.starts_with("*2\r\n$6\r\nSELECT") && text.contains("after") && !text.contains("before"), "{text}");
    // The replica goes away and comes back at its offset: +CONTINUE with the missed bytes.
    m.remove(&repl, 1, 1000);
    m.feed(&repl, u("missed"), 1000);
    m.commit(&repl);
    let end = m.offset();
    send(&repl, Request::Attach(Box::new(attach(2, Some((&replid, off as i64 + 1)), -1))));
    let item = feed.try_recv().unwrap();
    m.feed(&repl, item, 1000);
    let Some(Action::Start { mut rx, .. }) = m.take_actions().into_iter().next() else { panic!() };
    let text = String::from_utf8_lossy(&drain(&mut rx)).into_owned();
    assert!(text.starts_with(&format!("+CONTINUE {replid}\r\n*2\r\n$6\r\nSELECT")), "{text}");
    assert!(text.contains("after") && text.contains("missed"));
    assert!(SYNC_PARTIAL_OK.load(Ordering::Relaxed) >= 1);
    assert_eq!(end, repl.offset());
}

/// A replica without sub-replicas keeps its master's stream in its backlog from the sync's
/// offset on; a partial resync goes on with it, a full resync starts a new one.
#[test]
fn a_replica_keeps_its_masters_stream_in_its_backlog() {
    let repl = Replication::new();
    repl.with_status(|s| s.master = Some(super::super::MasterLinkStatus::connecting("127.0.0.1", 1, 0)));
    let mut m = Master::new(&repl, settings(), 1000);
    let mut feed = repl.feed.take_receiver().unwrap();
    let mut drain = |m: &mut Master| {
        while let Some(item) = feed.try_recv() {
            m.feed(&repl, item, 1000);
        }
        m.commit(&repl);
        m.publish(&repl);
        repl.with_status(|s| (s.backlog_active, s.backlog_first_byte_offset, s.backlog_histlen))
    };
    // The link, as after a full sync at offset 100: the start, then the applied bytes.
    repl.set_offset(100);
    repl.master_stream_starts(100, true);
    let ping = Bytes::from_static(b"*1\r\n$4\r\nping\r\n");
    repl.push_raw(ping.clone(), 114);
    assert_eq!(drain(&mut m), (true, 101, 14));
    assert!(repl.feed.active(), "recording starts at a promotion");
    assert_eq!((m.offset(), repl.offset()), (114, 114));
    // The link dropped and continued where it was: the same backlog.
    repl.master_stream_starts(114, false);
    repl.push_raw(ping, 128);
    assert_eq!(drain(&mut m), (true, 101, 28));
    assert_eq!(
        m.backlog.as_ref().and_then(|b| b.borrow().tail_from(115)).as_deref(),
        Some(&b"*1\r\n$4\r\nping\r\n"[..])
    );
    // A full resync at another offset: a new history, a new backlog.
    repl.set_offset(500);
    repl.master_stream_starts(500, true);
    assert_eq!(drain(&mut m), (true, 501, 0));
    assert_eq!(repl.offset(), 500);
}
