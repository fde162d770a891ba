//! AgentCharge: payment links a merchant wallet is paid through, the payments it
//! received, the refunds it sends back, and the webhook events it is told about.

use serde::{Deserialize, Serialize};

use crate::ids::{
    AgentId, ApprovalId, PaymentLinkId, PayoutId, ReceivedPaymentId, RefundId, WalletId,
    WebhookEventId,
};
use crate::money::Usdc;
use crate::time::UnixMs;

/// Whether a link takes payments. A link past `expiresAt` or out of uses stays
/// `active` but refuses payment with its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// It takes payments.
    Active,
    /// Its merchant turned it off.
    Disabled,
}

impl LinkStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Active => "active",
            LinkStatus::Disabled => "disabled",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<LinkStatus> {
        [LinkStatus::Active, LinkStatus::Disabled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A payment link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PaymentLink {
    /// Its id.
    pub id: PaymentLinkId,
    /// The merchant wallet paid through it.
    pub wallet_id: WalletId,
    /// The agent that created it (none when its owner did).
    pub agent_id: Option<AgentId>,
    /// The price of one use.
    pub amount: Usdc,
    /// What is paid for, shown to payers.
    pub description: String,
    /// Text delivered to the payer once paid.
    pub resource_content: Option<String>,
    /// A URL delivered to the payer once paid.
    pub resource_url: Option<String>,
    /// After this it takes no payment.
    pub expires_at: Option<UnixMs>,
    /// How many payments it takes in all (none: no limit).
    pub max_uses: Option<u32>,
    /// Payments taken, counting one being settled right now.
    pub uses_count: u32,
    /// Whether it takes payments.
    pub status: LinkStatus,
    /// Where each payment is announced (HMAC-SHA256 signed).
    pub webhook_url: Option<String>,
    /// When it was created.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// Why a link takes no payment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkClosed {
    /// Its merchant disabled it.
    Disabled,
    /// `expiresAt` has passed.
    Expired,
    /// Every use was taken.
    Exhausted,
}

impl PaymentLink {
    /// Whether it takes a payment at `now`, and if not, why.
    pub fn check_payable(&self, now: UnixMs) -> Result<(), LinkClosed> {
        if self.status == LinkStatus::Disabled {
            return Err(LinkClosed::Disabled);
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(LinkClosed::Expired);
        }
        if self.max_uses.is_some_and(|max| self.uses_count >= max) {
            return Err(LinkClosed::Exhausted);
        }
        Ok(())
    }
}

/// A received payment's life: `settling → settled | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReceivedStatus {
    /// The link's use is taken and the payment is being settled.
    Settling,
    /// The money arrived.
    Settled,
    /// Settlement failed; the use was given back and nothing arrived.
    Failed,
}

impl ReceivedStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReceivedStatus::Settling => "settling",
            ReceivedStatus::Settled => "settled",
            ReceivedStatus::Failed => "failed",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<ReceivedStatus> {
        [Self::Settling, Self::Settled, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A payment received through a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReceivedPayment {
    /// Its id.
    pub id: ReceivedPaymentId,
    /// The link paid.
    pub link_id: PaymentLinkId,
    /// The merchant wallet.
    pub wallet_id: WalletId,
    /// How much.
    pub amount: Usdc,
    /// The x402 network it settled on (`purser:ledger`, `eip155:…`).
    pub network: String,
    /// The payer's address.
    pub payer: String,
    /// The EIP-3009 nonce of the payer's authorization.
    pub nonce: String,
    /// The settlement transaction (`ledger:…` on the internal rail).
    pub transaction: Option<String>,
    /// Where it stands.
    pub status: ReceivedStatus,
    /// How much of it is refunded or being refunded.
    pub refunded_amount: Usdc,
    /// When it arrived.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// A refund's life: `pending → settled | cancelled | expired | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Waiting for the owner to authorize it at its `refundUrl`.
    Pending,
    /// The money went back to the payer.
    Settled,
    /// The merchant cancelled it, or the owner refused it.
    Cancelled,
    /// The owner did not authorize it in time (24 hours).
    Expired,
    /// Authorized, but it could not be paid (e.g. the wallet lacked the funds).
    Failed,
}

impl RefundStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Settled => "settled",
            RefundStatus::Cancelled => "cancelled",
            RefundStatus::Expired => "expired",
            RefundStatus::Failed => "failed",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<RefundStatus> {
        [
            Self::Pending,
            Self::Settled,
            Self::Cancelled,
            Self::Expired,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether it has ended.
    pub const fn is_final(self) -> bool {
        !matches!(self, RefundStatus::Pending)
    }
}

/// A refund of (part of) a received payment, paid back to its payer as a payout
/// the owner authorizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// Its id.
    pub id: RefundId,
    /// The payment refunded.
    pub payment_id: ReceivedPaymentId,
    /// The merchant wallet that pays it.
    pub wallet_id: WalletId,
    /// The merchant's agent that started it.
    pub agent_id: AgentId,
    /// How much goes back.
    pub amount: Usdc,
    /// The payer's address it goes back to.
    pub to_address: String,
    /// Why, in the merchant's words.
    pub reason: Option<String>,
    /// The payout that carries it.
    pub payout_id: PayoutId,
    /// The owner's approval it waits for.
    pub approval_id: Option<ApprovalId>,
    /// Where it stands.
    pub status: RefundStatus,
    /// The settlement of its payout, once settled.
    pub settlement: Option<String>,
    /// When it was started.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// Where a webhook event's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet answered 2xx; retried with backoff.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Failed,
}

impl DeliveryStatus {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A webhook event waiting for (or done with) delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Its id, sent in `Purser-Event-Id` and in the body.
    pub id: WebhookEventId,
    /// The merchant wallet.
    pub wallet_id: WalletId,
    /// The link it is about.
    pub link_id: PaymentLinkId,
    /// Where it is delivered.
    pub url: String,
    /// `payment.received`, `refund.settled`, …
    pub event_type: String,
    /// The JSON body delivered.
    pub payload: String,
    /// Where delivery stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: UnixMs,
    /// What the last failed attempt saw.
    pub last_error: Option<String>,
    /// When it was raised.
    pub created_at: UnixMs,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> PaymentLink {
        PaymentLink {
            id: PaymentLinkId::from_bytes([1; 16]),
            wallet_id: WalletId::from_bytes([2; 16]),
            agent_id: None,
            amount: Usdc::from_atomic(10).unwrap(),
            description: "d".into(),
            resource_content: None,
            resource_url: None,
            expires_at: Some(UnixMs(1_000)),
            max_uses: Some(2),
            uses_count: 1,
            status: LinkStatus::Active,
            webhook_url: None,
            created_at: UnixMs(0),
            updated_at: UnixMs(0),
        }
    }

    #[test]
    fn a_link_is_payable_while_active_unexpired_and_with_uses_left() {
        assert_eq!(link().check_payable(UnixMs(999)), Ok(()));
        assert_eq!(
            link().check_payable(UnixMs(1_000)),
            Err(LinkClosed::Expired)
        );
        let used = PaymentLink {
            uses_count: 2,
            ..link()
        };
        assert_eq!(used.check_payable(UnixMs(0)), Err(LinkClosed::Exhausted));
        let off = PaymentLink {
            status: LinkStatus::Disabled,
            ..link()
        };
        assert_eq!(off.check_payable(UnixMs(0)), Err(LinkClosed::Disabled));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [RefundStatus::Pending, RefundStatus::Expired] {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            ReceivedStatus::parse("settled"),
            Some(ReceivedStatus::Settled)
        );
        assert_eq!(LinkStatus::parse("disabled"), Some(LinkStatus::Disabled));
        assert_eq!(DeliveryStatus::parse("nope"), None);
    }
}
