//! Runs the example paid API.
//!
//! ```sh
//! PURSER_FACILITATOR=http://127.0.0.1:8080/facilitator PAY_TO=0x… LISTEN=127.0.0.1:3000 \
//!   cargo run -p purser-example-paid-api
//! ```

use anyhow::{Context, Result};
use purser_example_paid_api::{app, config};
use purser_gateway::{Paywall, PaywallOptions};

#[tokio::main]
async fn main() -> Result<()> {
    let facilitator = std::env::var("PURSER_FACILITATOR")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/facilitator".into());
    let pay_to = std::env::var("PAY_TO").context("set PAY_TO to the address payments go to")?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let paywall =
        Paywall::connect(config(&pay_to)?, &facilitator, PaywallOptions::default()).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("paid API on http://{listen} (facilitator {facilitator})");
    axum::serve(listener, app(&paywall)).await?;
    Ok(())
}
