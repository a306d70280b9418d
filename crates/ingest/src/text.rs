//! Plain text: decoding from any common encoding (BOM first, then strict UTF-8, then a guess of
//! the legacy code page with chardetng) and splitting into paragraphs.

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel, paragraphs};

/// Decodes bytes to a `String`, normalising line endings to `\n`.
pub fn decode(bytes: &[u8]) -> String {
    let text = if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        enc.decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned()
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        s.to_string()
    } else {
        let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        det.feed(bytes, true);
        let enc = det.guess(None, chardetng::Utf8Detection::Deny);
        enc.decode_without_bom_handling(bytes).0.into_owned()
    };
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    }
}

/// Extracts a plain-text file.
pub fn extract(bytes: &[u8]) -> Result<Document, IngestError> {
    let text = decode(bytes);
    Ok(Document {
        format: Format::Txt,
        sections: vec![Section {
            label: SectionLabel::None,
            heading: None,
            units: paragraphs(&text),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_boms_utf8_and_legacy() {
        assert_eq!(decode(b"\xEF\xBB\xBFcaf\xC3\xA9"), "café");
        let mut utf16 = vec![0xFF, 0xFE];
        for c in "naïve".encode_utf16() {
            utf16.extend_from_slice(&c.to_le_bytes());
        }
        assert_eq!(decode(&utf16), "naïve");
        // Windows-1252 curly quotes and e-acute.
        assert_eq!(
            decode(b"\x93Caf\xE9\x94 is a word"),
            "\u{201c}Café\u{201d} is a word"
        );
        assert_eq!(decode(b"a\r\nb\rc"), "a\nb\nc");
    }

    #[test]
    fn paragraphs_split_on_blank_lines() {
        let d = extract(b"one\ntwo\n\n\nthree\n").unwrap();
        let texts: Vec<_> = d.sections[0]
            .units
            .iter()
            .map(|u| u.text.as_str())
            .collect();
        assert_eq!(texts, ["one\ntwo", "three"]);
    }
}
