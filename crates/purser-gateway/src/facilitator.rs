//! The gateway's client of an x402 facilitator: `/supported`, `/verify`, `/settle`
//! in the reference's shapes (Purser's server answers them at `/facilitator`).

use std::time::Duration;

use purser_types::x402::{SettleResponse, SupportedResponse, VerifyResponse};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why the facilitator gave no usable answer. The payer is never charged for it:
/// nothing is settled without the facilitator's success.
#[derive(Debug, thiserror::Error)]
pub enum FacilitatorError {
    /// The URL is not an http(s) URL.
    #[error("the facilitator URL {0:?} is not an http(s) URL")]
    BadUrl(String),
    /// Unreachable, too slow, or it answered something that is not the protocol.
    #[error("the facilitator at {url} gave no usable answer: {message}")]
    Unavailable {
        /// The URL called.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// An HTTP facilitator.
#[derive(Debug, Clone)]
pub struct FacilitatorClient {
    base: String,
    http: reqwest::Client,
}

impl FacilitatorClient {
    /// A client of the facilitator at `base_url` (e.g. `http://127.0.0.1:8080/facilitator`);
    /// each call may take up to `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<FacilitatorClient, FacilitatorError> {
        let parsed =
            url::Url::parse(base_url).map_err(|_| FacilitatorError::BadUrl(base_url.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FacilitatorError::BadUrl(base_url.into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| FacilitatorError::Unavailable {
                url: base_url.into(),
                message: e.to_string(),
            })?;
        Ok(FacilitatorClient {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// What it settles.
    pub async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let url = format!("{}/supported", self.base);
        self.read(&url, self.http.get(&url)).await
    }

    /// Asks whether `payment` pays `requirement` (both in the payment's version).
    pub async fn verify(
        &self,
        version: u8,
        payment: &Value,
        requirement: &Value,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.post("verify", version, payment, requirement).await
    }

    /// Settles `payment`.
    pub async fn settle(
        &self,
        version: u8,
        payment: &Value,
        requirement: &Value,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.post("settle", version, payment, requirement).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        action: &str,
        version: u8,
        payment: &Value,
        requirement: &Value,
    ) -> Result<T, FacilitatorError> {
        let url = format!("{}/{action}", self.base);
        let body = json!({"x402Version": version, "paymentPayload": payment, "paymentRequirements": requirement});
        self.read(&url, self.http.post(&url).json(&body)).await
    }

    async fn read<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, FacilitatorError> {
        let unavailable = |message: String| FacilitatorError::Unavailable {
            url: url.to_owned(),
            message,
        };
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}")));
        }
        response
            .json()
            .await
            .map_err(|e| unavailable(e.to_string()))
    }
}
