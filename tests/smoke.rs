//! Smoke test: the server starts, answers PING inline and in RESP, and SET/GET round-trip.

mod common;
use common::Server;

#[test]
fn ping_set_get() {
    let s = Server::slotcore(&[]);
    let mut r = s.raw();
    r.send(b"PING\r\n");
    assert_eq!(r.reply(), "+PONG\r\n");
    assert_eq!(r.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(r.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn unknown_command_matches_redis() {
    let s = Server::slotcore(&[]);
    let o = Server::redis(&[]);
    common::assert_same(&mut s.raw(), &mut o.raw(), &[&["NOSUCH", "a", "b"], &["GET"], &["GET", "a", "b"]]);
}
