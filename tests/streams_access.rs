//! Access control end to end, on SQLite and PostgreSQL: a gateway served
//! in-process on 127.0.0.1 (REST, embed page, WebSocket, LL-HLS, RTSP)
//! that pulls the demo clip from our RTSP server over the network, and
//! every kind of principal tried against every route and stream protocol.
//! The ffprobe/ffmpeg checks (clients we did not write) skip loudly
//! without ffmpeg, or fail under CAMGATE_REQUIRE_TOOLS=1.

mod common;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate::auth::Role;
use camgate::auth::service::AuthService;
use camgate::auth::token::{LinkClaims, sign_link};
use camgate::catalogue::now_ms;
use camgate::config::Config;
use camgate::store::Store;
use camgate::store::access::EmbedLinkRow;
use common::{Backend, TestDb, test_districts};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Like `both_backends!`, with a [`Gateway`] per test.
macro_rules! both_backends_gateway {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let gw = super::Gateway::start(super::Backend::Sqlite).await.unwrap();
                super::$name(gw).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(gw) = super::Gateway::start(super::Backend::Postgres).await else {
                    return;
                };
                super::$name(gw).await;
            }
        }
    };
}

/// A gateway serving on loopback, with its cameras:
/// `A` in township 620602001, `B` in county 620602, `C` in 620102
/// (another county of Gansu) and `D` in Beijing's 110101.
struct Gateway {
    _db: TestDb,
    store: Arc<dyn Store>,
    http: SocketAddr,
    rtsp: SocketAddr,
    admin: String,
    cams: std::collections::HashMap<&'static str, String>,
    auth: AuthService,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Gateway {
    async fn start(backend: Backend) -> Option<Gateway> {
        common::capture_logs();
        let db = TestDb::new(backend).await?;
        let store = db.open().await;
        store
            .upsert_districts(&test_districts(), &|_| {})
            .await
            .unwrap();
        let stop = CancellationToken::new();
        // The cameras: the demo clip, served by our RTSP server without a
        // gate (it stands in for the cameras).
        let fleet = camgate::relay::clip::ClipFleet::demo(4, stop.clone()).unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fleet_port = l.local_addr().unwrap().port();
        let cams_server = camgate::relay::rtsp::RtspServer::new(
            fleet,
            Default::default(),
            Default::default(),
            None,
        );
        tokio::spawn(cams_server.serve(l, stop.clone()));

        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.database.url = db.url.clone();
        config.data_dir = dir.path().to_path_buf();
        config.server.listen = "127.0.0.1:0".into();
        config.relay.rtsp_listen = "127.0.0.1:0".into();
        config.metrics.listen = String::new();
        config.relay.auth_timeout_secs = 2;
        let auth = AuthService::new(store.clone(), Default::default())
            .with_cipher(store.credential_cipher().unwrap());
        let admin = auth
            .create_key("tests", Role::Admin, None, None, "tests")
            .await
            .unwrap()
            .secret;
        let engine = camgate::app::start_pulling(
            store.clone(),
            &config,
            Arc::new(camgate::pull::rtsp::RtspSource::default()),
            stop.clone(),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (s, e, c) = (store.clone(), engine, stop.clone());
        tokio::spawn(async move {
            let r = camgate::app::serve_on(listener, Arc::new(config), s, e, c, |b| {
                let _ = tx.send(b);
            })
            .await;
            if let Err(e) = r {
                eprintln!("the gateway stopped: {e:#}");
            }
        });
        let bound = rx.await.unwrap();
        let mut gw = Gateway {
            _db: db,
            store,
            http: bound.http,
            rtsp: bound.rtsp.unwrap(),
            admin,
            cams: Default::default(),
            auth,
            stop,
            _dir: dir,
        };
        for (i, (name, district)) in [
            ("A", "620602001"),
            ("B", "620602"),
            ("C", "620102"),
            ("D", "110101"),
        ]
        .into_iter()
        .enumerate()
        {
            let cam = json!({"name": format!("camera {name}"), "district": district,
                "point_type": 1, "ownership": "public", "pull_mode": "always",
                "rtsp_url": format!("rtsp://127.0.0.1:{fleet_port}/cam/{i}")});
            let (s, v) = gw.call(
                "POST",
                "/api/v1/cameras",
                Some(&gw.admin.clone()),
                Some(cam),
            );
            assert_eq!(s, 201, "{v}");
            gw.cams.insert(name, v["id"].as_str().unwrap().to_string());
        }
        // Every camera online before the table starts.
        let start = Instant::now();
        loop {
            let (_, v) = gw.call("GET", "/api/v1/cameras", Some(&gw.admin.clone()), None);
            let online = v["items"]
                .as_array()
                .map_or(0, |i| i.iter().filter(|c| c["state"] == "online").count());
            if online == 4 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "cameras online: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some(gw)
    }

    fn cam(&self, name: &str) -> &str {
        &self.cams[name]
    }

    /// An HTTP/1.1 request; status and body as JSON (`Null` when not JSON).
    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (s, text) = http(self.http, method, path, key, body);
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn key(&self, role: Role, scope: Option<&str>) -> String {
        self.auth
            .create_key("table", role, scope, None, "tests")
            .await
            .unwrap()
            .secret
    }

    /// A link for camera `A` through the API: its id and token.
    fn link(&self) -> (String, String) {
        let (s, v) = self.call(
            "POST",
            "/api/v1/embed-links",
            Some(&self.admin),
            Some(json!({"camera_id": self.cam("A"), "ttl_secs": 600, "note": "综治中心大屏"})),
        );
        assert_eq!(s, 201, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        )
    }
}

/// An HTTP request to the gateway; status and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let json = body.map(|b| b.to_string()).unwrap_or_default();
    support::http_as(&addr.to_string(), method, path, key, &json)
}

/// An RTSP DESCRIBE on a new connection: the status.
fn rtsp_describe(addr: SocketAddr, path: &str, basic: Option<&str>) -> u16 {
    use base64::Engine as _;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let auth = basic.map_or(String::new(), |k| {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("key:{k}"));
        format!("Authorization: Basic {b}\r\n")
    });
    write!(
        s,
        "DESCRIBE rtsp://{addr}{path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n{auth}\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0)
}

/// A WebSocket upgrade of `/live/{id}`: 101 when accepted, else the status.
async fn ws_status(addr: SocketAddr, id: &str, token: Option<&str>) -> u16 {
    let q = token.map_or(String::new(), |t| format!("?token={t}"));
    match tokio_tungstenite::connect_async(format!("ws://{addr}/live/{id}{q}")).await {
        Ok((mut ws, r)) => {
            let _ = ws.close(None).await;
            r.status().as_u16()
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

/// How a principal presents itself.
#[derive(Clone)]
enum Cred {
    None,
    /// An API key: `Authorization: Bearer` over HTTP, Basic over RTSP,
    /// `?token=` on the WebSocket.
    Key(String),
    /// An embed-link token: `?token=` everywhere.
    Link(String),
}

both_backends_gateway!(every_principal_on_every_route_and_protocol);

/// The columns of the table.
const COLUMNS: [&str; 16] = [
    "GET camera A",
    "GET camera B",
    "GET camera C",
    "GET camera D",
    "PATCH camera A",
    "GET users",
    "GET audit",
    "embed A",
    "embed B",
    "embed C",
    "embed D",
    "WebSocket A",
    "LL-HLS A",
    "LL-HLS D",
    "RTSP A",
    "RTSP D",
];

async fn every_principal_on_every_route_and_protocol(gw: Gateway) {
    let now_s = now_ms() / 1000;
    let (_, valid) = gw.link();
    let (revoked_id, revoked) = gw.link();
    let (s, _) = gw.call(
        "DELETE",
        &format!("/api/v1/embed-links/{revoked_id}"),
        Some(&gw.admin),
        None,
    );
    assert_eq!(s, 204);
    // An expired link, signed with the gateway's own secret.
    let secret = gw.store.setting("link_secret").await.unwrap().unwrap();
    let expired_row = EmbedLinkRow {
        id: "0000e0e0".into(),
        camera_id: Some(gw.cam("A").into()),
        district_code: None,
        note: String::new(),
        created_by: "tests".into(),
        created_at_ms: now_ms() - 120_000,
        expires_at_ms: now_ms() - 60_000,
        revoked_at_ms: None,
    };
    gw.store.create_link(&expired_row).await.unwrap();
    let expired = sign_link(
        &LinkClaims {
            id: expired_row.id.clone(),
            camera: expired_row.camera_id.clone(),
            district: None,
            exp: now_s - 60,
        },
        secret.as_bytes(),
    );
    // A valid link with its claims changed to every camera of Gansu.
    let tampered = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = valid.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        claims.as_object_mut().unwrap().remove("camera");
        claims["district"] = json!("62");
        format!("cgl1.{}.{}", b64.encode(claims.to_string()), parts[2])
    };
    let k = |role, scope| gw.key(role, scope);
    let rows: Vec<(&str, Cred, [u16; 16])> = vec![
        (
            "admin key",
            Cred::Key(gw.admin.clone()),
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 101, 200, 200, 200, 200,
            ],
        ),
        (
            "operator key",
            Cred::Key(k(Role::Operator, None).await),
            [
                200, 200, 200, 200, 200, 403, 403, 200, 200, 200, 200, 101, 200, 200, 200, 200,
            ],
        ),
        (
            "viewer key",
            Cred::Key(k(Role::Viewer, None).await),
            [
                200, 200, 200, 200, 403, 403, 403, 200, 200, 200, 200, 101, 200, 200, 200, 200,
            ],
        ),
        (
            "province viewer (62)",
            Cred::Key(k(Role::Viewer, Some("62")).await),
            [
                200, 200, 200, 404, 403, 403, 403, 200, 200, 200, 404, 101, 200, 404, 200, 404,
            ],
        ),
        (
            "county operator (620602)",
            Cred::Key(k(Role::Operator, Some("620602")).await),
            [
                200, 200, 404, 404, 200, 403, 403, 200, 200, 404, 404, 101, 200, 404, 200, 404,
            ],
        ),
        (
            "township viewer (620602001)",
            Cred::Key(k(Role::Viewer, Some("620602001")).await),
            [
                200, 404, 404, 404, 403, 403, 403, 200, 404, 404, 404, 101, 200, 404, 200, 404,
            ],
        ),
        ("no credentials", Cred::None, [401; 16]),
        (
            "embed link for A",
            Cred::Link(valid.clone()),
            [
                401, 401, 401, 401, 401, 401, 401, 200, 404, 404, 404, 101, 200, 404, 200, 404,
            ],
        ),
        ("expired link", Cred::Link(expired), [401; 16]),
        ("tampered link", Cred::Link(tampered), [401; 16]),
        ("revoked link", Cred::Link(revoked), [401; 16]),
        (
            "unknown key",
            Cred::Key("cgk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
            [401; 16],
        ),
    ];
    let mut failures = Vec::new();
    for (who, cred, expected) in &rows {
        let got = statuses(&gw, cred).await;
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            if g != e {
                failures.push(format!("{who} × {}: got {g}, expected {e}", COLUMNS[i]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    common::assert_logs_clean();
}

/// What `cred` gets on each column.
async fn statuses(gw: &Gateway, cred: &Cred) -> [u16; 16] {
    let (key, token) = match cred {
        Cred::None => (None, None),
        Cred::Key(k) => (Some(k.as_str()), None),
        Cred::Link(t) => (None, Some(t.as_str())),
    };
    // REST takes keys and sessions only: a link token is no credential there.
    let rest =
        |method: &str, path: String, body: Option<Value>| gw.call(method, &path, key, body).0;
    let q = token.map_or(String::new(), |t| format!("?token={t}"));
    let stream = |path: String| http(gw.http, "GET", &format!("{path}{q}"), key, None).0;
    let rtsp = |id: &str| match cred {
        Cred::None => rtsp_describe(gw.rtsp, &format!("/cam/{id}"), None),
        Cred::Key(k) => rtsp_describe(gw.rtsp, &format!("/cam/{id}"), Some(k)),
        Cred::Link(t) => rtsp_describe(gw.rtsp, &format!("/cam/{id}?token={t}"), None),
    };
    let (a, b, c, d) = (gw.cam("A"), gw.cam("B"), gw.cam("C"), gw.cam("D"));
    [
        rest("GET", format!("/api/v1/cameras/{a}"), None),
        rest("GET", format!("/api/v1/cameras/{b}"), None),
        rest("GET", format!("/api/v1/cameras/{c}"), None),
        rest("GET", format!("/api/v1/cameras/{d}"), None),
        rest(
            "PATCH",
            format!("/api/v1/cameras/{a}"),
            Some(json!({"address": "东大街 1 号"})),
        ),
        rest("GET", "/api/v1/users".into(), None),
        rest("GET", "/api/v1/audit".into(), None),
        stream(format!("/embed/{a}")),
        stream(format!("/embed/{b}")),
        stream(format!("/embed/{c}")),
        stream(format!("/embed/{d}")),
        ws_status(gw.http, a, token.or(key)).await,
        stream(format!("/hls/{a}/index.m3u8")),
        stream(format!("/hls/{d}/index.m3u8")),
        rtsp(a),
        rtsp(d),
    ]
}

fn ffprobe(url: &str) -> (bool, String, String) {
    let out = Command::new("ffprobe")
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
        .arg(url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

both_backends_gateway!(ffmpeg_through_rtsp_with_keys_links_and_bad_credentials);

async fn ffmpeg_through_rtsp_with_keys_links_and_bad_credentials(gw: Gateway) {
    if !support::have_ffprobe() {
        return;
    }
    let rtsp = gw.rtsp;
    let a = gw.cam("A").to_string();
    let key = gw
        .auth
        .create_key("platform", Role::Viewer, Some("620602"), None, "tests")
        .await
        .unwrap();
    let key_id = key.row.id.clone();
    // A key as the user name (its id) and password: ffprobe answers the
    // Digest challenge (it prefers Digest to Basic).
    let (ok, out, err) = ffprobe(&format!("rtsp://{key_id}:{}@{rtsp}/cam/{a}", key.secret));
    assert!(ok && out == "h264,640,360", "key: {out} {err}");
    // An embed link's token in the URL.
    let (link_id, token) = gw.link();
    let (ok, out, err) = ffprobe(&format!("rtsp://{rtsp}/cam/{a}?token={token}"));
    assert!(ok && out == "h264,640,360", "link: {out} {err}");
    // Refused: no credentials, a wrong secret, a link for another camera.
    for url in [
        format!("rtsp://{rtsp}/cam/{a}"),
        format!("rtsp://{key_id}:cgk_wrong@{rtsp}/cam/{a}"),
    ] {
        let (ok, out, err) = ffprobe(&url);
        assert!(!ok && out.is_empty(), "{url}: {out}");
        assert!(err.contains("401"), "{url}: {err}");
    }
    let (ok, _, err) = ffprobe(&format!("rtsp://{rtsp}/cam/{}?token={token}", gw.cam("B")));
    assert!(!ok && err.contains("404"), "another camera: {err}");

    // A key's five-second copy is one view in the audit trail, with its
    // times and the bytes sent.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.h264");
    let started = now_ms();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i"])
        .arg(format!("rtsp://{key_id}:{}@{rtsp}/cam/{a}", key.secret))
        .args(["-c", "copy", "-t", "5", "-f", "h264", "-y"])
        .arg(&file)
        .output()
        .unwrap();
    let ended = now_ms();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&file).unwrap().len() as i64;
    assert!(size > 100_000, "{size}");
    let principal = format!("key:{key_id}");
    let view = {
        let start = Instant::now();
        loop {
            let (s, v) = gw.call(
                "GET",
                &format!("/api/v1/audit?camera={a}&principal={principal}"),
                Some(&gw.admin),
                None,
            );
            assert_eq!(s, 200, "{v}");
            // The copy is the newest view of this key; the probes before it
            // were views too.
            let newest = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["kind"] == "view")
                .cloned()
                .unwrap_or(Value::Null);
            if !newest["ended_at"].is_null() {
                break newest;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the view ended: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(view["protocol"], "rtsp", "{view}");
    assert_eq!(view["client"], "127.0.0.1", "{view}");
    assert_eq!(view["target"], a.as_str(), "{view}");
    // Five seconds of media, of which up to a GOP (2 s) came at once from
    // the gateway's cache of the current GOP.
    let duration = view["duration_ms"].as_i64().unwrap();
    assert!(
        (2_500..=ended - started + 1_000).contains(&duration),
        "a five-second copy: {duration} ms ({view})"
    );
    // Everything ffmpeg wrote came through the gateway (plus RTP and
    // interleaving headers, and what was in flight when it stopped).
    let bytes = view["bytes"].as_i64().unwrap();
    assert!(
        bytes >= size && bytes <= size * 3 / 2 + 512 * 1024,
        "bytes sent {bytes}, file {size}"
    );

    // Revoking a link disconnects a playing ffmpeg within 5 s.
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i"])
        .arg(format!("rtsp://{rtsp}/cam/{a}?token={token}"))
        .args(["-c", "copy", "-t", "60", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Playing: its view is open.
    let start = Instant::now();
    loop {
        let (_, v) = gw.call(
            "GET",
            &format!("/api/v1/audit?principal=link:{link_id}"),
            Some(&gw.admin),
            None,
        );
        let open = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "view" && r["ended_at"].is_null());
        if open {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ffmpeg plays: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(ffmpeg.try_wait().unwrap().is_none(), "still playing");
    let (s, _) = gw.call(
        "DELETE",
        &format!("/api/v1/embed-links/{link_id}"),
        Some(&gw.admin),
        None,
    );
    assert_eq!(s, 204);
    let revoked = Instant::now();
    let exited = loop {
        if ffmpeg.try_wait().unwrap().is_some() {
            break revoked.elapsed();
        }
        if revoked.elapsed() > Duration::from_secs(10) {
            let _ = ffmpeg.kill();
            panic!("ffmpeg still playing 10 s after the link was revoked");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("ffmpeg disconnected {exited:?} after the revocation");
    assert!(exited <= Duration::from_secs(5), "{exited:?}");
    // And the link is refused from now on.
    let (ok, _, err) = ffprobe(&format!("rtsp://{rtsp}/cam/{a}?token={token}"));
    assert!(!ok && err.contains("401"), "{err}");
    common::assert_logs_clean();
}

both_backends_gateway!(changes_are_audited_with_before_and_after);

async fn changes_are_audited_with_before_and_after(gw: Gateway) {
    let a = gw.cam("A").to_string();
    let (s, v) = gw.call(
        "PATCH",
        &format!("/api/v1/cameras/{a}"),
        Some(&gw.admin),
        Some(json!({"name": "东大街路口 北", "username": "admin", "password": format!("{}-audit", common::SECRET_MARK)})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = gw.call(
        "GET",
        &format!("/api/v1/audit?camera={a}"),
        Some(&gw.admin),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let edit = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "camera.update")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(edit["kind"], "change");
    assert_eq!(edit["before"]["name"], "camera A", "{edit}");
    assert_eq!(edit["after"]["name"], "东大街路口 北", "{edit}");
    assert_eq!(edit["after"]["has_password"], true, "{edit}");
    assert!(edit["principal"].as_str().unwrap().starts_with("key:"));
    assert!(
        !v.to_string().contains(common::SECRET_MARK),
        "no password in the trail"
    );
    // Keys, links and users too, without their secrets.
    let (s, created) = gw.call(
        "POST",
        "/api/v1/keys",
        Some(&gw.admin),
        Some(json!({"name": "区平台", "role": "viewer", "scope": "620602"})),
    );
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    let (s, user) = gw.call(
        "POST",
        "/api/v1/users",
        Some(&gw.admin),
        Some(json!({"username": "值班员", "role": "viewer", "scope": "620602"})),
    );
    assert_eq!(s, 201, "{user}");
    let password = user["password"].as_str().unwrap();
    let (_, token) = gw.link();
    let (s, v) = gw.call("GET", "/api/v1/audit?limit=50", Some(&gw.admin), None);
    assert_eq!(s, 200);
    let actions: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for a in [
        "key.create",
        "user.create",
        "embed_link.create",
        "camera.update",
        "camera.create",
    ] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    let all = v.to_string();
    for s in [secret, password, token.as_str()] {
        assert!(!all.contains(s), "a secret in the audit trail");
    }
    // Paging: newest first, by cursor.
    let (_, p1) = gw.call("GET", "/api/v1/audit?limit=2", Some(&gw.admin), None);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = gw.call(
        "GET",
        &format!("/api/v1/audit?limit=2&cursor={cursor}"),
        Some(&gw.admin),
        None,
    );
    let id = |v: &Value, i: usize| v["items"][i]["id"].as_i64().unwrap();
    assert!(id(&p1, 0) > id(&p1, 1) && id(&p1, 1) > id(&p2, 0));
    let (s, v) = gw.call(
        "GET",
        "/api/v1/audit?since=yesterday",
        Some(&gw.admin),
        None,
    );
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("since")));
    common::assert_logs_clean();
}

both_backends_gateway!(stream_caps_rate_limits_and_embed_headers);

async fn stream_caps_rate_limits_and_embed_headers(gw: Gateway) {
    // A link allows 8 streams at once (the default): the ninth is refused.
    let (_, token) = gw.link();
    let a = gw.cam("A").to_string();
    let mut open = Vec::new();
    for _ in 0..8 {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/live/{a}?token={token}", gw.http))
                .await
                .unwrap();
        open.push(ws);
    }
    assert_eq!(ws_status(gw.http, &a, Some(&token)).await, 429);
    drop(open);
    // Closed streams free their slots (the server sees the close at once
    // or at its next frame).
    let start = Instant::now();
    while ws_status(gw.http, &a, Some(&token)).await != 101 {
        assert!(start.elapsed() < Duration::from_secs(5), "slots freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Embed pages carry frame-ancestors and no Referer; others deny framing.
    let mut s = TcpStream::connect(gw.http).unwrap();
    write!(
        s,
        "GET /embed/{a}?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    let _ = s.read_to_string(&mut head);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: frame-ancestors 'self'"),
        "{head}"
    );
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    // A key sending more than its burst gets 429 with Retry-After.
    let key = gw.key(Role::Viewer, None).await;
    let mut limited = None;
    for i in 0..400 {
        let mut s = TcpStream::connect(gw.http).unwrap();
        write!(
            s,
            "GET /api/v1/districts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        if resp.starts_with("HTTP/1.1 429") {
            limited = Some((i, resp));
            break;
        }
    }
    let (i, resp) = limited.expect("the rate limit answers 429");
    assert!(i >= 200, "the burst (200) first: {i}");
    assert!(
        resp.to_ascii_lowercase().contains("retry-after: 1"),
        "{resp}"
    );
    assert!(resp.contains("\"rate_limited\""), "{resp}");
}

both_backends_gateway!(the_access_holes_stay_closed);

/// A raw HTTP/1.1 request with extra header lines; status, headers, body.
fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let len = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{headers}{len}Connection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (status, head.to_string(), body.to_string())
}

/// One RTSP request on `s`; the status and the response head.
fn rtsp_request(
    s: &mut TcpStream,
    method: &str,
    uri: &str,
    cseq: u32,
    extra: &str,
) -> (u16, String) {
    write!(s, "{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    (
        head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0),
        head,
    )
}

fn nonce_of(head: &str) -> String {
    head.split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// Whether the peer closed `s` (within 5 s).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

async fn the_access_holes_stay_closed(gw: Gateway) {
    use base64::Engine as _;
    use camgate::auth::digest;
    let (a, b) = (gw.cam("A").to_string(), gw.cam("B").to_string());

    // The signing secret is stored encrypted with the credential key.
    let stored = gw.store.setting("link_secret").await.unwrap().unwrap();
    assert!(
        stored.starts_with("enc:v1:"),
        "the link secret at rest: {stored}"
    );
    let secret = gw
        .store
        .credential_cipher()
        .unwrap()
        .decrypt(&stored)
        .unwrap();

    // A token signed with the secret, carrying a real link's id but no
    // camera or district, or another camera: refused. The link's reach is
    // its stored record's.
    let (link_id, genuine) = gw.link();
    let exp = now_ms() / 1000 + 600;
    for (camera, district) in [
        (None, None),
        (Some(b.clone()), None),
        (None, Some("62".to_string())),
    ] {
        let forged = sign_link(
            &LinkClaims {
                id: link_id.clone(),
                camera,
                district,
                exp,
            },
            secret.as_bytes(),
        );
        for target in [&a, &b] {
            let (s, _) = gw.call(
                "GET",
                &format!("/embed/{target}?token={forged}"),
                None,
                None,
            );
            assert_eq!(s, 401, "a forged token opened /embed/{target}");
        }
    }
    assert_eq!(
        gw.call("GET", &format!("/embed/{a}?token={genuine}"), None, None)
            .0,
        200
    );
    assert_eq!(
        gw.call("GET", &format!("/embed/{b}?token={genuine}"), None, None)
            .0,
        404
    );

    // Link URLs come from the gateway's address, never the Host header.
    let body = json!({"camera_id": a, "ttl_secs": 600}).to_string();
    let (s, _, text) = http_raw(
        gw.http,
        "POST",
        "/api/v1/embed-links",
        &format!(
            "Host: evil.example\r\nAuthorization: Bearer {}\r\n",
            gw.admin
        ),
        &body,
    );
    assert_eq!(s, 201, "{text}");
    assert!(!text.contains("evil.example"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let embed = v["urls"]["embed"].as_str().unwrap();
    assert!(
        embed.starts_with(&format!("http://{}/embed/", gw.http)),
        "{embed}"
    );
    assert!(
        v["urls"]["rtsp"].as_str().unwrap().starts_with(&format!(
            "rtsp://{}:{}/cam/",
            gw.http.ip(),
            gw.rtsp.port()
        )),
        "{v}"
    );

    // Roles: logout works for a viewer; links are for operators; a scoped
    // admin does not see the unscoped admin's key.
    gw.auth
        .create_user("viewer1", "viewer-Pass-123", Role::Viewer, None)
        .await
        .unwrap();
    let (session, _) = gw.auth.login("viewer1", "viewer-Pass-123").await.unwrap();
    let cookie = format!("Cookie: camgate_session={session}\r\n");
    let (s, _, _) = http_raw(gw.http, "GET", "/api/v1/auth/me", &cookie, "");
    assert_eq!(s, 200);
    let (s, _, text) = http_raw(gw.http, "POST", "/api/v1/auth/logout", &cookie, "");
    assert_eq!(s, 204, "a viewer logs out: {text}");
    let (s, _, _) = http_raw(gw.http, "GET", "/api/v1/auth/me", &cookie, "");
    assert_eq!(s, 401, "the session ended with the logout");
    let viewer_key = gw.key(Role::Viewer, None).await;
    let (s, v) = gw.call("GET", "/api/v1/embed-links", Some(&viewer_key), None);
    assert_eq!(s, 403, "{v}");
    let scoped_admin = gw.key(Role::Admin, Some("6206")).await;
    let (s, v) = gw.call("GET", "/api/v1/keys", Some(&scoped_admin), None);
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|k| k["scope"].as_str().is_some_and(|sc| sc.starts_with("6206"))),
        "a scoped admin lists only keys inside its scope: {v}"
    );

    // WebSocket upgrades with the session cookie from another site are
    // refused; from the gateway's own origin, or with a token, accepted.
    gw.auth
        .create_user("op1", "operator-Pass-123", Role::Operator, None)
        .await
        .unwrap();
    let (session, _) = gw.auth.login("op1", "operator-Pass-123").await.unwrap();
    let ws = |origin: &str, query: String| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut req = format!("ws://{}/live/{a}{query}", gw.http)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req.headers_mut().insert(
            "cookie",
            format!("camgate_session={session}").parse().unwrap(),
        );
        async move {
            match tokio_tungstenite::connect_async(req).await {
                Ok((mut ws, r)) => {
                    let _ = ws.close(None).await;
                    r.status().as_u16()
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(ws("https://evil.example", String::new()).await, 403);
    assert_eq!(ws(&format!("http://{}", gw.http), String::new()).await, 101);
    assert_eq!(
        ws("https://evil.example", format!("?token={genuine}")).await,
        101
    );

    // RTSP Digest: an answer is bound to its URI and its connection.
    let key = gw
        .auth
        .create_key("digest", Role::Viewer, None, None, "tests")
        .await
        .unwrap();
    let ha1 = digest::ha1(&key.row.id, &key.secret);
    let uri_a = format!("rtsp://{}/cam/{a}", gw.rtsp);
    let uri_b = format!("rtsp://{}/cam/{b}", gw.rtsp);
    let mut c1 = TcpStream::connect(gw.rtsp).unwrap();
    c1.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let (s, head) = rtsp_request(&mut c1, "DESCRIBE", &uri_a, 1, "");
    assert_eq!(s, 401);
    let nonce = nonce_of(&head);
    let answer = |uri: &str, method: &str| {
        format!(
            "Authorization: Digest username=\"{}\", realm=\"camgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{}\"\r\n",
            key.row.id,
            digest::response(&ha1, &nonce, method, uri)
        )
    };
    let (s, _) = rtsp_request(&mut c1, "DESCRIBE", &uri_a, 2, &answer(&uri_a, "DESCRIBE"));
    assert_eq!(s, 200, "Digest on its own connection and URI");
    // The same header for another camera, on this connection and another.
    let (s, _) = rtsp_request(&mut c1, "DESCRIBE", &uri_b, 3, &answer(&uri_a, "DESCRIBE"));
    assert_eq!(s, 401, "a Digest answer for /cam/A used for /cam/B");
    let mut c2 = TcpStream::connect(gw.rtsp).unwrap();
    c2.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let (s, _) = rtsp_request(&mut c2, "DESCRIBE", &uri_a, 1, &answer(&uri_a, "DESCRIBE"));
    assert_eq!(
        s, 401,
        "a captured Digest answer replayed on a new connection"
    );
    let (s, _) = rtsp_request(&mut c2, "DESCRIBE", &uri_b, 2, &answer(&uri_b, "DESCRIBE"));
    assert_eq!(s, 401, "another connection's nonce");

    // A key revoked while its RTSP connection is open: the next request is
    // refused and the connection closed at once.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", key.row.id, key.secret));
    let mut c3 = TcpStream::connect(gw.rtsp).unwrap();
    c3.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let auth = format!("Authorization: Basic {basic}\r\n");
    let (s, _) = rtsp_request(&mut c3, "DESCRIBE", &uri_a, 1, &auth);
    assert_eq!(s, 200);
    let (s, v) = gw.call(
        "DELETE",
        &format!("/api/v1/keys/{}", key.row.id),
        Some(&gw.admin),
        None,
    );
    assert!(s == 204 || s == 200, "{v}");
    let revoked_at = Instant::now();
    assert!(closed(&mut c3), "the revoked key's connection is closed");
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "closed at once: {:?}",
        revoked_at.elapsed()
    );

    // An unauthenticated client that streams interleaved data is cut off
    // after relay.auth_timeout_secs (2 s here).
    let mut c4 = TcpStream::connect(gw.rtsp).unwrap();
    let started = Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(8) {
        if c4.write_all(b"$\x01\x00\x04abcd").is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cut || closed(&mut c4),
        "an unauthenticated interleaved stream is cut off"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}
