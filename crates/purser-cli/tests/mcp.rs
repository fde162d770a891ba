//! Purser's MCP server driven by a client no one here wrote: the official MCP
//! TypeScript SDK (`@modelcontextprotocol/sdk`, from `e2e/`), over stdio
//! (`purser mcp`) and over streamable HTTP (`/mcp` on `purser serve`), through a
//! whole story (e2e/mcp-client.mjs). The wallets' balances are then checked here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{Env, PURSER, Server, add_agent, as_agent};

/// The price of the paid resource the agent buys.
const PRICE: &str = "0.05";

fn owner_token(env: &Env) -> String {
    let text = std::fs::read_to_string(env.config()).unwrap();
    let file: toml::Value = toml::from_str(&text).unwrap();
    file["token"].as_str().unwrap().to_owned()
}

fn available(env: &Env) -> String {
    env.json(&["wallet", "balance"])["balances"]["available"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_typescript_sdk_runs_the_story_over_stdio_and_http() {
    let merchant = Env::new();
    let server = Server::start(&merchant, &[], &[]);
    let base = server.base.as_str();
    merchant.json(&["wallet", "create", "--name", "Shop", "--server", base]);
    let shop = add_agent(&merchant, "shop");
    let (created, link) = as_agent(
        &merchant,
        &shop.jwt,
        &[
            "link",
            "create",
            "--amount",
            PRICE,
            "--description",
            "Tomorrow's forecast",
            "--content",
            "sunny, 21C",
        ],
    );
    assert!(created, "{link}");
    let pay_url = link["payUrl"].as_str().unwrap().to_owned();

    let buyer = Env::new();
    buyer.json(&["wallet", "create", "--name", "Buyer", "--server", base]);
    buyer.ok(&["wallet", "fund", "--amount", "10"]);
    let bot = add_agent(&buyer, "bot");

    let output = Command::new("node")
        .arg("mcp-client.mjs")
        .current_dir(purser_testkit::repo_root().join("e2e"))
        .env("PURSER_BIN", PURSER)
        .env("PURSER_SERVER", base)
        .env("OWNER_TOKEN", owner_token(&buyer))
        .env("AGENT_ID", &bot.id)
        .env("AGENT_CREDENTIAL", &bot.credential)
        .env("PAY_URL", &pay_url)
        .env("PRICE", PRICE)
        .env("HOME", buyer.dir.path())
        .env("PURSER_CONFIG", buyer.dir.path().join("none.toml"))
        .output()
        .expect("node (scripts/test.sh installs e2e/ with npm ci)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("PASS"),
        "mcp-client.mjs failed:\n{stdout}\n{stderr}"
    );
    for check in [
        "stdio: 17 tools listed",
        "http: no bearer token, 401",
        "http: paid",
        "stdio: revoked agent refused",
        "http: revoked agent refused",
    ] {
        assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
    }

    // Two paid calls per transport (fetch_paid_url, and by hand), each at PRICE.
    assert_eq!(available(&buyer), "9.8");
    assert_eq!(available(&merchant), "0.2");
    let payments = merchant.json(&["received", "list"]);
    assert_eq!(payments["items"].as_array().unwrap().len(), 4);
    server.stop();
}

#[test]
fn purser_mcp_without_a_credential_says_what_is_missing() {
    let env = Env::new();
    let output = env.run(&["mcp"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no token"), "{stderr}");

    let output = env
        .command(&["mcp"])
        .env("PURSER_TOKEN", "purser_agent_not_a_real_one")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--agent-id"), "{stderr}");
}
