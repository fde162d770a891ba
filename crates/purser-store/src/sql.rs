//! The committer's statements, generated once per backend from column lists.
//!
//! Every statement takes its rows as one JSON array parameter (`$1`), so a batch of
//! any size costs the same number of round trips and every statement's text is
//! fixed (and so prepared once per connection). The two engines read that JSON
//! differently — SQLite with `json_each` / `json_extract`, PostgreSQL with
//! `json_to_recordset` — which, with PostgreSQL's row locks, is all that differs.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::Backend;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Text,
    Int,
}

pub(crate) type Columns = &'static [(&'static str, Ty)];

/// A table the committer writes: its name, columns and key.
pub(crate) struct TableSpec {
    pub(crate) name: &'static str,
    pub(crate) columns: Columns,
    pub(crate) key: &'static [&'static str],
}

use Ty::{Int, Text};

const WALLETS: TableSpec = TableSpec {
    name: "wallets",
    columns: &[
        ("id", Text),
        ("name", Text),
        ("currency", Text),
        ("address", Text),
        ("owner_token_hash", Text),
        ("sealed_key", Text),
        ("created_at_ms", Int),
    ],
    key: &["id"],
};
const ACCOUNTS: TableSpec = TableSpec {
    name: "accounts",
    columns: &[
        ("id", Text),
        ("wallet_id", Text),
        ("kind", Text),
        ("currency", Text),
        ("balance", Int),
    ],
    key: &["id"],
};
const TRANSFERS: TableSpec = TableSpec {
    name: "transfers",
    columns: &[
        ("id", Text),
        ("from_account", Text),
        ("to_account", Text),
        ("amount", Int),
        ("currency", Text),
        ("kind", Text),
        ("memo", Text),
        ("created_at_ms", Int),
    ],
    key: &["id"],
};
const AGENTS: TableSpec = TableSpec {
    name: "agents",
    columns: &[
        ("id", Text),
        ("wallet_id", Text),
        ("name", Text),
        ("status", Text),
        ("credential_hash", Text),
        ("created_at_ms", Int),
        ("revoked_at_ms", Int),
    ],
    key: &["id"],
};
const KEYS: TableSpec = TableSpec {
    name: "idempotency",
    columns: &[
        ("scope", Text),
        ("key", Text),
        ("fingerprint", Text),
        ("outcome", Text),
        ("created_at_ms", Int),
    ],
    key: &["scope", "key"],
};
const AUDIT: TableSpec = TableSpec {
    name: "audit_log",
    columns: &[
        ("seq", Int),
        ("at_ms", Int),
        ("actor", Text),
        ("action", Text),
        ("wallet_id", Text),
        ("subject", Text),
        ("details", Text),
        ("prev_hash", Text),
        ("hash", Text),
    ],
    key: &["seq"],
};
pub(crate) const MANDATES: TableSpec = TableSpec {
    name: "mandates",
    columns: &[
        ("id", Text),
        ("wallet_id", Text),
        ("agent_id", Text),
        ("description", Text),
        ("category", Text),
        ("currency", Text),
        ("limit_amount", Int),
        ("max_amount_per_tx", Int),
        ("host_allowlist", Text),
        ("valid_from_ms", Int),
        ("valid_until_ms", Int),
        ("nonce", Text),
        ("status", Text),
        ("spent_amount", Int),
        ("pending_amount", Int),
        ("mandate_hash", Text),
        ("signature", Text),
        ("signer", Text),
        ("signed_at_ms", Int),
        ("created_at_ms", Int),
        ("updated_at_ms", Int),
        ("version", Int),
    ],
    key: &["id"],
};
pub(crate) const RESERVATIONS: TableSpec = TableSpec {
    name: "reservations",
    columns: &[
        ("id", Text),
        ("wallet_id", Text),
        ("agent_id", Text),
        ("mandate_id", Text),
        ("approval_id", Text),
        ("amount", Int),
        ("payee_host", Text),
        ("payee_address", Text),
        ("purpose", Text),
        ("kind", Text),
        ("status", Text),
        ("settlement", Text),
        ("release_reason", Text),
        ("created_at_ms", Int),
        ("updated_at_ms", Int),
        ("version", Int),
    ],
    key: &["id"],
};
pub(crate) const APPROVALS: TableSpec = TableSpec {
    name: "approvals",
    columns: &[
        ("id", Text),
        ("wallet_id", Text),
        ("agent_id", Text),
        ("amount", Int),
        ("payee_host", Text),
        ("payee_address", Text),
        ("purpose", Text),
        ("kind", Text),
        ("status", Text),
        ("created_at_ms", Int),
        ("expires_at_ms", Int),
        ("decided_at_ms", Int),
        ("version", Int),
    ],
    key: &["id"],
};
pub(crate) const POLICIES: TableSpec = TableSpec {
    name: "policies",
    columns: &[("wallet_id", Text), ("policy", Text), ("version", Int)],
    key: &["wallet_id"],
};
pub(crate) const MONTHS: TableSpec = TableSpec {
    name: "agent_months",
    columns: &[
        ("agent_id", Text),
        ("month", Text),
        ("spent", Int),
        ("pending", Int),
        ("version", Int),
    ],
    key: &["agent_id", "month"],
};
pub(crate) const PAYOUTS: TableSpec = TableSpec {
    name: "payouts",
    columns: &[
        ("wallet_id", Text),
        ("id", Text),
        ("agent_id", Text),
        ("to_address", Text),
        ("amount", Int),
        ("mandate_id", Text),
        ("rail", Text),
        ("status", Text),
        ("reservation_id", Text),
        ("approval_id", Text),
        ("settlement", Text),
        ("failure_reason", Text),
        ("created_at_ms", Int),
        ("updated_at_ms", Int),
        ("version", Int),
    ],
    key: &["wallet_id", "id"],
};

fn names(columns: &[(&'static str, Ty)]) -> Vec<&'static str> {
    columns.iter().map(|(c, _)| *c).collect()
}

/// The rows of the JSON array in `$1`, as a derived table with typed columns.
fn json_rows(backend: Backend, columns: &[(&'static str, Ty)]) -> String {
    match backend {
        Backend::Sqlite => {
            let fields: Vec<String> = columns
                .iter()
                .map(|(c, _)| format!("json_extract(value, '$.{c}') AS {c}"))
                .collect();
            format!("SELECT {} FROM json_each($1)", fields.join(", "))
        }
        Backend::Postgres => {
            let fields: Vec<String> = columns
                .iter()
                .map(|(c, t)| format!("{c} {}", if *t == Int { "bigint" } else { "text" }))
                .collect();
            format!(
                "SELECT * FROM json_to_recordset($1::json) AS v({})",
                fields.join(", ")
            )
        }
    }
}

/// The strings of the JSON array in `$1`.
fn json_list(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT value FROM json_each($1)",
        Backend::Postgres => "SELECT json_array_elements_text($1::json)",
    }
}

/// Inserts the rows; with `counted`, a row whose key exists is skipped, so the
/// caller can count and retry on a race.
fn insert(backend: Backend, table: &TableSpec, counted: bool) -> String {
    let names = names(table.columns).join(", ");
    // `WHERE true` lets SQLite parse an upsert after INSERT … SELECT.
    let conflict = if counted {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    format!(
        "INSERT INTO {} ({names}) SELECT {names} FROM ({}) AS v WHERE true{conflict}",
        table.name,
        json_rows(backend, table.columns)
    )
}

/// Updates every column of rows still at the version they were loaded at.
fn update_versioned(backend: Backend, table: &TableSpec) -> String {
    let t = table.name;
    let sets: Vec<String> = names(table.columns)
        .into_iter()
        .filter(|c| !table.key.contains(c) && *c != "version")
        .map(|c| format!("{c} = v.{c}"))
        .collect();
    let keys: Vec<String> = table
        .key
        .iter()
        .map(|k| format!("{t}.{k} = v.{k}"))
        .collect();
    format!(
        "UPDATE {t} SET {}, version = {t}.version + 1 FROM ({}) AS v WHERE {} AND {t}.version = v.version",
        sets.join(", "),
        json_rows(backend, table.columns),
        keys.join(" AND ")
    )
}

/// Loads rows whose single-column key is in the JSON list `$1`, locked on PostgreSQL.
fn load_by_id(backend: Backend, table: &TableSpec, lock: &str) -> String {
    let key = table.key.first().copied().unwrap_or("id");
    format!(
        "SELECT {} FROM {} WHERE {key} IN ({}) ORDER BY {key}{lock}",
        names(table.columns).join(", "),
        table.name,
        json_list(backend)
    )
}

/// Loads rows whose composite key is in the JSON rows `$1`, locked on PostgreSQL.
fn load_by_keys(backend: Backend, table: &TableSpec, lock_of_t: &str) -> String {
    let key_columns: Vec<(&'static str, Ty)> = table.key.iter().map(|k| (*k, Text)).collect();
    let select: Vec<String> = names(table.columns)
        .into_iter()
        .map(|c| format!("t.{c}"))
        .collect();
    let on: Vec<String> = table.key.iter().map(|k| format!("t.{k} = k.{k}")).collect();
    let order: Vec<String> = table.key.iter().map(|k| format!("t.{k}")).collect();
    format!(
        "SELECT {} FROM {} t JOIN ({}) AS k ON {} ORDER BY {}{lock_of_t}",
        select.join(", "),
        table.name,
        json_rows(backend, &key_columns),
        on.join(" AND "),
        order.join(", ")
    )
}

fn statement(text: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(text)).into_sql_str()
}

/// An insert and a guarded update for one versioned table.
pub(crate) struct Versioned {
    pub(crate) insert: SqlStr,
    pub(crate) update: SqlStr,
}

impl Versioned {
    fn new(backend: Backend, table: &TableSpec) -> Versioned {
        Versioned {
            insert: statement(insert(backend, table, true)),
            update: statement(update_versioned(backend, table)),
        }
    }
}

/// Every statement the committer runs.
pub(crate) struct Statements {
    pub(crate) load_accounts: SqlStr,
    pub(crate) load_wallets: SqlStr,
    pub(crate) load_agents: SqlStr,
    pub(crate) load_keys: SqlStr,
    pub(crate) load_mandates: SqlStr,
    pub(crate) load_agent_mandates: SqlStr,
    pub(crate) load_reservations: SqlStr,
    pub(crate) load_approvals: SqlStr,
    pub(crate) load_policies: SqlStr,
    pub(crate) load_months: SqlStr,
    pub(crate) load_payouts: SqlStr,
    pub(crate) insert_wallets: SqlStr,
    pub(crate) insert_accounts: SqlStr,
    pub(crate) update_balances: SqlStr,
    pub(crate) insert_transfers: SqlStr,
    pub(crate) insert_agents: SqlStr,
    pub(crate) revoke_agents: SqlStr,
    pub(crate) insert_keys: SqlStr,
    pub(crate) insert_audit: SqlStr,
    pub(crate) mandates: Versioned,
    pub(crate) reservations: Versioned,
    pub(crate) approvals: Versioned,
    pub(crate) policies: Versioned,
    pub(crate) months: Versioned,
    pub(crate) payouts: Versioned,
}

impl Statements {
    pub(crate) fn new(backend: Backend) -> Statements {
        // PostgreSQL locks the rows a batch will change, in key order, table by table
        // in one fixed order, so two batches never wait on each other in a cycle.
        // SQLite's single writer already excludes everyone else.
        let (lock, lock_t) = match backend {
            Backend::Sqlite => ("", ""),
            Backend::Postgres => (" FOR UPDATE", " FOR UPDATE OF t"),
        };
        let list = json_list(backend);
        let mandate_columns = names(MANDATES.columns).join(", ");
        Statements {
            load_accounts: statement(format!("SELECT id, balance FROM accounts WHERE id IN ({list}) ORDER BY id{lock}")),
            load_wallets: statement(format!("SELECT id FROM wallets WHERE id IN ({list})")),
            load_agents: statement(format!(
                "SELECT id, wallet_id, name, status, created_at_ms, revoked_at_ms FROM agents
                 WHERE id IN ({list}) ORDER BY id{lock}"
            )),
            load_keys: statement(format!(
                "SELECT i.scope, i.key, i.fingerprint, i.outcome FROM idempotency i
                 JOIN ({}) AS k ON i.scope = k.scope AND i.key = k.key",
                json_rows(backend, &[("scope", Text), ("key", Text)])
            )),
            load_mandates: statement(load_by_id(backend, &MANDATES, lock)),
            load_agent_mandates: statement(format!(
                "SELECT {mandate_columns} FROM mandates WHERE agent_id IN ({list})
                 AND status = 'signed' AND valid_until_ms > $2 ORDER BY id{lock}"
            )),
            load_reservations: statement(load_by_id(backend, &RESERVATIONS, lock)),
            load_approvals: statement(load_by_id(backend, &APPROVALS, lock)),
            load_policies: statement(load_by_id(backend, &POLICIES, lock)),
            load_months: statement(load_by_keys(backend, &MONTHS, lock_t)),
            load_payouts: statement(load_by_keys(backend, &PAYOUTS, lock_t)),
            insert_wallets: statement(insert(backend, &WALLETS, false)),
            insert_accounts: statement(insert(backend, &ACCOUNTS, false)),
            update_balances: statement(format!(
                "UPDATE accounts SET balance = v.balance_after FROM ({}) AS v
                 WHERE accounts.id = v.id AND accounts.balance = v.balance_before",
                json_rows(backend, &[("id", Text), ("balance_before", Int), ("balance_after", Int)])
            )),
            insert_transfers: statement(insert(backend, &TRANSFERS, false)),
            insert_agents: statement(insert(backend, &AGENTS, false)),
            revoke_agents: statement(format!(
                "UPDATE agents SET status = 'revoked', revoked_at_ms = v.revoked_at_ms FROM ({}) AS v
                 WHERE agents.id = v.id AND agents.status = 'active'",
                json_rows(backend, &[("id", Text), ("revoked_at_ms", Int)])
            )),
            insert_keys: statement(insert(backend, &KEYS, true)),
            insert_audit: statement(insert(backend, &AUDIT, false)),
            mandates: Versioned::new(backend, &MANDATES),
            reservations: Versioned::new(backend, &RESERVATIONS),
            approvals: Versioned::new(backend, &APPROVALS),
            policies: Versioned::new(backend, &POLICIES),
            months: Versioned::new(backend, &MONTHS),
            payouts: Versioned::new(backend, &PAYOUTS),
        }
    }
}
