//! Civil dates from Unix time (UTC), for envelopes, printed info and status tables — no time-zone
//! database needed. The calendar arithmetic itself lives in `ca::calendar`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `(year, month 1..=12, day 1..=31)` of a Unix time, proleptic Gregorian (the CA's calendar).
pub fn civil(unix_seconds: i64) -> (i64, u32, u32) {
    crate::ca::calendar::civil_from_days(unix_seconds.div_euclid(86_400))
}

/// `YYYY-MM-DD`.
pub fn ymd(unix_seconds: i64) -> String {
    let (y, m, d) = civil(unix_seconds);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYYMMMDD` as PIV printed information writes an expiration date (`2032NOV22`).
pub fn piv_expiry(unix_seconds: i64) -> String {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let (y, m, d) = civil(unix_seconds);
    format!("{y:04}{}{d:02}", MONTHS[(m as usize).clamp(1, 12) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(951_782_400), "2000-02-29");
        assert_eq!(ymd(1_795_305_600), "2026-11-22");
        assert_eq!(piv_expiry(1_795_305_600), "2026NOV22");
    }
}
