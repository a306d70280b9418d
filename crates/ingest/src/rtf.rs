//! Rich Text Format through rtf-parser-tt (code pages, `\u` escapes and table cells handled).

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel, paragraphs};

/// Extracts an RTF file.
pub fn extract(bytes: &[u8]) -> Result<Document, IngestError> {
    let doc =
        rtf_parser_tt::RtfDocument::from_bytes(bytes).map_err(|e| IngestError::Malformed {
            format: "RTF".into(),
            reason: format!("{e:?}"),
        })?;
    let text = doc.get_text();
    Ok(Document {
        format: Format::Rtf,
        sections: vec![Section {
            label: SectionLabel::None,
            heading: None,
            units: paragraphs(&text.replace('\r', "")),
        }],
    })
}
