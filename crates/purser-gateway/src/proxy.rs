//! `purser gateway`'s reverse proxy: every request goes to the upstream with its
//! method, path, query, headers and body (streamed both ways), bounded in time;
//! the paywall in front decides what must be paid first.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Request, Response, StatusCode, header};
use axum::routing::get;
use futures_util::TryStreamExt;
use tower::ServiceBuilder;
use tower_http::body::Limited;
use tower_http::limit::RequestBodyLimitLayer;

use crate::paywall::{Paywall, error_response};

/// Why the upstream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Not an http(s) base URL.
    #[error("the upstream {0:?} is not an http(s) URL")]
    BadUrl(String),
    /// The HTTP client could not be built.
    #[error("cannot build the upstream client: {0}")]
    Client(String),
}

/// The API behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// Headers that belong to one hop, never forwarded (RFC 9110 §7.6.1), and `Host`,
/// which is the upstream's own.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in HOP_BY_HOP.iter().chain([&header::HOST, &header::TRAILER]) {
        out.remove(name);
    }
    out
}

impl Upstream {
    /// The upstream at `base_url`; a call (until its answer's body ends) may take
    /// up to `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Upstream, ProxyError> {
        let parsed = url::Url::parse(base_url).map_err(|_| ProxyError::BadUrl(base_url.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ProxyError::BadUrl(base_url.into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProxyError::Client(e.to_string()))?;
        Ok(Upstream {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// Forwards one request and streams the answer back; 502 when the upstream
    /// cannot be reached, 504 when it is too slow.
    pub async fn forward(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", self.base);
        let mut outgoing = self
            .http
            .request(parts.method.clone(), url)
            .headers(forwardable(&parts.headers));
        if !matches!(parts.method.as_str(), "GET" | "HEAD") {
            outgoing = outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream()));
        }
        let answer = match outgoing.send().await {
            Ok(answer) => answer,
            Err(e) if e.is_timeout() => {
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "the service did not answer in time",
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the upstream cannot be reached");
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unavailable",
                    "the service cannot be reached",
                );
            }
        };
        let mut response = Response::new(Body::empty());
        *response.status_mut() = answer.status();
        *response.headers_mut() = forwardable(answer.headers());
        *response.body_mut() = Body::from_stream(answer.bytes_stream().map_err(axum::Error::new));
        response
    }
}

/// The whole gateway: `/healthz`, then everything else through the paywall to the
/// upstream, with request bodies bounded to `max_body_bytes` (413 beyond).
pub fn gateway_router(paywall: &Paywall, upstream: Upstream, max_body_bytes: usize) -> Router {
    let proxied = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .map_request(|request: Request<Limited<Body>>| request.map(Body::new))
        .layer(paywall.layer())
        .service_fn(move |request: Request<Body>| {
            let upstream = upstream.clone();
            async move { Ok::<_, std::convert::Infallible>(upstream.forward(request).await) }
        });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .fallback_service(proxied)
}
