//! The x402 facilitator: `/facilitator/verify`, `/facilitator/settle`,
//! `/facilitator/supported`, in the reference's shapes. Point a resource server's
//! `HTTPFacilitatorClient({url: "<purser>/facilitator"})` here. An invalid payment
//! is `200` with `isValid: false` (or `success: false`) and the reference's reason.

use axum::Json;
use axum::extract::State;
use purser_types::x402::{SettleResponse, SupportedResponse, VerifyResponse};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;

/// Verifies an `exact` EIP-3009 payment: signature, recipient, exact amount, time
/// window (`validBefore ≥ now + 6 s`, `validAfter ≤ now`), nonce unused, balance,
/// simulation. Body: `{x402Version, paymentPayload, paymentRequirements}`.
#[utoipa::path(post, path = "/facilitator/verify", tag = "facilitator",
    request_body = Value,
    responses(
        (status = 200, body = Value, description = "VerifyResponse: {isValid, invalidReason?, invalidMessage?, payer?}"),
        (status = 409, body = ErrorBody, description = "chain_not_configured (a chain payment on a server without one)"),
    ))]
pub(crate) async fn verify(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(app.purser.facilitator_verify(&body).await?))
}

/// Settles a payment: verifies again, sends `transferWithAuthorization`, waits for
/// the receipt and checks its `Transfer`. Idempotent per (payer, nonce); a late
/// receipt answers `errorReason: settlement_pending` with the transaction hash.
#[utoipa::path(post, path = "/facilitator/settle", tag = "facilitator",
    request_body = Value,
    responses(
        (status = 200, body = Value, description = "SettleResponse: {success, errorReason?, payer?, transaction, network, amount?}"),
        (status = 409, body = ErrorBody, description = "chain_not_configured (a chain payment on a server without one)"),
    ))]
pub(crate) async fn settle(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<SettleResponse>, ApiError> {
    Ok(Json(app.purser.facilitator_settle(&body).await?))
}

/// What this facilitator settles: `exact` on the server's chain, if any, and on the
/// internal ledger rail `purser:ledger` (v2, and v1 where the network has a v1
/// name), each kind with `extra: {asset, name, version}`; and the relayer address
/// that sends settlements.
#[utoipa::path(get, path = "/facilitator/supported", tag = "facilitator",
    responses(
        (status = 200, body = Value, description = "SupportedResponse: {kinds, extensions, signers}"),
    ))]
pub(crate) async fn supported(State(app): State<AppState>) -> Json<SupportedResponse> {
    Json(app.purser.facilitator_supported())
}
