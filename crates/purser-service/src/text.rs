//! Free text from callers (names, purposes, descriptions, reasons): trimmed,
//! 1 to a maximum of characters, without control characters.

use crate::ServiceError;

/// One line: no control character at all.
pub(crate) fn single_line(
    field: &str,
    text: &str,
    max_chars: usize,
) -> Result<String, ServiceError> {
    checked(field, text, max_chars, |_| false)
}

/// Several lines: line breaks and tabs allowed, no other control character.
pub(crate) fn multi_line(
    field: &str,
    text: &str,
    max_chars: usize,
) -> Result<String, ServiceError> {
    checked(field, text, max_chars, |c| c == '\n' || c == '\t')
}

fn checked(
    field: &str,
    text: &str,
    max_chars: usize,
    allowed: fn(char) -> bool,
) -> Result<String, ServiceError> {
    let text = text.trim();
    let chars = text.chars().count();
    let control = text.chars().any(|c| c.is_control() && !allowed(c));
    if chars == 0 || chars > max_chars || control {
        return Err(ServiceError::InvalidRequest(format!(
            "{field} must be 1-{max_chars} characters without control characters"
        )));
    }
    Ok(text.to_owned())
}
