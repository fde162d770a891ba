//! Persisting a batch's effects: one set-based statement per kind of row.
//!
//! Guarded updates (`balance = <what we loaded>`, `status = 'active'`) and the
//! idempotency insert count their rows: a shortfall means another writer got there
//! between our load and our write, and the whole batch is retried from the load.

use purser_core::audit::ChainHead;
use purser_core::authorize::MonthTotals;
use purser_core::batch::{Effects, Write};
use purser_types::{
    AgentId, AgentStatus, Approval, ApprovalId, AuditEvent, Hash32, Mandate, MandateId, Payout,
    PayoutId, Reservation, ReservationId, UnixMs, WalletId, WalletPolicy,
};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row, SqlStr};

use crate::rows::rail_text;
use crate::sql::{Statements, Versioned};
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
    write_versioned(
        conn,
        &sql.mandates,
        effects.mandates,
        mandate_json,
        "a mandate",
    )
    .await?;
    write_versioned(
        conn,
        &sql.approvals,
        effects.approvals,
        approval_json,
        "an approval",
    )
    .await?;
    write_versioned(
        conn,
        &sql.reservations,
        effects.reservations,
        reservation_json,
        "a reservation",
    )
    .await?;
    write_versioned(
        conn,
        &sql.policies,
        effects.policies,
        policy_json,
        "a wallet policy",
    )
    .await?;
    write_versioned(
        conn,
        &sql.months,
        effects.months,
        month_json,
        "an agent's monthly total",
    )
    .await?;
    write_versioned(conn, &sql.payouts, effects.payouts, payout_json, "a payout").await?;
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

/// Inserts new rows and updates loaded ones at the version they were loaded at;
/// either falling short of its row count means another writer interfered.
async fn write_versioned<K, V>(
    conn: &mut AnyConnection,
    statements: &Versioned,
    writes: Vec<Write<K, V>>,
    encode: fn(&K, &V, i64) -> Value,
    what: &'static str,
) -> Result<(), PersistError> {
    let (inserts, updates): (Vec<_>, Vec<_>) =
        writes.into_iter().partition(|w| w.version.is_none());
    let inserts = inserts
        .iter()
        .map(|w| encode(&w.key, &w.value, 0))
        .collect();
    run_all(conn, &statements.insert, inserts, what).await?;
    let updates = updates
        .iter()
        .map(|w| encode(&w.key, &w.value, w.version.unwrap_or_default()))
        .collect();
    run_all(conn, &statements.update, updates, what).await
}

fn mandate_json(_: &MandateId, m: &Mandate, version: i64) -> Value {
    let signature = m.signature.as_ref();
    json!({
        "id": m.id, "wallet_id": m.wallet_id, "agent_id": m.agent_id, "description": m.terms.description,
        "category": m.terms.category, "currency": m.terms.currency, "limit_amount": m.terms.limit_amount.atomic_i64(),
        "max_amount_per_tx": m.terms.max_amount_per_tx.map(|c| c.atomic_i64()),
        "host_allowlist": serde_json::to_string(&m.terms.host_allowlist).unwrap_or_default(),
        "valid_from_ms": m.terms.valid_from.millis(), "valid_until_ms": m.terms.valid_until.millis(),
        "nonce": m.nonce, "status": m.status.as_str(), "spent_amount": m.spent_amount.atomic_i64(),
        "pending_amount": m.pending_amount.atomic_i64(), "mandate_hash": signature.map(|s| &s.mandate_hash),
        "signature": signature.map(|s| &s.signature), "signer": signature.map(|s| &s.signer),
        "signed_at_ms": signature.map(|s| s.signed_at.millis()), "created_at_ms": m.created_at.millis(),
        "updated_at_ms": m.updated_at.millis(), "version": version,
    })
}

fn reservation_json(_: &ReservationId, r: &Reservation, version: i64) -> Value {
    json!({
        "id": r.id, "wallet_id": r.wallet_id, "agent_id": r.agent_id, "mandate_id": r.mandate_id,
        "approval_id": r.approval_id, "amount": r.amount.atomic_i64(), "payee_host": r.payee.host,
        "payee_address": r.payee.address, "purpose": r.purpose, "kind": r.kind.as_str(), "status": r.status.as_str(),
        "settlement": r.settlement, "release_reason": r.release_reason, "created_at_ms": r.created_at.millis(),
        "updated_at_ms": r.updated_at.millis(), "version": version,
    })
}

fn approval_json(_: &ApprovalId, a: &Approval, version: i64) -> Value {
    json!({
        "id": a.id, "wallet_id": a.wallet_id, "agent_id": a.agent_id, "amount": a.amount.atomic_i64(),
        "payee_host": a.payee.host, "payee_address": a.payee.address, "purpose": a.purpose,
        "kind": a.kind.as_str(), "status": a.status.as_str(), "created_at_ms": a.created_at.millis(),
        "expires_at_ms": a.expires_at.millis(), "decided_at_ms": a.decided_at.map(UnixMs::millis), "version": version,
    })
}

fn policy_json(wallet: &WalletId, policy: &WalletPolicy, version: i64) -> Value {
    let text = serde_json::to_string(policy).unwrap_or_default();
    json!({ "wallet_id": wallet, "policy": text, "version": version })
}

fn month_json((agent, month): &(AgentId, String), totals: &MonthTotals, version: i64) -> Value {
    json!({
        "agent_id": agent, "month": month, "spent": totals.spent.atomic_i64(),
        "pending": totals.pending.atomic_i64(), "version": version,
    })
}

fn payout_json(_: &(WalletId, PayoutId), p: &Payout, version: i64) -> Value {
    json!({
        "wallet_id": p.wallet_id, "id": p.id, "agent_id": p.agent_id, "to_address": p.to_address,
        "amount": p.amount.atomic_i64(), "mandate_id": p.mandate_id, "rail": rail_text(p.rail),
        "status": p.status.as_str(), "reservation_id": p.reservation_id, "approval_id": p.approval_id,
        "settlement": p.settlement, "failure_reason": p.failure_reason.map(|c| c.as_str()),
        "created_at_ms": p.created_at.millis(), "updated_at_ms": p.updated_at.millis(), "version": version,
    })
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
