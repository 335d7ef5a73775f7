//! The node table as Redis shows and saves it: CLUSTER NODES lines and nodes.conf.
//!
//! `nodes.conf` is the CLUSTER NODES text (handshake nodes left out) plus a last line
//! `vars currentEpoch N lastVoteEpoch N`. Lines are split like a shell command line; unknown
//! flags are an error (Redis panics); a missing `myself` line makes the file corrupt.

use crate::cluster::slot::SLOTS;
use std::fmt::Write as _;

/// Node flags as printed, in Redis's order.
pub mod flag {
    /// myself
    pub const MYSELF: u16 = 1 << 0;
    /// master
    pub const MASTER: u16 = 1 << 1;
    /// slave
    pub const SLAVE: u16 = 1 << 2;
    /// fail?
    pub const PFAIL: u16 = 1 << 3;
    /// fail
    pub const FAIL: u16 = 1 << 4;
    /// handshake
    pub const HANDSHAKE: u16 = 1 << 5;
    /// noaddr
    pub const NOADDR: u16 = 1 << 6;
    /// nofailover
    pub const NOFAILOVER: u16 = 1 << 7;

    /// (bit, name) in print order.
    pub const NAMES: &[(u16, &str)] = &[
        (MYSELF, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
}

/// One node as listed by CLUSTER NODES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLine {
    /// 40-hex id.
    pub id: String,
    /// IP ("" for noaddr).
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Bus port.
    pub cport: u16,
    /// Announced hostname, if any.
    pub hostname: Option<String>,
    /// `flag::*` bits.
    pub flags: u16,
    /// Master id for replicas.
    pub master: Option<String>,
    /// Last ping sent (ms).
    pub ping_sent: u64,
    /// Last pong received (ms).
    pub pong_recv: u64,
    /// configEpoch (a replica shows its master's).
    pub config_epoch: u64,
    /// Link state.
    pub connected: bool,
    /// Owned slots, as inclusive ranges in ascending order.
    pub slots: Vec<(u16, u16)>,
    /// Slots being migrated to (slot, node id) — myself only.
    pub migrating: Vec<(u16, String)>,
    /// Slots being imported from (slot, node id) — myself only.
    pub importing: Vec<(u16, String)>,
}

/// Why a nodes.conf could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError(pub String);

/// Collapses a slot bitmap (`owned[s]`) into ascending inclusive ranges.
pub fn ranges(owned: impl Fn(usize) -> bool) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for s in 0..=SLOTS {
        let on = s < SLOTS && owned(s);
        match (on, start) {
            (true, None) => start = Some(s),
            (false, Some(a)) => {
                out.push((a as u16, (s - 1) as u16));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Formats the flags field (`noflags` when empty).
pub fn format_flags(flags: u16) -> String {
    let names: Vec<&str> = flag::NAMES.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        "noflags".into()
    } else {
        names.join(",")
    }
}

impl NodeLine {
    /// The CLUSTER NODES line, without the trailing newline.
    pub fn format(&self) -> String {
        let mut s = String::with_capacity(128);
        let _ = write!(s, "{} {}:{}@{}", self.id, self.ip, self.port, self.cport);
        if let Some(h) = &self.hostname {
            let _ = write!(s, ",{h}");
        }
        let _ = write!(
            s,
            " {} {} {} {} {} {}",
            format_flags(self.flags),
            self.master.as_deref().unwrap_or("-"),
            self.ping_sent,
            self.pong_recv,
            self.config_epoch,
            if self.connected { "connected" } else { "disconnected" }
        );
        for &(a, b) in &self.slots {
            if a == b {
                let _ = write!(s, " {a}");
            } else {
                let _ = write!(s, " {a}-{b}");
            }
        }
        if self.flags & flag::MYSELF != 0 {
            for (slot, id) in &self.migrating {
                let _ = write!(s, " [{slot}->-{id}]");
            }
            for (slot, id) in &self.importing {
                let _ = write!(s, " [{slot}-<-{id}]");
            }
        }
        s
    }

    /// Parses one nodes.conf / CLUSTER NODES line.
    pub fn parse(line: &str) -> Result<NodeLine, ConfError> {
        let bad =
            |why: &str| ConfError(format!("Unrecoverable error: corrupted cluster config file \"{line}\": {why}"));
        let f: Vec<&str> = line.split(' ').filter(|t| !t.is_empty()).collect();
        if f.len() < 8 {
            return Err(bad("less than 8 fields"));
        }
        let id = f[0];
        if id.len() != 40 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("invalid node id"));
        }
        // addr: ip:port[@cport][,hostname]
        let (addr, hostname) = match f[1].split_once(',') {
            Some((a, h)) => (a, if h.is_empty() { None } else { Some(h.to_string()) }),
            None => (f[1], None),
        };
        let (ipport, cport) = match addr.rsplit_once('@') {
            Some((ip, c)) => (ip, Some(c.parse::<u16>().map_err(|_| bad("invalid bus port"))?)),
            None => (addr, None),
        };
        let (ip, port) = ipport.rsplit_once(':').ok_or_else(|| bad("invalid address"))?;
        let port: u16 = port.parse().map_err(|_| bad("invalid port"))?;
        let cport = cport.unwrap_or_else(|| port.wrapping_add(10000));
        let mut flags = 0u16;
        for name in f[2].split(',') {
            if name == "noflags" {
                continue;
            }
            match flag::NAMES.iter().find(|(_, n)| *n == name) {
                Some((b, _)) => flags |= b,
                None => return Err(bad(&format!("unknown flag '{name}'"))),
            }
        }
        let master = if f[3] == "-" { None } else { Some(f[3].to_string()) };
        let num = |t: &str| t.parse::<u64>().map_err(|_| bad("invalid number"));
        let mut n = NodeLine {
            id: id.to_string(),
            ip: ip.to_string(),
            port,
            cport,
            hostname,
            flags,
            master,
            ping_sent: num(f[4])?,
            pong_recv: num(f[5])?,
            config_epoch: num(f[6])?,
            connected: f[7] == "connected",
            slots: Vec::new(),
            migrating: Vec::new(),
            importing: Vec::new(),
        };
        let slot = |t: &str| -> Result<u16, ConfError> {
            match t.parse::<u16>() {
                Ok(s) if (s as usize) < SLOTS => Ok(s),
                _ => Err(bad("invalid slot")),
            }
        };
        for tok in &f[8..] {
            if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                if let Some((s, id)) = inner.split_once("->-") {
                    n.migrating.push((slot(s)?, id.to_string()));
                } else if let Some((s, id)) = inner.split_once("-<-") {
                    n.importing.push((slot(s)?, id.to_string()));
                } else {
                    return Err(bad("invalid slot state"));
                }
            } else if let Some((a, b)) = tok.split_once('-') {
                let (a, b) = (slot(a)?, slot(b)?);
                if a > b {
                    return Err(bad("invalid slot range"));
                }
                n.slots.push((a, b));
            } else {
                let s = slot(tok)?;
                n.slots.push((s, s));
            }
        }
        Ok(n)
    }
}

/// A parsed nodes.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodesConf {
    /// Every node line, in file order.
    pub nodes: Vec<NodeLine>,
    /// `vars currentEpoch`.
    pub current_epoch: u64,
    /// `vars lastVoteEpoch`.
    pub last_vote_epoch: u64,
}

impl NodesConf {
    /// Parses nodes.conf text. currentEpoch becomes at least the highest configEpoch.
    pub fn parse(text: &str) -> Result<NodesConf, ConfError> {
        let mut conf = NodesConf::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("vars ") {
                let toks: Vec<&str> = rest.split_whitespace().collect();
                for kv in toks.chunks(2) {
                    if kv.len() != 2 {
                        return Err(ConfError(format!(
                            "Unrecoverable error: corrupted cluster config file \"{line}\"."
                        )));
                    }
                    let v: u64 = kv[1].parse().map_err(|_| {
                        ConfError(format!("Unrecoverable error: corrupted cluster config file \"{line}\"."))
                    })?;
                    match kv[0] {
                        "currentEpoch" => conf.current_epoch = v,
                        "lastVoteEpoch" => conf.last_vote_epoch = v,
                        _ => {} // Redis ignores unknown vars.
                    }
                }
                continue;
            }
            let mut n = NodeLine::parse(line)?;
            if n.flags & flag::SLAVE != 0 {
                // A replica's configEpoch is loaded as 0 (it shows its master's).
                n.config_epoch = 0;
            }
            conf.nodes.push(n);
        }
        if !conf.nodes.iter().any(|n| n.flags & flag::MYSELF != 0) {
            return Err(ConfError("Unrecoverable error: corrupted cluster config file: no myself line".into()));
        }
        let max_cfg = conf.nodes.iter().map(|n| n.config_epoch).max().unwrap_or(0);
        conf.current_epoch = conf.current_epoch.max(max_cfg);
        Ok(conf)
    }

    /// The file text: node lines (handshake nodes left out) and the vars line.
    pub fn format(&self) -> String {
        let mut s = String::new();
        for n in self.nodes.iter().filter(|n| n.flags & flag::HANDSHAKE == 0) {
            s.push_str(&n.format());
            s.push('\n');
        }
        let _ = writeln!(s, "vars currentEpoch {} lastVoteEpoch {}", self.current_epoch, self.last_vote_epoch);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "b380c0dad3393563cbcf683fe6d4ad2958bd5831 127.0.0.1:30001@40001 myself,master - 0 1795331200000 1 connected 0-5460 [741->-36d2698c2e9572ceb1c1c0c4aa51427a3da41b99]
d5557fb58f06191a190e3dcf02fe78bd17dd065b 127.0.0.1:30004@40004 slave 36d2698c2e9572ceb1c1c0c4aa51427a3da41b99 0 1795331201000 2 connected
4dc39aaaa1111111111111111111111111f93200 127.0.0.1:30002@40002,node2.example master - 0 1795331504630 2 connected 5461-10922
vars currentEpoch 6 lastVoteEpoch 0
";

    #[test]
    fn live_lines_round_trip() {
        for line in LIVE.lines().take(3) {
            assert_eq!(NodeLine::parse(line).unwrap().format(), line);
        }
        let conf = NodesConf::parse(LIVE).unwrap();
        assert_eq!(conf.current_epoch, 6);
        assert_eq!(conf.nodes[0].migrating, vec![(741, "36d2698c2e9572ceb1c1c0c4aa51427a3da41b99".to_string())]);
        assert_eq!(conf.nodes[1].config_epoch, 0, "replica epochs load as 0");
        assert_eq!(conf.nodes[2].hostname.as_deref(), Some("node2.example"));
    }

    #[test]
    fn missing_cport_and_errors() {
        let n = NodeLine::parse(
            "b380c0dad3393563cbcf683fe6d4ad2958bd5831 127.0.0.1:7000 myself,master - 0 0 0 connected 1 3-4",
        )
        .unwrap();
        assert_eq!(n.cport, 17000);
        assert_eq!(n.slots, vec![(1, 1), (3, 4)]);
        assert!(NodeLine::parse(
            "b380c0dad3393563cbcf683fe6d4ad2958bd5831 127.0.0.1:7000 myself,bogus - 0 0 0 connected"
        )
        .is_err());
        assert!(NodeLine::parse("short line").is_err());
        assert!(NodesConf::parse("vars currentEpoch 1 lastVoteEpoch 0\n").is_err());
    }

    #[test]
    fn ranges_collapse() {
        let r = ranges(|s| s <= 5460 || s == 6000 || s >= 16380);
        assert_eq!(r, vec![(0, 5460), (6000, 6000), (16380, 16383)]);
        assert_eq!(format_flags(0), "noflags");
        assert_eq!(format_flags(flag::MYSELF | flag::SLAVE | flag::PFAIL), "myself,slave,fail?");
    }
}
