//! USDC as integer atomic units.
//!
//! One USDC is 1,000,000 atomic units (6 decimals), exactly as the token contract
//! counts it. Amounts never pass through floating point: they are parsed from and
//! printed to decimal strings digit by digit.
//!
//! The largest amount is `i64::MAX` atomic units (about 9.2 trillion USDC), so that
//! every amount and every balance fits a signed 64-bit SQL integer in both SQLite
//! and PostgreSQL without a cast that could wrap.
#![warn(clippy::arithmetic_side_effects)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of decimal places of USDC.
pub const USDC_DECIMALS: usize = 6;
const ATOMIC_PER_USDC: u64 = 1_000_000;
const MAX_ATOMIC: u64 = i64::MAX.unsigned_abs();

/// The currencies the ledger knows. Only USDC today; the ledger is written so that
/// transfers never mix currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Currency {
    /// USD Coin, 6 decimals.
    #[serde(rename = "USDC")]
    Usdc,
}

impl Currency {
    /// The stable code used on the wire and in storage.
    pub const fn code(self) -> &'static str {
        match self {
            Currency::Usdc => "USDC",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "USDC" => Ok(Currency::Usdc),
            _ => Err(AmountError::UnsupportedCurrency),
        }
    }
}

/// Why a string or number is not a valid USDC amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The string was empty.
    #[error("USDC amount is empty")]
    Empty,
    /// A minus sign: amounts are never negative; direction comes from the operation.
    #[error("USDC amount must not be negative")]
    Negative,
    /// Anything but `digits` or `digits.digits` (spaces, signs, exponents, NaN, …).
    #[error("USDC amount must be a plain decimal number such as \"5\" or \"0.002\"")]
    Malformed,
    /// `01`, `00.5`: a leading zero that is not the only integer digit.
    #[error("USDC amount must not have leading zeros")]
    LeadingZero,
    /// More than 6 digits after the point: USDC cannot represent it.
    #[error("USDC amount has more than 6 decimal places")]
    TooPrecise,
    /// Larger than the largest representable amount.
    #[error("USDC amount is too large (the maximum is 9223372036854.775807)")]
    Overflow,
    /// A currency other than USDC.
    #[error("unsupported currency: only USDC is supported")]
    UnsupportedCurrency,
}

/// An amount of USDC in atomic units (1 USDC = 1,000,000).
///
/// Invariant: `0 <= atomic <= i64::MAX`. Every constructor checks it, and every
/// arithmetic operation is checked.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usdc(u64);

impl Usdc {
    /// Zero USDC.
    pub const ZERO: Usdc = Usdc(0);
    /// The largest representable amount, `i64::MAX` atomic units.
    pub const MAX: Usdc = Usdc(MAX_ATOMIC);

    /// An amount from atomic units; fails above [`Usdc::MAX`].
    pub const fn from_atomic(atomic: u64) -> Result<Usdc, AmountError> {
        if atomic > MAX_ATOMIC {
            Err(AmountError::Overflow)
        } else {
            Ok(Usdc(atomic))
        }
    }

    /// An amount from a signed storage integer; fails when negative.
    pub const fn from_atomic_i64(atomic: i64) -> Result<Usdc, AmountError> {
        if atomic < 0 {
            Err(AmountError::Negative)
        } else {
            Ok(Usdc(atomic.unsigned_abs()))
        }
    }

    /// An amount of whole USDC.
    pub const fn from_whole(usdc: u64) -> Result<Usdc, AmountError> {
        match usdc.checked_mul(ATOMIC_PER_USDC) {
            Some(atomic) => Usdc::from_atomic(atomic),
            None => Err(AmountError::Overflow),
        }
    }

    /// The amount in atomic units.
    pub const fn atomic(self) -> u64 {
        self.0
    }

    /// The amount in atomic units as the signed integer storage uses. Never fails,
    /// because of the type's invariant.
    pub const fn atomic_i64(self) -> i64 {
        // The invariant bounds self.0 by i64::MAX, so reinterpreting the bits is exact.
        self.0.cast_signed()
    }

    /// True when the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` above [`Usdc::MAX`].
    pub const fn checked_add(self, other: Usdc) -> Option<Usdc> {
        match self.0.checked_add(other.0) {
            Some(sum) if sum <= MAX_ATOMIC => Some(Usdc(sum)),
            _ => None,
        }
    }

    /// `self - other`, or `None` below zero.
    pub const fn checked_sub(self, other: Usdc) -> Option<Usdc> {
        match self.0.checked_sub(other.0) {
            Some(diff) => Some(Usdc(diff)),
            None => None,
        }
    }

    /// `self - other`, floored at zero.
    pub const fn saturating_sub(self, other: Usdc) -> Usdc {
        Usdc(self.0.saturating_sub(other.0))
    }
}

impl FromStr for Usdc {
    type Err = AmountError;

    /// Parses `digits` or `digits.digits` with at most 6 decimals. Rejects signs,
    /// whitespace, exponents, leading zeros and anything larger than [`Usdc::MAX`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        if s.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let (whole, fraction) = match s.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (s, None),
        };
        let whole_atomic = parse_whole(whole)?;
        let fraction_atomic = match fraction {
            Some(fraction) => parse_fraction(fraction)?,
            None => 0,
        };
        let atomic = whole_atomic
            .checked_mul(ATOMIC_PER_USDC)
            .and_then(|w| w.checked_add(fraction_atomic))
            .ok_or(AmountError::Overflow)?;
        Usdc::from_atomic(atomic)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_whole(whole: &str) -> Result<u64, AmountError> {
    if !all_digits(whole) {
        return Err(AmountError::Malformed);
    }
    if whole.len() > 1 && whole.starts_with('0') {
        return Err(AmountError::LeadingZero);
    }
    accumulate_digits(whole)
}

fn parse_fraction(fraction: &str) -> Result<u64, AmountError> {
    if !all_digits(fraction) {
        return Err(AmountError::Malformed);
    }
    if fraction.len() > USDC_DECIMALS {
        return Err(AmountError::TooPrecise);
    }
    let mut atomic = accumulate_digits(fraction)?;
    for _ in fraction.len()..USDC_DECIMALS {
        atomic = atomic.checked_mul(10).ok_or(AmountError::Overflow)?;
    }
    Ok(atomic)
}

/// Folds ASCII digits into a u64, reporting overflow instead of wrapping.
fn accumulate_digits(digits: &str) -> Result<u64, AmountError> {
    digits.bytes().try_fold(0u64, |acc, b| {
        let digit = u64::from(b.wrapping_sub(b'0'));
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(digit))
            .ok_or(AmountError::Overflow)
    })
}

impl fmt::Display for Usdc {
    /// Canonical form: no trailing zeros in the fraction, no point for whole amounts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / ATOMIC_PER_USDC;
        let fraction = self.0 % ATOMIC_PER_USDC;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:06}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Usdc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Usdc({self})")
    }
}

impl Serialize for Usdc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Usdc {
    /// Only strings are accepted: a JSON number may already have lost precision in
    /// the client's float arithmetic.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Usdc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a USDC amount as a decimal string, such as \"0.002\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Usdc, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Usdc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^(0|[1-9][0-9]*)(\.[0-9]{1,6})?$"))
            .description(Some("USDC amount as a decimal string, at most 6 decimals"))
            .examples(["0.002"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Usdc {}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_plain_decimals() {
        let cases = [
            ("0", 0),
            ("5", 5_000_000),
            ("0.002", 2_000),
            ("1.000001", 1_000_001),
            ("1.5", 1_500_000),
            ("1.500000", 1_500_000),
            ("0.000001", 1),
            ("100", 100_000_000),
            ("9223372036854.775807", 9_223_372_036_854_775_807),
        ];
        for (text, atomic) in cases {
            assert_eq!(text.parse::<Usdc>().map(Usdc::atomic), Ok(atomic), "{text}");
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        use AmountError::*;
        let cases = [
            ("", Empty),
            ("1.0000001", TooPrecise),
            ("0.0000000", TooPrecise),
            ("-1", Negative),
            ("-0", Negative),
            ("+1", Malformed),
            ("1e3", Malformed),
            ("1E3", Malformed),
            ("NaN", Malformed),
            ("inf", Malformed),
            (" 1", Malformed),
            ("1 ", Malformed),
            ("1.", Malformed),
            (".5", Malformed),
            ("1..2", Malformed),
            ("1.2.3", Malformed),
            ("1,5", Malformed),
            ("0x10", Malformed),
            ("١", Malformed),
            ("01", LeadingZero),
            ("00.5", LeadingZero),
            ("9223372036854.775808", Overflow),
            ("18446744073709.551616", Overflow),
            ("99999999999999999999999999", Overflow),
        ];
        for (text, reason) in cases {
            assert_eq!(text.parse::<Usdc>(), Err(reason), "{text:?}");
        }
    }

    #[test]
    fn formats_canonically() {
        let cases = [
            (0, "0"),
            (1, "0.000001"),
            (2_000, "0.002"),
            (1_500_000, "1.5"),
            (100_000_000, "100"),
            (1_000_001, "1.000001"),
        ];
        for (atomic, text) in cases {
            assert_eq!(
                Usdc::from_atomic(atomic).map(|u| u.to_string()),
                Ok(text.to_owned())
            );
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Usdc::MAX.checked_add(Usdc(1)), None);
        assert_eq!(Usdc::ZERO.checked_sub(Usdc(1)), None);
        assert_eq!(Usdc(3).checked_sub(Usdc(1)), Some(Usdc(2)));
        assert_eq!(Usdc::from_atomic(u64::MAX), Err(AmountError::Overflow));
        assert_eq!(Usdc::from_atomic_i64(-1), Err(AmountError::Negative));
        assert_eq!(Usdc::from_whole(u64::MAX / 2), Err(AmountError::Overflow));
        assert_eq!(Usdc::MAX.atomic_i64(), i64::MAX);
    }

    #[test]
    fn json_takes_strings_only() {
        let ok: Usdc = serde_json::from_str("\"0.25\"").unwrap();
        assert_eq!(ok.atomic(), 250_000);
        assert!(serde_json::from_str::<Usdc>("0.25").is_err());
        assert!(serde_json::from_str::<Usdc>("1").is_err());
        assert!(serde_json::from_str::<Usdc>("\"1e3\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"0.25\"");
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(atomic in 0..=MAX_ATOMIC) {
            let amount = Usdc::from_atomic(atomic).unwrap();
            prop_assert_eq!(amount.to_string().parse::<Usdc>(), Ok(amount));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,30}") {
            let _ = text.parse::<Usdc>();
        }

        #[test]
        fn checked_add_matches_u128(a in 0..=MAX_ATOMIC, b in 0..=MAX_ATOMIC) {
            let sum = u128::from(a) + u128::from(b);
            let expected = (sum <= u128::from(MAX_ATOMIC)).then(|| Usdc(u64::try_from(sum).unwrap()));
            prop_assert_eq!(Usdc(a).checked_add(Usdc(b)), expected);
        }
    }
}
