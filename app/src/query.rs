//! The URL query of console pages: the REST API's filter parameters, plus a few of the
//! console's own (outcome notices and Leptos's no-JavaScript error echo) that are not filters.

use leptos_router::params::ParamsMap;

use crate::model::ExecutionFilter;

/// Query keys that belong to the console, not to the filter (`pattern` names what a pause or
/// resume that brought us here applied to).
const CONSOLE_KEYS: [&str; 9] = [
    "done", "n", "skipped", "from_id", "action", "pattern", "__err", "__path", "chart",
];

/// The filter in a page's query; unknown parameters or values are errors shown on the page.
pub fn filter_from(query: &ParamsMap) -> Result<ExecutionFilter, String> {
    ExecutionFilter::from_pairs(
        query
            .into_iter()
            // An empty key comes from the router's form submission (the nameless submit button).
            .filter(|(k, _)| !k.is_empty() && !CONSOLE_KEYS.contains(&k.as_ref()))
            .map(|(k, v)| (k.as_ref(), v)),
    )
}

/// `/` with the filter (and cursor) as its query.
pub fn list_href(filter: &ExecutionFilter, cursor: Option<&str>) -> String {
    let qs = filter.query_string(cursor);
    if qs.is_empty() { "/".into() } else { format!("/?{qs}") }
}

/// A path on this site to return to after logging in; anything else becomes `/`.
///
/// Only visible ASCII, starting with one `/`: browsers drop tabs and newlines from a URL and
/// read `\` as `/`, so `/<TAB>/evil.example` or `/\evil.example` would become the scheme-relative
/// `//evil.example`, another site. Visible ASCII is also exactly what a `Location` header may hold.
pub fn safe_next(next: &str) -> String {
    let bytes = next.as_bytes();
    let ok = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/'))
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\');
    if ok { next.to_string() } else { "/".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_keys_are_not_filters() {
        let q: ParamsMap = [
            ("status", "failed"),
            ("done", "rerun"),
            ("n", "3"),
            ("pattern", "invoice.*"),
        ]
        .into_iter()
        .collect();
        let f = filter_from(&q).unwrap();
        assert_eq!(f.statuses.len(), 1);
        assert_eq!(list_href(&f, Some("b9")), "/?status=failed&cursor=b9");
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/executions/x?y=1"), "/executions/x?y=1");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("/\t/evil.example/"), "/");
        assert_eq!(safe_next("/ /evil.example/"), "/");
        assert_eq!(safe_next("/\u{7f}"), "/");
        assert_eq!(safe_next("/caf\u{e9}"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
