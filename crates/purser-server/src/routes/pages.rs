//! The owner's review pages: where a `signUrl` or `approvalUrl` leads. Server-rendered,
//! no scripts, no external assets; deciding takes the owner token, so an agent that
//! knows the URL can read its own request but never approve it.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use purser_service::{IdempotencyKey, MandateReview, Principal, ServiceError, denial_message};
use purser_types::{Approval, ApprovalId, MandateId, MandateStatus, UnixMs};
use serde::Deserialize;

use crate::AppState;
use crate::error::status_of;

/// A strict policy: nothing but this server's stylesheet and forms to itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Wraps rendered HTML with the security headers every page carries.
fn page(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    let Ok(html) = body else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response();
    };
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message {
    heading: String,
    message: String,
    back: Option<String>,
}

fn message(status: StatusCode, heading: &str, message: String, back: Option<String>) -> Response {
    page(
        status,
        Message {
            heading: heading.into(),
            message,
            back,
        }
        .render(),
    )
}

/// The page for a review link whose id does not parse.
fn no_such(thing: &str) -> Response {
    message(
        StatusCode::NOT_FOUND,
        &format!("No such {thing}"),
        "Check the link you were given.".into(),
        None,
    )
}

fn failure(error: &ServiceError, back: Option<String>) -> Response {
    let text = match error {
        ServiceError::Denied(denial) => denial_message(*denial).to_owned(),
        other => other.public_message(),
    };
    message(status_of(error.code()), "That did not work", text, back)
}

/// The stylesheet the pages use (no CDN: the pages work offline).
pub(crate) async fn stylesheet() -> Response {
    let mut response = include_str!("../../assets/purser.css").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

fn utc(at: UnixMs) -> String {
    let text = at.to_rfc3339();
    text.get(..16)
        .map_or(text.clone(), |minutes| minutes.replace('T', " "))
}

#[derive(Template)]
#[template(path = "mandate_review.html")]
struct MandateReviewPage {
    mandate_id: MandateId,
    agent_name: String,
    wallet_name: String,
    description: String,
    category: Option<String>,
    limit: String,
    per_payment: Option<String>,
    hosts: Vec<String>,
    valid_from: String,
    valid_until: String,
    spent: String,
    pending_amount: String,
    remaining: String,
    status: &'static str,
    status_words: &'static str,
    pending_signature: bool,
}

impl MandateReviewPage {
    fn new(review: MandateReview) -> Self {
        let MandateReview {
            view,
            agent_name,
            wallet_name,
        } = review;
        let terms = &view.mandate.terms;
        let status_words = match view.status {
            MandateStatus::PendingSignature => "waiting for your signature",
            MandateStatus::Signed => "signed: payments inside these terms clear automatically",
            MandateStatus::Rejected => "rejected",
            MandateStatus::Revoked => "revoked",
            MandateStatus::Expired => "expired",
            MandateStatus::Exhausted => "budget used up",
        };
        MandateReviewPage {
            mandate_id: view.mandate.id,
            agent_name,
            wallet_name,
            description: terms.description.clone(),
            category: terms.category.clone(),
            limit: terms.limit_amount.to_string(),
            per_payment: terms.max_amount_per_tx.map(|c| c.to_string()),
            hosts: terms.host_allowlist.clone(),
            valid_from: utc(terms.valid_from),
            valid_until: utc(terms.valid_until),
            spent: view.mandate.spent_amount.to_string(),
            pending_amount: view.mandate.pending_amount.to_string(),
            remaining: view.remaining.to_string(),
            status: view.status.as_str(),
            status_words,
            pending_signature: view.status == MandateStatus::PendingSignature,
        }
    }
}

/// The owner's decision, posted from a review page.
#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    owner_token: String,
    decision: String,
}

/// Authenticates the token pasted into the form. Agent tokens authenticate, then
/// are refused by the decision itself (agents never approve).
async fn decider(app: &AppState, form: &DecisionForm) -> Result<Principal, ServiceError> {
    app.purser.authenticate(form.owner_token.trim()).await
}

/// A key derived from what is decided, so resubmitting the form replays the first
/// decision instead of making another.
fn form_key(kind: &str, id: &str, decision: &str) -> Result<IdempotencyKey, ServiceError> {
    IdempotencyKey::parse(&format!("review-{kind}-{id}-{decision}"))
}

/// `GET /mandates/{id}/review`: the terms in plain words, and Approve / Reject.
pub(crate) async fn mandate_review(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<MandateId>() else {
        return no_such("mandate");
    };
    match app.purser.mandate_for_review(id).await {
        Ok(review) => page(StatusCode::OK, MandateReviewPage::new(review).render()),
        Err(error) => failure(&error, None),
    }
}

/// `POST /mandates/{id}/review`: approve (sign) or reject with the owner token.
pub(crate) async fn mandate_decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let back = Some(format!("/mandates/{id}/review"));
    let Ok(id) = id.parse::<MandateId>() else {
        return no_such("mandate");
    };
    let outcome = async {
        let principal = decider(&app, &form).await?;
        let key = form_key("mandate", &id.to_string(), &form.decision)?;
        match form.decision.as_str() {
            "approve" => app.purser.approve_mandate(&principal, id, &key).await,
            "reject" => app.purser.reject_mandate(&principal, id, &key).await,
            _ => Err(ServiceError::InvalidRequest(
                "choose approve or reject".into(),
            )),
        }
    }
    .await;
    match outcome {
        Ok(decided) if decided.value.status == MandateStatus::Rejected => message(
            StatusCode::OK,
            "Mandate rejected",
            "Nothing can be paid under it.".into(),
            back,
        ),
        Ok(decided) => message(
            StatusCode::OK,
            "Mandate signed",
            format!(
                "Payments inside its terms now clear without asking you. Signature {}.",
                decided
                    .value
                    .mandate
                    .signature
                    .map(|s| s.signature)
                    .unwrap_or_default()
            ),
            back,
        ),
        Err(error) => failure(&error, back),
    }
}

#[derive(Template)]
#[template(path = "approval_review.html")]
struct ApprovalReviewPage {
    approval_id: ApprovalId,
    agent_name: String,
    amount: String,
    payee: String,
    purpose: String,
    created_at: String,
    expires_at: String,
    status: &'static str,
    pending: bool,
    refund: bool,
}

impl ApprovalReviewPage {
    fn new(approval: Approval, agent_name: String, now: UnixMs) -> Self {
        let status = approval.status_at(now);
        let payee = [approval.payee.host.clone(), approval.payee.address.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        ApprovalReviewPage {
            approval_id: approval.id,
            agent_name,
            amount: approval.amount.to_string(),
            payee,
            purpose: approval.purpose,
            created_at: utc(approval.created_at),
            expires_at: utc(approval.expires_at),
            status: status.as_str(),
            pending: status == purser_types::ApprovalStatus::Pending,
            refund: approval.kind == purser_types::PaymentKind::Refund,
        }
    }
}

/// `GET /approvals/{id}/review`: one payment to approve or deny.
pub(crate) async fn approval_review(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<ApprovalId>() else {
        return no_such("approval");
    };
    match app.purser.approval_for_review(id).await {
        Ok((approval, agent_name)) => page(
            StatusCode::OK,
            ApprovalReviewPage::new(approval, agent_name, app.purser.now()).render(),
        ),
        Err(error) => failure(&error, None),
    }
}

/// `POST /approvals/{id}/review`: approve or deny with the owner token.
pub(crate) async fn approval_decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let back = Some(format!("/approvals/{id}/review"));
    let Ok(id) = id.parse::<ApprovalId>() else {
        return no_such("approval");
    };
    let outcome = async {
        let principal = decider(&app, &form).await?;
        let key = form_key("approval", &id.to_string(), &form.decision)?;
        let approve = match form.decision.as_str() {
            "approve" => true,
            "deny" => false,
            _ => {
                return Err(ServiceError::InvalidRequest(
                    "choose approve or deny".into(),
                ));
            }
        };
        app.purser
            .decide_approval(&principal, id, approve, &key)
            .await
    }
    .await;
    match outcome {
        Ok(decided) => {
            let words = if decided.value.status == purser_types::ApprovalStatus::Approved {
                "Approved: the payment may go ahead, once."
            } else {
                "Denied: the payment will not be made."
            };
            message(StatusCode::OK, "Decision recorded", words.into(), back)
        }
        Err(error) => failure(&error, back),
    }
}
