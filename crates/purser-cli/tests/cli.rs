#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `purser` binary as a person runs it: `demo`, `serve` in its own process,
//! the client commands against it, and the operator checks.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{AddedAgent, Env, Server, add_agent, as_agent, free_port};
use purser_testkit::TestDb;
use serde_json::Value;
use sqlx::{AnyConnection, Connection, Executor};

#[test]
fn demo_tells_the_story_and_exits_zero() {
    let env = Env::new();
    let text = env.ok(&["demo"]);
    for expected in [
        "creates a wallet",
        "signs once",
        "clears without asking",
        "host_not_allowed",
        "mandate_budget_exceeded",
        "approves that one payment",
        "agent_revoked",
        "forbidden",
        "replayed",
        "idempotency_conflict",
        "every invariant holds",
        "Done",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let json = env.json(&["demo"]);
    assert_eq!(json["ok"], true);
    assert!(json["steps"].as_array().unwrap().len() >= 10);
}

#[test]
fn serve_and_client_commands_on_sqlite() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    let created = env.json(&[
        "wallet",
        "create",
        "--name",
        "Ops",
        "--server",
        &server.base,
    ]);
    let owner_token = created["ownerToken"].as_str().unwrap().to_owned();
    let wallet = created["wallet"]["id"].as_str().unwrap().to_owned();
    let config = std::fs::read_to_string(env.config()).unwrap();
    assert!(config.contains(&wallet) && config.contains(&server.base));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.config())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the config file holds a token");
    }

    // Every later command finds the server, wallet and token in the config file.
    assert_eq!(
        env.json(&["wallet", "fund", "--amount", "100"])["amount"],
        "100"
    );
    assert_eq!(
        env.json(&["wallet", "balance"])["balances"]["available"],
        "100"
    );
    let AddedAgent {
        id: agent,
        credential,
        jwt,
    } = add_agent(&env, "bot");
    assert_eq!(jwt.split('.').count(), 3);

    // The agent acts through PURSER_TOKEN, or through its credential and Agent ID.
    let as_agent = |args: &[&str], token: &str| {
        let mut command = env.command(args);
        command
            .env("PURSER_TOKEN", token)
            .env("PURSER_AGENT_ID", &agent);
        command.output().unwrap()
    };
    assert!(as_agent(&["wallet", "balance"], &jwt).status.success());
    assert!(
        as_agent(&["wallet", "balance"], &credential)
            .status
            .success()
    );
    let forbidden = as_agent(&["--json", "agent", "add", "--name", "x"], &jwt);
    assert!(!forbidden.status.success());
    let error: Value = serde_json::from_slice(&forbidden.stdout).unwrap();
    assert_eq!(error["error"]["code"], "forbidden");

    assert_eq!(env.json(&["agent", "revoke", &agent])["status"], "revoked");
    let refused = as_agent(&["--json", "wallet", "balance"], &jwt);
    let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(error["error"]["code"], "agent_revoked");
    assert_eq!(
        env.json(&["agent", "list"])["items"][0]["status"],
        "revoked"
    );

    let bad = env.run(&["--json", "wallet", "fund", "--amount", "1.0000001"]);
    assert!(!bad.status.success());
    let error: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(error["error"]["code"], "invalid_amount");

    let audit = env.json(&["audit", "list"]);
    assert_eq!(audit["items"][0]["action"], "agent.revoked");
    let log = server.stop();

    // Operator checks read the same database the server used.
    assert_eq!(env.json(&["ledger", "check"])["ok"], true);
    assert_eq!(env.json(&["audit", "verify"])["records"], 4);

    // Logs are structured and never carry a secret.
    assert!(
        log.lines()
            .all(|line| serde_json::from_str::<Value>(line).is_ok()),
        "non-JSON log line"
    );
    assert!(log.contains("\"status\":201") || log.contains("status=201") || log.contains("201"));
    for secret in [&owner_token, &credential, &jwt] {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
    assert!(log.contains("shutdown requested") && log.contains("stopped"));
}

/// Edits made behind Purser's back are found and named.
#[test]
fn operator_checks_find_tampering() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    env.ok(&["wallet", "create", "--name", "w", "--server", &server.base]);
    for _ in 0..3 {
        env.ok(&["wallet", "fund", "--amount", "5"]);
    }
    server.stop();
    let db = env.dir.path().join("data").join("purser.db");
    tamper(
        &db,
        "DROP TRIGGER audit_no_update; UPDATE audit_log SET actor = 'system' WHERE seq = 2;",
    );
    let verify = env.run(&["audit", "verify"]);
    assert!(!verify.status.success());
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("audit record 2 was edited"), "{said}");

    tamper(
        &db,
        "UPDATE accounts SET balance = balance + 1 WHERE kind = 'available';",
    );
    let check = env.run(&["--json", "ledger", "check"]);
    assert!(!check.status.success());
    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
    let violations = report["violations"].to_string();
    assert!(
        violations.contains("sum to 1") && violations.contains("transfers add up to"),
        "{violations}"
    );
}

fn tamper(db: &Path, sql: &'static str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        conn.execute(sql).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// The same commands against PostgreSQL, configured through the config file.
#[test]
fn serve_on_postgres_from_the_config_file() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDb::postgres());
    let env = Env::new();
    let port = free_port();
    let serve_table = format!(
        "[serve]\nlisten = \"127.0.0.1:{port}\"\ndb = \"{}\"\nmax_batch = 64\n",
        db.url
    );
    std::fs::write(env.config(), serve_table).unwrap();
    let mut command = env.command(&["serve", "--log-format", "json"]);
    let log = env.dir.path().join("pg.log");
    command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let server = Server {
        child: command.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    server.wait_ready();
    let health: Value = serde_json::from_str(&env.ok(&[
        "--json",
        "wallet",
        "create",
        "--name",
        "pg",
        "--server",
        &server.base,
    ]))
    .unwrap();
    assert!(health["wallet"]["id"].is_string());
    env.ok(&["wallet", "fund", "--amount", "0.25"]);
    assert_eq!(
        env.json(&["wallet", "balance"])["balances"]["available"],
        "0.25"
    );
    let log = server.stop();
    assert!(log.contains("\"backend\":\"postgres\""), "{log}");
    assert_eq!(env.json(&["ledger", "check"])["ok"], true);
    assert_eq!(env.json(&["audit", "verify"])["records"], 2);
    runtime.block_on(db.cleanup());
}

/// A server refuses to start with a master key other than its database's, and
/// refuses nonsense settings with the setting named.
#[test]
fn bad_keys_and_settings_stop_the_server_with_a_clear_error() {
    let env = Env::new();
    let key_a = "11".repeat(32);
    let server = Server::start(&env, &[], &[("PURSER_MASTER_KEY", &key_a)]);
    server.stop();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut wrong = env.command(&["serve", "--listen", &listen]);
    wrong.env("PURSER_MASTER_KEY", "22".repeat(32));
    let output = wrong.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("master key does not match"));

    let output = env.run(&["serve", "--agent-token-ttl-secs", "3600"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("agent_token_ttl_secs"));
    std::fs::write(env.config(), "[serve]\nlisten = 8402\n").unwrap();
    let output = env.run(&["serve"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("config file"));
}

/// The benchmark command runs and reports; its speed is for BENCHMARKS.md, not a test.
#[test]
fn bench_ledger_reports_each_combination() {
    let env = Env::new();
    let rows = env.json(&[
        "bench",
        "ledger",
        "--seconds",
        "1",
        "--clients",
        "1,3",
        "--batch",
        "1,8",
    ]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert_eq!(row["database"], "sqlite");
        assert!(row["transfers"].as_u64().unwrap() > 0, "{row}");
        assert!(row["p99Ms"].as_f64().unwrap() >= row["p50Ms"].as_f64().unwrap());
    }
}

/// The authorization benchmark runs a real server and checks that the mandate
/// holds exactly what was authorized.
#[test]
fn bench_authorize_reports_each_client_count() {
    let env = Env::new();
    let rows = env.json(&["bench", "authorize", "--seconds", "1", "--clients", "1,4"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["database"], "sqlite");
        assert!(row["authorizations"].as_u64().unwrap() > 0, "{row}");
        assert!(row["p99Ms"].as_f64().unwrap() >= row["p50Ms"].as_f64().unwrap());
    }
}

/// The link benchmark serves every signed payment and checks the merchant got
/// exactly what was paid (it fails otherwise).
#[test]
fn bench_link_serves_every_payment() {
    let env = Env::new();
    let rows = env.json(&["bench", "link", "--payments", "20", "--clients", "1,4"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["payments"], 20, "{row}");
        assert!(row["p99Ms"].as_f64().unwrap() >= row["p50Ms"].as_f64().unwrap());
    }
}

/// The MCP benchmark times a mandate read and a paid link fetch with and without
/// MCP (and a bare `ping`) through a real server's `/mcp`: every result is
/// checked, and each merchant must hold exactly the price times its paid calls
/// (it fails otherwise).
#[test]
fn bench_mcp_times_tool_calls_beside_the_direct_paths() {
    let env = Env::new();
    let report = env.json(&[
        "bench",
        "mcp",
        "--calls",
        "12",
        "--pay-calls",
        "3",
        "--clients",
        "1,2",
    ]);
    let rows = report["rows"].as_array().unwrap();
    let runs = ["direct", "mcp ping", "mcp read", "fetch pay", "mcp pay"];
    assert_eq!(rows.len(), 2 * runs.len(), "{report}");
    for (row, (clients, run)) in rows.iter().zip(
        [1, 2]
            .iter()
            .flat_map(|c| runs.iter().map(move |r| (*c, *r))),
    ) {
        assert_eq!(row["run"], run, "{row}");
        assert_eq!(row["clients"], clients, "{row}");
        assert_eq!(row["database"], "sqlite", "{row}");
        let calls = if run.ends_with("pay") { 3 } else { 12 };
        assert_eq!(row["calls"], calls, "{row}");
        assert!(row["callsPerSecond"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["p99Ms"].as_f64().unwrap() >= row["p50Ms"].as_f64().unwrap());
    }
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{report}");
    for check in checks {
        // Tool results: 20 warm-up calls before each run at these client counts
        // (paid ones too), then the timed reads and payments.
        assert_eq!(check["mcpResults"], 2 * 20 + 12 + 3, "{check}");
        assert_eq!(check["mcpErrors"], 0, "{check}");
        assert_eq!(check["paidPerMerchant"], 20 + 3, "{check}");
        assert_eq!(check["mcpMerchantReceived"], "0.023", "{check}");
        assert_eq!(check["fetchMerchantReceived"], "0.023", "{check}");
        assert_eq!(check["mandateSpent"], "0.046", "{check}");
        assert_eq!(check["mandatePending"], "0", "{check}");
        assert_eq!(check["ledgerOk"], true, "{check}");
        for side in ["ping", "read", "pay"] {
            let overhead = &check["overhead"][side];
            assert!(
                overhead["throughputRatio"].as_f64().unwrap() > 0.0,
                "{check}"
            );
            assert!(overhead["addedP50Ms"].is_f64(), "{check}");
        }
    }
}

/// The x402 benchmark runs both facilitators on one anvil and pays with `purser
/// fetch`: every verify must be valid and every fetch settled, or it fails.
#[test]
fn bench_x402_compares_the_facilitators_and_times_fetch() {
    let env = Env::new();
    let repo = purser_testkit::repo_root();
    let report = env.json(&[
        "bench",
        "x402",
        "--seconds",
        "1",
        "--clients",
        "2",
        "--fetches",
        "2",
        "--repo",
        repo.to_str().unwrap(),
    ]);
    let verify = &report["verify"][0];
    assert!(
        verify["purser"]["verifiesPerSecond"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        verify["reference"]["verifiesPerSecond"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(verify["ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(report["fetch"]["runs"], 2);
    assert!(report["fetch"]["p50Ms"].as_f64().unwrap() > 0.0);
}

/// The gateway benchmark runs an upstream, the gateway and a Purser server in one
/// process: every call is checked (each paid one 200 and settled on the ledger
/// rail) or it fails; its speed is for BENCHMARKS.md.
#[test]
fn bench_gateway_times_direct_free_unpaid_and_paid_calls() {
    let env = Env::new();
    let report = env.json(&[
        "bench",
        "gateway",
        "--concurrency",
        "1,3",
        "--requests",
        "30",
        "--paid-requests",
        "5",
    ]);
    let levels = report["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2, "{report}");
    for (level, clients) in levels.iter().zip([1, 3]) {
        assert_eq!(level["concurrency"], clients);
        let runs = [
            ("direct", 30),
            ("free", 30),
            ("unpaid", 30),
            ("paid", 5),
            ("x402AxumUnpaid", 30),
            ("x402AxumPaid", 5),
        ];
        for (run, calls) in runs {
            let row = &level[run];
            assert_eq!(row["requests"], calls, "{run}: {row}");
            assert!(row["requestsPerSecond"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["p99Ms"].as_f64().unwrap() >= row["p50Ms"].as_f64().unwrap());
        }
        assert_eq!(level["paid"]["settled"], 5);
        for run in ["free", "unpaid", "paid"] {
            let overhead = &level["overhead"][run];
            assert!(
                overhead["throughputRatio"].as_f64().unwrap() > 0.0,
                "{overhead}"
            );
            assert!(overhead["addedP50Ms"].is_f64(), "{overhead}");
        }
    }
    // Warm-up calls are paid too (20 per concurrency here): 50 calls at 0.01 USDC.
    assert_eq!(report["paidCalls"], 2 * (20 + 5));
    assert_eq!(report["sellerReceived"], "0.5");
    assert_eq!(report["ledgerOk"], true);
}

/// Runs `purser` as an agent (its JWT in PURSER_TOKEN) and returns the JSON answer,
/// whether the command succeeded or not.
/// Every mandate, payment, approval, payout and policy command, as an owner and an
/// agent would type them.
#[test]
fn mandate_commands_tell_the_whole_story() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    env.ok(&[
        "wallet",
        "create",
        "--name",
        "ops",
        "--server",
        &server.base,
    ]);
    env.ok(&["wallet", "fund", "--amount", "10"]);
    let merchant = {
        let other = Env::new();
        other.json(&[
            "wallet",
            "create",
            "--name",
            "merchant",
            "--server",
            &server.base,
            "--no-save",
        ])
    };
    let merchant_address = merchant["wallet"]["address"].as_str().unwrap().to_owned();
    let jwt = add_agent(&env, "bot").jwt;

    let (ok, drafted) = as_agent(
        &env,
        &jwt,
        &[
            "mandate",
            "create",
            "--description",
            "Geocoding calls",
            "--limit",
            "1",
            "--max-per-tx",
            "0.5",
            "--host",
            "api.geo.example",
            "--valid-for-seconds",
            "3600",
        ],
    );
    assert!(ok, "{drafted}");
    let mandate = drafted["mandateId"].as_str().unwrap().to_owned();
    assert!(drafted["signUrl"].as_str().unwrap().ends_with("/review"));
    let (ok, refused) = as_agent(&env, &jwt, &["mandate", "approve", &mandate]);
    assert!(!ok && refused["error"]["code"] == "forbidden");
    assert_eq!(
        env.json(&["mandate", "approve", &mandate])["status"],
        "signed"
    );

    let (ok, reserved) = as_agent(
        &env,
        &jwt,
        &[
            "payment",
            "authorize",
            "--amount",
            "0.4",
            "--host",
            "https://api.geo.example/v1",
            "--address",
            &merchant_address,
            "--purpose",
            "geocode",
            "--no-approval",
        ],
    );
    assert!(ok, "{reserved}");
    let reservation = reserved["reservation"]["id"].as_str().unwrap().to_owned();
    let (ok, committed) = as_agent(&env, &jwt, &["payment", "commit", &reservation]);
    assert!(ok && committed["status"] == "committed", "{committed}");
    let (ok, blocked) = as_agent(
        &env,
        &jwt,
        &[
            "payment",
            "authorize",
            "--amount",
            "0.1",
            "--host",
            "evil.example",
            "--purpose",
            "x",
            "--mandate",
            &mandate,
        ],
    );
    assert!(
        !ok && blocked["error"]["code"] == "host_not_allowed",
        "{blocked}"
    );
    let status = env.json(&["mandate", "status", &mandate]);
    assert_eq!(
        (
            status["spentAmount"].as_str(),
            status["remainingAmount"].as_str()
        ),
        (Some("0.4"), Some("0.6"))
    );
    let (_, eligible) = as_agent(
        &env,
        &jwt,
        &[
            "mandate",
            "eligible",
            "--host",
            "api.geo.example",
            "--amount",
            "0.5",
        ],
    );
    assert_eq!(eligible["items"].as_array().unwrap().len(), 1);

    // Export, then verify offline — and a tampered copy fails.
    let exported = env.ok(&["mandate", "export", &mandate]);
    let file = env.dir.path().join("mandate.json");
    std::fs::write(&file, &exported).unwrap();
    assert_eq!(
        env.json(&["mandate", "verify", file.to_str().unwrap()])["valid"],
        true
    );
    let tampered = exported.replace("\"limitAmount\": \"1\"", "\"limitAmount\": \"1000\"");
    assert_ne!(tampered, exported);
    std::fs::write(&file, tampered).unwrap();
    let verdict = env.run(&["mandate", "verify", file.to_str().unwrap()]);
    assert!(!verdict.status.success());
    assert!(String::from_utf8_lossy(&verdict.stdout).contains("INVALID"));

    // A payout no mandate covers waits for the owner, then settles.
    let (ok, waiting) = as_agent(
        &env,
        &jwt,
        &[
            "payout",
            "--to",
            &merchant_address,
            "--amount",
            "0.2",
            "--id",
            "po-1",
        ],
    );
    assert!(
        ok && waiting["status"] == "pending_authorization",
        "{waiting}"
    );
    let queue = env.json(&["approvals", "list"]);
    let approval = queue["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        env.json(&["approvals", "approve", &approval])["status"],
        "approved"
    );
    let (_, paid) = as_agent(&env, &jwt, &["payout", "status", "po-1"]);
    assert_eq!(paid["status"], "succeeded", "{paid}");

    let policy = env.json(&[
        "policy",
        "set",
        "--deny-host",
        "*.Casino.example",
        "--per-payment-cap",
        "5",
    ]);
    assert_eq!(
        policy["deniedHosts"],
        serde_json::json!(["*.casino.example"])
    );
    assert_eq!(env.json(&["policy", "show"])["perPaymentCap"], "5");
    let (ok, _) = as_agent(&env, &jwt, &["policy", "show"]);
    assert!(!ok, "agents cannot read the policy");
    assert_eq!(
        env.json(&["mandate", "revoke", &mandate])["status"],
        "revoked"
    );
    server.stop();
    assert_eq!(env.json(&["ledger", "check"])["ok"], true);
    assert_eq!(env.json(&["audit", "verify"])["ok"], true);
}

/// Two `purser serve` processes on one PostgreSQL database: 1,000 concurrent
/// authorizations of 0.01 against a 1.00 mandate end with exactly 100 reserved.
#[test]
fn two_server_processes_never_overspend_a_mandate() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDb::postgres());
    let env = Env::new();
    let master = "ab".repeat(32);
    let first_port = free_port();
    let public_url = format!("http://127.0.0.1:{first_port}");
    let shared = |port: u16| {
        let log = env.dir.path().join(format!("pg-{port}.log"));
        let mut command = env.command(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
            &db.url,
            "--public-url",
            &public_url,
        ]);
        command
            .env("PURSER_MASTER_KEY", &master)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Server {
            child: command.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    };
    let first = shared(first_port);
    first.wait_ready();
    let second = shared(free_port());
    second.wait_ready();

    env.ok(&[
        "wallet",
        "create",
        "--name",
        "shared",
        "--server",
        &first.base,
    ]);
    env.ok(&["wallet", "fund", "--amount", "20"]);
    let jwt = add_agent(&env, "racer").jwt;
    let mandate = signed_mandate(&env, &jwt, "race", "1");

    let bases = [first.base.clone(), second.base.clone()];
    let outcomes = runtime.block_on(async {
        let http = reqwest::Client::new();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let (http, jwt, base) = (http.clone(), jwt.clone(), bases[i % 2].clone());
                tokio::spawn(async move {
                    let key = format!("race-{i}");
                    let (status, body) = authorize_cent(&http, &base, &jwt, &key, "race")
                        .await
                        .unwrap();
                    (
                        status,
                        body["error"]["code"].as_str().unwrap_or("").to_owned(),
                    )
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    });
    let reserved = outcomes.iter().filter(|(status, _)| *status == 201).count();
    let exceeded = outcomes
        .iter()
        .filter(|(_, code)| code == "mandate_budget_exceeded")
        .count();
    assert_eq!(
        (reserved, exceeded),
        (100, 900),
        "{:?}",
        outcomes
            .iter()
            .find(|(s, c)| *s != 201 && c != "mandate_budget_exceeded")
    );
    let status = env.json(&["mandate", "status", &mandate]);
    assert_eq!(
        (
            status["pendingSpentAmount"].as_str(),
            status["status"].as_str()
        ),
        (Some("1"), Some("exhausted"))
    );
    second.stop();
    first.stop();
    assert_eq!(env.json(&["ledger", "check", "--db", &db.url])["ok"], true);
    runtime.block_on(db.cleanup());
}

/// The dashboard benchmark seeds a history through the service, signs the owner
/// in and times every page; each answer is checked (status and content), so the
/// run fails rather than time an error page.
#[test]
fn bench_dashboard_times_every_page_of_a_seeded_history() {
    let env = Env::new();
    let report = env.json(&["bench", "dashboard", "--payments", "300", "--requests", "3"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{report}");
    let run = &runs[0];
    assert_eq!(run["database"], "sqlite", "{run}");
    let seeding = &run["seeding"];
    assert_eq!(seeding["payments"], 300, "{seeding}");
    let committed = seeding["committed"].as_u64().unwrap();
    let released = seeding["released"].as_u64().unwrap();
    let held = seeding["held"].as_u64().unwrap();
    assert_eq!(committed + released + held, 300, "{seeding}");
    assert!(seeding["payouts"].as_u64().unwrap() >= 1, "{seeding}");
    assert_eq!(seeding["links"], 2, "{seeding}");
    assert!(run["auditFirstLoadMs"].as_f64().unwrap() > 0.0, "{run}");
    let pages = run["pages"].as_array().unwrap();
    let paths: Vec<&str> = pages.iter().map(|p| p["path"].as_str().unwrap()).collect();
    for expected in [
        "/",
        "/agents",
        "/mandates",
        "/approvals",
        "/payments",
        "/payouts",
        "/links",
        "/audit",
        "/settings",
    ] {
        assert!(paths.contains(&expected), "no {expected} in {paths:?}");
    }
    assert!(paths.iter().any(|p| p.contains("before=")), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("/links/")), "{paths:?}");
    for page in pages {
        assert_eq!(page["requests"], 3, "{page}");
        assert!(page["p50Ms"].as_f64().unwrap() > 0.0, "{page}");
        assert!(page["maxMs"].as_f64().unwrap() >= page["p99Ms"].as_f64().unwrap());
        assert!(page["p99Ms"].as_f64().unwrap() >= page["p50Ms"].as_f64().unwrap());
    }
}

/// A server killed (SIGKILL) in the middle of a stream of payments loses none it
/// acknowledged: after a restart on the same SQLite file, replaying each
/// acknowledged request with its idempotency key returns the same reservation
/// (a lost one would be reserved anew under another id), and the ledger and the
/// audit chain check out.
#[test]
fn a_killed_server_keeps_every_payment_it_acknowledged() {
    use std::sync::{Arc, Mutex};
    let env = Env::new();
    let mut server = Server::start(&env, &[], &[]);
    env.ok(&[
        "wallet",
        "create",
        "--name",
        "crash",
        "--server",
        &server.base,
    ]);
    env.ok(&["wallet", "fund", "--amount", "1000"]);
    let agent = add_agent(&env, "crasher");
    let jwt = agent.jwt.clone();
    signed_mandate(&env, &jwt, "crash", "1000");

    // The reservation's id when the payment was acknowledged.
    let authorize = |http: reqwest::Client, base: String, jwt: String, key: String| async move {
        let (status, body) = authorize_cent(&http, &base, &jwt, &key, "crash")
            .await
            .ok()?;
        if !(200..300).contains(&status) {
            eprintln!("{status}: {body}");
            return None;
        }
        Some(body["reservation"]["id"].as_str()?.to_owned())
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let clients: Vec<_> = (0..32)
            .map(|client| {
                let (http, base, jwt) = (http.clone(), server.base.clone(), jwt.clone());
                let acknowledged = Arc::clone(&acknowledged);
                tokio::spawn(async move {
                    for n in 0.. {
                        let key = format!("crash-{client}-{n}");
                        let Some(id) =
                            authorize(http.clone(), base.clone(), jwt.clone(), key.clone()).await
                        else {
                            break;
                        };
                        acknowledged.lock().unwrap().push((key, id));
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for client in clients {
            client.await.unwrap();
        }
    });
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "only {} payments before the kill",
        acknowledged.len()
    );

    let restarted = Server::start(&env, &[], &[]);
    // Tokens name the server they came from: the restarted one (a new port) issues
    // its own for the same agent; idempotency keys belong to the agent.
    let jwt = env
        .ok(&[
            "agent",
            "token",
            "--agent-id",
            &agent.id,
            "--credential",
            &agent.credential,
            "--server",
            &restarted.base,
        ])
        .trim()
        .to_owned();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        for (key, id) in &acknowledged {
            let (base, jwt) = (restarted.base.clone(), jwt.clone());
            let replayed = authorize(http.clone(), base, jwt, key.clone()).await;
            assert_eq!(replayed.as_deref(), Some(id.as_str()), "{key} was lost");
        }
    });
    restarted.stop();
    assert_eq!(env.json(&["ledger", "check"])["ok"], true);
    assert!(
        env.json(&["audit", "verify"])["records"].as_u64().unwrap() > acknowledged.len() as u64
    );
}

/// Drafts a mandate paying `api.example` as the agent, and signs it as the owner.
fn signed_mandate(env: &Env, jwt: &str, description: &str, limit: &str) -> String {
    let (_, drafted) = as_agent(
        env,
        jwt,
        &[
            "mandate",
            "create",
            "--description",
            description,
            "--limit",
            limit,
            "--host",
            "api.example",
        ],
    );
    let mandate = drafted["mandateId"].as_str().unwrap().to_owned();
    env.ok(&["mandate", "approve", &mandate]);
    mandate
}

/// Asks to pay 0.01 to `api.example` through `POST /api/payments/authorize`: the
/// answer's status and body.
async fn authorize_cent(
    http: &reqwest::Client,
    base: &str,
    jwt: &str,
    key: &str,
    purpose: &str,
) -> reqwest::Result<(u16, Value)> {
    let body = serde_json::json!({
        "amount": "0.01", "payee": { "host": "api.example" }, "purpose": purpose, "allowApproval": false,
    });
    let response = http
        .post(format!("{base}/api/payments/authorize"))
        .bearer_auth(jwt)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}
