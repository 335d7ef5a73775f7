//! MIGRATE: argument parsing (Redis 7.0's order of checks and error texts) and the two steps
//! that run on the shards owning the keys: serializing them (DUMP payload and remaining TTL)
//! and deleting the ones the target acknowledged. The network part, with the shards held
//! between the two steps, is `crate::conn::migrate`.

use super::ctx::{ClientCtx, ShardState};
use super::errors;
use super::spec::{flags::*, spec, CommandSpec, Exec, Keys, Plan};
use super::util::eq_ic;
use crate::protocol::Reply;
use bytes::Bytes;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("migrate", -6, WRITE, "@keyspace @write @slow @dangerous", Keys::Custom { legacy: (3, 3, 1), find: migrate_keys }, Exec::Node(migrate)),
];

/// A parsed MIGRATE.
#[derive(Debug, Clone)]
pub struct MigrateJob {
    /// Target host, as given.
    pub host: String,
    /// Target port.
    pub port: u16,
    /// `host:port`, the connection cache's key.
    pub name: String,
    /// Target database.
    pub db: i64,
    /// Connect / read / write timeout in ms (<= 0 given means 1000).
    pub timeout_ms: u64,
    /// Keep the local keys.
    pub copy: bool,
    /// Overwrite existing keys on the target.
    pub replace: bool,
    /// AUTH password, with AUTH2's user name.
    pub auth: Option<(Option<Bytes>, Bytes)>,
    /// The keys to move.
    pub keys: Vec<Bytes>,
}

/// Key positions: argument 3, or with KEYS every argument after it (argument 3 is then "").
fn migrate_keys(args: &[Bytes]) -> Result<Vec<usize>, Reply> {
    let mut j = 6;
    while j < args.len() {
        let a = &args[j];
        if eq_ic(a, "keys") {
            if !args[3].is_empty() {
                return Ok(vec![3]);
            }
            return Ok((j + 1..args.len()).collect());
        }
        j += if eq_ic(a, "auth") {
            2
        } else if eq_ic(a, "auth2") {
            3
        } else {
            1
        };
    }
    Ok(if args[3].is_empty() { Vec::new() } else { vec![3] })
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key ...]
fn migrate(_ctx: &mut ClientCtx<'_>, args: &[Bytes]) -> Plan {
    match parse(args) {
        Ok(job) => Plan::Migrate(Box::new(job)),
        Err(e) => Plan::Reply(e),
    }
}

fn parse(args: &[Bytes]) -> Result<MigrateJob, Reply> {
    let (mut copy, mut replace) = (false, false);
    let mut auth: Option<(Option<Bytes>, Bytes)> = None;
    let mut keys = vec![args[3].clone()];
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if eq_ic(a, "copy") {
            copy = true;
        } else if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "auth") {
            if more == 0 {
                return Err(Reply::err(errors::SYNTAX));
            }
            j += 1;
            auth = Some((None, args[j].clone()));
        } else if eq_ic(a, "auth2") {
            if more < 2 {
                return Err(Reply::err(errors::SYNTAX));
            }
            auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if eq_ic(a, "keys") {
            if !args[3].is_empty() {
                return Err(Reply::err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = args[j + 1..].to_vec();
            break;
        } else {
            return Err(Reply::err(errors::SYNTAX));
        }
        j += 1;
    }
    let long = |a: &Bytes| super::util::parse_i64(a).ok_or_else(|| Reply::err(errors::NOT_INTEGER));
    let timeout = long(&args[5])?;
    let db = long(&args[4])?;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port_text = String::from_utf8_lossy(&args[2]).into_owned();
    // Redis converts the port with atoi: a bad port fails to connect.
    let port = port_text.trim().parse::<u16>().unwrap_or(0);
    Ok(MigrateJob {
        name: format!("{host}:{port_text}"),
        host,
        port,
        db,
        timeout_ms: if timeout <= 0 { 1000 } else { timeout as u64 },
        copy,
        replace,
        auth,
        keys,
    })
}

/// Shard step 1, arguments = keys: for each live key `[key, ttl ms (0 = none, at least 1),
/// DUMP payload]`; missing keys are left out.
pub fn collect(st: &mut ShardState, db: usize, keys: &[Bytes]) -> Reply {
    let now = crate::storage::cached_ms();
    let Some(d) = st.ks.dbs.get_mut(db) else { return Reply::Array(Vec::new()) };
    let mut out = Vec::new();
    // Read lookups, counted (and `keymiss`) as Redis's MIGRATE counts them, once the table is
    // free again.
    let mut looked = Vec::with_capacity(keys.len());
    for k in keys {
        let found = d.get(k, now);
        looked.push((k, found.is_some()));
        let Some(e) = found else { continue };
        let ttl = if e.expire_at == 0 { 0 } else { (e.expire_at.saturating_sub(now)).max(1) as i64 };
        let payload = crate::persist::dump::create(&e.value, true);
        out.push(Reply::Array(vec![Reply::Bulk(k.clone()), Reply::Int(ttl), Reply::Bulk(Bytes::from(payload))]));
    }
    for (k, hit) in looked {
        st.count_lookup(k, db, hit);
    }
    Reply::Array(out)
}

/// Shard step 2, arguments = keys the target acknowledged: deletes them; replies the count.
pub fn delete(st: &mut ShardState, db: usize, keys: &[Bytes]) -> Reply {
    let Some(d) = st.ks.dbs.get_mut(db) else { return Reply::Int(0) };
    let mut del = vec![Bytes::from_static(b"DEL")];
    del.extend(keys.iter().filter(|k| d.remove(k).is_some()).cloned());
    let n = del.len() - 1;
    if crate::cmd::notify::enabled() {
        for k in &del[1..] {
            crate::cmd::notify::emit(st, crate::cmd::notify::GENERIC, "del", k, db);
        }
    }
    if n > 0 {
        // Redis propagates MIGRATE as the DEL of what the target acknowledged.
        st.changes.record(db, n as u64, vec![del]);
    }
    Reply::Int(n as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    #[test]
    fn key_positions() {
        assert_eq!(migrate_keys(&a(&["migrate", "h", "1", "k", "0", "5"])).unwrap(), vec![3]);
        assert_eq!(
            migrate_keys(&a(&["migrate", "h", "1", "", "0", "5", "copy", "keys", "a", "b"])).unwrap(),
            vec![8, 9]
        );
        assert_eq!(
            migrate_keys(&a(&["migrate", "h", "1", "", "0", "5", "auth", "keys", "keys", "a"])).unwrap(),
            vec![9]
        );
        assert!(migrate_keys(&a(&["migrate", "h", "1", "", "0", "5"])).unwrap().is_empty());
    }

    #[test]
    fn options_and_errors() {
        let j = parse(&a(&["migrate", "h", "7000", "", "3", "0", "COPY", "replace", "AUTH2", "u", "p", "KEYS", "x"]))
            .unwrap();
        assert!(j.copy && j.replace);
        assert_eq!(j.timeout_ms, 1000);
        assert_eq!(j.db, 3);
        assert_eq!(j.name, "h:7000");
        assert_eq!(j.keys, a(&["x"]));
        assert_eq!(j.auth, Some((Some(Bytes::from_static(b"u")), Bytes::from_static(b"p"))));
        let err = |v: &[&str]| match parse(&a(v)) {
            Err(Reply::Error(e)) => e.into_owned(),
            _ => String::new(),
        };
        assert_eq!(err(&["migrate", "h", "1", "k", "0", "5", "bogus"]), errors::SYNTAX);
        assert_eq!(err(&["migrate", "h", "1", "k", "0", "5", "auth"]), errors::SYNTAX);
        assert_eq!(err(&["migrate", "h", "1", "k", "0", "x"]), errors::NOT_INTEGER);
        assert!(err(&["migrate", "h", "1", "k", "0", "5", "keys", "a"]).contains("empty string"));
    }
}
