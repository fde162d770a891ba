//! Schema migrations, embedded in the binary and applied on open.
//!
//! Each migration runs once, in order, inside one transaction together with its
//! bookkeeping row, so a crash leaves either all of it or none. The checksum of an
//! applied migration is compared on every start: an edited migration is an error,
//! not a silent divergence between databases.

use purser_types::Hash32;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Executor, Row};

use crate::{Backend, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "mandates",
        sqlite: include_str!("../migrations/common/0002_mandates.sql"),
        postgres: include_str!("../migrations/common/0002_mandates.sql"),
    },
    Migration {
        version: 3,
        name: "x402",
        sqlite: include_str!("../migrations/common/0003_x402.sql"),
        postgres: include_str!("../migrations/common/0003_x402.sql"),
    },
    Migration {
        version: 4,
        name: "chain_payouts",
        sqlite: include_str!("../migrations/common/0004_chain_payouts.sql"),
        postgres: include_str!("../migrations/common/0004_chain_payouts.sql"),
    },
    Migration {
        version: 5,
        name: "payment_links",
        sqlite: include_str!("../migrations/common/0005_payment_links.sql"),
        postgres: include_str!("../migrations/common/0005_payment_links.sql"),
    },
    Migration {
        version: 6,
        name: "dashboard",
        sqlite: include_str!("../migrations/common/0006_dashboard.sql"),
        postgres: include_str!("../migrations/common/0006_dashboard.sql"),
    },
];

const CREATE_BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS purser_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL
)";

/// Two servers starting at once on one PostgreSQL database take turns here.
const PG_MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7406514100391737)";

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(backend.begin_write()).await?;
    if backend == Backend::Postgres {
        tx.execute(PG_MIGRATION_LOCK).await?;
    }
    tx.execute(CREATE_BOOKKEEPING).await?;
    for migration in MIGRATIONS {
        let sql = match backend {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        let checksum = Hash32(Sha256::digest(sql.as_bytes()).into()).to_string();
        let applied = sqlx::query("SELECT checksum FROM purser_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        match applied {
            Some(row) if row.try_get::<String, _>("checksum")? == checksum => continue,
            Some(_) => {
                return Err(StoreError::Config(format!(
                    "migration {} ({}) differs from the one applied to this database",
                    migration.version, migration.name
                )));
            }
            None => {}
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO purser_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(checksum)
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    tx.commit().await?;
    Ok(())
}
