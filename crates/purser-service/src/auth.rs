//! Who is calling: owner tokens, agent credentials and agent JWTs.
//!
//! - An **owner token** (`purser_owner_…`) is shown once when a wallet is created and
//!   stored only as its SHA-256. It is 256 random bits, so a fast hash is enough: there
//!   is nothing to brute-force.
//! - An **agent credential** (`purser_agent_…`) is shown once when an agent is
//!   registered and stored the same way. The agent exchanges it for a JWT.
//! - An **agent JWT** is signed with Ed25519 (EdDSA), lives at most 15 minutes, and
//!   names the agent and its wallet. Its signature, `iss`, `aud` and `exp` are
//!   checked, and then the agent's row: a revoked agent is refused on the very next
//!   request, however fresh its token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use purser_signer::{TokenSigningKey, random_bytes};
use purser_types::{Actor, AgentId, AgentStatus, Hash32, Secret, UnixMs, WalletId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ServiceError;

/// The prefix of owner tokens (lets secret scanners recognise leaked ones).
pub const OWNER_TOKEN_PREFIX: &str = "purser_owner_";
/// The prefix of agent credentials.
pub const AGENT_CREDENTIAL_PREFIX: &str = "purser_agent_";
/// The audience of agent JWTs.
pub const AGENT_TOKEN_AUDIENCE: &str = "purser:agent";
/// The longest life an agent JWT may have.
pub const AGENT_TOKEN_TTL_MAX_SECS: u64 = 900;

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The person who owns this wallet.
    Owner {
        /// Their wallet.
        wallet: WalletId,
    },
    /// An active agent of this wallet.
    Agent {
        /// The agent.
        agent: AgentId,
        /// Its wallet.
        wallet: WalletId,
    },
}

impl Principal {
    /// The actor named in audit records.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Owner { wallet } => Actor::Owner(*wallet),
            Principal::Agent { agent, .. } => Actor::Agent(*agent),
        }
    }

    /// The wallet the caller belongs to.
    pub fn wallet(&self) -> WalletId {
        match self {
            Principal::Owner { wallet } | Principal::Agent { wallet, .. } => *wallet,
        }
    }

    /// For owner-only operations on `wallet`: agents are refused outright (403),
    /// owners of other wallets see nothing (404).
    pub fn require_owner_of(&self, wallet: WalletId) -> Result<(), ServiceError> {
        match self {
            Principal::Agent { .. } => Err(ServiceError::Forbidden(
                "agents cannot use owner operations",
            )),
            Principal::Owner { wallet: own } if *own == wallet => Ok(()),
            Principal::Owner { .. } => Err(ServiceError::NotFound),
        }
    }

    /// For reads either party may make: only within the caller's own wallet.
    pub fn require_member_of(&self, wallet: WalletId) -> Result<(), ServiceError> {
        if self.wallet() == wallet {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// For an object that belongs to one agent (the agent itself, its mandates,
    /// approvals, payouts): its wallet's owner, or that agent. Anyone else — another
    /// agent of the same wallet included — is told it does not exist.
    pub fn require_owner_or_agent(
        &self,
        wallet: WalletId,
        agent: AgentId,
    ) -> Result<(), ServiceError> {
        let visible = match self {
            Principal::Owner { wallet: own } => *own == wallet,
            Principal::Agent { agent: me, .. } => *me == agent,
        };
        if visible {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }
}

/// A freshly generated secret (owner token or agent credential) and its hash.
pub(crate) struct NewSecret {
    pub(crate) secret: Secret<String>,
    pub(crate) hash: Hash32,
}

pub(crate) fn new_secret(prefix: &str) -> Result<NewSecret, ServiceError> {
    let bytes = random_bytes::<32>()?;
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&secret);
    Ok(NewSecret {
        secret: Secret::new(secret),
        hash,
    })
}

/// The stored form of an owner token or agent credential.
pub fn hash_secret(secret: &str) -> Hash32 {
    Hash32(Sha256::digest(secret.as_bytes()).into())
}

/// What a bearer token looks like, before it is checked.
pub(crate) enum Bearer<'a> {
    OwnerToken(&'a str),
    AgentCredential,
    Jwt(&'a str),
}

pub(crate) fn classify(bearer: &str) -> Bearer<'_> {
    if bearer.starts_with(OWNER_TOKEN_PREFIX) {
        Bearer::OwnerToken(bearer)
    } else if bearer.starts_with(AGENT_CREDENTIAL_PREFIX) {
        Bearer::AgentCredential
    } else {
        Bearer::Jwt(bearer)
    }
}

/// The claims of an agent JWT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AgentClaims {
    pub(crate) iss: String,
    pub(crate) aud: String,
    pub(crate) sub: String,
    pub(crate) wallet: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) jti: String,
}

/// A JWT handed to an agent.
#[derive(Debug)]
pub struct AgentToken {
    /// The compact JWT.
    pub token: Secret<String>,
    /// When it stops working.
    pub expires_at: UnixMs,
    /// Its life in seconds.
    pub expires_in_secs: u64,
}

/// A public key in JWK form (RFC 7517, OKP/Ed25519 per RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id that JWT headers name.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `EdDSA`.
    pub alg: String,
}

/// The most verified tokens remembered at once.
const VERIFIED_CACHE_MAX: usize = 65_536;

/// Tokens whose signature, issuer, audience and key id already verified, by
/// SHA-256 of the token, with what they name and when they expire. An agent reuses
/// one token for up to 15 minutes, so this spares an Ed25519 verification per
/// request. Expiry is still checked on every use, and revocation is still read from
/// storage on every request: a revoked agent's cached token is refused at once.
#[derive(Default)]
struct VerifiedTokens(
    std::sync::Mutex<std::collections::HashMap<[u8; 32], (AgentId, WalletId, i64)>>,
);

impl VerifiedTokens {
    fn get(&self, digest: &[u8; 32]) -> Option<(AgentId, WalletId, i64)> {
        self.0.lock().ok()?.get(digest).copied()
    }

    fn insert(&self, digest: [u8; 32], entry: (AgentId, WalletId, i64), now_secs: i64) {
        let Ok(mut cache) = self.0.lock() else { return };
        if cache.len() >= VERIFIED_CACHE_MAX {
            cache.retain(|_, (_, _, exp)| *exp > now_secs);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(digest, entry);
    }
}

/// Issues and checks agent JWTs.
pub(crate) struct TokenAuthority {
    issuer: String,
    ttl_secs: u64,
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
    verified: VerifiedTokens,
}

impl TokenAuthority {
    pub(crate) fn new(
        key: &TokenSigningKey,
        issuer: String,
        ttl_secs: u64,
    ) -> Result<Self, ServiceError> {
        if ttl_secs == 0 || ttl_secs > AGENT_TOKEN_TTL_MAX_SECS {
            return Err(ServiceError::Config(format!(
                "agent token lifetime must be 1-{AGENT_TOKEN_TTL_MAX_SECS} seconds"
            )));
        }
        let x = key.public_key_b64url();
        let decoding = DecodingKey::from_ed_components(&x)
            .map_err(|e| ServiceError::TokenSigning(e.to_string()))?;
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            kid: key.key_id(),
            use_: "sig".into(),
            alg: "EdDSA".into(),
        };
        Ok(TokenAuthority {
            issuer,
            ttl_secs,
            key_id: key.key_id(),
            encoding: EncodingKey::from_ed_der(key.pkcs8_der()),
            decoding,
            jwk,
            verified: VerifiedTokens::default(),
        })
    }

    pub(crate) fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub(crate) fn issue(
        &self,
        agent: AgentId,
        wallet: WalletId,
        now: UnixMs,
    ) -> Result<AgentToken, ServiceError> {
        let ttl_ms = i64::try_from(self.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = now.plus_millis(ttl_ms);
        let claims = AgentClaims {
            iss: self.issuer.clone(),
            aud: AGENT_TOKEN_AUDIENCE.into(),
            sub: agent.to_string(),
            wallet: wallet.to_string(),
            iat: now.millis() / 1000,
            exp: expires_at.millis() / 1000,
            jti: hex::encode(random_bytes::<16>()?),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ServiceError::TokenSigning(e.to_string()))?;
        Ok(AgentToken {
            token: Secret::new(token),
            expires_at,
            expires_in_secs: self.ttl_secs,
        })
    }

    /// Checks signature, algorithm, `iss`, `aud` and `exp` (against the injected
    /// clock, not the library's), and returns who the token names.
    pub(crate) fn verify(
        &self,
        token: &str,
        now: UnixMs,
    ) -> Result<(AgentId, WalletId), ServiceError> {
        let now_secs = now.millis() / 1000;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((agent, wallet, exp)) = self.verified.get(&digest) {
            return if now_secs >= exp {
                Err(ServiceError::TokenExpired)
            } else {
                Ok((agent, wallet))
            };
        }
        let (agent, wallet, exp) = self.verify_signature(token)?;
        if now_secs >= exp {
            return Err(ServiceError::TokenExpired);
        }
        self.verified.insert(digest, (agent, wallet, exp), now_secs);
        Ok((agent, wallet))
    }

    /// The full check: signature, algorithm, key id, `iss`, `aud`; returns `exp` too.
    fn verify_signature(&self, token: &str) -> Result<(AgentId, WalletId, i64), ServiceError> {
        const INVALID: ServiceError =
            ServiceError::Unauthenticated("the bearer token is not valid");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AGENT_TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<AgentClaims>(token, &self.decoding, &validation)
            .map_err(|_| INVALID)?;
        if data.header.kid.as_deref() != Some(self.key_id.as_str()) {
            return Err(INVALID);
        }
        let agent = data.claims.sub.parse().map_err(|_| INVALID)?;
        let wallet = data.claims.wallet.parse().map_err(|_| INVALID)?;
        Ok((agent, wallet, data.claims.exp))
    }
}

/// Refuses revoked agents, and tokens whose wallet claim disagrees with the agent.
pub(crate) fn check_agent_active(status: AgentStatus) -> Result<(), ServiceError> {
    match status {
        AgentStatus::Active => Ok(()),
        AgentStatus::Revoked => Err(ServiceError::AgentRevoked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(issuer: &str) -> TokenAuthority {
        TokenAuthority::new(&TokenSigningKey::generate().unwrap(), issuer.into(), 600).unwrap()
    }

    #[test]
    fn tokens_verify_until_they_expire() {
        let tokens = authority("https://purser.test");
        let (agent, wallet) = (AgentId::from_bytes([1; 16]), WalletId::from_bytes([2; 16]));
        let now = UnixMs(1_800_000_000_000);
        let issued = tokens.issue(agent, wallet, now).unwrap();
        assert_eq!(issued.expires_at, now.plus_millis(600_000));
        assert_eq!(
            tokens.verify(issued.token.expose(), now).unwrap(),
            (agent, wallet)
        );
        let later = now.plus_millis(599_000);
        assert!(tokens.verify(issued.token.expose(), later).is_ok());
        let expired = now.plus_millis(600_000);
        assert!(matches!(
            tokens.verify(issued.token.expose(), expired),
            Err(ServiceError::TokenExpired)
        ));
    }

    #[test]
    fn foreign_or_tampered_tokens_are_refused() {
        let tokens = authority("https://purser.test");
        let now = UnixMs(1_800_000_000_000);
        let issued = tokens
            .issue(
                AgentId::from_bytes([1; 16]),
                WalletId::from_bytes([2; 16]),
                now,
            )
            .unwrap();
        let other_key = authority("https://purser.test");
        assert!(
            other_key.verify(issued.token.expose(), now).is_err(),
            "another server's key"
        );
        let other_issuer = TokenAuthority {
            issuer: "https://elsewhere".into(),
            ..authority("x")
        };
        let theirs = other_issuer
            .issue(
                AgentId::from_bytes([1; 16]),
                WalletId::from_bytes([2; 16]),
                now,
            )
            .unwrap();
        assert!(tokens.verify(theirs.token.expose(), now).is_err());
        let mut tampered = issued.token.expose().clone();
        let middle = tampered.len() / 2;
        tampered.replace_range(middle..=middle, "A");
        assert!(tokens.verify(&tampered, now).is_err());
        assert!(tokens.verify("not.a.jwt", now).is_err());
        // alg=none and HS256 tokens are refused whatever they claim.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            issued.token.expose().split('.').nth(1).unwrap()
        );
        assert!(tokens.verify(&none, now).is_err());
    }

    #[test]
    fn lifetimes_above_fifteen_minutes_are_refused() {
        let key = TokenSigningKey::generate().unwrap();
        assert!(TokenAuthority::new(&key, "x".into(), 901).is_err());
        assert!(TokenAuthority::new(&key, "x".into(), 0).is_err());
        assert!(TokenAuthority::new(&key, "x".into(), 900).is_ok());
    }

    #[test]
    fn owners_and_agents_reach_only_their_wallet() {
        let (mine, theirs) = (WalletId::from_bytes([1; 16]), WalletId::from_bytes([2; 16]));
        let owner = Principal::Owner { wallet: mine };
        let agent = Principal::Agent {
            agent: AgentId::from_bytes([3; 16]),
            wallet: mine,
        };
        assert!(owner.require_owner_of(mine).is_ok());
        assert!(matches!(
            owner.require_owner_of(theirs),
            Err(ServiceError::NotFound)
        ));
        assert!(matches!(
            agent.require_owner_of(mine),
            Err(ServiceError::Forbidden(_))
        ));
        assert!(agent.require_member_of(mine).is_ok());
        assert!(matches!(
            agent.require_member_of(theirs),
            Err(ServiceError::NotFound)
        ));
    }
}
