//! Reads. They go straight to the pool: everything a caller was told is committed
//! is visible to them, and reads never wait for the committer.

use purser_core::audit::{ChainBreak, ChainHead, ChainVerifier};
use purser_core::ledger::{AccountFact, FlowFact, LedgerReport, check_invariants};
use purser_types::{
    AccountId, AccountKind, Agent, AgentId, AuditRecord, Balances, Currency, Hash32, Transfer,
    Usdc, Wallet, WalletId,
};
use sqlx::{AnyConnection, Executor, Row};

use crate::rows::{
    agent_columns, agent_from_row, audit_columns, audit_from_row, transfer_columns,
    transfer_from_row, wallet_columns, wallet_from_row,
};
use crate::{Backend, Store, StoreError};

/// A page of a newest-first listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// At most this many items (clamped to 1..=500).
    pub limit: u32,
    /// Only items older than this cursor (the `seq` of the last item of the previous page).
    pub before: Option<i64>,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: 50,
            before: None,
        }
    }
}

impl Page {
    pub(crate) fn bounds(self) -> (i64, i64) {
        (
            self.before.unwrap_or(i64::MAX),
            i64::from(self.limit.clamp(1, 500)),
        )
    }
}

/// The result of a successful audit-chain verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditVerification {
    /// Records checked.
    pub records: u64,
    /// The chain's head.
    pub head: ChainHead,
}

const AUDIT_VERIFY_PAGE: i64 = 1000;

impl Backend {
    /// Begins a read-only transaction that sees one consistent snapshot.
    const fn begin_snapshot(self) -> &'static str {
        match self {
            // A deferred SQLite transaction keeps its WAL snapshot from the first read.
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

impl Store {
    /// A wallet by id.
    pub async fn wallet(&self, id: WalletId) -> Result<Option<Wallet>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(wallet_from_row).transpose()
    }

    /// The wallet whose owner token hashes to `token_hash`.
    pub async fn wallet_by_owner_token(
        &self,
        token_hash: &Hash32,
    ) -> Result<Option<Wallet>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE owner_token_hash = $1"
        ))
        .bind(token_hash.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(wallet_from_row).transpose()
    }

    /// A wallet's sealed private key, for the signer.
    pub async fn sealed_wallet_key(&self, id: WalletId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT sealed_key FROM wallets WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("sealed_key")).transpose()?)
    }

    /// A wallet's balances, or `None` for an unknown wallet.
    pub async fn balances(
        &self,
        wallet: WalletId,
        currency: Currency,
    ) -> Result<Option<Balances>, StoreError> {
        let rows = sqlx::query("SELECT id, balance FROM accounts WHERE id IN ($1, $2)")
            .bind(AccountId::available(wallet, currency).to_string())
            .bind(AccountId::reserved(wallet, currency).to_string())
            .fetch_all(self.pool())
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut balances = Balances {
            currency,
            available: Usdc::ZERO,
            reserved: Usdc::ZERO,
            total: Usdc::ZERO,
        };
        for row in rows {
            let id: AccountId = row
                .try_get::<String, _>("id")?
                .parse()
                .map_err(|_| StoreError::Corrupt("account id".into()))?;
            let balance: i64 = row.try_get("balance")?;
            let amount = Usdc::from_atomic_i64(balance)
                .map_err(|_| StoreError::Corrupt(format!("negative wallet balance in {id}")))?;
            match id.kind {
                AccountKind::Available => balances.available = amount,
                _ => balances.reserved = amount,
            }
        }
        balances.total = balances
            .available
            .checked_add(balances.reserved)
            .ok_or_else(|| StoreError::Corrupt("wallet total overflows".into()))?;
        Ok(Some(balances))
    }

    /// An agent by id.
    pub async fn agent(&self, id: AgentId) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// The agent whose credential hashes to `credential_hash`.
    pub async fn agent_by_credential(
        &self,
        credential_hash: &Hash32,
    ) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE credential_hash = $1"
        ))
        .bind(credential_hash.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// A wallet's agents, oldest first.
    pub async fn agents(&self, wallet: WalletId) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE wallet_id = $1 ORDER BY created_at_ms, id"
        ))
        .bind(wallet.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(agent_from_row).collect()
    }

    /// The transfers into or out of a wallet, newest first, with their cursors.
    pub async fn transfers(
        &self,
        wallet: WalletId,
        currency: Currency,
        page: Page,
    ) -> Result<Vec<(i64, Transfer)>, StoreError> {
        let (before, limit) = page.bounds();
        let rows = sqlx::query(concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM transfers WHERE (from_account IN ($1, $2) OR to_account IN ($1, $2))
              AND seq < $3 ORDER BY seq DESC LIMIT $4"
        ))
        .bind(AccountId::available(wallet, currency).to_string())
        .bind(AccountId::reserved(wallet, currency).to_string())
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(transfer_from_row).collect()
    }

    /// A wallet's audit records, newest first.
    pub async fn audit_for_wallet(
        &self,
        wallet: WalletId,
        page: Page,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let (before, limit) = page.bounds();
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE wallet_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(wallet.to_string())
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Walks the whole audit chain in one snapshot and names the first broken link.
    /// The outer error is a storage failure; the inner one a tampered chain.
    pub async fn verify_audit(&self) -> Result<Result<AuditVerification, ChainBreak>, StoreError> {
        self.verify_audit_after(ChainHead::EMPTY).await
    }

    /// Verifies the records after `verified`, a prefix of the chain already verified
    /// (so a watcher re-checks only what is new). `records` counts the new ones.
    pub async fn verify_audit_after(
        &self,
        verified: ChainHead,
    ) -> Result<Result<AuditVerification, ChainBreak>, StoreError> {
        let mut tx = self
            .pool()
            .begin_with(self.backend().begin_snapshot())
            .await?;
        let head_row = tx
            .fetch_one("SELECT seq, hash FROM audit_head WHERE id = 1")
            .await?;
        let head_seq: i64 = head_row.try_get("seq")?;
        let head = ChainHead {
            seq: u64::try_from(head_seq)
                .map_err(|_| StoreError::Corrupt("audit head seq".into()))?,
            hash: Hash32::from_hex(&head_row.try_get::<String, _>("hash")?)
                .ok_or_else(|| StoreError::Corrupt("audit head hash".into()))?,
        };
        let mut verifier = ChainVerifier::resume(verified);
        let mut after = i64::try_from(verified.seq)
            .map_err(|_| StoreError::Corrupt("verified audit seq".into()))?;
        let mut records = 0u64;
        loop {
            let rows = sqlx::query(concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .bind(after)
            .bind(AUDIT_VERIFY_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("seq")?;
            for row in &rows {
                if let Err(chain_break) = verifier.push(&audit_from_row(row)?) {
                    return Ok(Err(chain_break));
                }
                records = records.saturating_add(1);
            }
        }
        tx.rollback().await?;
        Ok(verifier
            .finish(head)
            .map(|head| AuditVerification { records, head }))
    }

    /// Checks every ledger invariant in one snapshot.
    pub async fn check_ledger(&self) -> Result<LedgerReport, StoreError> {
        let mut tx = self
            .pool()
            .begin_with(self.backend().begin_snapshot())
            .await?;
        let accounts = account_facts(&mut tx).await?;
        let flows = flow_facts(&mut tx).await?;
        tx.rollback().await?;
        Ok(check_invariants(&accounts, &flows))
    }

    /// A server-wide setting, if set.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets a server-wide setting unless it is already set, and returns the value
    /// that won. Two servers starting at once agree on one value.
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(self.pool())
            .await?;
        self.meta(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }
}

async fn account_facts(conn: &mut AnyConnection) -> Result<Vec<AccountFact>, StoreError> {
    let rows = conn
        .fetch_all("SELECT id, kind, currency, balance FROM accounts ORDER BY id")
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AccountFact {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                currency: row.try_get("currency")?,
                balance: row.try_get("balance")?,
            })
        })
        .collect()
}

/// Sums transfers per account and currency. Totals travel as text so a sum beyond
/// 64 bits is still exact (PostgreSQL sums BIGINT as NUMERIC).
async fn flow_facts(conn: &mut AnyConnection) -> Result<Vec<FlowFact>, StoreError> {
    let rows = conn
        .fetch_all(
            "SELECT from_account AS account, currency, CAST(SUM(amount) AS TEXT) AS total, CAST(0 AS BIGINT) AS inbound
               FROM transfers GROUP BY from_account, currency
             UNION ALL
             SELECT to_account AS account, currency, CAST(SUM(amount) AS TEXT) AS total, CAST(1 AS BIGINT) AS inbound
               FROM transfers GROUP BY to_account, currency",
        )
        .await?;
    let mut flows: Vec<FlowFact> = Vec::with_capacity(rows.len());
    for row in rows {
        let account: String = row.try_get("account")?;
        let currency: String = row.try_get("currency")?;
        let total: String = row.try_get("total")?;
        let total: i128 = total
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("transfer sum {total:?}")))?;
        let inbound: i64 = row.try_get("inbound")?;
        let (inflow, outflow) = if inbound == 1 { (total, 0) } else { (0, total) };
        flows.push(FlowFact {
            account,
            currency,
            inflow,
            outflow,
        });
    }
    Ok(flows)
}

// ---- mandates and the authorization path ----

use purser_types::{
    Approval, ApprovalId, Mandate, MandateId, Payout, PayoutId, Reservation, ReservationId, UnixMs,
    WalletPolicy,
};
use sqlx::AssertSqlSafe;

use crate::rows::{
    approval_from_row, mandate_from_row, payout_from_row, policy_from_row, reservation_from_row,
};
use crate::sql::{APPROVALS, MANDATES, PAYOUTS, RESERVATIONS, TableSpec};

/// `SELECT <every column of table> FROM <table> <tail>`.
pub(crate) fn select(table: &TableSpec, tail: &str) -> AssertSqlSafe<String> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    AssertSqlSafe(format!(
        "SELECT {} FROM {} {tail}",
        columns.join(", "),
        table.name
    ))
}

/// Which mandates to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct MandateFilter {
    /// Only this agent's.
    pub agent: Option<AgentId>,
    /// Only those stored with this status (`pending_signature`, `signed`, …).
    pub status: Option<&'static str>,
}

impl Store {
    /// A mandate by id.
    pub async fn mandate(&self, id: MandateId) -> Result<Option<Mandate>, StoreError> {
        let row = sqlx::query(select(&MANDATES, "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .as_ref()
            .map(mandate_from_row)
            .transpose()?
            .map(|m| m.value))
    }

    /// A wallet's mandates, newest first; `page.before` is a `createdAt` in ms.
    pub async fn mandates(
        &self,
        wallet: WalletId,
        filter: MandateFilter,
        page: Page,
    ) -> Result<Vec<Mandate>, StoreError> {
        let (before, limit) = page.bounds();
        let rows = sqlx::query(select(
            &MANDATES,
            "WHERE wallet_id = $1 AND ($2 IS NULL OR agent_id = $2) AND ($3 IS NULL OR status = $3)
             AND created_at_ms < $4 ORDER BY created_at_ms DESC, id DESC LIMIT $5",
        ))
        .bind(wallet.to_string())
        .bind(filter.agent.map(|a| a.to_string()))
        .bind(filter.status)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| mandate_from_row(r).map(|m| m.value))
            .collect()
    }

    /// An agent's signed mandates that have not ended by `now`.
    pub async fn mandates_in_force(
        &self,
        agent: AgentId,
        now: UnixMs,
    ) -> Result<Vec<Mandate>, StoreError> {
        let rows = sqlx::query(select(
            &MANDATES,
            "WHERE agent_id = $1 AND status = 'signed' AND valid_until_ms > $2 ORDER BY id",
        ))
        .bind(agent.to_string())
        .bind(now.millis())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| mandate_from_row(r).map(|m| m.value))
            .collect()
    }

    /// A reservation by id.
    pub async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        let row = sqlx::query(select(&RESERVATIONS, "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .as_ref()
            .map(reservation_from_row)
            .transpose()?
            .map(|r| r.value))
    }

    /// An approval by id.
    pub async fn approval(&self, id: ApprovalId) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(select(&APPROVALS, "WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .as_ref()
            .map(approval_from_row)
            .transpose()?
            .map(|a| a.value))
    }

    /// A wallet's approvals, newest first, optionally only those stored with `status`.
    pub async fn approvals(
        &self,
        wallet: WalletId,
        status: Option<&'static str>,
        page: Page,
    ) -> Result<Vec<Approval>, StoreError> {
        let (before, limit) = page.bounds();
        let rows = sqlx::query(select(
            &APPROVALS,
            "WHERE wallet_id = $1 AND ($2 IS NULL OR status = $2) AND created_at_ms < $3
             ORDER BY created_at_ms DESC, id DESC LIMIT $4",
        ))
        .bind(wallet.to_string())
        .bind(status)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| approval_from_row(r).map(|a| a.value))
            .collect()
    }

    /// A payout by its caller-chosen id, within a wallet.
    pub async fn payout(
        &self,
        wallet: WalletId,
        id: &PayoutId,
    ) -> Result<Option<Payout>, StoreError> {
        let row = sqlx::query(select(&PAYOUTS, "WHERE wallet_id = $1 AND id = $2"))
            .bind(wallet.to_string())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .as_ref()
            .map(payout_from_row)
            .transpose()?
            .map(|p| p.value))
    }

    /// A wallet's payouts, newest first, optionally only those with `status`.
    pub async fn payouts(
        &self,
        wallet: WalletId,
        status: Option<&'static str>,
        page: Page,
    ) -> Result<Vec<Payout>, StoreError> {
        let (before, limit) = page.bounds();
        let rows = sqlx::query(select(
            &PAYOUTS,
            "WHERE wallet_id = $1 AND ($2 IS NULL OR status = $2) AND created_at_ms < $3
             ORDER BY created_at_ms DESC, id DESC LIMIT $4",
        ))
        .bind(wallet.to_string())
        .bind(status)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| payout_from_row(r).map(|p| p.value))
            .collect()
    }

    /// A wallet's policy, if one was set.
    pub async fn policy(&self, wallet: WalletId) -> Result<Option<WalletPolicy>, StoreError> {
        let row =
            sqlx::query("SELECT wallet_id, policy, version FROM policies WHERE wallet_id = $1")
                .bind(wallet.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(row
            .as_ref()
            .map(policy_from_row)
            .transpose()?
            .map(|(_, p)| p.value))
    }

    /// The wallet with this EVM address, in any letter case.
    pub async fn wallet_by_address(&self, address: &str) -> Result<Option<Wallet>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            wallet_columns!(),
            " FROM wallets WHERE LOWER(address) = LOWER($1)"
        ))
        .bind(address)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(wallet_from_row).transpose()
    }
}

impl Store {
    /// The payout waiting for this approval, if any.
    pub async fn payout_by_approval(
        &self,
        wallet: WalletId,
        approval: ApprovalId,
    ) -> Result<Option<Payout>, StoreError> {
        let row = sqlx::query(select(
            &PAYOUTS,
            "WHERE wallet_id = $1 AND approval_id = $2",
        ))
        .bind(wallet.to_string())
        .bind(approval.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .as_ref()
            .map(payout_from_row)
            .transpose()?
            .map(|p| p.value))
    }

    /// Authorized external payouts (those waiting for their on-chain leg), oldest first.
    pub async fn authorized_external_payouts(&self, limit: u32) -> Result<Vec<Payout>, StoreError> {
        let rows = sqlx::query(select(
            &PAYOUTS,
            "WHERE status = 'authorized' AND rail = 'external' ORDER BY created_at_ms LIMIT $1",
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| payout_from_row(r).map(|p| p.value))
            .collect()
    }
}
