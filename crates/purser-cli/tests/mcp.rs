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

/// One JSON-RPC exchange over `purser mcp`'s stdin/stdout.
struct Stdio {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Stdio {
    fn send(&mut self, message: &serde_json::Value) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    fn answer(&mut self, id: u64) -> serde_json::Value {
        for line in self.lines.by_ref() {
            let message: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            if message["id"] == id {
                return message;
            }
        }
        panic!("purser mcp closed stdout before answering {id}");
    }
}

/// `purser mcp` with the agent's credential and id in the config file (no env),
/// spoken to line by line: initialize, tools/list, a tool call, a refused call.
#[test]
fn purser_mcp_over_stdio_uses_the_config_file_credential() {
    use std::io::BufRead;
    use std::process::Stdio as Pipe;

    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    env.json(&[
        "wallet",
        "create",
        "--name",
        "Lab",
        "--server",
        &server.base,
    ]);
    let agent = add_agent(&env, "lab-agent");
    let agent_env = Env::new();
    std::fs::write(
        agent_env.config(),
        format!(
            "server = \"{}\"\ntoken = \"{}\"\nagent_id = \"{}\"\n",
            server.base, agent.credential, agent.id
        ),
    )
    .unwrap();
    let mut child = agent_env
        .command(&["mcp"])
        .stdin(Pipe::piped())
        .stdout(Pipe::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut mcp = Stdio {
        child,
        lines: std::io::BufReader::new(stdout).lines(),
    };
    mcp.send(
        &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "rust-test", "version": "1"}}}),
    );
    let init = mcp.answer(1);
    assert_eq!(init["result"]["serverInfo"]["name"], "purser", "{init}");
    assert!(
        init["result"]["instructions"]
            .as_str()
            .unwrap()
            .contains("mandate")
    );
    mcp.send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    mcp.send(&serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let tools = mcp.answer(2);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 17, "{names:?}");
    let call = |id: u64, name: &str, arguments: serde_json::Value| {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}})
    };
    mcp.send(&call(3, "get_agent_status", serde_json::json!({})));
    let status = mcp.answer(3)["result"].clone();
    assert_eq!(status["isError"], false, "{status}");
    assert_eq!(
        status["structuredContent"]["agent"]["id"],
        agent.id.as_str()
    );
    assert!(
        status["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("USDC available")
    );
    // A refusal is a tool error with the code, instructions and nothing half-done.
    mcp.send(&call(
        4,
        "create_intent_mandate",
        serde_json::json!({"description": "x", "limitAmount": "1.0000001"}),
    ));
    let refused = mcp.answer(4)["result"].clone();
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(
        refused["structuredContent"]["error"]["code"], "invalid_amount",
        "{refused}"
    );
    assert!(
        refused["structuredContent"]["error"]["instructions"]
            .as_str()
            .unwrap()
            .contains("6 decimals")
    );
    // Arguments outside the schema never reach the API: the SDK refuses them,
    // naming the field.
    mcp.send(&call(
        5,
        "get_mandate_status",
        serde_json::json!({"id": "x"}),
    ));
    let bad = mcp.answer(5)["result"].clone();
    assert_eq!(bad["isError"], true, "{bad}");
    assert!(
        bad["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mandateId")
    );
    let list = env.json(&["mandate", "list"]);
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    drop(mcp.child.stdin.take());
    assert!(mcp.child.wait().unwrap().success());
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
