//! Reads for the owner's dashboard: payments with filters and keyset pages, spend
//! summed by day and by destination, and the password hash used at sign-in. The
//! sums run over the `reservations_spend` index only, and each payment filter has
//! an index of its own (migration 0006).

use std::fmt;
use std::str::FromStr;

use purser_types::{AgentId, Reservation, ReservationId, UnixMs, Usdc, WalletId};
use sqlx::Row;

use crate::read::select;
use crate::rows::reservation_from_row;
use crate::sql::RESERVATIONS;
use crate::{Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// Which payments to list. Every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only this agent's.
    pub agent: Option<AgentId>,
    /// Only those stored with this status (`held`, `committed`, `released`).
    pub status: Option<&'static str>,
    /// Only this kind (`payout`, `x402`, …).
    pub kind: Option<&'static str>,
    /// Only to this host (exact, normalized).
    pub host: Option<String>,
}

/// Where a newest-first page of payments continues: strictly older than this
/// (creation time, then id), so payments created in the same millisecond are
/// neither skipped nor repeated across pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCursor {
    /// The last listed payment's creation time.
    pub created_at: UnixMs,
    /// The last listed payment's id.
    pub id: ReservationId,
}

impl PaymentCursor {
    /// The cursor after `payment`.
    pub fn after(payment: &Reservation) -> Self {
        Self {
            created_at: payment.created_at,
            id: payment.id,
        }
    }
}

impl fmt::Display for PaymentCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.millis(), self.id)
    }
}

impl FromStr for PaymentCursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (millis, id) = text.split_once('.').ok_or(())?;
        Ok(Self {
            created_at: UnixMs(millis.parse().map_err(|_| ())?),
            id: id.parse().map_err(|_| ())?,
        })
    }
}

/// Committed spend to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendByHost {
    /// The payee host; `None` for payments to an address only (payouts).
    pub host: Option<String>,
    /// The total.
    pub amount: Usdc,
    /// How many payments.
    pub payments: u64,
}

fn usdc_sum(row: &sqlx::any::AnyRow, column: &str) -> Result<Usdc, StoreError> {
    // PostgreSQL sums BIGINT as NUMERIC: sums travel as text.
    let text: String = row.try_get(column)?;
    text.parse::<u64>()
        .ok()
        .and_then(|atomic| Usdc::from_atomic(atomic).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("spend sum {text:?}")))
}

impl Store {
    /// The Argon2id PHC string of a wallet's dashboard password, if it has one.
    pub async fn wallet_password_hash(&self, id: WalletId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM wallets WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("password_hash"))
            .transpose()?
            .flatten())
    }

    /// A wallet's payments (every reservation the authorization path made), newest
    /// first.
    ///
    /// The statement names only the filters given (one statement per combination,
    /// each prepared once per connection), so each filter can use its index of
    /// migration 0006 and a filter that matches few payments reads only those:
    /// a catch-all `($n IS NULL OR column = $n)` would leave every filter to be
    /// checked row by row down the whole wallet. The cursor bounds the index range
    /// (`created_at_ms <= t`) rather than sitting in an `OR` no index can use.
    pub async fn payments(
        &self,
        wallet: WalletId,
        filter: &PaymentFilter,
        before: Option<PaymentCursor>,
        limit: u32,
    ) -> Result<Vec<Reservation>, StoreError> {
        let mut conditions = vec!["wallet_id = $1".to_owned()];
        let mut values = vec![wallet.to_string()];
        let filters = [
            ("agent_id", filter.agent.map(|a| a.to_string())),
            ("status", filter.status.map(str::to_owned)),
            ("kind", filter.kind.map(str::to_owned)),
            ("payee_host", filter.host.clone()),
        ];
        for (column, value) in filters {
            if let Some(value) = value {
                values.push(value);
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        let mut next = values.len() + 1;
        if before.is_some() {
            let (at, id) = (next, next + 1);
            conditions.push(format!(
                "created_at_ms <= ${at} AND (created_at_ms < ${at} OR id < ${id})"
            ));
            next += 2;
        }
        let sql = select(
            &RESERVATIONS,
            &format!(
                "WHERE {} ORDER BY created_at_ms DESC, id DESC LIMIT ${next}",
                conditions.join(" AND ")
            ),
        );
        let mut query = sqlx::query(sql);
        for value in values {
            query = query.bind(value);
        }
        if let Some(cursor) = before {
            query = query
                .bind(cursor.created_at.millis())
                .bind(cursor.id.to_string());
        }
        let rows = query
            .bind(i64::from(limit.clamp(1, 500)))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| reservation_from_row(r).map(|v| v.value))
            .collect()
    }

    /// Committed spend per day for `days` days from `first_day_start` (the start
    /// of the first day in the viewer's zone), oldest first.
    pub async fn daily_spend(
        &self,
        wallet: WalletId,
        first_day_start: UnixMs,
        days: u32,
    ) -> Result<Vec<Usdc>, StoreError> {
        let start = first_day_start.millis();
        let end = start.saturating_add(DAY_MS.saturating_mul(i64::from(days)));
        let rows = sqlx::query(
            "SELECT (created_at_ms - $2) / 86400000 AS day, CAST(SUM(amount) AS TEXT) AS total
               FROM reservations
              WHERE wallet_id = $1 AND created_at_ms >= $2 AND created_at_ms < $3 AND status = 'committed'
              GROUP BY 1",
        )
        .bind(wallet.to_string())
        .bind(start)
        .bind(end)
        .fetch_all(self.pool())
        .await?;
        let mut totals = vec![Usdc::ZERO; usize::try_from(days).unwrap_or(0)];
        for row in &rows {
            let day: i64 = row.try_get("day")?;
            let slot = usize::try_from(day)
                .ok()
                .and_then(|d| totals.get_mut(d))
                .ok_or_else(|| StoreError::Corrupt(format!("spend day {day}")))?;
            *slot = usdc_sum(row, "total")?;
        }
        Ok(totals)
    }

    /// Committed spend since `since` by destination host, largest first.
    pub async fn spend_by_host(
        &self,
        wallet: WalletId,
        since: UnixMs,
        limit: u32,
    ) -> Result<Vec<SpendByHost>, StoreError> {
        let rows = sqlx::query(
            "SELECT payee_host, CAST(SUM(amount) AS TEXT) AS total, COUNT(*) AS payments
               FROM reservations
              WHERE wallet_id = $1 AND created_at_ms >= $2 AND status = 'committed'
              GROUP BY payee_host ORDER BY SUM(amount) DESC, payee_host LIMIT $3",
        )
        .bind(wallet.to_string())
        .bind(since.millis())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let payments: i64 = row.try_get("payments")?;
                Ok(SpendByHost {
                    host: row.try_get("payee_host")?,
                    amount: usdc_sum(row, "total")?,
                    payments: u64::try_from(payments).unwrap_or(0),
                })
            })
            .collect()
    }
}
