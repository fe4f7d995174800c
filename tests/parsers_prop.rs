//! Property tests for every parser that reads untrusted input (issue 14): the `Stripe-Signature`
//! header and its check, the event envelope, the executions' and the records' filters, and the
//! list cursor. Thousands of inputs each, hostile ones included: none panics, what is accepted
//! reads back the same, and every refusal is a short message that says what is wrong (the HTTP
//! layer answers it as a 400 with a code, checked over real HTTP at the end).

mod support;

use std::time::Duration;

use deferral::webhook::Envelope;
use deferral::webhook::signature::{self, MAX_HEADER_LEN, SignatureError};
use domain::model::{Cursor, ExecutionFilter, MAX_FILTER_PAIRS, MAX_FILTER_TYPES, MAX_FILTER_VALUE_LEN};
use domain::records::{RecordFilter, RecordKind};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use support::TestApp;

const SECRET: &str = "whsec_prop_secret";
const NOW: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);
/// Longest message a refusal may carry: inputs are quoted shortened, never whole.
const MAX_MESSAGE: usize = 400;

const SIGNATURE_CODES: [&str; 7] = [
    "missing_signature_header",
    "malformed_signature_header",
    "signature_header_too_large",
    "too_many_signatures",
    "no_v1_signature",
    "timestamp_outside_tolerance",
    "no_matching_signature",
];

// Inputs are built from characters and word lists, not from regular expressions: proptest's
// regex strategies cost about half a millisecond per string in a debug build, which would make
// these thousands of cases take minutes.

/// Strings of any characters (control characters, surrogates' neighbours, non-ASCII), up to `max`.
fn text(max: usize) -> impl Strategy<Value = String> + Clone {
    proptest::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

/// Strings over `alphabet` with a length in `len`.
fn over(alphabet: &str, len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> + Clone {
    let chars: Vec<char> = alphabet.chars().collect();
    proptest::collection::vec(proptest::sample::select(chars), len).prop_map(String::from_iter)
}

/// One of `words`.
fn word(words: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(words).prop_map(String::from)
}

/// Longer than any identifier or filter value may be, or just short of it.
fn around_the_cap() -> impl Strategy<Value = String> + Clone {
    (250usize..=260).prop_map(|n| "x".repeat(n))
}

const HEX: &str = "0123456789abcdef";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn check_refusal(e: &SignatureError) -> Result<(), TestCaseError> {
    prop_assert!(SIGNATURE_CODES.contains(&e.code()), "{:?}", e);
    let message = e.to_string();
    prop_assert!(!message.is_empty() && message.len() < MAX_MESSAGE, "{}", message);
    Ok(())
}

/// Headers shaped like Stripe's, with every part possibly wrong: timestamps of any length and
/// sign, `v1` values of any length and alphabet, repeats, empty items, stray spaces.
fn stripe_like_header() -> impl Strategy<Value = String> {
    let timestamp = prop_oneof![
        Just(NOW.to_string()),
        over("-0123456789", 0..=25),
        over("0123456789afx ", 0..=4),
        any::<i64>().prop_map(|t| t.to_string()),
    ];
    let item = prop_oneof![
        timestamp.prop_map(|t| format!("t={t}")),
        over(HEX, 64..=64).prop_map(|v| format!("v1={v}")),
        over("0123456789abcdefABCDEFgG", 0..=70).prop_map(|v| format!("v1={v}")),
        over(HEX, 64..=64).prop_map(|v| format!("v0={v}")),
        over(" =,az09", 0..=8),
    ];
    proptest::collection::vec(item, 0..14).prop_map(|items| items.join(","))
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn the_signature_check_never_panics_and_names_each_refusal(
        header in prop_oneof![text(64), stripe_like_header()],
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let secrets = [SECRET.to_string(), "whsec_other".to_string()];
        // None of these carries the body's MAC: each is refused, with its code.
        let refused = signature::verify(Some(&header), &body, &secrets, TOLERANCE, NOW);
        prop_assert!(refused.is_err(), "{:?} passed", header);
        check_refusal(&refused.unwrap_err())?;
    }

    #[test]
    fn a_signed_body_verifies_and_any_changed_digit_is_refused(
        body in proptest::collection::vec(any::<u8>(), 0..128),
        age in 0i64..=300,
        digit in 0usize..64,
        noise in stripe_like_header(),
    ) {
        let t = NOW - age;
        let header = signature::header_for(SECRET, t, &body);
        let secrets = [SECRET.to_string()];
        prop_assert_eq!(signature::verify(Some(&header), &body, &secrets, TOLERANCE, NOW), Ok(()));
        // Stripe's other schemes and unknown items around it do not matter.
        let with_v0 = format!("{header},v0={}", "0".repeat(64));
        prop_assert_eq!(signature::verify(Some(&with_v0), &body, &secrets, TOLERANCE, NOW), Ok(()));
        let mut sig: Vec<u8> = signature::sign(SECRET, t, &body).into_bytes();
        sig[digit] = if sig[digit] == b'0' { b'1' } else { b'0' };
        let changed = format!("t={t},v1={}", String::from_utf8(sig).unwrap());
        prop_assert_eq!(
            signature::verify(Some(&changed), &body, &secrets, TOLERANCE, NOW),
            Err(SignatureError::NoMatchingSignature)
        );
        if let Err(e) = signature::verify(Some(&format!("{noise},{header}")), &body, &secrets, TOLERANCE, NOW) {
            check_refusal(&e)?;
        }
    }

    #[test]
    fn a_header_over_the_cap_is_refused_as_too_large(extra in 1usize..4096, filler in over("az09=,", 1..=1)) {
        let header = filler.repeat(MAX_HEADER_LEN + extra);
        prop_assert_eq!(
            signature::verify(Some(&header), b"{}", &[SECRET.to_string()], TOLERANCE, NOW),
            Err(SignatureError::HeaderTooLarge)
        );
    }
}

/// JSON values of any shape, Stripe events among them (ids, types and objects of any content).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text(16).prop_map(Value::from),
    ];
    let any_json = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    word(&[
                        "id",
                        "object",
                        "type",
                        "created",
                        "livemode",
                        "account",
                        "api_version",
                        "data"
                    ]),
                    text(8)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let field = || prop_oneof![over("abcxyz_.", 1..=12), text(16), around_the_cap()];
    let event = (
        field(),
        field(),
        any::<i64>(),
        any::<bool>(),
        proptest::option::of(field()),
        any_json.clone(),
    )
        .prop_map(|(id, ty, created, livemode, account, object)| {
            json!({ "id": id, "object": "event", "type": ty, "created": created, "livemode": livemode,
                    "account": account, "data": { "object": object } })
        });
    prop_oneof![any_json, event]
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn the_envelope_parser_never_panics_and_says_what_is_wrong(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..128),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ]
    ) {
        match Envelope::parse(&body) {
            Ok(e) => {
                // What is accepted is storable and sendable.
                prop_assert!(!e.id.trim().is_empty() && !e.event_type.trim().is_empty() && e.created >= 0);
                prop_assert!(e.id.len() <= 255 && !e.id.chars().any(char::is_control));
                prop_assert!(e.account.as_deref().is_none_or(|a| a.bytes().all(|b| b.is_ascii_graphic())));
            }
            Err(m) => {
                prop_assert!(m.starts_with("the body is not a Stripe event"), "{}", m);
                // serde's message quotes at most a little of the input.
                check_message(&m)?;
            }
        }
    }
}

/// Query pairs as a URL may carry them: the parameters both filters know with good, bad and
/// over-long values, unknown keys, and sometimes more pairs than allowed.
fn query_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = prop_oneof![
        word(&[
            "livemode",
            "type",
            "api_version",
            "account",
            "status",
            "origin",
            "q",
            "from",
            "to",
            "cursor",
            "limit"
        ]),
        word(&[
            "on_hold",
            "deleted",
            "delinquent",
            "reason",
            "kind",
            "state",
            "outcome",
            "customer"
        ]),
        text(12),
    ];
    let value = prop_oneof![
        word(&[
            "true",
            "false",
            "all",
            "",
            " failed ",
            "succeeded",
            "scheduled",
            "webhook",
            "rerun",
            "active",
            "open",
            "won",
            "sent",
            "other",
            "expired_card",
            "payment_failed",
        ]),
        over("acdt_AZaz09", 1..=12),
        over("ab0123456789", 1..=22),
        over("-0123456789", 0..=12),
        text(16),
        around_the_cap(),
    ];
    prop_oneof![
        8 => proptest::collection::vec((key.clone(), value.clone()), 0..12),
        // Around the cap on pairs: repeats of one pair (cheap to make) after a few varied ones.
        1 => (proptest::collection::vec((key, value), 0..3), MAX_FILTER_PAIRS - 3..MAX_FILTER_PAIRS + 3)
            .prop_map(|(mut pairs, n)| {
                let fill = n.saturating_sub(pairs.len());
                pairs.extend(std::iter::repeat_n(("limit".to_string(), "10".to_string()), fill));
                pairs
            }),
    ]
}

fn borrowed(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

fn check_message(m: &str) -> Result<(), TestCaseError> {
    prop_assert!(!m.is_empty() && m.len() < MAX_MESSAGE, "{}", m);
    Ok(())
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn the_execution_filter_reads_back_what_it_accepts_and_explains_refusals(pairs in query_pairs()) {
        match ExecutionFilter::from_pairs(borrowed(&pairs)) {
            Ok(f) => {
                prop_assert!(pairs.len() <= MAX_FILTER_PAIRS && f.types.len() <= MAX_FILTER_TYPES);
                prop_assert!(pairs.iter().all(|(_, v)| v.trim().len() <= MAX_FILTER_VALUE_LEN));
                // Its links hold the same filter (the cursor and page size travel apart).
                let links = f.to_pairs();
                let again = ExecutionFilter::from_pairs(links.iter().map(|(k, v)| (*k, v.as_str())));
                prop_assert_eq!(again, Ok(ExecutionFilter { cursor: None, limit: None, ..f }));
            }
            Err(m) => check_message(&m)?,
        }
    }

    #[test]
    fn the_records_filter_reads_back_what_it_accepts_and_explains_refusals(
        kind in proptest::sample::select(RecordKind::ALL.to_vec()),
        pairs in query_pairs(),
    ) {
        match RecordFilter::from_pairs(kind, borrowed(&pairs)) {
            Ok(f) => {
                prop_assert!(pairs.len() <= MAX_FILTER_PAIRS);
                prop_assert!(pairs.iter().all(|(_, v)| v.trim().len() <= MAX_FILTER_VALUE_LEN));
                let links = f.to_pairs();
                let again = RecordFilter::from_pairs(kind, links.iter().map(|(k, v)| (*k, v.as_str())));
                prop_assert_eq!(again, Ok(RecordFilter { cursor: None, ..f }));
            }
            Err(m) => check_message(&m)?,
        }
    }

    #[test]
    fn the_cursor_reads_only_what_it_writes(
        s in prop_oneof![text(24), over("ab0123456789", 1..=22), over("ab-+ 0123456789", 0..=20)],
        seq in 0i64..=i64::MAX,
    ) {
        match Cursor::decode(&s) {
            Ok(c) => prop_assert_eq!(Cursor::decode(&c.encode()), Ok(c)),
            Err(m) => {
                prop_assert!(m.starts_with("invalid cursor"), "{}", m);
                check_message(&m)?;
            }
        }
        for c in [Cursor::Before(seq), Cursor::After(seq)] {
            prop_assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        }
    }
}

async fn refused_as_invalid(app: &TestApp, path: &str, pairs: &[(String, String)]) {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let (status, body) = app.api(&format!("{path}?{query}")).await;
    assert_eq!(status, 400, "{path}?{query}: {body}");
    assert_eq!(body["error"], "invalid_filter", "{path}?{query}: {body}");
    let message = body["message"].as_str().unwrap();
    assert!(!message.is_empty() && message.len() < MAX_MESSAGE, "{message}");
}

/// Garbage filters over real HTTP: the executions list and every records list answer each with
/// a 400 `invalid_filter` (never a 500, never a dropped connection), over-long values and too
/// many pairs included, by the same rule for both.
#[tokio::test]
async fn garbage_filters_over_http_get_a_400_with_a_code() {
    let app = TestApp::spawn().await;
    let lists = std::iter::once(("/api/v1/executions".to_string(), "q"))
        .chain(RecordKind::ALL.iter().map(|k| {
            let text = if *k == RecordKind::Customers { "q" } else { "customer" };
            (format!("/api/v1/records/{}", k.slug()), text)
        }))
        .collect::<Vec<_>>();
    for (path, text) in &lists {
        let long = vec![(text.to_string(), "x".repeat(MAX_FILTER_VALUE_LEN + 1))];
        refused_as_invalid(&app, path, &long).await;
        let many = vec![("limit".to_string(), "10".to_string()); MAX_FILTER_PAIRS + 1];
        refused_as_invalid(&app, path, &many).await;
    }
    let garbage = query_pairs().prop_map(|mut p| {
        p.push(("colour".into(), "red".into()));
        p
    });
    let mut runner = TestRunner::deterministic();
    for n in 0..200 {
        let pairs = garbage.new_tree(&mut runner).unwrap().current();
        refused_as_invalid(&app, &lists[n % lists.len()].0, &pairs).await;
    }
    app.stop().await;
}
