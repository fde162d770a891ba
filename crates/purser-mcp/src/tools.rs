//! The tools. Each one is a call (or a few) to Purser's HTTP API as the agent;
//! its result is the API's JSON as `structuredContent` plus a one-paragraph text
//! summary, and a failure is a tool error with the stable code and instructions.

use std::collections::BTreeMap;

use axum::http::request::Parts;
use purser_client::fetch::{FetchError, FetchRequest, fetch};
use purser_client::mcp::{McpToolCall, call_tool};
use purser_client::{ApiClient, ClientError, new_idempotency_key};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::guidance;

/// Every tool's name, in the order `tools/list` gives them. Names are stable.
pub const TOOL_NAMES: &[&str] = &[
    "get_agent_status",
    "create_intent_mandate",
    "get_mandate_status",
    "list_mandates",
    "get_eligible_mandates",
    "request_x402_payment",
    "report_x402_result",
    "fetch_paid_url",
    "request_payout",
    "get_payout_status",
    "create_payment_link",
    "list_payment_links",
    "get_payment_link",
    "update_payment_link",
    "disable_payment_link",
    "list_received_payments",
    "get_recent_transactions",
];

/// The largest response body a fetch returns to the agent, in bytes.
const FETCH_BODY_MAX_BYTES: usize = 64 * 1024;

/// What the server tells clients about itself at `initialize`.
const INSTRUCTIONS: &str = "Purser holds a USDC wallet for you. You spend only under an intent mandate your human signed once. Before paying, call get_eligible_mandates; to call a paid URL or paid MCP tool use fetch_paid_url with maxAmount. When a result carries a URL for your human (signUrl, approvalUrl, refundUrl), show it to them as is and wait; never try to approve it yourself. Never ask your human for keys or card numbers.";

/// Where a tool call's API client comes from.
#[derive(Debug, Clone)]
enum Principal {
    /// One agent for the whole session (stdio: a login from env or config).
    Fixed(ApiClient),
    /// The bearer token of each HTTP request (`/mcp` on `purser serve`).
    PerRequest(ApiClient),
}

/// The MCP server.
#[derive(Debug, Clone)]
pub struct PurserMcp {
    principal: Principal,
    tool_router: ToolRouter<Self>,
}

/// A tool's failure, before it becomes a tool error result.
#[derive(Debug)]
struct Failure {
    code: String,
    message: String,
    url: Option<String>,
    approval_id: Option<String>,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
            url: None,
            approval_id: None,
        }
    }

    fn into_result(self) -> CallToolResult {
        let body = guidance::error_body(
            &self.code,
            &self.message,
            self.url.as_deref(),
            self.approval_id.as_deref(),
        );
        let text = guidance::error_text(&self.code, &self.message, self.url.as_deref());
        let mut result = CallToolResult::structured_error(body);
        result.content = vec![ContentBlock::text(text)];
        result
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        match error {
            ClientError::Api { code, message, .. } => Failure::new(&code, message),
            ClientError::Transport(message) => Failure::new("service_unavailable", message),
        }
    }
}

impl From<FetchError> for Failure {
    fn from(error: FetchError) -> Failure {
        match error {
            FetchError::ApprovalRequired {
                approval_id,
                approval_url,
            } => Failure {
                code: "approval_required".into(),
                message: format!(
                    "no mandate covers this payment; approval {approval_id} waits for your human"
                ),
                url: Some(approval_url),
                approval_id: Some(approval_id),
            },
            FetchError::Api(error) => error.into(),
            FetchError::Http(message) => Failure::new("http_error", message),
        }
    }
}

/// A tool's success: the structured JSON and its text summary.
struct Done {
    value: Value,
    summary: String,
}

fn done(value: Value, summary: impl Into<String>) -> Result<Done, Failure> {
    Ok(Done {
        value,
        summary: summary.into(),
    })
}

fn respond(outcome: Result<Done, Failure>) -> CallToolResult {
    match outcome {
        Ok(Done { value, summary }) => {
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(summary)];
            result
        }
        Err(failure) => failure.into_result(),
    }
}

/// A path segment from an id the agent gave: ids are ASCII words, nothing else.
fn segment(id: &str) -> Result<&str, Failure> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(id)
    } else {
        Err(Failure::new(
            "invalid_request",
            format!("{id:?} is not an id"),
        ))
    }
}

/// `value[key]` as text, or "?" for a summary line.
fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("?")
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut url = url_query::Builder::default();
    for (key, value) in pairs {
        if let Some(value) = value {
            url.push(key, value);
        }
    }
    url.finish()
}

/// A tiny `?a=b&c=d` builder with percent-encoding of values.
mod url_query {
    #[derive(Default)]
    pub(super) struct Builder(String);

    impl Builder {
        pub(super) fn push(&mut self, key: &str, value: &str) {
            self.0.push(if self.0.is_empty() { '?' } else { '&' });
            self.0.push_str(key);
            self.0.push('=');
            for byte in value.bytes() {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    self.0.push(char::from(byte));
                } else {
                    self.0.push_str(&format!("%{byte:02X}"));
                }
            }
        }

        pub(super) fn finish(self) -> String {
            self.0
        }
    }
}

// ---- arguments ----

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

/// `create_intent_mandate`: what you ask your human to sign once.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MandateDraftArgs {
    /// What you will spend on, in plain words (1-1000 characters); your human reads it.
    pub(crate) description: String,
    /// An optional category, e.g. "research".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<String>,
    /// The total budget in USDC, a decimal string such as "1.00". Size it for about 100 calls.
    pub(crate) limit_amount: String,
    /// The largest single payment in USDC, e.g. "0.05".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_amount_per_tx: Option<String>,
    /// Hosts payments may go to: "api.example.com" or "*.example.com". Empty: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) host_allowlist: Vec<String>,
    /// How long it stays valid, in seconds from now (default 8 hours; at most one year).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) valid_for_seconds: Option<u64>,
    /// Start, RFC 3339 (default now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) valid_from: Option<String>,
    /// End, RFC 3339 (instead of validForSeconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) valid_until: Option<String>,
}

/// One mandate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MandateIdArgs {
    /// The mandate's id (`mnd_…`).
    pub(crate) mandate_id: String,
}

/// `list_mandates`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ListMandatesArgs {
    /// Only mandates in this status: pending_signature, signed, rejected, revoked, expired, exhausted.
    pub(crate) status: Option<String>,
    /// At most this many (1-500, default 50).
    pub(crate) limit: Option<u32>,
}

/// `get_eligible_mandates`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EligibleArgs {
    /// The payee's host (or the URL you will pay).
    pub(crate) host: String,
    /// The payment's amount in USDC, e.g. "0.01".
    pub(crate) amount: String,
}

/// Choices shared by the paying tools.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayOptions {
    /// A mandate to pay under (default: the tightest eligible one).
    pub(crate) mandate_id: Option<String>,
    /// The most you will pay in USDC; a higher price is refused with amount_above_max.
    pub(crate) max_amount: Option<String>,
    /// Why, in your words (1-500 characters).
    pub(crate) purpose: Option<String>,
    /// An approval your human gave for this payment (after approval_required).
    pub(crate) approval_id: Option<String>,
}

/// `request_x402_payment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct X402PayArgs {
    /// The server's PaymentRequired: the PAYMENT-REQUIRED header value (base64), or
    /// the PaymentRequired JSON (a v1 402 body or a decoded v2 header).
    pub(crate) payment_required: Value,
    /// The URL you are paying for; its host must be allowed by the mandate.
    pub(crate) url: String,
    /// The request's HTTP method (default GET).
    pub(crate) method: Option<String>,
    /// Payment choices.
    #[serde(flatten)]
    pub(crate) options: PayOptions,
}

/// `report_x402_result`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct X402ResultArgs {
    /// The reservation request_x402_payment returned.
    pub(crate) reservation_id: String,
    /// The server's PAYMENT-RESPONSE header (base64) or its JSON; omit when the paid
    /// request failed without one (the reservation is then released).
    pub(crate) payment_response: Option<Value>,
}

/// `fetch_paid_url`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FetchArgs {
    /// The URL (an HTTP API, or an MCP endpoint with mcpTool).
    pub(crate) url: String,
    /// The HTTP method (default GET, or POST with a body).
    pub(crate) method: Option<String>,
    /// Request headers, name → value.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// The request body (JSON text is sent as application/json).
    pub(crate) body: Option<String>,
    /// Call this tool of the MCP server at `url` instead of an HTTP request; a paid
    /// tool is paid with the x402 MCP transport.
    pub(crate) mcp_tool: Option<String>,
    /// The MCP tool's arguments (an object).
    pub(crate) mcp_arguments: Option<Value>,
    /// Payment choices.
    #[serde(flatten)]
    pub(crate) options: PayOptions,
}

/// `request_payout`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PayoutArgs {
    /// Your unique id for this payout; calling again with it never pays twice.
    pub(crate) payout_id: String,
    /// The destination address (0x…).
    pub(crate) to_address: String,
    /// How much USDC, e.g. "0.25".
    pub(crate) amount: String,
    /// A mandate to use; otherwise the tightest eligible one, or your human's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mandate_id: Option<String>,
}

/// One payout.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PayoutIdArgs {
    /// The payout's id, as you chose it.
    pub(crate) payout_id: String,
}

/// `create_payment_link`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LinkCreateArgs {
    /// The price of one use in USDC, e.g. "0.25".
    pub(crate) amount: String,
    /// What is paid for, shown to payers (1-1000 characters).
    pub(crate) description: String,
    /// Text delivered to the payer once paid (at most 32 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_content: Option<String>,
    /// A URL delivered to the payer once paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_url: Option<String>,
    /// After this (RFC 3339) it takes no payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
    /// How many payments it takes in all (1 charges one agent once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_uses: Option<u32>,
    /// Where each payment is announced (signed webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) webhook_url: Option<String>,
}

/// One payment link.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LinkIdArgs {
    /// The link's id (`lnk_…`).
    pub(crate) link_id: String,
}

/// `update_payment_link`: absent fields stay as they are.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LinkUpdateArgs {
    /// The link's id (`lnk_…`).
    #[serde(skip_serializing)]
    pub(crate) link_id: String,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// New resource content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_content: Option<String>,
    /// A new resource URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_url: Option<String>,
    /// A new end (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
    /// A new maximum number of uses (not below the uses already taken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_uses: Option<u32>,
    /// A new webhook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) webhook_url: Option<String>,
    /// "active" or "disabled".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<String>,
}

/// `list_received_payments`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReceivedArgs {
    /// The payment link (`lnk_…`) whose payments to list.
    pub(crate) link_id: String,
}

/// `get_recent_transactions`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RecentArgs {
    /// At most this many, newest first (1-100, default 10).
    pub(crate) limit: Option<u32>,
}

// ---- the server ----

impl PurserMcp {
    /// Tools acting as the agent `api` is logged in as (stdio).
    pub fn with_client(api: ApiClient) -> PurserMcp {
        PurserMcp {
            principal: Principal::Fixed(api),
            tool_router: Self::tool_router(),
        }
    }

    /// Tools acting as the bearer of each HTTP request, against `base` (no token).
    pub(crate) fn per_request(base: ApiClient) -> PurserMcp {
        PurserMcp {
            principal: Principal::PerRequest(base),
            tool_router: Self::tool_router(),
        }
    }

    fn api(&self, ctx: &RequestContext<RoleServer>) -> Result<ApiClient, Failure> {
        match &self.principal {
            Principal::Fixed(api) => Ok(api.clone()),
            Principal::PerRequest(base) => {
                let token = ctx
                    .extensions
                    .get::<Parts>()
                    .and_then(|parts| parts.headers.get(axum::http::header::AUTHORIZATION))
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .ok_or_else(|| {
                        Failure::new(
                            "unauthenticated",
                            "send your agent JWT as `Authorization: Bearer <token>`",
                        )
                    })?;
                Ok(base.with_token(Some(token.to_owned())))
            }
        }
    }
}

async fn me(api: &ApiClient) -> Result<Value, Failure> {
    Ok(api.get("/api/me").await?.body)
}

fn mandate_summary(m: &Value) -> String {
    format!(
        "Mandate {} is {}: {} USDC left of {} ({} spent, {} pending), until {}.",
        text(m, "mandateId"),
        text(m, "status"),
        text(m, "remainingAmount"),
        text(m, "limitAmount"),
        text(m, "spentAmount"),
        text(m, "pendingSpentAmount"),
        text(m, "validUntil"),
    )
}

fn mandates_summary(list: &Value, what: &str) -> String {
    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut lines = vec![format!("{} {what}.", items.len())];
    lines.extend(items.iter().map(mandate_summary));
    lines.join("\n")
}

#[tool_router]
impl PurserMcp {
    #[tool(
        description = "Your agent status and wallet balance: who you are, whether you are active, the wallet's available USDC, your signed mandates with what is left, and recent transactions."
    )]
    async fn get_agent_status(
        &self,
        Parameters(_): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let api = api?;
                let me = me(&api).await?;
                let wallet_id = segment(text(&me, "walletId"))?;
                let agent = match me["agentId"].as_str() {
                    Some(id) => {
                        api.get(&format!("/api/agents/{}", segment(id)?))
                            .await?
                            .body
                    }
                    None => Value::Null,
                };
                let wallet = api.get(&format!("/api/wallets/{wallet_id}")).await?.body;
                let mandates = api.get("/api/mandates?status=signed&limit=50").await?.body;
                let recent = api
                    .get(&format!("/api/wallets/{wallet_id}/transfers?limit=5"))
                    .await?
                    .body;
                let open = mandates["items"].as_array().map_or(0, Vec::len);
                let summary = format!(
                    "Agent {} ({}) on wallet {}: {} USDC available. {open} signed mandate(s).",
                    text(&agent, "id"),
                    text(&agent, "status"),
                    wallet_id,
                    text(&wallet["balances"], "available"),
                );
                done(
                    json!({
                        "role": me["role"],
                        "agent": agent,
                        "wallet": wallet["wallet"],
                        "balances": wallet["balances"],
                        "mandates": { "open": open, "items": mandates["items"] },
                        "recentTransactions": recent["items"],
                    }),
                    summary,
                )
            }
            .await,
        )
    }

    #[tool(
        description = "Propose an intent mandate (what you will spend on, a budget, allowed hosts, a validity window) for your human to sign once. Reuse an eligible mandate first (get_eligible_mandates). The answer's signUrl must be shown to your human; nothing can be paid under the mandate until they sign."
    )]
    async fn create_intent_mandate(
        &self,
        Parameters(args): Parameters<MandateDraftArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let m = api?
                    .post("/api/mandates", &args, &new_idempotency_key())
                    .await?
                    .body;
                let summary = format!(
                    "Mandate {} drafted ({}). Ask your human to open {} to review and sign it; it covers nothing until signed. Check it with get_mandate_status.",
                    text(&m, "mandateId"),
                    text(&m, "status"),
                    text(&m, "signUrl"),
                );
                done(m, summary)
            }
            .await,
        )
    }

    #[tool(
        description = "One mandate's status now (pending_signature, signed, rejected, revoked, expired, exhausted) with spentAmount, pendingSpentAmount and remainingAmount."
    )]
    async fn get_mandate_status(
        &self,
        Parameters(args): Parameters<MandateIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!("/api/mandates/{}", segment(&args.mandate_id)?);
                let m = api?.get(&path).await?.body;
                let summary = mandate_summary(&m);
                done(m, summary)
            }
            .await,
        )
    }

    #[tool(description = "Your mandates, newest first, optionally only those in one status.")]
    async fn list_mandates(
        &self,
        Parameters(args): Parameters<ListMandatesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!(
                    "/api/mandates{}",
                    query(&[
                        ("status", args.status.clone()),
                        ("limit", args.limit.map(|l| l.to_string())),
                    ])
                );
                let list = api?.get(&path).await?.body;
                let summary = mandates_summary(&list, "mandate(s)");
                done(list, summary)
            }
            .await,
        )
    }

    #[tool(
        description = "The signed mandates that could cover a payment of `amount` USDC to `host` right now, tightest fit first. Empty means you must propose a mandate (or get a one-off approval)."
    )]
    async fn get_eligible_mandates(
        &self,
        Parameters(args): Parameters<EligibleArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!(
                    "/api/mandates/eligible{}",
                    query(&[
                        ("host", Some(args.host.clone())),
                        ("amount", Some(args.amount.clone()))
                    ])
                );
                let list = api?.get(&path).await?.body;
                let summary = mandates_summary(&list, "eligible mandate(s)");
                done(list, summary)
            }
            .await,
        )
    }

    #[tool(
        description = "Pay an x402 PaymentRequired from a 402 answer: checks the payment against your mandates and the wallet's policy, reserves the funds and signs. Returns the header to send when retrying the request (headerName: headerValue) and a reservationId; afterwards call report_x402_result. Prefer fetch_paid_url, which does all of it."
    )]
    async fn request_x402_payment(
        &self,
        Parameters(args): Parameters<X402PayArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let api = api?;
                let method = parse_method(args.method.as_deref())?;
                let mut request = FetchRequest::new(args.url, method, HeaderMap::new(), None);
                apply(&mut request, args.options);
                let paid = purser_client::fetch::pay(&api, &request, args.payment_required).await?;
                let value = serde_json::to_value(&paid)
                    .map_err(|e| Failure::new("internal_error", e.to_string()))?;
                let summary = format!(
                    "Signed: retry the request with header {}: {} (valid until {}), then call report_x402_result with reservationId {}.",
                    text(&value, "headerName"),
                    text(&value, "headerValue"),
                    value["validBefore"],
                    text(&value["reservation"], "id"),
                );
                done(value, summary)
            }
            .await,
        )
    }

    #[tool(
        description = "Report how a request paid with request_x402_payment went, so the payment is committed (the server's PAYMENT-RESPONSE says it settled) or the funds released (no response)."
    )]
    async fn report_x402_result(
        &self,
        Parameters(args): Parameters<X402ResultArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!(
                    "/api/payments/x402/{}/result",
                    segment(&args.reservation_id)?
                );
                let body = json!({ "paymentResponse": args.payment_response });
                let outcome = api?.post(&path, &body, &new_idempotency_key()).await?.body;
                let summary = format!(
                    "Payment {}: reservation {} is {}.",
                    text(&outcome, "status"),
                    text(&outcome["reservation"], "id"),
                    text(&outcome["reservation"], "status"),
                );
                done(outcome, summary)
            }
            .await,
        )
    }

    #[tool(
        description = "Fetch a URL like curl and pay its x402 402 from the wallet, under your mandates; or, with mcpTool, call a tool of the MCP server at url and pay it if it is a paid tool (x402 MCP transport). You are charged only when the call succeeded. Always pass maxAmount."
    )]
    async fn fetch_paid_url(
        &self,
        Parameters(args): Parameters<FetchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let api = api?;
                match args.mcp_tool.clone() {
                    Some(tool) => fetch_mcp(&api, args, tool).await,
                    None => fetch_http(&api, args).await,
                }
            }
            .await,
        )
    }

    #[tool(
        description = "Send USDC to an address. Idempotent by your payoutId. Under a covering mandate it is authorized at once; otherwise it waits for your human (status pending_authorization with approvalUrl to show them)."
    )]
    async fn request_payout(
        &self,
        Parameters(args): Parameters<PayoutArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let key = format!("payout-{}", args.payout_id);
                let payout = api?.post("/api/payouts", &args, &key).await?.body;
                done(payout.clone(), payout_summary(&payout))
            }
            .await,
        )
    }

    #[tool(
        description = "A payout's status: pending_authorization, authorized, processing, succeeded, failed or expired."
    )]
    async fn get_payout_status(
        &self,
        Parameters(args): Parameters<PayoutIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!("/api/payouts/{}", segment(&args.payout_id)?);
                let payout = api?.get(&path).await?.body;
                done(payout.clone(), payout_summary(&payout))
            }
            .await,
        )
    }

    #[tool(
        description = "Create a payment link to get paid by other agents: they pay its payUrl (an x402 endpoint) and receive resourceContent / resourceUrl. maxUses 1 charges one agent once."
    )]
    async fn create_payment_link(
        &self,
        Parameters(args): Parameters<LinkCreateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let link = api?
                    .post("/api/payment-links", &args, &new_idempotency_key())
                    .await?
                    .body;
                done(link.clone(), link_summary(&link))
            }
            .await,
        )
    }

    #[tool(description = "Your payment links, newest first.")]
    async fn list_payment_links(
        &self,
        Parameters(_): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let list = api?.get("/api/payment-links").await?.body;
                let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                let mut lines = vec![format!("{} payment link(s).", items.len())];
                lines.extend(items.iter().map(link_summary));
                done(list.clone(), lines.join("\n"))
            }
            .await,
        )
    }

    #[tool(description = "One payment link, with its uses and status.")]
    async fn get_payment_link(
        &self,
        Parameters(args): Parameters<LinkIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!("/api/payment-links/{}", segment(&args.link_id)?);
                let link = api?.get(&path).await?.body;
                done(link.clone(), link_summary(&link))
            }
            .await,
        )
    }

    #[tool(
        description = "Change a payment link (absent fields stay as they are); status \"disabled\" or \"active\" turns it off or on."
    )]
    async fn update_payment_link(
        &self,
        Parameters(args): Parameters<LinkUpdateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!("/api/payment-links/{}", segment(&args.link_id)?);
                let link = api?.patch(&path, &args).await?.body;
                done(link.clone(), link_summary(&link))
            }
            .await,
        )
    }

    #[tool(description = "Turn a payment link off: it takes no more payments.")]
    async fn disable_payment_link(
        &self,
        Parameters(args): Parameters<LinkIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!("/api/payment-links/{}/disable", segment(&args.link_id)?);
                let link = api?
                    .post(&path, &json!({}), &new_idempotency_key())
                    .await?
                    .body;
                done(link.clone(), link_summary(&link))
            }
            .await,
        )
    }

    #[tool(description = "Payments one of your payment links received, newest first.")]
    async fn list_received_payments(
        &self,
        Parameters(args): Parameters<ReceivedArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let path = format!("/api/payment-links/{}/payments", segment(&args.link_id)?);
                let list = api?.get(&path).await?.body;
                let count = list["items"].as_array().map_or(0, Vec::len);
                done(list, format!("{count} received payment(s)."))
            }
            .await,
        )
    }

    #[tool(description = "The wallet's recent ledger transactions, newest first.")]
    async fn get_recent_transactions(
        &self,
        Parameters(args): Parameters<RecentArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let api = self.api(&ctx);
        respond(
            async move {
                let api = api?;
                let me = me(&api).await?;
                let wallet_id = segment(text(&me, "walletId"))?;
                let limit = args.limit.unwrap_or(10).clamp(1, 100);
                let page = api
                    .get(&format!("/api/wallets/{wallet_id}/transfers?limit={limit}"))
                    .await?
                    .body;
                let items = page["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                let mut lines = vec![format!("{} transaction(s).", items.len())];
                lines.extend(items.iter().map(|t| {
                    format!(
                        "{} {} {} USDC ({})",
                        text(t, "createdAt"),
                        text(t, "kind"),
                        text(t, "amount"),
                        text(t, "id")
                    )
                }));
                done(json!({ "items": page["items"] }), lines.join("\n"))
            }
            .await,
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PurserMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("purser", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

fn parse_method(method: Option<&str>) -> Result<Option<Method>, Failure> {
    method
        .map(|m| {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| Failure::new("invalid_request", format!("bad HTTP method {m:?}")))
        })
        .transpose()
}

fn apply(request: &mut FetchRequest, options: PayOptions) {
    request.mandate_id = options.mandate_id;
    request.max_amount = options.max_amount;
    request.purpose = options.purpose;
    request.approval_id = options.approval_id;
}

async fn fetch_http(api: &ApiClient, args: FetchArgs) -> Result<Done, Failure> {
    let mut headers = HeaderMap::new();
    for (name, value) in &args.headers {
        let bad = || Failure::new("invalid_request", format!("bad header {name:?}"));
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?,
            HeaderValue::from_str(value).map_err(|_| bad())?,
        );
    }
    let method = parse_method(args.method.as_deref())?;
    let body = args.body.map(String::into_bytes);
    let mut request = FetchRequest::new(args.url, method, headers, body);
    apply(&mut request, args.options);
    let outcome = fetch(api, &request).await?;
    let response = &outcome.response;
    let truncated = response.body.len() > FETCH_BODY_MAX_BYTES;
    let shown = &response.body[..response.body.len().min(FETCH_BODY_MAX_BYTES)];
    let value = json!({
        "status": response.status.as_u16(),
        "contentType": response.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        "body": String::from_utf8_lossy(shown),
        "truncated": truncated,
        "paymentResponse": outcome.payment_response,
        "payment": outcome.payment,
    });
    if outcome.refused_after_payment() {
        return Err(Failure::new(
            "http_error",
            "the service still answered 402 after being paid; you were not charged",
        ));
    }
    let paid = match &outcome.payment {
        Some(p) => format!(" Paid {} USDC ({}).", p.reservation.amount, p.status),
        None => String::new(),
    };
    let summary = format!(
        "HTTP {}.{paid}\n{}",
        response.status.as_u16(),
        String::from_utf8_lossy(shown)
    );
    done(value, summary)
}

async fn fetch_mcp(api: &ApiClient, args: FetchArgs, tool: String) -> Result<Done, Failure> {
    let call = McpToolCall {
        url: args.url,
        tool,
        arguments: args.mcp_arguments.unwrap_or_else(|| json!({})),
        mandate_id: args.options.mandate_id,
        max_amount: args.options.max_amount,
        purpose: args.options.purpose,
        approval_id: args.options.approval_id,
    };
    let outcome = call_tool(api, &call).await?;
    let result_text = outcome.result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let paid = match &outcome.payment {
        Some(p) => format!(" Paid {} USDC ({}).", p.reservation.amount, p.status),
        None => String::new(),
    };
    let is_error = outcome.result["isError"].as_bool().unwrap_or(false);
    let summary = format!(
        "Tool {} {}.{paid}\n{result_text}",
        call.tool,
        if is_error { "failed" } else { "answered" }
    );
    done(
        json!({
            "result": outcome.result,
            "paymentResponse": outcome.payment_response,
            "payment": outcome.payment,
        }),
        summary,
    )
}

fn payout_summary(payout: &Value) -> String {
    let status = text(payout, "status");
    match payout["approvalUrl"].as_str() {
        Some(url) if status == "pending_authorization" => format!(
            "Payout {} of {} USDC waits for your human: ask them to open {url}; then check get_payout_status.",
            text(payout, "id"),
            text(payout, "amount"),
        ),
        _ => format!(
            "Payout {} of {} USDC to {} is {}.",
            text(payout, "id"),
            text(payout, "amount"),
            text(payout, "toAddress"),
            status
        ),
    }
}

fn link_summary(link: &Value) -> String {
    format!(
        "Link {} ({}): {} USDC for {:?}, {} use(s) taken; pay at {}",
        text(link, "id"),
        text(link, "status"),
        text(link, "amount"),
        text(link, "description"),
        link["usesCount"],
        text(link, "payUrl"),
    )
}
