//! Persisting a batch's effects: one set-based statement per kind of row.
//!
//! Guarded updates (`balance = <what we loaded>`, `status = 'active'`) and the
//! idempotency insert count their rows: a shortfall means another writer got there
//! between our load and our write, and the whole batch is retried from the load.

use purser_core::audit::ChainHead;
use purser_core::batch::Effects;
use purser_types::{AgentStatus, AuditEvent, Hash32, UnixMs};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row, SqlStr};

use crate::sql::Statements;
use crate::{Backend, StoreError};

/// Why persisting failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PersistError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Another writer changed a row this batch loaded; retry the batch.
    #[error("{0} changed under the batch")]
    Contended(&'static str),
    /// A stored value did not decode.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for PersistError {
    fn from(error: sqlx::Error) -> Self {
        PersistError::Database(error)
    }
}

impl From<StoreError> for PersistError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => PersistError::Database(error),
            other => PersistError::Corrupt(other.to_string()),
        }
    }
}

/// Runs `statement` over `rows` (if any) and returns how many rows it touched.
async fn run(
    conn: &mut AnyConnection,
    statement: &SqlStr,
    rows: Vec<Value>,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let result = sqlx::query(statement.clone())
        .bind(Value::Array(rows).to_string())
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}

/// Runs a guarded statement that must touch every row.
async fn run_all(
    conn: &mut AnyConnection,
    statement: &SqlStr,
    rows: Vec<Value>,
    what: &'static str,
) -> Result<(), PersistError> {
    let expected = rows.len() as u64;
    let touched = run(conn, statement, rows).await?;
    if touched == expected {
        Ok(())
    } else {
        Err(PersistError::Contended(what))
    }
}

pub(crate) async fn effects(
    conn: &mut AnyConnection,
    backend: Backend,
    sql: &Statements,
    effects: Effects,
) -> Result<(), PersistError> {
    let wallets = effects.wallets.iter().map(|w| {
        json!({
            "id": w.wallet.id, "name": w.wallet.name, "currency": w.wallet.currency,
            "address": w.wallet.address, "owner_token_hash": w.owner_token_hash,
            "sealed_key": w.sealed_key, "created_at_ms": w.wallet.created_at.millis(),
        })
    });
    run(conn, &sql.insert_wallets, wallets.collect()).await?;
    let accounts = effects.accounts.iter().map(|a| {
        json!({ "id": a, "wallet_id": a.wallet, "kind": a.kind.as_str(), "currency": a.currency, "balance": 0 })
    });
    run(conn, &sql.insert_accounts, accounts.collect()).await?;
    let balances = effects
        .balances
        .iter()
        .map(|b| json!({ "id": b.account, "balance_before": b.before, "balance_after": b.after }));
    run_all(
        conn,
        &sql.update_balances,
        balances.collect(),
        "an account balance",
    )
    .await?;
    let transfers = effects.transfers.iter().map(|t| {
        json!({
            "id": t.id, "from_account": t.from, "to_account": t.to, "amount": t.amount.atomic_i64(),
            "currency": t.currency, "kind": t.kind.as_str(), "memo": t.memo, "created_at_ms": t.created_at.millis(),
        })
    });
    run(conn, &sql.insert_transfers, transfers.collect()).await?;
    let agents = effects.agents.iter().map(|(a, credential_hash)| {
        json!({
            "id": a.id, "wallet_id": a.wallet_id, "name": a.name, "status": AgentStatus::Active.as_str(),
            "credential_hash": credential_hash, "created_at_ms": a.created_at.millis(), "revoked_at_ms": null,
        })
    });
    run(conn, &sql.insert_agents, agents.collect()).await?;
    let revocations = effects
        .revocations
        .iter()
        .map(|(id, at)| json!({ "id": id, "revoked_at_ms": at.millis() }));
    run_all(
        conn,
        &sql.revoke_agents,
        revocations.collect(),
        "an agent's status",
    )
    .await?;
    let mut keys = Vec::with_capacity(effects.keys.len());
    for recorded in &effects.keys {
        let outcome = serde_json::to_string(&recorded.outcome)
            .map_err(|e| PersistError::Corrupt(e.to_string()))?;
        keys.push(json!({
            "scope": recorded.key.scope, "key": recorded.key.key, "fingerprint": recorded.key.fingerprint,
            "outcome": outcome, "created_at_ms": recorded.at.millis(),
        }));
    }
    run_all(conn, &sql.insert_keys, keys, "an idempotency key").await?;
    append_audit(conn, backend, sql, effects.audit).await
}

/// Chains the batch's audit records after the head, holding the head's lock until
/// commit so writers in other processes chain in turn.
async fn append_audit(
    conn: &mut AnyConnection,
    backend: Backend,
    sql: &Statements,
    events: Vec<(UnixMs, AuditEvent)>,
) -> Result<(), PersistError> {
    if events.is_empty() {
        return Ok(());
    }
    let row = sqlx::query(backend.lock_audit_head())
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = row.try_get("seq")?;
    let hash: String = row.try_get("hash")?;
    let mut head = ChainHead {
        seq: u64::try_from(seq).map_err(|_| PersistError::Corrupt("negative audit head".into()))?,
        hash: Hash32::from_hex(&hash)
            .ok_or_else(|| PersistError::Corrupt("audit head hash".into()))?,
    };
    let mut rows = Vec::with_capacity(events.len());
    for (at, event) in events {
        let record = head.append(at, event);
        rows.push(json!({
            "seq": record.seq, "at_ms": record.at.millis(), "actor": record.event.actor,
            "action": record.event.action, "wallet_id": record.event.wallet_id, "subject": record.event.subject,
            "details": record.event.details, "prev_hash": record.prev_hash, "hash": record.hash,
        }));
    }
    run(conn, &sql.insert_audit, rows).await?;
    let head_seq =
        i64::try_from(head.seq).map_err(|_| PersistError::Corrupt("audit seq overflow".into()))?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head_seq)
        .bind(head.hash.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
