//! Markdown: the source is indexed as written (link targets and emphasis stay searchable);
//! structure is kept by starting a new section at every ATX heading outside code fences and by
//! never splitting a fenced code block at its blank lines.

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel, Unit};
use crate::text::decode;

/// The heading text of an ATX heading line (`## Title` → `Title`), if the line is one.
fn atx_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    let rest = &trimmed[hashes..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// Extracts a markdown file.
pub fn extract(bytes: &[u8]) -> Result<Document, IngestError> {
    let text = decode(bytes);
    let mut sections: Vec<Section> = Vec::new();
    let mut cur = Section {
        label: SectionLabel::None,
        heading: None,
        units: Vec::new(),
    };
    let mut para = String::new();
    let mut in_fence = false;
    let flush_para = |para: &mut String, units: &mut Vec<Unit>| {
        if !para.trim().is_empty() {
            units.push(Unit::paragraph(para.trim_end().to_string()));
        }
        para.clear();
    };
    for line in text.lines() {
        if is_fence(line) {
            if !in_fence {
                flush_para(&mut para, &mut cur.units);
            }
            in_fence = !in_fence;
            para.push_str(line);
            para.push('\n');
            if !in_fence {
                flush_para(&mut para, &mut cur.units);
            }
            continue;
        }
        if in_fence {
            para.push_str(line);
            para.push('\n');
            continue;
        }
        if let Some(h) = atx_heading(line) {
            flush_para(&mut para, &mut cur.units);
            if !cur.units.is_empty() {
                sections.push(cur);
            }
            cur = Section {
                label: SectionLabel::None,
                heading: Some(h.to_string()).filter(|h| !h.is_empty()),
                units: vec![Unit::paragraph(line.trim().to_string())],
            };
            continue;
        }
        if line.trim().is_empty() {
            flush_para(&mut para, &mut cur.units);
        } else {
            para.push_str(line.trim_end());
            para.push('\n');
        }
    }
    flush_para(&mut para, &mut cur.units);
    if !cur.units.is_empty() {
        sections.push(cur);
    }
    Ok(Document {
        format: Format::Md,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_headings_and_fences_stay_whole() {
        let md = "intro line\n\n# Setup\n\nInstall it.\n\n```sh\nmake\n\n# not a heading\nmake test\n```\n\n## Use\nRun [it](https://x.example).\n";
        let d = extract(md.as_bytes()).unwrap();
        let heads: Vec<_> = d.sections.iter().map(|s| s.heading.clone()).collect();
        assert_eq!(
            heads,
            [None, Some("Setup".to_string()), Some("Use".to_string())]
        );
        let setup: Vec<_> = d.sections[1]
            .units
            .iter()
            .map(|u| u.text.as_str())
            .collect();
        assert_eq!(
            setup,
            [
                "# Setup",
                "Install it.",
                "```sh\nmake\n\n# not a heading\nmake test\n```"
            ]
        );
        assert!(d.plain_text().contains("https://x.example"));
    }
}
