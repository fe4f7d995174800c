//! Bearer tokens (`DEFERRAL_API_TOKEN`, `DEFERRAL_METRICS_TOKEN`), compared as SHA-256 digests in
//! constant time: the time an answer takes says nothing about the token's length or about how
//! much of a guess was right.

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `headers` carry `expected` as their bearer token; a 401 saying what is wrong otherwise.
pub fn check_bearer(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = bearer(headers).ok_or_else(|| unauthorized("missing bearer token"))?;
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(unauthorized("invalid bearer token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn only_the_exact_token_passes() {
        const TOKEN: &str = "0123456789abcdef";
        assert!(check_bearer(&with("Bearer 0123456789abcdef"), TOKEN).is_ok());
        assert!(check_bearer(&with("bearer 0123456789abcdef"), TOKEN).is_ok());
        for wrong in [
            "Bearer 0123456789abcde",
            "Bearer 0123456789abcdef0",
            "Basic 0123456789abcdef",
            "Bearer",
        ] {
            assert_eq!(
                check_bearer(&with(wrong), TOKEN).unwrap_err().code,
                "unauthorized",
                "{wrong}"
            );
        }
        assert_eq!(
            check_bearer(&HeaderMap::new(), TOKEN).unwrap_err().message,
            "missing bearer token"
        );
    }
}
