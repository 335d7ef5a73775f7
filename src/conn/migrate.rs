//! MIGRATE's network part, as Redis's `migrateCommand`: the shards owning the keys are held
//! for the whole command (Redis blocks its only thread for it; here other shards keep
//! serving), the keys are serialized there, `[AUTH] [SELECT] RESTORE(-ASKING)...` goes to the
//! target in one buffer, one reply line is read per command, and the acknowledged keys are
//! deleted (unless COPY). A socket error before any reply was read is retried once on a new
//! connection.

use super::Conn;
use crate::cmd::migrate::{self, MigrateJob};
use crate::protocol::Reply;
use crate::runtime::mesh::{HeldOp, HeldResult};
use crate::runtime::migrate_link;
use bytes::Bytes;
use std::time::Duration;

/// One key ready to go: name, TTL ms (0 = none), DUMP payload.
struct Item {
    key: Bytes,
    ttl: i64,
    payload: Bytes,
}

/// How a transfer attempt ended.
enum Outcome {
    /// Every command got a reply: the reply for the client, and the keys the target took.
    Done(Reply, Vec<Bytes>),
    /// The socket failed; `retry` when nothing was read yet and it was not a timeout.
    SocketError { writing: bool, retry: bool, moved: Vec<Bytes> },
}

fn push_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

impl Conn {
    /// Runs a MIGRATE; `held` is the transaction holding every shard inside EXEC.
    pub(crate) async fn run_migrate(&mut self, job: MigrateJob, held: Option<u64>) -> Reply {
        let db = self.client.borrow().db;
        let groups = self.by_shard(&job.keys);
        let shards: Vec<usize> = groups.iter().map(|(s, _)| *s).collect();
        let tx = match held {
            Some(tx) => tx,
            None => match self.shard.lock(&shards).await {
                Ok(tx) => tx,
                Err(e) => return e,
            },
        };
        let reply = self.migrate_held(&job, db, tx, groups).await;
        if held.is_none() {
            self.shard.unlock(tx, &shards).await;
        }
        reply
    }

    /// Keys grouped by owning shard, shards ascending (the order [`Shard::lock`] wants).
    ///
    /// [`Shard::lock`]: crate::runtime::shard::Shard::lock
    fn by_shard(&self, keys: &[Bytes]) -> Vec<(usize, Vec<Bytes>)> {
        let mut groups: Vec<(usize, Vec<Bytes>)> = Vec::new();
        for k in keys {
            let s = self.shard.shard_of_slot(crate::cluster::key_slot(k));
            match groups.iter_mut().find(|(g, _)| *g == s) {
                Some((_, v)) => v.push(k.clone()),
                None => groups.push((s, vec![k.clone()])),
            }
        }
        groups.sort_unstable_by_key(|(s, _)| *s);
        groups
    }

    async fn migrate_held(&mut self, job: &MigrateJob, db: usize, tx: u64, groups: Vec<(usize, Vec<Bytes>)>) -> Reply {
        let mut items = Vec::new();
        for (s, keys) in groups {
            let got = self.shard.held(tx, s, HeldOp::Run { run: migrate::collect, db, args: keys }).await;
            let HeldResult::Reply(Reply::Array(found)) = got else {
                return Reply::err("ERR internal error: shard unavailable");
            };
            for f in found {
                if let Reply::Array(mut v) = f {
                    if let (Some(Reply::Bulk(payload)), Some(Reply::Int(ttl)), Some(Reply::Bulk(key))) =
                        (v.pop(), v.pop(), v.pop())
                    {
                        items.push(Item { key, ttl, payload });
                    }
                }
            }
        }
        if items.is_empty() {
            return Reply::status("NOKEY");
        }
        // Keys in the order they were named, as Redis sends them.
        let order = |k: &Bytes| job.keys.iter().position(|x| x == k).unwrap_or(usize::MAX);
        items.sort_by_key(|i| order(&i.key));
        let cluster = self.shard.view.borrow().enabled;
        let mut retried = false;
        let (reply, moved) = loop {
            match self.migrate_transfer(job, &items, cluster).await {
                Outcome::Done(r, moved) => break (r, moved),
                Outcome::SocketError { retry: true, .. } if !retried => {
                    retried = true;
                    migrate_link::close(&job.name);
                }
                Outcome::SocketError { writing, moved, .. } => {
                    migrate_link::close(&job.name);
                    let what = if writing { "writing" } else { "reading" };
                    break (Reply::error(format!("IOERR error or timeout {what} to target instance")), moved);
                }
            }
        };
        if !job.copy {
            for (s, keys) in self.by_shard(&moved) {
                self.shard.held(tx, s, HeldOp::Run { run: migrate::delete, db, args: keys }).await;
            }
        }
        reply
    }

    /// One attempt: connect (or reuse), send everything, read the replies.
    async fn migrate_transfer(&mut self, job: &MigrateJob, items: &[Item], cluster: bool) -> Outcome {
        let timeout = Duration::from_millis(job.timeout_ms);
        let tls = crate::tls::cluster(&self.shard.state.borrow().config);
        let mut link = match migrate_link::take(&job.name, &job.host, job.port, timeout, tls).await {
            Ok(l) => l,
            // Redis's non-blocking connect reports a refused connection only when it writes.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Outcome::SocketError { writing: true, retry: true, moved: Vec::new() }
            }
            Err(_) => return Outcome::Done(Reply::err("IOERR error or timeout connecting to the client"), Vec::new()),
        };
        let mut buf = Vec::new();
        if let Some((user, pass)) = &job.auth {
            buf.extend_from_slice(if user.is_some() { b"*3\r\n" } else { b"*2\r\n" });
            push_bulk(&mut buf, b"AUTH");
            if let Some(u) = user {
                push_bulk(&mut buf, u);
            }
            push_bulk(&mut buf, pass);
        }
        let select = link.last_db != Some(job.db);
        if select {
            buf.extend_from_slice(b"*2\r\n");
            push_bulk(&mut buf, b"SELECT");
            push_bulk(&mut buf, job.db.to_string().as_bytes());
        }
        let restore: &[u8] = if cluster { b"RESTORE-ASKING" } else { b"RESTORE" };
        for it in items {
            buf.extend_from_slice(if job.replace { b"*5\r\n" } else { b"*4\r\n" });
            push_bulk(&mut buf, restore);
            push_bulk(&mut buf, &it.key);
            push_bulk(&mut buf, it.ttl.to_string().as_bytes());
            push_bulk(&mut buf, &it.payload);
            if job.replace {
                push_bulk(&mut buf, b"REPLACE");
            }
        }
        if let Err(e) = link.write_all(&buf, timeout).await {
            tracing::debug!("MIGRATE writing to {}: {}", job.name, e);
            return Outcome::SocketError {
                writing: true,
                retry: e.kind() != std::io::ErrorKind::TimedOut,
                moved: Vec::new(),
            };
        }
        let mut head_error: Option<Vec<u8>> = None;
        for needed in [job.auth.is_some(), select] {
            if !needed {
                continue;
            }
            match link.read_line(timeout).await {
                Ok(l) if l.first() == Some(&b'-') && head_error.is_none() => head_error = Some(l),
                Ok(_) => {}
                Err(e) => return migrate_socket_error(e, 0, Vec::new()),
            }
        }
        let mut moved = Vec::new();
        let mut target_error: Option<Vec<u8>> = None;
        let mut socket_failed = false;
        for (j, it) in items.iter().enumerate() {
            let line = match link.read_line(timeout).await {
                Ok(l) => l,
                Err(e) if target_error.is_none() => return migrate_socket_error(e, j, moved),
                Err(_) => {
                    socket_failed = true;
                    break;
                }
            };
            // An AUTH or SELECT error fails every key.
            if head_error.is_some() || line.first() == Some(&b'-') {
                if target_error.is_none() {
                    target_error = Some(head_error.clone().unwrap_or(line));
                }
            } else {
                moved.push(it.key.clone());
            }
        }
        match target_error {
            Some(e) => {
                // The target may be in another database now: SELECT again next time.
                link.last_db = None;
                if !socket_failed {
                    migrate_link::put_back(&job.name, link);
                }
                let text = String::from_utf8_lossy(&e[1..]).into_owned();
                Outcome::Done(Reply::error(format!("ERR Target instance replied with error: {text}")), moved)
            }
            None => {
                link.last_db = Some(job.db);
                migrate_link::put_back(&job.name, link);
                Outcome::Done(Reply::Ok, moved)
            }
        }
    }
}

/// A read failed after `replies` RESTORE replies: retried only if none was read and it was not
/// a timeout (Redis's rule), reported as a read error otherwise.
fn migrate_socket_error(e: std::io::Error, replies: usize, moved: Vec<Bytes>) -> Outcome {
    tracing::debug!("MIGRATE reading from the target: {}", e);
    let retry = replies == 0 && e.kind() != std::io::ErrorKind::TimedOut;
    Outcome::SocketError { writing: false, retry, moved }
}
