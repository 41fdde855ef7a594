//! Test harness shared by the integration tests.
//!
//! Every store and API test runs twice: on SQLite (a temp file) and on a real
//! PostgreSQL server named by `CAMGATE_TEST_POSTGRES_URL` (a fresh database
//! is created per test). Without that variable the PostgreSQL variants print
//! that they skip; with `CAMGATE_REQUIRE_POSTGRES=1` (set by tests/run.sh)
//! they fail instead, so a CI run cannot pass without PostgreSQL.
//!
//! Every response body and every log line the suite produces is checked for
//! the test camera passwords, which all contain [`SECRET_MARK`].
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use camgate::api::{self, AppState};
use camgate::catalogue::district::builtin_districts;
use camgate::config::Config;
use camgate::store::{self, Store};

/// Every test password contains this; it must never show up in output.
pub const SECRET_MARK: &str = "S3cr3t";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Captured log output of the whole test binary.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a debug-level subscriber that records every log line.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,hyper=info,h2=info")
            .with_ansi(false)
            .with_writer(move || LogWriter(w.clone()))
            .try_init();
        buf
    });
}

/// Panics if any captured log line holds a test password.
pub fn assert_logs_clean() {
    if let Some(buf) = LOGS.get() {
        let text = String::from_utf8_lossy(&buf.lock().unwrap()).to_string();
        if let Some(line) = text.lines().find(|l| l.contains(SECRET_MARK)) {
            panic!("a test password leaked into the log: {line}");
        }
    }
}

/// How many log bytes were captured (to prove capture works).
pub fn log_len() -> usize {
    LOGS.get().map(|b| b.lock().unwrap().len()).unwrap_or(0)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The districts tests load: four provinces of different shapes
/// (Gansu, Beijing, Zhejiang, Guangdong with Dongguan).
pub fn test_districts() -> Vec<camgate::catalogue::District> {
    builtin_districts()
        .unwrap()
        .into_iter()
        .filter(|d| {
            ["62", "11", "33", "44"]
                .iter()
                .any(|p| d.code.starts_with(p))
        })
        .collect()
}

/// A database for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database, or `None` (after saying so) when PostgreSQL is not
    /// available and not required.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("camgate.db").display());
                Some(TestDb {
                    backend,
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = match std::env::var("CAMGATE_TEST_POSTGRES_URL") {
                    Ok(u) if !u.is_empty() => u,
                    _ => {
                        if std::env::var("CAMGATE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                            panic!(
                                "CAMGATE_REQUIRE_POSTGRES=1 but CAMGATE_TEST_POSTGRES_URL is not set"
                            );
                        }
                        eprintln!(
                            "SKIPPED (PostgreSQL variant): set CAMGATE_TEST_POSTGRES_URL=postgres://... \
                             to run it, or use tests/run.sh, which starts a throwaway server"
                        );
                        return None;
                    }
                };
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to CAMGATE_TEST_POSTGRES_URL");
                let name = format!(
                    "camgate_t{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                Some(TestDb {
                    backend,
                    url: url.to_string(),
                    _dir: None,
                })
            }
        }
    }

    /// Opens the store (applying migrations).
    pub async fn open(&self) -> Arc<dyn Store> {
        // Passwords are encrypted as in the gateway (`app::open_store`).
        let options = store::StoreOptions {
            cipher: Some(Arc::new(
                camgate::auth::cipher::CredentialCipher::from_bytes(&[42; 32]),
            )),
            ..Default::default()
        };
        store::open(&self.url, &options).await.unwrap()
    }
}

/// A pull source that never connects (API tests must not dial the
/// cameras' made-up addresses): every open fails as unreachable.
pub struct OfflineSource;

#[async_trait::async_trait]
impl camgate::pull::PullSource for OfflineSource {
    async fn open(
        &self,
        _: &camgate::pull::PullTarget,
    ) -> Result<Box<dyn camgate::pull::PullStream>, camgate::pull::PullError> {
        Err(camgate::pull::PullError::new(
            camgate::health::Reason::Unreachable,
            "test source: no network",
        ))
    }
}

/// A router over a store, driven without sockets.
pub struct TestApp {
    pub db: TestDb,
    pub store: Arc<dyn Store>,
    pub router: Router,
    pub config: Arc<Config>,
    pub pulls: Arc<camgate::pull::PullManager>,
    pub auth: Arc<camgate::auth::service::AuthService>,
    /// An admin API key every request carries unless told otherwise.
    pub admin_key: String,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Option<TestApp> {
        capture_logs();
        let db = TestDb::new(backend).await?;
        let store = db.open().await;
        store
            .upsert_districts(&test_districts(), &|_| {})
            .await
            .unwrap();
        Some(Self::with(db, store).await)
    }

    pub async fn with(db: TestDb, store: Arc<dyn Store>) -> TestApp {
        let mut config = Config::default();
        config.database.url = db.url.clone();
        let config = Arc::new(config);
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let pulls = camgate::pull::PullManager::new(
            Arc::new(OfflineSource),
            config.pull.options(),
            tokio_util::sync::CancellationToken::new(),
            events,
        );
        let state = AppState::build(
            store.clone(),
            config.clone(),
            pulls.clone(),
            Default::default(),
            Default::default(),
            store.credential_cipher(),
        )
        .await
        .unwrap();
        let auth = state.auth.clone();
        let router = api::router(state);
        let admin_key = auth
            .create_key("tests", camgate::auth::Role::Admin, None, None, "tests")
            .await
            .unwrap()
            .secret;
        TestApp {
            db,
            store,
            router,
            config,
            pulls,
            auth,
            admin_key,
        }
    }

    /// Sends a request; returns status and body text. Checks that the body
    /// holds no test password and that no log line does.
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let auth = format!("Bearer {}", self.admin_key);
        self.raw_as(Some(&auth), method, uri, content_type, body)
            .await
    }

    /// Like [`raw`](Self::raw) with the given `Authorization` header (none
    /// when `None`).
    pub async fn raw_as(
        &self,
        authorization: Option<&str>,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let event_stream = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let bytes = if event_stream {
            // An event stream stays open for minutes: read what comes in
            // the first 200 ms.
            let mut body = resp.into_body();
            let mut out = Vec::new();
            let until = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
            while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, body.frame()).await {
                if let Some(data) = frame.data_ref() {
                    out.extend_from_slice(data);
                }
            }
            out
        } else {
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec()
        };
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            !text.contains(SECRET_MARK),
            "a test password leaked into a response to {uri}: {text}"
        );
        assert_logs_clean();
        (status, text)
    }

    /// Sends JSON (or nothing) and parses a JSON answer (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (ct, bytes) = match body {
            Some(b) => (Some("application/json"), serde_json::to_vec(&b).unwrap()),
            None => (None, Vec::new()),
        };
        let (status, text) = self.raw(method, uri, ct, bytes).await;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {text}"))
        };
        if !status.is_success() {
            assert_error_shape(&v);
        }
        (status, v)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }
    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body)).await
    }
    pub async fn patch(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, uri, Some(body)).await
    }
    pub async fn delete(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, uri, None).await
    }
    pub async fn post_csv(&self, uri: &str, csv: &str) -> (StatusCode, Value) {
        let (status, text) = self
            .raw(Method::POST, uri, Some("text/csv"), csv.as_bytes().to_vec())
            .await;
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {text}")),
        )
    }

    /// Every camera, following cursors.
    pub async fn all_cameras(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut uri = format!("/api/v1/cameras?limit=1000{query}");
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let (s, v) = self.get(&uri).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// Asserts `{"error": {"code", "message", "field"}}`.
pub fn assert_error_shape(v: &Value) {
    let e = &v["error"];
    assert!(e["code"].is_string(), "error without code: {v}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {v}"
    );
    assert!(e.get("field").is_some(), "error without field member: {v}");
}

/// Generates a SQLite and a PostgreSQL test for each listed async fn taking
/// a `TestApp`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::TestApp::new($crate::common::Backend::Sqlite).await.unwrap();
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::common::TestApp::new($crate::common::Backend::Postgres).await else { return };
                    super::$name(app).await;
                }
            )*
        }
    };
}
