//! Pure types and rules: no tokio, no sled, no cryptoki, no AWS. Everything here can be unit
//! tested with plain values.

pub mod audit;
pub mod credentials;
pub use keyward_proto::duration;
pub mod groups;
pub mod jobs;
pub mod keys;
pub mod schedule;
pub mod users;

/// Milliseconds since the Unix epoch; the appliance's one clock reading.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 text for a millisecond timestamp, for people to read.
pub fn format_ms(ms: u64) -> String {
    // humantime panics past the year 9999; durations are capped well below, but never panic.
    const YEAR_9999_END_MS: u64 = 253_402_300_799_999;
    if ms > YEAR_9999_END_MS {
        return format!("{ms} ms after the epoch");
    }
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}
