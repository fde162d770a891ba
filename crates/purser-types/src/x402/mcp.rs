//! x402 over MCP (the x402 MCP transport, v2). A paid `tools/call` sent without
//! payment is answered with a tool result that is an error and carries the
//! PaymentRequired — in `structuredContent`, and in `content[0].text` as
//! `{"x402/error": {"code": 402, "message": …, "data": <PaymentRequired>}}`. The
//! client calls again with the PaymentPayload (JSON, not base64) in
//! `params._meta["x402/payment"]`; the result of a paid call carries the
//! settlement in `_meta["x402/payment-response"]`.
//!
//! Also the server-sent events framing that MCP's streamable HTTP answers may
//! come in, read event by event as the bytes arrive.

use serde_json::{Value, json};

/// Where a `tools/call` carries its payment: `params._meta[META_PAYMENT]`.
pub const META_PAYMENT: &str = "x402/payment";
/// Where a paid call's result carries the settlement: `result._meta[…]` (and, when
/// settlement failed, inside the PaymentRequired in `structuredContent`).
pub const META_PAYMENT_RESPONSE: &str = "x402/payment-response";
/// The wrapper of a PaymentRequired in `content[0].text`.
pub const ERROR_WRAPPER: &str = "x402/error";

/// The x402 resource URL of an MCP tool: `mcp://tool/<name>`.
pub fn tool_resource_url(tool: &str) -> String {
    format!("mcp://tool/{tool}")
}

/// The `tools/call` result that asks for payment: `isError`, the PaymentRequired
/// as `structuredContent`, and in `content[0].text` wrapped in `x402/error`.
pub fn payment_required_result(payment_required: &Value, message: &str) -> Value {
    let wrapped =
        json!({ERROR_WRAPPER: {"code": 402, "message": message, "data": payment_required}});
    json!({
        "isError": true,
        "structuredContent": payment_required,
        "content": [{"type": "text", "text": wrapped.to_string()}],
    })
}

fn is_payment_required(value: &Value) -> bool {
    value.get("x402Version").is_some_and(Value::is_u64)
        && value.get("accepts").is_some_and(Value::is_array)
}

fn unwrapped(value: &Value) -> Option<&Value> {
    if is_payment_required(value) {
        return Some(value);
    }
    value
        .get(ERROR_WRAPPER)
        .and_then(|e| e.get("data"))
        .filter(|data| is_payment_required(data))
}

/// The PaymentRequired in a `tools/call` result that is an error, looked for as
/// clients must: `structuredContent` itself, then `structuredContent["x402/error"].data`,
/// then `content[0].text` read as JSON (itself, or wrapped in `x402/error`).
pub fn payment_required_in(result: &Value) -> Option<Value> {
    if result.get("isError") != Some(&Value::Bool(true)) {
        return None;
    }
    if let Some(found) = result.get("structuredContent").and_then(unwrapped) {
        return Some(found.clone());
    }
    let text = result.get("content")?.get(0)?.get("text")?.as_str()?;
    let parsed: Value = serde_json::from_str(text).ok()?;
    unwrapped(&parsed).cloned()
}

/// The settlement a `tools/call` result carries: `_meta["x402/payment-response"]`,
/// else (a failed settlement) `structuredContent["x402/payment-response"]`.
pub fn payment_response_in(result: &Value) -> Option<Value> {
    result
        .get("_meta")
        .and_then(|meta| meta.get(META_PAYMENT_RESPONSE))
        .or_else(|| {
            result
                .get("structuredContent")
                .and_then(|content| content.get(META_PAYMENT_RESPONSE))
        })
        .filter(|response| response.is_object())
        .cloned()
}

/// Server-sent events as their bytes arrive: whole events come out byte for byte
/// (each with the blank line that ends it), whatever the chunking.
#[derive(Debug, Default)]
pub struct SseSplitter {
    buffer: Vec<u8>,
}

impl SseSplitter {
    /// Adds the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Vec<u8>> {
        let end = event_end(&self.buffer)?;
        let rest = self.buffer.split_off(end);
        Some(std::mem::replace(&mut self.buffer, rest))
    }

    /// What is left when the stream ends: an event without its blank line.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }
}

/// Where the first event in `buffer` ends (after its blank line). A final `\r`
/// could be the start of `\r\n`: it waits for the next byte.
fn event_end(buffer: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut line_start = 0;
    while let Some(&byte) = buffer.get(i) {
        let terminator = match byte {
            b'\n' => 1,
            b'\r' => match buffer.get(i + 1) {
                None => return None,
                Some(b'\n') => 2,
                Some(_) => 1,
            },
            _ => {
                i += 1;
                continue;
            }
        };
        let empty = i == line_start;
        i += terminator;
        if empty {
            return Some(i);
        }
        line_start = i;
    }
    None
}

fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|b| matches!(b, b'\n' | b'\r'))
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match (rest.get(end), rest.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

/// A line's field name and value (one leading space dropped), if it is a field.
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.is_empty() || line.starts_with(b":") {
        return None;
    }
    Some(match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[][..]),
    })
}

/// An event's data: its `data` lines joined by `\n`; `None` when it has none.
pub fn sse_data(event: &[u8]) -> Option<String> {
    let data: Vec<String> = lines(event)
        .filter_map(field)
        .filter(|(name, _)| *name == b"data")
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        .collect();
    (!data.is_empty()).then(|| data.join("\n"))
}

/// The event with its data replaced by `data`, where its first `data` line was;
/// its other lines (`event:`, `id:`, `retry:`, comments) are kept.
pub fn sse_with_data(event: &[u8], data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.len() + data.len());
    let mut written = false;
    for line in lines(event) {
        if line.is_empty() {
            continue;
        }
        if field(line).is_some_and(|(name, _)| name == b"data") {
            if !written {
                for part in data.split('\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(part.as_bytes());
                    out.push(b'\n');
                }
                written = true;
            }
            continue;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn required() -> Value {
        json!({"x402Version": 2, "error": "payment required", "accepts": [{"scheme": "exact"}]})
    }

    #[test]
    fn the_payment_required_is_found_where_clients_look() {
        let result = payment_required_result(&required(), "pay first");
        assert_eq!(payment_required_in(&result), Some(required()));
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text[ERROR_WRAPPER]["code"], 402);
        assert_eq!(text[ERROR_WRAPPER]["data"], required());

        let wrapped_structured = json!({"isError": true,
            "structuredContent": {ERROR_WRAPPER: {"code": 402, "data": required()}}});
        assert_eq!(payment_required_in(&wrapped_structured), Some(required()));
        let text_only = json!({"isError": true,
            "content": [{"type": "text", "text": required().to_string()}]});
        assert_eq!(payment_required_in(&text_only), Some(required()));

        let mut not_an_error = result.clone();
        not_an_error["isError"] = json!(false);
        assert_eq!(payment_required_in(&not_an_error), None);
        let plain_error = json!({"isError": true, "content": [{"type": "text", "text": "boom"}]});
        assert_eq!(payment_required_in(&plain_error), None);
    }

    #[test]
    fn the_settlement_is_read_from_meta_or_a_failed_settlement() {
        let paid = json!({"content": [], "_meta": {META_PAYMENT_RESPONSE: {"success": true}}});
        assert_eq!(payment_response_in(&paid).unwrap()["success"], true);
        let mut failed = required();
        failed[META_PAYMENT_RESPONSE] = json!({"success": false, "errorReason": "x"});
        let failed = payment_required_result(&failed, "settlement failed");
        assert_eq!(payment_response_in(&failed).unwrap()["errorReason"], "x");
        assert_eq!(payment_response_in(&json!({"content": []})), None);
    }

    #[test]
    fn events_come_out_whole_whatever_the_chunking() {
        let stream = b"id: 1\nretry: 3000\ndata:\n\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n: comment\rdata: x\r\rdata: tail";
        for size in [1, 2, 3, 7, stream.len()] {
            let mut splitter = SseSplitter::default();
            let mut events = Vec::new();
            for chunk in stream.chunks(size) {
                splitter.push(chunk);
                while let Some(event) = splitter.next_event() {
                    events.push(event);
                }
            }
            let rest = splitter.finish();
            assert_eq!(events.len(), 3, "chunks of {size}");
            assert_eq!(events.concat().len() + rest.len(), stream.len());
            assert_eq!(sse_data(&events[0]).as_deref(), Some(""));
            assert_eq!(sse_data(&events[1]).as_deref(), Some("{\"a\":\n1}"));
            assert_eq!(sse_data(&events[2]).as_deref(), Some("x"));
            assert_eq!(sse_data(&rest).as_deref(), Some("tail"));
        }
        assert_eq!(sse_data(b"id: 7\n\n"), None);
    }

    #[test]
    fn an_event_gets_new_data_and_keeps_its_other_fields() {
        let event = b"event: message\r\nid: 0/4\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n";
        let rewritten = sse_with_data(event, "{\"b\":2}");
        assert_eq!(
            String::from_utf8(rewritten.clone()).unwrap(),
            "event: message\nid: 0/4\ndata: {\"b\":2}\n\n"
        );
        let mut splitter = SseSplitter::default();
        splitter.push(&rewritten);
        assert_eq!(splitter.next_event().unwrap(), rewritten);
    }
}
