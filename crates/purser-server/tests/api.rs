#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The HTTP API end to end: a real listener, a real client, real databases.

mod common;

use std::sync::Arc;

use common::{TestServer, fresh_key};
use purser_core::ManualClock;
use purser_server::ServerConfig;
use purser_store::Backend;
use purser_types::UnixMs;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The owner funds a wallet and registers an agent; the agent reads its wallet
/// but cannot use owner routes; once revoked, its still-valid JWT and its
/// credential are refused on the very next request.
async fn owner_and_agent_story(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (wallet, owner) = server.wallet("ops", "100").await;
    let (agent, credential, jwt) = server.agent(&wallet, &owner, "researcher").await;
    assert_eq!(server.available(&wallet, &jwt).await, "100");
    let me = server.get("/api/me", Some(&jwt)).await;
    assert_eq!(me.body["role"], "agent");
    assert_eq!(me.body["agentId"], agent.as_str());

    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/wallets/{wallet}/agents"),
            Some(json!({ "name": "x" })),
        ),
        (Method::GET, format!("/api/wallets/{wallet}/agents"), None),
        (
            Method::POST,
            format!("/api/wallets/{wallet}/fund"),
            Some(json!({ "amount": "1" })),
        ),
        (
            Method::POST,
            format!("/api/agents/{agent}/revoke"),
            Some(json!({})),
        ),
        (Method::GET, format!("/api/wallets/{wallet}/audit"), None),
    ] {
        let reply = server
            .call(method, &path, Some(&jwt), Some(&fresh_key()), body)
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
    }

    let revoked = server
        .post(
            &format!("/api/agents/{agent}/revoke"),
            Some(&owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["status"], "revoked");
    let next = server
        .get(&format!("/api/wallets/{wallet}"), Some(&jwt))
        .await;
    next.assert_error(StatusCode::UNAUTHORIZED, "agent_revoked");
    let exchange = server.exchange(&agent, &credential).await;
    exchange.assert_error(StatusCode::UNAUTHORIZED, "agent_revoked");

    let agents = server
        .get(&format!("/api/wallets/{wallet}/agents"), Some(&owner))
        .await;
    assert_eq!(agents.body["items"][0]["status"], "revoked");
    let audit = server
        .get(&format!("/api/wallets/{wallet}/audit"), Some(&owner))
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "agent.revoked",
            "agent.registered",
            "wallet.funded",
            "wallet.created"
        ]
    );
    server.finish().await;
}

/// Another wallet's objects answer 404 to owners and agents alike.
async fn cross_wallet_access_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (wallet_a, owner_a) = server.wallet("a", "10").await;
    let (agent_a, _, jwt_a) = server.agent(&wallet_a, &owner_a, "agent a").await;
    let (wallet_b, owner_b) = server.wallet("b", "10").await;
    let (agent_b, _, jwt_b) = server.agent(&wallet_b, &owner_b, "agent b").await;

    for token in [&owner_b, &jwt_b] {
        for path in [
            format!("/api/wallets/{wallet_a}"),
            format!("/api/wallets/{wallet_a}/transfers"),
            format!("/api/agents/{agent_a}"),
        ] {
            let reply = server.get(&path, Some(token)).await;
            assert_eq!(
                (reply.status, reply.code()),
                (StatusCode::NOT_FOUND, "not_found"),
                "{path}"
            );
        }
    }
    for path in [
        format!("/api/wallets/{wallet_a}/agents"),
        format!("/api/wallets/{wallet_a}/audit"),
    ] {
        let reply = server.get(&path, Some(&owner_b)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let fund = server
        .post(
            &format!("/api/wallets/{wallet_a}/fund"),
            Some(&owner_b),
            &fresh_key(),
            json!({ "amount": "1" }),
        )
        .await;
    assert_eq!(fund.status, StatusCode::NOT_FOUND);
    let revoke = server
        .post(
            &format!("/api/agents/{agent_a}/revoke"),
            Some(&owner_b),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    let sibling = server
        .get(&format!("/api/agents/{agent_b}"), Some(&jwt_a))
        .await;
    assert_eq!(sibling.status, StatusCode::NOT_FOUND);

    // Nothing moved and nothing was revoked.
    assert_eq!(server.available(&wallet_a, &owner_a).await, "10");
    assert_eq!(
        server
            .get(&format!("/api/agents/{agent_a}"), Some(&owner_a))
            .await
            .body["status"],
        "active"
    );
    assert_eq!(
        server
            .get(&format!("/api/agents/{agent_a}"), Some(&jwt_a))
            .await
            .status,
        StatusCode::OK
    );
    server.finish().await;
}

/// Same key and body: the original answer, marked replayed, applied once. Same key,
/// other body: 409. No key: 400.
async fn idempotency_over_http(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (wallet, owner) = server.wallet("w", "0").await;
    let path = format!("/api/wallets/{wallet}/fund");
    let first = server
        .post(&path, Some(&owner), "fund-1", json!({ "amount": "2.5" }))
        .await;
    let again = server
        .post(&path, Some(&owner), "fund-1", json!({ "amount": "2.5" }))
        .await;
    assert_eq!((first.status, first.replayed), (StatusCode::CREATED, false));
    assert_eq!((again.status, again.replayed), (StatusCode::CREATED, true));
    assert_eq!(first.body, again.body);
    let conflict = server
        .post(&path, Some(&owner), "fund-1", json!({ "amount": "3" }))
        .await;
    conflict.assert_error(StatusCode::CONFLICT, "idempotency_conflict");
    let missing = server
        .call(
            Method::POST,
            &path,
            Some(&owner),
            None,
            Some(json!({ "amount": "1" })),
        )
        .await;
    missing.assert_error(StatusCode::BAD_REQUEST, "idempotency_key_required");
    assert_eq!(server.available(&wallet, &owner).await, "2.5");

    // Twenty concurrent retries of one request move money once.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, owner) = (
                server.http.clone(),
                format!("{}{path}", server.base),
                owner.clone(),
            );
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(owner)
                    .header("Idempotency-Key", "burst")
                    .json(&json!({ "amount": "1" }))
                    .send()
                    .await
                    .unwrap();
                response.status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(server.available(&wallet, &owner).await, "3.5");

    // A wallet creation replay returns the wallet but never the token again.
    let create = |name: &str| json!({ "name": name });
    let made = server
        .post("/api/wallets", None, "wallet-1", create("x"))
        .await;
    let replay = server
        .post("/api/wallets", None, "wallet-1", create("x"))
        .await;
    assert!(made.body["ownerToken"].is_string());
    assert_eq!(replay.body["ownerToken"], Value::Null);
    assert_eq!(replay.body["wallet"], made.body["wallet"]);
    let other = server
        .post("/api/wallets", None, "wallet-1", create("y"))
        .await;
    assert_eq!(other.code(), "idempotency_conflict");
    server.finish().await;
}

/// Bad input gets a stable code and changes nothing.
async fn bad_input_gets_stable_codes(backend: Backend) {
    let config = ServerConfig {
        body_limit_bytes: 2048,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(backend, Arc::new(purser_core::SystemClock), config).await;
    let (wallet, owner) = server.wallet("w", "1").await;
    let fund = format!("/api/wallets/{wallet}/fund");
    for amount in [
        json!("1e3"),
        json!("-1"),
        json!("1.0000001"),
        json!(5),
        json!(""),
        json!(" 1"),
        json!("NaN"),
    ] {
        let reply = server
            .post(
                &fund,
                Some(&owner),
                &fresh_key(),
                json!({ "amount": amount }),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "invalid_amount"),
            "{amount}: {:?}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("amount"),
            "{:?}",
            reply.body
        );
    }
    let zero = server
        .post(&fund, Some(&owner), &fresh_key(), json!({ "amount": "0" }))
        .await;
    assert_eq!(zero.code(), "invalid_request");
    let huge = server
        .post(
            &fund,
            Some(&owner),
            &fresh_key(),
            json!({ "amount": "9223372036854.775808" }),
        )
        .await;
    assert_eq!(huge.code(), "invalid_amount");

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            server
                .http
                .post(format!("{}{fund}", server.base))
                .bearer_auth(&owner)
                .header("Idempotency-Key", "k1")
                .header("content-type", "application/json")
                .body("{\"amount\":"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            server
                .http
                .post(format!("{}{fund}", server.base))
                .bearer_auth(&owner)
                .header("Idempotency-Key", "k2")
                .json(&json!({ "amount": "1", "extra": true })),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            server
                .http
                .post(format!("{}{fund}", server.base))
                .bearer_auth(&owner)
                .header("Idempotency-Key", "k3")
                .body("{\"amount\":\"1\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            server
                .http
                .post(format!("{}{fund}", server.base))
                .bearer_auth(&owner)
                .header("Idempotency-Key", "k4")
                .json(&json!({ "amount": "1", "pad": "x".repeat(4096) })),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            server
                .http
                .post(format!("{}{fund}", server.base))
                .bearer_auth(&owner)
                .header("Idempotency-Key", "a b")
                .json(&json!({ "amount": "1" })),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            server
                .http
                .get(format!("{}/api/wallets/not-an-id", server.base))
                .bearer_auth(&owner),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            server.http.get(format!("{}/api/nowhere", server.base)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            server
                .http
                .delete(format!("{}/api/wallets/{wallet}", server.base))
                .bearer_auth(&owner),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            server
                .http
                .get(format!("{}/api/wallets/{wallet}", server.base)),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            server
                .http
                .get(format!("{}/api/wallets/{wallet}", server.base))
                .bearer_auth("purser_owner_forged"),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            server
                .http
                .get(format!("{}/api/wallets/{wallet}", server.base))
                .bearer_auth("eyJ.eyJ.sig"),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            server
                .http
                .get(format!("{}/api/wallets/{wallet}", server.base))
                .header("Authorization", format!("Basic {owner}")),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            server
                .http
                .post(format!("{}/api/wallets", server.base))
                .header("Idempotency-Key", "k5")
                .json(&json!({ "name": "" })),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            server
                .http
                .post(format!("{}/api/wallets", server.base))
                .header("Idempotency-Key", "k6")
                .json(&json!({ "name": "x", "currency": "EUR" })),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        let got_status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (got_status, body["error"]["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(server.available(&wallet, &owner).await, "1");
    let transfers = server
        .get(&format!("/api/wallets/{wallet}/transfers"), Some(&owner))
        .await;
    assert_eq!(
        transfers.body["items"].as_array().unwrap().len(),
        1,
        "only the first funding"
    );
    server.finish().await;
}

/// In-flight requests finish during a graceful shutdown: every acknowledged
/// funding is in the database, and nothing is half-applied.
async fn graceful_shutdown_keeps_every_acknowledged_write(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let (wallet, owner) = server.wallet("w", "0").await;
    let url = format!("{}/api/wallets/{wallet}/fund", server.base);
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (http, url, owner) = (server.http.clone(), url.clone(), owner.clone());
            tokio::spawn(async move {
                let sent = http
                    .post(url)
                    .bearer_auth(owner)
                    .header("Idempotency-Key", format!("drain-{i}"))
                    .json(&json!({ "amount": "1" }))
                    .send()
                    .await;
                matches!(sent, Ok(r) if r.status() == StatusCode::CREATED)
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    server.shutdown().await;
    let mut acknowledged = 0u64;
    for task in tasks {
        acknowledged += u64::from(task.await.unwrap());
    }
    let store = server.db.open().await;
    let wallet_id = wallet.parse().unwrap();
    let balance = store
        .balances(wallet_id, purser_types::Currency::Usdc)
        .await
        .unwrap()
        .unwrap();
    eprintln!("acknowledged {acknowledged} of 60");
    assert_eq!(
        balance.available.atomic(),
        acknowledged * 1_000_000,
        "acknowledged {acknowledged}"
    );
    assert!(store.check_ledger().await.unwrap().is_ok());
    store.close().await;
    server.db.cleanup().await;
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
    owner_and_agent_story,
    cross_wallet_access_is_refused,
    idempotency_over_http,
    bad_input_gets_stable_codes,
    graceful_shutdown_keeps_every_acknowledged_write,
);

/// Agent JWTs verify against the published JWKS, with the documented claims.
#[tokio::test]
async fn jwks_verifies_agent_tokens() {
    use base64::Engine;
    let server = TestServer::start(Backend::Sqlite).await;
    let (wallet, owner) = server.wallet("w", "0").await;
    let (agent, _, jwt) = server.agent(&wallet, &owner, "a").await;
    let jwks = server.get("/.well-known/jwks.json", None).await.body;
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[&server.base]);
    validation.set_audience(&["purser:agent"]);
    let claims = jsonwebtoken::decode::<Value>(&jwt, &decoding, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], agent.as_str());
    assert_eq!(claims["wallet"], wallet.as_str());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime > 0 && lifetime <= 900, "{lifetime}");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], key["kid"]);
    server.finish().await;
}

/// Tokens expire on the injected clock: no sleeping in tests.
#[tokio::test]
async fn agent_tokens_expire() {
    let clock = Arc::new(ManualClock::new(UnixMs(1_800_000_000_000)));
    let server =
        TestServer::start_with(Backend::Sqlite, clock.clone(), ServerConfig::default()).await;
    let (wallet, owner) = server.wallet("w", "0").await;
    let (_, _, jwt) = server.agent(&wallet, &owner, "a").await;
    clock.advance_ms(599_000);
    assert_eq!(
        server
            .get(&format!("/api/wallets/{wallet}"), Some(&jwt))
            .await
            .status,
        StatusCode::OK
    );
    clock.advance_ms(1_000);
    let expired = server
        .get(&format!("/api/wallets/{wallet}"), Some(&jwt))
        .await;
    expired.assert_error(StatusCode::UNAUTHORIZED, "token_expired");
    server.finish().await;
}

/// `/healthz`, `/metrics` and `/openapi.json` behave like a production server's,
/// and the OpenAPI document matches the committed copy in docs/.
#[tokio::test]
async fn health_metrics_and_openapi() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (wallet, owner) = server.wallet("w", "1").await;
    let _ = server
        .get(&format!("/api/wallets/{wallet}"), Some(&owner))
        .await;
    let health = server.get("/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        (
            health.body["status"].as_str(),
            health.body["database"].as_str()
        ),
        (Some("ok"), Some("ok"))
    );

    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    for series in [
        "purser_http_requests_total{",
        "route=\"/api/wallets/{walletId}\"",
        "purser_http_request_duration_seconds_bucket",
        "purser_store_commit_seconds_bucket",
        "purser_store_batch_size_bucket",
        "purser_store_wal_flush_seconds_bucket",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }

    let served = server.get("/openapi.json", None).await.body;
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    assert!(served["paths"]["/api/wallets/{walletId}/fund"]["post"].is_object());
    let generated = serde_json::to_value(purser_server::openapi_document()).unwrap();
    assert_eq!(served, generated);
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("PURSER_UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json is out of date: run PURSER_UPDATE_OPENAPI=1 cargo test -p purser-server --test api"
    );
    server.finish().await;
}

/// `/skill.md` is the agent skill, naming this server, and lists only commands the
/// CLI has.
#[tokio::test]
async fn the_server_serves_its_agent_skill() {
    let server = TestServer::start(Backend::Sqlite).await;
    let skill = server.text_of(&format!("{}/skill.md", server.base)).await;
    assert!(skill.starts_with("---\nname: purser\n"), "{skill}");
    assert!(skill.contains("purser fetch URL"));
    assert!(skill.contains("`signUrl`"));
    let on_disk = include_str!("../../../skills/purser/SKILL.md");
    assert_eq!(skill.lines().count(), on_disk.lines().count());
    server.finish().await;
}
