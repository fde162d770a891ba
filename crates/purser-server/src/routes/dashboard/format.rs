//! What every page shares: the chrome (wallet name, navigation, CSRF token, the
//! viewer's zone) and how money and times are written.

use purser_service::OwnerSession;
use purser_types::{UnixMs, Usdc};

/// One entry of the navigation.
#[derive(Debug, Clone)]
pub(crate) struct Nav {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/agents", "Agents"),
    ("/mandates", "Mandates"),
    ("/approvals", "Approvals"),
    ("/payments", "Payments"),
    ("/payouts", "Payouts"),
    ("/links", "Links"),
    ("/audit", "Audit"),
    ("/settings", "Settings"),
];

/// The frame of every signed-in page.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub wallet_name: String,
    pub csrf: String,
    pub nav: Vec<Nav>,
    pub zone: String,
    pub offset_minutes: i32,
}

impl Chrome {
    pub(crate) fn new(session: &OwnerSession, wallet_name: String, path: &str) -> Self {
        let section = |href: &str| {
            if href == "/" {
                path == "/"
            } else {
                path == href || path.starts_with(&format!("{href}/"))
            }
        };
        Chrome {
            wallet_name,
            csrf: session.csrf_token.clone(),
            nav: NAV
                .iter()
                .map(|(href, label)| Nav {
                    href,
                    label,
                    current: section(href),
                })
                .collect(),
            zone: zone_label(session.zone_offset_minutes),
            offset_minutes: session.zone_offset_minutes,
        }
    }

    /// A time in the viewer's zone, to the minute.
    pub(crate) fn time(&self, at: UnixMs) -> String {
        local_time(at, self.offset_minutes)
    }

    /// A day in the viewer's zone (`Nov 21`).
    pub(crate) fn day(&self, at: UnixMs) -> String {
        let text = local_time(at, self.offset_minutes);
        let month = text
            .get(5..7)
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(1);
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let name = months.get(month.saturating_sub(1)).copied().unwrap_or("");
        let day = text.get(8..10).unwrap_or("").trim_start_matches('0');
        format!("{name} {day}")
    }
}

/// `UTC`, `UTC+01:00`, `UTC-05:30`.
pub(crate) fn zone_label(offset_minutes: i32) -> String {
    if offset_minutes == 0 {
        return "UTC".into();
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let minutes = offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `2026-11-21 14:03` in a zone `offset_minutes` east of UTC.
pub(crate) fn local_time(at: UnixMs, offset_minutes: i32) -> String {
    let shifted = at.plus_millis(i64::from(offset_minutes) * 60_000);
    let text = shifted.to_rfc3339();
    text.get(..16)
        .map_or(text.clone(), |minutes| minutes.replace('T', " "))
}

/// An amount as money: `$1,234.50`, `$0.000001` (at least cents, every digit kept).
pub(crate) fn money(amount: Usdc) -> String {
    let atomic = amount.atomic();
    let whole = atomic / 1_000_000;
    let fraction = format!("{:06}", atomic % 1_000_000);
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.len() < 2 {
        format!("{fraction:0<2}")
    } else {
        fraction.to_owned()
    };
    let digits = whole.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{fraction}")
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Widths (in percent of the limit, summing to 100) of a budget bar's spent,
/// pending and remaining parts.
pub(crate) fn budget_bar(spent: Usdc, pending: Usdc, limit: Usdc) -> (u64, u64, u64) {
    if limit.is_zero() {
        return (0, 0, 100);
    }
    let share = |part: Usdc| {
        u64::try_from(u128::from(part.atomic()) * 100 / u128::from(limit.atomic())).unwrap_or(100)
    };
    let spent_pct = share(spent).min(100);
    let pending_pct = share(pending).min(100 - spent_pct);
    (spent_pct, pending_pct, 100 - spent_pct - pending_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usdc(text: &str) -> Usdc {
        text.parse().unwrap()
    }

    #[test]
    fn money_is_written_like_money() {
        assert_eq!(money(usdc("0")), "$0.00");
        assert_eq!(money(usdc("0.14")), "$0.14");
        assert_eq!(money(usdc("2.5")), "$2.50");
        assert_eq!(money(usdc("1234567.000001")), "$1,234,567.000001");
        assert_eq!(money(usdc("100")), "$100.00");
    }

    #[test]
    fn times_and_zones() {
        let at = UnixMs(1_795_224_600_000); // 2026-11-21T01:30Z
        assert_eq!(local_time(at, 0), "2026-11-21 01:30");
        assert_eq!(local_time(at, -300), "2026-11-20 20:30");
        assert_eq!(zone_label(-330), "UTC-05:30");
        assert_eq!(zone_label(60), "UTC+01:00");
    }

    #[test]
    fn bars_sum_to_the_whole() {
        assert_eq!(
            budget_bar(usdc("0.25"), usdc("0.25"), usdc("1")),
            (25, 25, 50)
        );
        assert_eq!(budget_bar(usdc("1"), usdc("0"), usdc("1")), (100, 0, 0));
        assert_eq!(url_encode("/mandates/x?y=1&z"), "/mandates/x%3Fy%3D1%26z");
    }
}
