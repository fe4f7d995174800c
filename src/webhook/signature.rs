//! Stripe's webhook signature, checked exactly as the official libraries check it
//! (stripe-node `webhooks.constructEvent`, stripe-go `webhook.ConstructEvent`).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused. `code()` is the stable `error` field of the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed: expected t=<unix time>,v1=<hex signature>")]
    MalformedHeader,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("the signature timestamp is {age_secs}s old, older than the {tolerance_secs}s tolerance")]
    TimestampOutsideTolerance { age_secs: i64, tolerance_secs: u64 },
    #[error("no v1 signature matches the payload for any configured webhook secret")]
    NoMatchingSignature,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "missing_signature_header",
            SignatureError::MalformedHeader => "malformed_signature_header",
            SignatureError::NoV1Signature => "no_v1_signature",
            SignatureError::TimestampOutsideTolerance { .. } => "timestamp_outside_tolerance",
            SignatureError::NoMatchingSignature => "no_matching_signature",
        }
    }
}

/// The parts of a `Stripe-Signature` header that matter: `t` and every `v1`.
#[derive(Debug, PartialEq, Eq)]
struct Header<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

fn parse_header(header: &str) -> Result<Header<'_>, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue; // stripe-node ignores items without '='
        };
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::MalformedHeader)?),
            "v1" => v1.push(value),
            _ => {} // v0 and unknown schemes are ignored
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(Header { timestamp, v1 })
}

/// HMAC-SHA256 of `"{t}.{body}"` keyed with the secret as given (`whsec_` included).
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The lower-case hex signature Stripe would send for this body at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// A complete `Stripe-Signature` header for `body`, as Stripe sends it.
pub fn header_for(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Verifies `header` over the raw `body` against any of `secrets` at time `now` (unix seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    tolerance: Duration,
    now: i64,
) -> Result<(), SignatureError> {
    let header = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let matches = secrets.iter().any(|secret| {
        header.v1.iter().any(|candidate| {
            // An undecodable signature simply does not match.
            hex::decode(candidate).is_ok_and(|sig| mac(secret, header.timestamp, body).verify_slice(&sig).is_ok())
        })
    });
    if !matches {
        return Err(SignatureError::NoMatchingSignature);
    }
    let age = now - header.timestamp;
    if age > tolerance.as_secs() as i64 {
        return Err(SignatureError::TimestampOutsideTolerance {
            age_secs: age,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const NOW: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn check(header: Option<&str>) -> Result<(), SignatureError> {
        verify(header, BODY, &[SECRET.to_string()], TOLERANCE, NOW)
    }

    #[test]
    fn accepts_a_valid_signature() {
        assert_eq!(check(Some(&header_for(SECRET, NOW, BODY))), Ok(()));
    }

    #[test]
    fn matches_a_known_vector() {
        // Computed independently: printf '1700000000.{"id":"evt_1","object":"event"}' | openssl dgst -sha256 -hmac whsec_test_secret
        assert_eq!(
            sign(SECRET, NOW, BODY),
            "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"
        );
    }

    #[test]
    fn each_rejection_has_its_code() {
        assert_eq!(check(None).unwrap_err().code(), "missing_signature_header");
        assert_eq!(check(Some("garbage")).unwrap_err().code(), "malformed_signature_header");
        assert_eq!(
            check(Some("t=abc,v1=00")).unwrap_err().code(),
            "malformed_signature_header"
        );
        let v0_only = format!("t={NOW},v0={}", sign(SECRET, NOW, BODY));
        assert_eq!(check(Some(&v0_only)).unwrap_err().code(), "no_v1_signature");
        let old = NOW - 301;
        assert_eq!(
            check(Some(&header_for(SECRET, old, BODY))).unwrap_err().code(),
            "timestamp_outside_tolerance"
        );
        assert_eq!(
            check(Some(&header_for("whsec_other", NOW, BODY))).unwrap_err().code(),
            "no_matching_signature"
        );
        assert_eq!(
            check(Some(&format!("t={NOW},v1=nothex"))).unwrap_err().code(),
            "no_matching_signature"
        );
    }

    #[test]
    fn a_changed_byte_does_not_verify() {
        let header = header_for(SECRET, NOW, BODY);
        let mut tampered = BODY.to_vec();
        tampered[5] ^= 1;
        assert_eq!(
            verify(Some(&header), &tampered, &[SECRET.to_string()], TOLERANCE, NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn any_v1_and_any_secret_may_match_for_rotation() {
        let good = sign("whsec_new", NOW, BODY);
        let header = format!("t={NOW},v1={},v1={good},v0=ignored,x9=unknown", "ab".repeat(32));
        let secrets = ["whsec_old".to_string(), "whsec_new".to_string()];
        assert_eq!(verify(Some(&header), BODY, &secrets, TOLERANCE, NOW), Ok(()));
        assert!(verify(Some(&header), BODY, &secrets[..1], TOLERANCE, NOW).is_err());
    }

    #[test]
    fn timestamps_within_tolerance_and_from_the_future_pass() {
        assert_eq!(check(Some(&header_for(SECRET, NOW - 300, BODY))), Ok(()));
        assert_eq!(check(Some(&header_for(SECRET, NOW + 60, BODY))), Ok(()));
    }
}
