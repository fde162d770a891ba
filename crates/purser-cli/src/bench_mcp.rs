//! `purser bench mcp`: what MCP adds to an agent's calls. A real server (the
//! configured store, `/mcp` mounted as `purser serve` mounts it) and, at each
//! client count, the same work timed with and without MCP:
//!
//! - **direct**: `GET /api/mandates/{id}` as the agent (the REST baseline);
//! - **mcp ping**: a JSON-RPC `ping` POST to `/mcp`: the MCP transport alone
//!   (bearer check, JSON-RPC parsing, rmcp's stateless request handling), no
//!   tool and no call to the API;
//! - **mcp read**: the `get_mandate_status` tool over streamable HTTP — a JSON-RPC
//!   `tools/call` POST to `/mcp` with the agent's JWT as bearer, which the tool
//!   turns into that same REST call over loopback;
//! - **fetch pay**: `purser fetch`'s library path (`purser_client::fetch::fetch`)
//!   paying a payment link's payUrl on the ledger rail: the 402, the wallet's
//!   signature (`POST /api/payments/x402`), the paid retry (verify, settle), the
//!   report (`…/result`);
//! - **mcp pay**: the `fetch_paid_url` tool paying another link of the same
//!   price: the same steps, run by the MCP server.
//!
//! The server is stateless: one `initialize` (and `notifications/initialized`)
//! per run gives the protocol version, then every call is a `tools/call` POST
//! carrying `MCP-Protocol-Version`. Each answer is checked (the mandate read back;
//! no tool result an error; every payment 200 and settled) and one wrong answer
//! fails the run. Afterwards each link's merchant must hold exactly the price
//! times its paid calls (warm-ups included), the buyer's mandate must have spent
//! exactly their sum with nothing pending, and the ledger's invariants must hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use purser_client::ApiClient;
use purser_client::fetch::{FetchRequest, fetch};
use purser_service::{MandateDraft, Principal};
use purser_types::{Currency, MandateId, Usdc, WalletId};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderMap};
use serde_json::{Value, json};

use crate::bench::{Measurement, Report, Target, agent_under_mandate, bench_key};
use crate::bench_link::priced_link;
use crate::cli::BenchMcpArgs;
use crate::commands::{Context, Reported};
use crate::serve::{Embedded, open_store};

/// The price of one use of each payment link…
const PRICE: &str = "0.001";
/// …in atomic units.
const PRICE_ATOMIC: u64 = 1_000;
/// The protocol version the client asks for at `initialize`.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// Why the buyer pays, the same both ways.
const PURPOSE: &str = "benchmark purchase";

/// What one row times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Direct,
    McpPing,
    McpRead,
    FetchPay,
    McpPay,
}

impl Run {
    const ALL: [Run; 5] = [
        Run::Direct,
        Run::McpPing,
        Run::McpRead,
        Run::FetchPay,
        Run::McpPay,
    ];

    fn label(self) -> &'static str {
        match self {
            Run::Direct => "direct",
            Run::McpPing => "mcp ping",
            Run::McpRead => "mcp read",
            Run::FetchPay => "fetch pay",
            Run::McpPay => "mcp pay",
        }
    }

    fn pays(self) -> bool {
        matches!(self, Run::FetchPay | Run::McpPay)
    }

    /// A tool call.
    fn is_tool(self) -> bool {
        matches!(self, Run::McpRead | Run::McpPay)
    }
}

/// Warm-up calls before each timed run: every client's connection open, caches warm.
fn warmup(clients: usize) -> usize {
    (clients * 4).max(20)
}

/// A merchant wallet selling through one payment link.
struct Shop {
    owner: Principal,
    pay_url: String,
}

impl Shop {
    async fn received(&self, server: &Embedded) -> Result<Usdc> {
        let wallet = self.owner.wallet();
        Ok(server
            .purser
            .wallet(&self.owner, wallet)
            .await?
            .balances
            .available)
    }
}

/// The server, the buying agent under a signed mandate, and two shops: one paid
/// through MCP, one through `purser fetch`'s path.
struct Rig {
    server: Embedded,
    buyer_owner: Principal,
    jwt: String,
    mandate: MandateId,
    mcp_shop: Shop,
    fetch_shop: Shop,
}

async fn rig(url: &str, budget: Usdc) -> Result<Rig> {
    let server = Embedded::start(open_store(url, 256).await?).await?;
    let purser = &server.purser;
    let wallet = |name: &'static str| async move {
        let created = purser
            .create_wallet(name, Currency::Usdc, &bench_key()?)
            .await?;
        Ok::<WalletId, anyhow::Error>(created.value.wallet.id)
    };
    let buyer = wallet("buyer").await?;
    let buyer_owner = Principal::Owner { wallet: buyer };
    purser
        .fund_wallet(&buyer_owner, buyer, budget, &bench_key()?)
        .await?;
    let draft = MandateDraft {
        description: "benchmark purchases".into(),
        limit_amount: budget,
        host_allowlist: vec![server.base.trim_start_matches("http://").to_owned()],
        valid_for_seconds: Some(3600),
        ..MandateDraft::default()
    };
    let (jwt, mandate) = agent_under_mandate(purser, buyer, &draft).await?;
    let mut shops = Vec::with_capacity(2);
    for name in ["merchant paid over mcp", "merchant paid by fetch"] {
        let owner = Principal::Owner {
            wallet: wallet(name).await?,
        };
        let pay_url = priced_link(purser, &owner, PRICE_ATOMIC).await?;
        shops.push(Shop { owner, pay_url });
    }
    let fetch_shop = shops.pop().context("two shops")?;
    let mcp_shop = shops.pop().context("two shops")?;
    Ok(Rig {
        server,
        buyer_owner,
        jwt,
        mandate,
        mcp_shop,
        fetch_shop,
    })
}

/// What every client needs to make any of the four calls.
struct Caller {
    http: reqwest::Client,
    /// The agent, for `purser fetch`'s path.
    api: ApiClient,
    base: String,
    jwt: String,
    mandate: String,
    /// The version `initialize` agreed, sent as `MCP-Protocol-Version`.
    protocol: String,
    mcp_pay_url: String,
    fetch_pay_url: String,
}

impl Caller {
    async fn call(&self, run: Run, id: usize) -> Result<()> {
        match run {
            Run::Direct => self.direct().await,
            Run::McpPing => {
                let message = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
                let result = self.rpc(&message, Some(&self.protocol)).await?;
                ensure!(result == json!({}), "ping answered {result}");
                Ok(())
            }
            Run::McpRead => {
                let mandate = self
                    .tool(id, "get_mandate_status", json!({"mandateId": self.mandate}))
                    .await?;
                ensure!(
                    mandate["mandateId"] == self.mandate.as_str(),
                    "get_mandate_status answered another mandate: {mandate}"
                );
                Ok(())
            }
            Run::FetchPay => self.fetch_pay().await,
            Run::McpPay => {
                let arguments = json!({
                    "url": self.mcp_pay_url, "maxAmount": PRICE, "mandateId": self.mandate,
                    "purpose": PURPOSE,
                });
                let fetched = self.tool(id, "fetch_paid_url", arguments).await?;
                ensure!(
                    fetched["status"] == 200 && fetched["payment"]["status"] == "settled",
                    "fetch_paid_url did not pay and settle: {fetched}"
                );
                Ok(())
            }
        }
    }

    async fn direct(&self) -> Result<()> {
        let answer = self
            .http
            .get(format!("{}/api/mandates/{}", self.base, self.mandate))
            .bearer_auth(&self.jwt)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        ensure!(
            status == StatusCode::OK && body["mandateId"] == self.mandate.as_str(),
            "GET /api/mandates answered {status}: {body}"
        );
        Ok(())
    }

    async fn fetch_pay(&self) -> Result<()> {
        let mut request =
            FetchRequest::new(self.fetch_pay_url.clone(), None, HeaderMap::new(), None);
        request.mandate_id = Some(self.mandate.clone());
        request.max_amount = Some(PRICE.into());
        request.purpose = Some(PURPOSE.into());
        let outcome = fetch(&self.api, &request).await?;
        let settled = outcome
            .payment
            .as_ref()
            .is_some_and(|payment| payment.status == "settled");
        ensure!(
            outcome.response.status == StatusCode::OK && settled,
            "purser fetch did not pay and settle: HTTP {}, payment {:?}",
            outcome.response.status,
            outcome.payment.as_ref().map(|p| &p.status)
        );
        Ok(())
    }

    /// One JSON-RPC POST to `/mcp`; returns the answer (its `result`).
    async fn rpc(&self, message: &Value, protocol: Option<&str>) -> Result<Value> {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(&self.jwt)
            .header(ACCEPT, "application/json, text/event-stream")
            .json(message);
        if let Some(version) = protocol {
            request = request.header("MCP-Protocol-Version", version);
        }
        let answer = request.send().await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        ensure!(
            status == StatusCode::OK,
            "/mcp answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let answer: Value = serde_json::from_slice(&body).with_context(|| {
            format!(
                "/mcp answered no JSON-RPC message: {}",
                String::from_utf8_lossy(&body)
            )
        })?;
        ensure!(
            answer["id"] == message["id"],
            "/mcp answered another request: {answer}"
        );
        answer
            .get("result")
            .cloned()
            .with_context(|| format!("/mcp answered a JSON-RPC error: {answer}"))
    }

    /// `tools/call`: the tool's `structuredContent`, unless the result is an error.
    async fn tool(&self, id: usize, name: &str, arguments: Value) -> Result<Value> {
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": name, "arguments": arguments },
        });
        let result = self.rpc(&message, Some(&self.protocol)).await?;
        ensure!(
            result["isError"] != true,
            "{name} returned a tool error: {}",
            result["structuredContent"]
        );
        Ok(result["structuredContent"].clone())
    }
}

/// `initialize` and `notifications/initialized`, as an MCP client opens: the
/// protocol version the server agreed to.
async fn initialize(caller: &Caller) -> Result<String> {
    let message = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": { "name": "purser-bench", "version": env!("CARGO_PKG_VERSION") },
        },
    });
    let result = caller.rpc(&message, None).await?;
    ensure!(
        result["capabilities"]["tools"].is_object(),
        "initialize: the server offers no tools: {result}"
    );
    let version = result["protocolVersion"]
        .as_str()
        .with_context(|| format!("initialize answered no protocolVersion: {result}"))?
        .to_owned();
    let initialized = caller
        .http
        .post(format!("{}/mcp", caller.base))
        .bearer_auth(&caller.jwt)
        .header(ACCEPT, "application/json, text/event-stream")
        .header("MCP-Protocol-Version", &version)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await?
        .status();
    ensure!(
        initialized == StatusCode::ACCEPTED,
        "notifications/initialized answered {initialized}"
    );
    Ok(version)
}

/// `count` calls of `run` from `clients` clients, each call after the previous
/// one answered; the latencies of all.
async fn load(
    caller: &Arc<Caller>,
    run: Run,
    count: usize,
    clients: usize,
) -> Result<(std::time::Duration, Vec<u64>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (caller, next) = (caller.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let sent = Instant::now();
                    caller.call(run, n + 1).await?;
                    latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies_us = Vec::with_capacity(count);
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    Ok((started.elapsed(), latencies_us))
}

/// One database at one client count: the four rows and what was checked.
struct Level {
    rows: Vec<Measurement>,
    check: Value,
}

async fn measure(url: &str, database: &str, clients: usize, args: &BenchMcpArgs) -> Result<Level> {
    let warm = warmup(clients);
    let paid_per_shop = (warm + args.pay_calls) as u64;
    let budget = Usdc::from_atomic(PRICE_ATOMIC.saturating_mul(2 * paid_per_shop))?;
    let rig = rig(url, budget).await?;
    let outcome = measure_on(&rig, database, clients, args, paid_per_shop).await;
    rig.server.stop().await?;
    outcome
}

async fn measure_on(
    rig: &Rig,
    database: &str,
    clients: usize,
    args: &BenchMcpArgs,
    paid_per_shop: u64,
) -> Result<Level> {
    let base = rig.server.base.clone();
    let mut caller = Caller {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()?,
        api: ApiClient::new(&base, Some(rig.jwt.clone()))?,
        base,
        jwt: rig.jwt.clone(),
        mandate: rig.mandate.to_string(),
        protocol: String::new(),
        mcp_pay_url: rig.mcp_shop.pay_url.clone(),
        fetch_pay_url: rig.fetch_shop.pay_url.clone(),
    };
    caller.protocol = initialize(&caller).await?;
    let caller = Arc::new(caller);
    let warm = warmup(clients);
    let mut rows = Vec::with_capacity(Run::ALL.len());
    let mut mcp_results = 0;
    for run in Run::ALL {
        let count = if run.pays() {
            args.pay_calls
        } else {
            args.calls
        };
        load(&caller, run, warm, clients).await?;
        let (elapsed, latencies) = load(&caller, run, count, clients).await?;
        if run.is_tool() {
            mcp_results += warm + count;
        }
        rows.push(Measurement::new(database, 0, clients, elapsed, latencies).with_run(run.label()));
    }

    // Every paid call moved the price to its merchant, out of the buyer's mandate.
    let expected = Usdc::from_atomic(PRICE_ATOMIC.saturating_mul(paid_per_shop))?;
    let mcp_received = rig.mcp_shop.received(&rig.server).await?;
    let fetch_received = rig.fetch_shop.received(&rig.server).await?;
    for (how, received) in [("MCP", mcp_received), ("fetch", fetch_received)] {
        ensure!(
            received == expected,
            "the merchant paid by {how} received {received} USDC for {paid_per_shop} payments of {PRICE}"
        );
    }
    let mandate = rig
        .server
        .purser
        .mandate(&rig.buyer_owner, rig.mandate)
        .await?
        .mandate;
    ensure!(
        mandate.spent_amount.atomic() == 2 * expected.atomic()
            && mandate.pending_amount == Usdc::ZERO,
        "the mandate spent {} with {} pending for {} payments of {PRICE}",
        mandate.spent_amount,
        mandate.pending_amount,
        2 * paid_per_shop
    );
    let ledger = rig.server.purser.store().check_ledger().await?;
    ensure!(
        ledger.is_ok(),
        "ledger invariants broken after the benchmark: {:?}",
        ledger.violations
    );
    let check = json!({
        "database": rows.first().map(Measurement::label), "clients": clients,
        "protocolVersion": caller.protocol,
        "mcpResults": mcp_results, "mcpErrors": 0,
        "paidPerMerchant": paid_per_shop, "price": PRICE,
        "mcpMerchantReceived": mcp_received.to_string(),
        "fetchMerchantReceived": fetch_received.to_string(),
        "mandateSpent": mandate.spent_amount.to_string(),
        "mandatePending": mandate.pending_amount.to_string(),
        "ledgerOk": true,
    });
    Ok(Level { rows, check })
}

/// What MCP adds: its row beside the same work without MCP.
fn overhead(rows: &[Measurement]) -> Value {
    let find = |label: &str| {
        rows.iter()
            .find(|m| m.run() == Some(label))
            .map(|m| (m.per_second(), m.percentile_ms(0.50)))
    };
    let pair = |mcp: &str, plain: &str| match (find(mcp), find(plain)) {
        (Some((mcp_rate, mcp_p50)), Some((rate, p50))) => json!({
            "throughputRatio": mcp_rate / rate, "addedP50Ms": mcp_p50 - p50,
        }),
        _ => Value::Null,
    };
    json!({
        "ping": pair("mcp ping", "direct"),
        "read": pair("mcp read", "direct"),
        "pay": pair("mcp pay", "fetch pay"),
    })
}

pub(crate) async fn mcp(ctx: &Context, args: BenchMcpArgs) -> Result<()> {
    if args.clients.is_empty() || args.clients.contains(&0) {
        return Err(Reported("--clients takes client counts above 0, e.g. 1,16".into()).into());
    }
    if args.calls == 0 || args.pay_calls == 0 {
        return Err(Reported("--calls and --pay-calls must be above 0".into()).into());
    }
    sqlx::any::install_default_drivers();
    let report = Report {
        unit: "calls",
        show_batch: false,
    };
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    for database in &args.db {
        for &clients in &args.clients {
            let target = Target::create(database).await?;
            let measured = measure(&target.url, database, clients, &args).await;
            target.cleanup().await;
            let level = measured?;
            let mut check = level.check;
            check["overhead"] = overhead(&level.rows);
            if !ctx.json {
                for row in &level.rows {
                    println!("{}", report.line(row));
                }
                let ratio = |run: &str| check["overhead"][run]["throughputRatio"].as_f64();
                let added = |run: &str| check["overhead"][run]["addedP50Ms"].as_f64();
                println!(
                    "  MCP: ping {:.2}x direct ({:+.2} ms p50), read {:.2}x direct ({:+.2} ms p50), pay {:.2}x fetch ({:+.2} ms p50); {} tool results, none an error; each merchant received {} USDC, ledger OK",
                    ratio("ping").unwrap_or(0.0),
                    added("ping").unwrap_or(0.0),
                    ratio("read").unwrap_or(0.0),
                    added("read").unwrap_or(0.0),
                    ratio("pay").unwrap_or(0.0),
                    added("pay").unwrap_or(0.0),
                    check["mcpResults"],
                    check["mcpMerchantReceived"].as_str().unwrap_or("?"),
                );
            }
            rows.extend(level.rows.iter().map(|row| report.json(row)));
            checks.push(check);
        }
    }
    if ctx.json {
        let body = json!({
            "calls": args.calls, "payCalls": args.pay_calls, "price": PRICE,
            "rows": rows, "checks": checks,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}
