//! The committer's statements, generated once per backend from column lists.
//!
//! Every statement reads or writes a whole set of rows in one round trip (see
//! [`crate::rowset`] for how each engine receives them), so a batch of any size
//! costs the same number of statements. Apart from how rows arrive, PostgreSQL's
//! row locks are all that differs between the engines.

use crate::Backend;
use crate::rowset::{Columns, RowsStatement, Ty};

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
        ("password_hash", Text),
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

/// The one-column table `k(id)` of the ids a load names.
const IDS: &[(&str, Ty)] = &[("id", Text)];

/// Inserts the rows of `v`; with `counted`, a row whose key exists is skipped, so
/// the caller can count and retry on a race. The `WHERE` drops SQLite's padding
/// (and lets SQLite parse an upsert after `INSERT … SELECT`).
fn insert(backend: Backend, table: &TableSpec, counted: bool) -> RowsStatement {
    let names = names(table.columns).join(", ");
    let first = table.columns.first().map_or("id", |(c, _)| *c);
    let conflict = if counted {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    let body = format!(
        "INSERT INTO {t} ({names}) SELECT {names} FROM v WHERE v.{first} IS NOT NULL{conflict}",
        t = table.name
    );
    RowsStatement::new(backend, "v", table.columns, 0, body)
}

/// Updates every column of rows still at the version they were loaded at.
fn update_versioned(backend: Backend, table: &TableSpec) -> RowsStatement {
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
    let body = format!(
        "UPDATE {t} SET {}, version = {t}.version + 1 FROM v WHERE {} AND {t}.version = v.version",
        sets.join(", "),
        keys.join(" AND ")
    );
    RowsStatement::new(backend, "v", table.columns, 0, body)
}

/// Loads rows whose single-column key is among the ids in `k`, locked on PostgreSQL.
fn load_by_id(backend: Backend, table: &TableSpec, lock: &str) -> RowsStatement {
    let key = table.key.first().copied().unwrap_or("id");
    let body = format!(
        "SELECT {} FROM {} WHERE {key} IN (SELECT id FROM k) ORDER BY {key}{lock}",
        names(table.columns).join(", "),
        table.name,
    );
    RowsStatement::new(backend, "k", IDS, 0, body)
}

/// Loads rows whose composite key is among the rows of `k`, locked on PostgreSQL.
fn load_by_keys(backend: Backend, table: &TableSpec, lock_of_t: &str) -> RowsStatement {
    let key_columns: Vec<(&'static str, Ty)> = table.key.iter().map(|k| (*k, Text)).collect();
    let select: Vec<String> = names(table.columns)
        .into_iter()
        .map(|c| format!("t.{c}"))
        .collect();
    let on: Vec<String> = table.key.iter().map(|k| format!("t.{k} = k.{k}")).collect();
    let order: Vec<String> = table.key.iter().map(|k| format!("t.{k}")).collect();
    let body = format!(
        "SELECT {} FROM {} t JOIN k ON {} ORDER BY {}{lock_of_t}",
        select.join(", "),
        table.name,
        on.join(" AND "),
        order.join(", ")
    );
    RowsStatement::new(backend, "k", &key_columns, 0, body)
}

/// An insert and a guarded update for one versioned table.
pub(crate) struct Versioned {
    pub(crate) insert: RowsStatement,
    pub(crate) update: RowsStatement,
}

impl Versioned {
    fn new(backend: Backend, table: &TableSpec) -> Versioned {
        Versioned {
            insert: insert(backend, table, true),
            update: update_versioned(backend, table),
        }
    }
}

/// Every statement the committer runs.
pub(crate) struct Statements {
    pub(crate) load_accounts: RowsStatement,
    pub(crate) load_wallets: RowsStatement,
    pub(crate) load_agents: RowsStatement,
    pub(crate) load_keys: RowsStatement,
    pub(crate) load_mandates: RowsStatement,
    pub(crate) load_agent_mandates: RowsStatement,
    pub(crate) load_reservations: RowsStatement,
    pub(crate) load_approvals: RowsStatement,
    pub(crate) load_policies: RowsStatement,
    pub(crate) load_months: RowsStatement,
    pub(crate) load_payouts: RowsStatement,
    pub(crate) insert_wallets: RowsStatement,
    pub(crate) insert_accounts: RowsStatement,
    pub(crate) update_balances: RowsStatement,
    pub(crate) insert_transfers: RowsStatement,
    pub(crate) insert_agents: RowsStatement,
    pub(crate) revoke_agents: RowsStatement,
    pub(crate) insert_keys: RowsStatement,
    pub(crate) insert_audit: RowsStatement,
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
        let ids = |body: String| RowsStatement::new(backend, "k", IDS, 0, body);
        let mandate_columns = names(MANDATES.columns).join(", ");
        Statements {
            load_accounts: ids(format!(
                "SELECT id, balance FROM accounts WHERE id IN (SELECT id FROM k) ORDER BY id{lock}"
            )),
            load_wallets: ids("SELECT id FROM wallets WHERE id IN (SELECT id FROM k)".into()),
            load_agents: ids(format!(
                "SELECT id, wallet_id, name, status, created_at_ms, revoked_at_ms FROM agents
                 WHERE id IN (SELECT id FROM k) ORDER BY id{lock}"
            )),
            load_keys: RowsStatement::new(
                backend,
                "k",
                &[("scope", Text), ("key", Text)],
                0,
                "SELECT i.scope, i.key, i.fingerprint, i.outcome FROM idempotency i
                 JOIN k ON i.scope = k.scope AND i.key = k.key"
                    .into(),
            ),
            load_mandates: load_by_id(backend, &MANDATES, lock),
            // `$1` is the time now: an expired mandate cannot cover anything.
            load_agent_mandates: RowsStatement::new(
                backend,
                "k",
                IDS,
                1,
                format!(
                    "SELECT {mandate_columns} FROM mandates WHERE agent_id IN (SELECT id FROM k)
                     AND status = 'signed' AND valid_until_ms > $1 ORDER BY id{lock}"
                ),
            ),
            load_reservations: load_by_id(backend, &RESERVATIONS, lock),
            load_approvals: load_by_id(backend, &APPROVALS, lock),
            load_policies: load_by_id(backend, &POLICIES, lock),
            load_months: load_by_keys(backend, &MONTHS, lock_t),
            load_payouts: load_by_keys(backend, &PAYOUTS, lock_t),
            insert_wallets: insert(backend, &WALLETS, false),
            insert_accounts: insert(backend, &ACCOUNTS, false),
            update_balances: RowsStatement::new(
                backend,
                "v",
                &[
                    ("id", Text),
                    ("balance_before", Int),
                    ("balance_after", Int),
                ],
                0,
                "UPDATE accounts SET balance = v.balance_after FROM v
                 WHERE accounts.id = v.id AND accounts.balance = v.balance_before"
                    .into(),
            ),
            insert_transfers: insert(backend, &TRANSFERS, false),
            insert_agents: insert(backend, &AGENTS, false),
            revoke_agents: RowsStatement::new(
                backend,
                "v",
                &[("id", Text), ("revoked_at_ms", Int)],
                0,
                "UPDATE agents SET status = 'revoked', revoked_at_ms = v.revoked_at_ms FROM v
                 WHERE agents.id = v.id AND agents.status = 'active'"
                    .into(),
            ),
            insert_keys: insert(backend, &KEYS, true),
            insert_audit: insert(backend, &AUDIT, false),
            mandates: Versioned::new(backend, &MANDATES),
            reservations: Versioned::new(backend, &RESERVATIONS),
            approvals: Versioned::new(backend, &APPROVALS),
            policies: Versioned::new(backend, &POLICIES),
            months: Versioned::new(backend, &MONTHS),
            payouts: Versioned::new(backend, &PAYOUTS),
        }
    }
}
