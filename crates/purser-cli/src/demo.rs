//! `purser demo`: the story so far, told on a throwaway embedded server.
//!
//! It starts the real server (axum, the real store on a temporary SQLite file, real
//! keys) on a free loopback port and drives it through the same HTTP client the CLI
//! uses, checking each answer. Any surprise stops the demo with a non-zero exit.

use anyhow::{Context as _, Result, bail, ensure};
use purser_server::{
    AgentRegisteredResponse, AuthorizationResponse, MandateResponse, PayoutResponse,
    WalletCreatedResponse, WalletResponse,
};
use purser_service::Purser;
use purser_types::{
    Agent, AgentStatus, MandateId, PayoutStatus, Reservation, SignedMandate, Transfer,
};
use serde_json::{Value, json};

use crate::cli::DemoArgs;
use crate::commands::Context;
use crate::serve::{Embedded, open_store};
use purser_client::{ApiClient, ClientError, new_idempotency_key};

/// Tells the story step by step: as text for a person, or as JSON at the end.
struct Narrator {
    json: bool,
    steps: Vec<Value>,
}

impl Narrator {
    fn step(&mut self, title: &str, outcome: String) {
        if self.json {
            self.steps
                .push(json!({ "step": self.steps.len() + 1, "title": title, "outcome": outcome }));
        } else {
            println!("\n{}. {title}\n   → {outcome}", self.steps.len() + 1);
            self.steps.push(Value::Null);
        }
    }

    fn say(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }
}

/// Expects an API refusal with this code; anything else ends the demo.
fn refused(result: Result<impl std::fmt::Debug, ClientError>, code: &str) -> Result<String> {
    match result {
        Err(ClientError::Api {
            status,
            code: got,
            message,
        }) if got == code => Ok(format!(
            "refused: HTTP {} {got} ({message})",
            status.as_u16()
        )),
        other => bail!("expected the server to refuse with {code}, got {other:?}"),
    }
}

pub(crate) async fn run(ctx: &Context, args: DemoArgs) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("purser-demo-").tempdir()?;
    let db_path = dir.path().join("purser.db");
    let store = open_store(&db_path.display().to_string(), 256).await?;
    let server = Embedded::start(store).await?;
    let base = server.base.clone();

    let mut narrator = Narrator {
        json: ctx.json,
        steps: Vec::new(),
    };
    narrator.say(&format!(
        "Purser demo: a throwaway server on a temporary SQLite database\n  server:   {base}\n  database: {}",
        db_path.display()
    ));
    let story = tell(&mut narrator, &base, &server.purser).await;
    server.stop().await?;
    story?;

    if args.keep {
        let kept = dir.keep();
        narrator.say(&format!("\nKept the demo database in {}", kept.display()));
    }
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "ok": true, "server": base, "steps": narrator.steps })
            )?
        );
    } else {
        println!("\nDone: every step behaved as it should.");
    }
    Ok(())
}

async fn tell(narrator: &mut Narrator, base: &str, purser: &Purser) -> Result<()> {
    let anonymous = ApiClient::new(base, None)?;
    let created: WalletCreatedResponse = anonymous
        .post(
            "/api/wallets",
            &json!({ "name": "Demo wallet", "currency": "USDC" }),
            &new_idempotency_key(),
        )
        .await?
        .parse()?;
    let owner_token = created
        .owner_token
        .context("a new wallet comes with its owner token")?;
    let wallet = created.wallet.id;
    narrator.step(
        "A person creates a wallet.",
        format!("wallet {wallet} with EVM address {}; the owner token is shown once and stored only as a hash", created.wallet.address),
    );

    let owner = anonymous.with_token(Some(owner_token));
    let fund_key = new_idempotency_key();
    let fund_body = json!({ "amount": "100" });
    let funded: Transfer = owner
        .post(
            &format!("/api/wallets/{wallet}/fund"),
            &fund_body,
            &fund_key,
        )
        .await?
        .parse()?;
    let balance = available(&owner, &wallet.to_string()).await?;
    ensure!(
        balance == "100",
        "expected 100 USDC available, found {balance}"
    );
    narrator.step(
        "They fund it from the sandbox on-ramp.",
        format!(
            "transfer {} of {} USDC; available balance {balance} USDC",
            funded.id, funded.amount
        ),
    );

    let registered: AgentRegisteredResponse = owner
        .post(
            &format!("/api/wallets/{wallet}/agents"),
            &json!({ "name": "research-agent" }),
            &new_idempotency_key(),
        )
        .await?
        .parse()?;
    let credential = registered
        .credential
        .context("a new agent comes with its credential")?;
    let agent_id = registered.agent.id.to_string();
    narrator.step(
        "They register an agent, \"research-agent\".",
        format!("Agent ID {agent_id}; its credential is shown once"),
    );

    let token = anonymous.agent_token(&agent_id, &credential).await?;
    narrator.step(
        "The agent exchanges its credential for a short-lived JWT (Ed25519, verifiable at /.well-known/jwks.json).",
        format!("a {}-second token, expiring at {}", token.expires_in, token.expires_at),
    );

    let agent = anonymous.with_token(Some(token.token.clone()));
    let seen = available(&agent, &wallet.to_string()).await?;
    narrator.step(
        "The agent reads its own wallet with the JWT.",
        format!("it sees {seen} USDC available"),
    );

    let attempt = agent
        .post(
            &format!("/api/wallets/{wallet}/agents"),
            &json!({ "name": "rogue" }),
            &new_idempotency_key(),
        )
        .await;
    narrator.step(
        "The agent tries an owner-only action: registering another agent.",
        refused(attempt, "forbidden")?,
    );

    mandate_story(narrator, &anonymous, &owner, &agent).await?;

    let revoked: Agent = owner
        .post(
            &format!("/api/agents/{agent_id}/revoke"),
            &json!({}),
            &new_idempotency_key(),
        )
        .await?
        .parse()?;
    ensure!(
        revoked.status == AgentStatus::Revoked,
        "the agent should be revoked"
    );
    narrator.step(
        "The owner revokes the agent.",
        format!("agent {agent_id} is {}", revoked.status.as_str()),
    );

    let attempt = agent.get(&format!("/api/wallets/{wallet}")).await;
    narrator.step(
        "The agent tries again with the same, unexpired JWT.",
        refused(attempt, "agent_revoked")?,
    );
    let attempt = anonymous.agent_token(&agent_id, &credential).await;
    narrator.step(
        "It asks for a fresh JWT with its credential.",
        refused(attempt, "agent_revoked")?,
    );

    let before = available(&owner, &wallet.to_string()).await?;
    let replay = owner
        .post(
            &format!("/api/wallets/{wallet}/fund"),
            &fund_body,
            &fund_key,
        )
        .await?;
    let balance = available(&owner, &wallet.to_string()).await?;
    ensure!(
        replay.replayed && balance == before,
        "a replayed funding request must not move money twice"
    );
    narrator.step(
        "The owner's funding request is retried with the same Idempotency-Key (as after a lost response).",
        format!("the original result is returned and marked replayed; balance still {balance} USDC"),
    );
    let conflict = owner
        .post(
            &format!("/api/wallets/{wallet}/fund"),
            &json!({ "amount": "5" }),
            &fund_key,
        )
        .await;
    narrator.step(
        "The same key is reused with a different amount.",
        refused(conflict, "idempotency_conflict")?,
    );

    let report = purser.store().check_ledger().await?;
    ensure!(
        report.is_ok(),
        "ledger invariants broken: {:?}",
        report.violations
    );
    let audit = purser
        .store()
        .verify_audit()
        .await?
        .map_err(|b| anyhow::anyhow!("{b}"))?;
    narrator.step(
        "The operator checks the ledger and the audit trail.",
        format!(
            "ledger: {} accounts, every invariant holds; audit chain: {} hash-chained records verified",
            report.accounts, audit.records
        ),
    );
    Ok(())
}

async fn available(client: &ApiClient, wallet: &str) -> Result<String> {
    let view: WalletResponse = client
        .get(&format!("/api/wallets/{wallet}"))
        .await?
        .parse()?;
    Ok(view.balances.available.to_string())
}

/// The mandate part of the story: sign once, pay within it, get blocked outside it,
/// and the per-payment approval when no mandate covers a payment.
async fn mandate_story(
    narrator: &mut Narrator,
    anonymous: &ApiClient,
    owner: &ApiClient,
    agent: &ApiClient,
) -> Result<()> {
    let merchant: WalletCreatedResponse = anonymous
        .post(
            "/api/wallets",
            &json!({ "name": "Weather API Inc." }),
            &new_idempotency_key(),
        )
        .await?
        .parse()?;
    let merchant_address = merchant.wallet.address.clone();
    let draft = json!({
        "description": "Buy weather forecasts for the trip-planning task",
        "limitAmount": "1", "maxAmountPerTx": "0.5", "hostAllowlist": ["api.weather.example"], "validForSeconds": 3600,
    });
    let drafted: MandateResponse = agent
        .post("/api/mandates", &draft, &new_idempotency_key())
        .await?
        .parse()?;
    let id = drafted.mandate_id;
    narrator.step(
        "The agent drafts an intent mandate: up to 1 USDC, at most 0.5 per payment, only api.weather.example, for one hour.",
        format!("mandate {id} is {}; the agent hands its human this link: {}", drafted.status.as_str(), drafted.sign_url),
    );
    let refused_self = agent
        .post(
            &format!("/api/mandates/{id}/approve"),
            &json!({}),
            &new_idempotency_key(),
        )
        .await;
    narrator.step(
        "The agent tries to approve its own mandate.",
        refused(refused_self, "forbidden")?,
    );
    let signed: MandateResponse = owner
        .post(
            &format!("/api/mandates/{id}/approve"),
            &json!({}),
            &new_idempotency_key(),
        )
        .await?
        .parse()?;
    let exported: SignedMandate = owner
        .get(&format!("/api/mandates/{id}/signed"))
        .await?
        .parse()?;
    let signer = purser_chain::mandate::verify(&exported).map_err(|e| anyhow::anyhow!("{e}"))?;
    narrator.step(
        "The owner reviews the terms and signs once (EIP-712, with the wallet's key).",
        format!(
            "status {}; anyone can verify offline that {signer} signed exactly these terms",
            signed.status.as_str()
        ),
    );

    for n in 1..=2 {
        let reservation = pay(
            agent,
            "0.3",
            "https://api.weather.example/v1/forecast",
            &merchant_address,
            None,
        )
        .await?;
        let committed: Reservation = agent
            .post(
                &format!("/api/reservations/{}/commit", reservation.id),
                &json!({}),
                &new_idempotency_key(),
            )
            .await?
            .parse()?;
        let now: MandateResponse = agent.get(&format!("/api/mandates/{id}")).await?.parse()?;
        narrator.step(
            &format!("The agent pays 0.3 USDC for forecast #{n}: inside the mandate, so it clears without asking."),
            format!("{} {}; spent {} of {}, remaining {}", committed.id, committed.status.as_str(), now.spent_amount, now.limit_amount, now.remaining_amount),
        );
    }
    let off_mission = pay(
        agent,
        "0.1",
        "https://evil.example/exfiltrate",
        &merchant_address,
        Some(id),
    )
    .await;
    narrator.step(
        "The agent tries to pay a host outside the allowlist.",
        refused(off_mission, "host_not_allowed")?,
    );
    let too_much = pay(
        agent,
        "0.5",
        "api.weather.example",
        &merchant_address,
        Some(id),
    )
    .await;
    narrator.step(
        "It tries 0.5 USDC more, past the 0.4 left in the budget.",
        refused(too_much, "mandate_budget_exceeded")?,
    );

    let payout =
        json!({ "payoutId": "demo-payout-1", "toAddress": merchant_address, "amount": "0.25" });
    let waiting: PayoutResponse = agent
        .post("/api/payouts", &payout, "demo-payout-1")
        .await?
        .parse()?;
    let approval_url = waiting
        .approval_url
        .clone()
        .context("a payout no mandate covers waits for approval")?;
    narrator.step(
        "The agent asks for a payout no mandate covers (the mandate names a host; a payout has none).",
        format!("{}: the owner is asked once, at {approval_url}", waiting.payout.status.as_str()),
    );
    let approval = waiting
        .payout
        .approval_id
        .context("the payout names its approval")?;
    owner
        .post(
            &format!("/api/approvals/{approval}/approve"),
            &json!({}),
            &new_idempotency_key(),
        )
        .await?;
    let paid: PayoutResponse = agent.get("/api/payouts/demo-payout-1").await?.parse()?;
    ensure!(
        paid.payout.status == PayoutStatus::Succeeded,
        "the approved payout should have settled"
    );
    narrator.step(
        "The owner approves that one payment.",
        format!(
            "payout {} settled on the ledger ({})",
            paid.payout.status.as_str(),
            paid.payout.settlement.unwrap_or_default()
        ),
    );
    Ok(())
}

/// Authorizes a payment to a host (and the merchant's address); `Err` carries the refusal.
async fn pay(
    agent: &ApiClient,
    amount: &str,
    host: &str,
    address: &str,
    mandate: Option<MandateId>,
) -> Result<Reservation, ClientError> {
    let body = json!({
        "amount": amount, "payee": { "host": host, "address": address }, "purpose": "weather forecast",
        "mandateId": mandate, "allowApproval": false,
    });
    let answer: AuthorizationResponse = agent
        .post("/api/payments/authorize", &body, &new_idempotency_key())
        .await?
        .parse()?;
    answer
        .reservation
        .ok_or_else(|| ClientError::Transport("expected a reservation".into()))
}
