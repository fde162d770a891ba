//! Bodies of the mandate, payment, approval, policy and payout routes.

use purser_service::{Authorization, MandateDraft, MandateView, PaymentIntent, PayoutRequest};
use purser_types::{
    AgentId, Approval, ApprovalId, Currency, Denial, Hash32, MandateId, MandateStatus, PaymentKind,
    Payout, PayoutId, Reservation, UnixMs, Usdc, WalletId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/mandates`: what an agent asks its owner to sign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftMandateRequest {
    /// What the agent will spend on, in plain words (1-1000 characters).
    #[serde(alias = "naturalLanguage")]
    pub description: String,
    /// An optional category.
    pub category: Option<String>,
    /// Only `USDC`.
    pub currency: Option<Currency>,
    /// The total budget.
    pub limit_amount: Usdc,
    /// The largest single payment.
    pub max_amount_per_tx: Option<Usdc>,
    /// Hosts payments may go to: `api.example.com`, `*.example.com`. Empty: any host.
    #[serde(default)]
    pub host_allowlist: Vec<String>,
    /// Start (default now).
    pub valid_from: Option<UnixMs>,
    /// End (at most one year ahead). Default: 8 hours after the start.
    pub valid_until: Option<UnixMs>,
    /// End, as seconds after the start (instead of `validUntil`).
    pub valid_for_seconds: Option<u64>,
}

impl DraftMandateRequest {
    /// The draft the service validates.
    pub fn draft(&self) -> MandateDraft {
        MandateDraft {
            description: self.description.clone(),
            category: self.category.clone(),
            limit_amount: self.limit_amount,
            max_amount_per_tx: self.max_amount_per_tx,
            host_allowlist: self.host_allowlist.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            valid_for_seconds: self.valid_for_seconds,
        }
    }
}

/// A mandate with its live amounts and where its owner signs it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MandateResponse {
    /// The mandate's id.
    pub mandate_id: MandateId,
    /// The wallet it draws on.
    pub wallet_id: WalletId,
    /// The agent it authorizes.
    pub agent_id: AgentId,
    /// What it is for.
    pub description: String,
    /// Its category.
    pub category: Option<String>,
    /// Always `USDC`.
    pub currency: Currency,
    /// The budget.
    pub limit_amount: Usdc,
    /// The largest single payment.
    pub max_amount_per_tx: Option<Usdc>,
    /// Allowed hosts, normalized; empty means any host.
    pub host_allowlist: Vec<String>,
    /// Start.
    pub valid_from: UnixMs,
    /// End.
    pub valid_until: UnixMs,
    /// `pending_signature`, `signed`, `rejected`, `revoked`, `expired` or `exhausted`, now.
    pub status: MandateStatus,
    /// Committed payments.
    pub spent_amount: Usdc,
    /// Reserved payments not yet committed or released.
    pub pending_spent_amount: Usdc,
    /// `limitAmount − spentAmount − pendingSpentAmount`.
    pub remaining_amount: Usdc,
    /// The signed nonce.
    pub nonce: Hash32,
    /// The EIP-712 digest that was signed.
    pub mandate_hash: Option<String>,
    /// The owner's signature.
    pub signature: Option<String>,
    /// The signer (the wallet's address).
    pub signer: Option<String>,
    /// When it was signed.
    pub signed_at: Option<UnixMs>,
    /// The page where the owner reviews it and approves or rejects it.
    pub sign_url: String,
    /// When it was drafted.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

impl From<MandateView> for MandateResponse {
    fn from(view: MandateView) -> Self {
        let m = view.mandate;
        let signature = m.signature;
        MandateResponse {
            mandate_id: m.id,
            wallet_id: m.wallet_id,
            agent_id: m.agent_id,
            description: m.terms.description,
            category: m.terms.category,
            currency: m.terms.currency,
            limit_amount: m.terms.limit_amount,
            max_amount_per_tx: m.terms.max_amount_per_tx,
            host_allowlist: m.terms.host_allowlist,
            valid_from: m.terms.valid_from,
            valid_until: m.terms.valid_until,
            status: view.status,
            spent_amount: m.spent_amount,
            pending_spent_amount: m.pending_amount,
            remaining_amount: view.remaining,
            nonce: m.nonce,
            mandate_hash: signature.as_ref().map(|s| s.mandate_hash.clone()),
            signature: signature.as_ref().map(|s| s.signature.clone()),
            signer: signature.as_ref().map(|s| s.signer.clone()),
            signed_at: signature.as_ref().map(|s| s.signed_at),
            sign_url: view.sign_url,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A page of mandates, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MandatesList {
    /// The mandates.
    pub items: Vec<MandateResponse>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// The result of verifying a signed mandate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Always true: an invalid mandate answers 422 `invalid_signature`.
    pub valid: bool,
    /// Who signed it: the wallet's address.
    pub signer: String,
    /// The verified EIP-712 digest.
    pub mandate_hash: String,
}

/// Where a payment goes.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayeeInput {
    /// The host of the service being paid, or its URL.
    pub host: Option<String>,
    /// The payee's EVM address.
    pub address: Option<String>,
}

/// `POST /api/payments/authorize`: reserve funds for one payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// How much.
    pub amount: Usdc,
    /// Where to.
    pub payee: PayeeInput,
    /// Why, in the agent's words (1-500 characters).
    pub purpose: String,
    /// `x402` (default) or `payout`.
    pub kind: Option<PaymentKind>,
    /// A mandate to use; otherwise the tightest eligible one.
    pub mandate_id: Option<MandateId>,
    /// An approval the owner gave for this very payment.
    pub approval_id: Option<ApprovalId>,
    /// When no mandate covers it: ask the owner (default) or refuse with `no_eligible_mandate`.
    pub allow_approval: Option<bool>,
}

impl AuthorizeRequest {
    /// The intent the service authorizes.
    pub fn intent(&self) -> PaymentIntent {
        PaymentIntent {
            amount: self.amount,
            payee_host: self.payee.host.clone(),
            payee_address: self.payee.address.clone(),
            purpose: self.purpose.clone(),
            kind: self.kind.unwrap_or(PaymentKind::X402),
            mandate: self.mandate_id,
            approval: self.approval_id,
            allow_approval: self.allow_approval.unwrap_or(true),
        }
    }
}

/// The answer to an authorization that was not refused.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationResponse {
    /// `reserved` or `approval_required`.
    pub result: String,
    /// The hold, when reserved.
    pub reservation: Option<Reservation>,
    /// The approval to ask for, when approval is required.
    pub approval: Option<Approval>,
    /// Show this URL to your human: they approve or deny the payment there.
    pub approval_url: Option<String>,
}

/// How a refused authorization is reported: the denial reason is the error code.
pub fn denied(reason: Denial) -> purser_service::ServiceError {
    purser_service::ServiceError::Denied(reason)
}

impl AuthorizationResponse {
    /// The response for a reservation or an approval; `Err` for a denial.
    pub fn from_authorization(
        authorization: Authorization,
        approval_url: impl Fn(ApprovalId) -> String,
    ) -> Result<Self, purser_service::ServiceError> {
        match authorization {
            Authorization::Reserved { reservation } => Ok(AuthorizationResponse {
                result: "reserved".into(),
                reservation: Some(reservation),
                approval: None,
                approval_url: None,
            }),
            Authorization::ApprovalRequired { approval } => Ok(AuthorizationResponse {
                result: "approval_required".into(),
                approval_url: Some(approval_url(approval.id)),
                approval: Some(approval),
                reservation: None,
            }),
            Authorization::Denied { reason } => Err(denied(reason)),
        }
    }
}

/// `POST /api/reservations/{id}/commit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitRequest {
    /// What settled it off the ledger (a transaction hash). Without it, the payee must
    /// be a wallet on this server and is paid on the ledger now.
    pub settlement: Option<String>,
}

/// `POST /api/reservations/{id}/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Why the payment did not happen.
    pub reason: String,
}

/// An approval and where the owner decides it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalResponse {
    /// The approval (its status as of now).
    #[serde(flatten)]
    pub approval: Approval,
    /// The page where the owner approves or denies it.
    pub approval_url: String,
}

/// A list of approvals, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalsList {
    /// The approvals.
    pub items: Vec<ApprovalResponse>,
}

/// `POST /api/payouts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayoutCreateRequest {
    /// Your id for the payout; retrying with the same id never pays twice.
    pub payout_id: PayoutId,
    /// The destination address.
    pub to_address: String,
    /// How much.
    pub amount: Usdc,
    /// A mandate to use; otherwise the tightest eligible one, or the owner's approval.
    pub mandate_id: Option<MandateId>,
}

impl PayoutCreateRequest {
    /// The service's request.
    pub fn request(&self) -> PayoutRequest {
        PayoutRequest {
            id: self.payout_id.clone(),
            to_address: self.to_address.clone(),
            amount: self.amount,
            mandate: self.mandate_id,
        }
    }
}

/// A payout, and where its owner approves it when it waits for approval.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutResponse {
    /// The payout.
    #[serde(flatten)]
    pub payout: Payout,
    /// Show this URL to your human while the payout is `pending_authorization`.
    pub approval_url: Option<String>,
}

/// A list of payouts, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayoutsList {
    /// The payouts.
    pub items: Vec<PayoutResponse>,
}
