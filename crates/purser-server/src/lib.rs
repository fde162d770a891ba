//! Purser's HTTP front end: the only crate that knows HTTP.
//!
//! [`router`] builds the axum application: the JSON API under `/api`, `/healthz`,
//! `/metrics` (Prometheus), `/openapi.json` (generated from the handlers' own
//! annotations) and `/.well-known/jwks.json`. [`serve`] runs it until a shutdown
//! signal, then stops accepting connections, lets in-flight requests finish, and
//! only then closes the store, which commits every write already queued.

mod dto;
mod error;
mod extract;
mod openapi;
mod routes;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use purser_service::Purser;
use purser_types::ErrorCode;
use tokio::net::TcpListener;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use dto::*;
pub use error::{ApiError, ErrorBody, ErrorDetail, status_of};
pub use extract::IDEMPOTENCY_KEY_HEADER;
pub use routes::REPLAYED_HEADER;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long a request may take before it is answered with `timeout`.
    pub request_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests before giving up on them.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 30_000,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    purser: Purser,
    metrics: PrometheusHandle,
    openapi: Arc<utoipa::openapi::OpenApi>,
}

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        10.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("purser_store_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                });
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => handle,
                // Another recorder is installed (a test harness): keep a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The OpenAPI document of the API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes::api().into_openapi()
}

/// Builds the application.
pub fn router(purser: Purser, config: &ServerConfig) -> Router {
    let (api, document) = routes::api().split_for_parts();
    let state = AppState {
        purser,
        metrics: metrics_handle(),
        openapi: Arc::new(document),
    };
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = Duration::from_millis(config.request_timeout_ms);
    api.route("/metrics", get(routes::system::metrics))
        .route("/openapi.json", get(routes::system::openapi))
        .route("/skill.md", get(routes::system::skill))
        .route("/.well-known/jwks.json", get(routes::system::jwks))
        .merge(routes::dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), durable_answers))
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| internal_error()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    // Method, path and request id only: headers and query strings can
                    // carry secrets and never reach the log.
                    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path(),
                        request_id = request_id.unwrap_or("-"))
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

fn internal_error() -> Response {
    ApiError::new(
        ErrorCode::InternalError,
        "an internal error occurred; it has been logged",
    )
    .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}

/// Bounds each request's time. A write already handed to the store still commits
/// when its request times out; the client's retry with the same idempotency key
/// then gets the committed result.
async fn deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::Timeout,
            "the request took too long; retry with the same Idempotency-Key",
        )
        .into_response(),
    }
}

/// Holds every answer until what its handler could have read is durable. On SQLite
/// a commit is visible a moment before the WAL flush behind it; a write's own
/// answer already waited for that flush, and this closes the same window for reads
/// (a `GET` must not report a payment a power cut could still undo). Costs nothing
/// when no commit is in flight.
async fn durable_answers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match state.purser.store().settled().await {
        Ok(()) => response,
        Err(error) => {
            tracing::error!(%error, "an answer could not be vouched for");
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the server cannot confirm its storage is durable; retry later",
            )
            .into_response()
        }
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    metrics::gauge!("purser_http_requests_in_flight").increment(1.0);
    let response = next.run(request).await;
    metrics::gauge!("purser_http_requests_in_flight").decrement(1.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!("purser_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("purser_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Serves until `shutdown` resolves, then drains: no new connections, in-flight
/// requests finish (up to the grace period), and the store commits what is queued.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    purser: Purser,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let result = serve_draining(listener, app, grace, shutdown).await;
    purser.store().close().await;
    tracing::info!("stopped");
    result
}

/// Serves `app` until `shutdown` resolves, then stops accepting connections and
/// lets in-flight requests finish for up to `grace` (the Purser server and the
/// gateway both stop this way).
pub async fn serve_draining(
    listener: TcpListener,
    app: Router,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::select! {
        result = server => result,
        () = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_ms = grace.as_millis(), "in-flight requests outlived the grace period");
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
