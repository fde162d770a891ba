//! Settings: the wallet policy (on top of every mandate; deny wins).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::{IdempotencyKey, ServiceError};
use purser_types::{Usdc, WalletPolicy};
use serde::Deserialize;

use super::{Chrome, Session, message, page};
use crate::AppState;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Option<Chrome>,
    monthly_cap: String,
    per_payment_cap: String,
    auto_approve_up_to: String,
    denied_hosts: String,
    denied_addresses: String,
    form_id: String,
    wallet_id: String,
    csrf: String,
}

/// `GET /settings`.
pub(crate) async fn show(State(app): State<AppState>, session: Session) -> Response {
    let loaded = async {
        let policy = app.purser.policy(&session.session.principal()).await?;
        Ok::<_, ServiceError>((policy, app.purser.new_form_token()?))
    }
    .await;
    let (policy, form_id) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let amount = |a: Option<Usdc>| a.map(|a| a.to_string()).unwrap_or_default();
    let body = SettingsPage {
        chrome: Some(session.chrome.clone()),
        monthly_cap: amount(policy.per_agent_monthly_cap),
        per_payment_cap: amount(policy.per_payment_cap),
        auto_approve_up_to: amount(policy.auto_approve_up_to),
        denied_hosts: policy.denied_hosts.join("\n"),
        denied_addresses: policy.denied_addresses.join("\n"),
        form_id,
        wallet_id: session.session.wallet.to_string(),
        csrf: session.chrome.csrf.clone(),
    };
    page(StatusCode::OK, body.render())
}

/// The policy form. Amounts are decimal USDC; empty means no limit.
#[derive(Debug, Deserialize)]
pub(crate) struct PolicyForm {
    csrf: String,
    form_id: String,
    monthly_cap: String,
    per_payment_cap: String,
    auto_approve_up_to: String,
    denied_hosts: String,
    denied_addresses: String,
}

fn optional_amount(field: &str, text: &str) -> Result<Option<Usdc>, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<Usdc>()
        .map(Some)
        .map_err(|e| ServiceError::InvalidRequest(format!("{field}: {e}")))
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `POST /settings`: replaces the wallet policy.
pub(crate) async fn save(
    State(app): State<AppState>,
    session: Session,
    Form(form): Form<PolicyForm>,
) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let saved = async {
        let policy = WalletPolicy {
            per_agent_monthly_cap: optional_amount("monthly cap per agent", &form.monthly_cap)?,
            per_payment_cap: optional_amount("cap per payment", &form.per_payment_cap)?,
            denied_hosts: lines(&form.denied_hosts),
            denied_addresses: lines(&form.denied_addresses),
            auto_approve_up_to: optional_amount("auto-approve up to", &form.auto_approve_up_to)?,
        };
        let key = IdempotencyKey::parse(&format!("dashboard-policy-{}", form.form_id))?;
        app.purser
            .set_policy(&session.session.principal(), &policy, &key)
            .await
    }
    .await;
    match saved {
        Ok(_) => message(
            Some(&session.chrome),
            StatusCode::OK,
            "Policy saved",
            "It applies to the next payment of every agent, on top of their mandates.".into(),
            Some("/settings".into()),
        ),
        Err(error) => session.failure(&error, Some("/settings".into())),
    }
}
