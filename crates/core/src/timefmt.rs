//! Wire timestamps: unix seconds in storage, `2024-11-07T05:31:56Z` on the wire.

use time::OffsetDateTime;
use time::macros::format_description;

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Renders unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(unix: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::rfc3339(1_730_957_516), "2024-11-07T05:31:56Z");
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
