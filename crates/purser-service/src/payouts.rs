//! Payouts: the first payment kind. Without a chain, a payout to a wallet on this
//! server settles at once on the ledger, and one to any other address is
//! authorized and held for an external leg. With a chain every payout is sent on
//! it (a wallet's USDC lives at its address, so ledger and chain stay equal per
//! wallet; a receiving wallet sees the transfer as a deposit). Either way they go
//! through the one authorization path.

use purser_chain::checksum_address;
use purser_core::change::{Change, Outcome, PayoutOutcome};
use purser_store::{Page, WriteRequest};
use purser_types::{
    Approval, ApprovalStatus, MandateId, PaymentKind, Payout, PayoutId, PayoutStatus, Rail, Usdc,
};

use crate::auth::Principal;
use crate::idempotency::{IdempotencyKey, idempotency};
use crate::payments::PaymentIntent;
use crate::wallets::{Replayable, corrupt};
use crate::{Purser, ServiceError};

/// A payout as an agent asks for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PayoutRequest {
    /// The caller's id for it; also its idempotency key.
    pub id: PayoutId,
    /// The destination address.
    pub to_address: String,
    /// How much.
    pub amount: Usdc,
    /// A mandate to use; otherwise the tightest eligible one, or the owner's approval.
    pub mandate: Option<MandateId>,
}

impl Purser {
    /// Requests a payout. Idempotent by payout id: the same id with the same request
    /// returns the payout as it stands; with a different request, a conflict.
    pub async fn request_payout(
        &self,
        principal: &Principal,
        request: &PayoutRequest,
    ) -> Result<Replayable<Payout>, ServiceError> {
        self.request_payout_as(principal, request, PaymentKind::Payout)
            .await
    }

    /// Requests a payout of `kind`: a payout, or the payout that carries a refund.
    pub(crate) async fn request_payout_as(
        &self,
        principal: &Principal,
        request: &PayoutRequest,
        kind: PaymentKind,
    ) -> Result<Replayable<Payout>, ServiceError> {
        let Principal::Agent { agent, wallet } = *principal else {
            return Err(ServiceError::Forbidden("payouts are requested by agents"));
        };
        let to_address = checksum_address(&request.to_address)
            .map_err(|e| ServiceError::InvalidRequest(format!("to: {e}")))?;
        let local = self.ledger_account_of(&to_address).await?;
        if local.is_some_and(|d| d.wallet == Some(wallet)) {
            return Err(ServiceError::InvalidRequest(
                "a payout cannot go to the paying wallet itself".into(),
            ));
        }
        let destination = self.paid_on_ledger(local);
        let intent = PaymentIntent {
            amount: request.amount,
            payee_host: None,
            payee_address: Some(to_address.clone()),
            purpose: format!("{} {}", kind.as_str(), request.id),
            kind,
            mandate: request.mandate,
            approval: None,
            allow_approval: true,
        };
        let authorize = self.authorize_change(principal, &intent)?;
        let now = self.inner.clock.now();
        let payout = Payout {
            id: request.id.clone(),
            wallet_id: wallet,
            agent_id: agent,
            to_address,
            amount: request.amount,
            mandate_id: request.mandate,
            rail: if destination.is_some() {
                Rail::Ledger
            } else {
                Rail::External
            },
            status: PayoutStatus::PendingAuthorization,
            reservation_id: None,
            approval_id: None,
            settlement: None,
            failure_reason: None,
            created_at: now,
            updated_at: now,
        };
        let key = IdempotencyKey::parse(request.id.as_str())?;
        // The fingerprint covers the checksummed address: any spelling of it replays.
        let params = (payout.to_address.clone(), request.amount, request.mandate);
        let change = Change::RequestPayout {
            payout,
            authorize,
            destination,
        };
        let write = WriteRequest {
            at: now,
            actor: principal.actor(),
            idempotency: Some(idempotency(Some(principal), &key, change.name(), &params)?),
            change,
        };
        let committed = self.inner.store.write(write).await?;
        if !committed.replayed {
            let result = match &committed.outcome {
                Outcome::Payout(PayoutOutcome::Denied { reason }) => reason.code().as_str(),
                Outcome::Payout(PayoutOutcome::Recorded { payout })
                    if payout.status == PayoutStatus::PendingAuthorization =>
                {
                    "approval_required"
                }
                _ => "reserved",
            };
            crate::payments::count_authorization(kind, result);
        }
        match committed.outcome {
            Outcome::Payout(PayoutOutcome::Recorded { payout }) => Ok(Replayable {
                value: self.send_payout(payout).await?,
                replayed: committed.replayed,
            }),
            Outcome::Payout(PayoutOutcome::Denied { reason }) => Err(ServiceError::Denied(reason)),
            _ => Err(corrupt("request payout")),
        }
    }

    /// A payout: for the owner, or the agent that asked for it. One still waiting for
    /// an approval that has been decided (or has expired) is brought up to date.
    pub async fn payout(
        &self,
        principal: &Principal,
        id: &PayoutId,
    ) -> Result<Payout, ServiceError> {
        let payout = self
            .inner
            .store
            .payout(principal.wallet(), id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        principal.require_owner_or_agent(payout.wallet_id, payout.agent_id)?;
        if payout.status != PayoutStatus::PendingAuthorization {
            return Ok(payout);
        }
        let approval = match payout.approval_id {
            Some(approval) => self.inner.store.approval(approval).await?,
            None => None,
        };
        match approval {
            Some(a) if a.status_at(self.inner.clock.now()) != ApprovalStatus::Pending => {
                self.resume(payout, a.kind).await
            }
            _ => Ok(payout),
        }
    }

    /// The wallet's payouts (owner), newest first, optionally only those with `status`.
    pub async fn payouts(
        &self,
        principal: &Principal,
        status: Option<PayoutStatus>,
        page: Page,
    ) -> Result<Vec<Payout>, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        Ok(self
            .inner
            .store
            .payouts(wallet, status.map(PayoutStatus::as_str), page)
            .await?)
    }

    /// After the owner decides an approval, the payout waiting for it goes ahead
    /// (and the refund it carries, if any, follows).
    pub(crate) async fn resume_payout_of(&self, approval: &Approval) -> Result<(), ServiceError> {
        if approval.kind == PaymentKind::X402 {
            return Ok(());
        }
        if let Some(payout) = self
            .inner
            .store
            .payout_by_approval(approval.wallet_id, approval.id)
            .await?
        {
            let payout = self.resume(payout, approval.kind).await?;
            if approval.kind == PaymentKind::Refund {
                self.follow_refund_payout(&payout).await?;
            }
        }
        Ok(())
    }

    /// Tries a waiting payout again, as its agent, with its approval.
    async fn resume(&self, payout: Payout, kind: PaymentKind) -> Result<Payout, ServiceError> {
        let principal = Principal::Agent {
            agent: payout.agent_id,
            wallet: payout.wallet_id,
        };
        let destination = self.paid_on_ledger(self.ledger_account_of(&payout.to_address).await?);
        let intent = PaymentIntent {
            amount: payout.amount,
            payee_host: None,
            payee_address: Some(payout.to_address.clone()),
            purpose: format!("{} {}", kind.as_str(), payout.id),
            kind,
            mandate: None,
            approval: payout.approval_id,
            allow_approval: true,
        };
        let authorize = self.authorize_change(&principal, &intent)?;
        let change = Change::ResumePayout {
            payout,
            authorize,
            destination,
        };
        let write = WriteRequest {
            at: self.inner.clock.now(),
            actor: principal.actor(),
            idempotency: None,
            change,
        };
        match self.inner.store.write(write).await?.outcome {
            Outcome::Payout(PayoutOutcome::Recorded { payout }) => self.send_payout(payout).await,
            _ => Err(corrupt("resume payout")),
        }
    }

    /// The ledger account a payout pays at once: the destination's account when it
    /// is a wallet on this server, and only without a chain (with one, the payout
    /// goes on chain like any other).
    fn paid_on_ledger(
        &self,
        local: Option<purser_types::AccountId>,
    ) -> Option<purser_types::AccountId> {
        local.filter(|_| self.inner.config.chain.is_none())
    }
}
