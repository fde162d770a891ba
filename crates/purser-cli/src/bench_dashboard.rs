//! `purser bench dashboard`: how long the owner's dashboard pages take with a
//! realistic amount of history behind them.
//!
//! Each database is seeded through the real write path — the service's own calls
//! (wallets, agents, mandates drafted and signed, authorizations, commits,
//! releases, payouts, approvals, payment links paid over HTTP), each a change
//! through the store's committer with its audit records — by up to 64
//! concurrent workers. The service runs on a clock shifted into the past, so the payments
//! spread over the last 30 days (a change's time is its write request's `at`,
//! read from the service's clock); afterwards the clock is back to the wall
//! clock. Then the owner signs in (`Purser::sign_in` with the owner token) and
//! every page is requested over loopback HTTP with the session cookie, one
//! request at a time, and each answer is checked: status 200 and the content
//! expected (the payments listed are exactly those the seeding made, in order;
//! the chart is there; the chain verified), so no error page is ever timed.
//!
//! On PostgreSQL the benchmark does what autovacuum does on a default server (the
//! server here may run with `autovacuum = off`): it analyzes the schema's tables
//! every 10 s while it seeds, so the statements the store prepared while the
//! tables were empty are planned again as they grow, and vacuums and analyzes them
//! once the history is written, before any page is timed.
//!
//! The time is the client's, from sending the request to having the whole body:
//! the server's time plus one loopback exchange (~0.1 ms). The audit page
//! verifies the audit chain incrementally (the whole chain on a server's first
//! load, only new records after): its first load is reported on its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use purser_core::{Clock, SystemClock};
use purser_service::{
    Authorization, LinkDraft, MandateDraft, PaymentIntent, PayoutRequest, Principal, Purser, SignIn,
};
use purser_types::{
    AgentId, ApprovalId, Currency, Denial, MandateId, PaymentKind, PaymentLinkId, PayoutStatus,
    Secret, UnixMs, Usdc, WalletId, WalletPolicy,
};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::bench::{Target, agent_under_mandate, bench_key};
use crate::bench_link::{link_payment_required, sign_link_payment};
use crate::cli::BenchDashboardArgs;
use crate::commands::{Context, Reported};
use crate::serve::{Embedded, open_store};

const DAY_MS: i64 = 86_400_000;
/// The days the payments spread over, ending when the seeding starts.
const HISTORY_DAYS: i64 = 30;
/// Concurrent seeding workers at most (the committer groups their writes).
const SEED_WORKERS: usize = 64;
/// The dashboard's page size.
const PAGE_SIZE: usize = 50;
/// Untimed requests before each page's timed ones (the first is reported).
const WARM_UP: usize = 2;
/// How often PostgreSQL's tables are analyzed while the history is written.
const ANALYZE_EVERY: Duration = Duration::from_secs(10);

/// A clock that reads the wall clock plus an offset that only grows: the service
/// runs in the past while the history is written, then at the wall clock.
#[derive(Debug)]
struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl ShiftedClock {
    fn starting_at(at: UnixMs) -> Self {
        Self {
            offset_ms: AtomicI64::new(at.millis().saturating_sub(SystemClock.now().millis())),
        }
    }

    /// Moves the clock forward to `at` if it is behind it.
    fn at_least(&self, at: UnixMs) {
        let offset = at.millis().saturating_sub(SystemClock.now().millis());
        self.offset_ms.fetch_max(offset, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> UnixMs {
        UnixMs(
            SystemClock
                .now()
                .millis()
                .saturating_add(self.offset_ms.load(Ordering::SeqCst)),
        )
    }
}

/// The service on its clock, served over loopback as `purser serve` serves it.
struct Rig {
    server: Embedded,
    clock: Arc<ShiftedClock>,
}

impl Rig {
    async fn start(url: &str, clock: Arc<ShiftedClock>) -> Result<Rig> {
        let store = open_store(url, 256).await?;
        let server = Embedded::start_with(store, clock.clone(), |service| {
            // The approvals left waiting must still be waiting when the pages are read.
            service.approval_ttl_secs = 86_400;
        })
        .await?;
        Ok(Rig { server, clock })
    }

    async fn stop(self) -> Result<()> {
        self.server.stop().await
    }
}

/// A deterministic pseudo-random number for index `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick<T>(items: &[T], r: u64) -> Result<&T> {
    let len = u64::try_from(items.len())?;
    ensure!(len > 0, "nothing to pick from");
    let index = usize::try_from(r % len)?;
    items.get(index).context("index out of range")
}

/// Payment sizes in atomic units (0.001 to 2 USDC), small ones most often.
const AMOUNTS: &[u64] = &[
    1_000, 1_000, 2_000, 5_000, 5_000, 10_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000,
    2_000_000,
];

/// One seeded agent: its name and the hosts it pays.
struct AgentSpec {
    name: &'static str,
    hosts: &'static [&'static str],
    purposes: &'static [&'static str],
    /// How often it pays, relative to the others.
    weight: u64,
}

const AGENTS: &[AgentSpec] = &[
    AgentSpec {
        name: "research assistant",
        hosts: &[
            "api.search.example",
            "news.example.com",
            "papers.example.org",
        ],
        purposes: &[
            "search: supplier risk reports",
            "news article: market summary",
            "paper full text",
        ],
        weight: 35,
    },
    AgentSpec {
        name: "data pipeline",
        hosts: &["api.weather.example", "geo.example.net"],
        purposes: &["hourly forecast batch", "geocoding batch"],
        weight: 25,
    },
    AgentSpec {
        name: "support bot",
        hosts: &["llm.example.ai", "translate.example.com"],
        purposes: &["answer a ticket", "translate a reply"],
        weight: 20,
    },
    AgentSpec {
        name: "market watcher",
        hosts: &["quotes.example.com", "filings.example.gov"],
        purposes: &["price snapshot", "filing download"],
        weight: 15,
    },
    AgentSpec {
        name: "treasury",
        hosts: &["storage.example.io"],
        purposes: &["archive storage"],
        weight: 5,
    },
];

/// Hosts no mandate names: paying them takes the owner's approval.
const UNLISTED_HOSTS: &[&str] = &["pdf.tools.example", "vision.example.ai", "maps.example.com"];

/// One payment as the seeding made it: what the payments page must list.
#[derive(Debug, Clone)]
struct PaymentFact {
    created_at: i64,
    id: String,
    agent: AgentId,
    status: &'static str,
    kind: &'static str,
    host: Option<String>,
}

/// What the workers share.
struct Plan {
    purser: Purser,
    clock: Arc<ShiftedClock>,
    wallet: WalletId,
    owner: Principal,
    agents: Vec<AgentId>,
    supplier_address: String,
    /// The mandate revoked a third of the way through.
    revoke: MandateId,
    start: i64,
    span: i64,
    count: usize,
    payout_every: usize,
    approval_every: usize,
}

#[derive(Debug, Default)]
struct Tally {
    payments: Vec<PaymentFact>,
    payouts: usize,
    approvals_approved: usize,
    approvals_denied: usize,
    approvals_expired: usize,
}

impl Plan {
    fn time_of(&self, i: usize) -> Result<UnixMs> {
        let i = i64::try_from(i)?;
        let count = i64::try_from(self.count)?;
        let step = (self.span / count.max(1)).max(1);
        let jitter = i64::try_from(mix(u64::try_from(i)?) % u64::try_from(step)?)?;
        Ok(UnixMs(self.start + self.span * i / count.max(1) + jitter))
    }

    fn agent(&self, r: u64) -> Result<(usize, Principal)> {
        let total: u64 = AGENTS.iter().map(|a| a.weight).sum();
        let mut roll = r % total;
        let mut index = 0;
        for (i, spec) in AGENTS.iter().enumerate() {
            if roll < spec.weight {
                index = i;
                break;
            }
            roll -= spec.weight;
        }
        let agent = *self.agents.get(index).context("no such agent")?;
        Ok((
            index,
            Principal::Agent {
                agent,
                wallet: self.wallet,
            },
        ))
    }

    /// One worker: takes the next index until all are done.
    async fn work(self: Arc<Self>, next: Arc<AtomicUsize>) -> Result<Tally> {
        let mut tally = Tally::default();
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= self.count {
                return Ok(tally);
            }
            self.clock.at_least(self.time_of(i)?);
            if i == self.count / 3 {
                self.purser
                    .revoke_mandate(&self.owner, self.revoke, &bench_key()?)
                    .await?;
            }
            let seeded = if i % self.payout_every == self.payout_every / 2 {
                self.payout(i, &mut tally).await
            } else if i % self.approval_every == self.approval_every / 3 {
                self.approval(i, &mut tally).await
            } else {
                self.payment(i, &mut tally).await
            };
            seeded.with_context(|| format!("seeding payment {i}"))?;
        }
    }

    /// An agent pays a host its mandate names; most are committed with a
    /// settlement reference, some released, the newest 1% left held.
    async fn payment(&self, i: usize, tally: &mut Tally) -> Result<()> {
        let r = mix(u64::try_from(i)? ^ 0x5eed);
        let (index, principal) = self.agent(r)?;
        let spec = AGENTS.get(index).context("no such agent")?;
        let host = *pick(spec.hosts, r >> 8)?;
        let intent = PaymentIntent {
            amount: Usdc::from_atomic(*pick(AMOUNTS, r >> 16)?)?,
            payee_host: Some(host.to_owned()),
            payee_address: None,
            purpose: (*pick(spec.purposes, r >> 8)?).to_owned(),
            kind: PaymentKind::X402,
            mandate: None,
            approval: None,
            allow_approval: false,
        };
        let authorized = self
            .purser
            .authorize(&principal, &intent, &bench_key()?)
            .await?
            .value;
        let Authorization::Reserved { reservation } = authorized else {
            bail!("the payment was not reserved: {authorized:?}");
        };
        let status = if i >= self.count - self.count / 100 {
            "held"
        } else if (r >> 24) % 100 < 6 {
            self.purser
                .release_reservation(
                    &principal,
                    reservation.id,
                    "the service answered 503",
                    &bench_key()?,
                )
                .await?;
            "released"
        } else {
            let settlement = format!(
                "0x{:016x}{:016x}{:016x}{:016x}",
                mix(r),
                mix(r ^ 1),
                mix(r ^ 2),
                mix(r ^ 3)
            );
            self.purser
                .commit_reservation(&principal, reservation.id, Some(settlement), &bench_key()?)
                .await?;
            "committed"
        };
        tally.payments.push(PaymentFact {
            created_at: reservation.created_at.millis(),
            id: reservation.id.to_string(),
            agent: reservation.agent_id,
            status,
            kind: PaymentKind::X402.as_str(),
            host: Some(host.to_owned()),
        });
        Ok(())
    }

    /// The treasury agent pays the supplier (a wallet on this server): paid at
    /// once on the ledger.
    async fn payout(&self, i: usize, tally: &mut Tally) -> Result<()> {
        let r = mix(u64::try_from(i)? ^ 0xfee);
        let treasury = *self.agents.last().context("no agents")?;
        let principal = Principal::Agent {
            agent: treasury,
            wallet: self.wallet,
        };
        let request = PayoutRequest {
            id: format!("invoice-{i}").parse()?,
            to_address: self.supplier_address.clone(),
            amount: Usdc::from_atomic(5_000_000 + (r % 45_000_000))?,
            mandate: None,
        };
        let payout = self
            .purser
            .request_payout(&principal, &request)
            .await?
            .value;
        ensure!(
            payout.status == PayoutStatus::Succeeded,
            "the payout ended {:?}",
            payout.status
        );
        let reservation = payout.reservation_id.context("a paid payout has a hold")?;
        tally.payouts += 1;
        tally.payments.push(PaymentFact {
            created_at: payout.created_at.millis(),
            id: reservation.to_string(),
            agent: treasury,
            status: "committed",
            kind: PaymentKind::Payout.as_str(),
            host: None,
        });
        Ok(())
    }

    /// An agent asks to pay a host no mandate names; the owner approves (two in
    /// three; the agent then pays with the approval) or denies (and the agent
    /// makes an ordinary payment instead, so every index makes one payment).
    async fn approval(&self, i: usize, tally: &mut Tally) -> Result<()> {
        let r = mix(u64::try_from(i)? ^ 0xa99);
        let (_, principal) = self.agent(r % 95)?;
        let mut intent = PaymentIntent {
            amount: Usdc::from_atomic(3_000_000 + (r % 9_000_000))?,
            payee_host: Some((*pick(UNLISTED_HOSTS, r >> 8)?).to_owned()),
            payee_address: None,
            purpose: "one report from a new source".into(),
            kind: PaymentKind::X402,
            mandate: None,
            approval: None,
            allow_approval: true,
        };
        let approval = ask_owner(&self.purser, &principal, &intent).await?;
        if (r >> 16).is_multiple_of(3) {
            self.purser
                .decide_approval(&self.owner, approval, false, &bench_key()?)
                .await?;
            tally.approvals_denied += 1;
            return self.payment(i, tally).await;
        }
        self.purser
            .decide_approval(&self.owner, approval, true, &bench_key()?)
            .await?;
        intent.approval = Some(approval);
        let authorized = self
            .purser
            .authorize(&principal, &intent, &bench_key()?)
            .await?
            .value;
        let reservation = match authorized {
            Authorization::Reserved { reservation } => reservation,
            // The workers move the clock as they go: with few payments over the
            // month an approval can expire before its payment is made.
            Authorization::Denied {
                reason: Denial::ApprovalExpired,
            } => {
                tally.approvals_expired += 1;
                return self.payment(i, tally).await;
            }
            other => bail!("the approved payment was not reserved: {other:?}"),
        };
        self.purser
            .commit_reservation(
                &principal,
                reservation.id,
                Some(format!("0x{r:064x}")),
                &bench_key()?,
            )
            .await?;
        tally.approvals_approved += 1;
        tally.payments.push(PaymentFact {
            created_at: reservation.created_at.millis(),
            id: reservation.id.to_string(),
            agent: reservation.agent_id,
            status: "committed",
            kind: PaymentKind::X402.as_str(),
            host: reservation.payee.host.clone(),
        });
        Ok(())
    }
}

/// The agent asks for a payment no mandate covers: the approval it must wait for.
async fn ask_owner(
    purser: &Purser,
    principal: &Principal,
    intent: &PaymentIntent,
) -> Result<ApprovalId> {
    match purser
        .authorize(principal, intent, &bench_key()?)
        .await?
        .value
    {
        Authorization::ApprovalRequired { approval } => Ok(approval.id),
        other => bail!("the payment did not ask for approval: {other:?}"),
    }
}

/// The seeded database, as the checks need it.
struct Seeded {
    owner_token: Secret<String>,
    agents: Vec<AgentId>,
    /// Newest first, as the payments page lists them.
    payments: Vec<PaymentFact>,
    mandates: usize,
    busy_mandate: MandateId,
    payouts: usize,
    approvals_approved: usize,
    approvals_denied: usize,
    approvals_expired: usize,
    approvals_pending: usize,
    links: Vec<(PaymentLinkId, usize)>,
    seconds: f64,
}

/// Registers the owner's agents and has each draft mandates the owner signs (and
/// a few that end otherwise). Returns the agents, the mandate to revoke later,
/// the busiest mandate and how many mandates there are.
async fn agents_and_mandates(
    purser: &Purser,
    owner: &Principal,
    wallet: WalletId,
) -> Result<(Vec<AgentId>, MandateId, MandateId, usize)> {
    let mut agents = Vec::new();
    let mut mandates = Vec::new();
    let mut revoke = None;
    for (index, spec) in AGENTS.iter().enumerate() {
        let agent = purser
            .register_agent(owner, wallet, spec.name, &bench_key()?)
            .await?
            .value
            .agent
            .id;
        agents.push(agent);
        let principal = Principal::Agent { agent, wallet };
        let hosts: Vec<String> = spec.hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut drafts = vec![(
            MandateDraft {
                description: format!("{}: everyday calls", spec.name),
                limit_amount: Usdc::from_whole(100_000)?,
                max_amount_per_tx: Some(Usdc::from_whole(20)?),
                host_allowlist: hosts.clone(),
                valid_for_seconds: Some(60 * 86_400),
                ..MandateDraft::default()
            },
            "sign",
        )];
        let extra = match index {
            0 => Some((
                "first week trial",
                Usdc::from_whole(300)?,
                7 * 86_400,
                "sign",
            )),
            1 => Some((
                "pilot budget",
                Usdc::from_whole(200)?,
                60 * 86_400,
                "revoke",
            )),
            2 => Some((
                "translation at scale",
                Usdc::from_whole(5_000)?,
                60 * 86_400,
                "leave",
            )),
            3 => Some((
                "options data",
                Usdc::from_whole(50_000)?,
                60 * 86_400,
                "reject",
            )),
            _ => None,
        };
        if let Some((description, limit, seconds, fate)) = extra {
            drafts.push((
                MandateDraft {
                    description: format!("{}: {description}", spec.name),
                    limit_amount: limit,
                    host_allowlist: hosts.clone(),
                    valid_for_seconds: Some(seconds),
                    ..MandateDraft::default()
                },
                fate,
            ));
        }
        if index == AGENTS.len() - 1 {
            // The treasury pays suppliers' addresses: no host list.
            drafts.push((
                MandateDraft {
                    description: "supplier invoices".into(),
                    limit_amount: Usdc::from_whole(100_000)?,
                    max_amount_per_tx: Some(Usdc::from_whole(60)?),
                    valid_for_seconds: Some(60 * 86_400),
                    ..MandateDraft::default()
                },
                "sign",
            ));
        }
        for (draft, fate) in drafts {
            let id = purser
                .draft_mandate(&principal, &draft, &bench_key()?)
                .await?
                .value
                .mandate
                .id;
            match fate {
                "sign" | "revoke" => {
                    purser.approve_mandate(owner, id, &bench_key()?).await?;
                }
                "reject" => {
                    purser.reject_mandate(owner, id, &bench_key()?).await?;
                }
                _ => {}
            }
            if fate == "revoke" {
                revoke = Some(id);
            }
            mandates.push(id);
        }
    }
    let revoke = revoke.context("no mandate to revoke")?;
    let busy = *mandates.first().context("no mandates")?;
    Ok((agents, revoke, busy, mandates.len()))
}

/// A buyer's agent pays the owner's payment links over HTTP on the ledger rail:
/// `count` payments each (signed through `/api/payments/x402`, paid at `/pay/…`).
async fn paid_links(
    rig: &Rig,
    owner: &Principal,
    counts: &[usize],
) -> Result<Vec<(PaymentLinkId, usize)>> {
    let purser = &rig.server.purser;
    let buyer = purser
        .create_wallet("Buyer Co", Currency::Usdc, &bench_key()?)
        .await?
        .value
        .wallet
        .id;
    purser
        .fund_wallet(
            &Principal::Owner { wallet: buyer },
            buyer,
            Usdc::from_whole(10_000)?,
            &bench_key()?,
        )
        .await?;
    let draft = MandateDraft {
        description: "reports and datasets".into(),
        limit_amount: Usdc::from_whole(10_000)?,
        host_allowlist: vec![rig.server.base.trim_start_matches("http://").to_owned()],
        valid_for_seconds: Some(3600),
        ..MandateDraft::default()
    };
    let (jwt, _) = agent_under_mandate(purser, buyer, &draft).await?;
    let http = reqwest::Client::new();
    let offers = [
        ("Quarterly market report", "0.25", None),
        ("Dataset access for one day", "1", Some(500)),
    ];
    let mut links = Vec::new();
    for ((description, price, max_uses), count) in offers.iter().zip(counts) {
        let link = purser
            .create_link(
                owner,
                &LinkDraft {
                    amount: price.parse()?,
                    description: (*description).to_owned(),
                    resource_content: Some("https://files.example/report.pdf".into()),
                    resource_url: None,
                    expires_at: None,
                    max_uses: *max_uses,
                    webhook_url: None,
                },
                &bench_key()?,
            )
            .await?
            .value;
        for _ in 0..*count {
            pay_link(&http, &rig.server.base, &jwt, &link.pay_url).await?;
        }
        links.push((link.link.id, *count));
    }
    Ok(links)
}

/// One paid use of a link: the 402, the buyer's signature, the paid request.
async fn pay_link(http: &reqwest::Client, base: &str, jwt: &str, pay_url: &str) -> Result<()> {
    let required = link_payment_required(http, pay_url).await?;
    let header = sign_link_payment(http, base, jwt, &required, pay_url, "a report").await?;
    let paid = http
        .get(pay_url)
        .header("PAYMENT-SIGNATURE", header)
        .send()
        .await?;
    let status = paid.status();
    let _ = paid.bytes().await?;
    ensure!(
        status.is_success(),
        "a link payment was not served: {status}"
    );
    Ok(())
}

/// Seeds the database behind `rig` with `count` payments over the last 30 days.
async fn seed(rig: &Rig, count: usize) -> Result<Seeded> {
    let started = Instant::now();
    let purser = &rig.server.purser;
    let end = SystemClock.now();
    let start = end.plus_millis(-HISTORY_DAYS * DAY_MS);
    let created = purser
        .create_wallet("Acme Research", Currency::Usdc, &bench_key()?)
        .await?
        .value;
    let wallet = created.wallet.id;
    let owner_token = created
        .owner_token
        .context("a new wallet has an owner token")?;
    let owner = Principal::Owner { wallet };
    let supplier_address = purser
        .create_wallet("Supplier Ltd", Currency::Usdc, &bench_key()?)
        .await?
        .value
        .wallet
        .address;
    purser
        .fund_wallet(&owner, wallet, Usdc::from_whole(1_000_000)?, &bench_key()?)
        .await?;
    let policy = WalletPolicy {
        per_payment_cap: Some(Usdc::from_whole(100)?),
        denied_hosts: vec!["*.tracker.example".into()],
        ..WalletPolicy::default()
    };
    purser.set_policy(&owner, &policy, &bench_key()?).await?;
    let (agents, revoke, busy_mandate, mandates) =
        agents_and_mandates(purser, &owner, wallet).await?;
    let plan = Arc::new(Plan {
        purser: purser.clone(),
        clock: rig.clock.clone(),
        wallet,
        owner,
        agents: agents.clone(),
        supplier_address,
        revoke,
        start: start.millis(),
        span: HISTORY_DAYS * DAY_MS,
        count,
        payout_every: (count / (count / 333).max(1)).max(1),
        approval_every: (count / (count / 667).max(1)).max(1),
    });
    let next = Arc::new(AtomicUsize::new(0));
    // The clock follows the fastest worker, so the workers' payments are up to
    // one per worker apart in time: few workers for a short history keep that
    // well inside an approval's day.
    let workers: Vec<_> = (0..(count / 100).clamp(1, SEED_WORKERS))
        .map(|_| tokio::spawn(plan.clone().work(next.clone())))
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        let done = worker.await??;
        tally.payments.extend(done.payments);
        tally.payouts += done.payouts;
        tally.approvals_approved += done.approvals_approved;
        tally.approvals_denied += done.approvals_denied;
        tally.approvals_expired += done.approvals_expired;
    }
    ensure!(
        tally.payments.len() == count,
        "seeded {} payments, not {count}",
        tally.payments.len()
    );
    // Now: the clock back to the wall clock, a few approvals left waiting, and
    // the payment links paid.
    rig.clock.at_least(SystemClock.now());
    let waiting = [
        "vision.example.ai",
        "maps.example.com",
        "pdf.tools.example",
        "vision.example.ai",
    ];
    for (n, host) in waiting.iter().enumerate() {
        let agent = *agents.get(n % 4).context("no agent")?;
        let intent = PaymentIntent {
            amount: Usdc::from_whole(4)?,
            payee_host: Some((*host).to_owned()),
            payee_address: None,
            purpose: "one report from a new source".into(),
            kind: PaymentKind::X402,
            mandate: None,
            approval: None,
            allow_approval: true,
        };
        ask_owner(purser, &Principal::Agent { agent, wallet }, &intent).await?;
    }
    let links = paid_links(rig, &owner, &[24, 12]).await?;
    let mut payments = tally.payments;
    payments.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(Seeded {
        owner_token,
        agents,
        payments,
        mandates,
        busy_mandate,
        payouts: tally.payouts,
        approvals_approved: tally.approvals_approved,
        approvals_denied: tally.approvals_denied,
        approvals_expired: tally.approvals_expired,
        approvals_pending: waiting.len(),
        links,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One page to time and what its answer must hold.
struct PageSpec {
    label: String,
    path: String,
    /// Text the page must contain.
    contains: Vec<String>,
    /// Markers and how many times each must appear.
    counts: Vec<(&'static str, usize)>,
    /// The payments the page must list, in order.
    payment_ids: Option<Vec<String>>,
    /// Whether it must link to older payments.
    older: Option<bool>,
}

impl PageSpec {
    fn new(label: &str, path: String) -> Self {
        Self {
            label: label.to_owned(),
            path,
            contains: Vec::new(),
            counts: Vec::new(),
            payment_ids: None,
            older: None,
        }
    }

    fn containing(mut self, text: &str) -> Self {
        self.contains.push(text.to_owned());
        self
    }

    fn counting(mut self, marker: &'static str, n: usize) -> Self {
        self.counts.push((marker, n));
        self
    }

    fn check(&self, status: reqwest::StatusCode, body: &str) -> Result<()> {
        ensure!(
            status == reqwest::StatusCode::OK,
            "{} answered {status}: {}",
            self.path,
            body.chars().take(300).collect::<String>()
        );
        for text in &self.contains {
            ensure!(body.contains(text.as_str()), "{} lacks {text:?}", self.path);
        }
        for (marker, n) in &self.counts {
            let found = body.matches(marker).count();
            ensure!(
                found == *n,
                "{} has {found} × {marker:?}, not {n}",
                self.path
            );
        }
        if let Some(ids) = &self.payment_ids {
            let listed: Vec<&str> = body
                .split("data-payment-id=\"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .collect();
            ensure!(
                listed.len() == ids.len() && listed.iter().zip(ids).all(|(a, b)| *a == b),
                "{} lists {} payments, not the {} expected (first {:?}, expected {:?})",
                self.path,
                listed.len(),
                ids.len(),
                listed.first(),
                ids.first()
            );
        }
        if let Some(older) = self.older {
            ensure!(
                body.contains("id=\"older\"") == older,
                "{}: a link to older payments {}expected",
                self.path,
                if older { "" } else { "not " }
            );
        }
        Ok(())
    }
}

/// The payments page with a filter (and maybe a cursor): the rows it must list.
fn payments_page(
    seeded: &Seeded,
    label: &str,
    query: &str,
    matches: impl Fn(&PaymentFact) -> bool,
    older_than_middle: bool,
) -> PageSpec {
    let matching: Vec<&PaymentFact> = seeded.payments.iter().filter(|p| matches(p)).collect();
    let (cursor, listed): (Option<String>, Vec<&PaymentFact>) =
        match matching.get(matching.len() / 2) {
            Some(middle) if older_than_middle => (
                Some(format!("{}.{}", middle.created_at, middle.id)),
                matching
                    .iter()
                    .skip(matching.len() / 2 + 1)
                    .copied()
                    .collect(),
            ),
            _ => (None, matching),
        };
    let ids: Vec<String> = listed
        .iter()
        .take(PAGE_SIZE)
        .map(|p| p.id.clone())
        .collect();
    let mut path = format!("/payments{query}");
    if let Some(cursor) = cursor {
        path.push(if query.is_empty() { '?' } else { '&' });
        path.push_str(&format!("before={cursor}"));
    }
    let mut spec = PageSpec::new(label, path);
    spec.older = Some(ids.len() == PAGE_SIZE);
    spec.payment_ids = Some(ids);
    spec
}

fn pages(seeded: &Seeded) -> Result<Vec<PageSpec>> {
    let first_agent = *seeded.agents.first().context("no agents")?;
    let host = AGENTS
        .get(3)
        .and_then(|a| a.hosts.get(1))
        .context("no host")?;
    // Paid only with the owner's approval: a few dozen payments in 100,000.
    let rare_host = UNLISTED_HOSTS.last().context("no host")?;
    let recent: Vec<String> = seeded
        .payments
        .iter()
        .take(8)
        .map(|p| p.id.clone())
        .collect();
    let mut overview = PageSpec::new("overview", "/".into())
        .containing("id=\"spend-chart\"")
        .containing("id=\"active-mandates\"")
        .containing("id=\"destinations\"")
        .containing("id=\"pending-approvals\"")
        .counting("<g class=\"day\">", 7);
    overview.payment_ids = Some(recent);
    let (link, received) = *seeded.links.first().context("no links")?;
    let pages = vec![
        overview,
        PageSpec::new("agents", "/agents".into()).counting("<tr data-agent-id=", AGENTS.len()),
        PageSpec::new("mandates", "/mandates".into())
            .counting("<tr data-mandate-id=", seeded.mandates.min(PAGE_SIZE)),
        PageSpec::new(
            "mandate review",
            format!("/mandates/{}/review", seeded.busy_mandate),
        )
        .containing("status-signed"),
        PageSpec::new("approvals", "/approvals".into())
            .counting("<li data-approval-id=", seeded.approvals_pending),
        payments_page(seeded, "payments", "", |_| true, false),
        payments_page(
            seeded,
            "payments, agent + committed",
            &format!("?agent={first_agent}&status=committed"),
            |p| p.agent == first_agent && p.status == "committed",
            false,
        ),
        payments_page(
            seeded,
            "payments, common host",
            &format!("?host={host}"),
            |p| p.host.as_deref() == Some(*host),
            false,
        ),
        payments_page(
            seeded,
            "payments, host with few",
            &format!("?host={rare_host}"),
            |p| p.host.as_deref() == Some(*rare_host),
            false,
        ),
        payments_page(
            seeded,
            "payments, kind payout",
            "?kind=payout",
            |p| p.kind == "payout",
            false,
        ),
        payments_page(
            seeded,
            "payments, status held",
            "?status=held",
            |p| p.status == "held",
            false,
        ),
        payments_page(
            seeded,
            "payments, kind refund (none)",
            "?kind=refund",
            |p| p.kind == "refund",
            false,
        ),
        payments_page(seeded, "payments, older page", "", |_| true, true),
        payments_page(
            seeded,
            "payments, agent + committed, older",
            &format!("?agent={first_agent}&status=committed"),
            |p| p.agent == first_agent && p.status == "committed",
            true,
        ),
        PageSpec::new("payouts", "/payouts".into())
            .counting("<tr data-payout-id=", seeded.payouts.min(PAGE_SIZE)),
        PageSpec::new("links", "/links".into()).counting("<tr data-link-id=", seeded.links.len()),
        PageSpec::new("link", format!("/links/{link}")).counting("<tr data-received-id=", received),
        audit_page(),
        PageSpec::new("settings", "/settings".into()).containing("id=\"policy\""),
    ];
    Ok(pages)
}

fn audit_page() -> PageSpec {
    PageSpec::new("audit", "/audit".into())
        .containing("Chain verified: all")
        .counting("<tr><td class=\"num\">", PAGE_SIZE)
}

/// One page's figures.
struct Timed {
    label: String,
    path: String,
    first_ms: f64,
    latencies_us: Vec<u64>,
}

impl Timed {
    fn percentile_ms(&self, p: f64) -> f64 {
        let Some(last) = self.latencies_us.len().checked_sub(1) else {
            return 0.0;
        };
        let rank = ((last as f64) * p).round() as usize;
        self.latencies_us.get(rank.min(last)).copied().unwrap_or(0) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0
    }

    fn json(&self) -> Value {
        json!({
            "page": self.label, "path": self.path, "requests": self.latencies_us.len(),
            "firstMs": self.first_ms, "p50Ms": self.percentile_ms(0.50),
            "p99Ms": self.percentile_ms(0.99), "maxMs": self.max_ms(),
        })
    }
}

/// Requests `page` once, checks the answer, and returns how long it took in µs.
async fn fetch(http: &reqwest::Client, base: &str, cookie: &str, page: &PageSpec) -> Result<u64> {
    let sent = Instant::now();
    let response = http
        .get(format!("{base}{}", page.path))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
    page.check(status, &String::from_utf8_lossy(&body))
        .with_context(|| format!("page {}", page.label))?;
    Ok(took)
}

async fn time_page(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    page: &PageSpec,
    requests: usize,
) -> Result<Timed> {
    let mut first_ms = 0.0;
    for n in 0..WARM_UP {
        let took = fetch(http, base, cookie, page).await?;
        if n == 0 {
            first_ms = took as f64 / 1000.0;
        }
    }
    let mut latencies_us = Vec::with_capacity(requests);
    for _ in 0..requests {
        latencies_us.push(fetch(http, base, cookie, page).await?);
    }
    latencies_us.sort_unstable();
    Ok(Timed {
        label: page.label.clone(),
        path: page.path.clone(),
        first_ms,
        latencies_us,
    })
}

/// Analyzes (or vacuums and analyzes) every table of the benchmark's PostgreSQL
/// schema, as autovacuum would.
async fn analyze(url: &str, vacuum: bool) -> Result<()> {
    let mut conn = AnyConnection::connect(url).await?;
    let tables = conn
        .fetch_all(
            "SELECT CAST(tablename AS TEXT) AS name FROM pg_tables WHERE schemaname = current_schema()",
        )
        .await?;
    let verb = if vacuum {
        "VACUUM (ANALYZE)"
    } else {
        "ANALYZE"
    };
    for table in tables {
        let name: String = table.try_get("name")?;
        conn.execute(sqlx::AssertSqlSafe(format!("{verb} \"{name}\"")))
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// Analyzes the tables every [`ANALYZE_EVERY`] until told to stop.
struct Analyzer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Analyzer {
    fn start(url: &str) -> Analyzer {
        let url = url.to_owned();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(()),
                    () = tokio::time::sleep(ANALYZE_EVERY) => analyze(&url, false).await?,
                }
            }
        });
        Analyzer { stop, task }
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the analyzer failed")?
    }
}

struct Measured {
    seeded: Seeded,
    /// PostgreSQL's vacuum and analyze after seeding, in seconds.
    vacuum_seconds: Option<f64>,
    audit_first_ms: f64,
    pages: Vec<Timed>,
}

async fn measure(url: &str, postgres: bool, payments: usize, requests: usize) -> Result<Measured> {
    // The service starts a day before the history it is about to write.
    let clock = Arc::new(ShiftedClock::starting_at(
        SystemClock.now().plus_millis(-(HISTORY_DAYS + 1) * DAY_MS),
    ));
    let rig = Rig::start(url, clock).await?;
    let analyzer = postgres.then(|| Analyzer::start(url));
    let seeded = seed(&rig, payments).await;
    if let Some(analyzer) = analyzer {
        analyzer.stop().await?;
    }
    let seeded = seeded?;
    let vacuum_seconds = if postgres {
        let started = Instant::now();
        analyze(url, true).await?;
        Some(started.elapsed().as_secs_f64())
    } else {
        None
    };
    let (_, cookie) = rig
        .server
        .purser
        .sign_in(SignIn::OwnerToken(&seeded.owner_token), 0)
        .await?;
    let cookie = format!("purser_session={}", cookie.expose());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // The audit page's first load verifies the whole chain: timed on its own,
    // before anything else has the server verify it.
    let audit_first = fetch(&http, &rig.server.base, &cookie, &audit_page()).await?;
    let mut timed = Vec::new();
    for page in pages(&seeded)? {
        timed.push(time_page(&http, &rig.server.base, &cookie, &page, requests).await?);
    }
    let ledger = rig.server.purser.store().check_ledger().await?;
    ensure!(
        ledger.is_ok(),
        "ledger invariants broken after seeding: {:?}",
        ledger.violations
    );
    rig.stop().await?;
    Ok(Measured {
        seeded,
        vacuum_seconds,
        audit_first_ms: audit_first as f64 / 1000.0,
        pages: timed,
    })
}

fn label(database: &str) -> &'static str {
    if database == "sqlite" {
        "sqlite"
    } else {
        "postgres"
    }
}

pub(crate) async fn dashboard(ctx: &Context, args: BenchDashboardArgs) -> Result<()> {
    if args.payments < 100 || args.requests == 0 {
        return Err(
            Reported("--payments must be at least 100 and --requests above 0".into()).into(),
        );
    }
    sqlx::any::install_default_drivers();
    let mut runs = Vec::new();
    for database in &args.db {
        let target = Target::create(database).await?;
        let postgres = database != "sqlite";
        let measured = measure(&target.url, postgres, args.payments, args.requests).await;
        target.cleanup().await;
        let measured = measured?;
        let seeded = &measured.seeded;
        let count = |status: &str| {
            seeded
                .payments
                .iter()
                .filter(|p| p.status == status)
                .count()
        };
        let seeding = json!({
            "payments": seeded.payments.len(), "committed": count("committed"),
            "released": count("released"), "held": count("held"), "payouts": seeded.payouts,
            "approvalsApproved": seeded.approvals_approved, "approvalsDenied": seeded.approvals_denied,
            "approvalsExpired": seeded.approvals_expired,
            "approvalsPending": seeded.approvals_pending, "mandates": seeded.mandates,
            "links": seeded.links.len(),
            "linkPayments": seeded.links.iter().map(|(_, n)| n).sum::<usize>(),
            "seconds": seeded.seconds, "vacuumAnalyzeSeconds": measured.vacuum_seconds,
        });
        if !ctx.json {
            let db = label(database);
            println!(
                "{db}: seeded {} payments over {HISTORY_DAYS} days ({} committed, {} released, {} held; {} payouts; {} approvals approved, {} denied, {} expired, {} waiting; {} links paid {} times) in {:.1} s",
                seeded.payments.len(),
                count("committed"),
                count("released"),
                count("held"),
                seeded.payouts,
                seeded.approvals_approved,
                seeded.approvals_denied,
                seeded.approvals_expired,
                seeded.approvals_pending,
                seeded.links.len(),
                seeded.links.iter().map(|(_, n)| n).sum::<usize>(),
                seeded.seconds,
            );
            if let Some(seconds) = measured.vacuum_seconds {
                println!(
                    "{db}: tables analyzed every {} s while seeding; VACUUM (ANALYZE) after: {seconds:.1} s",
                    ANALYZE_EVERY.as_secs()
                );
            }
            println!(
                "{db:<9} {:<36} {:>8} {:>9} {:>9} {:>9} {:>9}",
                "page", "requests", "first", "p50", "p99", "max"
            );
            println!(
                "{db:<9} {:<36} {:>8} {:>6.2} ms {:>9} {:>9} {:>9}",
                "audit, first load (whole chain)", 1, measured.audit_first_ms, "", "", ""
            );
            for page in &measured.pages {
                println!(
                    "{db:<9} {:<36} {:>8} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6.2} ms",
                    page.label,
                    page.latencies_us.len(),
                    page.first_ms,
                    page.percentile_ms(0.50),
                    page.percentile_ms(0.99),
                    page.max_ms()
                );
            }
        }
        runs.push(json!({
            "database": label(database), "seeding": seeding,
            "auditFirstLoadMs": measured.audit_first_ms,
            "pages": measured.pages.iter().map(Timed::json).collect::<Vec<_>>(),
        }));
    }
    if ctx.json {
        let body = json!({ "payments": args.payments, "requests": args.requests, "runs": runs });
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}
