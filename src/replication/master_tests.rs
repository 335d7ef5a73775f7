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
    while let Some(Out::Data(b)) = rx.try_recv() {
        v.extend_from_slice(&b);
    }
    v
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
