//! Chunking with Carbon's knobs, measured in the embedding model's tokens: `chunk_size`,
//! `chunk_overlap`, `set_page_as_boundary`, `prepend_filename_to_chunks`, `max_items_per_chunk`
//! and `split_rows`. Chunks end at unit (paragraph, row) boundaries when one fits, else at a
//! word boundary; sheets always start a new chunk, pages do when asked.

use crate::document::{Document, SectionLabel};

/// Tokenises text the way the embedding model does.
pub trait TokenCounter {
    /// Byte spans `(start, end)` of every token of `text`, in order, without truncation and
    /// without special tokens such as `[CLS]`.
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)>;

    /// Number of tokens of `text` (what `token_spans(text).len()` returns; implementations
    /// may count without building the spans).
    fn count_tokens(&self, text: &str) -> usize {
        self.token_spans(text).len()
    }
}

/// How to cut a document into chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Largest chunk, in tokens (including a prepended file name).
    pub chunk_size: usize,
    /// Tokens repeated from the end of one chunk at the start of the next (prose only).
    pub chunk_overlap: usize,
    /// Never let a chunk span two pages.
    pub set_page_as_boundary: bool,
    /// Prefix every chunk with this file name on its own line.
    pub prepend_filename: Option<String>,
    /// At most this many table rows per chunk.
    pub max_items_per_chunk: Option<usize>,
    /// One table row per chunk.
    pub split_rows: bool,
}

/// One chunk of a document, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub index: usize,
    pub text: String,
    pub token_count: usize,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub slide_start: Option<u32>,
    pub slide_end: Option<u32>,
    pub sheet: Option<String>,
    pub heading: Option<String>,
}

/// A unit's place in a group's joined text.
struct Placed {
    start_byte: usize,
    end_byte: usize,
    label: SectionLabel,
    heading: Option<String>,
    is_row: bool,
}

/// Cuts `doc` into chunks.
pub fn chunk_document(doc: &Document, opts: &ChunkOptions, tok: &dyn TokenCounter) -> Vec<Chunk> {
    let prefix = opts
        .prepend_filename
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(|f| format!("{}\n", f.trim()));
    let prefix_tokens = prefix.as_deref().map_or(0, |p| tok.token_spans(p).len());
    let budget = opts.chunk_size.saturating_sub(prefix_tokens).max(8);
    let overlap = opts.chunk_overlap.min(budget / 2);
    let max_rows = if opts.split_rows {
        Some(1)
    } else {
        opts.max_items_per_chunk.filter(|&n| n > 0)
    };

    let mut chunks = Vec::new();
    for (text, placed) in groups(doc, opts.set_page_as_boundary) {
        let spans = tok.token_spans(&text);
        if spans.is_empty() {
            continue;
        }
        // Token index range of each unit: first token starting at or after the unit's start,
        // up to the first token starting at or after its end.
        let first_tok = |byte: usize| spans.partition_point(|s| s.0 < byte);
        let unit_tok: Vec<(usize, usize)> = placed
            .iter()
            .map(|p| (first_tok(p.start_byte), first_tok(p.end_byte)))
            .collect();
        let n = spans.len();
        let mut start = 0usize;
        // End of the previous chunk: a chunk must bring tokens beyond it, else an overlap that
        // reaches back before a unit boundary re-emits that boundary as a chunk of overlap only.
        let mut prev_end = 0usize;
        while start < n {
            let limit = (start + budget).min(n);
            // Unit boundaries that end inside (max(start, prev_end), limit].
            let mut end = unit_tok
                .iter()
                .map(|&(_, e)| e)
                .filter(|&e| e > start.max(prev_end) && e <= limit)
                .max()
                .unwrap_or(0);
            let row_mode = max_rows.is_some() && placed.iter().any(|p| p.is_row);
            if end > start && limit < n && !row_mode {
                // The unit after the boundary cannot fit in a chunk of its own (with the
                // overlap), so it is cut at a word boundary anyway: fill this window with its
                // beginning instead of leaving a short chunk (e.g. a title alone).
                let next = placed
                    .iter()
                    .zip(&unit_tok)
                    .find(|(_, (s, _))| *s >= end)
                    .filter(|(p, (s, e))| !p.is_row && e - s + overlap > budget);
                if next.is_some() {
                    end = 0;
                }
            }
            if let Some(max) = max_rows {
                // End after the `max`-th row that starts at or after `start`.
                let mut rows = 0;
                for (i, p) in placed.iter().enumerate() {
                    let (s, e) = unit_tok[i];
                    if p.is_row && s >= start && e > start {
                        rows += 1;
                        if rows == max {
                            if e <= limit && e > start {
                                end = if end == 0 { e } else { end.min(e) };
                            }
                            break;
                        }
                    }
                }
            }
            if end <= start {
                // One unit is larger than the budget: cut it at the last word boundary in the
                // second half of the window, else at the budget.
                end = limit;
                if limit < n {
                    let lower = start + budget / 2;
                    if let Some(j) = (lower.max(start + 1)..=limit)
                        .rev()
                        .find(|&j| j < n && spans[j].0 > spans[j - 1].1)
                    {
                        end = j;
                    }
                }
            }
            let body = &text[spans[start].0..spans[end - 1].1];
            let covered: Vec<&Placed> = placed
                .iter()
                .zip(&unit_tok)
                .filter(|(_, (s, e))| *s < end && *e > start)
                .map(|(p, _)| p)
                .collect();
            chunks.push(make_chunk(
                chunks.len(),
                prefix.as_deref(),
                body,
                end - start + prefix_tokens,
                &covered,
            ));
            if end >= n {
                break;
            }
            prev_end = end;
            start = if row_mode || overlap == 0 {
                end
            } else {
                // The overlap starts at a word, not inside one (word pieces, "ithelial").
                let mut s = end.saturating_sub(overlap).max(start + 1);
                while s < end && spans[s].0 == spans[s - 1].1 {
                    s += 1;
                }
                s
            };
        }
    }
    chunks
}

fn make_chunk(
    index: usize,
    prefix: Option<&str>,
    body: &str,
    token_count: usize,
    covered: &[&Placed],
) -> Chunk {
    let mut text = String::with_capacity(body.len() + prefix.map_or(0, str::len));
    if let Some(p) = prefix {
        text.push_str(p);
    }
    text.push_str(body);
    let pages: Vec<u32> = covered
        .iter()
        .filter_map(|p| match p.label {
            SectionLabel::Page(n) => Some(n),
            _ => None,
        })
        .collect();
    let slides: Vec<u32> = covered
        .iter()
        .filter_map(|p| match p.label {
            SectionLabel::Slide(n) => Some(n),
            _ => None,
        })
        .collect();
    let sheet = covered.iter().find_map(|p| match &p.label {
        SectionLabel::Sheet(s) => Some(s.clone()),
        _ => None,
    });
    Chunk {
        index,
        text,
        token_count,
        page_start: pages.iter().copied().min(),
        page_end: pages.iter().copied().max(),
        slide_start: slides.iter().copied().min(),
        slide_end: slides.iter().copied().max(),
        sheet,
        heading: covered.iter().find_map(|p| p.heading.clone()),
    }
}

/// Joins the document's units into groups that no chunk may cross (sheets always, pages when
/// asked), remembering where each unit sits in the joined text.
fn groups(doc: &Document, page_boundary: bool) -> Vec<(String, Vec<Placed>)> {
    let mut out: Vec<(String, Vec<Placed>)> = Vec::new();
    let mut text = String::new();
    let mut placed: Vec<Placed> = Vec::new();
    let mut prev_label: Option<&SectionLabel> = None;
    for section in &doc.sections {
        let hard = match (prev_label, &section.label) {
            (Some(SectionLabel::Sheet(a)), SectionLabel::Sheet(b)) => a != b,
            (Some(_), SectionLabel::Sheet(_)) | (Some(SectionLabel::Sheet(_)), _) => true,
            (Some(SectionLabel::Page(a)), SectionLabel::Page(b)) => page_boundary && a != b,
            _ => false,
        };
        if hard && !placed.is_empty() {
            out.push((std::mem::take(&mut text), std::mem::take(&mut placed)));
        }
        prev_label = Some(&section.label);
        for unit in &section.units {
            let t = unit.text.trim();
            if t.is_empty() {
                continue;
            }
            if !text.is_empty() {
                let both_rows = unit.is_row && placed.last().is_some_and(|p| p.is_row);
                text.push_str(if both_rows { "\n" } else { "\n\n" });
            }
            let start_byte = text.len();
            text.push_str(t);
            placed.push(Placed {
                start_byte,
                end_byte: text.len(),
                label: section.label.clone(),
                heading: section.heading.clone(),
                is_row: unit.is_row,
            });
        }
    }
    if !placed.is_empty() {
        out.push((text, placed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Format;
    use crate::document::{Section, Unit};

    /// Whitespace tokens: enough to test the packing rules.
    struct Words;
    impl TokenCounter for Words {
        fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut start = None;
            for (i, c) in text.char_indices() {
                match (c.is_whitespace(), start) {
                    (true, Some(s)) => {
                        out.push((s, i));
                        start = None;
                    }
                    (false, None) => start = Some(i),
                    _ => {}
                }
            }
            if let Some(s) = start {
                out.push((s, text.len()));
            }
            out
        }
    }

    fn opts(size: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions {
            chunk_size: size,
            chunk_overlap: overlap,
            set_page_as_boundary: false,
            prepend_filename: None,
            max_items_per_chunk: None,
            split_rows: false,
        }
    }

    fn doc(sections: Vec<(SectionLabel, Vec<Unit>)>) -> Document {
        Document {
            format: Format::Txt,
            sections: sections
                .into_iter()
                .map(|(label, units)| Section {
                    label,
                    heading: None,
                    units,
                })
                .collect(),
        }
    }

    fn words(n: usize, tag: &str) -> String {
        (0..n)
            .map(|i| format!("{tag}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn packs_paragraphs_without_splitting_them() {
        let d = doc(vec![(
            SectionLabel::None,
            vec![
                Unit::paragraph(words(4, "a")),
                Unit::paragraph(words(4, "b")),
                Unit::paragraph(words(4, "c")),
            ],
        )]);
        let c = chunk_document(&d, &opts(10, 0), &Words);
        let texts: Vec<_> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            ["a0 a1 a2 a3\n\nb0 b1 b2 b3", "c0 c1 c2 c3"],
            "two paragraphs fit in 10 tokens, the third starts a new chunk"
        );
        assert!(c.iter().all(|c| c.token_count <= 10));
    }

    #[test]
    fn long_units_are_windowed_with_overlap_and_nothing_is_lost() {
        let d = doc(vec![(
            SectionLabel::None,
            vec![Unit::paragraph(words(25, "w"))],
        )]);
        let c = chunk_document(&d, &opts(10, 2), &Words);
        assert!(c.iter().all(|c| c.token_count <= 10));
        // Every word appears; consecutive chunks share exactly the overlap.
        for i in 0..25 {
            let w = format!("w{i}");
            assert!(
                c.iter().any(|c| c.text.split(' ').any(|t| t == w)),
                "{w} lost"
            );
        }
        assert_eq!(c[0].text, words(10, "w"));
        assert!(c[1].text.starts_with("w8 w9 w10"));
    }

    #[test]
    fn page_boundary_and_page_numbers() {
        let d = doc(vec![
            (SectionLabel::Page(1), vec![Unit::paragraph("one two")]),
            (SectionLabel::Page(2), vec![Unit::paragraph("three four")]),
        ]);
        let merged = chunk_document(&d, &opts(50, 0), &Words);
        assert_eq!(merged.len(), 1);
        assert_eq!(
            (merged[0].page_start, merged[0].page_end),
            (Some(1), Some(2))
        );
        let mut o = opts(50, 0);
        o.set_page_as_boundary = true;
        let split = chunk_document(&d, &o, &Words);
        assert_eq!(split.len(), 2);
        assert_eq!((split[1].page_start, split[1].page_end), (Some(2), Some(2)));
    }

    #[test]
    fn rows_respect_items_per_chunk_split_rows_and_sheets() {
        let rows: Vec<Unit> = (0..5).map(|i| Unit::row(format!("a: {i}, b: x"))).collect();
        let d = doc(vec![
            (SectionLabel::Sheet("S1".into()), rows.clone()),
            (SectionLabel::Sheet("S2".into()), rows[..1].to_vec()),
        ]);
        let mut o = opts(200, 5);
        o.max_items_per_chunk = Some(2);
        let c = chunk_document(&d, &o, &Words);
        let n: Vec<_> = c.iter().map(|c| c.text.lines().count()).collect();
        assert_eq!(
            n,
            [2, 2, 1, 1],
            "2 rows per chunk, no overlap, new chunk per sheet"
        );
        assert_eq!(c[3].sheet.as_deref(), Some("S2"));
        o.max_items_per_chunk = None;
        o.split_rows = true;
        assert_eq!(chunk_document(&d, &o, &Words).len(), 6);
    }

    #[test]
    fn filename_prefix_counts_against_the_budget() {
        let d = doc(vec![(
            SectionLabel::None,
            vec![Unit::paragraph(words(20, "w"))],
        )]);
        let mut o = opts(10, 0);
        o.prepend_filename = Some("report.pdf".into());
        let c = chunk_document(&d, &o, &Words);
        assert!(c.iter().all(|c| c.text.starts_with("report.pdf\n")));
        assert!(c.iter().all(|c| c.token_count <= 10));
        assert_eq!(c.len(), 3);
    }
    #[test]
    fn short_unit_before_an_oversized_one_is_packed_not_repeated() {
        // A title followed by an abstract longer than the budget (SciFact through
        // /upload_text): the title must open the first full chunk, not become a run of
        // shrinking title-only chunks.
        let d = doc(vec![(
            SectionLabel::None,
            vec![
                Unit::paragraph(words(3, "t")),
                Unit::paragraph(words(25, "w")),
            ],
        )]);
        let c = chunk_document(&d, &opts(10, 2), &Words);
        let texts: Vec<_> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(c[0].text, "t0 t1 t2\n\nw0 w1 w2 w3 w4 w5 w6", "{texts:?}");
        assert!(c.iter().all(|c| c.token_count <= 10), "{texts:?}");
        assert_eq!(c.len(), 4, "28 tokens, 10 per chunk, 2 overlap: {texts:?}");
        for w in c.windows(2) {
            assert!(!w[0].text.contains(&w[1].text), "{texts:?}");
            assert!(!w[1].text.contains(&w[0].text), "{texts:?}");
        }
        for i in 0..25 {
            let w = format!("w{i}");
            assert!(
                c.iter().any(|c| c.text.split_whitespace().any(|t| t == w)),
                "{w} lost"
            );
        }
    }
    #[test]
    fn overlap_never_reemits_a_unit_boundary_as_a_chunk() {
        // Rows are never merged into the next unit's window, so only the progress rule keeps
        // the overlap from turning the short row into a run of ever shorter chunks.
        let d = doc(vec![(
            SectionLabel::None,
            vec![Unit::row("r0 r1 r2"), Unit::row(words(25, "w"))],
        )]);
        let c = chunk_document(&d, &opts(10, 2), &Words);
        let texts: Vec<_> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts[0], "r0 r1 r2", "{texts:?}");
        assert!(texts[1].starts_with("r1 r2\nw0"), "{texts:?}");
        assert!(c.iter().all(|c| c.token_count <= 10), "{texts:?}");
        for w in c.windows(2) {
            assert!(!w[0].text.ends_with(&w[1].text), "{texts:?}");
        }
    }
    /// Word pieces of at most three characters, like a word-piece tokenizer on long words.
    struct Pieces;
    impl TokenCounter for Pieces {
        fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
            Words
                .token_spans(text)
                .into_iter()
                .flat_map(|(s, e)| (s..e).step_by(3).map(move |i| (i, (i + 3).min(e))))
                .collect()
        }
    }

    #[test]
    fn overlap_starts_at_a_word() {
        // "abcdef" is two pieces; a 3-piece overlap would start inside a word.
        let text = (0..12)
            .map(|i| format!("{i:02}cdef"))
            .collect::<Vec<_>>()
            .join(" ");
        let d = doc(vec![(
            SectionLabel::None,
            vec![Unit::paragraph(text.clone())],
        )]);
        let c = chunk_document(&d, &opts(8, 3), &Pieces);
        let texts: Vec<_> = c.iter().map(|c| c.text.as_str()).collect();
        assert!(c.len() > 2, "{texts:?}");
        for t in &texts {
            assert!(t.split(' ').all(|w| w.len() == 6), "{texts:?}");
        }
        assert_eq!(
            texts[1], "03cdef 04cdef 05cdef 06cdef",
            "one word of overlap: {texts:?}"
        );
    }
}
