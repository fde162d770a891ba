//! Paid MCP tools: the example MCP server (`examples/paid-mcp`, tools that know
//! nothing about payments) behind `purser gateway` pricing one tool, a
//! `purser serve` as facilitator and wallet server, and an agent calling the tools
//! with `purser_client::mcp::call_tool` under a signed mandate, paying on the
//! internal ledger rail over x402's MCP transport.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use purser_client::ApiClient;
use purser_client::fetch::FetchError;
use purser_client::mcp::{McpToolCall, McpToolOutcome, call_tool};
use purser_example_paid_mcp::{Answers, monetize_toml, router};
use purser_types::payments::ReservationStatus;
use serde_json::{Value, json};

use common::paid::{Gateway, get_text};
use common::{Env, Server, add_agent, as_agent};

fn balance(env: &Env) -> String {
    env.json(&["wallet", "balance"])["balances"]["available"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The example MCP server on a free port; its base URL.
async fn mcp_server(answers: Answers) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(answers)).await.unwrap() });
    url
}

/// An agent of `buyer` under a signed mandate for `host` (0.1 USDC); its API
/// client and the mandate's id.
fn agent_for(buyer: &Env, server: &Server, host: &str) -> (ApiClient, String, String) {
    let agent = add_agent(buyer, "tool-user");
    let args = [
        "mandate",
        "create",
        "--description",
        "Weather tools",
        "--limit",
        "0.1",
        "--host",
        host,
    ];
    let (ok, drafted) = as_agent(buyer, &agent.jwt, &args);
    assert!(ok, "{drafted}");
    let mandate = drafted["mandateId"].as_str().unwrap().to_owned();
    buyer.json(&["mandate", "approve", &mandate]);
    (
        ApiClient::new(&server.base, Some(agent.jwt.clone())).unwrap(),
        mandate,
        agent.jwt,
    )
}

/// Calls `tool` of Purser's own MCP server (`/mcp` on `purser serve`) as the agent
/// whose JWT is `jwt`: initialize, then the call, as stateless streamable HTTP.
async fn purser_tool(base: &str, jwt: &str, tool: &str, arguments: Value) -> Value {
    let http = reqwest::Client::new();
    let post = |body: Value, version: Option<&str>| {
        let mut request = http
            .post(format!("{base}/mcp"))
            .bearer_auth(jwt)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
        }
        request.send()
    };
    let init: Value = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "paid-mcp-test", "version": "1"}}}),
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let version = init["result"]["protocolVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer: Value = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}),
        Some(&version),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    answer["result"].clone()
}

async fn spent(api: &ApiClient, mandate: &str) -> (String, String) {
    let status = api
        .get(&format!("/api/mandates/{mandate}"))
        .await
        .unwrap()
        .body;
    let text = |key: &str| status[key].as_str().unwrap().to_owned();
    (text("spentAmount"), text("pendingSpentAmount"))
}

async fn call(api: &ApiClient, url: &str, tool: &str, arguments: Value) -> McpToolOutcome {
    let outcome = call_tool(api, &McpToolCall::new(url, tool, arguments)).await;
    outcome.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// A paid forecast through a gateway: served, settled, the settlement in the
/// result's `_meta`.
async fn paid_forecast(api: &ApiClient, mcp: &str, city: &str) {
    let paid = call(api, mcp, "forecast", json!({"city": city, "days": 2})).await;
    let result = &paid.result;
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["city"], city, "{result}");
    assert_eq!(
        result["structuredContent"]["days"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let settlement = &result["_meta"]["x402/payment-response"];
    assert_eq!(settlement["success"], true, "{result}");
    assert_eq!(settlement["network"], "purser:ledger");
    assert!(
        settlement["transaction"]
            .as_str()
            .unwrap()
            .starts_with("ledger:")
    );
    assert_eq!(paid.payment_response.as_ref(), Some(settlement));
    let payment = paid.payment.unwrap();
    assert_eq!(payment.status, "settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_pay_for_priced_mcp_tools_through_the_gateway() {
    let buyer = Env::new();
    let server = Server::start(&buyer, &[], &[]);
    let base = server.base.as_str();
    buyer.json(&["wallet", "create", "--name", "Buyer", "--server", base]);
    buyer.ok(&["wallet", "fund", "--amount", "1"]);
    let seller = Env::new();
    let created = seller.json(&["wallet", "create", "--name", "Seller", "--server", base]);
    let pay_to = created["wallet"]["address"].as_str().unwrap().to_owned();
    let facilitator = format!("{base}/facilitator");

    // The example server answering with event streams and sessions, behind a
    // gateway pricing `forecast` with the example's own monetize.toml.
    let streaming = mcp_server(Answers::Stream).await;
    let gateway = Gateway::start(&seller, &monetize_toml(&pay_to), &streaming, &facilitator);
    let g = &gateway.base;
    let mcp = format!("{g}/mcp");
    let skill = get_text(&format!("{g}/skill.md")).await;
    assert!(
        skill.contains(&format!("| `{mcp}` | `forecast` | 0.01 |")),
        "{skill}"
    );
    let prices: Value = serde_json::from_str(&get_text(&format!("{g}/skill.json")).await).unwrap();
    assert_eq!(prices["mcpTools"][0]["priceAtomic"], "10000");

    let (api, mandate, jwt) = agent_for(&buyer, &server, g.trim_start_matches("http://"));
    paid_forecast(&api, &mcp, "Oslo").await;
    assert_eq!(
        (balance(&buyer), balance(&seller)),
        ("0.99".into(), "0.01".into())
    );
    assert_eq!(spent(&api, &mandate).await, ("0.01".into(), "0".into()));

    // An unpriced tool is free.
    let free = call(&api, &mcp, "ping", json!({})).await;
    assert_eq!(free.result["content"][0]["text"], "pong", "{}", free.result);
    assert!(free.payment.is_none() && free.payment_response.is_none());

    // The tool fails (30 days ahead): paid for, but not charged.
    let failed = call(&api, &mcp, "forecast", json!({"city": "Oslo", "days": 30})).await;
    assert_eq!(failed.result["isError"], true, "{}", failed.result);
    assert!(
        failed.payment_response.is_none(),
        "{:?}",
        failed.payment_response
    );
    let released = failed.payment.unwrap();
    assert_eq!(released.status, "failed");
    assert_eq!(released.reservation.status, ReservationStatus::Released);
    assert_eq!(
        (balance(&buyer), balance(&seller)),
        ("0.99".into(), "0.01".into())
    );
    assert_eq!(spent(&api, &mandate).await, ("0.01".into(), "0".into()));

    // Purser's own MCP fetch tool pays the paid tool for the agent.
    let fetched = purser_tool(
        base,
        &jwt,
        "fetch_paid_url",
        json!({"url": mcp, "mcpTool": "forecast", "mcpArguments": {"city": "Bergen"},
            "maxAmount": "0.01"}),
    )
    .await;
    assert_eq!(fetched["isError"], false, "{fetched}");
    let content = &fetched["structuredContent"];
    assert_eq!(content["payment"]["status"], "settled", "{fetched}");
    assert_eq!(content["paymentResponse"]["success"], true, "{fetched}");
    assert!(
        content["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Bergen"),
        "{fetched}"
    );
    assert!(
        fetched["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Paid 0.01 USDC")
    );
    assert_eq!(
        (balance(&buyer), balance(&seller)),
        ("0.98".into(), "0.02".into())
    );
    assert_eq!(spent(&api, &mandate).await, ("0.02".into(), "0".into()));

    // No mandate covers the gateway: the owner must approve, nothing is paid.
    let stranger = add_agent(&buyer, "no-mandate");
    let unmandated = ApiClient::new(base, Some(stranger.jwt)).unwrap();
    let refused = call_tool(
        &unmandated,
        &McpToolCall::new(&mcp, "forecast", json!({"city": "Oslo"})),
    )
    .await;
    match refused {
        Err(FetchError::ApprovalRequired { approval_url, .. }) => {
            assert!(approval_url.starts_with("http"), "{approval_url}")
        }
        other => panic!("expected approval_required, got {other:?}"),
    }

    // The same server answering plain JSON without sessions, behind another
    // gateway: paid the same way.
    let plain = mcp_server(Answers::Json).await;
    let other = Env::new();
    let json_gateway = Gateway::start(&other, &monetize_toml(&pay_to), &plain, &facilitator);
    let json_mcp = format!("{}/mcp", json_gateway.base);
    let (json_api, _, _) = agent_for(
        &buyer,
        &server,
        json_gateway.base.trim_start_matches("http://"),
    );
    paid_forecast(&json_api, &json_mcp, "Lima").await;
    assert_eq!(
        (balance(&buyer), balance(&seller)),
        ("0.97".into(), "0.03".into())
    );

    // tools/list through the gateway names the price.
    let listed: Value = reqwest::Client::new()
        .post(&json_mcp)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools = listed["result"]["tools"].as_array().unwrap();
    let forecast = tools.iter().find(|t| t["name"] == "forecast").unwrap();
    assert_eq!(
        forecast["_meta"]["purser/price"]["amount"], "0.01",
        "{listed}"
    );
    let ping = tools.iter().find(|t| t["name"] == "ping").unwrap();
    assert!(
        ping.get("_meta")
            .is_none_or(|m| m.get("purser/price").is_none())
    );

    drop(json_gateway);
    drop(gateway);
    server.stop();
}
