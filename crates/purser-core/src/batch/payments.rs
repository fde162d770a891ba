//! Mandates, the authorization path, reservations, approvals, policy and payouts.

use purser_types::{
    AccountId, AccountKind, AgentId, AgentStatus, Approval, ApprovalStatus, Currency, Denial,
    ErrorCode, Mandate, MandateId, MandateSignature, MandateStatus, Payout, PayoutStatus, Rail,
    Reservation, ReservationId, ReservationStatus, TransferKind, Usdc, WalletId, WalletPolicy,
};
use serde_json::json;

use super::{Batch, Needs, Refusal, Step, WriteRequest};
use crate::authorize::{Cover, Decision, Facts, MonthTotals, decide, month_of};
use crate::change::{
    Authorization, Authorize, Change, Outcome, PayoutOutcome, PayoutResult, event,
};
use crate::ledger::LedgerError;

pub(super) fn needs(needs: &mut Needs, request: &WriteRequest) {
    match &request.change {
        Change::DraftMandate(mandate) => {
            needs.agents.insert(mandate.agent_id);
            needs.mandates.insert(mandate.id);
        }
        Change::SignMandate { mandate, .. }
        | Change::RejectMandate { mandate, .. }
        | Change::RevokeMandate { mandate, .. } => {
            needs.mandates.insert(*mandate);
        }
        Change::Authorize(authorize) => authorize_needs(needs, authorize, request),
        Change::Commit {
            wallet,
            reservation,
            destination,
            ..
        } => {
            needs.reservations.insert(*reservation);
            needs.accounts.extend(wallet_accounts(*wallet));
            needs.accounts.insert(*destination);
        }
        Change::Release {
            wallet,
            reservation,
            ..
        } => {
            needs.reservations.insert(*reservation);
            needs.accounts.extend(wallet_accounts(*wallet));
        }
        Change::DecideApproval { approval, .. } => {
            needs.approvals.insert(*approval);
        }
        Change::SetPolicy { wallet, .. } => {
            needs.policies.insert(*wallet);
        }
        Change::RequestPayout {
            payout,
            authorize,
            destination,
        }
        | Change::ResumePayout {
            payout,
            authorize,
            destination,
        } => {
            needs.payouts.insert((payout.wallet_id, payout.id.clone()));
            authorize_needs(needs, authorize, request);
            needs.accounts.extend(*destination);
        }
        Change::FinishPayout {
            wallet,
            payout,
            reservation,
            ..
        } => {
            needs.payouts.insert((*wallet, payout.clone()));
            needs.reservations.insert(*reservation);
            needs.accounts.extend(wallet_accounts(*wallet));
            needs.accounts.insert(external_payouts());
        }
        _ => {}
    }
}

fn authorize_needs(needs: &mut Needs, authorize: &Authorize, request: &WriteRequest) {
    let payment = &authorize.request;
    needs.agents.insert(payment.agent);
    needs.accounts.extend(wallet_accounts(payment.wallet));
    needs.agent_mandates.insert(payment.agent);
    needs.mandates.extend(payment.mandate);
    needs.approvals.extend(payment.approval);
    needs.policies.insert(payment.wallet);
    needs.months.insert((payment.agent, month_of(request.at)));
}

fn external_payouts() -> AccountId {
    AccountId::system(AccountKind::ExternalPayouts, Currency::Usdc)
}

fn wallet_accounts(wallet: WalletId) -> [AccountId; 2] {
    [
        AccountId::available(wallet, Currency::Usdc),
        AccountId::reserved(wallet, Currency::Usdc),
    ]
}

/// Adds or takes away an amount, refusing to wrap.
fn add(total: Usdc, amount: Usdc) -> Result<Usdc, Refusal> {
    total
        .checked_add(amount)
        .ok_or(Refusal::InvalidState("the total would overflow"))
}

fn sub(total: Usdc, amount: Usdc) -> Result<Usdc, Refusal> {
    total
        .checked_sub(amount)
        .ok_or(Refusal::InvalidState("the total would go below zero"))
}

/// How a reservation's amount moves between a mandate's (or month's) columns.
#[derive(Clone, Copy)]
enum Movement {
    Reserve,
    Commit,
    Release,
}

impl Movement {
    fn apply(self, spent: Usdc, pending: Usdc, amount: Usdc) -> Result<(Usdc, Usdc), Refusal> {
        match self {
            Movement::Reserve => Ok((spent, add(pending, amount)?)),
            Movement::Commit => Ok((add(spent, amount)?, sub(pending, amount)?)),
            Movement::Release => Ok((spent, sub(pending, amount)?)),
        }
    }
}

impl Batch {
    pub(super) fn apply_payment_change(
        &mut self,
        step: Step,
        change: &Change,
    ) -> Result<Outcome, Refusal> {
        match change {
            Change::DraftMandate(mandate) => self.draft_mandate(step, mandate),
            Change::SignMandate {
                wallet,
                mandate,
                signature,
            } => self.sign_mandate(step, *wallet, *mandate, signature),
            Change::RejectMandate { wallet, mandate } => {
                self.close_mandate(step, *wallet, *mandate, MandateStatus::Rejected)
            }
            Change::RevokeMandate { wallet, mandate } => {
                self.close_mandate(step, *wallet, *mandate, MandateStatus::Revoked)
            }
            Change::Authorize(authorize) => {
                self.authorize(step, authorize).map(Outcome::Authorization)
            }
            Change::Commit {
                wallet,
                reservation,
                destination,
                settlement,
                enforce,
            } => self
                .commit(
                    step,
                    (*wallet, *reservation),
                    *destination,
                    settlement.clone(),
                    *enforce,
                )
                .map(Outcome::Reservation),
            Change::Release {
                wallet,
                reservation,
                reason,
            } => self
                .release(step, (*wallet, *reservation), reason)
                .map(Outcome::Reservation),
            Change::DecideApproval {
                wallet,
                approval,
                approve,
            } => self.decide_approval(step, *wallet, *approval, *approve),
            Change::SetPolicy { wallet, policy } => Ok(self.set_policy(step, *wallet, policy)),
            Change::RequestPayout {
                payout,
                authorize,
                destination,
            } => self.request_payout(step, payout, authorize, *destination),
            Change::ResumePayout {
                payout,
                authorize,
                destination,
            } => self.resume_payout(step, payout, authorize, *destination),
            Change::FinishPayout {
                wallet,
                payout,
                reservation,
                result,
            } => self.finish_payout(step, (*wallet, payout.clone()), *reservation, result),
            _ => Err(Refusal::InvalidState("not a payment change")),
        }
    }

    fn draft_mandate(&mut self, step: Step, mandate: &Mandate) -> Result<Outcome, Refusal> {
        let agent = self
            .agents
            .get(&mandate.agent_id)
            .filter(|a| a.wallet_id == mandate.wallet_id)
            .ok_or(Refusal::NotFound)?;
        if agent.status != AgentStatus::Active {
            return Err(Refusal::Denied(Denial::AgentRevoked));
        }
        if self.mandates.get(&mandate.id).is_some() {
            return Err(Refusal::AlreadyExists);
        }
        let drafted = Mandate {
            status: MandateStatus::PendingSignature,
            spent_amount: Usdc::ZERO,
            pending_amount: Usdc::ZERO,
            signature: None,
            created_at: step.at,
            updated_at: step.at,
            ..mandate.clone()
        };
        self.mandates.put(drafted.id, drafted.clone());
        let terms = &drafted.terms;
        let details = json!({
            "limitAmount": terms.limit_amount, "maxAmountPerTx": terms.max_amount_per_tx,
            "hostAllowlist": terms.host_allowlist, "validUntil": terms.valid_until,
        });
        self.record(
            step,
            event(
                step.actor,
                "mandate.drafted",
                Some(drafted.wallet_id),
                drafted.id,
                details,
            ),
        );
        Ok(Outcome::Mandate(drafted))
    }

    fn owned_mandate(&self, wallet: WalletId, id: MandateId) -> Result<Mandate, Refusal> {
        self.mandates
            .get(&id)
            .filter(|m| m.wallet_id == wallet)
            .cloned()
            .ok_or(Refusal::NotFound)
    }

    fn sign_mandate(
        &mut self,
        step: Step,
        wallet: WalletId,
        id: MandateId,
        signature: &MandateSignature,
    ) -> Result<Outcome, Refusal> {
        let mandate = self.owned_mandate(wallet, id)?;
        if mandate.status != MandateStatus::PendingSignature {
            return Err(Refusal::InvalidState(
                "only a mandate waiting for its signature can be signed",
            ));
        }
        if step.at >= mandate.terms.valid_until {
            return Err(Refusal::InvalidState(
                "the mandate's validity window has already ended",
            ));
        }
        let signed = Mandate {
            status: MandateStatus::Signed,
            signature: Some(signature.clone()),
            updated_at: step.at,
            ..mandate
        };
        self.mandates.put(id, signed.clone());
        let details = json!({"mandateHash": signature.mandate_hash, "signer": signature.signer});
        self.record(
            step,
            event(step.actor, "mandate.signed", Some(wallet), id, details),
        );
        Ok(Outcome::Mandate(signed))
    }

    fn close_mandate(
        &mut self,
        step: Step,
        wallet: WalletId,
        id: MandateId,
        target: MandateStatus,
    ) -> Result<Outcome, Refusal> {
        let mandate = self.owned_mandate(wallet, id)?;
        let (required, refusal, action) = match target {
            MandateStatus::Rejected => (
                MandateStatus::PendingSignature,
                "only a mandate waiting for its signature can be rejected",
                "mandate.rejected",
            ),
            _ => (
                MandateStatus::Signed,
                "only a signed mandate can be revoked",
                "mandate.revoked",
            ),
        };
        if mandate.status != required {
            return Err(Refusal::InvalidState(refusal));
        }
        let closed = Mandate {
            status: target,
            updated_at: step.at,
            ..mandate
        };
        self.mandates.put(id, closed.clone());
        self.record(step, event(step.actor, action, Some(wallet), id, json!({})));
        Ok(Outcome::Mandate(closed))
    }

    /// The one authorization path: decide on the locked state, then hold the funds,
    /// ask the owner, or record the denial.
    fn authorize(&mut self, step: Step, authorize: &Authorize) -> Result<Authorization, Refusal> {
        let request = &authorize.request;
        let month = (request.agent, month_of(step.at));
        let facts = Facts {
            now: step.at,
            agent: self.agents.get(&request.agent),
            available: self.available(request.wallet),
            mandates: self.mandates.values().collect(),
            policy: self.policies.get(&request.wallet),
            month: self.months.get(&month).copied().unwrap_or_default(),
            approval: request.approval.and_then(|id| self.approvals.get(&id)),
        };
        match decide(&facts, request) {
            Decision::Reserve(cover) => self
                .reserve(step, authorize, cover)
                .map(|reservation| Authorization::Reserved { reservation }),
            Decision::RequireApproval(Some(id)) => {
                let approval = self.approvals.get(&id).cloned().ok_or(Refusal::NotFound)?;
                Ok(Authorization::ApprovalRequired { approval })
            }
            Decision::RequireApproval(None) => self
                .ask_owner(step, authorize)
                .map(|approval| Authorization::ApprovalRequired { approval }),
            Decision::Deny(reason) => {
                let details = json!({
                    "reason": reason, "amount": request.amount, "payee": request.payee,
                    "purpose": request.purpose, "kind": request.kind, "mandateId": request.mandate,
                });
                self.record(
                    step,
                    event(
                        step.actor,
                        "payment.denied",
                        Some(request.wallet),
                        request.agent,
                        details,
                    ),
                );
                Ok(Authorization::Denied { reason })
            }
        }
    }

    fn reserve(
        &mut self,
        step: Step,
        authorize: &Authorize,
        cover: Cover,
    ) -> Result<Reservation, Refusal> {
        let request = &authorize.request;
        if self.reservations.get(&authorize.reservation).is_some() {
            return Err(Refusal::AlreadyExists);
        }
        let [available, reserved] = wallet_accounts(request.wallet);
        if !self.can_post(available, reserved, request.amount) {
            return Err(Refusal::Denied(Denial::InsufficientFunds));
        }
        let (mandate_id, approval_id) = match cover {
            Cover::Mandate(id) => (Some(id), None),
            Cover::Approval(id) => (None, Some(id)),
            Cover::AutoApproved => (None, None),
        };
        self.move_amount(
            step,
            mandate_id,
            (request.agent, month_of(step.at)),
            request.amount,
            Movement::Reserve,
        )?;
        if let Some(id) = approval_id {
            let approval = self.approvals.get(&id).cloned().ok_or(Refusal::NotFound)?;
            self.approvals.put(
                id,
                Approval {
                    status: ApprovalStatus::Used,
                    ..approval
                },
            );
        }
        let seed = *authorize.reservation.as_bytes();
        self.post_checked(
            step,
            &seed,
            (available, reserved),
            request.amount,
            TransferKind::Reserve,
        )?;
        let reservation = Reservation {
            id: authorize.reservation,
            wallet_id: request.wallet,
            agent_id: request.agent,
            mandate_id,
            approval_id,
            amount: request.amount,
            payee: request.payee.clone(),
            purpose: request.purpose.clone(),
            kind: request.kind,
            status: ReservationStatus::Held,
            settlement: None,
            release_reason: None,
            created_at: step.at,
            updated_at: step.at,
        };
        self.reservations.put(reservation.id, reservation.clone());
        let cover_name = match cover {
            Cover::Mandate(_) => "mandate",
            Cover::Approval(_) => "approval",
            Cover::AutoApproved => "auto_approved",
        };
        let details = json!({
            "amount": reservation.amount, "payee": reservation.payee, "purpose": reservation.purpose,
            "kind": reservation.kind, "cover": cover_name, "mandateId": mandate_id, "approvalId": approval_id,
        });
        self.record(
            step,
            event(
                step.actor,
                "payment.authorized",
                Some(request.wallet),
                reservation.id,
                details,
            ),
        );
        Ok(reservation)
    }

    /// Moves `amount` between the spent and pending totals of a mandate (if any) and
    /// of the agent's month, checking both before changing either.
    fn move_amount(
        &mut self,
        step: Step,
        mandate: Option<MandateId>,
        month: (AgentId, String),
        amount: Usdc,
        movement: Movement,
    ) -> Result<(), Refusal> {
        let updated_mandate = match mandate {
            Some(id) => {
                let current = self.mandates.get(&id).cloned().ok_or(Refusal::NotFound)?;
                let (spent, pending) =
                    movement.apply(current.spent_amount, current.pending_amount, amount)?;
                Some(Mandate {
                    spent_amount: spent,
                    pending_amount: pending,
                    updated_at: step.at,
                    ..current
                })
            }
            None => None,
        };
        let totals = self.months.get(&month).copied().unwrap_or_default();
        let (spent, pending) = movement.apply(totals.spent, totals.pending, amount)?;
        if let Some(updated) = updated_mandate {
            self.mandates.put(updated.id, updated);
        }
        self.months.put(month, MonthTotals { spent, pending });
        Ok(())
    }

    fn ask_owner(&mut self, step: Step, authorize: &Authorize) -> Result<Approval, Refusal> {
        let request = &authorize.request;
        if self.approvals.get(&authorize.approval).is_some() {
            return Err(Refusal::AlreadyExists);
        }
        let approval = Approval {
            id: authorize.approval,
            wallet_id: request.wallet,
            agent_id: request.agent,
            amount: request.amount,
            payee: request.payee.clone(),
            purpose: request.purpose.clone(),
            kind: request.kind,
            status: ApprovalStatus::Pending,
            created_at: step.at,
            expires_at: authorize.approval_expires_at,
            decided_at: None,
        };
        self.approvals.put(approval.id, approval.clone());
        let details = json!({
            "amount": approval.amount, "payee": approval.payee, "purpose": approval.purpose,
            "kind": approval.kind, "expiresAt": approval.expires_at,
        });
        self.record(
            step,
            event(
                step.actor,
                "payment.approval_requested",
                Some(request.wallet),
                approval.id,
                details,
            ),
        );
        Ok(approval)
    }

    fn held_reservation(
        &self,
        (wallet, id): (WalletId, ReservationId),
    ) -> Result<Reservation, Refusal> {
        let reservation = self
            .reservations
            .get(&id)
            .filter(|r| r.wallet_id == wallet)
            .cloned()
            .ok_or(Refusal::NotFound)?;
        if reservation.status != ReservationStatus::Held {
            return Err(Refusal::InvalidState(
                "the reservation was already committed or released",
            ));
        }
        Ok(reservation)
    }

    /// Why a held payment Purser is about to make itself must not go ahead.
    fn revoked_since(&self, reservation: &Reservation) -> Option<Denial> {
        let agent = self.agents.get(&reservation.agent_id);
        if agent.is_none_or(|a| a.status != AgentStatus::Active) {
            return Some(Denial::AgentRevoked);
        }
        let mandate = reservation.mandate_id.and_then(|id| self.mandates.get(&id));
        mandate
            .filter(|m| m.status == MandateStatus::Revoked)
            .map(|_| Denial::MandateRevoked)
    }

    fn commit(
        &mut self,
        step: Step,
        key: (WalletId, ReservationId),
        destination: AccountId,
        settlement: Option<String>,
        enforce: bool,
    ) -> Result<Reservation, Refusal> {
        let reservation = self.held_reservation(key)?;
        if enforce && let Some(reason) = self.revoked_since(&reservation) {
            return self.release(step, key, reason.code().as_str());
        }
        let reserved = AccountId::reserved(key.0, Currency::Usdc);
        self.ledger
            .check(reserved, destination, reservation.amount)
            .map_err(Refusal::Ledger)?;
        let month = (reservation.agent_id, month_of(reservation.created_at));
        self.move_amount(
            step,
            reservation.mandate_id,
            month,
            reservation.amount,
            Movement::Commit,
        )?;
        let seed = *reservation.id.as_bytes();
        let transfer = self.post_checked(
            step,
            &seed,
            (reserved, destination),
            reservation.amount,
            TransferKind::Payment,
        )?;
        let committed = Reservation {
            status: ReservationStatus::Committed,
            settlement: Some(settlement.unwrap_or_else(|| transfer.id.to_string())),
            updated_at: step.at,
            ..reservation
        };
        self.reservations.put(committed.id, committed.clone());
        let details = json!({"amount": committed.amount, "destination": destination, "settlement": committed.settlement});
        self.record(
            step,
            event(
                step.actor,
                "payment.committed",
                Some(key.0),
                committed.id,
                details,
            ),
        );
        Ok(committed)
    }

    fn release(
        &mut self,
        step: Step,
        key: (WalletId, ReservationId),
        reason: &str,
    ) -> Result<Reservation, Refusal> {
        let reservation = self.held_reservation(key)?;
        let [available, reserved] = wallet_accounts(key.0);
        self.ledger
            .check(reserved, available, reservation.amount)
            .map_err(Refusal::Ledger)?;
        let month = (reservation.agent_id, month_of(reservation.created_at));
        self.move_amount(
            step,
            reservation.mandate_id,
            month,
            reservation.amount,
            Movement::Release,
        )?;
        let seed = *reservation.id.as_bytes();
        self.post_checked(
            step,
            &seed,
            (reserved, available),
            reservation.amount,
            TransferKind::Release,
        )?;
        let released = Reservation {
            status: ReservationStatus::Released,
            release_reason: Some(reason.to_owned()),
            updated_at: step.at,
            ..reservation
        };
        self.reservations.put(released.id, released.clone());
        let details = json!({"amount": released.amount, "reason": reason});
        self.record(
            step,
            event(
                step.actor,
                "payment.released",
                Some(key.0),
                released.id,
                details,
            ),
        );
        Ok(released)
    }

    fn decide_approval(
        &mut self,
        step: Step,
        wallet: WalletId,
        id: purser_types::ApprovalId,
        approve: bool,
    ) -> Result<Outcome, Refusal> {
        let approval = self
            .approvals
            .get(&id)
            .filter(|a| a.wallet_id == wallet)
            .cloned()
            .ok_or(Refusal::NotFound)?;
        match approval.status_at(step.at) {
            ApprovalStatus::Pending => {}
            ApprovalStatus::Expired => {
                return Err(Refusal::InvalidState("the approval has expired"));
            }
            _ => return Err(Refusal::InvalidState("the approval was already decided")),
        }
        let status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Denied
        };
        let decided = Approval {
            status,
            decided_at: Some(step.at),
            ..approval
        };
        self.approvals.put(id, decided.clone());
        let action = if approve {
            "approval.approved"
        } else {
            "approval.denied"
        };
        let details = json!({"amount": decided.amount, "payee": decided.payee});
        self.record(step, event(step.actor, action, Some(wallet), id, details));
        Ok(Outcome::Approval(decided))
    }

    fn set_policy(&mut self, step: Step, wallet: WalletId, policy: &WalletPolicy) -> Outcome {
        self.policies.put(wallet, policy.clone());
        let details = serde_json::to_value(policy).unwrap_or_default();
        self.record(
            step,
            event(step.actor, "policy.updated", Some(wallet), wallet, details),
        );
        Outcome::Policy(policy.clone())
    }

    fn request_payout(
        &mut self,
        step: Step,
        payout: &Payout,
        authorize: &Authorize,
        destination: Option<AccountId>,
    ) -> Result<Outcome, Refusal> {
        if self
            .payouts
            .get(&(payout.wallet_id, payout.id.clone()))
            .is_some()
        {
            return Err(Refusal::IdempotencyConflict);
        }
        if let Some(destination) = destination
            && self.ledger.balance(destination).is_none()
        {
            return Err(Refusal::Ledger(LedgerError::UnknownAccount(destination)));
        }
        let fresh = Payout {
            created_at: step.at,
            ..payout.clone()
        };
        match self.authorize(step, authorize)? {
            Authorization::Denied { reason } => {
                Ok(Outcome::Payout(PayoutOutcome::Denied { reason }))
            }
            Authorization::ApprovalRequired { approval } => {
                let waiting = Payout {
                    status: PayoutStatus::PendingAuthorization,
                    approval_id: Some(approval.id),
                    ..fresh
                };
                Ok(self.record_payout(step, waiting))
            }
            Authorization::Reserved { reservation } => {
                let paid = self.pay_out(step, fresh, &reservation, destination)?;
                Ok(self.record_payout(step, paid))
            }
        }
    }

    fn resume_payout(
        &mut self,
        step: Step,
        payout: &Payout,
        authorize: &Authorize,
        destination: Option<AccountId>,
    ) -> Result<Outcome, Refusal> {
        let current = self
            .payouts
            .get(&(payout.wallet_id, payout.id.clone()))
            .cloned()
            .ok_or(Refusal::NotFound)?;
        if current.status != PayoutStatus::PendingAuthorization {
            return Ok(Outcome::Payout(PayoutOutcome::Recorded { payout: current }));
        }
        match self.authorize(step, authorize)? {
            Authorization::ApprovalRequired { .. } => {
                Ok(Outcome::Payout(PayoutOutcome::Recorded { payout: current }))
            }
            Authorization::Denied { reason } => {
                let status = if reason == Denial::ApprovalExpired {
                    PayoutStatus::Expired
                } else {
                    PayoutStatus::Failed
                };
                let failed = Payout {
                    status,
                    failure_reason: Some(reason.code()),
                    ..current
                };
                Ok(self.record_payout(step, failed))
            }
            Authorization::Reserved { reservation } => {
                let paid = self.pay_out(step, current, &reservation, destination)?;
                Ok(self.record_payout(step, paid))
            }
        }
    }

    /// With funds held: pays on the ledger at once, or waits for the external leg.
    fn pay_out(
        &mut self,
        step: Step,
        payout: Payout,
        reservation: &Reservation,
        destination: Option<AccountId>,
    ) -> Result<Payout, Refusal> {
        let authorized = Payout {
            reservation_id: Some(reservation.id),
            ..payout
        };
        let Some(destination) = destination else {
            return Ok(Payout {
                status: PayoutStatus::Authorized,
                ..authorized
            });
        };
        let committed = self.commit(
            step,
            (authorized.wallet_id, reservation.id),
            destination,
            None,
            false,
        )?;
        Ok(Payout {
            status: PayoutStatus::Succeeded,
            settlement: committed.settlement,
            ..authorized
        })
    }

    fn finish_payout(
        &mut self,
        step: Step,
        key: (WalletId, purser_types::PayoutId),
        reservation: ReservationId,
        result: &PayoutResult,
    ) -> Result<Outcome, Refusal> {
        let payout = self.payouts.get(&key).cloned().ok_or(Refusal::NotFound)?;
        if payout.status != PayoutStatus::Authorized {
            // Already finished (a retry, or the background task got there first).
            return Ok(Outcome::Payout(PayoutOutcome::Recorded { payout }));
        }
        if payout.reservation_id != Some(reservation) || payout.rail != Rail::External {
            return Err(Refusal::InvalidState(
                "only an authorized external payout finishes on chain",
            ));
        }
        let finished = match result {
            PayoutResult::Sent { settlement } => {
                let committed = self.commit(
                    step,
                    (key.0, reservation),
                    external_payouts(),
                    Some(settlement.clone()),
                    false,
                )?;
                Payout {
                    status: PayoutStatus::Succeeded,
                    settlement: committed.settlement,
                    ..payout
                }
            }
            PayoutResult::Failed { reason } => {
                self.release(step, (key.0, reservation), reason)?;
                Payout {
                    status: PayoutStatus::Failed,
                    failure_reason: Some(ErrorCode::ChainTransferFailed),
                    ..payout
                }
            }
        };
        Ok(self.record_payout(step, finished))
    }

    fn record_payout(&mut self, step: Step, payout: Payout) -> Outcome {
        let payout = Payout {
            updated_at: step.at,
            ..payout
        };
        self.payouts
            .put((payout.wallet_id, payout.id.clone()), payout.clone());
        let details = json!({
            "status": payout.status, "amount": payout.amount, "to": payout.to_address,
            "rail": payout.rail, "failureReason": payout.failure_reason,
        });
        let action = format!("payout.{}", payout.status.as_str());
        self.record(
            step,
            event(
                step.actor,
                &action,
                Some(payout.wallet_id),
                &payout.id,
                details,
            ),
        );
        Outcome::Payout(PayoutOutcome::Recorded { payout })
    }
}
