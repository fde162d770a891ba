//! Stable, machine-readable error codes.
//!
//! Every error a client can see carries one of these codes. They are part of the
//! public API: a code, once published, keeps its spelling and meaning. Library
//! crates have their own `thiserror` enums and map each variant to a code; the
//! front ends map codes to HTTP statuses, MCP errors or CLI exit messages.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident => $code:literal,)+) => {
        /// A stable error code. Serialized as its snake_case string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$meta])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The wire spelling of the code.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed or a field is invalid.
    InvalidRequest => "invalid_request",
    /// An amount is not a valid USDC amount (see the message for why).
    InvalidAmount => "invalid_amount",
    /// A currency other than USDC was given.
    UnsupportedCurrency => "unsupported_currency",
    /// No credentials, or credentials that are not valid.
    Unauthenticated => "unauthenticated",
    /// The agent JWT has expired; exchange the credential for a new one.
    TokenExpired => "token_expired",
    /// The agent was revoked by its owner; every token and credential is dead.
    AgentRevoked => "agent_revoked",
    /// The caller is authenticated but may not do this (e.g. an agent on an owner route).
    Forbidden => "forbidden",
    /// No such object, or not one the caller may see.
    NotFound => "not_found",
    /// A mutating request came without an `Idempotency-Key`.
    IdempotencyKeyRequired => "idempotency_key_required",
    /// The idempotency key was already used with different parameters.
    IdempotencyConflict => "idempotency_conflict",
    /// The wallet's available balance is below the amount.
    InsufficientFunds => "insufficient_funds",
    /// The amount would push a balance past the largest representable amount.
    AmountOverflow => "amount_overflow",
    /// The mandate exists but the owner has not signed it (or rejected it).
    MandateNotSigned => "mandate_not_signed",
    /// The mandate's validity window has ended (or not begun).
    MandateExpired => "mandate_expired",
    /// The owner revoked the mandate.
    MandateRevoked => "mandate_revoked",
    /// The payment would take the mandate past its budget.
    MandateBudgetExceeded => "mandate_budget_exceeded",
    /// The payee's host is not on the mandate's allowlist.
    HostNotAllowed => "host_not_allowed",
    /// The payment is larger than the mandate's per-payment cap.
    PerTxCapExceeded => "per_tx_cap_exceeded",
    /// The wallet's policy forbids this payment.
    PolicyDenied => "policy_denied",
    /// No signed mandate of this agent covers this payment.
    NoEligibleMandate => "no_eligible_mandate",
    /// No such mandate, or not one of this agent's.
    MandateNotFound => "mandate_not_found",
    /// The payment needs the owner's approval: send them the approval URL.
    ApprovalRequired => "approval_required",
    /// The approval was denied by the owner.
    ApprovalDenied => "approval_denied",
    /// The approval expired before it was used.
    ApprovalExpired => "approval_expired",
    /// The approval was already used, or is for a different payment.
    ApprovalInvalid => "approval_invalid",
    /// The object is not in a state that allows this (e.g. approving a revoked mandate).
    InvalidState => "invalid_state",
    /// A signature does not verify (wrong signer, changed terms, malformed).
    InvalidSignature => "invalid_signature",
    /// The simulated on-ramp is only available on a sandbox server.
    SandboxDisabled => "sandbox_disabled",
    /// The request body is larger than the server accepts.
    PayloadTooLarge => "payload_too_large",
    /// The route exists but not with this HTTP method.
    MethodNotAllowed => "method_not_allowed",
    /// A `PAYMENT-REQUIRED` header or x402 body could not be read (bad base64, JSON or shape).
    InvalidPaymentRequired => "invalid_payment_required",
    /// None of the server's payment requirements is one this wallet can pay
    /// (scheme `exact`, this server's network, its USDC).
    NoAcceptableRequirement => "no_acceptable_requirement",
    /// The price is above the maximum the caller allowed.
    AmountAboveMax => "amount_above_max",
    /// This server runs on its internal ledger alone: start it with `--chain`.
    ChainNotConfigured => "chain_not_configured",
    /// The chain's node did not answer, or not in time; nothing was paid. Retry later.
    ChainUnavailable => "chain_unavailable",
    /// A payout's transfer failed on chain (it reverted, or its authorization
    /// expired unused); its authorization was voided and nothing was paid.
    ChainTransferFailed => "chain_transfer_failed",
    /// The payment link was disabled by its merchant; nothing was charged.
    PaymentLinkDisabled => "payment_link_disabled",
    /// The payment link's `expiresAt` has passed; nothing was charged.
    PaymentLinkExpired => "payment_link_expired",
    /// The payment link took its `maxUses` payments; nothing was charged.
    PaymentLinkExhausted => "payment_link_exhausted",
    /// A refund of more than what is left of the payment to refund (or of nothing).
    RefundExceedsPayment => "refund_exceeds_payment",
    /// Too many failed sign-in attempts for this wallet; wait and try again.
    RateLimited => "rate_limited",
    /// The server is shutting down or a dependency is unavailable; retry later.
    ServiceUnavailable => "service_unavailable",
    /// The request took longer than the server allows.
    Timeout => "timeout",
    /// An unexpected error; details are in the server log, never in the response.
    InternalError => "internal_error",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
