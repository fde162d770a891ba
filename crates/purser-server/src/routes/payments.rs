//! The authorization path over HTTP: authorize, commit and release reservations;
//! the owner's approvals and policy; payouts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::{Page, Purser};
use purser_types::{
    Approval, ApprovalId, Payout, PayoutId, Reservation, ReservationId, WalletPolicy,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::changed;
use crate::AppState;
use crate::dto::{
    ApprovalResponse, ApprovalsList, AuthorizationResponse, AuthorizeRequest, CommitRequest,
    PayoutCreateRequest, PayoutResponse, PayoutsList, ReleaseRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, IdemKey, PageQuery, PaymentAuth};

/// Reserves funds for one payment through the one authorization path. `201` with the
/// reservation; `202` when the owner must approve (show them `approvalUrl`, then
/// retry with `approvalId`); otherwise the refusal's code (`mandate_budget_exceeded`,
/// `host_not_allowed`, `policy_denied`, …).
#[utoipa::path(post, path = "/api/payments/authorize", tag = "payments",
    params(("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = AuthorizeRequest,
    responses(
        (status = 201, body = AuthorizationResponse, description = "reserved"),
        (status = 202, body = AuthorizationResponse, description = "approval_required"),
        (status = 403, body = ErrorBody, description = "refused: the code says why"),
        (status = 422, body = ErrorBody, description = "insufficient_funds"),
    ))]
pub(crate) async fn authorize(
    State(app): State<AppState>,
    PaymentAuth(principal): PaymentAuth,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<AuthorizeRequest>,
) -> Result<Response, ApiError> {
    let purser: &Purser = &app.purser;
    let authorization = purser.authorize(&principal, &body.intent(), &key).await?;
    let replayed = authorization.replayed;
    let response = AuthorizationResponse::from_authorization(authorization.value, |id| {
        purser.approval_url(id)
    })?;
    let status = if response.reservation.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok(changed(status, response, replayed))
}

/// A reservation of the caller's wallet.
#[utoipa::path(get, path = "/api/reservations/{reservationId}", tag = "payments",
    params(("reservationId" = ReservationId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Reservation), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_reservation(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ReservationId>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(app.purser.reservation(&principal, id).await?))
}

/// Marks a held payment as made. Without `settlement`, the payee must be a wallet on
/// this server and is paid on the ledger now — unless the agent or mandate was
/// revoked since the hold, in which case the funds are released (status `released`).
#[utoipa::path(post, path = "/api/reservations/{reservationId}/commit", tag = "payments",
    params(("reservationId" = ReservationId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = CommitRequest,
    responses((status = 200, body = Reservation), (status = 409, body = ErrorBody, description = "not held")))]
pub(crate) async fn commit_reservation(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ReservationId>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<CommitRequest>,
) -> Result<Response, ApiError> {
    let committed = app
        .purser
        .commit_reservation(&principal, id, body.settlement, &key)
        .await?;
    Ok(changed(StatusCode::OK, committed.value, committed.replayed))
}

/// Gives a held payment's funds back: it did not happen.
#[utoipa::path(post, path = "/api/reservations/{reservationId}/release", tag = "payments",
    params(("reservationId" = ReservationId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = ReleaseRequest,
    responses((status = 200, body = Reservation), (status = 409, body = ErrorBody, description = "not held")))]
pub(crate) async fn release_reservation(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ReservationId>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<ReleaseRequest>,
) -> Result<Response, ApiError> {
    let released = app
        .purser
        .release_reservation(&principal, id, &body.reason, &key)
        .await?;
    Ok(changed(StatusCode::OK, released.value, released.replayed))
}

/// `?pending=true` for the queue of approvals still to decide.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ApprovalsQuery {
    /// Only approvals waiting for a decision.
    pending: Option<bool>,
    /// At most this many (1-500, default 50).
    limit: Option<u32>,
}

fn approval_response(purser: &Purser, approval: Approval) -> ApprovalResponse {
    let status = approval.status_at(purser.now());
    let approval_url = purser.approval_url(approval.id);
    ApprovalResponse {
        approval: Approval { status, ..approval },
        approval_url,
    }
}

/// The owner's per-payment approvals (the V1 queue).
#[utoipa::path(get, path = "/api/approvals", tag = "approvals",
    params(ApprovalsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ApprovalsList), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_approvals(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ApprovalsQuery>,
) -> Result<Json<ApprovalsList>, ApiError> {
    let page = Page {
        limit: query.limit.unwrap_or(50),
        before: None,
    };
    let approvals = app
        .purser
        .approvals(&principal, query.pending.unwrap_or(false), page)
        .await?;
    Ok(Json(ApprovalsList {
        items: approvals
            .into_iter()
            .map(|a| approval_response(&app.purser, a))
            .collect(),
    }))
}

/// One approval: for the owner, or the agent that asked.
#[utoipa::path(get, path = "/api/approvals/{approvalId}", tag = "approvals",
    params(("approvalId" = ApprovalId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ApprovalResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_approval(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<ApprovalResponse>, ApiError> {
    let approval = app.purser.approval(&principal, id).await?;
    Ok(Json(approval_response(&app.purser, approval)))
}

async fn decide_approval(
    app: &AppState,
    request: (
        purser_service::Principal,
        ApprovalId,
        purser_service::IdempotencyKey,
    ),
    approve: bool,
) -> Result<Response, ApiError> {
    let (principal, id, key) = request;
    let decided = app
        .purser
        .decide_approval(&principal, id, approve, &key)
        .await?;
    Ok(changed(
        StatusCode::OK,
        approval_response(&app.purser, decided.value),
        decided.replayed,
    ))
}

/// The owner approves one payment; the agent may then retry with `approvalId` (a
/// payout waiting for it goes ahead at once).
#[utoipa::path(post, path = "/api/approvals/{approvalId}/approve", tag = "approvals",
    params(("approvalId" = ApprovalId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = ApprovalResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn approve_approval(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ApprovalId>,
    IdemKey(key): IdemKey,
) -> Result<Response, ApiError> {
    decide_approval(&app, (principal, id, key), true).await
}

/// The owner denies one payment.
#[utoipa::path(post, path = "/api/approvals/{approvalId}/deny", tag = "approvals",
    params(("approvalId" = ApprovalId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = ApprovalResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn deny_approval(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ApprovalId>,
    IdemKey(key): IdemKey,
) -> Result<Response, ApiError> {
    decide_approval(&app, (principal, id, key), false).await
}

/// The wallet's policy (owner only).
#[utoipa::path(get, path = "/api/policy", tag = "approvals",
    security(("bearer" = [])),
    responses((status = 200, body = WalletPolicy), (status = 403, body = ErrorBody)))]
pub(crate) async fn get_policy(
    State(app): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<WalletPolicy>, ApiError> {
    Ok(Json(app.purser.policy(&principal).await?))
}

/// Replaces the wallet's policy (owner only). On top of every mandate; deny wins.
#[utoipa::path(put, path = "/api/policy", tag = "approvals",
    params(("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = WalletPolicy,
    responses((status = 200, body = WalletPolicy), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_policy(
    State(app): State<AppState>,
    Auth(principal): Auth,
    IdemKey(key): IdemKey,
    ApiJson(policy): ApiJson<WalletPolicy>,
) -> Result<Response, ApiError> {
    let set = app.purser.set_policy(&principal, &policy, &key).await?;
    Ok(changed(StatusCode::OK, set.value, set.replayed))
}

fn payout_response(purser: &Purser, payout: Payout) -> PayoutResponse {
    let waiting = payout.status == purser_types::PayoutStatus::PendingAuthorization;
    let approval_url = payout
        .approval_id
        .filter(|_| waiting)
        .map(|id| purser.approval_url(id));
    PayoutResponse {
        payout,
        approval_url,
    }
}

/// An agent pays out to an address. Idempotent by `payoutId`. On a server with a
/// chain it is sent on chain (an EIP-3009 transfer signed by the wallet, sent by
/// the relayer) and answers `succeeded` with the transaction hash as `settlement`,
/// `failed` (`failureReason: chain_transfer_failed`, funds released), or
/// `authorized` while the transaction is unmined (poll `GET /api/payouts/{id}`).
/// Without a chain, to a wallet on this server it settles at once on the ledger,
/// and elsewhere it stays `authorized`. With no covering mandate it waits for the
/// owner (`pending_authorization`, with `approvalUrl`).
#[utoipa::path(post, path = "/api/payouts", tag = "payments",
    security(("bearer" = [])),
    request_body = PayoutCreateRequest,
    responses(
        (status = 201, body = PayoutResponse),
        (status = 403, body = ErrorBody, description = "refused: the code says why"),
        (status = 409, body = ErrorBody, description = "the payoutId was used for another payout"),
    ))]
pub(crate) async fn create_payout(
    State(app): State<AppState>,
    PaymentAuth(principal): PaymentAuth,
    ApiJson(body): ApiJson<PayoutCreateRequest>,
) -> Result<Response, ApiError> {
    let payout = app
        .purser
        .request_payout(&principal, &body.request())
        .await?;
    Ok(changed(
        StatusCode::CREATED,
        payout_response(&app.purser, payout.value),
        payout.replayed,
    ))
}

/// A payout's status.
#[utoipa::path(get, path = "/api/payouts/{payoutId}", tag = "payments",
    params(("payoutId" = PayoutId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PayoutResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_payout(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<PayoutId>,
) -> Result<Json<PayoutResponse>, ApiError> {
    let payout = app.purser.payout(&principal, &id).await?;
    Ok(Json(payout_response(&app.purser, payout)))
}

/// The wallet's payouts (owner), newest first.
#[utoipa::path(get, path = "/api/payouts", tag = "payments",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = PayoutsList), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_payouts(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PayoutsList>, ApiError> {
    let payouts = app.purser.payouts(&principal, None, query.page()).await?;
    Ok(Json(PayoutsList {
        items: payouts
            .into_iter()
            .map(|p| payout_response(&app.purser, p))
            .collect(),
    }))
}
