//! Stripe's webhook signature, checked as the official libraries check it (stripe-node
//! `webhooks.constructEvent`, stripe-go `webhook.ConstructEvent`), with the cost of a check
//! bounded whatever the header holds: the endpoint is public, so an anonymous request must
//! cost no more than a normal refusal.
//!
//! In order: the header's size is capped, a malformed or stale timestamp is refused before any
//! HMAC is computed, every `v1` must be 64 hexadecimal digits and there may be at most
//! [`MAX_SIGNATURES`] of them, then the MAC is computed once per configured secret and compared
//! (constant time) with each candidate.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The longest `Stripe-Signature` header read. Stripe's carry one timestamp and one `v1` (plus a
/// `v0` in test mode) per active secret: about 150 bytes each.
pub const MAX_HEADER_LEN: usize = 4096;

/// The most `v1` signatures one header may carry: Stripe signs with each active secret of an
/// endpoint, which is two while a secret is rolled.
pub const MAX_SIGNATURES: usize = 8;

/// Why a delivery was refused. `code()` is the stable `error` field of the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed ({0}): expected t=<unix time>,v1=<64 hex digits>")]
    MalformedHeader(&'static str),
    #[error("the Stripe-Signature header is longer than {MAX_HEADER_LEN} bytes")]
    HeaderTooLarge,
    #[error("the Stripe-Signature header carries more than {MAX_SIGNATURES} v1 signatures")]
    TooManySignatures,
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
            SignatureError::MalformedHeader(_) => "malformed_signature_header",
            SignatureError::HeaderTooLarge => "signature_header_too_large",
            SignatureError::TooManySignatures => "too_many_signatures",
            SignatureError::NoV1Signature => "no_v1_signature",
            SignatureError::TimestampOutsideTolerance { .. } => "timestamp_outside_tolerance",
            SignatureError::NoMatchingSignature => "no_matching_signature",
        }
    }
}

/// The parts of a `Stripe-Signature` header that matter: `t` and every `v1`, decoded.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    timestamp: i64,
    v1: Vec<[u8; 32]>,
}

/// Longest `t` read: unix seconds have 10 digits until the year 2286.
const MAX_TIMESTAMP_DIGITS: usize = 12;

fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    let malformed = SignatureError::MalformedHeader("t must be a unix time in seconds");
    if value.is_empty() || value.len() > MAX_TIMESTAMP_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    value.parse().map_err(|_| malformed)
}

fn parse_signature(value: &str) -> Result<[u8; 32], SignatureError> {
    let mut signature = [0u8; 32];
    hex::decode_to_slice(value, &mut signature)
        .map_err(|_| SignatureError::MalformedHeader("a v1 signature must be 64 hexadecimal digits"))?;
    Ok(signature)
}

/// Reads the header in one pass over at most [`MAX_HEADER_LEN`] bytes; no MAC is computed here.
fn parse_header(header: &str) -> Result<Header, SignatureError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::HeaderTooLarge);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue; // stripe-node ignores items without '='
        };
        match key {
            "t" if timestamp.is_some() => return Err(SignatureError::MalformedHeader("more than one t")),
            "t" => timestamp = Some(parse_timestamp(value)?),
            "v1" if v1.len() == MAX_SIGNATURES => return Err(SignatureError::TooManySignatures),
            "v1" => v1.push(parse_signature(value)?),
            _ => {} // v0 and unknown schemes are ignored
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader("no t"))?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(Header { timestamp, v1 })
}

/// HMAC-SHA256 of `"{t}.{body}"` keyed with the secret as given (`whsec_` included).
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // Infallible: HMAC takes keys of any length (new_from_slice only fails for fixed-size MACs).
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
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
///
/// Costs one header scan, then (only for a fresh timestamp) one HMAC per secret over the body,
/// whatever the header holds. Timestamps from the future are accepted, as Stripe's libraries do
/// (clock skew).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    tolerance: Duration,
    now: i64,
) -> Result<(), SignatureError> {
    let header = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let tolerance_secs = tolerance.as_secs();
    let age = now.saturating_sub(header.timestamp);
    if age > i64::try_from(tolerance_secs).unwrap_or(i64::MAX) {
        return Err(SignatureError::TimestampOutsideTolerance {
            age_secs: age,
            tolerance_secs,
        });
    }
    for secret in secrets {
        let expected = mac(secret, header.timestamp, body).finalize().into_bytes();
        if header
            .v1
            .iter()
            .any(|candidate| bool::from(candidate[..].ct_eq(&expected[..])))
        {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatchingSignature)
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

    fn code(header: &str) -> &'static str {
        check(Some(header)).unwrap_err().code()
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
        assert_eq!(code("garbage"), "malformed_signature_header");
        assert_eq!(code("t=abc,v1=00"), "malformed_signature_header");
        let v0_only = format!("t={NOW},v0={}", sign(SECRET, NOW, BODY));
        assert_eq!(code(&v0_only), "no_v1_signature");
        assert_eq!(
            code(&header_for(SECRET, NOW - 301, BODY)),
            "timestamp_outside_tolerance"
        );
        assert_eq!(code(&header_for("whsec_other", NOW, BODY)), "no_matching_signature");
        assert_eq!(
            code(&format!("t={NOW},{}", "v1=,".repeat(2000))),
            "signature_header_too_large"
        );
        assert_eq!(
            code(&format!("t={NOW}{}", ",v1=".repeat(20) + &"ab".repeat(32))),
            "malformed_signature_header"
        );
        let many = format!(",v1={}", "ab".repeat(32)).repeat(MAX_SIGNATURES + 1);
        assert_eq!(code(&format!("t={NOW}{many}")), "too_many_signatures");
    }

    #[test]
    fn only_64_hex_digit_signatures_are_read() {
        let good = sign(SECRET, NOW, BODY);
        for bad in [
            "",
            "nothex",
            &good[..62],
            &format!("{good}00"),
            &format!("{}zz", &good[..62]),
        ] {
            assert_eq!(
                code(&format!("t={NOW},v1={bad}")),
                "malformed_signature_header",
                "{bad}"
            );
        }
        // Upper-case hex is still hex.
        assert_eq!(check(Some(&format!("t={NOW},v1={}", good.to_uppercase()))), Ok(()));
    }

    #[test]
    fn timestamps_are_plain_unix_seconds() {
        for bad in [
            "",
            "-1",
            "+1700000000",
            "1e9",
            "9223372036854775807",
            "-9223372036854775808",
            " 1",
        ] {
            assert_eq!(
                code(&format!("t={bad},v1={}", "ab".repeat(32))),
                "malformed_signature_header",
                "{bad}"
            );
        }
        let twice = format!("t={NOW},{}", header_for(SECRET, NOW, BODY));
        assert_eq!(code(&twice), "malformed_signature_header");
    }

    #[test]
    fn a_stale_timestamp_is_refused_whatever_the_signature() {
        // Refused before any MAC: a correct signature and a wrong one get the same answer.
        assert_eq!(
            code(&header_for(SECRET, NOW - 301, BODY)),
            "timestamp_outside_tolerance"
        );
        assert_eq!(
            code(&header_for("whsec_other", NOW - 301, BODY)),
            "timestamp_outside_tolerance"
        );
        // The oldest representable timestamp neither overflows nor passes.
        assert_eq!(
            verify(
                Some(&header_for(SECRET, 0, BODY)),
                BODY,
                &[SECRET.into()],
                TOLERANCE,
                i64::MAX
            )
            .unwrap_err()
            .code(),
            "timestamp_outside_tolerance"
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
