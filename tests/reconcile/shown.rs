//! What an operator sees of a run: on a terminal, `deferral reconcile` draws a progress bar
//! (off one, plain lines: see `every_missed_event_gets_one_execution_marked_reconciled`); in the
//! console, a run whose process died is shown as interrupted, not as running for ever.

use std::time::{Duration, Instant};

use super::fake_stripe::KEY;
use super::{WAIT, command, fake_listing, server, support};

#[tokio::test]
async fn on_a_terminal_the_command_draws_a_progress_bar() {
    let fake = fake_listing(250, Duration::from_millis(300)).await;
    let app = server(&fake, Duration::ZERO).await;
    // `script` runs it on a pseudo-terminal (stdout and stderr both) and copies what it draws.
    let run = format!(
        "stty cols 120 rows 40; exec {} reconcile --since 2h",
        env!("CARGO_BIN_EXE_deferral")
    );
    let mut cmd = command("script", &app, &fake, Some(KEY));
    cmd.args(["-qec", &run, "/dev/null"]);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("deferral reconcile finishes")
        .expect("run script");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        tty.contains("3 pages read, 250 events seen, 250 new executions"),
        "{tty}"
    );
    // The bar: filled as far back as the listing has come (half the window after page one),
    // and the page's counts with the time reached.
    assert!(tty.contains("[==="), "no bar drawn: {tty:?}");
    assert!(
        tty.contains("page 1: 100 seen, 100 new, back to "),
        "no page in the bar: {tty:?}"
    );
    assert!(
        !tty.contains("page 1: 100 seen, 100 new\r\n"),
        "plain lines on a terminal: {tty:?}"
    );
    app.stop().await;
}

/// Runs `statement` on the app's database (either backend).
async fn execute(database_url: &str, statement: &str) {
    if support::backend() == "postgres" {
        let db = sqlx::PgPool::connect(database_url).await.unwrap();
        sqlx::query(statement).execute(&db).await.unwrap();
        db.close().await;
    } else {
        let db = sqlx::SqlitePool::connect(database_url).await.unwrap();
        sqlx::query(statement).execute(&db).await.unwrap();
        db.close().await;
    }
}

#[tokio::test]
async fn a_run_whose_process_died_shows_as_interrupted_not_running() {
    const INTERRUPTED: &str = "interrupted: its process stopped before it finished";
    let fake = fake_listing(250, Duration::from_millis(500)).await;
    let app = server(&fake, Duration::ZERO).await;
    let mut child = command(env!("CARGO_BIN_EXE_deferral"), &app, &fake, Some(KEY))
        .arg("reconcile")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the deferral binary");
    // It records each page as it goes.
    let deadline = Instant::now() + WAIT;
    let run = loop {
        let runs = app.store.recent_sweeps(None, 1).await.unwrap();
        if let Some(run) = runs.into_iter().find(|r| r.pages >= 1) {
            break run;
        }
        assert!(Instant::now() < deadline, "no page recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((run.finished_at, run.seen, run.added), (None, 100, 100), "{run:?}");
    assert!(run.progressed_at.is_some(), "{run:?}");
    let session = app.log_in().await;
    let (status, page) = app.page("/", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains("Last reconciliation"), "{page}");
    assert!(!page.contains(INTERRUPTED), "a live run shown as interrupted: {page}");

    // Killed mid-run: nothing records its end. An hour on, the console says what happened.
    child.kill().await.unwrap();
    let hour = 3_600_000;
    execute(
        &app.database_url,
        &format!(
            "UPDATE reconcile_sweeps SET started_at = started_at - {hour}, progressed_at = progressed_at - {hour}"
        ),
    )
    .await;
    let (_, page) = app.page("/", &session).await;
    assert!(page.contains(INTERRUPTED), "{page}");
    assert!(page.contains("last-sweep failed"), "{page}");
    app.stop().await;
}
