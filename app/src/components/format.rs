//! Small display helpers shared by the pages. Times are shown in UTC and say so.

use leptos::prelude::*;

/// `2024-06-20T12:34:56.789Z` as `2024-06-20 12:34:56`; other text as it is.
pub fn time(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(head) if rfc3339.as_bytes().get(10) == Some(&b'T') => head.replacen('T', " ", 1),
        _ => rfc3339.to_string(),
    }
}

pub fn opt_time(t: &Option<String>) -> String {
    t.as_deref().map(time).unwrap_or_else(|| "—".into())
}

pub fn duration(ms: Option<f64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 1000.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
    }
}

/// `2024-06-20T12:34:56.789Z` as milliseconds since the epoch (the shape the server writes).
pub fn epoch_ms(rfc3339: &str) -> Option<i64> {
    let b = rfc3339.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| rfc3339.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if b[19] == b'.' { num(20..23).unwrap_or(0) } else { 0 };
    // Days from the civil date (Howard Hinnant's algorithm), valid for every Gregorian date.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + sec * 1000 + ms)
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm), the inverse of `epoch_ms`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// How long ago (or how far ahead) `at` is from `now`, in the largest whole unit.
pub fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = (now_ms - at_ms) / 1000;
    let secs = delta.abs();
    let span = match secs {
        0..5 => return "just now".into(),
        5..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    if delta >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A time: relative to `now` (the server's clock when the page's data was read) when given,
/// else absolute; the absolute UTC time is always on hover and in `datetime`.
#[component]
pub fn Time(at: Option<String>, #[prop(default = None)] now: Option<i64>) -> impl IntoView {
    let Some(at) = at else {
        return "—".into_any();
    };
    let absolute = format!("{} UTC", time(&at));
    let shown = match (now, epoch_ms(&at)) {
        (Some(now), Some(ms)) => relative(ms, now),
        _ => absolute.clone(),
    };
    view! { <time datetime=at title=absolute>{shown}</time> }.into_any()
}

/// An amount in the currency's minor unit, as Stripe sends it, in its major unit.
pub fn amount(minor: Option<i64>, currency: Option<&str>) -> String {
    // Stripe's zero-decimal currencies.
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    ];
    let Some(minor) = minor else {
        return "—".into();
    };
    let currency = currency.unwrap_or("").to_ascii_lowercase();
    let value = if ZERO_DECIMAL.contains(&currency.as_str()) {
        minor.to_string()
    } else {
        let sign = if minor < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", minor.unsigned_abs() / 100, minor.unsigned_abs() % 100)
    };
    format!("{value} {}", currency.to_ascii_uppercase())
        .trim_end()
        .to_string()
}

pub fn livemode(live: bool) -> &'static str {
    if live { "live" } else { "test" }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times_and_durations() {
        assert_eq!(super::time("2024-06-20T12:34:56.789Z"), "2024-06-20 12:34:56");
        assert_eq!(super::time("soon"), "soon");
        assert_eq!(super::duration(Some(12.345)), "12.3 ms");
        assert_eq!(super::duration(Some(1500.0)), "1.50 s");
    }

    #[test]
    fn reads_times_and_says_how_long_ago() {
        assert_eq!(super::epoch_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(super::epoch_ms("2024-06-20T12:34:56.789Z"), Some(1_718_886_896_789));
        assert_eq!(super::epoch_ms("soon"), None);
        assert_eq!(super::utc(1_718_886_896_789), "2024-06-20 12:34:56");
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::relative(0, 2_000), "just now");
        assert_eq!(super::relative(0, 90_000), "1 min ago");
        assert_eq!(super::relative(7_200_000, 0), "in 2 h");
        assert_eq!(super::amount(Some(1234), Some("usd")), "12.34 USD");
        assert_eq!(super::amount(Some(500), Some("jpy")), "500 JPY");
        assert_eq!(super::amount(None, Some("usd")), "—");
    }
}
