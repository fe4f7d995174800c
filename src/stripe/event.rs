//! A Stripe event as handlers read it: the envelope typed, the object left as JSON for
//! each handler to read the fields it needs.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds; orders events about the same object.
    pub created: i64,
    pub livemode: bool,
    #[serde(default)]
    pub api_version: Option<String>,
    /// The connected account, for Connect events.
    #[serde(default)]
    pub account: Option<String>,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: Value,
    #[serde(default)]
    pub previous_attributes: Option<Value>,
}

impl Event {
    /// Parses an event body; the message says what is wrong with it.
    pub fn parse(body: &str) -> Result<Event, String> {
        serde_json::from_str(body).map_err(|e| format!("not a Stripe event: {e}"))
    }

    /// `data.object` read as `T`; a shape that does not fit says which field.
    pub fn object<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(&self.data.object)
            .map_err(|e| format!("the {} object in {} is not as expected: {e}", self.event_type, self.id))
    }

    /// `data.object.id`, when the object has one (`invoice.upcoming`'s has none).
    pub fn object_id(&self) -> Option<&str> {
        self.data.object.get("id").and_then(Value::as_str)
    }
}
