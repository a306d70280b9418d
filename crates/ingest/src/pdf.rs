//! PDF text in reading order with page numbers (pdf_oxide, pure Rust). Each page becomes a
//! section; a PDF that is encrypted and yields no text is reported as encrypted, and pages without
//! a text layer are OCRed when asked (see [`crate::ocr`]).

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel, paragraphs};

/// Pages per file beyond which extraction stops with an error instead of running for minutes.
pub const MAX_PAGES: usize = 20_000;

/// Extracts a PDF. With `use_ocr`, pages with (almost) no text layer are rendered and OCRed.
pub fn extract(bytes: &[u8], use_ocr: bool) -> Result<Document, IngestError> {
    let malformed = |reason: String| IngestError::Malformed {
        format: "PDF".into(),
        reason,
    };
    let pdf = pdf_oxide::PdfDocument::from_bytes(bytes.to_vec()).map_err(|e| {
        let m = e.to_string();
        if m.to_ascii_lowercase().contains("password") || m.to_ascii_lowercase().contains("encrypt")
        {
            IngestError::Encrypted
        } else {
            malformed(m)
        }
    })?;
    let pages = pdf.page_count().map_err(|e| malformed(e.to_string()))?;
    if pages > MAX_PAGES {
        return Err(malformed(format!(
            "{pages} pages, over the limit of {MAX_PAGES}"
        )));
    }
    let mut sections = Vec::with_capacity(pages);
    let mut textless_pages = Vec::new();
    for i in 0..pages {
        let text = pdf.extract_text(i).unwrap_or_default();
        let page = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if text.trim().chars().count() < 10 {
            textless_pages.push(page);
        }
        sections.push(Section {
            label: SectionLabel::Page(page),
            heading: None,
            units: paragraphs(&text),
        });
    }
    let chars: usize = sections
        .iter()
        .flat_map(|s| s.units.iter())
        .map(|u| u.text.chars().count())
        .sum();
    if chars < 50 * pages {
        // Quality gate: pdf_oxide misses some CID/CMap fonts. Poppler's pdftotext (a separate
        // process, when installed) gets a second opinion; keep it only if it finds clearly more.
        if let Some(alt) = pdftotext_pages(bytes, pages)
            && alt.iter().map(|t| t.chars().count()).sum::<usize>() > chars * 3 / 2 + 20
        {
            for (section, text) in sections.iter_mut().zip(alt) {
                section.units = paragraphs(&text);
            }
            textless_pages = sections
                .iter()
                .filter(|s| s.units.iter().map(|u| u.text.len()).sum::<usize>() < 10)
                .filter_map(|s| match s.label {
                    SectionLabel::Page(p) => Some(p),
                    _ => None,
                })
                .collect();
        }
    }
    let empty = sections.iter().all(|s| s.units.is_empty());
    if empty && pdf.is_encrypted() {
        return Err(IngestError::Encrypted);
    }
    if use_ocr && !textless_pages.is_empty() {
        let ocr = crate::ocr::pdf_pages(bytes, &textless_pages)?;
        for (page, text) in ocr {
            if let Some(s) = sections
                .iter_mut()
                .find(|s| s.label == SectionLabel::Page(page))
            {
                s.units = paragraphs(&text);
            }
        }
    } else if empty {
        return Err(IngestError::Malformed {
            format: "PDF".into(),
            reason: "the PDF has no text layer (scanned pages); sync it with use_ocr to read them"
                .into(),
        });
    }
    Ok(Document {
        format: Format::Pdf,
        sections,
    })
}

/// Text of every page according to Poppler's `pdftotext` (pages separated by form feeds), or
/// `None` when the tool is missing or fails.
fn pdftotext_pages(bytes: &[u8], pages: usize) -> Option<Vec<String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut split: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    split.resize(pages, String::new());
    Some(split)
}
