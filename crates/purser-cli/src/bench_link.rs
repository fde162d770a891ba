//! `purser bench link`: how fast a merchant's server takes payments through a
//! payment link on the internal ledger rail. Every payment is signed by the
//! buyer's agent beforehand (that is the buyer's cost, timed by `bench x402`),
//! then each is sent once to `/pay/{linkId}`: verify, take a use, settle on the
//! ledger, record the received payment. The run checks that every payment was
//! served and that the merchant received exactly what was paid.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use purser_service::{LinkDraft, Principal};
use purser_types::{Currency, Usdc};
use serde_json::json;

use crate::bench::{Measurement, Report, agent_under_mandate, bench_key, run_matrix};
use crate::cli::BenchLinkArgs;
use crate::commands::Context;
use crate::serve::{Embedded, open_store};

/// The price of one use: one atomic unit, so any count of payments fits.
const PRICE_ATOMIC: u64 = 1;

/// The server, a link on the merchant's wallet, and payments signed for it.
struct Shop {
    server: Embedded,
    merchant_owner: Principal,
    pay_url: String,
    payments: Vec<String>,
}

async fn shop(url: &str, payments: usize) -> Result<Shop> {
    let server = Embedded::start(open_store(url, 256).await?).await?;
    let purser = &server.purser;
    let host = server.base.trim_start_matches("http://").to_owned();
    let wallet = |name: &'static str| async move {
        let created = purser
            .create_wallet(name, Currency::Usdc, &bench_key()?)
            .await?;
        Ok::<_, anyhow::Error>(created.value.wallet.id)
    };
    let merchant = wallet("merchant").await?;
    let buyer = wallet("buyer").await?;
    let buyer_owner = Principal::Owner { wallet: buyer };
    purser
        .fund_wallet(&buyer_owner, buyer, Usdc::from_whole(1_000)?, &bench_key()?)
        .await?;
    let draft = purser_service::MandateDraft {
        description: "benchmark purchases".into(),
        limit_amount: Usdc::from_whole(1_000)?,
        host_allowlist: vec![host],
        valid_for_seconds: Some(3600),
        ..purser_service::MandateDraft::default()
    };
    let (buyer_jwt, _) = agent_under_mandate(purser, buyer, &draft).await?;
    let merchant_owner = Principal::Owner { wallet: merchant };
    let pay_url = priced_link(purser, &merchant_owner, PRICE_ATOMIC).await?;
    let payments = sign_all(&server.base, &buyer_jwt, &pay_url, payments).await?;
    Ok(Shop {
        server,
        merchant_owner,
        pay_url,
        payments,
    })
}

/// The buyer's agent signs `count` payments for the link's 402.
/// A payment link of `owner` at `price_atomic` that takes any number of payments;
/// its payUrl.
pub(crate) async fn priced_link(
    purser: &purser_service::Purser,
    owner: &Principal,
    price_atomic: u64,
) -> Result<String> {
    let link = LinkDraft {
        amount: Usdc::from_atomic(price_atomic)?,
        description: "one benchmark answer".into(),
        resource_content: Some("42".into()),
        resource_url: None,
        expires_at: None,
        max_uses: None,
        webhook_url: None,
    };
    Ok(purser
        .create_link(owner, &link, &bench_key()?)
        .await?
        .value
        .pay_url)
}

/// The link's 402 and its `PAYMENT-REQUIRED` header, which a buyer signs against.
pub(crate) async fn link_payment_required(http: &reqwest::Client, pay_url: &str) -> Result<String> {
    let quote = http.get(pay_url).send().await?;
    ensure!(
        quote.status().as_u16() == 402,
        "the link did not answer 402"
    );
    Ok(quote
        .headers()
        .get("payment-required")
        .and_then(|v| v.to_str().ok())
        .context("the 402 has no PAYMENT-REQUIRED")?
        .to_owned())
}

/// The agent's signed payment for a link's 402 (through the one authorization
/// path): the `PAYMENT-SIGNATURE` header value.
pub(crate) async fn sign_link_payment(
    http: &reqwest::Client,
    base: &str,
    jwt: &str,
    required: &str,
    pay_url: &str,
    purpose: &str,
) -> Result<String> {
    let body = json!({"paymentRequired": required, "url": pay_url, "purpose": purpose});
    let answer: serde_json::Value = http
        .post(format!("{base}/api/payments/x402"))
        .bearer_auth(jwt)
        .header("Idempotency-Key", bench_key()?.as_str())
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let header = answer["headerValue"]
        .as_str()
        .with_context(|| format!("a payment was not signed: {answer}"))?;
    Ok(header.to_owned())
}

async fn sign_all(base: &str, jwt: &str, pay_url: &str, count: usize) -> Result<Vec<String>> {
    let http = reqwest::Client::new();
    let required = link_payment_required(&http, pay_url).await?;
    let mut signed = Vec::with_capacity(count);
    for _ in 0..count {
        signed.push(sign_link_payment(&http, base, jwt, &required, pay_url, "benchmark").await?);
    }
    Ok(signed)
}

async fn measure(
    url: &str,
    database: &str,
    clients: usize,
    payments: usize,
) -> Result<Measurement> {
    let shop = shop(url, payments).await?;
    let queue = Arc::new(Mutex::new(shop.payments.clone()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients.max(1))
        .build()?;
    let started = Instant::now();
    let workers: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (queue, http, url) = (queue.clone(), http.clone(), shop.pay_url.clone());
            tokio::spawn(async move { pay(queue, http, url).await })
        })
        .collect();
    let mut latencies_us = Vec::with_capacity(payments);
    for worker in workers {
        latencies_us.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    let merchant = shop.merchant_owner.wallet();
    let received = shop
        .server
        .purser
        .wallet(&shop.merchant_owner, merchant)
        .await?
        .balances
        .available;
    ensure!(
        received.atomic() == PRICE_ATOMIC * payments as u64,
        "the merchant received {received} for {payments} payments"
    );
    shop.server.stop().await?;
    Ok(Measurement::new(
        database,
        0,
        clients,
        elapsed,
        latencies_us,
    ))
}

/// One payer: sends payments from the queue until it is empty.
async fn pay(
    queue: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    url: String,
) -> Result<Vec<u64>> {
    let mut latencies = Vec::new();
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(payment) = next else {
            return Ok(latencies);
        };
        let sent = Instant::now();
        let response = http
            .get(&url)
            .header("PAYMENT-SIGNATURE", payment)
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await?;
        ensure!(
            status.is_success(),
            "a link payment was not served: {status}"
        );
        latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
}

pub(crate) async fn link(ctx: &Context, args: BenchLinkArgs) -> Result<()> {
    let combinations: Vec<(usize, usize)> =
        args.clients.iter().map(|&clients| (0, clients)).collect();
    let payments = args.payments;
    let report = Report {
        unit: "payments",
        show_batch: false,
    };
    run_matrix(
        ctx,
        report,
        &args.db,
        &combinations,
        |url, database, _, clients| async move { measure(&url, &database, clients, payments).await },
    )
    .await
}
