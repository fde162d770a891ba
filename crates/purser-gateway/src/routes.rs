//! Path patterns: `/api/query`, `/api/cities/{city}/forecast`, `/files/*`.
//! A `{name}` matches exactly one non-empty segment; a final `*` matches the rest
//! (one segment or more). Literal segments match exactly (case-sensitive, as
//! paths are).

use std::fmt;

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

/// A request path matched against a pattern: the named segments it bound.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// `(name, value)` for each `{name}`, in order.
    pub params: Vec<(String, String)>,
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PathPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("{text:?} must start with /"));
        };
        if text.contains(['?', '#']) {
            return Err(format!("{text:?}: a path pattern has no query or fragment"));
        }
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let last = parts.len().saturating_sub(1);
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = if *part == "*" && i == last {
                Segment::Rest
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if !valid_name(name) {
                    return Err(format!("{text:?}: {{{name}}} is not a parameter name"));
                }
                Segment::Param(name.to_owned())
            } else if part.is_empty() || part.contains(['{', '}', '*']) {
                return Err(format!(
                    "{text:?}: segment {part:?} is empty or mixes text with {{ }} or *"
                ));
            } else {
                Segment::Literal((*part).to_owned())
            };
            segments.push(segment);
        }
        Ok(PathPattern {
            text: text.to_owned(),
            segments,
        })
    }

    /// Matches a request path (without its query string).
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut found = RouteMatch::default();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Rest => {
                    return (parts.len() > i && parts[i..].iter().all(|p| !p.is_empty()))
                        .then_some(found);
                }
                Segment::Literal(literal) => {
                    if parts.get(i) != Some(&literal.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|v| !v.is_empty())?;
                    found.params.push((name.clone(), (*value).to_owned()));
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pattern(text: &str) -> PathPattern {
        PathPattern::parse(text).unwrap()
    }

    #[test]
    fn literals_params_and_rest() {
        assert!(pattern("/api/query").matches("/api/query").is_some());
        assert!(pattern("/api/query").matches("/api/query/").is_none());
        assert!(pattern("/api/query").matches("/api/Query").is_none());
        let city = pattern("/cities/{city}/forecast");
        assert_eq!(
            city.matches("/cities/oslo/forecast").unwrap().params,
            vec![("city".to_owned(), "oslo".to_owned())]
        );
        assert!(city.matches("/cities//forecast").is_none());
        assert!(city.matches("/cities/oslo").is_none());
        let files = pattern("/files/*");
        assert!(files.matches("/files/a/b.txt").is_some());
        assert!(files.matches("/files").is_none());
        assert!(files.matches("/files/").is_none());
        assert!(pattern("/").matches("/").is_some());
        assert!(pattern("/").matches("/x").is_none());
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "api", "/a/*/b", "/a/{}", "/a/{x-y}", "/a/x{y}", "/a//b", "/a?x=1",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
