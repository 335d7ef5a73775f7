use super::*;
use crate::persist::dump::{create, restore, PayloadError};
use crate::storage::test_rng::Rng;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hash(pairs: &[(&str, &str)]) -> Value {
    let mut h = HashValue::default();
    for (f, v) in pairs {
        h.set(f.as_bytes(), v.as_bytes());
    }
    Value::Hash(h)
}

fn list(els: &[&[u8]]) -> Value {
    let mut l = ListValue::new();
    for e in els {
        l.push_back(e);
    }
    Value::List(Box::new(l))
}

fn zset(pairs: &[(&str, f64)]) -> Value {
    let mut z = ZSetValue::default();
    for (m, s) in pairs {
        z.insert(m.as_bytes(), *s);
    }
    Value::ZSet(z)
}

fn set(ms: &[&str]) -> Value {
    let mut s = SetValue::default();
    for m in ms {
        s.add(m.as_bytes());
    }
    Value::Set(s)
}

fn body(v: &Value) -> Vec<u8> {
    body_with(v, true)
}

fn body_with(v: &Value, compress: bool) -> Vec<u8> {
    let mut out = vec![type_of(v)];
    put_value(&mut out, v, compress);
    out
}

fn read(b: &[u8]) -> Result<Value> {
    let mut r = Reader::new(b);
    let t = r.u8()?;
    let v = read_value(&mut r, t)?;
    if r.remaining() != 0 {
        return Err(BadData::Corrupt);
    }
    Ok(v)
}

#[test]
fn captured_payloads() {
    let h = hash(&[("f1", "v1"), ("f2", "2")]);
    let want =
        hex("10 15 15 00 00 00 04 00 82 66 31 03 82 76 31 03 82 66 32 03 02 01 ff 0a 00 5c 5e a8 13 fe ec 1f f5");
    assert_eq!(create(&h, true), want);
    let l = list(&[b"a", b"1", b"b"]);
    assert_eq!(create(&l, true), hex("12 01 02 0f 0f000000 0300 8161 02 0101 8162 02 ff 0a00 9043a34ceb8e1b1c"));
    let z = zset(&[("a", 1.5), ("b", 2.0)]);
    let want = hex("11 14 14000000 0400 8161 02 83 312e35 04 8162 02 0201 ff 0a00 fa02b425af188763");
    assert_eq!(create(&z, true), want);
    let s = set(&["1", "2", "3"]);
    assert_eq!(body(&s), hex("0b 0e 02000000 03000000 0100 0200 0300"));
    for v in [h, l, z, s] {
        assert_eq!(restore(&create(&v, true)), Ok(v));
    }
}

#[test]
fn zset_scores_as_d2string() {
    assert_eq!(d2string(0.1), "0.10000000000000001");
    assert_eq!(d2string(-2.5e10), "-25000000000");
    assert_eq!(d2string(1.5), "1.5");
    assert_eq!(d2string(1e20), "1e+20");
    assert_eq!(d2string(f64::INFINITY), "inf");
    assert_eq!(d2string(-0.0), "-0");
    let z = zset(&[("m", -2.5e10), ("n", 0.1), ("o", f64::NEG_INFINITY)]);
    let b = body_with(&z, false);
    assert!(b.windows(9).any(|w| w[0] == 0xF4 && w[1..] == (-25000000000i64).to_le_bytes()));
    assert!(b.windows(19).any(|w| w == b"0.10000000000000001"));
    assert_eq!(read(&b), Ok(z));
}

#[test]
fn big_encodings_round_trip() {
    let mut rng = Rng(7);
    let mut h = HashValue::default();
    let mut s = SetValue::default();
    let mut z = ZSetValue::default();
    let mut l = ListValue::new();
    for i in 0..2000u64 {
        let k = format!("key:{}:{}", i, rng.next() % 1000);
        h.set(k.as_bytes(), &vec![b'v'; (i % 70) as usize]);
        s.add(k.as_bytes());
        z.insert(k.as_bytes(), (rng.next() % 10000) as f64 / 7.0);
        l.push_back(&vec![b'e'; (i % 300) as usize]);
        l.push_back(itoa::Buffer::new().format(i as i64 * 1_000_003).as_bytes());
    }
    l.push_back(&vec![b'x'; 20000]);
    let mut ints = SetValue::default();
    for i in 0..300 {
        ints.add(itoa::Buffer::new().format(i * 1_000_000_007i64).as_bytes());
    }
    let vals = [Value::Hash(h), Value::Set(s), Value::ZSet(z), Value::List(Box::new(l)), Value::Set(ints)];
    assert_eq!(vals.iter().map(type_of).collect::<Vec<_>>(), [HASH, SET, ZSET_2, LIST_QUICKLIST_2, SET_INTSET]);
    for v in vals {
        for compress in [true, false] {
            let got = restore(&create(&v, compress)).unwrap();
            assert_eq!(got, v);
            assert_eq!(got.encoding(), v.encoding());
        }
    }
}

#[test]
fn list_nodes_split_like_quicklist() {
    let els: Vec<Vec<u8>> = (0..2000).map(|i| format!("element-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = els.iter().map(|e| &e[..]).collect();
    let b = body(&list(&refs));
    let mut r = Reader::new(&b[1..]);
    let nodes = r.length().unwrap();
    assert!(nodes > 1);
    for _ in 0..nodes {
        assert_eq!(r.length(), Ok(2));
        assert!(r.string().unwrap().len() <= 8192);
    }
}

#[test]
fn legacy_types_load() {
    // Plain list, set, hash, text-score zset.
    assert_eq!(read(b"\x01\x02\x01a\xc0\x05"), Ok(list(&[b"a", b"5"])));
    assert_eq!(read(b"\x02\x02\x01a\x01b"), Ok(set(&["a", "b"])));
    assert_eq!(read(b"\x04\x01\x01f\x01v"), Ok(hash(&[("f", "v")])));
    let z = read(b"\x03\x02\x01a\x031.5\x01b\xfe").unwrap();
    assert_eq!(z, zset(&[("a", 1.5), ("b", f64::INFINITY)]));
    // Zipmap hash.
    let mut zm = b"\x09".to_vec();
    put_string(&mut zm, b"\x01\x01f\x02\x00vv\xff", false);
    assert_eq!(read(&zm), Ok(hash(&[("f", "vv")])));
    // Ziplists: "a", 1 (immediate) as list (10), hash (13) and a 2-node quicklist (14).
    let zl = hex("10000000 0d000000 0200 00 0161 03 f2 ff");
    for (t, want) in [(LIST_ZIPLIST, list(&[b"a", b"1"])), (HASH_ZIPLIST, hash(&[("a", "1")]))] {
        let mut b = vec![t];
        put_string(&mut b, &zl, false);
        assert_eq!(read(&b), Ok(want));
    }
    let mut b = vec![LIST_QUICKLIST, 2];
    put_string(&mut b, &zl, false);
    put_string(&mut b, &zl, false);
    assert_eq!(read(&b), Ok(list(&[b"a", b"1", b"a", b"1"])));
    let mut b = vec![ZSET_ZIPLIST];
    put_string(&mut b, &zl, false);
    assert_eq!(read(&b), Ok(zset(&[("a", 1.0)])));
}

#[test]
fn bad_values_are_errors() {
    // Duplicates, odd counts, NaN, empty collections, unknown types.
    assert_eq!(read(b"\x02\x02\x01a\x01a"), Err(BadData::Corrupt));
    assert_eq!(read(b"\x04\x02\x01f\x01v\x01f\x01w"), Err(BadData::Corrupt));
    assert_eq!(read(b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x7f"), Err(BadData::Corrupt));
    assert_eq!(read(b"\x02\x00"), Err(BadData::EmptyKey));
    assert_eq!(read(b"\x12\x01\x03\x01a"), Err(BadData::Corrupt));
    assert_eq!(read(b"\x13\x00"), Err(BadData::Corrupt));
    let mut w = listpack::Writer::new();
    w.push(b"f");
    let mut b = vec![HASH_LISTPACK];
    put_string(&mut b, &w.finish(), false);
    assert_eq!(read(&b), Err(BadData::Corrupt));
}

#[test]
fn truncated_and_garbage_payloads_never_panic() {
    let mut rng = Rng(99);
    let samples = [
        hash(&[("f1", "v1"), ("f2", "2")]),
        list(&[b"a", b"1", b"b"]),
        zset(&[("a", 1.5), ("b", 2.0)]),
        set(&["1", "2", "3"]),
        set(&["x", "y"]),
        Value::Str(StrValue::from_bytes(&[b'a'; 40])),
    ];
    for v in &samples {
        let p = create(v, true);
        for cut in 0..p.len() {
            assert!(restore(&p[..cut]).is_err());
        }
        let b = body(v);
        for cut in 0..b.len() {
            assert!(read(&b[..cut]).is_err());
        }
        for _ in 0..2000 {
            let mut g = b.clone();
            let i = (rng.next() as usize) % g.len();
            g[i] = rng.next() as u8;
            let _ = read(&g);
            // A payload with a correct CRC around garbage reaches the decoder.
            let mut q = g.clone();
            q.extend_from_slice(&[10, 0]);
            let crc = rdb::crc64(&q);
            q.extend_from_slice(&crc.to_le_bytes());
            let r = restore(&q);
            assert!(r.is_ok() || r == Err(PayloadError::BadData));
        }
    }
}
