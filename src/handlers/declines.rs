//! Why one try failed: Stripe's codes grouped into what an application tells the customer,
//! and which of the codes the events of one try carry decides.
//!
//! The three events of a try can each say why it failed: the charge (`outcome.reason`,
//! `failure_code`) and the payment intent's `last_payment_error` (`decline_code`, `code`).
//! Stripe's guide to declines (docs.stripe.com/declines) sends integrations to the charge's
//! `outcome` for the cause of every failure; for an issuer decline `outcome.reason` is the
//! issuer's decline code, the one the payment error repeats as `decline_code`, while
//! `failure_code` and `code` are Stripe's error codes (`card_declined` says only that the card
//! was declined). So a decline code beats an error code, and the charge beats the payment
//! error, whichever event arrives first: each reason is stored with its [`Decline::reason`]
//! rank, and a merge keeps the reason of the highest rank seen.

/// A Stripe code's group, or `None` for a code that says nothing the customer can act on
/// (Radar's `highest_risk_level`, `rule`, a code Stripe adds later).
fn group(code: &str) -> Option<&'static str> {
    Some(match code {
        "insufficient_funds" => "insufficient_funds",
        "expired_card" => "expired_card",
        "authentication_required" | "authentication_not_handled" | "payment_intent_authentication_failure" => {
            "authentication_required"
        }
        "do_not_honor"
        | "restricted_card"
        | "transaction_not_allowed"
        | "not_permitted"
        | "security_violation"
        | "service_not_allowed"
        | "stop_payment_order"
        | "revocation_of_authorization"
        | "revocation_of_all_authorizations"
        | "currency_not_supported"
        | "card_not_supported" => "bank_restriction",
        "card_declined"
        | "generic_decline"
        | "call_issuer"
        | "fraudulent"
        | "lost_card"
        | "stolen_card"
        | "pickup_card"
        | "card_velocity_exceeded"
        | "withdrawal_count_limit_exceeded"
        | "incorrect_cvc"
        | "invalid_cvc"
        | "incorrect_number"
        | "invalid_account"
        | "try_again_later" => "card_declined",
        _ => return None,
    })
}

/// Stripe's decline codes, grouped into what an application tells the customer: the decline
/// code (the issuer's answer) first, then the failure code.
pub fn decline_reason(decline_code: Option<&str>, failure_code: Option<&str>) -> &'static str {
    decline_code
        .and_then(group)
        .or_else(|| failure_code.and_then(group))
        .unwrap_or("other")
}

/// Why one try failed, as one event's object says it.
#[derive(Default)]
pub(super) struct Decline {
    pub charge: Option<String>,
    /// Whether read from the charge itself (else from a payment intent's `last_payment_error`).
    pub from_charge: bool,
    /// The issuer's answer: the charge's `outcome.reason`, the payment error's `decline_code`.
    pub decline_code: Option<String>,
    /// Stripe's: the charge's `failure_code`, the payment error's `code`.
    pub failure_code: Option<String>,
    pub message: Option<String>,
}

/// The ranks of the fields a reason can come from; `other` (no field gives one) is 0.
const CHARGE_OUTCOME: i64 = 4;
const ERROR_DECLINE_CODE: i64 = 3;
const CHARGE_FAILURE_CODE: i64 = 2;
const ERROR_CODE: i64 = 1;

impl Decline {
    /// The reason and the rank of the field it came from (higher is more telling).
    pub fn reason(&self) -> (&'static str, i64) {
        let (decline, failure) = if self.from_charge {
            (CHARGE_OUTCOME, CHARGE_FAILURE_CODE)
        } else {
            (ERROR_DECLINE_CODE, ERROR_CODE)
        };
        [(&self.decline_code, decline), (&self.failure_code, failure)]
            .into_iter()
            .find_map(|(code, rank)| code.as_deref().and_then(group).map(|r| (r, rank)))
            .unwrap_or(("other", 0))
    }

    pub fn code(&self) -> Option<String> {
        self.decline_code.clone().or_else(|| self.failure_code.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_codes_fall_into_a_small_set() {
        assert_eq!(
            decline_reason(Some("insufficient_funds"), Some("card_declined")),
            "insufficient_funds"
        );
        assert_eq!(decline_reason(None, Some("expired_card")), "expired_card");
        assert_eq!(
            decline_reason(Some("do_not_honor"), Some("card_declined")),
            "bank_restriction"
        );
        assert_eq!(
            decline_reason(Some("transaction_not_allowed"), None),
            "bank_restriction"
        );
        assert_eq!(
            decline_reason(Some("generic_decline"), Some("card_declined")),
            "card_declined"
        );
        assert_eq!(
            decline_reason(None, Some("authentication_required")),
            "authentication_required"
        );
        assert_eq!(
            decline_reason(Some("something_new"), Some("card_declined")),
            "card_declined"
        );
        assert_eq!(decline_reason(Some("something_new"), None), "other");
        assert_eq!(decline_reason(None, None), "other");
    }

    fn decline(from_charge: bool, decline_code: Option<&str>, failure_code: Option<&str>) -> Decline {
        Decline {
            from_charge,
            decline_code: decline_code.map(String::from),
            failure_code: failure_code.map(String::from),
            ..Decline::default()
        }
    }

    #[test]
    fn a_decline_code_outranks_an_error_code_and_the_charge_outranks_the_payment_error() {
        let outcome = decline(true, Some("do_not_honor"), Some("card_declined")).reason();
        let error_decline = decline(false, Some("insufficient_funds"), Some("card_declined")).reason();
        // A Radar block: the outcome's reason is no decline code, the failure code speaks.
        let failure_code = decline(true, Some("highest_risk_level"), Some("card_declined")).reason();
        let error_code = decline(false, None, Some("expired_card")).reason();
        assert_eq!(outcome, ("bank_restriction", CHARGE_OUTCOME));
        assert_eq!(error_decline, ("insufficient_funds", ERROR_DECLINE_CODE));
        assert_eq!(failure_code, ("card_declined", CHARGE_FAILURE_CODE));
        assert_eq!(error_code, ("expired_card", ERROR_CODE));
        assert!(outcome.1 > error_decline.1 && error_decline.1 > failure_code.1 && failure_code.1 > error_code.1);
        assert_eq!(decline(true, None, None).reason(), ("other", 0));
        assert_eq!(decline(false, Some("rule"), None).reason(), ("other", 0));
    }
}
