//! Unit tests of `cluster::failover`: elections, votes, manual failover and migration on
//! hand-built cluster states (no I/O; time is passed in).

use super::*;
use crate::cluster::bus::codec::set_slot_bit;
use crate::cluster::state::{random_name, ClusterSettings, Node};

const T: u64 = 2000;

/// Three masters with 5461/5461/5462 slots, each with one replica; `me` is the replica of
/// master 0 (or master 0 itself when `me_master`). Returns (state, masters, replicas).
fn cluster(me_master: bool) -> (ClusterState, Vec<Name>, Vec<Name>) {
    let masters: Vec<Name> = (0..3).map(|_| random_name()).collect();
    let replicas: Vec<Name> = (0..3).map(|_| random_name()).collect();
    let me = if me_master { masters[0] } else { replicas[0] };
    let settings = ClusterSettings { node_timeout: T, ..Default::default() };
    let mut st = ClusterState::new(me, settings, 1);
    for (i, m) in masters.iter().enumerate() {
        let mut n = if *m == me { st.me().clone() } else { Node::new(*m, F::MASTER, 1) };
        n.flags = (n.flags & F::MYSELF) | F::MASTER;
        n.ip = "127.0.0.1".into();
        n.port = 7000 + i as u16;
        n.cport = 17000 + i as u16;
        n.config_epoch = i as u64 + 1;
        n.link_connected = true;
        st.add_node(n);
    }
    for (i, r) in replicas.iter().enumerate() {
        let mut n = if *r == me { st.me().clone() } else { Node::new(*r, F::SLAVE, 1) };
        n.flags = (n.flags & F::MYSELF) | F::SLAVE;
        n.slaveof = Some(masters[i]);
        n.ip = "127.0.0.1".into();
        n.port = 7003 + i as u16;
        n.link_connected = true;
        st.add_node(n);
    }
    for s in 0..SLOTS {
        let owner = masters[(s * 3 / SLOTS).min(2)];
        st.add_slot(s, owner);
    }
    st.current_epoch = 3;
    st.update_state(1);
    st.update_state(10_000);
    assert!(st.ok);
    st.settings.replica_validity_factor = 0;
    (st, masters, replicas)
}

fn header_from(st: &ClusterState, sender: Name, t: MsgType) -> Header {
    let n = &st.nodes[&sender];
    let mut h = Header::new(t, sender);
    h.current_epoch = st.current_epoch;
    let master = n.slaveof.map(|m| &st.nodes[&m]).unwrap_or(n);
    h.config_epoch = master.config_epoch;
    h.myslots = master.slots.clone();
    if let Some(m) = n.slaveof {
        h.slaveof = m;
    }
    h
}

fn fail(st: &mut ClusterState, n: Name, now: u64) {
    let node = st.nodes.get_mut(&n).unwrap();
    node.flags |= F::FAIL;
    node.fail_time = now;
}

#[test]
fn rank_counts_better_siblings_only() {
    let (mut st, masters, _) = cluster(false);
    let mut r2 = Node::new(random_name(), F::SLAVE, 1);
    r2.slaveof = Some(masters[0]);
    r2.repl_offset = 100;
    let r2n = r2.name;
    st.add_node(r2);
    st.me_mut().repl_offset = 50;
    assert_eq!(rank(&st), 1);
    st.nodes.get_mut(&r2n).unwrap().flags |= F::NOFAILOVER;
    assert_eq!(rank(&st), 0, "NOFAILOVER replicas do not count");
    st.me_mut().repl_offset = 100;
    st.nodes.get_mut(&r2n).unwrap().flags &= !F::NOFAILOVER;
    assert_eq!(rank(&st), 0, "equal offsets share a rank");
}

#[test]
fn election_is_scheduled_run_and_won() {
    let (mut st, masters, _) = cluster(false);
    let now = 100_000;
    let mut fx = Effects::default();
    handle_replica_failover(&mut st, now, &mut fx);
    assert!(fx.broadcast.is_empty(), "no election while the master is fine");
    fail(&mut st, masters[0], now);
    handle_replica_failover(&mut st, now, &mut fx);
    let delay = st.fo.auth_time - now;
    assert!((500..1000).contains(&delay), "{delay}");
    assert!(fx.broadcast.is_empty());
    // Before the delay: nothing; after: the request for epoch 4 goes out.
    handle_replica_failover(&mut st, now + 400, &mut fx);
    assert!(fx.broadcast.is_empty());
    let t = now + 1000;
    handle_replica_failover(&mut st, t, &mut fx);
    assert_eq!(fx.broadcast.len(), 1);
    let req = &fx.broadcast[0].header;
    assert_eq!(req.msg_type, MsgType::FailoverAuthRequest);
    assert_eq!(req.current_epoch, 4);
    assert_eq!(req.mflags[0] & mflags::FORCEACK, 0);
    assert_eq!(st.current_epoch, 4);
    // Two ACKs of three masters are a majority (one from a stale epoch does not count).
    let mut ack = header_from(&st, masters[1], MsgType::FailoverAuthAck);
    ack.current_epoch = 3;
    on_auth_ack(&mut st, masters[1], &ack);
    assert_eq!(st.fo.auth_count, 0);
    ack.current_epoch = 4;
    on_auth_ack(&mut st, masters[1], &ack);
    handle_replica_failover(&mut st, t + 10, &mut fx);
    assert!(st.me().has(F::SLAVE), "one vote is not a majority");
    let ack = header_from(&st, masters[2], MsgType::FailoverAuthAck);
    on_auth_ack(&mut st, masters[2], &ack);
    handle_replica_failover(&mut st, t + 20, &mut fx);
    assert!(st.me().is_master());
    assert_eq!(st.me().config_epoch, 4);
    assert_eq!(st.me().numslots, 5462);
    assert_eq!(st.nodes[&masters[0]].numslots, 0);
    assert_ne!(st.todo & todo::BROADCAST_PONG, 0);
    assert_ne!(st.todo & todo::FSYNC_CONFIG, 0);
    assert_eq!(wanted_role(&st), Some(Role::Master));
}

#[test]
fn expired_election_retries_after_twice_the_auth_timeout() {
    let (mut st, masters, _) = cluster(false);
    let now = 100_000;
    let mut fx = Effects::default();
    fail(&mut st, masters[0], now);
    handle_replica_failover(&mut st, now, &mut fx);
    handle_replica_failover(&mut st, now + 2000, &mut fx);
    assert_eq!(fx.broadcast.len(), 1);
    let first = st.fo.auth_time;
    // auth timeout = max(2 * 2000, 2000) = 4000; retry = 8000.
    handle_replica_failover(&mut st, first + 5000, &mut fx);
    assert_eq!(st.fo.auth_time, first, "expired but not yet retried");
    handle_replica_failover(&mut st, first + 8001, &mut fx);
    assert!(st.fo.auth_time > first + 8001, "a new election is scheduled");
}

#[test]
fn data_age_and_no_failover_block_automatic_failover() {
    let (mut st, masters, _) = cluster(false);
    let now = 1_000_000;
    let mut fx = Effects::default();
    fail(&mut st, masters[0], now);
    st.settings.replica_validity_factor = 10;
    // Never connected: Redis's repl_down_since is 0, the data is too old.
    handle_replica_failover(&mut st, now, &mut fx);
    assert_eq!(st.fo.auth_time, 0);
    // Down for 5 s: fine (limit = 10 s ping period + 10 x node-timeout).
    st.fo.link = LinkState { connected: false, last_io_ms: 0, down_since_ms: now - 5000 };
    handle_replica_failover(&mut st, now, &mut fx);
    assert_ne!(st.fo.auth_time, 0);
    // cluster-replica-no-failover stops it, except for a manual failover.
    let (mut st, masters, _) = cluster(false);
    fail(&mut st, masters[0], now);
    st.settings.replica_no_failover = true;
    handle_replica_failover(&mut st, now, &mut fx);
    assert_eq!(st.fo.auth_time, 0);
    cluster_failover(&mut st, Manual::Force, now).unwrap();
    handle_replica_failover(&mut st, now, &mut fx);
    assert_eq!(st.fo.auth_time, now, "a manual failover has no delay");
}

#[test]
fn votes_follow_redis_rules() {
    let (mut st, masters, replicas) = cluster(true);
    let now = 500_000;
    let mut fx = Effects::default();
    let req = |st: &ClusterState| {
        let mut h = header_from(st, replicas[1], MsgType::FailoverAuthRequest);
        h.current_epoch = st.current_epoch;
        h
    };
    // Master of replicas[1] is up: denied.
    st.current_epoch = 4;
    let h = req(&st);
    on_auth_request(&mut st, replicas[1], &h, now, &mut fx);
    assert!(fx.send.is_empty());
    // ... unless FORCEACK.
    let mut h = req(&st);
    h.mflags[0] |= mflags::FORCEACK;
    on_auth_request(&mut st, replicas[1], &h, now, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].0, replicas[1]);
    assert_eq!(fx.send[0].1.header.msg_type, MsgType::FailoverAuthAck);
    assert_eq!(st.last_vote_epoch, 4);
    assert_ne!(st.todo & todo::FSYNC_CONFIG, 0);
    // Once per epoch.
    on_auth_request(&mut st, replicas[1], &h, now, &mut fx);
    assert_eq!(fx.send.len(), 1);
    // A new epoch, but within 2 x node-timeout of the last vote for that master.
    st.current_epoch = 5;
    fail(&mut st, masters[1], now);
    let h = req(&st);
    on_auth_request(&mut st, replicas[1], &h, now + 100, &mut fx);
    assert_eq!(fx.send.len(), 1);
    // Later: granted.
    let h = req(&st);
    on_auth_request(&mut st, replicas[1], &h, now + 2 * T, &mut fx);
    assert_eq!(fx.send.len(), 2);
    // A stale request epoch is refused.
    st.current_epoch = 7;
    let mut h = req(&st);
    h.current_epoch = 6;
    on_auth_request(&mut st, replicas[1], &h, now + 10 * T, &mut fx);
    assert_eq!(fx.send.len(), 2);
    // A claimed slot served with a newer configEpoch is refused.
    st.nodes.get_mut(&masters[1]).unwrap().config_epoch = 9;
    let mut h = req(&st);
    h.config_epoch = 2;
    on_auth_request(&mut st, replicas[1], &h, now + 20 * T, &mut fx);
    assert_eq!(fx.send.len(), 2);
    // A master (requester) or a slotless voter never get / give a vote.
    st.current_epoch = 8;
    let h = header_from(&st, masters[2], MsgType::FailoverAuthRequest);
    on_auth_request(&mut st, masters[2], &h, now + 30 * T, &mut fx);
    assert_eq!(fx.send.len(), 2);
}

#[test]
fn manual_failover_waits_for_the_paused_offset() {
    // Replica side.
    let (mut st, masters, _) = cluster(false);
    let now = 700_000;
    let mut fx = Effects::default();
    st.nodes.get_mut(&masters[0]).unwrap().link_connected = false;
    assert_eq!(
        cluster_failover(&mut st, Manual::Default, now).unwrap_err(),
        "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE"
    );
    st.nodes.get_mut(&masters[0]).unwrap().link_connected = true;
    cluster_failover(&mut st, Manual::Default, now).unwrap();
    before_sleep(&mut st, now, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].1.header.msg_type, MsgType::MfStart);
    assert_eq!(fx.send[0].0, masters[0]);
    // A header from the master without PAUSED changes nothing; with it, the offset is kept.
    let mut h = header_from(&st, masters[0], MsgType::Ping);
    h.offset = 42;
    on_master_header(&mut st, masters[0], &h);
    assert_eq!(st.fo.mf_master_offset, None);
    h.mflags[0] |= mflags::PAUSED;
    on_master_header(&mut st, masters[0], &h);
    assert_eq!(st.fo.mf_master_offset, Some(42));
    st.me_mut().repl_offset = 41;
    handle_manual_failover(&mut st);
    assert!(!st.fo.mf_can_start);
    st.me_mut().repl_offset = 42;
    let mut fx = Effects::default();
    before_sleep(&mut st, now + 10, &mut fx);
    assert!(st.fo.mf_can_start);
    // No delay: the request goes out (with FORCEACK) on the next step.
    before_sleep(&mut st, now + 10, &mut fx);
    let req = fx.broadcast.iter().find(|m| m.header.msg_type == MsgType::FailoverAuthRequest).expect("request");
    assert_ne!(req.header.mflags[0] & mflags::FORCEACK, 0);
    // The deadline passes: the attempt ends.
    let mut fx = Effects::default();
    cron(&mut st, now + MF_TIMEOUT + 1, &mut fx);
    assert_eq!(st.fo.mf_end, 0);
}

#[test]
fn master_pauses_and_announces_a_settled_offset() {
    let (mut st, _, replicas) = cluster(true);
    let now = 900_000;
    on_mfstart(&mut st, replicas[1], now);
    assert_eq!(st.fo.mf_slave, None, "only my own replica may ask");
    on_mfstart(&mut st, replicas[0], now);
    assert_eq!(st.fo.mf_slave, Some(replicas[0]));
    assert_eq!(st.fo.take_pause_change(), Some(now + MF_TIMEOUT * MF_PAUSE_MULT));
    st.me_mut().repl_offset = 10;
    let mut fx = Effects::default();
    cron(&mut st, now + 100, &mut fx);
    assert!(!st.fo.paused_flag(), "one look at the offset is not enough");
    assert_eq!(fx.send.last().map(|(n, _)| *n), Some(replicas[0]));
    cron(&mut st, now + 200, &mut fx);
    assert!(st.fo.paused_flag());
    let h = gossip::header(&st, MsgType::Ping);
    assert_ne!(h.mflags[0] & mflags::PAUSED, 0);
    assert_eq!(h.offset, 10);
    // Timeout: writes resume.
    cron(&mut st, now + MF_TIMEOUT + 1, &mut fx);
    assert_eq!(st.fo.take_pause_change(), Some(0));
    assert_eq!(gossip::header(&st, MsgType::Ping).mflags[0] & mflags::PAUSED, 0);
}

#[test]
fn takeover_needs_no_votes_and_errors_are_redis_texts() {
    let (mut st, _, _) = cluster(true);
    assert_eq!(
        cluster_failover(&mut st, Manual::Default, 1).unwrap_err(),
        "ERR You should send CLUSTER FAILOVER to a replica"
    );
    let (mut st, _, _) = cluster(false);
    st.me_mut().slaveof = Some(random_name());
    assert_eq!(
        cluster_failover(&mut st, Manual::Force, 1).unwrap_err(),
        "ERR I'm a replica but my master is unknown to me"
    );
    let (mut st, _, _) = cluster(false);
    cluster_failover(&mut st, Manual::Takeover, 1).unwrap();
    assert!(st.me().is_master());
    assert_eq!(st.me().config_epoch, 4);
    assert_eq!(st.me().numslots, 5462);
}

#[test]
fn lost_slots_make_a_master_follow_the_winner() {
    let (mut st, masters, replicas) = cluster(true);
    assert_eq!(wanted_role(&st), Some(Role::Master));
    // My replica won with epoch 4 and claims my slots.
    let mut winner = st.nodes[&replicas[0]].clone();
    winner.flags = F::MASTER;
    winner.slaveof = None;
    st.add_node(winner);
    let mut slots = Box::new([0u8; super::super::bus::codec::SLOT_BYTES]);
    for s in 0..SLOTS {
        if st.slots[s] == Some(masters[0]) {
            set_slot_bit(&mut slots, s);
        }
    }
    gossip::update_slots_config_with(&mut st, replicas[0], 4, &slots);
    assert!(st.me().has(F::SLAVE));
    assert_eq!(st.my_master(), Some(replicas[0]));
    assert_eq!(wanted_role(&st), Some(Role::Replica { host: "127.0.0.1".into(), port: 7003 }));
    assert_eq!(st.fo.take_role_change(wanted_role(&st)), wanted_role(&st));
    assert_eq!(st.fo.take_role_change(wanted_role(&st)), None, "applied once");
}

#[test]
fn replica_migrates_to_an_orphaned_master() {
    let (mut st, masters, replicas) = cluster(false);
    // My master has two replicas; master 2 lost its replica.
    // The largest possible id: I am the candidate (smallest id among the replicas).
    let mut extra = Node::new([b'f'; 40], F::SLAVE, 1);
    extra.slaveof = Some(masters[0]);
    st.add_node(extra);
    st.nodes.get_mut(&masters[2]).unwrap().flags |= F::MIGRATE_TO;
    st.del_node(replicas[2]);
    st.nodes.get_mut(&masters[1]).unwrap().flags &= !F::MIGRATE_TO;
    let now = 2_000_000;
    let mut fx = Effects::default();
    cron(&mut st, now, &mut fx);
    assert_eq!(st.my_master(), Some(masters[0]), "orphaned for less than 5 s");
    cron(&mut st, now + REPLICA_MIGRATION_DELAY + 1, &mut fx);
    assert_eq!(st.my_master(), Some(masters[2]));
    // With the barrier at 2, nobody moves.
    let (mut st, masters, replicas) = cluster(false);
    let mut extra = Node::new([b'f'; 40], F::SLAVE, 1);
    extra.slaveof = Some(masters[0]);
    st.add_node(extra);
    st.nodes.get_mut(&masters[2]).unwrap().flags |= F::MIGRATE_TO;
    st.del_node(replicas[2]);
    st.settings.migration_barrier = 2;
    cron(&mut st, now, &mut fx);
    cron(&mut st, now + REPLICA_MIGRATION_DELAY + 1, &mut fx);
    assert_eq!(st.my_master(), Some(masters[0]));
}

#[test]
fn keys_are_dropped_only_for_slots_lost_while_serving_them() {
    use crate::cluster::view::{build, ShardAssign};
    let (mut st, masters, _) = cluster(true);
    let mut assign = ShardAssign::new(2);
    assert!(build(&st, &mut assign).keep[0], "my slot");
    // `redis-cli --cluster fix`: DELSLOTS, then SETSLOT NODE <other> before IMPORTING: the
    // keys still here stay (Redis deletes nothing on either command).
    st.del_slot(0);
    assert!(build(&st, &mut assign).keep[0], "unassigned");
    st.add_slot(0, masters[1]);
    assert!(build(&st, &mut assign).keep[0], "served elsewhere by SETSLOT NODE");
    // Another master claims slot 1 (mine) with a newer epoch: a dirty slot, its keys go.
    let mut slots = Box::new([0u8; super::super::bus::codec::SLOT_BYTES]);
    set_slot_bit(&mut slots, 1);
    gossip::update_slots_config_with(&mut st, masters[2], 9, &slots);
    let v = build(&st, &mut assign);
    assert!(!v.keep[1], "lost to a newer claim");
    assert!(v.keep[0] && v.keep[2]);
    // Taking it back clears the mark.
    st.del_slot(1);
    st.add_slot(1, masters[0]);
    assert!(build(&st, &mut assign).keep[1]);
}

#[test]
fn a_replica_keeps_the_keys_of_every_slot() {
    use crate::cluster::view::{build, ShardAssign};
    // replicas[0] replicates masters[0], which serves the first third of the slots.
    let (st, _, _) = cluster(false);
    let mut assign = ShardAssign::new(2);
    let v = build(&st, &mut assign);
    assert!(v.keep.iter().all(|&k| k), "a slot of another master, as its view has it");
    let before = v.shard.clone();
    // Its view changes (a slot resharded between masters): no slot changes shard.
    let mut st = st;
    let other = st.slots[SLOTS - 1].expect("owned");
    st.del_slot(0);
    st.add_slot(0, other);
    assert_eq!(build(&st, &mut assign).shard, before);
}
