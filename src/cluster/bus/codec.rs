//! Encoding and decoding of cluster-bus messages (`clusterMsg` in Redis 7.0's `cluster.h`).
//!
//! All integers are big-endian. A message is a 2256-byte header followed by a body whose shape
//! depends on the type: gossip entries (+ ping extensions) for PING/PONG/MEET, a node name for
//! FAIL, an epoch + node + slot bitmap for UPDATE, channel + message for PUBLISH(SHARD), a module
//! payload for MODULE, nothing for FAILOVER_AUTH_* and MFSTART. Decoding is strict: wrong
//! signature, version, or a `totlen` that does not match the type's expected length is an error,
//! and the receiver drops the message (counting it), as Redis does.

use crate::cluster::slot::SLOTS;

/// Header length (`CLUSTERMSG_MIN_LEN`).
pub const HEADER_LEN: usize = 2256;
/// One gossip entry.
pub const GOSSIP_LEN: usize = 104;
/// Node name length.
pub const NAME_LEN: usize = 40;
/// IP field length (`NET_IP_STR_LEN`).
pub const IP_LEN: usize = 46;
/// Slot bitmap length.
pub const SLOT_BYTES: usize = SLOTS / 8;
/// Protocol version.
pub const VERSION: u16 = 1;

/// Message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum MsgType {
    /// PING
    Ping = 0,
    /// PONG
    Pong = 1,
    /// MEET
    Meet = 2,
    /// FAIL
    Fail = 3,
    /// PUBLISH
    Publish = 4,
    /// FAILOVER_AUTH_REQUEST
    FailoverAuthRequest = 5,
    /// FAILOVER_AUTH_ACK
    FailoverAuthAck = 6,
    /// UPDATE
    Update = 7,
    /// MFSTART
    MfStart = 8,
    /// MODULE
    Module = 9,
    /// PUBLISHSHARD
    PublishShard = 10,
}

impl MsgType {
    /// From the wire value.
    pub fn from_u16(v: u16) -> Option<MsgType> {
        use MsgType::*;
        Some(match v {
            0 => Ping,
            1 => Pong,
            2 => Meet,
            3 => Fail,
            4 => Publish,
            5 => FailoverAuthRequest,
            6 => FailoverAuthAck,
            7 => Update,
            8 => MfStart,
            9 => Module,
            10 => PublishShard,
            _ => return None,
        })
    }

    /// Name used in `cluster_stats_messages_<name>_sent`.
    pub fn stats_name(self) -> &'static str {
        use MsgType::*;
        match self {
            Ping => "ping",
            Pong => "pong",
            Meet => "meet",
            Fail => "fail",
            Publish => "publish",
            FailoverAuthRequest => "auth-req",
            FailoverAuthAck => "auth-ack",
            Update => "update",
            MfStart => "mfstart",
            Module => "module",
            PublishShard => "publishshard",
        }
    }
}

/// Node flag bits as carried on the bus.
pub struct NodeFlags;
impl NodeFlags {
    /// master
    pub const MASTER: u16 = 1;
    /// slave
    pub const SLAVE: u16 = 2;
    /// fail?
    pub const PFAIL: u16 = 4;
    /// fail
    pub const FAIL: u16 = 8;
    /// myself
    pub const MYSELF: u16 = 16;
    /// handshake
    pub const HANDSHAKE: u16 = 32;
    /// noaddr
    pub const NOADDR: u16 = 64;
    /// meet
    pub const MEET: u16 = 128;
    /// migrate_to
    pub const MIGRATE_TO: u16 = 256;
    /// nofailover
    pub const NOFAILOVER: u16 = 512;
}

/// `mflags[0]` bits.
pub mod mflags {
    /// Master paused for a manual failover.
    pub const PAUSED: u8 = 1;
    /// Vote even if the master is not failing (manual failover).
    pub const FORCEACK: u8 = 2;
    /// Ping extensions follow the gossip section.
    pub const EXT_DATA: u8 = 4;
}

/// The fixed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Announced client port.
    pub port: u16,
    /// Message type.
    pub msg_type: MsgType,
    /// Sender's currentEpoch.
    pub current_epoch: u64,
    /// Sender's configEpoch (its master's for a replica).
    pub config_epoch: u64,
    /// Replication offset.
    pub offset: u64,
    /// Sender node id (40 hex chars).
    pub sender: [u8; NAME_LEN],
    /// Slots the sender (or its master) serves.
    pub myslots: Box<[u8; SLOT_BYTES]>,
    /// Master's id for a replica; all zero for a master.
    pub slaveof: [u8; NAME_LEN],
    /// Announced IP (empty = use the peer address).
    pub myip: String,
    /// Plaintext port when the client port is TLS.
    pub pport: u16,
    /// Bus port.
    pub cport: u16,
    /// Sender's flags.
    pub flags: u16,
    /// Sender's view of the cluster state: 0 ok, 1 fail.
    pub state: u8,
    /// Message flags (`mflags[0..3]`).
    pub mflags: [u8; 3],
}

impl Header {
    /// A header with empty slots and no master.
    pub fn new(msg_type: MsgType, sender: [u8; NAME_LEN]) -> Header {
        Header {
            port: 0,
            msg_type,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            myslots: Box::new([0u8; SLOT_BYTES]),
            slaveof: [0u8; NAME_LEN],
            myip: String::new(),
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }

    /// True when the sender says it is a replica (`slaveof` not all zero).
    pub fn is_replica(&self) -> bool {
        self.slaveof.iter().any(|&b| b != 0)
    }
}

/// Slot `s` in a bitmap: byte s/8, bit s&7 (LSB first).
pub fn slot_bit(bitmap: &[u8; SLOT_BYTES], s: usize) -> bool {
    bitmap[s / 8] & (1 << (s & 7)) != 0
}

/// Sets slot `s` in a bitmap.
pub fn set_slot_bit(bitmap: &mut [u8; SLOT_BYTES], s: usize) {
    bitmap[s / 8] |= 1 << (s & 7);
}

/// One gossip entry: what the sender knows of another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipEntry {
    /// Node id.
    pub nodename: [u8; NAME_LEN],
    /// Last ping sent to it (seconds).
    pub ping_sent: u32,
    /// Last pong received from it (seconds).
    pub pong_received: u32,
    /// Its IP.
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Bus port.
    pub cport: u16,
    /// Flags as the sender sees them.
    pub flags: u16,
    /// Plaintext port.
    pub pport: u16,
}

/// A ping extension (7.0 defines only HOSTNAME; unknown types are kept opaque).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// Type 0: the sender's announced hostname.
    Hostname(String),
    /// Any other type, kept as (type, payload).
    Other(u16, Vec<u8>),
}

/// A message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// PING / PONG / MEET.
    Gossip {
        /// Gossip entries.
        entries: Vec<GossipEntry>,
        /// Ping extensions (sent when non-empty, with `mflags[0] & EXT_DATA`).
        extensions: Vec<Extension>,
    },
    /// FAIL: the failing node.
    Fail {
        /// Node id.
        nodename: [u8; NAME_LEN],
    },
    /// PUBLISH / PUBLISHSHARD.
    Publish {
        /// Channel.
        channel: Vec<u8>,
        /// Message.
        message: Vec<u8>,
    },
    /// UPDATE: a node's configuration.
    Update {
        /// Its configEpoch.
        config_epoch: u64,
        /// Node id.
        nodename: [u8; NAME_LEN],
        /// Its slots.
        slots: Box<[u8; SLOT_BYTES]>,
    },
    /// MODULE.
    Module {
        /// Module id (copied raw, not byte-swapped).
        module_id: u64,
        /// Module message type.
        module_type: u8,
        /// Payload.
        payload: Vec<u8>,
    },
    /// FAILOVER_AUTH_REQUEST / ACK / MFSTART: no body.
    Empty,
}

/// A whole bus message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// Header.
    pub header: Header,
    /// Body.
    pub body: Body,
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header or than `totlen`.
    Short,
    /// Not `RCmb`.
    BadSignature,
    /// Unsupported version.
    BadVersion(u16),
    /// Unknown type.
    BadType(u16),
    /// `totlen` does not match what the type and counts require.
    BadLength {
        /// totlen in the header.
        got: usize,
        /// What it should be.
        expected: usize,
    },
    /// A malformed ping extension.
    BadExtension,
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_str_padded(out: &mut Vec<u8>, s: &str, len: usize) {
    let b = s.as_bytes();
    let n = b.len().min(len - 1);
    out.extend_from_slice(&b[..n]);
    out.resize(out.len() + (len - n), 0);
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}
fn get_name(b: &[u8], at: usize) -> [u8; NAME_LEN] {
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(&b[at..at + NAME_LEN]);
    n
}
fn get_cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn extension_len(e: &Extension) -> usize {
    let payload = match e {
        Extension::Hostname(h) => h.len() + 1,
        Extension::Other(_, p) => p.len(),
    };
    8 + payload.div_ceil(8) * 8
}

impl BusMessage {
    /// Encodes the message; `totlen`, `count` and `extensions` are computed.
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let (count, nexts, ext_data) = match &self.body {
            Body::Gossip { entries, extensions } => {
                (entries.len() as u16, extensions.len() as u16, !extensions.is_empty())
            }
            _ => (0, 0, false),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + 512);
        out.extend_from_slice(b"RCmb");
        put_u32(&mut out, 0); // totlen, patched below
        put_u16(&mut out, VERSION);
        put_u16(&mut out, h.port);
        put_u16(&mut out, h.msg_type as u16);
        put_u16(&mut out, count);
        put_u64(&mut out, h.current_epoch);
        put_u64(&mut out, h.config_epoch);
        put_u64(&mut out, h.offset);
        out.extend_from_slice(&h.sender);
        out.extend_from_slice(&h.myslots[..]);
        out.extend_from_slice(&h.slaveof);
        put_str_padded(&mut out, &h.myip, IP_LEN);
        put_u16(&mut out, nexts);
        out.resize(out.len() + 30, 0); // notused1
        put_u16(&mut out, h.pport);
        put_u16(&mut out, h.cport);
        put_u16(&mut out, h.flags);
        out.push(h.state);
        let mut mf = h.mflags;
        if ext_data {
            mf[0] |= mflags::EXT_DATA;
        }
        out.extend_from_slice(&mf);
        debug_assert_eq!(out.len(), HEADER_LEN);
        match &self.body {
            Body::Gossip { entries, extensions } => {
                for g in entries {
                    out.extend_from_slice(&g.nodename);
                    put_u32(&mut out, g.ping_sent);
                    put_u32(&mut out, g.pong_received);
                    put_str_padded(&mut out, &g.ip, IP_LEN);
                    put_u16(&mut out, g.port);
                    put_u16(&mut out, g.cport);
                    put_u16(&mut out, g.flags);
                    put_u16(&mut out, g.pport);
                    put_u16(&mut out, 0);
                }
                for e in extensions {
                    let len = extension_len(e);
                    let start = out.len();
                    put_u32(&mut out, len as u32);
                    let (ty, payload): (u16, &[u8]) = match e {
                        Extension::Hostname(hn) => (0, hn.as_bytes()),
                        Extension::Other(t, p) => (*t, p),
                    };
                    put_u16(&mut out, ty);
                    put_u16(&mut out, 0);
                    out.extend_from_slice(payload);
                    out.resize(start + len, 0);
                }
            }
            Body::Fail { nodename } => out.extend_from_slice(nodename),
            Body::Publish { channel, message } => {
                put_u32(&mut out, channel.len() as u32);
                put_u32(&mut out, message.len() as u32);
                out.extend_from_slice(channel);
                out.extend_from_slice(message);
            }
            Body::Update { config_epoch, nodename, slots } => {
                put_u64(&mut out, *config_epoch);
                out.extend_from_slice(nodename);
                out.extend_from_slice(&slots[..]);
            }
            Body::Module { module_id, module_type, payload } => {
                out.extend_from_slice(&module_id.to_ne_bytes());
                put_u32(&mut out, payload.len() as u32);
                out.push(*module_type);
                out.extend_from_slice(payload);
            }
            Body::Empty => {}
        }
        let total = out.len() as u32;
        out[4..8].copy_from_slice(&total.to_be_bytes());
        out
    }

    /// `totlen` of the message starting at `buf`, once 8 bytes have arrived (for framing).
    pub fn peek_len(buf: &[u8]) -> Option<Result<usize, DecodeError>> {
        if buf.len() < 8 {
            return None;
        }
        if &buf[0..4] != b"RCmb" {
            return Some(Err(DecodeError::BadSignature));
        }
        let len = get_u32(buf, 4) as usize;
        if len < HEADER_LEN {
            return Some(Err(DecodeError::BadLength { got: len, expected: HEADER_LEN }));
        }
        Some(Ok(len))
    }

    /// Decodes exactly one message (`buf` must be `totlen` bytes long).
    pub fn decode(buf: &[u8]) -> Result<BusMessage, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Short);
        }
        if &buf[0..4] != b"RCmb" {
            return Err(DecodeError::BadSignature);
        }
        let totlen = get_u32(buf, 4) as usize;
        if totlen != buf.len() {
            return Err(DecodeError::BadLength { got: totlen, expected: buf.len() });
        }
        let ver = get_u16(buf, 8);
        if ver != VERSION {
            return Err(DecodeError::BadVersion(ver));
        }
        let raw_type = get_u16(buf, 12);
        let msg_type = MsgType::from_u16(raw_type).ok_or(DecodeError::BadType(raw_type))?;
        let count = get_u16(buf, 14) as usize;
        let mut myslots = Box::new([0u8; SLOT_BYTES]);
        myslots.copy_from_slice(&buf[80..80 + SLOT_BYTES]);
        let nexts = get_u16(buf, 2214) as usize;
        let mut mf = [0u8; 3];
        mf.copy_from_slice(&buf[2253..2256]);
        let header = Header {
            port: get_u16(buf, 10),
            msg_type,
            current_epoch: get_u64(buf, 16),
            config_epoch: get_u64(buf, 24),
            offset: get_u64(buf, 32),
            sender: get_name(buf, 40),
            myslots,
            slaveof: get_name(buf, 2128),
            myip: get_cstr(&buf[2168..2168 + IP_LEN]),
            pport: get_u16(buf, 2246),
            cport: get_u16(buf, 2248),
            flags: get_u16(buf, 2250),
            state: buf[2252],
            mflags: mf,
        };
        let data = &buf[HEADER_LEN..];
        let expect = |n: usize| -> Result<(), DecodeError> {
            if totlen != n {
                Err(DecodeError::BadLength { got: totlen, expected: n })
            } else {
                Ok(())
            }
        };
        let body = match msg_type {
            MsgType::Ping | MsgType::Pong | MsgType::Meet => {
                let gossip_end = count * GOSSIP_LEN;
                if data.len() < gossip_end {
                    return Err(DecodeError::BadLength { got: totlen, expected: HEADER_LEN + gossip_end });
                }
                let mut entries = Vec::with_capacity(count);
                for i in 0..count {
                    let g = &data[i * GOSSIP_LEN..(i + 1) * GOSSIP_LEN];
                    entries.push(GossipEntry {
                        nodename: get_name(g, 0),
                        ping_sent: get_u32(g, 40),
                        pong_received: get_u32(g, 44),
                        ip: get_cstr(&g[48..48 + IP_LEN]),
                        port: get_u16(g, 94),
                        cport: get_u16(g, 96),
                        flags: get_u16(g, 98),
                        pport: get_u16(g, 100),
                    });
                }
                let mut extensions = Vec::new();
                let mut at = gossip_end;
                if header.mflags[0] & mflags::EXT_DATA != 0 {
                    for _ in 0..nexts {
                        if data.len() < at + 8 {
                            return Err(DecodeError::BadExtension);
                        }
                        let len = get_u32(data, at) as usize;
                        if len < 8 || len % 8 != 0 || at + len > data.len() {
                            return Err(DecodeError::BadExtension);
                        }
                        let ty = get_u16(data, at + 4);
                        let payload = &data[at + 8..at + len];
                        extensions.push(match ty {
                            0 => Extension::Hostname(get_cstr(payload)),
                            t => Extension::Other(t, payload.to_vec()),
                        });
                        at += len;
                    }
                }
                expect(HEADER_LEN + at)?;
                Body::Gossip { entries, extensions }
            }
            MsgType::Fail => {
                expect(HEADER_LEN + NAME_LEN)?;
                Body::Fail { nodename: get_name(data, 0) }
            }
            MsgType::Publish | MsgType::PublishShard => {
                if data.len() < 8 {
                    return Err(DecodeError::Short);
                }
                let cl = get_u32(data, 0) as usize;
                let ml = get_u32(data, 4) as usize;
                let body_len = 8 + cl.checked_add(ml).ok_or(DecodeError::Short)?;
                // Redis: totlen = header + sizeof(publish data) - 8 + cl + ml = 2264 + cl + ml.
                expect(HEADER_LEN + body_len)?;
                Body::Publish { channel: data[8..8 + cl].to_vec(), message: data[8 + cl..8 + cl + ml].to_vec() }
            }
            MsgType::Update => {
                expect(HEADER_LEN + 8 + NAME_LEN + SLOT_BYTES)?;
                let mut slots = Box::new([0u8; SLOT_BYTES]);
                slots.copy_from_slice(&data[8 + NAME_LEN..8 + NAME_LEN + SLOT_BYTES]);
                Body::Update { config_epoch: get_u64(data, 0), nodename: get_name(data, 8), slots }
            }
            MsgType::Module => {
                if data.len() < 13 {
                    return Err(DecodeError::Short);
                }
                let mut id = [0u8; 8];
                id.copy_from_slice(&data[0..8]);
                let len = get_u32(data, 8) as usize;
                // Redis: totlen = header + sizeof(module data) - 3 + len = 2269 + len.
                expect(HEADER_LEN + 13 + len)?;
                Body::Module {
                    module_id: u64::from_ne_bytes(id),
                    module_type: data[12],
                    payload: data[13..13 + len].to_vec(),
                }
            }
            MsgType::FailoverAuthRequest | MsgType::FailoverAuthAck | MsgType::MfStart => {
                expect(HEADER_LEN)?;
                Body::Empty
            }
        };
        Ok(BusMessage { header, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(c: u8) -> [u8; NAME_LEN] {
        [c; NAME_LEN]
    }

    fn gossip(c: u8) -> GossipEntry {
        GossipEntry {
            nodename: name(c),
            ping_sent: 1,
            pong_received: 2,
            ip: "127.0.0.1".into(),
            port: 30001,
            cport: 40001,
            flags: NodeFlags::MASTER,
            pport: 0,
        }
    }

    #[test]
    fn field_offsets_match_redis() {
        let mut h = Header::new(MsgType::Pong, name(b'a'));
        h.port = 30001;
        h.cport = 40001;
        h.flags = NodeFlags::MYSELF | NodeFlags::MASTER | NodeFlags::MIGRATE_TO;
        h.current_epoch = 7;
        h.myip = "10.0.0.1".into();
        set_slot_bit(&mut h.myslots, 0);
        set_slot_bit(&mut h.myslots, 9);
        let m = BusMessage {
            header: h,
            body: Body::Gossip { entries: vec![gossip(b'b'), gossip(b'c'), gossip(b'd')], extensions: vec![] },
        };
        let b = m.encode();
        // A live PONG with three entries has totlen 2568.
        assert_eq!(b.len(), 2568);
        assert_eq!(&b[0..4], b"RCmb");
        assert_eq!(get_u32(&b, 4), 2568);
        assert_eq!(get_u16(&b, 8), 1);
        assert_eq!(get_u16(&b, 10), 30001);
        assert_eq!(get_u16(&b, 12), 1);
        assert_eq!(get_u16(&b, 14), 3);
        assert_eq!(get_u64(&b, 16), 7);
        assert_eq!(b[80], 0b0000_0001);
        assert_eq!(b[81], 0b0000_0010);
        assert_eq!(&b[2168..2176], b"10.0.0.1");
        assert_eq!(get_u16(&b, 2248), 40001);
        assert_eq!(get_u16(&b, 2250), 273);
        assert_eq!(&b[2256..2296], &name(b'b'));
        assert_eq!(get_u16(&b, 2256 + 94), 30001);
        assert_eq!(BusMessage::decode(&b).unwrap(), m);
    }

    #[test]
    fn hostname_extension_layout() {
        let h = Header::new(MsgType::Ping, name(b'a'));
        let m = BusMessage {
            header: h,
            body: Body::Gossip { entries: vec![], extensions: vec![Extension::Hostname("node2.example".into())] },
        };
        let b = m.encode();
        // Live: 00000018 0000 0000 "node2.example\0\0\0"
        assert_eq!(&b[2256..2264], &[0, 0, 0, 0x18, 0, 0, 0, 0]);
        assert_eq!(&b[2264..2280], b"node2.example\0\0\0");
        assert_eq!(b[2253] & mflags::EXT_DATA, mflags::EXT_DATA);
        assert_eq!(get_u16(&b, 2214), 1);
        let d = BusMessage::decode(&b).unwrap();
        assert_eq!(d.body, m.body);
    }

    #[test]
    fn other_bodies_round_trip_with_redis_lengths() {
        let fail =
            BusMessage { header: Header::new(MsgType::Fail, name(b'a')), body: Body::Fail { nodename: name(b'z') } };
        assert_eq!(fail.encode().len(), 2296);
        let mut slots = Box::new([0u8; SLOT_BYTES]);
        set_slot_bit(&mut slots, 16383);
        let upd = BusMessage {
            header: Header::new(MsgType::Update, name(b'a')),
            body: Body::Update { config_epoch: 3, nodename: name(b'y'), slots },
        };
        assert_eq!(upd.encode().len(), 4352);
        let publ = BusMessage {
            header: Header::new(MsgType::Publish, name(b'a')),
            body: Body::Publish { channel: b"news".to_vec(), message: b"hello".to_vec() },
        };
        assert_eq!(publ.encode().len(), 2264 + 4 + 5);
        let module = BusMessage {
            header: Header::new(MsgType::Module, name(b'a')),
            body: Body::Module { module_id: 42, module_type: 1, payload: b"xy".to_vec() },
        };
        assert_eq!(module.encode().len(), 2269 + 2);
        assert_eq!(BusMessage::decode(&module.encode()).unwrap(), module);
        let ack = BusMessage { header: Header::new(MsgType::FailoverAuthAck, name(b'a')), body: Body::Empty };
        assert_eq!(ack.encode().len(), 2256);
        for m in [fail, upd, publ, ack] {
            assert_eq!(BusMessage::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn malformed_messages_are_rejected() {
        let m =
            BusMessage { header: Header::new(MsgType::Fail, name(b'a')), body: Body::Fail { nodename: name(b'z') } };
        let mut b = m.encode();
        assert!(BusMessage::decode(&b[..100]).is_err());
        b[0] = b'X';
        assert_eq!(BusMessage::decode(&b), Err(DecodeError::BadSignature));
        let mut b = m.encode();
        b.push(0);
        assert!(BusMessage::decode(&b).is_err());
        let mut b = m.encode();
        b[13] = 99;
        assert_eq!(BusMessage::decode(&b), Err(DecodeError::BadType(99)));
        // A gossip count larger than the message.
        let p = BusMessage {
            header: Header::new(MsgType::Ping, name(b'a')),
            body: Body::Gossip { entries: vec![gossip(b'q')], extensions: vec![] },
        };
        let mut b = p.encode();
        b[15] = 5;
        assert!(BusMessage::decode(&b).is_err());
        assert!(BusMessage::peek_len(b"RCmb\0\0\0\x10").unwrap().is_err());
    }
}
