//! The client commands: wallet, agent, audit list. Each calls the HTTP API and
//! prints either text for a person or the API's JSON (`--json`).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use purser_server::{
    AgentRegisteredResponse, AgentsList, AuditPage, MeResponse, TransfersPage,
    WalletCreatedResponse, WalletResponse,
};
use purser_types::{Agent, Secret, Transfer};
use serde_json::{Value, json};

use crate::cli::{AgentCommand, ClientArgs, WalletCommand, WalletSelect};
use crate::config::{self, ConfigFile, DEFAULT_LISTEN};
use purser_client::{Answer, ApiClient, Login, new_idempotency_key};

/// A failure whose details the command already printed; only the exit code is left.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reported(pub(crate) String);

/// What every command shares: output mode and the config file.
pub(crate) struct Context {
    pub(crate) json: bool,
    pub(crate) config_path: PathBuf,
    pub(crate) config: ConfigFile,
}

impl Context {
    pub(crate) fn load(json: bool, config_path: Option<PathBuf>) -> Result<Context> {
        let config_path = config_path.unwrap_or_else(config::default_config_path);
        let config = config::load(&config_path)?;
        Ok(Context {
            json,
            config_path,
            config,
        })
    }

    fn server(&self, server: Option<&String>) -> String {
        server
            .cloned()
            .or_else(|| self.config.server.clone())
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"))
    }

    /// A client for the chosen server. An agent credential logs in (exchanged for
    /// a JWT on first use, renewed before it expires); any other token is sent as is.
    pub(crate) async fn client(&self, args: &ClientArgs) -> Result<ApiClient> {
        let client = self.client_or_anonymous(args)?;
        if args.token.is_none() && self.config.token.is_none() {
            bail!(
                "no token: pass --token, set PURSER_TOKEN, or run `purser wallet create` to save one"
            );
        }
        Ok(client)
    }

    /// Like [`Context::client`], but without a token the client is anonymous.
    pub(crate) fn client_or_anonymous(&self, args: &ClientArgs) -> Result<ApiClient> {
        let server = self.server(args.server.as_ref());
        let token = args.token.clone().or_else(|| self.config.token.clone());
        let client = ApiClient::new(&server, None)?;
        match token {
            Some(credential)
                if credential.starts_with(purser_service::auth::AGENT_CREDENTIAL_PREFIX) =>
            {
                let agent_id = args.agent_id.clone().or_else(|| self.config.agent_id.clone()).context(
                    "the token is an agent credential: pass --agent-id (or PURSER_AGENT_ID) too",
                )?;
                Ok(client.with_login(Login::new(agent_id, Secret::new(credential))))
            }
            other => Ok(client.with_token(other)),
        }
    }

    /// The wallet to act on: flag/env, config file, or the token's own wallet.
    async fn wallet_id(&self, client: &ApiClient, select: &WalletSelect) -> Result<String> {
        if let Some(wallet) = select
            .wallet
            .clone()
            .or_else(|| self.config.wallet_id.clone())
        {
            return Ok(wallet);
        }
        let me: MeResponse = client.get("/api/me").await?.parse()?;
        Ok(me.wallet_id.to_string())
    }

    /// POSTs `body` to `/api/wallets/{wallet}/{action}` with an idempotency key (a
    /// fresh one unless given) and returns the wallet id used and the answer.
    async fn wallet_post(
        &self,
        client: &ClientArgs,
        wallet: &WalletSelect,
        action: &str,
        body: &Value,
        key: Option<String>,
    ) -> Result<(String, Answer)> {
        let api = self.client(client).await?;
        let wallet = self.wallet_id(&api, wallet).await?;
        let key = key.unwrap_or_else(new_idempotency_key);
        let answer = api
            .post(&format!("/api/wallets/{wallet}/{action}"), body, &key)
            .await?;
        Ok((wallet, answer))
    }

    /// Prints the API's JSON with `--json`, the text otherwise.
    pub(crate) fn emit(&self, body: &Value, text: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(body)?);
        } else {
            println!("{}", text());
        }
        Ok(())
    }
}

fn replay_note(answer: &Answer) -> &'static str {
    if answer.replayed {
        " (replayed: this idempotency key was used before)"
    } else {
        ""
    }
}

pub(crate) async fn wallet(ctx: &mut Context, command: WalletCommand) -> Result<()> {
    match command {
        WalletCommand::Create {
            name,
            password_stdin,
            no_save,
            idempotency_key,
            client,
        } => {
            let server = ctx.server(client.server.as_ref());
            let api = ApiClient::new(&server, None)?;
            let key = idempotency_key.unwrap_or_else(new_idempotency_key);
            let mut body = json!({ "name": name, "currency": "USDC" });
            if let Some(password) = dashboard_password(password_stdin)? {
                body["password"] = json!(password.expose());
            }
            let answer = api.post("/api/wallets", &body, &key).await?;
            let created: WalletCreatedResponse = answer.parse()?;
            let saved = !no_save && created.owner_token.is_some();
            if saved {
                ctx.config.server = Some(server);
                ctx.config.token.clone_from(&created.owner_token);
                ctx.config.wallet_id = Some(created.wallet.id.to_string());
                config::save(&ctx.config_path, &ctx.config)?;
            }
            ctx.emit(&answer.body, || {
                let token = created.owner_token.as_deref().unwrap_or("(not shown again: replay)");
                let saved = if saved { format!("\n  saved to {}", ctx.config_path.display()) } else { String::new() };
                format!(
                    "Created wallet {:?} ({}){}\n  address:     {}\n  owner token: {token}\n  Keep the owner token secret: it is shown once and controls the wallet.{saved}",
                    created.wallet.name, created.wallet.id, replay_note(&answer), created.wallet.address
                )
            })
        }
        WalletCommand::Fund {
            amount,
            idempotency_key,
            wallet,
            client,
        } => {
            let body = json!({ "amount": amount });
            let (wallet, answer) = ctx
                .wallet_post(&client, &wallet, "fund", &body, idempotency_key)
                .await?;
            let transfer: Transfer = answer.parse()?;
            ctx.emit(&answer.body, || {
                format!(
                    "Funded {wallet} with {} USDC from the sandbox on-ramp ({}){}",
                    transfer.amount,
                    transfer.id,
                    replay_note(&answer)
                )
            })
        }
        WalletCommand::Balance { wallet, client } => {
            let api = ctx.client(&client).await?;
            let wallet = ctx.wallet_id(&api, &wallet).await?;
            let answer = api.get(&format!("/api/wallets/{wallet}")).await?;
            let view: WalletResponse = answer.parse()?;
            ctx.emit(&answer.body, || {
                let b = view.balances;
                format!(
                    "{} ({})\n  available: {} {}\n  reserved:  {} {}\n  total:     {} {}",
                    view.wallet.name,
                    view.wallet.id,
                    b.available,
                    b.currency,
                    b.reserved,
                    b.currency,
                    b.total,
                    b.currency
                )
            })
        }
        WalletCommand::Transfers {
            limit,
            wallet,
            client,
        } => {
            let api = ctx.client(&client).await?;
            let wallet = ctx.wallet_id(&api, &wallet).await?;
            let answer = api
                .get(&format!("/api/wallets/{wallet}/transfers?limit={limit}"))
                .await?;
            let page: TransfersPage = answer.parse()?;
            ctx.emit(&answer.body, || transfers_text(&page.items))
        }
    }
}

fn transfers_text(transfers: &[Transfer]) -> String {
    if transfers.is_empty() {
        return "No transfers yet.".to_owned();
    }
    transfers
        .iter()
        .map(|t| {
            format!(
                "{}  {:>14} {}  {} -> {}  ({})",
                t.created_at,
                t.amount,
                t.currency,
                t.from,
                t.to,
                t.kind.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn agent_line(agent: &Agent) -> String {
    format!("{}  {:<8} {}", agent.id, agent.status.as_str(), agent.name)
}

pub(crate) async fn agent(ctx: &Context, command: AgentCommand) -> Result<()> {
    match command {
        AgentCommand::Add {
            name,
            idempotency_key,
            wallet,
            client,
        } => {
            let body = json!({ "name": name });
            let (_, answer) = ctx
                .wallet_post(&client, &wallet, "agents", &body, idempotency_key)
                .await?;
            let added: AgentRegisteredResponse = answer.parse()?;
            ctx.emit(&answer.body, || {
                let credential = added.credential.as_deref().unwrap_or("(not shown again: replay)");
                format!(
                    "Registered agent {:?}{}\n  Agent ID:   {}\n  credential: {credential}\n  Give both to the agent; it runs `purser agent token` to get a 15-minute JWT.",
                    added.agent.name, replay_note(&answer), added.agent.id
                )
            })
        }
        AgentCommand::List { wallet, client } => {
            let api = ctx.client(&client).await?;
            let wallet = ctx.wallet_id(&api, &wallet).await?;
            let answer = api.get(&format!("/api/wallets/{wallet}/agents")).await?;
            let list: AgentsList = answer.parse()?;
            ctx.emit(&answer.body, || {
                if list.items.is_empty() {
                    "No agents yet.".to_owned()
                } else {
                    list.items
                        .iter()
                        .map(agent_line)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            })
        }
        AgentCommand::Revoke {
            agent,
            idempotency_key,
            client,
        } => {
            let api = ctx.client(&client).await?;
            let key = idempotency_key.unwrap_or_else(new_idempotency_key);
            let answer = api
                .post(&format!("/api/agents/{agent}/revoke"), &json!({}), &key)
                .await?;
            let agent: Agent = answer.parse()?;
            ctx.emit(&answer.body, || {
                format!(
                    "Revoked {}: its tokens and credential no longer work.",
                    agent_line(&agent)
                )
            })
        }
        AgentCommand::Token {
            agent_id,
            credential,
            server,
        } => {
            let api = ApiClient::new(&ctx.server(server.as_ref()), None)?;
            let token = api.agent_token(&agent_id, &credential).await?;
            let body = serde_json::to_value(&token)?;
            // The bare token on stdout, so `export PURSER_TOKEN=$(purser agent token …)` works.
            ctx.emit(&body, || token.token.clone())
        }
    }
}

pub(crate) async fn audit_list(
    ctx: &Context,
    limit: u32,
    wallet: &WalletSelect,
    client: &ClientArgs,
) -> Result<()> {
    let api = ctx.client(client).await?;
    let wallet = ctx.wallet_id(&api, wallet).await?;
    let answer = api
        .get(&format!("/api/wallets/{wallet}/audit?limit={limit}"))
        .await?;
    let page: AuditPage = answer.parse()?;
    ctx.emit(&answer.body, || {
        page.items
            .iter()
            .map(|r| {
                format!(
                    "#{:<6} {}  {:<18} {:<40} {}",
                    r.seq, r.at, r.event.action, r.event.actor, r.event.subject
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The dashboard password for a new wallet: standard input's first line with
/// `--password-stdin`, else `PURSER_DASHBOARD_PASSWORD`, else none.
fn dashboard_password(from_stdin: bool) -> Result<Option<purser_types::Secret<String>>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(!password.is_empty(), "--password-stdin read an empty line");
        return Ok(Some(purser_types::Secret::new(password)));
    }
    Ok(std::env::var("PURSER_DASHBOARD_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(purser_types::Secret::new))
}
