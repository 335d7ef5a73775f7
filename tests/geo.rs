//! Geo commands compared with a real redis-server, byte for byte: positions, hashes,
//! distances, radius/box searches with every option, STORE/STOREDIST, errors, RESP3.

mod common;
use common::{assert_same, Raw, Server};

const SETUP: &[&[&str]] = &[
    &["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
    &["GEOADD", "Sicily", "NX", "CH", "13.583333", "37.316667", "Agrigento", "13.361389", "38.1", "Palermo"],
    &["GEOADD", "Sicily", "XX", "CH", "12.758489", "38.788135", "Palermo", "1", "1", "nowhere"],
    &["GEOADD", "Sicily", "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2"],
    &["GEOADD", "world", "-122.4194", "37.7749", "sf", "-73.935242", "40.730610", "nyc", "2.3522", "48.8566", "paris"],
    &["GEOADD", "world", "139.6917", "35.6895", "tokyo", "-179.9", "-85", "southwest", "179.9", "85", "northeast"],
    &["GEOADD", "world", "0", "0", "origin", "-0.1278", "51.5074", "london", "151.2093", "-33.8688", "sydney"],
];

const CASES: &[&[&str]] = &[
    &["GEOPOS", "Sicily", "Palermo", "Catania", "nonexisting"],
    &["GEOPOS", "nokey", "a"],
    &["GEOHASH", "Sicily", "Palermo", "Catania", "nonexisting"],
    &["GEOHASH", "world", "sf", "southwest", "northeast", "origin"],
    &["GEODIST", "Sicily", "Palermo", "Catania"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "MI"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "ft"],
    &["GEODIST", "Sicily", "Palermo", "nonexisting"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "parsecs"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"],
    &["GEODIST", "nokey", "a", "b"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "ASC"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD", "WITHDIST", "WITHHASH", "DESC"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "2"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1", "ANY"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"],
    &["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "abc", "km"],
    &["GEORADIUS", "Sicily", "200", "37", "200", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "BOGUS"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst", "WITHDIST"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst"],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst2"],
    &["ZRANGE", "dst2", "0", "-1", "WITHSCORES"],
    &["GEORADIUS", "Sicily", "15", "37", "1", "m", "STORE", "dst"],
    &["EXISTS", "dst"],
    &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "dst"],
    &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "WITHDIST"],
    &["GEORADIUSBYMEMBER", "Sicily", "Agrigento", "100", "km"],
    &["GEORADIUSBYMEMBER", "Sicily", "Agrigento", "100", "km", "WITHDIST", "WITHCOORD"],
    &["GEORADIUSBYMEMBER", "Sicily", "nonexisting", "100", "km"],
    &["GEORADIUSBYMEMBER", "nokey", "x", "100", "km"],
    &["GEORADIUSBYMEMBER_RO", "Sicily", "Agrigento", "100", "km", "COUNT", "1"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHDIST"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "ASC", "WITHCOORD"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "DESC", "COUNT", "3"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37"],
    &["GEOSEARCH", "Sicily", "BYRADIUS", "10", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "m"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "-1", "2", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STORE", "x"],
    &["geosearch", "nokey", "FROMMEMBER", "x", "BYRADIUS", "10", "km"],
    &["GEOSEARCHSTORE", "dst3", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
    &["ZRANGE", "dst3", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "dst3", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST", "COUNT", "2"],
    &["ZRANGE", "dst3", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "dst3", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"],
    &["GEOSEARCHSTORE", "dst3", "nokey", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
    &["EXISTS", "dst3"],
    &["GEOSEARCH", "world", "FROMLONLAT", "0", "0", "BYRADIUS", "20000", "km", "ASC"],
    &["GEOSEARCH", "world", "FROMLONLAT", "0", "0", "BYRADIUS", "7000", "km", "DESC", "WITHDIST"],
    &["GEOSEARCH", "world", "FROMLONLAT", "179", "84", "BYRADIUS", "500", "km", "WITHDIST"],
    &["GEOSEARCH", "world", "FROMLONLAT", "-179", "-84", "BYBOX", "1000", "1000", "km", "WITHDIST"],
    &["GEOSEARCH", "world", "FROMMEMBER", "paris", "BYRADIUS", "400", "km", "WITHDIST", "WITHHASH"],
    &["GEOSEARCH", "world", "FROMMEMBER", "sf", "BYBOX", "9000", "9000", "mi", "ASC"],
    &["GEOADD", "Sicily", "200", "10", "bad"],
    &["GEOADD", "Sicily", "10", "86", "bad"],
    &["GEOADD", "Sicily", "x", "10", "bad"],
    &["GEOADD", "Sicily", "10", "10"],
    &["GEOADD", "Sicily", "NX", "XX", "10", "10", "bad"],
    &["SET", "str", "x"],
    &["GEOADD", "str", "10", "10", "m"],
    &["GEOPOS", "str", "m"],
    &["GEOSEARCH", "str", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "m"],
];

fn setup(a: &mut Raw, b: &mut Raw) {
    assert_same(a, b, SETUP);
}

#[test]
fn geo_commands_match_redis_resp2() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    setup(&mut a, &mut b);
    assert_same(&mut a, &mut b, CASES);
}

#[test]
fn geo_commands_match_redis_resp3() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["HELLO", "3"]);
    setup(&mut a, &mut b);
    assert_same(&mut a, &mut b, CASES);
}

#[test]
fn geo_store_across_shards() {
    // STORE's destination lives on another shard than the source: the command still runs
    // atomically on both keys.
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    setup(&mut a, &mut b);
    let mut cases: Vec<Vec<String>> = Vec::new();
    for i in 0..8 {
        let d = format!("dest{i}");
        cases.push(vec![
            "GEORADIUS".into(),
            "Sicily".into(),
            "15".into(),
            "37".into(),
            "300".into(),
            "km".into(),
            "STOREDIST".into(),
            d.clone(),
        ]);
        cases.push(vec![
            "GEOSEARCHSTORE".into(),
            format!("g{i}"),
            "world".into(),
            "FROMMEMBER".into(),
            "paris".into(),
            "BYRADIUS".into(),
            "1000".into(),
            "km".into(),
        ]);
        cases.push(vec!["ZRANGE".into(), d, "0".into(), "-1".into(), "WITHSCORES".into()]);
        cases.push(vec!["ZRANGE".into(), format!("g{i}"), "0".into(), "-1".into(), "WITHSCORES".into()]);
    }
    let refs: Vec<Vec<&str>> = cases.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
    let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    assert_same(&mut a, &mut b, &slices);
}

/// The payload of a DUMP reply (`$<len>\r\n<payload>\r\n`).
fn payload(reply: &[u8]) -> Vec<u8> {
    let nl = reply.iter().position(|&c| c == b'\n').unwrap_or(0);
    reply[nl + 1..reply.len() - 2].to_vec()
}

/// Geo keys (a listpack one and a skiplist one past 128 members) cross both ways through
/// DUMP/RESTORE, and through slotcore's RDB file into redis-server, with searches unchanged.
#[test]
fn geo_keys_cross_with_redis_by_dump_and_rdb() {
    let s = Server::slotcore_shards(2);
    let o = Server::redis(&[]);
    let (mut a, mut b) = (s.raw(), o.raw());
    setup(&mut a, &mut b);
    for r in [&mut a, &mut b] {
        for i in 0..300 {
            let (lon, lat) = (format!("{}", -50.0 + i as f64 * 0.31), format!("{}", 10.0 + (i % 17) as f64 * 1.7));
            r.cmd(&["GEOADD", "grid", &lon, &lat, &format!("p{i}")]);
        }
    }
    let searches: &[&[&str]] = &[
        &[
            "GEOSEARCH",
            "{k}",
            "FROMLONLAT",
            "13",
            "38",
            "BYRADIUS",
            "400",
            "km",
            "ASC",
            "WITHCOORD",
            "WITHDIST",
            "WITHHASH",
        ],
        &["GEOSEARCH", "{k}", "FROMLONLAT", "-20", "20", "BYBOX", "2000", "2000", "km", "DESC", "COUNT", "7"],
        &["OBJECT", "ENCODING", "{k}"],
        &["ZCARD", "{k}"],
    ];
    let run = |r: &mut Raw, key: &str| -> Vec<String> {
        searches
            .iter()
            .map(|c| r.cmd(&c.iter().map(|x| if *x == "{k}" { key } else { x }).collect::<Vec<_>>()))
            .collect()
    };
    for key in ["Sicily", "grid"] {
        let want = run(&mut b, key);
        assert_eq!(run(&mut a, key), want, "{key} before crossing");
        let from_redis = payload(&b.cmd_bytes(&[b"DUMP", key.as_bytes()]));
        let from_slotcore = payload(&a.cmd_bytes(&[b"DUMP", key.as_bytes()]));
        let copy = format!("{key}-copy");
        assert_eq!(a.cmd_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &from_redis]), b"+OK\r\n");
        assert_eq!(b.cmd_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &from_slotcore]), b"+OK\r\n");
        assert_eq!(run(&mut a, &copy), want, "{key} restored in slotcore");
        assert_eq!(run(&mut b, &copy), want, "{key} restored in redis-server");
    }
    // slotcore's RDB file, loaded by redis-server.
    assert_eq!(a.cmd(&["SAVE"]), "+OK\r\n");
    let d = std::env::temp_dir().join(format!("slotcore-geo-rdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::copy(s.dir.join("dump.rdb"), d.join("dump.rdb")).expect("copy rdb");
    let o2 = Server::redis(&["--dir", d.to_str().expect("utf-8 dir")]);
    let mut c = o2.raw();
    for key in ["Sicily", "grid", "world"] {
        assert_eq!(run(&mut c, key), run(&mut b, key), "{key} through the RDB file");
    }
    let _ = std::fs::remove_dir_all(&d);
}
