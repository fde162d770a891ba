//! The paywall: x402 in front of any axum/tower service. A request to a priced
//! route without payment gets 402 with `PAYMENT-REQUIRED` (v2) and the v1 JSON
//! body; a paid one is verified by the facilitator, served, and settled only when
//! the service answered 2xx — a failed or timed-out call is never charged. The
//! settlement comes back in `PAYMENT-RESPONSE` (v1: `X-PAYMENT-RESPONSE`) and
//! the body streams through. It also answers `GET /skill.md` and `/skill.json`.
//!
//! POSTs to the endpoint of an MCP server with priced tools go to [`crate::mcp`]:
//! there the paywall stands at the JSON-RPC level, with the same offers,
//! facilitator calls and in-flight claims.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use purser_gateway::{GatewayConfig, Paywall, PaywallOptions};
//! let config = GatewayConfig::parse(&std::fs::read_to_string("monetize.toml")?)?;
//! let paywall = Paywall::connect(config, "http://127.0.0.1:8080/facilitator", PaywallOptions::default()).await?;
//! let app: axum::Router = axum::Router::new()
//!     .route("/api/query", axum::routing::post(|| async { "42" }))
//!     .layer(paywall.layer());
//! # let _ = app; Ok(()) }
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use purser_types::x402::{
    HEADER_PAYMENT_REQUIRED, PAYMENT_HEADERS, PaymentPayload, Reason, SettleResponse, Version,
    encode_header,
};
use serde_json::json;
use tower::{Layer, Service};

use crate::config::{GatewayConfig, PricedTool};
use crate::facilitator::{FacilitatorClient, FacilitatorError};
use crate::rails::{Offer, Rail, chosen, offer, rails_from_supported, tool_offer};
use crate::skill::{price_list, skill_md};

/// How the paywall behaves, beyond its config file.
#[derive(Debug, Clone)]
pub struct PaywallOptions {
    /// The public base URL (`https://api.example.com`); otherwise `http://` and the
    /// request's `Host`.
    pub public_url: Option<String>,
    /// How long the service may take to answer a paid call; past it the call
    /// answers 504 and nothing is charged.
    pub timeout: Duration,
    /// How long a payment for a call may take (`maxTimeoutSeconds`).
    pub payment_timeout_secs: u64,
    /// How long one facilitator call may take.
    pub facilitator_timeout: Duration,
}

impl Default for PaywallOptions {
    fn default() -> PaywallOptions {
        PaywallOptions {
            public_url: None,
            timeout: Duration::from_secs(30),
            payment_timeout_secs: 60,
            facilitator_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a paywall could not start.
#[derive(Debug, thiserror::Error)]
pub enum PaywallError {
    /// The facilitator could not be asked what it settles.
    #[error(transparent)]
    Facilitator(#[from] FacilitatorError),
    /// It settles nothing the gateway can price.
    #[error(
        "the facilitator at {0} offers no exact USDC network that names its asset (Purser's facilitator does)"
    )]
    NoRails(String),
}

/// The paywall; cheap to clone.
#[derive(Debug, Clone)]
pub struct Paywall {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: GatewayConfig,
    rails: Vec<Rail>,
    facilitator: FacilitatorClient,
    options: PaywallOptions,
    /// Payments (payer and nonce) being served right now: a header replayed
    /// while its first use is in flight is refused, not served twice.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// A payment the facilitator found valid for one call, claimed until the call
/// ends (dropping it gives the claim back).
#[derive(Debug)]
pub(crate) struct Verified {
    payment: PaymentPayload,
    requirement: serde_json::Value,
    _claim: Claim,
}

/// Why a payment was not accepted.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It does not pay the offer, in words for the payer (a reason code when the
    /// facilitator gave one).
    Invalid(String),
    /// The facilitator gave no usable answer: nothing was charged.
    Unavailable(FacilitatorError),
}

impl Paywall {
    /// Asks the facilitator at `facilitator_url` what it settles and prices the
    /// config's routes on every such network.
    pub async fn connect(
        config: GatewayConfig,
        facilitator_url: &str,
        options: PaywallOptions,
    ) -> Result<Paywall, PaywallError> {
        let facilitator = FacilitatorClient::new(facilitator_url, options.facilitator_timeout)?;
        let rails = rails_from_supported(&facilitator.supported().await?);
        if rails.is_empty() {
            return Err(PaywallError::NoRails(facilitator_url.to_owned()));
        }
        Ok(Paywall::new(config, rails, facilitator, options))
    }

    /// A paywall over known rails.
    pub fn new(
        config: GatewayConfig,
        rails: Vec<Rail>,
        facilitator: FacilitatorClient,
        options: PaywallOptions,
    ) -> Paywall {
        Paywall {
            shared: Arc::new(Shared {
                config,
                rails,
                facilitator,
                options,
                in_flight: Arc::new(Mutex::new(HashSet::new())),
            }),
        }
    }

    /// The networks it is paid on.
    pub fn rails(&self) -> &[Rail] {
        &self.shared.rails
    }

    /// The tower layer.
    pub fn layer(&self) -> PaywallLayer {
        PaywallLayer {
            paywall: self.clone(),
        }
    }

    /// The config it charges by.
    pub(crate) fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// How it behaves.
    pub(crate) fn options(&self) -> &PaywallOptions {
        &self.shared.options
    }

    /// The requirements for one call of an MCP tool.
    pub(crate) fn tool_offer(&self, tool: &PricedTool) -> Offer {
        let shared = &self.shared;
        tool_offer(
            tool,
            &shared.config.service.pay_to,
            &shared.rails,
            shared.options.payment_timeout_secs,
        )
    }

    /// Claims the payment for this call and has the facilitator verify it.
    pub(crate) async fn verify(
        &self,
        payment: PaymentPayload,
        requirement: serde_json::Value,
    ) -> Result<Verified, Refused> {
        let shared = &self.shared;
        let Some(claim) = Claim::take(&shared.in_flight, &payment) else {
            counted("invalid");
            return Err(Refused::Invalid(
                "this payment is already being used by another request".into(),
            ));
        };
        match shared
            .facilitator
            .verify(payment.version.number(), &payment.raw, &requirement)
            .await
        {
            Ok(verified) if verified.is_valid => Ok(Verified {
                payment,
                requirement,
                _claim: claim,
            }),
            Ok(verified) => {
                counted("invalid");
                Err(Refused::Invalid(
                    verified
                        .invalid_reason
                        .unwrap_or_else(|| "invalid_payment".into()),
                ))
            }
            Err(e) => Err(Refused::Unavailable(e)),
        }
    }

    /// Settles a verified payment, once the call it paid for succeeded.
    pub(crate) async fn settle(
        &self,
        verified: &Verified,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.shared
            .facilitator
            .settle(
                verified.payment.version.number(),
                &verified.payment.raw,
                &verified.requirement,
            )
            .await
    }

    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.shared.options.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    async fn handle<S>(
        &self,
        request: Request<Body>,
        mut inner: S,
    ) -> Result<Response<Body>, S::Error>
    where
        S: Service<Request<Body>, Response = Response<Body>>,
    {
        let shared = &self.shared;
        if request.method() == Method::GET {
            match request.uri().path() {
                "/skill.md" => return Ok(self.skill(request.headers(), false)),
                "/skill.json" => return Ok(self.skill(request.headers(), true)),
                _ => {}
            }
        }
        if request.method() == Method::POST && shared.config.is_mcp_endpoint(request.uri().path()) {
            return crate::mcp::handle(self, request, inner).await;
        }
        let method = request.method().as_str();
        let Some(route) = shared.config.route_for(method, request.uri().path()) else {
            return inner.call(request).await;
        };
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let resource = format!("{}{path}", self.base_url(request.headers()));
        let timeout_secs = shared.options.payment_timeout_secs;
        let offer = offer(
            route,
            &shared.config.service.pay_to,
            &shared.rails,
            &resource,
            timeout_secs,
        );
        let Some(header) = payment_header(request.headers()) else {
            counted("required");
            return Ok(payment_required(&offer, None));
        };
        let (payment, requirement) = match chosen(&offer, header) {
            Ok(chosen) => chosen,
            Err(error) => {
                counted("invalid");
                return Ok(payment_required(&offer.with_error(&error), None));
            }
        };
        let verified = match self.verify(payment, requirement).await {
            Ok(verified) => verified,
            Err(Refused::Invalid(reason)) => {
                return Ok(payment_required(&offer.with_error(&reason), None));
            }
            Err(Refused::Unavailable(e)) => return Ok(facilitator_down(&e)),
        };
        let mut request = request;
        for name in PAYMENT_HEADERS {
            request.headers_mut().remove(name);
        }
        let response = match tokio::time::timeout(shared.options.timeout, inner.call(request)).await
        {
            Ok(response) => response?,
            Err(_) => {
                counted("upstream_timeout");
                return Ok(error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "the service did not answer in time; you were not charged",
                ));
            }
        };
        if !response.status().is_success() {
            counted("upstream_failed");
            return Ok(response);
        }
        match self.settle(&verified).await {
            Ok(settled) => Ok(self.deliver(response, &offer, verified.payment.version, &settled)),
            Err(e) => Ok(facilitator_down(&e)),
        }
    }

    /// The service's answer with the settlement, or 402 when settlement failed (the
    /// answer is withheld: it was not paid for). A settlement still pending on
    /// chain delivers: its transaction was sent.
    fn deliver(
        &self,
        mut response: Response<Body>,
        offer: &Offer,
        version: Version,
        settled: &SettleResponse,
    ) -> Response<Body> {
        let header_name = version.response_header();
        let encoded = encode_header(settled)
            .ok()
            .and_then(|text| HeaderValue::from_str(&text).ok());
        match settlement_failure(settled) {
            None => {
                if let Some(value) = encoded {
                    response.headers_mut().insert(header_name, value);
                }
                response
            }
            Some(reason) => {
                payment_required(&offer.with_error(reason), encoded.map(|v| (header_name, v)))
            }
        }
    }

    fn skill(&self, headers: &HeaderMap, json: bool) -> Response<Body> {
        let base = self.base_url(headers);
        let (content_type, body) = if json {
            let list = price_list(&self.shared.config, &base, &self.shared.rails);
            ("application/json", list.to_string())
        } else {
            let md = skill_md(&self.shared.config, &base, &self.shared.rails);
            ("text/markdown; charset=utf-8", md)
        };
        let mut response = Response::new(Body::from(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

pub(crate) fn counted(result: &'static str) {
    metrics::counter!("purser_gateway_requests_total", "result" => result).increment(1);
}

/// Counts a settlement and says why it failed, if it did. A settlement still
/// pending on chain is not a failure: its transaction was sent.
pub(crate) fn settlement_failure(settled: &SettleResponse) -> Option<&str> {
    let pending = settled.error_reason.as_deref() == Some(Reason::SettlementPending.as_str());
    if settled.success || pending {
        counted(if settled.success {
            "paid"
        } else {
            "paid_pending"
        });
        return None;
    }
    counted("settle_failed");
    Some(
        settled
            .error_reason
            .as_deref()
            .unwrap_or("settlement_failed"),
    )
}

/// The payment header, whichever version sent it.
fn payment_header(headers: &HeaderMap) -> Option<&str> {
    PAYMENT_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok())
}

/// A payment's place in the in-flight set, given back when the request ends.
#[derive(Debug)]
struct Claim {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Claim {
    fn take(set: &Arc<Mutex<HashSet<String>>>, payment: &PaymentPayload) -> Option<Claim> {
        let authorization = &payment.payload.authorization;
        let key = format!(
            "{}/{}/{}",
            payment.network,
            authorization.from.to_ascii_lowercase(),
            authorization.nonce.to_ascii_lowercase()
        );
        let fresh = set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone());
        fresh.then(|| Claim {
            set: Arc::clone(set),
            key,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// 402 as x402 servers answer it: `PAYMENT-REQUIRED` (v2), the v1 body, and the
/// settlement answer (header name and value) when one was tried. Also the answer
/// of Purser's payment links.
pub fn payment_required(
    offer: &Offer,
    settlement: Option<(&'static str, HeaderValue)>,
) -> Response<Body> {
    let mut response = Response::new(Body::from(offer.v1.to_string()));
    *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = encode_header(&offer.v2)
        .ok()
        .and_then(|text| HeaderValue::from_str(&text).ok())
    {
        headers.insert(HEADER_PAYMENT_REQUIRED, value);
    }
    if let Some((name, value)) = settlement {
        headers.insert(name, value);
    }
    response
}

/// An error of the gateway itself, in Purser's error shape.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = json!({"error": {"code": code, "message": message}});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Counts and logs a facilitator that gave no usable answer.
pub(crate) fn facilitator_failed(error: &FacilitatorError) {
    counted("facilitator_unavailable");
    tracing::warn!(error = %error, "the facilitator gave no usable answer");
}

fn facilitator_down(error: &FacilitatorError) -> Response<Body> {
    facilitator_failed(error);
    error_response(
        StatusCode::BAD_GATEWAY,
        "facilitator_unavailable",
        "the payment could not be checked or settled right now; you were not charged",
    )
}

/// The paywall as a tower [`Layer`].
#[derive(Debug, Clone)]
pub struct PaywallLayer {
    paywall: Paywall,
}

impl<S> Layer<S> for PaywallLayer {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> PaywallService<S> {
        PaywallService {
            paywall: self.paywall.clone(),
            inner,
        }
    }
}

/// A service behind the paywall.
#[derive(Debug, Clone)]
pub struct PaywallService<S> {
    paywall: Paywall,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<Request<Body>> for PaywallService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The service polled ready is the one called; a fresh clone stays behind.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let paywall = self.paywall.clone();
        Box::pin(async move { paywall.handle(request, ready).await })
    }
}
