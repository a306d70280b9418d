//! Excel workbooks through calamine's *streaming* cell reader: one section per sheet, rows with
//! the header row prefixed. The streaming reader never allocates the sheet's declared dimension,
//! so a 5 kB file claiming cells A1:XFD1048576 costs two cells, not 512 GiB.

use std::io::Cursor;

use calamine::{DataRef, Reader, Xlsx};

use crate::IngestError;
use crate::detect::Format;
use crate::document::{Document, Section, SectionLabel};
use crate::tabular::{SparseRow, rows_to_units};

/// Cells per workbook beyond which extraction stops with an error.
pub const MAX_CELLS: usize = 10_000_000;

fn malformed(reason: String) -> IngestError {
    IngestError::Malformed {
        format: "XLSX".into(),
        reason,
    }
}

fn cell_text(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                format!("{f}")
            }
        }
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => match d.as_datetime() {
            Some(dt) => {
                let s = dt.to_string();
                s.strip_suffix(" 00:00:00").map(str::to_string).unwrap_or(s)
            }
            None => d.to_string(),
        },
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("{e}"),
        DataRef::Empty => String::new(),
    }
}

/// Extracts an xlsx workbook.
pub fn extract(bytes: &[u8]) -> Result<Document, IngestError> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).map_err(|e| {
        let m = e.to_string();
        if m.to_ascii_lowercase().contains("password") || m.to_ascii_lowercase().contains("encrypt")
        {
            IngestError::Encrypted
        } else {
            malformed(m)
        }
    })?;
    let names = wb.sheet_names();
    let mut sections = Vec::new();
    let mut total = 0usize;
    for name in names {
        let mut reader = wb
            .worksheet_cells_reader(&name)
            .map_err(|e| malformed(e.to_string()))?;
        let mut rows: Vec<SparseRow> = Vec::new();
        let mut current: Option<u32> = None;
        while let Some(cell) = reader.next_cell().map_err(|e| malformed(e.to_string()))? {
            total += 1;
            if total > MAX_CELLS {
                return Err(malformed(format!("more than {MAX_CELLS} cells")));
            }
            let (r, c) = cell.get_position();
            let text = cell_text(cell.get_value());
            if text.trim().is_empty() {
                continue;
            }
            if current != Some(r) {
                rows.push(Vec::new());
                current = Some(r);
            }
            if let Some(row) = rows.last_mut() {
                row.push((c as usize, text));
            }
        }
        let units = rows_to_units(rows);
        if !units.is_empty() {
            sections.push(Section {
                label: SectionLabel::Sheet(name.clone()),
                heading: Some(name),
                units,
            });
        }
    }
    Ok(Document {
        format: Format::Xlsx,
        sections,
    })
}
