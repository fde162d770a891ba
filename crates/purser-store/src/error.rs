//! What can go wrong in storage, and the stable code each failure shows clients.

use purser_core::batch::Refusal;
use purser_core::ledger::LedgerError;
use purser_types::ErrorCode;

/// A storage failure. Business refusals (insufficient funds, unknown objects,
/// idempotency conflicts) are distinct variants; everything unexpected is
/// [`StoreError::Database`] or [`StoreError::Corrupt`] and is never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The ledger refused the transfer.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The object the change refers to does not exist.
    #[error("not found")]
    NotFound,
    /// The idempotency key was used before with different parameters.
    #[error("idempotency key reused with different parameters")]
    IdempotencyConflict,
    /// An object with this id already exists.
    #[error("an object with this id already exists")]
    AlreadyExists,
    /// The transaction holding the change did not commit; nothing in it took
    /// effect, and the request may be retried with the same idempotency key.
    #[error("the change could not be committed")]
    CommitFailed,
    /// The store is closing and takes no more writes.
    #[error("the store is shutting down")]
    ShuttingDown,
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

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Ledger(error) => StoreError::Ledger(error),
            Refusal::NotFound => StoreError::NotFound,
            Refusal::IdempotencyConflict => StoreError::IdempotencyConflict,
            Refusal::AlreadyExists => StoreError::AlreadyExists,
        }
    }
}

impl StoreError {
    /// The stable code a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Ledger(LedgerError::InsufficientFunds(_)) => ErrorCode::InsufficientFunds,
            StoreError::Ledger(LedgerError::BalanceOverflow(_)) => ErrorCode::AmountOverflow,
            StoreError::Ledger(LedgerError::UnknownAccount(_)) | StoreError::NotFound => {
                ErrorCode::NotFound
            }
            StoreError::Ledger(
                LedgerError::ZeroAmount | LedgerError::SameAccount | LedgerError::CurrencyMismatch,
            ) => ErrorCode::InvalidRequest,
            StoreError::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            StoreError::ShuttingDown | StoreError::CommitFailed => ErrorCode::ServiceUnavailable,
            // Ids are 128 random bits: a collision is a fault, not a client error.
            StoreError::AlreadyExists
            | StoreError::Config(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_) => ErrorCode::InternalError,
        }
    }

    /// True for refusals that are the caller's business rather than a fault.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            StoreError::Config(_)
                | StoreError::Corrupt(_)
                | StoreError::Database(_)
                | StoreError::ShuttingDown
                | StoreError::CommitFailed
        )
    }
}
