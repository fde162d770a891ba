//! Refunds of payments received through payment links. The merchant's agent
//! starts one; it is a payout of kind `refund` back to the payer, which no
//! mandate covers, so it always waits for the owner's approval (its `refundUrl`,
//! 24 hours). It ends `settled` when the payout is paid, `cancelled` when the
//! merchant withdraws it or the owner refuses it, `expired` when nobody decided
//! in time, `failed` when it could not be paid. Only money that arrived can go
//! back: the refundable amount is taken atomically when the refund starts and
//! given back if it does not settle.

use purser_core::change::{Change, Outcome, event};
use purser_store::{Page, WriteRequest};
use purser_types::{
    Actor, ErrorCode, PaymentKind, Payout, PayoutId, PayoutStatus, ReceivedPaymentId,
    ReceivedStatus, Refund, RefundId, RefundStatus, Usdc,
};
use serde::Serialize;
use serde_json::json;

use crate::auth::Principal;
use crate::idempotency::{IdempotencyKey, keyed_id};
use crate::payouts::PayoutRequest;
use crate::text::single_line;
use crate::wallets::{Replayable, corrupt};
use crate::{Purser, ServiceError};

/// How long the owner has to authorize a refund.
pub const REFUND_APPROVAL_TTL_SECS: u64 = 24 * 3600;
/// The longest refund reason, in characters.
const REASON_MAX_CHARS: usize = 500;

/// A refund as the merchant asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundRequest {
    /// The received payment to refund.
    pub payment_id: ReceivedPaymentId,
    /// How much (default: all that is left to refund).
    pub amount: Option<Usdc>,
    /// Why.
    pub reason: Option<String>,
}

/// A refund and where its owner authorizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    /// The refund.
    pub refund: Refund,
    /// The page where the owner authorizes it, while it is pending.
    pub refund_url: Option<String>,
}

impl Purser {
    fn refund_view(&self, refund: Refund) -> RefundView {
        let refund_url = refund
            .approval_id
            .filter(|_| refund.status == RefundStatus::Pending)
            .map(|id| self.approval_url(id));
        RefundView { refund, refund_url }
    }

    /// Starts a refund (the agent that made the payment's link). Idempotent by
    /// key: the refund's id comes from it.
    pub async fn start_refund(
        &self,
        principal: &Principal,
        request: &RefundRequest,
        key: &IdempotencyKey,
    ) -> Result<Replayable<RefundView>, ServiceError> {
        let Principal::Agent { agent, wallet } = *principal else {
            return Err(ServiceError::Forbidden(
                "refunds are started by the merchant's agent and authorized by the owner",
            ));
        };
        let id = RefundId::from_bytes(keyed_id(principal, key, "start_refund"));
        if let Some(existing) = self.inner.store.refund(id).await? {
            let same = existing.payment_id == request.payment_id
                && request.amount.is_none_or(|a| a == existing.amount);
            if !same {
                return Err(ServiceError::IdempotencyConflict);
            }
            let refund = self.refresh_refund(existing).await?;
            return Ok(Replayable {
                value: self.refund_view(refund),
                replayed: true,
            });
        }
        let payment = self.received_payment(principal, request.payment_id).await?;
        if payment.status != ReceivedStatus::Settled {
            return Err(ServiceError::InvalidState(
                "only a settled payment can be refunded",
            ));
        }
        let left = payment
            .amount
            .checked_sub(payment.refunded_amount)
            .unwrap_or(Usdc::ZERO);
        let amount = request.amount.unwrap_or(left);
        if amount.is_zero() || amount > left {
            return Err(ServiceError::RefundExceedsPayment(left));
        }
        let reason = request
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| single_line("reason", r, REASON_MAX_CHARS))
            .transpose()?;
        let now = self.inner.clock.now();
        let payout_id: PayoutId = id
            .to_string()
            .parse()
            .map_err(|_| corrupt("a refund's payout id"))?;
        let refund = Refund {
            id,
            payment_id: payment.id,
            wallet_id: wallet,
            agent_id: agent,
            amount,
            to_address: payment.payer.clone(),
            reason,
            payout_id,
            approval_id: None,
            status: RefundStatus::Pending,
            settlement: None,
            created_at: now,
            updated_at: now,
        };
        let record = event(
            principal.actor(),
            "refund.started",
            Some(wallet),
            id,
            json!({"payment": payment.id, "amount": amount, "to": refund.to_address}),
        );
        if !self.inner.store.insert_refund(&refund, record).await? {
            return Err(ServiceError::RefundExceedsPayment(left));
        }
        let refund = self.refresh_refund(refund).await?;
        Ok(Replayable {
            value: self.refund_view(refund),
            replayed: false,
        })
    }

    /// Brings a pending refund up to date with its payout: asks for the payout if
    /// it was never asked for (a crash between the two), and ends the refund
    /// when the payout ended.
    pub(crate) async fn refresh_refund(&self, refund: Refund) -> Result<Refund, ServiceError> {
        if refund.status.is_final() {
            return Ok(refund);
        }
        let agent = Principal::Agent {
            agent: refund.agent_id,
            wallet: refund.wallet_id,
        };
        let existing = self
            .inner
            .store
            .payout(refund.wallet_id, &refund.payout_id)
            .await?;
        let payout = match existing {
            Some(_) => self.payout(&agent, &refund.payout_id).await?,
            None => {
                let request = PayoutRequest {
                    id: refund.payout_id.clone(),
                    to_address: refund.to_address.clone(),
                    amount: refund.amount,
                    mandate: None,
                };
                match self
                    .request_payout_as(&agent, &request, PaymentKind::Refund)
                    .await
                {
                    Ok(payout) => payout.value,
                    Err(ServiceError::Denied(reason)) => {
                        let status = RefundStatus::Failed;
                        return self.end_refund(refund, status, None, reason.code()).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.follow(refund, &payout).await
    }

    /// Moves a refund along with its payout.
    async fn follow(&self, refund: Refund, payout: &Payout) -> Result<Refund, ServiceError> {
        let reason = payout.failure_reason.unwrap_or(ErrorCode::InternalError);
        match payout.status {
            PayoutStatus::PendingAuthorization | PayoutStatus::Authorized => {
                if refund.approval_id.is_none() && payout.approval_id.is_some() {
                    let noted = Refund {
                        approval_id: payout.approval_id,
                        updated_at: self.inner.clock.now(),
                        ..refund
                    };
                    self.inner.store.note_refund_approval(&noted).await?;
                    return Ok(noted);
                }
                Ok(refund)
            }
            PayoutStatus::Succeeded => {
                let settlement = payout.settlement.clone();
                self.end_refund(refund, RefundStatus::Settled, settlement, reason)
                    .await
            }
            PayoutStatus::Expired => {
                self.end_refund(refund, RefundStatus::Expired, None, reason)
                    .await
            }
            PayoutStatus::Failed if reason == ErrorCode::ApprovalDenied => {
                self.end_refund(refund, RefundStatus::Cancelled, None, reason)
                    .await
            }
            PayoutStatus::Failed => {
                self.end_refund(refund, RefundStatus::Failed, None, reason)
                    .await
            }
        }
    }

    /// The refund a payout carries, moved along with it.
    pub(crate) async fn follow_refund_payout(&self, payout: &Payout) -> Result<(), ServiceError> {
        if let Some(refund) = self
            .inner
            .store
            .refund_by_payout(payout.id.as_str())
            .await?
        {
            self.follow(refund, payout).await?;
        }
        Ok(())
    }

    async fn end_refund(
        &self,
        refund: Refund,
        status: RefundStatus,
        settlement: Option<String>,
        reason: ErrorCode,
    ) -> Result<Refund, ServiceError> {
        let ended = Refund {
            status,
            settlement,
            updated_at: self.inner.clock.now(),
            ..refund
        };
        let link = match self.inner.store.received_payment(ended.payment_id).await? {
            Some(payment) => self.inner.store.payment_link(payment.link_id).await?,
            None => None,
        };
        let event_type = format!("refund.{}", status.as_str());
        let webhook = match &link {
            Some(link) => self.webhook_event(link, &event_type, json!({"refund": ended}))?,
            None => None,
        };
        let details = match status {
            RefundStatus::Settled => {
                json!({"amount": ended.amount, "settlement": ended.settlement})
            }
            _ => json!({"amount": ended.amount, "reason": reason}),
        };
        let record = event(
            Actor::System,
            &event_type,
            Some(ended.wallet_id),
            ended.id,
            details,
        );
        if self
            .inner
            .store
            .finish_refund(&ended, webhook.as_ref(), record)
            .await?
        {
            if webhook.is_some() {
                self.wake_webhooks();
            }
            return Ok(ended);
        }
        // Someone else ended it first: answer as it stands.
        self.inner
            .store
            .refund(ended.id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// A refund: for the owner, or the agent that started it.
    pub async fn refund(
        &self,
        principal: &Principal,
        id: RefundId,
    ) -> Result<RefundView, ServiceError> {
        let refund = self
            .inner
            .store
            .refund(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        principal.require_owner_or_agent(refund.wallet_id, refund.agent_id)?;
        let refund = self.refresh_refund(refund).await?;
        Ok(self.refund_view(refund))
    }

    /// The wallet's refunds (owner: all; agent: its own), newest first.
    pub async fn refunds(
        &self,
        principal: &Principal,
        page: Page,
    ) -> Result<Vec<RefundView>, ServiceError> {
        let refunds = self.inner.store.refunds(principal.wallet(), page).await?;
        Ok(refunds
            .into_iter()
            .filter(|r| match principal {
                Principal::Owner { .. } => true,
                Principal::Agent { agent, .. } => r.agent_id == *agent,
            })
            .map(|r| self.refund_view(r))
            .collect())
    }

    /// The merchant withdraws a pending refund: its approval is denied (so the
    /// owner can no longer authorize it) and it ends `cancelled`.
    pub async fn cancel_refund(
        &self,
        principal: &Principal,
        id: RefundId,
    ) -> Result<RefundView, ServiceError> {
        let view = self.refund(principal, id).await?;
        let refund = view.refund;
        if refund.status != RefundStatus::Pending {
            return Err(ServiceError::InvalidState("the refund has already ended"));
        }
        let approval = refund
            .approval_id
            .ok_or(ServiceError::InvalidState("the refund is being paid"))?;
        let write = WriteRequest {
            at: self.inner.clock.now(),
            actor: principal.actor(),
            idempotency: None,
            change: Change::DecideApproval {
                wallet: refund.wallet_id,
                approval,
                approve: false,
            },
        };
        match self.inner.store.write(write).await?.outcome {
            Outcome::Approval(decided) => self.resume_payout_of(&decided).await?,
            _ => return Err(corrupt("cancel refund")),
        }
        self.refund(principal, id).await
    }

    /// Follows pending refunds whose approval was decided, expired, or whose
    /// payout was paid on chain since (the background task).
    pub(crate) async fn follow_pending_refunds(&self) -> Result<usize, ServiceError> {
        let pending = self.inner.store.pending_refunds(100).await?;
        let mut ended = 0;
        for refund in pending {
            if self.refresh_refund(refund).await?.status.is_final() {
                ended += 1;
            }
        }
        Ok(ended)
    }
}
