//! Helpers shared by the process-level benches: child processes that die
//! with the bench, CPU time and resident memory from /proc, a tiny HTTP GET
//! for /metrics, and medians.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The camgate binary built for this bench.
pub const BIN: &str = env!("CARGO_BIN_EXE_camgate");

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `camgate simulate` with `args` (after `--port 0`) and returns it
/// with its RTSP port, read from the line it prints.
pub fn start_simulator(args: &[&str]) -> (Proc, u16) {
    let mut child = Command::new(BIN)
        .args(["simulate", "--port", "0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start camgate simulate (build with --features gstreamer)");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("simulator output");
    let port = line
        .split("rtsp://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("simulator did not print its port: {line:?}"));
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    (Proc(child), port)
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Clock ticks per second, for /proc/PID/stat.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User + system CPU seconds a process has used.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that closes the command name: state is field 3,
    // utime 14 and stime 15 (1-based), so 11 and 12 after state.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (utime + stime) / ticks_per_sec()
}

/// Resident memory of a process, bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// GET `path` from `addr` over HTTP/1.0; the body, or an empty string.
pub fn http_get(addr: &str, path: &str) -> String {
    http_get_as(addr, path, None)
}

/// [`http_get`] with an API key.
pub fn http_get_as(addr: &str, path: &str, key: Option<&str>) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// A request with a JSON body (none when empty) and an API key; the status.
pub fn http_as(addr: &str, method: &str, path: &str, key: &str, json: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = if json.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            json.len()
        )
    };
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n{body}Connection: close\r\n\r\n{json}"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The sum of every sample of metric `name` in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `f` every 250 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// The median of `v` (NaN when empty).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A comma-separated list of sizes from an environment variable.
pub fn sizes(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}: `{s}` is not a number"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// A number of seconds from an environment variable.
pub fn secs(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{var}: `{v}` is not seconds"))
        })
        .unwrap_or(default)
}

/// A running `camgate serve` on SQLite: its process and addresses.
pub struct Gateway {
    pub proc: Proc,
    pub http: String,
    pub metrics: String,
    /// The relay's RTSP address.
    pub rtsp: String,
    /// An admin API key.
    pub key: String,
}

impl Gateway {
    /// Writes a config into `dir`, imports `csv` when given, and serves.
    /// All the bench's viewers use one admin key, so its stream cap
    /// (`security.max_streams_per_principal`, 64 by default) is lifted.
    /// First connects to the cameras are spread over `spread_secs`.
    pub fn start(dir: &Path, csv: Option<&str>, spread_secs: u64) -> Gateway {
        Gateway::start_to(dir, csv, spread_secs, Stdio::inherit())
    }

    /// [`Gateway::start`] with the gateway's log written to `log`.
    pub fn start_logged(dir: &Path, csv: Option<&str>, spread_secs: u64, log: &Path) -> Gateway {
        let f = std::fs::File::create(log).expect("the log file");
        Gateway::start_to(dir, csv, spread_secs, Stdio::from(f))
    }

    fn start_to(dir: &Path, csv: Option<&str>, spread_secs: u64, stderr: Stdio) -> Gateway {
        let http = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let rtsp = format!("127.0.0.1:{}", free_port());
        let cfg = dir.join("camgate.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = {dir:?}\n[server]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n\
                 [metrics]\nlisten = \"{metrics}\"\n[relay]\nrtsp_listen = \"{rtsp}\"\n\
                 [pull]\nstart_spread_secs = {spread_secs}\n\
                 [security]\nmax_streams_per_principal = 100000\n"
            ),
        )
        .unwrap();
        let cfg = cfg.to_str().unwrap();
        if let Some(csv) = csv {
            let file = dir.join("cameras.csv");
            std::fs::write(&file, csv).unwrap();
            let out = Command::new(BIN)
                .args(["--config", cfg, "import", file.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "import: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = Command::new(BIN)
            .args([
                "--config", cfg, "key", "create", "--name", "bench", "--role", "admin",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "key create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        let child = Command::new(BIN)
            .args(["--config", cfg, "serve"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let gw = Gateway {
            proc: Proc(child),
            http,
            metrics,
            rtsp,
            key,
        };
        assert!(
            wait_for(Duration::from_secs(30), || !http_get(&gw.http, "/readyz")
                .is_empty()),
            "gateway ready"
        );
        gw
    }

    /// GET from the REST API with the gateway's admin key.
    pub fn api(&self, path: &str) -> String {
        http_get_as(&self.http, path, Some(&self.key))
    }

    /// The gateway's /metrics text.
    pub fn scrape(&self) -> String {
        http_get(&self.metrics, "/metrics")
    }
}
