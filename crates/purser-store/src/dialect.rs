//! Where SQLite and PostgreSQL differ. Everything else is shared SQL.

use std::fmt;

use crate::StoreError;

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// One SQLite file in WAL mode with `synchronous=FULL`.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Set on every SQLite connection. `synchronous=FULL` makes each commit fsync the
/// WAL: with `NORMAL`, a power cut can lose transactions that were acknowledged.
/// The committer's own connection alone switches to `NORMAL`, because its syncer
/// thread flushes the WAL before any answer leaves (`wal_sync`).
/// `temp_store = MEMORY` keeps statement journals (written for every multi-row
/// insert, which may need undoing on its own) out of temporary files: they only
/// matter while the statement runs, so a disk copy buys nothing.
pub(crate) const SQLITE_CONNECTION_PRAGMAS: &str = "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
    PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY;";

/// Turns what the user typed into a backend and a URL sqlx accepts. A bare path
/// means a SQLite file, created if missing.
pub fn normalize_url(input: &str) -> Result<(Backend, String), StoreError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(StoreError::Config("the database URL is empty".into()));
    }
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        return Ok((Backend::Postgres, input.to_owned()));
    }
    if let Some(rest) = input.strip_prefix("sqlite:") {
        let url = if rest.contains("mode=") {
            input.to_owned()
        } else if rest.contains('?') {
            format!("{input}&mode=rwc")
        } else {
            format!("{input}?mode=rwc")
        };
        return Ok((Backend::Sqlite, url));
    }
    if input.contains("://") {
        return Err(StoreError::Config(format!(
            "unsupported database URL scheme in {:?}: use a file path, sqlite://… or postgres://…",
            input.split("://").next().unwrap_or_default()
        )));
    }
    let escaped = input
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    Ok((Backend::Sqlite, format!("sqlite://{escaped}?mode=rwc")))
}

impl Backend {
    /// How a write transaction begins. SQLite's `IMMEDIATE` takes the write lock up
    /// front, so two writers queue on the busy timeout instead of failing when a
    /// read lock cannot be upgraded.
    pub(crate) const fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Reads the audit chain's head and locks it until commit. SQLite's write lock
    /// already serializes writers; PostgreSQL needs the row lock.
    pub(crate) const fn lock_audit_head(self) -> &'static str {
        match self {
            Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
            Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        }
    }

    /// True when a database error means "try the whole transaction again":
    /// SQLite busy/locked, PostgreSQL serialization failure or deadlock.
    pub(crate) fn is_retryable(self, error: &sqlx::Error) -> bool {
        let Some(db) = error.as_database_error() else {
            return matches!(error, sqlx::Error::PoolTimedOut);
        };
        let code = db.code().unwrap_or_default();
        match self {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            Backend::Sqlite => code
                .parse::<i64>()
                .map(|c| matches!(c & 0xff, 5 | 6))
                .unwrap_or(false),
            Backend::Postgres => matches!(&*code, "40001" | "40P01"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_user_input() {
        assert_eq!(
            normalize_url("./data/purser.db").unwrap(),
            (Backend::Sqlite, "sqlite://./data/purser.db?mode=rwc".into())
        );
        assert_eq!(
            normalize_url("/tmp/a?b#c%d.db").unwrap(),
            (
                Backend::Sqlite,
                "sqlite:///tmp/a%3Fb%23c%25d.db?mode=rwc".into()
            )
        );
        assert_eq!(
            normalize_url("sqlite://x.db").unwrap().1,
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            normalize_url("sqlite://x.db?mode=ro").unwrap().1,
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            normalize_url("postgres://u@h/db").unwrap().0,
            Backend::Postgres
        );
        assert!(normalize_url("mysql://u@h/db").is_err());
        assert!(normalize_url("  ").is_err());
    }
}
