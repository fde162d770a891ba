//! AgentCharge over HTTP: payment links (create, list, get, update, disable),
//! paying one (`/pay/{linkId}`, an x402 resource), received payments, refunds
//! and webhook events.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use purser_gateway::payment_required;
use purser_service::{LinkCharge, Page};
use purser_types::x402::{HEADER_PAYMENT_RESPONSE, PAYMENT_HEADERS, encode_header};
use purser_types::{PaymentLinkId, ReceivedPaymentId, RefundId};

use super::changed;
use crate::AppState;
use crate::dto::{
    LinkCreateRequest, LinkDelivery, LinkResponse, LinkUpdateRequest, LinksList, ReceivedList,
    ReceivedQuery, RefundCreateRequest, RefundResponse, RefundsList, WebhookEventsList,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, IdemKey, PageQuery};

/// Creates a payment link on the caller's wallet (an agent, or the owner). Its
/// `payUrl` is an x402 resource: a payer's `purser fetch <payUrl>` pays it. With a
/// `webhookUrl`, the answer carries the `webhookSecret` that signs its webhooks
/// (only here). Idempotent by `Idempotency-Key`.
#[utoipa::path(post, path = "/api/payment-links", tag = "charge",
    params(("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = LinkCreateRequest,
    responses((status = 201, body = LinkResponse), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the key was used for another link")))]
pub(crate) async fn create_link(
    State(app): State<AppState>,
    Auth(principal): Auth,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<LinkCreateRequest>,
) -> Result<Response, ApiError> {
    let created = app
        .purser
        .create_link(&principal, &body.draft(), &key)
        .await?;
    let replayed = created.replayed;
    Ok(changed(
        StatusCode::CREATED,
        LinkResponse::from(created.value),
        replayed,
    ))
}

/// The caller's payment links, newest first (the owner: all of the wallet's; an
/// agent: its own).
#[utoipa::path(get, path = "/api/payment-links", tag = "charge",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = LinksList)))]
pub(crate) async fn list_links(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<LinksList>, ApiError> {
    let links = app.purser.links(&principal, query.page()).await?;
    Ok(Json(LinksList {
        items: links.into_iter().map(LinkResponse::from).collect(),
    }))
}

/// A payment link.
#[utoipa::path(get, path = "/api/payment-links/{linkId}", tag = "charge",
    params(("linkId" = PaymentLinkId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = LinkResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_link(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<PaymentLinkId>,
) -> Result<Json<LinkResponse>, ApiError> {
    Ok(Json(app.purser.link(&principal, id).await?.into()))
}

/// Changes a link: absent fields stay; `status` turns it off and on again;
/// `maxUses` cannot go below the uses taken. Idempotent by nature.
#[utoipa::path(patch, path = "/api/payment-links/{linkId}", tag = "charge",
    params(("linkId" = PaymentLinkId, Path)),
    security(("bearer" = [])),
    request_body = LinkUpdateRequest,
    responses((status = 200, body = LinkResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update_link(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<PaymentLinkId>,
    ApiJson(body): ApiJson<LinkUpdateRequest>,
) -> Result<Json<LinkResponse>, ApiError> {
    let view = app
        .purser
        .update_link(&principal, id, &body.patch())
        .await?;
    Ok(Json(view.into()))
}

/// Disables a link: it takes no more payments (`payment_link_disabled`).
#[utoipa::path(post, path = "/api/payment-links/{linkId}/disable", tag = "charge",
    params(("linkId" = PaymentLinkId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = LinkResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn disable_link(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<PaymentLinkId>,
) -> Result<Json<LinkResponse>, ApiError> {
    Ok(Json(app.purser.disable_link(&principal, id).await?.into()))
}

/// The payments a link received, newest first.
#[utoipa::path(get, path = "/api/payment-links/{linkId}/payments", tag = "charge",
    params(("linkId" = PaymentLinkId, Path), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ReceivedList), (status = 404, body = ErrorBody)))]
pub(crate) async fn link_payments(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<PaymentLinkId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ReceivedList>, ApiError> {
    let items = app
        .purser
        .received_payments(&principal, Some(id), query.page())
        .await?;
    Ok(Json(ReceivedList { items }))
}

/// The wallet's received payments, newest first (agents name a `linkId`).
#[utoipa::path(get, path = "/api/received-payments", tag = "charge",
    params(ReceivedQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ReceivedList)))]
pub(crate) async fn list_received(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ReceivedQuery>,
) -> Result<Json<ReceivedList>, ApiError> {
    let page = Page {
        limit: query.limit.unwrap_or(50),
        before: query.before,
    };
    let items = app
        .purser
        .received_payments(&principal, query.link_id, page)
        .await?;
    Ok(Json(ReceivedList { items }))
}

/// One received payment.
#[utoipa::path(get, path = "/api/received-payments/{paymentId}", tag = "charge",
    params(("paymentId" = ReceivedPaymentId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = purser_types::ReceivedPayment), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_received(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<ReceivedPaymentId>,
) -> Result<Json<purser_types::ReceivedPayment>, ApiError> {
    Ok(Json(app.purser.received_payment(&principal, id).await?))
}

/// The merchant's agent starts a refund of a received payment (all that is left
/// by default). It waits (`pending`) for the owner to authorize it at
/// `refundUrl` within 24 hours, then goes back to the payer as a payout.
#[utoipa::path(post, path = "/api/payment-links/refunds", tag = "charge",
    params(("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = RefundCreateRequest,
    responses((status = 201, body = RefundResponse),
        (status = 409, body = ErrorBody, description = "refund_exceeds_payment, or the payment is not settled")))]
pub(crate) async fn start_refund(
    State(app): State<AppState>,
    Auth(principal): Auth,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<RefundCreateRequest>,
) -> Result<Response, ApiError> {
    let started = app
        .purser
        .start_refund(&principal, &body.request(), &key)
        .await?;
    let replayed = started.replayed;
    Ok(changed(
        StatusCode::CREATED,
        RefundResponse::from(started.value),
        replayed,
    ))
}

/// The wallet's refunds, newest first (an agent: its own).
#[utoipa::path(get, path = "/api/payment-links/refunds", tag = "charge",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = RefundsList)))]
pub(crate) async fn list_refunds(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<RefundsList>, ApiError> {
    let refunds = app.purser.refunds(&principal, query.page()).await?;
    Ok(Json(RefundsList {
        items: refunds.into_iter().map(RefundResponse::from).collect(),
    }))
}

/// A refund, brought up to date.
#[utoipa::path(get, path = "/api/payment-links/refunds/{refundId}", tag = "charge",
    params(("refundId" = RefundId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RefundResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_refund(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<RefundId>,
) -> Result<Json<RefundResponse>, ApiError> {
    Ok(Json(app.purser.refund(&principal, id).await?.into()))
}

/// Withdraws a pending refund (`cancelled`): the owner can no longer authorize it.
#[utoipa::path(post, path = "/api/payment-links/refunds/{refundId}/cancel", tag = "charge",
    params(("refundId" = RefundId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RefundResponse), (status = 409, body = ErrorBody)))]
pub(crate) async fn cancel_refund(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<RefundId>,
) -> Result<Json<RefundResponse>, ApiError> {
    Ok(Json(app.purser.cancel_refund(&principal, id).await?.into()))
}

/// The wallet's webhook events and their delivery (owner), newest first.
#[utoipa::path(get, path = "/api/webhook-events", tag = "charge",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = WebhookEventsList), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_webhook_events(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<WebhookEventsList>, ApiError> {
    let items = app.purser.webhook_events(&principal, query.page()).await?;
    Ok(Json(WebhookEventsList { items }))
}

/// Pays a payment link: an x402 resource. Without a payment header, `402` with
/// `PAYMENT-REQUIRED` (v2) and the v1 body, offering the internal ledger rail
/// (and the server's chain, if any) to the merchant's wallet. With a valid
/// payment, `200` with what the link delivers and `PAYMENT-RESPONSE`. The same
/// payment presented again gets the same answer and is charged once. A link
/// disabled, expired or out of uses answers `410` and charges nothing.
#[utoipa::path(get, path = "/pay/{linkId}", tag = "charge",
    params(("linkId" = PaymentLinkId, Path)),
    responses(
        (status = 200, body = LinkDelivery, description = "paid; PAYMENT-RESPONSE carries the settlement"),
        (status = 402, description = "payment required (PAYMENT-REQUIRED header, v1 JSON body)"),
        (status = 410, body = ErrorBody, description = "payment_link_disabled, payment_link_expired or payment_link_exhausted"),
    ))]
pub(crate) async fn pay_link(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<PaymentLinkId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let payment = PAYMENT_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok());
    Ok(match app.purser.pay_link(id, payment).await? {
        LinkCharge::Required(offer) => payment_required(&offer, None),
        LinkCharge::Refused { offer, settlement } => {
            let answer = settlement
                .as_ref()
                .and_then(header_value)
                .map(|value| (HEADER_PAYMENT_RESPONSE, value));
            payment_required(&offer, answer)
        }
        LinkCharge::Paid {
            link,
            payment,
            settlement,
            version,
        } => {
            let delivery = LinkDelivery {
                payment_id: payment.id,
                link_id: link.id,
                description: link.description,
                amount: payment.amount,
                transaction: payment.transaction,
                resource_content: link.resource_content,
                resource_url: link.resource_url,
            };
            let mut response = (StatusCode::OK, Json(delivery)).into_response();
            if let Some(value) = header_value(&settlement) {
                response
                    .headers_mut()
                    .insert(version.response_header(), value);
            }
            response
        }
    })
}

fn header_value<T: serde::Serialize>(value: &T) -> Option<HeaderValue> {
    encode_header(value)
        .ok()
        .and_then(|text| HeaderValue::from_str(&text).ok())
}
