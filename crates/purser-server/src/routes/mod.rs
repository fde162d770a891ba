//! The routes. Handlers are thin: extract, call the service, map the result.

pub(crate) mod agents;
pub(crate) mod dashboard;
pub(crate) mod facilitator;
pub(crate) mod links;
pub(crate) mod mandates;
pub(crate) mod payments;
pub(crate) mod system;
pub(crate) mod wallets;
pub(crate) mod x402;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The response header that marks a replayed idempotent request (as Stripe does).
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A JSON response for a state-changing request, marked when it is a replay.
pub(crate) fn changed<T: Serialize>(status: StatusCode, body: T, replayed: bool) -> Response {
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response.headers_mut().insert(
            HeaderName::from_static(REPLAYED_HEADER),
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Every documented route.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(system::healthz))
        .routes(routes!(wallets::create_wallet))
        .routes(routes!(wallets::get_wallet))
        .routes(routes!(wallets::fund_wallet))
        .routes(routes!(wallets::list_transfers))
        .routes(routes!(wallets::list_audit))
        .routes(routes!(agents::register_agent, agents::list_agents))
        .routes(routes!(agents::get_agent))
        .routes(routes!(agents::revoke_agent))
        .routes(routes!(agents::issue_token))
        .routes(routes!(agents::me))
        .routes(routes!(mandates::draft_mandate, mandates::list_mandates))
        .routes(routes!(mandates::eligible_mandates))
        .routes(routes!(mandates::get_mandate))
        .routes(routes!(mandates::signed_mandate))
        .routes(routes!(mandates::approve_mandate))
        .routes(routes!(mandates::reject_mandate))
        .routes(routes!(mandates::revoke_mandate))
        .routes(routes!(mandates::verify_mandate))
        .routes(routes!(payments::authorize))
        .routes(routes!(payments::get_reservation))
        .routes(routes!(payments::commit_reservation))
        .routes(routes!(payments::release_reservation))
        .routes(routes!(payments::list_approvals))
        .routes(routes!(payments::get_approval))
        .routes(routes!(payments::approve_approval))
        .routes(routes!(payments::deny_approval))
        .routes(routes!(payments::get_policy, payments::put_policy))
        .routes(routes!(payments::create_payout, payments::list_payouts))
        .routes(routes!(payments::get_payout))
        .routes(routes!(x402::pay))
        .routes(routes!(x402::report))
        .routes(routes!(facilitator::verify))
        .routes(routes!(facilitator::settle))
        .routes(routes!(facilitator::supported))
        .routes(routes!(links::create_link, links::list_links))
        .routes(routes!(links::start_refund, links::list_refunds))
        .routes(routes!(links::get_refund))
        .routes(routes!(links::cancel_refund))
        .routes(routes!(links::get_link, links::update_link))
        .routes(routes!(links::disable_link))
        .routes(routes!(links::link_payments))
        .routes(routes!(links::list_received))
        .routes(routes!(links::get_received))
        .routes(routes!(links::list_webhook_events))
        .routes(routes!(links::pay_link))
}
