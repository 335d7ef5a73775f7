//! The walk a [`Plan::Scan`](super::Plan::Scan) makes over the hash slots: from the cursor, in
//! ascending order, one shard's run of consecutive slots at a time, until `count` keys were
//! examined or every slot was visited. Whoever carries the plan out (a client's connection, a
//! script holding every shard) asks [`ScanWalk::next`] where to go, runs the plan's function
//! there, hands the answer to [`ScanWalk::take`], and replies with [`ScanWalk::reply`].

use crate::cluster::slot::SLOTS;
use crate::protocol::Reply;
use bytes::Bytes;

/// A SCAN's progress.
pub struct ScanWalk {
    /// The next slot to visit.
    slot: usize,
    examined: usize,
    count: usize,
    keys: Vec<Reply>,
}

impl ScanWalk {
    /// A walk from slot `cursor` examining about `count` keys.
    pub fn new(cursor: usize, count: usize) -> ScanWalk {
        ScanWalk { slot: cursor, examined: 0, count, keys: Vec::new() }
    }

    /// The next shard to visit (`owner_of(slot)`) and the arguments for the plan's function
    /// there: `[from, to, budget]` then the command's own; None once the walk is over.
    pub fn next(&self, owner_of: impl Fn(u16) -> usize, args: &[Bytes]) -> Option<(usize, Vec<Bytes>)> {
        if self.slot >= SLOTS || self.examined >= self.count {
            return None;
        }
        let owner = owner_of(self.slot as u16);
        let mut end = self.slot + 1;
        while end < SLOTS && owner_of(end as u16) == owner {
            end += 1;
        }
        let mut a = Vec::with_capacity(args.len() + 3);
        for n in [self.slot, end, self.count - self.examined] {
            a.push(Bytes::from(n.to_string()));
        }
        a.extend_from_slice(args);
        Some((owner, a))
    }

    /// The visited shard's answer `[next slot, examined, keys]`; Err: the reply to give
    /// instead (the shard's error, or a malformed answer).
    pub fn take(&mut self, r: Reply) -> Result<(), Reply> {
        let Reply::Array(mut v) = r else { return Err(r) };
        let (Some(Reply::Array(found)), Some(Reply::Int(n)), Some(Reply::Int(next))) = (v.pop(), v.pop(), v.pop())
        else {
            return Err(Reply::err("ERR internal error: malformed scan reply"));
        };
        // Always progress, even if a shard misreports.
        self.slot = (next.max(0) as usize).max(self.slot + 1);
        self.examined += n.max(0) as usize;
        self.keys.extend(found);
        Ok(())
    }

    /// The command's reply: `[next cursor, keys]`, cursor 0 once every slot was visited.
    pub fn reply(self) -> Reply {
        let next = if self.slot >= SLOTS { 0 } else { self.slot as i64 };
        Reply::Array(vec![Reply::bulk_int(next), Reply::Array(self.keys)])
    }
}
