//! Request extractors whose failures answer in the API's error format.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use purser_service::Page;
use purser_service::{IdempotencyKey, Principal, ServiceError};
use purser_types::ErrorCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::ApiError;

/// The header that carries idempotency keys.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The authenticated caller, from `Authorization: Bearer …`; an agent's revocation
/// is read from storage first.
pub(crate) struct Auth(pub Principal);

/// The caller of a payment route: the token is verified, and an agent's revocation
/// is checked by the committer, locked, as part of deciding the payment.
pub(crate) struct PaymentAuth(pub Principal);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "send Authorization: Bearer <token>",
            )
        })?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "the Authorization scheme must be Bearer",
            )
        })
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Auth(state.purser.authenticate(bearer(parts)?).await?))
    }
}

impl FromRequestParts<AppState> for PaymentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(PaymentAuth(
            state
                .purser
                .authenticate_for_payment(bearer(parts)?)
                .await?,
        ))
    }
}

/// The request's `Idempotency-Key`, required on every state-changing route.
pub(crate) struct IdemKey(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .ok_or(ServiceError::IdempotencyKeyRequired)?;
        let text = value
            .to_str()
            .map_err(|_| ServiceError::IdempotencyKeyRequired)?;
        Ok(IdemKey(IdempotencyKey::parse(text)?))
    }
}

/// JSON bodies, with rejections in the API's format.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large");
    }
    let message = match &rejection {
        JsonRejection::JsonDataError(e) => {
            let detail = e.body_text();
            let detail = detail
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&detail);
            format!("invalid request body: {detail}")
        }
        JsonRejection::JsonSyntaxError(_) => "the request body is not valid JSON".to_owned(),
        JsonRejection::MissingJsonContentType(_) => {
            "send Content-Type: application/json".to_owned()
        }
        _ => "the request body could not be read".to_owned(),
    };
    // Every AmountError message starts with "USDC amount".
    let code = if message.contains("USDC amount") {
        ErrorCode::InvalidAmount
    } else {
        ErrorCode::InvalidRequest
    };
    ApiError::new(code, message)
}

/// Path parameters, with rejections in the API's format.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e: PathRejection| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}

/// `?limit=&before=` on listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// At most this many items (1-500, default 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub before: Option<i64>,
}

impl PageQuery {
    /// The store's page.
    pub(crate) fn page(&self) -> Page {
        Page {
            limit: self.limit.unwrap_or(50),
            before: self.before,
        }
    }
}

/// Query strings, with rejections in the API's format.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e: QueryRejection| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}
