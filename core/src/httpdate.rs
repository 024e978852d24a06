//! HTTP-date parsing (RFC 9110 §5.6.7): IMF-fixdate, RFC 850 and asctime forms, to Unix
//! seconds. No clock, no allocation.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP-date to Unix seconds.
pub(crate) fn parse(s: &str) -> Option<i64> {
    let mut t = s.split_ascii_whitespace();
    let first = t.next()?;
    let (day, month, year, time) = if first.ends_with(',') {
        let second = t.next()?;
        if let Some(dmy) = second.split_once('-') {
            // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
            let (d, rest) = dmy;
            let (m, y) = rest.split_once('-')?;
            let y: i64 = num(y, 2)?;
            let y = if y < 70 { 2000 + y } else { 1900 + y };
            let time = t.next()?;
            (num(d, 2)?, m, y, time)
        } else {
            // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            let m = t.next()?;
            let y = num(t.next()?, 4)?;
            (num(second, 2)?, m, y, t.next()?)
        }
    } else {
        // asctime: Sun Nov  6 08:49:37 1994
        let m = t.next()?;
        let d = t.next()?;
        let time = t.next()?;
        let y = num(t.next()?, 4)?;
        if t.next().is_some() {
            return None;
        }
        return to_unix(y, m, d.parse().ok()?, time);
    };
    if t.next() != Some("GMT") || t.next().is_some() {
        return None;
    }
    to_unix(year, month, day, time)
}

fn num(s: &str, digits: usize) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn to_unix(year: i64, month: &str, day: i64, time: &str) -> Option<i64> {
    let m = i64::try_from(MONTHS.iter().position(|x| *x == month)?).ok()? + 1;
    let mut hms = time.split(':');
    let (h, mi, s) = (
        num(hms.next()?, 2)?,
        num(hms.next()?, 2)?,
        num(hms.next()?, 2)?,
    );
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(crate::time::days_from_civil(year, m, day) * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_the_three_forms_of_rfc_9110() {
        // The RFC's own example: 784111777 is 1994-11-06T08:49:37Z.
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse("Wed, 25 Nov 2026 17:00:00 GMT"), Some(1_795_626_000));
    }

    #[test]
    fn refuses_near_misses() {
        for s in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "120",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}
