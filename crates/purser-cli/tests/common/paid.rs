//! What the gateway tests share: a real upstream API and a `purser gateway` process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Env, free_port};

/// The API being monetized: a real HTTP server on a free port.
pub async fn upstream() -> String {
    let app = axum::Router::new()
        .route(
            "/api/query",
            post(|Json(input): Json<Value>| async move {
                Json(json!({"answer": format!("42 for {}", input["q"].as_str().unwrap_or("?"))}))
            }),
        )
        .route(
            "/api/fail",
            get(|| async {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "upstream broke",
                )
            }),
        )
        .route(
            "/api/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "too late"
            }),
        )
        .route(
            "/api/stream",
            get(|| async {
                let chunks = (0..64).map(|i| Ok::<_, std::io::Error>(format!("chunk {i}\n")));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route("/free", get(|| async { "free for all" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A `purser gateway` process, stopped (SIGTERM) when dropped.
pub struct Gateway {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Gateway {
    pub fn start(env: &Env, routes: &str, upstream: &str, facilitator: &str) -> Gateway {
        let file = env.dir.path().join("monetize.toml");
        std::fs::write(&file, routes).unwrap();
        let listen = format!("127.0.0.1:{}", free_port());
        let log = env.dir.path().join("gateway.log");
        let child = env
            .command(&[
                "gateway",
                "--routes",
                file.to_str().unwrap(),
                "--upstream",
                upstream,
                "--facilitator",
                facilitator,
                "--listen",
                &listen,
                "--timeout-ms",
                "1500",
                "--max-body-bytes",
                "4096",
                "--log-format",
                "json",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let gateway = Gateway {
            child,
            base: format!("http://{listen}"),
            log,
        };
        super::wait_healthy(&gateway.base, &gateway.log);
        gateway
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The routes file the tests price the upstream with: `POST /api/query` at 0.01,
/// everything else under `GET /api/` at 0.02.
pub fn routes(pay_to: &str) -> String {
    format!(
        r#"
[service]
name = "Answers API"
description = "Answers any question."
pay_to = "{pay_to}"

[[route]]
method = "POST"
path = "/api/query"
price = "0.01"
description = "Answer one question"
input_schema = {{ type = "object", required = ["q"] }}

[[route]]
method = "GET"
path = "/api/*"
price = "0.02"
description = "Everything else under /api"
"#
    )
}

/// The body of a GET that must answer 200.
pub async fn get_text(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    response.text().await.unwrap()
}
