//! Wallets: create, read, fund (sandbox), transfers, audit trail.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_types::{Currency, Secret, WalletId};

use super::changed;
use crate::AppState;
use crate::dto::{
    AuditPage, CreateWalletRequest, FundRequest, TransfersPage, WalletCreatedResponse,
    WalletResponse,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, IdemKey, PageQuery};

/// Creates a wallet. Open to anyone: the owner token in the answer, shown once,
/// is what makes the caller its owner.
#[utoipa::path(post, path = "/api/wallets", tag = "wallets",
    params(("Idempotency-Key" = String, Header, description = "Unique per intended wallet")),
    request_body = CreateWalletRequest,
    responses(
        (status = 201, body = WalletCreatedResponse),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "idempotency_conflict"),
    ))]
pub(crate) async fn create_wallet(
    State(app): State<AppState>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<CreateWalletRequest>,
) -> Result<Response, ApiError> {
    let currency = body.currency.unwrap_or(Currency::Usdc);
    let password = body.password.map(Secret::new);
    let created = app
        .purser
        .create_wallet_with_password(&body.name, currency, password.as_ref(), &key)
        .await?;
    let body = WalletCreatedResponse::from(created.value);
    Ok(changed(StatusCode::CREATED, body, created.replayed))
}

/// A wallet and its balances (owner or its agents).
#[utoipa::path(get, path = "/api/wallets/{walletId}", tag = "wallets",
    params(("walletId" = WalletId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = WalletResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_wallet(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(wallet): ApiPath<WalletId>,
) -> Result<Json<WalletResponse>, ApiError> {
    Ok(Json(app.purser.wallet(&principal, wallet).await?.into()))
}

/// Adds test USDC from the simulated on-ramp (owner; sandbox servers only).
#[utoipa::path(post, path = "/api/wallets/{walletId}/fund", tag = "wallets",
    params(("walletId" = WalletId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = FundRequest,
    responses(
        (status = 201, body = purser_types::Transfer),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden or sandbox_disabled"),
    ))]
pub(crate) async fn fund_wallet(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(wallet): ApiPath<WalletId>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<FundRequest>,
) -> Result<Response, ApiError> {
    let funded = app
        .purser
        .fund_wallet(&principal, wallet, body.amount, &key)
        .await?;
    Ok(changed(StatusCode::CREATED, funded.value, funded.replayed))
}

/// A wallet's ledger transfers, newest first (owner or its agents).
#[utoipa::path(get, path = "/api/wallets/{walletId}/transfers", tag = "wallets",
    params(("walletId" = WalletId, Path), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = TransfersPage), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_transfers(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(wallet): ApiPath<WalletId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<TransfersPage>, ApiError> {
    let page = query.page();
    let rows = app.purser.transfers(&principal, wallet, page).await?;
    let next_cursor = next_cursor(rows.len(), page.limit, rows.last().map(|(seq, _)| *seq));
    Ok(Json(TransfersPage {
        items: rows.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }))
}

/// The wallet's audit trail, newest first (owner).
#[utoipa::path(get, path = "/api/wallets/{walletId}/audit", tag = "audit",
    params(("walletId" = WalletId, Path), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_audit(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(wallet): ApiPath<WalletId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let page = query.page();
    let items = app.purser.audit(&principal, wallet, page).await?;
    let last = items.last().and_then(|r| i64::try_from(r.seq).ok());
    let next_cursor = next_cursor(items.len(), page.limit, last);
    Ok(Json(AuditPage { items, next_cursor }))
}

/// A cursor for the next page when this one was full.
fn next_cursor(returned: usize, limit: u32, last: Option<i64>) -> Option<i64> {
    let full = u32::try_from(returned).is_ok_and(|n| n >= limit.clamp(1, 500));
    if full { last } else { None }
}
