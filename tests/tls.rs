//! TLS end to end, as a user configures it in redis.conf: certificates made with `openssl` the
//! way Redis's `utils/gen-test-certs.sh` makes them (a CA, a server and a client certificate),
//! clients through `redis-cli --tls`, refused certificates with Redis's log lines (checked
//! against redis-server 7.0 given the same clients), replicas over TLS (slotcore and
//! redis-server masters), and a TLS-only cluster built with `redis-cli --tls --cluster create`.

mod common;

use common::{free_port, WAIT};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The test certificates (made once per test binary).
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A key and a certificate `name` with subject CN `cn`, signed by the CA `ca`.
fn issue(dir: &Path, ca: &str, name: &str, cn: &str, ext: Option<&str>) {
    openssl(dir, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
    let subj = format!("/O=Redis Test/CN={cn}");
    openssl(
        dir,
        &["req", "-new", "-sha256", "-subj", &subj, "-key", &format!("{name}.key"), "-out", &format!("{name}.csr")],
    );
    let mut args = vec![
        "x509".to_string(),
        "-req".into(),
        "-sha256".into(),
        "-in".into(),
        format!("{name}.csr"),
        "-CA".into(),
        format!("{ca}.crt"),
        "-CAkey".into(),
        format!("{ca}.key"),
        "-CAcreateserial".into(),
        "-days".into(),
        "365".into(),
        "-out".into(),
        format!("{name}.crt"),
    ];
    if let Some(e) = ext {
        args.extend(["-extfile".into(), "openssl.cnf".into(), "-extensions".into(), e.into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(dir, &refs);
}

/// A v1 certificate `name` signed by `ca` that was valid on 1 January 2020 only (`openssl ca`,
/// the one tool that sets dates in the past).
fn issue_expired(dir: &Path, ca: &str, name: &str, cn: &str) {
    openssl(dir, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
    let subj = format!("/O=Redis Test/CN={cn}");
    openssl(
        dir,
        &["req", "-new", "-sha256", "-subj", &subj, "-key", &format!("{name}.key"), "-out", &format!("{name}.csr")],
    );
    let db = dir.join("ca-db");
    std::fs::create_dir_all(&db).expect("ca db");
    std::fs::write(db.join("index.txt"), "").expect("ca index");
    std::fs::write(db.join("serial"), "01\n").expect("ca serial");
    std::fs::write(
        dir.join("ca.cnf"),
        "[ ca ]\ndefault_ca = test\n[ test ]\ndatabase = ca-db/index.txt\nnew_certs_dir = ca-db\nserial = ca-db/serial\ndefault_md = sha256\npolicy = any\n[ any ]\ncommonName = supplied\n",
    )
    .expect("ca.cnf");
    let (cert, key, csr, out) =
        (format!("{ca}.crt"), format!("{ca}.key"), format!("{name}.csr"), format!("{name}.crt"));
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &cert,
            "-keyfile",
            &key,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-in",
            &csr,
            "-out",
            &out,
        ],
    );
}

fn make_ca(dir: &Path, name: &str, cn: &str) {
    openssl(dir, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
    let subj = format!("/O=Redis Test/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-sha256",
            "-key",
            &format!("{name}.key"),
            "-days",
            "3650",
            "-subj",
            &subj,
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

fn certs() -> &'static Certs {
    static C: OnceLock<Certs> = OnceLock::new();
    C.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("slotcore-tls-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cert dir");
        make_ca(&dir, "ca", "Certificate Authority");
        std::fs::write(
            dir.join("openssl.cnf"),
            "[ server_cert ]\nkeyUsage = digitalSignature, keyEncipherment\nnsCertType = server\n\n[ client_cert ]\nkeyUsage = digitalSignature, keyEncipherment\nnsCertType = client\n",
        )
        .expect("openssl.cnf");
        issue(&dir, "ca", "server", "Server-only", Some("server_cert"));
        issue(&dir, "ca", "client", "Client-only", Some("client_cert"));
        // A second CA nobody trusts, and a client certificate it signed.
        make_ca(&dir, "other-ca", "Other Authority");
        issue(&dir, "other-ca", "stranger", "Stranger", Some("client_cert"));
        // X.509 v1 certificates, as gen-test-certs.sh makes its redis.crt (no extensions): one of
        // our CA, one of the other CA, one of our CA that expired in 2020.
        issue(&dir, "ca", "legacy", "Generic-cert", None);
        issue(&dir, "other-ca", "legacy-stranger", "Generic-stranger", None);
        issue_expired(&dir, "ca", "legacy-expired", "Generic-expired");
        // The server key again, encrypted (PKCS#8, as OpenSSL 3 writes it).
        openssl(&dir, &["pkcs8", "-topk8", "-v2", "aes256", "-in", "server.key", "-out", "server-enc.key", "-passout", "pass:s3cret"]);
        Certs { dir }
    })
}

/// The redis.conf TLS lines of a node: TLS on `tls_port`, plain TCP off.
fn tls_args(tls_port: u16) -> Vec<String> {
    let c = certs();
    [
        "--port",
        "0",
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &c.path("server.crt"),
        "--tls-key-file",
        &c.path("server.key"),
        "--tls-ca-cert-file",
        &c.path("ca.crt"),
        // What a node shows when it connects out (replication, the bus): OpenSSL peers refuse
        // a certificate restricted to server use there.
        "--tls-client-cert-file",
        &c.path("client.crt"),
        "--tls-client-key-file",
        &c.path("client.key"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A node (slotcore or redis-server) serving TLS only.
struct Node {
    tls_port: u16,
    dir: PathBuf,
    log: PathBuf,
    child: Child,
}

impl Node {
    fn spawn(program: &str, tag: &str, extra: &[&str]) -> Node {
        let tls_port = free_port();
        let dir = std::env::temp_dir().join(format!("slotcore-tls-{}-{}-{}", tag, std::process::id(), tls_port));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("node dir");
        let log = dir.join("server.log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log");
        let mut cmd = Command::new(program);
        cmd.args(tls_args(tls_port)).arg("--dir").arg(&dir).args(extra);
        if program == "redis-server" {
            cmd.args(["--save", "", "--appendonly", "no"]);
        } else {
            cmd.args(["--pin-cores", "no", "--shards", "2"]);
        }
        cmd.stdout(Stdio::from(out.try_clone().expect("log"))).stderr(Stdio::from(out)).stdin(Stdio::null());
        let child = cmd.spawn().expect("spawn server");
        Node { tls_port, dir, log, child }
    }

    fn slotcore(extra: &[&str]) -> Node {
        let n = Node::spawn(env!("CARGO_BIN_EXE_slotcore"), "slotcore", extra);
        n.wait_ready();
        n
    }

    fn redis(extra: &[&str]) -> Node {
        let n = Node::spawn("redis-server", "redis", extra);
        n.wait_ready();
        n
    }

    fn wait_ready(&self) {
        wait_for("the node to answer PING over TLS", || self.cli(&["ping"]).trim() == "PONG");
    }

    /// `redis-cli --tls` with the client certificate.
    fn cli(&self, args: &[&str]) -> String {
        cli_as(self.tls_port, &["--cert", &certs().path("client.crt"), "--key", &certs().path("client.key")], args)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn info_field(&self, section: &str, field: &str) -> String {
        let text = self.cli(&["info", section]);
        text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli --tls --cacert ca.crt -p port` with `identity` (certificate options) and `args`,
/// bounded by a timeout; stdout and stderr together.
fn cli_as(port: u16, identity: &[&str], args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["10", "redis-cli", "--tls", "--cacert", &certs().path("ca.crt")])
        .args(identity)
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The reason text of the last "Error accepting a client connection" line of a log.
fn accept_error(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| l.split_once("Error accepting a client connection: ").map(|(_, r)| r.to_string()))
}

#[test]
fn clients_speak_tls_through_redis_cli() {
    let n = Node::slotcore(&[]);
    assert_eq!(n.cli(&["set", "greeting", "hello over tls"]).trim(), "OK");
    assert_eq!(n.cli(&["get", "greeting"]).trim(), "hello over tls");
    assert_eq!(n.cli(&["incrby", "n", "41"]).trim(), "41");
    // A pipeline of 2000 commands and a 1 MB value cross record boundaries both ways.
    let mut cmds = String::new();
    for i in 0..2000 {
        cmds.push_str(&format!("SET k{i} v{i}\n"));
    }
    cli_stdin(&n, &[], &cmds);
    assert_eq!(n.cli(&["dbsize"]).trim(), "2002");
    cli_stdin(&n, &["-x", "set", "big"], &"x".repeat(1 << 20));
    assert_eq!(n.cli(&["strlen", "big"]).trim(), ((1 << 20) + 1).to_string());
    assert_eq!(n.cli(&["get", "big"]).trim().len(), 1 << 20);
    // What CONFIG GET and INFO say, as redis-server says it.
    let got = n.cli(&["config", "get", "tls-*"]);
    for (k, v) in
        [("tls-port", n.tls_port.to_string()), ("tls-auth-clients", "yes".into()), ("tls-replication", "no".into())]
    {
        assert!(got.contains(&format!("{k}\n{v}\n")), "{k} {v} in {got}");
    }
    assert_eq!(n.info_field("server", "tcp_port"), n.tls_port.to_string());
    // Plain text on the TLS port is refused, with Redis's log line.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", n.tls_port)).expect("connect");
    plain.set_read_timeout(Some(WAIT)).ok();
    use std::io::{Read, Write};
    let _ = plain.write_all(b"PING\r\n");
    let mut buf = [0u8; 64];
    let got = plain.read(&mut buf).unwrap_or(0);
    assert!(!buf[..got].starts_with(b"+PONG"));
    wait_for("the refusal in the log", || accept_error(&n.log_text()).is_some());
}

/// `identity` is refused by slotcore `ours` and redis-server `redis` alike: the reason words
/// OpenSSL logs (after its error code) are in slotcore's line too.
fn refused_alike(ours: &Node, redis: &Node, what: &str, identity: &[&str]) {
    let marks = [ours.log_text().len(), redis.log_text().len()];
    for n in [ours, redis] {
        let out = cli_as(n.tls_port, identity, &["ping"]);
        assert!(!out.contains("PONG"), "{what} accepted: {out}");
    }
    let mut lines = [String::new(), String::new()];
    for (i, n) in [ours, redis].into_iter().enumerate() {
        wait_for("the refusal's log line", || match accept_error(&n.log_text()[marks[i]..]) {
            Some(l) => {
                lines[i] = l;
                true
            }
            None => false,
        });
    }
    let [mine, theirs] = lines;
    let theirs = theirs.split(" (conn:").next().unwrap_or(&theirs).to_string();
    let cause = theirs.rsplit("::").next().unwrap_or(&theirs).trim().to_string();
    assert!(mine.contains(&cause), "{what}: redis-server logs '{theirs}', slotcore '{mine}'");
}

/// redis-cli's certificate options for the key pair `name`.
fn identity(name: &str) -> Vec<String> {
    let c = certs();
    vec!["--cert".into(), c.path(&format!("{name}.crt")), "--key".into(), c.path(&format!("{name}.key"))]
}

#[test]
fn wrong_client_certificates_are_refused_as_redis_refuses_them() {
    let c = certs();
    let stranger = ["--cert".to_string(), c.path("stranger.crt"), "--key".into(), c.path("stranger.key")];
    let stranger: Vec<&str> = stranger.iter().map(String::as_str).collect();
    let ours = Node::slotcore(&[]);
    let redis = Node::redis(&[]);
    for (what, identity) in [("no certificate", &[][..]), ("a certificate of an unknown CA", &stranger[..])] {
        refused_alike(&ours, &redis, what, identity);
    }
    // tls-auth-clients optional: no certificate is fine, a bad one is not; no: anything goes.
    assert_eq!(ours.cli(&["config", "set", "tls-auth-clients", "optional"]).trim(), "OK");
    assert_eq!(cli_as(ours.tls_port, &[], &["ping"]).trim(), "PONG");
    assert!(!cli_as(ours.tls_port, &stranger, &["ping"]).contains("PONG"));
    assert_eq!(ours.cli(&["config", "set", "tls-auth-clients", "no"]).trim(), "OK");
    assert_eq!(cli_as(ours.tls_port, &stranger, &["ping"]).trim(), "PONG");
}

#[test]
fn config_set_reloads_certificates_and_refuses_what_rustls_cannot_do() {
    let n = Node::slotcore(&[]);
    let bad = n.cli(&["config", "set", "tls-cert-file", "/nonexistent/server.crt"]);
    assert!(
        bad.contains("ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs."),
        "{bad}"
    );
    assert!(n.log_text().contains("Failed to load certificate: /nonexistent/server.crt"), "{}", n.log_text());
    // The old context still serves.
    assert_eq!(n.cli(&["ping"]).trim(), "PONG");
    let c = certs();
    let enc = c.path("server-enc.key");
    let wrong = n.cli(&["config", "set", "tls-key-file", &enc, "tls-key-file-pass", "nope"]);
    assert!(wrong.contains("Unable to update TLS configuration"), "{wrong}");
    assert!(n.log_text().contains("Failed to load private key"), "{}", n.log_text());
    assert_eq!(n.cli(&["config", "set", "tls-key-file", &enc, "tls-key-file-pass", "s3cret"]).trim(), "OK");
    assert_eq!(n.cli(&["ping"]).trim(), "PONG");
    let old = n.cli(&["config", "set", "tls-protocols", "TLSv1 TLSv1.1"]);
    assert!(old.contains("Unable to update TLS configuration"), "{old}");
    assert_eq!(n.cli(&["config", "set", "tls-protocols", "TLSv1.2"]).trim(), "OK");
    assert_eq!(n.cli(&["config", "set", "tls-ciphers", "ECDHE-RSA-AES256-GCM-SHA384"]).trim(), "OK");
    assert_eq!(n.cli(&["ping"]).trim(), "PONG");
    let none = n.cli(&["config", "set", "tls-ciphers", "DES-CBC3-SHA"]);
    assert!(none.contains("Unable to update TLS configuration"), "{none}");
    assert!(n.log_text().contains("Failed to configure ciphers: DES-CBC3-SHA"));
    assert_eq!(n.cli(&["config", "get", "tls-protocols"]).lines().nth(1), Some("TLSv1.2"));
}

#[test]
fn a_missing_ca_stops_start_up_with_redis_s_lines() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("slotcore-tls-noca-{}-{}", std::process::id(), port));
    let c = certs();
    let out = Command::new("timeout")
        .args(["20", env!("CARGO_BIN_EXE_slotcore"), "--port", "0", "--tls-port", &port.to_string()])
        .args(["--tls-cert-file", &c.path("server.crt"), "--tls-key-file", &c.path("server.key")])
        .arg("--dir")
        .arg(std::env::temp_dir())
        .args(["--pin-cores", "no"])
        .output()
        .expect("run slotcore");
    let _ = std::fs::remove_dir_all(dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!"), "{text}");
    assert!(text.contains("Failed to configure TLS. Check logs for more info."), "{text}");
}

fn wait_synced(master: &Node, replica: &Node, keys: usize) {
    wait_for("the replica's link up and its data", || {
        replica.info_field("replication", "master_link_status") == "up"
            && replica.cli(&["dbsize"]).trim() == keys.to_string()
    });
    for i in (0..keys).step_by(97) {
        assert_eq!(replica.cli(&["get", &format!("key:{i}")]).trim(), format!("value:{i}"));
    }
    let _ = master;
}

/// Runs `redis-cli --tls ... args` on `n` with `input` as its standard input.
fn cli_stdin(n: &Node, args: &[&str], input: &str) {
    let path = n.dir.join("stdin.txt");
    std::fs::write(&path, format!("{input}\n")).expect("input file");
    let c = certs();
    let status = Command::new("timeout")
        .args(["30", "redis-cli", "--tls", "--cacert", &c.path("ca.crt"), "--cert", &c.path("client.crt")])
        .args(["--key", &c.path("client.key"), "-p", &n.tls_port.to_string()])
        .args(args)
        .stdin(Stdio::from(std::fs::File::open(&path).expect("input file")))
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success());
}

fn populate(n: &Node, keys: usize) {
    let mut script = String::new();
    for i in 0..keys {
        script.push_str(&format!("SET key:{i} value:{i}\n"));
    }
    cli_stdin(n, &[], &script);
}

#[test]
fn replicas_sync_over_tls() {
    // slotcore replica of a slotcore master, then of a redis-server master.
    for master in [Node::slotcore(&["--tls-replication", "yes"]), Node::redis(&["--tls-replication", "yes"])] {
        populate(&master, 3000);
        let port = master.tls_port.to_string();
        let replica = Node::slotcore(&["--tls-replication", "yes", "--replicaof", "127.0.0.1", &port]);
        wait_synced(&master, &replica, 3000);
        // The stream after the full sync.
        assert_eq!(master.cli(&["set", "after", "sync"]).trim(), "OK");
        wait_for("a streamed write", || replica.cli(&["get", "after"]).trim() == "sync");
        assert!(
            replica.log_text().contains("MASTER <-> REPLICA sync: Finished with success"),
            "{}",
            replica.log_text()
        );
    }
    // redis-server replica of a slotcore master.
    let master = Node::slotcore(&["--tls-replication", "yes"]);
    populate(&master, 1000);
    let port = master.tls_port.to_string();
    let replica = Node::redis(&["--tls-replication", "yes", "--replicaof", "127.0.0.1", &port]);
    wait_synced(&master, &replica, 1000);
    assert_eq!(master.cli(&["del", "key:0"]).trim(), "1");
    wait_for("a streamed DEL", || replica.cli(&["exists", "key:0"]).trim() == "0");
}

#[test]
fn a_replica_with_a_certificate_of_an_unknown_ca_is_refused() {
    let master = Node::slotcore(&["--tls-replication", "yes"]);
    let c = certs();
    let port = master.tls_port.to_string();
    let replica = Node::slotcore(&[
        "--tls-replication",
        "yes",
        "--tls-client-cert-file",
        &c.path("stranger.crt"),
        "--tls-client-key-file",
        &c.path("stranger.key"),
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    wait_for("the master's refusal", || accept_error(&master.log_text()).is_some());
    let refusal = accept_error(&master.log_text()).unwrap_or_default();
    assert!(refusal.contains("certificate verify failed"), "{refusal}");
    // The replica's handshake ends with the master's alert (TLS 1.3 reports a refused client
    // certificate after the client's last handshake message), and its link stays down.
    let start = Instant::now();
    while !replica.log_text().contains("alert unknown ca") {
        assert!(start.elapsed() < WAIT, "no failed attempt in the replica's log:\n{}", replica.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(replica.info_field("replication", "master_link_status"), "down");
}

#[test]
fn tls_cluster_created_with_redis_cli_serves_across_slots() {
    let cluster = [
        "--cluster-enabled",
        "yes",
        "--cluster-node-timeout",
        "2000",
        "--tls-cluster",
        "yes",
        "--tls-replication",
        "yes",
    ];
    let nodes: Vec<Node> = (0..6).map(|_| Node::slotcore(&cluster)).collect();
    let c = certs();
    let mut args: Vec<String> =
        ["--tls", "--cacert", &c.path("ca.crt"), "--cert", &c.path("client.crt"), "--key", &c.path("client.key")]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(["--cluster".into(), "create".into()]);
    args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.tls_port)));
    args.extend(["--cluster-replicas".into(), "1".into(), "--cluster-yes".into()]);
    let out =
        Command::new("timeout").arg("90").arg("redis-cli").args(&args).output().expect("redis-cli --cluster create");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let logs = || nodes.iter().map(|n| n.log_text()).collect::<Vec<_>>().join("\n-----\n");
    assert!(out.status.success() && text.contains("[OK] All 16384 slots covered."), "{text}\n{}", logs());
    let start = Instant::now();
    while !nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok")) {
        assert!(start.elapsed() < WAIT * 3, "cluster_state never ok\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    // CLUSTER NODES names the TLS ports, bus ports 10000 above them.
    let nodes_text = nodes[0].cli(&["cluster", "nodes"]);
    for n in &nodes {
        assert!(nodes_text.contains(&format!(":{}@{}", n.tls_port, n.tls_port + 10000)), "{nodes_text}");
    }
    // redis-cli -c follows redirects over TLS: write through one node, read through another.
    let c_args = |n: &Node, a: &[&str]| {
        let mut v = vec!["-c"];
        v.extend_from_slice(a);
        n.cli(&v)
    };
    for k in ["name", "age", "{user1000}.following", "x1", "x2", "x3", "x4"] {
        assert_eq!(c_args(&nodes[0], &["set", k, &format!("v-{k}")]).trim(), "OK", "set {k}");
        assert_eq!(c_args(&nodes[4], &["get", k]).trim(), format!("v-{k}"), "get {k}");
    }
    let check = Command::new("timeout")
        .arg("30")
        .arg("redis-cli")
        .args(&args[..7])
        .args(["--cluster", "check", &format!("127.0.0.1:{}", nodes[2].tls_port)])
        .output()
        .expect("check");
    let check = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    // The replicas' links to their masters are TLS too, and up.
    let replicas: Vec<&Node> = nodes.iter().filter(|n| n.info_field("replication", "role") == "slave").collect();
    assert_eq!(replicas.len(), 3);
    for r in replicas {
        wait_for("a replica's link", || r.info_field("replication", "master_link_status") == "up");
    }
}

#[test]
fn x509_v1_certificates_are_accepted_as_openssl_accepts_them() {
    let ours = Node::slotcore(&[]);
    let redis = Node::redis(&[]);
    let legacy = identity("legacy");
    let legacy: Vec<&str> = legacy.iter().map(String::as_str).collect();
    for n in [&ours, &redis] {
        assert_eq!(cli_as(n.tls_port, &legacy, &["ping"]).trim(), "PONG", "v1 client certificate on {}", n.tls_port);
    }
    for (what, name) in
        [("a v1 certificate of an unknown CA", "legacy-stranger"), ("an expired v1 certificate", "legacy-expired")]
    {
        let id = identity(name);
        let id: Vec<&str> = id.iter().map(String::as_str).collect();
        refused_alike(&ours, &redis, what, &id);
    }
    // The same over TLS 1.2 (its handshake signatures are checked by another path).
    assert_eq!(ours.cli(&["config", "set", "tls-protocols", "TLSv1.2"]).trim(), "OK");
    assert_eq!(cli_as(ours.tls_port, &legacy, &["ping"]).trim(), "PONG");
    let stranger = identity("legacy-stranger");
    let stranger: Vec<&str> = stranger.iter().map(String::as_str).collect();
    assert!(!cli_as(ours.tls_port, &stranger, &["ping"]).contains("PONG"));
    // Replication where both ends show v1 certificates: the master as a server, the replica
    // as a client; slotcore replicas (TLS 1.3 and 1.2) and a redis-server replica.
    let c = certs();
    let (crt, key) = (c.path("legacy.crt"), c.path("legacy.key"));
    let v1 = [
        "--tls-cert-file",
        &crt,
        "--tls-key-file",
        &key,
        "--tls-client-cert-file",
        &crt,
        "--tls-client-key-file",
        &key,
    ];
    let master = Node::slotcore(&[&v1[..], &["--tls-replication", "yes"]].concat());
    populate(&master, 500);
    let port = master.tls_port.to_string();
    let follow = ["--tls-replication", "yes", "--replicaof", "127.0.0.1", &port];
    let replicas = [
        Node::slotcore(&[&v1[..], &follow[..]].concat()),
        Node::slotcore(&[&v1[..], &follow[..], &["--tls-protocols", "TLSv1.2"]].concat()),
        Node::redis(&[&v1[..], &follow[..]].concat()),
    ];
    for r in &replicas {
        wait_synced(&master, r, 500);
    }
    assert_eq!(master.cli(&["set", "after", "sync"]).trim(), "OK");
    for r in &replicas {
        wait_for("a streamed write", || r.cli(&["get", "after"]).trim() == "sync");
    }
}

/// `redis-cli -p port args` over plain TCP, bounded.
fn plain_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["10", "redis-cli", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn tls_port_is_moved_by_config_set_as_redis_moves_it() {
    let client = identity("client");
    let client: Vec<&str> = client.iter().map(String::as_str).collect();
    let ping = |port: u16| cli_as(port, &client, &["ping"]).trim() == "PONG";
    for program in [env!("CARGO_BIN_EXE_slotcore"), "redis-server"] {
        // TLS configured but not listening (tls-port 0), clients on a plain port.
        let plain = free_port();
        let n = Node::spawn(program, "tls-port", &["--port", &plain.to_string(), "--tls-port", "0"]);
        wait_for("the plain port", || plain_cli(plain, &["ping"]).trim() == "PONG");
        let set = |p: &str| plain_cli(plain, &["config", "set", "tls-port", p]);
        let (a, b) = (free_port(), free_port());
        assert_eq!(set(&a.to_string()).trim(), "OK", "{program}");
        assert!(ping(a), "{program}: TLS on the new port");
        assert_eq!(set(&b.to_string()).trim(), "OK", "{program}");
        assert!(ping(b), "{program}: TLS on the moved port");
        assert!(!ping(a), "{program}: the old TLS port still answers");
        // A port that cannot be bound (the plain one) is refused; the TLS listener stays.
        let taken = set(&plain.to_string());
        assert_eq!(
            taken.trim(),
            "ERR CONFIG SET failed (possibly related to argument 'tls-port') - Unable to listen on this port. Check server logs.",
            "{program}"
        );
        let log = n.log_text();
        assert!(
            log.contains(&format!("Could not create server TCP listening socket *:{plain}: bind:")),
            "{program}: {log}"
        );
        assert!(
            log.contains("Failed applying new configuration. Possibly related to new tls-port setting. Restoring previous settings."),
            "{program}: {log}"
        );
        assert_eq!(plain_cli(plain, &["config", "get", "tls-port"]).lines().nth(1), Some(b.to_string().as_str()));
        assert!(ping(b), "{program}: TLS after the refused move");
        assert_eq!(
            set("70000").trim(),
            "ERR CONFIG SET failed (possibly related to argument 'tls-port') - argument must be between 0 and 65535 inclusive",
            "{program}"
        );
        // Port 0 closes the TLS listener.
        assert_eq!(set("0").trim(), "OK", "{program}");
        assert!(!ping(b), "{program}: TLS after tls-port 0");
        assert_eq!(plain_cli(plain, &["ping"]).trim(), "PONG");
    }
}

/// The cluster slot of `key` (CRC16/XMODEM of the hash tag or the key, mod 16384).
fn key_slot(key: &str) -> u16 {
    let b = key.as_bytes();
    let tagged = b.iter().position(|&c| c == b'{').and_then(|s| {
        let e = b[s + 1..].iter().position(|&c| c == b'}')?;
        (e > 0).then(|| &b[s + 1..s + 1 + e])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(b) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[test]
fn redis_server_is_a_tls_bus_peer_and_slots_move_over_tls() {
    let flags = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--tls-cluster", "yes"];
    // Masters in creation order: slots 0-5460, 5461-10922 (slotcore), 10923-16383 (redis-server).
    let nodes = [Node::slotcore(&flags), Node::slotcore(&flags), Node::redis(&flags)];
    let c = certs();
    let tls: Vec<String> =
        ["--tls", "--cacert", &c.path("ca.crt"), "--cert", &c.path("client.crt"), "--key", &c.path("client.key")]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let tool = |secs: &str, args: &[String]| {
        let out = Command::new("timeout").arg(secs).arg("redis-cli").args(&tls).args(args).output().expect("redis-cli");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let logs = || nodes.iter().map(|n| n.log_text()).collect::<Vec<_>>().join("\n-----\n");
    let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
    create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.tls_port)));
    create.push("--cluster-yes".into());
    let (ok, text) = tool("90", &create);
    assert!(ok && text.contains("[OK] All 16384 slots covered."), "{text}\n{}", logs());
    let all_ok = || nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"));
    let start = Instant::now();
    while !all_ok() {
        assert!(start.elapsed() < WAIT * 3, "cluster_state never ok\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Keys in the slots the reshards below move: the first 300 of each source.
    let moved = |lo: u16| (0..).map(|i| format!("key:{i}")).filter(move |k| (lo..lo + 300).contains(&key_slot(k)));
    let keys: Vec<String> = moved(10923).take(15).chain(moved(5461).take(15)).collect();
    for k in &keys {
        assert_eq!(nodes[0].cli(&["-c", "set", k, &format!("v-{k}")]).trim(), "OK", "set {k}");
    }
    // redis-server -> slotcore, then slotcore -> redis-server: MIGRATE over TLS both ways.
    let id = |n: &Node| n.cli(&["cluster", "myid"]).trim().to_string();
    for (from, to) in [(2, 0), (1, 2)] {
        let args: Vec<String> = [
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", nodes[0].tls_port),
            "--cluster-from",
            &id(&nodes[from]),
            "--cluster-to",
            &id(&nodes[to]),
            "--cluster-slots",
            "300",
            "--cluster-yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (ok, text) = tool("120", &args);
        assert!(ok && !text.contains("ERR"), "reshard {from} -> {to}: {text}\n{}", logs());
    }
    // The node holding a slot's keys now (COUNTKEYSINSLOT counts a node's own keys).
    let owner =
        |slot: u16| nodes.iter().position(|n| n.cli(&["cluster", "countkeysinslot", &slot.to_string()]).trim() != "0");
    assert_eq!(owner(key_slot(&keys[0])), Some(0), "keys of slot {} moved to slotcore", key_slot(&keys[0]));
    assert_eq!(owner(key_slot(&keys[20])), Some(2), "keys of slot {} moved to redis-server", key_slot(&keys[20]));
    for k in &keys {
        assert_eq!(nodes[1].cli(&["-c", "get", k]).trim(), format!("v-{k}"), "get {k}");
    }
    let (_, check) = tool("30", &["--cluster".into(), "check".into(), format!("127.0.0.1:{}", nodes[2].tls_port)]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    assert!(all_ok(), "{}", logs());
}
