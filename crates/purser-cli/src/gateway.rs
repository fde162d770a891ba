//! `purser gateway`: the Monetize reverse proxy. Reads the routes file, asks the
//! facilitator what it settles, and serves the upstream behind the paywall, with
//! `/healthz`, `/metrics`, and a graceful shutdown that lets paid calls finish.

use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::routing::get;
use purser_gateway::{GatewayConfig, Paywall, PaywallOptions, Upstream, gateway_router};
use tokio::net::TcpListener;

use crate::cli::GatewayArgs;
use crate::commands::Reported;

const DEFAULT_LISTEN: &str = "127.0.0.1:4021";
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 30_000;

/// The settings, each from its flag or env, else the file's `[gateway]`, else the default.
struct Settings {
    config: GatewayConfig,
    upstream: String,
    facilitator: String,
    listen: String,
    options: PaywallOptions,
    max_body_bytes: usize,
    shutdown_grace: Duration,
}

fn settings(args: &GatewayArgs) -> Result<Settings> {
    let text = std::fs::read_to_string(&args.routes)
        .with_context(|| format!("cannot read {}", args.routes.display()))?;
    let config = GatewayConfig::parse(&text)
        .map_err(|e| Reported(format!("{}: {e}", args.routes.display())))?;
    let file = config.gateway.clone();
    let required = |value: Option<String>, flag: &str| {
        value.ok_or_else(|| {
            Reported(format!(
                "give --{flag} (or {flag} in the routes file's [gateway] table)"
            ))
        })
    };
    let upstream = required(args.upstream.clone().or(file.upstream), "upstream")?;
    let facilitator = required(args.facilitator.clone().or(file.facilitator), "facilitator")?;
    let timeout_ms = args
        .timeout_ms
        .or(file.timeout_ms)
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(Reported("--timeout-ms must be above 0".into()).into());
    }
    let options = PaywallOptions {
        public_url: args.public_url.clone().or(file.public_url),
        timeout: Duration::from_millis(timeout_ms),
        ..PaywallOptions::default()
    };
    Ok(Settings {
        upstream,
        facilitator,
        listen: args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into()),
        options,
        max_body_bytes: args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        shutdown_grace: Duration::from_millis(
            args.shutdown_grace_ms.unwrap_or(DEFAULT_SHUTDOWN_GRACE_MS),
        ),
        config,
    })
}

pub(crate) async fn run(args: &GatewayArgs) -> Result<()> {
    let settings = settings(args)?;
    let upstream = Upstream::new(&settings.upstream, settings.options.timeout)
        .map_err(|e| Reported(e.to_string()))?;
    let paywall = Paywall::connect(settings.config, &settings.facilitator, settings.options)
        .await
        .map_err(|e| Reported(e.to_string()))?;
    let metrics = purser_server::metrics_handle();
    let app = gateway_router(&paywall, upstream, settings.max_body_bytes).route(
        "/metrics",
        get(move || std::future::ready(metrics.render())),
    );
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let networks: Vec<&str> = paywall.rails().iter().map(|r| r.network.as_str()).collect();
    tracing::info!(
        address = %listener.local_addr()?,
        upstream = %settings.upstream,
        facilitator = %settings.facilitator,
        networks = ?networks,
        "purser gateway is listening"
    );
    let shutdown = purser_server::shutdown_signal();
    purser_server::serve_draining(listener, app, settings.shutdown_grace, shutdown).await?;
    Ok(())
}
