//! Intent mandates: draft (agent), approve/reject/revoke (owner), read, eligible,
//! export, verify.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::Purser;
use purser_types::{MandateId, MandateStatus, SignedMandate, Usdc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::changed;
use crate::AppState;
use crate::dto::{DraftMandateRequest, MandateResponse, MandatesList, VerifyResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, IdemKey};

/// `?status=&limit=&before=` on the mandate list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MandateQuery {
    /// Only mandates in this status now.
    status: Option<MandateStatus>,
    /// At most this many (1-500, default 50).
    limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    before: Option<i64>,
}

/// `?host=&amount=` on the eligible list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EligibleQuery {
    /// The payee's host (or URL).
    host: Option<String>,
    /// The payment's amount.
    #[param(value_type = String)]
    amount: Usdc,
}

/// An agent drafts a mandate. The answer's `signUrl` is the page where its owner
/// reviews the terms and signs once; until then nothing can be paid under it.
#[utoipa::path(post, path = "/api/mandates", tag = "mandates",
    params(("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = DraftMandateRequest,
    responses(
        (status = 201, body = MandateResponse),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "owners do not draft mandates"),
    ))]
pub(crate) async fn draft_mandate(
    State(app): State<AppState>,
    Auth(principal): Auth,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<DraftMandateRequest>,
) -> Result<Response, ApiError> {
    let drafted = app
        .purser
        .draft_mandate(&principal, &body.draft(), &key)
        .await?;
    Ok(changed(
        StatusCode::CREATED,
        MandateResponse::from(drafted.value),
        drafted.replayed,
    ))
}

/// Mandates: all of the wallet's for the owner, the agent's own for an agent.
#[utoipa::path(get, path = "/api/mandates", tag = "mandates",
    params(MandateQuery),
    security(("bearer" = [])),
    responses((status = 200, body = MandatesList)))]
pub(crate) async fn list_mandates(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<MandateQuery>,
) -> Result<Json<MandatesList>, ApiError> {
    let page = purser_service::Page {
        limit: query.limit.unwrap_or(50),
        before: query.before,
    };
    let views = app.purser.mandates(&principal, query.status, page).await?;
    let full = u32::try_from(views.len()).is_ok_and(|n| n >= page.limit.clamp(1, 500));
    let next_cursor = views
        .last()
        .filter(|_| full)
        .map(|v| v.mandate.created_at.millis());
    Ok(Json(MandatesList {
        items: views.into_iter().map(MandateResponse::from).collect(),
        next_cursor,
    }))
}

/// The agent's mandates that could cover a payment of `amount` to `host` right now,
/// tightest fit first.
#[utoipa::path(get, path = "/api/mandates/eligible", tag = "mandates",
    params(EligibleQuery),
    security(("bearer" = [])),
    responses((status = 200, body = MandatesList), (status = 403, body = ErrorBody)))]
pub(crate) async fn eligible_mandates(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<EligibleQuery>,
) -> Result<Json<MandatesList>, ApiError> {
    let views = app
        .purser
        .eligible_mandates(&principal, query.host.as_deref(), query.amount)
        .await?;
    Ok(Json(MandatesList {
        items: views.into_iter().map(MandateResponse::from).collect(),
        next_cursor: None,
    }))
}

/// One mandate, with `spentAmount`, `pendingSpentAmount` and `remainingAmount` now.
#[utoipa::path(get, path = "/api/mandates/{mandateId}", tag = "mandates",
    params(("mandateId" = MandateId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = MandateResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_mandate(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<MandateId>,
) -> Result<Json<MandateResponse>, ApiError> {
    Ok(Json(app.purser.mandate(&principal, id).await?.into()))
}

/// The signed mandate in the form anyone can verify offline (`purser mandate verify`).
#[utoipa::path(get, path = "/api/mandates/{mandateId}/signed", tag = "mandates",
    params(("mandateId" = MandateId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SignedMandate), (status = 409, body = ErrorBody, description = "not signed")))]
pub(crate) async fn signed_mandate(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<MandateId>,
) -> Result<Json<SignedMandate>, ApiError> {
    Ok(Json(app.purser.signed_mandate(&principal, id).await?))
}

async fn decide(
    app: &AppState,
    principal: &purser_service::Principal,
    id: MandateId,
    key: &purser_service::IdempotencyKey,
    decision: Decision,
) -> Result<Response, ApiError> {
    let purser: &Purser = &app.purser;
    let result = match decision {
        Decision::Approve => purser.approve_mandate(principal, id, key).await,
        Decision::Reject => purser.reject_mandate(principal, id, key).await,
        Decision::Revoke => purser.revoke_mandate(principal, id, key).await,
    }?;
    Ok(changed(
        StatusCode::OK,
        MandateResponse::from(result.value),
        result.replayed,
    ))
}

#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Reject,
    Revoke,
}

/// The owner signs the mandate (EIP-712, with the wallet's key). Agents get 403.
#[utoipa::path(post, path = "/api/mandates/{mandateId}/approve", tag = "mandates",
    params(("mandateId" = MandateId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MandateResponse),
        (status = 403, body = ErrorBody, description = "an agent can never approve"),
        (status = 409, body = ErrorBody, description = "invalid_state"),
    ))]
pub(crate) async fn approve_mandate(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<MandateId>,
    IdemKey(key): IdemKey,
) -> Result<Response, ApiError> {
    decide(&app, &principal, id, &key, Decision::Approve).await
}

/// The owner rejects a pending mandate.
#[utoipa::path(post, path = "/api/mandates/{mandateId}/reject", tag = "mandates",
    params(("mandateId" = MandateId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = MandateResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn reject_mandate(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<MandateId>,
    IdemKey(key): IdemKey,
) -> Result<Response, ApiError> {
    decide(&app, &principal, id, &key, Decision::Reject).await
}

/// The owner revokes a signed mandate: no payment can use it from now on.
#[utoipa::path(post, path = "/api/mandates/{mandateId}/revoke", tag = "mandates",
    params(("mandateId" = MandateId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = MandateResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn revoke_mandate(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<MandateId>,
    IdemKey(key): IdemKey,
) -> Result<Response, ApiError> {
    decide(&app, &principal, id, &key, Decision::Revoke).await
}

/// Verifies a signed mandate offline: its hash matches its terms and the wallet's
/// key signed it. Needs no authentication: this is what payees call.
#[utoipa::path(post, path = "/api/mandates/verify", tag = "mandates",
    request_body = SignedMandate,
    responses((status = 200, body = VerifyResponse), (status = 422, body = ErrorBody, description = "invalid_signature")))]
pub(crate) async fn verify_mandate(
    ApiJson(signed): ApiJson<SignedMandate>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let signer = Purser::verify_mandate(&signed)?;
    Ok(Json(VerifyResponse {
        valid: true,
        signer,
        mandate_hash: signed.mandate_hash,
    }))
}
