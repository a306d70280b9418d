//! carbide ingestion: turns a file's bytes into a structured [`Document`] (text with the pages,
//! slides, sheets and headings that chunking needs) and then into [`Chunk`]s sized in the
//! embedding model's tokens. One module per format family; format detection looks at the
//! content first and the file name second.

pub mod chunk;
pub mod detect;
pub mod document;
pub mod isolate;
pub mod markdown;
pub mod ocr;
pub mod office;
pub mod pdf;
pub mod rtf;
pub mod tabular;
pub mod text;
pub mod xlsx;

pub use chunk::{Chunk, ChunkOptions, TokenCounter, chunk_document};
pub use detect::{Format, detect_format};
pub use document::{Document, Section, SectionLabel, Unit};
pub use isolate::Sandbox;

/// Why a file could not be turned into text. Every variant carries a reason readable by the
/// end user (it becomes the file's `sync_error_message`).
#[derive(Debug, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IngestError {
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("file is encrypted or password-protected")]
    Encrypted,
    #[error("file is damaged or not a valid {format}: {reason}")]
    Malformed { format: String, reason: String },
    #[error("no text was retrieved from file")]
    Empty,
    #[error("text extraction took longer than {seconds} s and was stopped")]
    Timeout { seconds: u64 },
    #[error("text extraction failed: {0}")]
    Crashed(String),
    #[error("cannot read file: {0}")]
    Io(String),
}

/// Limits applied to every extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest input accepted, in bytes (checked before any parsing).
    pub max_bytes: u64,
    /// Largest extracted text kept, in bytes; longer output is an error rather than a silent cut.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 50 * 1024 * 1024,
            max_text_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Per-file extraction choices (Carbon's upload and sync options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtractOptions {
    /// OCR PDF pages that have no text layer (images are always OCRed).
    pub use_ocr: bool,
}

/// Extracts the text of `bytes`. `file_name` is only a hint for formats that have no
/// recognisable signature (csv vs tsv vs txt vs md) and for legacy Office binaries. Run
/// untrusted input through [`Sandbox`] rather than calling this in the server process.
pub fn extract(
    bytes: &[u8],
    file_name: &str,
    limits: &Limits,
    options: &ExtractOptions,
) -> Result<Document, IngestError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(IngestError::TooLarge {
            size: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    let format = detect_format(bytes, file_name);
    let doc = match format {
        Format::Txt => text::extract(bytes),
        Format::Md => markdown::extract(bytes),
        Format::Csv => tabular::extract_delimited(bytes, Some(b',')),
        Format::Tsv => tabular::extract_delimited(bytes, Some(b'\t')),
        Format::Pdf => pdf::extract(bytes, options.use_ocr),
        Format::Docx | Format::Pptx | Format::Cfb => office::extract(bytes, format, file_name),
        Format::Xlsx => xlsx::extract(bytes),
        Format::Rtf => rtf::extract(bytes),
        Format::Png | Format::Jpeg => ocr::image(bytes).map(|text| Document {
            format,
            sections: vec![Section {
                label: SectionLabel::None,
                heading: None,
                units: document::paragraphs(&text),
            }],
        }),
        Format::Unknown => {
            return Err(IngestError::Unsupported(
                Format::from_file_name(file_name)
                    .map_or("unrecognised binary content", |f| f.name())
                    .to_string(),
            ));
        }
    }?;
    if doc.text_len() > limits.max_text_bytes {
        return Err(IngestError::Malformed {
            format: format.name().to_string(),
            reason: format!(
                "extracted text exceeds the limit of {} bytes",
                limits.max_text_bytes
            ),
        });
    }
    if doc.is_blank() {
        return Err(IngestError::Empty);
    }
    Ok(doc)
}
