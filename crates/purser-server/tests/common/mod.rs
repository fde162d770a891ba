//! A real server on a loopback port, over a real database, for HTTP tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::Arc;

use purser_chain::client::ChainClient;
use purser_core::{Clock, SystemClock};
use purser_server::ServerConfig;
use purser_service::{Purser, ServiceConfig};
use purser_signer::MasterKey;
use purser_store::Backend;
use purser_testkit::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub base: String,
    pub purser: Purser,
    pub db: TestDb,
    pub http: reqwest::Client,
    master_hex: String,
    config: ServerConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A response: status, replay flag and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub replayed: bool,
    pub body: Value,
}

impl Reply {
    /// Asserts this is the error with this status and code.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "{:?}",
            self.body
        );
    }

    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, Arc::new(SystemClock), ServerConfig::default()).await
    }

    pub async fn start_with(
        backend: Backend,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> TestServer {
        TestServer::start_full(backend, clock, config, None).await
    }

    /// A server whose wallets live on `chain`.
    pub async fn start_on_chain(backend: Backend, chain: Arc<ChainClient>) -> TestServer {
        let clock = Arc::new(SystemClock);
        TestServer::start_full(backend, clock, ServerConfig::default(), Some(chain)).await
    }

    async fn start_full(
        backend: Backend,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        chain: Option<Arc<ChainClient>>,
    ) -> TestServer {
        let db = TestDb::new(backend).await;
        let store = db.open().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let master_hex = purser_testkit::random_hex(32);
        let service = ServiceConfig {
            sandbox: true,
            public_url: base.clone(),
            agent_token_ttl_secs: 600,
            chain,
            ..ServiceConfig::default()
        };
        let purser = Purser::start(
            store,
            MasterKey::parse(&master_hex).unwrap(),
            clock,
            service,
        )
        .await
        .unwrap();
        let app = purser_server::router(purser.clone(), &config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let (purser, config) = (purser.clone(), config.clone());
            async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                purser_server::serve(listener, app, purser, &config, shutdown).await
            }
        });
        TestServer {
            base,
            purser,
            db,
            http: reqwest::Client::new(),
            master_hex,
            config,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Another server on the same database, with its own pool, committer and port:
    /// what a second `purser serve` process would be.
    pub async fn second_server(&self) -> SecondServer {
        let store = self.db.open().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let service = ServiceConfig {
            public_url: self.base.clone(),
            ..ServiceConfig::default()
        };
        let master = MasterKey::parse(&self.master_hex).unwrap();
        let purser = Purser::start(store, master, Arc::new(SystemClock), service)
            .await
            .unwrap();
        let config = self.config.clone();
        let app = purser_server::router(purser.clone(), &config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            purser_server::serve(listener, app, purser, &config, shutdown).await
        });
        SecondServer {
            base,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Another service on the same database (no HTTP), whose wallets live on
    /// `chain`: what a restarted server's background task would be.
    #[allow(dead_code)]
    pub async fn service_on_chain(&self, chain: Arc<ChainClient>) -> Purser {
        let service = ServiceConfig {
            public_url: self.base.clone(),
            chain: Some(chain),
            ..ServiceConfig::default()
        };
        let master = MasterKey::parse(&self.master_hex).unwrap();
        Purser::start(self.db.open().await, master, Arc::new(SystemClock), service)
            .await
            .unwrap()
    }

    /// Sends a request; `key` becomes the Idempotency-Key.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            replayed,
            body,
        }
    }

    /// The body of a plain GET of `url` (a page, `/metrics`), as text.
    pub async fn text_of(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(key), Some(body))
            .await
    }

    /// Creates and funds a wallet; returns (wallet id, owner token).
    pub async fn wallet(&self, name: &str, fund: &str) -> (String, String) {
        let created = self
            .post("/api/wallets", None, &fresh_key(), json!({ "name": name }))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let wallet = created.body["wallet"]["id"].as_str().unwrap().to_owned();
        let token = created.body["ownerToken"].as_str().unwrap().to_owned();
        if fund != "0" {
            let funded = self
                .post(
                    &format!("/api/wallets/{wallet}/fund"),
                    Some(&token),
                    &fresh_key(),
                    json!({ "amount": fund }),
                )
                .await;
            assert_eq!(funded.status, StatusCode::CREATED, "{:?}", funded.body);
        }
        (wallet, token)
    }

    /// Registers an agent and returns (agent id, credential, JWT).
    pub async fn agent(&self, wallet: &str, owner: &str, name: &str) -> (String, String, String) {
        let added = self
            .post(
                &format!("/api/wallets/{wallet}/agents"),
                Some(owner),
                &fresh_key(),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
        let agent = added.body["agent"]["id"].as_str().unwrap().to_owned();
        let credential = added.body["credential"].as_str().unwrap().to_owned();
        let token = self.exchange(&agent, &credential).await;
        assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
        (
            agent,
            credential,
            token.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Exchanges an agent credential for a JWT.
    pub async fn exchange(&self, agent: &str, credential: &str) -> Reply {
        let body = json!({ "agentId": agent, "credential": credential });
        self.call(Method::POST, "/api/agents/token", None, None, Some(body))
            .await
    }

    pub async fn available(&self, wallet: &str, token: &str) -> String {
        let view = self
            .get(&format!("/api/wallets/{wallet}"), Some(token))
            .await;
        assert_eq!(view.status, StatusCode::OK, "{:?}", view.body);
        view.body["balances"]["available"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Ledger invariants hold and the audit chain verifies.
    pub async fn assert_sound(&self) {
        let report = self.purser.store().check_ledger().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.violations);
        assert!(self.purser.store().verify_audit().await.unwrap().is_ok());
    }

    /// Triggers graceful shutdown and waits for it.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn finish(mut self) {
        self.assert_sound().await;
        self.shutdown().await;
        self.db.cleanup().await;
    }
}

pub fn fresh_key() -> String {
    format!("test-{}", purser_testkit::random_hex(12))
}

/// A second server sharing a [`TestServer`]'s database.
pub struct SecondServer {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SecondServer {
    /// Stops it; the database belongs to the first server.
    pub async fn shutdown_only(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}
