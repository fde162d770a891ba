//! AgentCharge as a merchant and a buyer run it with the `purser` binary against
//! a `purser serve` process: a payment link, an agent paying it with `purser
//! fetch` on the internal ledger rail, the signed webhook the server delivers,
//! and a refund the owner authorizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use purser_core::{Clock, SystemClock};
use purser_service::verify_webhook_signature;
use serde_json::Value;

use common::{Env, Server, add_agent, as_agent};

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A merchant's webhook endpoint that records (signature, body) and answers 200.
async fn receiver() -> (Seen, String) {
    let seen: Seen = Arc::default();
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let signature = headers
                    .get("purser-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                state.lock().unwrap().push((signature, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (seen, url)
}

async fn wait_for(seen: &Seen, count: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= count {
            return seen.lock().unwrap().clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("webhooks seen: {:?}", seen.lock().unwrap());
}

fn balance(env: &Env) -> String {
    env.json(&["wallet", "balance"])["balances"]["available"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_is_paid_through_a_link_hears_of_it_and_refunds() {
    let (seen, hook_url) = receiver().await;
    let merchant = Env::new();
    let server = Server::start(&merchant, &[], &[]);
    let base = server.base.as_str();
    merchant.json(&["wallet", "create", "--name", "Shop", "--server", base]);
    let shop = add_agent(&merchant, "shop");
    let buyer = Env::new();
    buyer.json(&["wallet", "create", "--name", "Buyer", "--server", base]);
    buyer.ok(&["wallet", "fund", "--amount", "1"]);
    let bot = add_agent(&buyer, "bot");
    let host = base.trim_start_matches("http://");
    let mandate = [
        "mandate",
        "create",
        "--description",
        "Reports",
        "--limit",
        "0.5",
        "--host",
        host,
    ];
    let (ok, drafted) = as_agent(&buyer, &bot.jwt, &mandate);
    assert!(ok, "{drafted}");
    buyer.json(&["mandate", "approve", drafted["mandateId"].as_str().unwrap()]);

    // The merchant's agent creates a one-use link with a webhook.
    let create = [
        "link",
        "create",
        "--amount",
        "0.05",
        "--description",
        "The Q3 report",
        "--content",
        "revenue grew 12%",
        "--max-uses",
        "1",
        "--webhook-url",
        &hook_url,
    ];
    let (ok, link) = as_agent(&merchant, &shop.jwt, &create);
    assert!(ok, "{link}");
    let link_id = link["id"].as_str().unwrap().to_owned();
    let pay_url = link["payUrl"].as_str().unwrap().to_owned();
    let secret = link["webhookSecret"].as_str().unwrap().to_owned();

    // The buyer's agent pays it like any x402 resource.
    let (ok, paid) = as_agent(&buyer, &bot.jwt, &["fetch", &pay_url]);
    assert!(ok, "{paid}");
    assert_eq!(paid["status"], 200, "{paid}");
    let delivered: Value = serde_json::from_str(paid["body"].as_str().unwrap()).unwrap();
    assert_eq!(delivered["resourceContent"], "revenue grew 12%");
    assert_eq!(
        paid["paymentResponse"]["network"], "purser:ledger",
        "{paid}"
    );
    assert_eq!(
        (balance(&buyer), balance(&merchant)),
        ("0.95".into(), "0.05".into())
    );
    // Its one use is gone: a second fetch is refused and charges nothing.
    let (_, again) = as_agent(&buyer, &bot.jwt, &["fetch", &pay_url]);
    assert_eq!(again["status"], 410, "{again}");
    assert_eq!(
        (balance(&buyer), balance(&merchant)),
        ("0.95".into(), "0.05".into())
    );

    // The merchant sees the payment, and the server announced it, signed.
    let (ok, payments) = as_agent(&merchant, &shop.jwt, &["link", "payments", &link_id]);
    assert!(ok, "{payments}");
    let payment_id = payments["items"][0]["id"].as_str().unwrap().to_owned();
    let received = merchant.json(&["received", "list"]);
    assert_eq!(received["items"].as_array().unwrap().len(), 1);
    let hooks = wait_for(&seen, 1).await;
    let now_secs = SystemClock.now().millis() / 1000;
    assert!(verify_webhook_signature(
        &secret,
        &hooks[0].0,
        &hooks[0].1,
        now_secs,
        300
    ));
    let event: Value = serde_json::from_str(&hooks[0].1).unwrap();
    assert_eq!(event["type"], "payment.received");
    assert_eq!(event["data"]["payment"]["id"], payment_id.as_str());

    // A refund: the agent starts it, the owner authorizes it, the money goes back.
    let refund = [
        "refund",
        "create",
        "--payment",
        &payment_id,
        "--reason",
        "wrong quarter",
    ];
    let (ok, started) = as_agent(&merchant, &shop.jwt, &refund);
    assert!(ok, "{started}");
    assert_eq!(started["status"], "pending");
    assert!(
        started["refundUrl"]
            .as_str()
            .unwrap()
            .contains("/approvals/")
    );
    let pending = merchant.json(&["approvals", "list"]);
    assert_eq!(pending["items"][0]["kind"], "refund", "{pending}");
    merchant.json(&[
        "approvals",
        "approve",
        started["approvalId"].as_str().unwrap(),
    ]);
    let refund_id = started["id"].as_str().unwrap();
    let (ok, status) = as_agent(&merchant, &shop.jwt, &["refund", "status", refund_id]);
    assert!(ok, "{status}");
    assert_eq!(status["status"], "settled", "{status}");
    assert_eq!(
        (balance(&buyer), balance(&merchant)),
        ("1".into(), "0".into())
    );
    let hooks = wait_for(&seen, 2).await;
    let event: Value = serde_json::from_str(&hooks[1].1).unwrap();
    assert_eq!(event["type"], "refund.settled");
    let events = merchant.json(&["webhooks", "list"]);
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "delivered"),
        "{events}"
    );

    // The link's life: disable, list, enable with a new maximum.
    let (ok, off) = as_agent(&merchant, &shop.jwt, &["link", "disable", &link_id]);
    assert!(ok && off["status"] == "disabled", "{off}");
    let update = ["link", "update", &link_id, "--enable", "--max-uses", "3"];
    let (ok, on) = as_agent(&merchant, &shop.jwt, &update);
    assert!(ok, "{on}");
    assert_eq!(
        (on["status"].as_str(), on["maxUses"].as_u64()),
        (Some("active"), Some(3))
    );
    let text = merchant
        .command(&["link", "list"])
        .env("PURSER_TOKEN", &shop.jwt)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("0.05 USDC, 1/3 uses — The Q3 report"),
        "{text}"
    );
    server.stop();
}
