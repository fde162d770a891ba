//! Webhooks to merchants: each event is written to an outbox in the same
//! transaction as what it announces, then POSTed to the link's `webhookUrl`
//! until the receiver answers 2xx (at least once; a receiver deduplicates by the
//! event id), with growing delays between attempts.
//!
//! Every delivery is signed: `Purser-Signature: t=<unix seconds>,v1=<hex>` where
//! the hex is HMAC-SHA256 over `<t>.<body>` with the link's signing secret, as
//! Stripe signs its webhooks; `t` lets the receiver refuse old replays.

use std::time::Duration;

use hmac::{Hmac, Mac};
use purser_store::Page;
use purser_types::{DeliveryStatus, PaymentLink, UnixMs, WebhookEvent, WebhookEventId};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::auth::Principal;
use crate::ids::new_id_bytes;
use crate::{Purser, ServiceError};

/// The header carrying the signature.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "Purser-Signature";
/// The header carrying the event id (the same on every attempt).
pub const WEBHOOK_EVENT_ID_HEADER: &str = "Purser-Event-Id";
/// The header carrying the event type.
pub const WEBHOOK_EVENT_TYPE_HEADER: &str = "Purser-Event-Type";

/// The wait before each retry, in seconds: after the last, the event is `failed`.
const RETRY_DELAYS_SECS: [i64; 10] = [1, 5, 30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800];
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// While an attempt runs, its event is leased for this long (so a second server
/// sharing the database does not send it at the same time).
const LEASE_MS: i64 = 30_000;
/// How often the outbox is looked at when nothing wakes it.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// The most of a receiver's answer kept as the last error.
const ERROR_MAX_CHARS: usize = 200;

type HmacSha256 = Hmac<Sha256>;

/// The `Purser-Signature` value for `body` sent at `timestamp_secs`.
pub fn webhook_signature(secret: &str, timestamp_secs: i64, body: &str) -> String {
    format!(
        "t={timestamp_secs},v1={}",
        hex::encode(
            mac(secret, timestamp_secs, body)
                .map(|m| m.finalize().into_bytes().to_vec())
                .unwrap_or_default()
        )
    )
}

/// The MAC over `<t>.<body>`, fed and ready to finalize or verify. HMAC takes a
/// key of any length, so `None` never happens in practice.
fn mac(secret: &str, timestamp_secs: i64, body: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(mac)
}

/// Checks a `Purser-Signature` header as a receiver should: the MAC (compared in
/// constant time) and a timestamp within `tolerance_secs` of `now_secs`.
pub fn verify_webhook_signature(
    secret: &str,
    header: &str,
    body: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now_secs - timestamp).abs() > tolerance_secs {
        return false;
    }
    signatures.iter().any(|signature| {
        mac(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(signature).is_ok())
    })
}

/// The event after an attempt that did not get a 2xx.
fn after_failure(mut event: WebhookEvent, error: String, now: UnixMs) -> WebhookEvent {
    event.attempts = event.attempts.saturating_add(1);
    event.last_error = Some(error.chars().take(ERROR_MAX_CHARS).collect());
    let retry = usize::try_from(event.attempts)
        .ok()
        .and_then(|n| RETRY_DELAYS_SECS.get(n - 1));
    match retry {
        Some(delay_secs) => event.next_attempt_at = now.plus_millis(delay_secs * 1000),
        None => event.status = DeliveryStatus::Failed,
    }
    event
}

impl Purser {
    /// A new event for `link`'s webhook, if it has one.
    pub(crate) fn webhook_event(
        &self,
        link: &PaymentLink,
        event_type: &str,
        data: Value,
    ) -> Result<Option<WebhookEvent>, ServiceError> {
        let Some(url) = &link.webhook_url else {
            return Ok(None);
        };
        let now = self.inner.clock.now();
        let id = WebhookEventId::from_bytes(new_id_bytes(&*self.inner.clock)?);
        let payload = json!({
            "id": id,
            "type": event_type,
            "createdAt": now,
            "walletId": link.wallet_id,
            "data": data,
        });
        Ok(Some(WebhookEvent {
            id,
            wallet_id: link.wallet_id,
            link_id: link.id,
            url: url.clone(),
            event_type: event_type.to_owned(),
            payload: payload.to_string(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        }))
    }

    /// Tells the delivery task an event is waiting.
    pub(crate) fn wake_webhooks(&self) {
        self.inner.webhook_wake.notify_one();
    }

    /// Delivers webhook events until `stop` resolves: at once when one is written,
    /// and every second for retries. A round under way finishes before it stops.
    pub async fn deliver_webhooks(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = self.inner.webhook_wake.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
            if let Err(e) = self.deliver_due_webhooks().await {
                tracing::warn!(error = %e, "webhook delivery round failed; retrying");
            }
        }
    }

    /// One round: every due event, at once. Returns how many were delivered.
    pub async fn deliver_due_webhooks(&self) -> Result<usize, ServiceError> {
        let now = self.inner.clock.now();
        let due = self.inner.store.due_webhook_events(now, 50).await?;
        let mut attempts = JoinSet::new();
        for event in due {
            let leased_until = now.plus_millis(LEASE_MS);
            if !self
                .inner
                .store
                .lease_webhook_event(&event, leased_until)
                .await?
            {
                continue;
            }
            let purser = self.clone();
            attempts.spawn(async move { purser.attempt(event).await });
        }
        let mut delivered = 0;
        while let Some(joined) = attempts.join_next().await {
            match joined {
                Ok(Ok(true)) => delivered += 1,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a webhook attempt"),
                Err(e) => tracing::error!(error = %e, "a webhook attempt panicked"),
            }
        }
        Ok(delivered)
    }

    /// One POST of one event; records the result. `true` when delivered.
    async fn attempt(&self, event: WebhookEvent) -> Result<bool, ServiceError> {
        let secret = self.inner.store.payment_link_secret(event.link_id).await?;
        let now = self.inner.clock.now();
        let timestamp_secs = now.millis() / 1000;
        let signature = secret
            .map(|s| webhook_signature(s.expose(), timestamp_secs, &event.payload))
            .unwrap_or_default();
        let sent = self
            .inner
            .webhook_http
            .post(&event.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(WEBHOOK_EVENT_ID_HEADER, event.id.to_string())
            .header(WEBHOOK_EVENT_TYPE_HEADER, &event.event_type)
            .header(WEBHOOK_SIGNATURE_HEADER, signature)
            .body(event.payload.clone())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("the receiver answered {}", response.status())),
            Err(e) if e.is_timeout() => Err("the receiver did not answer in time".to_owned()),
            Err(_) => Err("the receiver could not be reached".to_owned()),
        };
        let delivered = outcome.is_ok();
        let after = match outcome {
            Ok(()) => WebhookEvent {
                status: DeliveryStatus::Delivered,
                attempts: event.attempts.saturating_add(1),
                last_error: None,
                ..event
            },
            Err(error) => after_failure(event, error, self.inner.clock.now()),
        };
        let result = match after.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pending => "retrying",
        };
        metrics::counter!("purser_webhook_attempts_total", "result" => result).increment(1);
        self.inner
            .store
            .record_webhook_attempt(&after, self.inner.clock.now())
            .await?;
        Ok(delivered)
    }

    /// The wallet's webhook events and where their delivery stands (owner), newest first.
    pub async fn webhook_events(
        &self,
        principal: &Principal,
        page: Page,
    ) -> Result<Vec<WebhookEvent>, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        Ok(self.inner.store.webhook_events(wallet, page).await?)
    }
}

/// The HTTP client webhooks are sent with: bounded time, no redirects (a
/// receiver answers where it was registered).
pub(crate) fn webhook_client() -> Result<reqwest::Client, ServiceError> {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ServiceError::Config(format!("webhook HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_types::{PaymentLinkId, WalletId};

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_time() {
        let header = webhook_signature("whsec_a", 1_000, "{\"x\":1}");
        assert!(header.starts_with("t=1000,v1="));
        assert!(verify_webhook_signature(
            "whsec_a",
            &header,
            "{\"x\":1}",
            1_100,
            300
        ));
        assert!(!verify_webhook_signature(
            "whsec_b",
            &header,
            "{\"x\":1}",
            1_100,
            300
        ));
        assert!(!verify_webhook_signature(
            "whsec_a",
            &header,
            "{\"x\":2}",
            1_100,
            300
        ));
        assert!(!verify_webhook_signature(
            "whsec_a",
            &header,
            "{\"x\":1}",
            2_000,
            300
        ));
        assert!(!verify_webhook_signature("whsec_a", "v1=00", "{}", 0, 300));
    }

    #[test]
    fn failures_back_off_then_give_up() {
        let mut event = WebhookEvent {
            id: WebhookEventId::from_bytes([1; 16]),
            wallet_id: WalletId::from_bytes([2; 16]),
            link_id: PaymentLinkId::from_bytes([3; 16]),
            url: "http://x".into(),
            event_type: "payment.received".into(),
            payload: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: UnixMs(0),
            last_error: None,
            created_at: UnixMs(0),
        };
        let mut delays = Vec::new();
        let now = UnixMs(1_000_000);
        while event.status == DeliveryStatus::Pending {
            event = after_failure(event, "boom".into(), now);
            if event.status == DeliveryStatus::Pending {
                delays.push((event.next_attempt_at.millis() - now.millis()) / 1000);
            }
        }
        assert_eq!(delays, RETRY_DELAYS_SECS.to_vec());
        assert_eq!(event.attempts, 11, "one first attempt and ten retries");
        assert_eq!(event.last_error.as_deref(), Some("boom"));
    }
}
