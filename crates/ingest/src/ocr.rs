//! OCR through Debian's Tesseract (`tesseract` CLI, English) and Poppler's `pdftoppm` for
//! rendering scanned PDF pages at 300 dpi. Both run as child processes of the extraction sandbox,
//! so they inherit its memory and time limits; one page at a time, single-threaded.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::IngestError;

/// Most pages of one PDF that are OCRed.
pub const MAX_OCR_PAGES: usize = 200;

fn unavailable(tool: &str, e: &std::io::Error) -> IngestError {
    if e.kind() == std::io::ErrorKind::NotFound {
        IngestError::Crashed(format!(
            "OCR is not available on this server: `{tool}` is not installed"
        ))
    } else {
        IngestError::Crashed(format!("cannot run {tool}: {e}"))
    }
}

/// Runs Tesseract on an image given as bytes (PNG, JPEG, TIFF…).
pub fn image(bytes: &[u8]) -> Result<String, IngestError> {
    let mut child = Command::new("tesseract")
        .args(["stdin", "stdout", "-l", "eng"])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| unavailable("tesseract", &e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means tesseract exited early; its status says why.
        let _ = stdin.write_all(bytes);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| unavailable("tesseract", &e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(IngestError::Malformed {
            format: "image".into(),
            reason: format!(
                "OCR failed: {}",
                err.lines().last().unwrap_or("unknown error").trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn render_page(pdf: &Path, page: u32, out_prefix: &Path) -> Result<Vec<u8>, IngestError> {
    let status = Command::new("pdftoppm")
        .args(["-r", "300", "-gray", "-png", "-singlefile"])
        .arg("-f")
        .arg(page.to_string())
        .arg("-l")
        .arg(page.to_string())
        .arg(pdf)
        .arg(out_prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| unavailable("pdftoppm", &e))?;
    if !status.success() {
        return Err(IngestError::Malformed {
            format: "PDF".into(),
            reason: format!("page {page} could not be rendered for OCR"),
        });
    }
    let png = out_prefix.with_extension("png");
    let bytes = std::fs::read(&png).map_err(|e| IngestError::Io(e.to_string()))?;
    let _ = std::fs::remove_file(&png);
    Ok(bytes)
}

/// Renders the given 1-based pages of a PDF and OCRs them.
pub fn pdf_pages(pdf: &[u8], pages: &[u32]) -> Result<Vec<(u32, String)>, IngestError> {
    if pages.len() > MAX_OCR_PAGES {
        return Err(IngestError::Malformed {
            format: "PDF".into(),
            reason: format!(
                "{} pages need OCR, over the limit of {MAX_OCR_PAGES}",
                pages.len()
            ),
        });
    }
    let dir = tempfile::tempdir().map_err(|e| IngestError::Io(e.to_string()))?;
    let input = dir.path().join("in.pdf");
    std::fs::write(&input, pdf).map_err(|e| IngestError::Io(e.to_string()))?;
    let mut out = Vec::with_capacity(pages.len());
    for &page in pages {
        let png = render_page(&input, page, &dir.path().join(format!("p{page}")))?;
        out.push((page, image(&png)?));
    }
    Ok(out)
}
