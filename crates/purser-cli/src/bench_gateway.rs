//! `purser bench gateway`: what the Monetize gateway adds in front of an API.
//!
//! Everything runs in this process: an upstream API (axum on a loopback port,
//! `POST /api/query` and `POST /open/query` answering a small JSON body), a real
//! Purser server (a temporary SQLite file, sandbox funding) as the facilitator and
//! wallet server, and the gateway (`gateway_router` on its own loopback port) in
//! front of the upstream, pricing `POST /api/query` and leaving `/open/query` free.
//! At each concurrency the same request is timed four ways:
//!
//! - **direct**: the upstream itself;
//! - **free**: an unpriced path through the gateway (the pure proxy);
//! - **unpaid**: the priced path without payment (the 402 answer);
//! - **paid**: the priced path with a payment on the internal ledger rail, signed
//!   before the clock starts (an agent under a signed mandate pays the route's
//!   `PAYMENT-REQUIRED` through `POST /api/payments/x402`, each with a fresh
//!   idempotency key) and sent once: the gateway has it verified by the
//!   facilitator, forwards the call, and has it settled (a ledger commit). Every
//!   answer must be 200 with a `PAYMENT-RESPONSE` saying `success: true`.
//!
//! Each answer is checked; a wrong one fails the benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
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

/// Serves `app` on a free loopback port: its base URL and the task.
async fn serve(app: axum::Router) -> Result<(String, Background)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "a benchmark server stopped");
        }
    });
    Ok((base, Background(task)))
}

/// The API behind the gateway: the same small JSON answer on both paths.
fn upstream_app() -> axum::Router {
    async fn answer(Json(input): Json<Value>) -> Json<Value> {
        let q = input["q"].as_str().unwrap_or("?");
        Json(json!({"answer": format!("42 for {q}")}))
    }
    axum::Router::new()
        .route("/api/query", post(answer))
        .route("/open/query", post(answer))
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
    // The buyer: funded for every paid call (warm-ups included), an agent, a mandate.
    let paid_total: usize = args
        .concurrency
        .iter()
        .map(|&c| args.paid_requests + warmup(c))
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

    let direct_url = format!("{upstream}/api/query");
    let free_url = format!("{gateway}/open/query");
    let priced_url = format!("{gateway}/api/query");
    let quote = reqwest::Client::new()
        .post(&priced_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(BODY)
        .send()
        .await?;
    let payment_required = quote
        .headers()
        .get(HEADER_PAYMENT_REQUIRED)
        .and_then(|value| value.to_str().ok())
        .context("the priced route did not answer with PAYMENT-REQUIRED")?
        .to_owned();
    let buyer = Buyer {
        base: server.base.clone(),
        jwt,
        payment_required,
        url: priced_url.clone(),
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
        ];
        let mut runs = Vec::with_capacity(4);
        for (key, label, url, expect) in scenarios {
            load(label, url, expect, None, warm, clients).await?;
            runs.push(Run::measure(key, label, url, expect, None, requests, clients).await?);
        }
        // Signed before the clock starts; each is sent once.
        let mut payments = buyer.sign(warm + paid).await?;
        let measured = Arc::new(payments.split_off(warm));
        let warming = Arc::new(payments);
        load(
            "warm",
            &priced_url,
            Expect::Paid,
            Some(warming),
            warm,
            clients,
        )
        .await?;
        runs.push(
            Run::measure(
                "paid",
                "gateway paid",
                &priced_url,
                Expect::Paid,
                Some(measured),
                paid,
                clients,
            )
            .await?,
        );
        paid_calls += warm + paid;
        levels.push((clients, runs));
    }

    // Every paid call moved the price to the seller, and the ledger still balances.
    let received = purser
        .wallet(&Principal::Owner { wallet: seller.id }, seller.id)
        .await?
        .balances
        .available;
    ensure!(
        received.atomic() == PRICE_ATOMIC.saturating_mul(paid_calls as u64),
        "the seller received {received} for {paid_calls} paid calls"
    );
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
            "sellerReceived": received.to_string(), "ledgerOk": report.is_ok(),
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
            "{paid_calls} paid calls settled on the ledger rail; the seller received {received} USDC; ledger OK"
        );
    }
    Ok(())
}

/// One concurrency's rows and the gateway's overhead against the direct calls.
fn level_json(clients: usize, runs: &[Run]) -> Value {
    let mut level = json!({"concurrency": clients});
    let mut overhead = json!({});
    let direct = runs.iter().find(|run| run.key == "direct");
    for run in runs {
        let mut row = run.json();
        if run.key == "paid" {
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
