//! Word and PowerPoint documents (docx, pptx, and the legacy doc/ppt/xls binaries) through
//! office_oxide's document model: headings start sections, paragraphs and list items become
//! units, tables become header-prefixed rows, text boxes, headers, footers, footnotes and speaker
//! notes are kept. office_oxide guards against zip bombs (decompression limits) itself.

use std::io::Cursor;

use office_oxide::DocumentFormat;
use office_oxide::ir::{Element, Section as IrSection, inline_to_text};

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel, Unit};
use crate::tabular::{SparseRow, rows_to_units};

/// Extracts a docx (`Format::Docx`) or pptx (`Format::Pptx`) file, or a legacy binary Office
/// file (`Format::Cfb`, whose kind is taken from `file_name`).
pub fn extract(bytes: &[u8], format: Format, file_name: &str) -> Result<Document, IngestError> {
    let (office_format, out_format) = match format {
        Format::Docx => (DocumentFormat::Docx, Format::Docx),
        Format::Pptx => (DocumentFormat::Pptx, Format::Pptx),
        Format::Xlsx => (DocumentFormat::Xlsx, Format::Xlsx),
        Format::Cfb => legacy_kind(file_name)?,
        other => return Err(IngestError::Unsupported(other.name().to_string())),
    };
    let doc = office_oxide::Document::from_reader(Cursor::new(bytes.to_vec()), office_format)
        .map_err(|e| office_error(out_format, e))?;
    let ir = doc.to_ir();
    let slides = matches!(office_format, DocumentFormat::Pptx | DocumentFormat::Ppt);
    let sheets = matches!(office_format, DocumentFormat::Xlsx | DocumentFormat::Xls);
    let mut sections = Vec::new();
    for (i, s) in ir.sections.iter().enumerate() {
        let label = if slides {
            SectionLabel::Slide(u32::try_from(i + 1).unwrap_or(u32::MAX))
        } else if sheets {
            SectionLabel::Sheet(s.title.clone().unwrap_or_else(|| format!("Sheet{}", i + 1)))
        } else {
            SectionLabel::None
        };
        walk_section(s, label, slides, &mut sections);
    }
    Ok(Document {
        format: out_format,
        sections,
    })
}

/// A CFB container is either a legacy Office binary or an encrypted OOXML package.
fn legacy_kind(file_name: &str) -> Result<(DocumentFormat, Format), IngestError> {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "doc" => Ok((DocumentFormat::Doc, Format::Docx)),
        "ppt" => Ok((DocumentFormat::Ppt, Format::Pptx)),
        "xls" => Ok((DocumentFormat::Xls, Format::Xlsx)),
        "docx" | "pptx" | "xlsx" => Err(IngestError::Encrypted),
        _ => Err(IngestError::Unsupported("legacy Office file".into())),
    }
}

fn office_error(format: Format, e: office_oxide::OfficeError) -> IngestError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("encrypt") || lower.contains("password") {
        IngestError::Encrypted
    } else {
        IngestError::Malformed {
            format: format.name().to_string(),
            reason: msg,
        }
    }
}

struct Walker<'a> {
    out: &'a mut Vec<Section>,
    label: SectionLabel,
    heading: Option<String>,
    units: Vec<Unit>,
}

impl Walker<'_> {
    fn flush(&mut self) {
        if !self.units.is_empty() {
            self.out.push(Section {
                label: self.label.clone(),
                heading: self.heading.clone(),
                units: std::mem::take(&mut self.units),
            });
        }
    }

    fn push_text(&mut self, text: String) {
        let t = text.trim();
        if !t.is_empty() {
            self.units.push(Unit::paragraph(t.to_string()));
        }
    }

    fn elements(&mut self, elements: &[Element]) {
        for e in elements {
            match e {
                Element::Heading(h) => {
                    let text = inline_to_text(&h.content).trim().to_string();
                    if !text.is_empty() {
                        self.flush();
                        self.heading = Some(text.clone());
                        self.units.push(Unit::paragraph(text));
                    }
                }
                Element::Paragraph(p) => self.push_text(inline_to_text(&p.content)),
                Element::List(l) => self.list(l, 0),
                Element::Table(t) => {
                    let rows: Vec<SparseRow> = t
                        .rows
                        .iter()
                        .map(|r| {
                            r.cells
                                .iter()
                                .enumerate()
                                .map(|(i, c)| (i, cell_text(&c.content)))
                                .collect()
                        })
                        .collect();
                    if let Some(caption) = &t.caption {
                        self.push_text(caption.clone());
                    }
                    self.units.extend(rows_to_units(rows));
                }
                Element::TextBox(tb) => self.elements(&tb.content),
                Element::Footnote(n) | Element::Endnote(n) => self.elements(&n.content),
                Element::CodeBlock(c) => self.push_text(c.content.clone()),
                Element::Image(_)
                | Element::ThematicBreak
                | Element::PageBreak
                | Element::ColumnBreak
                | Element::Shape(_) => {}
                _ => {}
            }
        }
    }

    fn list(&mut self, list: &office_oxide::ir::List, depth: usize) {
        for (n, item) in list.items.iter().enumerate() {
            let text = plain(&item.content);
            if !text.trim().is_empty() {
                let marker = if list.ordered {
                    format!("{}. ", list.start_number.unwrap_or(1) as usize + n)
                } else {
                    "- ".to_string()
                };
                self.units.push(Unit::paragraph(format!(
                    "{}{marker}{}",
                    "  ".repeat(depth),
                    text.trim()
                )));
            }
            if let Some(nested) = &item.nested {
                self.list(nested, depth + 1);
            }
        }
    }
}

/// Text of a run of elements, flattened (used for table cells and list items).
fn plain(elements: &[Element]) -> String {
    let mut sink = Vec::new();
    let mut w = Walker {
        out: &mut sink,
        label: SectionLabel::None,
        heading: None,
        units: Vec::new(),
    };
    w.elements(elements);
    w.flush();
    sink.into_iter()
        .flat_map(|s| s.units)
        .map(|u| u.text)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cell_text(elements: &[Element]) -> String {
    plain(elements).replace('\n', " ")
}

fn walk_section(s: &IrSection, label: SectionLabel, slides: bool, out: &mut Vec<Section>) {
    let mut w = Walker {
        out,
        label,
        heading: if slides { s.title.clone() } else { None },
        units: Vec::new(),
    };
    for hf in [&s.header, &s.first_page_header].into_iter().flatten() {
        w.elements(&hf.content);
    }
    w.elements(&s.elements);
    if let Some(notes) = &s.speaker_notes {
        let before = w.units.len();
        w.elements(notes);
        if w.units.len() > before {
            w.units.insert(before, Unit::paragraph("Notes:"));
        }
    }
    for hf in [&s.footer, &s.first_page_footer].into_iter().flatten() {
        w.elements(&hf.content);
    }
    w.flush();
}
