//! `GET /v1/events`: the account's events of the last 30 days, newest first, one page at a
//! time (`limit`, then `starting_after` the last id while `has_more`).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Client, StripeError};

/// Stripe takes at most this many exact names in `types[]`.
pub const MAX_TYPES: usize = 20;
/// The largest page Stripe serves.
pub const PAGE_LIMIT: u32 = 100;

/// Which event types to list. Stripe filters on up to 20 exact names (`types[]`) or on one
/// name with `*` wildcards (`type`, e.g. `invoice.*`), never both at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TypeFilter {
    #[default]
    All,
    Exact(Vec<String>),
    Pattern(String),
}

impl TypeFilter {
    /// From the names an operator gave; refuses what Stripe would: a mix of names and a
    /// pattern, several patterns, more than 20 names, or text that is no event type.
    pub fn parse(values: &[String]) -> Result<TypeFilter, String> {
        let mut exact: Vec<String> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for value in values {
            let value = value.trim();
            let valid = !value.is_empty()
                && value.len() <= 100
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._*".contains(&b));
            if !valid {
                return Err(format!(
                    "`{value}` is not an event type (lowercase letters, digits, `_` and `.`, or `*` as a wildcard, e.g. invoice.*)"
                ));
            }
            let list = if value.contains('*') { &mut patterns } else { &mut exact };
            if !list.iter().any(|v| v == value) {
                list.push(value.to_string());
            }
        }
        match (exact.len(), patterns.len()) {
            (0, 0) => Ok(TypeFilter::All),
            (_, 0) if exact.len() > MAX_TYPES => Err(format!(
                "{} event types given; Stripe filters on at most {MAX_TYPES} exact types at once \
                 (use one pattern such as invoice.* instead, or several runs)",
                exact.len()
            )),
            (_, 0) => Ok(TypeFilter::Exact(exact)),
            (0, 1) => Ok(TypeFilter::Pattern(patterns.remove(0))),
            (0, _) => Err(format!(
                "several patterns given ({}); Stripe filters on one pattern with * at a time",
                patterns.join(", ")
            )),
            _ => Err(format!(
                "exact event types ({}) and a pattern ({}) given together; Stripe accepts either up to \
                 {MAX_TYPES} exact types or one pattern with *, not both",
                exact.join(", "),
                patterns.join(", ")
            )),
        }
    }
}

/// One request of the list.
#[derive(Debug, Clone)]
pub struct EventListQuery {
    /// `created[gte]`, unix seconds.
    pub created_gte: i64,
    /// `delivery_success`: `Some(false)` lists the events some webhook endpoint has not
    /// acknowledged (still pending, or failed every attempt); `None` lists all.
    pub delivery_success: Option<bool>,
    pub types: TypeFilter,
    /// 1 to 100.
    pub limit: u32,
    /// The last event id of the previous page.
    pub starting_after: Option<String>,
}

impl EventListQuery {
    /// The query string's pairs, as Stripe spells them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("created[gte]", self.created_gte.to_string()),
            ("limit", self.limit.clamp(1, PAGE_LIMIT).to_string()),
        ];
        if let Some(delivered) = self.delivery_success {
            pairs.push(("delivery_success", delivered.to_string()));
        }
        match &self.types {
            TypeFilter::All => {}
            TypeFilter::Exact(types) => pairs.extend(types.iter().map(|t| ("types[]", t.clone()))),
            TypeFilter::Pattern(pattern) => pairs.push(("type", pattern.clone())),
        }
        if let Some(after) = &self.starting_after {
            pairs.push(("starting_after", after.clone()));
        }
        pairs
    }
}

/// One page: `{"object": "list", "data": [...], "has_more": …}`.
#[derive(Debug, Deserialize)]
pub struct EventPage {
    /// Each event as Stripe wrote it, kept verbatim like a webhook body.
    pub data: Vec<Box<RawValue>>,
    pub has_more: bool,
}

/// Just the id of a listed event, for the next page's cursor.
#[derive(Deserialize)]
struct Id<'a> {
    id: &'a str,
}

impl EventPage {
    /// The id to list on from (`starting_after`): the page's last, oldest event.
    pub fn last_id(&self) -> Option<String> {
        let last = self.data.last()?;
        serde_json::from_str::<Id>(last.get()).ok().map(|e| e.id.to_string())
    }
}

impl Client {
    /// One page of `GET /v1/events`: the key's own account's events, or with `account` those
    /// of that connected account (`Stripe-Account`): Stripe runs a request on the key's account
    /// unless the header names another, so the platform's list holds none of its connected
    /// accounts' events (docs.stripe.com/connect/authentication).
    pub async fn list_events(&self, query: &EventListQuery, account: Option<&str>) -> Result<EventPage, StripeError> {
        let mut request = self
            .http
            .get(format!("{}/v1/events", self.base))
            .query(&query.pairs())
            .bearer_auth(&self.key)
            .header("Stripe-Version", &self.version);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        // Outside an attempt the budget waits in place: a sweep spends Deferral's share like
        // the executor does, never the application's.
        let body = self.send("GET /v1/events", request).await?;
        serde_json::from_str(&body).map_err(|e| StripeError::Unreadable(format!("the events list: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(values: &[&str]) -> Result<TypeFilter, String> {
        TypeFilter::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn exact_names_become_types_and_one_pattern_becomes_type() {
        assert_eq!(types(&[]), Ok(TypeFilter::All));
        assert_eq!(
            types(&["invoice.paid", "charge.failed", "invoice.paid"]),
            Ok(TypeFilter::Exact(vec!["invoice.paid".into(), "charge.failed".into()]))
        );
        assert_eq!(types(&["invoice.*"]), Ok(TypeFilter::Pattern("invoice.*".into())));
        let twenty: Vec<String> = (0..20).map(|i| format!("t{i}.created")).collect();
        assert!(matches!(TypeFilter::parse(&twenty), Ok(TypeFilter::Exact(t)) if t.len() == 20));
    }

    #[test]
    fn refuses_what_stripe_would() {
        let mix = types(&["invoice.paid", "charge.*"]).unwrap_err();
        assert!(mix.contains("not both"), "{mix}");
        assert!(types(&["invoice.*", "charge.*"]).unwrap_err().contains("one pattern"));
        let many: Vec<String> = (0..21).map(|i| format!("t{i}.created")).collect();
        assert!(TypeFilter::parse(&many).unwrap_err().contains("at most 20"));
        assert!(types(&["Invoice Paid"]).unwrap_err().contains("not an event type"));
        assert!(types(&[""]).is_err());
    }

    #[test]
    fn the_query_is_spelled_as_stripe_reads_it() {
        let q = EventListQuery {
            created_gte: 1_700_000_000,
            delivery_success: Some(false),
            types: TypeFilter::Exact(vec!["a.b".into(), "c.d".into()]),
            limit: 100,
            starting_after: Some("evt_1".into()),
        };
        let pairs: Vec<(&str, String)> = q.pairs();
        assert_eq!(
            pairs,
            vec![
                ("created[gte]", "1700000000".to_string()),
                ("limit", "100".into()),
                ("delivery_success", "false".into()),
                ("types[]", "a.b".into()),
                ("types[]", "c.d".into()),
                ("starting_after", "evt_1".into()),
            ]
        );
    }
}
