//! `purser bench`: the hot paths, measured.
//!
//! `bench ledger`: durable ledger transfers per second through the store. Each
//! client owns a funded wallet and pays one unit at a time to a shared merchant
//! wallet (many agents paying one service), waiting for each transfer to be
//! committed before sending the next.
//!
//! `bench authorize`: payment authorizations per second through the whole path — a
//! real server over HTTP, JWT, the mandate check, the reservation, audit and the
//! durable commit — all clients spending under one mandate.
//!
//! Each combination of database and client count (and, for the ledger, group
//! commit size) runs for a fixed time on a fresh database and reports throughput
//! and latency percentiles. SQLite runs on a temporary file, every answer after
//! the fsync of its commit, as in production; PostgreSQL runs in a throwaway schema
//! dropped afterwards.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use purser_core::change::{Change, NewTransfer};
use purser_signer::random_bytes;
use purser_store::{Store, StoreConfig, WriteRequest};
use purser_types::{
    AccountId, AccountKind, Actor, Currency, Hash32, TransferId, TransferKind, UnixMs, Usdc,
    Wallet, WalletId,
};
use serde_json::json;
use sqlx::{AnyConnection, Connection, Executor};

use crate::cli::BenchLedgerArgs;
use crate::commands::Context;

pub(crate) struct Measurement {
    database: String,
    /// What was timed, when a benchmark times several things per database.
    run: Option<String>,
    batch: usize,
    clients: usize,
    transfers: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Measurement {
    /// A measurement of `latencies_us` (one per answered request) over `elapsed`.
    pub(crate) fn new(
        database: &str,
        batch: usize,
        clients: usize,
        elapsed: Duration,
        latencies_us: Vec<u64>,
    ) -> Self {
        let label = if database == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        };
        Measurement::labeled(label, batch, clients, elapsed, latencies_us)
    }

    /// A measurement under any label (a facilitator's name, say).
    pub(crate) fn labeled(
        label: &str,
        batch: usize,
        clients: usize,
        elapsed: Duration,
        mut latencies_us: Vec<u64>,
    ) -> Self {
        latencies_us.sort_unstable();
        Measurement {
            database: label.into(),
            run: None,
            batch,
            clients,
            transfers: latencies_us.len() as u64,
            elapsed,
            latencies_us,
        }
    }

    /// The same, naming what was timed (a row of `Report`).
    pub(crate) fn with_run(mut self, run: &str) -> Self {
        self.run = Some(run.to_owned());
        self
    }

    /// What was timed, if named.
    pub(crate) fn run(&self) -> Option<&str> {
        self.run.as_deref()
    }

    pub(crate) fn label(&self) -> &str {
        &self.database
    }

    pub(crate) fn clients(&self) -> usize {
        self.clients
    }

    pub(crate) fn mean_ms(&self) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.iter().sum::<u64>() as f64 / self.latencies_us.len() as f64 / 1000.0
    }

    pub(crate) fn per_second(&self) -> f64 {
        self.transfers as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }
}

/// What a benchmark counts, and whether its group commit size varies.
pub(crate) struct Report {
    /// `transfers` or `authorizations`: the text's unit and the JSON's keys.
    pub(crate) unit: &'static str,
    pub(crate) show_batch: bool,
}

impl Report {
    pub(crate) fn line(&self, m: &Measurement) -> String {
        let batch = if self.show_batch {
            format!("batch {:>4}  ", m.batch)
        } else {
            String::new()
        };
        let run = m
            .run
            .as_deref()
            .map_or_else(String::new, |run| format!("{run:<10} "));
        format!(
            "{:<9} {run}{batch}clients {:>3}  {:>9.0} {}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            m.database,
            m.clients,
            m.per_second(),
            self.unit,
            m.percentile_ms(0.50),
            m.percentile_ms(0.99)
        )
    }

    pub(crate) fn json(&self, m: &Measurement) -> serde_json::Value {
        let mut row = json!({
            "database": m.database, "clients": m.clients, "seconds": m.elapsed.as_secs_f64(),
            "p50Ms": m.percentile_ms(0.50), "p99Ms": m.percentile_ms(0.99),
        });
        if let Some(run) = &m.run {
            row["run"] = json!(run);
        }
        row[self.unit] = json!(m.transfers);
        row[format!("{}PerSecond", self.unit)] = json!(m.per_second());
        if self.show_batch {
            row["batch"] = json!(m.batch);
        }
        row
    }
}

/// Runs `measure(url, database, batch, clients)` for every combination, each on a
/// fresh throwaway database, printing each line as it is measured (or JSON at the end).
pub(crate) async fn run_matrix<F, Fut>(
    ctx: &Context,
    report: Report,
    databases: &[String],
    combinations: &[(usize, usize)],
    measure: F,
) -> Result<()>
where
    F: Fn(String, String, usize, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Measurement>>,
{
    sqlx::any::install_default_drivers();
    let mut rows = Vec::new();
    for database in databases {
        for &(batch, clients) in combinations {
            let target = Target::create(database).await?;
            let measured = measure(target.url.clone(), database.clone(), batch, clients).await;
            target.cleanup().await;
            let measured = measured?;
            if ctx.json {
                rows.push(report.json(&measured));
            } else {
                println!("{}", report.line(&measured));
            }
        }
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}

pub(crate) async fn ledger(ctx: &Context, args: BenchLedgerArgs) -> Result<()> {
    let combinations: Vec<(usize, usize)> = args
        .batch
        .iter()
        .flat_map(|&batch| args.clients.iter().map(move |&clients| (batch, clients)))
        .collect();
    let duration = Duration::from_secs(args.seconds);
    let report = Report {
        unit: "transfers",
        show_batch: true,
    };
    run_matrix(
        ctx,
        report,
        &args.db,
        &combinations,
        |url, database, batch, clients| async move {
            measure(&url, &database, batch, clients, duration).await
        },
    )
    .await
}

/// A throwaway database for one measurement.
pub(crate) struct Target {
    pub(crate) url: String,
    dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl Target {
    pub(crate) async fn create(database: &str) -> Result<Target> {
        if database == "sqlite" {
            let dir = tempfile::Builder::new().prefix("purser-bench-").tempdir()?;
            let url = dir.path().join("bench.db").display().to_string();
            return Ok(Target {
                url,
                dir: Some(dir),
                pg_schema: None,
            });
        }
        let schema = format!("purser_bench_{}", hex_id()?);
        let mut conn = AnyConnection::connect(database)
            .await
            .context("cannot reach PostgreSQL")?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await?;
        conn.close().await?;
        let separator = if database.contains('?') { '&' } else { '?' };
        let url = format!("{database}{separator}options=-csearch_path%3D{schema}");
        Ok(Target {
            url,
            dir: None,
            pg_schema: Some((database.to_owned(), schema)),
        })
    }

    pub(crate) async fn cleanup(self) {
        if let Some((base, schema)) = &self.pg_schema
            && let Ok(mut conn) = AnyConnection::connect(base).await
        {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .await;
            let _ = conn.close().await;
        }
        drop(self.dir);
    }
}

fn hex_id() -> Result<String> {
    Ok(random_bytes::<6>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn now() -> UnixMs {
    purser_core::Clock::now(&purser_core::SystemClock)
}

/// Writes a change as Purser itself, waiting for its commit.
async fn system_write(store: &Store, change: Change) -> Result<()> {
    let request = WriteRequest {
        at: now(),
        actor: Actor::System,
        idempotency: None,
        change,
    };
    store.write(request).await?;
    Ok(())
}

async fn create_wallet(store: &Store, name: &str) -> Result<WalletId> {
    let id = WalletId::from_bytes(random_bytes()?);
    let wallet = Wallet {
        id,
        name: name.to_owned(),
        currency: Currency::Usdc,
        address: format!("0x{}", hex_id()?),
        created_at: now(),
    };
    let change = Change::CreateWallet {
        wallet,
        owner_token_hash: Hash32(random_bytes()?),
        sealed_key: "bench".into(),
        password_hash: None,
    };
    system_write(store, change).await?;
    Ok(id)
}

fn transfer(from: AccountId, to: AccountId, amount: Usdc, kind: TransferKind) -> Result<Change> {
    Ok(Change::Transfer(NewTransfer {
        id: TransferId::from_bytes(random_bytes()?),
        from,
        to,
        amount,
        kind,
        memo: None,
    }))
}

async fn measure(
    url: &str,
    database: &str,
    batch: usize,
    clients: usize,
    duration: Duration,
) -> Result<Measurement> {
    let store = Store::open(StoreConfig {
        max_batch: batch,
        ..StoreConfig::new(url)
    })
    .await?;
    let merchant = AccountId::available(create_wallet(&store, "merchant").await?, Currency::Usdc);
    let onramp = AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc);
    let mut payers = Vec::with_capacity(clients);
    for i in 0..clients {
        let payer = AccountId::available(
            create_wallet(&store, &format!("payer {i}")).await?,
            Currency::Usdc,
        );
        let change = transfer(
            onramp,
            payer,
            Usdc::from_whole(1_000_000)?,
            TransferKind::SandboxFunding,
        )?;
        system_write(&store, change).await?;
        payers.push(payer);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = payers
        .into_iter()
        .map(|payer| {
            let store = store.clone();
            tokio::spawn(async move { run_client(store, payer, merchant, deadline).await })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let report = store.check_ledger().await?;
    anyhow::ensure!(
        report.is_ok(),
        "ledger invariants broken after the benchmark: {:?}",
        report.violations
    );
    store.close().await;
    Ok(Measurement::new(
        database,
        batch,
        clients,
        elapsed,
        latencies_us,
    ))
}

async fn run_client(
    store: Store,
    payer: AccountId,
    merchant: AccountId,
    deadline: Instant,
) -> Result<Vec<u64>> {
    let unit = Usdc::from_atomic(1)?;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let change = transfer(payer, merchant, unit, TransferKind::Adjustment)?;
        let sent = Instant::now();
        system_write(&store, change).await?;
        latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    Ok(latencies)
}

// ---- authorizations through the full path ----

/// One running server for the authorization benchmark, with an agent whose
/// signed mandate covers every request.
struct AuthorizeRig {
    server: crate::serve::Embedded,
    jwt: String,
    owner: purser_service::Principal,
    mandate: purser_types::MandateId,
}

pub(crate) fn bench_key() -> Result<purser_service::IdempotencyKey> {
    Ok(purser_service::IdempotencyKey::parse(&format!(
        "bench-{}",
        hex_id()?
    ))?)
}

async fn authorize_rig(url: &str) -> Result<AuthorizeRig> {
    use purser_service::{MandateDraft, Principal};
    let server = crate::serve::Embedded::start(crate::serve::open_store(url, 256).await?).await?;
    let purser = &server.purser;
    let wallet = purser
        .create_wallet("bench", Currency::Usdc, &bench_key()?)
        .await?
        .value
        .wallet
        .id;
    let owner = Principal::Owner { wallet };
    purser
        .fund_wallet(&owner, wallet, Usdc::from_whole(1_000_000)?, &bench_key()?)
        .await?;
    let draft = MandateDraft {
        description: "benchmark calls".into(),
        limit_amount: Usdc::from_whole(1_000_000)?,
        host_allowlist: vec!["api.bench.example".into()],
        valid_for_seconds: Some(3600),
        ..MandateDraft::default()
    };
    let (jwt, mandate) = agent_under_mandate(purser, wallet, &draft).await?;
    Ok(AuthorizeRig {
        jwt,
        server,
        owner,
        mandate,
    })
}

/// Registers an agent in `wallet` and has the owner sign `draft` for it: returns
/// the agent's JWT and the signed mandate.
pub(crate) async fn agent_under_mandate(
    purser: &purser_service::Purser,
    wallet: WalletId,
    draft: &purser_service::MandateDraft,
) -> Result<(String, purser_types::MandateId)> {
    use purser_service::Principal;
    let owner = Principal::Owner { wallet };
    let registered = purser
        .register_agent(&owner, wallet, "bench agent", &bench_key()?)
        .await?
        .value;
    let credential = registered
        .credential
        .context("a new agent has a credential")?;
    let token = purser
        .issue_agent_token(registered.agent.id, &credential)
        .await?;
    let agent = Principal::Agent {
        agent: registered.agent.id,
        wallet,
    };
    let mandate = purser
        .draft_mandate(&agent, draft, &bench_key()?)
        .await?
        .value
        .mandate
        .id;
    purser
        .approve_mandate(&owner, mandate, &bench_key()?)
        .await?;
    Ok((token.token.expose().clone(), mandate))
}

async fn measure_authorize(
    url: &str,
    database: &str,
    clients: usize,
    duration: Duration,
) -> Result<Measurement> {
    let rig = authorize_rig(url).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients.max(1))
        .build()?;
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, base, jwt) = (http.clone(), rig.server.base.clone(), rig.jwt.clone());
            tokio::spawn(async move { authorize_client(http, base, jwt, client, deadline).await })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    let elapsed = started.elapsed();
    // Every answered authorization holds exactly one atomic unit on the mandate.
    let view = rig.server.purser.mandate(&rig.owner, rig.mandate).await?;
    anyhow::ensure!(
        view.mandate.pending_amount.atomic() == latencies_us.len() as u64,
        "the mandate holds {} for {} authorizations",
        view.mandate.pending_amount,
        latencies_us.len()
    );
    rig.server.stop().await?;
    Ok(Measurement::new(
        database,
        0,
        clients,
        elapsed,
        latencies_us,
    ))
}

async fn authorize_client(
    http: reqwest::Client,
    base: String,
    jwt: String,
    client: usize,
    deadline: Instant,
) -> Result<Vec<u64>> {
    let url = format!("{base}/api/payments/authorize");
    let body = json!({
        "amount": "0.000001", "payee": { "host": "api.bench.example" }, "purpose": "benchmark", "allowApproval": false,
    });
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let sent = Instant::now();
        let response = http
            .post(&url)
            .bearer_auth(&jwt)
            .header("Idempotency-Key", format!("bench-{client}-{n}"))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "an authorization was not reserved: {status}"
        );
        latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    Ok(latencies)
}

pub(crate) async fn authorize(ctx: &Context, args: crate::cli::BenchAuthorizeArgs) -> Result<()> {
    let combinations: Vec<(usize, usize)> =
        args.clients.iter().map(|&clients| (0, clients)).collect();
    let duration = Duration::from_secs(args.seconds);
    let report = Report {
        unit: "authorizations",
        show_batch: false,
    };
    run_matrix(
        ctx,
        report,
        &args.db,
        &combinations,
        |url, database, _, clients| async move {
            measure_authorize(&url, &database, clients, duration).await
        },
    )
    .await
}
