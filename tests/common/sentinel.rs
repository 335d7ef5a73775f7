//! Sentinel processes for the tests: a slotcore or redis-server Sentinel in its own
//! directory, monitoring `mymaster`, killed by PID when dropped.

use super::{free_port, Server, WAIT};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// down-after-milliseconds used by these tests.
pub const DOWN_AFTER: u64 = 2000;
/// failover-timeout: an election split by the machine's load is retried after twice this.
pub const FAILOVER_TIMEOUT: u64 = 6000;

/// A Sentinel process (slotcore or redis-server) with its own directory and sentinel.conf.
pub struct Sentinel {
    pub port: u16,
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub child: Child,
    pub real: bool,
}

impl Sentinel {
    /// Starts a Sentinel monitoring `mymaster` at `master_port`, quorum 2.
    pub fn start(real: bool, master_port: u16) -> Sentinel {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("slotcore-test-sentinel-{}-{}", std::process::id(), port));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nsentinel monitor mymaster 127.0.0.1 {master_port} 2\nsentinel down-after-milliseconds mymaster {DOWN_AFTER}\nsentinel failover-timeout mymaster {FAILOVER_TIMEOUT}\n"
            ),
        )
        .expect("conf");
        let log = std::fs::File::create(dir.join("sentinel.log")).expect("log");
        let prog = if real { "redis-server".to_string() } else { env!("CARGO_BIN_EXE_slotcore").to_string() };
        let child = Command::new(prog)
            .arg(&conf)
            .arg("--sentinel")
            .current_dir(&dir)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sentinel");
        let s = Sentinel { port, dir, conf, child, real };
        s.wait_until("PING answered", || s.cli(&["PING"]).trim() == "PONG");
        s
    }

    pub fn cli(&self, args: &[&str]) -> String {
        Server::cli_port(&self.port.to_string(), args)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sentinel.log")).unwrap_or_default()
    }

    pub fn conf_text(&self) -> String {
        std::fs::read_to_string(&self.conf).unwrap_or_default()
    }

    /// A field of SENTINEL MASTER mymaster.
    pub fn master_field(&self, field: &str) -> String {
        let out = self.cli(&["SENTINEL", "MASTER", "mymaster"]);
        let lines: Vec<&str> = out.lines().collect();
        lines.iter().position(|l| *l == field).and_then(|i| lines.get(i + 1)).map(|s| s.to_string()).unwrap_or_default()
    }

    /// The port SENTINEL GET-MASTER-ADDR-BY-NAME mymaster names.
    pub fn master_port(&self) -> String {
        self.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]).lines().nth(1).unwrap_or("").to_string()
    }

    pub fn wait_until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < WAIT * 2 {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sentinel {} (real={}): timed out waiting for {}\nlog:\n{}", self.port, self.real, what, self.log());
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sentinel {} (real={}) log:\n{}", self.port, self.real, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`super::cluster::wait_for`] with the arguments in the order these tests give them.
pub fn wait_for(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    super::cluster::wait_for(limit, what, f);
}
