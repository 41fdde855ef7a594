//! TLS on the HTTP listener, against clients we did not write: `camgate
//! serve` with a certificate openssl made, spoken to by curl and
//! `openssl s_client`. Covers the handshake and verification, the Secure
//! session cookie, https embed URLs, the answer to plain HTTP, reloading a
//! renewed certificate without a restart (and keeping the old one when the
//! new file is bad), and start-up errors that name the config key.
//!
//! Needs `openssl` and `curl`; without them it skips, saying so (a failure
//! under CAMGATE_REQUIRE_TOOLS=1, as tests/run.sh sets).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");
const ADMIN_PASSWORD: &str = "tls-test-Admin-pw-7";

fn have_tools() -> bool {
    let runs = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = runs("openssl", "version") && runs("curl", "--version");
    if !ok {
        assert!(
            std::env::var_os("CAMGATE_REQUIRE_TOOLS").is_none(),
            "openssl and curl are required (CAMGATE_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIPPED: the TLS test needs openssl and curl (tests/run.sh installs them)");
    }
    ok
}

/// A self-signed certificate for localhost and 127.0.0.1; `kind` is an
/// openssl `-newkey` argument (`ec` gets P-256).
fn make_cert(dir: &Path, name: &str, kind: &str) -> (String, String) {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", kind]);
    if kind == "ec" {
        cmd.args(["-pkeyopt", "ec_paramgen_curve:prime256v1"]);
    }
    let out = cmd
        .args(["-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN=camgate {name}"))
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        crt.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// `camgate serve` with its stderr collected line by line.
struct Gateway {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn spawn(dir: &Path, cert: &str, key: &str) -> Gateway {
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_remove("CAMGATE_CONFIG")
            .env("CAMGATE__DATA_DIR", dir)
            .env("CAMGATE__SERVER__LISTEN", "127.0.0.1:0")
            .env("CAMGATE__METRICS__LISTEN", "127.0.0.1:0")
            .env("CAMGATE__RELAY__RTSP_LISTEN", "127.0.0.1:0")
            .env("CAMGATE__SECURITY__TLS_CERT", cert)
            .env("CAMGATE__SECURITY__TLS_KEY", key)
            .env("CAMGATE__LOG__FORMAT", "json")
            .env("CAMGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Gateway { child, log }
    }

    /// Waits (30 s at most) for a log line containing `needle`.
    fn wait_log(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "camgate exited ({status}) before logging {needle:?}: {:#?}",
                    self.log.lock().unwrap()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {needle:?} in the log within 30 s: {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// curl's exit code, the response headers and the body.
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_string(), b.to_string()))
        .unwrap_or((String::new(), text.clone()));
    let err = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        format!("{head}\n{err}"),
        body,
    )
}

fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Writes `text` to `path` in one step (a rename), as a renewal tool would.
fn replace_file(path: &str, text: &[u8]) {
    let tmp = format!("{path}.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn https_listener_with_reload_and_clear_errors() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (a_crt, a_key) = make_cert(certs.path(), "a", "ec");
    let (b_crt, b_key) = make_cert(certs.path(), "b", "rsa:2048");
    // The gateway reads its own copies, which the test renews in place.
    let crt = certs.path().join("live.crt").to_string_lossy().into_owned();
    let key = certs.path().join("live.key").to_string_lossy().into_owned();
    std::fs::copy(&a_crt, &crt).unwrap();
    std::fs::copy(&a_key, &key).unwrap();

    let mut gw = Gateway::spawn(dir.path(), &crt, &key);
    let line = gw.wait_log("camgate is serving");
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
    assert_eq!(v["fields"]["tls"], true, "{line}");
    let addr = v["fields"]["addr"].as_str().unwrap().to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let base = format!("https://127.0.0.1:{port}");
    let localhost = format!("localhost:{port}:127.0.0.1");

    // Verified against the certificate, by IP and by name.
    let (code, head, body) = curl(&["--cacert", &a_crt, &format!("{base}/healthz")]);
    assert_eq!((code, status_of(&head)), (0, 200), "{head}{body}");
    let (code, head, _) = curl(&[
        "--cacert",
        &a_crt,
        "--resolve",
        &localhost,
        &format!("https://localhost:{port}/healthz"),
    ]);
    assert_eq!((code, status_of(&head)), (0, 200), "{head}");
    // Without trusting it, curl refuses (60: peer certificate cannot be
    // authenticated): this is TLS with that certificate, not plain HTTP.
    let (code, head, _) = curl(&[&format!("{base}/healthz")]);
    assert_eq!(code, 60, "{head}");

    // TLS 1.3 and ALPN http/1.1, as openssl sees them.
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-alpn", "http/1.1", "-CAfile", &a_crt])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("New, TLSv1.3"), "{said}");
    assert!(said.contains("ALPN protocol: http/1.1"), "{said}");
    assert!(said.contains("Verify return code: 0 (ok)"), "{said}");

    // Plain HTTP on the TLS port is told to use https.
    let (code, head, body) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert_eq!((code, status_of(&head)), (0, 400), "{head}{body}");
    assert!(body.contains("use https://"), "{body}");

    // The session cookie is Secure; the API works over TLS with it.
    let login = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let (code, head, body) = curl(&[
        "--cacert",
        &a_crt,
        "-H",
        "content-type: application/json",
        "--data",
        &login,
        &format!("{base}/api/v1/auth/login"),
    ]);
    assert_eq!((code, status_of(&head)), (0, 200), "{head}{body}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"))
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie_line.contains(attr), "{attr} missing: {cookie_line}");
    }
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Embed links hand out https URLs.
    let (code, head, body) = curl(&[
        "--cacert",
        &a_crt,
        "-H",
        &format!("cookie: {cookie}"),
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"district":"620602","ttl_secs":3600,"note":"tls test"}"#,
        &format!("{base}/api/v1/embed-links"),
    ]);
    assert_eq!((code, status_of(&head)), (0, 201), "{head}{body}");
    let link: serde_json::Value = serde_json::from_str(&body).unwrap();
    let embed = link["urls"]["embed"].as_str().unwrap();
    assert!(
        embed.starts_with(&format!("{base}/embed/")),
        "{embed} is not under {base}"
    );

    // Renewal: the new pair (another key type) is served within the
    // reload interval, without a restart and with the same process.
    let renewed = Instant::now();
    replace_file(&key, &std::fs::read(&b_key).unwrap());
    replace_file(&crt, &std::fs::read(&b_crt).unwrap());
    loop {
        let (code, head, _) = curl(&["--cacert", &b_crt, &format!("{base}/healthz")]);
        if code == 0 {
            assert_eq!(status_of(&head), 200, "{head}");
            break;
        }
        assert!(
            renewed.elapsed() < Duration::from_secs(25),
            "the renewed certificate was not served within 25 s: {head}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "renewed certificate served {:?} after the files changed",
        renewed.elapsed()
    );
    gw.wait_log("TLS certificate reloaded");
    let (code, head, _) = curl(&["--cacert", &a_crt, &format!("{base}/healthz")]);
    assert_eq!(code, 60, "the old certificate is no longer served: {head}");

    // A renewal that does not load keeps the previous pair, and says why.
    replace_file(&crt, b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
    let line = gw.wait_log("does not load");
    assert!(line.contains("security.tls_cert"), "{line}");
    let (code, head, _) = curl(&["--cacert", &b_crt, &format!("{base}/healthz")]);
    assert_eq!((code, status_of(&head)), (0, 200), "{head}");
    assert!(gw.child.try_wait().unwrap().is_none(), "still running");
}

#[test]
fn bad_tls_files_stop_the_start_naming_the_key() {
    if !have_tools() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (a_crt, _) = make_cert(certs.path(), "a", "ec");
    let (_, b_key) = make_cert(certs.path(), "b", "ec");
    let missing = certs.path().join("nope.crt").to_string_lossy().into_owned();
    let empty = certs.path().join("empty.key");
    std::fs::write(&empty, "no key here\n").unwrap();
    let empty = empty.to_string_lossy().into_owned();
    for (cert, key, wants) in [
        (
            &missing,
            &b_key,
            ["security.tls_cert", "cannot read", "nope.crt"],
        ),
        (
            &a_crt,
            &empty,
            ["security.tls_key", "no PEM private key", "empty.key"],
        ),
        (
            &a_crt,
            &b_key,
            ["security.tls_key", "does not go with", "a.crt"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut gw = Gateway::spawn(dir.path(), cert, key);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = gw.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "camgate did not stop on a bad TLS file"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success());
        // The reader thread may still be draining the pipe.
        std::thread::sleep(Duration::from_millis(200));
        let log = gw.log.lock().unwrap().join("\n");
        for w in wants {
            assert!(log.contains(w), "{w:?} missing from: {log}");
        }
        assert!(!log.contains("camgate is serving"), "{log}");
    }
}
