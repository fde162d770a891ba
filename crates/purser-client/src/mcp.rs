//! Calling a tool of an MCP server that may charge for it, over MCP's streamable
//! HTTP: `initialize`, `notifications/initialized`, then `tools/call`. A paid tool
//! answers the call with x402's MCP transport — a result with `isError: true`
//! carrying the PaymentRequired — and the wallet pays it through the one
//! authorization path ([`fetch::pay`]; the URL paid for is the MCP endpoint, so its
//! host is what a mandate must allow). The call is sent again with the
//! PaymentPayload in `params._meta["x402/payment"]`, and the outcome (the result's
//! `_meta["x402/payment-response"]`, or nothing when the call failed) is reported
//! once ([`fetch::report`]) so the reservation is committed or released.

use purser_server::X402ResultResponse;
use purser_types::x402::mcp::{
    META_PAYMENT, SseSplitter, payment_required_in, payment_response_in, sse_data,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::ApiClient;
use crate::fetch::{self, FETCH_TIMEOUT, FetchError, FetchRequest};

/// The MCP protocol version asked for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";

/// One call of one tool.
#[derive(Debug, Clone)]
pub struct McpToolCall {
    /// The MCP endpoint (`https://tools.example/mcp`).
    pub url: String,
    /// The tool's name.
    pub tool: String,
    /// Its arguments: a JSON object.
    pub arguments: Value,
    /// A mandate to pay under (default: the tightest eligible one).
    pub mandate_id: Option<String>,
    /// The most to pay, as USDC text (`0.05`).
    pub max_amount: Option<String>,
    /// Why, in the agent's words (default: `MCP tool <name> at <url>`).
    pub purpose: Option<String>,
    /// An approval the owner gave for this payment.
    pub approval_id: Option<String>,
}

impl McpToolCall {
    /// A call of `tool` at `url` with `arguments`, paid under the defaults.
    pub fn new(url: impl Into<String>, tool: impl Into<String>, arguments: Value) -> Self {
        McpToolCall {
            url: url.into(),
            tool: tool.into(),
            arguments,
            mandate_id: None,
            max_amount: None,
            purpose: None,
            approval_id: None,
        }
    }

    fn payment_request(&self) -> FetchRequest {
        let mut request =
            FetchRequest::new(self.url.clone(), Some(Method::POST), HeaderMap::new(), None);
        request.mandate_id = self.mandate_id.clone();
        request.max_amount = self.max_amount.clone();
        request.approval_id = self.approval_id.clone();
        request.purpose = Some(
            self.purpose
                .clone()
                .unwrap_or_else(|| format!("MCP tool {} at {}", self.tool, self.url)),
        );
        request
    }
}

/// What a tool call ended with.
#[derive(Debug)]
pub struct McpToolOutcome {
    /// The `tools/call` result (the last one, when it was paid).
    pub result: Value,
    /// The settlement the server sent (`x402/payment-response`), if any.
    pub payment_response: Option<Value>,
    /// The payment as the wallet recorded it, when one was made.
    pub payment: Option<X402ResultResponse>,
}

/// Calls `call.tool` at `call.url`; when the tool asks for payment, pays through
/// `api` and calls it once more.
pub async fn call_tool(api: &ApiClient, call: &McpToolCall) -> Result<McpToolOutcome, FetchError> {
    if !call.arguments.is_object() {
        return Err(FetchError::Http(
            "the arguments of a tool call are a JSON object".into(),
        ));
    }
    let mut session = Session::open(&call.url, api.http().clone()).await?;
    let outcome = pay_for(api, call, &mut session).await;
    session.close().await;
    outcome
}

async fn pay_for(
    api: &ApiClient,
    call: &McpToolCall,
    session: &mut Session,
) -> Result<McpToolOutcome, FetchError> {
    let first = session.call_tool(&call.tool, &call.arguments, None).await?;
    let Some(payment_required) = payment_required_in(&first) else {
        return Ok(McpToolOutcome {
            result: first,
            payment_response: None,
            payment: None,
        });
    };
    let paid = fetch::pay(api, &call.payment_request(), payment_required).await?;
    let Some(payment) = paid.payment_payload.clone() else {
        fetch::report(api, &paid, None).await?;
        return Err(FetchError::Http("the wallet signed no payment".into()));
    };
    let second = session
        .call_tool(&call.tool, &call.arguments, Some(payment))
        .await;
    let payment_response = second.as_ref().ok().and_then(payment_response_in);
    let payment = fetch::report(api, &paid, payment_response.clone()).await?;
    Ok(McpToolOutcome {
        result: second?,
        payment_response,
        payment: Some(payment),
    })
}

/// A session with one MCP server.
struct Session {
    http: reqwest::Client,
    url: String,
    id: Option<String>,
    protocol: Option<String>,
    next_id: u64,
}

impl Session {
    /// Connects: `initialize`, then `notifications/initialized`.
    async fn open(url: &str, http: reqwest::Client) -> Result<Session, FetchError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| FetchError::Http(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::Http(format!(
                "{url} is not an http(s) MCP endpoint"
            )));
        }
        let mut session = Session {
            http,
            url: url.to_owned(),
            id: None,
            protocol: None,
            next_id: 0,
        };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "purser", "version": env!("CARGO_PKG_VERSION")},
        });
        let (initialized, headers) = session.request("initialize", params).await?;
        session.id = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        session.protocol = initialized
            .get("protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let answer = session.post(&notification).await?;
        if !answer.status().is_success() {
            return Err(FetchError::Http(format!(
                "{url} refused notifications/initialized: HTTP {}",
                answer.status()
            )));
        }
        Ok(session)
    }

    /// `tools/call`, with a payment in `_meta` when given; its result.
    async fn call_tool(
        &mut self,
        tool: &str,
        arguments: &Value,
        payment: Option<Value>,
    ) -> Result<Value, FetchError> {
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(payment) = payment {
            params["_meta"] = json!({META_PAYMENT: payment});
        }
        Ok(self.request("tools/call", params).await?.0)
    }

    /// A request, and its result with the answer's headers.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<(Value, HeaderMap), FetchError> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = self.post(&message).await?;
        let headers = answer.headers().clone();
        let response = read_response(answer, id, &self.url).await?;
        if let Some(error) = response.get("error") {
            return Err(FetchError::Http(format!(
                "{} answered {method} with error {}: {}",
                self.url,
                error.get("code").unwrap_or(&Value::Null),
                error.get("message").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        let result = response.get("result").cloned().ok_or_else(|| {
            FetchError::Http(format!("{} answered {method} without a result", self.url))
        })?;
        Ok((result, headers))
    }

    async fn post(&self, message: &Value) -> Result<reqwest::Response, FetchError> {
        let mut request = self
            .http
            .post(&self.url)
            .timeout(FETCH_TIMEOUT)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(message.to_string());
        if let Some(id) = &self.id {
            request = request.header(SESSION_HEADER, id);
        }
        if let Some(protocol) = &self.protocol {
            request = request.header(PROTOCOL_HEADER, protocol);
        }
        request
            .send()
            .await
            .map_err(|e| FetchError::Http(format!("cannot reach {}: {e}", self.url)))
    }

    /// Ends the session, if the server keeps one (best effort).
    async fn close(&self) {
        if let Some(id) = &self.id {
            let mut request = self
                .http
                .delete(&self.url)
                .timeout(FETCH_TIMEOUT)
                .header(SESSION_HEADER, id);
            if let Some(protocol) = &self.protocol {
                request = request.header(PROTOCOL_HEADER, protocol);
            }
            let _ = request.send().await;
        }
    }
}

fn answers(message: &Value, id: u64) -> bool {
    message.get("id").and_then(Value::as_u64) == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// The JSON-RPC response to request `id` in an answer: one JSON body (or a
/// batch), or the event carrying it in an event stream, read only as far as it.
async fn read_response(
    mut answer: reqwest::Response,
    id: u64,
    url: &str,
) -> Result<Value, FetchError> {
    let status = answer.status();
    let unreadable = |e: reqwest::Error| FetchError::Http(format!("cannot read {url}: {e}"));
    if !status.is_success() {
        let body = answer.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        return Err(FetchError::Http(if status == StatusCode::NOT_FOUND {
            format!("{url} answered HTTP 404: no MCP endpoint there, or the session ended")
        } else {
            format!("{url} answered HTTP {status}: {body}")
        }));
    }
    let content_type = answer
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let missing = || FetchError::Http(format!("{url} sent no answer to request {id}"));
    if content_type.starts_with("text/event-stream") {
        let mut events = SseSplitter::default();
        while let Some(chunk) = answer.chunk().await.map_err(unreadable)? {
            events.push(&chunk);
            while let Some(event) = events.next_event() {
                let message = sse_data(&event).and_then(|d| serde_json::from_str(&d).ok());
                if let Some(message) = message.filter(|m| answers(m, id)) {
                    return Ok(message);
                }
            }
        }
        return Err(missing());
    }
    let body: Value = answer.json().await.map_err(unreadable)?;
    match body {
        Value::Array(batch) => batch
            .into_iter()
            .find(|m| answers(m, id))
            .ok_or_else(missing),
        message if answers(&message, id) => Ok(message),
        _ => Err(missing()),
    }
}
