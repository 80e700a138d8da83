//! Business hours: when callers are put in line for an agent. Outside them a caller hears that
//! the line is closed and may leave a message; nobody is rung.

use std::fmt;

/// `Mon-Fri 09:00-17:00 Europe/Berlin`, or several ranges separated by commas before the time
/// zone: `Mon-Fri 09:00-17:00, Sat 10:00-14:00 Europe/Berlin`. A range ends before its end
/// minute; `00:00-24:00` is the whole day. The zone is an IANA name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    ranges: Vec<Range>,
    zone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    /// Monday = 0.
    first_day: u8,
    last_day: u8,
    /// Minutes after midnight, start inclusive, end exclusive.
    from: u16,
    until: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must look like \"Mon-Fri 09:00-17:00 Europe/Berlin\": {0}")]
pub struct InvalidHours(&'static str);

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(text: &str) -> Result<u8, InvalidHours> {
    let lower = text.to_ascii_lowercase();
    DAYS.iter()
        .position(|day| *day == lower)
        .and_then(|index| u8::try_from(index).ok())
        .ok_or(InvalidHours("a day is Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
}

fn minutes(text: &str) -> Result<u16, InvalidHours> {
    let invalid = InvalidHours("a time is HH:MM, from 00:00 to 24:00");
    let (hours, minutes) = text.split_once(':').ok_or(invalid.clone())?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(invalid);
    }
    let (hours, minutes): (u16, u16) =
        (hours.parse().map_err(|_| invalid.clone())?, minutes.parse().map_err(|_| invalid.clone())?);
    let total = hours * 60 + minutes;
    if minutes >= 60 || total > 24 * 60 { Err(invalid) } else { Ok(total) }
}

impl BusinessHours {
    pub fn parse(text: &str) -> Result<Self, InvalidHours> {
        let text = text.trim();
        let (ranges, zone) = text.rsplit_once(' ').ok_or(InvalidHours("no time zone at the end"))?;
        if !zone.contains('/') && zone != "UTC" {
            return Err(InvalidHours("the time zone is an IANA name such as Europe/Berlin"));
        }
        let mut parsed = Vec::new();
        for range in ranges.split(',').map(str::trim) {
            let (days, times) = range.split_once(' ').ok_or(InvalidHours("a range is days, then times"))?;
            let (first_day, last_day) = match days.split_once('-') {
                Some((first, last)) => (day(first)?, day(last)?),
                None => (day(days)?, day(days)?),
            };
            let (from, until) = times.trim().split_once('-').ok_or(InvalidHours("times are HH:MM-HH:MM"))?;
            let (from, until) = (minutes(from)?, minutes(until)?);
            if from >= until {
                return Err(InvalidHours("a range ends after it starts"));
            }
            parsed.push(Range { first_day, last_day, from, until });
        }
        Ok(Self { ranges: parsed, zone: zone.to_owned() })
    }

    /// The IANA name of the time zone the hours are in: the support line's.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Whether the line is open at `epoch_seconds`. A zone the compiled-in database does not
    /// know counts as always open: a mistyped setting must not close the support line.
    pub fn is_open(&self, epoch_seconds: i64) -> bool {
        let (Ok(zone), Ok(instant)) =
            (jiff::tz::TimeZone::get(&self.zone), jiff::Timestamp::from_second(epoch_seconds))
        else {
            tracing::error!(zone = %self.zone, "unknown time zone in BUSINESS_HOURS; the line stays open");
            return true;
        };
        let local = zone.to_datetime(instant);
        let weekday = u8::try_from(local.weekday().to_monday_zero_offset()).unwrap_or_default();
        let minute = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or_default();
        self.ranges.iter().any(|range| {
            let in_days = if range.first_day <= range.last_day {
                (range.first_day..=range.last_day).contains(&weekday)
            } else {
                // Sat-Mon wraps around the week.
                weekday >= range.first_day || weekday <= range.last_day
            };
            in_days && (range.from..range.until).contains(&minute)
        })
    }
}

impl fmt::Display for BusinessHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|r| {
                let days = if r.first_day == r.last_day {
                    DAYS[usize::from(r.first_day)].to_owned()
                } else {
                    format!("{}-{}", DAYS[usize::from(r.first_day)], DAYS[usize::from(r.last_day)])
                };
                format!("{days} {:02}:{:02}-{:02}:{:02}", r.from / 60, r.from % 60, r.until / 60, r.until % 60)
            })
            .collect();
        write!(f, "{} {}", ranges.join(", "), self.zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2027-01-15T08:00:00Z, a Friday: 09:00 in Berlin (CET, +1).
    const FRIDAY_0800_UTC: i64 = 1_800_000_000;

    #[test]
    fn parses_days_times_and_a_zone() {
        let hours = BusinessHours::parse("Mon-Fri 09:00-17:00, Sat 10:00-14:00 Europe/Berlin").unwrap();
        assert_eq!(hours.to_string(), "mon-fri 09:00-17:00, sat 10:00-14:00 Europe/Berlin");
        for bad in [
            "Mon-Fri 09:00-17:00",
            "Mon-Fri 9:00-17:00 Europe/Berlin",
            "Mon-Fry 09:00-17:00 Europe/Berlin",
            "Mon-Fri 17:00-09:00 Europe/Berlin",
            "Mon-Fri 09:00-25:00 Europe/Berlin",
            "Mon-Fri 09:60-17:00 Europe/Berlin",
            "09:00-17:00 Europe/Berlin",
            "",
        ] {
            assert!(BusinessHours::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn is_open_in_the_company_time_zone() {
        let hours = BusinessHours::parse("Mon-Fri 09:00-17:00 Europe/Berlin").unwrap();
        assert!(hours.is_open(FRIDAY_0800_UTC), "09:00 in Berlin");
        assert!(!hours.is_open(FRIDAY_0800_UTC - 1), "08:59:59 in Berlin");
        assert!(hours.is_open(FRIDAY_0800_UTC + 8 * 3600 - 1), "16:59:59");
        assert!(!hours.is_open(FRIDAY_0800_UTC + 8 * 3600), "17:00 is closed");
        assert!(!hours.is_open(FRIDAY_0800_UTC + 24 * 3600), "Saturday");
        let utc = BusinessHours::parse("Fri 08:00-09:00 UTC").unwrap();
        assert!(utc.is_open(FRIDAY_0800_UTC));
        // Summer time: 2027-07-16 is a Friday; 09:00 in Berlin is 07:00 UTC.
        let july = 1_815_721_200; // 2027-07-16T07:00:00Z
        assert!(hours.is_open(july) && !hours.is_open(july - 1));
    }

    #[test]
    fn a_range_over_the_weekend_wraps_and_the_whole_day_is_00_to_24() {
        let hours = BusinessHours::parse("Sat-Mon 00:00-24:00 UTC").unwrap();
        assert!(!hours.is_open(FRIDAY_0800_UTC));
        assert!(hours.is_open(FRIDAY_0800_UTC + 16 * 3600), "Saturday 00:00");
        assert!(hours.is_open(FRIDAY_0800_UTC + 88 * 3600 - 1), "Monday 23:59:59");
        assert!(!hours.is_open(FRIDAY_0800_UTC + 88 * 3600), "Tuesday 00:00");
    }

    #[test]
    fn an_unknown_zone_keeps_the_line_open() {
        let hours = BusinessHours::parse("Mon 09:00-10:00 Mars/Olympus").unwrap();
        assert!(hours.is_open(FRIDAY_0800_UTC));
    }
}
