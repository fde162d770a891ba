//! `purser gateway` as a seller runs it: a real upstream API, the gateway process
//! in front of it, a `purser serve` as facilitator and wallet server, and agents
//! paying through `purser fetch` on the internal ledger rail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use purser_types::x402::{PaymentRequired, decode_header};
use serde_json::{Value, json};

use common::paid::{Gateway, get_text, routes, upstream};
use common::{Env, Server, add_agent, as_agent};

fn balance(env: &Env) -> String {
    env.json(&["wallet", "balance"])["balances"]["available"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A Purser server with a funded buyer wallet and a seller wallet, each with its
/// own owner (config file).
struct Market {
    server: Server,
    buyer: Env,
    seller: Env,
    pay_to: String,
}

impl Market {
    fn open() -> Market {
        let buyer = Env::new();
        let server = Server::start(&buyer, &[], &[]);
        buyer.json(&[
            "wallet",
            "create",
            "--name",
            "Buyer",
            "--server",
            &server.base,
        ]);
        buyer.ok(&["wallet", "fund", "--amount", "1"]);
        let seller = Env::new();
        let created = seller.json(&[
            "wallet",
            "create",
            "--name",
            "Seller",
            "--server",
            &server.base,
        ]);
        let pay_to = created["wallet"]["address"].as_str().unwrap().to_owned();
        Market {
            server,
            buyer,
            seller,
            pay_to,
        }
    }

    /// An agent of the buyer under a signed mandate for `host`.
    fn agent_for(&self, host: &str) -> common::AddedAgent {
        let agent = add_agent(&self.buyer, "bot");
        let args = [
            "mandate",
            "create",
            "--description",
            "Paid APIs",
            "--limit",
            "0.1",
            "--host",
            host,
        ];
        let (ok, drafted) = as_agent(&self.buyer, &agent.jwt, &args);
        assert!(ok, "{drafted}");
        self.buyer
            .json(&["mandate", "approve", drafted["mandateId"].as_str().unwrap()]);
        agent
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_charges_agents_only_for_what_the_api_served() {
    let api = upstream().await;
    let market = Market::open();
    let (server, buyer, seller) = (&market.server, &market.buyer, &market.seller);
    let pay_to = &market.pay_to;
    let facilitator = format!("{}/facilitator", server.base);
    let gateway = Gateway::start(seller, &routes(pay_to), &api, &facilitator);
    let g = &gateway.base;
    let http = reqwest::Client::new();

    // Discovery: the skill and the price list come from the routes file.
    let skill = get_text(&format!("{g}/skill.md")).await;
    assert!(
        skill.contains("| POST | `/api/query` | 0.01 | Answer one question |"),
        "{skill}"
    );
    assert!(skill.contains("`purser:ledger`"), "{skill}");
    let prices: Value = http
        .get(format!("{g}/skill.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prices["endpoints"][1]["priceAtomic"], "20000");

    // Unpriced routes pass through; priced ones answer 402 in both versions.
    let free = http.get(format!("{g}/free")).send().await.unwrap();
    assert_eq!(free.text().await.unwrap(), "free for all");
    let quote = http
        .post(format!("{g}/api/query"))
        .json(&json!({"q": "life"}))
        .send()
        .await
        .unwrap();
    assert_eq!(quote.status().as_u16(), 402);
    let header = quote.headers()["PAYMENT-REQUIRED"]
        .to_str()
        .unwrap()
        .to_owned();
    let required = PaymentRequired::from_header(&header).unwrap();
    assert_eq!(required.accepts[0].network, "purser:ledger");
    assert_eq!(required.accepts[0].amount.to_string(), "0.01");
    assert_eq!(&required.accepts[0].pay_to, pay_to);
    let v1: Value = quote.json().await.unwrap();
    assert_eq!(v1["accepts"][0]["network"], "purser-ledger");
    assert_eq!(v1["accepts"][0]["maxAmountRequired"], "10000");

    // An agent under a mandate for the gateway's host pays and is served.
    let agent = market.agent_for(g.trim_start_matches("http://"));
    let query = format!("{g}/api/query");
    let (ok, paid) = as_agent(
        buyer,
        &agent.jwt,
        &["fetch", &query, "-d", r#"{"q":"life"}"#],
    );
    assert!(ok, "{paid}");
    assert_eq!(paid["status"], 200, "{paid}");
    assert_eq!(
        serde_json::from_str::<Value>(paid["body"].as_str().unwrap()).unwrap()["answer"],
        "42 for life"
    );
    assert_eq!(paid["paymentResponse"]["success"], true);
    assert_eq!(paid["payment"]["status"], "settled");
    assert_eq!(
        (balance(buyer), balance(seller)),
        ("0.99".into(), "0.01".into())
    );

    // A streamed answer arrives whole, once paid.
    let (ok, streamed) = as_agent(buyer, &agent.jwt, &["fetch", &format!("{g}/api/stream")]);
    assert!(ok, "{streamed}");
    let body = streamed["body"].as_str().unwrap();
    assert!(
        body.starts_with("chunk 0\n") && body.ends_with("chunk 63\n"),
        "{body}"
    );
    assert_eq!(
        (balance(buyer), balance(seller)),
        ("0.97".into(), "0.03".into())
    );

    // The API fails or is too slow: the agent is not charged.
    let (_, failed) = as_agent(buyer, &agent.jwt, &["fetch", &format!("{g}/api/fail")]);
    assert_eq!(failed["status"], 500, "{failed}");
    assert_eq!(failed["payment"]["reservation"]["status"], "released");
    let (_, slow) = as_agent(buyer, &agent.jwt, &["fetch", &format!("{g}/api/slow")]);
    assert_eq!(slow["status"], 504, "{slow}");
    assert_eq!(slow["payment"]["reservation"]["status"], "released");
    assert_eq!(
        (balance(buyer), balance(seller)),
        ("0.97".into(), "0.03".into())
    );

    // A payment header used once is refused the second time, and charges once.
    let signed: Value = http
        .post(format!("{}/api/payments/x402", server.base))
        .bearer_auth(&agent.jwt)
        .header("Idempotency-Key", "replay-test-1")
        .json(&json!({"paymentRequired": header, "url": query, "purpose": "replay test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payment = signed["headerValue"].as_str().unwrap().to_owned();
    let send_paid = || {
        http.post(&query)
            .header("PAYMENT-SIGNATURE", &payment)
            .json(&json!({"q": "again"}))
            .send()
    };
    let first = send_paid().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let settled = decode_header(first.headers()["PAYMENT-RESPONSE"].to_str().unwrap()).unwrap();
    assert_eq!(settled["success"], true);
    let replayed = send_paid().await.unwrap();
    assert_eq!(replayed.status().as_u16(), 402);
    let refusal = decode_header(replayed.headers()["PAYMENT-REQUIRED"].to_str().unwrap()).unwrap();
    assert_eq!(refusal["error"], "invalid_exact_evm_nonce_already_used");
    assert_eq!(
        (balance(buyer), balance(seller)),
        ("0.96".into(), "0.04".into())
    );

    let stranger = http
        .post(format!("{g}/api/query"))
        .header("PAYMENT-SIGNATURE", "not base64 at all")
        .json(&json!({"q": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status().as_u16(), 402);
    let error = decode_header(stranger.headers()["PAYMENT-REQUIRED"].to_str().unwrap()).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("invalid"),
        "{error}"
    );

    // Bodies are bounded.
    let huge = http
        .post(format!("{g}/api/query"))
        .body(vec![b'x'; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status().as_u16(), 413);
    let metrics = get_text(&format!("{g}/metrics")).await;
    assert!(
        metrics.contains("purser_gateway_requests_total"),
        "{metrics}"
    );
    drop(gateway);
    market.server.stop();
}

/// The paywall as a library: the example API (an ordinary axum router plus one
/// `.layer(…)`) charges an agent paying with `purser fetch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paywall_layer_charges_in_an_ordinary_axum_app() {
    use purser_example_paid_api::{app, config};
    use purser_gateway::{Paywall, PaywallOptions};

    let market = Market::open();
    let facilitator = format!("{}/facilitator", market.server.base);
    let config = config(&market.pay_to).unwrap();
    let paywall = Paywall::connect(config, &facilitator, PaywallOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(&paywall)).await.unwrap() });

    // Free routes stay free (get_text asserts the 200).
    get_text(&base).await;
    let skill = get_text(&format!("{base}/skill.md")).await;
    assert!(skill.contains("| GET | `/api/joke` | 0.001 | A fresh joke |"));
    let agent = market.agent_for(base.trim_start_matches("http://"));
    let (ok, paid) = as_agent(
        &market.buyer,
        &agent.jwt,
        &["fetch", &format!("{base}/api/joke")],
    );
    assert!(ok, "{paid}");
    assert_eq!(paid["status"], 200, "{paid}");
    assert!(paid["body"].as_str().unwrap().contains("joke"));
    assert_eq!(paid["payment"]["status"], "settled");
    assert_eq!(balance(&market.seller), "0.001");
    assert_eq!(balance(&market.buyer), "0.999");
    market.server.stop();
}
