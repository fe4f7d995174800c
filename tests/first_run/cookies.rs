//! Session cookies of the real binary, configured as an operator would: `deferral dev` serves
//! plain HTTP, so its cookies leave `Secure` off (a browser would not send them back
//! otherwise); `deferral serve` sets `Secure` unless `DEFERRAL_INSECURE_COOKIES=1`.

use super::{SECRET, Server};

const PASSWORD: &str = "cookie-test-password";

/// The `Set-Cookie` of a successful login.
async fn session_cookie(server: &Server) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/console/fn/login", server.url))
        .form(&[("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("deferral_session="), "{cookie}");
    cookie
}

fn is_secure(cookie: &str) -> bool {
    cookie
        .split(';')
        .any(|attribute| attribute.trim().eq_ignore_ascii_case("secure"))
}

#[tokio::test]
async fn dev_and_insecure_cookies_leave_secure_off_while_serve_keeps_it() {
    let password = ("DEFERRAL_CONSOLE_PASSWORD", PASSWORD);
    let webhook_secret = ("STRIPE_WEBHOOK_SECRET", SECRET);
    for (args, env, secure) in [
        ("dev", vec![password], false),
        ("serve", vec![password, webhook_secret], true),
        (
            "serve",
            vec![password, webhook_secret, ("DEFERRAL_INSECURE_COOKIES", "1")],
            false,
        ),
    ] {
        let (url, dir) = super::support::fresh_database().await;
        let server = Server::start(dir.path(), &url, &[args], &env).await;
        let cookie = session_cookie(&server).await;
        assert_eq!(is_secure(&cookie), secure, "deferral {args} with {env:?}: {cookie}");
    }
}
