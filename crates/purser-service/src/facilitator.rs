//! Purser as an x402 facilitator: `/verify`, `/settle` and `/supported` for the
//! `exact` scheme over EIP-3009, compatible with the reference v1 and v2.
//!
//! Invalid payments are answers (`isValid: false` / `success: false` with the
//! reference's reason codes), not errors. Settlement is idempotent per
//! (network, payer, nonce): a repeated `/settle` answers with the first
//! transaction; one whose receipt is late answers `settlement_pending` with the
//! transaction hash and is picked up by the next call.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256};
use purser_chain::client::{ChainClient, ChainError};
use purser_chain::exact::{self, CheckedPayment, Invalid};
use purser_chain::network::Network;
use purser_store::{Settlement, SettlementStatus};
use purser_types::x402::{
    FacilitatorRequest, Reason, SCHEME_EXACT, SettleResponse, SupportedKind, SupportedResponse,
    VerifyResponse,
};
use serde_json::Value;

use crate::{Purser, ServiceError};

pub(crate) fn invalid_of(e: Invalid) -> (Reason, String, Option<String>) {
    (e.reason, e.message, e.payer.map(|p| p.to_checksum(None)))
}

pub(crate) type Rejection = (Reason, String, Option<String>);

pub(crate) fn parse(body: &Value) -> Result<FacilitatorRequest, Rejection> {
    FacilitatorRequest::from_json(body).map_err(|e| (e.reason, e.message, None))
}

pub(crate) fn settle_failure(
    network: &str,
    (reason, message, payer): Rejection,
    tx: Option<String>,
) -> SettleResponse {
    SettleResponse {
        success: false,
        error_reason: Some(reason.as_str().to_owned()),
        error_message: Some(message),
        payer,
        transaction: tx.unwrap_or_default(),
        network: network.to_owned(),
        amount: None,
    }
}

fn counted(endpoint: &'static str, result: &str) {
    metrics::counter!("purser_facilitator_requests_total", "endpoint" => endpoint, "result" => result.to_owned())
        .increment(1);
}

impl Purser {
    /// What this facilitator settles: `exact` on its chain, if it has one, and on
    /// the internal ledger rail; v2, and v1 where the network has a v1 name. Each
    /// kind names its asset and EIP-712 domain in `extra`.
    pub fn facilitator_supported(&self) -> SupportedResponse {
        let chain = self.inner.config.chain.as_deref();
        let mut kinds = Vec::new();
        let networks = chain
            .map(|c| c.network().clone())
            .into_iter()
            .chain([Network::ledger()]);
        for network in networks {
            let extra = Some(serde_json::json!({
                "asset": network.usdc.to_checksum(None),
                "name": network.token_name,
                "version": network.token_version,
            }));
            let names = std::iter::once((2, network.caip2()))
                .chain(network.v1_name.iter().map(|name| (1, name.clone())));
            kinds.extend(names.map(|(x402_version, name)| SupportedKind {
                x402_version,
                scheme: SCHEME_EXACT.into(),
                network: name,
                extra: extra.clone(),
            }));
        }
        let signers = chain
            .and_then(ChainClient::relayer)
            .map(|a| vec![a.to_checksum(None)])
            .unwrap_or_default();
        SupportedResponse {
            kinds,
            extensions: Vec::new(),
            signers: BTreeMap::from([("eip155:*".to_owned(), signers)]),
        }
    }

    /// `/verify`: every check of the reference, the chain's included.
    pub async fn facilitator_verify(&self, body: &Value) -> Result<VerifyResponse, ServiceError> {
        let verified = match parse(body) {
            Ok(request) if Network::ledger().is(&request.requirement.network) => {
                self.verify_on_ledger(&request).await.map(|p| p.checked)
            }
            Ok(request) => self.verify_payment(self.chain()?, &request).await,
            Err(rejection) => Err(rejection),
        };
        let answer = match verified {
            Ok(checked) => VerifyResponse::valid(checked.authorization.from.to_checksum(None)),
            Err((reason, message, payer)) => VerifyResponse::invalid(reason, message, payer),
        };
        counted(
            "verify",
            answer.invalid_reason.as_deref().unwrap_or("valid"),
        );
        Ok(answer)
    }

    async fn verify_payment(
        &self,
        chain: &ChainClient,
        request: &FacilitatorRequest,
    ) -> Result<CheckedPayment, Rejection> {
        let now_secs = u64::try_from(self.inner.clock.now().millis() / 1000).unwrap_or_default();
        let checked = exact::check(request, chain.network(), now_secs).map_err(invalid_of)?;
        self.check_on_chain(chain, &checked).await?;
        Ok(checked)
    }

    /// The chain's part of verification: nonce unused, balance, simulation — asked
    /// at once, since each is a round trip to the node.
    async fn check_on_chain(
        &self,
        chain: &ChainClient,
        checked: &CheckedPayment,
    ) -> Result<(), Rejection> {
        let a = &checked.authorization;
        let payer = Some(a.from.to_checksum(None));
        let (used, balance, simulation) = tokio::join!(
            chain.authorization_used(a.from, a.nonce),
            chain.balance_of(a.from),
            chain.simulate_transfer(a, &checked.signature),
        );
        let down = |e: ChainError| (Reason::UnexpectedVerifyError, e.to_string(), payer.clone());
        if used.map_err(down)? {
            return Err((
                Reason::NonceAlreadyUsed,
                "the authorization's nonce was already used or canceled".into(),
                payer,
            ));
        }
        if balance.map_err(down)? < a.value {
            return Err((
                Reason::InsufficientBalance,
                "the payer's USDC balance is below the amount".into(),
                payer,
            ));
        }
        match simulation {
            Ok(()) => Ok(()),
            Err(ChainError::Reverted(why)) => Err((Reason::SimulationFailed, why, payer)),
            Err(e) => Err(down(e)),
        }
    }

    /// `/settle`: verifies again, sends `transferWithAuthorization`, waits for the
    /// receipt and checks the `Transfer` it must hold.
    pub async fn facilitator_settle(&self, body: &Value) -> Result<SettleResponse, ServiceError> {
        // Parsed once: its network picks the rail.
        let answer = match parse(body) {
            Ok(request) if Network::ledger().is(&request.requirement.network) => {
                self.settle_on_ledger(&request).await
            }
            Ok(request) => {
                let chain = self.chain()?;
                self.settle_payment(chain, &request, &chain.network().caip2())
                    .await
            }
            Err(rejection) => settle_failure(&self.chain()?.network().caip2(), rejection, None),
        };
        let result = answer
            .error_reason
            .clone()
            .unwrap_or_else(|| "settled".into());
        counted("settle", &result);
        Ok(answer)
    }

    async fn settle_payment(
        &self,
        chain: &ChainClient,
        request: &FacilitatorRequest,
        network: &str,
    ) -> SettleResponse {
        // A payment settled (or sent) before answers from its record, whatever the
        // chain now says about its nonce.
        if let Some(existing) = self.existing_settlement(request, network).await {
            return self.resume_settlement(chain, existing).await;
        }
        let checked = match self.verify_payment(chain, request).await {
            Ok(checked) => checked,
            Err(rejection) => return settle_failure(network, rejection, None),
        };
        let a = checked.authorization;
        let record = Settlement {
            network: network.to_owned(),
            payer: a.from.to_checksum(None),
            nonce: format!("{:#x}", a.nonce),
            pay_to: a.to.to_checksum(None),
            amount: request.requirement.amount,
            status: SettlementStatus::Submitting,
            tx_hash: None,
            error_reason: None,
        };
        let now = self.inner.clock.now();
        match self.inner.store.claim_settlement(&record, now).await {
            Ok(true) => {}
            Ok(false) => return self.resume_settlement(chain, record).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a settlement");
                return settle_failure(
                    network,
                    (
                        Reason::UnexpectedSettleError,
                        "the facilitator could not record the settlement".into(),
                        Some(record.payer),
                    ),
                    None,
                );
            }
        }
        let tx_hash = match chain.send_transfer(&a, &checked.signature).await {
            Ok(hash) => hash,
            Err(e) => {
                // Nothing was sent (or the node will refuse it as a used nonce):
                // drop the claim so the payment may be tried again.
                if let Err(store) = self.inner.store.drop_settlement_claim(&record).await {
                    tracing::error!(error = %store, "cannot drop a settlement claim");
                }
                let reason = match e {
                    ChainError::Reverted(_) => Reason::SimulationFailed,
                    _ => Reason::UnexpectedSettleError,
                };
                return settle_failure(network, (reason, e.to_string(), Some(record.payer)), None);
            }
        };
        let sent = Settlement {
            status: SettlementStatus::Pending,
            tx_hash: Some(format!("{tx_hash:#x}")),
            ..record
        };
        self.save_settlement(&sent).await;
        self.await_receipt(chain, sent, tx_hash).await
    }

    pub(crate) async fn existing_settlement(
        &self,
        request: &FacilitatorRequest,
        network: &str,
    ) -> Option<Settlement> {
        let authorization = &request.payment.payload.authorization;
        let payer = authorization
            .from
            .parse::<Address>()
            .ok()?
            .to_checksum(None);
        let nonce = authorization.nonce.parse::<B256>().ok()?;
        self.inner
            .store
            .settlement(network, &payer, &format!("{nonce:#x}"))
            .await
            .ok()
            .flatten()
    }

    pub(crate) async fn save_settlement(&self, settlement: &Settlement) {
        if let Err(e) = self
            .inner
            .store
            .update_settlement(settlement, self.inner.clock.now())
            .await
        {
            tracing::error!(error = %e, "cannot record a settlement's progress");
        }
    }

    async fn resume_settlement(&self, chain: &ChainClient, record: Settlement) -> SettleResponse {
        let tx = record
            .tx_hash
            .as_deref()
            .and_then(|t| t.parse::<B256>().ok());
        match (record.status, tx) {
            (SettlementStatus::Pending, Some(hash)) => {
                self.await_receipt(chain, record, hash).await
            }
            _ => answer_of(&record),
        }
    }

    async fn await_receipt(
        &self,
        chain: &ChainClient,
        record: Settlement,
        tx_hash: B256,
    ) -> SettleResponse {
        let receipt = match chain.wait_receipt(tx_hash, chain.timeouts().receipt).await {
            Ok(Some(receipt)) => receipt,
            Ok(None) | Err(_) => {
                return settle_failure(
                    &record.network,
                    (
                        Reason::SettlementPending,
                        "the transaction was sent; its receipt has not arrived yet".into(),
                        Some(record.payer.clone()),
                    ),
                    record.tx_hash.clone(),
                );
            }
        };
        let moved = chain.transfers_in(&receipt).iter().any(|t| {
            t.from.to_checksum(None) == record.payer
                && t.to.to_checksum(None) == record.pay_to
                && t.value == U256::from(record.amount.atomic())
        });
        let outcome = if receipt.status() && moved {
            Settlement {
                status: SettlementStatus::Settled,
                ..record
            }
        } else {
            Settlement {
                status: SettlementStatus::Failed,
                error_reason: Some(
                    if receipt.status() {
                        Reason::TransferEventMismatch
                    } else {
                        Reason::TransactionFailed
                    }
                    .as_str()
                    .into(),
                ),
                ..record
            }
        };
        self.save_settlement(&outcome).await;
        answer_of(&outcome)
    }
}

/// The answer for a settlement as recorded, without asking the chain.
pub(crate) fn answer_of(record: &Settlement) -> SettleResponse {
    let payer = Some(record.payer.clone());
    match record.status {
        SettlementStatus::Settled => settled(record),
        SettlementStatus::Failed => {
            let reason = record
                .error_reason
                .as_deref()
                .and_then(Reason::parse)
                .unwrap_or(Reason::InvalidTransactionState);
            let message = "this payment's settlement failed".to_owned();
            settle_failure(
                &record.network,
                (reason, message, payer),
                record.tx_hash.clone(),
            )
        }
        SettlementStatus::Pending | SettlementStatus::Submitting => {
            let message = "the payment is being settled; ask again shortly".to_owned();
            let rejection = (Reason::SettlementPending, message, payer);
            settle_failure(&record.network, rejection, record.tx_hash.clone())
        }
    }
}

fn settled(record: &Settlement) -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some(record.payer.clone()),
        transaction: record.tx_hash.clone().unwrap_or_default(),
        network: record.network.clone(),
        amount: Some(record.amount.atomic().to_string()),
    }
}
