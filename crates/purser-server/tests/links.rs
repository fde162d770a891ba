//! AgentCharge: a merchant's payment links paid by another wallet's agent as x402
//! payments on the internal ledger rail, received-payment records, signed
//! webhooks retried until delivered, and refunds the owner authorizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use purser_core::{Clock, ManualClock, SystemClock};
use purser_server::ServerConfig;
use purser_service::verify_webhook_signature;
use purser_store::Backend;
use purser_types::x402::{PaymentRequired, SettleResponse, decode_header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestServer, fresh_key};

/// A merchant's webhook endpoint: records every delivery, answers 500 to the
/// first `failures` of them and 200 after.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    failures: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(failures: u32) -> (Receiver, String) {
        let receiver = Receiver::default();
        *receiver.failures.lock().unwrap() = failures;
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let id = header("purser-event-id");
                    let signature = header("purser-signature");
                    state.seen.lock().unwrap().push((id, signature, body));
                    let mut failures = state.failures.lock().unwrap();
                    if *failures > 0 {
                        *failures -= 1;
                        AxumStatus::INTERNAL_SERVER_ERROR
                    } else {
                        AxumStatus::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn deliveries(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

struct Market {
    server: TestServer,
    merchant: String,
    merchant_owner: String,
    seller_jwt: String,
    buyer: String,
    buyer_owner: String,
    buyer_jwt: String,
}

async fn market(backend: Backend) -> Market {
    market_on(TestServer::start(backend).await).await
}

async fn market_on(server: TestServer) -> Market {
    let (merchant, merchant_owner) = server.wallet("Merchant", "0").await;
    let (_, _, seller_jwt) = server.agent(&merchant, &merchant_owner, "seller").await;
    let (buyer, buyer_owner) = server.wallet("Buyer", "1").await;
    let (_, _, buyer_jwt) = server.agent(&buyer, &buyer_owner, "shopper").await;
    let drafted = server
        .post(
            "/api/mandates",
            Some(&buyer_jwt),
            &fresh_key(),
            json!({"description": "buy reports", "limitAmount": "0.5",
                "hostAllowlist": [server.base.trim_start_matches("http://")]}),
        )
        .await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{:?}", drafted.body);
    let approve = format!(
        "/api/mandates/{}/approve",
        drafted.body["mandateId"].as_str().unwrap()
    );
    let approved = server
        .post(&approve, Some(&buyer_owner), &fresh_key(), json!({}))
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    Market {
        server,
        merchant,
        merchant_owner,
        seller_jwt,
        buyer,
        buyer_owner,
        buyer_jwt,
    }
}

/// The answer to a GET of a pay URL: status, headers, JSON body.
struct Paid {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Market {
    async fn create_link(&self, key: &str, body: Value) -> common::Reply {
        self.server
            .post("/api/payment-links", Some(&self.seller_jwt), key, body)
            .await
    }

    async fn open(&self, pay_url: &str, payment: Option<&str>) -> Paid {
        let mut request = self.server.http.get(pay_url);
        if let Some(payment) = payment {
            request = request.header("PAYMENT-SIGNATURE", payment);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Paid {
            status,
            headers,
            body,
        }
    }

    /// The buyer's agent signs a payment for the link's 402; returns the header
    /// and the reservation holding the funds.
    async fn sign(&self, pay_url: &str) -> (String, String) {
        let quote = self.open(pay_url, None).await;
        assert_eq!(
            quote.status,
            StatusCode::PAYMENT_REQUIRED,
            "{:?}",
            quote.body
        );
        let required = quote.headers["payment-required"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = json!({"paymentRequired": required, "url": pay_url, "purpose": "a report"});
        let signed = self
            .server
            .post(
                "/api/payments/x402",
                Some(&self.buyer_jwt),
                &fresh_key(),
                body,
            )
            .await;
        assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.body);
        assert_eq!(signed.body["network"], "purser:ledger");
        (
            signed.body["headerValue"].as_str().unwrap().to_owned(),
            signed.body["reservation"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    async fn balances(&self) -> (String, String) {
        (
            self.server.available(&self.buyer, &self.buyer_owner).await,
            self.server
                .available(&self.merchant, &self.merchant_owner)
                .await,
        )
    }

    /// Runs delivery rounds until `count` deliveries were seen (retries wait for
    /// their backoff).
    async fn deliver_until(&self, receiver: &Receiver, count: usize) {
        for _ in 0..200 {
            self.server.purser.deliver_due_webhooks().await.unwrap();
            if receiver.deliveries().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("only {:?} deliveries", receiver.deliveries().len());
    }
}

async fn links_are_created_paid_delivered_and_announced(backend: Backend) {
    let market = market(backend).await;
    let (receiver, hook_url) = Receiver::start(1).await;
    let key = fresh_key();
    let terms = json!({
        "amount": "0.10", "description": "The weekly report", "resourceContent": "42 is the answer",
        "maxUses": 2, "webhookUrl": hook_url,
    });
    let created = market.create_link(&key, terms.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let link = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["webhookSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let pay_url = created.body["payUrl"].as_str().unwrap().to_owned();
    assert_eq!(pay_url, format!("{}/pay/{link}", market.server.base));
    assert_eq!(
        (
            created.body["status"].as_str(),
            created.body["usesCount"].as_u64()
        ),
        (Some("active"), Some(0))
    );
    // The same key replays the link (without its secret); other terms conflict.
    let again = market.create_link(&key, terms).await;
    assert!(again.replayed);
    assert_eq!(again.body["id"], link.as_str());
    assert!(again.body.get("webhookSecret").is_none());
    let other = json!({"amount": "0.20", "description": "The weekly report"});
    market
        .create_link(&key, other)
        .await
        .assert_error(StatusCode::CONFLICT, "idempotency_conflict");
    for bad in [
        json!({"amount": "0.1", "description": "x", "maxUses": 0}),
        json!({"amount": "0", "description": "x"}),
        json!({"amount": "0.1", "description": ""}),
        json!({"amount": "0.1", "description": "x", "webhookUrl": "ftp://example.com"}),
        json!({"amount": "0.1", "description": "x", "expiresAt": "2020-01-01T00:00:00Z"}),
    ] {
        let refused = market.create_link(&fresh_key(), bad.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {:?}",
            refused.body
        );
    }

    // The 402 offers the ledger rail to the merchant's wallet.
    let quote = market.open(&pay_url, None).await;
    assert_eq!(quote.status, StatusCode::PAYMENT_REQUIRED);
    let required = decode_header(quote.headers["payment-required"].to_str().unwrap()).unwrap();
    let required = PaymentRequired::from_json(&required).unwrap();
    let ledger = required
        .accepts
        .iter()
        .find(|r| r.network == "purser:ledger")
        .unwrap();
    assert_eq!(ledger.amount.to_string(), "0.1");
    let merchant_view = market
        .server
        .get(
            &format!("/api/wallets/{}", market.merchant),
            Some(&market.merchant_owner),
        )
        .await;
    assert_eq!(
        ledger.pay_to,
        merchant_view.body["wallet"]["address"].as_str().unwrap()
    );

    // Paid: the content is delivered with the settlement, once per payment.
    let (payment, _) = market.sign(&pay_url).await;
    let paid = market.open(&pay_url, Some(&payment)).await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    assert_eq!(paid.body["resourceContent"], "42 is the answer");
    let settlement: SettleResponse = serde_json::from_value(
        decode_header(paid.headers["payment-response"].to_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert!(settlement.success);
    assert!(settlement.transaction.starts_with("ledger:"));
    assert_eq!(market.balances().await, ("0.9".into(), "0.1".into()));
    let replay = market.open(&pay_url, Some(&payment)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.body["paymentId"], paid.body["paymentId"]);
    assert_eq!(
        market.balances().await,
        ("0.9".into(), "0.1".into()),
        "charged once"
    );

    // The last use, raced by two signed payments: one is served, one refused
    // uncharged, its funds released when the buyer reports the failure.
    let (first, first_hold) = market.sign(&pay_url).await;
    let (second, second_hold) = market.sign(&pay_url).await;
    let (a, b) = tokio::join!(
        market.open(&pay_url, Some(&first)),
        market.open(&pay_url, Some(&second))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::GONE],
        "{:?} {:?}",
        a.body,
        b.body
    );
    let (lost, lost_hold) = if a.status == StatusCode::GONE {
        (a, first_hold)
    } else {
        (b, second_hold)
    };
    assert_eq!(lost.body["error"]["code"], "payment_link_exhausted");
    let report = format!("/api/payments/x402/{lost_hold}/result");
    let voided = market
        .server
        .post(&report, Some(&market.buyer_jwt), &fresh_key(), json!({}))
        .await;
    assert_eq!(voided.body["status"], "failed", "{:?}", voided.body);
    assert_eq!(market.balances().await, ("0.8".into(), "0.2".into()));
    let gone = market.open(&pay_url, None).await;
    assert_eq!(gone.status, StatusCode::GONE);

    // Received payments, for the owner and the link's agent.
    let received = market
        .server
        .get("/api/received-payments", Some(&market.merchant_owner))
        .await;
    let items = received.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{:?}", received.body);
    assert!(
        items
            .iter()
            .all(|p| p["status"] == "settled" && p["amount"] == "0.1")
    );
    let per_link = market
        .server
        .get(
            &format!("/api/payment-links/{link}/payments"),
            Some(&market.seller_jwt),
        )
        .await;
    assert_eq!(per_link.body["items"].as_array().unwrap().len(), 2);
    let stranger = market
        .server
        .get(
            &format!("/api/payment-links/{link}"),
            Some(&market.buyer_jwt),
        )
        .await;
    stranger.assert_error(StatusCode::NOT_FOUND, "not_found");

    // Two events; the first delivery fails and is retried with the same event id.
    market.deliver_until(&receiver, 3).await;
    let deliveries = receiver.deliveries();
    let mut ids: Vec<&str> = deliveries.iter().map(|d| d.0.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2, "a retry keeps its event id: {deliveries:?}");
    let now_secs = SystemClock.now().millis() / 1000;
    for (id, signature, body) in &deliveries {
        assert!(verify_webhook_signature(
            &secret, signature, body, now_secs, 300
        ));
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["id"], id.as_str());
        assert_eq!(event["type"], "payment.received");
        assert_eq!(event["data"]["payment"]["status"], "settled");
    }
    let events = market
        .server
        .get("/api/webhook-events", Some(&market.merchant_owner))
        .await;
    let events = events.body["items"].as_array().unwrap().clone();
    assert!(
        events.iter().all(|e| e["status"] == "delivered"),
        "{events:?}"
    );
    let attempts: Vec<u64> = events
        .iter()
        .map(|e| e["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts.iter().sum::<u64>(), 3, "{attempts:?}");
    market
        .server
        .get("/api/webhook-events", Some(&market.seller_jwt))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    refunds_go_back_with_the_owners_authorization(
        &market,
        &receiver,
        items[0]["id"].as_str().unwrap(),
    )
    .await;
    links_close(&market).await;
    market.server.finish().await;
}

async fn refunds_go_back_with_the_owners_authorization(
    market: &Market,
    receiver: &Receiver,
    payment: &str,
) {
    let start = |amount: &str| {
        let body = json!({"paymentId": payment, "amount": amount, "reason": "late delivery"});
        async move {
            let key = fresh_key();
            market
                .server
                .post(
                    "/api/payment-links/refunds",
                    Some(&market.seller_jwt),
                    &key,
                    body,
                )
                .await
        }
    };
    let started = start("0.04").await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    assert_eq!(started.body["status"], "pending");
    let refund = started.body["id"].as_str().unwrap().to_owned();
    let refund_url = started.body["refundUrl"].as_str().unwrap();
    assert!(refund_url.contains("/approvals/"), "{refund_url}");
    let page = market.server.text_of(refund_url).await;
    assert!(page.contains("asks to refund $0.04"), "{page}");
    let approval = started.body["approvalId"].as_str().unwrap().to_owned();
    start("0.07")
        .await
        .assert_error(StatusCode::CONFLICT, "refund_exceeds_payment");
    // Only the owner authorizes it; the merchant's agent cannot.
    let approve = format!("/api/approvals/{approval}/approve");
    market
        .server
        .post(&approve, Some(&market.seller_jwt), &fresh_key(), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let approved = market
        .server
        .post(
            &approve,
            Some(&market.merchant_owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let settled = market
        .server
        .get(
            &format!("/api/payment-links/refunds/{refund}"),
            Some(&market.seller_jwt),
        )
        .await;
    assert_eq!(settled.body["status"], "settled", "{:?}", settled.body);
    assert_eq!(market.balances().await, ("0.84".into(), "0.16".into()));

    // A withdrawn refund gives its amount back to what may be refunded.
    let second = start("0.06").await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let second_id = second.body["id"].as_str().unwrap();
    let cancelled = market
        .server
        .post(
            &format!("/api/payment-links/refunds/{second_id}/cancel"),
            Some(&market.seller_jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(
        cancelled.body["status"], "cancelled",
        "{:?}",
        cancelled.body
    );
    let approve_late = format!(
        "/api/approvals/{}/approve",
        second.body["approvalId"].as_str().unwrap()
    );
    market
        .server
        .post(
            &approve_late,
            Some(&market.merchant_owner),
            &fresh_key(),
            json!({}),
        )
        .await
        .assert_error(StatusCode::CONFLICT, "invalid_state");
    let received = market
        .server
        .get(
            &format!("/api/received-payments/{payment}"),
            Some(&market.merchant_owner),
        )
        .await;
    assert_eq!(
        received.body["refundedAmount"], "0.04",
        "{:?}",
        received.body
    );
    assert_eq!(market.balances().await, ("0.84".into(), "0.16".into()));
    // The merchant hears of both ends.
    market.deliver_until(receiver, 5).await;
    let types: Vec<String> = receiver.deliveries()[3..]
        .iter()
        .map(|(_, _, body)| {
            serde_json::from_str::<Value>(body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut types = types;
    types.sort();
    assert_eq!(types, ["refund.cancelled", "refund.settled"]);
}

async fn links_close(market: &Market) {
    let soon = now_ms() + 1_500;
    let created = market
        .create_link(
            &fresh_key(),
            json!({"amount": "0.01", "description": "brief", "resourceUrl": "https://example.com/r",
                   "expiresAt": rfc3339(soon)}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let pay_url = created.body["payUrl"].as_str().unwrap().to_owned();
    let disabled = market
        .server
        .post(
            &format!("/api/payment-links/{id}/disable"),
            Some(&market.seller_jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(disabled.body["status"], "disabled", "{:?}", disabled.body);
    let refused = market.open(&pay_url, None).await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (StatusCode::GONE, Some("payment_link_disabled"))
    );
    let enabled = market
        .server
        .call(
            reqwest::Method::PATCH,
            &format!("/api/payment-links/{id}"),
            Some(&market.merchant_owner),
            None,
            Some(json!({"status": "active", "description": "brief, updated"})),
        )
        .await;
    assert_eq!(enabled.body["status"], "active", "{:?}", enabled.body);
    assert_eq!(enabled.body["description"], "brief, updated");
    assert_eq!(
        market.open(&pay_url, None).await.status,
        StatusCode::PAYMENT_REQUIRED
    );
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let expired = market.open(&pay_url, None).await;
    assert_eq!(
        (expired.status, expired.body["error"]["code"].as_str()),
        (StatusCode::GONE, Some("payment_link_expired"))
    );
    let owner_list = market
        .server
        .get("/api/payment-links", Some(&market.merchant_owner))
        .await;
    assert_eq!(owner_list.body["items"].as_array().unwrap().len(), 2);
    let audit = market
        .server
        .get(
            &format!("/api/wallets/{}/audit", market.merchant),
            Some(&market.merchant_owner),
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "payment_link.created",
        "payment_link.paid",
        "payment_link.disabled",
        "refund.started",
        "refund.settled",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

fn now_ms() -> i64 {
    SystemClock.now().millis()
}

fn rfc3339(ms: i64) -> String {
    purser_types::UnixMs(ms).to_rfc3339()
}

/// A refund the owner never authorizes expires after 24 hours (injected clock):
/// nothing moves and the amount can be refunded again.
#[tokio::test]
async fn an_unauthorized_refund_expires_after_a_day() {
    let clock = Arc::new(ManualClock::new(purser_types::UnixMs(1_800_000_000_000)));
    let server =
        TestServer::start_with(Backend::Sqlite, clock.clone(), ServerConfig::default()).await;
    let market = market_on(server).await;
    let created = market
        .create_link(
            &fresh_key(),
            json!({"amount": "0.10", "description": "a chart"}),
        )
        .await;
    let pay_url = created.body["payUrl"].as_str().unwrap().to_owned();
    let (payment, _) = market.sign(&pay_url).await;
    let paid = market.open(&pay_url, Some(&payment)).await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    let payment_id = paid.body["paymentId"].as_str().unwrap().to_owned();
    let body = json!({"paymentId": payment_id});
    let started = market
        .server
        .post(
            "/api/payment-links/refunds",
            Some(&market.seller_jwt),
            &fresh_key(),
            body,
        )
        .await;
    assert_eq!(started.body["status"], "pending", "{:?}", started.body);
    assert_eq!(
        started.body["amount"], "0.1",
        "all that is left, by default"
    );
    clock.advance_ms(24 * 3600 * 1000 + 1);
    let refund = format!(
        "/api/payment-links/refunds/{}",
        started.body["id"].as_str().unwrap()
    );
    let ended = market
        .server
        .get(&refund, Some(&market.merchant_owner))
        .await;
    assert_eq!(ended.body["status"], "expired", "{:?}", ended.body);
    assert!(ended.body["refundUrl"].is_null());
    let received = market
        .server
        .get(
            &format!("/api/received-payments/{payment_id}"),
            Some(&market.merchant_owner),
        )
        .await;
    assert_eq!(received.body["refundedAmount"], "0", "{:?}", received.body);
    assert_eq!(market.balances().await, ("0.9".into(), "0.1".into()));
    market.server.finish().await;
}

#[tokio::test]
async fn payment_links_on_sqlite() {
    links_are_created_paid_delivered_and_announced(Backend::Sqlite).await;
}

#[tokio::test]
async fn payment_links_on_postgres() {
    links_are_created_paid_delivered_and_announced(Backend::Postgres).await;
}
