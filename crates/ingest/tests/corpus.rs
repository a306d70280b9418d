//! Extraction of the shared real-document corpus (`../shared/corpus/docs`): every text-family
//! file must come out with its expected words.

use std::path::PathBuf;

use carbide_ingest::{Format, Limits, extract};

fn corpus(rel: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/docs")
        .join(rel);
    std::fs::read(&p).ok()
}

#[test]
fn text_family_files_come_out_with_their_words() {
    let cases: &[(&str, Format, &[&str])] = &[
        (
            "text/tika-testTXTNonASCIIUTF8.txt",
            Format::Txt,
            &["über", "paresseux"],
        ),
        (
            "text/tika-testTXT_win-1252.txt",
            Format::Txt,
            &["smart quotes", "windows"],
        ),
        (
            "text/us-fake-text-utf-16.txt",
            Format::Txt,
            &["Doylestown, PA 18901"],
        ),
        (
            "text/us-norwich-city.txt",
            Format::Txt,
            &["Iwan Roberts", "Norwich City"],
        ),
        ("text/us-umlauts-non-utf8.md", Format::Md, &["können"]),
        (
            "text/tika-testMARKDOWN.md",
            Format::Md,
            &["# Title", "**bold**"],
        ),
        ("text/us-codeblock.md", Format::Md, &["<!DOCTYPE html>"]),
        (
            "text/us-stanley-cups.csv",
            Format::Csv,
            &["Team: Maple Leafs, Location: TOR, Stanley Cups: 13"],
        ),
        (
            "text/us-stanley-cups-utf-16.csv",
            Format::Csv,
            &["Team: Blues, Location: STL, Stanley Cups: 1"],
        ),
        (
            "text/us-stanley-cups.tsv",
            Format::Tsv,
            &["Team: Flyers, Location: PHI, Stanley Cups: 2"],
        ),
        (
            "text/us-csv-with-escaped-commas.csv",
            Format::Csv,
            &["A: A,A"],
        ),
        (
            "text/us-semicolon-delimited.csv",
            Format::Csv,
            &["Lorem, ipsum: consectetur"],
        ),
        (
            "text/tika-testCSV.csv",
            Format::Csv,
            &["Sample CSV File", "Number: 2, Square: 4"],
        ),
    ];
    let mut seen = 0;
    for (rel, format, needles) in cases {
        let Some(bytes) = corpus(rel) else { continue };
        seen += 1;
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let doc =
            extract(&bytes, name, &Limits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(doc.format, *format, "{rel}");
        let text = doc.plain_text();
        for n in *needles {
            assert!(text.contains(n), "{rel}: {n:?} not in {text:?}");
        }
    }
    assert!(
        seen == cases.len() || std::env::var_os("CI").is_none(),
        "shared corpus missing in CI"
    );
}
