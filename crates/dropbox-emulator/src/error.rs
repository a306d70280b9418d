//! Library error type.

/// Errors starting or running the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Filesystem or socket failure.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS setup failure.
    #[error("tls error: {0}")]
    Tls(String),
    /// Bad configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}
