//! Dates and durations on the command line, parsed and formatted by
//! `jiff` (the crate gitoxide's dates use), so that a date that does not
//! exist (`2023-02-29`) or a malformed offset is refused, not guessed.

use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp, Unit};

/// Parses RFC 3339 (`2026-01-01T00:00:00Z`, `…+02:00`, a space for `T`)
/// or `@EPOCH` into seconds since the epoch.
pub fn parse_timestamp(s: &str) -> Result<u64, String> {
    let expected = "expected RFC 3339 (2026-01-01T00:00:00Z) or @EPOCH-SECONDS";
    if let Some(epoch) = s.strip_prefix('@') {
        return epoch
            .parse()
            .map_err(|_| format!("invalid timestamp {s:?}: {expected}"));
    }
    let t: Timestamp = s
        .parse()
        .map_err(|e| format!("invalid timestamp {s:?}: {e} ({expected})"))?;
    u64::try_from(t.as_second()).map_err(|_| format!("timestamp {s:?} is before 1970"))
}

fn timestamp(secs: u64) -> Timestamp {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `2026-01-01T00:00:00Z`.
pub fn format_rfc3339(secs: u64) -> String {
    timestamp(secs).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-01-01 00:00:00 +0000`, as `ostree log` prints dates.
pub fn format_human(secs: u64) -> String {
    timestamp(secs)
        .strftime("%Y-%m-%d %H:%M:%S +0000")
        .to_string()
}

/// Parses `90s`, `30m`, `12h`, `30d`, `2w` (or combinations like `1d12h`,
/// or `30 days`) into seconds; a day is 24 hours.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let err = |why: String| {
        format!(
            "invalid duration {s:?}: {why} (expected a number with a unit s, m, h, d or w, like 30d)"
        )
    };
    let span: Span = s
        .trim()
        .parse()
        .map_err(|e: jiff::Error| err(e.to_string()))?;
    if span.is_negative() {
        return Err(err("it is negative".into()));
    }
    let secs = span
        .total((Unit::Second, SpanRelativeTo::days_are_24_hours()))
        .map_err(|e| err(e.to_string()))?;
    // Whole seconds: a sub-second rest is dropped, as `--keep-younger-than`
    // and expiries count seconds.
    Ok(SignedDuration::from_secs_f64(secs).as_secs().unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for (s, v) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-01-01T00:00:00Z", 1_704_067_200),
            ("2024-01-01 02:00:00+02:00", 1_704_067_200),
            ("2024-02-29T12:00:00.5Z", 1_709_208_000),
            ("@1704067200", 1_704_067_200),
        ] {
            assert_eq!(parse_timestamp(s), Ok(v), "{s}");
        }
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "@x",
            // Issue 15: these were a panic (a multi-byte offset sliced
            // mid-character) and March 1st.
            "2024-01-01T00:00:00+0é:00",
            "2024-01-01T00:00:00é",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
        assert!(
            parse_timestamp("2023-02-29T00:00:00Z")
                .expect_err("2023-02-29 does not exist")
                .contains("2023-02-29")
        );
        assert_eq!(format_rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
        assert_eq!(format_human(0), "1970-01-01 00:00:00 +0000");
        // A hostile commit timestamp prints as the last date jiff knows.
        assert!(format_rfc3339(u64::MAX).starts_with("9999-12-3"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("1d12h"), Ok(86400 + 12 * 3600));
        for bad in ["", "30", "d", "3x", "-1d", "1é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
