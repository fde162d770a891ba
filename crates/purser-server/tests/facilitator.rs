//! Purser's x402 facilitator against a real chain: anvil with the project's TestUSDC,
//! payments signed with real keys, settled by real transactions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use purser_chain::client::{ChainClient, Timeouts};
use purser_chain::devnet::DEV_KEYS;
use purser_chain::eip3009::{Authorization, token_domain};
use purser_signer::WalletKey;
use purser_store::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestServer;

const PRICE: u64 = 10_000;

fn now_secs() -> u64 {
    use purser_core::Clock as _;
    u64::try_from(purser_core::SystemClock.now().millis() / 1000).unwrap()
}

struct Fixture {
    server: TestServer,
    chain: Arc<ChainClient>,
    payer: WalletKey,
    pay_to: Address,
    _devnet: purser_chain::devnet::Devnet,
}

async fn fixture() -> Fixture {
    let payer = WalletKey::generate().unwrap();
    let devnet = purser_testkit::devnet(&[(payer.address(), 1_000_000)]).await;
    let network = devnet.config.network();
    let chain = Arc::new(
        ChainClient::new(
            network,
            &devnet.config.rpc_url,
            Some(DEV_KEYS[1]),
            Timeouts::default(),
        )
        .unwrap(),
    );
    let server = TestServer::start_on_chain(Backend::Sqlite, chain.clone()).await;
    Fixture {
        server,
        chain,
        payer,
        pay_to: Address::repeat_byte(0x42),
        _devnet: devnet,
    }
}

impl Fixture {
    fn requirement(&self) -> Value {
        json!({
            "scheme": "exact", "network": "eip155:31337", "amount": PRICE.to_string(),
            "asset": self.chain.network().usdc.to_checksum(None),
            "payTo": self.pay_to.to_checksum(None), "maxTimeoutSeconds": 300,
            "extra": {"name": "USD Coin", "version": "2"}
        })
    }

    fn authorization(&self) -> Authorization {
        Authorization {
            from: self.payer.address(),
            to: self.pay_to,
            value: U256::from(PRICE),
            valid_after: U256::ZERO,
            valid_before: U256::from(now_secs() + 300),
            nonce: B256::from(rand_bytes()),
        }
    }

    /// `{x402Version, paymentPayload, paymentRequirements}` for `authorization`
    /// signed by `key` over the token domain named `name`.
    fn request(&self, authorization: &Authorization, key: &WalletKey, name: &str) -> Value {
        let network = self.chain.network();
        let domain = token_domain(name, "2", network.chain_id, network.usdc);
        let signature = key.sign_digest(&authorization.digest(&domain).0).unwrap();
        json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "resource": {"url": "http://api.example/paid"},
                "accepted": self.requirement(),
                "payload": {"signature": signature, "authorization": authorization.to_wire()},
            },
            "paymentRequirements": self.requirement(),
        })
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        let reply = self
            .server
            .call(reqwest::Method::POST, path, None, None, Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    async fn balance(&self, who: Address) -> u64 {
        self.chain.balance_of(who).await.unwrap().to::<u64>()
    }
}

fn rand_bytes() -> [u8; 32] {
    let hex = purser_testkit::random_hex(32);
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap();
    }
    out
}

#[tokio::test]
async fn verifies_and_settles_once_on_a_real_chain() {
    let f = fixture().await;
    let supported = f.server.get("/facilitator/supported", None).await;
    assert_eq!(supported.status, StatusCode::OK);
    let network = f.chain.network();
    let ledger = purser_chain::network::Network::ledger();
    let extra = |n: &purser_chain::network::Network| json!({"asset": n.usdc.to_checksum(None), "name": n.token_name, "version": n.token_version});
    assert_eq!(
        supported.body["kinds"],
        json!([
            {"x402Version": 2, "scheme": "exact", "network": "eip155:31337", "extra": extra(network)},
            {"x402Version": 2, "scheme": "exact", "network": "purser:ledger", "extra": extra(&ledger)},
            {"x402Version": 1, "scheme": "exact", "network": "purser-ledger", "extra": extra(&ledger)},
        ])
    );
    assert_eq!(
        supported.body["signers"]["eip155:*"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let authorization = f.authorization();
    let request = f.request(&authorization, &f.payer, "USD Coin");
    let verified = f.call("/facilitator/verify", request.clone()).await;
    assert_eq!(verified["isValid"], true, "{verified}");
    assert_eq!(verified["payer"], f.payer.address().to_checksum(None));

    let settled = f.call("/facilitator/settle", request.clone()).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["network"], "eip155:31337");
    let tx = settled["transaction"].as_str().unwrap().to_owned();
    assert_eq!(tx.len(), 66);
    assert_eq!(f.balance(f.payer.address()).await, 1_000_000 - PRICE);
    assert_eq!(f.balance(f.pay_to).await, PRICE);

    // Settling the same payment again answers with the same transaction; no money moves.
    let again = f.call("/facilitator/settle", request.clone()).await;
    assert_eq!(
        (again["success"].clone(), again["transaction"].clone()),
        (json!(true), json!(tx))
    );
    assert_eq!(f.balance(f.pay_to).await, PRICE);
    // Verifying it again: its nonce is spent.
    let replay = f.call("/facilitator/verify", request).await;
    assert_eq!(replay["isValid"], false);
    assert_eq!(
        replay["invalidReason"],
        "invalid_exact_evm_nonce_already_used"
    );

    // Concurrent settles of one new payment: one transaction, paid once.
    let second = f.request(&f.authorization(), &f.payer, "USD Coin");
    let answers = futures_util::future::join_all(
        (0..4).map(|_| f.call("/facilitator/settle", second.clone())),
    )
    .await;
    let hashes: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|a| a["success"] == true)
        .map(|a| a["transaction"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hashes.len(), 1, "{answers:?}");
    assert_eq!(f.balance(f.pay_to).await, 2 * PRICE);
}

#[tokio::test]
async fn refuses_bad_payments_with_the_reference_reasons_and_pays_nothing() {
    let f = fixture().await;
    let good = f.authorization();
    let stranger = WalletKey::generate().unwrap();
    let now = now_secs();
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();

    let wrong_value = Authorization {
        value: U256::from(PRICE - 1),
        ..good
    };
    cases.push((
        "amount mismatch",
        f.request(&wrong_value, &f.payer, "USD Coin"),
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ));
    let wrong_to = Authorization {
        to: Address::repeat_byte(0x43),
        ..good
    };
    cases.push((
        "recipient",
        f.request(&wrong_to, &f.payer, "USD Coin"),
        "invalid_exact_evm_recipient_mismatch",
    ));
    let expiring = Authorization {
        valid_before: U256::from(now + 3),
        ..good
    };
    cases.push((
        "expires within 6 s",
        f.request(&expiring, &f.payer, "USD Coin"),
        "invalid_exact_evm_payload_authorization_valid_before",
    ));
    let future = Authorization {
        valid_after: U256::from(now + 120),
        ..good
    };
    cases.push((
        "not valid yet",
        f.request(&future, &f.payer, "USD Coin"),
        "invalid_exact_evm_payload_authorization_valid_after",
    ));
    cases.push((
        "signed by someone else",
        f.request(&good, &stranger, "USD Coin"),
        "invalid_exact_evm_signature",
    ));
    cases.push((
        "wrong domain name",
        f.request(&good, &f.payer, "USDC"),
        "invalid_exact_evm_signature",
    ));
    let poor = WalletKey::generate().unwrap();
    let unfunded = Authorization {
        from: poor.address(),
        ..good
    };
    cases.push((
        "no balance",
        f.request(&unfunded, &poor, "USD Coin"),
        "invalid_exact_evm_insufficient_balance",
    ));

    let mut wrong_network = f.request(&good, &f.payer, "USD Coin");
    wrong_network["paymentRequirements"]["network"] = json!("eip155:8453");
    cases.push(("wrong network", wrong_network, "invalid_network"));
    let mut mismatched = f.request(&good, &f.payer, "USD Coin");
    mismatched["paymentPayload"]["accepted"]["network"] = json!("eip155:1");
    cases.push((
        "payload on another network",
        mismatched,
        "invalid_exact_evm_network_mismatch",
    ));
    let mut wrong_asset = f.request(&good, &f.payer, "USD Coin");
    wrong_asset["paymentRequirements"]["asset"] = json!(Address::repeat_byte(9).to_checksum(None));
    cases.push(("wrong asset", wrong_asset, "invalid_payment_requirements"));
    let mut wrong_name = f.request(&good, &f.payer, "USD Coin");
    wrong_name["paymentRequirements"]["extra"]["name"] = json!("USDC");
    cases.push((
        "token name",
        wrong_name,
        "invalid_exact_evm_token_name_mismatch",
    ));
    let mut no_domain = f.request(&good, &f.payer, "USD Coin");
    no_domain["paymentRequirements"]["extra"] = json!({});
    cases.push((
        "no domain",
        no_domain,
        "invalid_exact_evm_missing_eip712_domain",
    ));
    let mut bad_signature = f.request(&good, &f.payer, "USD Coin");
    bad_signature["paymentPayload"]["payload"]["signature"] = json!("0x1234");
    cases.push((
        "malformed signature",
        bad_signature,
        "invalid_exact_evm_failed_to_parse_signature",
    ));
    let mut bad_nonce = f.request(&good, &f.payer, "USD Coin");
    bad_nonce["paymentPayload"]["payload"]["authorization"]["nonce"] = json!("0x12");
    cases.push(("malformed nonce", bad_nonce, "invalid_payload"));
    let mut scheme = f.request(&good, &f.payer, "USD Coin");
    scheme["paymentRequirements"]["scheme"] = json!("upto");
    cases.push(("scheme", scheme, "unsupported_scheme"));
    cases.push((
        "not a payment",
        json!({"x402Version": 2, "paymentPayload": "nope"}),
        "invalid_payload",
    ));
    cases.push((
        "version",
        json!({"x402Version": 7, "paymentPayload": {"x402Version": 7}}),
        "invalid_x402_version",
    ));

    for (name, request, reason) in cases {
        let verified = f.call("/facilitator/verify", request.clone()).await;
        assert_eq!(
            (
                name,
                verified["isValid"].clone(),
                verified["invalidReason"].clone()
            ),
            (name, json!(false), json!(reason)),
            "{verified}"
        );
        let settled = f.call("/facilitator/settle", request).await;
        assert_eq!(
            (
                name,
                settled["success"].clone(),
                settled["errorReason"].clone()
            ),
            (name, json!(false), json!(reason)),
            "{settled}"
        );
        assert_eq!(settled["transaction"], "");
    }
    assert_eq!(f.balance(f.pay_to).await, 0, "nothing was paid");
    assert_eq!(f.balance(f.payer.address()).await, 1_000_000);

    // Malformed JSON is a 400 with a code, not a panic.
    let raw = f
        .server
        .http
        .post(format!("{}/facilitator/verify", f.server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_node_that_is_down_is_an_answer_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let f = fixture().await;
    let down = Arc::new(
        ChainClient::new(
            f.chain.network().clone(),
            &dead,
            Some(DEV_KEYS[1]),
            Timeouts {
                rpc: Duration::from_millis(500),
                receipt: Duration::from_secs(1),
            },
        )
        .unwrap(),
    );
    let server = TestServer::start_on_chain(Backend::Sqlite, down).await;
    let request = f.request(&f.authorization(), &f.payer, "USD Coin");
    let started = std::time::Instant::now();
    let reply = server
        .call(
            reqwest::Method::POST,
            "/facilitator/settle",
            None,
            None,
            Some(request),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["success"], false);
    assert_eq!(reply.body["errorReason"], "unexpected_verify_error");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(f.balance(f.pay_to).await, 0);
}

#[tokio::test]
async fn without_a_chain_the_facilitator_settles_only_on_the_ledger() {
    let server = TestServer::start(Backend::Sqlite).await;
    let supported = server.get("/facilitator/supported", None).await;
    assert_eq!(supported.status, StatusCode::OK);
    let networks: Vec<&str> = supported.body["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["network"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["purser:ledger", "purser-ledger"]);
    assert_eq!(supported.body["kinds"][0]["extra"]["name"], "Purser Ledger");
    let mut requirement = json!({
        "scheme": "exact", "network": "eip155:8453", "amount": "10", "payTo": Address::ZERO,
        "asset": Address::ZERO, "maxTimeoutSeconds": 60, "extra": {"name": "USD Coin", "version": "2"},
    });
    let payload = json!({"x402Version": 2, "accepted": requirement.clone(), "payload": {
        "signature": "0x00", "authorization": {"from": Address::ZERO, "to": Address::ZERO,
        "value": "10", "validAfter": "0", "validBefore": "1", "nonce": B256::ZERO}}});
    let body = json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirement.take()});
    server
        .post("/facilitator/verify", None, &common::fresh_key(), body)
        .await
        .assert_error(StatusCode::CONFLICT, "chain_not_configured");
}

/// The buyer side on the same chain: bad input gets its code and holds nothing; a
/// signature comes only with a reservation, replays sign the same thing, the generic
/// release is refused, and a reported failure cancels the authorization on chain
/// before the funds come back.
#[tokio::test]
async fn the_buyer_signs_only_what_the_path_reserved_and_the_chain_ends_it() {
    use common::fresh_key;
    use purser_types::x402::{PaymentPayload, encode_header};

    let f = fixture().await;
    let s = &f.server;
    let (wallet, owner) = s.wallet("Ops", "1").await;
    let (_, _, jwt) = s.agent(&wallet, &owner, "bot").await;
    let drafted = s
        .post(
            "/api/mandates",
            Some(&jwt),
            &fresh_key(),
            json!({"description": "paid APIs", "limitAmount": "0.1", "hostAllowlist": ["api.example"]}),
        )
        .await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{:?}", drafted.body);
    let mandate = drafted.body["mandateId"].as_str().unwrap();
    let approve = format!("/api/mandates/{mandate}/approve");
    assert_eq!(
        s.post(&approve, Some(&owner), &fresh_key(), json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let address: Address = s
        .get(&format!("/api/wallets/{wallet}"), Some(&owner))
        .await
        .body["wallet"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let required = |requirement: Value| {
        encode_header(&json!({"x402Version": 2, "resource": {"url": "https://api.example/paid"}, "accepts": [requirement]}))
            .unwrap()
    };
    let bearer: &str = &jwt;
    let pay = |header: String, url: &str, key: String, extra: Value| {
        let mut body = json!({"paymentRequired": header, "url": url, "purpose": "a paid call"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        async move { s.post("/api/payments/x402", Some(bearer), &key, body).await }
    };
    let url = "https://api.example/paid";
    pay("%%%".into(), url, fresh_key(), json!({}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_payment_required");
    let mut elsewhere = f.requirement();
    elsewhere["network"] = json!("eip155:8453");
    pay(required(elsewhere), url, fresh_key(), json!({}))
        .await
        .assert_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_acceptable_requirement",
        );
    pay(
        required(f.requirement()),
        url,
        fresh_key(),
        json!({"maxAmount": "0.001"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "amount_above_max");
    // Off the mandate's hosts: no signature, only the owner's approval to ask for.
    let off_mission = pay(
        required(f.requirement()),
        "https://evil.example/paid",
        fresh_key(),
        json!({}),
    )
    .await;
    assert_eq!(
        off_mission.status,
        StatusCode::ACCEPTED,
        "{:?}",
        off_mission.body
    );
    assert_eq!(off_mission.body["result"], "approval_required");
    assert!(off_mission.body["headerValue"].is_null());
    assert!(
        off_mission.body["approvalUrl"]
            .as_str()
            .unwrap()
            .ends_with("/review")
    );
    pay(
        required(f.requirement()),
        "https://user@api.example/paid",
        fresh_key(),
        json!({}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        s.available(&wallet, &owner).await,
        "1",
        "refusals hold nothing"
    );

    let key = fresh_key();
    let signed = pay(required(f.requirement()), url, key.clone(), json!({})).await;
    assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.body);
    assert_eq!(signed.body["headerName"], "PAYMENT-SIGNATURE");
    let replayed = pay(required(f.requirement()), url, key, json!({})).await;
    assert!(replayed.replayed);
    assert_eq!(replayed.body["headerValue"], signed.body["headerValue"]);
    let payment =
        PaymentPayload::from_header(signed.body["headerValue"].as_str().unwrap()).unwrap();
    let authorization = Authorization::from_wire(&payment.payload.authorization).unwrap();
    assert_eq!((authorization.from, authorization.to), (address, f.pay_to));
    assert_eq!(authorization.value, U256::from(PRICE));
    assert_eq!(payment.accepted, Some(f.requirement()));
    assert_eq!(s.available(&wallet, &owner).await, "0.99");

    let reservation = signed.body["reservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.post(
        &format!("/api/reservations/{reservation}/release"),
        Some(&jwt),
        &fresh_key(),
        json!({"reason": "by hand"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "invalid_state");
    let report = format!("/api/payments/x402/{reservation}/result");
    let failed = s
        .call(
            reqwest::Method::POST,
            &report,
            Some(&jwt),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{:?}", failed.body);
    assert_eq!(failed.body["status"], "failed");
    assert_eq!(failed.body["reservation"]["status"], "released");
    assert!(
        f.chain
            .authorization_used(address, authorization.nonce)
            .await
            .unwrap(),
        "canceled on chain first"
    );
    assert_eq!(s.available(&wallet, &owner).await, "1");
    // The canceled authorization can no longer move money.
    let settle = json!({"x402Version": 2, "paymentPayload": payment.raw, "paymentRequirements": f.requirement()});
    assert_eq!(
        f.call("/facilitator/settle", settle).await["success"],
        false
    );
    assert_eq!(f.balance(f.pay_to).await, 0);
}
