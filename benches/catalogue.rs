//! Catalogue benchmark: 30,000 cameras over a realistic district tree, on
//! SQLite and (when `CAMGATE_TEST_POSTGRES_URL` names a server) PostgreSQL.
//!
//! Measures, through the same code paths the API and CLI use:
//! - CSV import of 30,000 rows (parse, validate, write; all or nothing),
//!   median of 3 runs, each into a fresh database;
//! - filtered camera lists and searches through the HTTP router (p50, p99);
//! - district children with subtree camera counts (p50, p99).
//!
//! Run: `cargo bench --bench catalogue` (add CAMGATE_TEST_POSTGRES_URL for
//! PostgreSQL; CAMGATE_BENCH_CAMERAS changes the size). Targets from the
//! issue: import <= 10 s, list/search p99 <= 20 ms, children p99 <= 50 ms.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use camgate::api::{self, AppState};
use camgate::catalogue::District;
use camgate::catalogue::district::builtin_districts;
use camgate::config::Config;
use camgate::store::{self, Store};

/// A small deterministic generator (xorshift), so every run has the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

use camgate::demo::SPOTS;
use camgate::demo::STREETS;

/// The CSV of `n` cameras over Gansu's townships, skewed so that a few
/// counties hold most cameras (as a city's core districts do), with 320
/// checkpoints' worth of checkpoint cameras, tags, credentials and coordinates.
fn camera_csv(districts: &[District], n: usize, checkpoints: &[(String, String)]) -> String {
    let towns: Vec<&District> = districts
        .iter()
        .filter(|d| d.level == 4 && d.code.starts_with("62"))
        .collect();
    let mut rng = Rng(0x2260_2818);
    let mut csv = String::with_capacity(n * 220);
    csv.push_str(
        "名称,行政区划,卡口,点位类型,权属,地址,经度,纬度,RTSP地址,用户名,密码,拉流方式,标签\n",
    );
    for i in 0..n {
        // Skew: square the uniform draw so low indexes (one prefecture's towns) dominate.
        let r = rng.below(towns.len());
        let t = towns[(r * r) / towns.len()];
        let street = STREETS[rng.below(STREETS.len())];
        let spot = SPOTS[rng.below(SPOTS.len())];
        let (cp, district) = if i % 30 == 0 {
            let c = &checkpoints[rng.below(checkpoints.len())];
            (c.0.as_str(), c.1.as_str())
        } else {
            ("", t.code.as_str())
        };
        let social = rng.below(10) < 7;
        csv.push_str(&format!(
            "{}{}{}{}号,{},{},{},{},{}{}号,{:.6},{:.6},rtsp://10.{}.{}.{}:554/Streaming/Channels/101,admin,Bench-{},{},区域={};厂商={}\n",
            t.name,
            street,
            spot,
            i,
            district,
            cp,
            [1, 2, 3, 9][rng.below(4)],
            if social { "社会" } else { "公共" },
            street,
            rng.below(300),
            92.0 + rng.below(1_000_000) as f64 / 100_000.0,
            32.0 + rng.below(1_000_000) as f64 / 100_000.0,
            rng.below(256),
            rng.below(256),
            rng.below(254) + 1,
            rng.next() % 100_000,
            if rng.below(20) == 0 { "always" } else { "on_demand" },
            ["东", "西", "南", "北", "中"][rng.below(5)],
            ["hikvision", "dahua", "uniview", "tiandy"][rng.below(4)],
        ));
    }
    csv
}

struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn fresh_db(backend: &str, admin: Option<&str>, k: usize) -> Db {
    if backend == "sqlite" {
        let dir = tempfile::tempdir().unwrap();
        // CAMGATE_BENCH_KEEP_DIR keeps the SQLite database for inspection.
        let path = match std::env::var("CAMGATE_BENCH_KEEP_DIR") {
            Ok(d) => {
                let p = Path::new(&d).join(format!("bench{k}.db"));
                let _ = std::fs::remove_file(&p);
                p
            }
            Err(_) => dir.path().join("bench.db"),
        };
        let url = format!("sqlite://{}", path.display());
        Db {
            url,
            _dir: Some(dir),
        }
    } else {
        use sqlx::Connection;
        let admin = admin.unwrap();
        let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
        let name = format!("camgate_bench_{k}");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut u = url::Url::parse(admin).unwrap();
        u.set_path(&format!("/{name}"));
        Db {
            url: u.to_string(),
            _dir: None,
        }
    }
}

async fn prepare(db: &Db, districts: &[District]) -> (Arc<dyn Store>, Vec<(String, String)>) {
    let store = store::open(&db.url, &Default::default()).await.unwrap();
    store.upsert_districts(districts, &|_| {}).await.unwrap();
    // 320 checkpoints in the busiest townships.
    let towns: Vec<&District> = districts
        .iter()
        .filter(|d| d.level == 4 && d.code.starts_with("62"))
        .collect();
    let lk = camgate::importer::lookups(
        &*store,
        towns.iter().take(80).map(|t| t.code.clone()),
        [],
        0,
    )
    .await
    .unwrap();
    let mut cps = Vec::new();
    for i in 0..320 {
        let t = towns[i % 80];
        let input = camgate::catalogue::CheckpointInput {
            name: Some(format!("{}卡口{i}", t.name)),
            district: Some(t.code.clone()),
            kind: Some("03".into()),
            ..Default::default()
        };
        let w = camgate::catalogue::validate::checkpoint(&input, None, &lk).unwrap();
        cps.push((store.create_checkpoint(&w).await.unwrap(), t.code.clone()));
    }
    (store, cps)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn timed_get(router: &axum::Router, uri: &str) -> Duration {
    let start = Instant::now();
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{uri}: {}", resp.status());
    let _ = resp.into_body().collect().await.unwrap();
    start.elapsed()
}

async fn run(backend: &str, admin: Option<&str>, districts: &[District], n: usize) {
    println!("\n== {backend}: {n} cameras, {} districts", districts.len());
    // Import: median of 3 fresh databases.
    let mut import_times = Vec::new();
    let mut last = None;
    for k in 0..3 {
        let db = fresh_db(backend, admin, k).await;
        let (store, cps) = prepare(&db, districts).await;
        let csv = camera_csv(districts, n, &cps);
        let start = Instant::now();
        let report =
            camgate::importer::import_csv(&*store, csv.as_bytes(), false, 0, None, &|_, _, _| {})
                .await
                .unwrap();
        let t = start.elapsed();
        assert!(
            report.errors.is_empty(),
            "{:?}",
            &report.errors[..report.errors.len().min(3)]
        );
        assert_eq!(report.created as usize, n);
        println!(
            "import run {}: {:.2} s ({} bytes of CSV)",
            k + 1,
            t.as_secs_f64(),
            csv.len()
        );
        import_times.push(t);
        last = Some((db, store));
    }
    import_times.sort();
    let (db, store) = last.unwrap();
    let mut config = Config::default();
    config.database.url = db.url.clone();
    // No camera is pulled here: the manager only answers the lists' state
    // and online counts (all `unknown` until the state filter's part below
    // gives them states).
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let pulls = camgate::pull::PullManager::new(
        Arc::new(camgate::pull::rtsp::RtspSource::default()),
        config.pull.options(),
        tokio_util::sync::CancellationToken::new(),
        events,
    );
    // The bench sends far more than a key's 50 requests a second: the
    // limiter still runs on every request, with a rate it never reaches.
    config.security.api_rate_per_sec = 1_000_000;
    config.security.api_burst = 1_000_000;
    let state = AppState::build(
        store.clone(),
        Arc::new(config),
        pulls.clone(),
        Default::default(),
        Default::default(),
        store.credential_cipher(),
    )
    .await
    .unwrap();
    let auth = state.auth.clone();
    // Every request carries an API key, as a platform's would: its lookup
    // is part of each figure.
    let key = auth
        .create_key("bench", camgate::auth::Role::Viewer, None, None, "bench")
        .await
        .unwrap()
        .secret;
    let bearer = axum::http::HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    let router = api::router(state).layer(axum::middleware::map_request(
        move |mut req: axum::extract::Request| {
            let bearer = bearer.clone();
            async move {
                req.headers_mut()
                    .insert(axum::http::header::AUTHORIZATION, bearer);
                req
            }
        },
    ));

    // Query mix for lists and searches: realistic operator requests.
    let towns: Vec<&District> = districts
        .iter()
        .filter(|d| d.level == 4 && d.code.starts_with("62"))
        .collect();
    let counties: Vec<&District> = districts
        .iter()
        .filter(|d| d.level == 3 && d.code.starts_with("62"))
        .collect();
    let mut rng = Rng(7);
    let mut list_queries = Vec::new();
    for _ in 0..400 {
        let q = match rng.below(11) {
            10 => format!("/api/v1/cameras?q={}", urlenc("路")), // one character: matches most cameras
            0 => format!("/api/v1/cameras?district={}", counties[rng.below(8)].code),
            1 => format!(
                "/api/v1/cameras?district={}&point_type=1",
                counties[rng.below(counties.len())].code
            ),
            2 => format!(
                "/api/v1/cameras?district={}&enabled=true",
                towns[rng.below(towns.len())].code
            ),
            3 => format!(
                "/api/v1/cameras?q={}",
                urlenc(STREETS[rng.below(STREETS.len())])
            ),
            4 => format!(
                "/api/v1/cameras?q={}&district=62",
                urlenc(&format!("{}号", rng.below(30_000)))
            ),
            5 => format!("/api/v1/cameras?q=6206{:02}", rng.below(30)),
            6 => format!("/api/v1/cameras?tag={}", urlenc("厂商:dahua")),
            7 => format!(
                "/api/v1/cameras?district=6201&ownership=social&tag={}",
                urlenc("区域:东")
            ),
            8 => format!("/api/v1/cameras?q={}", urlenc("不存在的名字")),
            _ => "/api/v1/cameras?limit=100".to_string(),
        };
        list_queries.push(q);
    }
    let mut times = Vec::new();
    for _round in 0..3 {
        for q in &list_queries {
            times.push(timed_get(&router, q).await);
        }
    }
    times.sort();
    println!(
        "list/search ({} requests, 100 per page): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&times, 1.0)
    );
    // Per-kind p99, to see what bounds it.
    let mut kinds: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for q in &list_queries {
        let kind = q
            .split('?')
            .nth(1)
            .unwrap_or("")
            .split('&')
            .map(|p| p.split('=').next().unwrap())
            .collect::<Vec<_>>()
            .join("+");
        let t = timed_get(&router, q).await;
        kinds.entry(kind).or_default().push(t);
    }
    for (k, mut v) in kinds {
        v.sort();
        println!(
            "  {k:<28} n={:<4} p50 {:.2} ms  p99 {:.2} ms",
            v.len(),
            pct(&v, 0.5),
            pct(&v, 0.99)
        );
    }
    // The state filter (the web UI's). States live in memory: the manager
    // holds every camera (on demand, so nothing is pulled) and the bench
    // gives them a healthy network's states, by index: 4 % offline, 1 %
    // degraded, the rest online. A minority state is looked up in memory
    // and read from the store by ID; a majority state reads the catalogue
    // in batches and fills its page at once; `unknown` (now none) reads the
    // whole catalogue in batches: the worst case.
    let mut after: Option<String> = None;
    let mut held = 0usize;
    loop {
        let page = store
            .list_cameras(&Default::default(), after.as_deref(), 1000)
            .await
            .unwrap();
        for c in &page {
            let mut cfg = camgate::pull::PullConfig::from_camera(c);
            cfg.pull_mode = camgate::catalogue::PullMode::OnDemand;
            pulls.upsert(cfg);
            let rt = pulls.runtime(&c.id).unwrap();
            let (s, reason) = match held % 100 {
                0..=3 => (
                    camgate::health::State::Offline,
                    Some(camgate::health::Reason::Unreachable),
                ),
                4 => (camgate::health::State::Degraded, None),
                _ => (camgate::health::State::Online, None),
            };
            rt.set_state(s, reason);
            held += 1;
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    assert_eq!(held, n);
    let small = counties[counties.len() / 2].code.clone();
    for (label, q) in [
        (
            "state=offline (4 %)",
            "/api/v1/cameras?state=offline&limit=50".to_string(),
        ),
        (
            "state=offline, county",
            format!(
                "/api/v1/cameras?state=offline&district={}&limit=50",
                counties[0].code
            ),
        ),
        (
            "state=degraded, small county",
            format!("/api/v1/cameras?state=degraded&district={small}&limit=50"),
        ),
        (
            "state=online, county (95 %)",
            format!(
                "/api/v1/cameras?state=online&district={}&limit=50",
                counties[0].code
            ),
        ),
        (
            "state=unknown (whole scan)",
            "/api/v1/cameras?state=unknown&limit=50".to_string(),
        ),
    ] {
        let mut v = Vec::new();
        for _ in 0..50 {
            v.push(timed_get(&router, &q).await);
        }
        v.sort();
        println!(
            "  {label:<28} n={:<4} p50 {:.2} ms  p99 {:.2} ms",
            v.len(),
            pct(&v, 0.5),
            pct(&v, 0.99)
        );
    }

    // District children with subtree counts.
    let mut child_queries = vec![
        "/api/v1/districts".to_string(),
        "/api/v1/districts?parent=62".to_string(),
    ];
    for c in districts
        .iter()
        .filter(|d| d.level == 2 && d.code.starts_with("62"))
    {
        child_queries.push(format!("/api/v1/districts?parent={}", c.code));
    }
    for c in counties.iter().take(20) {
        child_queries.push(format!("/api/v1/districts?parent={}", c.code));
    }
    let mut times = Vec::new();
    for _round in 0..10 {
        for q in &child_queries {
            times.push(timed_get(&router, q).await);
        }
    }
    times.sort();
    println!(
        "district children with subtree counts ({} requests): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&times, 1.0)
    );
    println!(
        "SUMMARY {backend}: import {:.2} s (median of 3; target 10 s) | list/search p99 see above (target 20 ms) | children p99 see above (target 50 ms)",
        import_times[1].as_secs_f64()
    );
    store.close().await;
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("catalogue bench: run with `cargo bench --bench catalogue`");
        return;
    }
    let n: usize = std::env::var("CAMGATE_BENCH_CAMERAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let districts = builtin_districts().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        run("sqlite", None, &districts, n).await;
        match std::env::var("CAMGATE_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => run("postgres", Some(&admin), &districts, n).await,
            _ => println!("\n== postgres: SKIPPED (set CAMGATE_TEST_POSTGRES_URL=postgres://... to include it)"),
        }
    });
}
