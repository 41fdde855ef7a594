//! Faults under a running gateway:
//!
//! - PostgreSQL stopped (`pg_ctl -m immediate`, as a crash) under 200
//!   pulled cameras and restarted: the API answers 503
//!   `database_unavailable` with `Retry-After` at once meanwhile, pulls and
//!   health go on, no transition made during the outage is lost, and the
//!   gateway recovers without a restart. Runs its own PostgreSQL (the
//!   shared one of tests/run.sh serves other tests); skips, saying so,
//!   without PostgreSQL's server binaries (a failure under
//!   CAMGATE_REQUIRE_POSTGRES=1). `CAMGATE_FAULT_OUTAGE_SECS` sets the
//!   outage (default 10; the acceptance run uses 30).
//! - A full disk under SQLite, with the log on the same disk (a small
//!   tmpfs): writes fail with a clear error, reads and requests keep being
//!   answered, writes work again once space is freed, and the gateway stops
//!   on SIGTERM without a panic. Skips, saying so, where no tmpfs can be
//!   mounted (not root).

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use camgate::health::Reason;
use camgate::media::{Codec, Frame, StreamInfo, Track};
use camgate::pull::{PullError, PullSource, PullStream, PullTarget, Pulled};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

/// An HTTP request; status, head and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
    ctype: &str,
) -> (u16, String, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new(), String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let len = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n{len}Connection: close\r\n\r\n{body}"
    );
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (status, head.to_string(), body.to_string())
}

// ---- a fleet of cameras in memory, each switchable

/// Cameras `rtsp://127.0.0.1/f/N`; those in `down` refuse and end.
#[derive(Default)]
struct Fleet {
    down: Mutex<HashSet<usize>>,
}

fn index_of(url: &str) -> usize {
    url.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

struct FleetSource(Arc<Fleet>);

#[async_trait]
impl PullSource for FleetSource {
    async fn open(&self, t: &PullTarget) -> Result<Box<dyn PullStream>, PullError> {
        let i = index_of(&t.url);
        if self.0.down.lock().unwrap().contains(&i) {
            return Err(PullError::new(Reason::Refused, "the fake camera is down"));
        }
        Ok(Box::new(FleetStream {
            fleet: self.0.clone(),
            i,
            n: 0,
        }))
    }
    async fn probe(&self, t: &PullTarget) -> camgate::pull::describe::ProbeResult {
        self.open(t).await.map(|_| Some("h264".into()))
    }
}

struct FleetStream {
    fleet: Arc<Fleet>,
    i: usize,
    n: i64,
}

#[async_trait]
impl PullStream for FleetStream {
    fn info(&self) -> StreamInfo {
        StreamInfo {
            tracks: vec![Track {
                codec: Codec::H264,
                clock_rate: 90_000,
                rfc6381: None,
                dimensions: Some((640, 360)),
                extra_data: Bytes::new(),
            }],
        }
    }
    async fn next(&mut self) -> Result<Option<Pulled>, PullError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if self.fleet.down.lock().unwrap().contains(&self.i) {
            return Err(
                PullError::new(Reason::ProtocolError, "the fake camera stopped").past_describe(),
            );
        }
        self.n += 1;
        Ok(Some(Pulled {
            frame: Frame {
                track: 0,
                pts: self.n * 9000,
                is_key: self.n % 10 == 1,
                data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0]),
                arrived: std::time::Instant::now(),
            },
            new_info: None,
        }))
    }
}

// ---- a PostgreSQL of this test's own

struct Pg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Pg {
    fn as_owner(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn start() -> Option<Pg> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .max()
        });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CAMGATE_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL server binaries are required (CAMGATE_REQUIRE_POSTGRES=1)"
            );
            eprintln!(
                "SKIPPED: the PostgreSQL outage test needs PostgreSQL's server binaries (tests/run.sh installs them)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let _ = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status();
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pg = Pg { bin, dir, port };
        let out = pg
            .as_owner("initdb")
            .arg("-D")
            .arg(pg.data())
            .args(["-U", "camgate", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.up();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn up(&self) {
        let out = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "start", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops as a crash would (no checkpoint, connections cut).
    fn crash(&self) {
        let out = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://camgate@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("CAMGATE_FAULT_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_under_200_cameras() {
    const CAMERAS: usize = 200;
    const FLIPPED: usize = 50;
    let Some(pg) = Pg::start() else { return };
    common::capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut config = camgate::config::Config::default();
    config.database.url = pg.url();
    config.data_dir = dir.path().to_path_buf();
    config.server.listen = "127.0.0.1:0".into();
    config.relay.rtsp_listen = String::new();
    config.metrics.listen = String::new();
    config.pull.start_spread_secs = 1;
    config.security.api_rate_per_sec = 0;
    let store = camgate::app::open_store(&config).await.unwrap();
    let auth = camgate::auth::service::AuthService::new(store.clone(), Default::default())
        .with_cipher(store.credential_cipher().unwrap());
    let key = auth
        .create_key("faults", camgate::auth::Role::Admin, None, None, "tests")
        .await
        .unwrap()
        .secret;
    let fleet = Arc::new(Fleet::default());
    let stop = CancellationToken::new();
    let engine = camgate::app::start_pulling(
        store.clone(),
        &config,
        Arc::new(FleetSource(fleet.clone())),
        stop.clone(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (s, c) = (store.clone(), stop.clone());
    let config = Arc::new(config);
    tokio::spawn(async move {
        let _ = camgate::app::serve_on(listener, config, s, engine, c, |b| {
            let _ = tx.send(b);
        })
        .await;
    });
    let addr = rx.await.unwrap().http;
    let api = move |method: &'static str, path: String, body: String, ctype: &'static str| {
        let key = key.clone();
        tokio::task::spawn_blocking(move || http(addr, method, &path, &key, &body, ctype))
    };

    // 200 cameras, pulled always.
    let mut csv = String::from("name,district,point_type,ownership,rtsp_url,pull_mode\n");
    for i in 0..CAMERAS {
        csv.push_str(&format!(
            "fault-{i},620602,1,public,rtsp://127.0.0.1/f/{i},always\n"
        ));
    }
    let (s, _, b) = api("POST", "/api/v1/cameras/import".into(), csv, "text/csv")
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let online = |state: &'static str| {
        let api = api.clone();
        async move {
            let (s, _, b) = api(
                "GET",
                format!("/api/v1/cameras?limit=1000&state={state}"),
                String::new(),
                "",
            )
            .await
            .unwrap();
            (s == 200).then(|| {
                let v: Value = serde_json::from_str(&b).unwrap();
                v["items"].as_array().map_or(0, |a| a.len())
            })
        }
    };
    let started = Instant::now();
    while online("online").await != Some(CAMERAS) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "cameras did not come online"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The database crashes. Meanwhile a quarter of the cameras go down.
    pg.crash();
    let down_at = Instant::now();
    let mut answers: Vec<(u16, String, String, Duration, Duration)> = Vec::new();
    let mut flipped = false;
    while down_at.elapsed() < outage() {
        if !flipped && down_at.elapsed() > Duration::from_secs(2) {
            fleet.down.lock().unwrap().extend(0..FLIPPED);
            flipped = true;
        }
        let t = Instant::now();
        let (s, head, body) = api("GET", "/api/v1/cameras?limit=5".into(), String::new(), "")
            .await
            .unwrap();
        answers.push((s, head, body, t.elapsed(), t.duration_since(down_at)));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // From three seconds in (the watcher checks every second), every answer
    // is a prompt 503.
    let late: Vec<_> = answers
        .iter()
        .filter(|a| a.4 >= Duration::from_secs(3))
        .collect();
    assert!(late.len() >= 5, "{} answers after 3 s", late.len());
    for (s, head, body, took, _) in &late {
        assert_eq!(*s, 503, "{head}\n{body}");
        assert!(body.contains("\"database_unavailable\""), "{body}");
        assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
        assert!(*took < Duration::from_secs(1), "answered after {took:?}");
    }

    // It comes back; the gateway recovers by itself.
    pg.up();
    let back = Instant::now();
    loop {
        let (s, _, _) = api("GET", "/api/v1/cameras?limit=1".into(), String::new(), "")
            .await
            .unwrap();
        if s == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "no recovery: {s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Pulls and health went on: the flipped cameras are offline, the
    // others online, and every transition of the outage was stored.
    assert_eq!(online("offline").await, Some(FLIPPED));
    assert_eq!(online("online").await, Some(CAMERAS - FLIPPED));
    let stored = Instant::now();
    loop {
        let (s, _, b) = api(
            "GET",
            "/api/v1/health/events?limit=1000".into(),
            String::new(),
            "",
        )
        .await
        .unwrap();
        assert_eq!(s, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        let offline: HashSet<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["to"] == "offline")
            .map(|e| e["camera_id"].as_str().unwrap().to_string())
            .collect();
        if offline.len() == FLIPPED {
            break;
        }
        assert!(
            stored.elapsed() < Duration::from_secs(20),
            "{} of {FLIPPED} offline transitions stored",
            offline.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
}

// ---- a full disk

/// A tmpfs of `mib` MiB at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "SKIPPED: the full-disk test needs to mount a small tmpfs (run as root, as tests/run.sh does)"
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_under_sqlite_and_its_log() {
    let base = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&base.path().join("fs"), 24) else {
        return;
    };
    let data = fs.0.join("data");
    let out = Command::new(BIN)
        .args(["key", "create", "--name", "disk", "--role", "admin"])
        .env_remove("CAMGATE_CONFIG")
        .env("CAMGATE__DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log_path = fs.0.join("camgate.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_remove("CAMGATE_CONFIG")
        .env("CAMGATE__DATA_DIR", &data)
        .env("CAMGATE__SERVER__LISTEN", addr.to_string())
        .env("CAMGATE__METRICS__LISTEN", "")
        .env("CAMGATE__RELAY__RTSP_LISTEN", "")
        .env("CAMGATE__CATALOGUE__LOAD_BUILTIN_DISTRICTS", "true")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while http(addr, "GET", "/healthz", &key, "", "").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "camgate did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let camera = |i: usize| {
        format!(
            r#"{{"name":"disk-{i}","district":"620602","point_type":1,"ownership":"public","rtsp_url":"rtsp://10.9.0.{}/s","pull_mode":"on_demand"}}"#,
            i % 250
        )
    };
    let (s, _, b) = http(
        addr,
        "POST",
        "/api/v1/cameras",
        &key,
        &camera(0),
        "application/json",
    );
    assert_eq!(s, 201, "{b}");

    // Fill the disk.
    let filler = fs.0.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Writes fail with a clear error; every request is answered.
    let mut refused = 0;
    for i in 1..20 {
        let (s, _, b) = http(
            addr,
            "POST",
            "/api/v1/cameras",
            &key,
            &camera(i),
            "application/json",
        );
        assert!(s != 0, "a request was closed without an answer");
        if s != 201 {
            refused += 1;
            assert!(
                b.contains("\"storage_full\"") || b.contains("\"database_unavailable\""),
                "{s}: {b}"
            );
        }
        let (s, _, b) = http(addr, "GET", "/api/v1/cameras?limit=1", &key, "", "");
        assert_eq!(s, 200, "reads go on: {b}");
    }
    assert!(refused > 0, "a full disk refused no write");

    // Space returns: writes work again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    loop {
        let (s, _, b) = http(
            addr,
            "POST",
            "/api/v1/cameras",
            &key,
            &camera(100 + freed.elapsed().as_millis() as usize % 100),
            "application/json",
        );
        if s == 201 {
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "no recovery after space returned: {s} {b}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 200..205 {
        let (s, _, b) = http(
            addr,
            "POST",
            "/api/v1/cameras",
            &key,
            &camera(i),
            "application/json",
        );
        assert_eq!(s, 201, "{b}");
    }
    // It stops on SIGTERM, without a panic.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "camgate did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    assert!(status.success(), "exit {status}: {log}");
}

// ---- kill -9

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CAMGATE_CONFIG")
        .env("CAMGATE__DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Cameras in the export of `data`'s database (its data rows).
fn exported(data: &Path) -> usize {
    let out = cli(data, &["export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .count()
        .saturating_sub(1)
}

#[test]
fn kill_9_during_import_and_writes_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = {
        let out = cli(&data, &["key", "create", "--name", "k9", "--role", "admin"]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .to_string()
    };
    // An import killed while it writes: all of its rows or none.
    let rows = 60_000;
    let mut csv = String::from("name,district,point_type,ownership,rtsp_url\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "k9-{i},620602,1,public,rtsp://10.{}.{}.{}/s\n",
            i / 65536,
            i / 256 % 256,
            i % 256
        ));
    }
    let file = dir.path().join("big.csv");
    std::fs::write(&file, &csv).unwrap();
    let mut outcomes = Vec::new();
    for delay_ms in [300u64, 900, 1800] {
        let mut child = Command::new(BIN)
            .args(["import", file.to_str().unwrap()])
            .env_remove("CAMGATE_CONFIG")
            .env("CAMGATE__DATA_DIR", &data)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        let n = exported(&data);
        assert!(
            n == 0 || n == rows,
            "an import killed after {delay_ms} ms left {n} of {rows} rows"
        );
        outcomes.push(n);
        if n == rows {
            break;
        }
    }
    // The database opens and takes writes after every kill.
    let out = cli(&data, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A server killed while clients write: every write it acknowledged is
    // there after a restart, and nothing else.
    let before = exported(&data);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let serve = || {
        Command::new(BIN)
            .arg("serve")
            .env_remove("CAMGATE_CONFIG")
            .env("CAMGATE__DATA_DIR", &data)
            .env("CAMGATE__SERVER__LISTEN", addr.to_string())
            .env("CAMGATE__METRICS__LISTEN", "")
            .env("CAMGATE__RELAY__RTSP_LISTEN", "")
            .env("CAMGATE__SECURITY__API_RATE_PER_SEC", "0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_up = || {
        let t = Instant::now();
        while http(addr, "GET", "/healthz", &key, "", "").0 != 200 {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "camgate did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut child = serve();
    wait_up();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, key) = (acked.clone(), key.clone());
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    let body = format!(
                        r#"{{"name":"w{w}-{i}","district":"620602","point_type":1,"ownership":"public","rtsp_url":"rtsp://10.200.{w}.{}/s"}}"#,
                        i % 250
                    );
                    let (s, _, b) = http(addr, "POST", "/api/v1/cameras", &key, &body, "application/json");
                    if s == 201 {
                        let v: Value = serde_json::from_str(&b).unwrap();
                        acked.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                    } else if s == 0 {
                        return; // the server is gone
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the kill"
    );
    let mut child = serve();
    wait_up();
    for id in &acked {
        let (s, _, b) = http(addr, "GET", &format!("/api/v1/cameras/{id}"), &key, "", "");
        assert_eq!(
            s, 200,
            "an acknowledged camera is gone after kill -9: {id} {b}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let after = exported(&data);
    // At most the writes in flight at the kill were stored unacknowledged.
    assert!(
        after >= before + acked.len() && after <= before + acked.len() + 4,
        "{before} + {} acknowledged, {after} stored",
        acked.len()
    );
}
