//! The PostgreSQL backend, for a catalogue shared by several gateway nodes.
//! ID generation takes a transaction-scoped advisory lock, so two nodes
//! creating cameras at once never pick the same serial.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreOptions;

/// `AND <col> contains <needle>`, as `LIKE '%needle%'`: PostgreSQL
/// estimates a LIKE pattern's selectivity, so for a rare needle it scans the
/// table and sorts the few matches, where `strpos() > 0` (a flat one-third
/// estimate) made it walk the whole primary key in ID order.
fn push_contains(qb: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, col: &str, needle: &str) {
    qb.push(format!(" AND {col} LIKE "))
        .push_bind(super::like_pattern(needle))
        .push(" ESCAPE '\\'");
}

/// The PostgreSQL store.
pub struct PgStore {
    pub(crate) pool: sqlx::PgPool,
    pub(crate) cipher: Option<std::sync::Arc<crate::auth::cipher::CredentialCipher>>,
}

impl PgStore {
    pub async fn connect(url: &str, opts: &StoreOptions) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("camgate");
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            // An unreachable database answers within seconds, not after a
            // long wait: the API then says 503 (see `watch_database`).
            .acquire_timeout(std::time::Duration::from_secs(2))
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    use sqlx::TransactionManager as _;
                    Ok(<sqlx::Postgres as sqlx::Database>::TransactionManager::get_transaction_depth(conn) == 0)
                })
            })
            .connect_with(options)
            .await?;
        Ok(PgStore {
            pool,
            cipher: opts.cipher.clone(),
        })
    }
}

super::sql::impl_store!(
    PgStore,
    sqlx::Postgres,
    backend = "postgres",
    begin = "BEGIN",
    lock = "SELECT pg_advisory_xact_lock(2260281810)",
    like = "ILIKE",
    // After a bulk load: statistics for the planner, and the visibility map
    // set so scans need not check every new tuple's transaction status.
    after_bulk = [
        "VACUUM (ANALYZE) cameras",
        "VACUUM (ANALYZE) camera_tags",
        "VACUUM (ANALYZE) camera_search"
    ],
    push_ids = push_ids,
    migrations = super::migrate::POSTGRES
);

/// `AND col IN (SELECT unnest($n))`: one array parameter, however many
/// IDs. Written as a subquery rather than `= ANY($n)` so that the planner
/// looks the IDs up by primary key: with `= ANY` of a parameter beside a
/// district range it scanned the district's cameras and compared each with
/// every ID in the array (46 ms for a county of the bench, against 5 ms).
fn push_ids(qb: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, col: &str, ids: &[String]) {
    qb.push(format!(" AND {col} IN (SELECT unnest("))
        .push_bind(ids.to_vec())
        .push("::text[]))");
}

mod access_impl {
    use super::*;
    use crate::store::StoreError;
    crate::store::access::impl_access_store!(PgStore, sqlx::Postgres, begin = "BEGIN");
}
