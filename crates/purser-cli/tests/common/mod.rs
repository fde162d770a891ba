//! The `purser` binary as a person runs it: an isolated environment and a
//! `purser serve` process.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod paid;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PURSER: &str = env!("CARGO_BIN_EXE_purser");

/// A `purser` invocation with an isolated config file and data directory.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(PURSER);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("PURSER_CONFIG", self.config())
            .env("PURSER_DATA_DIR", self.dir.path().join("data"))
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "purser {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }
}

/// A `purser serve` process.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub fn start(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = env.dir.path().join(format!("serve-{port}.log"));
        let mut args = vec!["serve", "--listen", &listen, "--log-format", "json"];
        args.extend_from_slice(extra);
        let mut command = env.command(&args);
        command
            .envs(vars.iter().copied())
            .env("PURSER_LOG", "debug");
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = command.spawn().unwrap();
        let server = Server {
            child,
            base: format!("http://{listen}"),
            log,
        };
        server.wait_ready();
        server
    }

    pub fn wait_ready(&self) {
        wait_healthy(&self.base, &self.log);
    }

    /// SIGTERM, then wait: the server must exit cleanly.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap();
        assert!(status.success(), "serve exited with {status}:\n{log}");
        log
    }
}

/// A test that ends early (a failed assertion) or never calls `stop` still leaves
/// no server running.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until `base/healthz` answers 200; panics with the process's log after 20 s.
pub fn wait_healthy(base: &str, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(base.trim_start_matches("http://")) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{base} did not become ready:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Runs a command as an agent (its JWT in PURSER_TOKEN) and parses its JSON output.
pub fn as_agent(env: &Env, jwt: &str, args: &[&str]) -> (bool, Value) {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = env
        .command(&with_json)
        .env("PURSER_TOKEN", jwt)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    (
        output.status.success(),
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An agent registered with `purser agent add`, and a JWT from `purser agent token`.
pub struct AddedAgent {
    pub id: String,
    pub credential: String,
    pub jwt: String,
}

/// Registers an agent on the env's wallet (as its owner) and exchanges its credential.
pub fn add_agent(env: &Env, name: &str) -> AddedAgent {
    let added = env.json(&["agent", "add", "--name", name]);
    let id = added["agent"]["id"].as_str().unwrap().to_owned();
    let credential = added["credential"].as_str().unwrap().to_owned();
    let jwt = env
        .ok(&[
            "agent",
            "token",
            "--agent-id",
            &id,
            "--credential",
            &credential,
        ])
        .trim()
        .to_owned();
    AddedAgent {
        id,
        credential,
        jwt,
    }
}
