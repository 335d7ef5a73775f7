//! DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE] (`debug.c`): save the RDB file, empty the dataset
//! (keys and function libraries), load the file back.
//!
//! Everything runs under one hold of every shard (a [`Plan::AllShards`]). With the default
//! SAVE the file holds exactly the current dataset, so each shard replaces its keys with what
//! decoding its own serialized part gives back (the same bytes the home shard then writes as
//! the file) and the libraries stay as they are. With NOSAVE every shard reads the file on
//! disk and takes the keys of the slots it owns, and the home shard installs its libraries.
//!
//! Loading into a dataset that is not emptied (NOFLUSH): without MERGE a library that exists
//! fails the load with "Error trying to load the RDB dump" before anything changes (libraries
//! come first in the file, as in Redis); a key that exists fails it too (Redis stops the
//! process there); with MERGE what the file holds wins.

use super::ctx::{reply, ShardState};
use super::save;
use super::spec::Plan;
use super::util::eq_ic;
use crate::persist::{disk, file};
use crate::protocol::Reply;
use crate::script::functions;
use bytes::Bytes;

/// The reply of a load that failed.
const LOAD_FAILED: &str = "ERR Error trying to load the RDB dump";

#[derive(Clone, Copy)]
struct Opts {
    merge: bool,
    flush: bool,
    save: bool,
}

fn parse(args: &[Bytes]) -> Result<Opts, Reply> {
    let mut o = Opts { merge: false, flush: true, save: true };
    for a in args.iter().skip(2) {
        if eq_ic(a, "merge") {
            o.merge = true;
        } else if eq_ic(a, "noflush") {
            o.flush = false;
        } else if eq_ic(a, "nosave") {
            o.save = false;
        } else {
            return Err(Reply::err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."));
        }
    }
    Ok(o)
}

/// The RDB file on disk, parsed (expired keys dropped, as a master loads).
fn read_file(shard: &ShardState) -> Result<file::Loaded, Reply> {
    let path = save::rdb_path(&shard.config);
    match disk::read_if_exists(&path) {
        Ok(Some(buf)) => {
            file::load(&buf, crate::storage::now_ms(), shard.config.databases).map_err(|_| Reply::err(LOAD_FAILED))
        }
        _ => Err(Reply::err(LOAD_FAILED)),
    }
}

/// DEBUG RELOAD's plan.
pub fn debug_reload(shard: &ShardState, args: &[Bytes]) -> Plan {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return reply(e),
    };
    if !o.flush && !o.merge {
        let clash = if o.save {
            functions::counts().0 > 0
        } else {
            let names: Vec<String> = functions::libraries().into_iter().map(|l| l.name).collect();
            match read_file(shard) {
                Ok(l) => l.functions.iter().any(|c| functions::metadata(c).is_ok_and(|(_, n)| names.contains(&n))),
                Err(e) => return reply(e),
            }
        };
        if clash {
            return reply(Reply::err(LOAD_FAILED));
        }
    }
    Plan::AllShards {
        run: reload_shard,
        merge: Box::new(move |ctx, parts| {
            if let Some(e) = parts.iter().find(|p| p.is_error()) {
                return e.clone();
            }
            if o.save {
                let r = save::write_snapshot(&ctx.shard.config, parts);
                if r.is_error() {
                    return r;
                }
            } else {
                let codes = match read_file(ctx.shard) {
                    Ok(l) => l.functions,
                    Err(e) => return e,
                };
                let installed =
                    if o.flush { functions::install(&codes).is_ok() } else { merge_libraries(&codes).is_ok() };
                if !installed {
                    return Reply::err(LOAD_FAILED);
                }
            }
            tracing::warn!("DB reloaded by DEBUG RELOAD");
            Reply::Ok
        }),
    }
}

/// Loads libraries over the current ones (MERGE: the file's version of a library wins).
fn merge_libraries(codes: &[Vec<u8>]) -> Result<(), Reply> {
    for code in codes {
        crate::cmd::function::load_library(Bytes::copy_from_slice(code), true)?;
    }
    Ok(())
}

/// One shard's part, all shards held. With SAVE: its serialized keys (the file's part), its
/// keys replaced by their decoding unless kept (NOFLUSH). Without: the file's keys of its
/// slots loaded.
fn reload_shard(shard: &mut ShardState, db: usize, args: &[Bytes]) -> Reply {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if o.save {
        if !o.flush && !o.merge && shard.ks.dbs.iter().any(|d| !d.is_empty()) {
            return Reply::err(LOAD_FAILED);
        }
        let parts = save::serialize_shard(shard, db, args);
        if o.flush {
            if let Err(e) = replace_with_decoded(shard, &parts) {
                return e;
            }
        }
        return parts;
    }
    if o.flush {
        for d in shard.ks.dbs.iter_mut() {
            d.clear();
        }
    }
    let loaded = match read_file(shard) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let view = match &shard.node.cluster {
        Some(c) => c.view(),
        None => crate::cluster::view::ClusterView::standalone_shared(shard.node.shards),
    };
    let mine: Vec<file::Record> = loaded
        .records
        .into_iter()
        .filter(|r| r.db < shard.ks.dbs.len() && view.shard_of(crate::cluster::key_slot(&r.key)) == shard.id)
        .collect();
    if !o.merge && mine.iter().any(|r| shard.ks.dbs[r.db].exists_even_expired(&r.key)) {
        return Reply::err(LOAD_FAILED);
    }
    let lru = crate::storage::db::lru_clock();
    for r in mine {
        shard.ks.dbs[r.db].load(&r.key, crate::storage::Entry { value: r.value, expire_at: r.expire_at, lru });
    }
    Reply::Ok
}

/// Replaces the shard's keys with the decoding of its serialized part (what a load of the
/// file just saved gives back).
fn replace_with_decoded(shard: &mut ShardState, parts: &Reply) -> Result<(), Reply> {
    let Reply::Array(dbs) = parts else { return Err(parts.clone()) };
    let mut decoded = Vec::with_capacity(dbs.len());
    for d in dbs.iter().filter(|d| !save::is_repl_marker(d)) {
        let Reply::Array(v) = d else { return Err(Reply::err("ERR internal error: bad snapshot part")) };
        let Some(Reply::Bulk(b)) = v.get(2) else { return Err(Reply::err("ERR internal error: bad snapshot part")) };
        decoded.push(file::load_keys(b).map_err(|_| Reply::err(LOAD_FAILED))?);
    }
    let lru = crate::storage::db::lru_clock();
    for (d, keys) in shard.ks.dbs.iter_mut().zip(decoded) {
        d.clear();
        for (k, value, expire_at) in keys {
            d.load(&k, crate::storage::Entry { value, expire_at, lru });
        }
    }
    Ok(())
}
