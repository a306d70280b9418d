//! Tabular text (csv, tsv, and the rows other extractors such as xlsx produce): the first row is
//! the header, and every later row becomes one unit `header: value, header: value`, as Carbon
//! renders rows, so each chunk stays readable on its own.

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel, Unit};
use crate::text::decode;

/// Picks the delimiter of a csv-like text: the most frequent of `, ; \t |` in the first line.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|&d| first.bytes().filter(|&b| b == d).count())
        .unwrap_or(b',')
}

/// A table row as `(column index, cell text)` pairs in column order: sparse, so a sheet with a
/// cell at column XFD costs one entry, not sixteen thousand.
pub type SparseRow = Vec<(usize, String)>;

fn filled(row: &SparseRow) -> usize {
    row.iter().filter(|(_, c)| !c.trim().is_empty()).count()
}

/// Turns dense rows into sparse ones.
pub fn dense_to_sparse(rows: Vec<Vec<String>>) -> Vec<SparseRow> {
    rows.into_iter()
        .map(|r| r.into_iter().enumerate().collect())
        .collect()
}

/// Renders rows as units. The header is the first row that is at least half as full as the
/// fullest of the first 20 rows; sparser rows above it (titles such as "Stanley Cups,,") become
/// a paragraph of their own. Empty cells are left out; columns without a header are named
/// `column N`.
pub fn rows_to_units(rows: Vec<SparseRow>) -> Vec<Unit> {
    let widest = rows.iter().take(20).map(filled).max().unwrap_or(0);
    let header_at = rows
        .iter()
        .position(|r| filled(r) * 2 > widest)
        .unwrap_or(0);
    let mut units = Vec::new();
    let mut iter = rows.into_iter();
    let title: Vec<String> = iter
        .by_ref()
        .take(header_at)
        .flatten()
        .map(|(_, c)| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if !title.is_empty() {
        units.push(Unit::paragraph(title.join(" ")));
    }
    let Some(header) = iter.next() else {
        return units;
    };
    let header: std::collections::BTreeMap<usize, String> = header
        .into_iter()
        .map(|(i, h)| (i, h.trim().to_string()))
        .collect();
    let mut any_row = false;
    for row in iter {
        let mut line = String::new();
        for (i, cell) in &row {
            let i = *i;
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            if !line.is_empty() {
                line.push_str(", ");
            }
            match header.get(&i).filter(|h| !h.is_empty()) {
                Some(h) => {
                    line.push_str(h);
                    line.push_str(": ");
                }
                None => {
                    line.push_str(&format!("column {}: ", i + 1));
                }
            }
            line.push_str(cell);
        }
        if !line.is_empty() {
            units.push(Unit::row(line));
            any_row = true;
        }
    }
    if !any_row {
        // A header-only table still has searchable text.
        let line = header
            .into_values()
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        if !line.is_empty() {
            units.push(Unit::row(line));
        }
    }
    units
}

/// Extracts a delimited text file. `delimiter` is a hint: csv files are sniffed because `;`
/// and `|` separated exports are common.
pub fn extract_delimited(bytes: &[u8], delimiter: Option<u8>) -> Result<Document, IngestError> {
    let text = decode(bytes);
    let delim = match delimiter {
        Some(b'\t') => b'\t',
        _ => sniff_delimiter(&text),
    };
    let format = if delim == b'\t' {
        Format::Tsv
    } else {
        Format::Csv
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| IngestError::Malformed {
            format: format.name().to_string(),
            reason: e.to_string(),
        })?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(Document {
        format,
        sections: vec![Section {
            label: SectionLabel::None,
            heading: None,
            units: rows_to_units(dense_to_sparse(rows)),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(d: &Document) -> Vec<String> {
        d.sections[0].units.iter().map(|u| u.text.clone()).collect()
    }

    #[test]
    fn header_prefixes_rows() {
        let d = extract_delimited(b"team,year\n\"Leafs, Toronto\",1967\nOilers,\n", Some(b','))
            .unwrap();
        assert_eq!(
            texts(&d),
            ["team: Leafs, Toronto, year: 1967", "team: Oilers"]
        );
        assert!(d.sections[0].units.iter().all(|u| u.is_row));
    }

    #[test]
    fn sniffs_semicolons_and_reads_tsv() {
        let d = extract_delimited(b"a;b\n1;2\n", Some(b',')).unwrap();
        assert_eq!(texts(&d), ["a: 1, b: 2"]);
        let d = extract_delimited(b"a\tb\n1\t2\n", Some(b'\t')).unwrap();
        assert_eq!(d.format, Format::Tsv);
        assert_eq!(texts(&d), ["a: 1, b: 2"]);
    }

    #[test]
    fn title_rows_above_the_header_are_kept_apart() {
        let d = extract_delimited(
            b"Stanley Cups,,\nTeam,Location,Stanley Cups\nBlues,STL,1\n",
            None,
        )
        .unwrap();
        assert_eq!(
            texts(&d),
            [
                "Stanley Cups",
                "Team: Blues, Location: STL, Stanley Cups: 1"
            ]
        );
        assert!(!d.sections[0].units[0].is_row);
    }

    #[test]
    fn ragged_rows_and_header_only() {
        let d = extract_delimited(b"a,b\n1,2,3\n", None).unwrap();
        assert_eq!(texts(&d), ["a: 1, b: 2, column 3: 3"]);
        let d = extract_delimited(b"only,header\n", None).unwrap();
        assert_eq!(texts(&d), ["only, header"]);
    }
}
