//! `purser`: the server, the demo, and the command-line client.

mod bench;
mod bench_dashboard;
mod bench_gateway;
mod bench_link;
mod bench_mcp;
mod bench_x402;
mod charge;
mod cli;
mod commands;
mod config;
mod demo;
mod devnet;
mod fetch;
mod gateway;
mod pay;
mod serve;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{AuditCommand, BenchCommand, Cli, Command, LedgerCommand, LogFormat};

/// mimalloc: the server allocates and frees many small objects per request across
/// threads; it measured faster than the system allocator here (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::commands::Context;
use purser_client::ClientError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error, json);
            ExitCode::FAILURE
        }
    }
}

/// Prints a failure: the API's code and message when there is one.
fn report(error: &anyhow::Error, json: bool) {
    if let Some(reported) = error.downcast_ref::<commands::Reported>() {
        if !json {
            eprintln!("error: {reported}");
        }
        return;
    }
    let api = error.downcast_ref::<ClientError>();
    let code = api.and_then(ClientError::code).unwrap_or("cli_error");
    if json {
        let body =
            serde_json::json!({ "error": { "code": code, "message": format!("{error:#}") } });
        println!("{body}");
    } else {
        eprintln!("error: {error:#}");
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_env("PURSER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut ctx = Context::load(cli.json, cli.config)?;
    match cli.command {
        Command::Serve(args) => {
            let settings = config::resolve_serve(&args, &ctx.config.serve)?;
            init_logging(settings.log_format, "info");
            serve::run(settings).await
        }
        Command::Gateway(args) => {
            init_logging(args.log_format.unwrap_or(LogFormat::Text), "info");
            gateway::run(&args).await
        }
        command => {
            init_logging(LogFormat::Text, "warn");
            dispatch(&mut ctx, command).await
        }
    }
}

async fn dispatch(ctx: &mut Context, command: Command) -> Result<()> {
    match command {
        Command::Serve(_) | Command::Gateway(_) => Ok(()),
        Command::Demo(args) => demo::run(ctx, args).await,
        Command::Wallet(command) => commands::wallet(ctx, command).await,
        Command::Agent(command) => commands::agent(ctx, command).await,
        Command::Mandate(command) => pay::mandate(ctx, command).await,
        Command::Approvals(command) => pay::approvals(ctx, command).await,
        Command::Payout(args) => pay::payout(ctx, args).await,
        Command::Link(command) => charge::link(ctx, command).await,
        Command::Received(command) => charge::received(ctx, command).await,
        Command::Refund(command) => charge::refund(ctx, command).await,
        Command::Webhooks(command) => charge::webhooks(ctx, command).await,
        Command::Payment(command) => pay::payment(ctx, command).await,
        Command::Policy(command) => pay::policy(ctx, command).await,
        Command::Ledger(LedgerCommand::Check(args)) => serve::ledger_check(ctx, &args).await,
        Command::Ledger(LedgerCommand::Reconcile(args)) => {
            serve::ledger_reconcile(ctx, &args).await
        }
        Command::Audit(AuditCommand::Verify(args)) => serve::audit_verify(ctx, &args).await,
        Command::Audit(AuditCommand::List {
            limit,
            wallet,
            client,
        }) => commands::audit_list(ctx, limit, &wallet, &client).await,
        Command::Bench(BenchCommand::Ledger(args)) => bench::ledger(ctx, args).await,
        Command::Bench(BenchCommand::Authorize(args)) => bench::authorize(ctx, args).await,
        Command::Bench(BenchCommand::X402(args)) => bench_x402::x402(ctx, args).await,
        Command::Bench(BenchCommand::Gateway(args)) => bench_gateway::gateway(ctx, args).await,
        Command::Bench(BenchCommand::Link(args)) => bench_link::link(ctx, args).await,
        Command::Bench(BenchCommand::Mcp(args)) => bench_mcp::mcp(ctx, args).await,
        Command::Bench(BenchCommand::Dashboard(args)) => {
            bench_dashboard::dashboard(ctx, args).await
        }
        Command::Fetch(args) => fetch::run(ctx, args).await,
        Command::Mcp(args) => {
            let api = ctx.client(&args.client).await?;
            Ok(purser_mcp::serve_stdio(api).await?)
        }
        Command::Devnet(args) => devnet::run(ctx, args).await,
    }
}
