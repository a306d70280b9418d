//! The extraction sandbox: results come back from the child process, and a child that runs out
//! of memory or time becomes an error for that file only.

use std::time::Duration;

use carbide_ingest::{ExtractOptions, Format, IngestError, Limits, Sandbox};

fn sandbox(timeout: Duration, memory_bytes: u64) -> Sandbox {
    Sandbox {
        exe: env!("CARGO_BIN_EXE_carbide-extract").into(),
        timeout,
        memory_bytes,
    }
}

#[test]
fn extracts_in_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cups.csv");
    std::fs::write(&p, "Team,Cups\nBlues,1\n").unwrap();
    let doc = sandbox(Duration::from_secs(30), 1 << 30)
        .extract_file(
            &p,
            "cups.csv",
            &Limits::default(),
            &ExtractOptions::default(),
        )
        .unwrap();
    assert_eq!(doc.format, Format::Csv);
    assert_eq!(doc.plain_text(), "Team: Blues, Cups: 1");
}

#[test]
fn errors_of_the_parser_come_back_typed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("blank.txt");
    std::fs::write(&p, "   \n\n ").unwrap();
    let err = sandbox(Duration::from_secs(30), 1 << 30)
        .extract_file(
            &p,
            "blank.txt",
            &Limits::default(),
            &ExtractOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err, IngestError::Empty);
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.txt");
    std::fs::write(&p, vec![b'a'; 2048]).unwrap();
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::default()
    };
    let err = sandbox(Duration::from_secs(30), 1 << 30)
        .extract_file(&p, "big.txt", &limits, &ExtractOptions::default())
        .unwrap_err();
    assert_eq!(
        err,
        IngestError::TooLarge {
            size: 2048,
            limit: 1024
        }
    );
}

#[test]
fn running_out_of_memory_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.txt");
    std::fs::write(&p, "word ".repeat(8 * 1024 * 1024)).unwrap();
    let err = sandbox(Duration::from_secs(30), 24 << 20)
        .extract_file(
            &p,
            "wide.txt",
            &Limits::default(),
            &ExtractOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, IngestError::Crashed(m) if m.contains("memory")),
        "{err:?}"
    );
}

#[test]
fn running_out_of_time_is_an_error() {
    // A named pipe nobody writes to: the child blocks reading it until the timeout kills it.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("stuck.txt");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let started = std::time::Instant::now();
    let err = sandbox(Duration::from_secs(1), 1 << 30)
        .extract_file(
            &p,
            "stuck.txt",
            &Limits::default(),
            &ExtractOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err, IngestError::Timeout { seconds: 1 });
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the child was not killed"
    );
}
