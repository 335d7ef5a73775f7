//! Unit tests of the packed list (a child module of `list`, so it sees the node layout).

use super::*;
use crate::storage::test_rng::Rng;

/// Checks the structure's invariants and that it holds exactly `model`.
fn check(l: &ListValue, model: &VecDeque<Vec<u8>>) {
    assert_eq!(l.len(), model.len());
    assert_eq!(l.is_empty(), model.is_empty());
    let mut total = 0;
    for n in &l.nodes {
        assert!(n.count > 0, "empty node");
        assert!(n.count == 1 || fits(n.buf.len(), n.count as usize), "node over the limit");
        let mut off = 0;
        for _ in 0..n.count {
            off = read_fwd(&n.buf, off).2;
        }
        assert_eq!(off, n.buf.len(), "count does not match the entries");
        total += n.count as usize;
    }
    assert_eq!(total, l.len());
    assert!(l.iter().eq(model.iter().map(|v| &v[..])));
    assert!(l.iter().rev().eq(model.iter().rev().map(|v| &v[..])));
}

fn model_of(l: &ListValue) -> VecDeque<Vec<u8>> {
    l.iter().map(<[u8]>::to_vec).collect()
}

#[test]
fn entries_round_trip_both_ways() {
    for len in [0usize, 1, 127, 128, 300, 16383, 16384, 100_000] {
        let e: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let size = entry_size(len);
        let mut buf = vec![0xAA; size + 3];
        write_entry(&mut buf[1..1 + size], &e);
        let (s, t, next) = read_fwd(&buf, 1);
        assert_eq!((&buf[s..t], next), (&e[..], 1 + size));
        let (st, s, t) = read_back(&buf, 1 + size);
        assert_eq!((st, &buf[s..t]), (1, &e[..]));
    }
    assert_eq!(entry_size(10), 12);
    assert_eq!(entry_size(200), 204);
}

#[test]
fn fill_limits_like_redis() {
    assert!(fits_fill(-2, 8192, 5000) && !fits_fill(-2, 8193, 2));
    assert!(fits_fill(-1, 4096, 1) && !fits_fill(-1, 4097, 1));
    assert!(fits_fill(-5, 65536, 1) && !fits_fill(-5, 65537, 1));
    assert!(fits_fill(3, 30, 3) && !fits_fill(3, 30, 4));
    assert!(!fits_fill(100, 8193, 2), "positive fill keeps the 8 KB safety limit");
    assert!(!fits_fill(0, 10, 1), "fill 0: one element per node");
}

#[test]
fn nodes_stay_within_8kb_and_index_across_nodes() {
    let mut l = ListValue::new();
    let mut model = VecDeque::new();
    for i in 0..5000 {
        let e = format!("element:{i}").into_bytes();
        if i % 2 == 0 {
            l.push_back(&e);
            model.push_back(e);
        } else {
            l.push_front(&e);
            model.push_front(e);
        }
    }
    check(&l, &model);
    assert!(l.node_count() >= 8, "{} nodes", l.node_count());
    for n in &l.nodes {
        assert!(n.buf.len() <= 8192);
    }
    for i in (0..5000).step_by(37) {
        assert_eq!(l.get(i), Some(&model[i][..]));
    }
    assert_eq!(l.get(5000), None);
    let got: Vec<&[u8]> = l.range(1234, 3456).collect();
    let want: Vec<&[u8]> = model.range(1234..3456).map(|v| &v[..]).collect();
    assert_eq!(got, want);
    let back: Vec<&[u8]> = l.range(10, 4000).rev().collect();
    let want: Vec<&[u8]> = model.range(10..4000).rev().map(|v| &v[..]).collect();
    assert_eq!(back, want);
    assert_eq!(l.range(4990, 9999).len(), 10);
    assert_eq!(l.range(7000, 9999).next(), None);
}

#[test]
fn large_elements_get_their_own_node() {
    let big = vec![b'x'; 20_000];
    let mut l = ListValue::new();
    l.push_back(b"a");
    l.push_back(&big);
    l.push_back(b"b");
    assert_eq!(l.node_count(), 3);
    l.push_front(&big);
    assert_eq!(l.node_count(), 4);
    let mut model = model_of(&l);
    check(&l, &model);
    // A large element inserted inside a node of small ones splits it around the element.
    let mut l = ListValue::new();
    for i in 0..100 {
        l.push_back(format!("{i}").as_bytes());
    }
    assert_eq!(l.node_count(), 1);
    l.insert(50, &big);
    model = model_of(&l);
    check(&l, &model);
    assert_eq!(l.get(50), Some(&big[..]));
    assert!(l.nodes.iter().any(|n| n.count == 1 && n.buf.len() > 8192));
    assert_eq!(l.node_count(), 3);
    // Replacing it with a small element merges the nodes back.
    assert!(l.set(50, b"small"));
    assert_eq!(l.node_count(), 1);
    assert_eq!(l.get(50), Some(&b"small"[..]));
    // And growing an element in place splits again.
    assert!(l.set(10, &big));
    model = model_of(&l);
    check(&l, &model);
    assert_eq!(l.get(10), Some(&big[..]));
}

#[test]
fn deletes_merge_nodes_back() {
    let mut l = ListValue::new();
    for i in 0..20_000 {
        l.push_back(if i % 10 == 0 { b"keep".as_slice() } else { b"drop-this-one".as_slice() });
    }
    let before = l.node_count();
    assert!(before > 30);
    assert_eq!(l.remove_value(b"drop-this-one", usize::MAX, false), 18_000);
    assert_eq!(l.len(), 2000);
    // 2000 entries of 6 bytes: 12000 bytes, two 8 KB nodes would do; merging is pairwise
    // so allow a few more, but far fewer than before.
    assert!(l.node_count() <= 4, "{} nodes after LREM (was {before})", l.node_count());
    let model: VecDeque<Vec<u8>> = (0..2000).map(|_| b"keep".to_vec()).collect();
    check(&l, &model);
    // Trimming to a middle range leaves compact nodes too.
    let mut l = ListValue::new();
    for i in 0..20_000 {
        l.push_back(format!("v{i}").as_bytes());
    }
    l.truncate(15_000);
    l.drain_front(14_900);
    assert_eq!(l.len(), 100);
    assert_eq!(l.node_count(), 1);
    assert_eq!(l.get(0), Some(&b"v14900"[..]));
    assert_eq!(l.get(99), Some(&b"v14999"[..]));
}

#[test]
fn lrem_counts_from_either_end() {
    let mut l = ListValue::new();
    for e in ["a", "b", "a", "c", "a", "b", "a"] {
        l.push_back(e.as_bytes());
    }
    assert_eq!(l.remove_value(b"a", 2, true), 2);
    assert!(l.iter().eq(["a", "b", "a", "c", "b"].iter().map(|s| s.as_bytes())));
    assert_eq!(l.remove_value(b"a", 1, false), 1);
    assert!(l.iter().eq(["b", "a", "c", "b"].iter().map(|s| s.as_bytes())));
    assert_eq!(l.remove_value(b"zz", usize::MAX, false), 0);
    assert_eq!(l.take_back(2), vec![b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(l.take_front(5), vec![b"b".to_vec(), b"a".to_vec()]);
    assert!(l.is_empty() && l.node_count() == 0);
}

#[test]
fn equality_ignores_node_layout() {
    let mut a = ListValue::new();
    let mut b = ListValue::new();
    for i in 0..3000 {
        a.push_back(format!("{i}").as_bytes());
    }
    for i in (0..3000).rev() {
        b.insert(0, format!("{i}").as_bytes());
    }
    assert_eq!(a, b);
    b.pop_back();
    assert_ne!(a, b);
}

fn random_element(r: &mut Rng) -> Vec<u8> {
    let len = match r.below(20) {
        0 => 9000 + r.below(3000),
        1..=3 => 100 + r.below(400),
        _ => r.below(12),
    };
    (0..len).map(|_| b"abc"[r.below(3)]).collect()
}

#[test]
fn random_operations_match_a_vecdeque_model() {
    for seed in 1..30u64 {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut l = ListValue::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for _ in 0..1500 {
            let len = model.len();
            match r.below(13) {
                0 | 1 => {
                    let e = random_element(&mut r);
                    l.push_back(&e);
                    model.push_back(e);
                }
                2 | 3 => {
                    let e = random_element(&mut r);
                    l.push_front(&e);
                    model.push_front(e);
                }
                4 => assert_eq!(l.pop_front(), model.pop_front()),
                5 => assert_eq!(l.pop_back(), model.pop_back()),
                6 => {
                    let i = r.below(len + 1);
                    let e = random_element(&mut r);
                    l.insert(i, &e);
                    model.insert(i, e);
                }
                7 if len > 0 => {
                    let i = r.below(len);
                    let e = random_element(&mut r);
                    assert!(l.set(i, &e));
                    model[i] = e;
                }
                8 => {
                    let e = random_element(&mut r);
                    let limit = if r.below(3) == 0 { usize::MAX } else { 1 + r.below(3) };
                    let back = r.below(2) == 0;
                    let mut want = 0;
                    let mut i = 0;
                    let mut keep = VecDeque::new();
                    let order: Vec<Vec<u8>> =
                        if back { model.iter().rev().cloned().collect() } else { model.iter().cloned().collect() };
                    for v in order {
                        if want < limit && v == e {
                            want += 1;
                        } else if back {
                            keep.push_front(v);
                        } else {
                            keep.push_back(v);
                        }
                        i += 1;
                    }
                    assert_eq!(i, len);
                    assert_eq!(l.remove_value(&e, limit, back), want);
                    model = keep;
                }
                9 if len > 0 => {
                    let a = r.below(len);
                    let b = a + r.below(len - a);
                    l.truncate(b + 1);
                    l.drain_front(a);
                    model.truncate(b + 1);
                    model.drain(..a);
                }
                10 => {
                    let n = r.below(4);
                    let want: Vec<Vec<u8>> = (0..n).filter_map(|_| model.pop_front()).collect();
                    assert_eq!(l.take_front(n), want);
                }
                11 => {
                    let n = r.below(4);
                    let want: Vec<Vec<u8>> = (0..n).filter_map(|_| model.pop_back()).collect();
                    assert_eq!(l.take_back(n), want);
                }
                _ if len > 0 => {
                    let i = r.below(len);
                    assert_eq!(l.get(i), Some(&model[i][..]));
                    let j = i + r.below(len - i + 1);
                    assert!(l.range(i, j).eq(model.range(i..j).map(|v| &v[..])));
                    assert!(l.range(i, j).rev().eq(model.range(i..j).rev().map(|v| &v[..])));
                }
                _ => {}
            }
            check(&l, &model);
        }
    }
}

#[test]
fn heap_size_counts_nodes_and_buffers() {
    let mut l = ListValue::new();
    for i in 0..10 {
        l.push_back(format!("value:{i}").as_bytes());
    }
    assert_eq!(l.node_count(), 1);
    assert_eq!(l.heap_size(), std::mem::size_of::<Node>() + 10 * 9);
}

#[test]
fn pushes_at_either_end_use_room_and_pops_give_it_back() {
    for front in [true, false] {
        let mut l = ListValue::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for i in 0..5000 {
            let e = format!("element:{i}").into_bytes();
            if front {
                l.push_front(&e);
                model.push_front(e);
            } else {
                l.push_back(&e);
                model.push_back(e);
            }
        }
        check(&l, &model);
        // Room only where the list grew, at most half again the entries of a node.
        let packed = l.packed_bytes();
        let table = l.nodes.capacity() * std::mem::size_of::<Node>();
        assert!(l.heap_size() - table <= packed + packed / 2, "too much room");
        for n in &l.nodes {
            assert!(n.buf.capacity() <= 8192 + 8192 / 2, "a node's room grew past the fill");
        }
        // Popping from both ends, with pushes in between, keeps order and trims the room.
        for i in 0..4990 {
            match i % 5 {
                0 => assert_eq!(l.pop_back(), model.pop_back()),
                3 => {
                    let e = format!("again:{i}").into_bytes();
                    l.push_front(&e);
                    model.push_front(e);
                }
                _ => assert_eq!(l.pop_front(), model.pop_front()),
            }
        }
        check(&l, &model);
        let table = l.nodes.capacity() * std::mem::size_of::<Node>();
        assert!(l.heap_size() - table <= 2 * l.packed_bytes() + 128, "popped room was not given back");
    }
}
