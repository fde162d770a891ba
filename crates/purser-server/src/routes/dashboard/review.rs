//! The pages a `signUrl` or `approvalUrl` leads to: the terms in plain words, and
//! (for the signed-in owner of the wallet) Approve / Reject. Anyone holding the
//! link may read it; deciding takes an owner's session and its CSRF token, so the
//! agent that drafted a mandate can never approve it.

use askama::Template;
use axum::Form;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use purser_service::{IdempotencyKey, MandateReview, ServiceError};
use purser_types::{
    Approval, ApprovalId, ApprovalStatus, MandateId, MandateStatus, PaymentKind, UnixMs,
};
use serde::Deserialize;

use super::format::{self, money};
use super::{Chrome, Session, load_session, message, page};
use crate::AppState;

/// A decision posted from a review page.
#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    csrf: String,
    decision: String,
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: String,
}

/// A key derived from what is decided, so resubmitting the form replays the first
/// decision instead of making another.
fn form_key(kind: &str, id: &str, decision: &str) -> Result<IdempotencyKey, ServiceError> {
    IdempotencyKey::parse(&format!("review-{kind}-{id}-{decision}"))
}

fn no_such(chrome: Option<&Chrome>, thing: &str) -> Response {
    message(
        chrome,
        StatusCode::NOT_FOUND,
        &format!("No such {thing}"),
        "Check the link you were given.".into(),
        None,
    )
}

#[derive(Template)]
#[template(path = "mandate_review.html")]
struct MandateReviewPage {
    chrome: Option<Chrome>,
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
    /// Pending, and the viewer is its wallet's signed-in owner.
    can_decide: bool,
    /// Signed, and the viewer is its wallet's signed-in owner.
    can_revoke: bool,
    /// Pending, and nobody is signed in: offer to sign in.
    sign_in_to_decide: Option<String>,
    csrf: String,
}

fn status_words(status: MandateStatus) -> &'static str {
    match status {
        MandateStatus::PendingSignature => "waiting for your signature",
        MandateStatus::Signed => "signed: payments inside these terms clear automatically",
        MandateStatus::Rejected => "rejected",
        MandateStatus::Revoked => "revoked",
        MandateStatus::Expired => "expired",
        MandateStatus::Exhausted => "budget used up",
    }
}

impl MandateReviewPage {
    fn new(review: MandateReview, session: Option<&Session>, path: &str) -> Self {
        let MandateReview {
            view,
            agent_name,
            wallet_name,
            agent_revoked,
        } = review;
        let terms = &view.mandate.terms;
        let owner = session.filter(|s| s.session.wallet == view.mandate.wallet_id);
        let offset = session.map_or(0, |s| s.session.zone_offset_minutes);
        let pending = view.status == MandateStatus::PendingSignature;
        MandateReviewPage {
            chrome: session.map(|s| s.chrome.clone()),
            mandate_id: view.mandate.id,
            agent_name,
            wallet_name,
            description: terms.description.clone(),
            category: terms.category.clone(),
            limit: money(terms.limit_amount),
            per_payment: terms.max_amount_per_tx.map(money),
            hosts: terms.host_allowlist.clone(),
            valid_from: format::local_time(terms.valid_from, offset),
            valid_until: format::local_time(terms.valid_until, offset),
            spent: money(view.mandate.spent_amount),
            pending_amount: money(view.mandate.pending_amount),
            remaining: money(view.remaining),
            status: view.status.as_str(),
            status_words: if agent_revoked && view.status == MandateStatus::Signed {
                "signed, but its agent was revoked: nothing more can be paid under it"
            } else {
                status_words(view.status)
            },
            can_decide: pending && !agent_revoked && owner.is_some(),
            can_revoke: view.status == MandateStatus::Signed && owner.is_some(),
            sign_in_to_decide: (pending && session.is_none())
                .then(|| format!("/signin?next={}", format::url_encode(path))),
            csrf: owner
                .map(|s| s.session.csrf_token.clone())
                .unwrap_or_default(),
        }
    }
}

/// `GET /mandates/{id}/review`.
pub(crate) async fn mandate(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = load_session(&app, &headers, uri.path()).await;
    let chrome = session.as_ref().map(|s| &s.chrome);
    let Ok(id) = id.parse::<MandateId>() else {
        return no_such(chrome, "mandate");
    };
    match app.purser.mandate_for_review(id).await {
        Ok(review) => page(
            StatusCode::OK,
            MandateReviewPage::new(review, session.as_ref(), uri.path()).render(),
        ),
        Err(error) => super::failure(chrome, &error, None),
    }
}

/// `POST /mandates/{id}/review`: approve (sign) or reject, as the signed-in owner.
pub(crate) async fn decide_mandate(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let back = Some(format!("/mandates/{id}/review"));
    let Ok(id) = id.parse::<MandateId>() else {
        return no_such(Some(&session.chrome), "mandate");
    };
    let principal = session.session.principal();
    let outcome = async {
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
    let chrome = Some(&session.chrome);
    match outcome {
        Ok(decided) if decided.value.status == MandateStatus::Rejected => message(
            chrome,
            StatusCode::OK,
            "Mandate rejected",
            "Nothing can be paid under it.".into(),
            back,
        ),
        Ok(decided) => message(
            chrome,
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
        Err(error) => session.failure(&error, back),
    }
}

/// `POST /mandates/{id}/revoke`: the owner withdraws a signed mandate.
pub(crate) async fn revoke_mandate(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let back = Some(format!("/mandates/{id}/review"));
    let Ok(id) = id.parse::<MandateId>() else {
        return no_such(Some(&session.chrome), "mandate");
    };
    let outcome = async {
        let key = form_key("mandate", &id.to_string(), "revoke")?;
        app.purser
            .revoke_mandate(&session.session.principal(), id, &key)
            .await
    }
    .await;
    match outcome {
        Ok(_) => message(
            Some(&session.chrome),
            StatusCode::OK,
            "Mandate revoked",
            "Nothing more can be paid under it; payments already made stay made.".into(),
            back,
        ),
        Err(error) => session.failure(&error, back),
    }
}

#[derive(Template)]
#[template(path = "approval_review.html")]
struct ApprovalReviewPage {
    chrome: Option<Chrome>,
    approval_id: ApprovalId,
    agent_name: String,
    amount: String,
    payee: String,
    purpose: String,
    created_at: String,
    expires_at: String,
    status: &'static str,
    can_decide: bool,
    sign_in_to_decide: Option<String>,
    refund: bool,
    csrf: String,
}

pub(crate) fn payee_words(host: Option<&String>, address: Option<&String>) -> String {
    [host, address]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ")
}

impl ApprovalReviewPage {
    fn new(
        approval: Approval,
        agent_name: String,
        now: UnixMs,
        session: Option<&Session>,
        path: &str,
    ) -> Self {
        let status = approval.status_at(now);
        let owner = session.filter(|s| s.session.wallet == approval.wallet_id);
        let offset = session.map_or(0, |s| s.session.zone_offset_minutes);
        let pending = status == ApprovalStatus::Pending;
        ApprovalReviewPage {
            chrome: session.map(|s| s.chrome.clone()),
            approval_id: approval.id,
            agent_name,
            amount: money(approval.amount),
            payee: payee_words(
                approval.payee.host.as_ref(),
                approval.payee.address.as_ref(),
            ),
            purpose: approval.purpose,
            created_at: format::local_time(approval.created_at, offset),
            expires_at: format::local_time(approval.expires_at, offset),
            status: status.as_str(),
            can_decide: pending && owner.is_some(),
            sign_in_to_decide: (pending && session.is_none())
                .then(|| format!("/signin?next={}", format::url_encode(path))),
            refund: approval.kind == PaymentKind::Refund,
            csrf: owner
                .map(|s| s.session.csrf_token.clone())
                .unwrap_or_default(),
        }
    }
}

/// `GET /approvals/{id}/review`: one payment to approve or deny.
pub(crate) async fn approval(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = load_session(&app, &headers, uri.path()).await;
    let chrome = session.as_ref().map(|s| &s.chrome);
    let Ok(id) = id.parse::<ApprovalId>() else {
        return no_such(chrome, "approval");
    };
    match app.purser.approval_for_review(id).await {
        Ok((approval, agent_name)) => page(
            StatusCode::OK,
            ApprovalReviewPage::new(
                approval,
                agent_name,
                app.purser.now(),
                session.as_ref(),
                uri.path(),
            )
            .render(),
        ),
        Err(error) => super::failure(chrome, &error, None),
    }
}

/// `POST /approvals/{id}/review`: approve or deny, as the signed-in owner.
pub(crate) async fn decide_approval(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let back = Some("/approvals".to_owned());
    let Ok(id) = id.parse::<ApprovalId>() else {
        return no_such(Some(&session.chrome), "approval");
    };
    let outcome = async {
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
            .decide_approval(&session.session.principal(), id, approve, &key)
            .await
    }
    .await;
    match outcome {
        Ok(decided) => {
            let words = if decided.value.status == ApprovalStatus::Approved {
                "Approved: the payment may go ahead, once."
            } else {
                "Denied: the payment will not be made."
            };
            message(
                Some(&session.chrome),
                StatusCode::OK,
                "Decision recorded",
                words.into(),
                back,
            )
        }
        Err(error) => session.failure(&error, back),
    }
}
