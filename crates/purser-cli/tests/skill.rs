//! The agent skill (`skills/purser/SKILL.md`) cannot drift from the CLI: every
//! `purser …` command it shows is run, as an agent with `--json`, against a live
//! `purser serve`, and must succeed with a JSON answer — or, when the skill shows
//! it as a refusal (`# refused: CODE` after it in a sh block), fail with that code.
//!
//! What counts as a shown command: each line of a fenced ```sh block that starts
//! with `purser ` (a trailing `\` continues it), and each inline code span that
//! starts with `purser ` anywhere else (tables and text; `a` · `b` are two spans).
//!
//! How a shown command becomes runs: `[…]` is optional, and `A|B` (`A\|B` in a
//! table) inside it are alternatives. A command runs once with no optional part,
//! then once with each alternative of each optional part alone. `--json` is added
//! (and dropped where the skill writes it).
//!
//! Placeholders get real values made earlier in the same test (`World::value`):
//! `api.example.com` is a paid API behind a `purser gateway` (a host that no mandate
//! covers where the command shows an approval), `URL` a paid URL on it, `PAY_URL`
//! another wallet's payment link, `0x…` that wallet's address, `MANDATE_ID`,
//! `LINK_ID`, `PAYMENT_ID`, `REFUND_ID`, `RESERVATION_ID` and `YOUR_UNIQUE_ID` real
//! objects (fresh ones where the command uses them up), `FILE` an exported signed
//! mandate (or a text file for `--content-file`), `APPROVAL_ID` the approval the same
//! command asks for without `--approval`, which the owner then approves. An unknown
//! placeholder fails the test.
//!
//! Every command's leading words must have a runner in [`RUNNERS`] (what its answer
//! must hold), and every runner must be used: a command added to the skill without
//! coverage, or coverage left for a command the skill dropped, fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use axum::Json;
use axum::routing::get;
use purser_core::{Clock, SystemClock};
use serde_json::{Value, json};

use common::paid::Gateway;
use common::{AddedAgent, Env, Server, add_agent, as_agent};

const SKILL: &str = include_str!("../../../skills/purser/SKILL.md");

/// What a successful answer must hold.
type Check = fn(&Value) -> bool;

/// Every command the skill may show, by its leading words after `purser`, and what
/// its JSON answer must hold when it succeeds.
const RUNNERS: &[(&str, Check)] = &[
    ("wallet balance", |v| v["balances"]["available"].is_string()),
    ("mandate list", |v| v["items"].is_array()),
    ("mandate status", |v| v["mandateId"].is_string()),
    ("mandate eligible", |v| v["items"].is_array()),
    ("mandate create", |v| {
        v["signUrl"].is_string() && v["status"] == "pending_signature"
    }),
    ("mandate export", |v| v["mandateId"].is_string()),
    ("mandate verify", |v| v["valid"] == true),
    ("fetch", |v| v["status"] == 200),
    ("payment authorize", |v| {
        v["reservation"]["status"] == "held"
    }),
    ("payment commit", |v| v["status"] == "committed"),
    ("payment release", |v| v["status"] == "released"),
    ("payout", |v| {
        matches!(
            v["status"].as_str(),
            Some("succeeded" | "pending_authorization")
        )
    }),
    ("payout status", |v| v["id"].is_string()),
    ("link create", |v| {
        v["payUrl"].is_string() && v["status"] == "active"
    }),
    ("link list", |v| !v["items"].as_array().unwrap().is_empty()),
    ("link get", |v| v["payUrl"].is_string()),
    ("link update", |v| v["id"].is_string()),
    ("link disable", |v| v["status"] == "disabled"),
    ("link payments", |v| {
        !v["items"].as_array().unwrap().is_empty()
    }),
    ("received list", |v| {
        !v["items"].as_array().unwrap().is_empty()
    }),
    ("received get", |v| v["status"] == "settled"),
    ("refund create", |v| {
        v["refundUrl"].is_string() && v["status"] == "pending"
    }),
    ("refund list", |v| {
        !v["items"].as_array().unwrap().is_empty()
    }),
    ("refund status", |v| v["id"].is_string()),
    ("refund cancel", |v| v["status"] == "cancelled"),
    // `purser mcp` is spoken to over stdio: its answer to tools/list.
    ("mcp", |v| {
        v["result"]["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == "fetch_paid_url"))
    }),
];

/// A command the skill shows, where, and whether it shows a refusal.
#[derive(Debug, Clone)]
struct Shown {
    line: usize,
    text: String,
    refused: Option<String>,
}

/// Every `purser …` command in the skill, in order.
fn shown_commands(skill: &str) -> Vec<Shown> {
    let mut shown = Vec::new();
    let mut fence: Option<String> = None;
    let mut continued = String::new();
    for (index, raw) in skill.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if let Some(language) = trimmed.strip_prefix("```") {
            fence = match fence {
                None => Some(language.trim().to_owned()),
                Some(_) => None,
            };
            continue;
        }
        let Some(language) = &fence else {
            for span in code_spans(raw) {
                if span.starts_with("purser ") {
                    shown.push(Shown {
                        line,
                        text: span.to_owned(),
                        refused: None,
                    });
                }
            }
            continue;
        };
        if let Some(head) = trimmed.strip_suffix('\\') {
            continued.push_str(head);
            continued.push(' ');
            continue;
        }
        let full = std::mem::take(&mut continued) + trimmed;
        if !full.starts_with("purser ") {
            continue;
        }
        assert_eq!(
            language, "sh",
            "SKILL.md line {line}: a purser command in a ```{language} block; use ```sh"
        );
        let (command, comment) = split_comment(&full);
        let refused = comment.and_then(|c| {
            let (_, code) = c.split_once("refused:")?;
            let code: String = code
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                !code.is_empty(),
                "SKILL.md line {line}: `refused:` names no code"
            );
            Some(code)
        });
        shown.push(Shown {
            line,
            text: command.trim().to_owned(),
            refused,
        });
    }
    assert!(fence.is_none(), "SKILL.md ends inside a fenced block");
    shown
}

/// The inline code spans of a Markdown line (single backticks).
fn code_spans(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        spans.push(&after[..end]);
        rest = &after[end + 1..];
    }
    spans
}

/// A sh line's command and its comment (from a `#` after a space, outside quotes).
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '#') if previous.is_whitespace() => {
                return (&line[..at], Some(&line[at + 1..]));
            }
            _ => {}
        }
        previous = c;
    }
    (line, None)
}

/// A shown command in parts: fixed text, and optional parts with their alternatives.
#[derive(Debug)]
enum Part {
    Fixed(String),
    Optional(Vec<String>),
}

fn parts(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut group: Option<Vec<String>> = None;
    let mut quote = None;
    for c in text.chars() {
        if let Some(open) = quote {
            if c == open {
                quote = None;
            }
            current.push(c);
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                current.push(c);
            }
            '[' => {
                assert!(group.is_none(), "nested [ in {text:?}");
                parts.push(Part::Fixed(std::mem::take(&mut current)));
                group = Some(Vec::new());
            }
            ']' => {
                let mut alternatives = group
                    .take()
                    .unwrap_or_else(|| panic!("] without [ in {text:?}"));
                alternatives.push(std::mem::take(&mut current));
                parts.push(Part::Optional(alternatives));
            }
            '|' => {
                let alternatives = group
                    .as_mut()
                    .unwrap_or_else(|| panic!("a | outside [ … ] in {text:?}"));
                // `A\|B` in a Markdown table is `A|B`.
                let alternative = std::mem::take(&mut current);
                alternatives.push(
                    alternative
                        .strip_suffix('\\')
                        .unwrap_or(&alternative)
                        .to_owned(),
                );
            }
            _ => current.push(c),
        }
    }
    assert!(quote.is_none(), "unterminated quote in {text:?}");
    assert!(group.is_none(), "unterminated [ in {text:?}");
    parts.push(Part::Fixed(current));
    parts
}

/// The runs of a shown command: without its optional parts, then with each
/// alternative of each optional part alone.
fn variants(text: &str) -> Vec<String> {
    let parts = parts(text);
    let with = |chosen: Option<(usize, &str)>| {
        let mut out = String::new();
        for (index, part) in parts.iter().enumerate() {
            match (part, chosen) {
                (Part::Fixed(fixed), _) => out.push_str(fixed),
                (Part::Optional(_), Some((at, alternative))) if at == index => {
                    out.push(' ');
                    out.push_str(alternative);
                    out.push(' ');
                }
                (Part::Optional(_), _) => out.push(' '),
            }
        }
        out
    };
    let mut runs = vec![with(None)];
    for (index, part) in parts.iter().enumerate() {
        if let Part::Optional(alternatives) = part {
            for alternative in alternatives {
                assert!(
                    !alternative.trim().is_empty(),
                    "an empty alternative in {text:?}"
                );
                runs.push(with(Some((index, alternative.trim()))));
            }
        }
    }
    runs
}

/// Splits like sh: whitespace between words, '…' and "…" quote, \ escapes.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => panic!("unterminated ' in {text:?}"),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.push(chars.next().unwrap()),
                        Some(c) => word.push(c),
                        None => panic!("unterminated \" in {text:?}"),
                    }
                }
            }
            '\\' => word
                .get_or_insert_with(String::new)
                .push(chars.next().unwrap()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// One run: the words after `purser` (placeholders still in), and the refusal
/// code it must fail with, if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Run {
    words: Vec<String>,
    refused: Option<String>,
}

impl Run {
    fn text(&self) -> String {
        format!("purser {}", self.words.join(" "))
    }
}

/// The runner for a run: the longest entry of [`RUNNERS`] its words start with.
fn runner(words: &[String]) -> Option<(&'static str, Check)> {
    RUNNERS
        .iter()
        .filter(|(key, _)| {
            let key: Vec<&str> = key.split(' ').collect();
            words.len() >= key.len() && key.iter().zip(words).all(|(k, w)| k == w)
        })
        .max_by_key(|(key, _)| key.len())
        .copied()
}

fn is_placeholder(word: &str) -> bool {
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    word.len() >= 2
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !methods.contains(&word)
}

/// The API being paid for: `/search` by GET or POST.
async fn search_api() -> String {
    let app = axum::Router::new().route(
        "/search",
        get(|| async { Json(json!({"results": ["EU solar capacity grew 12%"]})) })
            .post(|body: String| async move { Json(json!({"results": [], "query": body})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn search_routes(pay_to: &str) -> String {
    format!(
        r#"
[service]
name = "Search API"
description = "Searches the web."
pay_to = "{pay_to}"

[[route]]
method = "GET"
path = "/search"
price = "0.01"
description = "Search"

[[route]]
method = "POST"
path = "/search"
price = "0.01"
description = "Search with a JSON query"
"#
    )
}

const WEBHOOK_URL: &str = "http://127.0.0.1:9/hooks";

/// A `purser serve` process, killed if the test fails before stopping it.
struct Serving(Option<Server>);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(server) = &mut self.0 {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }
}

/// The server, two wallets with their agents, a paid API, and the objects the
/// placeholders stand for.
struct World {
    /// Our wallet's owner (its config file holds the owner token).
    owner: Env,
    /// The agent's own directory: no config file; it works from PURSER_* only.
    agent_env: Env,
    agent: AddedAgent,
    /// Another wallet on the same server: a merchant and payee.
    other: Env,
    other_agent: AddedAgent,
    other_address: String,
    server_base: String,
    /// The paid API (a gateway): covered and uncovered spellings of its host.
    api_host: String,
    uncovered_host: String,
    mandate: String,
    mandate_file: PathBuf,
    content_file: PathBuf,
    /// The other wallet's payment link (for `purser fetch PAY_URL`).
    pay_url: String,
    /// Our link, paid by the other wallet's agent.
    link: String,
    link_pay_url: String,
    payment: String,
    refund: String,
    payout: String,
    fresh: u32,
    gateway: Option<Gateway>,
    server: Serving,
    runtime: Option<tokio::runtime::Runtime>,
}

fn stdout_json(output: &Output, what: &str) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{text}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{text}"))
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {value}"))
        .to_owned()
}

impl World {
    fn new() -> World {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let upstream = runtime.block_on(search_api());
        let owner = Env::new();
        let server = Server::start(&owner, &[], &[]);
        let server_base = server.base.clone();
        let server = Serving(Some(server));
        owner.json(&[
            "wallet",
            "create",
            "--name",
            "Research budget",
            "--server",
            &server_base,
        ]);
        owner.ok(&["wallet", "fund", "--amount", "20"]);
        let agent = add_agent(&owner, "research-agent");
        let other = Env::new();
        let created = other.json(&[
            "wallet",
            "create",
            "--name",
            "Merchant",
            "--server",
            &server_base,
        ]);
        let other_address = text(&created, "/wallet/address");
        other.ok(&["wallet", "fund", "--amount", "5"]);
        let other_agent = add_agent(&other, "merchant-agent");
        let facilitator = format!("{server_base}/facilitator");
        let gateway = Gateway::start(
            &other,
            &search_routes(&other_address),
            &upstream,
            &facilitator,
        );
        let api_host = gateway.base.trim_start_matches("http://").to_owned();
        let uncovered_host = api_host.replace("127.0.0.1", "localhost");
        let server_host = server_base.trim_start_matches("http://").to_owned();
        let content_file = owner.dir.path().join("report.txt");
        std::fs::write(&content_file, "the full report").unwrap();
        let mut world = World {
            owner,
            agent_env: Env::new(),
            agent,
            other,
            other_agent,
            other_address,
            server_base,
            api_host: api_host.clone(),
            uncovered_host,
            mandate: String::new(),
            mandate_file: PathBuf::new(),
            content_file,
            pay_url: String::new(),
            link: String::new(),
            link_pay_url: String::new(),
            payment: String::new(),
            refund: String::new(),
            payout: String::new(),
            fresh: 0,
            gateway: Some(gateway),
            server,
            runtime: Some(runtime),
        };

        // Our agent's signed mandate: the paid API and payment links on this server.
        world.mandate = world.signed_mandate(&[
            "--limit",
            "5",
            "--max-per-tx",
            "0.05",
            "--host",
            &api_host,
            "--host",
            &server_host,
        ]);
        let exported = world.agent_run(&["mandate", "export", &world.mandate.clone()], false);
        assert!(exported.status.success());
        world.mandate_file = world.owner.dir.path().join("mandate.json");
        std::fs::write(&world.mandate_file, &exported.stdout).unwrap();

        // The other wallet's link, and its agent's mandate to pay ours.
        let link = world.other_agent_json(&[
            "link",
            "create",
            "--amount",
            "0.05",
            "--description",
            "The Q3 report",
            "--content",
            "revenue grew 12%",
        ]);
        world.pay_url = text(&link, "/payUrl");
        let drafted = world.other_agent_json(&[
            "mandate",
            "create",
            "--description",
            "Reports from other agents",
            "--limit",
            "5",
            "--max-per-tx",
            "0.05",
            "--host",
            &server_host,
        ]);
        world
            .other
            .json(&["mandate", "approve", &text(&drafted, "/mandateId")]);

        // Our link, paid once; a refund of part of it; a payout.
        let link = world.agent_json(&[
            "link",
            "create",
            "--amount",
            "0.05",
            "--description",
            "Answers",
            "--content",
            "42",
        ]);
        world.link = text(&link, "/id");
        world.link_pay_url = text(&link, "/payUrl");
        world.payment = world.fresh_payment();
        let refund = world.agent_json(&[
            "refund",
            "create",
            "--payment",
            &world.payment.clone(),
            "--amount",
            "0.01",
            "--reason",
            "fixture",
        ]);
        world.refund = text(&refund, "/id");
        let payout = world.agent_json(&[
            "payout",
            "--to",
            &world.other_address.clone(),
            "--amount",
            "0.1",
            "--id",
            "fixture-payout",
        ]);
        world.payout = text(&payout, "/id");
        world
    }

    /// `purser [--json] ARGS` as our agent: its credential and Agent ID in the
    /// environment, as the skill's Setup says.
    fn agent_command(&self, args: &[&str], json: bool) -> Command {
        let mut all = Vec::new();
        if json {
            all.push("--json");
        }
        all.extend_from_slice(args);
        let mut command = self.agent_env.command(&all);
        command
            .env("PURSER_SERVER", &self.server_base)
            .env("PURSER_TOKEN", &self.agent.credential)
            .env("PURSER_AGENT_ID", &self.agent.id);
        command
    }

    /// Starts the MCP server the command shows, with the Setup variables, and asks
    /// it for its tools over stdio (initialize, initialized, tools/list).
    fn mcp_tools_list(&self, args: &[&str]) -> Value {
        use std::io::{BufRead, Write};
        use std::process::Stdio;
        let mut child = self
            .agent_command(args, false)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for message in [
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "skill-test", "version": "1"}}}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        ] {
            writeln!(stdin, "{message}").unwrap();
        }
        stdin.flush().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let answer = stdout
            .lines()
            .map(|line| serde_json::from_str::<Value>(&line.unwrap()).unwrap())
            .find(|message| message["id"] == 2)
            .expect("purser mcp answered tools/list");
        drop(stdin);
        assert!(child.wait().unwrap().success());
        answer
    }

    fn agent_run(&self, args: &[&str], json: bool) -> Output {
        self.agent_command(args, json).output().unwrap()
    }

    fn agent_json(&self, args: &[&str]) -> Value {
        stdout_json(
            &self.agent_run(args, true),
            &format!("purser {}", args.join(" ")),
        )
    }

    fn other_agent_json(&self, args: &[&str]) -> Value {
        let (ok, answer) = as_agent(&self.other, &self.other_agent.jwt, args);
        assert!(ok, "the other agent's {args:?}: {answer}");
        answer
    }

    /// A mandate our agent drafts and the owner signs.
    fn signed_mandate(&mut self, terms: &[&str]) -> String {
        let mut args = vec!["mandate", "create", "--description", "Skill test"];
        args.extend_from_slice(terms);
        let mandate = text(&self.agent_json(&args), "/mandateId");
        let signed = self.owner.json(&["mandate", "approve", &mandate]);
        assert_eq!(signed["status"], "signed", "{signed}");
        mandate
    }

    fn next(&mut self) -> u32 {
        self.fresh += 1;
        self.fresh
    }

    /// The other wallet's agent pays our link: a new received payment.
    fn fresh_payment(&mut self) -> String {
        let paid = self.other_agent_json(&["fetch", &self.link_pay_url]);
        assert_eq!(paid["status"], 200, "{paid}");
        let delivered: Value = serde_json::from_str(&text(&paid, "/body")).unwrap();
        text(&delivered, "/paymentId")
    }

    fn fresh_link(&mut self) -> String {
        let n = self.next();
        let link = self.agent_json(&[
            "link",
            "create",
            "--amount",
            "0.05",
            "--description",
            &format!("Fresh link {n}"),
            "--webhook-url",
            WEBHOOK_URL,
        ]);
        text(&link, "/id")
    }

    fn fresh_refund(&mut self) -> String {
        let payment = self.fresh_payment();
        let refund = self.agent_json(&[
            "refund",
            "create",
            "--payment",
            &payment,
            "--reason",
            "fixture",
        ]);
        text(&refund, "/id")
    }

    fn fresh_reservation(&mut self) -> String {
        let held = self.agent_json(&[
            "payment",
            "authorize",
            "--amount",
            "0.01",
            "--host",
            &self.api_host.clone(),
            "--address",
            &self.other_address.clone(),
            "--purpose",
            "fixture",
        ]);
        text(&held, "/reservation/id")
    }

    fn pending_approvals(&self) -> BTreeSet<String> {
        let list = self.owner.json(&["approvals", "list"]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| text(a, "/id"))
            .collect()
    }

    /// The real value of one word of a run (most words stand for themselves).
    fn value(&mut self, word: &str, previous: Option<&str>, run: &Run, key: &str) -> String {
        let asks_approval = run.refused.as_deref() == Some("approval_required")
            || run.words.iter().any(|w| w == "--approval");
        let host = if asks_approval {
            self.uncovered_host.clone()
        } else {
            self.api_host.clone()
        };
        match word {
            "api.example.com" => host,
            w if w.starts_with("https://api.example.com/") => {
                format!("http://{host}{}", &w["https://api.example.com".len()..])
            }
            "URL" => match previous {
                Some("--webhook-url") => WEBHOOK_URL.to_owned(),
                Some("--resource-url") => "https://example.com/report".to_owned(),
                _ => format!("http://{host}/search"),
            },
            "PAY_URL" => self.pay_url.clone(),
            "MANDATE_ID" if key == "payout" => {
                // A payout has no host: a mandate with no host list covers it, and
                // is used up by it (so it covers nothing after).
                let amount = run
                    .words
                    .iter()
                    .skip_while(|w| *w != "--amount")
                    .nth(1)
                    .expect("a payout shows --amount")
                    .clone();
                self.signed_mandate(&["--limit", &amount])
            }
            "MANDATE_ID" => self.mandate.clone(),
            "LINK_ID" if key == "link update" || key == "link disable" => self.fresh_link(),
            "LINK_ID" => self.link.clone(),
            "PAYMENT_ID" if key == "refund create" => self.fresh_payment(),
            "PAYMENT_ID" => self.payment.clone(),
            "REFUND_ID" if key == "refund cancel" => self.fresh_refund(),
            "REFUND_ID" => self.refund.clone(),
            "RESERVATION_ID" => self.fresh_reservation(),
            "YOUR_UNIQUE_ID" if key == "payout" => format!("skill-payout-{}", self.next()),
            "YOUR_UNIQUE_ID" => self.payout.clone(),
            "APPROVAL_ID" => word.to_owned(),
            "FILE" if previous == Some("--content-file") => self.content_file.display().to_string(),
            "FILE" => self.mandate_file.display().to_string(),
            "TIME" => SystemClock.now().plus_millis(24 * 3600 * 1000).to_rfc3339(),
            "N" => "5".to_owned(),
            "0x…" if previous == Some("--settlement") => format!("0x{}", "ab".repeat(32)),
            "0x…" => self.other_address.clone(),
            "…" => "skill test".to_owned(),
            "{…}" => r#"{"q":"skill test"}"#.to_owned(),
            w => {
                assert!(
                    !w.contains('…') && !is_placeholder(w),
                    "{}: the test has no value for {w:?}; add one to World::value",
                    run.text()
                );
                w.to_owned()
            }
        }
    }

    /// Runs one run and checks its outcome.
    fn run(&mut self, run: &Run) {
        let (key, check) = runner(&run.words).unwrap_or_else(|| {
            panic!(
                "{}: no runner for this command; add its leading words to RUNNERS",
                run.text()
            )
        });
        let mut args = Vec::new();
        for (index, word) in run.words.iter().enumerate() {
            let previous = index.checked_sub(1).map(|i| run.words[i].as_str());
            args.push(self.value(word, previous, run, key));
        }
        if let Some(at) = args.iter().position(|w| w == "APPROVAL_ID") {
            assert_eq!(args[at - 1], "--approval", "{}", run.text());
            // The same command without the approval asks the owner; the owner approves.
            let mut ask: Vec<&str> = args.iter().map(String::as_str).collect();
            ask.drain(at - 1..=at);
            let before = self.pending_approvals();
            let asked = self.agent_run(&ask, true);
            let new: Vec<String> = self
                .pending_approvals()
                .difference(&before)
                .cloned()
                .collect();
            assert_eq!(
                new.len(),
                1,
                "purser {} asked for no approval:\n{}",
                ask.join(" "),
                String::from_utf8_lossy(&asked.stdout)
            );
            let approved = self.owner.json(&["approvals", "approve", &new[0]]);
            assert_eq!(approved["status"], "approved", "{approved}");
            args[at].clone_from(&new[0]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let shown = format!("{} (as run: purser --json {})", run.text(), args.join(" "));
        if key == "mcp" {
            let answer = self.mcp_tools_list(&args);
            assert!(check(&answer), "{shown}: unexpected answer:\n{answer:#}");
            eprintln!("ok: {shown}");
            return;
        }
        let output = self.agent_run(&args, true);
        match &run.refused {
            None => {
                let answer = stdout_json(&output, &shown);
                assert!(check(&answer), "{shown}: unexpected answer:\n{answer:#}");
            }
            Some(code) => Self::assert_refused(&output, code, &shown),
        }
        eprintln!("ok: {shown}");
    }

    fn assert_refused(output: &Output, code: &str, shown: &str) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !output.status.success(),
            "{shown} must be refused with {code}, but succeeded:\n{stdout}"
        );
        let answer: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{shown}: the refusal is not JSON ({e}):\n{stdout}"));
        assert_eq!(answer["error"]["code"], code, "{shown}: {answer}");
        if code == "approval_required" {
            // What the agent must hand its human, and the id to retry with.
            assert!(
                answer["error"]["approvalUrl"].is_string(),
                "{shown}: {answer}"
            );
            assert!(
                answer["error"]["approvalId"].is_string(),
                "{shown}: {answer}"
            );
        }
    }

    fn finish(mut self) {
        drop(self.gateway.take());
        let server = self.server.0.take().unwrap();
        server.stop();
        assert_eq!(self.owner.json(&["ledger", "check"])["ok"], true);
        assert_eq!(self.owner.json(&["audit", "verify"])["ok"], true);
        drop(self.runtime.take());
    }
}

/// The skill's structure, its commands, and that extraction handles its syntax.
#[test]
fn the_skill_is_read_as_intended() {
    for heading in [
        "## Hard rules",
        "## Install",
        "## Setup",
        "## What you can do",
        "## Main flows",
        "## CLI",
        "## Troubleshooting",
    ] {
        assert!(SKILL.contains(&format!("\n{heading}\n")), "no {heading}");
    }
    assert!(SKILL.starts_with("---\nname: purser\ndescription: "));
    assert_eq!(
        variants("purser link update L [--max-uses N] [--disable\\|--enable]")
            .iter()
            .map(|v| words(v).join(" "))
            .collect::<Vec<_>>(),
        [
            "purser link update L",
            "purser link update L --max-uses N",
            "purser link update L --disable",
            "purser link update L --enable",
        ]
    );
    assert_eq!(
        words(r#"purser fetch U -d '{"q":"a b"}' --purpose "x \" y""#),
        [
            "purser",
            "fetch",
            "U",
            "-d",
            r#"{"q":"a b"}"#,
            "--purpose",
            "x \" y"
        ]
    );
    let shown = shown_commands(
        "```sh\npurser a \\\n  --b 'c # d'   # refused: e_f\n```\nsee `purser g` · `purser h [--i]` and `cp x`\n",
    );
    let texts: Vec<(&str, Option<&str>)> = shown
        .iter()
        .map(|s| (s.text.as_str(), s.refused.as_deref()))
        .collect();
    assert_eq!(
        texts,
        [
            ("purser a  --b 'c # d'", Some("e_f")),
            ("purser g", None),
            ("purser h [--i]", None)
        ]
    );
}

/// Every command the skill shows runs against a live server as the skill says.
#[test]
fn every_command_the_skill_shows_runs() {
    let shown = shown_commands(SKILL);
    assert!(
        shown.len() >= 40,
        "only {} commands found in SKILL.md: is the extraction broken?",
        shown.len()
    );
    let mut runs: Vec<Run> = Vec::new();
    for command in &shown {
        for variant in variants(&command.text) {
            let mut words = words(&variant);
            assert_eq!(
                words.first().map(String::as_str),
                Some("purser"),
                "line {}",
                command.line
            );
            words.remove(0);
            words.retain(|w| w != "--json");
            let run = Run {
                words,
                refused: command.refused.clone(),
            };
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
    }
    // Every command has a runner, and every runner a command, before anything runs.
    for run in &runs {
        assert!(
            runner(&run.words).is_some(),
            "{}: no runner for this command; add its leading words to RUNNERS",
            run.text()
        );
    }
    for (key, _) in RUNNERS {
        assert!(
            runs.iter()
                .any(|run| runner(&run.words).is_some_and(|(k, _)| k == *key)),
            "RUNNERS has `purser {key}`, which the skill no longer shows"
        );
    }
    let refusals = runs.iter().filter(|r| r.refused.is_some()).count();
    assert!(refusals >= 1, "the skill shows no refusal");

    let started = std::time::Instant::now();
    let mut world = World::new();
    for run in &runs {
        world.run(run);
    }
    eprintln!(
        "{} shown commands, {} runs ({} refusals) in {:.1?}",
        shown.len(),
        runs.len(),
        refusals,
        started.elapsed()
    );
    world.finish();
}
