//! `purser fetch`: curl that pays. The paying itself is `purser_client::fetch`
//! (the one authorization path on the server); this prints the answer.

use anyhow::{Context as _, Result, bail};
use purser_client::fetch::{FetchError, FetchOutcome, FetchRequest, Fetched, fetch};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::cli::FetchArgs;
use crate::commands::{Context, Reported};

fn parse_headers(lines: &[String]) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("header {line:?} is not `Name: value`"))?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("bad header name {name:?}"))?,
            HeaderValue::from_str(value.trim())
                .with_context(|| format!("bad header value in {line:?}"))?,
        );
    }
    Ok(headers)
}

fn body_of(data: Option<&str>) -> Result<Option<Vec<u8>>> {
    match data {
        None => Ok(None),
        Some(path) if path.starts_with('@') => {
            let file = &path[1..];
            Ok(Some(
                std::fs::read(file).with_context(|| format!("cannot read {file}"))?,
            ))
        }
        Some(text) => Ok(Some(text.as_bytes().to_vec())),
    }
}

fn print_response(fetched: &Fetched, include: bool) {
    if include {
        println!("HTTP {}", fetched.status);
        for (name, value) in &fetched.headers {
            println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
        }
        println!();
    }
    println!("{}", String::from_utf8_lossy(&fetched.body));
}

pub(crate) async fn run(ctx: &Context, args: FetchArgs) -> Result<()> {
    let method = match &args.method {
        Some(m) => Some(Method::from_bytes(m.to_uppercase().as_bytes()).context("bad method")?),
        None => None,
    };
    let mut request = FetchRequest::new(
        args.url.clone(),
        method,
        parse_headers(&args.headers)?,
        body_of(args.data.as_deref())?,
    );
    request.mandate_id = args.mandate.clone();
    request.max_amount = args.max_amount.clone();
    request.purpose = args.purpose.clone();
    request.approval_id = args.approval.clone();
    // A free URL needs no token: the wallet is asked only when the URL answers 402.
    let api = ctx.client_or_anonymous(&args.client)?;
    match fetch(&api, &request).await {
        Ok(outcome) => finish(ctx, &args, &outcome),
        Err(FetchError::ApprovalRequired {
            approval_id,
            approval_url,
        }) => {
            if ctx.json {
                // The code, the URL for the human and the id to retry with, as JSON.
                let body = json!({ "error": {
                    "code": "approval_required",
                    "message": "no mandate covers this payment; ask your human to open approvalUrl, then retry with --approval approvalId",
                    "approvalId": approval_id,
                    "approvalUrl": approval_url,
                }});
                println!("{body}");
            }
            bail!(Reported(format!(
                "approval_required: no mandate covers this payment. Ask your human to open\n  {approval_url}\nthen run the same command with --approval {approval_id}"
            )))
        }
        Err(FetchError::Api(error)) => Err(error.into()),
        Err(error) => Err(error.into()),
    }
}

fn finish(ctx: &Context, args: &FetchArgs, outcome: &FetchOutcome) -> Result<()> {
    let fetched = &outcome.response;
    if ctx.json {
        let body = json!({
            "status": fetched.status.as_u16(),
            "body": String::from_utf8_lossy(&fetched.body),
            "paymentResponse": outcome.payment_response,
            "payment": outcome.payment,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print_response(fetched, args.include);
        if let Some(decoded) = &outcome.payment_response {
            eprintln!("PAYMENT-RESPONSE: {decoded}");
        }
        if let Some(payment) = &outcome.payment {
            eprintln!(
                "payment {}: {} USDC, reservation {} {}",
                payment.status,
                payment.reservation.amount,
                payment.reservation.id,
                payment.reservation.status.as_str()
            );
        }
    }
    if outcome.refused_after_payment() {
        bail!(Reported(
            "the server refused the payment (HTTP 402); the reservation was not charged".into()
        ));
    }
    Ok(())
}
