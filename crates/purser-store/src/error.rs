//! What can go wrong in storage, and the stable code each failure shows clients.

use purser_core::batch::Refusal;
use purser_core::ledger::LedgerError;
use purser_types::ErrorCode;

/// A storage failure. A change refused by the rules is [`StoreError::Refused`];
/// everything unexpected is [`StoreError::Database`] or [`StoreError::Corrupt`] and
/// is never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The rules refused the change (insufficient funds, unknown object,
    /// idempotency conflict…); nothing of it was written.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The transaction holding the change did not commit; nothing in it took
    /// effect, and the request may be retried with the same idempotency key.
    #[error("the change could not be committed")]
    CommitFailed,
    /// The store is closing and takes no more writes.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// The disk did not confirm a flush: the change may or may not have survived,
    /// and the store takes no more writes until it is reopened. Retrying with the
    /// same idempotency key after a restart either replays it or applies it once.
    #[error("the disk did not confirm the write; the store stopped taking writes")]
    NotDurable,
    /// The configuration is unusable (bad URL, edited migration).
    #[error("storage configuration: {0}")]
    Config(String),
    /// A stored row does not decode: the database was edited or is from the future.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// The stable code a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Refused(refusal) => refusal_code(refusal),
            StoreError::ShuttingDown | StoreError::CommitFailed | StoreError::NotDurable => {
                ErrorCode::ServiceUnavailable
            }
            StoreError::Config(_) | StoreError::Corrupt(_) | StoreError::Database(_) => {
                ErrorCode::InternalError
            }
        }
    }
}

fn refusal_code(refusal: &Refusal) -> ErrorCode {
    match refusal {
        Refusal::Ledger(LedgerError::InsufficientFunds(_)) => ErrorCode::InsufficientFunds,
        Refusal::Ledger(LedgerError::BalanceOverflow(_)) => ErrorCode::AmountOverflow,
        Refusal::Ledger(LedgerError::UnknownAccount(_)) | Refusal::NotFound => ErrorCode::NotFound,
        Refusal::Ledger(
            LedgerError::ZeroAmount | LedgerError::SameAccount | LedgerError::CurrencyMismatch,
        ) => ErrorCode::InvalidRequest,
        Refusal::IdempotencyConflict => ErrorCode::IdempotencyConflict,
        // Ids are 128 random bits: a collision is a fault, not a client error.
        Refusal::AlreadyExists => ErrorCode::InternalError,
        Refusal::InvalidState(_) => ErrorCode::InvalidState,
        Refusal::Denied(denial) => denial.code(),
    }
}
