//! Decoding stored rows into records. A row that does not decode is reported as
//! [`StoreError::Corrupt`] naming the column, never silently defaulted.

use std::str::FromStr;

use purser_types::{
    AccountId, Agent, AuditEvent, AuditRecord, Hash32, Transfer, UnixMs, Usdc, Wallet,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;

/// The columns [`wallet_from_row`] reads, as a literal for `concat!`.
macro_rules! wallet_columns {
    () => {
        "id, name, currency, address, created_at_ms"
    };
}
/// The columns [`agent_from_row`] reads.
macro_rules! agent_columns {
    () => {
        "id, wallet_id, name, status, created_at_ms, revoked_at_ms"
    };
}
/// The columns [`transfer_from_row`] reads.
macro_rules! transfer_columns {
    () => {
        "seq, id, from_account, to_account, amount, currency, kind, memo, created_at_ms"
    };
}
/// The columns [`audit_from_row`] reads.
macro_rules! audit_columns {
    () => {
        "seq, at_ms, actor, action, wallet_id, subject, details, prev_hash, hash"
    };
}
pub(crate) use {agent_columns, audit_columns, transfer_columns, wallet_columns};

pub(crate) fn parse<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("column {column}: {text:?}")))
}

pub(crate) fn parse_opt<T: FromStr>(row: &AnyRow, column: &str) -> Result<Option<T>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        t.parse()
            .map_err(|_| StoreError::Corrupt(format!("column {column}: {t:?}")))
    })
    .transpose()
}

pub(crate) fn time(row: &AnyRow, column: &str) -> Result<UnixMs, StoreError> {
    Ok(UnixMs(row.try_get(column)?))
}

pub(crate) fn wallet_from_row(row: &AnyRow) -> Result<Wallet, StoreError> {
    Ok(Wallet {
        id: parse(row, "id")?,
        name: row.try_get("name")?,
        currency: parse(row, "currency")?,
        address: row.try_get("address")?,
        created_at: time(row, "created_at_ms")?,
    })
}

pub(crate) fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        name: row.try_get("name")?,
        status: parse(row, "status")?,
        created_at: time(row, "created_at_ms")?,
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at_ms")?.map(UnixMs),
    })
}

/// A transfer and its position in the ledger, for pagination.
pub(crate) fn transfer_from_row(row: &AnyRow) -> Result<(i64, Transfer), StoreError> {
    let amount: i64 = row.try_get("amount")?;
    let transfer = Transfer {
        id: parse(row, "id")?,
        from: parse::<AccountId>(row, "from_account")?,
        to: parse::<AccountId>(row, "to_account")?,
        amount: Usdc::from_atomic_i64(amount)
            .map_err(|_| StoreError::Corrupt(format!("column amount: {amount}")))?,
        currency: parse(row, "currency")?,
        kind: parse(row, "kind")?,
        memo: row.try_get("memo")?,
        created_at: time(row, "created_at_ms")?,
    };
    Ok((row.try_get("seq")?, transfer))
}

fn hash(row: &AnyRow, column: &str) -> Result<Hash32, StoreError> {
    let text: String = row.try_get(column)?;
    Hash32::from_hex(&text).ok_or_else(|| StoreError::Corrupt(format!("column {column}: {text:?}")))
}

pub(crate) fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    Ok(AuditRecord {
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("column seq: {seq}")))?,
        at: time(row, "at_ms")?,
        event: AuditEvent {
            actor: parse(row, "actor")?,
            action: row.try_get("action")?,
            wallet_id: parse_opt(row, "wallet_id")?,
            subject: row.try_get("subject")?,
            details: row.try_get("details")?,
        },
        prev_hash: hash(row, "prev_hash")?,
        hash: hash(row, "hash")?,
    })
}

// ---- mandates and the authorization path ----

use purser_core::authorize::MonthTotals;
use purser_core::batch::Versioned;
use purser_types::{
    AgentId, Approval, ApprovalStatus, ErrorCode, Mandate, MandateSignature, MandateStatus,
    MandateTerms, Payee, PaymentKind, Payout, PayoutStatus, Rail, Reservation, ReservationStatus,
    WalletId, WalletPolicy,
};

pub(crate) fn amount(row: &AnyRow, column: &str) -> Result<Usdc, StoreError> {
    let atomic: i64 = row.try_get(column)?;
    Usdc::from_atomic_i64(atomic)
        .map_err(|_| StoreError::Corrupt(format!("column {column}: {atomic}")))
}

fn amount_opt(row: &AnyRow, column: &str) -> Result<Option<Usdc>, StoreError> {
    let atomic: Option<i64> = row.try_get(column)?;
    atomic
        .map(|a| {
            Usdc::from_atomic_i64(a)
                .map_err(|_| StoreError::Corrupt(format!("column {column}: {a}")))
        })
        .transpose()
}

pub(crate) fn time_opt(row: &AnyRow, column: &str) -> Result<Option<UnixMs>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(UnixMs))
}

/// A text column decoded by `decode`, reporting the column when it fails.
pub(crate) fn decode<T>(
    row: &AnyRow,
    column: &str,
    decode: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    decode(&text).ok_or_else(|| StoreError::Corrupt(format!("column {column}: {text:?}")))
}

fn version(row: &AnyRow) -> Result<i64, StoreError> {
    Ok(row.try_get("version")?)
}

fn payee(row: &AnyRow) -> Result<Payee, StoreError> {
    Ok(Payee {
        host: row.try_get("payee_host")?,
        address: row.try_get("payee_address")?,
    })
}

pub(crate) fn mandate_from_row(row: &AnyRow) -> Result<Versioned<Mandate>, StoreError> {
    let signature = match row.try_get::<Option<String>, _>("mandate_hash")? {
        Some(mandate_hash) => Some(MandateSignature {
            mandate_hash,
            signature: row
                .try_get::<Option<String>, _>("signature")?
                .unwrap_or_default(),
            signer: row
                .try_get::<Option<String>, _>("signer")?
                .unwrap_or_default(),
            signed_at: time_opt(row, "signed_at_ms")?.unwrap_or_default(),
        }),
        None => None,
    };
    let mandate = Mandate {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse(row, "agent_id")?,
        terms: MandateTerms {
            description: row.try_get("description")?,
            category: row.try_get("category")?,
            currency: parse(row, "currency")?,
            limit_amount: amount(row, "limit_amount")?,
            max_amount_per_tx: amount_opt(row, "max_amount_per_tx")?,
            host_allowlist: decode(row, "host_allowlist", |t| serde_json::from_str(t).ok())?,
            valid_from: time(row, "valid_from_ms")?,
            valid_until: time(row, "valid_until_ms")?,
        },
        nonce: hash(row, "nonce")?,
        status: decode(row, "status", MandateStatus::parse_stored)?,
        spent_amount: amount(row, "spent_amount")?,
        pending_amount: amount(row, "pending_amount")?,
        signature,
        created_at: time(row, "created_at_ms")?,
        updated_at: time(row, "updated_at_ms")?,
    };
    Ok(Versioned {
        value: mandate,
        version: version(row)?,
    })
}

pub(crate) fn reservation_from_row(row: &AnyRow) -> Result<Versioned<Reservation>, StoreError> {
    let reservation = Reservation {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse(row, "agent_id")?,
        mandate_id: parse_opt(row, "mandate_id")?,
        approval_id: parse_opt(row, "approval_id")?,
        amount: amount(row, "amount")?,
        payee: payee(row)?,
        purpose: row.try_get("purpose")?,
        kind: decode(row, "kind", PaymentKind::parse)?,
        status: decode(row, "status", ReservationStatus::parse)?,
        settlement: row.try_get("settlement")?,
        release_reason: row.try_get("release_reason")?,
        created_at: time(row, "created_at_ms")?,
        updated_at: time(row, "updated_at_ms")?,
    };
    Ok(Versioned {
        value: reservation,
        version: version(row)?,
    })
}

pub(crate) fn approval_from_row(row: &AnyRow) -> Result<Versioned<Approval>, StoreError> {
    let approval = Approval {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse(row, "agent_id")?,
        amount: amount(row, "amount")?,
        payee: payee(row)?,
        purpose: row.try_get("purpose")?,
        kind: decode(row, "kind", PaymentKind::parse)?,
        status: decode(row, "status", ApprovalStatus::parse_stored)?,
        created_at: time(row, "created_at_ms")?,
        expires_at: time(row, "expires_at_ms")?,
        decided_at: time_opt(row, "decided_at_ms")?,
    };
    Ok(Versioned {
        value: approval,
        version: version(row)?,
    })
}

pub(crate) fn payout_from_row(row: &AnyRow) -> Result<Versioned<Payout>, StoreError> {
    let failure_reason: Option<String> = row.try_get("failure_reason")?;
    let payout = Payout {
        id: parse(row, "id")?,
        wallet_id: parse(row, "wallet_id")?,
        agent_id: parse(row, "agent_id")?,
        to_address: row.try_get("to_address")?,
        amount: amount(row, "amount")?,
        mandate_id: parse_opt(row, "mandate_id")?,
        rail: decode(row, "rail", |t| {
            [Rail::Ledger, Rail::External]
                .into_iter()
                .find(|r| rail_text(*r) == t)
        })?,
        status: decode(row, "status", PayoutStatus::parse)?,
        reservation_id: parse_opt(row, "reservation_id")?,
        approval_id: parse_opt(row, "approval_id")?,
        settlement: row.try_get("settlement")?,
        failure_reason: failure_reason
            .map(|t| {
                ErrorCode::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == t)
                    .ok_or_else(|| StoreError::Corrupt(format!("column failure_reason: {t:?}")))
            })
            .transpose()?,
        created_at: time(row, "created_at_ms")?,
        updated_at: time(row, "updated_at_ms")?,
    };
    Ok(Versioned {
        value: payout,
        version: version(row)?,
    })
}

pub(crate) fn policy_from_row(
    row: &AnyRow,
) -> Result<(WalletId, Versioned<WalletPolicy>), StoreError> {
    let policy = decode(row, "policy", |t| serde_json::from_str(t).ok())?;
    Ok((
        parse(row, "wallet_id")?,
        Versioned {
            value: policy,
            version: version(row)?,
        },
    ))
}

pub(crate) fn month_from_row(
    row: &AnyRow,
) -> Result<((AgentId, String), Versioned<MonthTotals>), StoreError> {
    let totals = MonthTotals {
        spent: amount(row, "spent")?,
        pending: amount(row, "pending")?,
    };
    Ok((
        (parse(row, "agent_id")?, row.try_get("month")?),
        Versioned {
            value: totals,
            version: version(row)?,
        },
    ))
}

/// The stored spelling of a rail.
pub(crate) fn rail_text(rail: Rail) -> &'static str {
    match rail {
        Rail::Ledger => "ledger",
        Rail::External => "external",
    }
}
