//! A small client for Purser's HTTP API, used by the CLI commands and the demo.

use std::time::Duration;

use purser_server::{ErrorBody, IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER, TokenResponse};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An API call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The server answered with an error.
    #[error("{code}: {message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The stable error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or the answer was unreadable.
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    /// The stable code, for API errors.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }
}

/// A response body and whether it replays an earlier idempotent request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Value,
    pub(crate) replayed: bool,
}

impl Answer {
    /// The body as a typed value.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| ClientError::Transport(format!("unexpected answer: {e}")))
    }
}

/// Talks to one server with one bearer token.
#[derive(Debug, Clone)]
pub(crate) struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    pub(crate) fn new(base: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// The same server with another token.
    pub(crate) fn with_token(&self, token: Option<String>) -> ApiClient {
        ApiClient {
            token,
            ..self.clone()
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.call(Method::GET, path, None::<&()>, None).await
    }

    /// A state-changing call; `key` is the idempotency key.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> Result<Answer, ClientError> {
        self.call(Method::POST, path, Some(body), Some(key)).await
    }

    /// A state-changing `PUT`; `key` is the idempotency key.
    pub(crate) async fn put(
        &self,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> Result<Answer, ClientError> {
        self.call(Method::PUT, path, Some(body), Some(key)).await
    }

    /// A `PATCH` (idempotent by nature: no key).
    pub(crate) async fn patch(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Answer, ClientError> {
        self.call(Method::PATCH, path, Some(body), None).await
    }

    /// Exchanges an agent credential for a JWT.
    pub(crate) async fn agent_token(
        &self,
        agent_id: &str,
        credential: &str,
    ) -> Result<TokenResponse, ClientError> {
        let body = serde_json::json!({ "agentId": agent_id, "credential": credential });
        self.call(Method::POST, "/api/agents/token", Some(&body), None)
            .await?
            .parse()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        key: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            ClientError::Transport(format!(
                "cannot reach the Purser server at {}: {e}",
                self.base
            ))
        })?;
        let status = response.status();
        let replayed = response
            .headers()
            .get(REPLAYED_HEADER)
            .is_some_and(|v| v == "true");
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            let body = serde_json::from_str(&text).map_err(|e| {
                ClientError::Transport(format!("the server sent invalid JSON: {e}"))
            })?;
            return Ok(Answer { body, replayed });
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(error) => Err(ClientError::Api {
                status,
                code: error.error.code.as_str().to_owned(),
                message: error.error.message,
            }),
            Err(_) => Err(ClientError::Transport(format!(
                "the server answered {status}: {text}"
            ))),
        }
    }
}

/// A fresh idempotency key for one CLI invocation.
pub(crate) fn new_idempotency_key() -> String {
    format!("cli-{}", uuid::Uuid::new_v4())
}
