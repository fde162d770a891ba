//! Health, metrics, keys and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::dto::Health;

/// Liveness and readiness: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn healthz(State(app): State<AppState>) -> Response {
    let store = app.purser.store();
    let database_ok = store.ping().await.is_ok();
    let health = Health {
        status: if database_ok { "ok" } else { "unavailable" }.into(),
        database: if database_ok { "ok" } else { "unavailable" }.into(),
        backend: store.backend().to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    app.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// The public keys that verify agent JWTs (RFC 7517).
pub(crate) async fn jwks(State(app): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(json!({ "keys": app.purser.jwks() })),
    )
        .into_response()
}

/// The agent skill (`skills/purser/SKILL.md`), naming this server: what an agent
/// reads to learn to pay with Purser.
pub(crate) async fn skill(State(app): State<AppState>) -> Response {
    const SKILL: &str = include_str!("../../../../skills/purser/SKILL.md");
    const DEFAULT_SERVER: &str = "http://127.0.0.1:8402";
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        SKILL.replace(DEFAULT_SERVER, app.purser.public_url()),
    )
        .into_response()
}

/// The OpenAPI 3 document, generated from the code.
pub(crate) async fn openapi(State(app): State<AppState>) -> Response {
    Json(app.openapi.as_ref()).into_response()
}
