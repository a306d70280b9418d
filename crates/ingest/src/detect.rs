//! Format detection: content signatures first (PDF, PNG, JPEG, RTF, OOXML zip parts, CFB
//! containers), the file name's extension only for formats without a signature.

/// A file format carbide knows about. Names follow Carbon's `FileFormats` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Pdf,
    Docx,
    Pptx,
    Xlsx,
    Rtf,
    Png,
    Jpeg,
    Txt,
    Md,
    Csv,
    Tsv,
    /// An OLE compound file: legacy .doc/.xls/.ppt, or an encrypted OOXML document.
    Cfb,
    /// Binary content of no supported kind.
    Unknown,
}

impl Format {
    /// Carbon's `FileFormats` name (e.g. `PDF`, `JPG`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Pptx => "PPTX",
            Format::Xlsx => "XLSX",
            Format::Rtf => "RTF",
            Format::Png => "PNG",
            Format::Jpeg => "JPG",
            Format::Txt => "TXT",
            Format::Md => "MD",
            Format::Csv => "CSV",
            Format::Tsv => "TSV",
            Format::Cfb => "CFB",
            Format::Unknown => "UNKNOWN",
        }
    }

    /// The format a file name's extension promises, if it is one of the supported ones.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            "pptx" => Format::Pptx,
            "xlsx" => Format::Xlsx,
            "rtf" => Format::Rtf,
            "png" => Format::Png,
            "jpg" | "jpeg" => Format::Jpeg,
            "txt" | "text" | "log" => Format::Txt,
            "md" | "markdown" => Format::Md,
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            _ => return None,
        })
    }

    /// Whether the format is an image (OCR path, Carbon `media_type` IMAGE).
    pub fn is_image(self) -> bool {
        matches!(self, Format::Png | Format::Jpeg)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Detects the format of `bytes`, using `file_name` only where content is not decisive.
pub fn detect_format(bytes: &[u8], file_name: &str) -> Format {
    let by_name = Format::from_file_name(file_name);
    let head = &bytes[..bytes.len().min(1024)];
    if contains(head, b"%PDF-") {
        return Format::Pdf;
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Format::Png;
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Format::Jpeg;
    }
    if bytes.starts_with(b"{\\rtf") {
        return Format::Rtf;
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Format::Cfb;
    }
    if bytes.starts_with(b"PK\x03\x04") {
        // OOXML part names are stored uncompressed in the local and central headers.
        if contains(bytes, b"word/document") {
            return Format::Docx;
        }
        if contains(bytes, b"ppt/slides/") || contains(bytes, b"ppt/presentation") {
            return Format::Pptx;
        }
        if contains(bytes, b"xl/workbook") || contains(bytes, b"xl/worksheets/") {
            return Format::Xlsx;
        }
        return match by_name {
            Some(f @ (Format::Docx | Format::Pptx | Format::Xlsx)) => f,
            _ => Format::Unknown,
        };
    }
    if looks_like_text(bytes) {
        return match by_name {
            Some(f @ (Format::Md | Format::Csv | Format::Tsv | Format::Txt)) => f,
            _ => Format::Txt,
        };
    }
    Format::Unknown
}

/// True when the bytes are plausibly text: a Unicode BOM, or no NUL bytes and few control
/// characters in the first 8 KiB.
fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
    {
        return true;
    }
    let sample = &bytes[..bytes.len().min(8192)];
    if sample.contains(&0) {
        return false;
    }
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0C))
        .count();
    control * 100 <= sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_beat_extensions() {
        assert_eq!(detect_format(b"%PDF-1.7\n...", "report.txt"), Format::Pdf);
        assert_eq!(
            detect_format(b"\x89PNG\r\n\x1a\n\0\0", "photo.jpg"),
            Format::Png
        );
        assert_eq!(detect_format(b"{\\rtf1\\ansi hi}", "x.docx"), Format::Rtf);
        assert_eq!(detect_format(b"hello world", "x.pdf"), Format::Txt);
        assert_eq!(detect_format(b"a,b\n1,2\n", "x.csv"), Format::Csv);
        assert_eq!(detect_format(b"a\tb\n1\t2\n", "x.tsv"), Format::Tsv);
        assert_eq!(detect_format(b"# Title\n", "README.MD"), Format::Md);
        assert_eq!(detect_format(&[0, 1, 2, 3, 0, 9], "x.txt"), Format::Unknown);
        assert_eq!(
            detect_format(b"PK\x03\x04....word/document.xml....", "x.zip"),
            Format::Docx
        );
    }

    #[test]
    fn utf16_with_bom_is_text() {
        let mut b = vec![0xFF, 0xFE];
        for c in "hi there".encode_utf16() {
            b.extend_from_slice(&c.to_le_bytes());
        }
        assert_eq!(detect_format(&b, "x.txt"), Format::Txt);
    }
}
