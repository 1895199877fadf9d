//! Reboot windows, as zincati's periodic strategy: days of the week, a
//! start time and a length, in UTC. Pure: the clock is passed in.

const DAY: u64 = 24 * 3600;
const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// When a reboot may happen: on each of `days` from `start_minute` (UTC)
/// for `minutes`; a window may run past midnight into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight, UTC.
    pub start_minute: u32,
    /// Length in minutes.
    pub minutes: u32,
}

/// Monday = 0 for the day `days` after 1970-01-01 (a Thursday).
fn weekday(days: u64) -> usize {
    ((days + 3) % 7) as usize
}

impl Window {
    /// The opening at or before `now` (seconds since the epoch) that
    /// `now` falls in, if any.
    fn opening_containing(&self, now: u64) -> Option<u64> {
        let today = now / DAY;
        // A window is at most a week long: look back that far.
        (0..=7u64)
            .filter_map(|back| today.checked_sub(back))
            .find_map(|day| {
                let open = day * DAY + u64::from(self.start_minute) * 60;
                let inside = self.days[weekday(day)]
                    && now >= open
                    && now - open < u64::from(self.minutes) * 60;
                inside.then_some(open)
            })
    }

    /// Whether `now` (seconds since the epoch) is inside the window.
    pub fn is_open(&self, now: u64) -> bool {
        self.opening_containing(now).is_some()
    }

    /// When the window next opens after `now`; `now` itself if it is open.
    pub fn next_open(&self, now: u64) -> Option<u64> {
        if let Some(open) = self.opening_containing(now) {
            return Some(open.max(now));
        }
        let today = now / DAY;
        (0..=7u64).map(|ahead| today + ahead).find_map(|day| {
            let open = day * DAY + u64::from(self.start_minute) * 60;
            (self.days[weekday(day)] && open > now && self.minutes > 0).then_some(open)
        })
    }
}

/// Parses `Mon Tue …` (or commas); case-insensitive.
pub fn parse_days(s: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    let mut any = false;
    for word in s.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
        let i = NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(word))
            .ok_or_else(|| {
                format!(
                    "window-days: {word:?} is not a day; use {}",
                    NAMES.join(" ")
                )
            })?;
        days[i] = true;
        any = true;
    }
    if !any {
        return Err("window-days is empty; name at least one day".into());
    }
    Ok(days)
}

/// Parses `HH:MM` (24-hour) into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Result<u32, String> {
    let bad = || format!("window-start={s:?}: expected HH:MM, 00:00 to 23:59");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let num = |t: &str| -> Option<u32> {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    match (num(h), num(m)) {
        (Some(h), Some(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01 was a Monday.
    const MON_2024_01_01: u64 = 1_704_067_200;

    fn at(day: u64, h: u64, m: u64) -> u64 {
        MON_2024_01_01 + day * DAY + h * 3600 + m * 60
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(MON_2024_01_01 / DAY), 0);
        assert_eq!(weekday(0), 3); // 1970-01-01, a Thursday
    }

    #[test]
    fn open_and_closed() {
        // Saturday and Sunday, 23:00 for 2 hours: runs past midnight.
        let w = Window {
            days: parse_days("Sat,sun").expect("days"),
            start_minute: parse_hhmm("23:00").expect("time"),
            minutes: 120,
        };
        let cases = [
            (at(5, 22, 59), false), // Saturday, a minute early
            (at(5, 23, 0), true),   // Saturday, opening
            (at(6, 0, 59), true),   // Sunday morning, still Saturday's
            (at(6, 1, 0), false),   // closed
            (at(6, 23, 30), true),  // Sunday's own
            (at(7, 0, 30), true),   // Monday morning, Sunday's window
            (at(7, 23, 30), false), // Monday: not a window day
            (at(2, 23, 30), false), // Wednesday
        ];
        for (t, open) in cases {
            assert_eq!(w.is_open(t), open, "{t}");
        }
        assert_eq!(w.next_open(at(2, 12, 0)), Some(at(5, 23, 0)));
        assert_eq!(w.next_open(at(5, 23, 30)), Some(at(5, 23, 30)));
        assert_eq!(w.next_open(at(7, 2, 0)), Some(at(12, 23, 0)));
    }

    #[test]
    fn parse_errors() {
        for bad in ["24:00", "3:00", "03:60", "0300", "aa:bb", ""] {
            assert!(parse_hhmm(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_hhmm("00:00"), Ok(0));
        assert_eq!(parse_hhmm("23:59"), Ok(23 * 60 + 59));
        assert!(parse_days("").is_err());
        assert!(parse_days("Mon Fun").is_err());
        assert_eq!(parse_days("mon MON").map(|d| d[0]), Ok(true));
    }
}
