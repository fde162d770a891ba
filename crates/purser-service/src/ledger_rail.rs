//! The internal ledger rail: an x402 payment between two wallets of this server
//! settles on the ledger at once, with no chain, from the same EIP-3009
//! authorization (signed in the ledger's own domain, see `Network::ledger`).
//!
//! The payer's reservation is the money: `/settle` commits it to the payee's wallet
//! (re-checking agent and mandate, since the money moves now), a failure releases
//! it. Both go through one idempotency key per reservation, so a settlement racing
//! a release (or an expiry) ends exactly one way.

use alloy_primitives::U256;
use purser_chain::exact::{self, CheckedPayment};
use purser_chain::network::{LEDGER_NETWORK, Network};
use purser_core::change::PayoutResult;
use purser_store::{Settlement, SettlementStatus, X402Payment, X402PaymentStatus};
use purser_types::x402::{FacilitatorRequest, Reason, SettleResponse};
use purser_types::{Reservation, ReservationStatus};

use crate::facilitator::{Rejection, answer_of, invalid_of, settle_failure};
use crate::x402::X402Outcome;
use crate::{Purser, ServiceError};

/// Why a ledger payment's funds came back after the payee reported failure.
const VOIDED_AFTER_FAILURE: &str = "the payment failed; its authorization was voided on the ledger";

/// A ledger payment that passed verification: the authorization, and the record
/// and reservation the payer's wallet signed it under.
pub(crate) struct LedgerPayment {
    pub(crate) checked: CheckedPayment,
    payment: X402Payment,
    held: Reservation,
}

impl Purser {
    /// Verifies a payment on the ledger rail: every check of the `exact` scheme in
    /// the ledger's domain, then that this server's wallet signed it under a
    /// reservation still held, to a payee that is a wallet here.
    pub(crate) async fn verify_on_ledger(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<LedgerPayment, Rejection> {
        let now_secs = u64::try_from(self.inner.clock.now().millis() / 1000).unwrap_or_default();
        let checked = exact::check(request, &Network::ledger(), now_secs).map_err(invalid_of)?;
        let a = &checked.authorization;
        let payer = a.from.to_checksum(None);
        let reject =
            |reason: Reason, message: &str| (reason, message.to_owned(), Some(payer.clone()));
        let unexpected = |e: ServiceError| reject(Reason::UnexpectedVerifyError, &e.to_string());
        let store = &self.inner.store;
        let payment = store
            .x402_payment_by_nonce(&payer, &format!("{:#x}", a.nonce))
            .await
            .map_err(|e| unexpected(e.into()))?
            .ok_or_else(|| {
                reject(
                    Reason::InvalidPayload,
                    "the payer is not a wallet of this Purser server, or never signed this authorization",
                )
            })?;
        let same_terms = Network::ledger().is(&payment.network)
            && payment.pay_to == a.to.to_checksum(None)
            && U256::from(payment.amount.atomic()) == a.value;
        if !same_terms {
            return Err(reject(
                Reason::InvalidPayload,
                "the authorization differs from the one the payer signed",
            ));
        }
        let held = store
            .reservation(payment.reservation_id)
            .await
            .map_err(|e| unexpected(e.into()))?
            .ok_or_else(|| unexpected(ServiceError::NotFound))?;
        if payment.status != X402PaymentStatus::Signed || held.status != ReservationStatus::Held {
            return Err(reject(
                Reason::NonceAlreadyUsed,
                "the authorization was already used or voided",
            ));
        }
        if self
            .ledger_account_of(&payment.pay_to)
            .await
            .map_err(unexpected)?
            .is_none()
        {
            return Err(reject(
                Reason::InvalidPaymentRequirements,
                "payTo is not a wallet of this Purser server",
            ));
        }
        Ok(LedgerPayment {
            checked,
            payment,
            held,
        })
    }

    /// `/settle` on the ledger rail: verifies, claims the (payer, nonce) settlement
    /// so a repeat answers the first outcome, and commits the payer's reservation
    /// to the payee's wallet. The transaction is `ledger:<reservation id>`.
    pub(crate) async fn settle_on_ledger(&self, request: &FacilitatorRequest) -> SettleResponse {
        if let Some(existing) = self.existing_settlement(request, LEDGER_NETWORK).await {
            return answer_of(&existing);
        }
        let found = match self.verify_on_ledger(request).await {
            Ok(found) => found,
            Err(rejection) => return settle_failure(LEDGER_NETWORK, rejection, None),
        };
        let record = Settlement {
            network: LEDGER_NETWORK.to_owned(),
            payer: found.payment.payer.clone(),
            nonce: found.payment.nonce.clone(),
            pay_to: found.payment.pay_to.clone(),
            amount: found.payment.amount,
            status: SettlementStatus::Submitting,
            tx_hash: None,
            error_reason: None,
        };
        let store = &self.inner.store;
        match store
            .claim_settlement(&record, self.inner.clock.now())
            .await
        {
            Ok(true) => {}
            // Another request is settling it right now.
            Ok(false) => return answer_of(&record),
            Err(e) => {
                tracing::error!(error = %e, "cannot record a ledger settlement");
                let message = "the facilitator could not record the settlement".to_owned();
                let rejection = (Reason::UnexpectedSettleError, message, Some(record.payer));
                return settle_failure(LEDGER_NETWORK, rejection, None);
            }
        }
        let settlement = format!("ledger:{}", found.held.id);
        let ended = self
            .finish_x402(
                &found.held,
                &found.payment,
                PayoutResult::Sent { settlement },
            )
            .await;
        let outcome = match ended {
            Ok(outcome) => settlement_of(record, &outcome),
            Err(e) => {
                tracing::error!(error = %e, "cannot settle on the ledger");
                if let Err(store) = store.drop_settlement_claim(&record).await {
                    tracing::error!(error = %store, "cannot drop a settlement claim");
                }
                let message = "the ledger could not settle the payment now".to_owned();
                let rejection = (Reason::UnexpectedSettleError, message, Some(record.payer));
                return settle_failure(LEDGER_NETWORK, rejection, None);
            }
        };
        self.save_settlement(&outcome).await;
        answer_of(&outcome)
    }

    /// The buyer's side of a ledger payment: an open one is voided (released) on a
    /// failure report or once expired; one whose settlement was interrupted after
    /// the commit is closed as its reservation ended.
    pub(crate) async fn resolve_ledger_x402(
        &self,
        held: &Reservation,
        payment: &X402Payment,
        cancel: Option<&str>,
    ) -> Result<X402Outcome, ServiceError> {
        if held.status != ReservationStatus::Held {
            return self.close_as_ended(held.clone()).await;
        }
        let expired = self.inner.clock.now().millis() / 1000 >= payment.valid_before;
        let reason = if expired {
            Some("the authorization expired unused")
        } else {
            cancel.map(|_| VOIDED_AFTER_FAILURE)
        };
        match reason {
            Some(reason) => {
                let result = PayoutResult::Failed {
                    reason: reason.to_owned(),
                };
                self.finish_x402(held, payment, result).await
            }
            None => self.outcome_of(held.id).await,
        }
    }
}

/// The settlement record for how the reservation ended: committed is settled;
/// released (the agent or mandate was revoked, or the payer voided it) failed.
fn settlement_of(record: Settlement, outcome: &X402Outcome) -> Settlement {
    if outcome.status == X402PaymentStatus::Settled.as_str() {
        Settlement {
            status: SettlementStatus::Settled,
            tx_hash: outcome.tx_hash.clone(),
            ..record
        }
    } else {
        Settlement {
            status: SettlementStatus::Failed,
            error_reason: Some(Reason::InvalidTransactionState.as_str().into()),
            ..record
        }
    }
}
