//! The structured text every extractor produces: sections (pages, slides, sheets, headed parts)
//! holding units (paragraphs or table rows) that the chunker packs without splitting when it can.

use crate::detect::Format;

/// Where a section sits in the source document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SectionLabel {
    None,
    Page(u32),
    Slide(u32),
    Sheet(String),
}

/// One indivisible-if-possible piece of text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    pub text: String,
    /// A table row (csv/tsv/xlsx): counted by `max_items_per_chunk` and `split_rows`.
    pub is_row: bool,
}

impl Unit {
    pub fn paragraph(text: impl Into<String>) -> Unit {
        Unit {
            text: text.into(),
            is_row: false,
        }
    }
    pub fn row(text: impl Into<String>) -> Unit {
        Unit {
            text: text.into(),
            is_row: true,
        }
    }
}

/// A run of units sharing one location (a page, a slide, a sheet, or a heading's body).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub label: SectionLabel,
    /// The nearest heading above this section's text, if the format has headings.
    pub heading: Option<String>,
    pub units: Vec<Unit>,
}

/// A whole extracted document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Document {
    pub format: Format,
    pub sections: Vec<Section>,
}

impl Document {
    /// Total bytes of text held.
    pub fn text_len(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| s.units.iter())
            .map(|u| u.text.len())
            .sum()
    }

    /// True when no unit holds a non-whitespace character.
    pub fn is_blank(&self) -> bool {
        self.sections
            .iter()
            .flat_map(|s| s.units.iter())
            .all(|u| u.text.trim().is_empty())
    }

    /// The document as plain text (what `/parsed_file` serves): units separated by blank lines,
    /// table rows by single newlines.
    pub fn plain_text(&self) -> String {
        let mut out = String::with_capacity(self.text_len() + 64);
        for section in &self.sections {
            let mut prev_row = false;
            for unit in &section.units {
                if !out.is_empty() {
                    out.push_str(if unit.is_row && prev_row {
                        "\n"
                    } else {
                        "\n\n"
                    });
                }
                out.push_str(unit.text.trim_end());
                prev_row = unit.is_row;
            }
        }
        out
    }

    /// Number of characters of text (Carbon's `num_characters`).
    pub fn num_characters(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| s.units.iter())
            .map(|u| u.text.chars().count())
            .sum()
    }
}

/// Splits text into paragraphs at blank lines, trimming each and dropping empty ones.
pub fn paragraphs(text: &str) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.trim().is_empty() {
                out.push(Unit::paragraph(cur.trim().to_string()));
            }
            cur.clear();
        } else {
            if !cur.is_empty() {
                cur.push('\n');
            }
            cur.push_str(line.trim_end());
        }
    }
    if !cur.trim().is_empty() {
        out.push(Unit::paragraph(cur.trim().to_string()));
    }
    out
}
