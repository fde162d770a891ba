//! Paid MCP tools: the paywall at the JSON-RPC level of an MCP server spoken to
//! over streamable HTTP (x402's MCP transport, v2).
//!
//! A POST to the endpoint of an MCP server with priced tools is read whole. A
//! `tools/call` of a priced tool without `params._meta["x402/payment"]` is
//! answered by the gateway itself (HTTP 200) with a tool result that is an error
//! carrying the PaymentRequired (resource `mcp://tool/<name>`). With a payment,
//! the payment is verified by the facilitator, taken out of the request, and the
//! call forwarded; the upstream's answer — `application/json`, or
//! `text/event-stream` with other events passed on as they come — is read up to
//! the JSON-RPC response with the call's id. Only a result that is not an error
//! is settled; it then carries `_meta["x402/payment-response"]`. An error result,
//! a JSON-RPC error, an upstream failure or timeout charges nothing. A failed
//! settlement withholds the result and answers the PaymentRequired again, with
//! the settlement inside it.
//!
//! Every other message on the endpoint (`initialize`, notifications, unpriced
//! tools, GET and DELETE for sessions) passes through untouched, except that a
//! `tools/list` result gets each priced tool's price: in its `_meta["purser/price"]`
//! and at the end of its description.

use std::collections::VecDeque;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use futures_util::{Stream, StreamExt};
use purser_types::x402::PaymentPayload;
use purser_types::x402::mcp::{
    META_PAYMENT, META_PAYMENT_RESPONSE, SseSplitter, payment_required_result, sse_data,
    sse_with_data, tool_resource_url,
};
use purser_types::x402::offer::chosen_payment;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tower::Service;

use crate::config::{GatewayConfig, PricedTool};
use crate::paywall::{
    Paywall, Refused, Verified, counted, error_response, facilitator_failed, settlement_failure,
};
use crate::rails::Offer;

/// The largest MCP request the paywall reads (as rmcp's server); `purser gateway`
/// bounds bodies by `--max-body-bytes` before.
pub const MAX_MCP_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where a `tools/list` result carries a priced tool's price (`_meta[…]`).
pub const META_PRICE: &str = "purser/price";

/// The JSON-RPC error code of the gateway's own errors (upstream timeout,
/// facilitator unavailable); `error.data.code` names which.
pub const GATEWAY_ERROR_CODE: i64 = -32000;

/// What one MCP message asks of the paywall.
#[derive(Debug, PartialEq)]
enum Message {
    /// A `tools/call` of a priced tool.
    PaidCall {
        id: Value,
        tool: PricedTool,
        request: Map<String, Value>,
    },
    /// A `tools/list`: its result gets the prices.
    ListTools { id: Value },
    /// A batch holding a call of a priced tool: refused.
    PaidBatch,
    /// Not one JSON value: refused, so that no upstream reads into it a call the
    /// gateway did not see.
    Unreadable,
    /// Anything else: passed through.
    Other,
}

fn priced_call<'a>(
    config: &'a GatewayConfig,
    path: &str,
    message: &Value,
) -> Option<&'a PricedTool> {
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let name = message.get("params")?.get("name")?.as_str()?;
    config.mcp_tool(path, name)
}

fn classify(config: &GatewayConfig, path: &str, body: &[u8]) -> Message {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return Message::Unreadable;
    };
    match message {
        Value::Array(batch) => {
            if batch.iter().any(|m| priced_call(config, path, m).is_some()) {
                Message::PaidBatch
            } else {
                Message::Other
            }
        }
        Value::Object(request) => {
            let message = Value::Object(request);
            if let Some(tool) = priced_call(config, path, &message) {
                // A call without an id (a notification) is refused like a batch: a
                // priced tool runs only as a request that is answered.
                let Some(id) = message.get("id").cloned() else {
                    return Message::PaidBatch;
                };
                let tool = tool.clone();
                let Value::Object(request) = message else {
                    return Message::Other;
                };
                return Message::PaidCall { id, tool, request };
            }
            match (
                message.get("method").and_then(Value::as_str),
                message.get("id"),
            ) {
                (Some("tools/list"), Some(id)) => Message::ListTools { id: id.clone() },
                _ => Message::Other,
            }
        }
        _ => Message::Other,
    }
}

fn jsonrpc_response(message: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(message.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn result_message(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error_message(id: &Value, code: i64, name: &str, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": {"code": name}}})
}

fn upstream_timeout(id: &Value) -> Value {
    error_message(
        id,
        GATEWAY_ERROR_CODE,
        "upstream_timeout",
        "the tool did not answer in time; you were not charged",
    )
}

fn upstream_unreadable(id: &Value) -> Value {
    error_message(
        id,
        GATEWAY_ERROR_CODE,
        "upstream_unavailable",
        "the tool's answer could not be read; you were not charged",
    )
}

fn facilitator_unavailable(id: &Value) -> Value {
    error_message(
        id,
        GATEWAY_ERROR_CODE,
        "facilitator_unavailable",
        "the payment could not be checked or settled right now; you were not charged",
    )
}

/// The tool result asking for payment, with `error` saying what was wrong.
fn asks_payment(id: &Value, offer: &Offer, tool: &str, error: Option<&str>) -> Value {
    let (required, message) = match error {
        None => (
            offer.v2.clone(),
            format!("Payment required to call the tool {tool}"),
        ),
        Some(error) => (
            offer.with_error(error).v2,
            format!("The payment for the tool {tool} was not accepted: {error}"),
        ),
    };
    result_message(id, payment_required_result(&required, &message))
}

/// Handles a POST to an MCP endpoint with priced tools.
pub(crate) async fn handle<S>(
    paywall: &Paywall,
    request: Request<Body>,
    mut inner: S,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_MCP_BODY_BYTES).await else {
        return Ok(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "the request body is larger than the gateway accepts",
        ));
    };
    let path = parts.uri.path().to_owned();
    match classify(paywall.config(), &path, &bytes) {
        Message::Other => {
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Message::Unreadable => {
            let mut response = jsonrpc_response(&error_message(
                &Value::Null,
                -32700,
                "parse_error",
                "the request body is not one JSON-RPC message (or batch) in JSON",
            ));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
        Message::PaidBatch => {
            counted("invalid");
            Ok(jsonrpc_response(&error_message(
                &Value::Null,
                -32600,
                "invalid_request",
                "a paid tool is called on its own, as a request with an id, not in a batch",
            )))
        }
        Message::ListTools { id } => {
            let prices = Rewrite::Prices(
                paywall
                    .config()
                    .mcp_tools
                    .iter()
                    .filter(|t| t.serves(&path))
                    .cloned()
                    .collect(),
            );
            parts.headers.remove(header::ACCEPT_ENCODING);
            let response = inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await?;
            Ok(rewrite(response, id, prices, None).await)
        }
        Message::PaidCall { id, tool, request } => {
            paid_call(paywall, parts, id, tool, request, inner).await
        }
    }
}

async fn paid_call<S>(
    paywall: &Paywall,
    mut parts: axum::http::request::Parts,
    id: Value,
    tool: PricedTool,
    mut request: Map<String, Value>,
    mut inner: S,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let offer = paywall.tool_offer(&tool);
    let Some(payment) = take_payment(&mut request) else {
        counted("required");
        return Ok(jsonrpc_response(&asks_payment(
            &id, &offer, &tool.name, None,
        )));
    };
    let chosen = PaymentPayload::from_json(&payment)
        .map_err(|e| format!("the payment in _meta[\"{META_PAYMENT}\"] is invalid: {e}"))
        .and_then(|payment| chosen_payment(&offer, payment));
    let verified = match chosen {
        Ok((payment, requirement)) => paywall.verify(payment, requirement).await,
        Err(error) => {
            counted("invalid");
            Err(Refused::Invalid(error))
        }
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(Refused::Invalid(error)) => {
            let asks = asks_payment(&id, &offer, &tool.name, Some(&error));
            return Ok(jsonrpc_response(&asks));
        }
        Err(Refused::Unavailable(e)) => {
            facilitator_failed(&e);
            return Ok(jsonrpc_response(&facilitator_unavailable(&id)));
        }
    };
    let body = Value::Object(request).to_string();
    parts.headers.remove(header::ACCEPT_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let timeout = paywall.options().timeout;
    let deadline = Instant::now() + timeout;
    let call = inner.call(Request::from_parts(parts, Body::from(body)));
    let response = match tokio::time::timeout_at(deadline, call).await {
        Ok(response) => response?,
        Err(_) => {
            counted("upstream_timeout");
            return Ok(jsonrpc_response(&upstream_timeout(&id)));
        }
    };
    if !response.status().is_success() {
        counted("upstream_failed");
        return Ok(response);
    }
    let paid = Rewrite::Paid(Box::new(PaidCall {
        paywall: paywall.clone(),
        verified,
        offer,
        tool: tool.name,
    }));
    Ok(rewrite(response, id, paid, Some(deadline)).await)
}

/// Takes `params._meta["x402/payment"]` out of a request (and `_meta` with it
/// when nothing else is left in it).
fn take_payment(request: &mut Map<String, Value>) -> Option<Value> {
    let params = request.get_mut("params")?.as_object_mut()?;
    let meta = params.get_mut("_meta")?.as_object_mut()?;
    let payment = meta.remove(META_PAYMENT)?;
    if meta.is_empty() {
        params.remove("_meta");
    }
    Some(payment)
}

/// A paid call on its way back: settled when its result is not an error.
struct PaidCall {
    paywall: Paywall,
    verified: Verified,
    offer: Offer,
    tool: String,
}

/// What is done to the JSON-RPC response of the forwarded request.
enum Rewrite {
    /// A `tools/list` result gets these tools' prices.
    Prices(Vec<PricedTool>),
    /// A paid `tools/call`.
    Paid(Box<PaidCall>),
}

impl Rewrite {
    /// The response, rewritten.
    async fn apply(self, mut message: Value) -> Value {
        match self {
            Rewrite::Prices(tools) => {
                if let Some(listed) = message
                    .get_mut("result")
                    .and_then(|r| r.get_mut("tools"))
                    .and_then(Value::as_array_mut)
                {
                    for entry in listed {
                        add_price(entry, &tools);
                    }
                }
                message
            }
            Rewrite::Paid(call) => call.settle(message).await,
        }
    }

    /// The response never came (timeout, the stream ended or failed).
    fn missed(&self) {
        if matches!(self, Rewrite::Paid(_)) {
            counted("upstream_failed");
        }
    }
}

fn add_price(entry: &mut Value, tools: &[PricedTool]) {
    let Some(name) = entry.get("name").and_then(Value::as_str) else {
        return;
    };
    let Some(tool) = tools.iter().find(|t| t.name == name) else {
        return;
    };
    let Some(object) = entry.as_object_mut() else {
        return;
    };
    let note = format!("Paid: {} USDC per call (x402).", tool.price);
    let description = match object.get("description").and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => format!("{} {note}", text.trim_end()),
        _ => note,
    };
    object.insert("description".into(), Value::String(description));
    let price = json!({
        "amount": tool.price.to_string(), "amountAtomic": tool.price.atomic().to_string(),
        "currency": "USDC", "protocol": "x402", "resource": tool_resource_url(&tool.name),
    });
    let meta = object
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(META_PRICE.into(), price);
    }
}

impl PaidCall {
    /// Settles when the tool succeeded and puts the settlement in the result; a
    /// failed settlement asks for payment again instead.
    async fn settle(self, message: Value) -> Value {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let succeeded = message
            .get("result")
            .is_some_and(|r| r.is_object() && r.get("isError") != Some(&Value::Bool(true)));
        if !succeeded {
            counted("upstream_failed");
            return message;
        }
        let settled = match self.paywall.settle(&self.verified).await {
            Ok(settled) => settled,
            Err(e) => {
                facilitator_failed(&e);
                return facilitator_unavailable(&id);
            }
        };
        let settlement = serde_json::to_value(&settled).unwrap_or(Value::Null);
        match settlement_failure(&settled) {
            None => {
                let mut message = message;
                if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) {
                    let meta = result
                        .entry("_meta")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !meta.is_object() {
                        *meta = Value::Object(Map::new());
                    }
                    if let Some(meta) = meta.as_object_mut() {
                        meta.insert(META_PAYMENT_RESPONSE.into(), settlement);
                    }
                }
                message
            }
            Some(reason) => {
                let mut required = self.offer.with_error(reason).v2;
                required[META_PAYMENT_RESPONSE] = settlement;
                let text = format!(
                    "Payment settlement failed for the tool {}: {reason}",
                    self.tool
                );
                result_message(&id, payment_required_result(&required, &text))
            }
        }
    }
}

/// Whether `message` is the JSON-RPC response to the request `id`.
fn answers(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// Applies `rewrite` to the response to the request `id`, in a JSON answer or in
/// an event stream; `deadline` bounds the wait for it.
async fn rewrite(
    response: Response<Body>,
    id: Value,
    rewrite: Rewrite,
    deadline: Option<Instant>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    match content_type_of(&parts.headers).as_str() {
        "application/json" => {
            let read = axum::body::to_bytes(body, usize::MAX);
            let bytes = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, read).await.ok(),
                None => Some(read.await),
            };
            let bytes = match bytes {
                Some(Ok(bytes)) => bytes,
                Some(Err(_)) => {
                    rewrite.missed();
                    return jsonrpc_response(&upstream_unreadable(&id));
                }
                None => {
                    rewrite.missed();
                    return jsonrpc_response(&upstream_timeout(&id));
                }
            };
            let message = match serde_json::from_slice::<Value>(&bytes) {
                Ok(message) if answers(&message, &id) => message,
                _ => {
                    rewrite.missed();
                    return Response::from_parts(parts, Body::from(bytes));
                }
            };
            let body = rewrite.apply(message).await.to_string();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            Response::from_parts(parts, Body::from(body))
        }
        "text/event-stream" => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let events = rewrite_events(body.into_data_stream(), id, rewrite, deadline);
            Response::from_parts(parts, Body::from_stream(events))
        }
        _ => {
            rewrite.missed();
            Response::from_parts(parts, body)
        }
    }
}

fn content_type_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

struct Events<S> {
    upstream: S,
    splitter: SseSplitter,
    /// The response looked for and what to do to it; `None` once done.
    target: Option<(Value, Rewrite)>,
    deadline: Option<Instant>,
    ready: VecDeque<Bytes>,
    ended: bool,
}

/// An event stream with the event carrying the response to `id` rewritten; the
/// events before it pass on as they arrive, everything after it untouched.
fn rewrite_events<S>(
    upstream: S,
    id: Value,
    rewrite: Rewrite,
    deadline: Option<Instant>,
) -> impl Stream<Item = Result<Bytes, axum::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Send + Unpin + 'static,
{
    let state = Events {
        upstream,
        splitter: SseSplitter::default(),
        target: Some((id, rewrite)),
        deadline,
        ready: VecDeque::new(),
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(bytes) = state.ready.pop_front() {
                return Some((Ok(bytes), state));
            }
            if state.ended {
                return None;
            }
            let next = match (state.deadline, &state.target) {
                (Some(deadline), Some(_)) => {
                    match tokio::time::timeout_at(deadline, state.upstream.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            state.ended = true;
                            if let Some((id, rewrite)) = state.target.take() {
                                rewrite.missed();
                                let event = format!("data: {}\n\n", upstream_timeout(&id));
                                state.ready.push_back(Bytes::from(event));
                            }
                            continue;
                        }
                    }
                }
                _ => state.upstream.next().await,
            };
            match next {
                Some(Ok(chunk)) => state.take(chunk).await,
                Some(Err(e)) => {
                    state.ended = true;
                    if let Some((_, rewrite)) = state.target.take() {
                        rewrite.missed();
                    }
                    return Some((Err(e), state));
                }
                None => {
                    state.ended = true;
                    let rest = state.splitter.finish();
                    if !rest.is_empty() {
                        state.ready.push_back(Bytes::from(rest));
                    }
                    if let Some((_, rewrite)) = state.target.take() {
                        rewrite.missed();
                    }
                }
            }
        }
    })
}

impl<S> Events<S> {
    async fn take(&mut self, chunk: Bytes) {
        if self.target.is_none() {
            self.ready.push_back(chunk);
            return;
        }
        self.splitter.push(&chunk);
        while let Some(event) = self.splitter.next_event() {
            let message = sse_data(&event).and_then(|d| serde_json::from_str::<Value>(&d).ok());
            let hit =
                matches!((&message, &self.target), (Some(m), Some((id, _))) if answers(m, id));
            match (hit, message, self.target.take()) {
                (true, Some(message), Some((_, rewrite))) => {
                    let rewritten = rewrite.apply(message).await;
                    let event = sse_with_data(&event, &rewritten.to_string());
                    self.ready.push_back(Bytes::from(event));
                    let rest = self.splitter.finish();
                    if !rest.is_empty() {
                        self.ready.push_back(Bytes::from(rest));
                    }
                    return;
                }
                (_, _, target) => {
                    self.target = target;
                    self.ready.push_back(Bytes::from(event));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Json;
    use purser_types::x402::mcp::payment_required_in;
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::facilitator::FacilitatorClient;
    use crate::paywall::PaywallOptions;
    use crate::rails::Rail;

    const CONFIG: &str = r#"
[service]
name = "Weather tools"
description = "Forecasts as MCP tools."
pay_to = "0x4242424242424242424242424242424242424242"

[[mcp_tool]]
path = "/mcp"
name = "forecast"
price = "0.01"
description = "A three-day forecast"
"#;

    fn config() -> GatewayConfig {
        GatewayConfig::parse(CONFIG).unwrap()
    }

    fn rails() -> Vec<Rail> {
        vec![Rail {
            network: "purser:ledger".into(),
            v1_network: Some("purser-ledger".into()),
            asset: "0x00000000000000000000000000000000000000aa".into(),
            token_name: "Purser Ledger".into(),
            token_version: "1".into(),
        }]
    }

    /// A facilitator that finds every payment valid and settles as told,
    /// counting settlements.
    struct Facilitator {
        url: String,
        settled: Arc<AtomicUsize>,
    }

    async fn facilitator(settles: bool) -> Facilitator {
        let settled = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&settled);
        let app = axum::Router::new()
            .route(
                "/verify",
                axum::routing::post(|| async { Json(json!({"isValid": true, "payer": "0xpayer"})) }),
            )
            .route(
                "/settle",
                axum::routing::post(move || {
                    let count = Arc::clone(&count);
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        Json(if settles {
                            json!({"success": true, "transaction": "ledger:rsv_1", "network": "purser:ledger", "payer": "0xpayer"})
                        } else {
                            json!({"success": false, "errorReason": "insufficient_funds", "transaction": "", "network": "purser:ledger"})
                        })
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Facilitator { url, settled }
    }

    fn paywall(facilitator: &Facilitator) -> Paywall {
        let client = FacilitatorClient::new(&facilitator.url, Duration::from_secs(5)).unwrap();
        let options = PaywallOptions {
            timeout: Duration::from_millis(500),
            ..PaywallOptions::default()
        };
        Paywall::new(config(), rails(), client, options)
    }

    /// A payment for the forecast tool's offer (its signature is the fake
    /// facilitator's business).
    fn payment(paywall: &Paywall, nonce: u8) -> Value {
        let tool = paywall.config().mcp_tools[0].clone();
        let offer = paywall.tool_offer(&tool);
        json!({
            "x402Version": 2,
            "resource": offer.v2["resource"],
            "accepted": offer.v2["accepts"][0],
            "payload": {
                "signature": format!("0x{}", "11".repeat(65)),
                "authorization": {
                    "from": "0x1111111111111111111111111111111111111111",
                    "to": "0x4242424242424242424242424242424242424242",
                    "value": "10000", "validAfter": "0", "validBefore": "9999999999",
                    "nonce": format!("0x{}", format!("{nonce:02x}").repeat(32)),
                },
            },
        })
    }

    fn call(id: u64, tool: &str, payment: Option<Value>) -> Value {
        let mut params =
            json!({"name": tool, "arguments": {"city": "Oslo"}, "_meta": {"progressToken": 7}});
        if let Some(payment) = payment {
            params["_meta"][META_PAYMENT] = payment;
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
    }

    #[test]
    fn messages_are_classified_by_method_tool_and_endpoint() {
        let config = config();
        let paid = serde_json::to_vec(&call(1, "forecast", None)).unwrap();
        assert!(matches!(
            classify(&config, "/mcp", &paid),
            Message::PaidCall { id, tool, .. } if id == json!(1) && tool.name == "forecast"
        ));
        assert_eq!(classify(&config, "/other", &paid), Message::Other);
        let free = serde_json::to_vec(&call(1, "ping", None)).unwrap();
        assert_eq!(classify(&config, "/mcp", &free), Message::Other);
        let list = br#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#;
        assert_eq!(
            classify(&config, "/mcp", list),
            Message::ListTools { id: json!("a") }
        );
        let batch = serde_json::to_vec(&json!([call(1, "ping", None), call(2, "forecast", None)]));
        assert_eq!(
            classify(&config, "/mcp", &batch.unwrap()),
            Message::PaidBatch
        );
        let mut notification = call(1, "forecast", None);
        notification.as_object_mut().unwrap().remove("id");
        let notification = serde_json::to_vec(&notification).unwrap();
        assert_eq!(classify(&config, "/mcp", &notification), Message::PaidBatch);
        for unreadable in [&b"not json"[..], b"{\"id\":1} {\"id\":2}", b""] {
            assert_eq!(classify(&config, "/mcp", unreadable), Message::Unreadable);
        }
        let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(classify(&config, "/mcp", initialized), Message::Other);
        let answer = br#"{"jsonrpc":"2.0","id":3,"result":{}}"#;
        assert_eq!(classify(&config, "/mcp", answer), Message::Other);
    }

    #[test]
    fn the_payment_is_taken_out_and_the_rest_of_meta_kept() {
        let Value::Object(mut request) = call(1, "forecast", Some(json!({"x": 1}))) else {
            panic!()
        };
        assert_eq!(take_payment(&mut request), Some(json!({"x": 1})));
        assert_eq!(request["params"]["_meta"], json!({"progressToken": 7}));
        assert_eq!(take_payment(&mut request), None);
        let Value::Object(mut only) =
            json!({"params": {"name": "forecast", "_meta": {META_PAYMENT: {}}}})
        else {
            panic!()
        };
        take_payment(&mut only);
        assert_eq!(Value::Object(only), json!({"params": {"name": "forecast"}}));
    }

    fn json_response(message: &Value) -> Response<Body> {
        let mut response = jsonrpc_response(message);
        let length = message.to_string().len();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        response
    }

    fn sse_response(chunks: Vec<&'static [u8]>) -> Response<Body> {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        let mut response = Response::new(Body::from_stream(stream));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        response
    }

    async fn read(response: Response<Body>) -> (axum::http::HeaderMap, String) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn listed() -> Value {
        json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [
            {"name": "ping", "description": "Answers pong", "inputSchema": {"type": "object"}},
            {"name": "forecast", "description": "A forecast", "inputSchema": {"type": "object"}, "_meta": {"x": 1}},
        ]}})
    }

    #[tokio::test]
    async fn a_json_tools_list_gets_the_prices() {
        let prices = Rewrite::Prices(config().mcp_tools);
        let (headers, body) =
            read(rewrite(json_response(&listed()), json!(3), prices, None).await).await;
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            headers[header::CONTENT_LENGTH],
            body.len().to_string().as_str()
        );
        let tools = &message["result"]["tools"];
        assert_eq!(
            tools[0],
            listed()["result"]["tools"][0],
            "unpriced tools are untouched"
        );
        assert_eq!(
            tools[1]["description"],
            "A forecast Paid: 0.01 USDC per call (x402)."
        );
        assert_eq!(tools[1]["_meta"]["x"], 1);
        assert_eq!(tools[1]["_meta"][META_PRICE]["amount"], "0.01");
        assert_eq!(
            tools[1]["_meta"][META_PRICE]["resource"],
            "mcp://tool/forecast"
        );

        // Another id's answer, or not JSON-RPC at all, passes unchanged.
        let prices = Rewrite::Prices(config().mcp_tools);
        let (_, other) =
            read(rewrite(json_response(&listed()), json!(4), prices, None).await).await;
        assert_eq!(other, listed().to_string());
    }

    #[tokio::test]
    async fn an_event_stream_is_rewritten_only_at_the_response() {
        let response = sse_response(vec![
            b"id: 0\nretry: 3000\ndata:\n\n",
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",",
            b"\"params\":{\"progress\":1}}\n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"forecast\",",
            b"\"description\":\"A forecast\"}]}}\n",
            b"\n: after\n\n",
        ]);
        let prices = Rewrite::Prices(config().mcp_tools);
        let (headers, body) = read(rewrite(response, json!(3), prices, None).await).await;
        assert!(headers.get(header::CONTENT_LENGTH).is_none());
        let events: Vec<&str> = body.split_inclusive("\n\n").collect();
        assert_eq!(events.len(), 4, "{body}");
        assert_eq!(events[0], "id: 0\nretry: 3000\ndata:\n\n");
        assert!(events[1].contains("notifications/progress"));
        assert!(
            events[2].starts_with("event: message\nid: 1\ndata: {"),
            "{}",
            events[2]
        );
        let data = sse_data(events[2].as_bytes()).unwrap();
        let message: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            message["result"]["tools"][0]["_meta"][META_PRICE]["amount"],
            "0.01"
        );
        assert_eq!(events[3], ": after\n\n");
    }

    fn tool_result(is_error: bool) -> Value {
        json!({"jsonrpc": "2.0", "id": 5, "result": {
            "content": [{"type": "text", "text": "sunny"}], "isError": is_error}})
    }

    async fn paid(paywall: &Paywall, nonce: u8) -> Rewrite {
        let tool = paywall.config().mcp_tools[0].clone();
        let offer = paywall.tool_offer(&tool);
        let payment = PaymentPayload::from_json(&payment(paywall, nonce)).unwrap();
        let (payment, requirement) = chosen_payment(&offer, payment).unwrap();
        let verified = paywall.verify(payment, requirement).await.unwrap();
        Rewrite::Paid(Box::new(PaidCall {
            paywall: paywall.clone(),
            verified,
            offer,
            tool: tool.name,
        }))
    }

    #[tokio::test]
    async fn a_paid_result_is_settled_once_and_carries_the_settlement() {
        let facilitator = facilitator(true).await;
        let paywall = paywall(&facilitator);
        let deadline = Some(Instant::now() + Duration::from_secs(5));

        let rewritten = rewrite(
            json_response(&tool_result(false)),
            json!(5),
            paid(&paywall, 1).await,
            deadline,
        );
        let (_, body) = read(rewritten.await).await;
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(message["result"]["content"][0]["text"], "sunny");
        let settlement = &message["result"]["_meta"][META_PAYMENT_RESPONSE];
        assert_eq!(settlement["success"], true);
        assert_eq!(settlement["transaction"], "ledger:rsv_1");
        assert_eq!(facilitator.settled.load(Ordering::SeqCst), 1);

        // The same over an event stream.
        let response = sse_response(vec![
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n",
            b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[],\"isError\":false}}\n\n",
        ]);
        let (_, body) =
            read(rewrite(response, json!(5), paid(&paywall, 2).await, deadline).await).await;
        let last = body.split_inclusive("\n\n").nth(1).unwrap();
        let message: Value = serde_json::from_str(&sse_data(last.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            message["result"]["_meta"][META_PAYMENT_RESPONSE]["success"],
            true
        );
        assert_eq!(facilitator.settled.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn errors_and_missing_answers_are_not_settled() {
        let facilitator = facilitator(true).await;
        let paywall = paywall(&facilitator);
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        let failed = tool_result(true);
        let (_, body) = read(
            rewrite(
                json_response(&failed),
                json!(5),
                paid(&paywall, 1).await,
                deadline,
            )
            .await,
        )
        .await;
        assert_eq!(body, failed.to_string());
        let error = json!({"jsonrpc": "2.0", "id": 5, "error": {"code": -32602, "message": "bad"}});
        let (_, body) = read(
            rewrite(
                json_response(&error),
                json!(5),
                paid(&paywall, 2).await,
                deadline,
            )
            .await,
        )
        .await;
        assert_eq!(body, error.to_string());
        let response = sse_response(vec![b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[],\"isError\":true}}\n\n"]);
        let (_, body) =
            read(rewrite(response, json!(5), paid(&paywall, 3).await, deadline).await).await;
        assert!(body.contains("\"isError\":true") && !body.contains(META_PAYMENT_RESPONSE));
        // A stream that ends without the answer.
        let response = sse_response(vec![b"data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n"]);
        let (_, body) =
            read(rewrite(response, json!(5), paid(&paywall, 4).await, deadline).await).await;
        assert_eq!(body, "data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n");
        assert_eq!(facilitator.settled.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failed_settlement_withholds_the_result() {
        let facilitator = facilitator(false).await;
        let paywall = paywall(&facilitator);
        let deadline = Some(Instant::now() + Duration::from_secs(5));
        let (_, body) = read(
            rewrite(
                json_response(&tool_result(false)),
                json!(5),
                paid(&paywall, 1).await,
                deadline,
            )
            .await,
        )
        .await;
        assert!(!body.contains("sunny"), "{body}");
        let message: Value = serde_json::from_str(&body).unwrap();
        let required = payment_required_in(&message["result"]).unwrap();
        assert_eq!(required["error"], "insufficient_funds");
        assert_eq!(required[META_PAYMENT_RESPONSE]["success"], false);
        assert_eq!(required["resource"]["url"], "mcp://tool/forecast");
    }

    /// An MCP upstream as a tower service: answers a tools/call with `answer`
    /// (and records what it received).
    fn upstream(
        answer: Value,
        seen: Arc<std::sync::Mutex<Vec<Value>>>,
        delay: Duration,
    ) -> Upstream {
        Upstream::new(tower::service_fn(move |request: Request<Body>| {
            let (answer, seen) = (answer.clone(), Arc::clone(&seen));
            async move {
                let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
                    .await
                    .unwrap();
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
                tokio::time::sleep(delay).await;
                Ok(json_response(&answer))
            }
        }))
    }

    type Upstream =
        tower::util::BoxCloneService<Request<Body>, Response<Body>, std::convert::Infallible>;

    async fn send(paywall: &Paywall, service: Upstream, message: &Value) -> Value {
        let request = Request::post("/mcp")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(message.to_string()))
            .unwrap();
        let response = paywall
            .layer()
            .layer(service)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        serde_json::from_str(&read(response).await.1).unwrap()
    }

    #[tokio::test]
    async fn the_paywall_asks_checks_forwards_and_settles_tool_calls() {
        let facilitator = facilitator(true).await;
        let paywall = paywall(&facilitator);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let service = upstream(tool_result(false), Arc::clone(&seen), Duration::ZERO);

        // Unpaid: the gateway answers, the upstream never hears of it.
        let asked = send(&paywall, service.clone(), &call(5, "forecast", None)).await;
        let required = payment_required_in(&asked["result"]).unwrap();
        assert_eq!(asked["id"], 5);
        assert_eq!(required["accepts"][0]["amount"], "10000");
        assert_eq!(required["resource"]["url"], "mcp://tool/forecast");
        assert!(seen.lock().unwrap().is_empty());

        // A payment for another offer is refused with the reason.
        let mut wrong = payment(&paywall, 1);
        wrong["accepted"]["amount"] = json!("1");
        let refused = send(&paywall, service.clone(), &call(5, "forecast", Some(wrong))).await;
        let required = payment_required_in(&refused["result"]).unwrap();
        assert!(
            required["error"]
                .as_str()
                .unwrap()
                .contains("none of the requirements")
        );

        // Paid: forwarded without the payment, settled, the settlement returned.
        let served = send(
            &paywall,
            service.clone(),
            &call(5, "forecast", Some(payment(&paywall, 2))),
        )
        .await;
        assert_eq!(
            served["result"]["_meta"][META_PAYMENT_RESPONSE]["success"],
            true
        );
        let forwarded = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(forwarded["params"]["_meta"], json!({"progressToken": 7}));
        assert_eq!(forwarded["params"]["arguments"]["city"], "Oslo");
        assert_eq!(facilitator.settled.load(Ordering::SeqCst), 1);

        // Unpriced calls pass through as they were sent.
        let free = call(6, "ping", None);
        send(&paywall, service.clone(), &free).await;
        assert_eq!(seen.lock().unwrap().last(), Some(&free));

        // Too slow: an error, and nothing settled.
        let slow = upstream(
            tool_result(false),
            Arc::clone(&seen),
            Duration::from_secs(2),
        );
        let late = send(
            &paywall,
            slow,
            &call(7, "forecast", Some(payment(&paywall, 3))),
        )
        .await;
        assert_eq!(late["error"]["data"]["code"], "upstream_timeout");
        assert_eq!(facilitator.settled.load(Ordering::SeqCst), 1);
    }
}
