//! `purser serve` and the operator commands that open the database directly.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use purser_core::{Clock, SystemClock};
use purser_server::ServerConfig;
use purser_service::{Purser, ServiceConfig};
use purser_signer::MasterKey;
use purser_store::{Store, StoreConfig};
use serde_json::json;
use tokio::net::TcpListener;

use crate::cli::DbArgs;
use crate::commands::{Context, Reported};
use crate::config::{self, ChainSettings, MasterKeySource, ServeSettings};
use purser_chain::client::ChainClient;

/// Loads the master key from `PURSER_MASTER_KEY` or the key file (created on first start).
pub(crate) fn load_master_key(source: &MasterKeySource) -> Result<MasterKey> {
    match source {
        MasterKeySource::Env => {
            let text =
                std::env::var("PURSER_MASTER_KEY").context("PURSER_MASTER_KEY is not set")?;
            Ok(MasterKey::parse(&text).context("PURSER_MASTER_KEY is invalid")?)
        }
        MasterKeySource::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            let (key, created) = MasterKey::load_or_create(path)?;
            if created {
                tracing::info!(path = %path.display(), "created a new master key file (mode 0600); back it up");
            }
            Ok(key)
        }
    }
}

/// Creates a directory for Purser's data, private to its user.
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Creates the directory a SQLite file will live in.
fn prepare_sqlite_dir(db_url: &str) -> Result<()> {
    let (backend, _) = purser_store::dialect::normalize_url(db_url)?;
    if backend == purser_store::Backend::Sqlite {
        let path = db_url
            .strip_prefix("sqlite://")
            .or_else(|| db_url.strip_prefix("sqlite:"))
            .unwrap_or(db_url);
        let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
    }
    Ok(())
}

/// Opens the store, creating the database and applying migrations on first start.
pub(crate) async fn open_store(db_url: &str, max_batch: usize) -> Result<Store> {
    prepare_sqlite_dir(db_url)?;
    let config = StoreConfig {
        max_batch,
        ..StoreConfig::new(db_url)
    };
    Store::open(config)
        .await
        .context("cannot open the database")
}

/// Opens the database and the chain and starts the service, as `serve` does.
async fn start_service(settings: &ServeSettings) -> Result<Purser> {
    let master = load_master_key(&settings.master_key)?;
    let store = open_store(&settings.db_url, settings.max_batch).await?;
    let chain = match &settings.chain {
        Some(chain) => Some(connect_chain(chain).await?),
        None => None,
    };
    let service = ServiceConfig {
        sandbox: settings.sandbox,
        public_url: settings.public_url.clone(),
        agent_token_ttl_secs: settings.agent_token_ttl_secs,
        approval_ttl_secs: settings.approval_ttl_secs,
        chain,
        chain_start_block: settings.chain.as_ref().map_or(0, |c| c.start_block),
    };
    Ok(Purser::start(store, master, Arc::new(SystemClock), service).await?)
}

/// How often open ledger-rail payments are looked at when there is no chain.
const WATCH_WITHOUT_CHAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn run(settings: ServeSettings) -> Result<()> {
    let purser = start_service(&settings).await?;
    let http = ServerConfig {
        body_limit_bytes: settings.body_limit_bytes,
        request_timeout_ms: settings.request_timeout_ms,
        shutdown_grace_ms: settings.shutdown_grace_ms,
    };
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        backend = %purser.store().backend(),
        sandbox = settings.sandbox,
        max_batch = settings.max_batch,
        "purser is listening"
    );
    // /mcp calls this server's own API as the bearer, over loopback.
    let loopback = match address {
        std::net::SocketAddr::V4(a) if a.ip().is_unspecified() => {
            format!("127.0.0.1:{}", a.port())
        }
        std::net::SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        other => other.to_string(),
    };
    let mcp = purser_mcp::http_router(&purser_mcp::McpHttpConfig {
        api_base_url: format!("http://{loopback}"),
        allowed_hosts: settings.mcp_allowed_hosts.clone(),
    })?;
    let app = purser_server::router(purser.clone(), &http).merge(mcp);
    let (stop_watching, stopped) = tokio::sync::watch::channel(false);
    // Without a chain the watcher still releases expired ledger-rail payments.
    let every = settings
        .chain
        .as_ref()
        .map_or(WATCH_WITHOUT_CHAIN, |chain| chain.poll);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let watcher = {
        let purser = purser.clone();
        tokio::spawn(async move {
            tokio::join!(
                purser.watch(every, until_stopped()),
                purser.deliver_webhooks(until_stopped()),
            );
        })
    };
    // On a signal, the watcher and the webhook sender finish the round they are
    // in (a payout being sent, a webhook being posted) within the grace, before
    // the server drains and closes the store.
    let grace = std::time::Duration::from_millis(settings.shutdown_grace_ms);
    let shutdown = async move {
        purser_server::shutdown_signal().await;
        let _ = stop_watching.send(true);
        if tokio::time::timeout(grace, watcher).await.is_err() {
            tracing::warn!("the watcher did not finish within the shutdown grace");
        }
    };
    purser_server::serve(listener, app, purser, &http, shutdown).await?;
    Ok(())
}

/// `purser ledger reconcile`: every wallet's ledger balance beside its USDC on
/// chain (deposits caught up first); exits non-zero when any differs.
pub(crate) async fn ledger_reconcile(ctx: &Context, args: &crate::cli::ServeArgs) -> Result<()> {
    let settings = config::resolve_serve(args, &ctx.config.serve)?;
    if settings.chain.is_none() {
        return Err(Reported(
            "reconcile compares the ledger with a chain: give --chain (and --rpc-url)".into(),
        )
        .into());
    }
    let purser = start_service(&settings).await?;
    let report = purser.reconcile().await?;
    purser.store().close().await;
    let differing: Vec<_> = report.iter().filter(|r| !r.matches).collect();
    let body = json!({ "ok": differing.is_empty(), "wallets": report });
    ctx.emit(&body, || {
        let mut lines = vec![format!(
            "{:<38} {:<44} {:>16} {:>16} {:>12}",
            "WALLET", "ADDRESS", "LEDGER", "CHAIN", "DIFFERENCE"
        )];
        for r in &report {
            lines.push(format!(
                "{:<38} {:<44} {:>16} {:>16} {:>12}",
                r.wallet_id.to_string(),
                r.address,
                r.ledger_amount.to_string(),
                r.chain_amount.to_string(),
                r.difference
            ));
        }
        lines.push(if differing.is_empty() {
            format!(
                "reconciled: {} wallet(s), ledger and chain agree",
                report.len()
            )
        } else {
            format!(
                "{} of {} wallet(s) differ (payouts still in flight show here until they finish)",
                differing.len(),
                report.len()
            )
        });
        lines.join("\n")
    })?;
    if !differing.is_empty() {
        return Err(Reported(format!(
            "{} wallet(s) differ from the chain",
            differing.len()
        ))
        .into());
    }
    Ok(())
}

/// Connects to the chain and checks the node serves the network asked for. A node
/// that does not answer yet is only a warning: payments wait for it, not startup.
pub(crate) async fn connect_chain(settings: &ChainSettings) -> Result<Arc<ChainClient>> {
    let key = settings.relayer_key.as_ref().map(|k| k.expose().as_str());
    let client = ChainClient::new(
        settings.network.clone(),
        &settings.rpc_url,
        key,
        settings.timeouts,
    )
    .context("cannot set up the chain client")?;
    match client.chain_id().await {
        Ok(id) if id != settings.network.chain_id => anyhow::bail!(
            "the node at {} serves chain {id}, not {} ({})",
            settings.rpc_url,
            settings.network.chain_id,
            settings.network.name
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the chain node does not answer yet"),
    }
    if client.relayer().is_none() {
        tracing::warn!("no relayer key: settlements and on-chain payouts cannot be sent");
    }
    tracing::info!(
        network = %settings.network.name,
        chain_id = settings.network.chain_id,
        usdc = %settings.network.usdc,
        relayer = ?client.relayer(),
        "chain configured"
    );
    Ok(Arc::new(client))
}

async fn operator_store(ctx: &Context, args: &DbArgs) -> Result<Store> {
    let (db_url, _) = config::resolve_db(args, &ctx.config.serve);
    open_store(&db_url, 1).await
}

/// `purser ledger check`: exits non-zero when any invariant is broken.
pub(crate) async fn ledger_check(ctx: &Context, args: &DbArgs) -> Result<()> {
    let store = operator_store(ctx, args).await?;
    let report = store.check_ledger().await?;
    store.close().await;
    let violations: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    let body =
        json!({ "ok": report.is_ok(), "accounts": report.accounts, "violations": violations });
    ctx.emit(&body, || {
        if report.is_ok() {
            format!("ledger OK: {} accounts; every currency sums to zero, no wallet is negative, every balance equals its transfers", report.accounts)
        } else {
            format!("ledger BROKEN:\n  {}", violations.join("\n  "))
        }
    })?;
    if !report.is_ok() {
        return Err(Reported(format!("{} ledger invariant(s) broken", violations.len())).into());
    }
    Ok(())
}

/// `purser audit verify`: exits non-zero and names the record when the chain is broken.
pub(crate) async fn audit_verify(ctx: &Context, args: &DbArgs) -> Result<()> {
    let store = operator_store(ctx, args).await?;
    let verdict = store.verify_audit().await?;
    store.close().await;
    match verdict {
        Ok(verified) => {
            let body = json!({ "ok": true, "records": verified.records, "head": verified.head.hash.to_string() });
            ctx.emit(&body, || {
                format!(
                    "audit chain OK: {} records, head {}",
                    verified.records, verified.head.hash
                )
            })
        }
        Err(chain_break) => {
            let body = json!({ "ok": false, "error": chain_break.to_string() });
            ctx.emit(&body, || format!("audit chain BROKEN: {chain_break}"))?;
            Err(Reported("the audit chain is broken".into()).into())
        }
    }
}

/// A real server on a free loopback port of its own, with a fresh master key and
/// MCP at `/mcp`: what `purser demo` and the benchmarks drive over HTTP.
pub(crate) struct Embedded {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    /// The service behind it, for setting up and checking outside HTTP.
    pub(crate) purser: Purser,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Embedded {
    pub(crate) async fn start(store: Store) -> Result<Embedded> {
        Embedded::start_on(store, None).await
    }

    /// The same, its wallets on `chain` (when given).
    pub(crate) async fn start_on(
        store: Store,
        chain: Option<Arc<ChainClient>>,
    ) -> Result<Embedded> {
        Embedded::start_with(store, Arc::new(SystemClock), |service| {
            service.chain = chain;
        })
        .await
    }

    /// The same, the service on `clock` and its settings adjusted by `configure`
    /// (its public URL is this server's).
    pub(crate) async fn start_with(
        store: Store,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Result<Embedded> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut service = ServiceConfig {
            public_url: base.clone(),
            ..ServiceConfig::default()
        };
        configure(&mut service);
        let purser = Purser::start(store, MasterKey::generate()?, clock, service).await?;
        let http = ServerConfig::default();
        // /mcp as `purser serve` mounts it: the tools call this server's API over loopback.
        let mcp = purser_mcp::http_router(&purser_mcp::McpHttpConfig {
            api_base_url: base.clone(),
            allowed_hosts: config::default_mcp_hosts(&base),
        })?;
        let app = purser_server::router(purser.clone(), &http).merge(mcp);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = purser.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            purser_server::serve(listener, app, serving, &http, shutdown).await
        });
        Ok(Embedded {
            base,
            purser,
            stop,
            server,
        })
    }

    /// Shuts the server down gracefully and waits until it has.
    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server
            .await
            .context("the embedded server task failed")??;
        Ok(())
    }
}
