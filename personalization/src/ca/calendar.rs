//! Calendar arithmetic in UTC (proleptic Gregorian), enough to add whole years to an instant.
//!
//! Implemented here rather than borrowed from `der::DateTime` because [`not_after`] is infallible
//! and must also accept instants before 1970.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;
/// 9999-12-31T23:59:59Z, the last instant an X.509 `GeneralizedTime` can name.
const LAST_SECOND: i64 = 253_402_300_799;

/// Days since 1970-01-01 of the civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Seconds (possibly negative) and sub-second nanoseconds of an instant relative to the epoch.
fn split(instant: SystemTime) -> (i64, u32) {
    match instant.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, 1_000_000_000 - nanos),
            }
        }
    }
}

fn join(secs: i64, nanos: u32) -> SystemTime {
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    whole
        .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
        .unwrap_or(UNIX_EPOCH)
}

/// `not_before` plus `years` calendar years in UTC, same time of day. A 29 February start ends on
/// 28 February when the target year is not a leap year (the validity never exceeds the nominal
/// years). Results past 9999-12-31T23:59:59Z are clamped to that instant.
pub fn not_after(not_before: SystemTime, years: u32) -> SystemTime {
    let (secs, nanos) = split(not_before);
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let time_of_day = secs.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let target_year = year.saturating_add(i64::from(years));
    if target_year > 9999 {
        return join(LAST_SECOND, 0);
    }
    let target_day = if month == 2 && day == 29 && !is_leap(target_year) {
        28
    } else {
        day
    };
    let target = days_from_civil(target_year, month, target_day) * SECONDS_PER_DAY + time_of_day;
    if target > LAST_SECOND {
        return join(LAST_SECOND, 0);
    }
    join(target, nanos)
}

/// The instant truncated to whole seconds (certificates carry no fractions).
pub fn whole_seconds(instant: SystemTime) -> SystemTime {
    let (secs, _) = split(instant);
    join(secs, 0)
}

/// `(year, month, day)` of an instant in UTC.
pub fn civil_date(instant: SystemTime) -> (i64, u32, u32) {
    let (secs, _) = split(instant);
    civil_from_days(secs.div_euclid(SECONDS_PER_DAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i64, month: u32, day: u32, secs_of_day: i64) -> SystemTime {
        join(
            days_from_civil(year, month, day) * SECONDS_PER_DAY + secs_of_day,
            0,
        )
    }

    #[test]
    fn round_trips_civil_dates() {
        for days in [-800_000, -1, 0, 1, 11_016, 11_017, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn adds_calendar_years() {
        let start = at(2025, 6, 15, 12 * 3600 + 34 * 60 + 56);
        assert_eq!(
            not_after(start, 6),
            at(2031, 6, 15, 12 * 3600 + 34 * 60 + 56)
        );
        assert_eq!(not_after(start, 0), start);
    }

    #[test]
    fn leap_day_ends_on_28_february_unless_leap() {
        let leap = at(2024, 2, 29, 3600);
        assert_eq!(not_after(leap, 6), at(2030, 2, 28, 3600));
        assert_eq!(not_after(leap, 4), at(2028, 2, 29, 3600));
        assert_eq!(civil_date(not_after(leap, 6)), (2030, 2, 28));
    }

    #[test]
    fn before_epoch_and_clamping() {
        let old = at(1969, 12, 31, 86_399);
        assert_eq!(not_after(old, 1), at(1970, 12, 31, 86_399));
        let far = at(9998, 1, 1, 0);
        assert_eq!(not_after(far, 6), join(LAST_SECOND, 0));
        assert_eq!(not_after(far, u32::MAX), join(LAST_SECOND, 0));
    }

    #[test]
    fn keeps_sub_seconds_and_truncates() {
        let t = at(2025, 1, 1, 0) + Duration::from_millis(750);
        assert_eq!(
            not_after(t, 1),
            at(2026, 1, 1, 0) + Duration::from_millis(750)
        );
        assert_eq!(whole_seconds(t), at(2025, 1, 1, 0));
        let before = UNIX_EPOCH - Duration::from_millis(250);
        assert_eq!(whole_seconds(before), at(1969, 12, 31, 86_399));
    }
}
