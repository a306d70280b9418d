//! Carbon's outgoing webhook wire format: the `{"payload": "<json>"}` body serialised exactly as
//! Python's `json.dumps` does, and the `Carbon-Signature` / `Carbon-Signature-Compact` headers.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Errors building a signature.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSignError {
    /// The stored signing key is not a hex string.
    #[error("webhook signing key is not valid hex")]
    BadKey,
}

/// `object_id` of a webhook: one id or a list of ids (always strings on the wire).
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectId {
    /// A single id.
    One(String),
    /// Several ids.
    Many(Vec<String>),
}

impl ObjectId {
    /// Coerces an arbitrary JSON value into Carbon's string form.
    pub fn from_json(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Array(a) => ObjectId::Many(a.iter().map(value_to_string).collect()),
            other => ObjectId::One(value_to_string(other)),
        }
    }
}

/// Python's `str()`-like coercion used for webhook values: strings stay, others become JSON text.
pub fn value_to_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One webhook event, ready to be rendered.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// e.g. `FILE_READY`.
    pub webhook_type: String,
    /// e.g. `FILE`.
    pub object_type: String,
    /// The object id(s).
    pub object_id: ObjectId,
    /// Extra key/values (string values), or `None` → the string `"null"`.
    pub additional_information: Option<Vec<(String, String)>>,
    /// The customer id (organization supplied user id); empty for org-level events.
    pub customer_id: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Writes `s` as a JSON string literal the way Python's `json.dumps` does (`ensure_ascii=True`).
fn py_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

impl WebhookEvent {
    /// The inner payload JSON text (Python default separators).
    pub fn payload_json(&self) -> String {
        let mut o = String::new();
        o.push_str("{\"webhook_type\": ");
        py_str(&mut o, &self.webhook_type);
        o.push_str(", \"obj\": {\"object_type\": ");
        py_str(&mut o, &self.object_type);
        o.push_str(", \"object_id\": ");
        match &self.object_id {
            ObjectId::One(s) => py_str(&mut o, s),
            ObjectId::Many(v) => {
                o.push('[');
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        o.push_str(", ");
                    }
                    py_str(&mut o, s);
                }
                o.push(']');
            }
        }
        o.push_str(", \"additional_information\": ");
        match &self.additional_information {
            None => py_str(&mut o, "null"),
            Some(kv) => {
                o.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        o.push_str(", ");
                    }
                    py_str(&mut o, k);
                    o.push_str(": ");
                    py_str(&mut o, v);
                }
                o.push('}');
            }
        }
        o.push_str("}, \"customer_id\": ");
        py_str(&mut o, &self.customer_id);
        o.push_str(", \"timestamp\": ");
        py_str(&mut o, &self.timestamp.to_string());
        o.push('}');
        o
    }

    /// The HTTP body: `{"payload": "<payload json>"}` with Python default separators.
    pub fn body(&self) -> String {
        outer_body(&self.payload_json(), false)
    }
}

/// `{"payload": <string>}` with default (`compact = false`) or compact separators.
pub fn outer_body(payload: &str, compact: bool) -> String {
    let mut o = String::from(if compact {
        "{\"payload\":"
    } else {
        "{\"payload\": "
    });
    py_str(&mut o, payload);
    o.push('}');
    o
}

/// Hex HMAC-SHA256 with the hex-decoded key over `"<ts>.<body>"`.
pub fn hmac_hex(signing_key_hex: &str, ts: i64, body: &str) -> Result<String, WebhookSignError> {
    let key = hex::decode(signing_key_hex).map_err(|_| WebhookSignError::BadKey)?;
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| WebhookSignError::BadKey)?;
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// The two signature header values for a body `{"payload": payload}` sent at `ts`:
/// (`Carbon-Signature`, `Carbon-Signature-Compact`).
pub fn signature_headers(
    signing_key_hex: &str,
    ts: i64,
    payload: &str,
) -> Result<(String, String), WebhookSignError> {
    let v1 = hmac_hex(signing_key_hex, ts, &outer_body(payload, false))?;
    let v2 = hmac_hex(signing_key_hex, ts, &outer_body(payload, true))?;
    Ok((format!("t={ts},v1={v1}"), format!("t={ts},v2={v2}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WebhookEvent {
        WebhookEvent {
            webhook_type: "FILES_CREATED".into(),
            object_type: "FILE_LIST".into(),
            object_id: ObjectId::Many(vec!["46654".into()]),
            additional_information: None,
            customer_id: "satvik".into(),
            timestamp: 1_709_590_457,
        }
    }

    #[test]
    fn payload_uses_python_separators() {
        assert_eq!(
            sample().payload_json(),
            r#"{"webhook_type": "FILES_CREATED", "obj": {"object_type": "FILE_LIST", "object_id": ["46654"], "additional_information": "null"}, "customer_id": "satvik", "timestamp": "1709590457"}"#
        );
        assert_eq!(
            sample().body(),
            r#"{"payload": "{\"webhook_type\": \"FILES_CREATED\", \"obj\": {\"object_type\": \"FILE_LIST\", \"object_id\": [\"46654\"], \"additional_information\": \"null\"}, \"customer_id\": \"satvik\", \"timestamp\": \"1709590457\"}"}"#
        );
    }

    #[test]
    fn compact_body_matches_reparse() {
        let e = WebhookEvent {
            additional_information: Some(vec![("k".into(), "vé\n\u{1F600}".into())]),
            ..sample()
        };
        let body = e.body();
        // re-serialising the parsed body compactly must equal our compact form
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let payload = v["payload"].as_str().unwrap();
        assert_eq!(payload, e.payload_json());
        assert!(body.is_ascii());
        assert!(payload.contains("\\u00e9") && payload.contains("\\ud83d\\ude00"));
        assert_eq!(
            outer_body(payload, true),
            format!("{{\"payload\":{}}}", &body[12..body.len() - 1])
        );
    }

    /// The signed sample published with Carbon's official webhook verifier library
    /// (`Carbon-for-Developers/webhook-library`, `examples/example.py`): key, body and both
    /// signature headers are reproduced byte for byte.
    #[test]
    fn reproduces_official_signed_sample() {
        let e = WebhookEvent {
            timestamp: 1_721_392_406,
            ..sample()
        };
        assert_eq!(
            e.body(),
            r#"{"payload": "{\"webhook_type\": \"FILES_CREATED\", \"obj\": {\"object_type\": \"FILE_LIST\", \"object_id\": [\"46654\"], \"additional_information\": \"null\"}, \"customer_id\": \"satvik\", \"timestamp\": \"1721392406\"}"}"#
        );
        let (v1, v2) = signature_headers(
            "aa76aee859f223451fd9bfb37ce893a0",
            e.timestamp,
            &e.payload_json(),
        )
        .unwrap();
        assert_eq!(
            v1,
            "t=1721392406,v1=aa2273ab64bb9162e7e7983a9cd7ab9f90d686691b1fd25c577991ad42c53fc1"
        );
        assert_eq!(
            v2,
            "t=1721392406,v2=42a86d4083fee090b5a0800a91e82fb389f0bed4da757d07ee8ba97485194e59"
        );
    }

    #[test]
    fn signatures_match_independent_hmac() {
        let key = "0123456789abcdef0123456789abcdef";
        let e = sample();
        let (v1, v2) = signature_headers(key, e.timestamp, &e.payload_json()).unwrap();
        // independent computation with the hmac crate directly
        let raw = hex::decode(key).unwrap();
        let mut m = HmacSha256::new_from_slice(&raw).unwrap();
        m.update(format!("{}.{}", e.timestamp, e.body()).as_bytes());
        let want = hex::encode(m.finalize().into_bytes());
        assert_eq!(v1, format!("t=1709590457,v1={want}"));
        let compact = e.body().replacen("{\"payload\": ", "{\"payload\":", 1);
        let mut m = HmacSha256::new_from_slice(&raw).unwrap();
        m.update(format!("{}.{}", e.timestamp, compact).as_bytes());
        assert_eq!(
            v2,
            format!("t=1709590457,v2={}", hex::encode(m.finalize().into_bytes()))
        );
        assert!(signature_headers("zz", 1, "x").is_err());
    }
}
