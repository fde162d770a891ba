//! The listing pages: mandates, the approval queue, payments, payouts, payment
//! links with their received payments, and the audit log.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::{AuditStatus, Page, PaymentCursor, PaymentFilter};
use purser_types::{
    Agent, AgentId, MandateStatus, PaymentKind, PaymentLinkId, PayoutStatus, Reservation,
    ReservationStatus,
};
use serde::Deserialize;

use super::format::{self, money};
use super::review::payee_words;
use super::{Chrome, Session, page};
use crate::AppState;

const PAGE_SIZE: u32 = 50;

/// One payment in a table.
pub(crate) struct PaymentRow {
    pub id: String,
    pub at: String,
    pub agent: String,
    pub kind: &'static str,
    pub payee: String,
    pub purpose: String,
    pub amount: String,
    pub status: &'static str,
    pub mandate: Option<String>,
}

impl PaymentRow {
    pub(crate) fn new(payment: &Reservation, chrome: &Chrome, agent: &str) -> Self {
        PaymentRow {
            id: payment.id.to_string(),
            at: chrome.time(payment.created_at),
            agent: agent.to_owned(),
            kind: payment.kind.as_str(),
            payee: payee_words(payment.payee.host.as_ref(), payment.payee.address.as_ref()),
            purpose: payment.purpose.clone(),
            amount: money(payment.amount),
            status: payment.status.as_str(),
            mandate: payment.mandate_id.map(|m| m.to_string()),
        }
    }
}

/// An option of a filter's `<select>`.
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(values: &[&'static str], current: Option<&str>) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: (*v).to_owned(),
            label: v.replace('_', " "),
            selected: current == Some(*v),
        })
        .collect()
}

fn agent_choices(agents: &[Agent], current: Option<AgentId>) -> Vec<Choice> {
    agents
        .iter()
        .map(|a| Choice {
            value: a.id.to_string(),
            label: a.name.clone(),
            selected: current == Some(a.id),
        })
        .collect()
}

fn agent_name(agents: &[Agent], id: AgentId) -> String {
    agents
        .iter()
        .find(|a| a.id == id)
        .map_or_else(|| id.to_string(), |a| a.name.clone())
}

/// An empty filter field is no filter.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

// ---- mandates ----

/// `?status=&agent=&before=` on the mandates page.
#[derive(Debug, Deserialize)]
pub(crate) struct MandateQuery {
    status: Option<String>,
    agent: Option<String>,
    before: Option<i64>,
}

pub(crate) struct MandateRow {
    pub id: String,
    pub agent: String,
    pub description: String,
    pub status: &'static str,
    pub limit: String,
    pub spent: String,
    pub remaining: String,
    pub created: String,
    pub pending: bool,
}

#[derive(Template)]
#[template(path = "mandates.html")]
struct MandatesPage {
    chrome: Option<Chrome>,
    rows: Vec<MandateRow>,
    statuses: Vec<Choice>,
    agents: Vec<Choice>,
    older: Option<String>,
}

const MANDATE_STATUSES: &[&str] = &[
    "pending_signature",
    "signed",
    "expired",
    "exhausted",
    "rejected",
    "revoked",
];

/// `GET /mandates`.
pub(crate) async fn mandates(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<MandateQuery>,
) -> Response {
    let principal = session.session.principal();
    let status = given(&query.status).and_then(MandateStatus::parse_stored);
    let agent = given(&query.agent).and_then(|a| a.parse::<AgentId>().ok());
    let page_of = Page {
        limit: PAGE_SIZE,
        before: query.before,
    };
    let loaded = tokio::try_join!(
        app.purser.mandates_of(&principal, status, agent, page_of),
        app.purser.agents(&principal, session.session.wallet),
    );
    let (mandates, agents) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let chrome = &session.chrome;
    let older = (mandates.len() == PAGE_SIZE as usize).then(|| {
        let last = mandates.last().map_or(0, |m| m.mandate.created_at.millis());
        format!(
            "/mandates?status={}&agent={}&before={last}",
            format::url_encode(given(&query.status).unwrap_or("")),
            format::url_encode(given(&query.agent).unwrap_or(""))
        )
    });
    let rows = mandates
        .iter()
        .map(|view| MandateRow {
            id: view.mandate.id.to_string(),
            agent: agent_name(&agents, view.mandate.agent_id),
            description: view.mandate.terms.description.clone(),
            status: view.status.as_str(),
            limit: money(view.mandate.terms.limit_amount),
            spent: money(view.mandate.spent_amount),
            remaining: money(view.remaining),
            created: chrome.time(view.mandate.created_at),
            pending: view.status == MandateStatus::PendingSignature,
        })
        .collect();
    let body = MandatesPage {
        chrome: Some(chrome.clone()),
        rows,
        statuses: choices(MANDATE_STATUSES, status.map(MandateStatus::as_str)),
        agents: agent_choices(&agents, agent),
        older,
    };
    page(StatusCode::OK, body.render())
}

// ---- approvals ----

pub(crate) struct ApprovalRow {
    pub id: String,
    pub agent: String,
    pub amount: String,
    pub payee: String,
    pub purpose: String,
    pub asked: String,
    pub expires: String,
    pub status: &'static str,
    pub pending: bool,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    chrome: Option<Chrome>,
    pending: Vec<ApprovalRow>,
    recent: Vec<ApprovalRow>,
    csrf: String,
}

/// `GET /approvals`: the queue of payments waiting for the owner, and the latest
/// decisions.
pub(crate) async fn approvals(State(app): State<AppState>, session: Session) -> Response {
    let principal = session.session.principal();
    let loaded = tokio::try_join!(
        app.purser.approvals(
            &principal,
            false,
            Page {
                limit: 100,
                before: None
            }
        ),
        app.purser.agents(&principal, session.session.wallet),
    );
    let (approvals, agents) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let chrome = &session.chrome;
    let now = app.purser.now();
    let rows = approvals.iter().map(|a| {
        let status = a.status_at(now);
        ApprovalRow {
            id: a.id.to_string(),
            agent: agent_name(&agents, a.agent_id),
            amount: money(a.amount),
            payee: payee_words(a.payee.host.as_ref(), a.payee.address.as_ref()),
            purpose: a.purpose.clone(),
            asked: chrome.time(a.created_at),
            expires: chrome.time(a.expires_at),
            status: status.as_str(),
            pending: status == purser_types::ApprovalStatus::Pending,
        }
    });
    let (pending, recent): (Vec<_>, Vec<_>) = rows.partition(|r| r.pending);
    let body = ApprovalsPage {
        chrome: Some(chrome.clone()),
        pending,
        recent: recent.into_iter().take(20).collect(),
        csrf: chrome.csrf.clone(),
    };
    page(StatusCode::OK, body.render())
}

// ---- payments ----

/// Filters of the payments page.
#[derive(Debug, Deserialize)]
pub(crate) struct PaymentQuery {
    agent: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    host: Option<String>,
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "payments.html")]
struct PaymentsPage {
    chrome: Option<Chrome>,
    rows: Vec<PaymentRow>,
    agents: Vec<Choice>,
    statuses: Vec<Choice>,
    kinds: Vec<Choice>,
    host: String,
    older: Option<String>,
    paged: bool,
}

const PAYMENT_STATUSES: &[&str] = &["held", "committed", "released"];
const PAYMENT_KINDS: &[&str] = &["x402", "payout", "refund"];

/// `GET /payments`: every payment the agents made (held, committed or released),
/// filtered, fifty to a page.
pub(crate) async fn payments(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<PaymentQuery>,
) -> Response {
    let principal = session.session.principal();
    let agent = given(&query.agent).and_then(|a| a.parse::<AgentId>().ok());
    let status = given(&query.status).and_then(ReservationStatus::parse);
    let kind = given(&query.kind).and_then(PaymentKind::parse);
    let host = given(&query.host).map(str::to_ascii_lowercase);
    let filter = PaymentFilter {
        agent,
        status: status.map(ReservationStatus::as_str),
        kind: kind.map(PaymentKind::as_str),
        host: host.clone(),
    };
    let before = given(&query.before).and_then(|c| c.parse::<PaymentCursor>().ok());
    let loaded = tokio::try_join!(
        app.purser.payments(&principal, &filter, before, PAGE_SIZE),
        app.purser.agents(&principal, session.session.wallet),
    );
    let (payments, agents) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let chrome = &session.chrome;
    let older = (payments.len() == PAGE_SIZE as usize)
        .then(|| payments.last().map(PaymentCursor::after))
        .flatten()
        .map(|cursor| {
            format!(
                "/payments?agent={}&status={}&kind={}&host={}&before={cursor}",
                format::url_encode(given(&query.agent).unwrap_or("")),
                format::url_encode(given(&query.status).unwrap_or("")),
                format::url_encode(given(&query.kind).unwrap_or("")),
                format::url_encode(host.as_deref().unwrap_or("")),
            )
        });
    let body = PaymentsPage {
        chrome: Some(chrome.clone()),
        rows: payments
            .iter()
            .map(|p| PaymentRow::new(p, chrome, &agent_name(&agents, p.agent_id)))
            .collect(),
        agents: agent_choices(&agents, agent),
        statuses: choices(PAYMENT_STATUSES, filter.status),
        kinds: choices(PAYMENT_KINDS, filter.kind),
        host: host.unwrap_or_default(),
        older,
        paged: before.is_some(),
    };
    page(StatusCode::OK, body.render())
}

// ---- payouts ----

/// Filters of the payouts page.
#[derive(Debug, Deserialize)]
pub(crate) struct PayoutQuery {
    status: Option<String>,
    before: Option<i64>,
}

pub(crate) struct PayoutRow {
    pub id: String,
    pub at: String,
    pub agent: String,
    pub to: String,
    pub amount: String,
    pub rail: &'static str,
    pub status: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "payouts.html")]
struct PayoutsPage {
    chrome: Option<Chrome>,
    rows: Vec<PayoutRow>,
    statuses: Vec<Choice>,
    older: Option<String>,
    paged: bool,
}

const PAYOUT_STATUSES: &[&str] = &[
    "pending_authorization",
    "authorized",
    "succeeded",
    "failed",
    "expired",
];

/// `GET /payouts`.
pub(crate) async fn payouts(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<PayoutQuery>,
) -> Response {
    let principal = session.session.principal();
    let status = given(&query.status).and_then(PayoutStatus::parse);
    let loaded = tokio::try_join!(
        app.purser.payouts(
            &principal,
            status,
            Page {
                limit: PAGE_SIZE,
                before: query.before
            }
        ),
        app.purser.agents(&principal, session.session.wallet),
    );
    let (payouts, agents) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let chrome = &session.chrome;
    let older = (payouts.len() == PAGE_SIZE as usize).then(|| {
        let last = payouts.last().map_or(0, |p| p.created_at.millis());
        format!(
            "/payouts?status={}&before={last}",
            format::url_encode(status.map_or("", PayoutStatus::as_str))
        )
    });
    let rows = payouts
        .iter()
        .map(|p| PayoutRow {
            id: p.id.as_str().to_owned(),
            at: chrome.time(p.created_at),
            agent: agent_name(&agents, p.agent_id),
            to: p.to_address.clone(),
            amount: money(p.amount),
            rail: match p.rail {
                purser_types::Rail::Ledger => "ledger",
                purser_types::Rail::External => "external",
            },
            status: p.status.as_str(),
            detail: p
                .failure_reason
                .map(|code| code.as_str().to_owned())
                .or_else(|| p.settlement.clone())
                .unwrap_or_default(),
        })
        .collect();
    let body = PayoutsPage {
        chrome: Some(chrome.clone()),
        rows,
        statuses: choices(PAYOUT_STATUSES, status.map(PayoutStatus::as_str)),
        older,
        paged: query.before.is_some(),
    };
    page(StatusCode::OK, body.render())
}

// ---- payment links ----

pub(crate) struct LinkRow {
    pub id: String,
    pub description: String,
    pub amount: String,
    pub uses: String,
    pub status: &'static str,
    pub pay_url: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "links.html")]
struct LinksPage {
    chrome: Option<Chrome>,
    rows: Vec<LinkRow>,
}

fn link_row(view: &purser_service::LinkView, chrome: &Chrome) -> LinkRow {
    let link = &view.link;
    LinkRow {
        id: link.id.to_string(),
        description: link.description.clone(),
        amount: money(link.amount),
        uses: match link.max_uses {
            Some(max) => format!("{} of {max}", link.uses_count),
            None => link.uses_count.to_string(),
        },
        status: link.status.as_str(),
        pay_url: view.pay_url.clone(),
        created: chrome.time(link.created_at),
    }
}

/// `GET /links`: the wallet's payment links.
pub(crate) async fn links(State(app): State<AppState>, session: Session) -> Response {
    let principal = session.session.principal();
    match app
        .purser
        .links(
            &principal,
            Page {
                limit: 200,
                before: None,
            },
        )
        .await
    {
        Ok(links) => {
            let rows = links.iter().map(|v| link_row(v, &session.chrome)).collect();
            page(
                StatusCode::OK,
                LinksPage {
                    chrome: Some(session.chrome.clone()),
                    rows,
                }
                .render(),
            )
        }
        Err(error) => session.failure(&error, None),
    }
}

pub(crate) struct ReceivedRow {
    pub id: String,
    pub at: String,
    pub payer: String,
    pub amount: String,
    pub refunded: String,
    pub network: String,
    pub status: &'static str,
    pub transaction: String,
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    chrome: Option<Chrome>,
    link: LinkRow,
    received: Vec<ReceivedRow>,
}

/// `GET /links/{id}`: one link and the payments it received.
pub(crate) async fn link(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let principal = session.session.principal();
    let Ok(id) = id.parse::<PaymentLinkId>() else {
        return session.failure(
            &purser_service::ServiceError::NotFound,
            Some("/links".into()),
        );
    };
    let loaded = tokio::try_join!(
        app.purser.link(&principal, id),
        app.purser.received_payments(
            &principal,
            Some(id),
            Page {
                limit: 200,
                before: None
            }
        ),
    );
    let (view, received) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, Some("/links".into())),
    };
    let chrome = &session.chrome;
    let received = received
        .iter()
        .map(|r| ReceivedRow {
            id: r.id.to_string(),
            at: chrome.time(r.created_at),
            payer: r.payer.clone(),
            amount: money(r.amount),
            refunded: money(r.refunded_amount),
            network: r.network.clone(),
            status: r.status.as_str(),
            transaction: r.transaction.clone().unwrap_or_default(),
        })
        .collect();
    let body = LinkPage {
        chrome: Some(chrome.clone()),
        link: link_row(&view, chrome),
        received,
    };
    page(StatusCode::OK, body.render())
}

// ---- audit ----

/// `?before=` on the audit page (a record's seq).
#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    before: Option<i64>,
}

pub(crate) struct AuditRow {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub hash: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Option<Chrome>,
    rows: Vec<AuditRow>,
    intact: bool,
    checking: bool,
    verified_records: u64,
    break_words: String,
    checked: String,
    older: Option<String>,
}

/// `GET /audit`: the wallet's audit records, and whether the server's chain holds.
pub(crate) async fn audit(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Response {
    let principal = session.session.principal();
    let loaded = tokio::try_join!(
        app.purser.audit(
            &principal,
            session.session.wallet,
            Page {
                limit: PAGE_SIZE,
                before: query.before
            }
        ),
        app.purser.audit_status_now(),
    );
    let (records, status): (_, AuditStatus) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let chrome = &session.chrome;
    let older = (records.len() == PAGE_SIZE as usize)
        .then(|| records.last().map(|r| format!("/audit?before={}", r.seq)))
        .flatten();
    let rows = records
        .iter()
        .map(|r| AuditRow {
            seq: r.seq,
            at: chrome.time(r.at),
            actor: r.event.actor.to_string(),
            action: r.event.action.clone(),
            subject: r.event.subject.clone(),
            details: r.event.details.clone(),
            hash: r.hash.to_string().get(..16).unwrap_or("").to_owned(),
        })
        .collect();
    let body = AuditPage {
        chrome: Some(chrome.clone()),
        rows,
        intact: status.broken.is_none(),
        checking: status.checking,
        verified_records: status.verified_records,
        break_words: status.broken.map(|b| b.to_string()).unwrap_or_default(),
        checked: chrome.time(status.checked_at),
        older,
    };
    page(StatusCode::OK, body.render())
}
