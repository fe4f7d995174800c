//! Small display helpers shared by the pages.

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
}
