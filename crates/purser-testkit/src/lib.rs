//! Throwaway databases for tests, on the real engines.
//!
//! SQLite: a file in a fresh temporary directory. PostgreSQL: a fresh schema on the
//! server named by `PURSER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), selected through the connection's
//! `search_path`, and dropped by [`TestDb::cleanup`]. A PostgreSQL server that
//! cannot be reached fails the test: `scripts/test.sh` starts one when the machine
//! has none, and nothing here skips.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use purser_store::{Backend, Store, StoreConfig};
use sqlx::any::install_default_drivers;
use sqlx::{AnyConnection, Connection, Executor};

/// The PostgreSQL server tests use.
pub fn postgres_base_url() -> String {
    std::env::var("PURSER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Random lowercase hex, for names that must not collide between test runs.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS randomness");
    hex::encode(buf)
}

/// One isolated database.
pub struct TestDb {
    /// The URL a store (or a `purser` process) opens.
    pub url: String,
    /// Which engine.
    pub backend: Backend,
    schema: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("purser.db");
        TestDb {
            url: path.display().to_string(),
            backend: Backend::Sqlite,
            schema: None,
            dir: Some(dir),
        }
    }

    /// A new schema on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        install_default_drivers();
        let base = postgres_base_url();
        let schema = format!("purser_test_{}", random_hex(8));
        let mut conn = AnyConnection::connect(&base).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {base} is required for the storage tests (run scripts/test.sh): {e}"
            )
        });
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await
            .expect("create schema");
        conn.close().await.ok();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
        TestDb {
            url,
            backend: Backend::Postgres,
            schema: Some(schema),
            dir: None,
        }
    }

    /// A database of the given backend.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// Opens a store on this database with the default configuration.
    pub async fn open(&self) -> Store {
        self.open_with(|_| {}).await
    }

    /// Opens a store after adjusting its configuration.
    pub async fn open_with(&self, adjust: impl FnOnce(&mut StoreConfig)) -> Store {
        let mut config = StoreConfig::new(self.url.clone());
        adjust(&mut config);
        Store::open(config).await.expect("open store")
    }

    /// The directory holding a SQLite database (for files placed beside it).
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_path_buf())
    }

    /// Drops the PostgreSQL schema; the SQLite directory goes when `self` drops.
    pub async fn cleanup(self) {
        if let Some(schema) = &self.schema
            && let Ok(mut conn) = AnyConnection::connect(&postgres_base_url()).await
        {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            conn.execute(sqlx::AssertSqlSafe(drop)).await.ok();
            conn.close().await.ok();
        }
    }
}

/// The repository's root (for `contracts/` and `e2e/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// anvil from `contracts/node_modules` (installed by `contracts/ci.sh`).
pub fn anvil_path() -> PathBuf {
    let anvil = repo_root().join("contracts/node_modules/.bin/anvil");
    assert!(
        anvil.exists(),
        "{} is missing: run contracts/ci.sh (scripts/test.sh does)",
        anvil.display()
    );
    anvil
}

/// A fresh anvil on a free port with TestUSDC ("USD Coin") deployed, and each
/// address funded with the amount given (atomic units).
pub async fn devnet(fund: &[(alloy_primitives::Address, u64)]) -> purser_chain::devnet::Devnet {
    let options = purser_chain::devnet::DevnetOptions {
        anvil: anvil_path(),
        port: 0,
        artifact: repo_root().join("contracts/out/TestUSDC.sol/TestUSDC.json"),
        token_name: "USD Coin".into(),
        fund: fund
            .iter()
            .map(|(a, v)| (*a, alloy_primitives::U256::from(*v)))
            .collect(),
    };
    purser_chain::devnet::Devnet::start(&options)
        .await
        .expect("start the devnet (anvil + TestUSDC)")
}
