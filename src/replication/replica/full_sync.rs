//! A replica's full synchronization: the payload (`$len` to disk or `$EOF:` from the socket,
//! as `repl-diskless-load` says), its load into every shard, and the master's history taken
//! (Redis's `readSyncBulkPayload`).

use super::*;

/// Receives the payload, loads it into every shard, and takes the master's history; sets
/// `attached` once the new master's data starts to replace ours.
///
/// `repl-diskless-load` as Redis 7.0: `disabled` (and `on-empty-db` while this node holds
/// keys) keeps the payload on disk first (`temp-<unixtime>.<pid>.rdb`, fsync, renamed to
/// `dbfilename`, so the replica's RDB file is its master's dataset) and a failed load leaves
/// the replica empty; `swapdb` (and `on-empty-db` when empty) loads from memory, and `swapdb`
/// keeps the old data if the load fails. With `swapdb` and a full sync of the same history
/// (our replication id is the master's), the old data keeps serving during the load
/// (`async_loading:1`); otherwise commands without the `loading` flag get `-LOADING`.
pub(super) async fn full_sync(
    shard: &Rc<Shard>,
    node: &Arc<NodeInfo>,
    io: &mut LinkIo,
    (host, port): (&str, u16),
    (master_id, offset): (String, u64),
    attached: &std::cell::Cell<bool>,
) -> Result<Synced, String> {
    set_link(node, host, port, |m| {
        m.state = "sync";
        m.sync_in_progress = true;
        m.sync_read_bytes = 0;
        m.sync_total_bytes = -1;
    });
    let cfg = node.config();
    let swapdb = cfg.get("repl-diskless-load") == Some("swapdb");
    let diskless = swapdb
        || (cfg.get("repl-diskless-load") == Some("on-empty-db")
            && shard.all_shards(load::count_part, 0, &[]).await.iter().all(|r| matches!(r, Reply::Int(0))));
    let async_loading = swapdb && node.repl.with_status(|s| s.replid == master_id);
    // Redis's loader serves clients only once this many bytes are read: until then (and for a
    // whole payload no bigger) their commands wait rather than see -LOADING.
    let events_interval = crate::runtime::startup_load::events_interval(&cfg);
    let start_loading = |held: bool| {
        if !swapdb {
            attached.set(true);
            tracing::info!("MASTER <-> REPLICA sync: Flushing old data");
        }
        tracing::info!("MASTER <-> REPLICA sync: Loading DB in memory");
        if async_loading {
            role::set_async_loading(true);
        } else {
            role::set_load_held(held);
            role::set_loading(true);
        }
    };
    let done_loading = || {
        role::set_load_held(false);
        role::set_loading(false);
        role::set_async_loading(false);
    };
    // A diskless load starts with the transfer, as Redis loads from the socket: the node is
    // loading (or async-loading) while the payload arrives.
    let started = std::cell::Cell::new(false);
    let on_header = || {
        if diskless {
            start_loading(true);
            started.set(true);
        }
    };
    let (data, pending, eof_mode) =
        match receive_payload(node, io, host, port, (diskless, events_interval), on_header).await {
            Ok(r) => r,
            Err(e) if started.get() => {
                // The payload ended short: Redis's loader reports the RDB error, then the failure.
                tracing::warn!(
                    "Internal error in RDB reading offset 0, function at rdb.c:0 -> Unexpected EOF reading RDB file"
                );
                tracing::warn!("{}", e);
                if swapdb {
                    tracing::info!("MASTER <-> REPLICA sync: Discarding temporary DB in background");
                }
                done_loading();
                return Err(
                    "Failed trying to load the MASTER synchronization DB from socket, check server logs.".to_string()
                );
            }
            Err(e) => return Err(e),
        };
    // Keepalive before the load, as Redis sends newlines while loading.
    let _ = io.send(b"\n").await;
    let data = if diskless { data } else { keep_on_disk(&cfg, data).await? };
    if !diskless {
        start_loading(data.len() <= events_interval);
    }
    load::set_free_in_background(swapdb || cfg.get("replica-lazy-flush") == Some("yes"));
    let databases = shard.state.borrow().config.databases;
    let delay: i64 = cfg.get("key-load-delay").and_then(|v| v.parse().ok()).unwrap_or(0);
    let nshards = shard.nshards;
    let placement: Vec<u16> =
        (0..crate::cluster::slot::SLOTS as u16).map(|slot| shard.shard_of_slot(slot) as u16).collect();
    // Parsed and staged off the shards' threads: every shard keeps answering meanwhile.
    let parsed = glommio::executor()
        .spawn_blocking(move || {
            let loaded = load::parse(&data, databases)?;
            drop(data);
            if delay != 0 {
                for _ in 0..loaded.records.len() {
                    load::key_load_delay(delay);
                }
            }
            Ok::<_, String>(loaded)
        })
        .await;
    let installed = parsed.and_then(|loaded| load::install_functions(&loaded).map(|()| loaded));
    let mut loaded = match installed {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("{}", e);
            if swapdb {
                tracing::info!("MASTER <-> REPLICA sync: Discarding temporary DB in background");
            } else {
                // Redis flushed before loading: a failed load leaves the replica empty.
                shard.all_shards(load::empty_part, 0, &[]).await;
            }
            done_loading();
            return Err(if diskless {
                "Failed trying to load the MASTER synchronization DB from socket, check server logs.".to_string()
            } else {
                "Failed trying to load the MASTER synchronization DB from disk, check server logs.".to_string()
            });
        }
    };
    // The stream continues in the database the master's stream had selected.
    let stream_db = loaded
        .aux
        .iter()
        .find(|(k, _)| k == b"repl-stream-db")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
        .filter(|&db| db < databases)
        .unwrap_or(0);
    let n = loaded.records.len();
    load::stage(std::mem::take(&mut loaded.records), nshards, move |slot| {
        placement.get(slot as usize).map_or(0, |&s| s as usize)
    });
    if swapdb {
        attached.set(true);
        tracing::info!("MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
    }
    shard.all_shards(load::load_part, 0, &[]).await;
    if swapdb {
        tracing::info!("MASTER <-> REPLICA sync: Discarding old DB in background");
    }
    done_loading();
    tracing::info!("Done loading RDB, keys loaded: {}, keys expired: {}.", n, 0);
    if !diskless {
        crate::replication::remove_sync_rdb_without_persistence(&cfg);
    }
    crate::runtime::aof::restart_after_sync(node);
    node.repl.with_status(|s| {
        s.replid = master_id.clone();
        s.replid2 = "0".repeat(handshake::ID_LEN);
        s.second_offset = -1;
    });
    node.repl.set_offset(offset);
    role::set_save_id(Some(master_id));
    role::set_save_position(stream_db, offset);
    tracing::info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(Synced { db: stream_db, offset, pending, ack_first: eof_mode, full: true })
}

/// The disk side of a full sync (`repl-diskless-load disabled`): the payload goes to
/// `temp-<unixtime>.<pid>.rdb`, is fsynced and renamed to `dbfilename` (then the directory is
/// fsynced), off the shard's thread. Returns the payload for the load.
async fn keep_on_disk(cfg: &crate::config::Config, data: Vec<u8>) -> Result<Vec<u8>, String> {
    let path = crate::cmd::save::rdb_path(cfg);
    let tmp = format!("temp-{}.{}.rdb", crate::storage::now_ms() / 1000, std::process::id());
    glommio::executor()
        .spawn_blocking(move || match crate::persist::disk::write_atomic_via(&path, &tmp, &data) {
            Ok(()) => Ok(data),
            Err(e) => {
                Err(format!("Failed trying to sync the temp DB to disk in MASTER <-> REPLICA synchronization: {e}"))
            }
        })
        .await
}

/// Reads `$<len>` or `$EOF:<mark>` and the payload (`on_header` runs once the header is
/// read). Returns the RDB bytes, the stream bytes that followed them, and whether the EOF
/// form was used. A diskless load stops holding clients once more than `events_interval`
/// bytes arrived (they get `-LOADING` from then on, as Redis's loader serves them).
async fn receive_payload(
    node: &Arc<NodeInfo>,
    io: &mut LinkIo,
    host: &str,
    port: u16,
    (diskless, events_interval): (bool, usize),
    on_header: impl FnOnce(),
) -> Result<(Vec<u8>, Vec<u8>, bool), String> {
    let release = |read: usize| {
        if read > events_interval && role::load_held() {
            role::set_load_held(false);
        }
    };
    let target = if diskless { "parser" } else { "disk" };
    let io_err = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value.".to_string()
        } else {
            format!("I/O error trying to sync with MASTER: {}", crate::tls::describe(&e))
        }
    };
    let header = loop {
        let l = io.line().await.map_err(io_err)?;
        if !l.is_empty() {
            break l;
        }
        set_link(node, host, port, |m| m.last_io_ms = crate::storage::now_ms());
    };
    let header = handshake::parse_bulk_header(header.as_bytes())?;
    let mut last_status = Instant::now();
    let progress = |read: usize, total: i64| {
        set_link(node, host, port, |m| {
            m.sync_read_bytes = read as u64;
            m.sync_total_bytes = total;
            m.last_io_ms = crate::storage::now_ms();
        })
    };
    match header {
        BulkHeader::Len(len) => {
            tracing::info!("MASTER <-> REPLICA sync: receiving {} bytes from master to {}", len, target);
            on_header();
            progress(0, len as i64);
            while io.buf.len() < len {
                io.fill().await.map_err(io_err)?;
                release(io.buf.len());
                if last_status.elapsed() >= Duration::from_millis(100) {
                    last_status = Instant::now();
                    progress(io.buf.len().min(len), len as i64);
                }
            }
            let pending = io.buf.split_off(len);
            progress(len, len as i64);
            Ok((std::mem::take(&mut io.buf), pending, false))
        }
        BulkHeader::Eof(mark) => {
            tracing::info!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to {}", target);
            on_header();
            // The size is unknown: Redis shows 0 (`repl_transfer_size`).
            progress(0, 0);
            while !handshake::ends_with_mark(&io.buf, &mark) {
                io.fill().await.map_err(io_err)?;
                release(io.buf.len());
                if last_status.elapsed() >= Duration::from_millis(100) {
                    last_status = Instant::now();
                    progress(io.buf.len(), 0);
                }
            }
            let mut data = std::mem::take(&mut io.buf);
            data.truncate(data.len() - mark.len());
            progress(data.len(), 0);
            Ok((data, Vec::new(), true))
        }
    }
}
