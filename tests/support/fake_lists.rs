//! The fake Stripe's list endpoints, as Stripe's API reference describes them: the list object
//! (`object`, `url`, `has_more`, `data`), newest first, `limit` (1–100, default 10),
//! `starting_after` / `ending_before` cursors, `created` and its bounds, and Stripe's 400 for an
//! unknown parameter or a bad value. Each counts against the limits like any other request.
//!
//! - `GET /v1/events`: also `delivery_success`, `types[]` (up to 20) or `type` (one pattern with `*`);
//!   as Stripe runs a request on the key's account unless `Stripe-Account` names a connected one,
//!   the events of that account only (an event's `account`), else the platform's own.
//! - `GET /v1/charges`: also `payment_intent` and `customer`.
//! - `GET /v1/invoice_payments`: the default payment of each stored invoice, filtered by `invoice`,
//!   `payment[type]` and `payment[payment_intent]`.

use super::*;

/// Stripe's 400 for a parameter it refuses, naming the parameter.
pub(super) fn invalid(param: &str, message: &str) -> Response {
    let body = json!({ "error": { "type": "invalid_request_error", "message": message, "param": param,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake" } });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Query parameters, in order.
type Pairs = Vec<(String, String)>;

/// The parameters every list takes.
struct Paging {
    created: Vec<(String, i64)>,
    limit: usize,
    after: Option<String>,
    before: Option<String>,
}

impl Paging {
    /// Takes the common parameters; the others are left for the endpoint's own filters.
    fn parse(pairs: &[(String, String)]) -> Result<(Paging, Pairs), Box<Response>> {
        let mut paging = Paging {
            created: Vec::new(),
            limit: 10,
            after: None,
            before: None,
        };
        let mut rest = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "created" | "created[gte]" | "created[gt]" | "created[lte]" | "created[lt]" => match value.parse() {
                    Ok(n) => paging.created.push((key.clone(), n)),
                    Err(_) => return Err(Box::new(invalid(key, &format!("Invalid integer: {value}")))),
                },
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=100).contains(&n) => paging.limit = n,
                    Ok(0) => return Err(Box::new(invalid(key, "This value must be greater than or equal to 1."))),
                    Ok(_) => return Err(Box::new(invalid(key, "This value must be less than or equal to 100."))),
                    Err(_) => return Err(Box::new(invalid(key, &format!("Invalid integer: {value}")))),
                },
                "starting_after" => paging.after = Some(value.clone()),
                "ending_before" => paging.before = Some(value.clone()),
                _ => rest.push((key.clone(), value.clone())),
            }
        }
        Ok((paging, rest))
    }

    fn created_matches(&self, at: i64) -> bool {
        self.created.iter().all(|(k, n)| match k.as_str() {
            "created[gte]" => at >= *n,
            "created[gt]" => at > *n,
            "created[lte]" => at <= *n,
            "created[lt]" => at < *n,
            _ => at == *n,
        })
    }

    /// The list object of one page of `all` (newest first), keeping those `keep` accepts (given
    /// each one's index) and that match `created`. The cursors are ids of `all`, kept or not.
    fn page(&self, all: &[Value], keep: impl Fn(usize, &Value) -> bool, url: &str, noun: &str) -> Response {
        let position = |id: &str| all.iter().position(|o| o["id"] == id);
        let no_such = |id: &str| {
            error(
                400,
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such {noun}: '{id}'"),
            )
        };
        let (from, to) = match (&self.after, &self.before) {
            (Some(id), _) => match position(id) {
                Some(p) => (p + 1, all.len()),
                None => return no_such(id),
            },
            (None, Some(id)) => match position(id) {
                Some(p) => (0, p),
                None => return no_such(id),
            },
            (None, None) => (0, all.len()),
        };
        let matching: Vec<&Value> = (from..to)
            .filter(|&i| self.created_matches(all[i]["created"].as_i64().unwrap_or_default()) && keep(i, &all[i]))
            .map(|i| &all[i])
            .collect();
        // `ending_before` pages toward newer objects: the `limit` nearest the cursor.
        let page: Vec<&Value> = if self.after.is_none() && self.before.is_some() {
            matching[matching.len().saturating_sub(self.limit)..].to_vec()
        } else {
            matching.iter().copied().take(self.limit).collect()
        };
        let has_more = matching.len() > page.len();
        axum::Json(json!({ "object": "list", "url": url, "has_more": has_more, "data": page })).into_response()
    }
}

/// An invoice's default invoice payment, as Stripe's API reference shows one, while it is open.
fn invoice_payment(invoice: &Value) -> Option<Value> {
    let intent = invoice["payment_intent"].as_str()?;
    let id = invoice["id"].as_str()?;
    Some(json!({
        "id": format!("inpay_{}", id.trim_start_matches("in_")), "object": "invoice_payment",
        "amount_paid": null, "amount_requested": invoice["amount_due"], "created": invoice["created"],
        "currency": invoice["currency"], "invoice": id, "is_default": true, "livemode": invoice["livemode"],
        "payment": { "type": "payment_intent", "payment_intent": intent },
        "status": "open", "status_transitions": { "canceled_at": null, "paid_at": null }
    }))
}

/// The stored objects of one kind, newest first (ties by id, descending), rendered in `version`.
fn stored(inner: &Inner, object: &str, version: &str) -> Vec<Value> {
    let mut all: Vec<Value> = inner
        .objects
        .lock()
        .unwrap()
        .values()
        .filter(|o| o["object"] == object)
        .map(|o| deferral::fixtures::render(o, version))
        .collect();
    let key = |o: &Value| {
        (
            o["created"].as_i64().unwrap_or_default(),
            o["id"].as_str().unwrap_or_default().to_string(),
        )
    };
    all.sort_by_key(|o| std::cmp::Reverse(key(o)));
    all
}

/// A list endpoint's own filters: each `(parameter, field)` pair must hold; another parameter is refused.
fn filters<'a>(
    rest: &'a [(String, String)],
    known: &[(&'a str, &'a str)],
) -> Result<Vec<(&'a str, &'a str)>, Box<Response>> {
    rest.iter()
        .map(|(k, v)| match known.iter().find(|(param, _)| param == k) {
            Some((_, field)) => Ok((*field, v.as_str())),
            None => Err(Box::new(invalid(k, &format!("Received unknown parameter: {k}")))),
        })
        .collect()
}

/// Whether `object` has `value` at the dotted `field`.
fn has(object: &Value, field: &str, value: &str) -> bool {
    *field.split('.').fold(object, |o, key| &o[key]) == *value
}

/// Serves a list of stored objects of one kind, filtered by `known` (parameter, field) pairs.
async fn list_stored(
    inner: &Inner,
    headers: &HeaderMap,
    (raw, pairs): (Option<String>, Vec<(String, String)>),
    (collection, object, known): (&str, &str, &[(&str, &str)]),
) -> Response {
    let url = format!("/v1/{collection}");
    let version = match admit(
        inner,
        format!("{url}?{}", raw.unwrap_or_default()),
        &format!("GET {url}"),
        headers,
    ) {
        Ok(version) => version,
        Err(refused) => return *refused,
    };
    let (paging, rest) = match Paging::parse(&pairs) {
        Ok(parsed) => parsed,
        Err(refused) => return *refused,
    };
    let wanted = match filters(&rest, known) {
        Ok(wanted) => wanted,
        Err(refused) => return *refused,
    };
    let all = if object == "invoice_payment" {
        let invoices = stored(inner, "invoice", ACCOUNT_VERSION);
        invoices.iter().filter_map(invoice_payment).collect()
    } else {
        stored(inner, object, &version)
    };
    let keep = |_, o: &Value| wanted.iter().all(|(field, value)| has(o, field, value));
    paging.page(&all, keep, &url, object)
}

pub(super) async fn invoice_payments(
    State(inner): State<Arc<Inner>>,
    RawQuery(raw): RawQuery,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let known = [
        ("invoice", "invoice"),
        ("payment[type]", "payment.type"),
        ("payment[payment_intent]", "payment.payment_intent"),
    ];
    list_stored(
        &inner,
        &headers,
        (raw, pairs),
        ("invoice_payments", "invoice_payment", &known),
    )
    .await
}

pub(super) async fn charges(
    State(inner): State<Arc<Inner>>,
    RawQuery(raw): RawQuery,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let known = [("payment_intent", "payment_intent"), ("customer", "customer")];
    list_stored(&inner, &headers, (raw, pairs), ("charges", "charge", &known)).await
}

/// Counts list requests being answered, for `most_lists_at_once`.
struct Running<'a>(&'a Inner);

impl<'a> Running<'a> {
    fn start(inner: &'a Inner) -> Running<'a> {
        let now = inner.lists_running.fetch_add(1, Ordering::SeqCst) + 1;
        inner.lists_most_at_once.fetch_max(now, Ordering::SeqCst);
        Running(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lists_running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `*` matches any run of characters, as in Stripe's `type=invoice.*`.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && matches_pattern(rest, &tail[i..]))
        }
    }
}

pub(super) async fn events(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let (authorization, _) = see(&inner, format!("/v1/events?{}", query.join("&")), &headers);
    let _running = Running::start(&inner);
    let delay = *inner.list_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Err(refused) = pass(&inner, authorization.as_deref(), "GET /v1/events") {
        return *refused;
    }
    let fault = inner.list_faults.lock().unwrap().pop_front().flatten();
    if let Some(response) = injected(fault).await {
        return response;
    }

    let (paging, rest) = match Paging::parse(&pairs) {
        Ok(parsed) => parsed,
        Err(refused) => return *refused,
    };
    let (mut delivery, mut pattern, mut types) = (None, None::<String>, Vec::<String>::new());
    for (key, value) in &rest {
        match key.as_str() {
            "delivery_success" => match value.as_str() {
                "true" => delivery = Some(true),
                "false" => delivery = Some(false),
                _ => return invalid(key, &format!("Invalid boolean: {value}")),
            },
            "type" => pattern = Some(value.clone()),
            "types[]" => types.push(value.clone()),
            other => return invalid(other, &format!("Received unknown parameter: {other}")),
        }
    }
    if pattern.is_some() && !types.is_empty() {
        return invalid("types", "You may pass either `type` or `types`, but not both.");
    }
    if types.len() > 20 {
        return invalid("types", "You may pass at most 20 event types in `types`.");
    }

    let account = headers.get("stripe-account").and_then(|v| v.to_str().ok());
    let events = inner.events.lock().unwrap();
    // Newest first; events of the same second in reverse order of creation.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((events[i].event["created"].as_i64().unwrap_or_default(), i)));
    let all: Vec<Value> = order.iter().map(|&i| events[i].event.clone()).collect();
    let delivered: Vec<bool> = order.iter().map(|&i| events[i].delivered).collect();
    drop(events);
    let keep = |i: usize, e: &Value| {
        let ty = e["type"].as_str().unwrap_or_default();
        delivery.is_none_or(|d| delivered[i] == d)
            && e["account"].as_str() == account
            && (types.is_empty() || types.iter().any(|t| t == ty))
            && pattern.as_deref().is_none_or(|p| matches_pattern(p, ty))
    };
    paging.page(&all, keep, "/v1/events", "event")
}
