//! `purser devnet`: installs anvil, forge and solc from npm when missing (into the
//! contracts' forge project), builds TestUSDC, starts anvil on loopback, deploys and
//! funds, writes the chain config `purser serve --chain local` reads, and keeps
//! anvil running until Ctrl-C.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};
use purser_chain::devnet::{Devnet, DevnetOptions};
use purser_types::Usdc;
use serde_json::json;

use crate::cli::DevnetArgs;
use crate::commands::Context;

pub(crate) fn run_tool(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    eprintln!("devnet: {program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !status.success() {
        bail!("{program} {} failed in {}", args.join(" "), dir.display());
    }
    Ok(())
}

/// Installs the npm tools and builds the token when they are missing.
pub(crate) fn prepare(contracts: &Path) -> Result<()> {
    if !contracts.join("foundry.toml").exists() {
        bail!(
            "{} is not the contracts' forge project: run from the repository root or pass --contracts",
            contracts.display()
        );
    }
    if !contracts.join("node_modules/.bin/anvil").exists() {
        run_tool(contracts, "npm", &["ci", "--no-audit", "--no-fund"])?;
    }
    if !contracts.join("out/TestUSDC.sol/TestUSDC.json").exists() {
        run_tool(contracts, "node_modules/.bin/forge", &["build"])?;
    }
    Ok(())
}

fn funding(specs: &[String]) -> Result<Vec<(alloy_primitives::Address, alloy_primitives::U256)>> {
    specs
        .iter()
        .map(|spec| {
            let (address, amount) = spec.split_once('=').unwrap_or((spec, "1000"));
            let address = address
                .parse()
                .with_context(|| format!("--fund {spec:?}: not an address"))?;
            let amount: Usdc = amount
                .parse()
                .with_context(|| format!("--fund {spec:?}: not a USDC amount"))?;
            Ok((address, alloy_primitives::U256::from(amount.atomic())))
        })
        .collect()
}

pub(crate) async fn run(ctx: &Context, args: DevnetArgs) -> Result<()> {
    prepare(&args.contracts)?;
    let options = DevnetOptions {
        anvil: args.contracts.join("node_modules/.bin/anvil"),
        port: args.port,
        artifact: args.contracts.join("out/TestUSDC.sol/TestUSDC.json"),
        token_name: args.token_name.clone(),
        fund: funding(&args.fund)?,
    };
    let devnet = Devnet::start(&options).await?;
    if let Some(dir) = args
        .config_out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.config_out,
        serde_json::to_string_pretty(&devnet.config)?,
    )
    .with_context(|| format!("cannot write {}", args.config_out.display()))?;
    let summary = json!({
        "rpcUrl": devnet.config.rpc_url,
        "chainId": devnet.config.chain_id,
        "usdc": devnet.config.usdc.to_checksum(None),
        "tokenName": devnet.config.token_name,
        "config": args.config_out.display().to_string(),
        "funded": args.fund,
    });
    ctx.emit(&summary, || {
        format!(
            "devnet up: anvil at {} (chain {}), TestUSDC at {}\nconfig written to {} — run: purser serve --chain local --chain-config {}\nthe relayer (gas payer) is anvil's dev key 1; dev keys are public: never hold real money with them{}",
            devnet.config.rpc_url,
            devnet.config.chain_id,
            devnet.config.usdc.to_checksum(None),
            args.config_out.display(),
            args.config_out.display(),
            if args.once { "\nstopping (--once)" } else { "\nCtrl-C stops anvil" }
        )
    })?;
    if !args.once {
        tokio::signal::ctrl_c().await?;
    }
    devnet.stop().await;
    Ok(())
}
