//! Prefixed identifiers: `wal_…`, `agt_…`, `tr_…`.
//!
//! Each is a prefix and 32 lowercase hex digits (128 bits). The bits come from the
//! caller (the service layer builds time-ordered UUIDv7 values from its injected
//! clock and RNG), so this crate stays free of IO. The prefix makes a leaked id
//! self-describing and stops an id of one kind being accepted as another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: expected \"{prefix}\" followed by 32 lowercase hex digits")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
}

const HEX_LEN: usize = 32;

fn parse_prefixed(s: &str, prefix: &'static str, kind: &'static str) -> Result<[u8; 16], IdError> {
    let err = || IdError { kind, prefix };
    let hex = s.strip_prefix(prefix).ok_or_else(err)?;
    if hex.len() != HEX_LEN || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(err());
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let pair = hex.get(i * 2..i * 2 + 2).ok_or_else(err)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
    }
    Ok(bytes)
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// The textual prefix of this kind of id.
            pub const PREFIX: &'static str = $prefix;

            /// An id from 128 bits chosen by the caller.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The 128 bits of the id.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($prefix)?;
                crate::write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_prefixed(s, $prefix, $kind).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-9a-f]{32}$")))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// A wallet, owned by one person.
    WalletId,
    "wal_",
    "wallet"
);
prefixed_id!(
    /// An agent registered on a wallet (its Agent ID).
    AgentId,
    "agt_",
    "agent"
);
prefixed_id!(
    /// One immutable ledger transfer.
    TransferId,
    "tr_",
    "transfer"
);
prefixed_id!(
    /// An intent mandate: what an agent may spend, signed once by the owner.
    MandateId,
    "mdt_",
    "mandate"
);
prefixed_id!(
    /// A hold on funds for one payment, committed or released later.
    ReservationId,
    "rsv_",
    "reservation"
);
prefixed_id!(
    /// A request for the owner to approve one payment (the V1 fallback).
    ApprovalId,
    "apv_",
    "approval"
);

prefixed_id!(
    /// A payment link: a price and what a payer gets for it.
    PaymentLinkId,
    "lnk_",
    "payment link"
);
prefixed_id!(
    /// One payment a merchant wallet received through a payment link.
    ReceivedPaymentId,
    "rcv_",
    "received payment"
);
prefixed_id!(
    /// A refund of a received payment.
    RefundId,
    "rfd_",
    "refund"
);
prefixed_id!(
    /// One webhook event; a receiver deduplicates deliveries by it.
    WebhookEventId,
    "evt_",
    "webhook event"
);

/// The longest caller-chosen payout id.
pub const PAYOUT_ID_MAX_LEN: usize = 64;

/// A payout's id, chosen by the caller so a retry is recognised: 1-64 characters
/// of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PayoutId(String);

/// Why a string is not a payout id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payout id is 1-64 characters of A-Z a-z 0-9 . _ : -")]
pub struct PayoutIdError;

impl PayoutId {
    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PayoutId {
    type Err = PayoutIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= PAYOUT_ID_MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if valid {
            Ok(PayoutId(s.to_owned()))
        } else {
            Err(PayoutIdError)
        }
    }
}

impl fmt::Display for PayoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PayoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayoutId({})", self.0)
    }
}

impl<'de> Deserialize<'de> for PayoutId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PayoutId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9._:-]{1,64}$"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PayoutId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_kinds() {
        let id = WalletId::from_bytes([0xab; 16]);
        let text = id.to_string();
        assert_eq!(text, format!("wal_{}", "ab".repeat(16)));
        assert_eq!(text.parse::<WalletId>(), Ok(id));
        assert!(text.parse::<AgentId>().is_err());
        assert!("wal_AB".parse::<WalletId>().is_err());
        assert!(
            format!("wal_{}", "AB".repeat(16))
                .parse::<WalletId>()
                .is_err()
        );
        assert!(
            format!("wal_{}", "0".repeat(33))
                .parse::<WalletId>()
                .is_err()
        );
        assert!("".parse::<TransferId>().is_err());
    }

    #[test]
    fn payout_ids_are_bounded_and_plain() {
        assert!("po-2026-11-21:001".parse::<PayoutId>().is_ok());
        assert!("x".repeat(64).parse::<PayoutId>().is_ok());
        for bad in ["", " ", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(bad.parse::<PayoutId>().is_err(), "{bad:?}");
        }
    }
}
