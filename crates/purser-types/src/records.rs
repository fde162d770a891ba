//! The records every layer talks about: wallets, agents, ledger accounts and
//! transfers, audit records, and who acted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{AgentId, TransferId, WalletId};
use crate::money::{Currency, Usdc};
use crate::time::UnixMs;

/// Who did something: the person who owns a wallet, one of its agents, or Purser itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The owner of this wallet (a person, holding the owner token).
    Owner(WalletId),
    /// An agent, acting with its credential or JWT.
    Agent(AgentId),
    /// Purser itself (migrations, background jobs).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Owner(wallet) => write!(f, "owner:{wallet}"),
            Actor::Agent(agent) => write!(f, "agent:{agent}"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// Why a string is not an actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid actor: {0:?}")]
pub struct ActorParseError(String);

impl FromStr for Actor {
    type Err = ActorParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ActorParseError(s.to_owned());
        match s.split_once(':') {
            _ if s == "system" => Ok(Actor::System),
            Some(("owner", id)) => id.parse().map(Actor::Owner).map_err(|_| err()),
            Some(("agent", id)) => id.parse().map(Actor::Agent).map_err(|_| err()),
            _ => Err(err()),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Actor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("`owner:<walletId>`, `agent:<agentId>` or `system`"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Actor {}

/// A wallet: one person's pool of USDC that their agents draw from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    /// The wallet's id.
    pub id: WalletId,
    /// A name the owner chose.
    pub name: String,
    /// The wallet's currency.
    pub currency: Currency,
    /// The wallet's EVM address (EIP-55 checksummed); its key never leaves the signer.
    pub address: String,
    /// When the wallet was created.
    pub created_at: UnixMs,
}

/// A wallet's balances, read from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Balances {
    /// The currency of every amount here.
    pub currency: Currency,
    /// What can be spent now.
    pub available: Usdc,
    /// What is held for payments in flight.
    pub reserved: Usdc,
    /// `available + reserved`.
    pub total: Usdc,
}

/// Whether an agent may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// The agent may authenticate and act within its wallet.
    Active,
    /// The owner revoked the agent; nothing it holds works any more.
    Revoked,
}

impl AgentStatus {
    /// The stable storage and wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Revoked => "revoked",
        }
    }
}

impl FromStr for AgentStatus {
    type Err = ActorParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(AgentStatus::Active),
            "revoked" => Ok(AgentStatus::Revoked),
            other => Err(ActorParseError(other.to_owned())),
        }
    }
}

/// An agent registered on a wallet: its Agent ID and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    /// The Agent ID.
    pub id: AgentId,
    /// The wallet the agent draws from.
    pub wallet_id: WalletId,
    /// A name the owner chose.
    pub name: String,
    /// Active or revoked.
    pub status: AgentStatus,
    /// When the owner registered the agent.
    pub created_at: UnixMs,
    /// When the owner revoked the agent, if they did.
    pub revoked_at: Option<UnixMs>,
}

/// What a ledger account is for. Fixes whether its balance may go below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A wallet's spendable funds. Never negative.
    Available,
    /// A wallet's funds held for payments in flight. Never negative.
    Reserved,
    /// The simulated on-ramp of a sandbox server: where test money comes from.
    SandboxOnramp,
    /// Money that left the server to external payees.
    ExternalPayouts,
    /// Fees collected by the operator.
    Fees,
    /// Where on-chain deposits come from: runs negative by what wallets received on chain.
    ChainDeposits,
}

impl AccountKind {
    /// Every kind.
    pub const ALL: [AccountKind; 6] = [
        AccountKind::Available,
        AccountKind::Reserved,
        AccountKind::SandboxOnramp,
        AccountKind::ExternalPayouts,
        AccountKind::Fees,
        AccountKind::ChainDeposits,
    ];

    /// The stable storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::Available => "available",
            AccountKind::Reserved => "reserved",
            AccountKind::SandboxOnramp => "sandbox_onramp",
            AccountKind::ExternalPayouts => "external_payouts",
            AccountKind::Fees => "fees",
            AccountKind::ChainDeposits => "chain_deposits",
        }
    }

    /// True for the accounts that belong to a wallet.
    pub const fn is_wallet(self) -> bool {
        matches!(self, AccountKind::Available | AccountKind::Reserved)
    }

    /// Sources of money (on-ramps) run negative by what they have issued; every other
    /// account, wallets above all, must stay at or above zero.
    pub const fn may_go_negative(self) -> bool {
        matches!(
            self,
            AccountKind::SandboxOnramp | AccountKind::ChainDeposits
        )
    }
}

impl FromStr for AccountKind {
    type Err = AccountIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| AccountIdError(s.to_owned()))
    }
}

/// A ledger account, named by what it is: `wal_…/available/USDC` or
/// `system/sandbox_onramp/USDC`. Ids are derived, never looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    /// What the account is for.
    pub kind: AccountKind,
    /// The wallet it belongs to; `None` for system accounts.
    pub wallet: Option<WalletId>,
    /// Its currency; a transfer only joins accounts of one currency.
    pub currency: Currency,
}

/// Why a string is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid account id: {0:?}")]
pub struct AccountIdError(String);

impl AccountId {
    /// A wallet's spendable account.
    pub const fn available(wallet: WalletId, currency: Currency) -> Self {
        Self {
            kind: AccountKind::Available,
            wallet: Some(wallet),
            currency,
        }
    }

    /// A wallet's reserved account.
    pub const fn reserved(wallet: WalletId, currency: Currency) -> Self {
        Self {
            kind: AccountKind::Reserved,
            wallet: Some(wallet),
            currency,
        }
    }

    /// A system account of the given kind.
    pub const fn system(kind: AccountKind, currency: Currency) -> Self {
        Self {
            kind,
            wallet: None,
            currency,
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wallet {
            Some(wallet) => write!(f, "{wallet}/{}/{}", self.kind.as_str(), self.currency),
            None => write!(f, "system/{}/{}", self.kind.as_str(), self.currency),
        }
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for AccountId {
    type Err = AccountIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AccountIdError(s.to_owned());
        let mut parts = s.split('/');
        let (Some(owner), Some(kind), Some(currency), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        let kind: AccountKind = kind.parse()?;
        let currency: Currency = currency.parse().map_err(|_| err())?;
        let wallet = match owner {
            "system" if !kind.is_wallet() => None,
            id if kind.is_wallet() => Some(id.parse().map_err(|_| err())?),
            _ => return Err(err()),
        };
        Ok(AccountId {
            kind,
            wallet,
            currency,
        })
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for AccountId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "`<walletId>/<kind>/<currency>` or `system/<kind>/<currency>`",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for AccountId {}

/// Why money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Test money from the sandbox on-ramp into a wallet.
    SandboxFunding,
    /// A direct movement between two accounts (operator tools, tests, benchmarks).
    Adjustment,
    /// Funds held for an authorized payment (available → reserved).
    Reserve,
    /// A hold given back (reserved → available).
    Release,
    /// A held payment made (reserved → payee).
    Payment,
    /// USDC that arrived at a wallet's address on chain.
    Deposit,
}

impl TransferKind {
    /// Every kind.
    pub const ALL: [TransferKind; 6] = [
        TransferKind::SandboxFunding,
        TransferKind::Adjustment,
        TransferKind::Reserve,
        TransferKind::Release,
        TransferKind::Payment,
        TransferKind::Deposit,
    ];

    /// The stable storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferKind::SandboxFunding => "sandbox_funding",
            TransferKind::Adjustment => "adjustment",
            TransferKind::Reserve => "reserve",
            TransferKind::Release => "release",
            TransferKind::Payment => "payment",
            TransferKind::Deposit => "deposit",
        }
    }
}

impl FromStr for TransferKind {
    type Err = AccountIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransferKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| AccountIdError(s.to_owned()))
    }
}

/// One immutable movement of money between two accounts of the same currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// The transfer's id.
    pub id: TransferId,
    /// The account the money left.
    pub from: AccountId,
    /// The account the money reached.
    pub to: AccountId,
    /// How much moved; never zero.
    pub amount: Usdc,
    /// The currency of both accounts.
    pub currency: Currency,
    /// Why it moved.
    pub kind: TransferKind,
    /// A free-text note from the caller, if any.
    pub memo: Option<String>,
    /// When it was committed.
    pub created_at: UnixMs,
}

/// A SHA-256 digest, printed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash that precedes the first record of a chain.
    pub const GENESIS: Hash32 = Hash32([0; 32]);

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Hash32> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = text.get(i * 2..i * 2 + 2)?;
            if !pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Hash32(bytes))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::write_hex(f, &self.0)
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({self})")
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hash32::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Hash32 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-f]{64}$"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Hash32 {}

/// What an audit record is about, before it is chained: the part a writer supplies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Who acted.
    pub actor: Actor,
    /// What happened, e.g. `wallet.created`, `agent.revoked`, `ledger.transfer`.
    pub action: String,
    /// The wallet concerned, if any.
    pub wallet_id: Option<WalletId>,
    /// The id of the object acted on.
    pub subject: String,
    /// Facts about the change as compact JSON text, hashed exactly as stored.
    pub details: String,
}

/// One link of the tamper-evident audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When the change was committed.
    pub at: UnixMs,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The hash of the previous record (all zeros for the first).
    pub prev_hash: Hash32,
    /// SHA-256 over this record's fields and `prev_hash`.
    pub hash: Hash32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_round_trip() {
        let wallet = WalletId::from_bytes([7; 16]);
        for id in [
            AccountId::available(wallet, Currency::Usdc),
            AccountId::reserved(wallet, Currency::Usdc),
            AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc),
            AccountId::system(AccountKind::Fees, Currency::Usdc),
        ] {
            assert_eq!(id.to_string().parse::<AccountId>(), Ok(id));
        }
        assert!("system/available/USDC".parse::<AccountId>().is_err());
        assert!(format!("{wallet}/fees/USDC").parse::<AccountId>().is_err());
        assert!(
            format!("{wallet}/available/EUR")
                .parse::<AccountId>()
                .is_err()
        );
        assert!(
            format!("{wallet}/available/USDC/x")
                .parse::<AccountId>()
                .is_err()
        );
    }

    #[test]
    fn actors_round_trip() {
        let wallet = WalletId::from_bytes([1; 16]);
        let agent = AgentId::from_bytes([2; 16]);
        for actor in [Actor::Owner(wallet), Actor::Agent(agent), Actor::System] {
            assert_eq!(actor.to_string().parse::<Actor>(), Ok(actor));
        }
        assert!("owner:agt_x".parse::<Actor>().is_err());
    }
}
