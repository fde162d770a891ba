//! Applying one change inside the committer's transaction.
//!
//! Every balance rule is a condition of the `UPDATE` that moves the money, so the
//! check and the write are one atomic step in both engines: PostgreSQL re-checks the
//! condition against the latest committed row after waiting for its lock, and
//! SQLite has a single writer.

use purser_core::audit::ChainHead;
use purser_core::change::{Change, NewTransfer, Outcome};
use purser_core::ledger::{LedgerError, posting_bounds, validate_transfer};
use purser_types::{AccountId, Agent, AgentStatus, AuditEvent, Hash32, Transfer, UnixMs};
use sqlx::{AnyConnection, Row};

use crate::rows::{agent_columns, agent_from_row};
use crate::{Backend, Committed, Idempotency, StoreError, WriteRequest};

pub(crate) struct Applied {
    pub(crate) committed: Committed,
    /// False when the change was a no-op or a replay: no audit record is due.
    pub(crate) changed: bool,
}

pub(crate) async fn apply(
    conn: &mut AnyConnection,
    request: &WriteRequest,
) -> Result<Applied, StoreError> {
    if let Some(idempotency) = &request.idempotency
        && let Some(previous) = claim_key(conn, idempotency, request.at).await?
    {
        let committed = Committed {
            outcome: previous,
            replayed: true,
        };
        return Ok(Applied {
            committed,
            changed: false,
        });
    }
    let (outcome, changed) = apply_change(conn, request).await?;
    if let Some(idempotency) = &request.idempotency {
        record_outcome(conn, idempotency, &outcome).await?;
    }
    Ok(Applied {
        committed: Committed {
            outcome,
            replayed: false,
        },
        changed,
    })
}

/// Claims the key for this change, or returns what the first use of it produced.
/// `ON CONFLICT DO NOTHING` waits for a concurrent claimant to finish, so a racing
/// duplicate sees the committed outcome rather than applying the change again.
async fn claim_key(
    conn: &mut AnyConnection,
    idempotency: &Idempotency,
    at: UnixMs,
) -> Result<Option<Outcome>, StoreError> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency (scope, key, fingerprint, outcome, created_at_ms)
         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(&idempotency.scope)
    .bind(&idempotency.key)
    .bind(idempotency.fingerprint.to_string())
    .bind(at.millis())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(None);
    }
    let row =
        sqlx::query("SELECT fingerprint, outcome FROM idempotency WHERE scope = $1 AND key = $2")
            .bind(&idempotency.scope)
            .bind(&idempotency.key)
            .fetch_one(&mut *conn)
            .await?;
    let fingerprint: String = row.try_get("fingerprint")?;
    if fingerprint != idempotency.fingerprint.to_string() {
        return Err(StoreError::IdempotencyConflict);
    }
    let outcome: Option<String> = row.try_get("outcome")?;
    let outcome =
        outcome.ok_or_else(|| StoreError::Corrupt("idempotency key without an outcome".into()))?;
    serde_json::from_str(&outcome)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn record_outcome(
    conn: &mut AnyConnection,
    idempotency: &Idempotency,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    let outcome = serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("UPDATE idempotency SET outcome = $1 WHERE scope = $2 AND key = $3")
        .bind(outcome)
        .bind(&idempotency.scope)
        .bind(&idempotency.key)
        .execute(conn)
        .await?;
    Ok(())
}

async fn apply_change(
    conn: &mut AnyConnection,
    request: &WriteRequest,
) -> Result<(Outcome, bool), StoreError> {
    match &request.change {
        Change::CreateWallet {
            wallet,
            owner_token_hash,
            sealed_key,
        } => {
            sqlx::query(
                "INSERT INTO wallets (id, name, currency, address, owner_token_hash, sealed_key, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(wallet.id.to_string())
            .bind(&wallet.name)
            .bind(wallet.currency.code())
            .bind(&wallet.address)
            .bind(owner_token_hash.to_string())
            .bind(sealed_key)
            .bind(wallet.created_at.millis())
            .execute(&mut *conn)
            .await?;
            for account in [
                AccountId::available(wallet.id, wallet.currency),
                AccountId::reserved(wallet.id, wallet.currency),
            ] {
                open_account(conn, account).await?;
            }
            Ok((Outcome::Wallet(wallet.clone()), true))
        }
        Change::RegisterAgent {
            agent,
            credential_hash,
        } => register_agent(conn, agent, credential_hash)
            .await
            .map(|a| (Outcome::Agent(a), true)),
        Change::RevokeAgent { wallet, agent } => {
            let revoked = sqlx::query(
                "UPDATE agents SET status = 'revoked', revoked_at_ms = $1
                 WHERE id = $2 AND wallet_id = $3 AND status = 'active'",
            )
            .bind(request.at.millis())
            .bind(agent.to_string())
            .bind(wallet.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let row = sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE id = $1 AND wallet_id = $2"
            ))
            .bind(agent.to_string())
            .bind(wallet.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok((Outcome::Agent(agent_from_row(&row)?), revoked == 1))
        }
        Change::Transfer(transfer) => post_transfer(conn, transfer, request.at)
            .await
            .map(|t| (Outcome::Transfer(t), true)),
    }
}

async fn open_account(conn: &mut AnyConnection, account: AccountId) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO accounts (id, wallet_id, kind, currency, balance) VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(account.to_string())
    .bind(account.wallet.map(|w| w.to_string()))
    .bind(account.kind.as_str())
    .bind(account.currency.code())
    .execute(conn)
    .await?;
    Ok(())
}

async fn register_agent(
    conn: &mut AnyConnection,
    agent: &Agent,
    credential_hash: &Hash32,
) -> Result<Agent, StoreError> {
    let wallet_exists = sqlx::query("SELECT 1 FROM wallets WHERE id = $1")
        .bind(agent.wallet_id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if !wallet_exists {
        return Err(StoreError::NotFound);
    }
    sqlx::query(
        "INSERT INTO agents (id, wallet_id, name, status, credential_hash, created_at_ms, revoked_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(agent.id.to_string())
    .bind(agent.wallet_id.to_string())
    .bind(&agent.name)
    .bind(AgentStatus::Active.as_str())
    .bind(credential_hash.to_string())
    .bind(agent.created_at.millis())
    .execute(conn)
    .await?;
    Ok(Agent {
        status: AgentStatus::Active,
        revoked_at: None,
        ..agent.clone()
    })
}

/// Moves money with two conditional updates and records the transfer. A refused
/// update leaves the savepoint to be rolled back, so nothing is half-applied.
async fn post_transfer(
    conn: &mut AnyConnection,
    transfer: &NewTransfer,
    at: UnixMs,
) -> Result<Transfer, StoreError> {
    let currency = transfer.currency();
    validate_transfer(transfer.from, transfer.to, transfer.amount, currency)?;
    let bounds = posting_bounds(transfer.from.kind, transfer.amount);
    let amount = transfer.amount.atomic_i64();
    let debited =
        sqlx::query("UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $3")
            .bind(amount)
            .bind(transfer.from.to_string())
            .bind(bounds.from_min_balance)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if debited != 1 {
        return Err(refusal(
            conn,
            transfer.from,
            LedgerError::InsufficientFunds(transfer.from),
        )
        .await);
    }
    let credited =
        sqlx::query("UPDATE accounts SET balance = balance + $1 WHERE id = $2 AND balance <= $3")
            .bind(amount)
            .bind(transfer.to.to_string())
            .bind(bounds.to_max_balance)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if credited != 1 {
        return Err(refusal(conn, transfer.to, LedgerError::BalanceOverflow(transfer.to)).await);
    }
    sqlx::query(
        "INSERT INTO transfers (id, from_account, to_account, amount, currency, kind, memo, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(transfer.id.to_string())
    .bind(transfer.from.to_string())
    .bind(transfer.to.to_string())
    .bind(amount)
    .bind(currency.code())
    .bind(transfer.kind.as_str())
    .bind(transfer.memo.clone())
    .bind(at.millis())
    .execute(conn)
    .await?;
    Ok(Transfer {
        id: transfer.id,
        from: transfer.from,
        to: transfer.to,
        amount: transfer.amount,
        currency,
        kind: transfer.kind,
        memo: transfer.memo.clone(),
        created_at: at,
    })
}

/// Tells "no such account" apart from the balance rule that refused the update.
async fn refusal(
    conn: &mut AnyConnection,
    account: AccountId,
    otherwise: LedgerError,
) -> StoreError {
    let exists = sqlx::query("SELECT 1 FROM accounts WHERE id = $1")
        .bind(account.to_string())
        .fetch_optional(conn)
        .await;
    match exists {
        Ok(Some(_)) => StoreError::Ledger(otherwise),
        Ok(None) => StoreError::Ledger(LedgerError::UnknownAccount(account)),
        Err(error) => StoreError::Database(error),
    }
}

/// Chains the batch's audit records after the head, holding the head's lock until
/// commit so concurrent writers (other processes on PostgreSQL) chain in turn.
pub(crate) async fn append_audit(
    conn: &mut AnyConnection,
    backend: Backend,
    events: Vec<(UnixMs, AuditEvent)>,
) -> Result<(), StoreError> {
    let row = sqlx::query(backend.lock_audit_head())
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = row.try_get("seq")?;
    let hash: String = row.try_get("hash")?;
    let mut head = ChainHead {
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt("negative audit head".into()))?,
        hash: Hash32::from_hex(&hash)
            .ok_or_else(|| StoreError::Corrupt("audit head hash".into()))?,
    };
    for (at, event) in events {
        let record = head.append(at, event);
        sqlx::query(
            "INSERT INTO audit_log (seq, at_ms, actor, action, wallet_id, subject, details, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(i64::try_from(record.seq).map_err(|_| StoreError::Corrupt("audit seq overflow".into()))?)
        .bind(record.at.millis())
        .bind(record.event.actor.to_string())
        .bind(record.event.action)
        .bind(record.event.wallet_id.map(|w| w.to_string()))
        .bind(record.event.subject)
        .bind(record.event.details)
        .bind(record.prev_hash.to_string())
        .bind(record.hash.to_string())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(
            i64::try_from(head.seq)
                .map_err(|_| StoreError::Corrupt("audit seq overflow".into()))?,
        )
        .bind(head.hash.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
