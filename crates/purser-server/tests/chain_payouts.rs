//! External payouts on a real chain (anvil + the project's TestUSDC): the wallet's
//! USDC arrives as a deposit, a payout leaves as an EIP-3009 transfer the relayer
//! sends, and the ledger and the chain agree after every step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use purser_chain::client::{ChainClient, Timeouts};
use purser_chain::devnet::{DEV_KEYS, mint};
use purser_store::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestServer, fresh_key};

struct Scene {
    server: TestServer,
    chain: Arc<ChainClient>,
    rpc_url: String,
    wallet: String,
    owner: String,
    jwt: String,
    mandate: String,
    address: Address,
    _devnet: purser_chain::devnet::Devnet,
}

async fn scene() -> Scene {
    let devnet = purser_testkit::devnet(&[]).await;
    let chain = Arc::new(
        ChainClient::new(
            devnet.config.network(),
            &devnet.config.rpc_url,
            Some(DEV_KEYS[1]),
            Timeouts::default(),
        )
        .unwrap(),
    );
    let server = TestServer::start_on_chain(Backend::Sqlite, chain.clone()).await;
    let (wallet, owner) = server.wallet("Treasury", "0").await;
    let (_, _, jwt) = server.agent(&wallet, &owner, "payer").await;
    let address = address_of(&server, &wallet, &owner).await;
    let drafted = server
        .post(
            "/api/mandates",
            Some(&jwt),
            &fresh_key(),
            json!({"description": "vendor payouts", "limitAmount": "20"}),
        )
        .await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{:?}", drafted.body);
    let mandate = drafted.body["mandateId"].as_str().unwrap().to_owned();
    let approved = server
        .post(
            &format!("/api/mandates/{mandate}/approve"),
            Some(&owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    Scene {
        rpc_url: devnet.config.rpc_url.clone(),
        server,
        chain,
        wallet,
        owner,
        jwt,
        mandate,
        address,
        _devnet: devnet,
    }
}

async fn address_of(server: &TestServer, wallet: &str, owner: &str) -> Address {
    server
        .get(&format!("/api/wallets/{wallet}"), Some(owner))
        .await
        .body["wallet"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

impl Scene {
    async fn chain_balance(&self, who: Address) -> u64 {
        self.chain.balance_of(who).await.unwrap().to::<u64>()
    }

    async fn deposit(&self, to: Address, atomic: u64) {
        let usdc = self.chain.network().usdc;
        mint(&self.rpc_url, usdc, to, U256::from(atomic))
            .await
            .unwrap();
        self.server.purser.scan_deposits().await.unwrap();
    }

    async fn payout(&self, id: &str, to: Address, amount: &str) -> Value {
        let reply = self
            .server
            .post(
                "/api/payouts",
                Some(&self.jwt),
                id,
                json!({"payoutId": id, "toAddress": to.to_checksum(None), "amount": amount}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body
    }

    async fn reconciles(&self) {
        let report = self.server.purser.reconcile().await.unwrap();
        for wallet in &report {
            assert!(wallet.matches, "{wallet:?}");
        }
    }
}

#[tokio::test]
async fn payouts_leave_on_chain_once_and_the_ledger_stays_equal_to_the_chain() {
    let s = scene().await;
    s.deposit(s.address, 5_000_000).await;
    assert_eq!(s.server.available(&s.wallet, &s.owner).await, "5");
    s.reconciles().await;

    let vendor = Address::repeat_byte(0x77);
    let paid = s.payout("po-vendor", vendor, "1.25").await;
    assert_eq!(
        (paid["status"].as_str(), paid["rail"].as_str()),
        (Some("succeeded"), Some("external")),
        "{paid}"
    );
    let tx: B256 = paid["settlement"].as_str().unwrap().parse().unwrap();
    let receipt = s.chain.receipt(tx).await.unwrap().unwrap();
    assert!(receipt.status());
    assert_eq!(s.chain_balance(vendor).await, 1_250_000);
    assert_eq!(s.chain_balance(s.address).await, 3_750_000);
    assert_eq!(s.server.available(&s.wallet, &s.owner).await, "3.75");
    s.reconciles().await;

    // The same payout id again: the same payout, nothing sent twice.
    let again = s.payout("po-vendor", vendor, "1.25").await;
    assert_eq!(again["settlement"], paid["settlement"]);
    assert_eq!(s.chain_balance(vendor).await, 1_250_000);
    // The background round finds nothing left to send.
    assert_eq!(s.server.purser.send_open_payouts().await.unwrap(), 0);
    assert_eq!(s.chain_balance(vendor).await, 1_250_000);

    // To another wallet on this server: on chain too, and it arrives as a deposit.
    let (other, other_owner) = s.server.wallet("Supplier", "0").await;
    let other_address = address_of(&s.server, &other, &other_owner).await;
    let internal = s.payout("po-supplier", other_address, "0.75").await;
    assert_eq!(internal["status"], "succeeded", "{internal}");
    s.server.purser.scan_deposits().await.unwrap();
    assert_eq!(s.server.available(&other, &other_owner).await, "0.75");
    assert_eq!(s.chain_balance(other_address).await, 750_000);
    s.reconciles().await;

    let listed = s.server.get("/api/payouts", Some(&s.owner)).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    s.server.assert_sound().await;
}

#[tokio::test]
async fn a_transfer_the_chain_refuses_fails_the_payout_and_releases_the_funds() {
    let s = scene().await;
    s.deposit(s.address, 1_000_000).await;
    // Sandbox money is on the ledger only: the chain cannot pay it out.
    let funded = s
        .server
        .post(
            &format!("/api/wallets/{}/fund", s.wallet),
            Some(&s.owner),
            &fresh_key(),
            json!({"amount": "4"}),
        )
        .await;
    assert_eq!(funded.status, StatusCode::CREATED, "{:?}", funded.body);
    let vendor = Address::repeat_byte(0x55);
    let failed = s.payout("po-too-much", vendor, "3").await;
    assert_eq!(
        (failed["status"].as_str(), failed["failureReason"].as_str()),
        (Some("failed"), Some("chain_transfer_failed")),
        "{failed}"
    );
    assert_eq!(s.chain_balance(vendor).await, 0);
    assert_eq!(s.chain_balance(s.address).await, 1_000_000);
    assert_eq!(s.server.available(&s.wallet, &s.owner).await, "5");
    // Its authorization can never be used now: its nonce is spent on chain.
    let record = s
        .server
        .purser
        .store()
        .open_x402_payments(10)
        .await
        .unwrap();
    assert!(record.is_empty(), "{record:?}");
    let mandate = s
        .server
        .get(&format!("/api/mandates/{}", s.mandate), Some(&s.owner))
        .await;
    assert_eq!(
        (
            mandate.body["spentAmount"].as_str(),
            mandate.body["pendingSpentAmount"].as_str()
        ),
        (Some("0"), Some("0")),
        "{:?}",
        mandate.body
    );

    // What it can pay still goes through.
    let paid = s.payout("po-fits", vendor, "0.5").await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(s.chain_balance(vendor).await, 500_000);
    s.server.assert_sound().await;
}

#[tokio::test]
async fn a_payout_waits_out_a_dead_node_and_goes_when_the_chain_is_back() {
    let devnet = purser_testkit::devnet(&[]).await;
    let network = devnet.config.network();
    let quick = Timeouts {
        rpc: std::time::Duration::from_millis(500),
        receipt: std::time::Duration::from_secs(5),
    };
    // A port nothing listens on: the node is down.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = ChainClient::new(
        network.clone(),
        &format!("http://127.0.0.1:{dead_port}"),
        Some(DEV_KEYS[1]),
        quick,
    )
    .unwrap();
    let server = TestServer::start_on_chain(Backend::Sqlite, Arc::new(dead)).await;
    let (wallet, owner) = server.wallet("Ops", "2").await;
    let (_, _, jwt) = server.agent(&wallet, &owner, "payer").await;
    let address = address_of(&server, &wallet, &owner).await;
    mint(
        &devnet.config.rpc_url,
        network.usdc,
        address,
        U256::from(2_000_000u64),
    )
    .await
    .unwrap();
    let drafted = server
        .post(
            "/api/mandates",
            Some(&jwt),
            &fresh_key(),
            json!({"description": "payouts", "limitAmount": "2"}),
        )
        .await;
    let mandate = drafted.body["mandateId"].as_str().unwrap();
    server
        .post(
            &format!("/api/mandates/{mandate}/approve"),
            Some(&owner),
            &fresh_key(),
            json!({}),
        )
        .await;
    let vendor = Address::repeat_byte(0x66);
    let body = json!({"payoutId": "po-wait", "toAddress": vendor.to_checksum(None), "amount": "1"});
    let held = server
        .post("/api/payouts", Some(&jwt), "po-wait", body)
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    assert_eq!(
        held.body["status"], "authorized",
        "the node is down: it waits"
    );
    assert_eq!(server.available(&wallet, &owner).await, "1");

    // The node is back: two restarted servers' background rounds race to send it
    // (each process keeps its own in-flight set). It is paid exactly once.
    let live = Arc::new(
        ChainClient::new(network, &devnet.config.rpc_url, Some(DEV_KEYS[1]), quick).unwrap(),
    );
    let restarted = server.service_on_chain(live.clone()).await;
    let other = server.service_on_chain(live.clone()).await;
    let (first, second) = tokio::join!(restarted.send_open_payouts(), other.send_open_payouts());
    assert!(first.unwrap() + second.unwrap() >= 1);
    assert_eq!(restarted.send_open_payouts().await.unwrap(), 0);
    other.store().close().await;
    assert_eq!(
        live.balance_of(vendor).await.unwrap().to::<u64>(),
        1_000_000
    );
    let done = server.get("/api/payouts/po-wait", Some(&jwt)).await;
    assert_eq!(done.body["status"], "succeeded", "{:?}", done.body);
    // Whichever process finished it, the settlement is the transaction that paid.
    let tx: B256 = done.body["settlement"].as_str().unwrap().parse().unwrap();
    assert!(live.receipt(tx).await.unwrap().unwrap().status());
    // Reconciling records the minted 2 as a deposit and shows what the sandbox's
    // 2 are: money on the ledger that was never on chain.
    let report = restarted.reconcile().await.unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(
        (report[0].matches, report[0].difference.as_str()),
        (false, "-2"),
        "{report:?}"
    );
    restarted.store().close().await;
    server.finish().await;
}
