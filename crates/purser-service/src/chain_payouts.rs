//! External payouts on a chain. The authorization path has already held the funds
//! (the payout is `authorized`); here the wallet signs an EIP-3009
//! `transferWithAuthorization` to the destination and the relayer sends it.
//!
//! The signed authorization is recorded (as an x402 payment row naming the payout)
//! before it is signed, and its nonce is derived from the reservation, so the
//! chain's `authorizationState(wallet, nonce)` is the truth about whether the money
//! left — whatever crashed in between. A transfer that reverted is canceled on
//! chain before its funds are released, because the signature it carried is public
//! from then on. Sending twice is harmless: the token accepts a nonce once.

use std::collections::HashSet;
use std::sync::Mutex;

use alloy_primitives::{Address, B256, U256};
use purser_chain::client::ChainError;
use purser_chain::eip3009::{Authorization, parse_signature, usdc_domain};
use purser_store::{X402Payment, X402PaymentStatus};
use purser_types::{Payout, PayoutStatus, Rail, Reservation, ReservationId};

use crate::wallets::corrupt;
use crate::x402::{CANCEL_PREFIX, nonce_of};
use crate::{Purser, ServiceError, chain_unavailable};

/// How long a payout's signed authorization stays usable, in seconds. Its funds stay
/// held until it is used, canceled or past this.
pub const PAYOUT_VALIDITY_SECS: i64 = 3600;

/// Reservations whose payout this process is sending right now: the request that
/// authorized a payout and the background task never send the same one at once.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<ReservationId>>);

/// Holds a reservation in [`InFlight`] until dropped.
pub(crate) struct Claim<'a> {
    set: &'a InFlight,
    reservation: ReservationId,
}

impl InFlight {
    fn claim(&self, reservation: ReservationId) -> Option<Claim<'_>> {
        self.held().insert(reservation).then_some(Claim {
            set: self,
            reservation,
        })
    }

    /// The set; a panic elsewhere while it was locked leaves it usable.
    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<ReservationId>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set.held().remove(&self.reservation);
    }
}

impl Purser {
    /// Sends an authorized external payout on chain and follows it as far as it
    /// goes now: `succeeded` with the transaction hash, `failed` (funds released),
    /// or still `authorized` while the transaction is unmined or the node is down —
    /// the background task takes it from there. Any other payout comes back as is.
    pub(crate) async fn send_payout(&self, payout: Payout) -> Result<Payout, ServiceError> {
        if payout.status != PayoutStatus::Authorized
            || payout.rail != Rail::External
            || self.inner.config.chain.is_none()
        {
            return Ok(payout);
        }
        let reservation = payout
            .reservation_id
            .ok_or_else(|| corrupt("an authorized payout without a reservation"))?;
        let Some(_sending) = self.inner.in_flight.claim(reservation) else {
            return Ok(payout);
        };
        match self.drive_payout(&payout, reservation).await {
            Ok(()) => {}
            Err(ServiceError::ChainUnavailable(reason)) => {
                tracing::warn!(payout = %payout.id, %reason, "payout waits for the chain");
            }
            Err(e) => return Err(e),
        }
        self.inner
            .store
            .payout(payout.wallet_id, &payout.id)
            .await?
            .ok_or_else(|| corrupt("a payout vanished"))
    }

    async fn drive_payout(
        &self,
        payout: &Payout,
        reservation: ReservationId,
    ) -> Result<(), ServiceError> {
        let held = self
            .inner
            .store
            .reservation(reservation)
            .await?
            .ok_or_else(|| corrupt("a payout's reservation"))?;
        let record = self.payout_authorization(payout, &held).await?;
        // What the chain already knows decides first: used, or expired unused.
        let sent = record.tx_hash.clone();
        let outcome = self
            .resolve_x402(&held, record.clone(), None, sent.clone())
            .await?;
        if outcome.status != X402PaymentStatus::Signed.as_str() {
            return Ok(());
        }
        let chain = self.chain()?;
        if sent
            .as_deref()
            .is_some_and(|t| t.starts_with(CANCEL_PREFIX))
        {
            // A cancel is on its way; its receipt decides (see `resolve_x402`).
            return Ok(());
        }
        if let Some(tx) = sent {
            // Sent before (this process, or one that stopped): wait for that one.
            let tx: B256 = tx.parse().map_err(|_| corrupt("a payout's tx hash"))?;
            let receipt = chain.receipt(tx).await.map_err(chain_unavailable)?;
            return self
                .follow_receipt(&held, record, tx, receipt.map(|r| r.status()))
                .await;
        }
        let (key, _) = self.wallet_key(payout.wallet_id).await?;
        let authorization = authorization_of(&record)?;
        let digest = authorization.digest(&usdc_domain(chain.network()));
        let signature = parse_signature(&key.sign_digest(&digest.0)?)
            .map_err(|e| ServiceError::InvalidSignature(e.to_string()))?;
        let tx = match chain.send_transfer(&authorization, &signature).await {
            Ok(tx) => tx,
            Err(ChainError::Reverted(reason)) => {
                let why = format!("the transfer was refused on chain: {reason}");
                return self.void_payout(&held, record, &why).await;
            }
            Err(e) => return Err(chain_unavailable(e)),
        };
        let now = self.inner.clock.now();
        self.inner
            .store
            .note_x402_tx(held.id, &format!("{tx:#x}"), now)
            .await?;
        let receipt = chain
            .wait_receipt(tx, chain.timeouts().receipt)
            .await
            .map_err(chain_unavailable)?;
        self.follow_receipt(&held, record, tx, receipt.map(|r| r.status()))
            .await
    }

    /// What a payout's transaction receipt (`Some(succeeded)` once mined) decides:
    /// reverted → cancel and release; mined → the chain's nonce state commits it;
    /// none yet → it stays open.
    async fn follow_receipt(
        &self,
        held: &Reservation,
        record: X402Payment,
        tx: B256,
        mined: Option<bool>,
    ) -> Result<(), ServiceError> {
        match mined {
            Some(false) => {
                self.void_payout(held, record, "the transfer reverted")
                    .await
            }
            Some(true) => self
                .resolve_x402(held, record, None, Some(format!("{tx:#x}")))
                .await
                .map(drop),
            None => Ok(()),
        }
    }

    /// A failed transfer: cancel its authorization on chain, then release — unless
    /// the chain shows it was used after all (another send won), then commit.
    async fn void_payout(
        &self,
        held: &Reservation,
        record: X402Payment,
        why: &str,
    ) -> Result<(), ServiceError> {
        let reason = format!("{why}; its authorization was canceled on chain");
        self.resolve_x402(held, record, Some(&reason), None)
            .await
            .map(drop)
    }

    /// The payout's authorization record, written before anything is signed.
    async fn payout_authorization(
        &self,
        payout: &Payout,
        held: &Reservation,
    ) -> Result<X402Payment, ServiceError> {
        let store = &self.inner.store;
        if let Some(existing) = store.x402_payment(held.id).await? {
            return Ok(existing);
        }
        let chain = self.chain()?;
        let (_, payer) = self.wallet_key(payout.wallet_id).await?;
        let now = self.inner.clock.now();
        let record = X402Payment {
            reservation_id: held.id,
            wallet_id: payout.wallet_id,
            agent_id: payout.agent_id,
            network: chain.network().caip2(),
            pay_to: payout.to_address.clone(),
            payer: payer.to_checksum(None),
            amount: payout.amount,
            nonce: format!("{:#x}", nonce_of(held.id)),
            valid_before: now.millis() / 1000 + PAYOUT_VALIDITY_SECS,
            url: String::new(),
            payout_id: Some(payout.id.clone()),
            status: X402PaymentStatus::Signed,
            tx_hash: None,
            created_at: now,
        };
        store.insert_x402_payment(&record).await?;
        Ok(record)
    }

    /// Sends every authorized external payout not yet finished, and follows the
    /// sent ones to their end. Run periodically by the server; returns how many
    /// finished.
    pub async fn send_open_payouts(&self) -> Result<usize, ServiceError> {
        if self.inner.config.chain.is_none() {
            return Ok(0);
        }
        let mut finished = 0;
        for payout in self.inner.store.authorized_external_payouts(100).await? {
            let id = payout.id.clone();
            match self.send_payout(payout).await {
                Ok(p) if p.status != PayoutStatus::Authorized => finished += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, payout = %id, "cannot send a payout yet"),
            }
        }
        Ok(finished)
    }
}

/// The EIP-3009 authorization a payout record stands for.
fn authorization_of(record: &X402Payment) -> Result<Authorization, ServiceError> {
    let address = |text: &str| {
        text.parse::<Address>()
            .map_err(|_| corrupt("a payout's address"))
    };
    Ok(Authorization {
        from: address(&record.payer)?,
        to: address(&record.pay_to)?,
        value: U256::from(record.amount.atomic()),
        valid_after: U256::ZERO,
        valid_before: U256::from(u64::try_from(record.valid_before).unwrap_or_default()),
        nonce: nonce_of(record.reservation_id),
    })
}
