//! The owner's dashboard: sign-in (owner token or password), sessions, and the
//! reads its pages are made of.
//!
//! A session is a value the server signs and the browser keeps in an `HttpOnly`
//! cookie: `v1.<wallet>.<expires ms>.<zone offset min>.<csrf>.<mac>`, the MAC an
//! HMAC-SHA256 under a key derived from the master key, so every server sharing the
//! database accepts it and no one else can forge one. It names an owner only: no
//! agent can hold one. The CSRF token inside it is echoed by every form the pages
//! render, and a form post must carry it.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use hmac::{Hmac, Mac};
use purser_core::audit::{ChainBreak, ChainHead};
use purser_signer::random_bytes;
use purser_store::{PaymentCursor, PaymentFilter, SpendByHost};
use purser_types::{MandateStatus, Reservation, Secret, UnixMs, Usdc, WalletId};
use sha2::Sha256;

use crate::auth::{self, Bearer, Principal};
use crate::{MandateView, Page, Purser, ServiceError, WalletView};

/// How long a dashboard session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// The shortest password accepted at wallet creation, in characters.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// The longest, in characters (Argon2 takes more, but nobody types more).
pub const PASSWORD_MAX_CHARS: usize = 256;
/// Failed password sign-ins per wallet allowed in [`SIGN_IN_WINDOW_MS`].
pub(crate) const SIGN_IN_FAILURES_MAX: u32 = 5;
/// The window over which failed sign-ins are counted.
pub(crate) const SIGN_IN_WINDOW_MS: i64 = 15 * 60 * 1000;
/// The days the overview's chart shows.
pub const CHART_DAYS: u32 = 7;

const SESSION_KEY_PURPOSE: &str = "dashboard-session-v1";
const DAY_MS: i64 = 86_400_000;
/// Verifying against this when the wallet has no password keeps a failed sign-in
/// as slow whether or not the wallet exists.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Qh0qdbFZB2Ue9HOfV0NiYx6T0D1GVuZ9FZCHwRvV+bA";

type HmacSha256 = Hmac<Sha256>;

/// How an owner proves who they are at sign-in.
#[derive(Debug)]
pub enum SignIn<'a> {
    /// The owner token shown at wallet creation.
    OwnerToken(&'a Secret<String>),
    /// The wallet's id and the password set at its creation.
    Password {
        /// The wallet.
        wallet: WalletId,
        /// The password.
        password: &'a Secret<String>,
    },
}

/// A signed-in owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSession {
    /// Their wallet.
    pub wallet: WalletId,
    /// When the session ends.
    pub expires_at: UnixMs,
    /// The viewer's zone as minutes east of UTC, read by the sign-in page.
    pub zone_offset_minutes: i32,
    /// The token every form of this session carries.
    pub csrf_token: String,
}

impl OwnerSession {
    /// The principal the session acts as.
    pub fn principal(&self) -> Principal {
        Principal::Owner {
            wallet: self.wallet,
        }
    }

    /// Whether a form's token is this session's (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        constant_time_eq(self.csrf_token.as_bytes(), token.as_bytes())
    }
}

/// Per-process state of the dashboard: sign-in throttling and the audit chain's
/// verified prefix.
#[derive(Debug, Default)]
pub(crate) struct DashboardState {
    failures: Mutex<HashMap<WalletId, (u32, i64)>>,
    audit: tokio::sync::Mutex<AuditProgress>,
}

#[derive(Debug, Default)]
struct AuditProgress {
    verified: Option<ChainHead>,
    broken: Option<ChainBreak>,
}

/// Where the audit chain stands, as the audit page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStatus {
    /// The records verified so far (the whole chain when `broken` is `None`).
    pub verified_records: u64,
    /// The first break found; once found it stays until the server restarts.
    pub broken: Option<ChainBreak>,
    /// Another check is walking the chain right now (the first one after a start
    /// walks all of it): `verified_records` and `broken` are not known yet.
    pub checking: bool,
    /// When this status was established.
    pub checked_at: UnixMs,
}

/// The overview page's figures.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The wallet and its balances.
    pub wallet: WalletView,
    /// Signed mandates still in force, newest first.
    pub active_mandates: Vec<MandateView>,
    /// Committed spend per day, oldest first; the last is today in the viewer's zone.
    pub daily_spend: Vec<Usdc>,
    /// The start of the chart's first day.
    pub first_day_start: UnixMs,
    /// Committed spend since the chart's first day, by destination.
    pub by_destination: Vec<SpendByHost>,
    /// Payments waiting for the owner's approval.
    pub pending_approvals: usize,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a new dashboard password (Argon2id, random salt) to its PHC string.
pub(crate) fn hash_password(password: &Secret<String>) -> Result<String, ServiceError> {
    let chars = password.expose().chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(ServiceError::InvalidRequest(format!(
            "password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"
        )));
    }
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| ServiceError::Config(format!("password hashing failed: {e}")))
}

fn password_matches(phc: &str, password: &Secret<String>) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok()
    })
}

const REFUSED: ServiceError =
    ServiceError::Unauthenticated("the wallet id or password is not valid");

impl Purser {
    /// Signs an owner in and returns the session and the cookie value that carries
    /// it. Agents cannot sign in: only owner tokens and wallet passwords are taken.
    pub async fn sign_in(
        &self,
        how: SignIn<'_>,
        zone_offset_minutes: i32,
    ) -> Result<(OwnerSession, Secret<String>), ServiceError> {
        let wallet = match how {
            SignIn::OwnerToken(token) => match auth::classify(token.expose().trim()) {
                Bearer::OwnerToken(_) => self.authenticate(token.expose().trim()).await?.wallet(),
                _ => return Err(ServiceError::Unauthenticated("that is not an owner token")),
            },
            SignIn::Password { wallet, password } => {
                self.check_password(wallet, password).await?;
                wallet
            }
        };
        let session = OwnerSession {
            wallet,
            expires_at: UnixMs(
                self.inner
                    .clock
                    .now()
                    .millis()
                    .saturating_add(SESSION_TTL_MS),
            ),
            zone_offset_minutes: zone_offset_minutes.clamp(-14 * 60, 14 * 60),
            csrf_token: hex::encode(random_bytes::<16>()?),
        };
        let cookie = self.seal_session(&session)?;
        Ok((session, cookie))
    }

    async fn check_password(
        &self,
        wallet: WalletId,
        password: &Secret<String>,
    ) -> Result<(), ServiceError> {
        let now = self.inner.clock.now().millis();
        self.throttle(wallet, now)?;
        let stored = self.inner.store.wallet_password_hash(wallet).await?;
        let candidate = Secret::new(password.expose().clone());
        let phc = stored.clone().unwrap_or_else(|| DUMMY_PHC.to_owned());
        // Argon2 takes tens of milliseconds of CPU: off the async workers.
        let matches = tokio::task::spawn_blocking(move || password_matches(&phc, &candidate))
            .await
            .map_err(|e| ServiceError::Config(format!("password check failed: {e}")))?;
        if matches && stored.is_some() {
            self.dashboard_state().failures_clear(wallet);
            Ok(())
        } else {
            self.dashboard_state().failure(wallet, now);
            Err(REFUSED)
        }
    }

    fn throttle(&self, wallet: WalletId, now: i64) -> Result<(), ServiceError> {
        let failures = self.dashboard_state().failures_in_window(wallet, now);
        if failures >= SIGN_IN_FAILURES_MAX {
            return Err(ServiceError::RateLimited);
        }
        Ok(())
    }

    fn dashboard_state(&self) -> &DashboardState {
        &self.inner.dashboard
    }

    fn session_mac(&self, body: &str) -> Result<HmacSha256, ServiceError> {
        let key = self.inner.master.derive_key(SESSION_KEY_PURPOSE);
        let mut mac = HmacSha256::new_from_slice(key.expose())
            .map_err(|e| ServiceError::Config(format!("session key: {e}")))?;
        mac.update(body.as_bytes());
        Ok(mac)
    }

    fn seal_session(&self, session: &OwnerSession) -> Result<Secret<String>, ServiceError> {
        let body = format!(
            "v1.{}.{}.{}.{}",
            session.wallet,
            session.expires_at.millis(),
            session.zone_offset_minutes,
            session.csrf_token
        );
        let tag = hex::encode(self.session_mac(&body)?.finalize().into_bytes());
        Ok(Secret::new(format!("{body}.{tag}")))
    }

    /// Opens a session cookie's value: its MAC must verify and it must not have
    /// expired. The wallet must still exist.
    pub fn open_session(&self, value: &str) -> Result<OwnerSession, ServiceError> {
        const INVALID: ServiceError = ServiceError::Unauthenticated("sign in again");
        let (body, tag) = value.rsplit_once('.').ok_or(INVALID)?;
        let tag = hex::decode(tag).map_err(|_| INVALID)?;
        self.session_mac(body)?
            .verify_slice(&tag)
            .map_err(|_| INVALID)?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(wallet), Some(expires), Some(zone), Some(csrf), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(INVALID);
        };
        let session = OwnerSession {
            wallet: wallet.parse().map_err(|_| INVALID)?,
            expires_at: UnixMs(expires.parse().map_err(|_| INVALID)?),
            zone_offset_minutes: zone.parse().map_err(|_| INVALID)?,
            csrf_token: csrf.to_owned(),
        };
        if session.expires_at <= self.inner.clock.now() {
            return Err(ServiceError::Unauthenticated(
                "the session has ended: sign in again",
            ));
        }
        Ok(session)
    }

    /// A random token for a form shown before sign-in (the sign-in form itself).
    pub fn new_form_token(&self) -> Result<String, ServiceError> {
        Ok(hex::encode(random_bytes::<16>()?))
    }

    /// The overview: balances, mandates in force, the last days' spend by day (in
    /// the viewer's zone) and by destination, and the approval queue's length.
    pub async fn overview(&self, session: &OwnerSession) -> Result<Overview, ServiceError> {
        let principal = session.principal();
        let wallet = self.wallet(&principal, session.wallet).await?;
        let now = self.inner.clock.now();
        let first_day_start = first_day_start(now, session.zone_offset_minutes, CHART_DAYS);
        let store = &self.inner.store;
        let (mandates, daily_spend, by_destination, approvals) = tokio::try_join!(
            async {
                self.mandates(
                    &principal,
                    Some(MandateStatus::Signed),
                    Page {
                        limit: 100,
                        before: None,
                    },
                )
                .await
            },
            async {
                Ok(store
                    .daily_spend(session.wallet, first_day_start, CHART_DAYS)
                    .await?)
            },
            async {
                Ok(store
                    .spend_by_host(session.wallet, first_day_start, 10)
                    .await?)
            },
            async {
                self.approvals(
                    &principal,
                    true,
                    Page {
                        limit: 100,
                        before: None,
                    },
                )
                .await
            },
        )?;
        Ok(Overview {
            wallet,
            active_mandates: mandates,
            daily_spend,
            first_day_start,
            by_destination,
            pending_approvals: approvals.len(),
        })
    }

    /// The owner's payments (every reservation the authorization path made), newest
    /// first.
    pub async fn payments(
        &self,
        principal: &Principal,
        filter: &PaymentFilter,
        before: Option<PaymentCursor>,
        limit: u32,
    ) -> Result<Vec<Reservation>, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        Ok(self
            .inner
            .store
            .payments(wallet, filter, before, limit)
            .await?)
    }

    /// Verifies the audit chain records written since the last check (the whole
    /// chain the first time) and says where it stands. The chain is the server's,
    /// shared by every wallet, so any owner may see whether it holds.
    pub async fn audit_status(&self) -> Result<AuditStatus, ServiceError> {
        let progress = self.dashboard_state().audit.lock().await;
        self.continue_audit(progress).await
    }

    /// [`Purser::audit_status`] for a page: when another check is under way (the
    /// whole chain after a start can take seconds), says so at once instead of
    /// waiting for it.
    pub async fn audit_status_now(&self) -> Result<AuditStatus, ServiceError> {
        match self.dashboard_state().audit.try_lock() {
            Ok(progress) => self.continue_audit(progress).await,
            Err(_) => Ok(AuditStatus {
                verified_records: 0,
                broken: None,
                checking: true,
                checked_at: self.inner.clock.now(),
            }),
        }
    }

    async fn continue_audit(
        &self,
        mut progress: tokio::sync::MutexGuard<'_, AuditProgress>,
    ) -> Result<AuditStatus, ServiceError> {
        if progress.broken.is_none() {
            let from = progress.verified.unwrap_or(ChainHead::EMPTY);
            match self.inner.store.verify_audit_after(from).await? {
                Ok(verification) => progress.verified = Some(verification.head),
                Err(chain_break) => {
                    tracing::error!(%chain_break, "the audit chain is broken");
                    progress.broken = Some(chain_break);
                }
            }
        }
        Ok(AuditStatus {
            verified_records: progress.verified.map_or(0, |h| h.seq),
            broken: progress.broken.clone(),
            checking: false,
            checked_at: self.inner.clock.now(),
        })
    }
}

impl DashboardState {
    fn failures_in_window(&self, wallet: WalletId, now: i64) -> u32 {
        let Ok(failures) = self.failures.lock() else {
            return 0;
        };
        failures
            .get(&wallet)
            .filter(|(_, since)| now.saturating_sub(*since) < SIGN_IN_WINDOW_MS)
            .map_or(0, |(count, _)| *count)
    }

    fn failure(&self, wallet: WalletId, now: i64) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(wallet).or_insert((0, now));
            if now.saturating_sub(entry.1) >= SIGN_IN_WINDOW_MS {
                *entry = (0, now);
            }
            entry.0 = entry.0.saturating_add(1);
        }
    }

    fn failures_clear(&self, wallet: WalletId) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&wallet);
        }
    }
}

/// The start (in UTC ms) of the first of `days` days ending today, days counted in
/// a zone `offset_minutes` east of UTC.
pub fn first_day_start(now: UnixMs, offset_minutes: i32, days: u32) -> UnixMs {
    let offset_ms = i64::from(offset_minutes) * 60_000;
    let local = now.millis().saturating_add(offset_ms);
    let today_start_local = local - local.rem_euclid(DAY_MS);
    let first_local = today_start_local - DAY_MS * i64::from(days.saturating_sub(1));
    UnixMs(first_local - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_local_midnight() {
        // 2026-11-21T01:30Z is still 2026-11-20 at UTC-05:00.
        let now = UnixMs(1_795_224_600_000);
        let start = first_day_start(now, -300, 1);
        assert_eq!(start.to_rfc3339(), "2026-11-20T05:00:00Z");
        let start = first_day_start(now, 0, 7);
        assert_eq!(start.to_rfc3339(), "2026-11-15T00:00:00Z");
        let start = first_day_start(now, 60, 1);
        assert_eq!(start.to_rfc3339(), "2026-11-20T23:00:00Z");
    }

    #[test]
    fn passwords_hash_and_verify() {
        let password = Secret::new("correct horse battery".to_owned());
        let phc = hash_password(&password).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(password_matches(&phc, &password));
        assert!(!password_matches(
            &phc,
            &Secret::new("wrong horse battery".into())
        ));
        assert!(hash_password(&Secret::new("short".into())).is_err());
        // The dummy hash parses, so a wallet without a password costs the same.
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
    }

    #[test]
    fn csrf_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
