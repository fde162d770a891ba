//! The buyer side of x402: turn a PaymentRequired into a payment header through the
//! one authorization path, then report how the paid request went.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::{ServiceError, X402Answer};
use purser_types::ReservationId;
use purser_types::x402::{SettleResponse, decode_header};
use serde_json::Value;

use super::changed;
use crate::AppState;
use crate::dto::{X402PayBody, X402PayResponse, X402ResultBody, X402ResultResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, IdemKey, PaymentAuth};

/// Pays an x402 PaymentRequired. Chooses the requirement (`exact`, this server's
/// network, its USDC), authorizes it through the one path (payee host = the URL's
/// host, payee address = `payTo`) and only then signs an EIP-3009 authorization with
/// the wallet key. `201` with the header to send; `202` when the owner must approve
/// (show `approvalUrl`, retry with `approvalId`); otherwise the refusal's code.
#[utoipa::path(post, path = "/api/payments/x402", tag = "x402",
    params(("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = X402PayBody,
    responses(
        (status = 201, body = X402PayResponse, description = "signed"),
        (status = 202, body = X402PayResponse, description = "approval_required"),
        (status = 400, body = ErrorBody, description = "invalid_payment_required"),
        (status = 403, body = ErrorBody, description = "refused: the code says why"),
        (status = 409, body = ErrorBody, description = "chain_not_configured"),
        (status = 422, body = ErrorBody, description = "no_acceptable_requirement, amount_above_max, insufficient_funds"),
    ))]
pub(crate) async fn pay(
    State(app): State<AppState>,
    PaymentAuth(principal): PaymentAuth,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<X402PayBody>,
) -> Result<Response, ApiError> {
    let purser = &app.purser;
    let answer = purser.pay_x402(&principal, &body.request(), &key).await?;
    let (status, response) = match answer.value {
        X402Answer::Signed(signed) => (StatusCode::CREATED, X402PayResponse::signed(*signed)),
        X402Answer::ApprovalRequired(approval) => {
            let url = purser.approval_url(approval.id);
            (
                StatusCode::ACCEPTED,
                X402PayResponse::approval(approval, url),
            )
        }
    };
    Ok(changed(status, response, answer.replayed))
}

fn settle_response(value: &Value) -> Result<SettleResponse, ApiError> {
    let json = match value {
        Value::String(header) => decode_header(header)
            .map_err(|e| ServiceError::InvalidPaymentRequired(format!("paymentResponse: {e}")))?,
        other => other.clone(),
    };
    serde_json::from_value(json)
        .map_err(|e| ServiceError::InvalidPaymentRequired(format!("paymentResponse: {e}")).into())
}

/// Reports how the paid request went: the server's `PAYMENT-RESPONSE`, or nothing
/// when it failed. Purser then asks the chain: a used authorization commits the
/// reservation; a failed one is canceled on chain and its funds released. Safe to
/// repeat.
#[utoipa::path(post, path = "/api/payments/x402/{reservationId}/result", tag = "x402",
    params(("reservationId" = ReservationId, Path)),
    security(("bearer" = [])),
    request_body = X402ResultBody,
    responses(
        (status = 200, body = X402ResultResponse),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "chain_unavailable: retry; the payment stays reserved"),
    ))]
pub(crate) async fn report(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ReservationId>,
    ApiJson(body): ApiJson<X402ResultBody>,
) -> Result<Json<X402ResultResponse>, ApiError> {
    let response = body
        .payment_response
        .as_ref()
        .map(settle_response)
        .transpose()?;
    let outcome = app
        .purser
        .report_x402(&principal, id, response.as_ref())
        .await?;
    Ok(Json(outcome.into()))
}
