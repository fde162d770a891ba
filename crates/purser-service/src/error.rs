//! The service's errors, each with a stable code and a message safe to show.

use purser_core::batch::Refusal;
use purser_signer::SignerError;
use purser_store::StoreError;
use purser_types::{AmountError, ErrorCode};

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field is missing or invalid; the message says which and why.
    #[error("{0}")]
    InvalidRequest(String),
    /// An amount is not a valid USDC amount.
    #[error("invalid amount: {0}")]
    InvalidAmount(#[from] AmountError),
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The agent JWT has expired.
    #[error("the agent token has expired; exchange the agent credential for a new one")]
    TokenExpired,
    /// The agent was revoked.
    #[error("this agent was revoked by its owner")]
    AgentRevoked,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such object, or not the caller's.
    #[error("not found")]
    NotFound,
    /// A mutating request needs an idempotency key.
    #[error(
        "this request changes state and needs an Idempotency-Key (1-255 printable ASCII characters)"
    )]
    IdempotencyKeyRequired,
    /// The object is not in a state that allows this.
    #[error("{0}")]
    InvalidState(&'static str),
    /// A signature does not verify.
    #[error("{0}")]
    InvalidSignature(String),
    /// A payment was refused by the authorization path.
    #[error("{}", denial_message(*.0))]
    Denied(purser_types::Denial),
    /// The simulated on-ramp is off.
    #[error("funding from the simulated on-ramp is only available on a sandbox server")]
    SandboxDisabled,
    /// The master key is not the one this database was created with.
    #[error("the master key does not match this database (its fingerprint differs)")]
    MasterKeyMismatch,
    /// A configuration value is out of range.
    #[error("configuration: {0}")]
    Config(String),
    /// Storage refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key handling failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// x402 input could not be read.
    #[error("{0}")]
    InvalidPaymentRequired(String),
    /// No payment requirement this wallet can pay.
    #[error("{0}")]
    NoAcceptableRequirement(String),
    /// The price is above the caller's maximum.
    #[error("{0}")]
    AmountAboveMax(String),
    /// No chain is configured.
    #[error(
        "this server runs on its internal ledger alone; start it with --chain to use x402 on a chain"
    )]
    ChainNotConfigured,
    /// The chain did not answer.
    #[error("the chain is unavailable: {0}")]
    ChainUnavailable(String),
    /// Too many failed sign-in attempts for one wallet in a short time.
    #[error("too many failed sign-in attempts; try again in a few minutes")]
    RateLimited,
    /// A token could not be produced.
    #[error("token signing failed: {0}")]
    TokenSigning(String),
    /// The idempotency key was used for a different request.
    #[error("this Idempotency-Key was already used with different parameters")]
    IdempotencyConflict,
    /// The payment link takes no payment now.
    #[error("{}", link_closed_message(*.0))]
    LinkClosed(purser_types::LinkClosed),
    /// A refund larger than what is left of the payment to refund.
    #[error(
        "the refund must be more than 0 and at most {0} USDC, what is left of the payment to refund"
    )]
    RefundExceedsPayment(purser_types::Usdc),
}

fn link_closed_message(reason: purser_types::LinkClosed) -> &'static str {
    use purser_types::LinkClosed;
    match reason {
        LinkClosed::Disabled => {
            "this payment link was disabled by its merchant; nothing was charged"
        }
        LinkClosed::Expired => "this payment link has expired; nothing was charged",
        LinkClosed::Exhausted => "this payment link has no uses left; nothing was charged",
    }
}

impl ServiceError {
    /// The stable code a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ServiceError::InvalidAmount(AmountError::UnsupportedCurrency) => {
                ErrorCode::UnsupportedCurrency
            }
            ServiceError::InvalidAmount(_) => ErrorCode::InvalidAmount,
            ServiceError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ServiceError::TokenExpired => ErrorCode::TokenExpired,
            ServiceError::AgentRevoked => ErrorCode::AgentRevoked,
            ServiceError::Forbidden(_) => ErrorCode::Forbidden,
            ServiceError::NotFound => ErrorCode::NotFound,
            ServiceError::IdempotencyKeyRequired => ErrorCode::IdempotencyKeyRequired,
            ServiceError::SandboxDisabled => ErrorCode::SandboxDisabled,
            ServiceError::InvalidState(_) => ErrorCode::InvalidState,
            ServiceError::InvalidSignature(_) => ErrorCode::InvalidSignature,
            ServiceError::Denied(denial) => denial.code(),
            ServiceError::Store(e) => e.code(),
            ServiceError::InvalidPaymentRequired(_) => ErrorCode::InvalidPaymentRequired,
            ServiceError::NoAcceptableRequirement(_) => ErrorCode::NoAcceptableRequirement,
            ServiceError::AmountAboveMax(_) => ErrorCode::AmountAboveMax,
            ServiceError::ChainNotConfigured => ErrorCode::ChainNotConfigured,
            ServiceError::ChainUnavailable(_) => ErrorCode::ChainUnavailable,
            ServiceError::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            ServiceError::LinkClosed(purser_types::LinkClosed::Disabled) => {
                ErrorCode::PaymentLinkDisabled
            }
            ServiceError::LinkClosed(purser_types::LinkClosed::Expired) => {
                ErrorCode::PaymentLinkExpired
            }
            ServiceError::LinkClosed(purser_types::LinkClosed::Exhausted) => {
                ErrorCode::PaymentLinkExhausted
            }
            ServiceError::RefundExceedsPayment(_) => ErrorCode::RefundExceedsPayment,
            ServiceError::RateLimited => ErrorCode::RateLimited,
            ServiceError::MasterKeyMismatch
            | ServiceError::Config(_)
            | ServiceError::Signer(_)
            | ServiceError::TokenSigning(_) => ErrorCode::InternalError,
        }
    }

    /// A message that reveals nothing internal: faults get a fixed sentence, the
    /// detail goes to the server log.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::InternalError => "an internal error occurred; it has been logged".to_owned(),
            ErrorCode::ServiceUnavailable => {
                "the server could not complete the request; retry with the same Idempotency-Key"
                    .to_owned()
            }
            ErrorCode::InsufficientFunds => {
                "the wallet's available balance is lower than the amount".to_owned()
            }
            ErrorCode::IdempotencyConflict => {
                "this Idempotency-Key was already used with different parameters".to_owned()
            }
            _ => match self {
                ServiceError::Store(StoreError::Refused(Refusal::Denied(denial))) => {
                    denial_message(*denial).to_owned()
                }
                other => other.to_string(),
            },
        }
    }
}

/// What to tell an agent about a refused payment, in words it can act on.
pub fn denial_message(denial: purser_types::Denial) -> &'static str {
    use purser_types::Denial;
    match denial {
        Denial::MandateNotSigned => {
            "the mandate is not signed yet: ask your human to open its signUrl and approve it"
        }
        Denial::MandateExpired => "the mandate is outside its validity window: draft a new mandate",
        Denial::MandateRevoked => {
            "the owner revoked this mandate: draft a new one if the task still needs funds"
        }
        Denial::MandateBudgetExceeded => {
            "the payment would exceed the mandate's remaining budget: draft a new mandate"
        }
        Denial::HostNotAllowed => "the payee's host is not on the mandate's allowlist",
        Denial::PerTxCapExceeded => "the payment is larger than the mandate's per-payment cap",
        Denial::InsufficientFunds => {
            "the wallet's available balance is lower than the amount: ask your human to fund it"
        }
        Denial::AgentRevoked => "this agent was revoked by its owner",
        Denial::PolicyDenied => "the wallet's policy does not allow this payment",
        Denial::NoEligibleMandate => {
            "no signed mandate covers this payment: draft one and ask your human to sign it"
        }
        Denial::MandateNotFound => "no such mandate for this agent",
        Denial::ApprovalDenied => "the owner denied this payment",
        Denial::ApprovalExpired => "the approval expired before it was used: ask again",
        Denial::ApprovalInvalid => "the approval was already used or is for a different payment",
    }
}
