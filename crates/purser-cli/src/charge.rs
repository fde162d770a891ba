//! Client commands of AgentCharge: payment links, received payments, refunds and
//! webhook events.

use anyhow::{Context as _, Result, bail};
use purser_core::{Clock, SystemClock};
use purser_server::{
    LinkResponse, LinksList, ReceivedList, RefundResponse, RefundsList, WebhookEventsList,
};
use purser_types::{ReceivedPayment, UnixMs};
use serde_json::{Map, Value, json};

use crate::cli::{LinkCommand, LinkTerms, ReceivedCommand, RefundCommand, WebhooksCommand};
use crate::commands::Context;
use crate::pay::key;

fn link_text(l: &LinkResponse) -> String {
    let link = &l.link;
    let uses = match link.max_uses {
        Some(max) => format!("{}/{max} uses", link.uses_count),
        None => format!("{} uses", link.uses_count),
    };
    let mut text = format!(
        "Link {} {}: {} USDC, {uses} — {}\n  pay at {}",
        link.id,
        link.status.as_str(),
        link.amount,
        link.description,
        l.pay_url
    );
    if let Some(at) = link.expires_at {
        text.push_str(&format!("\n  expires {at}"));
    }
    if let Some(url) = &link.webhook_url {
        text.push_str(&format!("\n  webhook {url}"));
    }
    if let Some(secret) = &l.webhook_secret {
        text.push_str(&format!(
            "\n  webhook signing secret (shown once, keep it): {secret}"
        ));
    }
    text
}

fn payment_text(p: &ReceivedPayment) -> String {
    format!(
        "Payment {} {}: {} USDC from {} on {} ({}), refunded {}",
        p.id,
        p.status.as_str(),
        p.amount,
        p.payer,
        p.network,
        p.transaction.as_deref().unwrap_or("no transaction yet"),
        p.refunded_amount
    )
}

fn refund_text(r: &RefundResponse) -> String {
    let refund = &r.refund;
    let mut text = format!(
        "Refund {} {}: {} USDC back to {} for payment {}",
        refund.id,
        refund.status.as_str(),
        refund.amount,
        refund.to_address,
        refund.payment_id
    );
    if let Some(url) = &r.refund_url {
        text.push_str(&format!("\n  Ask your human to authorize it at\n  {url}"));
    }
    if let Some(settlement) = &refund.settlement {
        text.push_str(&format!("\n  settled by {settlement}"));
    }
    text
}

fn lines<T>(items: &[T], empty: &str, text: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        return empty.to_owned();
    }
    items.iter().map(text).collect::<Vec<_>>().join("\n")
}

/// The JSON fields of `terms` that were given.
fn terms_body(terms: LinkTerms) -> Result<Map<String, Value>> {
    let content = match (terms.content, terms.content_file) {
        (Some(text), _) => Some(text),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (None, None) => None,
    };
    let expires_at = match (terms.expires_at, terms.expires_in) {
        (Some(at), _) => Some(at),
        (None, Some(secs)) => {
            let millis = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            Some(SystemClock.now().plus_millis(millis).to_rfc3339())
        }
        (None, None) => None,
    };
    if let Some(at) = &expires_at
        && UnixMs::parse_rfc3339(at).is_none()
    {
        bail!("--expires-at must be an RFC 3339 time, e.g. 2026-12-31T23:59:00Z");
    }
    let fields = [
        ("description", terms.description.map(Value::from)),
        ("resourceContent", content.map(Value::from)),
        ("resourceUrl", terms.resource_url.map(Value::from)),
        ("expiresAt", expires_at.map(Value::from)),
        ("maxUses", terms.max_uses.map(Value::from)),
        ("webhookUrl", terms.webhook_url.map(Value::from)),
    ];
    Ok(fields
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect())
}

/// `purser link …`.
pub(crate) async fn link(ctx: &Context, command: LinkCommand) -> Result<()> {
    match command {
        LinkCommand::Create {
            amount,
            terms,
            key: k,
            client,
        } => {
            let mut body = terms_body(terms)?;
            if !body.contains_key("description") {
                bail!("a payment link needs --description");
            }
            body.insert("amount".into(), json!(amount));
            let api = ctx.client(&client).await?;
            let answer = api
                .post("/api/payment-links", &Value::Object(body), &key(k))
                .await?;
            let link: LinkResponse = answer.parse()?;
            ctx.emit(&answer.body, || link_text(&link))
        }
        LinkCommand::List { client } => {
            let answer = ctx.client(&client).await?.get("/api/payment-links").await?;
            let list: LinksList = answer.parse()?;
            ctx.emit(&answer.body, || {
                lines(&list.items, "No payment links.", link_text)
            })
        }
        LinkCommand::Get { link, client } => {
            let path = format!("/api/payment-links/{link}");
            let answer = ctx.client(&client).await?.get(&path).await?;
            let link: LinkResponse = answer.parse()?;
            ctx.emit(&answer.body, || link_text(&link))
        }
        LinkCommand::Update {
            link,
            terms,
            enable,
            disable,
            rotate_webhook_secret,
            client,
        } => {
            let mut body = terms_body(terms)?;
            if enable || disable {
                let status = if enable { "active" } else { "disabled" };
                body.insert("status".into(), json!(status));
            }
            if rotate_webhook_secret {
                body.insert("rotateWebhookSecret".into(), json!(true));
            }
            let path = format!("/api/payment-links/{link}");
            let answer = ctx
                .client(&client)
                .await?
                .patch(&path, &Value::Object(body))
                .await?;
            let link: LinkResponse = answer.parse()?;
            ctx.emit(&answer.body, || link_text(&link))
        }
        LinkCommand::Disable { link, client } => {
            let path = format!("/api/payment-links/{link}/disable");
            let api = ctx.client(&client).await?;
            let answer = api
                .post(&path, &json!({}), &purser_client::new_idempotency_key())
                .await?;
            let link: LinkResponse = answer.parse()?;
            ctx.emit(&answer.body, || link_text(&link))
        }
        LinkCommand::Payments { link, client } => {
            let path = format!("/api/payment-links/{link}/payments");
            received_list(ctx, &client, &path).await
        }
    }
}

async fn received_list(ctx: &Context, client: &crate::cli::ClientArgs, path: &str) -> Result<()> {
    let answer = ctx.client(client).await?.get(path).await?;
    let list: ReceivedList = answer.parse()?;
    ctx.emit(&answer.body, || {
        lines(&list.items, "No payments received.", payment_text)
    })
}

/// `purser received …`.
pub(crate) async fn received(ctx: &Context, command: ReceivedCommand) -> Result<()> {
    match command {
        ReceivedCommand::List { link, client } => {
            let path = match link {
                Some(link) => format!("/api/received-payments?linkId={link}"),
                None => "/api/received-payments".to_owned(),
            };
            received_list(ctx, &client, &path).await
        }
        ReceivedCommand::Get { payment, client } => {
            let path = format!("/api/received-payments/{payment}");
            let answer = ctx.client(&client).await?.get(&path).await?;
            let payment: ReceivedPayment = answer.parse()?;
            ctx.emit(&answer.body, || payment_text(&payment))
        }
    }
}

/// `purser refund …`.
pub(crate) async fn refund(ctx: &Context, command: RefundCommand) -> Result<()> {
    let answer = match command {
        RefundCommand::Create {
            payment,
            amount,
            reason,
            key: k,
            client,
        } => {
            let body = json!({"paymentId": payment, "amount": amount, "reason": reason});
            let api = ctx.client(&client).await?;
            api.post("/api/payment-links/refunds", &body, &key(k))
                .await?
        }
        RefundCommand::List { client } => {
            let api = ctx.client(&client).await?;
            let answer = api.get("/api/payment-links/refunds").await?;
            let list: RefundsList = answer.parse()?;
            return ctx.emit(&answer.body, || {
                lines(&list.items, "No refunds.", refund_text)
            });
        }
        RefundCommand::Status { refund, client } => {
            let path = format!("/api/payment-links/refunds/{refund}");
            ctx.client(&client).await?.get(&path).await?
        }
        RefundCommand::Cancel { refund, client } => {
            let path = format!("/api/payment-links/refunds/{refund}/cancel");
            let api = ctx.client(&client).await?;
            api.post(&path, &json!({}), &purser_client::new_idempotency_key())
                .await?
        }
    };
    let refund: RefundResponse = answer.parse()?;
    ctx.emit(&answer.body, || refund_text(&refund))
}

/// `purser webhooks list`.
pub(crate) async fn webhooks(ctx: &Context, command: WebhooksCommand) -> Result<()> {
    let WebhooksCommand::List { client } = command;
    let answer = ctx
        .client(&client)
        .await?
        .get("/api/webhook-events")
        .await?;
    let list: WebhookEventsList = answer.parse()?;
    ctx.emit(&answer.body, || {
        lines(&list.items, "No webhook events.", |e| {
            let error = e
                .last_error
                .as_deref()
                .map(|err| format!(" (last error: {err})"))
                .unwrap_or_default();
            format!(
                "{} {} {} after {} attempt(s) → {}{error}",
                e.id,
                e.event_type,
                e.status.as_str(),
                e.attempts,
                e.url
            )
        })
    })
}
