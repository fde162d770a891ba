//! AgentCharge rows: payment links, the payments they received, refunds and the
//! webhook outbox. Like the x402 records they live beside the ledger (money moves
//! only through reservations), but every change that matters is written in one
//! transaction with its audit records, chained after the head the committer
//! uses: the head is locked first (`FOR UPDATE` on PostgreSQL, the write lock on
//! SQLite), so the chain stays one line whoever appends.

use purser_core::audit::ChainHead;
use purser_types::{
    AuditEvent, DeliveryStatus, LinkStatus, PaymentLink, PaymentLinkId, ReceivedPayment,
    ReceivedPaymentId, ReceivedStatus, Refund, RefundId, RefundStatus, Secret, UnixMs, WalletId,
    WebhookEvent,
};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::load::head_from_rows;
use crate::read::Page;
use crate::rows::{amount, decode, parse, parse_opt, time, time_opt};
use crate::{Store, StoreError};

/// A write transaction that holds the audit chain's head.
struct Audited {
    tx: Transaction<'static, Any>,
    head: ChainHead,
}

impl Store {
    async fn begin_audited(&self) -> Result<Audited, StoreError> {
        let backend = self.backend();
        let mut tx = self.pool().begin_with(backend.begin_write()).await?;
        let rows = sqlx::query(backend.lock_audit_head())
            .fetch_all(&mut *tx)
            .await?;
        let head = head_from_rows(rows)?;
        Ok(Audited { tx, head })
    }
}

impl Audited {
    /// Appends the records, moves the head and commits.
    async fn commit(mut self, at: UnixMs, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        for event in events {
            let record = self.head.append(at, event);
            sqlx::query(
                "INSERT INTO audit_log (seq, at_ms, actor, action, wallet_id, subject, details, \
                 prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(i64::try_from(record.seq).map_err(|_| StoreError::Corrupt("audit seq".into()))?)
            .bind(record.at.millis())
            .bind(record.event.actor.to_string())
            .bind(record.event.action)
            .bind(record.event.wallet_id.map(|w| w.to_string()))
            .bind(record.event.subject)
            .bind(record.event.details)
            .bind(record.prev_hash.to_string())
            .bind(record.hash.to_string())
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(
                i64::try_from(self.head.seq)
                    .map_err(|_| StoreError::Corrupt("audit seq".into()))?,
            )
            .bind(self.head.hash.to_string())
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

const LINK_COLUMNS: &str = "id, wallet_id, agent_id, amount, description, resource_content, \
    resource_url, expires_at_ms, max_uses, uses_count, status, webhook_url, created_at_ms, \
    updated_at_ms";
const PAYMENT_COLUMNS: &str = "id, link_id, wallet_id, amount, network, payer, nonce, tx_hash, \
    status, refunded_amount, created_at_ms, updated_at_ms";
const REFUND_COLUMNS: &str = "id, payment_id, wallet_id, agent_id, amount, to_address, reason, \
    payout_id, approval_id, status, settlement, created_at_ms, updated_at_ms";
const EVENT_COLUMNS: &str = "id, wallet_id, link_id, url, event_type, payload, status, attempts, \
    next_attempt_at_ms, last_error, created_at_ms";

fn count(row: &AnyRow, column: &str) -> Result<u32, StoreError> {
    let raw: i64 = row.try_get(column)?;
    u32::try_from(raw).map_err(|_| StoreError::Corrupt(format!("{column}: {raw}")))
}

fn link_from_row(row: &AnyRow) -> Result<PaymentLink, StoreError> {
    Ok(PaymentLink {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse_opt(row, "agent_id")?,
        amount: amount(row, "amount")?,
        description: row.try_get("description")?,
        resource_content: row.try_get("resource_content")?,
        resource_url: row.try_get("resource_url")?,
        expires_at: time_opt(row, "expires_at_ms")?,
        max_uses: row
            .try_get::<Option<i64>, _>("max_uses")?
            .map(|m| u32::try_from(m).map_err(|_| StoreError::Corrupt(format!("max_uses {m}"))))
            .transpose()?,
        uses_count: count(row, "uses_count")?,
        status: decode(row, "status", LinkStatus::parse)?,
        webhook_url: row.try_get("webhook_url")?,
        created_at: time(row, "created_at_ms")?,
        updated_at: time(row, "updated_at_ms")?,
    })
}

fn payment_from_row(row: &AnyRow) -> Result<ReceivedPayment, StoreError> {
    Ok(ReceivedPayment {
        id: parse(row, "id")?,
        link_id: parse(row, "link_id")?,
        wallet_id: parse(row, "wallet_id")?,
        amount: amount(row, "amount")?,
        network: row.try_get("network")?,
        payer: row.try_get("payer")?,
        nonce: row.try_get("nonce")?,
        transaction: row.try_get("tx_hash")?,
        status: decode(row, "status", ReceivedStatus::parse)?,
        refunded_amount: amount(row, "refunded_amount")?,
        created_at: time(row, "created_at_ms")?,
        updated_at: time(row, "updated_at_ms")?,
    })
}

fn refund_from_row(row: &AnyRow) -> Result<Refund, StoreError> {
    Ok(Refund {
        id: parse(row, "id")?,
        payment_id: parse(row, "payment_id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse(row, "agent_id")?,
        amount: amount(row, "amount")?,
        to_address: row.try_get("to_address")?,
        reason: row.try_get("reason")?,
        payout_id: parse(row, "payout_id")?,
        approval_id: parse_opt(row, "approval_id")?,
        status: decode(row, "status", RefundStatus::parse)?,
        settlement: row.try_get("settlement")?,
        created_at: time(row, "created_at_ms")?,
        updated_at: time(row, "updated_at_ms")?,
    })
}

fn event_from_row(row: &AnyRow) -> Result<WebhookEvent, StoreError> {
    Ok(WebhookEvent {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        link_id: parse(row, "link_id")?,
        url: row.try_get("url")?,
        event_type: row.try_get("event_type")?,
        payload: row.try_get("payload")?,
        status: decode(row, "status", DeliveryStatus::parse)?,
        attempts: count(row, "attempts")?,
        next_attempt_at: time(row, "next_attempt_at_ms")?,
        last_error: row.try_get("last_error")?,
        created_at: time(row, "created_at_ms")?,
    })
}

/// The outcome of trying to take one of a link's uses for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseClaim {
    /// The use is taken and the payment recorded as `settling`.
    Taken,
    /// The link takes no payment now (disabled, expired or out of uses).
    Closed,
    /// This authorization already paid (or is paying) the link.
    Existing(ReceivedPayment),
}

async fn insert_event(
    tx: &mut Transaction<'static, Any>,
    event: &WebhookEvent,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO webhook_events ({EVENT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(event.id.to_string())
        .bind(event.wallet_id.to_string())
        .bind(event.link_id.to_string())
        .bind(&event.url)
        .bind(&event.event_type)
        .bind(&event.payload)
        .bind(event.status.as_str())
        .bind(i64::from(event.attempts))
        .bind(event.next_attempt_at.millis())
        .bind(event.last_error.as_deref())
        .bind(event.created_at.millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Payment links.
impl Store {
    /// Records a new link (and its webhook signing secret) with its audit record.
    pub async fn insert_payment_link(
        &self,
        link: &PaymentLink,
        webhook_secret: Option<&Secret<String>>,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut audited = self.begin_audited().await?;
        let sql = format!(
            "INSERT INTO payment_links ({LINK_COLUMNS}, webhook_secret) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(link.id.to_string())
            .bind(link.wallet_id.to_string())
            .bind(link.agent_id.map(|a| a.to_string()))
            .bind(link.amount.atomic_i64())
            .bind(&link.description)
            .bind(link.resource_content.as_deref())
            .bind(link.resource_url.as_deref())
            .bind(link.expires_at.map(UnixMs::millis))
            .bind(link.max_uses.map(i64::from))
            .bind(i64::from(link.uses_count))
            .bind(link.status.as_str())
            .bind(link.webhook_url.as_deref())
            .bind(link.created_at.millis())
            .bind(link.updated_at.millis())
            .bind(webhook_secret.map(|s| s.expose().clone()))
            .execute(&mut *audited.tx)
            .await?;
        audited.commit(link.created_at, vec![event]).await
    }

    /// Saves a link's editable terms (never its use count), a new webhook secret if
    /// given, and the audit record; `false` when the link does not exist or its
    /// maximum would fall below the uses already taken.
    pub async fn update_payment_link(
        &self,
        link: &PaymentLink,
        webhook_secret: Option<&Secret<String>>,
        event: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut audited = self.begin_audited().await?;
        let done = sqlx::query(
            "UPDATE payment_links SET description = $1, resource_content = $2, \
             resource_url = $3, expires_at_ms = $4, max_uses = $5, status = $6, \
             webhook_url = $7, webhook_secret = COALESCE($8, webhook_secret), \
             updated_at_ms = $9 WHERE id = $10 AND ($5 IS NULL OR uses_count <= $5)",
        )
        .bind(&link.description)
        .bind(link.resource_content.as_deref())
        .bind(link.resource_url.as_deref())
        .bind(link.expires_at.map(UnixMs::millis))
        .bind(link.max_uses.map(i64::from))
        .bind(link.status.as_str())
        .bind(link.webhook_url.as_deref())
        .bind(webhook_secret.map(|s| s.expose().clone()))
        .bind(link.updated_at.millis())
        .bind(link.id.to_string())
        .execute(&mut *audited.tx)
        .await?;
        if done.rows_affected() != 1 {
            audited.tx.rollback().await?;
            return Ok(false);
        }
        audited.commit(link.updated_at, vec![event]).await?;
        Ok(true)
    }

    /// A link.
    pub async fn payment_link(&self, id: PaymentLinkId) -> Result<Option<PaymentLink>, StoreError> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM payment_links WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// A link's webhook signing secret.
    pub async fn payment_link_secret(
        &self,
        id: PaymentLinkId,
    ) -> Result<Option<Secret<String>>, StoreError> {
        let row = sqlx::query("SELECT webhook_secret FROM payment_links WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("webhook_secret"))
            .transpose()?
            .flatten()
            .map(Secret::new))
    }

    /// A wallet's links, newest first.
    pub async fn payment_links(
        &self,
        wallet: WalletId,
        page: Page,
    ) -> Result<Vec<PaymentLink>, StoreError> {
        let (before, limit) = page.bounds();
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM payment_links WHERE wallet_id = $1 \
             AND created_at_ms < $2 ORDER BY created_at_ms DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(wallet.to_string())
            .bind(before)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(link_from_row).collect()
    }
}

/// Payments received through links.
impl Store {
    /// Takes one of the link's uses for `payment` (status `settling`), atomically:
    /// the link must be active, unexpired at `payment.created_at` and have a use
    /// left. An authorization that already paid the link gets its payment back.
    pub async fn claim_link_use(&self, payment: &ReceivedPayment) -> Result<UseClaim, StoreError> {
        let mut tx = self.pool().begin_with(self.backend().begin_write()).await?;
        let sql = format!(
            "INSERT INTO link_payments ({PAYMENT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"
        );
        let inserted = sqlx::query(AssertSqlSafe(sql))
            .bind(payment.id.to_string())
            .bind(payment.link_id.to_string())
            .bind(payment.wallet_id.to_string())
            .bind(payment.amount.atomic_i64())
            .bind(&payment.network)
            .bind(&payment.payer)
            .bind(&payment.nonce)
            .bind(payment.transaction.as_deref())
            .bind(ReceivedStatus::Settling.as_str())
            .bind(0_i64)
            .bind(payment.created_at.millis())
            .bind(payment.created_at.millis())
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() != 1 {
            tx.rollback().await?;
            let existing = self
                .link_payment_by_nonce(&payment.network, &payment.payer, &payment.nonce)
                .await?
                .ok_or_else(|| StoreError::Corrupt("a link payment vanished".into()))?;
            return Ok(UseClaim::Existing(existing));
        }
        let taken = sqlx::query(
            "UPDATE payment_links SET uses_count = uses_count + 1, updated_at_ms = $1 \
             WHERE id = $2 AND status = 'active' \
             AND (expires_at_ms IS NULL OR expires_at_ms > $1) \
             AND (max_uses IS NULL OR uses_count < max_uses)",
        )
        .bind(payment.created_at.millis())
        .bind(payment.link_id.to_string())
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(UseClaim::Closed);
        }
        tx.commit().await?;
        Ok(UseClaim::Taken)
    }

    /// The live (settling or settled) payment made with this authorization.
    pub async fn link_payment_by_nonce(
        &self,
        network: &str,
        payer: &str,
        nonce: &str,
    ) -> Result<Option<ReceivedPayment>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM link_payments WHERE network = $1 AND payer = $2 \
             AND nonce = $3 AND status <> 'failed'"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(network)
            .bind(payer)
            .bind(nonce)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// A settling payment arrived: records its transaction, its webhook event (if
    /// the link has a webhook) and its audit record; `false` if it was not settling.
    pub async fn settle_link_payment(
        &self,
        id: ReceivedPaymentId,
        transaction: &str,
        at: UnixMs,
        webhook: Option<&WebhookEvent>,
        event: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut audited = self.begin_audited().await?;
        let done = sqlx::query(
            "UPDATE link_payments SET status = 'settled', tx_hash = $1, updated_at_ms = $2 \
             WHERE id = $3 AND status = 'settling'",
        )
        .bind(transaction)
        .bind(at.millis())
        .bind(id.to_string())
        .execute(&mut *audited.tx)
        .await?;
        if done.rows_affected() != 1 {
            audited.tx.rollback().await?;
            return Ok(false);
        }
        if let Some(webhook) = webhook {
            insert_event(&mut audited.tx, webhook).await?;
        }
        audited.commit(at, vec![event]).await?;
        Ok(true)
    }

    /// A settling payment failed: it is marked `failed` and its link's use is given
    /// back; `false` if it was not settling.
    pub async fn fail_link_payment(
        &self,
        payment: &ReceivedPayment,
        at: UnixMs,
        event: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut audited = self.begin_audited().await?;
        let done = sqlx::query(
            "UPDATE link_payments SET status = 'failed', updated_at_ms = $1 \
             WHERE id = $2 AND status = 'settling'",
        )
        .bind(at.millis())
        .bind(payment.id.to_string())
        .execute(&mut *audited.tx)
        .await?;
        if done.rows_affected() != 1 {
            audited.tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE payment_links SET uses_count = uses_count - 1, updated_at_ms = $1 \
             WHERE id = $2",
        )
        .bind(at.millis())
        .bind(payment.link_id.to_string())
        .execute(&mut *audited.tx)
        .await?;
        audited.commit(at, vec![event]).await?;
        Ok(true)
    }

    /// A received payment.
    pub async fn received_payment(
        &self,
        id: ReceivedPaymentId,
    ) -> Result<Option<ReceivedPayment>, StoreError> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM link_payments WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// A wallet's received payments (of one link, if named), newest first.
    pub async fn received_payments(
        &self,
        wallet: WalletId,
        link: Option<PaymentLinkId>,
        page: Page,
    ) -> Result<Vec<ReceivedPayment>, StoreError> {
        let (before, limit) = page.bounds();
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM link_payments WHERE wallet_id = $1 \
             AND ($2 = '' OR link_id = $2) AND created_at_ms < $3 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(wallet.to_string())
            .bind(link.map(|l| l.to_string()).unwrap_or_default())
            .bind(before)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Payments still settling that were last touched before `before`, oldest first:
    /// a crash left them between the use claim and the settlement's outcome.
    pub async fn stale_link_payments(
        &self,
        before: UnixMs,
        limit: u32,
    ) -> Result<Vec<ReceivedPayment>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM link_payments WHERE status = 'settling' \
             AND updated_at_ms < $1 ORDER BY updated_at_ms LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(before.millis())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(payment_from_row).collect()
    }
}

/// Refunds.
impl Store {
    /// Records a new refund, taking its amount from what is left of the payment to
    /// refund; `false` (nothing written) when the payment is not settled or the
    /// amount is more than what is left.
    pub async fn insert_refund(
        &self,
        refund: &Refund,
        event: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut audited = self.begin_audited().await?;
        let taken = sqlx::query(
            "UPDATE link_payments SET refunded_amount = refunded_amount + $1, updated_at_ms = $2 \
             WHERE id = $3 AND status = 'settled' AND refunded_amount + $1 <= amount",
        )
        .bind(refund.amount.atomic_i64())
        .bind(refund.created_at.millis())
        .bind(refund.payment_id.to_string())
        .execute(&mut *audited.tx)
        .await?;
        if taken.rows_affected() != 1 {
            audited.tx.rollback().await?;
            return Ok(false);
        }
        let sql = format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(refund.id.to_string())
            .bind(refund.payment_id.to_string())
            .bind(refund.wallet_id.to_string())
            .bind(refund.agent_id.to_string())
            .bind(refund.amount.atomic_i64())
            .bind(&refund.to_address)
            .bind(refund.reason.as_deref())
            .bind(refund.payout_id.as_str())
            .bind(refund.approval_id.map(|a| a.to_string()))
            .bind(refund.status.as_str())
            .bind(refund.settlement.as_deref())
            .bind(refund.created_at.millis())
            .bind(refund.updated_at.millis())
            .execute(&mut *audited.tx)
            .await?;
        audited.commit(refund.created_at, vec![event]).await?;
        Ok(true)
    }

    /// Notes the approval a pending refund waits for.
    pub async fn note_refund_approval(&self, refund: &Refund) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refunds SET approval_id = $1, updated_at_ms = $2 \
             WHERE id = $3 AND status = 'pending'",
        )
        .bind(refund.approval_id.map(|a| a.to_string()))
        .bind(refund.updated_at.millis())
        .bind(refund.id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends a pending refund in `refund.status`: an unsettled end gives its amount
    /// back to what may be refunded. With its webhook event and audit record;
    /// `false` if it was no longer pending.
    pub async fn finish_refund(
        &self,
        refund: &Refund,
        webhook: Option<&WebhookEvent>,
        event: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut audited = self.begin_audited().await?;
        let done = sqlx::query(
            "UPDATE refunds SET status = $1, settlement = $2, updated_at_ms = $3 \
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(refund.status.as_str())
        .bind(refund.settlement.as_deref())
        .bind(refund.updated_at.millis())
        .bind(refund.id.to_string())
        .execute(&mut *audited.tx)
        .await?;
        if done.rows_affected() != 1 {
            audited.tx.rollback().await?;
            return Ok(false);
        }
        if refund.status != RefundStatus::Settled {
            sqlx::query(
                "UPDATE link_payments SET refunded_amount = refunded_amount - $1, \
                 updated_at_ms = $2 WHERE id = $3",
            )
            .bind(refund.amount.atomic_i64())
            .bind(refund.updated_at.millis())
            .bind(refund.payment_id.to_string())
            .execute(&mut *audited.tx)
            .await?;
        }
        if let Some(webhook) = webhook {
            insert_event(&mut audited.tx, webhook).await?;
        }
        audited.commit(refund.updated_at, vec![event]).await?;
        Ok(true)
    }

    /// A refund.
    pub async fn refund(&self, id: RefundId) -> Result<Option<Refund>, StoreError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(refund_from_row).transpose()
    }

    /// The refund a payout carries, if it carries one.
    pub async fn refund_by_payout(&self, payout: &str) -> Result<Option<Refund>, StoreError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE payout_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(payout)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(refund_from_row).transpose()
    }

    /// A wallet's refunds, newest first.
    pub async fn refunds(&self, wallet: WalletId, page: Page) -> Result<Vec<Refund>, StoreError> {
        let (before, limit) = page.bounds();
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE wallet_id = $1 AND created_at_ms < $2 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(wallet.to_string())
            .bind(before)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(refund_from_row).collect()
    }

    /// Pending refunds, oldest first (for the background task).
    pub async fn pending_refunds(&self, limit: u32) -> Result<Vec<Refund>, StoreError> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = 'pending' \
             ORDER BY created_at_ms LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(refund_from_row).collect()
    }
}

/// The webhook outbox.
impl Store {
    /// Events due for an attempt at `now`, oldest first.
    pub async fn due_webhook_events(
        &self,
        now: UnixMs,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE status = 'pending' \
             AND next_attempt_at_ms <= $1 ORDER BY next_attempt_at_ms, id LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Leases a due event for one attempt (moves its next attempt to `until`);
    /// `false` when another server took it first.
    pub async fn lease_webhook_event(
        &self,
        event: &WebhookEvent,
        until: UnixMs,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_events SET next_attempt_at_ms = $1 \
             WHERE id = $2 AND status = 'pending' AND next_attempt_at_ms = $3",
        )
        .bind(until.millis())
        .bind(event.id.to_string())
        .bind(event.next_attempt_at.millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records one delivery attempt's result (the event as it stands after it).
    pub async fn record_webhook_attempt(
        &self,
        event: &WebhookEvent,
        at: UnixMs,
    ) -> Result<(), StoreError> {
        let delivered_at = (event.status == DeliveryStatus::Delivered).then_some(at.millis());
        sqlx::query(
            "UPDATE webhook_events SET status = $1, attempts = $2, next_attempt_at_ms = $3, \
             last_error = $4, delivered_at_ms = $5 WHERE id = $6 AND status = 'pending'",
        )
        .bind(event.status.as_str())
        .bind(i64::from(event.attempts))
        .bind(event.next_attempt_at.millis())
        .bind(event.last_error.as_deref())
        .bind(delivered_at)
        .bind(event.id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A wallet's webhook events, newest first.
    pub async fn webhook_events(
        &self,
        wallet: WalletId,
        page: Page,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        let (before, limit) = page.bounds();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE wallet_id = $1 \
             AND created_at_ms < $2 ORDER BY created_at_ms DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(wallet.to_string())
            .bind(before)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }
}
