//! Bodies of the buyer-side x402 routes.

use purser_service::{X402Outcome, X402PayRequest, X402Signed};
use purser_types::{Approval, ApprovalId, MandateId, Reservation, Usdc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /api/payments/x402`: pay a server's PaymentRequired.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct X402PayBody {
    /// The `PAYMENT-REQUIRED` header value (base64), or the PaymentRequired JSON
    /// (a v1 402 body, or a decoded v2 header).
    pub payment_required: Value,
    /// The URL being paid for; its host must be allowed by the mandate.
    pub url: String,
    /// The request's HTTP method (default GET).
    pub method: Option<String>,
    /// Why, in the agent's words (1-500 characters).
    #[serde(alias = "why")]
    pub purpose: String,
    /// A mandate to use; otherwise the tightest eligible one.
    pub mandate_id: Option<MandateId>,
    /// The most to pay; a higher price is refused with `amount_above_max`.
    pub max_amount: Option<Usdc>,
    /// An approval the owner gave for this payment.
    pub approval_id: Option<ApprovalId>,
}

impl X402PayBody {
    /// The service's request.
    pub fn request(self) -> X402PayRequest {
        X402PayRequest {
            payment_required: self.payment_required,
            url: self.url,
            method: self.method.unwrap_or_else(|| "GET".into()),
            purpose: self.purpose,
            mandate: self.mandate_id,
            max_amount: self.max_amount,
            approval: self.approval_id,
        }
    }
}

/// A signed payment, or the approval to ask for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct X402PayResponse {
    /// `signed` or `approval_required`.
    pub result: String,
    /// Send this header (`PAYMENT-SIGNATURE` for v2, `X-PAYMENT` for v1)…
    pub header_name: Option<String>,
    /// …with this value when retrying the request.
    pub header_value: Option<String>,
    /// The PaymentPayload the header carries.
    pub payment_payload: Option<Value>,
    /// The reservation holding the funds; report the outcome against it.
    pub reservation: Option<Reservation>,
    /// The network the authorization is for.
    pub network: Option<String>,
    /// The payee address.
    pub pay_to: Option<String>,
    /// Unix seconds; the authorization is void from then on.
    pub valid_before: Option<i64>,
    /// When approval is required: the approval…
    pub approval: Option<Approval>,
    /// …and the URL to show your human.
    pub approval_url: Option<String>,
}

impl X402PayResponse {
    /// A signed payment.
    pub fn signed(signed: X402Signed) -> Self {
        X402PayResponse {
            result: "signed".into(),
            header_name: Some(signed.header_name.into()),
            header_value: Some(signed.header_value),
            payment_payload: Some(signed.payment_payload),
            reservation: Some(signed.reservation),
            network: Some(signed.network),
            pay_to: Some(signed.pay_to),
            valid_before: Some(signed.valid_before),
            approval: None,
            approval_url: None,
        }
    }

    /// The owner must approve first.
    pub fn approval(approval: Approval, url: String) -> Self {
        X402PayResponse {
            result: "approval_required".into(),
            header_name: None,
            header_value: None,
            payment_payload: None,
            reservation: None,
            network: None,
            pay_to: None,
            valid_before: None,
            approval: Some(approval),
            approval_url: Some(url),
        }
    }
}

/// `POST /api/payments/x402/{reservationId}/result`: how the paid request went.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct X402ResultBody {
    /// The server's `PAYMENT-RESPONSE` (base64) or its decoded JSON; absent when
    /// the request failed without one.
    pub payment_response: Option<Value>,
}

/// A signed payment as the chain left it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct X402ResultResponse {
    /// `signed` (still open), `settled` (committed) or `failed` (released).
    pub status: String,
    /// The reservation.
    pub reservation: Reservation,
    /// The settlement transaction, when known.
    pub tx_hash: Option<String>,
}

impl From<X402Outcome> for X402ResultResponse {
    fn from(outcome: X402Outcome) -> Self {
        X402ResultResponse {
            status: outcome.status.into(),
            reservation: outcome.reservation,
            tx_hash: outcome.tx_hash,
        }
    }
}
