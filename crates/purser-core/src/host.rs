//! Hosts: normalization and allowlist matching.
//!
//! A payee's host decides whether a mandate covers a payment, so it is compared
//! only after normalizing it the way a client resolving it would: lowercase, IDNA
//! to ASCII (UTS #46, so a homograph becomes its own punycode name), the default
//! port dropped, one trailing dot removed. Anything ambiguous is refused outright
//! rather than guessed at: userinfo (`api.com@evil.com`), percent-encoding, a
//! backslash, a path where only a host belongs, empty or oversized labels.
//!
//! Patterns are exact hosts or `*.example.com`, which matches subdomains only
//! (`a.example.com`, `a.b.example.com`), never `example.com` itself. A pattern
//! without a port matches only hosts on the default port.

use std::fmt;

use url::Url;

/// The longest input accepted (a URL or a host).
const INPUT_MAX_LEN: usize = 2048;
/// The longest DNS name.
const NAME_MAX_LEN: usize = 253;
/// The longest DNS label.
const LABEL_MAX_LEN: usize = 63;

/// Why a host or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing was given.
    #[error("the host is empty")]
    Empty,
    /// Longer than any real host.
    #[error("the host is too long")]
    TooLong,
    /// Whitespace, control or other characters that have no place in a host.
    #[error("the host contains characters that are not allowed")]
    InvalidCharacter,
    /// `user@host`: a classic way to disguise the real host.
    #[error("the host must not contain userinfo (user@)")]
    Userinfo,
    /// `%41`: hosts are compared after IDNA, never percent-decoded.
    #[error("the host must not be percent-encoded")]
    PercentEncoded,
    /// A path, query or fragment after a bare host.
    #[error("give a host (and port) only, or a full URL")]
    NotAHost,
    /// Not http or https.
    #[error("only http and https URLs are accepted")]
    UnsupportedScheme,
    /// An empty label (`a..b`) or one longer than 63 characters.
    #[error("the host has an empty or oversized label")]
    BadLabel,
    /// The URL parser refused it.
    #[error("not a valid host: {0}")]
    Invalid(String),
    /// A `*` anywhere but a leading `*.`, or on an IP address.
    #[error("a wildcard must be a leading \"*.\" before a domain name")]
    BadWildcard,
    /// `*.com`: a wildcard over a single label would cover whole top-level domains.
    #[error("a wildcard needs at least two labels after \"*.\"")]
    WildcardTooBroad,
}

/// A normalized host: an ASCII lowercase domain name, an IPv4 address or a
/// bracketed IPv6 address, and a port when it is not the scheme's default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Host {
    name: String,
    port: Option<u16>,
    is_domain: bool,
}

impl Host {
    /// The name without the port.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port, when not the default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Normalizes a host given as `host`, `host:port` or an http(s) URL.
pub fn normalize_host(input: &str) -> Result<Host, HostError> {
    if input.is_empty() {
        return Err(HostError::Empty);
    }
    if input.len() > INPUT_MAX_LEN {
        return Err(HostError::TooLong);
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(HostError::InvalidCharacter);
    }
    let (scheme, rest, bare) = match input.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest, false),
        None => ("https".to_owned(), input, true),
    };
    if scheme != "http" && scheme != "https" {
        return Err(HostError::UnsupportedScheme);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or(rest);
    if bare && end != rest.len() {
        return Err(HostError::NotAHost);
    }
    check_authority(authority)?;
    let url = Url::parse(&format!("{scheme}://{authority}/"))
        .map_err(|e| HostError::Invalid(e.to_string()))?;
    let (name, is_domain) = match url.host() {
        Some(url::Host::Domain(domain)) => (check_domain(domain)?, true),
        Some(url::Host::Ipv4(address)) => (address.to_string(), false),
        Some(url::Host::Ipv6(address)) => (format!("[{address}]"), false),
        None => return Err(HostError::Empty),
    };
    Ok(Host {
        name,
        port: url.port(),
        is_domain,
    })
}

/// Refuses what a URL parser would quietly reinterpret.
fn check_authority(authority: &str) -> Result<(), HostError> {
    if authority.is_empty() {
        return Err(HostError::Empty);
    }
    if authority.contains('@') {
        return Err(HostError::Userinfo);
    }
    if authority.contains('%') {
        return Err(HostError::PercentEncoded);
    }
    if authority.contains('\\') || authority.contains('*') {
        return Err(HostError::InvalidCharacter);
    }
    Ok(())
}

/// Drops one trailing dot and checks the labels of an already IDNA-mapped name.
fn check_domain(domain: &str) -> Result<String, HostError> {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > NAME_MAX_LEN {
        return Err(HostError::TooLong);
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.len() > LABEL_MAX_LEN)
    {
        return Err(HostError::BadLabel);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(HostError::InvalidCharacter);
    }
    Ok(name.to_owned())
}

/// An allowlist or denylist entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// This host exactly.
    Exact(Host),
    /// Any subdomain of this host, at any depth (not the host itself).
    Subdomains(Host),
}

impl HostPattern {
    /// Parses `host`, `host:port`, `*.domain` or `*.domain:port`.
    pub fn parse(input: &str) -> Result<HostPattern, HostError> {
        match input.strip_prefix("*.") {
            Some(rest) => {
                if rest.contains('*') {
                    return Err(HostError::BadWildcard);
                }
                let suffix = normalize_host(rest)?;
                if !suffix.is_domain {
                    return Err(HostError::BadWildcard);
                }
                if !suffix.name.contains('.') {
                    return Err(HostError::WildcardTooBroad);
                }
                Ok(HostPattern::Subdomains(suffix))
            }
            None if input.contains('*') => Err(HostError::BadWildcard),
            None => normalize_host(input).map(HostPattern::Exact),
        }
    }

    /// Whether `host` matches.
    pub fn matches(&self, host: &Host) -> bool {
        match self {
            HostPattern::Exact(exact) => exact == host,
            HostPattern::Subdomains(suffix) => {
                host.is_domain
                    && host.port == suffix.port
                    && host
                        .name
                        .strip_suffix(suffix.name.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(host) => write!(f, "{host}"),
            HostPattern::Subdomains(host) => write!(f, "*.{host}"),
        }
    }
}

/// Parses and normalizes a list of patterns, sorted and without duplicates, so
/// equal lists always print (and hash) alike.
pub fn normalize_patterns<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<String>, (String, HostError)> {
    let mut patterns = Vec::with_capacity(inputs.len());
    for input in inputs {
        let input = input.as_ref();
        let pattern = HostPattern::parse(input).map_err(|e| (input.to_owned(), e))?;
        patterns.push(pattern.to_string());
    }
    patterns.sort();
    patterns.dedup();
    Ok(patterns)
}

/// Whether `host` matches any of the normalized `patterns`. Unparseable patterns
/// (impossible for lists built by [`normalize_patterns`]) match nothing.
pub fn matches_any(patterns: &[String], host: &Host) -> bool {
    patterns
        .iter()
        .filter_map(|p| HostPattern::parse(p).ok())
        .any(|p| p.matches(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(input: &str) -> String {
        normalize_host(input)
            .map(|h| h.to_string())
            .unwrap_or_else(|e| format!("ERR {e:?}"))
    }

    #[test]
    fn normalizes_what_clients_would_resolve() {
        let cases = [
            ("api.example.com", "api.example.com"),
            ("API.Example.COM", "api.example.com"),
            ("api.example.com.", "api.example.com"),
            ("https://api.example.com/v1/chat?x=1#f", "api.example.com"),
            ("https://api.example.com:443/", "api.example.com"),
            ("http://api.example.com:80/", "api.example.com"),
            ("api.example.com:443", "api.example.com"),
            ("api.example.com:8443", "api.example.com:8443"),
            ("http://api.example.com:443/", "api.example.com:443"),
            ("HTTPS://API.EXAMPLE.COM", "api.example.com"),
            ("münchen.de", "xn--mnchen-3ya.de"),
            ("https://127.0.0.1:8080/x", "127.0.0.1:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("https://[0:0:0:0:0:0:0:1]/", "[::1]"),
            ("0x7f.0.0.1", "127.0.0.1"),
        ];
        for (input, expected) in cases {
            assert_eq!(host(input), expected, "{input}");
        }
    }

    /// The hostile corpus: each case is (allowlist, payee as given, allowed?).
    /// "invalid" payees are refused before matching, which also denies them.
    #[test]
    fn hostile_hosts_never_slip_through_an_allowlist() {
        let allow = ["api.com", "*.example.com", "pay.example.org:8443"];
        let allowed: [(&str, bool); 52] = [
            // Exact and wildcard matches that must pass.
            ("api.com", true),
            ("API.COM", true),
            ("api.com.", true),
            ("https://api.com/v1", true),
            ("https://api.com:443/v1", true),
            ("a.example.com", true),
            ("a.b.example.com", true),
            ("https://A.EXAMPLE.COM./x", true),
            ("pay.example.org:8443", true),
            ("https://pay.example.org:8443/charge", true),
            // Userinfo, suffixes, prefixes and paths pretending to be the host.
            ("api.com@evil.com", false),
            ("https://api.com@evil.com/", false),
            ("https://api.com:443@evil.com/", false),
            ("https://evil.com#@api.com", false),
            ("https://evil.com?@api.com", false),
            ("api.com.evil.com", false),
            ("evil.com/api.com", false),
            ("https://evil.com/api.com", false),
            ("evilapi.com", false),
            ("api.co", false),
            ("api.com.co", false),
            ("xapi.com", false),
            ("sub.api.com", false),
            // Wildcards cover subdomains only.
            ("example.com", false),
            ("https://example.com/", false),
            ("aexample.com", false),
            ("example.com.evil.com", false),
            ("evil.com.example", false),
            // IDN homographs and lookalikes.
            ("аpi.com", false),
            ("api.cоm", false),
            ("xn--pi-7kc.com", false),
            ("a.exаmple.com", false),
            ("ａｐｉ.com", true),
            // Ports.
            ("api.com:8080", false),
            ("http://api.com:443/", false),
            ("a.example.com:8443", false),
            ("pay.example.org", false),
            ("pay.example.org:443", false),
            // IP literals are not names.
            ("127.0.0.1", false),
            ("[::1]", false),
            ("http://[::ffff:127.0.0.1]/", false),
            // Encodings and odd characters are refused outright.
            ("api%2ecom", false),
            ("https://api%2Ecom/", false),
            ("api.com%00.evil.com", false),
            ("evil.com\\api.com", false),
            ("api.com\u{0}", false),
            (" api.com", false),
            ("api .com", false),
            // Empty and oversized labels.
            ("", false),
            ("api..com", false),
            (".api.com", false),
            (&"a".repeat(64), false),
        ];
        for (payee, expected) in allowed {
            let verdict = normalize_host(payee).is_ok_and(|h| {
                allow
                    .iter()
                    .any(|p| HostPattern::parse(p).unwrap().matches(&h))
            });
            assert_eq!(verdict, expected, "payee {payee:?}");
        }
        let long_name = format!("{}.example.com", vec!["a".repeat(63); 4].join("."));
        assert_eq!(normalize_host(&long_name), Err(HostError::TooLong));
        assert!(normalize_host(&"x".repeat(3000)).is_err());
        assert_eq!(
            normalize_host("ftp://api.com/"),
            Err(HostError::UnsupportedScheme)
        );
    }

    #[test]
    fn patterns_are_strict() {
        assert_eq!(
            HostPattern::parse("*.com"),
            Err(HostError::WildcardTooBroad)
        );
        assert_eq!(
            HostPattern::parse("*.*.example.com"),
            Err(HostError::BadWildcard)
        );
        assert_eq!(HostPattern::parse("api.*.com"), Err(HostError::BadWildcard));
        assert_eq!(
            HostPattern::parse("*example.com"),
            Err(HostError::BadWildcard)
        );
        assert_eq!(
            HostPattern::parse("*.127.0.0.1"),
            Err(HostError::BadWildcard)
        );
        assert_eq!(
            normalize_patterns(&["B.example.com", "*.Example.com", "b.example.com."]).unwrap(),
            vec!["*.example.com".to_owned(), "b.example.com".to_owned()]
        );
    }
}
