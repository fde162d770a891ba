#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The owner's dashboard in a real browser: `purser serve` (SQLite) set up through
//! the CLI, then `e2e/dashboard.mjs` drives Debian's Chromium with Playwright
//! (`playwright-core`) through sign-in, approving and rejecting mandates, the
//! agent's payment showing up, revoking the agent, and every page, with a
//! screenshot of each in `target/dashboard-screenshots/`. Node, `e2e/node_modules`
//! (`npm ci`) and Chromium are required: a missing one fails the test.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, PURSER, Server, add_agent, as_agent};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const WALLET_NAME: &str = "Household budget";
const AGENT_NAME: &str = "Research bot";
const PAY: &str = "0.25";
/// The browser run's limit (it takes well under a minute).
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

/// Every screenshot the script writes: name and width.
const SCREENSHOTS: &[(&str, u32)] = &[
    ("signin", 1280),
    ("signin-error", 1280),
    ("mandate-review-pending", 1280),
    ("overview", 1280),
    ("overview-phone", 390),
    ("payments", 1280),
    ("payouts", 1280),
    ("mandates", 1280),
    ("mandate-review", 1280),
    ("approvals", 1280),
    ("links", 1280),
    ("settings", 1280),
    ("agent-revoke", 1280),
    ("agents", 1280),
    ("audit", 1280),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// `<target>/dashboard-screenshots`, beside the binary under test (so it follows
/// `CARGO_TARGET_DIR`).
fn screenshot_dir() -> PathBuf {
    Path::new(PURSER)
        .parent()
        .and_then(Path::parent)
        .expect("the purser binary lives in <target>/<profile>/")
        .join("dashboard-screenshots")
}

/// Chromium: `$CHROMIUM`, else `/usr/bin/chromium`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CHROMIUM={} does not exist; install Debian's chromium (apt-get install chromium) \
             or point CHROMIUM at a Chromium binary",
            path.display()
        );
        return path;
    }
    let default = PathBuf::from("/usr/bin/chromium");
    if default.is_file() {
        return default;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is required for the dashboard browser test and was not found \
                 (CHROMIUM unset, no /usr/bin/chromium, no chromium on PATH): install Debian's \
                 chromium (`apt-get install chromium`; scripts/test.sh does this) or set CHROMIUM"
            )
        })
}

/// Node and the e2e packages; fails with what to do when either is missing.
fn check_node(e2e: &Path) {
    let version = Command::new("node").arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!("node (>= 20) is required for the dashboard browser test and was not found"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 20, "node >= 20 is required, found {version}");
    assert!(
        e2e.join("node_modules/playwright-core/package.json")
            .is_file(),
        "e2e/node_modules/playwright-core is missing: run `npm ci` in {}",
        e2e.display()
    );
}

/// `purser wallet create --password-stdin`, the password on standard input.
fn create_wallet_with_password(env: &Env, base: &str) -> Value {
    let mut child = env
        .command(&[
            "--json",
            "wallet",
            "create",
            "--name",
            WALLET_NAME,
            "--password-stdin",
            "--server",
            base,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "wallet create --password-stdin failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The environment the script runs `purser` with for a principal.
fn env_vars(env: &Env) -> Value {
    json!({
        "HOME": env.dir.path(),
        "PURSER_CONFIG": env.config(),
        "PURSER_DATA_DIR": env.dir.path().join("data"),
    })
}

/// The width of a PNG (from its IHDR chunk), after checking the signature.
fn png_width(bytes: &[u8]) -> u32 {
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG with content"
    );
    u32::from_be_bytes(bytes[16..20].try_into().unwrap())
}

#[test]
fn dashboard_in_a_real_browser() {
    let e2e = workspace().join("e2e");
    check_node(&e2e);
    let chromium = chromium();
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    // The owner: a wallet with a dashboard password, funded.
    let owner = Env::new();
    let server = Server::start(&owner, &[], &[]);
    let created = create_wallet_with_password(&owner, &server.base);
    let wallet_id = created["wallet"]["id"].as_str().unwrap().to_owned();
    owner.ok(&["wallet", "fund", "--amount", "10"]);

    // The payee: another wallet on the server.
    let payee = Env::new();
    let payee_wallet = payee.json(&[
        "wallet",
        "create",
        "--name",
        "Data vendor",
        "--server",
        &server.base,
        "--no-save",
    ]);
    let payee_address = payee_wallet["wallet"]["address"]
        .as_str()
        .unwrap()
        .to_owned();

    // The agent: its credential and id in its own config file.
    let added = add_agent(&owner, AGENT_NAME);
    let agent = Env::new();
    std::fs::write(
        agent.config(),
        format!(
            "server = \"{}\"\ntoken = \"{}\"\nagent_id = \"{}\"\n",
            server.base, added.credential, added.id
        ),
    )
    .unwrap();
    let draft = |description: &str, extra: &[&str]| {
        let mut args = vec![
            "mandate",
            "create",
            "--description",
            description,
            "--limit",
            "1",
            "--valid-for-seconds",
            "3600",
        ];
        args.extend_from_slice(extra);
        let drafted = agent.json(&args);
        let sign_url = drafted["signUrl"].as_str().unwrap().to_owned();
        assert!(
            sign_url.starts_with(&server.base) && sign_url.ends_with("/review"),
            "{drafted}"
        );
        json!({ "id": drafted["mandateId"], "signUrl": sign_url })
    };
    let to_approve = draft(
        "Buy market data from the data vendor",
        &["--max-per-tx", "0.5"],
    );
    let to_reject = draft("Bulk purchases of anything", &[]);
    // A payout no mandate covers yet waits for the owner (the approvals page).
    let (ok, waiting) = as_agent(
        &agent,
        &added.jwt,
        &[
            "payout",
            "--to",
            &payee_address,
            "--amount",
            "0.1",
            "--id",
            "needs-approval",
        ],
    );
    assert!(
        ok && waiting["status"] == "pending_authorization",
        "{waiting}"
    );
    let link = agent.json(&[
        "link",
        "create",
        "--amount",
        "0.05",
        "--description",
        "Weekly market summary",
        "--content",
        "prices went up",
    ]);

    let config = json!({
        "base": server.base,
        "purser": PURSER,
        "owner": {
            "env": env_vars(&owner),
            "walletId": wallet_id,
            "walletName": WALLET_NAME,
            "password": PASSWORD,
        },
        "agent": { "env": env_vars(&agent), "id": added.id, "name": AGENT_NAME },
        "payee": { "address": payee_address },
        "mandates": { "approve": to_approve, "reject": to_reject },
        "payAmount": PAY,
        "pendingApprovalId": waiting["approvalId"],
        "linkId": link["id"],
        "screenshots": shots,
    });
    let config_file = owner.dir.path().join("dashboard-e2e.json");
    std::fs::write(&config_file, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    // The browser run.
    let log_file = owner.dir.path().join("dashboard-e2e.log");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .arg(&config_file)
        .current_dir(&e2e)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log_file).unwrap())
        .stderr(std::fs::File::create(owner.dir.path().join("dashboard-e2e.err")).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&log_file).unwrap_or_default();
    let err =
        std::fs::read_to_string(owner.dir.path().join("dashboard-e2e.err")).unwrap_or_default();
    println!("{out}{err}");
    let status = status.unwrap_or_else(|| {
        panic!("e2e/dashboard.mjs ran longer than {SCRIPT_LIMIT:?}:\n{out}\n{err}")
    });
    assert!(
        status.success() && out.contains("PASS"),
        "e2e/dashboard.mjs failed ({status}); screenshots in {}:\n{out}\n{err}\nserver log:\n{}",
        shots.display(),
        std::fs::read_to_string(&server.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.contains("\"level\":\"DEBUG\""))
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "dashboard browser run: {:.1}s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );

    for (name, width) in SCREENSHOTS {
        let path = shots.join(format!("{name}.png"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("screenshot {} missing: {e}", path.display()));
        assert_eq!(png_width(&bytes), *width, "{}", path.display());
    }

    // What the browser did, seen through the CLI.
    let approved = owner.json(&["mandate", "status", to_approve["id"].as_str().unwrap()]);
    assert_eq!(
        (
            approved["status"].as_str(),
            approved["spentAmount"].as_str(),
            approved["pendingSpentAmount"].as_str(),
            approved["remainingAmount"].as_str()
        ),
        (Some("signed"), Some(PAY), Some("0"), Some("0.75")),
        "{approved}"
    );
    let rejected = owner.json(&["mandate", "status", to_reject["id"].as_str().unwrap()]);
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    let agents = owner.json(&["agent", "list"]);
    let row = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == added.id.as_str())
        .unwrap();
    assert_eq!(row["status"], "revoked", "{agents}");
    assert_eq!(
        agents["items"].as_array().unwrap().len(),
        2,
        "the agent added in the browser: {agents}"
    );
    let (ok, refused) = as_agent(&agent, &added.jwt, &["wallet", "balance"]);
    assert!(
        !ok && refused["error"]["code"] == "agent_revoked",
        "{refused}"
    );
    assert_eq!(
        owner.json(&["wallet", "balance"])["balances"]["available"],
        "9.75"
    );
    let policy = owner.json(&["policy", "show"]);
    assert_eq!(policy["perPaymentCap"], "5", "{policy}");
    assert_eq!(policy["deniedHosts"], json!(["casino.example"]), "{policy}");

    server.stop();
    assert_eq!(owner.json(&["ledger", "check"])["ok"], true);
    assert_eq!(owner.json(&["audit", "verify"])["ok"], true);
}
