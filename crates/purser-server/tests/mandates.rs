#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Mandates and the one authorization path over real HTTP, on both engines.

mod common;

use std::sync::Arc;

use common::{Reply, TestServer, fresh_key};
use purser_core::ManualClock;
use purser_server::ServerConfig;
use purser_store::Backend;
use purser_types::UnixMs;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A funded wallet, an agent, and a second wallet to be paid.
struct Scene {
    wallet: String,
    owner: String,
    agent: String,
    credential: String,
    jwt: String,
    merchant: String,
    merchant_owner: String,
    merchant_address: String,
}

async fn scene(server: &TestServer, funds: &str) -> Scene {
    let (wallet, owner) = server.wallet("agent wallet", funds).await;
    let (agent, credential, jwt) = server.agent(&wallet, &owner, "researcher").await;
    let (merchant, merchant_owner) = server.wallet("merchant", "0").await;
    let view = server
        .get(&format!("/api/wallets/{merchant}"), Some(&merchant_owner))
        .await;
    let merchant_address = view.body["wallet"]["address"].as_str().unwrap().to_owned();
    Scene {
        wallet,
        owner,
        agent,
        credential,
        jwt,
        merchant,
        merchant_owner,
        merchant_address,
    }
}

async fn draft(server: &TestServer, jwt: &str, body: Value) -> Reply {
    server
        .post("/api/mandates", Some(jwt), &fresh_key(), body)
        .await
}

/// Drafts and signs a mandate; returns its id.
async fn signed_mandate(server: &TestServer, s: &Scene, body: Value) -> String {
    let drafted = draft(server, &s.jwt, body).await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{:?}", drafted.body);
    let id = drafted.body["mandateId"].as_str().unwrap().to_owned();
    let approved = server
        .post(
            &format!("/api/mandates/{id}/approve"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    id
}

async fn authorize(
    server: &TestServer,
    jwt: &str,
    amount: &str,
    host: &str,
    extra: Value,
) -> Reply {
    let mut body = json!({ "amount": amount, "payee": { "host": host }, "purpose": "an API call" });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    server
        .post("/api/payments/authorize", Some(jwt), &fresh_key(), body)
        .await
}

async fn mandate(server: &TestServer, token: &str, id: &str) -> Value {
    server
        .get(&format!("/api/mandates/{id}"), Some(token))
        .await
        .body
}

/// Draft → the owner signs once → anyone verifies offline; agents never approve.
async fn mandate_lifecycle(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "10").await;
    let body = json!({
        "naturalLanguage": "Pay for WHOIS API calls", "limitAmount": "5", "maxAmountPerTx": "1",
        "hostAllowlist": ["API.Whois.Example.", "*.cdn.example"], "validForSeconds": 3600, "category": "api",
    });
    let drafted = draft(&server, &s.jwt, body).await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{:?}", drafted.body);
    let id = drafted.body["mandateId"].as_str().unwrap().to_owned();
    assert_eq!(drafted.body["status"], "pending_signature");
    assert_eq!(
        drafted.body["hostAllowlist"],
        json!(["*.cdn.example", "api.whois.example"])
    );
    assert_eq!(
        drafted.body["signUrl"],
        format!("{}/mandates/{id}/review", server.base).as_str()
    );
    assert_eq!(drafted.body["remainingAmount"], "5");

    let by_agent = server
        .post(
            &format!("/api/mandates/{id}/approve"),
            Some(&s.jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    by_agent.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let owner_drafts = draft(
        &server,
        &s.owner,
        json!({"description": "x", "limitAmount": "1"}),
    )
    .await;
    owner_drafts.assert_error(StatusCode::FORBIDDEN, "forbidden");

    let approved = server
        .post(
            &format!("/api/mandates/{id}/approve"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(approved.body["status"], "signed");
    assert!(approved.body["signature"].as_str().unwrap().len() == 132);
    let again = server
        .post(
            &format!("/api/mandates/{id}/approve"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    again.assert_error(StatusCode::CONFLICT, "invalid_state");

    let signed = server
        .get(&format!("/api/mandates/{id}/signed"), Some(&s.jwt))
        .await
        .body;
    let verified = server
        .call(
            reqwest::Method::POST,
            "/api/mandates/verify",
            None,
            None,
            Some(signed.clone()),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    assert_eq!(verified.body["signer"], signed["walletAddress"]);
    for (field, value) in [
        ("limitAmount", json!("500")),
        ("validUntil", json!("2030-01-01T00:00:00Z")),
        ("hostAllowlist", json!([])),
    ] {
        let mut widened = signed.clone();
        widened[field] = value;
        let refused = server
            .call(
                reqwest::Method::POST,
                "/api/mandates/verify",
                None,
                None,
                Some(widened),
            )
            .await;
        refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_signature");
    }

    let second = draft(
        &server,
        &s.jwt,
        json!({"description": "other", "limitAmount": "1"}),
    )
    .await;
    let second = second.body["mandateId"].as_str().unwrap().to_owned();
    let rejected = server
        .post(
            &format!("/api/mandates/{second}/reject"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(rejected.body["status"], "rejected");
    let listed = server
        .get("/api/mandates?status=signed", Some(&s.owner))
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let revoked = server
        .post(
            &format!("/api/mandates/{id}/revoke"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(revoked.body["status"], "revoked");
    let other_owner = server.wallet("stranger", "0").await.1;
    let hidden = server
        .get(&format!("/api/mandates/{id}"), Some(&other_owner))
        .await;
    hidden.assert_error(StatusCode::NOT_FOUND, "not_found");
    server.finish().await;
}

/// Payments inside the mandate clear without asking; anything off-mission is
/// refused with its reason; the mandate's amounts move in real time.
async fn payments_follow_the_mandate(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "2").await;
    let id = signed_mandate(
        &server,
        &s,
        json!({"description": "weather", "limitAmount": "1", "maxAmountPerTx": "0.5", "hostAllowlist": ["api.weather.example"]}),
    )
    .await;
    // With approvals off, a payment no mandate covers is refused with the reason
    // its only mandate gives.
    let pay = |amount: &'static str, host: &'static str| {
        let address = s.merchant_address.clone();
        let jwt = s.jwt.clone();
        let server = &server;
        async move {
            let body = json!({
                "amount": amount, "payee": { "host": host, "address": address }, "purpose": "forecast",
                "allowApproval": false,
            });
            server
                .post("/api/payments/authorize", Some(&jwt), &fresh_key(), body)
                .await
        }
    };
    let first = pay("0.3", "https://api.weather.example/v1/forecast").await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["reservation"]["mandateId"], id.as_str());
    let m = mandate(&server, &s.jwt, &id).await;
    assert_eq!(
        (
            m["spentAmount"].as_str(),
            m["pendingSpentAmount"].as_str(),
            m["remainingAmount"].as_str()
        ),
        (Some("0"), Some("0.3"), Some("0.7"))
    );
    let reservation = first.body["reservation"]["id"].as_str().unwrap();
    let committed = server
        .post(
            &format!("/api/reservations/{reservation}/commit"),
            Some(&s.jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(
        committed.body["status"], "committed",
        "{:?}",
        committed.body
    );
    assert_eq!(
        server.available(&s.merchant, &s.merchant_owner).await,
        "0.3"
    );
    let m = mandate(&server, &s.jwt, &id).await;
    assert_eq!(
        (m["spentAmount"].as_str(), m["pendingSpentAmount"].as_str()),
        (Some("0.3"), Some("0"))
    );

    assert_eq!(
        pay("0.3", "api.weather.example").await.status,
        StatusCode::CREATED
    );
    pay("0.1", "evil.example")
        .await
        .assert_error(StatusCode::FORBIDDEN, "host_not_allowed");
    pay("0.1", "api.weather.example@evil.example")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    pay("0.6", "api.weather.example")
        .await
        .assert_error(StatusCode::FORBIDDEN, "per_tx_cap_exceeded");
    pay("0.5", "api.weather.example")
        .await
        .assert_error(StatusCode::FORBIDDEN, "mandate_budget_exceeded");
    let named = authorize(
        &server,
        &s.jwt,
        "0.5",
        "api.weather.example",
        json!({"mandateId": id, "allowApproval": false}),
    )
    .await;
    named.assert_error(StatusCode::FORBIDDEN, "mandate_budget_exceeded");
    let eligible = server
        .get(
            "/api/mandates/eligible?host=api.weather.example&amount=0.4",
            Some(&s.jwt),
        )
        .await;
    assert_eq!(eligible.body["items"].as_array().unwrap().len(), 1);
    let too_much = server
        .get(
            "/api/mandates/eligible?host=api.weather.example&amount=0.41",
            Some(&s.jwt),
        )
        .await;
    assert!(too_much.body["items"].as_array().unwrap().is_empty());

    // A bigger mandate than the wallet can fund: the wallet's balance decides.
    signed_mandate(
        &server,
        &s,
        json!({"description": "big", "limitAmount": "100", "hostAllowlist": ["big.example"]}),
    )
    .await;
    authorize(&server, &s.jwt, "5", "big.example", json!({}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");

    let audit = server
        .get(
            &format!("/api/wallets/{}/audit?limit=200", s.wallet),
            Some(&s.owner),
        )
        .await;
    let denied = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "payment.denied")
        .count();
    assert!(denied >= 4, "every refusal is on the record");
    let metrics = server.text_of(&format!("{}/metrics", server.base)).await;
    for series in [
        r#"purser_authorizations_total{kind="x402",result="host_not_allowed"}"#,
        r#"purser_authorizations_total{kind="x402",result="reserved"}"#,
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from /metrics:\n{metrics}"
        );
    }
    server.finish().await;
}

/// A hold belongs to the agent that made it: another agent of the same wallet can
/// neither see it nor commit or release it; the owner can.
async fn reservations_belong_to_their_agent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "2").await;
    signed_mandate(
        &server,
        &s,
        json!({"description": "weather", "limitAmount": "1", "hostAllowlist": ["api.weather.example"]}),
    )
    .await;
    let held = authorize(&server, &s.jwt, "0.3", "api.weather.example", json!({})).await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    let id = held.body["reservation"]["id"].as_str().unwrap().to_owned();
    let (_, _, other) = server.agent(&s.wallet, &s.owner, "another agent").await;
    let path = format!("/api/reservations/{id}");
    server
        .get(&path, Some(&other))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    server
        .post(
            &format!("{path}/commit"),
            Some(&other),
            &fresh_key(),
            json!({"settlement": "0xabc"}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    server
        .post(
            &format!("{path}/release"),
            Some(&other),
            &fresh_key(),
            json!({"reason": "mine now"}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let seen = server.get(&path, Some(&s.owner)).await;
    assert_eq!(seen.body["status"], "held", "{:?}", seen.body);
    let released = server
        .post(
            &format!("{path}/release"),
            Some(&s.jwt),
            &fresh_key(),
            json!({"reason": "not needed"}),
        )
        .await;
    assert_eq!(released.body["status"], "released", "{:?}", released.body);
    assert_eq!(server.available(&s.wallet, &s.owner).await, "2");
    server.finish().await;
}

/// No covering mandate: the owner approves one payment, once, before it expires.
async fn approval_fallback(backend: Backend) {
    let clock = Arc::new(ManualClock::new(UnixMs(1_800_000_000_000)));
    let server = TestServer::start_with(backend, clock.clone(), ServerConfig::default()).await;
    let s = scene(&server, "3").await;
    let asked = authorize(&server, &s.jwt, "1", "tools.example", json!({})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
    assert_eq!(asked.body["result"], "approval_required");
    let approval = asked.body["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        asked.body["approvalUrl"],
        format!("{}/approvals/{approval}/review", server.base).as_str()
    );
    let retry = json!({"approvalId": approval});
    assert_eq!(
        authorize(&server, &s.jwt, "1", "tools.example", retry.clone())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let queue = server
        .get("/api/approvals?pending=true", Some(&s.owner))
        .await;
    assert_eq!(queue.body["items"].as_array().unwrap().len(), 1);
    server
        .get("/api/approvals", Some(&s.jwt))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let self_approval = server
        .post(
            &format!("/api/approvals/{approval}/approve"),
            Some(&s.jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    self_approval.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let approved = server
        .post(
            &format!("/api/approvals/{approval}/approve"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(approved.body["status"], "approved");
    let different = authorize(&server, &s.jwt, "2", "tools.example", retry.clone()).await;
    different.assert_error(StatusCode::FORBIDDEN, "approval_invalid");
    let reserved = authorize(&server, &s.jwt, "1", "tools.example", retry.clone()).await;
    assert_eq!(reserved.status, StatusCode::CREATED, "{:?}", reserved.body);
    assert_eq!(
        reserved.body["reservation"]["approvalId"],
        approval.as_str()
    );
    authorize(&server, &s.jwt, "1", "tools.example", retry)
        .await
        .assert_error(StatusCode::FORBIDDEN, "approval_invalid");

    // An approval not decided in time expires.
    let late = authorize(&server, &s.jwt, "0.5", "tools.example", json!({})).await;
    let late_id = late.body["approval"]["id"].as_str().unwrap().to_owned();
    clock.advance_ms(601_000);
    // The agent's 10-minute token expired with the approval: it gets a fresh one.
    let jwt = server.exchange(&s.agent, &s.credential).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = Scene { jwt, ..s };
    let too_late = server
        .post(
            &format!("/api/approvals/{late_id}/approve"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    too_late.assert_error(StatusCode::CONFLICT, "invalid_state");
    let expired = authorize(
        &server,
        &s.jwt,
        "0.5",
        "tools.example",
        json!({"approvalId": late_id}),
    )
    .await;
    expired.assert_error(StatusCode::FORBIDDEN, "approval_expired");
    let strict = authorize(
        &server,
        &s.jwt,
        "0.5",
        "tools.example",
        json!({"allowApproval": false}),
    )
    .await;
    strict.assert_error(StatusCode::FORBIDDEN, "no_eligible_mandate");
    server.finish().await;
}

/// The wallet policy sits on top of every mandate, and its denial wins.
async fn policy_denial_wins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "10").await;
    signed_mandate(
        &server,
        &s,
        json!({"description": "anything", "limitAmount": "8"}),
    )
    .await;
    let policy = json!({
        "perPaymentCap": "2", "deniedHosts": ["*.casino.example"], "perAgentMonthlyCap": "3", "autoApproveUpTo": "0.05",
    });
    let set = server
        .call(
            reqwest::Method::PUT,
            "/api/policy",
            Some(&s.owner),
            Some(&fresh_key()),
            Some(policy),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    server
        .get("/api/policy", Some(&s.jwt))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    authorize(&server, &s.jwt, "1", "slots.casino.example", json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "policy_denied");
    authorize(&server, &s.jwt, "2.5", "books.example", json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "policy_denied");
    assert_eq!(
        authorize(&server, &s.jwt, "2", "books.example", json!({}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        authorize(&server, &s.jwt, "1", "books.example", json!({}))
            .await
            .status,
        StatusCode::CREATED
    );
    let over_month = authorize(&server, &s.jwt, "0.01", "books.example", json!({})).await;
    over_month.assert_error(StatusCode::FORBIDDEN, "policy_denied");
    let bad = server
        .call(
            reqwest::Method::PUT,
            "/api/policy",
            Some(&s.owner),
            Some(&fresh_key()),
            Some(json!({"deniedHosts": ["*.com"]})),
        )
        .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    server.finish().await;
}

/// Payouts: at once on the ledger, held for the chain elsewhere, approved when no
/// mandate covers them, and idempotent by payout id.
async fn payouts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "10").await;
    signed_mandate(
        &server,
        &s,
        json!({"description": "payouts", "limitAmount": "4"}),
    )
    .await;
    let payout = |id: &str, to: &str, amount: &str| json!({ "payoutId": id, "toAddress": to, "amount": amount });
    let internal = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-1",
            payout("po-1", &s.merchant_address.to_lowercase(), "1.5"),
        )
        .await;
    assert_eq!(internal.status, StatusCode::CREATED, "{:?}", internal.body);
    assert_eq!(
        (
            internal.body["status"].as_str(),
            internal.body["rail"].as_str()
        ),
        (Some("succeeded"), Some("ledger"))
    );
    assert_eq!(
        server.available(&s.merchant, &s.merchant_owner).await,
        "1.5"
    );
    let replay = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-1",
            payout("po-1", &s.merchant_address, "1.5"),
        )
        .await;
    assert!(replay.replayed);
    assert_eq!(
        server.available(&s.merchant, &s.merchant_owner).await,
        "1.5",
        "paid once"
    );
    let conflict = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-1",
            payout("po-1", &s.merchant_address, "2"),
        )
        .await;
    conflict.assert_error(StatusCode::CONFLICT, "idempotency_conflict");

    let external = "0x000000000000000000000000000000000000dEaD";
    let held = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-2",
            payout("po-2", external, "2"),
        )
        .await;
    assert_eq!(
        (held.body["status"].as_str(), held.body["rail"].as_str()),
        (Some("authorized"), Some("external"))
    );
    let balances = server
        .get(&format!("/api/wallets/{}", s.wallet), Some(&s.owner))
        .await
        .body;
    assert_eq!(
        (
            balances["balances"]["available"].as_str(),
            balances["balances"]["reserved"].as_str()
        ),
        (Some("6.5"), Some("2"))
    );

    let over = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-3",
            payout("po-3", external, "1"),
        )
        .await;
    assert_eq!(
        over.body["status"], "pending_authorization",
        "{:?}",
        over.body
    );
    let approval_url = over.body["approvalUrl"].as_str().unwrap();
    let approval = approval_url.rsplit('/').nth(1).unwrap();
    server
        .post(
            &format!("/api/approvals/{approval}/approve"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    let after = server.get("/api/payouts/po-3", Some(&s.jwt)).await;
    assert_eq!(after.body["status"], "authorized", "{:?}", after.body);
    assert_eq!(after.body["approvalUrl"], Value::Null);
    let to_self = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-4",
            payout("po-4", balances["wallet"]["address"].as_str().unwrap(), "1"),
        )
        .await;
    to_self.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let bad_address = server
        .post(
            "/api/payouts",
            Some(&s.jwt),
            "po-5",
            payout("po-5", "0x1234", "1"),
        )
        .await;
    bad_address.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    server.finish().await;
}

/// The race Privy admits to, closed: 1,000 concurrent authorizations of 0.01
/// against a 1.00 mandate, through two servers sharing one database, end with
/// exactly 100 reserved.
async fn concurrent_authorizations_never_overspend(backend: Backend) {
    let first = TestServer::start(backend).await;
    let second = first.second_server().await;
    let s = scene(&first, "50").await;
    let id = signed_mandate(
        &first,
        &s,
        json!({"description": "micro", "limitAmount": "1", "hostAllowlist": ["api.example"]}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (http, jwt) = (first.http.clone(), s.jwt.clone());
        let base = if i % 2 == 0 {
            first.base.clone()
        } else {
            second.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            let body = json!({ "amount": "0.01", "payee": { "host": "api.example" }, "purpose": "call", "allowApproval": false });
            let response = http
                .post(format!("{base}/api/payments/authorize"))
                .bearer_auth(jwt)
                .header("Idempotency-Key", format!("race-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
        }));
    }
    let (mut reserved, mut exceeded) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::CREATED, _) => reserved += 1,
            (StatusCode::FORBIDDEN, code) if code == "mandate_budget_exceeded" => exceeded += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((reserved, exceeded), (100, 900));
    let m = mandate(&first, &s.jwt, &id).await;
    assert_eq!(
        (
            m["pendingSpentAmount"].as_str(),
            m["remainingAmount"].as_str(),
            m["status"].as_str()
        ),
        (Some("1"), Some("0"), Some("exhausted"))
    );
    let balances = first
        .get(&format!("/api/wallets/{}", s.wallet), Some(&s.owner))
        .await
        .body;
    assert_eq!(balances["balances"]["reserved"], "1");
    second.shutdown_only().await;
    first.finish().await;
}

/// Revoking the mandate or the agent between reserve and commit: the ledger payment
/// is refused and the hold released.
async fn revocation_between_reserve_and_commit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "5").await;
    let id = signed_mandate(&server, &s, json!({"description": "x", "limitAmount": "2"})).await;
    let pay = json!({ "amount": "1", "payee": { "address": s.merchant_address }, "purpose": "p" });
    let hold = server
        .post(
            "/api/payments/authorize",
            Some(&s.jwt),
            &fresh_key(),
            pay.clone(),
        )
        .await;
    let reservation = hold.body["reservation"]["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/api/mandates/{id}/revoke"),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    let commit = server
        .post(
            &format!("/api/reservations/{reservation}/commit"),
            Some(&s.jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(
        (
            commit.body["status"].as_str(),
            commit.body["releaseReason"].as_str()
        ),
        (Some("released"), Some("mandate_revoked"))
    );
    assert_eq!(server.available(&s.wallet, &s.owner).await, "5");
    assert_eq!(server.available(&s.merchant, &s.merchant_owner).await, "0");

    let id = signed_mandate(&server, &s, json!({"description": "y", "limitAmount": "2"})).await;
    let hold = server
        .post("/api/payments/authorize", Some(&s.jwt), &fresh_key(), pay)
        .await;
    let reservation = hold.body["reservation"]["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/api/agents/{}/revoke", s.agent),
            Some(&s.owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    // The payment routes leave the revocation check to the committer's locked
    // decision: the same, still-valid token is refused there on the next request.
    let again =
        json!({ "amount": "0.1", "payee": { "address": s.merchant_address }, "purpose": "p" });
    let refused = server
        .post("/api/payments/authorize", Some(&s.jwt), &fresh_key(), again)
        .await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "agent_revoked");
    let payout =
        json!({ "payoutId": "after-revoke", "toAddress": s.merchant_address, "amount": "0.1" });
    let refused = server
        .post("/api/payouts", Some(&s.jwt), "after-revoke", payout)
        .await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "agent_revoked");
    // The agent's own token no longer works; the owner finds the hold released on commit.
    let commit = server
        .post(
            &format!("/api/reservations/{reservation}/commit"),
            Some(&s.jwt),
            &fresh_key(),
            json!({}),
        )
        .await;
    commit.assert_error(StatusCode::UNAUTHORIZED, "agent_revoked");
    let m = mandate(&server, &s.owner, &id).await;
    assert_eq!(m["pendingSpentAmount"], "1");
    server.finish().await;
}

/// Mandates expire on the injected clock.
async fn mandates_expire(backend: Backend) {
    let clock = Arc::new(ManualClock::new(UnixMs(1_800_000_000_000)));
    let server = TestServer::start_with(backend, clock.clone(), ServerConfig::default()).await;
    let s = scene(&server, "5").await;
    let id = signed_mandate(
        &server,
        &s,
        json!({"description": "short", "limitAmount": "2", "validForSeconds": 60}),
    )
    .await;
    let strict = json!({"allowApproval": false});
    assert_eq!(
        authorize(&server, &s.jwt, "0.1", "a.example", strict.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    clock.advance_ms(60_000);
    assert_eq!(mandate(&server, &s.jwt, &id).await["status"], "expired");
    let named = authorize(
        &server,
        &s.jwt,
        "0.1",
        "a.example",
        json!({"mandateId": id}),
    )
    .await;
    named.assert_error(StatusCode::FORBIDDEN, "mandate_expired");
    authorize(&server, &s.jwt, "0.1", "a.example", strict)
        .await
        .assert_error(StatusCode::FORBIDDEN, "no_eligible_mandate");
    // Drafting for more than a year ahead is refused.
    let long = draft(
        &server,
        &s.jwt,
        json!({"description": "l", "limitAmount": "1", "validForSeconds": 40_000_000}),
    )
    .await;
    long.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    server.finish().await;
}

/// A browser without JavaScript or a cookie jar of its own: cookies are carried by
/// hand, redirects are not followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &set {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        set
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let response = self
            .http
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        let headers = response.headers().clone();
        (response.status(), response.text().await.unwrap(), headers)
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Vec<String>, Option<String>) {
        let response = self
            .http
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        let set = self.keep(&response);
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (
            response.status(),
            response.text().await.unwrap(),
            set,
            location,
        )
    }

    async fn sign_in(
        &mut self,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Vec<String>, Option<String>) {
        let (_, page, _) = self.get("/signin").await;
        let csrf = csrf_of(&page);
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post("/signin", &fields).await
    }
}

fn csrf_of(html: &str) -> String {
    let start =
        html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The review page and the dashboard's guards: terms in plain words and safe
/// headers for anyone with the link; deciding only in an owner's session with its
/// CSRF token; agents cannot sign in; sessions cannot be forged; passwords are
/// throttled.
async fn review_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = scene(&server, "5").await;
    let drafted = draft(&server, &s.jwt, json!({"description": "<script>alert(1)</script> data", "limitAmount": "2.5", "hostAllowlist": ["api.example"]})).await;
    let sign_url = drafted.body["signUrl"].as_str().unwrap().to_owned();
    let id = drafted.body["mandateId"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&server);

    let (status, html, headers) = browser.get(&sign_url).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && csp.contains("form-action 'self'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        html.contains("$2.50") && html.contains("Only api.example") && html.contains("researcher")
    );
    assert!(
        !html.contains("<script>alert") && html.contains("&#60;script&#62;alert(1)"),
        "the description is escaped"
    );
    assert!(
        html.contains("Sign in to approve") && !html.contains("Approve and sign"),
        "no decision without a session"
    );

    // The agent that drafted it cannot decide: not with its token, not by signing in.
    let by_agent = browser
        .http
        .post(&sign_url)
        .bearer_auth(&s.jwt)
        .form(&[("csrf", "x"), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(by_agent.status(), StatusCode::SEE_OTHER);
    assert!(
        by_agent.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/signin?next=")
    );
    for token in [s.jwt.as_str(), s.credential.as_str()] {
        let (status, page, set, _) = browser
            .sign_in(&[("method", "token"), ("owner_token", token)])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
        assert!(
            !set.iter().any(|c| c.starts_with("purser_session=v1")),
            "no session for an agent"
        );
    }
    assert_eq!(
        mandate(&server, &s.jwt, &id).await["status"],
        "pending_signature"
    );

    // A sign-in whose form token is not the page's is refused.
    let (status, _, set, _) = browser
        .post(
            "/signin",
            &[
                ("csrf", "forged"),
                ("method", "token"),
                ("owner_token", s.owner.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(set.is_empty() || !set.iter().any(|c| c.starts_with("purser_session=v1")));

    // The owner signs in and comes back to the page.
    let next = sign_url.trim_start_matches(&server.base).to_owned();
    let (status, _, set, location) = browser
        .sign_in(&[
            ("method", "token"),
            ("owner_token", s.owner.as_str()),
            ("zone_offset", "60"),
            ("next", &next),
        ])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some(next.as_str()));
    let session = set
        .iter()
        .find(|c| c.starts_with("purser_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Path=/")
    );
    let (_, html, _) = browser.get(&sign_url).await;
    assert!(html.contains("Approve and sign") && html.contains("UTC+01:00"));
    let csrf = csrf_of(&html);

    // Without the session's CSRF token, nothing is decided.
    let (status, _, _, _) = browser
        .post(&sign_url, &[("csrf", "0000"), ("decision", "approve")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        mandate(&server, &s.jwt, &id).await["status"],
        "pending_signature"
    );
    let (status, html, _, _) = browser
        .post(
            &sign_url,
            &[("csrf", csrf.as_str()), ("decision", "approve")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Mandate signed"));
    let (status, _, _, _) = browser
        .post(
            &sign_url,
            &[("csrf", csrf.as_str()), ("decision", "approve")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a resubmitted form replays the decision"
    );
    assert_eq!(mandate(&server, &s.jwt, &id).await["status"], "signed");

    // Every page renders for the owner.
    for path in [
        "/",
        "/agents",
        "/mandates",
        "/approvals",
        "/payments",
        "/payouts",
        "/links",
        "/audit",
        "/settings",
    ] {
        let (status, html, headers) = browser.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(
            html.contains(r#"aria-current="page""#),
            "{path} marks its place in the navigation"
        );
    }
    let (_, audit, _) = browser.get("/audit").await;
    assert!(audit.contains("Chain verified"), "{audit}");

    // A V1 approval, denied from the queue.
    let asked = authorize(&server, &s.jwt, "1", "other.example", json!({})).await;
    let approval_url = asked.body["approvalUrl"].as_str().unwrap().to_owned();
    let (_, queue, _) = browser.get("/approvals").await;
    assert!(queue.contains("other.example") && queue.contains("$1.00"));
    let (_, html, _, _) = browser
        .post(
            &approval_url,
            &[("csrf", csrf.as_str()), ("decision", "deny")],
        )
        .await;
    assert!(html.contains("Denied"), "{html}");

    // A forged or altered session is no session; signing out ends it.
    let session_value = browser
        .cookies
        .iter()
        .find(|(n, _)| n == "purser_session")
        .unwrap()
        .1
        .clone();
    let forged = session_value.replacen(&s.wallet, &s.merchant, 1);
    let mut intruder = Browser::new(&server);
    intruder.cookies.push(("purser_session".into(), forged));
    let (status, _, headers) = intruder.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers["location"].to_str().unwrap().starts_with("/signin"));
    let (status, _, set, _) = browser.post("/signout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        set.iter()
            .any(|c| c.starts_with("purser_session=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(browser.get("/").await.0, StatusCode::SEE_OTHER);

    // Passwords: set at creation, checked with Argon2, five failures lock sign-in
    // for that wallet for a while (even with the right password).
    let created = server
        .post(
            "/api/wallets",
            None,
            &fresh_key(),
            json!({"name": "pw", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let wallet = created.body["wallet"]["id"].as_str().unwrap().to_owned();
    let short = server
        .post(
            "/api/wallets",
            None,
            &fresh_key(),
            json!({"name": "pw", "password": "short"}),
        )
        .await;
    short.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let mut owner = Browser::new(&server);
    let (status, _, _, _) = owner
        .sign_in(&[
            ("method", "password"),
            ("wallet_id", &wallet),
            ("password", "correct horse battery"),
        ])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut guesser = Browser::new(&server);
    for _ in 0..5 {
        let (status, page, _, _) = guesser
            .sign_in(&[
                ("method", "password"),
                ("wallet_id", &wallet),
                ("password", "wrong horse battery"),
            ])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(page.contains("not valid"));
    }
    let (status, page, _, _) = guesser
        .sign_in(&[
            ("method", "password"),
            ("wallet_id", &wallet),
            ("password", "correct horse battery"),
        ])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    server.finish().await;
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(purser_store::Backend::Sqlite).await; })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(purser_store::Backend::Postgres).await; })+
        }
    };
}

on_both_backends!(
    mandate_lifecycle,
    payments_follow_the_mandate,
    reservations_belong_to_their_agent,
    approval_fallback,
    policy_denial_wins,
    payouts,
    concurrent_authorizations_never_overspend,
    revocation_between_reserve_and_commit,
    mandates_expire,
    review_pages,
);
