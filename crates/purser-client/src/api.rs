//! Talks to one Purser server as one principal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use purser_server::{ErrorBody, IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER, TokenResponse};
use purser_types::Secret;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

/// How long before its expiry a cached agent JWT is renewed.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// An API call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
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
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }
}

/// A response body and whether it replays an earlier idempotent request.
#[derive(Debug)]
pub struct Answer {
    /// The JSON body.
    pub body: Value,
    /// The server answered from its idempotency record.
    pub replayed: bool,
}

impl Answer {
    /// The body as a typed value.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| ClientError::Transport(format!("unexpected answer: {e}")))
    }
}

/// An agent's long-lived credential, exchanged for short-lived JWTs on demand.
#[derive(Debug)]
pub struct Login {
    agent_id: String,
    credential: Secret<String>,
    jwt: Mutex<Option<(Secret<String>, Instant)>>,
}

impl Login {
    /// A login for `agent_id` with its credential (`pcr_…`).
    pub fn new(agent_id: String, credential: Secret<String>) -> Login {
        Login {
            agent_id,
            credential,
            jwt: Mutex::new(None),
        }
    }
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(Arc<Secret<String>>),
    Agent(Arc<Login>),
}

/// Talks to one server as one principal (a bearer token, or an agent login).
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl ApiClient {
    /// A client of the server at `base`, sending `token` as the bearer.
    pub fn new(base: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth: Auth::None,
        }
        .with_token(token))
    }

    /// The HTTP client, built once per [`ApiClient::new`] and shared by its clones:
    /// paid fetches reuse it (with their own time limit) rather than building one
    /// per call, which would load the system's root certificates each time.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same server with another bearer token.
    pub fn with_token(&self, token: Option<String>) -> ApiClient {
        let auth = match token {
            Some(token) => Auth::Bearer(Arc::new(Secret::new(token))),
            None => Auth::None,
        };
        ApiClient {
            auth,
            ..self.clone()
        }
    }

    /// The same server as an agent logged in with its credential; the JWT is
    /// fetched on first use and renewed before it expires.
    pub fn with_login(&self, login: Login) -> ApiClient {
        ApiClient {
            auth: Auth::Agent(Arc::new(login)),
            ..self.clone()
        }
    }

    /// A `GET`.
    pub async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.call(Method::GET, path, None::<&()>, None).await
    }

    /// A state-changing call; `key` is the idempotency key.
    pub async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> Result<Answer, ClientError> {
        self.call(Method::POST, path, Some(body), Some(key)).await
    }

    /// A state-changing `PUT`; `key` is the idempotency key.
    pub async fn put(
        &self,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> Result<Answer, ClientError> {
        self.call(Method::PUT, path, Some(body), Some(key)).await
    }

    /// A `PATCH` (idempotent by nature: no key).
    pub async fn patch(&self, path: &str, body: &impl Serialize) -> Result<Answer, ClientError> {
        self.call(Method::PATCH, path, Some(body), None).await
    }

    /// Exchanges an agent credential for a JWT.
    pub async fn agent_token(
        &self,
        agent_id: &str,
        credential: &str,
    ) -> Result<TokenResponse, ClientError> {
        let body = serde_json::json!({ "agentId": agent_id, "credential": credential });
        self.send(Method::POST, "/api/agents/token", Some(&body), None, None)
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
        let Auth::Agent(login) = &self.auth else {
            let bearer = match &self.auth {
                Auth::Bearer(token) => Some(token.expose().as_str()),
                _ => None,
            };
            return self.send(method, path, body, key, bearer).await;
        };
        let jwt = self.login_jwt(login, false).await?;
        match self
            .send(method.clone(), path, body, key, Some(jwt.expose()))
            .await
        {
            // The server may have restarted with a new signing key, or the clock
            // moved: log in again once.
            Err(ClientError::Api { code, .. })
                if code == "token_expired" || code == "unauthenticated" =>
            {
                let jwt = self.login_jwt(login, true).await?;
                self.send(method, path, body, key, Some(jwt.expose())).await
            }
            other => other,
        }
    }

    /// The login's JWT: the cached one while it has a minute left, else a new one.
    async fn login_jwt(&self, login: &Login, renew: bool) -> Result<Secret<String>, ClientError> {
        let mut cached = login.jwt.lock().await;
        if let Some((jwt, renew_at)) = cached.as_ref()
            && !renew
            && Instant::now() < *renew_at
        {
            return Ok(jwt.clone());
        }
        let issued = self
            .agent_token(&login.agent_id, login.credential.expose())
            .await?;
        let lifetime = Duration::from_secs(issued.expires_in).saturating_sub(TOKEN_RENEW_MARGIN);
        let jwt = Secret::new(issued.token);
        *cached = Some((jwt.clone(), Instant::now() + lifetime));
        Ok(jwt)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        key: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
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

/// A fresh idempotency key for one logical operation.
pub fn new_idempotency_key() -> String {
    format!("cli-{}", uuid::Uuid::new_v4())
}
