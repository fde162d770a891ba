//! Bodies of the AgentCharge routes: payment links, received payments, refunds
//! and webhook events.

use purser_service::{LinkDraft, LinkPatch, LinkView, RefundRequest, RefundView};
use purser_types::{
    LinkStatus, PaymentLink, PaymentLinkId, ReceivedPayment, ReceivedPaymentId, Refund, UnixMs,
    Usdc, WebhookEvent,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/payment-links`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkCreateRequest {
    /// The price of one use, in USDC (`"0.25"`).
    pub amount: Usdc,
    /// What is paid for, shown to payers (1-1000 characters).
    pub description: String,
    /// Text delivered to the payer once paid (at most 32 KiB).
    pub resource_content: Option<String>,
    /// A URL delivered to the payer once paid.
    pub resource_url: Option<String>,
    /// After this it takes no payment.
    pub expires_at: Option<UnixMs>,
    /// How many payments it takes in all (`1` charges one agent once).
    pub max_uses: Option<u32>,
    /// Where each payment and refund is announced, signed with `webhookSecret`.
    pub webhook_url: Option<String>,
}

impl LinkCreateRequest {
    /// The service's draft.
    pub fn draft(&self) -> LinkDraft {
        LinkDraft {
            amount: self.amount,
            description: self.description.clone(),
            resource_content: self.resource_content.clone(),
            resource_url: self.resource_url.clone(),
            expires_at: self.expires_at,
            max_uses: self.max_uses,
            webhook_url: self.webhook_url.clone(),
        }
    }
}

/// `PATCH /api/payment-links/{linkId}`: absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkUpdateRequest {
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
    /// Replace the webhook signing secret; the new one is in this answer only.
    #[serde(default)]
    pub rotate_webhook_secret: bool,
}

impl LinkUpdateRequest {
    /// The service's patch.
    pub fn patch(&self) -> LinkPatch {
        LinkPatch {
            description: self.description.clone(),
            resource_content: self.resource_content.clone(),
            resource_url: self.resource_url.clone(),
            expires_at: self.expires_at,
            max_uses: self.max_uses,
            webhook_url: self.webhook_url.clone(),
            status: self.status,
            rotate_webhook_secret: self.rotate_webhook_secret,
        }
    }
}

/// A payment link and where it is paid.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkResponse {
    /// The link.
    #[serde(flatten)]
    pub link: PaymentLink,
    /// Payers pay here: an x402 resource (`purser fetch <payUrl>`).
    pub pay_url: String,
    /// The webhook signing secret: in the answer that created (or rotated) it only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

impl From<LinkView> for LinkResponse {
    fn from(view: LinkView) -> LinkResponse {
        LinkResponse {
            webhook_secret: view.webhook_secret.map(|s| s.expose().clone()),
            link: view.link,
            pay_url: view.pay_url,
        }
    }
}

/// A list of payment links, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinksList {
    /// The links.
    pub items: Vec<LinkResponse>,
}

/// What a paid link delivers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkDelivery {
    /// The payment's id (the merchant's received-payment record).
    pub payment_id: ReceivedPaymentId,
    /// The link paid.
    pub link_id: PaymentLinkId,
    /// What was paid for.
    pub description: String,
    /// How much.
    pub amount: Usdc,
    /// The settlement transaction (`ledger:…` on the internal rail).
    pub transaction: Option<String>,
    /// The content the link delivers.
    pub resource_content: Option<String>,
    /// The URL the link delivers.
    pub resource_url: Option<String>,
}

/// A list of received payments.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceivedList {
    /// The payments, newest first.
    pub items: Vec<ReceivedPayment>,
}

/// `?linkId=` on the received-payments listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedQuery {
    /// Only the payments of this link (required for agents).
    pub link_id: Option<PaymentLinkId>,
    /// At most this many items (1-500, default 50).
    pub limit: Option<u32>,
    /// The `createdAt` (Unix ms) of the last item of the previous page.
    pub before: Option<i64>,
}

/// `POST /api/payment-links/refunds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundCreateRequest {
    /// The received payment to refund.
    pub payment_id: ReceivedPaymentId,
    /// How much (default: all that is left to refund).
    pub amount: Option<Usdc>,
    /// Why, for the owner and the payer (at most 500 characters).
    pub reason: Option<String>,
}

impl RefundCreateRequest {
    /// The service's request.
    pub fn request(&self) -> RefundRequest {
        RefundRequest {
            payment_id: self.payment_id,
            amount: self.amount,
            reason: self.reason.clone(),
        }
    }
}

/// A refund and where its owner authorizes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponse {
    /// The refund.
    #[serde(flatten)]
    pub refund: Refund,
    /// Show this URL to your human while the refund is `pending`: they authorize it there.
    pub refund_url: Option<String>,
}

impl From<RefundView> for RefundResponse {
    fn from(view: RefundView) -> RefundResponse {
        RefundResponse {
            refund: view.refund,
            refund_url: view.refund_url,
        }
    }
}

/// A list of refunds, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundsList {
    /// The refunds.
    pub items: Vec<RefundResponse>,
}

/// A list of webhook events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEventsList {
    /// The events.
    pub items: Vec<WebhookEvent>,
}
