//! Errors on the wire: `{"error":{"code":"…","message":"…"}}` with a stable code
//! and an HTTP status derived from it. Internal details go to the log only.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use purser_service::ServiceError;
use purser_types::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code and a human-readable message.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, stable across versions.
    pub code: ErrorCode,
    /// For people; may change wording between versions.
    pub message: String,
}

/// An error a handler returns.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with a code and a message safe to show.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The error's stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let code = error.code();
        if code == ErrorCode::InternalError {
            tracing::error!(%error, "request failed");
        } else if matches!(
            code,
            ErrorCode::ServiceUnavailable | ErrorCode::ChainUnavailable
        ) {
            tracing::warn!(%error, "request could not be completed");
        }
        ApiError {
            code,
            message: error.public_message(),
        }
    }
}

/// The HTTP status for each stable code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidAmount
        | ErrorCode::UnsupportedCurrency
        | ErrorCode::IdempotencyKeyRequired => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated | ErrorCode::TokenExpired | ErrorCode::AgentRevoked => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::Forbidden | ErrorCode::SandboxDisabled => StatusCode::FORBIDDEN,
        // A payment the authorization path refused: the request was understood and
        // the caller is who they say, but this spending is not allowed.
        ErrorCode::MandateNotSigned
        | ErrorCode::MandateExpired
        | ErrorCode::MandateRevoked
        | ErrorCode::MandateBudgetExceeded
        | ErrorCode::HostNotAllowed
        | ErrorCode::PerTxCapExceeded
        | ErrorCode::PolicyDenied
        | ErrorCode::NoEligibleMandate
        | ErrorCode::ApprovalRequired
        | ErrorCode::ApprovalDenied
        | ErrorCode::ApprovalExpired
        | ErrorCode::ApprovalInvalid => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::MandateNotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidState => StatusCode::CONFLICT,
        ErrorCode::InvalidSignature => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::IdempotencyConflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::InsufficientFunds | ErrorCode::AmountOverflow => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::InvalidPaymentRequired => StatusCode::BAD_REQUEST,
        ErrorCode::NoAcceptableRequirement | ErrorCode::AmountAboveMax => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::ChainNotConfigured => StatusCode::CONFLICT,
        ErrorCode::PaymentLinkDisabled
        | ErrorCode::PaymentLinkExpired
        | ErrorCode::PaymentLinkExhausted => StatusCode::GONE,
        ErrorCode::RefundExceedsPayment => StatusCode::CONFLICT,
        // Only ever a payout's failure reason, never a request's answer.
        ErrorCode::ChainTransferFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::ServiceUnavailable | ErrorCode::ChainUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_an_error_status() {
        for code in ErrorCode::ALL {
            let status = status_of(*code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
        }
    }
}
