//! AgentCharge payment links: a merchant wallet's price list of one-off
//! payments. Creating, changing and disabling a link moves no money; paying one
//! is an x402 payment to the merchant's wallet, settled by this server's own
//! facilitator (on the internal ledger rail, or on its chain), under an atomic
//! claim on one of the link's uses taken before settlement and given back if
//! settlement fails.

use purser_chain::checksum_address;
use purser_core::change::event;
use purser_store::{Page, UseClaim};
use purser_types::x402::offer::{Offer, Rail, chosen, offer, rails_from_supported};
use purser_types::x402::{PaymentPayload, Reason, SettleResponse, Version};
use purser_types::{
    LinkClosed, LinkStatus, PaymentLink, PaymentLinkId, ReceivedPayment, ReceivedPaymentId,
    ReceivedStatus, Secret, UnixMs, Usdc,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::{Principal, new_secret};
use crate::idempotency::{IdempotencyKey, keyed_id};
use crate::ids::new_id_bytes;
use crate::text::multi_line;
use crate::wallets::Replayable;
use crate::{Purser, ServiceError};

/// The longest link description, in characters.
pub const LINK_DESCRIPTION_MAX_CHARS: usize = 1000;
/// The largest resource content a link delivers, in bytes.
pub const LINK_CONTENT_MAX_BYTES: usize = 32 * 1024;
/// The longest URL a link stores (resource or webhook).
const URL_MAX_LEN: usize = 2048;
/// How long a payer has to pay a link after it answered 402.
const LINK_PAYMENT_TIMEOUT_SECS: u64 = 300;

/// A new link's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkDraft {
    /// The price of one use.
    pub amount: Usdc,
    /// What is paid for.
    pub description: String,
    /// Text delivered once paid.
    pub resource_content: Option<String>,
    /// A URL delivered once paid.
    pub resource_url: Option<String>,
    /// After this it takes no payment.
    pub expires_at: Option<UnixMs>,
    /// How many payments it takes in all.
    pub max_uses: Option<u32>,
    /// Where each payment is announced.
    pub webhook_url: Option<String>,
}

/// Changes to a link; what is absent stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkPatch {
    /// A new description.
    pub description: Option<String>,
    /// New resource content.
    pub resource_content: Option<String>,
    /// A new resource URL.
    pub resource_url: Option<String>,
    /// A new end.
    pub expires_at: Option<UnixMs>,
    /// A new maximum (not below the uses already taken).
    pub max_uses: Option<u32>,
    /// A new webhook URL.
    pub webhook_url: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<LinkStatus>,
    /// Replace the webhook signing secret (the new one is in the answer, once).
    pub rotate_webhook_secret: bool,
}

/// A link, with its webhook signing secret when it was just made.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// The link.
    pub link: PaymentLink,
    /// The URL payers pay it at.
    pub pay_url: String,
    /// The webhook signing secret: only in the answer that created it.
    pub webhook_secret: Option<Secret<String>>,
}

/// What paying a link came to.
#[derive(Debug, Clone)]
pub enum LinkCharge {
    /// No payment came: the offer to answer 402 with.
    Required(Offer),
    /// The payment was refused or did not settle; nothing was taken.
    Refused {
        /// The offer, with the reason in `error`.
        offer: Offer,
        /// The facilitator's answer, when settlement was tried.
        settlement: Option<SettleResponse>,
    },
    /// Paid (or paid before, for the same authorization): deliver the resource.
    Paid {
        /// The link.
        link: Box<PaymentLink>,
        /// The payment.
        payment: ReceivedPayment,
        /// The settlement, for `PAYMENT-RESPONSE`.
        settlement: SettleResponse,
        /// The version the payer spoke.
        version: Version,
    },
}

fn checked_url(field: &str, text: &str) -> Result<String, ServiceError> {
    let bad = || ServiceError::InvalidRequest(format!("{field} must be an http(s) URL"));
    let parsed = url::Url::parse(text).map_err(|_| bad())?;
    let web = matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some();
    if !web || text.len() > URL_MAX_LEN || !parsed.username().is_empty() {
        return Err(bad());
    }
    Ok(parsed.to_string())
}

fn checked_content(text: &str) -> Result<String, ServiceError> {
    if text.is_empty() || text.len() > LINK_CONTENT_MAX_BYTES {
        return Err(ServiceError::InvalidRequest(format!(
            "resourceContent must be 1-{LINK_CONTENT_MAX_BYTES} bytes"
        )));
    }
    Ok(text.to_owned())
}

fn checked_max_uses(max_uses: Option<u32>) -> Result<Option<u32>, ServiceError> {
    if max_uses == Some(0) {
        return Err(ServiceError::InvalidRequest(
            "maxUses must be at least 1".into(),
        ));
    }
    Ok(max_uses)
}

fn checked_expiry(expires_at: Option<UnixMs>, now: UnixMs) -> Result<Option<UnixMs>, ServiceError> {
    if expires_at.is_some_and(|at| at <= now) {
        return Err(ServiceError::InvalidRequest(
            "expiresAt must be in the future".into(),
        ));
    }
    Ok(expires_at)
}

/// The error for a link that takes no payment.
pub(crate) fn closed(reason: LinkClosed) -> ServiceError {
    ServiceError::LinkClosed(reason)
}

impl Purser {
    /// The URL a link is paid at.
    pub fn link_pay_url(&self, id: PaymentLinkId) -> String {
        format!("{}/pay/{id}", self.public_url())
    }

    fn link_view(&self, link: PaymentLink, webhook_secret: Option<Secret<String>>) -> LinkView {
        LinkView {
            pay_url: self.link_pay_url(link.id),
            link,
            webhook_secret,
        }
    }

    /// Creates a payment link on the caller's wallet (owner or agent). Idempotent
    /// by key: the link's id is derived from it, so a retry finds the first link
    /// (different terms under the same key are a conflict).
    pub async fn create_link(
        &self,
        principal: &Principal,
        draft: &LinkDraft,
        key: &IdempotencyKey,
    ) -> Result<Replayable<LinkView>, ServiceError> {
        let now = self.inner.clock.now();
        let id = PaymentLinkId::from_bytes(keyed_id(principal, key, "create_link"));
        if let Some(existing) = self.inner.store.payment_link(id).await? {
            return self.replayed_link(existing, draft);
        }
        if draft.amount.is_zero() {
            return Err(ServiceError::InvalidRequest(
                "amount must be more than 0".into(),
            ));
        }
        let link = PaymentLink {
            id,
            wallet_id: principal.wallet(),
            agent_id: match principal {
                Principal::Agent { agent, .. } => Some(*agent),
                Principal::Owner { .. } => None,
            },
            amount: draft.amount,
            description: multi_line(
                "description",
                &draft.description,
                LINK_DESCRIPTION_MAX_CHARS,
            )?,
            resource_content: draft
                .resource_content
                .as_deref()
                .map(checked_content)
                .transpose()?,
            resource_url: draft
                .resource_url
                .as_deref()
                .map(|u| checked_url("resourceUrl", u))
                .transpose()?,
            expires_at: checked_expiry(draft.expires_at, now)?,
            max_uses: checked_max_uses(draft.max_uses)?,
            uses_count: 0,
            status: LinkStatus::Active,
            webhook_url: draft
                .webhook_url
                .as_deref()
                .map(|u| checked_url("webhookUrl", u))
                .transpose()?,
            created_at: now,
            updated_at: now,
        };
        let secret = match link.webhook_url {
            Some(_) => Some(new_secret("whsec_")?.secret),
            None => None,
        };
        let record = event(
            principal.actor(),
            "payment_link.created",
            Some(link.wallet_id),
            link.id,
            json!({"amount": link.amount, "maxUses": link.max_uses, "expiresAt": link.expires_at}),
        );
        self.inner
            .store
            .insert_payment_link(&link, secret.as_ref(), record)
            .await?;
        Ok(Replayable {
            value: self.link_view(link, secret),
            replayed: false,
        })
    }

    fn replayed_link(
        &self,
        existing: PaymentLink,
        draft: &LinkDraft,
    ) -> Result<Replayable<LinkView>, ServiceError> {
        let same = existing.amount == draft.amount
            && existing.description == draft.description.trim()
            && existing.max_uses == draft.max_uses
            && existing.expires_at == draft.expires_at;
        if !same {
            return Err(ServiceError::IdempotencyConflict);
        }
        Ok(Replayable {
            value: self.link_view(existing, None),
            replayed: true,
        })
    }

    /// A link the caller may see: its wallet's owner, or the agent that made it.
    pub async fn link(
        &self,
        principal: &Principal,
        id: PaymentLinkId,
    ) -> Result<LinkView, ServiceError> {
        let link = self.visible_link(principal, id).await?;
        Ok(self.link_view(link, None))
    }

    async fn visible_link(
        &self,
        principal: &Principal,
        id: PaymentLinkId,
    ) -> Result<PaymentLink, ServiceError> {
        let link = self
            .inner
            .store
            .payment_link(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        match link.agent_id {
            Some(agent) => principal.require_owner_or_agent(link.wallet_id, agent)?,
            None => principal.require_owner_of(link.wallet_id)?,
        }
        Ok(link)
    }

    /// The caller's links, newest first: all of the wallet's for its owner, its own
    /// for an agent.
    pub async fn links(
        &self,
        principal: &Principal,
        page: Page,
    ) -> Result<Vec<LinkView>, ServiceError> {
        let links = self
            .inner
            .store
            .payment_links(principal.wallet(), page)
            .await?;
        Ok(links
            .into_iter()
            .filter(|l| match (principal, l.agent_id) {
                (Principal::Owner { .. }, _) => true,
                (Principal::Agent { agent, .. }, Some(maker)) => *agent == maker,
                (Principal::Agent { .. }, None) => false,
            })
            .map(|l| self.link_view(l, None))
            .collect())
    }

    /// Changes a link's terms or status. A disabled link can be enabled again.
    pub async fn update_link(
        &self,
        principal: &Principal,
        id: PaymentLinkId,
        patch: &LinkPatch,
    ) -> Result<LinkView, ServiceError> {
        let link = self.visible_link(principal, id).await?;
        let now = self.inner.clock.now();
        let updated = patched(link, patch, now)?;
        if updated.webhook_url.is_none() && patch.rotate_webhook_secret {
            return Err(ServiceError::InvalidRequest(
                "the link has no webhookUrl to sign for".into(),
            ));
        }
        let fresh_secret = self.inner.store.payment_link_secret(id).await?.is_none()
            && updated.webhook_url.is_some();
        let secret = if patch.rotate_webhook_secret || fresh_secret {
            Some(new_secret("whsec_")?.secret)
        } else {
            None
        };
        let action = match patch.status {
            Some(LinkStatus::Disabled) => "payment_link.disabled",
            _ => "payment_link.updated",
        };
        let record = event(
            principal.actor(),
            action,
            Some(updated.wallet_id),
            updated.id,
            serde_json::to_value(patch).unwrap_or_default(),
        );
        if !self
            .inner
            .store
            .update_payment_link(&updated, secret.as_ref(), record)
            .await?
        {
            return Err(ServiceError::InvalidRequest(
                "maxUses cannot be below the uses already taken".into(),
            ));
        }
        let current = self.visible_link(principal, id).await?;
        Ok(self.link_view(current, secret))
    }

    /// Disables a link: it takes no more payments.
    pub async fn disable_link(
        &self,
        principal: &Principal,
        id: PaymentLinkId,
    ) -> Result<LinkView, ServiceError> {
        let patch = LinkPatch {
            status: Some(LinkStatus::Disabled),
            ..LinkPatch::default()
        };
        self.update_link(principal, id, &patch).await
    }

    /// The public view of a link for payers: what it is and what it costs.
    pub async fn public_link(&self, id: PaymentLinkId) -> Result<PaymentLink, ServiceError> {
        self.inner
            .store
            .payment_link(id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// The offer for one use of `link` on `rails`, to the merchant's wallet.
    async fn link_offer(&self, link: &PaymentLink, rails: &[Rail]) -> Result<Offer, ServiceError> {
        let wallet = self
            .inner
            .store
            .wallet(link.wallet_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(offer(
            link.amount,
            &link.description,
            &wallet.address,
            rails,
            &self.link_pay_url(link.id),
            LINK_PAYMENT_TIMEOUT_SECS,
        ))
    }

    /// Pays a link with the payment header, if any: without one, the offer to
    /// answer 402 with; with one, verify, take a use, settle, record (with the
    /// merchant's webhook event), and deliver. The same authorization presented
    /// again gets the same delivery, never a second charge.
    pub async fn pay_link(
        &self,
        id: PaymentLinkId,
        header: Option<&str>,
    ) -> Result<LinkCharge, ServiceError> {
        let link = self.public_link(id).await?;
        let rails = rails_from_supported(&self.facilitator_supported());
        let offer = self.link_offer(&link, &rails).await?;
        let now = self.inner.clock.now();
        let Some(header) = header else {
            link.check_payable(now).map_err(closed)?;
            return Ok(LinkCharge::Required(offer));
        };
        let (payment, requirement) = match chosen(&offer, header) {
            Ok(chosen) => chosen,
            Err(error) => return Ok(refused(&offer, &error, None)),
        };
        let received = self.received_of(&link, &payment, &requirement, &rails, now)?;
        if let Some(earlier) = self.earlier_payment(&received).await? {
            return self.deliver_again(link, earlier, &offer, payment.version);
        }
        link.check_payable(now).map_err(closed)?;
        let body = json!({
            "x402Version": payment.version.number(),
            "paymentPayload": payment.raw,
            "paymentRequirements": requirement,
        });
        let verified = self.facilitator_verify(&body).await?;
        if !verified.is_valid {
            let reason = verified
                .invalid_reason
                .as_deref()
                .unwrap_or("invalid_payment");
            return Ok(refused(&offer, reason, None));
        }
        match self.inner.store.claim_link_use(&received).await? {
            UseClaim::Taken => {}
            UseClaim::Existing(earlier) => {
                return self.deliver_again(link, earlier, &offer, payment.version);
            }
            UseClaim::Closed => {
                let current = self.public_link(id).await?;
                let reason = current
                    .check_payable(now)
                    .err()
                    .unwrap_or(LinkClosed::Exhausted);
                return Err(closed(reason));
            }
        }
        let settlement = self.facilitator_settle(&body).await?;
        self.finish_link_payment(link, received, settlement, &offer, payment.version)
            .await
    }

    /// The record a payment will have, from its authorization.
    fn received_of(
        &self,
        link: &PaymentLink,
        payment: &PaymentPayload,
        requirement: &Value,
        rails: &[Rail],
        now: UnixMs,
    ) -> Result<ReceivedPayment, ServiceError> {
        let authorization = &payment.payload.authorization;
        let payer = checksum_address(&authorization.from)
            .map_err(|e| ServiceError::InvalidRequest(format!("payer: {e}")))?;
        let network = requirement["network"].as_str().unwrap_or_default();
        // v1 names its network its own way; records use the v2 (CAIP-2) id.
        let network = rails
            .iter()
            .find(|r| r.network == network || r.v1_network.as_deref() == Some(network))
            .map_or(network, |r| r.network.as_str())
            .to_owned();
        Ok(ReceivedPayment {
            id: ReceivedPaymentId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            link_id: link.id,
            wallet_id: link.wallet_id,
            amount: link.amount,
            network,
            payer,
            nonce: authorization.nonce.to_ascii_lowercase(),
            transaction: None,
            status: ReceivedStatus::Settling,
            refunded_amount: Usdc::ZERO,
            created_at: now,
            updated_at: now,
        })
    }

    async fn earlier_payment(
        &self,
        received: &ReceivedPayment,
    ) -> Result<Option<ReceivedPayment>, ServiceError> {
        Ok(self
            .inner
            .store
            .link_payment_by_nonce(&received.network, &received.payer, &received.nonce)
            .await?)
    }

    fn deliver_again(
        &self,
        link: PaymentLink,
        earlier: ReceivedPayment,
        offer: &Offer,
        version: Version,
    ) -> Result<LinkCharge, ServiceError> {
        if earlier.status != ReceivedStatus::Settled {
            let error = "this payment is being settled; retry in a moment";
            return Ok(refused(offer, error, None));
        }
        let settlement = settled_answer(&earlier);
        Ok(LinkCharge::Paid {
            link: Box::new(link),
            payment: earlier,
            settlement,
            version,
        })
    }

    /// Records how settlement ended: settled (with the webhook event) or failed
    /// (the use given back). A settlement still pending on chain delivers and is
    /// finished by the background task once its receipt is in.
    async fn finish_link_payment(
        &self,
        link: PaymentLink,
        mut received: ReceivedPayment,
        settlement: SettleResponse,
        offer: &Offer,
        version: Version,
    ) -> Result<LinkCharge, ServiceError> {
        let pending =
            settlement.error_reason.as_deref() == Some(Reason::SettlementPending.as_str());
        if settlement.success {
            received = self
                .record_link_settled(&link, received, &settlement.transaction)
                .await?;
        } else if !pending {
            let reason = settlement
                .error_reason
                .clone()
                .unwrap_or_else(|| "settlement_failed".into());
            self.record_link_failed(&received, &reason).await?;
            return Ok(refused(offer, &reason, Some(settlement)));
        }
        Ok(LinkCharge::Paid {
            link: Box::new(link),
            payment: received,
            settlement,
            version,
        })
    }

    pub(crate) async fn record_link_settled(
        &self,
        link: &PaymentLink,
        received: ReceivedPayment,
        transaction: &str,
    ) -> Result<ReceivedPayment, ServiceError> {
        let now = self.inner.clock.now();
        let settled = ReceivedPayment {
            status: ReceivedStatus::Settled,
            transaction: Some(transaction.to_owned()),
            updated_at: now,
            ..received
        };
        let webhook = self.webhook_event(
            link,
            "payment.received",
            json!({"payment": settled, "link": {"id": link.id, "description": link.description}}),
        )?;
        let record = event(
            purser_types::Actor::System,
            "payment_link.paid",
            Some(link.wallet_id),
            settled.id,
            json!({"link": link.id, "amount": settled.amount, "payer": settled.payer,
                   "network": settled.network, "transaction": transaction}),
        );
        self.inner
            .store
            .settle_link_payment(settled.id, transaction, now, webhook.as_ref(), record)
            .await?;
        if webhook.is_some() {
            self.wake_webhooks();
        }
        metrics::counter!("purser_link_payments_total", "result" => "settled").increment(1);
        Ok(settled)
    }

    pub(crate) async fn record_link_failed(
        &self,
        received: &ReceivedPayment,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let record = event(
            purser_types::Actor::System,
            "payment_link.payment_failed",
            Some(received.wallet_id),
            received.id,
            json!({"link": received.link_id, "reason": reason}),
        );
        self.inner
            .store
            .fail_link_payment(received, self.inner.clock.now(), record)
            .await?;
        metrics::counter!("purser_link_payments_total", "result" => "failed").increment(1);
        Ok(())
    }

    /// A wallet's received payments (of one link, if named), newest first: the
    /// owner sees all, an agent those of its own links.
    pub async fn received_payments(
        &self,
        principal: &Principal,
        link: Option<PaymentLinkId>,
        page: Page,
    ) -> Result<Vec<ReceivedPayment>, ServiceError> {
        if let Some(link) = link {
            self.visible_link(principal, link).await?;
        } else if let Principal::Agent { .. } = principal {
            // An agent lists per link: its own.
            return Err(ServiceError::InvalidRequest(
                "name the payment link (agents see the payments of their own links)".into(),
            ));
        }
        Ok(self
            .inner
            .store
            .received_payments(principal.wallet(), link, page)
            .await?)
    }

    /// One received payment.
    pub async fn received_payment(
        &self,
        principal: &Principal,
        id: ReceivedPaymentId,
    ) -> Result<ReceivedPayment, ServiceError> {
        let payment = self
            .inner
            .store
            .received_payment(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.visible_link(principal, payment.link_id).await?;
        Ok(payment)
    }

    /// Finishes link payments a crash (or a slow chain) left settling: by the
    /// facilitator's record of the same authorization, settled or failed; with no
    /// record at all, the payment never reached settlement and fails.
    pub(crate) async fn resolve_stale_link_payments(&self) -> Result<usize, ServiceError> {
        let cutoff = self.inner.clock.now().plus_millis(-STALE_AFTER_MS);
        let stale = self.inner.store.stale_link_payments(cutoff, 100).await?;
        let mut resolved = 0;
        for payment in stale {
            let settlement = self
                .inner
                .store
                .settlement(&payment.network, &payment.payer, &payment.nonce)
                .await?;
            match settlement.map(|s| (s.status, s.tx_hash)) {
                Some((purser_store::SettlementStatus::Settled, tx)) => {
                    let link = self.public_link(payment.link_id).await?;
                    let tx = tx.unwrap_or_default();
                    self.record_link_settled(&link, payment, &tx).await?;
                }
                Some((purser_store::SettlementStatus::Failed, _)) | None => {
                    self.record_link_failed(&payment, "settlement_not_completed")
                        .await?;
                }
                Some(_) => continue,
            }
            resolved += 1;
        }
        Ok(resolved)
    }
}

/// A settling payment untouched this long is looked at by the background task.
const STALE_AFTER_MS: i64 = 60_000;

fn refused(offer: &Offer, error: &str, settlement: Option<SettleResponse>) -> LinkCharge {
    metrics::counter!("purser_link_payments_total", "result" => "refused").increment(1);
    LinkCharge::Refused {
        offer: offer.with_error(error),
        settlement,
    }
}

fn settled_answer(payment: &ReceivedPayment) -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some(payment.payer.clone()),
        transaction: payment.transaction.clone().unwrap_or_default(),
        network: payment.network.clone(),
        amount: Some(payment.amount.atomic().to_string()),
    }
}

fn patched(link: PaymentLink, patch: &LinkPatch, now: UnixMs) -> Result<PaymentLink, ServiceError> {
    let description = match &patch.description {
        Some(d) => multi_line("description", d, LINK_DESCRIPTION_MAX_CHARS)?,
        None => link.description.clone(),
    };
    let resource_content = match &patch.resource_content {
        Some(c) => Some(checked_content(c)?),
        None => link.resource_content.clone(),
    };
    let resource_url = match &patch.resource_url {
        Some(u) => Some(checked_url("resourceUrl", u)?),
        None => link.resource_url.clone(),
    };
    let webhook_url = match &patch.webhook_url {
        Some(u) => Some(checked_url("webhookUrl", u)?),
        None => link.webhook_url.clone(),
    };
    let expires_at = match patch.expires_at {
        Some(at) => checked_expiry(Some(at), now)?,
        None => link.expires_at,
    };
    let max_uses = match patch.max_uses {
        Some(max) => checked_max_uses(Some(max))?,
        None => link.max_uses,
    };
    Ok(PaymentLink {
        description,
        resource_content,
        resource_url,
        webhook_url,
        expires_at,
        max_uses,
        status: patch.status.unwrap_or(link.status),
        updated_at: now,
        ..link
    })
}
