//! The one authorization path as callers reach it, and what hangs off it:
//! committing and releasing reservations, the owner's per-payment approvals, and
//! the wallet policy.

use purser_chain::checksum_address;
use purser_core::authorize::PaymentRequest;
use purser_core::change::{Authorization, Authorize, Change, Outcome};
use purser_core::host::{normalize_host, normalize_patterns};
use purser_store::{Page, WriteRequest};
use purser_types::{
    AccountId, Approval, ApprovalId, ApprovalStatus, Currency, MandateId, Payee, PaymentKind,
    Reservation, ReservationId, Usdc, WalletPolicy,
};
use serde::Serialize;

use crate::auth::Principal;
use crate::idempotency::{IdempotencyKey, idempotency};
use crate::ids::new_id_bytes;
use crate::text::single_line;
use crate::wallets::{Replayable, corrupt};
use crate::{Purser, ServiceError};

/// The longest purpose, in characters.
pub const PURPOSE_MAX_CHARS: usize = 500;

/// A payment an agent wants to make, as it asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentIntent {
    /// How much.
    pub amount: Usdc,
    /// The payee's host or URL (normalized before use).
    pub payee_host: Option<String>,
    /// The payee's address.
    pub payee_address: Option<String>,
    /// Why, in the agent's words.
    pub purpose: String,
    /// What kind of payment.
    pub kind: PaymentKind,
    /// A mandate to use; otherwise the tightest eligible one.
    pub mandate: Option<MandateId>,
    /// An approval the owner gave for this payment.
    pub approval: Option<ApprovalId>,
    /// Ask the owner when no mandate covers it (V1), instead of refusing.
    pub allow_approval: bool,
}

/// A normalized payee, checked at the edge so the decision compares like with like.
pub(crate) fn normalize_payee(
    host: Option<&str>,
    address: Option<&str>,
) -> Result<Payee, ServiceError> {
    let host = host
        .map(normalize_host)
        .transpose()
        .map_err(|e| ServiceError::InvalidRequest(format!("payee host: {e}")))?
        .map(|h| h.to_string());
    let address = address
        .map(checksum_address)
        .transpose()
        .map_err(|e| ServiceError::InvalidRequest(format!("payee address: {e}")))?;
    if host.is_none() && address.is_none() {
        return Err(ServiceError::InvalidRequest(
            "name the payee: a host, an address, or both".into(),
        ));
    }
    Ok(Payee { host, address })
}

impl Purser {
    /// The server's public base URL, without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.inner.config.public_url.trim_end_matches('/')
    }

    /// The URL where the owner decides an approval.
    pub fn approval_url(&self, id: ApprovalId) -> String {
        format!("{}/approvals/{id}/review", self.public_url())
    }

    /// Builds the authorization change for an agent's payment: checked input and
    /// fresh ids for the reservation or approval it may create.
    pub(crate) fn authorize_change(
        &self,
        principal: &Principal,
        intent: &PaymentIntent,
    ) -> Result<Authorize, ServiceError> {
        let Principal::Agent { agent, wallet } = *principal else {
            return Err(ServiceError::Forbidden("payments are made by agents"));
        };
        if intent.amount.is_zero() {
            return Err(ServiceError::InvalidRequest(
                "amount must be more than 0".into(),
            ));
        }
        let payee = normalize_payee(
            intent.payee_host.as_deref(),
            intent.payee_address.as_deref(),
        )?;
        let request = PaymentRequest {
            agent,
            wallet,
            amount: intent.amount,
            payee,
            purpose: single_line("purpose", &intent.purpose, PURPOSE_MAX_CHARS)?,
            kind: intent.kind,
            mandate: intent.mandate,
            approval: intent.approval,
            allow_approval: intent.allow_approval,
        };
        let ttl_secs = match intent.kind {
            PaymentKind::Refund => crate::refunds::REFUND_APPROVAL_TTL_SECS,
            _ => self.inner.config.approval_ttl_secs,
        };
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok(Authorize {
            request,
            reservation: ReservationId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            approval: ApprovalId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            approval_expires_at: self.inner.clock.now().plus_millis(ttl_ms),
        })
    }

    async fn write_for(
        &self,
        principal: &Principal,
        change: Change,
        key: &IdempotencyKey,
        params: &impl Serialize,
    ) -> Result<(Outcome, bool), ServiceError> {
        let request = WriteRequest {
            at: self.inner.clock.now(),
            actor: principal.actor(),
            idempotency: Some(idempotency(Some(principal), key, change.name(), params)?),
            change,
        };
        let committed = self.inner.store.write(request).await?;
        Ok((committed.outcome, committed.replayed))
    }

    /// The one authorization path: reserve the funds, ask the owner, or deny — decided
    /// atomically with the hold, so concurrent payments cannot overspend a mandate.
    pub async fn authorize(
        &self,
        principal: &Principal,
        intent: &PaymentIntent,
        key: &IdempotencyKey,
    ) -> Result<Replayable<Authorization>, ServiceError> {
        let change = Change::Authorize(self.authorize_change(principal, intent)?);
        let (outcome, replayed) = self.write_for(principal, change, key, intent).await?;
        let Outcome::Authorization(authorization) = outcome else {
            return Err(corrupt("authorize"));
        };
        if !replayed {
            let result = match &authorization {
                Authorization::Reserved { .. } => "reserved",
                Authorization::ApprovalRequired { .. } => "approval_required",
                Authorization::Denied { reason } => reason.code().as_str(),
            };
            count_authorization(intent.kind, result);
        }
        Ok(Replayable {
            value: authorization,
            replayed,
        })
    }

    /// Marks a held reservation's payment as made. With a `settlement` reference (a
    /// transaction hash) the money left off the ledger, to the external-payouts
    /// account. Without one, Purser pays the reservation's own payee — a wallet on
    /// this server — on the ledger, and first re-checks the agent and mandate: if
    /// either was revoked since the hold, the funds are released instead. The
    /// destination always follows from the reservation, never from the caller.
    pub async fn commit_reservation(
        &self,
        principal: &Principal,
        id: ReservationId,
        settlement: Option<String>,
        key: &IdempotencyKey,
    ) -> Result<Replayable<Reservation>, ServiceError> {
        let reservation = self.reservation(principal, id).await?;
        self.refuse_chain_payment(id).await?;
        let destination = match &settlement {
            Some(_) => {
                AccountId::system(purser_types::AccountKind::ExternalPayouts, Currency::Usdc)
            }
            None => {
                let address =
                    reservation
                        .payee
                        .address
                        .as_deref()
                        .ok_or(ServiceError::InvalidRequest(
                        "the payee has no address on this server: give the settlement reference"
                            .into(),
                    ))?;
                self.ledger_account_of(address)
                    .await?
                    .ok_or(ServiceError::InvalidRequest(
                        "the payee is not a wallet on this server: give the settlement reference"
                            .into(),
                    ))?
            }
        };
        let enforce = settlement.is_none();
        let change = Change::Commit {
            wallet: principal.wallet(),
            reservation: id,
            destination,
            settlement: settlement.clone(),
            enforce,
        };
        let (outcome, replayed) = self
            .write_for(principal, change, key, &("commit", id, settlement))
            .await?;
        let Outcome::Reservation(reservation) = outcome else {
            return Err(corrupt("commit"));
        };
        Ok(Replayable {
            value: reservation,
            replayed,
        })
    }

    /// Gives a held reservation's funds back: the payment did not happen.
    pub async fn release_reservation(
        &self,
        principal: &Principal,
        reservation: ReservationId,
        reason: &str,
        key: &IdempotencyKey,
    ) -> Result<Replayable<Reservation>, ServiceError> {
        let reason = single_line("purpose", reason, PURPOSE_MAX_CHARS)?;
        // Whose hold it is never changes, so checking before the write is enough.
        self.reservation(principal, reservation).await?;
        self.refuse_chain_payment(reservation).await?;
        let change = Change::Release {
            wallet: principal.wallet(),
            reservation,
            reason: reason.clone(),
        };
        let (outcome, replayed) = self
            .write_for(principal, change, key, &("release", reservation, reason))
            .await?;
        let Outcome::Reservation(reservation) = outcome else {
            return Err(corrupt("release"));
        };
        Ok(Replayable {
            value: reservation,
            replayed,
        })
    }

    /// An x402 payment signed on a chain ends as the chain says: a hand-made commit
    /// or release could free funds an authorization still out there may spend.
    async fn refuse_chain_payment(&self, id: ReservationId) -> Result<(), ServiceError> {
        if self.is_chain_payment(id).await? {
            return Err(ServiceError::InvalidState(
                "this reservation backs a signed x402 authorization: it is committed or released as the chain decides (report the outcome at POST /api/payments/x402/{reservationId}/result)",
            ));
        }
        Ok(())
    }

    /// A reservation: for its wallet's owner, or the agent that holds it.
    pub async fn reservation(
        &self,
        principal: &Principal,
        id: ReservationId,
    ) -> Result<Reservation, ServiceError> {
        let reservation = self
            .inner
            .store
            .reservation(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        principal.require_owner_or_agent(reservation.wallet_id, reservation.agent_id)?;
        Ok(reservation)
    }

    /// An approval: for the owner, or the agent that asked for it.
    pub async fn approval(
        &self,
        principal: &Principal,
        id: ApprovalId,
    ) -> Result<Approval, ServiceError> {
        let approval = self
            .inner
            .store
            .approval(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        principal.require_owner_or_agent(approval.wallet_id, approval.agent_id)?;
        Ok(approval)
    }

    /// The owner's approvals, newest first; `pending_only` for the queue.
    pub async fn approvals(
        &self,
        principal: &Principal,
        pending_only: bool,
        page: Page,
    ) -> Result<Vec<Approval>, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        let status = pending_only.then_some(ApprovalStatus::Pending.as_str());
        let approvals = self.inner.store.approvals(wallet, status, page).await?;
        let now = self.inner.clock.now();
        Ok(approvals
            .into_iter()
            .filter(|a| !pending_only || a.status_at(now) == ApprovalStatus::Pending)
            .collect())
    }

    /// The owner approves or denies one payment. A payout waiting for this approval
    /// goes ahead (or fails) at once.
    pub async fn decide_approval(
        &self,
        principal: &Principal,
        id: ApprovalId,
        approve: bool,
        key: &IdempotencyKey,
    ) -> Result<Replayable<Approval>, ServiceError> {
        let wallet = principal.wallet();
        if matches!(principal, Principal::Agent { .. }) {
            return Err(ServiceError::Forbidden(
                "an agent can never approve its own payment",
            ));
        }
        let change = Change::DecideApproval {
            wallet,
            approval: id,
            approve,
        };
        let (outcome, replayed) = self
            .write_for(principal, change, key, &("decide", id, approve))
            .await?;
        let Outcome::Approval(approval) = outcome else {
            return Err(corrupt("decide approval"));
        };
        self.resume_payout_of(&approval).await?;
        Ok(Replayable {
            value: approval,
            replayed,
        })
    }

    /// The wallet's policy (owner only); the default allows everything mandates allow.
    pub async fn policy(&self, principal: &Principal) -> Result<WalletPolicy, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        Ok(self.inner.store.policy(wallet).await?.unwrap_or_default())
    }

    /// Replaces the wallet's policy (owner only). Host patterns are normalized and
    /// addresses checksummed; anything unparseable is refused.
    pub async fn set_policy(
        &self,
        principal: &Principal,
        policy: &WalletPolicy,
        key: &IdempotencyKey,
    ) -> Result<Replayable<WalletPolicy>, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        let policy = normalize_policy(policy)?;
        let change = Change::SetPolicy {
            wallet,
            policy: policy.clone(),
        };
        let (outcome, replayed) = self.write_for(principal, change, key, &policy).await?;
        let Outcome::Policy(policy) = outcome else {
            return Err(corrupt("set policy"));
        };
        Ok(Replayable {
            value: policy,
            replayed,
        })
    }

    /// The ledger account of the wallet holding `address`, if it is on this server.
    pub(crate) async fn ledger_account_of(
        &self,
        address: &str,
    ) -> Result<Option<AccountId>, ServiceError> {
        let wallet = self.inner.store.wallet_by_address(address).await?;
        Ok(wallet.map(|w| AccountId::available(w.id, Currency::Usdc)))
    }
}

fn normalize_policy(policy: &WalletPolicy) -> Result<WalletPolicy, ServiceError> {
    let denied_hosts = normalize_patterns(&policy.denied_hosts).map_err(|(host, e)| {
        ServiceError::InvalidRequest(format!("deniedHosts entry {host:?}: {e}"))
    })?;
    let mut denied_addresses = Vec::with_capacity(policy.denied_addresses.len());
    for address in &policy.denied_addresses {
        let checked = checksum_address(address).map_err(|e| {
            ServiceError::InvalidRequest(format!("deniedAddresses entry {address:?}: {e}"))
        })?;
        denied_addresses.push(checked);
    }
    denied_addresses.sort();
    denied_addresses.dedup();
    for cap in [policy.per_agent_monthly_cap, policy.per_payment_cap]
        .into_iter()
        .flatten()
    {
        if cap.is_zero() {
            return Err(ServiceError::InvalidRequest(
                "a cap of 0 would refuse every payment; leave it unset instead".into(),
            ));
        }
    }
    Ok(WalletPolicy {
        denied_hosts,
        denied_addresses,
        ..policy.clone()
    })
}

/// Counts an answer of the authorization path, by payment kind and result (the
/// denial's code when refused): how much is being blocked, and why, at a glance.
pub(crate) fn count_authorization(kind: PaymentKind, result: &'static str) {
    metrics::counter!("purser_authorizations_total", "kind" => kind.as_str(), "result" => result)
        .increment(1);
}
