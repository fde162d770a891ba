//! The committer's statements, generated once per backend from column lists.
//!
//! Every statement takes its rows as one JSON array parameter (`$1`), so a batch of
//! any size costs the same number of round trips and every statement's text is
//! fixed (and so prepared once per connection). The two engines read that JSON
//! differently — SQLite with `json_each` / `json_extract`, PostgreSQL with
//! `json_to_recordset` — which is all that differs here.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::Backend;

#[derive(Clone, Copy)]
enum Ty {
    Text,
    Int,
}

type Columns = &'static [(&'static str, Ty)];

const WALLETS: Columns = &[
    ("id", Ty::Text),
    ("name", Ty::Text),
    ("currency", Ty::Text),
    ("address", Ty::Text),
    ("owner_token_hash", Ty::Text),
    ("sealed_key", Ty::Text),
    ("created_at_ms", Ty::Int),
];
const ACCOUNTS: Columns = &[
    ("id", Ty::Text),
    ("wallet_id", Ty::Text),
    ("kind", Ty::Text),
    ("currency", Ty::Text),
    ("balance", Ty::Int),
];
const BALANCES: Columns = &[
    ("id", Ty::Text),
    ("balance_before", Ty::Int),
    ("balance_after", Ty::Int),
];
const TRANSFERS: Columns = &[
    ("id", Ty::Text),
    ("from_account", Ty::Text),
    ("to_account", Ty::Text),
    ("amount", Ty::Int),
    ("currency", Ty::Text),
    ("kind", Ty::Text),
    ("memo", Ty::Text),
    ("created_at_ms", Ty::Int),
];
const AGENTS: Columns = &[
    ("id", Ty::Text),
    ("wallet_id", Ty::Text),
    ("name", Ty::Text),
    ("status", Ty::Text),
    ("credential_hash", Ty::Text),
    ("created_at_ms", Ty::Int),
    ("revoked_at_ms", Ty::Int),
];
const REVOCATIONS: Columns = &[("id", Ty::Text), ("revoked_at_ms", Ty::Int)];
const KEY_SLOTS: Columns = &[("scope", Ty::Text), ("key", Ty::Text)];
const KEYS: Columns = &[
    ("scope", Ty::Text),
    ("key", Ty::Text),
    ("fingerprint", Ty::Text),
    ("outcome", Ty::Text),
    ("created_at_ms", Ty::Int),
];
const AUDIT: Columns = &[
    ("seq", Ty::Int),
    ("at_ms", Ty::Int),
    ("actor", Ty::Text),
    ("action", Ty::Text),
    ("wallet_id", Ty::Text),
    ("subject", Ty::Text),
    ("details", Ty::Text),
    ("prev_hash", Ty::Text),
    ("hash", Ty::Text),
];

/// The rows of the JSON array in `$1`, as a derived table with typed columns.
fn json_rows(backend: Backend, columns: Columns) -> String {
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
                .map(|(c, t)| {
                    format!(
                        "{c} {}",
                        if matches!(t, Ty::Int) {
                            "bigint"
                        } else {
                            "text"
                        }
                    )
                })
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

fn insert(backend: Backend, table: &str, columns: Columns, on_conflict: &str) -> String {
    let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
    let names = names.join(", ");
    // `WHERE true` lets SQLite parse an upsert after INSERT … SELECT.
    format!(
        "INSERT INTO {table} ({names}) SELECT {names} FROM ({}) AS v WHERE true{on_conflict}",
        json_rows(backend, columns)
    )
}

fn statement(text: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(text)).into_sql_str()
}

/// Every statement the committer runs.
pub(crate) struct Statements {
    pub(crate) load_accounts: SqlStr,
    pub(crate) load_wallets: SqlStr,
    pub(crate) load_agents: SqlStr,
    pub(crate) load_keys: SqlStr,
    pub(crate) insert_wallets: SqlStr,
    pub(crate) insert_accounts: SqlStr,
    pub(crate) update_balances: SqlStr,
    pub(crate) insert_transfers: SqlStr,
    pub(crate) insert_agents: SqlStr,
    pub(crate) revoke_agents: SqlStr,
    pub(crate) insert_keys: SqlStr,
    pub(crate) insert_audit: SqlStr,
}

impl Statements {
    pub(crate) fn new(backend: Backend) -> Statements {
        // PostgreSQL locks the rows a batch will change, in id order so that two
        // batches never wait on each other in a cycle. SQLite's single writer
        // already excludes everyone else.
        let lock = match backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        };
        let list = json_list(backend);
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
                json_rows(backend, KEY_SLOTS)
            )),
            insert_wallets: statement(insert(backend, "wallets", WALLETS, "")),
            insert_accounts: statement(insert(backend, "accounts", ACCOUNTS, "")),
            update_balances: statement(format!(
                "UPDATE accounts SET balance = v.balance_after FROM ({}) AS v
                 WHERE accounts.id = v.id AND accounts.balance = v.balance_before",
                json_rows(backend, BALANCES)
            )),
            insert_transfers: statement(insert(backend, "transfers", TRANSFERS, "")),
            insert_agents: statement(insert(backend, "agents", AGENTS, "")),
            revoke_agents: statement(format!(
                "UPDATE agents SET status = 'revoked', revoked_at_ms = v.revoked_at_ms FROM ({}) AS v
                 WHERE agents.id = v.id AND agents.status = 'active'",
                json_rows(backend, REVOCATIONS)
            )),
            insert_keys: statement(insert(backend, "idempotency", KEYS, " ON CONFLICT (scope, key) DO NOTHING")),
            insert_audit: statement(insert(backend, "audit_log", AUDIT, "")),
        }
    }
}
