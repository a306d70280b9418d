//! Extraction of the shared real-document corpus (`../shared/corpus/docs`, laid beside the
//! repository): every supported file must come out with its expected words, and damaged,
//! encrypted or textless files with the expected error.

use std::path::PathBuf;

use carbide_ingest::{ExtractOptions, Format, IngestError, Limits, extract};

enum Expect {
    Text(Format, &'static [&'static str]),
    Err(fn(&IngestError) -> bool),
}
use Expect::{Err as E, Text as T};

fn corpus(rel: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/docs")
        .join(rel);
    std::fs::read(&p).ok()
}

fn run(cases: &[(&str, bool, Expect)]) {
    let mut seen = 0;
    for (rel, ocr, expect) in cases {
        let Some(bytes) = corpus(rel) else { continue };
        seen += 1;
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let got = extract(
            &bytes,
            name,
            &Limits::default(),
            &ExtractOptions { use_ocr: *ocr },
        );
        match (expect, got) {
            (T(format, needles), Ok(doc)) => {
                assert_eq!(doc.format, *format, "{rel}");
                let text = doc.plain_text();
                for n in *needles {
                    assert!(
                        text.contains(n),
                        "{rel}: {n:?} not in {:?}",
                        &text[..text.len().min(2000)]
                    );
                }
            }
            (T(..), Err(e)) => panic!("{rel}: expected text, got error {e}"),
            (E(pred), Err(e)) => assert!(pred(&e), "{rel}: unexpected error {e:?}"),
            (E(_), Ok(doc)) => panic!("{rel}: expected an error, got {:?}", doc.plain_text()),
        }
    }
    assert!(
        seen == cases.len() || std::env::var_os("CI").is_none(),
        "shared corpus missing in CI ({seen} of {} files)",
        cases.len()
    );
}

fn encrypted(e: &IngestError) -> bool {
    *e == IngestError::Encrypted
}
fn empty(e: &IngestError) -> bool {
    *e == IngestError::Empty
}
fn malformed(e: &IngestError) -> bool {
    matches!(e, IngestError::Malformed { .. })
}

#[test]
fn text_family() {
    run(&[
        (
            "text/tika-testTXTNonASCIIUTF8.txt",
            false,
            T(Format::Txt, &["über", "paresseux"]),
        ),
        (
            "text/tika-testTXT_win-1252.txt",
            false,
            T(Format::Txt, &["smart quotes", "windows"]),
        ),
        (
            "text/us-fake-text-utf-16.txt",
            false,
            T(Format::Txt, &["Doylestown, PA 18901"]),
        ),
        (
            "text/us-norwich-city.txt",
            false,
            T(Format::Txt, &["Iwan Roberts", "Norwich City"]),
        ),
        (
            "text/us-umlauts-non-utf8.md",
            false,
            T(Format::Md, &["können"]),
        ),
        (
            "text/tika-testMARKDOWN.md",
            false,
            T(Format::Md, &["# Title", "**bold**"]),
        ),
        (
            "text/us-codeblock.md",
            false,
            T(Format::Md, &["<!DOCTYPE html>"]),
        ),
        (
            "text/us-stanley-cups.csv",
            false,
            T(
                Format::Csv,
                &["Team: Maple Leafs, Location: TOR, Stanley Cups: 13"],
            ),
        ),
        (
            "text/us-stanley-cups-utf-16.csv",
            false,
            T(
                Format::Csv,
                &["Team: Blues, Location: STL, Stanley Cups: 1"],
            ),
        ),
        (
            "text/us-stanley-cups.tsv",
            false,
            T(
                Format::Tsv,
                &["Team: Flyers, Location: PHI, Stanley Cups: 2"],
            ),
        ),
        (
            "text/us-csv-with-escaped-commas.csv",
            false,
            T(Format::Csv, &["A: A,A"]),
        ),
        (
            "text/us-semicolon-delimited.csv",
            false,
            T(Format::Csv, &["Lorem, ipsum: consectetur"]),
        ),
        (
            "text/tika-testCSV.csv",
            false,
            T(Format::Csv, &["Sample CSV File", "Number: 2, Square: 4"]),
        ),
    ]);
}

#[test]
fn pdf() {
    run(&[
        (
            "pdf/pypdf-crazyones-pdfa.pdf",
            false,
            T(Format::Pdf, &["The Crazy Ones", "troublemakers"]),
        ),
        (
            "pdf/pypdf-google-doc-document.pdf",
            false,
            T(Format::Pdf, &["Jakarta", "Vienna"]),
        ),
        (
            "pdf/pypdf-minimal-document.pdf",
            false,
            T(Format::Pdf, &["Lorem ipsum dolor sit amet"]),
        ),
        (
            "pdf/pypdf-multicolumn.pdf",
            false,
            T(Format::Pdf, &["Two-Column Document"]),
        ),
        (
            "pdf/pypdf-pdflatex-4-pages.pdf",
            false,
            T(Format::Pdf, &["without a meaning"]),
        ),
        (
            "pdf/pypdf-GeoTopo-komprimiert.pdf",
            false,
            T(Format::Pdf, &["Geometrie und Topologie"]),
        ),
        (
            "pdf/tika-testPDFTwoTextBoxes.pdf",
            false,
            T(Format::Pdf, &["Left column line 1", "Right column line 2"]),
        ),
        (
            "pdf/tika-testPDFVarious.pdf",
            false,
            T(Format::Pdf, &["This is a footnote", "Here is a text box"]),
        ),
        (
            "pdf/us-copy-protected.pdf",
            false,
            T(Format::Pdf, &["LayoutParser"]),
        ),
        (
            "pdf/us-invalid-pdf-structure-pdfminer-one-page.pdf",
            false,
            T(Format::Pdf, &["Cybersecurity"]),
        ),
        (
            "pdf/us-multi-column-2p.pdf",
            false,
            T(Format::Pdf, &["Dense Passage Retrieval"]),
        ),
        (
            "pdf/us-rotated-page-90.pdf",
            false,
            T(Format::Pdf, &["Rotated page fixture"]),
        ),
        (
            "pdf/us-layout-parser-paper-with-table.pdf",
            false,
            T(Format::Pdf, &["layout detection models"]),
        ),
        (
            "pdf/pypdf-libreoffice-writer-password.pdf",
            false,
            E(encrypted),
        ),
        ("pdf/tika-testOCR.pdf", false, E(malformed)),
    ]);
}

#[test]
fn office() {
    run(&[
        (
            "docx/pydocx-test.docx",
            false,
            T(Format::Docx, &["python-docx was here!"]),
        ),
        (
            "docx/tika-testWORD_numbered_list.docx",
            false,
            T(Format::Docx, &["1. This", "Within cell 1"]),
        ),
        (
            "docx/tika-testWORD_text_box.docx",
            false,
            T(
                Format::Docx,
                &["inside of a text box in the header", "directly in the body"],
            ),
        ),
        (
            "docx/tika-testWORD_various.docx",
            false,
            T(
                Format::Docx,
                &["This is the header text", "Here is a text box"],
            ),
        ),
        (
            "docx/us-docx-hdrftr.docx",
            false,
            T(
                Format::Docx,
                &["First header para", "Last header para", "Main document"],
            ),
        ),
        (
            "docx/us-docx-tables.docx",
            false,
            T(Format::Docx, &["Header Col 1: Lorem ipsum"]),
        ),
        (
            "docx/us-handbook-872p.docx",
            false,
            T(Format::Docx, &["U.S. Department of Justice"]),
        ),
        (
            "docx/tika-testWORD_protected_passtika.docx",
            false,
            E(encrypted),
        ),
        ("docx/tika-testWORD_truncated.docx", false, E(malformed)),
        ("docx/pydocx-tbl-having-tables.docx", false, E(empty)),
        (
            "pptx/tika-testPPT_comment.pptx",
            false,
            T(Format::Pptx, &["add some content to this tps deck"]),
        ),
        (
            "pptx/tika-testPPT_various.pptx",
            false,
            T(Format::Pptx, &["- Bullet 1"]),
        ),
        (
            "pptx/us-fake-power-point-table.pptx",
            false,
            T(
                Format::Pptx,
                &["Column 1: Red, Column 2: Green, Column 3: Blue"],
            ),
        ),
        (
            "pptx/us-group-shapes-nested.pptx",
            false,
            T(Format::Pptx, &["A", "J"]),
        ),
        (
            "pptx/us-science-exploration-1p.pptx",
            false,
            T(Format::Pptx, &["Sciences and Exploration Directorate"]),
        ),
        (
            "pptx/tika-testPPT_protected_passtika.pptx",
            false,
            E(encrypted),
        ),
        (
            "legacy/us-fake.doc",
            false,
            T(Format::Docx, &["Lorem ipsum dolor sit amet."]),
        ),
        (
            "legacy/us-fake-power-point.ppt",
            false,
            T(Format::Pptx, &["Adding a Bullet Slide"]),
        ),
        (
            "legacy/us-tests-example.xls",
            false,
            T(Format::Xlsx, &["What is 2+2?"]),
        ),
    ]);
}

#[test]
fn spreadsheets_and_rtf() {
    run(&[
        (
            "xlsx/us-stanley-cups.xlsx",
            false,
            T(
                Format::Xlsx,
                &["Team: Maple Leafs, Location: TOR, Stanley Cups: 13"],
            ),
        ),
        (
            "xlsx/tika-testEXCEL.xlsx",
            false,
            T(Format::Xlsx, &["Number: 2, Square: 4"]),
        ),
        (
            "xlsx/tika-testEXCEL.strict.xlsx",
            false,
            T(Format::Xlsx, &["This one is red"]),
        ),
        (
            "xlsx/calamine-table-multiple.xlsx",
            false,
            T(Format::Xlsx, &["Type: Banana, Quantity: 200"]),
        ),
        (
            "xlsx/calamine-richtext-namespaced.xlsx",
            false,
            T(Format::Xlsx, &["inline string"]),
        ),
        ("xlsx/us-emoji.xlsx", false, T(Format::Xlsx, &["🤠"])),
        (
            "xlsx/us-vodafone.xlsx",
            false,
            T(Format::Xlsx, &["Quarterly revenue"]),
        ),
        ("xlsx/us-password_protected.xlsx", false, E(encrypted)),
        (
            "rtf/tika-testRTF.rtf",
            false,
            T(Format::Rtf, &["Test d’indexation Word"]),
        ),
        (
            "rtf/tika-testRTFWord2010CzechCharacters.rtf",
            false,
            T(Format::Rtf, &["Článek týdne"]),
        ),
        (
            "rtf/us-eng_spa_mult.rtf",
            false,
            T(Format::Rtf, &["All human beings are born free"]),
        ),
        (
            "rtf/us-fake-doc.rtf",
            false,
            T(Format::Rtf, &["Row 2, Cell 2"]),
        ),
    ]);
}

/// OCR needs Debian's tesseract-ocr and poppler-utils (installed by scripts/install-deps.sh).
#[test]
fn ocr() {
    let have = std::process::Command::new("tesseract")
        .arg("--version")
        .output()
        .is_ok();
    if !have {
        assert!(std::env::var_os("CI").is_none(), "tesseract missing in CI");
        eprintln!("skipping OCR cases: tesseract is not installed");
        return;
    }
    run(&[
        (
            "img/tika-testOCR.png",
            false,
            T(Format::Png, &["This file contains some words."]),
        ),
        (
            "img/tika-testOCR.jpg",
            false,
            T(Format::Jpeg, &["Apache Tika"]),
        ),
        (
            "img/us-double-column-A.jpg",
            false,
            T(Format::Jpeg, &["CIVIL SERVICE RULES"]),
        ),
        ("img/us-example.jpg", false, E(empty)),
        (
            "pdf/tika-testOCR.pdf",
            true,
            T(Format::Pdf, &["Happy New Year 2003!"]),
        ),
    ]);
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let limits = Limits::default();
    let opts = ExtractOptions::default();
    // Random bytes with a PDF name, a truncated PDF, a zip that is no Office file.
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(extract(&noise, "x.pdf", &limits, &opts).is_err());
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog".to_vec();
    pdf.extend_from_slice(&noise[..100]);
    assert!(extract(&pdf, "x.pdf", &limits, &opts).is_err());
    assert!(extract(b"PK\x03\x04garbage", "x.docx", &limits, &opts).is_err());
    // A sparse sheet claiming A1:XFD1048576 must not allocate the grid (built in memory here).
    if let Some(bytes) = corpus("xlsx/us-stanley-cups.xlsx") {
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() / 2);
        assert!(extract(&cut, "x.xlsx", &limits, &opts).is_err());
    }
}
