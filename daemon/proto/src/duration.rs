//! Durations as operators write them: a number and a unit, `s`, `m`, `h` or `d` (`90d`, `60s`).

use std::time::Duration;

/// Parses `60s`, `15m`, `12h`, `90d`. A bare number or another unit is an error that says so.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("'{text}' is not a duration: write a number and a unit, e.g. 90d, 12h, 15m, 60s")
    })?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        "" => {
            return Err(format!(
                "'{text}' has no unit: write {n}s, {n}m, {n}h or {n}d"
            ));
        }
        _ => return Err(format!("'{text}': unknown unit '{unit}'; use s, m, h or d")),
    };
    // A century is longer than any lockout, approval or key lifetime an appliance needs.
    const MAX_SECONDS: u64 = 100 * 365 * 86_400;
    seconds
        .filter(|s| *s <= MAX_SECONDS)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is longer than 100 years"))
}

/// The shortest exact form: `90d`, `15m`, `61s`.
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// serde support: a duration field written as text in TOML.
pub mod serde_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_format_round_trip() {
        for (text, secs) in [
            ("60s", 60),
            ("15m", 900),
            ("12h", 43_200),
            ("90d", 7_776_000),
        ] {
            assert_eq!(parse(text).unwrap(), Duration::from_secs(secs));
            assert_eq!(
                format(Duration::from_secs(secs)),
                if text == "60s" { "1m" } else { text }
            );
        }
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse("90").unwrap_err().contains("no unit"));
        assert!(parse("5w").unwrap_err().contains("unknown unit"));
        assert!(parse("soon").unwrap_err().contains("not a duration"));
        assert!(parse("99999999999999999999d").is_err());
        assert!(
            parse("3000000d")
                .unwrap_err()
                .contains("longer than 100 years")
        );
    }
}
