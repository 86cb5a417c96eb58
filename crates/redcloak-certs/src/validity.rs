//! [`Validity`]: when a certificate starts and stops being valid.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use crate::CertError;

const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The period in which a certificate is valid.
///
/// Certificates made with [`Validity::days`] start an hour in the past, so a
/// peer whose clock is slightly behind does not reject a brand-new
/// certificate as "not yet valid".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Validity {
    /// Valid from an hour ago until `days` days from now.
    pub fn days(days: u32) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now.checked_sub(HOUR).unwrap_or(now),
            // Saturates to an (invalid, reported) empty period rather than
            // wrapping; unreachable for a u32 of days on 64-bit clocks.
            not_after: now
                .checked_add(DAY * days)
                .unwrap_or(now.checked_sub(HOUR).unwrap_or(now)),
        }
    }

    /// Already expired: valid from 30 days ago until yesterday. For tests of
    /// expiry handling.
    pub fn expired() -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now.checked_sub(DAY * 30).unwrap_or(UNIX_EPOCH),
            not_after: now.checked_sub(DAY).unwrap_or(UNIX_EPOCH),
        }
    }

    /// Valid from `not_before` to `not_after` (checked when a certificate is
    /// made: the end must come after the start).
    pub fn between(not_before: SystemTime, not_after: SystemTime) -> Validity {
        Validity {
            not_before,
            not_after,
        }
    }

    /// Start of the period.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the period.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The period as rcgen wants it.
    pub(crate) fn to_rcgen(self) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
        if self.not_after <= self.not_before {
            return Err(CertError::InvalidValidity {
                reason: "the period must end after it starts",
            });
        }
        let out_of_range = CertError::InvalidValidity {
            reason: "dates must lie between the years 1 and 9999",
        };
        match (to_offset(self.not_before), to_offset(self.not_after)) {
            (Some(start), Some(end)) => Ok((start, end)),
            _ => Err(out_of_range),
        }
    }
}

/// `OffsetDateTime::from(SystemTime)` panics outside years ±9999; this does not.
fn to_offset(t: SystemTime) -> Option<OffsetDateTime> {
    let converted = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => OffsetDateTime::UNIX_EPOCH.checked_add(after.try_into().ok()?),
        Err(before) => OffsetDateTime::UNIX_EPOCH.checked_sub(before.duration().try_into().ok()?),
    }?;
    (1..=9999).contains(&converted.year()).then_some(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_starts_an_hour_early() {
        let v = Validity::days(10);
        let now = SystemTime::now();
        let early = now.duration_since(v.not_before()).unwrap();
        assert!(early >= HOUR - Duration::from_secs(5) && early <= HOUR + Duration::from_secs(5));
        let ahead = v.not_after().duration_since(now).unwrap();
        assert!(ahead > DAY * 10 - Duration::from_secs(5) && ahead <= DAY * 10);
        assert!(v.to_rcgen().is_ok());
    }

    #[test]
    fn expired_ended_yesterday() {
        let v = Validity::expired();
        assert!(v.not_after() < SystemTime::now() - DAY + Duration::from_secs(5));
        assert!(v.to_rcgen().is_ok());
    }

    #[test]
    fn inverted_or_out_of_range_periods_are_errors() {
        let now = SystemTime::now();
        for v in [
            Validity::between(now, now),
            Validity::between(now, now - DAY),
            Validity::days(u32::MAX),
            Validity::between(UNIX_EPOCH - DAY * 366 * 3000, now),
        ] {
            assert!(
                matches!(v.to_rcgen(), Err(CertError::InvalidValidity { .. })),
                "{v:?}"
            );
        }
    }

    #[test]
    fn converts_to_the_second() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(to_offset(t).unwrap().unix_timestamp(), 1_700_000_000);
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(to_offset(before).unwrap().unix_timestamp(), -86_400);
    }
}
