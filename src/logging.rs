//! Logging: `tracing` to stderr as text or JSON. `RUST_LOG` overrides the
//! configured filter; crates that log through `log` (sqlx) are bridged.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call is a no-op.
pub fn init(level: &str, format: &str) {
    // A RUST_LOG that does not parse is said out loud, not ignored.
    let mut bad_env = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => f,
            Err(e) => {
                bad_env = Some((v, e.to_string()));
                EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
            }
        },
        _ => EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // A log line that cannot be written (the disk under a redirected
    // stderr is full) is lost, never a panic: tracing's own report of it
    // would go through `eprintln!`, which panics on a failed write, inside
    // whatever lock the logging code held.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Some((value, error)) = bad_env {
        let clipped: String = value.chars().take(80).collect();
        eprintln!(
            "camgate: warning: RUST_LOG={clipped:?} is not a valid log filter ({error}); \
             logging with log.level {level:?} instead"
        );
        tracing::warn!(rust_log = %clipped, %error, "RUST_LOG is not a valid log filter; using log.level");
    }
}
