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
            serde_json::from_slice(body).map_err(|e| format!("the body is not a Stripe event: {e}"))?;
        if event.object.as_deref().is_some_and(|o| o != "event") {
            return Err("the body is not a Stripe event: `object` is not \"event\"".into());
        }
        if event.id.trim().is_empty() || event.event_type.trim().is_empty() {
            return Err("the body is not a Stripe event: `id` and `type` must not be empty".into());
        }
        if event.created < 0 {
            return Err("the body is not a Stripe event: `created` must be a unix time".into());
        }
        Ok(event)
    }
}

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
}
