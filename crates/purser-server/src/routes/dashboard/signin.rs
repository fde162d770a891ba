//! Signing in (owner token, or wallet id and password) and out.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use purser_service::{SESSION_TTL_MS, ServiceError, SignIn};
use purser_types::{Secret, WalletId};
use serde::Deserialize;

use super::{Chrome, SESSION_COOKIE, SIGNIN_COOKIE, Session, cookie, local_path, page};
use crate::AppState;
use crate::error::status_of;

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Option<Chrome>,
    csrf: String,
    next: String,
    error: Option<String>,
    wallet_id: String,
}

/// `?next=` on the sign-in page.
#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The sign-in form. Not `Debug`: it carries secrets.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    csrf: String,
    method: String,
    #[serde(default)]
    owner_token: String,
    #[serde(default)]
    wallet_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    zone_offset: String,
    #[serde(default)]
    next: String,
}

fn secure(app: &AppState) -> bool {
    app.purser.public_url().starts_with("https://")
}

/// Adds a `Set-Cookie` every dashboard cookie shares the attributes of: `HttpOnly`,
/// `SameSite=Strict`, and `Secure` when asked. A `max_age_secs` of 0 clears it.
fn set_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: i64,
    secure: bool,
) {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn render_form(
    app: &AppState,
    status: StatusCode,
    next: String,
    error: Option<String>,
    wallet_id: String,
) -> Response {
    let Ok(csrf) = app.purser.new_form_token() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response();
    };
    let mut response = page(
        status,
        SignInPage {
            chrome: None,
            csrf: csrf.clone(),
            next,
            error,
            wallet_id,
        }
        .render(),
    );
    // The form's token also lives in a cookie only this site's pages send back:
    // a sign-in posted from another site carries no matching pair.
    set_cookie(
        &mut response,
        SIGNIN_COOKIE,
        &csrf,
        "/signin",
        1800,
        secure(app),
    );
    response
}

/// `GET /signin`.
pub(crate) async fn form(State(app): State<AppState>, Query(query): Query<NextQuery>) -> Response {
    render_form(
        &app,
        StatusCode::OK,
        local_path(query.next.as_deref()),
        None,
        String::new(),
    )
}

/// `POST /signin`: on success the session cookie is set and the browser goes on to
/// `next`; on failure the form comes back with the reason.
pub(crate) async fn sign_in(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = local_path(Some(form.next.as_str()));
    let again = |status, error: String| {
        render_form(
            &app,
            status,
            next.clone(),
            Some(error),
            form.wallet_id.trim().to_owned(),
        )
    };
    if cookie(&headers, SIGNIN_COOKIE).is_none_or(|expected| expected != form.csrf) {
        return again(StatusCode::FORBIDDEN, "The form expired. Try again.".into());
    }
    let zone_offset = form.zone_offset.trim().parse::<i32>().unwrap_or(0);
    let outcome = match form.method.as_str() {
        "token" => {
            let token = Secret::new(form.owner_token.trim().to_owned());
            app.purser
                .sign_in(SignIn::OwnerToken(&token), zone_offset)
                .await
        }
        "password" => match form.wallet_id.trim().parse::<WalletId>() {
            Ok(wallet) => {
                let password = Secret::new(form.password.clone());
                app.purser
                    .sign_in(
                        SignIn::Password {
                            wallet,
                            password: &password,
                        },
                        zone_offset,
                    )
                    .await
            }
            Err(_) => Err(ServiceError::Unauthenticated(
                "the wallet id or password is not valid",
            )),
        },
        _ => Err(ServiceError::InvalidRequest("choose how to sign in".into())),
    };
    match outcome {
        Ok((_, value)) => {
            let mut response = Redirect::to(&next).into_response();
            let max_age_secs = SESSION_TTL_MS / 1000;
            set_cookie(
                &mut response,
                SESSION_COOKIE,
                value.expose(),
                "/",
                max_age_secs,
                secure(&app),
            );
            set_cookie(&mut response, SIGNIN_COOKIE, "", "/signin", 0, false);
            response
        }
        Err(error) => {
            let status = status_of(error.code());
            let text = error.public_message();
            let mut chars = text.chars();
            let sentence = chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default();
            again(status, format!("{sentence}."))
        }
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignOutForm {
    csrf: String,
}

/// `POST /signout`: clears the session cookie.
pub(crate) async fn sign_out(session: Session, Form(form): Form<SignOutForm>) -> Response {
    if let Some(refused) = session.csrf_refusal(&form.csrf) {
        return refused;
    }
    let mut response = Redirect::to("/signin").into_response();
    set_cookie(&mut response, SESSION_COOKIE, "", "/", 0, false);
    response
}
