//! Isolation of untrusted documents: extraction runs in a child process (`carbide-extract`)
//! with an address-space limit, a CPU-time limit and a wall-clock timeout, so a parser's panic,
//! abort or runaway allocation becomes an [`IngestError`] for that one file instead of taking the
//! server down.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::{Document, ExtractOptions, IngestError, Limits};

/// Largest JSON answer read back from the child (the text limit plus structure overhead).
const MAX_ANSWER_BYTES: usize = 512 * 1024 * 1024;

/// Runs extractions in a sandboxed child process.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The `carbide-extract` executable.
    pub exe: PathBuf,
    /// Wall-clock limit per file.
    pub timeout: Duration,
    /// Address-space limit of the child, in bytes.
    pub memory_bytes: u64,
}

impl Sandbox {
    /// A sandbox using the `carbide-extract` executable installed next to the running binary.
    pub fn beside_current_exe(
        timeout: Duration,
        memory_bytes: u64,
    ) -> Result<Sandbox, IngestError> {
        let exe = std::env::current_exe()
            .map_err(|e| IngestError::Io(format!("locating the current executable: {e}")))?;
        let dir = exe
            .parent()
            .ok_or_else(|| IngestError::Io("executable has no directory".into()))?;
        Ok(Sandbox {
            exe: dir.join("carbide-extract"),
            timeout,
            memory_bytes,
        })
    }

    /// Extracts the file at `path` (named `file_name` at its source) in the child process.
    pub fn extract_file(
        &self,
        path: &Path,
        file_name: &str,
        limits: &Limits,
        options: &ExtractOptions,
    ) -> Result<Document, IngestError> {
        let size = std::fs::metadata(path)
            .map_err(|e| IngestError::Io(e.to_string()))?
            .len();
        if size > limits.max_bytes {
            return Err(IngestError::TooLarge {
                size,
                limit: limits.max_bytes,
            });
        }
        let mut cmd = Command::new(&self.exe);
        cmd.arg(path)
            .arg(file_name)
            .arg(limits.max_bytes.to_string())
            .arg(limits.max_text_bytes.to_string())
            .arg(if options.use_ocr { "ocr" } else { "no-ocr" })
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let memory = self.memory_bytes;
        let cpu_seconds = self.timeout.as_secs().saturating_add(1);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe `setrlimit`.
        unsafe {
            cmd.pre_exec(move || {
                let as_limit = libc::rlimit {
                    rlim_cur: memory as libc::rlim_t,
                    rlim_max: memory as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &as_limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let cpu = libc::rlimit {
                    rlim_cur: cpu_seconds as libc::rlim_t,
                    rlim_max: cpu_seconds.saturating_add(1) as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_CPU, &cpu) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &core);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            IngestError::Crashed(format!("cannot start {}: {e}", self.exe.display()))
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stdout {
                let _ = s.take(MAX_ANSWER_BYTES as u64).read_to_end(&mut buf);
            }
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr {
                let _ = s.take(64 * 1024).read_to_end(&mut buf);
            }
            buf
        });
        let status = match child
            .wait_timeout(self.timeout)
            .map_err(|e| IngestError::Crashed(e.to_string()))?
        {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(IngestError::Timeout {
                    seconds: self.timeout.as_secs(),
                });
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if status.success() {
            return serde_json::from_slice::<Result<Document, IngestError>>(&out)
                .map_err(|e| IngestError::Crashed(format!("unreadable extractor answer: {e}")))?;
        }
        let stderr_tail = String::from_utf8_lossy(&err);
        let last_line = stderr_tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let reason = match status.signal() {
            Some(libc::SIGXCPU) => "the parser used too much CPU time".to_string(),
            Some(libc::SIGABRT) => {
                if stderr_tail.contains("memory allocation") {
                    "the parser ran out of memory".to_string()
                } else {
                    format!("the parser aborted ({last_line})")
                }
            }
            Some(sig) => format!("the parser was killed by signal {sig}"),
            None if stderr_tail.contains("panicked") => format!("the parser crashed: {last_line}"),
            None => format!(
                "the parser exited with status {} ({last_line})",
                status.code().unwrap_or(-1)
            ),
        };
        Err(IngestError::Crashed(reason))
    }
}

/// The child side: extracts `path` and writes the JSON result to stdout. Used by the
/// `carbide-extract` binary.
pub fn child_main(args: &[String]) -> i32 {
    let (Some(path), Some(name), Some(max_bytes), Some(max_text), Some(ocr)) = (
        args.first(),
        args.get(1),
        args.get(2),
        args.get(3),
        args.get(4),
    ) else {
        eprintln!("usage: carbide-extract PATH FILE_NAME MAX_BYTES MAX_TEXT_BYTES ocr|no-ocr");
        return 2;
    };
    let options = ExtractOptions {
        use_ocr: ocr == "ocr",
    };
    let limits = Limits {
        max_bytes: max_bytes.parse().unwrap_or(Limits::default().max_bytes),
        max_text_bytes: max_text.parse().unwrap_or(Limits::default().max_text_bytes),
    };
    let result = match std::fs::read(path) {
        Ok(bytes) => crate::extract(&bytes, name, &limits, &options),
        Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => Err(IngestError::Crashed(
            "the parser ran out of memory".to_string(),
        )),
        Err(e) => Err(IngestError::Io(e.to_string())),
    };
    match serde_json::to_writer(std::io::stdout().lock(), &result) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("writing result: {e}");
            3
        }
    }
}
