//! The few fields of a Stripe event the ingest needs, read from the verified body.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    pub livemode: bool,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    pub data: Data,
}

#[derive(Debug, Deserialize)]
pub struct Data {
    pub object: DataObject,
}

#[derive(Debug, Deserialize)]
pub struct DataObject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
}

impl Envelope {
    /// Parses and checks the shape of an event; the message says what is wrong.
    pub fn parse(body: &[u8]) -> Result<Envelope, String> {
        let event: Envelope =
            serde_json::from_slice(body).map_err(|e| format!("the body is not a Stripe event: {}", short(&e)))?;
        if event.object.as_deref().is_some_and(|o| o != "event") {
            return Err("the body is not a Stripe event: `object` is not \"event\"".into());
        }
        if event.id.trim().is_empty() || event.event_type.trim().is_empty() {
            return Err("the body is not a Stripe event: `id` and `type` must not be empty".into());
        }
        if event.created < 0 {
            return Err("the body is not a Stripe event: `created` must be a unix time".into());
        }
        event.check_identifiers()?;
        Ok(event)
    }

    /// The strings that are stored, indexed, shown and sent back to Stripe stay short and
    /// printable: PostgreSQL refuses NUL, an index entry has a size limit, and the account
    /// becomes the `Stripe-Account` header of API calls, which must be visible ASCII.
    fn check_identifiers(&self) -> Result<(), String> {
        let fields = [
            ("id", Some(&self.id)),
            ("type", Some(&self.event_type)),
            ("api_version", self.api_version.as_ref()),
            ("account", self.account.as_ref()),
            ("data.object.id", self.data.object.id.as_ref()),
            ("data.object.object", self.data.object.object.as_ref()),
        ];
        for (name, value) in fields {
            let Some(value) = value else { continue };
            if value.len() > MAX_IDENTIFIER_LEN {
                return Err(format!(
                    "the body is not a Stripe event: `{name}` is longer than {MAX_IDENTIFIER_LEN} bytes"
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(format!(
                    "the body is not a Stripe event: `{name}` contains control characters"
                ));
            }
        }
        if let Some(account) = &self.account
            && !account.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("the body is not a Stripe event: `account` must be a Stripe account id (acct_…)".into());
        }
        Ok(())
    }
}

/// Longest parse error message kept whole.
const MAX_MESSAGE_LEN: usize = 160;

/// serde's message, cut short when it quotes much of the body (`invalid type: string "…"`):
/// a refusal is logged and answered, and must not echo a megabyte of someone's input.
fn short(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.char_indices().nth(MAX_MESSAGE_LEN) {
        Some((end, _)) => format!("{}… at line {} column {}", &message[..end], e.line(), e.column()),
        None => message,
    }
}

/// Longest identifier (ids, type, API version, account) read from an event. Stripe's are a few
/// dozen characters; this bound only keeps what is stored and indexed small.
pub const MAX_IDENTIFIER_LEN: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fixture_shapes() {
        let body = br#"{"id":"evt_1","object":"event","type":"customer.created","created":1,"livemode":false,
            "api_version":null,"data":{"object":{"id":"cus_1","object":"customer"}}}"#;
        let e = Envelope::parse(body).unwrap();
        assert_eq!(e.data.object.id.as_deref(), Some("cus_1"));
        assert_eq!(e.api_version, None);
        assert_eq!(e.account, None);
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        assert!(Envelope::parse(b"[1,2]").is_err());
        assert!(
            Envelope::parse(
                br#"{"id":"x","object":"charge","type":"a","created":1,"livemode":false,"data":{"object":{}}}"#
            )
            .is_err()
        );
        assert!(Envelope::parse(br#"{"id":"","type":"a","created":1,"livemode":false,"data":{"object":{}}}"#).is_err());
    }

    #[test]
    fn a_refusal_quotes_little_of_the_body() {
        let long = "x".repeat(100_000);
        let body =
            format!(r#"{{"id":"evt_1","type":"a","created":"{long}","livemode":false,"data":{{"object":{{}}}}}}"#);
        let err = Envelope::parse(body.as_bytes()).unwrap_err();
        assert!(
            err.len() < 300 && err.contains("invalid type") && err.contains("column"),
            "{err}"
        );
    }

    fn with(field: &str, value: &str) -> Vec<u8> {
        let mut event = serde_json::json!({"id":"evt_1","object":"event","type":"customer.created","created":1,
            "livemode":false,"data":{"object":{"id":"cus_1","object":"customer"}}});
        match field {
            "data.object.id" => event["data"]["object"]["id"] = value.into(),
            field => event[field] = value.into(),
        }
        event.to_string().into_bytes()
    }

    #[test]
    fn refuses_identifiers_that_cannot_be_stored_or_sent() {
        assert!(Envelope::parse(&with("account", "acct_1")).is_ok());
        let long = "x".repeat(MAX_IDENTIFIER_LEN + 1);
        for (field, value) in [
            ("id", "evt_\u{0}1"),
            ("id", long.as_str()),
            ("type", "customer.\ncreated"),
            ("data.object.id", long.as_str()),
            ("api_version", "2024-06-20\u{7}"),
            ("account", "acct_1\r\nX-Injected: 1"),
            ("account", "acct_é"),
            ("account", "acct 1"),
        ] {
            let err = Envelope::parse(&with(field, value)).unwrap_err();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
