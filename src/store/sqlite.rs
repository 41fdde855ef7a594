//! The SQLite backend: the embedded default. WAL journal so readers never
//! wait for the writer; writes take the lock up front (`BEGIN IMMEDIATE`) so
//! concurrent writers queue on the busy timeout instead of failing when a
//! read transaction tries to upgrade.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreOptions;

/// `AND <col> contains <needle>`: `instr` is a plain byte search, several
/// times faster than `LIKE '%..%'`, whose matcher SQLite runs per character.
fn push_contains(qb: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>, col: &str, needle: &str) {
    qb.push(format!(" AND instr({col}, "))
        .push_bind(needle.to_string())
        .push(") > 0");
}

/// The SQLite store.
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
    pub(crate) cipher: Option<std::sync::Arc<crate::auth::cipher::CredentialCipher>>,
}

impl SqliteStore {
    pub async fn connect(url: &str, opts: &StoreOptions) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let file = options.get_filename().to_path_buf();
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the database directory {}: {e}",
                        parent.display()
                    )
                })?;
        }
        // The database holds encrypted secrets and the audit trail: created
        // owner-only. SQLite gives its -wal and -shm files the database
        // file's permissions.
        if file.as_os_str() != ":memory:" && !file.as_os_str().is_empty() && !file.exists() {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .map_err(|e| {
                    anyhow::anyhow!("cannot create the database {}: {e}", file.display())
                })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            // A connection left inside a transaction (a COMMIT that failed
            // on a full disk, then a ROLLBACK that found nothing to roll
            // back) would refuse every later BEGIN: it is closed instead of
            // reused, so the store recovers by itself once space returns.
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    use sqlx::TransactionManager as _;
                    Ok(
                        <sqlx::Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(
                            conn,
                        ) == 0,
                    )
                })
            })
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            cipher: opts.cipher.clone(),
        })
    }
}

super::sql::impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    backend = "sqlite",
    begin = "BEGIN IMMEDIATE",
    lock = "SELECT 1",
    like = "LIKE",
    after_bulk = [
        "ANALYZE cameras",
        "ANALYZE camera_tags",
        "ANALYZE camera_search"
    ],
    push_ids = push_ids,
    migrations = super::migrate::SQLITE
);

/// `AND col IN (?, ?, ...)`: SQLite has no arrays; a parameter per ID (up
/// to 32,766 in a statement; callers send at most a thousand).
fn push_ids(qb: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>, col: &str, ids: &[String]) {
    qb.push(format!(" AND {col} IN ("));
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(id.clone());
    }
    qb.push(")");
}

mod access_impl {
    use super::*;
    use crate::store::StoreError;
    crate::store::access::impl_access_store!(SqliteStore, sqlx::Sqlite, begin = "BEGIN IMMEDIATE");
}
