//! `Dropbox-API-Arg` encoding: JSON made HTTP-header safe by escaping every character at or
//! above U+007F as `\uXXXX` (UTF-16 code units, so astral characters become surrogate pairs).

/// Serialises `value` to JSON and escapes it for an HTTP header.
pub fn header_json<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(escape_non_ascii(&serde_json::to_string(value)?))
}

/// Escapes every char ≥ U+007F in an (already JSON-encoded) string.
pub fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (c as u32) < 0x7F {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_dropbox_documents() {
        assert_eq!(
            escape_non_ascii("{\"path\":\"/üñîcødé\u{7f}\"}"),
            "{\"path\":\"/\\u00fc\\u00f1\\u00eec\\u00f8d\\u00e9\\u007f\"}"
        );
        // U+1F600 becomes a surrogate pair, not a 5-digit escape.
        assert_eq!(escape_non_ascii("😀"), "\\ud83d\\ude00");
        let v: serde_json::Value = serde_json::from_str(&header_json(&"a😀é").unwrap()).unwrap();
        assert_eq!(v, "a😀é");
    }
}
