//! Fetch that pays: on HTTP 402 read the x402 PaymentRequired (v2 header or v1
//! body), ask the wallet to pay through the one authorization path
//! (`POST /api/payments/x402`), retry with the signed header, and report the
//! outcome (`…/result`) so the reservation is committed (paid) or released.

use std::time::Duration;

use purser_server::{X402PayResponse, X402ResultResponse};
use purser_types::x402::{
    HEADER_PAYMENT_REQUIRED, HEADER_PAYMENT_RESPONSE, HEADER_X_PAYMENT_RESPONSE, decode_header,
};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ApiClient, ClientError, new_idempotency_key};

/// How long one request to the paid URL may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A request to a URL that may answer 402.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The URL.
    pub url: String,
    /// The HTTP method.
    pub method: Method,
    /// Request headers.
    pub headers: HeaderMap,
    /// The request body.
    pub body: Option<Vec<u8>>,
    /// A mandate to pay under (default: the tightest eligible one).
    pub mandate_id: Option<String>,
    /// The most to pay, as USDC text (`0.05`).
    pub max_amount: Option<String>,
    /// Why, in the agent's words.
    pub purpose: Option<String>,
    /// An approval the owner gave for this payment.
    pub approval_id: Option<String>,
}

impl FetchRequest {
    /// A request with the method defaulted (POST with a body, else GET) and a
    /// JSON body marked as JSON unless a Content-Type is set.
    pub fn new(
        url: String,
        method: Option<Method>,
        mut headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Self {
        let method = method.unwrap_or(if body.is_some() {
            Method::POST
        } else {
            Method::GET
        });
        if let Some(data) = &body
            && !headers.contains_key(CONTENT_TYPE)
            && serde_json::from_slice::<Value>(data).is_ok()
        {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        FetchRequest {
            url,
            method,
            headers,
            body,
            mandate_id: None,
            max_amount: None,
            purpose: None,
            approval_id: None,
        }
    }

    fn purpose(&self) -> String {
        self.purpose
            .clone()
            .unwrap_or_else(|| format!("x402 payment for {}", self.url))
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

/// What a paid fetch ended with.
#[derive(Debug)]
pub struct FetchOutcome {
    /// The final answer (the first one when no payment was asked).
    pub response: Fetched,
    /// The decoded `PAYMENT-RESPONSE` the server sent, if any.
    pub payment_response: Option<Value>,
    /// The payment as the wallet recorded it, when one was made.
    pub payment: Option<X402ResultResponse>,
}

impl FetchOutcome {
    /// The server still answered 402 after being paid: nothing was charged.
    pub fn refused_after_payment(&self) -> bool {
        self.response.status == StatusCode::PAYMENT_REQUIRED && self.payment.is_some()
    }
}

/// Why a paid fetch did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No mandate covers the payment: the owner must approve this one.
    #[error(
        "approval_required: no mandate covers this payment; ask your human to open {approval_url}"
    )]
    ApprovalRequired {
        /// The approval to retry with.
        approval_id: String,
        /// The page to show the human.
        approval_url: String,
    },
    /// The wallet refused or failed (stable code inside).
    #[error(transparent)]
    Api(#[from] ClientError),
    /// The paid URL could not be reached, or its 402 was unreadable.
    #[error("{0}")]
    Http(String),
}

/// Fetches `request.url`; on 402 pays through `api` and retries once.
pub async fn fetch(api: &ApiClient, request: &FetchRequest) -> Result<FetchOutcome, FetchError> {
    let http = api.http();
    let first = send(http, request, None).await?;
    if first.status != StatusCode::PAYMENT_REQUIRED {
        return Ok(FetchOutcome {
            response: first,
            payment_response: None,
            payment: None,
        });
    }
    let paid = pay(api, request, payment_required(&first)?).await?;
    let (Some(name), Some(value)) = (&paid.header_name, &paid.header_value) else {
        return Err(FetchError::Http(
            "the wallet signed no payment header".into(),
        ));
    };
    let header = (
        HeaderName::from_bytes(name.as_bytes()).map_err(|e| FetchError::Http(e.to_string()))?,
        HeaderValue::from_str(value).map_err(|e| FetchError::Http(e.to_string()))?,
    );
    let second = send(http, request, Some(header)).await;
    let settle_header = second.as_ref().ok().and_then(payment_response);
    let payment = report(api, &paid, settle_header.as_deref().map(|h| json!(h))).await?;
    Ok(FetchOutcome {
        response: second?,
        payment_response: settle_header.and_then(|h| decode_header(&h).ok()),
        payment: Some(payment),
    })
}

/// Asks the wallet to sign a payment for `payment_required` (the `PAYMENT-REQUIRED`
/// header value, or PaymentRequired JSON).
pub async fn pay(
    api: &ApiClient,
    request: &FetchRequest,
    payment_required: Value,
) -> Result<X402PayResponse, FetchError> {
    let body = json!({
        "paymentRequired": payment_required,
        "url": request.url,
        "method": request.method.as_str(),
        "purpose": request.purpose(),
        "mandateId": request.mandate_id,
        "maxAmount": request.max_amount,
        "approvalId": request.approval_id,
    });
    let paid: X402PayResponse = api
        .post("/api/payments/x402", &body, &new_idempotency_key())
        .await?
        .parse()?;
    if paid.reservation.is_none() {
        return Err(FetchError::ApprovalRequired {
            approval_id: paid.approval.map(|a| a.id.to_string()).unwrap_or_default(),
            approval_url: paid.approval_url.unwrap_or_default(),
        });
    }
    Ok(paid)
}

/// Reports how the paid request went: the server's settlement response (header
/// text or decoded JSON), or none when the request failed without one.
pub async fn report(
    api: &ApiClient,
    paid: &X402PayResponse,
    payment_response: Option<Value>,
) -> Result<X402ResultResponse, FetchError> {
    let reservation = paid
        .reservation
        .as_ref()
        .ok_or_else(|| FetchError::Http("the payment has no reservation".into()))?;
    Ok(api
        .post(
            &format!("/api/payments/x402/{}/result", reservation.id),
            &json!({ "paymentResponse": payment_response }),
            &new_idempotency_key(),
        )
        .await?
        .parse()?)
}

async fn send(
    http: &reqwest::Client,
    request: &FetchRequest,
    extra: Option<(HeaderName, HeaderValue)>,
) -> Result<Fetched, FetchError> {
    let mut headers = request.headers.clone();
    if let Some((name, value)) = extra {
        headers.insert(name, value);
    }
    let mut builder = http
        .request(request.method.clone(), &request.url)
        .timeout(FETCH_TIMEOUT)
        .headers(headers);
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = builder
        .send()
        .await
        .map_err(|e| FetchError::Http(format!("cannot fetch {}: {e}", request.url)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| FetchError::Http(format!("cannot read {}: {e}", request.url)))?;
    Ok(Fetched {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// The PaymentRequired of a 402: the v2 header, else the v1 JSON body.
fn payment_required(fetched: &Fetched) -> Result<Value, FetchError> {
    if let Some(header) = fetched.headers.get(HEADER_PAYMENT_REQUIRED) {
        let text = header
            .to_str()
            .map_err(|_| FetchError::Http("the PAYMENT-REQUIRED header is not text".into()))?;
        return Ok(Value::String(text.to_owned()));
    }
    serde_json::from_slice(&fetched.body).map_err(|_| {
        FetchError::Http(
            "the 402 has no PAYMENT-REQUIRED header and its body is not x402 JSON".into(),
        )
    })
}

fn payment_response(fetched: &Fetched) -> Option<String> {
    [HEADER_PAYMENT_RESPONSE, HEADER_X_PAYMENT_RESPONSE]
        .iter()
        .find_map(|name| fetched.headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
