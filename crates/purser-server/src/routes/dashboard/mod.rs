//! The owner's dashboard, served at `/`: server-rendered pages (askama), a
//! stylesheet and one small script from this server, nothing from elsewhere.
//!
//! Safety: a signed session in an `HttpOnly`, `SameSite=Strict` cookie names an
//! owner (agents cannot sign in); every form carries the session's CSRF token and
//! every POST checks it; every page carries a strict Content-Security-Policy. GETs
//! never change anything.

mod agents;
mod format;
mod lists;
mod overview;
mod review;
mod settings;
mod signin;

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use purser_service::{OwnerSession, ServiceError, denial_message};

use crate::AppState;
use crate::error::status_of;

pub(crate) use format::Chrome;

/// The session cookie.
const SESSION_COOKIE: &str = "purser_session";
/// The sign-in form's own CSRF cookie (there is no session yet to hold one).
const SIGNIN_COOKIE: &str = "purser_signin";

/// Pages may load this server's stylesheet, script and images, and post forms to it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/signin", get(signin::form).post(signin::sign_in))
        .route("/signout", post(signin::sign_out))
        .route("/agents", get(agents::list).post(agents::add))
        .route(
            "/agents/{agent_id}/revoke",
            get(agents::confirm_revoke).post(agents::revoke),
        )
        .route("/mandates", get(lists::mandates))
        .route(
            "/mandates/{mandate_id}/review",
            get(review::mandate).post(review::decide_mandate),
        )
        .route(
            "/mandates/{mandate_id}/revoke",
            post(review::revoke_mandate),
        )
        .route("/approvals", get(lists::approvals))
        .route(
            "/approvals/{approval_id}/review",
            get(review::approval).post(review::decide_approval),
        )
        .route("/payments", get(lists::payments))
        .route("/payouts", get(lists::payouts))
        .route("/links", get(lists::links))
        .route("/links/{link_id}", get(lists::link))
        .route("/audit", get(lists::audit))
        .route("/settings", get(settings::show).post(settings::save))
        .route("/assets/purser.css", get(stylesheet))
        .route("/assets/dashboard.js", get(script))
}

/// Wraps rendered HTML with the security headers every page carries.
pub(crate) fn page(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    let Ok(html) = body else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response();
    };
    let mut response = (status, html).into_response();
    secure_headers(response.headers_mut());
    response
}

fn secure_headers(headers: &mut HeaderMap) {
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
}

async fn stylesheet() -> Response {
    asset(
        include_str!("../../../assets/purser.css"),
        "text/css; charset=utf-8",
    )
}

async fn script() -> Response {
    asset(
        include_str!("../../../assets/dashboard.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[derive(askama::Template)]
#[template(path = "message.html")]
struct Message<'a> {
    chrome: Option<&'a Chrome>,
    heading: String,
    message: String,
    back: Option<String>,
}

/// A page with one message (a result, or why something did not work).
pub(crate) fn message(
    chrome: Option<&Chrome>,
    status: StatusCode,
    heading: &str,
    text: String,
    back: Option<String>,
) -> Response {
    page(
        status,
        askama::Template::render(&Message {
            chrome,
            heading: heading.into(),
            message: text,
            back,
        }),
    )
}

/// The page for a failed request: what went wrong in words, with the code's status.
pub(crate) fn failure(
    chrome: Option<&Chrome>,
    error: &ServiceError,
    back: Option<String>,
) -> Response {
    let text = match error {
        ServiceError::Denied(denial) => denial_message(*denial).to_owned(),
        other => other.public_message(),
    };
    message(
        chrome,
        status_of(error.code()),
        "That did not work",
        text,
        back,
    )
}

/// The signed-in owner of a dashboard request. A request without a valid session
/// is sent to the sign-in page (and back here after).
pub(crate) struct Session {
    pub session: OwnerSession,
    pub chrome: Chrome,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let back = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |u| u.0.clone());
        match load_session(app, &parts.headers, back.path()).await {
            Some(session) => Ok(session),
            None => {
                let next = back.path_and_query().map_or("/", |p| p.as_str());
                Err(
                    Redirect::to(&format!("/signin?next={}", format::url_encode(next)))
                        .into_response(),
                )
            }
        }
    }
}

/// The request's session, if it carries a valid one for a wallet that exists.
pub(crate) async fn load_session(
    app: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Option<Session> {
    let value = cookie(headers, SESSION_COOKIE)?;
    let session = app.purser.open_session(value).ok()?;
    // The wallet must still exist, and its name heads every page.
    let wallet = app
        .purser
        .wallet_record(&session.principal(), session.wallet)
        .await
        .ok()?;
    let chrome = Chrome::new(&session, wallet.name, path);
    Some(Session { session, chrome })
}

/// The value of one cookie of the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl Session {
    /// The refusal of a form whose CSRF token is not this session's, if it is not.
    pub(crate) fn csrf_refusal(&self, token: &str) -> Option<Response> {
        (!self.session.csrf_matches(token)).then(|| {
            message(
                Some(&self.chrome),
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is from an older session or another site. Reload the page and try again.".into(),
                None,
            )
        })
    }

    /// The failure page, inside this session's chrome.
    pub(crate) fn failure(&self, error: &ServiceError, back: Option<String>) -> Response {
        failure(Some(&self.chrome), error, back)
    }
}

/// Where to go after signing in: a local path only (never another site).
pub(crate) fn local_path(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
        .to_owned()
}
