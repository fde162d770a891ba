//! `purser fetch`: curl that pays. On HTTP 402 it reads the x402 PaymentRequired
//! (v2 header or v1 body), asks the wallet to pay through the one authorization path
//! (`POST /api/payments/x402`), retries with the signed header, prints the body and
//! the decoded `PAYMENT-RESPONSE`, and reports the outcome so the reservation is
//! committed (paid) or released (failed; the authorization is canceled on chain).

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use purser_server::{X402PayResponse, X402ResultResponse};
use purser_types::x402::{
    HEADER_PAYMENT_REQUIRED, HEADER_PAYMENT_RESPONSE, HEADER_X_PAYMENT_RESPONSE, decode_header,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::FetchArgs;
use crate::client::new_idempotency_key;
use crate::commands::{Context, Reported};

struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

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

async fn send(
    http: &reqwest::Client,
    method: &Method,
    url: &str,
    headers: &HeaderMap,
    body: Option<&Vec<u8>>,
) -> Result<Fetched> {
    let mut request = http.request(method.clone(), url).headers(headers.clone());
    if let Some(body) = body {
        request = request.body(body.clone());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    Ok(Fetched {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await?.to_vec(),
    })
}

/// The PaymentRequired of a 402: the v2 header, else the v1 JSON body.
fn payment_required(fetched: &Fetched) -> Result<Value> {
    if let Some(header) = fetched.headers.get(HEADER_PAYMENT_REQUIRED) {
        return Ok(Value::String(header.to_str()?.to_owned()));
    }
    serde_json::from_slice(&fetched.body)
        .context("the 402 has no PAYMENT-REQUIRED header and its body is not x402 JSON")
}

fn payment_response(fetched: &Fetched) -> Option<String> {
    [HEADER_PAYMENT_RESPONSE, HEADER_X_PAYMENT_RESPONSE]
        .iter()
        .find_map(|name| fetched.headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let body = body_of(args.data.as_deref())?;
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_uppercase().as_bytes()).context("bad method")?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut headers = parse_headers(&args.headers)?;
    // A JSON body is sent as JSON unless the caller said otherwise.
    if let Some(data) = &body
        && !headers.contains_key(reqwest::header::CONTENT_TYPE)
        && serde_json::from_slice::<serde_json::Value>(data).is_ok()
    {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let first = send(&http, &method, &args.url, &headers, body.as_ref()).await?;
    if first.status != StatusCode::PAYMENT_REQUIRED {
        return finish(ctx, &args, &first, None, None);
    }
    let api = ctx.client(&args.client).await?;
    let request = json!({
        "paymentRequired": payment_required(&first)?,
        "url": args.url,
        "method": method.as_str(),
        "purpose": args.purpose.clone().unwrap_or_else(|| format!("x402 payment for {}", args.url)),
        "mandateId": args.mandate,
        "maxAmount": args.max_amount,
        "approvalId": args.approval,
    });
    let paid: X402PayResponse = api
        .post("/api/payments/x402", &request, &new_idempotency_key())
        .await?
        .parse()?;
    let (Some(name), Some(value), Some(reservation)) =
        (&paid.header_name, &paid.header_value, &paid.reservation)
    else {
        let url = paid.approval_url.unwrap_or_default();
        let id = paid.approval.map(|a| a.id.to_string()).unwrap_or_default();
        bail!(Reported(format!(
            "approval_required: no mandate covers this payment. Ask your human to open\n  {url}\nthen run the same command with --approval {id}"
        )));
    };
    headers.insert(
        HeaderName::from_bytes(name.as_bytes())?,
        HeaderValue::from_str(value)?,
    );
    let second = send(&http, &method, &args.url, &headers, body.as_ref()).await;
    let settle_header = second.as_ref().ok().and_then(payment_response);
    let report = json!({ "paymentResponse": settle_header });
    let outcome: X402ResultResponse = api
        .post(
            &format!("/api/payments/x402/{}/result", reservation.id),
            &report,
            &new_idempotency_key(),
        )
        .await?
        .parse()?;
    let second = second?;
    finish(
        ctx,
        &args,
        &second,
        settle_header.as_deref(),
        Some(&outcome),
    )
}

fn finish(
    ctx: &Context,
    args: &FetchArgs,
    fetched: &Fetched,
    settle_header: Option<&str>,
    outcome: Option<&X402ResultResponse>,
) -> Result<()> {
    let decoded = settle_header.and_then(|h| decode_header(h).ok());
    if ctx.json {
        let body = json!({
            "status": fetched.status.as_u16(),
            "body": String::from_utf8_lossy(&fetched.body),
            "paymentResponse": decoded,
            "payment": outcome,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print_response(fetched, args.include);
        if let Some(decoded) = &decoded {
            eprintln!("PAYMENT-RESPONSE: {decoded}");
        }
        if let Some(outcome) = outcome {
            eprintln!(
                "payment {}: {} USDC, reservation {} {}",
                outcome.status,
                outcome.reservation.amount,
                outcome.reservation.id,
                outcome.reservation.status.as_str()
            );
        }
    }
    if fetched.status == StatusCode::PAYMENT_REQUIRED && outcome.is_some() {
        bail!(Reported(
            "the server refused the payment (HTTP 402); the reservation was not charged".into()
        ));
    }
    Ok(())
}
