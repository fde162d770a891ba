//! Persisting a batch's effects: one set-based statement per kind of row.
//!
//! Rows are typed structs declared with [`table_row!`], one field per column, which
//! [`crate::rowset`] hands to each engine its own way. Guarded updates (`balance = <what we loaded>`,
//! `version = <what we loaded>`, `status = 'active'`) and the idempotency insert
//! count their rows: a shortfall means another writer got there between our load
//! and our write, and the whole batch is retried from the load.

use purser_core::audit::ChainHead;
use purser_core::authorize::MonthTotals;
use purser_core::batch::{Effects, Write};
use purser_types::{
    AccountId, AgentId, Approval, ApprovalId, AuditEvent, Hash32, Mandate, MandateId, Payout,
    PayoutId, Reservation, ReservationId, UnixMs, WalletId, WalletPolicy,
};
use sqlx::AnyConnection;

use crate::rows::rail_text;
use crate::rowset::{Cells, RowsStatement, Script, ScriptValue, Slot, table_row};
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

/// The batch's writes as one [`Script`], with the row count each guarded
/// statement must reach.
struct Plan {
    script: Script,
    guards: Vec<(Slot, u64, &'static str)>,
}

impl Plan {
    /// Adds `statement` over `rows`, if any.
    fn add<R: Cells>(&mut self, statement: &RowsStatement, rows: &[R]) -> Result<(), PersistError> {
        if !rows.is_empty() {
            self.script.add(statement, &[], rows)?;
        }
        Ok(())
    }

    /// Adds a guarded statement: it must touch every row, or another writer
    /// changed one of them since the batch loaded it.
    fn add_guarded<R: Cells>(
        &mut self,
        statement: &RowsStatement,
        rows: &[R],
        what: &'static str,
    ) -> Result<(), PersistError> {
        if !rows.is_empty() {
            let slot = self.script.add(statement, &[], rows)?;
            self.guards.push((slot, rows.len() as u64, what));
        }
        Ok(())
    }

    /// Inserts new rows and updates loaded ones at the version they were loaded at.
    fn add_versioned<'a, K, V, R: Cells>(
        &mut self,
        statements: &Versioned,
        writes: &'a [Write<K, V>],
        row: fn(&'a K, &'a V, i64) -> R,
        what: &'static str,
    ) -> Result<(), PersistError> {
        let inserts: Vec<R> = writes
            .iter()
            .filter(|w| w.version.is_none())
            .map(|w| row(&w.key, &w.value, 0))
            .collect();
        self.add_guarded(&statements.insert, &inserts, what)?;
        let updates: Vec<R> = writes
            .iter()
            .filter_map(|w| w.version.map(|version| row(&w.key, &w.value, version)))
            .collect();
        self.add_guarded(&statements.update, &updates, what)
    }

    async fn run(self, conn: &mut AnyConnection) -> Result<(), PersistError> {
        let answers = self.script.run(conn).await?;
        for (slot, rows, what) in &self.guards {
            if answers.affected(slot) != *rows {
                return Err(PersistError::Contended(what));
            }
        }
        Ok(())
    }
}

table_row! {
    struct WalletRow<'a> {
        id: WalletId,
        name: &'a str,
        currency: &'static str,
        address: &'a str,
        owner_token_hash: Hash32,
        sealed_key: &'a str,
        created_at_ms: i64,
        password_hash: Option<&'a str>,
    }
}

table_row! {
    struct AccountRow {
        id: AccountId,
        wallet_id: Option<WalletId>,
        kind: &'static str,
        currency: &'static str,
        balance: i64,
    }
}

table_row! {
    struct AgentRow<'a> {
        id: AgentId,
        wallet_id: WalletId,
        name: &'a str,
        status: &'static str,
        credential_hash: Hash32,
        created_at_ms: i64,
        revoked_at_ms: Option<i64>,
    }
}

table_row! {
    struct RevocationRow {
        id: AgentId,
        revoked_at_ms: i64,
    }
}

table_row! {
    struct BalanceRow {
        id: AccountId,
        balance_before: i64,
        balance_after: i64,
    }
}

table_row! {
    struct TransferRow<'a> {
        id: purser_types::TransferId,
        from_account: AccountId,
        to_account: AccountId,
        amount: i64,
        currency: &'static str,
        kind: &'static str,
        memo: Option<&'a str>,
        created_at_ms: i64,
    }
}

table_row! {
    struct KeyRow<'a> {
        scope: &'a str,
        key: &'a str,
        fingerprint: Hash32,
        outcome: String,
        created_at_ms: i64,
    }
}

table_row! {
    struct AuditRow {
        seq: u64,
        at_ms: i64,
        actor: String,
        action: String,
        wallet_id: Option<WalletId>,
        subject: String,
        details: String,
        prev_hash: Hash32,
        hash: Hash32,
    }
}

/// Writes the batch's effects, chaining its audit records after `head`.
pub(crate) async fn effects(
    conn: &mut AnyConnection,
    backend: Backend,
    sql: &Statements,
    effects: Effects,
    head: ChainHead,
) -> Result<(), PersistError> {
    let mut plan = Plan {
        script: Script::new(backend),
        guards: Vec::new(),
    };
    let wallets: Vec<WalletRow<'_>> = effects
        .wallets
        .iter()
        .map(|w| WalletRow {
            id: w.wallet.id,
            name: &w.wallet.name,
            currency: w.wallet.currency.code(),
            address: &w.wallet.address,
            owner_token_hash: w.owner_token_hash,
            sealed_key: &w.sealed_key,
            created_at_ms: w.wallet.created_at.millis(),
            password_hash: w.password_hash.as_deref(),
        })
        .collect();
    plan.add(&sql.insert_wallets, &wallets)?;
    let accounts: Vec<AccountRow> = effects
        .accounts
        .iter()
        .map(|a| AccountRow {
            id: *a,
            wallet_id: a.wallet,
            kind: a.kind.as_str(),
            currency: a.currency.code(),
            balance: 0,
        })
        .collect();
    plan.add(&sql.insert_accounts, &accounts)?;
    let agents: Vec<AgentRow<'_>> = effects
        .agents
        .iter()
        .map(|(a, credential_hash)| AgentRow {
            id: a.id,
            wallet_id: a.wallet_id,
            name: &a.name,
            status: purser_types::AgentStatus::Active.as_str(),
            credential_hash: *credential_hash,
            created_at_ms: a.created_at.millis(),
            revoked_at_ms: None,
        })
        .collect();
    plan.add(&sql.insert_agents, &agents)?;
    let revocations: Vec<RevocationRow> = effects
        .revocations
        .iter()
        .map(|(id, at)| RevocationRow {
            id: *id,
            revoked_at_ms: at.millis(),
        })
        .collect();
    plan.add_guarded(&sql.revoke_agents, &revocations, "an agent's status")?;
    plan.add_versioned(&sql.mandates, &effects.mandates, mandate_row, "a mandate")?;
    plan.add_versioned(
        &sql.approvals,
        &effects.approvals,
        approval_row,
        "an approval",
    )?;
    plan.add_versioned(
        &sql.reservations,
        &effects.reservations,
        reservation_row,
        "a reservation",
    )?;
    plan.add_versioned(
        &sql.policies,
        &effects.policies,
        policy_row,
        "a wallet policy",
    )?;
    plan.add_versioned(
        &sql.months,
        &effects.months,
        month_row,
        "an agent's monthly total",
    )?;
    plan.add_versioned(&sql.payouts, &effects.payouts, payout_row, "a payout")?;
    let balances: Vec<BalanceRow> = effects
        .balances
        .iter()
        .map(|b| BalanceRow {
            id: b.account,
            balance_before: b.before,
            balance_after: b.after,
        })
        .collect();
    plan.add_guarded(&sql.update_balances, &balances, "an account balance")?;
    let transfers: Vec<TransferRow<'_>> = effects
        .transfers
        .iter()
        .map(|t| TransferRow {
            id: t.id,
            from_account: t.from,
            to_account: t.to,
            amount: t.amount.atomic_i64(),
            currency: t.currency.code(),
            kind: t.kind.as_str(),
            memo: t.memo.as_deref(),
            created_at_ms: t.created_at.millis(),
        })
        .collect();
    plan.add(&sql.insert_transfers, &transfers)?;
    let mut keys = Vec::with_capacity(effects.keys.len());
    for recorded in &effects.keys {
        keys.push(KeyRow {
            scope: &recorded.key.scope,
            key: &recorded.key.key,
            fingerprint: recorded.key.fingerprint,
            outcome: serde_json::to_string(&recorded.outcome)
                .map_err(|e| PersistError::Corrupt(e.to_string()))?,
            created_at_ms: recorded.at.millis(),
        });
    }
    plan.add_guarded(&sql.insert_keys, &keys, "an idempotency key")?;
    add_audit(&mut plan, sql, effects.audit, head)?;
    plan.run(conn).await
}

table_row! {
    struct MandateRow<'a> {
        id: MandateId,
        wallet_id: WalletId,
        agent_id: AgentId,
        description: &'a str,
        category: Option<&'a str>,
        currency: &'static str,
        limit_amount: i64,
        max_amount_per_tx: Option<i64>,
        host_allowlist: String,
        valid_from_ms: i64,
        valid_until_ms: i64,
        nonce: Hash32,
        status: &'static str,
        spent_amount: i64,
        pending_amount: i64,
        mandate_hash: Option<&'a str>,
        signature: Option<&'a str>,
        signer: Option<&'a str>,
        signed_at_ms: Option<i64>,
        created_at_ms: i64,
        updated_at_ms: i64,
        version: i64,
    }
}

fn mandate_row<'a>(_: &'a MandateId, m: &'a Mandate, version: i64) -> MandateRow<'a> {
    let signature = m.signature.as_ref();
    MandateRow {
        id: m.id,
        wallet_id: m.wallet_id,
        agent_id: m.agent_id,
        description: &m.terms.description,
        category: m.terms.category.as_deref(),
        currency: m.terms.currency.code(),
        limit_amount: m.terms.limit_amount.atomic_i64(),
        max_amount_per_tx: m.terms.max_amount_per_tx.map(|c| c.atomic_i64()),
        host_allowlist: serde_json::to_string(&m.terms.host_allowlist).unwrap_or_default(),
        valid_from_ms: m.terms.valid_from.millis(),
        valid_until_ms: m.terms.valid_until.millis(),
        nonce: m.nonce,
        status: m.status.as_str(),
        spent_amount: m.spent_amount.atomic_i64(),
        pending_amount: m.pending_amount.atomic_i64(),
        mandate_hash: signature.map(|s| s.mandate_hash.as_str()),
        signature: signature.map(|s| s.signature.as_str()),
        signer: signature.map(|s| s.signer.as_str()),
        signed_at_ms: signature.map(|s| s.signed_at.millis()),
        created_at_ms: m.created_at.millis(),
        updated_at_ms: m.updated_at.millis(),
        version,
    }
}

table_row! {
    struct ReservationRow<'a> {
        id: ReservationId,
        wallet_id: WalletId,
        agent_id: AgentId,
        mandate_id: Option<MandateId>,
        approval_id: Option<ApprovalId>,
        amount: i64,
        payee_host: Option<&'a str>,
        payee_address: Option<&'a str>,
        purpose: &'a str,
        kind: &'static str,
        status: &'static str,
        settlement: Option<&'a str>,
        release_reason: Option<&'a str>,
        created_at_ms: i64,
        updated_at_ms: i64,
        version: i64,
    }
}

fn reservation_row<'a>(
    _: &'a ReservationId,
    r: &'a Reservation,
    version: i64,
) -> ReservationRow<'a> {
    ReservationRow {
        id: r.id,
        wallet_id: r.wallet_id,
        agent_id: r.agent_id,
        mandate_id: r.mandate_id,
        approval_id: r.approval_id,
        amount: r.amount.atomic_i64(),
        payee_host: r.payee.host.as_deref(),
        payee_address: r.payee.address.as_deref(),
        purpose: &r.purpose,
        kind: r.kind.as_str(),
        status: r.status.as_str(),
        settlement: r.settlement.as_deref(),
        release_reason: r.release_reason.as_deref(),
        created_at_ms: r.created_at.millis(),
        updated_at_ms: r.updated_at.millis(),
        version,
    }
}

table_row! {
    struct ApprovalRow<'a> {
        id: ApprovalId,
        wallet_id: WalletId,
        agent_id: AgentId,
        amount: i64,
        payee_host: Option<&'a str>,
        payee_address: Option<&'a str>,
        purpose: &'a str,
        kind: &'static str,
        status: &'static str,
        created_at_ms: i64,
        expires_at_ms: i64,
        decided_at_ms: Option<i64>,
        version: i64,
    }
}

fn approval_row<'a>(_: &'a ApprovalId, a: &'a Approval, version: i64) -> ApprovalRow<'a> {
    ApprovalRow {
        id: a.id,
        wallet_id: a.wallet_id,
        agent_id: a.agent_id,
        amount: a.amount.atomic_i64(),
        payee_host: a.payee.host.as_deref(),
        payee_address: a.payee.address.as_deref(),
        purpose: &a.purpose,
        kind: a.kind.as_str(),
        status: a.status.as_str(),
        created_at_ms: a.created_at.millis(),
        expires_at_ms: a.expires_at.millis(),
        decided_at_ms: a.decided_at.map(UnixMs::millis),
        version,
    }
}

table_row! {
    struct PolicyRow {
        wallet_id: WalletId,
        policy: String,
        version: i64,
    }
}

fn policy_row(wallet: &WalletId, policy: &WalletPolicy, version: i64) -> PolicyRow {
    PolicyRow {
        wallet_id: *wallet,
        policy: serde_json::to_string(policy).unwrap_or_default(),
        version,
    }
}

table_row! {
    struct MonthRow<'a> {
        agent_id: AgentId,
        month: &'a str,
        spent: i64,
        pending: i64,
        version: i64,
    }
}

fn month_row<'a>(
    (agent, month): &'a (AgentId, String),
    totals: &'a MonthTotals,
    version: i64,
) -> MonthRow<'a> {
    MonthRow {
        agent_id: *agent,
        month,
        spent: totals.spent.atomic_i64(),
        pending: totals.pending.atomic_i64(),
        version,
    }
}

table_row! {
    struct PayoutRow<'a> {
        wallet_id: WalletId,
        id: &'a PayoutId,
        agent_id: AgentId,
        to_address: &'a str,
        amount: i64,
        mandate_id: Option<MandateId>,
        rail: &'static str,
        status: &'static str,
        reservation_id: Option<ReservationId>,
        approval_id: Option<ApprovalId>,
        settlement: Option<&'a str>,
        failure_reason: Option<&'static str>,
        created_at_ms: i64,
        updated_at_ms: i64,
        version: i64,
    }
}

fn payout_row<'a>(_: &'a (WalletId, PayoutId), p: &'a Payout, version: i64) -> PayoutRow<'a> {
    PayoutRow {
        wallet_id: p.wallet_id,
        id: &p.id,
        agent_id: p.agent_id,
        to_address: &p.to_address,
        amount: p.amount.atomic_i64(),
        mandate_id: p.mandate_id,
        rail: rail_text(p.rail),
        status: p.status.as_str(),
        reservation_id: p.reservation_id,
        approval_id: p.approval_id,
        settlement: p.settlement.as_deref(),
        failure_reason: p.failure_reason.map(|c| c.as_str()),
        created_at_ms: p.created_at.millis(),
        updated_at_ms: p.updated_at.millis(),
        version,
    }
}

/// Chains the batch's audit records after the head and moves the head on.
fn add_audit(
    plan: &mut Plan,
    sql: &Statements,
    events: Vec<(UnixMs, AuditEvent)>,
    mut head: ChainHead,
) -> Result<(), PersistError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(events.len());
    for (at, event) in events {
        let record = head.append(at, event);
        rows.push(AuditRow {
            seq: record.seq,
            at_ms: record.at.millis(),
            actor: record.event.actor.to_string(),
            action: record.event.action,
            wallet_id: record.event.wallet_id,
            subject: record.event.subject,
            details: record.event.details,
            prev_hash: record.prev_hash,
            hash: record.hash,
        });
    }
    plan.add(&sql.insert_audit, &rows)?;
    let head_seq =
        i64::try_from(head.seq).map_err(|_| PersistError::Corrupt("audit seq overflow".into()))?;
    let slot = plan.script.add_fixed(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[
            ScriptValue::Int(head_seq),
            ScriptValue::Text(head.hash.to_string()),
        ],
    )?;
    plan.guards.push((slot, 1, "the audit head"));
    Ok(())
}
