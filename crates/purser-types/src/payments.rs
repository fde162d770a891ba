//! Mandates, reservations, approvals, wallet policy and payouts: the records of
//! the one authorization path.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{AgentId, ApprovalId, MandateId, PayoutId, ReservationId, WalletId};
use crate::money::{Currency, Usdc};
use crate::records::Hash32;
use crate::time::UnixMs;

/// A mandate's life. `pending_signature → signed | rejected`; `signed → revoked`.
/// `expired` and `exhausted` are not stored: they are read off a signed mandate's
/// window and remaining budget at the moment it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MandateStatus {
    /// Drafted by the agent; waiting for the owner.
    PendingSignature,
    /// Signed by the owner; payments inside its terms clear without asking.
    Signed,
    /// The owner declined it.
    Rejected,
    /// The owner withdrew it after signing.
    Revoked,
    /// Signed, but its validity window has passed.
    Expired,
    /// Signed, but nothing of its budget is left.
    Exhausted,
}

impl MandateStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            MandateStatus::PendingSignature => "pending_signature",
            MandateStatus::Signed => "signed",
            MandateStatus::Rejected => "rejected",
            MandateStatus::Revoked => "revoked",
            MandateStatus::Expired => "expired",
            MandateStatus::Exhausted => "exhausted",
        }
    }

    /// Parses a stored status (only the four stored ones).
    pub fn parse_stored(text: &str) -> Option<MandateStatus> {
        [
            MandateStatus::PendingSignature,
            MandateStatus::Signed,
            MandateStatus::Rejected,
            MandateStatus::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What the agent asks for and the owner signs. Immutable once drafted: a change is
/// a new mandate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MandateTerms {
    /// What the agent will spend on, in plain words (at most 1000 characters).
    pub description: String,
    /// An optional category, e.g. `api-calls`.
    pub category: Option<String>,
    /// Always USDC.
    pub currency: Currency,
    /// The total budget.
    pub limit_amount: Usdc,
    /// The largest single payment, if capped.
    pub max_amount_per_tx: Option<Usdc>,
    /// Hosts payments may go to (`api.example.com`, `*.example.com`), normalized;
    /// empty means any host.
    pub host_allowlist: Vec<String>,
    /// When it starts to apply (whole seconds).
    pub valid_from: UnixMs,
    /// When it stops applying (whole seconds; at most one year after drafting).
    pub valid_until: UnixMs,
}

/// The owner's signature over a mandate (EIP-712, by the wallet's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MandateSignature {
    /// The EIP-712 digest that was signed, `0x`-hex.
    pub mandate_hash: String,
    /// The 65-byte signature (r ‖ s ‖ v), `0x`-hex.
    pub signature: String,
    /// The signer: the wallet's address.
    pub signer: String,
    /// When the owner signed.
    pub signed_at: UnixMs,
}

/// An intent mandate as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Mandate {
    /// The mandate's id.
    pub id: MandateId,
    /// The wallet it draws on.
    pub wallet_id: WalletId,
    /// The agent it authorizes.
    pub agent_id: AgentId,
    /// The terms.
    #[serde(flatten)]
    pub terms: MandateTerms,
    /// A random 32-byte nonce, part of what is signed.
    pub nonce: Hash32,
    /// The stored status (`pending_signature`, `signed`, `rejected`, `revoked`).
    pub status: MandateStatus,
    /// Committed payments.
    pub spent_amount: Usdc,
    /// Payments reserved but not yet committed or released.
    pub pending_amount: Usdc,
    /// The owner's signature, once signed.
    pub signature: Option<MandateSignature>,
    /// When the agent drafted it.
    pub created_at: UnixMs,
    /// When its status or amounts last changed.
    pub updated_at: UnixMs,
}

impl Mandate {
    /// `limit − spent − pending`, never below zero.
    pub fn remaining_amount(&self) -> Usdc {
        self.terms
            .limit_amount
            .saturating_sub(self.spent_amount)
            .saturating_sub(self.pending_amount)
    }
}

/// Where a payment goes: the host of the service being paid, an address, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Payee {
    /// The normalized host (`api.example.com`, `api.example.com:8443`).
    pub host: Option<String>,
    /// The EVM address, EIP-55 checksummed.
    pub address: Option<String>,
}

/// What kind of payment a reservation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// A payout to an address.
    Payout,
    /// An x402 payment to an HTTP service.
    X402,
    /// A merchant's refund of a payment it received through a payment link: never
    /// covered by a mandate, always authorized by the owner.
    Refund,
}

impl PaymentKind {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Payout => "payout",
            PaymentKind::X402 => "x402",
            PaymentKind::Refund => "refund",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<PaymentKind> {
        [PaymentKind::Payout, PaymentKind::X402, PaymentKind::Refund]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A reservation's life: `held → committed | released`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// The funds are held; the mandate counts them as pending.
    Held,
    /// The payment happened; the funds left and the mandate counts them as spent.
    Committed,
    /// The payment did not happen; the funds are available again.
    Released,
}

impl ReservationStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<ReservationStatus> {
        [
            ReservationStatus::Held,
            ReservationStatus::Committed,
            ReservationStatus::Released,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Funds held for one authorized payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The reservation's id.
    pub id: ReservationId,
    /// The wallet the funds are held in.
    pub wallet_id: WalletId,
    /// The agent that asked.
    pub agent_id: AgentId,
    /// The mandate that covered it, if one did.
    pub mandate_id: Option<MandateId>,
    /// The owner's one-off approval that covered it, if one did.
    pub approval_id: Option<ApprovalId>,
    /// How much is held.
    pub amount: Usdc,
    /// Where the payment goes.
    pub payee: Payee,
    /// Why, in the agent's words.
    pub purpose: String,
    /// What kind of payment.
    pub kind: PaymentKind,
    /// Held, committed or released.
    pub status: ReservationStatus,
    /// What settled it (a transfer id or a transaction hash), once committed.
    pub settlement: Option<String>,
    /// Why it was released, once released.
    pub release_reason: Option<String>,
    /// When it was made.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// An approval's life: `pending → approved → used`, or `denied`, or `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for the owner.
    Pending,
    /// Approved; the payment may go ahead once.
    Approved,
    /// Declined by the owner.
    Denied,
    /// Used by the payment it approved.
    Used,
    /// Not decided or not used in time (read off `expiresAt`, not stored).
    Expired,
}

impl ApprovalStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Used => "used",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// Parses a stored status.
    pub fn parse_stored(text: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Used,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A request for the owner to approve one payment that no mandate covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The approval's id.
    pub id: ApprovalId,
    /// The wallet.
    pub wallet_id: WalletId,
    /// The agent that asked.
    pub agent_id: AgentId,
    /// The amount asked for.
    pub amount: Usdc,
    /// Where it would go.
    pub payee: Payee,
    /// Why, in the agent's words.
    pub purpose: String,
    /// What kind of payment.
    pub kind: PaymentKind,
    /// The stored status (`pending`, `approved`, `denied`, `used`).
    pub status: ApprovalStatus,
    /// When it was asked for.
    pub created_at: UnixMs,
    /// After this it can be neither decided nor used.
    pub expires_at: UnixMs,
    /// When the owner decided.
    pub decided_at: Option<UnixMs>,
}

impl Approval {
    /// The status at `now`: a pending or approved approval past its expiry is expired.
    pub fn status_at(&self, now: UnixMs) -> ApprovalStatus {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved if now >= self.expires_at => {
                ApprovalStatus::Expired
            }
            other => other,
        }
    }
}

/// The owner's rules on top of every mandate. Deny wins.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletPolicy {
    /// The most each agent may spend per calendar month (UTC).
    pub per_agent_monthly_cap: Option<Usdc>,
    /// The largest single payment from this wallet.
    pub per_payment_cap: Option<Usdc>,
    /// Hosts no payment may go to (`evil.example`, `*.evil.example`).
    #[serde(default)]
    pub denied_hosts: Vec<String>,
    /// Addresses no payment may go to.
    #[serde(default)]
    pub denied_addresses: Vec<String>,
    /// Payments no mandate covers, up to this amount, are approved without asking.
    pub auto_approve_up_to: Option<Usdc>,
}

/// Why a payment was refused. Each is also an [`ErrorCode`] with the same spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// The mandate is not signed.
    MandateNotSigned,
    /// Outside the mandate's window.
    MandateExpired,
    /// The mandate was revoked.
    MandateRevoked,
    /// Over the mandate's remaining budget.
    MandateBudgetExceeded,
    /// The host is not on the allowlist.
    HostNotAllowed,
    /// Over the per-payment cap.
    PerTxCapExceeded,
    /// Not enough available funds.
    InsufficientFunds,
    /// The agent was revoked.
    AgentRevoked,
    /// The wallet's policy forbids it.
    PolicyDenied,
    /// No signed mandate covers it (and no approval was allowed).
    NoEligibleMandate,
    /// No such mandate for this agent.
    MandateNotFound,
    /// The owner denied the approval.
    ApprovalDenied,
    /// The approval expired.
    ApprovalExpired,
    /// The approval was used or is for another payment.
    ApprovalInvalid,
}

impl Denial {
    /// The matching error code.
    pub const fn code(self) -> ErrorCode {
        match self {
            Denial::MandateNotSigned => ErrorCode::MandateNotSigned,
            Denial::MandateExpired => ErrorCode::MandateExpired,
            Denial::MandateRevoked => ErrorCode::MandateRevoked,
            Denial::MandateBudgetExceeded => ErrorCode::MandateBudgetExceeded,
            Denial::HostNotAllowed => ErrorCode::HostNotAllowed,
            Denial::PerTxCapExceeded => ErrorCode::PerTxCapExceeded,
            Denial::InsufficientFunds => ErrorCode::InsufficientFunds,
            Denial::AgentRevoked => ErrorCode::AgentRevoked,
            Denial::PolicyDenied => ErrorCode::PolicyDenied,
            Denial::NoEligibleMandate => ErrorCode::NoEligibleMandate,
            Denial::MandateNotFound => ErrorCode::MandateNotFound,
            Denial::ApprovalDenied => ErrorCode::ApprovalDenied,
            Denial::ApprovalExpired => ErrorCode::ApprovalExpired,
            Denial::ApprovalInvalid => ErrorCode::ApprovalInvalid,
        }
    }
}

/// Which rail a payout settles on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Rail {
    /// Both wallets are on this server: settled at once on the ledger.
    Ledger,
    /// Any other address: settled on chain (issue #4 sends it).
    External,
}

/// A payout's life: `pending_authorization → authorized → succeeded | failed | expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Waiting for the owner's approval.
    PendingAuthorization,
    /// Authorized and funds held; waiting for the external leg.
    Authorized,
    /// Paid.
    Succeeded,
    /// Refused or failed; nothing was paid.
    Failed,
    /// The approval was not given in time; nothing was paid.
    Expired,
}

impl PayoutStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::PendingAuthorization => "pending_authorization",
            PayoutStatus::Authorized => "authorized",
            PayoutStatus::Succeeded => "succeeded",
            PayoutStatus::Failed => "failed",
            PayoutStatus::Expired => "expired",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<PayoutStatus> {
        [
            PayoutStatus::PendingAuthorization,
            PayoutStatus::Authorized,
            PayoutStatus::Succeeded,
            PayoutStatus::Failed,
            PayoutStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A payout: USDC sent by an agent to an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Payout {
    /// The caller's id for it (its idempotency key).
    pub id: PayoutId,
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// The agent that asked.
    pub agent_id: AgentId,
    /// The destination address.
    pub to_address: String,
    /// The amount.
    pub amount: Usdc,
    /// The mandate asked for, if any.
    pub mandate_id: Option<MandateId>,
    /// Where it settles.
    pub rail: Rail,
    /// Its status.
    pub status: PayoutStatus,
    /// The reservation holding its funds, once authorized.
    pub reservation_id: Option<ReservationId>,
    /// The approval it waits for, when no mandate covered it.
    pub approval_id: Option<ApprovalId>,
    /// What paid it: the ledger transfer (ledger rail) or the transaction hash
    /// (on chain).
    pub settlement: Option<String>,
    /// Why it failed or expired.
    pub failure_reason: Option<ErrorCode>,
    /// When it was asked for.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// A signed mandate in the form anyone can verify offline: the terms, who they bind,
/// and the owner's EIP-712 signature over them (domain `Purser Intent Mandate`,
/// version `1`). `purser mandate verify` and `POST /api/mandates/verify` check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignedMandate {
    /// The mandate's id.
    pub mandate_id: MandateId,
    /// The wallet's address: the key that must have signed.
    pub wallet_address: String,
    /// The agent the mandate authorizes.
    pub agent_id: AgentId,
    /// The terms.
    #[serde(flatten)]
    pub terms: MandateTerms,
    /// The 32-byte nonce that was signed.
    pub nonce: Hash32,
    /// The EIP-712 digest, `0x`-hex.
    pub mandate_hash: String,
    /// The 65-byte signature, `0x`-hex.
    pub signature: String,
}
