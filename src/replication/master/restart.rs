//! A master's replication history across a restart (Redis 7.0's `rdbPopulateSaveInfo` for a
//! master, and the master branch of `loadDataFromDisk`).
//!
//! - **Saving.** A master with a backlog records its replication id, offset and stream
//!   database in the RDB file it saves (`repl-id`, `repl-offset`, `repl-stream-db`), by SAVE,
//!   BGSAVE, the save points or SHUTDOWN. The offset must be the exact stream position of the
//!   saved data: the save asks the control core through the feed while every shard is held
//!   ([`save_mark`]), so the answer comes after every record the saved data holds and before
//!   any it does not (`cmd::save::save_position`, which also gives a replica's position).
//! - **Loading.** A node that starts as a master from such a file takes the saved id as its
//!   second id (`master_replid2`, `second_repl_offset` = offset + 1) under a fresh id of its
//!   own, continues its offset from the saved one and keeps a backlog from there, so its
//!   replicas (which ask for the old id at offset + 1) resynchronize partially. Keys the load
//!   dropped as expired are deleted in the stream first (DEL, or UNLINK with
//!   `lazyfree-lazy-expire yes`), as Redis feeds them while loading: the replicas still hold
//!   them.

use super::*;
use crate::persist::file::ReplInfo;
use crate::replication::role::SaveInfo;
use std::time::Duration;

/// How long a save waits for the control core's answer before it saves without the
/// replication info (the control core is stuck: better a file than none).
const MARK_WAIT: Duration = Duration::from_secs(5);

/// The history a restarted master continues: the stream from the saved offset on.
#[derive(Debug)]
pub struct Restore {
    /// The saved `repl-offset`.
    pub offset: u64,
    /// Stream bytes to put right after it (the expired keys' deletions).
    pub stream: Bytes,
}

impl Master {
    /// What a save made at this point of the stream records: a master with a backlog only
    /// (without one, a replica's PSYNC could not continue anyway).
    pub(super) fn save_mark(&self) -> Option<ReplInfo> {
        if self.following || self.backlog.is_none() {
            return None;
        }
        let stream_db = self.enc.selected_db().max(0) as usize;
        Some(ReplInfo { stream_db, replid: self.replid.clone(), offset: self.offset })
    }

    /// Continues the stream from a restart's saved offset, with a backlog from there.
    pub(super) fn restore(&mut self, repl: &Replication, r: Restore, now_ms: u64) {
        if self.following {
            return;
        }
        self.offset = r.offset;
        repl.set_offset(r.offset);
        self.restart_backlog(r.offset);
        self.no_replicas_since = now_ms;
        self.pending.extend_from_slice(&r.stream);
        self.commit(repl);
        // The stream after a restart selects its database before the first command.
        self.enc.reset_db();
        self.publish(repl);
    }
}

/// The replication info a save made now records, from a master with a backlog; None
/// otherwise. Call while every shard is held (or on the only shard, before it runs anything
/// else): it blocks the calling thread until the control core answers (at most
/// [`MARK_WAIT`]).
pub fn save_mark(repl: &Replication) -> Option<ReplInfo> {
    if repl.is_replica() || !repl.feed.active() {
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    send(repl, Request::SaveMark(tx));
    match rx.recv_timeout(MARK_WAIT) {
        Ok(info) => info,
        Err(_) => {
            tracing::warn!("The replication offset of the save is unknown: saving without replication info");
            None
        }
    }
}

/// At start-up, after the RDB file loaded on a node that starts as a master: continues the
/// history the file recorded (see the module's doc). `expired`: the keys the load dropped.
pub fn resume_as_master(repl: &Replication, info: SaveInfo, expired: &[(usize, Vec<u8>)], unlink: bool) {
    repl.with_status(|s| {
        s.replid2 = info.replid.clone();
        s.second_offset = info.offset as i64 + 1;
    });
    let mut stream = BytesMut::new();
    let mut db = None;
    let del: &[u8] = if unlink { b"UNLINK" } else { b"DEL" };
    for (d, key) in expired {
        if db != Some(*d) {
            db = Some(*d);
            super::super::stream::put_command(&mut stream, &[&b"SELECT"[..], d.to_string().as_bytes()]);
        }
        super::super::stream::put_command(&mut stream, &[del, key.as_slice()]);
    }
    // From now on the shards record their writes for the stream (before any client runs).
    repl.feed.set_active(true);
    send(repl, Request::Restore(Restore { offset: info.offset, stream: stream.freeze() }));
}
