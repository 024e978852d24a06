//! Time windows: `--since 2h`, `--until 2026-11-29T10:00:00Z`.

/// Parses a time as Unix milliseconds: a duration back from `now_ms` (`90s`, `30m`, `2h`,
/// `7d`) or an RFC 3339 time (`2026-11-29T10:00:00Z`, `2026-11-29T11:00:00+01:00`,
/// fractions allowed).
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        if let Ok(n) = s[..s.len() - 1].parse::<i64>() {
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                _ => return Err(format!("{s:?}: the unit is one of s, m, h, d")),
            };
            if n < 0 {
                return Err(format!("{s:?}: a duration is not negative"));
            }
            return Ok(now_ms.saturating_sub(n.saturating_mul(secs).saturating_mul(1000)));
        }
    }
    rfc3339_ms(s).ok_or_else(|| {
        format!("{s:?} is neither a duration (2h, 30m, 7d) nor an RFC 3339 time (2026-11-29T10:00:00Z, or with an offset: +01:00)")
    })
}

/// An RFC 3339 time with its offset (`2026-11-29T10:00:00Z`, `…+01:00`, fractions
/// allowed) as Unix milliseconds, by the `time` crate (already built for aws-config's
/// credential parsing, so no code of our own and no extra compile).
fn rfc3339_ms(s: &str) -> Option<i64> {
    // RFC 3339 section 5.6 lets a space stand for the `T`; the parser wants the `T`.
    let s = match s.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &s[..10], &s[11..]),
        _ => s.to_owned(),
    };
    let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

const HOUR: i64 = 3_600_000;

/// How many UTC hours `[since_ms, until_ms]` touches (0 when `until_ms < since_ms`),
/// counted without listing them.
pub fn hour_count(since_ms: i64, until_ms: i64) -> i64 {
    if until_ms < since_ms {
        return 0;
    }
    until_ms.div_euclid(HOUR) - since_ms.div_euclid(HOUR) + 1
}

/// The start of every UTC hour from the one holding `since_ms` to the one holding
/// `until_ms`, in order (check [`hour_count`] first: this builds the list).
pub fn hours(since_ms: i64, until_ms: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut h = since_ms.div_euclid(HOUR) * HOUR;
    while h <= until_ms {
        out.push(h);
        h += HOUR;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("90s", now), Ok(now - 90_000));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(
            parse_time("2026-11-29T17:05:00Z", now),
            Ok(1_795_971_900_000)
        );
        assert_eq!(
            parse_time("2026-11-29T17:05:00.25Z", now),
            Ok(1_795_971_900_250)
        );
        // A space for the T (RFC 3339 section 5.6).
        assert_eq!(
            parse_time("2026-11-29 17:05:00Z", now),
            Ok(1_795_971_900_000)
        );
        // An offset names the same instant.
        assert_eq!(
            parse_time("2026-11-29T18:05:00+01:00", now),
            Ok(1_795_971_900_000)
        );
        assert_eq!(
            parse_time("2026-11-29T17:05:00+00:00", now),
            Ok(1_795_971_900_000)
        );
        for bad in [
            "",
            "2x",
            "-2h",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-29T17:05:00",
            // A year far past what a calendar holds is refused, not an overflow.
            "9223372036854775807-01-01T00:00:00Z",
            "99999-01-01T00:00:00Z",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn hours_cover_the_window() {
        let h = 3_600_000;
        assert_eq!(hours(h + 5, 3 * h), vec![h, 2 * h, 3 * h]);
        assert_eq!(hours(h, h), vec![h]);
        assert!(hours(2 * h, h).is_empty());
        assert_eq!(hour_count(h + 5, 3 * h), 3);
        assert_eq!(hour_count(2 * h, h), 0);
        // 90 days from any instant touch 90 × 24 + 1 hours.
        assert_eq!(hour_count(h + 5, h + 5 + 90 * 86_400_000), 90 * 24 + 1);
    }
}
