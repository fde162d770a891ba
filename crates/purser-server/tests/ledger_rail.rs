//! The internal ledger rail (`purser:ledger`): an x402 payment between two wallets
//! of one server settles on the ledger at once, with no chain, through the one
//! authorization path on the payer's side and the facilitator on the payee's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use purser_chain::eip3009::{Authorization, usdc_domain};
use purser_chain::network::{Network, ledger_asset};
use purser_signer::WalletKey;
use purser_store::Backend;
use purser_types::x402::{PaymentPayload, decode_header, encode_header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestServer, fresh_key};

const PRICE: &str = "10000";

struct Shop {
    server: TestServer,
    buyer: String,
    buyer_owner: String,
    agent: String,
    jwt: String,
    seller: String,
    seller_owner: String,
    pay_to: String,
}

async fn shop(backend: Backend) -> Shop {
    let server = TestServer::start(backend).await;
    let (buyer, buyer_owner) = server.wallet("Buyer", "1").await;
    let (agent, _, jwt) = server.agent(&buyer, &buyer_owner, "bot").await;
    let (seller, seller_owner) = server.wallet("Seller", "0").await;
    let pay_to = server
        .get(&format!("/api/wallets/{seller}"), Some(&seller_owner))
        .await
        .body["wallet"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let drafted = server
        .post(
            "/api/mandates",
            Some(&jwt),
            &fresh_key(),
            json!({"description": "the seller's API", "limitAmount": "0.05", "hostAllowlist": ["api.seller.example"]}),
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
    assert_eq!(approved.status, StatusCode::OK);
    Shop {
        server,
        buyer,
        buyer_owner,
        agent,
        jwt,
        seller,
        seller_owner,
        pay_to,
    }
}

impl Shop {
    fn requirement(&self) -> Value {
        json!({
            "scheme": "exact", "network": "purser:ledger", "amount": PRICE,
            "asset": ledger_asset().to_checksum(None), "payTo": self.pay_to,
            "maxTimeoutSeconds": 60, "extra": {"name": "Purser Ledger", "version": "1"},
        })
    }

    /// The agent pays a PaymentRequired offering the chain (unavailable here) and
    /// the ledger; returns the payment and its reservation.
    async fn pay(&self) -> (PaymentPayload, String) {
        let mut on_chain = self.requirement();
        on_chain["network"] = json!("eip155:8453");
        let required = encode_header(&json!({
            "x402Version": 2, "resource": {"url": "https://api.seller.example/q"},
            "accepts": [on_chain, self.requirement()],
        }))
        .unwrap();
        let body = json!({"paymentRequired": required, "url": "https://api.seller.example/q", "purpose": "one query"});
        let signed = self
            .server
            .post("/api/payments/x402", Some(&self.jwt), &fresh_key(), body)
            .await;
        assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.body);
        assert_eq!(signed.body["network"], "purser:ledger");
        let payment =
            PaymentPayload::from_header(signed.body["headerValue"].as_str().unwrap()).unwrap();
        let reservation = signed.body["reservation"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (payment, reservation)
    }

    async fn facilitator(&self, action: &str, payment: &Value) -> Value {
        let body = json!({"x402Version": 2, "paymentPayload": payment, "paymentRequirements": self.requirement()});
        let reply = self
            .server
            .post(&format!("/facilitator/{action}"), None, &fresh_key(), body)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    async fn report(&self, reservation: &str, response: Value) -> Value {
        let path = format!("/api/payments/x402/{reservation}/result");
        let reply = self
            .server
            .post(&path, Some(&self.jwt), &fresh_key(), response)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    async fn balances(&self) -> (String, String) {
        (
            self.server.available(&self.buyer, &self.buyer_owner).await,
            self.server
                .available(&self.seller, &self.seller_owner)
                .await,
        )
    }
}

async fn settles_once_and_a_failure_holds_nothing(backend: Backend) {
    let shop = shop(backend).await;
    let (payment, reservation) = shop.pay().await;
    assert_eq!(
        shop.balances().await,
        ("0.99".into(), "0".into()),
        "reserved, not yet paid"
    );

    let verified = shop.facilitator("verify", &payment.raw).await;
    assert_eq!(verified["isValid"], true, "{verified:?}");
    let settled = shop.facilitator("settle", &payment.raw).await;
    assert_eq!(settled["success"], true, "{settled:?}");
    assert_eq!(settled["network"], "purser:ledger");
    assert_eq!(settled["transaction"], format!("ledger:{reservation}"));
    assert_eq!(settled["amount"], PRICE);
    assert_eq!(shop.balances().await, ("0.99".into(), "0.01".into()));
    // A replayed header answers the first settlement and moves nothing again.
    assert_eq!(shop.facilitator("settle", &payment.raw).await, settled);
    let again = shop.facilitator("verify", &payment.raw).await;
    assert_eq!(
        again["invalidReason"],
        "invalid_exact_evm_nonce_already_used"
    );
    assert_eq!(shop.balances().await, ("0.99".into(), "0.01".into()));
    let header = encode_header(&settled).unwrap();
    let reported = shop
        .report(&reservation, json!({"paymentResponse": header}))
        .await;
    assert_eq!(reported["status"], "settled");
    assert_eq!(reported["reservation"]["status"], "committed");

    // A tampered amount fails the signature; a signature by no wallet here is refused.
    let mut tampered = payment.raw.clone();
    tampered["payload"]["authorization"]["value"] = json!("20000");
    let mut doubled = shop.requirement();
    doubled["amount"] = json!("20000");
    let body =
        json!({"x402Version": 2, "paymentPayload": tampered, "paymentRequirements": doubled});
    let refused = shop
        .server
        .post("/facilitator/verify", None, &fresh_key(), body)
        .await;
    assert_eq!(refused.body["isValid"], false);
    assert_eq!(
        refused.body["invalidReason"], "invalid_exact_evm_signature",
        "{:?}",
        refused.body
    );
    let stranger = WalletKey::generate().unwrap();
    let mut forged = Authorization::from_wire(&payment.payload.authorization).unwrap();
    forged.from = stranger.address();
    let signature = stranger
        .sign_digest(&forged.digest(&usdc_domain(&Network::ledger())).0)
        .unwrap();
    let mut foreign = payment.raw.clone();
    foreign["payload"] = json!({"signature": signature, "authorization": forged.to_wire()});
    let refused = shop.facilitator("verify", &foreign).await;
    assert_eq!(refused["invalidReason"], "invalid_payload", "{refused:?}");

    // The payee's service failed: the agent reports it, the funds come back, and the
    // authorization can no longer be settled.
    let (failed, failed_reservation) = shop.pay().await;
    assert_eq!(shop.balances().await, ("0.98".into(), "0.01".into()));
    let voided = shop.report(&failed_reservation, json!({})).await;
    assert_eq!(voided["status"], "failed");
    assert_eq!(voided["reservation"]["status"], "released");
    let late = shop.facilitator("settle", &failed.raw).await;
    assert_eq!(late["success"], false);
    assert_eq!(late["errorReason"], "invalid_exact_evm_nonce_already_used");
    assert_eq!(shop.balances().await, ("0.99".into(), "0.01".into()));

    // Revoking the agent between signature and settlement stops the money.
    let (pending, pending_reservation) = shop.pay().await;
    let revoke = format!("/api/agents/{}/revoke", shop.agent);
    let revoked = shop
        .server
        .post(&revoke, Some(&shop.buyer_owner), &fresh_key(), json!({}))
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    let stopped = shop.facilitator("settle", &pending.raw).await;
    assert_eq!(stopped["success"], false, "{stopped:?}");
    assert_eq!(stopped["errorReason"], "invalid_transaction_state");
    assert_eq!(shop.balances().await, ("0.99".into(), "0.01".into()));
    let reservation = shop
        .server
        .get(
            &format!("/api/reservations/{pending_reservation}"),
            Some(&shop.buyer_owner),
        )
        .await;
    assert_eq!(
        reservation.body["status"], "released",
        "{:?}",
        reservation.body
    );
    assert!(decode_header(&encode_header(&stopped).unwrap()).is_ok());
    shop.server.assert_sound().await;
    shop.server.finish().await;
}

#[tokio::test]
async fn ledger_rail_on_sqlite() {
    settles_once_and_a_failure_holds_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn ledger_rail_on_postgres() {
    settles_once_and_a_failure_holds_nothing(Backend::Postgres).await;
}
