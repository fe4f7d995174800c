//! `deferral demo`: a fresh database filled with variety through the real ingest and executor,
//! and a database that already holds executions left alone unless asked.

use super::{deferral, output, support};

/// One number from the database, whichever backend it is.
async fn scalar(url: &str, sql: &str) -> i64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

#[tokio::test]
async fn demo_fills_a_fresh_database_with_variety_and_only_a_fresh_one() {
    let (url, dir) = support::fresh_database().await;
    let (out, stdout, stderr) = output(deferral(dir.path()).args(["demo", "--database-url", &url])).await;
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("executions stored"), "{stdout}");

    let count = |sql: &'static str| scalar(&url, sql);
    let total = count("SELECT COUNT(*) FROM executions").await;
    assert!((200..=600).contains(&total), "{total}");
    for state in ["succeeded", "failed", "scheduled", "cancelled"] {
        let sql = format!("SELECT COUNT(*) FROM executions WHERE state = '{state}'");
        assert!(scalar(&url, &sql).await > 0, "no {state} execution");
    }
    assert!(count("SELECT COUNT(DISTINCT event_type) FROM executions").await >= 15);
    assert_eq!(count("SELECT COUNT(DISTINCT api_version) FROM executions").await, 2);
    assert_eq!(count("SELECT COUNT(DISTINCT livemode) FROM executions").await, 2);
    // Retried and succeeded; failed after real-looking Stripe errors; waiting for a retry.
    assert!(count("SELECT COUNT(*) FROM executions WHERE state = 'succeeded' AND attempts > 1").await > 0);
    assert!(count("SELECT COUNT(*) FROM executions WHERE state = 'failed' AND last_error LIKE 'Stripe answered 404 resource_missing%'").await > 0);
    assert!(count("SELECT COUNT(*) FROM executions WHERE state = 'failed' AND attempts = 8").await > 0);
    assert!(count("SELECT COUNT(*) FROM executions WHERE state = 'scheduled' AND attempts > 0").await > 0);
    assert!(count("SELECT COUNT(*) FROM executions WHERE state = 'scheduled' AND attempts = 0").await > 0);
    assert!(count("SELECT COUNT(*) FROM attempts").await > total);
    assert!(count("SELECT COUNT(*) FROM executions WHERE result LIKE 'skipped: no handler for %'").await > 0);
    // The records the handlers kept.
    assert!(count("SELECT COUNT(*) FROM disputes WHERE hold").await > 0);
    assert!(count("SELECT COUNT(DISTINCT reason) FROM payment_failures").await >= 4);
    assert!(count("SELECT COUNT(*) FROM customers WHERE deleted").await > 0);
    assert!(count("SELECT COUNT(DISTINCT kind) FROM notifications").await == 4);

    // A database with executions is left alone, unless asked.
    let (out, _, stderr) = output(deferral(dir.path()).args(["demo", "--database-url", &url])).await;
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("already holds {total} executions")) && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM executions").await, total);
    let (out, _, stderr) =
        output(deferral(dir.path()).args(["demo", "--database-url", &url, "--force", "--customers", "2"])).await;
    assert!(out.status.success(), "{stderr}");
    assert!(scalar(&url, "SELECT COUNT(*) FROM executions").await > total);
}

/// The demo's events enter as a delivered webhook's do and run in the real executor, so the
/// server's settings apply to them: the allow-list of types, the tries per execution (the
/// executor's own decision ends the scripted failures); its cancellations are operator actions,
/// on record.
#[tokio::test]
async fn demo_goes_through_the_real_ingest_and_executor() {
    let (url, dir) = support::fresh_database().await;
    let (out, stdout, stderr) = output(
        deferral(dir.path())
            .args(["demo", "--database-url", &url, "--customers", "12"])
            .env("DEFERRAL_MAX_ATTEMPTS", "3"),
    )
    .await;
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("executions stored"), "{stdout}");
    let count = |sql: &'static str| scalar(&url, sql);
    assert!(count("SELECT COUNT(*) FROM executions").await > 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM executions WHERE max_attempts <> 3").await,
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM executions WHERE attempts > 3").await, 0);
    assert!(
        count("SELECT COUNT(*) FROM executions WHERE state = 'failed' AND attempts = 3 AND last_error LIKE '%(attempt 3 of 3, no tries left)'").await > 0
    );
    assert!(count("SELECT COUNT(*) FROM audit_log WHERE role = 'demo' AND action = 'cancel'").await > 0);

    let (url, dir) = support::fresh_database().await;
    let (out, stdout, stderr) = output(
        deferral(dir.path())
            .args(["demo", "--database-url", &url, "--customers", "6"])
            .env("DEFERRAL_EVENT_TYPES", "customer.created,invoice.paid"),
    )
    .await;
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("ignored: their types are not in DEFERRAL_EVENT_TYPES"),
        "{stdout}"
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT COUNT(*) FROM executions WHERE event_type NOT IN ('customer.created', 'invoice.paid')"
        )
        .await,
        0
    );
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM executions").await, 12);
}
