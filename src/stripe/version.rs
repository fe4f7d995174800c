//! Stripe API versions: which one Deferral asks for, and which generation a payload is in.
//!
//! `2025-03-31.basil` moved the links between invoices and payments onto invoice payments
//! (`GET /v1/invoice_payments`): invoices lost `charge`, `payment_intent`, `paid` and
//! `paid_out_of_band`, payment intents and charges lost `invoice`, an invoice's subscription
//! moved to `parent.subscription_details.subscription`, and a subscription's
//! `current_period_start`/`current_period_end` moved onto its items. Later versions
//! (clover, dahlia) did not move anything else the handlers read (compared on Stripe's
//! published fixtures, `stripe/openapi` `openapi/fixtures3.json`).

/// The version asked for by default (`STRIPE_API_VERSION`): the newest the handlers are tested
/// against (`tests/stripe_versions.rs`).
pub const API_VERSION: &str = "2026-02-25.clover";

/// The first version of the basil generation.
pub const BASIL: &str = "2025-03-31";

/// Whether a payload rendered in `version` has basil's shape. Versions compare by their date.
pub fn is_basil_or_later(version: &str) -> bool {
    version.get(..10).is_some_and(|date| date >= BASIL)
}

/// Checks a version as written by Stripe: `YYYY-MM-DD`, optionally `.name` in lowercase letters.
pub fn parse(value: &str) -> Result<String, String> {
    let value = value.trim();
    let (date, name) = value.split_once('.').unwrap_or((value, ""));
    let date_ok = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10;
    let name_ok = name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase());
    if date_ok && name_ok && (name.is_empty() != value.contains('.')) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{}` is not a Stripe API version (e.g. {API_VERSION} or 2024-06-20)",
            value.chars().take(64).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_compare_by_date() {
        assert!(!is_basil_or_later("2024-06-20"));
        assert!(!is_basil_or_later("2025-02-24.acacia"));
        assert!(is_basil_or_later("2025-03-31.basil"));
        assert!(is_basil_or_later(API_VERSION));
        assert!(is_basil_or_later("2026-07-29.dahlia"));
        assert!(!is_basil_or_later("bogus"));
    }

    #[test]
    fn versions_are_checked() {
        assert_eq!(parse("2024-06-20").as_deref(), Ok("2024-06-20"));
        assert_eq!(parse(" 2025-09-30.clover ").as_deref(), Ok("2025-09-30.clover"));
        for bad in [
            "",
            "latest",
            "2024-13-01",
            "2025-03-31.",
            "2025-03-31.Basil",
            "2025-03-31.basil\r\nX: y",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
