//! Points in time as Unix milliseconds, printed as RFC 3339 on the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, UTC. Storage keeps the integer; JSON shows
/// RFC 3339 (`2026-11-21T09:13:00.123Z`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMs(pub i64);

impl UnixMs {
    /// The integer milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// This instant plus `millis`, saturating at the ends of time.
    pub const fn plus_millis(self, millis: i64) -> UnixMs {
        UnixMs(self.0.saturating_add(millis))
    }

    /// RFC 3339 text with millisecond precision, or the raw number if out of range.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0).saturating_mul(1_000_000);
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Parses RFC 3339 text.
    pub fn parse_rfc3339(text: &str) -> Option<UnixMs> {
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = t.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).ok().map(UnixMs)
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixMs({})", self.to_rfc3339())
    }
}

impl Serialize for UnixMs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UnixMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UnixMs::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for UnixMs {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for UnixMs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_millisecond_rfc3339() {
        assert_eq!(UnixMs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        let t = UnixMs(1_795_000_000_123);
        assert_eq!(UnixMs::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }
}
