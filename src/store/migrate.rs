//! Schema migrations: numbered SQL files per backend, embedded in the binary
//! and recorded in `camgate_migrations` once applied. Each runs in its own
//! transaction; a failed one leaves the schema as it was.

/// A migration: version, name, SQL.
pub type Migration = (i64, &'static str, &'static str);

pub const SQLITE: &[Migration] = &[
    (
        1,
        "catalogue",
        include_str!("migrations/sqlite/0001_catalogue.sql"),
    ),
    (
        2,
        "health",
        include_str!("migrations/sqlite/0002_health.sql"),
    ),
    (
        3,
        "access",
        include_str!("migrations/sqlite/0003_access.sql"),
    ),
    (
        4,
        "digest",
        include_str!("migrations/sqlite/0004_digest.sql"),
    ),
    (5, "walls", include_str!("migrations/sqlite/0005_walls.sql")),
];

pub const POSTGRES: &[Migration] = &[
    (
        1,
        "catalogue",
        include_str!("migrations/postgres/0001_catalogue.sql"),
    ),
    (
        2,
        "health",
        include_str!("migrations/postgres/0002_health.sql"),
    ),
    (
        3,
        "access",
        include_str!("migrations/postgres/0003_access.sql"),
    ),
    (
        4,
        "digest",
        include_str!("migrations/postgres/0004_digest.sql"),
    ),
    (
        5,
        "walls",
        include_str!("migrations/postgres/0005_walls.sql"),
    ),
];
