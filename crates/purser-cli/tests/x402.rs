#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! x402 interop on a real chain (anvil + TestUSDC), with the reference npm packages
//! (`@x402/express`, `@x402/fetch`, `@x402/core`, `@x402/evm`, from `e2e/`):
//! (a) an `@x402/express` server whose facilitator is Purser's, paid by `purser fetch`;
//! (b) the same server paid by the reference `@x402/fetch` client;
//! (c) an `@x402/express` server on the reference facilitator, paid by `purser fetch`.
//! Each checks the on-chain balances moved exactly once and that a replayed payment
//! is refused. Plus: a payment that fails is canceled on chain and released.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use alloy_primitives::{Address, U256};
use purser_chain::client::{ChainClient, Timeouts};
use purser_chain::devnet::{DEV_KEYS, Devnet, mint};
use serde_json::Value;

use common::{Env, Server, add_agent, as_agent};

const PRICE: u64 = 10_000;

/// A node peer from `e2e/`, stopped when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer(script: &str, vars: &[(&str, String)]) -> Peer {
    let e2e = purser_testkit::repo_root().join("e2e");
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(&e2e)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (scripts/test.sh installs e2e/ with npm ci)");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
        .to_owned();
    Peer { child, url }
}

fn resource_server(devnet: &Devnet, facilitator: &str, pay_to: Address) -> Peer {
    peer(
        "server.mjs",
        &[
            ("PORT", "0".into()),
            ("FACILITATOR_URL", facilitator.into()),
            ("ASSET", devnet.config.usdc.to_checksum(None)),
            ("PAY_TO", pay_to.to_checksum(None)),
            ("PRICE_ATOMIC", PRICE.to_string()),
        ],
    )
}

struct World {
    env: Env,
    server: Server,
    devnet: Devnet,
    chain: ChainClient,
    jwt: String,
    wallet_address: Address,
}

impl World {
    async fn balance(&self, who: Address) -> u64 {
        self.chain.balance_of(who).await.unwrap().to::<u64>()
    }

    fn fetch(&self, url: &str) -> (bool, Value) {
        as_agent(
            &self.env,
            &self.jwt,
            &["fetch", url, "--max-amount", "0.05"],
        )
    }

    fn owner(&self, args: &[&str]) -> Value {
        self.env.json(args)
    }

    /// Mints 0.1 USDC to `key`'s address and pays `url` with the reference
    /// `@x402/fetch` client (a POST of `body`, else a GET): the payer and the
    /// client's one-line JSON answer.
    async fn reference_client(&self, key: &str, url: &str, body: Option<&str>) -> (Address, Value) {
        let payer = purser_signer_address(key);
        let config = &self.devnet.config;
        mint(&config.rpc_url, config.usdc, payer, U256::from(100_000u64))
            .await
            .unwrap();
        let mut command = Command::new("node");
        command
            .arg("client.mjs")
            .current_dir(purser_testkit::repo_root().join("e2e"))
            .env("URL", url)
            .env("PAYER_KEY", key)
            .env("ASSET", config.usdc.to_checksum(None));
        if let Some(body) = body {
            command.env("METHOD", "POST").env("BODY", body);
        }
        let client = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&client.stderr);
        assert!(client.status.success(), "{stderr}");
        (payer, serde_json::from_slice(&client.stdout).unwrap())
    }
}

async fn world() -> World {
    let devnet = purser_testkit::devnet(&[]).await;
    let env = Env::new();
    let config = env.dir.path().join("devnet.json");
    std::fs::write(&config, serde_json::to_string(&devnet.config).unwrap()).unwrap();
    let server = Server::start(
        &env,
        &[
            "--chain",
            "local",
            "--chain-config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let created = env.json(&[
        "wallet",
        "create",
        "--name",
        "Ops",
        "--server",
        &server.base,
    ]);
    let wallet_address: Address = created["wallet"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    mint(
        &devnet.config.rpc_url,
        devnet.config.usdc,
        wallet_address,
        U256::from(1_000_000u64),
    )
    .await
    .unwrap();
    // The deposit is seen on chain and recorded in the ledger.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.json(&["wallet", "balance"])["balances"]["available"] != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the deposit was not recorded"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let jwt = add_agent(&env, "bot").jwt;
    let (ok, drafted) = as_agent(
        &env,
        &jwt,
        &[
            "mandate",
            "create",
            "--description",
            "Paid test APIs",
            "--limit",
            "0.5",
            "--max-per-tx",
            "0.05",
            "--valid-for-seconds",
            "3600",
        ],
    );
    assert!(ok, "{drafted}");
    let mandate = drafted["mandateId"].as_str().unwrap().to_owned();
    assert_eq!(
        env.json(&["mandate", "approve", &mandate])["status"],
        "signed"
    );
    let chain = ChainClient::new(
        devnet.config.network(),
        &devnet.config.rpc_url,
        None,
        Timeouts::default(),
    )
    .unwrap();
    World {
        env,
        server,
        devnet,
        chain,
        jwt,
        wallet_address,
    }
}

/// Sends a captured payment header again; the server must refuse it with a 402.
async fn replay(url: &str, name: &str, value: &str) -> u16 {
    reqwest::Client::new()
        .get(url)
        .header(name, value)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_servers_clients_and_facilitators_interoperate_with_purser() {
    let w = world().await;
    let payee = Address::repeat_byte(0x51);
    let facilitator = format!("{}/facilitator", w.server.base);
    let api = resource_server(&w.devnet, &facilitator, payee);
    let paid_url = format!("{}/paid", api.url);

    // (a) purser fetch pays an @x402/express server that settles through Purser.
    let (ok, fetched) = w.fetch(&paid_url);
    assert!(ok, "{fetched}");
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert!(fetched["body"].as_str().unwrap().contains("\"paid\":true"));
    assert_eq!(fetched["paymentResponse"]["success"], true);
    assert_eq!(fetched["payment"]["status"], "settled");
    assert_eq!(fetched["payment"]["reservation"]["status"], "committed");
    assert_eq!(w.balance(w.wallet_address).await, 1_000_000 - PRICE);
    assert_eq!(w.balance(payee).await, PRICE);

    // A replayed Purser-signed header is refused by the server (its nonce is spent).
    let required = reqwest::get(&paid_url).await.unwrap();
    assert_eq!(required.status().as_u16(), 402);
    let header = required.headers()["PAYMENT-REQUIRED"]
        .to_str()
        .unwrap()
        .to_owned();
    let signed: Value = reqwest::Client::new()
        .post(format!("{}/api/payments/x402", w.server.base))
        .bearer_auth(&w.jwt)
        .header("Idempotency-Key", "replay-check-1")
        .json(&serde_json::json!({"paymentRequired": header, "url": paid_url, "purpose": "replay check"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (name, value) = (
        signed["headerName"].as_str().unwrap(),
        signed["headerValue"].as_str().unwrap(),
    );
    assert_eq!(replay(&paid_url, name, value).await, 200);
    assert_eq!(
        replay(&paid_url, name, value).await,
        402,
        "a settled payment replayed"
    );
    assert_eq!(w.balance(payee).await, 2 * PRICE);
    assert_eq!(w.balance(w.wallet_address).await, 1_000_000 - 2 * PRICE);

    // (b) The reference @x402/fetch client pays the same server, settled by Purser.
    let (buyer, answer) = w.reference_client(DEV_KEYS[2], &paid_url, None).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["paymentResponse"]["success"], true);
    assert_eq!(w.balance(buyer).await, 100_000 - PRICE);
    assert_eq!(w.balance(payee).await, 3 * PRICE);
    let header = &answer["paymentHeader"];
    let status = replay(
        &paid_url,
        header["name"].as_str().unwrap(),
        header["value"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(w.balance(payee).await, 3 * PRICE, "paid exactly once");

    // (c) purser fetch pays an @x402/express server on the reference facilitator.
    let reference = peer(
        "facilitator.mjs",
        &[
            ("PORT", "0".into()),
            ("RPC_URL", w.devnet.config.rpc_url.clone()),
            ("FACILITATOR_KEY", DEV_KEYS[3].into()),
        ],
    );
    let other_payee = Address::repeat_byte(0x52);
    let api_c = resource_server(&w.devnet, &reference.url, other_payee);
    let url_c = format!("{}/paid", api_c.url);
    let (ok, fetched) = w.fetch(&url_c);
    assert!(ok, "{fetched}");
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert_eq!(fetched["payment"]["status"], "settled");
    assert_eq!(w.balance(other_payee).await, PRICE);
    assert_eq!(w.balance(w.wallet_address).await, 1_000_000 - 3 * PRICE);
    let tx = fetched["paymentResponse"]["transaction"].as_str().unwrap();
    assert_eq!(fetched["payment"]["txHash"], tx);

    // A payment that fails (the server's facilitator is down) is canceled on chain
    // and its reservation released: nothing paid, nothing left held.
    // The server learns what its facilitator supports, then the facilitator dies.
    let broken = resource_server(&w.devnet, &reference.url, Address::repeat_byte(0x53));
    let broken_url = format!("{}/paid", broken.url);
    assert_eq!(
        reqwest::get(&broken_url).await.unwrap().status().as_u16(),
        402
    );
    drop(reference);
    let (ok, failed) = w.fetch(&broken_url);
    assert!(!ok, "{failed}");
    let payments = w.owner(&["wallet", "balance"]);
    assert_eq!(payments["balances"]["reserved"], "0", "{payments}");
    assert_eq!(w.balance(Address::repeat_byte(0x53)).await, 0);
    assert_eq!(w.balance(w.wallet_address).await, 1_000_000 - 3 * PRICE);

    // The ledger agrees with the chain's view of this wallet's spending.
    assert_eq!(payments["balances"]["available"], "0.97", "{payments}");

    // A payout leaves on chain; the operator's reconcile finds ledger = chain.
    let vendor = Address::repeat_byte(0x54);
    let (ok, paid) = as_agent(
        &w.env,
        &w.jwt,
        &[
            "payout",
            "--to",
            &vendor.to_checksum(None),
            "--amount",
            "0.02",
            "--id",
            "po-cli",
        ],
    );
    assert!(ok, "{paid}");
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(w.balance(vendor).await, 20_000);
    let config = w.env.dir.path().join("devnet.json");
    let reconciled = w.env.json(&[
        "ledger",
        "reconcile",
        "--chain",
        "local",
        "--chain-config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(reconciled["ok"], true, "{reconciled}");
    assert_eq!(reconciled["wallets"][0]["ledgerAmount"], "0.95");
    assert_eq!(reconciled["wallets"][0]["chainAmount"], "0.95");
    drop((api, api_c, broken));
    w.server.stop();
}

fn purser_signer_address(key: &str) -> Address {
    key.parse::<alloy::signers::local::PrivateKeySigner>()
        .unwrap()
        .address()
}

/// The gateway on a real chain: the reference `@x402/fetch` client, x402-rs's
/// `x402-reqwest` and `purser fetch` all pay it through Purser's facilitator; a failing API charges no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_and_purser_clients_pay_the_gateway_on_chain() {
    use common::paid::{Gateway, routes, upstream};

    let w = world().await;
    let api = upstream().await;
    let payee = Address::repeat_byte(0x61);
    let facilitator = format!("{}/facilitator", w.server.base);
    let gateway = Gateway::start(
        &w.env,
        &routes(&payee.to_checksum(None)),
        &api,
        &facilitator,
    );
    let query = format!("{}/api/query", gateway.base);
    let price = 10_000u64;

    let (buyer, answer) = w
        .reference_client(DEV_KEYS[2], &query, Some(r#"{"q":"life"}"#))
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(answer["body"].as_str().unwrap().contains("42 for life"));
    assert_eq!(answer["paymentResponse"]["success"], true);
    assert_eq!(answer["paymentResponse"]["network"], "eip155:31337");
    assert_eq!(w.balance(buyer).await, 100_000 - price);
    assert_eq!(w.balance(payee).await, price);
    let header = &answer["paymentHeader"];
    let replayed = reqwest::Client::new()
        .post(&query)
        .header(
            header["name"].as_str().unwrap(),
            header["value"].as_str().unwrap(),
        )
        .json(&serde_json::json!({"q": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        replayed.status().as_u16(),
        402,
        "a settled payment replayed"
    );

    // x402-rs's client (x402-reqwest, v2 exact) pays it as well.
    {
        use x402_chain_eip155::V2Eip155ExactClient;
        use x402_reqwest::{ReqwestWithPayments, ReqwestWithPaymentsBuild, X402Client};

        let key: alloy_signer_local::PrivateKeySigner = DEV_KEYS[3].parse().unwrap();
        let rust_buyer = key.address();
        mint(
            &w.devnet.config.rpc_url,
            w.devnet.config.usdc,
            rust_buyer,
            U256::from(100_000u64),
        )
        .await
        .unwrap();
        let paying = reqwest::Client::new()
            .with_payments(
                X402Client::new().register(V2Eip155ExactClient::new(std::sync::Arc::new(key))),
            )
            .build();
        let answer = paying
            .post(&query)
            .header("content-type", "application/json")
            .body(r#"{"q":"rust"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let settled = answer.headers()["PAYMENT-RESPONSE"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            purser_types::x402::decode_header(&settled).unwrap()["success"],
            true
        );
        assert!(answer.text().await.unwrap().contains("42 for rust"));
        assert_eq!(w.balance(rust_buyer).await, 100_000 - price);
        assert_eq!(w.balance(payee).await, 2 * price);
    }

    let (ok, fetched) = as_agent(
        &w.env,
        &w.jwt,
        &[
            "fetch",
            &query,
            "-d",
            r#"{"q":"chain"}"#,
            "--max-amount",
            "0.05",
        ],
    );
    assert!(ok, "{fetched}");
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert_eq!(fetched["payment"]["status"], "settled");
    assert_eq!(w.balance(payee).await, 3 * price);
    assert_eq!(w.balance(w.wallet_address).await, 1_000_000 - price);

    let (_, failed) = w.fetch(&format!("{}/api/fail", gateway.base));
    assert_eq!(failed["status"], 500, "{failed}");
    assert_eq!(failed["payment"]["reservation"]["status"], "released");
    assert_eq!(
        w.balance(payee).await,
        3 * price,
        "the failed call was not charged"
    );
    assert_eq!(w.balance(w.wallet_address).await, 1_000_000 - price);
}
