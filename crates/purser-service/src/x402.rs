//! Purser as an x402 buyer: turns a server's PaymentRequired into a signed payment
//! header, but only after the one authorization path reserved the funds — and
//! follows the payment to the chain, committing the reservation when the
//! authorization was used and releasing it when it provably can no longer be.
//!
//! The authorization's nonce is derived from its reservation, so the chain's
//! `authorizationState(payer, nonce)` is the truth about whether the reserved money
//! left. A failed payment is canceled on chain (`cancelAuthorization`, signed by the
//! wallet, sent by the relayer) before its funds are released; one that cannot be
//! canceled now is released once its `validBefore` has passed unused.

use alloy_primitives::{Address, B256, U256, keccak256};
use purser_chain::client::{ChainClient, ChainError};
use purser_chain::eip3009::{Authorization, cancel_digest, parse_signature, usdc_domain};
use purser_chain::network::{LEDGER_NETWORK, Network};
use purser_core::change::{Authorization as Decision, Change, Outcome, PayoutResult};
use purser_signer::WalletKey;
use purser_store::{X402Payment, X402PaymentStatus};
use purser_types::x402::{
    PaymentRequired, Requirement, SCHEME_EXACT, SettleResponse, Version, encode_header,
};
use purser_types::{
    AccountId, AccountKind, ApprovalId, Currency, MandateId, PaymentKind, Reservation,
    ReservationId, ReservationStatus, Usdc, WalletId,
};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::idempotency::IdempotencyKey;
use crate::payments::PaymentIntent;
use crate::wallets::{Replayable, corrupt};
use crate::{Purser, ServiceError, chain_unavailable};

/// Longest validity Purser signs an authorization for, whatever the server asks:
/// a signed, unused authorization keeps its funds reserved until it expires.
pub const MAX_VALIDITY_SECS: u64 = 3600;

/// An agent's request to pay an x402 PaymentRequired.
#[derive(Debug, Clone)]
pub struct X402PayRequest {
    /// The PaymentRequired: the `PAYMENT-REQUIRED` header (base64) or the JSON
    /// (a v1 body, or a decoded v2 header).
    pub payment_required: Value,
    /// The URL being paid for; its host is the payee host the mandate must allow.
    pub url: String,
    /// The HTTP method.
    pub method: String,
    /// Why, in the agent's words.
    pub purpose: String,
    /// A mandate to use; otherwise the tightest eligible one.
    pub mandate: Option<MandateId>,
    /// The most the agent will pay.
    pub max_amount: Option<Usdc>,
    /// An approval the owner gave for this payment.
    pub approval: Option<ApprovalId>,
}

/// What to send: a header, and the reservation behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct X402Signed {
    /// `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1).
    pub header_name: &'static str,
    /// Its value: base64 of the PaymentPayload.
    pub header_value: String,
    /// The PaymentPayload itself.
    pub payment_payload: Value,
    /// The reservation holding the funds.
    pub reservation: Reservation,
    /// The requirement chosen.
    pub network: String,
    /// The payee address.
    pub pay_to: String,
    /// Unix seconds; the authorization is void from then on.
    pub valid_before: i64,
}

/// The answer to a pay request.
#[derive(Debug, Clone, PartialEq)]
pub enum X402Answer {
    /// Signed: send the header.
    Signed(Box<X402Signed>),
    /// The owner must approve first.
    ApprovalRequired(purser_types::Approval),
}

/// Where a signed payment ended up, after reconciling with the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X402Outcome {
    /// The reservation as it now stands.
    pub reservation: Reservation,
    /// `signed` (still open), `settled` or `failed`.
    pub status: &'static str,
    /// The settlement transaction, when known.
    pub tx_hash: Option<String>,
}

fn read_payment_required(value: &Value) -> Result<PaymentRequired, ServiceError> {
    let parsed = match value {
        Value::String(header) => PaymentRequired::from_header(header),
        other => PaymentRequired::from_json(other),
    };
    parsed.map_err(|e| ServiceError::InvalidPaymentRequired(e.to_string()))
}

/// The cheapest requirement this wallet can pay on `network`: `exact`, its USDC
/// and token domain, a payee address.
fn cheapest_on<'a>(network: &Network, required: &'a PaymentRequired) -> Option<&'a Requirement> {
    required
        .accepts
        .iter()
        .filter(|r| r.scheme == SCHEME_EXACT && network.is(&r.network))
        .filter(|r| r.asset.parse::<Address>().is_ok_and(|a| a == network.usdc))
        .filter(|r| {
            r.domain.as_ref().is_none_or(|(name, version)| {
                *name == network.token_name && *version == network.token_version
            })
        })
        .filter(|r| r.pay_to.parse::<Address>().is_ok())
        .min_by_key(|r| r.amount)
}

fn nothing_acceptable(chain: Option<&ChainClient>, required: &PaymentRequired) -> ServiceError {
    let offered: Vec<String> = required
        .accepts
        .iter()
        .map(|r| format!("{} on {} in {}", r.scheme, r.network, r.asset))
        .collect();
    let rails = match chain {
        Some(chain) => format!(
            "exact on {} in USDC ({}), or on {LEDGER_NETWORK} to a wallet of this server",
            chain.network().caip2(),
            chain.network().usdc.to_checksum(None)
        ),
        None => format!("exact on {LEDGER_NETWORK} to a wallet of this server"),
    };
    ServiceError::NoAcceptableRequirement(format!(
        "this wallet pays {rails}; the server offers: {}",
        if offered.is_empty() {
            "nothing".to_owned()
        } else {
            offered.join("; ")
        }
    ))
}

/// Why a reservation is released after its failed payment was canceled on chain.
const CANCELED_AFTER_FAILURE: &str = "the payment failed; its authorization was canceled on chain";

/// How a noted cancel transaction is told from a payment's own transaction.
pub(crate) const CANCEL_PREFIX: &str = "cancel:";

/// The EIP-3009 nonce of a reservation's authorization (an x402 payment's or an
/// on-chain payout's: a reservation is only ever one of them).
pub fn nonce_of(reservation: ReservationId) -> B256 {
    keccak256(format!("purser/x402/{reservation}").as_bytes())
}

impl Purser {
    pub(crate) async fn wallet_key(
        &self,
        wallet: WalletId,
    ) -> Result<(WalletKey, Address), ServiceError> {
        let store = &self.inner.store;
        let sealed = store
            .sealed_wallet_key(wallet)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let key = WalletKey::unseal(&self.inner.master, &sealed, &wallet.to_string())?;
        let address = key.address();
        Ok((key, address))
    }

    /// Pays an x402 PaymentRequired: chooses the requirement, authorizes it through
    /// the one path (payee host = the URL's host, payee address = `payTo`), and only
    /// on a reservation signs the EIP-3009 authorization. Idempotent by `key`.
    pub async fn pay_x402(
        &self,
        principal: &Principal,
        request: &X402PayRequest,
        key: &IdempotencyKey,
    ) -> Result<Replayable<X402Answer>, ServiceError> {
        let required = read_payment_required(&request.payment_required)?;
        let (network, requirement) = self.choose_rail(&required).await?;
        if let Some(max) = request.max_amount
            && requirement.amount > max
        {
            return Err(ServiceError::AmountAboveMax(format!(
                "the price is {} USDC, above the maximum of {max} USDC",
                requirement.amount
            )));
        }
        let intent = PaymentIntent {
            amount: requirement.amount,
            // The URL itself: the path normalizes it to its host (and refuses
            // userinfo and other disguises) like any payee host.
            payee_host: Some(request.url.clone()),
            payee_address: Some(requirement.pay_to.clone()),
            purpose: request.purpose.clone(),
            kind: PaymentKind::X402,
            mandate: request.mandate,
            approval: request.approval,
            allow_approval: true,
        };
        let decided = self.authorize(principal, &intent, key).await?;
        let reservation = match decided.value {
            Decision::Reserved { reservation } => reservation,
            Decision::ApprovalRequired { approval } => {
                return Ok(Replayable {
                    value: X402Answer::ApprovalRequired(approval),
                    replayed: decided.replayed,
                });
            }
            Decision::Denied { reason } => return Err(ServiceError::Denied(reason)),
        };
        let signed = self
            .sign_for(
                &network,
                &reservation,
                &required,
                &requirement,
                &request.url,
            )
            .await?;
        Ok(Replayable {
            value: X402Answer::Signed(Box::new(signed)),
            replayed: decided.replayed,
        })
    }

    /// The rail and requirement to pay: the internal ledger when the payee is a
    /// wallet of this server (instant, no gas), else the chain's.
    async fn choose_rail(
        &self,
        required: &PaymentRequired,
    ) -> Result<(Network, Requirement), ServiceError> {
        let ledger = Network::ledger();
        if let Some(requirement) = cheapest_on(&ledger, required)
            && self.ledger_account_of(&requirement.pay_to).await?.is_some()
        {
            return Ok((ledger, requirement.clone()));
        }
        let chain = self.inner.config.chain.as_deref();
        chain
            .and_then(|chain| {
                Some((
                    chain.network().clone(),
                    cheapest_on(chain.network(), required)?.clone(),
                ))
            })
            .ok_or_else(|| nothing_acceptable(chain, required))
    }

    /// Signs the authorization a reservation pays with. A replay signs the same
    /// authorization again (same nonce and deadline, so the same signature).
    async fn sign_for(
        &self,
        network: &Network,
        reservation: &Reservation,
        required: &PaymentRequired,
        requirement: &Requirement,
        url: &str,
    ) -> Result<X402Signed, ServiceError> {
        let (key, payer) = self.wallet_key(reservation.wallet_id).await?;
        let now_secs = self.inner.clock.now().millis() / 1000;
        let existing = self.inner.store.x402_payment(reservation.id).await?;
        let validity = requirement.max_timeout_seconds.clamp(10, MAX_VALIDITY_SECS);
        let valid_before = match &existing {
            Some(payment) => payment.valid_before,
            None => now_secs.saturating_add(i64::try_from(validity).unwrap_or(60)),
        };
        let pay_to: Address = requirement
            .pay_to
            .parse()
            .map_err(|_| ServiceError::InvalidPaymentRequired("payTo is not an address".into()))?;
        let authorization = Authorization {
            from: payer,
            to: pay_to,
            value: U256::from(requirement.amount.atomic()),
            valid_after: U256::ZERO,
            valid_before: U256::from(u64::try_from(valid_before).unwrap_or_default()),
            nonce: nonce_of(reservation.id),
        };
        if existing.is_none() {
            let record = X402Payment {
                reservation_id: reservation.id,
                wallet_id: reservation.wallet_id,
                agent_id: reservation.agent_id,
                network: network.caip2(),
                pay_to: pay_to.to_checksum(None),
                payer: payer.to_checksum(None),
                amount: requirement.amount,
                nonce: format!("{:#x}", authorization.nonce),
                valid_before,
                url: url.to_owned(),
                payout_id: None,
                status: X402PaymentStatus::Signed,
                tx_hash: None,
                created_at: self.inner.clock.now(),
            };
            // Recorded before the signature leaves: every signed authorization is
            // one the resolver will follow to its end.
            self.inner.store.insert_x402_payment(&record).await?;
        }
        let signature = key.sign_digest(&authorization.digest(&usdc_domain(network)).0)?;
        let payload = json!({"signature": signature, "authorization": authorization.to_wire()});
        let payment_payload = match required.version {
            Version::V1 => json!({
                "x402Version": 1, "scheme": SCHEME_EXACT,
                "network": requirement.network, "payload": payload,
            }),
            Version::V2 => {
                let mut body = json!({
                    "x402Version": 2,
                    "resource": required.resource.clone().unwrap_or_else(|| json!({"url": url})),
                    "accepted": requirement.raw,
                    "payload": payload,
                });
                if let Some(extensions) = &required.extensions {
                    body["extensions"] = extensions.clone();
                }
                body
            }
        };
        let header_value = encode_header(&payment_payload)
            .map_err(|e| ServiceError::InvalidPaymentRequired(e.to_string()))?;
        Ok(X402Signed {
            header_name: required.version.payment_header(),
            header_value,
            payment_payload,
            reservation: reservation.clone(),
            network: requirement.network.clone(),
            pay_to: pay_to.to_checksum(None),
            valid_before,
        })
    }

    /// The agent reports how a signed payment went (the decoded `PAYMENT-RESPONSE`,
    /// or nothing when the request failed). Purser asks the chain, not the report:
    /// a used nonce commits the reservation; a failure report cancels the unused
    /// authorization on chain and releases the funds.
    pub async fn report_x402(
        &self,
        principal: &Principal,
        reservation: ReservationId,
        response: Option<&SettleResponse>,
    ) -> Result<X402Outcome, ServiceError> {
        let held = self.reservation(principal, reservation).await?;
        let payment = self
            .inner
            .store
            .x402_payment(reservation)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let failed = response
            .is_none_or(|r| !r.success && r.error_reason.as_deref() != Some("settlement_pending"));
        let claimed_tx = response
            .map(|r| r.transaction.clone())
            .filter(|t| !t.is_empty());
        let cancel = failed.then_some(CANCELED_AFTER_FAILURE);
        self.resolve_x402(&held, payment, cancel, claimed_tx).await
    }

    /// Brings one signed authorization up to date with the chain. `cancel` (the
    /// failure's reason) asks to void an unused authorization now; otherwise an
    /// unused one is released only once it has expired.
    pub(crate) async fn resolve_x402(
        &self,
        held: &Reservation,
        payment: X402Payment,
        cancel: Option<&str>,
        claimed_tx: Option<String>,
    ) -> Result<X402Outcome, ServiceError> {
        if payment.status != X402PaymentStatus::Signed {
            return self.outcome_of(held.id).await;
        }
        if Network::ledger().is(&payment.network) {
            return self.resolve_ledger_x402(held, &payment, cancel).await;
        }
        if held.status != ReservationStatus::Held {
            return self.outcome_of(held.id).await;
        }
        let chain = self.chain()?;
        let payer: Address = payment.payer.parse().map_err(|_| corrupt("x402 payer"))?;
        let nonce = nonce_of(held.id);
        if chain
            .authorization_used(payer, nonce)
            .await
            .map_err(chain_unavailable)?
        {
            return self.used_or_canceled(held, &payment, claimed_tx).await;
        }
        let expired = self.inner.clock.now().millis() / 1000 >= payment.valid_before;
        if expired {
            return self
                .fail_x402(held, &payment, "the authorization expired unused")
                .await;
        }
        let Some(reason) = cancel else {
            return self.outcome_of(held.id).await;
        };
        let (key, _) = self.wallet_key(held.wallet_id).await?;
        let digest = cancel_digest(&usdc_domain(chain.network()), payer, nonce);
        let signature = parse_signature(&key.sign_digest(&digest.0)?)
            .map_err(|e| ServiceError::InvalidSignature(e.to_string()))?;
        let mut payment = payment;
        match chain.send_cancel(payer, nonce, &signature).await {
            Ok(tx) => {
                // Noted first: the token marks a canceled nonce as it marks a used
                // one, and only this tells them apart after a restart.
                let note = format!("{CANCEL_PREFIX}{tx:#x}");
                let now = self.inner.clock.now();
                self.inner.store.note_x402_tx(held.id, &note, now).await?;
                payment.tx_hash = Some(note);
                let receipt = chain
                    .wait_receipt(tx, chain.timeouts().receipt)
                    .await
                    .map_err(chain_unavailable)?;
                if receipt.is_some_and(|r| r.status()) {
                    return self.fail_x402(held, &payment, reason).await;
                }
            }
            // Reverted: the payee used it meanwhile; the state check below decides.
            Err(ChainError::Reverted(_)) => {}
            Err(e) => return Err(chain_unavailable(e)),
        }
        if chain
            .authorization_used(payer, nonce)
            .await
            .map_err(chain_unavailable)?
        {
            return self.used_or_canceled(held, &payment, claimed_tx).await;
        }
        self.outcome_of(held.id).await
    }

    /// The nonce is spent on chain: by the payment, or by a cancel Purser sent.
    /// The cancel's receipt decides; without one yet, the payment stays open.
    async fn used_or_canceled(
        &self,
        held: &Reservation,
        payment: &X402Payment,
        claimed_tx: Option<String>,
    ) -> Result<X402Outcome, ServiceError> {
        let Some(cancel) = payment
            .tx_hash
            .as_deref()
            .and_then(|t| t.strip_prefix(CANCEL_PREFIX))
        else {
            return self.settle_x402(held, payment, claimed_tx).await;
        };
        let chain = self.chain()?;
        let tx: B256 = cancel.parse().map_err(|_| corrupt("a cancel tx hash"))?;
        match chain.receipt(tx).await.map_err(chain_unavailable)? {
            Some(r) if r.status() => self.fail_x402(held, payment, CANCELED_AFTER_FAILURE).await,
            Some(_) => self.settle_x402(held, payment, claimed_tx).await,
            None => self.outcome_of(held.id).await,
        }
    }

    async fn settle_x402(
        &self,
        held: &Reservation,
        payment: &X402Payment,
        claimed_tx: Option<String>,
    ) -> Result<X402Outcome, ServiceError> {
        let settlement = match claimed_tx.filter(|t| t.parse::<B256>().is_ok()) {
            Some(tx) => tx,
            None => self.used_tx(payment).await,
        };
        self.finish_x402(held, payment, PayoutResult::Sent { settlement })
            .await
    }

    /// The transaction that used an authorization, from its `AuthorizationUsed` log
    /// (another process may have sent it); `eip3009:<payer>:<nonce>` when the node
    /// cannot say (the log is older than one scan's range, or the node is down).
    async fn used_tx(&self, payment: &X402Payment) -> String {
        let fallback = format!("eip3009:{}:{}", payment.payer, payment.nonce);
        let (Ok(chain), Ok(payer), Ok(nonce)) = (
            self.chain(),
            payment.payer.parse::<Address>(),
            payment.nonce.parse::<B256>(),
        ) else {
            return fallback;
        };
        match chain
            .authorization_used_tx(payer, nonce, crate::deposits::MAX_SCAN_BLOCKS)
            .await
        {
            Ok(Some(tx)) => format!("{tx:#x}"),
            _ => fallback,
        }
    }

    async fn fail_x402(
        &self,
        held: &Reservation,
        payment: &X402Payment,
        reason: &str,
    ) -> Result<X402Outcome, ServiceError> {
        let result = PayoutResult::Failed {
            reason: reason.to_owned(),
        };
        self.finish_x402(held, payment, result).await
    }

    /// Ends a signed authorization as the chain (or, on the ledger rail, the
    /// settlement) decided: a payout finishes with its reservation; an x402
    /// payment's reservation is committed or released. The record follows the
    /// reservation as it ended: a ledger settlement and a release racing for it
    /// share one idempotency key, so whichever came first decides both.
    pub(crate) async fn finish_x402(
        &self,
        held: &Reservation,
        payment: &X402Payment,
        result: PayoutResult,
    ) -> Result<X402Outcome, ServiceError> {
        let on_ledger = Network::ledger().is(&payment.network);
        let change = match (&payment.payout_id, result) {
            (Some(payout), result) => Change::FinishPayout {
                wallet: held.wallet_id,
                payout: payout.clone(),
                reservation: held.id,
                result,
            },
            // On the ledger the money moves now, so a revoked agent or mandate
            // still stops it; on a chain it already left.
            (None, PayoutResult::Sent { settlement }) => Change::Commit {
                wallet: held.wallet_id,
                reservation: held.id,
                destination: self.paid_to(payment, on_ledger).await?,
                settlement: Some(settlement),
                enforce: on_ledger,
            },
            (None, PayoutResult::Failed { reason }) => Change::Release {
                wallet: held.wallet_id,
                reservation: held.id,
                reason,
            },
        };
        let ended = match self.write_resolution(held, change).await? {
            Some(ended) => ended,
            // A payout's outcome is the payout; its reservation is read back.
            None => self
                .inner
                .store
                .reservation(held.id)
                .await?
                .ok_or(ServiceError::NotFound)?,
        };
        self.close_as_ended(ended).await
    }

    /// Where a settled payment's money goes: the payee's wallet on the ledger rail,
    /// else out through the external-payouts account.
    async fn paid_to(
        &self,
        payment: &X402Payment,
        on_ledger: bool,
    ) -> Result<AccountId, ServiceError> {
        if !on_ledger {
            return Ok(AccountId::system(
                AccountKind::ExternalPayouts,
                Currency::Usdc,
            ));
        }
        self.ledger_account_of(&payment.pay_to)
            .await?
            .ok_or_else(|| corrupt("a ledger payment's payee"))
    }

    /// Closes a signed authorization's record as its reservation `ended`.
    pub(crate) async fn close_as_ended(
        &self,
        ended: Reservation,
    ) -> Result<X402Outcome, ServiceError> {
        let reservation = ended.id;
        let (status, tx_hash) = match ended.status {
            ReservationStatus::Committed => (X402PaymentStatus::Settled, ended.settlement),
            ReservationStatus::Released => (X402PaymentStatus::Failed, None),
            ReservationStatus::Held => return self.outcome_of(reservation).await,
        };
        self.inner
            .store
            .close_x402_payment(
                reservation,
                status,
                tx_hash.as_deref(),
                self.inner.clock.now(),
            )
            .await?;
        self.outcome_of(reservation).await
    }

    /// Commits or releases as the reservation's agent, idempotently per reservation;
    /// the reservation as it ended, when the change answers with it (not a payout).
    async fn write_resolution(
        &self,
        held: &Reservation,
        change: Change,
    ) -> Result<Option<Reservation>, ServiceError> {
        let principal = Principal::Agent {
            agent: held.agent_id,
            wallet: held.wallet_id,
        };
        let key = IdempotencyKey::parse(&format!("x402-resolve:{}", held.id))?;
        let write = purser_store::WriteRequest {
            at: self.inner.clock.now(),
            actor: principal.actor(),
            idempotency: Some(crate::idempotency::idempotency(
                Some(&principal),
                &key,
                "x402.resolve",
                &held.id,
            )?),
            change,
        };
        match self.inner.store.write(write).await?.outcome {
            Outcome::Reservation(ended) => Ok(Some(ended)),
            Outcome::Payout(_) => Ok(None),
            _ => Err(corrupt("x402 resolution")),
        }
    }

    pub(crate) async fn outcome_of(
        &self,
        reservation: ReservationId,
    ) -> Result<X402Outcome, ServiceError> {
        let store = &self.inner.store;
        let held = store
            .reservation(reservation)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let payment = store.x402_payment(reservation).await?;
        Ok(X402Outcome {
            reservation: held,
            status: payment.as_ref().map_or("signed", |p| p.status.as_str()),
            tx_hash: payment.and_then(|p| p.tx_hash),
        })
    }

    /// Follows every open signed payment to the chain: commits the used, releases
    /// the expired unused. Run periodically by the server; returns how many closed.
    pub async fn resolve_open_x402(&self) -> Result<usize, ServiceError> {
        let mut closed = 0;
        let open = self.inner.store.open_x402_payments(200).await?;
        let has_chain = self.inner.config.chain.is_some();
        let ledger = Network::ledger();
        // Payouts' authorizations are followed by `send_open_payouts`, which also
        // sends them.
        let followed = open
            .into_iter()
            .filter(|p| p.payout_id.is_none())
            .filter(|p| has_chain || ledger.is(&p.network));
        for payment in followed {
            let Some(held) = self.inner.store.reservation(payment.reservation_id).await? else {
                continue;
            };
            match self.resolve_x402(&held, payment, None, None).await {
                Ok(outcome) if outcome.status != "signed" => closed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, reservation = %held.id, "cannot resolve an x402 payment yet")
                }
            }
        }
        Ok(closed)
    }

    /// Whether a reservation is an x402 payment on a chain, whose end only the chain
    /// decides (so the generic commit and release routes must refuse it).
    pub(crate) async fn is_chain_payment(
        &self,
        reservation: ReservationId,
    ) -> Result<bool, ServiceError> {
        Ok(self.inner.store.x402_payment(reservation).await?.is_some())
    }
}
