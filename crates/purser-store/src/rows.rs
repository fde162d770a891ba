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

fn parse<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("column {column}: {text:?}")))
}

fn parse_opt<T: FromStr>(row: &AnyRow, column: &str) -> Result<Option<T>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        t.parse()
            .map_err(|_| StoreError::Corrupt(format!("column {column}: {t:?}")))
    })
    .transpose()
}

fn time(row: &AnyRow, column: &str) -> Result<UnixMs, StoreError> {
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
