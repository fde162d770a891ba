//! The overview: balance, mandates in force with their budgets, the last seven
//! days' spend as a chart, where the money went, and the latest payments.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::{Overview, PaymentFilter};
use purser_types::{AgentStatus, Usdc};

use super::format::{budget_bar, money};
use super::lists::PaymentRow;
use super::{Chrome, Session, page};
use crate::AppState;

/// One mandate's budget, as a bar.
pub(crate) struct MandateBar {
    pub id: String,
    pub agent: String,
    pub description: String,
    pub limit: String,
    pub spent: String,
    pub pending: String,
    pub remaining: String,
    pub spent_pct: u64,
    pub pending_pct: u64,
    pub remaining_pct: u64,
    pub valid_until: String,
}

/// One day of the chart, laid out in the SVG's 700 × 220 box.
pub(crate) struct ChartBar {
    pub label: String,
    pub amount: String,
    pub x: u64,
    pub label_x: u64,
    pub y: u64,
    pub height: u64,
}

pub(crate) struct Destination {
    pub host: String,
    pub amount: String,
    pub payments: u64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Option<Chrome>,
    available: String,
    reserved: String,
    total: String,
    address: String,
    mandates: Vec<MandateBar>,
    chart: Vec<ChartBar>,
    week_total: String,
    destinations: Vec<Destination>,
    pending_approvals: usize,
    recent: Vec<PaymentRow>,
}

const CHART_BASE_Y: u64 = 190;
const CHART_HEIGHT: u64 = 160;

fn chart(overview: &Overview, chrome: &Chrome) -> Vec<ChartBar> {
    let max = overview
        .daily_spend
        .iter()
        .map(|d| d.atomic())
        .max()
        .unwrap_or(0)
        .max(1);
    overview
        .daily_spend
        .iter()
        .zip(0u64..)
        .map(|(amount, day)| {
            let height = u64::try_from(
                u128::from(amount.atomic()) * u128::from(CHART_HEIGHT) / u128::from(max),
            )
            .unwrap_or(CHART_HEIGHT);
            // A day with any spend shows at least a sliver.
            let height = if amount.is_zero() { 0 } else { height.max(2) };
            let start = overview
                .first_day_start
                .plus_millis(i64::try_from(day).unwrap_or(0) * 86_400_000);
            ChartBar {
                label: chrome.day(start),
                amount: money(*amount),
                x: 20 + day * 96,
                label_x: 20 + day * 96 + 32,
                y: CHART_BASE_Y - height,
                height,
            }
        })
        .collect()
}

/// `GET /`.
pub(crate) async fn overview(State(app): State<AppState>, session: Session) -> Response {
    let principal = session.session.principal();
    let everything = PaymentFilter::default();
    let loaded = tokio::try_join!(
        app.purser.overview(&session.session),
        app.purser.agents(&principal, session.session.wallet),
        app.purser.payments(&principal, &everything, None, 8),
    );
    let (overview, agents, recent) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return session.failure(&error, None),
    };
    let chrome = &session.chrome;
    let agent_name = |id| {
        agents
            .iter()
            .find(|a| a.id == id)
            .map_or_else(|| "an agent".to_owned(), |a| a.name.clone())
    };
    // A revoked agent's mandates pay nothing: they are not active, whatever their status.
    let agent_active = |id| {
        agents
            .iter()
            .any(|a| a.id == id && a.status == AgentStatus::Active)
    };
    let mandates = overview
        .active_mandates
        .iter()
        .filter(|view| agent_active(view.mandate.agent_id))
        .map(|view| {
            let m = &view.mandate;
            let (spent_pct, pending_pct, remaining_pct) =
                budget_bar(m.spent_amount, m.pending_amount, m.terms.limit_amount);
            MandateBar {
                id: m.id.to_string(),
                agent: agent_name(m.agent_id),
                description: m.terms.description.clone(),
                limit: money(m.terms.limit_amount),
                spent: money(m.spent_amount),
                pending: money(m.pending_amount),
                remaining: money(view.remaining),
                spent_pct,
                pending_pct,
                remaining_pct,
                valid_until: chrome.time(m.terms.valid_until),
            }
        })
        .collect();
    let week_total = overview
        .daily_spend
        .iter()
        .try_fold(Usdc::ZERO, |sum, day| sum.checked_add(*day))
        .unwrap_or(Usdc::ZERO);
    let balances = &overview.wallet.balances;
    let body = OverviewPage {
        chart: chart(&overview, chrome),
        available: money(balances.available),
        reserved: money(balances.reserved),
        total: money(balances.total),
        address: overview.wallet.wallet.address.clone(),
        mandates,
        week_total: money(week_total),
        destinations: overview
            .by_destination
            .iter()
            .map(|d| Destination {
                host: d
                    .host
                    .clone()
                    .unwrap_or_else(|| "addresses (payouts)".into()),
                amount: money(d.amount),
                payments: d.payments,
            })
            .collect(),
        pending_approvals: overview.pending_approvals,
        recent: recent
            .iter()
            .map(|p| PaymentRow::new(p, chrome, &agent_name(p.agent_id)))
            .collect(),
        chrome: Some(chrome.clone()),
    };
    page(StatusCode::OK, body.render())
}
