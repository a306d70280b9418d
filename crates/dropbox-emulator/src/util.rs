//! Small wire helpers: Dropbox content_hash, header-safe JSON escaping, timestamps,
//! identifier generation and path normalisation.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Dropbox's block size for `content_hash` (4 MiB).
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// Incremental Dropbox `content_hash` (SHA-256 over the SHA-256 of every 4 MiB block).
#[derive(Default)]
pub struct ContentHasher {
    overall: Sha256,
    block: Sha256,
    block_len: usize,
}

impl ContentHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = BLOCK_SIZE - self.block_len;
            let take = room.min(data.len());
            self.block.update(&data[..take]);
            self.block_len += take;
            data = &data[take..];
            if self.block_len == BLOCK_SIZE {
                let digest = std::mem::take(&mut self.block).finalize();
                self.overall.update(digest);
                self.block_len = 0;
            }
        }
    }

    /// Returns the lowercase hex hash.
    pub fn finish(mut self) -> String {
        if self.block_len > 0 {
            let digest = self.block.finalize();
            self.overall.update(digest);
        }
        hex::encode(self.overall.finalize())
    }
}

/// `content_hash` of a byte slice.
pub fn content_hash(data: &[u8]) -> String {
    let mut h = ContentHasher::new();
    h.update(data);
    h.finish()
}

/// Serialises JSON so that it is safe in an HTTP header: every char >= U+007F becomes a
/// `\uXXXX` escape (UTF-16 code units, so astral chars become surrogate pairs).
pub fn header_safe_json(value: &serde_json::Value) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        if (ch as u32) < 0x7f {
            out.push(ch);
        } else {
            let mut buf = [0u16; 2];
            for unit in ch.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{:04x}", unit));
            }
        }
    }
    out
}

/// Formats unix seconds the way Dropbox does: `%Y-%m-%dT%H:%M:%SZ`.
pub fn format_ts(secs: i64) -> String {
    let dt =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Parses a Dropbox timestamp (`2024-01-02T03:04:05Z`, RFC 3339 accepted too).
pub fn parse_ts(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp())
}

/// Current unix time in seconds.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Random string over `[A-Za-z0-9_-]`.
pub fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| URL_SAFE[rng.random_range(0..URL_SAFE.len())] as char)
        .collect()
}

/// Random alphanumeric string.
pub fn random_alnum(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

/// A fresh `X-Dropbox-Request-Id` value (32 lowercase hex).
pub fn request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Lowercases a Dropbox path (Unicode aware).
pub fn lower(path: &str) -> String {
    path.to_lowercase()
}

/// Parent of a normalised absolute path (`""` for top-level entries and the root).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Last component of a normalised path.
pub fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Normalises a user path (`/a//b/` → `/a/b`, `""`/`/` → `""`). Returns `None` for
/// paths with `.`/`..` components or that do not start with `/`.
pub fn normalize_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some(String::new());
    }
    if !path.starts_with('/') {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for comp in path.split('/') {
        if comp.is_empty() {
            continue;
        }
        if comp == "." || comp == ".." {
            return None;
        }
        out.push('/');
        out.push_str(comp);
    }
    Some(out)
}

/// Constant-time string comparison for secrets.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_vectors() {
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            content_hash(b"hello"),
            "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
        );
        let zeros = vec![0u8; BLOCK_SIZE];
        assert_eq!(
            content_hash(&zeros),
            "c7e946d101855255d919ef0c70718633adf77d3dfb3adeeecf5d0cb4e951be58"
        );
        let mut more = zeros.clone();
        more.push(0);
        let mut h = ContentHasher::new();
        for chunk in more.chunks(1000) {
            h.update(chunk);
        }
        assert_eq!(
            h.finish(),
            "14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6"
        );
    }

    #[test]
    fn header_escape() {
        let v = serde_json::json!({"p": "üñîcødé\u{7f}😀"});
        assert_eq!(
            header_safe_json(&v),
            r#"{"p":"\u00fc\u00f1\u00eec\u00f8d\u00e9\u007f\ud83d\ude00"}"#
        );
    }

    #[test]
    fn timestamps_and_paths() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_ts("2024-02-03T04:05:06Z"), Some(1706933106));
        assert_eq!(normalize_path("/a//b/").as_deref(), Some("/a/b"));
        assert_eq!(normalize_path("/").as_deref(), Some(""));
        assert_eq!(normalize_path("a"), None);
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "");
        assert_eq!(name_of("/a/b"), "b");
    }
}
