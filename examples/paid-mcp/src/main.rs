//! Runs the example MCP server (no payments in it: put `purser gateway` in front).
//!
//! ```sh
//! LISTEN=127.0.0.1:3001 ANSWERS=stream cargo run -p purser-example-paid-mcp   # or ANSWERS=json
//! ```

use anyhow::{Result, bail};
use purser_example_paid_mcp::{Answers, router};

#[tokio::main]
async fn main() -> Result<()> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let answers = match std::env::var("ANSWERS").as_deref() {
        Err(_) | Ok("stream") => Answers::Stream,
        Ok("json") => Answers::Json,
        Ok(other) => bail!("ANSWERS is stream or json, not {other:?}"),
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("MCP server on http://{listen}/mcp (tools: ping, forecast; answers: {answers:?})");
    axum::serve(listener, router(answers)).await?;
    Ok(())
}
