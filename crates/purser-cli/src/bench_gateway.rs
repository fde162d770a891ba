//! `purser bench gateway`: what the Monetize gateway adds in front of an API, and
//! what x402-rs's axum middleware (`x402-axum`) adds in the API itself.
//!
//! Everything runs in this process: an upstream API (axum on a loopback port,
//! `POST /api/query` and `POST /open/query` answering a small JSON body), a real
//! Purser server (a temporary SQLite file, sandbox funding) as the facilitator and
//! wallet server, and the gateway (`gateway_router` on its own loopback port) in
//! front of the upstream, pricing `POST /api/query` and leaving `/open/query` free.
//! Beside them, the same handler serves on a third port behind `x402-axum`, with
//! Purser's facilitator as its facilitator: `POST /api/query` priced at the same
//! 0.01 USDC on Base Sepolia (`exact`, V2), and `POST /ledger/query` priced with the
//! gateway's own requirement on Purser's ledger rail, payable to a third wallet.
//! At each concurrency the same request is timed six ways:
//!
//! - **direct**: the upstream itself;
//! - **free**: an unpriced path through the gateway (the pure proxy);
//! - **unpaid**: the priced path without payment (the 402 answer);
//! - **x402-axum unpaid**: `x402-axum`'s `/api/query` without payment (its 402;
//!   the facilitator's `/supported`, which the middleware adds to every 402, is
//!   fetched once before the clock starts and stays in its 10-minute cache);
//! - **paid**: the priced path with a payment on the internal ledger rail, signed
//!   before the clock starts (an agent under a signed mandate pays the route's
//!   `PAYMENT-REQUIRED` through `POST /api/payments/x402`, each with a fresh
//!   idempotency key) and sent once: the gateway has it verified by the
//!   facilitator, forwards the call, and has it settled (a ledger commit). Every
//!   answer must be 200 with a `PAYMENT-RESPONSE` saying `success: true`;
//! - **x402-axum paid**: the same for `x402-axum`'s `/ledger/query`, paid by the
//!   same agent: the middleware has the payment verified, calls the handler and has
//!   it settled by the same facilitator.
//!
//! Each answer is checked; a wrong one fails the benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::Address;
use anyhow::{Context as _, Result, anyhow, ensure};
use axum::Json;
use axum::routing::post;
use purser_gateway::{GatewayConfig, Paywall, PaywallOptions, Upstream, gateway_router};
use purser_service::{MandateDraft, Principal};
use purser_types::x402::{
    HEADER_PAYMENT_REQUIRED, HEADER_PAYMENT_RESPONSE, HEADER_PAYMENT_SIGNATURE, LEDGER_NETWORK,
    decode_header,
};
use purser_types::{Currency, Usdc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use x402_axum::X402Middleware;
use x402_chain_eip155::{KnownNetworkEip155 as _, V2Eip155Exact};
use x402_types::networks::USDC;
use x402_types::proto::v2;

use crate::bench::{Measurement, agent_under_mandate, bench_key};
use crate::cli::BenchGatewayArgs;
use crate::commands::{Context, Reported};
use crate::serve::{Embedded, open_store};

/// The price of one call of the priced route…
const PRICE: &str = "0.01";
/// …in atomic units.
const PRICE_ATOMIC: u64 = 10_000;
/// What every call sends.
const BODY: &str = r#"{"q":"life"}"#;
/// Longest validity Purser signs a payment for: pre-signed payments must outlive
/// the signing of all the others.
const PAYMENT_TIMEOUT_SECS: u64 = 3600;
/// Callers that pre-sign payments at once.
const SIGNERS: usize = 8;

/// A server task, stopped when dropped.
struct Background(tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A free loopback port and its base URL.
async fn listen() -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    Ok((listener, base))
}

/// Serves `app` on `listener` until dropped.
fn serve_on(listener: TcpListener, app: axum::Router) -> Background {
    Background(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "a benchmark server stopped");
        }
    }))
}

/// Serves `app` on a free loopback port: its base URL and the task.
async fn serve(app: axum::Router) -> Result<(String, Background)> {
    let (listener, base) = listen().await?;
    Ok((base, serve_on(listener, app)))
}

/// The upstream's one handler: a small JSON answer.
async fn answer(Json(input): Json<Value>) -> Json<Value> {
    let q = input["q"].as_str().unwrap_or("?");
    Json(json!({"answer": format!("42 for {q}")}))
}

/// The API behind the gateway: the same small JSON answer on both paths.
fn upstream_app() -> axum::Router {
    axum::Router::new()
        .route("/api/query", post(answer))
        .route("/open/query", post(answer))
}

/// The same API behind x402-rs's axum middleware, served on a free loopback port
/// with `facilitator` as its facilitator.
struct X402Axum {
    /// `POST /api/query`: 0.01 USDC on Base Sepolia (`exact`, V2), to the seller.
    quoted_url: String,
    /// `POST /ledger/query`: `ledger`, a V2 requirement on Purser's ledger rail.
    paid_url: String,
    _task: Background,
}

impl X402Axum {
    async fn start(facilitator: &str, pay_to: Address, ledger: Value) -> Result<X402Axum> {
        let (listener, base) = listen().await?;
        let quoted_url = format!("{base}/api/query");
        let paid_url = format!("{base}/ledger/query");
        let x402 = X402Middleware::try_new(facilitator).map_err(|error| {
            anyhow!("x402-axum rejects the facilitator URL {facilitator}: {error}")
        })?;
        // The middleware enriches every 402 from the facilitator's `/supported`,
        // cached for 10 minutes (a failed fetch is not cached, and retried on every
        // call): fetched here so that no timed call waits for it.
        x402.facilitator()
            .supported()
            .await
            .context("x402-axum cannot read the facilitator's /supported")?;
        let on_base_sepolia = x402
            .with_price_tag(V2Eip155Exact::price_tag(
                pay_to,
                USDC::base_sepolia().amount(PRICE_ATOMIC),
            ))
            .with_description("Answer one question".to_owned())
            .with_mime_type("application/json".to_owned())
            .with_resource(reqwest::Url::parse(&quoted_url)?);
        // x402-axum takes any V2 requirement as a price tag (its built-in ones are
        // for EVM, Solana and Aptos); this one is paid and settled by Purser's
        // facilitator on the ledger rail, with no chain.
        let on_ledger = x402
            .with_price_tag(v2::PriceTag {
                requirements: serde_json::from_value(ledger)
                    .context("x402-axum cannot read the ledger rail's requirement")?,
                enricher: None,
            })
            .with_description("Answer one question".to_owned())
            .with_mime_type("application/json".to_owned())
            .with_resource(reqwest::Url::parse(&paid_url)?);
        let app = axum::Router::new()
            .route("/api/query", post(answer).layer(on_base_sepolia))
            .route("/ledger/query", post(answer).layer(on_ledger));
        Ok(X402Axum {
            quoted_url,
            paid_url,
            _task: serve_on(listener, app),
        })
    }
}

/// The `PAYMENT-REQUIRED` header of `url`'s 402.
async fn quote(url: &str) -> Result<String> {
    let answer = reqwest::Client::new()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(BODY)
        .send()
        .await?;
    let status = answer.status();
    ensure!(
        status == reqwest::StatusCode::PAYMENT_REQUIRED,
        "{url} answered {status} without payment, not 402"
    );
    Ok(answer
        .headers()
        .get(HEADER_PAYMENT_REQUIRED)
        .and_then(|value| value.to_str().ok())
        .with_context(|| format!("{url} did not answer with {HEADER_PAYMENT_REQUIRED}"))?
        .to_owned())
}

fn routes_toml(pay_to: &str) -> String {
    format!(
        r#"
[service]
name = "Answers API"
description = "Answers any question."
pay_to = "{pay_to}"

[[route]]
method = "POST"
path = "/api/query"
price = "{PRICE}"
description = "Answer one question"
"#
    )
}

/// What a call must answer.
#[derive(Clone, Copy)]
enum Expect {
    /// 200 with the upstream's JSON.
    Answer,
    /// 402 with `PAYMENT-REQUIRED`.
    PaymentRequired,
    /// 200 with the upstream's JSON and a successful `PAYMENT-RESPONSE`.
    Paid,
}

/// Sends one call and checks its answer.
async fn call(
    http: &reqwest::Client,
    url: &str,
    payment: Option<&str>,
    expect: Expect,
) -> Result<()> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(BODY);
    if let Some(payment) = payment {
        request = request.header(HEADER_PAYMENT_SIGNATURE, payment);
    }
    let response = request.send().await?;
    let status = response.status();
    // The settlement, read before the body is (the headers go with the response).
    let settled = response
        .headers()
        .get(HEADER_PAYMENT_RESPONSE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| decode_header(text).ok());
    let quoted = response.headers().contains_key(HEADER_PAYMENT_REQUIRED);
    let body = response.bytes().await?;
    match expect {
        Expect::Answer | Expect::Paid => ensure!(
            status == reqwest::StatusCode::OK && body.starts_with(b"{\"answer\""),
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        ),
        Expect::PaymentRequired => ensure!(
            status == reqwest::StatusCode::PAYMENT_REQUIRED && quoted,
            "{url} answered {status} without payment, not 402 with {HEADER_PAYMENT_REQUIRED}"
        ),
    }
    if let Expect::Paid = expect {
        let settled = settled
            .with_context(|| format!("a paid call answered without {HEADER_PAYMENT_RESPONSE}"))?;
        ensure!(
            settled["success"] == true,
            "a paid call was not settled: {settled}"
        );
    }
    Ok(())
}

/// `count` calls to `url` (the `i`th with `payments[i]`, when given) from
/// `concurrency` clients, each sending its next call when its last one answered.
async fn load(
    label: &str,
    url: &str,
    expect: Expect,
    payments: Option<Arc<Vec<String>>>,
    count: usize,
    concurrency: usize,
) -> Result<Measurement> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, payments, next) =
                (http.clone(), url.to_owned(), payments.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let payment = payments.as_deref().map(|p| p[n].as_str());
                    let sent = Instant::now();
                    call(&http, &url, payment, expect).await?;
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
    Ok(Measurement::labeled(
        label,
        0,
        concurrency,
        started.elapsed(),
        latencies_us,
    ))
}

/// The buyer's side: an agent's JWT and the gateway's PaymentRequired to pay.
struct Buyer {
    base: String,
    jwt: String,
    payment_required: String,
    url: String,
}

impl Buyer {
    /// `count` payments for the priced route, signed by `SIGNERS` callers at once.
    async fn sign(&self, count: usize) -> Result<Vec<String>> {
        let http = reqwest::Client::new();
        let request = Arc::new(json!({
            "paymentRequired": self.payment_required, "url": self.url, "method": "POST",
            "purpose": "benchmark call",
        }));
        let endpoint = format!("{}/api/payments/x402", self.base);
        let run = bench_key()?;
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..SIGNERS.min(count.max(1)))
            .map(|_| {
                let (http, request, endpoint, next, jwt) = (
                    http.clone(),
                    request.clone(),
                    endpoint.clone(),
                    next.clone(),
                    self.jwt.clone(),
                );
                let run = run.as_str().to_owned();
                tokio::spawn(async move {
                    let mut signed = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= count {
                            break;
                        }
                        let answer = http
                            .post(&endpoint)
                            .bearer_auth(&jwt)
                            .header("Idempotency-Key", format!("{run}-{n}"))
                            .json(&*request)
                            .send()
                            .await?;
                        let status = answer.status();
                        let answer: Value = answer.json().await?;
                        ensure!(
                            status == reqwest::StatusCode::CREATED
                                && answer["result"] == "signed"
                                && answer["network"] == LEDGER_NETWORK,
                            "the agent could not pay the gateway on the ledger rail: {status} {answer}"
                        );
                        let header = answer["headerValue"]
                            .as_str()
                            .context("a signed payment without headerValue")?;
                        signed.push((n, header.to_owned()));
                    }
                    anyhow::Ok(signed)
                })
            })
            .collect();
        let mut signed = Vec::with_capacity(count);
        for task in tasks {
            signed.extend(task.await??);
        }
        signed.sort_unstable_by_key(|(n, _)| *n);
        Ok(signed.into_iter().map(|(_, header)| header).collect())
    }

    /// `warm` paid warm-up calls, then `count` timed paid calls from `clients`
    /// clients, each with its own payment, signed before the clock starts.
    async fn paid_run(
        &self,
        key: &'static str,
        label: &str,
        warm: usize,
        count: usize,
        clients: usize,
    ) -> Result<Run> {
        let mut payments = self.sign(warm + count).await?;
        let measured = Arc::new(payments.split_off(warm));
        let warming = Arc::new(payments);
        load(
            "warm",
            &self.url,
            Expect::Paid,
            Some(warming),
            warm,
            clients,
        )
        .await?;
        Run::measure(
            key,
            label,
            &self.url,
            Expect::Paid,
            Some(measured),
            count,
            clients,
        )
        .await
    }
}

/// One measured scenario, with what its row reports.
struct Run {
    key: &'static str,
    measured: Measurement,
    requests: usize,
    seconds: f64,
}

impl Run {
    async fn measure(
        key: &'static str,
        label: &str,
        url: &str,
        expect: Expect,
        payments: Option<Arc<Vec<String>>>,
        count: usize,
        concurrency: usize,
    ) -> Result<Run> {
        let started = Instant::now();
        let measured = load(label, url, expect, payments, count, concurrency).await?;
        Ok(Run {
            key,
            measured,
            requests: count,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn p50(&self) -> f64 {
        self.measured.percentile_ms(0.50)
    }

    fn json(&self) -> Value {
        let m = &self.measured;
        json!({
            "requests": self.requests, "seconds": self.seconds,
            "requestsPerSecond": m.per_second(), "p50Ms": m.percentile_ms(0.50),
            "p99Ms": m.percentile_ms(0.99), "meanMs": m.mean_ms(),
        })
    }

    fn line(&self, direct: &Run) -> String {
        let m = &self.measured;
        let versus = if self.key == "direct" {
            String::new()
        } else {
            format!(
                "  {:>5.2}x direct  {:>+6.2} ms p50",
                m.per_second() / direct.measured.per_second(),
                self.p50() - direct.p50()
            )
        };
        format!(
            "{:<16} clients {:>3}  {:>6} calls  {:>7.0} calls/s  p50 {:>6.2} ms  p99 {:>6.2} ms{versus}",
            m.label(),
            m.clients(),
            self.requests,
            m.per_second(),
            m.percentile_ms(0.50),
            m.percentile_ms(0.99),
        )
    }
}

/// Warm-up calls before each measured run: every client's connection open, caches warm.
fn warmup(concurrency: usize) -> usize {
    (concurrency * 4).max(20)
}

pub(crate) async fn gateway(ctx: &Context, args: BenchGatewayArgs) -> Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        return Err(Reported("--concurrency takes client counts above 0, e.g. 1,16".into()).into());
    }
    if args.requests == 0 || args.paid_requests == 0 {
        return Err(Reported("--requests and --paid-requests must be above 0".into()).into());
    }
    let data = tempfile::Builder::new().prefix("purser-bench-").tempdir()?;
    let store = open_store(&data.path().join("bench.db").display().to_string(), 256).await?;
    let server = Embedded::start(store).await?;
    let outcome = measure_all(ctx, &args, &server).await;
    server.stop().await?;
    outcome
}

async fn measure_all(ctx: &Context, args: &BenchGatewayArgs, server: &Embedded) -> Result<()> {
    let purser = &server.purser;
    // The seller: a second wallet on the same server, so the ledger rail is offered.
    let seller = purser
        .create_wallet("seller", Currency::Usdc, &bench_key()?)
        .await?
        .value
        .wallet;
    // x402-axum's seller, apart so that each side's takings can be checked.
    let x402_seller = purser
        .create_wallet("x402-axum seller", Currency::Usdc, &bench_key()?)
        .await?
        .value
        .wallet;
    // The buyer: funded for every paid call (warm-ups included) through the gateway
    // and through x402-axum, an agent, a mandate.
    let paid_total: usize = args
        .concurrency
        .iter()
        .map(|&c| 2 * (args.paid_requests + warmup(c)))
        .sum();
    let budget = Usdc::from_atomic(PRICE_ATOMIC.saturating_mul(paid_total as u64))?;
    let buyer_wallet = purser
        .create_wallet("buyer", Currency::Usdc, &bench_key()?)
        .await?
        .value
        .wallet
        .id;
    let buyer_owner = Principal::Owner {
        wallet: buyer_wallet,
    };
    purser
        .fund_wallet(&buyer_owner, buyer_wallet, budget, &bench_key()?)
        .await?;
    let draft = MandateDraft {
        description: "benchmark calls through the gateway".into(),
        limit_amount: budget,
        valid_for_seconds: Some(3600),
        ..MandateDraft::default()
    };
    let (jwt, _) = agent_under_mandate(purser, buyer_wallet, &draft).await?;

    let (upstream, _upstream_task) = serve(upstream_app()).await?;
    let config = GatewayConfig::parse(&routes_toml(&seller.address))?;
    let options = PaywallOptions {
        payment_timeout_secs: PAYMENT_TIMEOUT_SECS,
        ..PaywallOptions::default()
    };
    let paywall = Paywall::connect(config, &format!("{}/facilitator", server.base), options)
        .await
        .context("the gateway cannot reach the embedded facilitator")?;
    let app = gateway_router(
        &paywall,
        Upstream::new(&upstream, Duration::from_secs(30))?,
        1 << 20,
    );
    let (gateway, _gateway_task) = serve(app).await?;
    let pay_to: Address = seller.address.parse().with_context(|| {
        format!(
            "the seller's address {} is not an EVM address",
            seller.address
        )
    })?;

    let direct_url = format!("{upstream}/api/query");
    let free_url = format!("{gateway}/open/query");
    let priced_url = format!("{gateway}/api/query");
    let payment_required = quote(&priced_url).await?;
    // The gateway's requirement on the ledger rail, payable to x402-axum's seller.
    let mut ledger = decode_header(&payment_required)?["accepts"]
        .as_array()
        .and_then(|accepts| {
            accepts
                .iter()
                .find(|accept| accept["network"] == LEDGER_NETWORK)
                .cloned()
        })
        .context("the gateway offers no ledger rail")?;
    ledger["payTo"] = json!(x402_seller.address);
    let x402_axum =
        X402Axum::start(&format!("{}/facilitator", server.base), pay_to, ledger).await?;
    check_x402_axum_offer(&x402_axum.quoted_url, pay_to).await?;
    let buyer = Buyer {
        base: server.base.clone(),
        jwt: jwt.clone(),
        payment_required,
        url: priced_url.clone(),
    };
    let x402_buyer = Buyer {
        base: server.base.clone(),
        jwt,
        payment_required: quote(&x402_axum.paid_url).await?,
        url: x402_axum.paid_url.clone(),
    };

    let (requests, paid) = (args.requests, args.paid_requests);
    let mut levels = Vec::new();
    let mut paid_calls = 0usize;
    for &clients in &args.concurrency {
        let warm = warmup(clients);
        let scenarios = [
            ("direct", "direct", &direct_url, Expect::Answer),
            ("free", "gateway free", &free_url, Expect::Answer),
            (
                "unpaid",
                "gateway 402",
                &priced_url,
                Expect::PaymentRequired,
            ),
            (
                "x402AxumUnpaid",
                "x402-axum 402",
                &x402_axum.quoted_url,
                Expect::PaymentRequired,
            ),
        ];
        let mut runs = Vec::with_capacity(6);
        for (key, label, url, expect) in scenarios {
            load(label, url, expect, None, warm, clients).await?;
            runs.push(Run::measure(key, label, url, expect, None, requests, clients).await?);
        }
        runs.push(
            buyer
                .paid_run("paid", "gateway paid", warm, paid, clients)
                .await?,
        );
        runs.push(
            x402_buyer
                .paid_run("x402AxumPaid", "x402-axum paid", warm, paid, clients)
                .await?,
        );
        paid_calls += warm + paid;
        levels.push((clients, runs));
    }

    // Every paid call moved the price to its seller, and the ledger still balances.
    let mut takings = Vec::with_capacity(2);
    for (name, wallet) in [
        ("the seller", seller.id),
        ("x402-axum's seller", x402_seller.id),
    ] {
        let received = purser
            .wallet(&Principal::Owner { wallet }, wallet)
            .await?
            .balances
            .available;
        ensure!(
            received.atomic() == PRICE_ATOMIC.saturating_mul(paid_calls as u64),
            "{name} received {received} for {paid_calls} paid calls"
        );
        takings.push(received);
    }
    let (received, x402_received) = (takings[0], takings[1]);
    let report = purser.store().check_ledger().await?;
    ensure!(
        report.is_ok(),
        "ledger invariants broken after the benchmark: {:?}",
        report.violations
    );

    if ctx.json {
        let rows: Vec<Value> = levels
            .iter()
            .map(|(clients, runs)| level_json(*clients, runs))
            .collect();
        let body = json!({
            "requests": requests, "paidRequests": paid, "paidCalls": paid_calls,
            "sellerReceived": received.to_string(),
            "x402AxumPaidCalls": paid_calls, "x402AxumSellerReceived": x402_received.to_string(),
            "ledgerOk": report.is_ok(),
            "levels": rows,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        for (_, runs) in &levels {
            if let Some(direct) = runs.first() {
                for run in runs {
                    println!("{}", run.line(direct));
                }
            }
        }
        println!(
            "{paid_calls} paid calls through each settled on the ledger rail; the gateway's seller received {received} USDC, x402-axum's {x402_received} USDC; ledger OK"
        );
    }
    Ok(())
}

/// x402-axum's 402 for the priced route is the offer it was given: 0.01 USDC on
/// Base Sepolia (`eip155:84532`) to `pay_to`, in a V2 `PAYMENT-REQUIRED` header.
async fn check_x402_axum_offer(url: &str, pay_to: Address) -> Result<()> {
    let answer = reqwest::Client::new()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(BODY)
        .send()
        .await?;
    let status = answer.status();
    let offer = answer
        .headers()
        .get(HEADER_PAYMENT_REQUIRED)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| decode_header(text).ok())
        .with_context(|| format!("x402-axum answered {status} without a PAYMENT-REQUIRED"))?;
    let accepted = &offer["accepts"][0];
    ensure!(
        status == reqwest::StatusCode::PAYMENT_REQUIRED
            && offer["x402Version"] == 2
            && accepted["scheme"] == "exact"
            && accepted["network"] == "eip155:84532"
            && accepted["amount"].as_str().and_then(|a| a.parse().ok()) == Some(PRICE_ATOMIC)
            && accepted["payTo"].as_str().map(str::to_lowercase)
                == Some(pay_to.to_string().to_lowercase()),
        "x402-axum answered {status} with an unexpected offer: {offer}"
    );
    Ok(())
}

/// One concurrency's rows and the gateway's overhead against the direct calls.
fn level_json(clients: usize, runs: &[Run]) -> Value {
    let mut level = json!({"concurrency": clients});
    let mut overhead = json!({});
    let direct = runs.iter().find(|run| run.key == "direct");
    for run in runs {
        let mut row = run.json();
        if matches!(run.key, "paid" | "x402AxumPaid") {
            // A run that returned had every answer checked: 200, `success: true`.
            row["settled"] = json!(run.requests);
        }
        level[run.key] = row;
        if let Some(direct) = direct.filter(|_| run.key != "direct") {
            overhead[run.key] = json!({
                "throughputRatio": run.measured.per_second() / direct.measured.per_second(),
                "addedP50Ms": run.p50() - direct.p50(),
            });
        }
    }
    level["overhead"] = overhead;
    level
}
