//! Calling windows: the days and local hours a campaign may dial.

use jiff::{Timestamp, civil, tz::TimeZone};
use serde::{Deserialize, Serialize};

use crate::FieldError;

/// Days and local hours when a campaign may dial. Times are `HH:MM` or `HH:MM:SS`, end exclusive; a window
/// whose end is not after its start is invalid (split overnight windows in two campaigns).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]

pub struct CallingWindow {
    /// `mon` … `sun`; empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

impl CallingWindow {
    fn parse_time(t: &str) -> Option<civil::Time> {
        civil::Time::strptime("%H:%M:%S", t)
            .or_else(|_| civil::Time::strptime("%H:%M", t))
            .ok()
    }

    fn day_allowed(&self, day: civil::Weekday) -> bool {
        let name = match day {
            civil::Weekday::Monday => "mon",
            civil::Weekday::Tuesday => "tue",
            civil::Weekday::Wednesday => "wed",
            civil::Weekday::Thursday => "thu",
            civil::Weekday::Friday => "fri",
            civil::Weekday::Saturday => "sat",
            civil::Weekday::Sunday => "sun",
        };
        self.days.is_empty() || self.days.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    pub(super) fn check(&self, field: &str, errors: &mut Vec<FieldError>) {
        let (start, end) = (Self::parse_time(&self.start), Self::parse_time(&self.end));
        if start.is_none() {
            errors.push(FieldError::new(
                format!("{field}.start"),
                "must be HH:MM or HH:MM:SS (24 h)",
            ));
        }
        if end.is_none() {
            errors.push(FieldError::new(
                format!("{field}.end"),
                "must be HH:MM or HH:MM:SS (24 h)",
            ));
        }
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            errors.push(FieldError::new(
                format!("{field}.end"),
                "must be after start",
            ));
        }
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        for d in &self.days {
            if !DAYS.iter().any(|x| x.eq_ignore_ascii_case(d)) {
                errors.push(FieldError::new(
                    format!("{field}.days"),
                    format!("{d:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
                ));
            }
        }
    }

    /// `None` when the window is open at `now` in `tz`, else when it next opens (within two
    /// weeks; `None` also if it never does, which validation rules out).
    pub fn next_open(&self, tz: &TimeZone, now: Timestamp) -> Option<Timestamp> {
        let (start, end) = (Self::parse_time(&self.start)?, Self::parse_time(&self.end)?);
        let local = now.to_zoned(tz.clone());
        let today = local.date();
        if self.day_allowed(today.weekday()) && local.time() >= start && local.time() < end {
            return None;
        }
        for offset in 0..15 {
            let day = today.checked_add(jiff::Span::new().days(offset)).ok()?;
            if !self.day_allowed(day.weekday()) {
                continue;
            }
            let open = day
                .to_datetime(start)
                .to_zoned(tz.clone())
                .ok()?
                .timestamp();
            if open > now {
                return Some(open);
            }
        }
        None
    }
}
