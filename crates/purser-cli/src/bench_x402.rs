//! `purser bench x402`: x402 on one anvil, measured against the reference.
//!
//! Facilitator `/verify`: Purser's (`/facilitator/verify` on an embedded server) and
//! the reference TypeScript facilitator (`@x402/core` + `@x402/evm`, `e2e/facilitator.mjs`
//! under node) check the same pre-signed EIP-3009 payments against the same anvil,
//! each for a fixed time at each client count; every answer must be `isValid: true`.
//! Both do the same work per request: recover the signature, and ask the node for
//! the payer's balance, the nonce's state and a simulation of the transfer.
//!
//! `purser fetch`: the end-to-end latency of a paid request as a user runs it —
//! the `purser fetch` process against an `@x402/express` server whose facilitator is
//! Purser's: 402, authorization through the one path, EIP-3009 signature, retry,
//! verify, on-chain settlement (anvil mines at once), reservation committed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use anyhow::{Context as _, Result, bail, ensure};
use purser_chain::client::{ChainClient, Timeouts};
use purser_chain::devnet::{DEV_KEYS, Devnet, DevnetOptions, mint};
use purser_chain::eip3009::{Authorization, token_domain};
use purser_service::MandateDraft;
use purser_signer::{WalletKey, random_bytes};
use purser_types::{Currency, Usdc};
use serde_json::{Value, json};

use crate::bench::{Measurement, agent_under_mandate, bench_key};
use crate::cli::BenchX402Args;
use crate::commands::Context;
use crate::serve::{Embedded, open_store};

/// The price of one call, in atomic units (0.01 USDC).
const PRICE_ATOMIC: u64 = 10_000;

/// A node process from `e2e/`, stopped when dropped.
struct NodePeer {
    child: Child,
    url: String,
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodePeer {
    /// Starts `node SCRIPT` in `e2e` and waits for its `READY <url>` line.
    fn start(e2e: &Path, script: &str, vars: &[(&str, String)]) -> Result<NodePeer> {
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(e2e)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run node")?;
        let stdout = child.stdout.take().context("node's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("READY ") else {
            let _ = child.kill();
            bail!("{script} did not start: {line:?}");
        };
        Ok(NodePeer {
            url: url.to_owned(),
            child,
        })
    }
}

/// What both facilitators are asked: `{x402Version, paymentPayload, paymentRequirements}`.
fn verify_bodies(payer: &WalletKey, devnet: &Devnet, count: usize) -> Result<Vec<Value>> {
    let config = &devnet.config;
    let requirement = json!({
        "scheme": "exact", "network": format!("eip155:{}", config.chain_id),
        "amount": PRICE_ATOMIC.to_string(), "asset": config.usdc.to_checksum(None),
        "payTo": Address::repeat_byte(0x42).to_checksum(None), "maxTimeoutSeconds": 300,
        "extra": {"name": config.token_name, "version": "2"}
    });
    let domain = token_domain(&config.token_name, "2", config.chain_id, config.usdc);
    let valid_before = purser_core::Clock::now(&purser_core::SystemClock).millis() / 1000 + 3600;
    (0..count)
        .map(|_| {
            let authorization = Authorization {
                from: payer.address(),
                to: Address::repeat_byte(0x42),
                value: U256::from(PRICE_ATOMIC),
                valid_after: U256::ZERO,
                valid_before: U256::from(u64::try_from(valid_before).unwrap_or(u64::MAX)),
                nonce: B256::from(random_bytes::<32>()?),
            };
            let signature = payer.sign_digest(&authorization.digest(&domain).0)?;
            Ok(json!({
                "x402Version": 2,
                "paymentPayload": {
                    "x402Version": 2,
                    "resource": {"url": "http://api.bench.example/paid"},
                    "accepted": requirement,
                    "payload": {"signature": signature, "authorization": authorization.to_wire()},
                },
                "paymentRequirements": requirement,
            }))
        })
        .collect()
}

/// `clients` concurrent callers POST the bodies to `url` for `duration`.
async fn verify_load(
    label: &str,
    url: &str,
    bodies: Arc<Vec<Value>>,
    clients: usize,
    duration: Duration,
) -> Result<Measurement> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients.max(1))
        .build()?;
    // Warm both sides (connections, JIT, caches) before the clock starts.
    for body in bodies.iter().take(20) {
        verify_once(&http, url, body).await?;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, url, bodies) = (http.clone(), url.to_owned(), bodies.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = client;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    verify_once(&http, &url, &bodies[n % bodies.len()]).await?;
                    latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                    n += clients;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    Ok(Measurement::labeled(
        label,
        0,
        clients,
        started.elapsed(),
        latencies_us,
    ))
}

async fn verify_once(http: &reqwest::Client, url: &str, body: &Value) -> Result<()> {
    let answer: Value = http.post(url).json(body).send().await?.json().await?;
    ensure!(
        answer["isValid"] == true,
        "{url} refused a valid payment: {answer}"
    );
    Ok(())
}

/// A wallet on the embedded server with USDC on chain, an agent and a signed
/// mandate: returns the agent's JWT.
async fn paying_agent(server: &Embedded, devnet: &Devnet) -> Result<String> {
    let purser = &server.purser;
    let created = purser
        .create_wallet("bench", Currency::Usdc, &bench_key()?)
        .await?
        .value;
    let address: Address = created.wallet.address.parse()?;
    mint(
        &devnet.config.rpc_url,
        devnet.config.usdc,
        address,
        U256::from(100_000_000u64),
    )
    .await?;
    purser.scan_deposits().await?;
    let draft = MandateDraft {
        description: "benchmark calls".into(),
        limit_amount: Usdc::from_whole(100)?,
        valid_for_seconds: Some(3600),
        ..MandateDraft::default()
    };
    let (jwt, _) = agent_under_mandate(purser, created.wallet.id, &draft).await?;
    Ok(jwt)
}

/// Runs `purser fetch` `count` times against a paid URL; every run must pay.
fn fetch_latency(base: &str, jwt: &str, url: &str, count: usize) -> Result<Vec<u64>> {
    let exe = std::env::current_exe()?;
    let config = tempfile::tempdir()?;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let output = Command::new(&exe)
            .args(["--json", "fetch", url, "--max-amount", "0.05"])
            .env("PURSER_SERVER", base)
            .env("PURSER_TOKEN", jwt)
            .env("PURSER_CONFIG", config.path().join("config.toml"))
            .stdin(Stdio::null())
            .output()?;
        let elapsed = started.elapsed();
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        ensure!(
            output.status.success() && answer["payment"]["status"] == "settled",
            "purser fetch did not pay: {answer} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        latencies.push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }
    Ok(latencies)
}

fn line(m: &Measurement, unit: &str) -> String {
    format!(
        "{:<10} clients {:>3}  {:>8.0} {unit}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        m.label(),
        m.clients(),
        m.per_second(),
        m.percentile_ms(0.50),
        m.percentile_ms(0.99)
    )
}

fn row(m: &Measurement) -> Value {
    json!({
        "facilitator": m.label(), "clients": m.clients(), "verifiesPerSecond": m.per_second(),
        "p50Ms": m.percentile_ms(0.50), "p99Ms": m.percentile_ms(0.99),
    })
}

pub(crate) async fn x402(ctx: &Context, args: BenchX402Args) -> Result<()> {
    let contracts = args.repo.join("contracts");
    let e2e = args.repo.join("e2e");
    crate::devnet::prepare(&contracts)?;
    if !e2e.join("node_modules/@x402/core").exists() {
        crate::devnet::run_tool(&e2e, "npm", &["ci", "--no-audit", "--no-fund"])?;
    }
    let payer = WalletKey::generate()?;
    let devnet = Devnet::start(&DevnetOptions {
        anvil: contracts.join("node_modules/.bin/anvil"),
        port: 0,
        artifact: contracts.join("out/TestUSDC.sol/TestUSDC.json"),
        token_name: "USD Coin".into(),
        fund: vec![(payer.address(), U256::from(1_000_000_000u64))],
    })
    .await?;
    let rpc_url = devnet.config.rpc_url.clone();
    let chain = ChainClient::new(
        devnet.config.network(),
        &rpc_url,
        Some(DEV_KEYS[1]),
        Timeouts::default(),
    )?;
    let data = tempfile::Builder::new().prefix("purser-bench-").tempdir()?;
    let store = open_store(&data.path().join("bench.db").display().to_string(), 256).await?;
    let server = Embedded::start_on(store, Some(Arc::new(chain))).await?;
    let reference = NodePeer::start(
        &e2e,
        "facilitator.mjs",
        &[
            ("PORT", "0".into()),
            ("RPC_URL", rpc_url.clone()),
            ("FACILITATOR_KEY", DEV_KEYS[3].into()),
        ],
    )?;
    let bodies = Arc::new(verify_bodies(&payer, &devnet, 512)?);
    let duration = Duration::from_secs(args.seconds);
    let ours_url = format!("{}/facilitator/verify", server.base);
    let theirs_url = format!("{}/verify", reference.url);
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let ours = verify_load("purser", &ours_url, bodies.clone(), clients, duration).await?;
        let theirs =
            verify_load("reference", &theirs_url, bodies.clone(), clients, duration).await?;
        let ratio = ours.per_second() / theirs.per_second();
        if ctx.json {
            rows.push(json!({"clients": clients, "purser": row(&ours), "reference": row(&theirs), "ratio": ratio}));
        } else {
            println!("{}", line(&ours, "verifies"));
            println!("{}", line(&theirs, "verifies"));
            println!("           clients {clients:>3}  purser/reference throughput {ratio:.2}x");
        }
    }
    drop(reference);

    let jwt = paying_agent(&server, &devnet).await?;
    let api = NodePeer::start(
        &e2e,
        "server.mjs",
        &[
            ("PORT", "0".into()),
            ("FACILITATOR_URL", format!("{}/facilitator", server.base)),
            ("ASSET", devnet.config.usdc.to_checksum(None)),
            ("PAY_TO", Address::repeat_byte(0x43).to_checksum(None)),
            ("PRICE_ATOMIC", PRICE_ATOMIC.to_string()),
        ],
    )?;
    let paid_url = format!("{}/paid", api.url);
    let fetches = Measurement::labeled(
        "fetch",
        0,
        1,
        Duration::from_secs(1),
        fetch_latency(&server.base, &jwt, &paid_url, args.fetches)?,
    );
    let mean_ms = fetches.mean_ms();
    if ctx.json {
        let body = json!({
            "verify": rows,
            "fetch": {"runs": args.fetches, "p50Ms": fetches.percentile_ms(0.5),
                      "p99Ms": fetches.percentile_ms(0.99), "meanMs": mean_ms},
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!(
            "purser fetch (paid, settled on chain)  runs {}  p50 {:.1} ms  p99 {:.1} ms  mean {mean_ms:.1} ms",
            args.fetches,
            fetches.percentile_ms(0.5),
            fetches.percentile_ms(0.99)
        );
    }
    drop(api);
    server.stop().await?;
    devnet.stop().await;
    Ok(())
}
