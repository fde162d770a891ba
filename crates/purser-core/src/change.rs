//! Every kind of state change Purser makes, as data.
//!
//! The service layer checks who may ask for a change and builds it; the store
//! applies it atomically through [`crate::batch`], which decides what actually
//! happens against the locked state and records an audit event for every step it
//! takes (a payout, say, is an authorization, a hold and a payment). No code path
//! changes state without leaving one.

use purser_types::{
    AccountId, Actor, Agent, AgentId, Approval, ApprovalId, AuditEvent, Currency, Denial, Hash32,
    Mandate, MandateId, MandateSignature, Payout, PayoutId, Reservation, ReservationId, Transfer,
    TransferId, TransferKind, UnixMs, Usdc, Wallet, WalletId, WalletPolicy,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authorize::PaymentRequest;

/// A transfer the service has decided to make; the store applies it under the
/// rules of [`crate::ledger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// The id, chosen before submission so a retry can be recognised.
    pub id: TransferId,
    /// Where the money comes from.
    pub from: AccountId,
    /// Where it goes.
    pub to: AccountId,
    /// How much.
    pub amount: Usdc,
    /// Why.
    pub kind: TransferKind,
    /// A free-text note.
    pub memo: Option<String>,
}

impl NewTransfer {
    /// The currency the transfer moves (that of its source).
    pub const fn currency(&self) -> Currency {
        self.from.currency
    }
}

/// An authorization to decide, with the ids its outcome will use (chosen before
/// submission, so a retry is recognisable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorize {
    /// The payment asked for.
    pub request: PaymentRequest,
    /// The id of the reservation, if the payment is reserved.
    pub reservation: ReservationId,
    /// The id of the approval, if the owner must be asked.
    pub approval: ApprovalId,
    /// When a new approval expires.
    pub approval_expires_at: UnixMs,
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A person creates a wallet; its accounts are opened with it.
    CreateWallet {
        /// The wallet.
        wallet: Wallet,
        /// SHA-256 of the owner token; the token itself is never stored.
        owner_token_hash: Hash32,
        /// The wallet's secp256k1 key, sealed by the signer.
        sealed_key: String,
        /// The PHC string (Argon2id) of the dashboard password, when one was set.
        password_hash: Option<String>,
    },
    /// The owner registers an agent.
    RegisterAgent {
        /// The agent.
        agent: Agent,
        /// SHA-256 of the agent credential; the credential itself is never stored.
        credential_hash: Hash32,
    },
    /// The owner revokes an agent. Revoking twice changes nothing the second time.
    RevokeAgent {
        /// The wallet the agent must belong to.
        wallet: WalletId,
        /// The agent.
        agent: AgentId,
    },
    /// Money moves between two accounts.
    Transfer(NewTransfer),
    /// An agent drafts a mandate (status `pending_signature`).
    DraftMandate(Mandate),
    /// The owner signs a pending mandate.
    SignMandate {
        /// The wallet it must belong to.
        wallet: WalletId,
        /// The mandate.
        mandate: MandateId,
        /// The signature over its terms.
        signature: MandateSignature,
    },
    /// The owner rejects a pending mandate.
    RejectMandate {
        /// The wallet it must belong to.
        wallet: WalletId,
        /// The mandate.
        mandate: MandateId,
    },
    /// The owner revokes a signed mandate.
    RevokeMandate {
        /// The wallet it must belong to.
        wallet: WalletId,
        /// The mandate.
        mandate: MandateId,
    },
    /// An agent asks to pay: reserve, ask the owner, or deny.
    Authorize(Authorize),
    /// A held reservation's payment happened (or, with `enforce`, is made now on the
    /// ledger — refused and released if the agent or mandate was revoked meanwhile).
    Commit {
        /// The wallet the reservation must belong to.
        wallet: WalletId,
        /// The reservation.
        reservation: ReservationId,
        /// Where the money goes.
        destination: AccountId,
        /// What settled it (a transaction hash), or `None` for a ledger payment.
        settlement: Option<String>,
        /// Re-check the agent and mandate before paying (Purser executes the payment).
        enforce: bool,
    },
    /// A held reservation's payment did not happen: give the funds back.
    Release {
        /// The wallet the reservation must belong to.
        wallet: WalletId,
        /// The reservation.
        reservation: ReservationId,
        /// Why.
        reason: String,
    },
    /// The owner decides a pending approval.
    DecideApproval {
        /// The wallet it must belong to.
        wallet: WalletId,
        /// The approval.
        approval: ApprovalId,
        /// Approve or deny.
        approve: bool,
    },
    /// The owner replaces the wallet's policy.
    SetPolicy {
        /// The wallet.
        wallet: WalletId,
        /// The new policy (host patterns already normalized).
        policy: WalletPolicy,
    },
    /// An agent asks for a payout: authorized and, on the ledger rail, paid at once.
    RequestPayout {
        /// The payout as asked for (status is decided here).
        payout: Payout,
        /// Its authorization.
        authorize: Authorize,
        /// The payee's account on this server, for the ledger rail.
        destination: Option<AccountId>,
    },
    /// A payout waiting for the owner's approval is tried again after the decision.
    ResumePayout {
        /// The payout.
        payout: Payout,
        /// Its authorization, naming the approval.
        authorize: Authorize,
        /// The payee's account on this server, for the ledger rail.
        destination: Option<AccountId>,
    },
    /// An authorized external payout's on-chain leg ended: its reservation is
    /// committed (the money left for the chain) or released, and the payout moves
    /// to `succeeded` or `failed` with it, in one step.
    FinishPayout {
        /// The wallet.
        wallet: WalletId,
        /// The payout.
        payout: PayoutId,
        /// Its reservation.
        reservation: ReservationId,
        /// How the leg ended.
        result: PayoutResult,
    },
}

/// How an external payout's on-chain leg ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutResult {
    /// The transfer happened in this transaction.
    Sent {
        /// The transaction hash (or, when it cannot be found, the used authorization).
        settlement: String,
    },
    /// Nothing was paid, and the signed authorization can no longer be used.
    Failed {
        /// Why, in words.
        reason: String,
    },
}

/// The result of an authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Authorization {
    /// The funds are held.
    Reserved {
        /// The reservation.
        reservation: Reservation,
    },
    /// The owner must approve this payment.
    ApprovalRequired {
        /// The approval to send them to.
        approval: Approval,
    },
    /// Refused.
    Denied {
        /// Why.
        reason: Denial,
    },
}

/// What a change produced: the record as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "record", rename_all = "snake_case")]
pub enum Outcome {
    /// A wallet.
    Wallet(Wallet),
    /// An agent.
    Agent(Agent),
    /// A transfer.
    Transfer(Transfer),
    /// A mandate.
    Mandate(Mandate),
    /// An authorization.
    Authorization(Authorization),
    /// A reservation after commit or release.
    Reservation(Reservation),
    /// An approval.
    Approval(Approval),
    /// A wallet policy.
    Policy(WalletPolicy),
    /// A payout, or the denial that stopped it.
    Payout(PayoutOutcome),
}

/// A payout request's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PayoutOutcome {
    /// The payout exists, in the status it reached.
    Recorded {
        /// The payout.
        payout: Payout,
    },
    /// The payout was refused and not recorded.
    Denied {
        /// Why.
        reason: Denial,
    },
}

impl Outcome {
    /// Whether the first use of an idempotency key should be recorded: a denial is
    /// not, so the same request can be tried again once the reason is gone.
    pub fn consumes_key(&self) -> bool {
        !matches!(
            self,
            Outcome::Authorization(Authorization::Denied { .. })
                | Outcome::Payout(PayoutOutcome::Denied { .. })
        )
    }
}

impl Change {
    /// A short stable name of the change, used in idempotency fingerprints.
    pub const fn name(&self) -> &'static str {
        match self {
            Change::CreateWallet { .. } => "create_wallet",
            Change::RegisterAgent { .. } => "register_agent",
            Change::RevokeAgent { .. } => "revoke_agent",
            Change::Transfer(_) => "transfer",
            Change::DraftMandate(_) => "draft_mandate",
            Change::SignMandate { .. } => "sign_mandate",
            Change::RejectMandate { .. } => "reject_mandate",
            Change::RevokeMandate { .. } => "revoke_mandate",
            Change::Authorize(_) => "authorize",
            Change::Commit { .. } => "commit",
            Change::Release { .. } => "release",
            Change::DecideApproval { .. } => "decide_approval",
            Change::SetPolicy { .. } => "set_policy",
            Change::RequestPayout { .. } => "request_payout",
            Change::ResumePayout { .. } => "resume_payout",
            Change::FinishPayout { .. } => "finish_payout",
        }
    }
}

/// Builds an audit event. `details` is compact JSON; it never carries secrets.
pub fn event(
    actor: Actor,
    action: &str,
    wallet: Option<WalletId>,
    subject: impl ToString,
    details: Value,
) -> AuditEvent {
    AuditEvent {
        actor,
        action: action.to_owned(),
        wallet_id: wallet,
        subject: subject.to_string(),
        details: details.to_string(),
    }
}

/// The audit action of a ledger transfer of this kind.
pub const fn transfer_action(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::SandboxFunding => "wallet.funded",
        TransferKind::Adjustment => "ledger.transfer",
        TransferKind::Reserve => "ledger.reserve",
        TransferKind::Release => "ledger.release",
        TransferKind::Payment => "ledger.payment",
        TransferKind::Deposit => "wallet.deposit",
    }
}
