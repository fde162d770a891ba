//! Agents: list, add (the credential is shown once), revoke after confirming.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::{IdempotencyKey, ServiceError};
use purser_types::{AgentId, AgentStatus};
use serde::Deserialize;

use super::review::CsrfForm;
use super::{Chrome, Session, message, page};
use crate::AppState;

pub(crate) struct AgentRow {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub since: String,
    pub revoked: String,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Option<Chrome>,
    rows: Vec<AgentRow>,
    added: Option<Added>,
    form_id: String,
    csrf: String,
}

/// An agent just added, with its credential (shown this once).
struct Added {
    id: String,
    name: String,
    credential: String,
    server: String,
}

async fn render(
    app: &AppState,
    session: &Session,
    added: Option<Added>,
    status: StatusCode,
) -> Response {
    let principal = session.session.principal();
    let loaded = match app.purser.new_form_token() {
        Ok(form_id) => app
            .purser
            .agents(&principal, session.session.wallet)
            .await
            .map(|a| (a, form_id)),
        Err(error) => Err(error),
    };
    match loaded {
        Ok((agents, form_id)) => {
            let chrome = &session.chrome;
            let rows = agents
                .iter()
                .rev()
                .map(|a| AgentRow {
                    id: a.id.to_string(),
                    name: a.name.clone(),
                    active: a.status == AgentStatus::Active,
                    since: chrome.time(a.created_at),
                    revoked: a.revoked_at.map(|t| chrome.time(t)).unwrap_or_default(),
                })
                .collect();
            page(
                status,
                AgentsPage {
                    chrome: Some(chrome.clone()),
                    rows,
                    added,
                    form_id,
                    csrf: chrome.csrf.clone(),
                }
                .render(),
            )
        }
        Err(error) => session.failure(&error, None),
    }
}

/// `GET /agents`.
pub(crate) async fn list(State(app): State<AppState>, session: Session) -> Response {
    render(&app, &session, None, StatusCode::OK).await
}

/// The add-agent form.
#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    csrf: String,
    name: String,
    /// A fresh key per rendered form, so a resubmitted form adds the agent once.
    form_id: String,
}

/// `POST /agents`: registers an agent and shows its credential once.
pub(crate) async fn add(
    State(app): State<AppState>,
    session: Session,
    Form(form): Form<AddForm>,
) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let registered = async {
        let key = IdempotencyKey::parse(&format!("dashboard-agent-{}", form.form_id))?;
        app.purser
            .register_agent(
                &session.session.principal(),
                session.session.wallet,
                &form.name,
                &key,
            )
            .await
    }
    .await;
    match registered {
        Ok(registered) => {
            let Some(credential) = registered.value.credential else {
                return message(
                    Some(&session.chrome),
                    StatusCode::OK,
                    "Agent already added",
                    "This form was already sent; its credential was shown then and is never shown again.".into(),
                    Some("/agents".into()),
                );
            };
            let added = Added {
                id: registered.value.agent.id.to_string(),
                name: registered.value.agent.name,
                credential: credential.expose().clone(),
                server: app.purser.public_url().to_owned(),
            };
            render(&app, &session, Some(added), StatusCode::CREATED).await
        }
        Err(error) => session.failure(&error, Some("/agents".into())),
    }
}

#[derive(Template)]
#[template(path = "agent_revoke.html")]
struct ConfirmPage {
    chrome: Option<Chrome>,
    id: String,
    name: String,
    csrf: String,
}

/// `GET /agents/{id}/revoke`: asks the owner to confirm.
pub(crate) async fn confirm_revoke(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<AgentId>() else {
        return session.failure(&ServiceError::NotFound, Some("/agents".into()));
    };
    match app.purser.agent(&session.session.principal(), id).await {
        Ok(agent) => page(
            StatusCode::OK,
            ConfirmPage {
                chrome: Some(session.chrome.clone()),
                id: agent.id.to_string(),
                name: agent.name,
                csrf: session.session.csrf_token.clone(),
            }
            .render(),
        ),
        Err(error) => session.failure(&error, Some("/agents".into())),
    }
}

/// `POST /agents/{id}/revoke`: the agent's next request is refused.
pub(crate) async fn revoke(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let Ok(id) = id.parse::<AgentId>() else {
        return session.failure(&ServiceError::NotFound, Some("/agents".into()));
    };
    let revoked = async {
        let key = IdempotencyKey::parse(&format!("dashboard-revoke-{id}"))?;
        app.purser
            .revoke_agent(&session.session.principal(), id, &key)
            .await
    }
    .await;
    match revoked {
        Ok(agent) => message(
            Some(&session.chrome),
            StatusCode::OK,
            "Agent revoked",
            format!(
                "{} can no longer pay or act for this wallet. Its payments in flight are refused.",
                agent.value.name
            ),
            Some("/agents".into()),
        ),
        Err(error) => session.failure(&error, Some("/agents".into())),
    }
}
