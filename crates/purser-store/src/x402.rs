//! x402 records that live beside the ledger rather than in it: the facilitator's
//! settlements and the signed authorizations a wallet pays with (x402 payments and
//! on-chain payouts). They go straight to the pool
//! (each statement commits on its own, durably); money moves only through the
//! committer's reservations, which these rows point at.

use purser_types::{AgentId, PayoutId, ReservationId, UnixMs, Usdc, WalletId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::rows::{amount, parse, parse_opt, time};
use crate::{Store, StoreError};

/// Where a facilitator settlement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementStatus {
    /// Claimed; the transaction is being sent.
    Submitting,
    /// Sent; no receipt yet.
    Pending,
    /// Mined, and the transfer happened.
    Settled,
    /// Reverted or refused.
    Failed,
}

impl SettlementStatus {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            SettlementStatus::Submitting => "submitting",
            SettlementStatus::Pending => "pending",
            SettlementStatus::Settled => "settled",
            SettlementStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        [Self::Submitting, Self::Pending, Self::Settled, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("settlement status {text:?}")))
    }
}

/// One settlement, keyed by (network, payer, nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// CAIP-2 network.
    pub network: String,
    /// The payer (checksummed).
    pub payer: String,
    /// The authorization nonce (0x hex).
    pub nonce: String,
    /// The payee.
    pub pay_to: String,
    /// The amount.
    pub amount: Usdc,
    /// Where it stands.
    pub status: SettlementStatus,
    /// The transaction, once sent.
    pub tx_hash: Option<String>,
    /// Why it failed.
    pub error_reason: Option<String>,
}

/// Where a buyer's signed authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X402PaymentStatus {
    /// Signed and handed to the agent; the reservation holds the funds.
    Signed,
    /// Seen settled on chain; the reservation is committed.
    Settled,
    /// Canceled or expired unused on chain; the reservation is released.
    Failed,
}

impl X402PaymentStatus {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            X402PaymentStatus::Signed => "signed",
            X402PaymentStatus::Settled => "settled",
            X402PaymentStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        [Self::Signed, Self::Settled, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("x402 payment status {text:?}")))
    }
}

/// An authorization a wallet signed: for an x402 payment, or for a payout that the
/// relayer sends on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X402Payment {
    /// The reservation that holds its funds.
    pub reservation_id: ReservationId,
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// The agent that asked.
    pub agent_id: AgentId,
    /// CAIP-2 network.
    pub network: String,
    /// The payee address.
    pub pay_to: String,
    /// The wallet's address.
    pub payer: String,
    /// The amount.
    pub amount: Usdc,
    /// The EIP-3009 nonce (0x hex), derived from the reservation.
    pub nonce: String,
    /// Unix seconds; after this the authorization can no longer be used.
    pub valid_before: i64,
    /// The resource paid for (empty for a payout).
    pub url: String,
    /// The payout it pays, if it is one.
    pub payout_id: Option<PayoutId>,
    /// Where it stands.
    pub status: X402PaymentStatus,
    /// The settlement transaction, once known.
    pub tx_hash: Option<String>,
    /// When it was signed.
    pub created_at: UnixMs,
}

fn settlement_from_row(row: &AnyRow) -> Result<Settlement, StoreError> {
    Ok(Settlement {
        network: row.try_get("network")?,
        payer: row.try_get("payer")?,
        nonce: row.try_get("nonce")?,
        pay_to: row.try_get("pay_to")?,
        amount: amount(row, "amount")?,
        status: SettlementStatus::parse(&row.try_get::<String, _>("status")?)?,
        tx_hash: row.try_get("tx_hash")?,
        error_reason: row.try_get("error_reason")?,
    })
}

fn payment_from_row(row: &AnyRow) -> Result<X402Payment, StoreError> {
    Ok(X402Payment {
        reservation_id: parse(row, "reservation_id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse(row, "agent_id")?,
        network: row.try_get("network")?,
        pay_to: row.try_get("pay_to")?,
        payer: row.try_get("payer")?,
        amount: amount(row, "amount")?,
        nonce: row.try_get("nonce")?,
        valid_before: row.try_get("valid_before")?,
        url: row.try_get("url")?,
        payout_id: parse_opt(row, "payout_id")?,
        status: X402PaymentStatus::parse(&row.try_get::<String, _>("status")?)?,
        tx_hash: row.try_get("tx_hash")?,
        created_at: time(row, "created_at_ms")?,
    })
}

const SETTLEMENT_COLUMNS: &str =
    "network, payer, nonce, pay_to, amount, status, tx_hash, error_reason";
const PAYMENT_COLUMNS: &str = "reservation_id, wallet_id, agent_id, network, pay_to, payer, \
    amount, nonce, valid_before, url, status, tx_hash, created_at_ms, payout_id";

impl Store {
    /// The settlement of (network, payer, nonce), if any.
    pub async fn settlement(
        &self,
        network: &str,
        payer: &str,
        nonce: &str,
    ) -> Result<Option<Settlement>, StoreError> {
        let sql = format!(
            "SELECT {SETTLEMENT_COLUMNS} FROM x402_settlements \
             WHERE network = $1 AND payer = $2 AND nonce = $3"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(network)
            .bind(payer)
            .bind(nonce)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(settlement_from_row).transpose()
    }

    /// Claims a settlement (status `submitting`); `false` when another caller holds it.
    pub async fn claim_settlement(
        &self,
        settlement: &Settlement,
        at: UnixMs,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO x402_settlements (network, payer, nonce, pay_to, amount, status, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'submitting', $6, $6) \
             ON CONFLICT (network, payer, nonce) DO NOTHING",
        )
        .bind(&settlement.network)
        .bind(&settlement.payer)
        .bind(&settlement.nonce)
        .bind(&settlement.pay_to)
        .bind(settlement.amount.atomic_i64())
        .bind(at.millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records where a settlement stands.
    pub async fn update_settlement(
        &self,
        settlement: &Settlement,
        at: UnixMs,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE x402_settlements SET status = $1, tx_hash = $2, error_reason = $3, \
             updated_at_ms = $4 WHERE network = $5 AND payer = $6 AND nonce = $7",
        )
        .bind(settlement.status.as_str())
        .bind(settlement.tx_hash.as_deref())
        .bind(settlement.error_reason.as_deref())
        .bind(at.millis())
        .bind(&settlement.network)
        .bind(&settlement.payer)
        .bind(&settlement.nonce)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops a claim whose transaction was never sent, so the payment may be tried again.
    pub async fn drop_settlement_claim(&self, settlement: &Settlement) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM x402_settlements WHERE network = $1 AND payer = $2 AND nonce = $3 \
             AND status = 'submitting'",
        )
        .bind(&settlement.network)
        .bind(&settlement.payer)
        .bind(&settlement.nonce)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a signed authorization.
    pub async fn insert_x402_payment(&self, payment: &X402Payment) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO x402_payments ({PAYMENT_COLUMNS}, updated_at_ms) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(payment.reservation_id.to_string())
            .bind(payment.wallet_id.to_string())
            .bind(payment.agent_id.to_string())
            .bind(&payment.network)
            .bind(&payment.pay_to)
            .bind(&payment.payer)
            .bind(payment.amount.atomic_i64())
            .bind(&payment.nonce)
            .bind(payment.valid_before)
            .bind(&payment.url)
            .bind(payment.status.as_str())
            .bind(payment.tx_hash.as_deref())
            .bind(payment.created_at.millis())
            .bind(payment.payout_id.as_ref().map(PayoutId::as_str))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The authorization signed under a reservation.
    pub async fn x402_payment(
        &self,
        reservation: ReservationId,
    ) -> Result<Option<X402Payment>, StoreError> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM x402_payments WHERE reservation_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(reservation.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// The authorization a wallet signed with this nonce (`0x…` lowercase hex).
    pub async fn x402_payment_by_nonce(
        &self,
        payer: &str,
        nonce: &str,
    ) -> Result<Option<X402Payment>, StoreError> {
        let sql =
            format!("SELECT {PAYMENT_COLUMNS} FROM x402_payments WHERE payer = $1 AND nonce = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(payer)
            .bind(nonce)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// Signed authorizations still open, oldest deadline first.
    pub async fn open_x402_payments(&self, limit: u32) -> Result<Vec<X402Payment>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM x402_payments WHERE status = 'signed' \
             ORDER BY valid_before LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Notes the transaction that carries a signed authorization, before it is mined.
    pub async fn note_x402_tx(
        &self,
        reservation: ReservationId,
        tx_hash: &str,
        at: UnixMs,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE x402_payments SET tx_hash = $1, updated_at_ms = $2 \
             WHERE reservation_id = $3 AND status = 'signed'",
        )
        .bind(tx_hash)
        .bind(at.millis())
        .bind(reservation.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves a signed authorization to its outcome; `false` if it was not open.
    pub async fn close_x402_payment(
        &self,
        reservation: ReservationId,
        status: X402PaymentStatus,
        tx_hash: Option<&str>,
        at: UnixMs,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE x402_payments SET status = $1, tx_hash = COALESCE($2, tx_hash), \
             updated_at_ms = $3 WHERE reservation_id = $4 AND status = 'signed'",
        )
        .bind(status.as_str())
        .bind(tx_hash)
        .bind(at.millis())
        .bind(reservation.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Every wallet's id and address, for the deposit scanner.
    pub async fn wallet_addresses(&self) -> Result<Vec<(WalletId, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, address FROM wallets ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((parse(row, "id")?, row.try_get("address")?)))
            .collect()
    }

    /// Sets a metadata value (the deposit scanner's cursor).
    pub async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
