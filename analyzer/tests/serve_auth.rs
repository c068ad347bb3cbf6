//! `serve` fails closed (issue 16): no bearer token means loopback only unless
//! `--insecure-no-auth`; the page's login form sets an HttpOnly cookie instead of taking the
//! token from the URL; a token in a URL is refused everywhere.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "l0gin-token";
const FORM: &str = "application/x-www-form-urlencoded";

/// Runs `serve` with `args` until it exits (at most 30 s); `(exit code, stderr)`.
fn serve_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("timeout")
        .arg("30")
        .arg(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args(["serve", "--clickhouse-url", "http://127.0.0.1:9"])
        .args(args)
        .env_remove("MCPTAP_ANALYZER_TOKEN")
        .env_remove("MCPTAP_ANALYZER_LISTEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_token_refuses_a_non_loopback_listen() {
    let t = Instant::now();
    // 192.0.2.1 (TEST-NET-1) is on no interface: the check must refuse before binding.
    for listen in ["192.0.2.1:0", "0.0.0.0:0", "[::]:0"] {
        let (code, err) = serve_exit(&["--listen", listen]);
        assert_eq!(code, Some(1), "{listen}: {err}");
        assert!(
            err.contains(&format!("refusing to listen on {listen}"))
                || err.contains("refusing to listen on"),
            "{listen}: {err}"
        );
        assert!(err.contains("--insecure-no-auth"), "{err}");
    }
    // The default --listen (0.0.0.0:8080) is refused too.
    let (code, err) = serve_exit(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refusing to listen on 0.0.0.0:8080"), "{err}");
    // --insecure-no-auth passes the check: it gets as far as binding (which fails here).
    let (code, err) = serve_exit(&["--listen", "192.0.2.1:0", "--insecure-no-auth"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("binding 192.0.2.1:0"), "{err}");
    assert!(!err.contains("refusing"), "{err}");
    // A token with --insecure-no-auth is a usage error.
    let (code, _) = serve_exit(&["--bearer-token", "x", "--insecure-no-auth"]);
    assert_eq!(code, Some(2));
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_cookie_replaces_the_token_in_the_url() {
    let (url, database) = common::serve::loaded("auth").await;
    let srv = common::serve::start(&url, &database, &["--bearer-token", TOKEN]);
    let b = &srv.base;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let status = |r: reqwest::Response| r.status().as_u16();

    // The token in a URL is refused: by the page (400) and by the API (401).
    let r = http
        .get(format!("{b}/?token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("tokens in URLs are refused")
    );
    let r = http
        .get(format!("{b}/api/v1/readiness?token={TOKEN}"))
        .send();
    assert_eq!(status(r.await.unwrap()), 401);
    assert_eq!(status(http.get(format!("{b}/")).send().await.unwrap()), 200);

    // A wrong token sets no cookie.
    let r = http
        .post(format!("{b}/login"))
        .header("content-type", FORM)
        .body("token=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    // An oversized body is refused before the comparison.
    let big = "x".repeat(10_000);
    let r = http
        .post(format!("{b}/login"))
        .header("content-type", FORM)
        .body(format!("token={big}"));
    assert_eq!(status(r.send().await.unwrap()), 413);

    // The right token: 303 to the page with an HttpOnly, SameSite=Strict cookie.
    let r = http
        .post(format!("{b}/login"))
        .header("content-type", FORM)
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "./");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        !set.contains(TOKEN),
        "the cookie does not carry the token in clear: {set}"
    );
    let pair = set.split(';').next().unwrap().to_string();
    assert!(pair.starts_with("mcptap_analyzer_token="), "{set}");

    // The cookie opens the API; a forged one does not.
    let r = http
        .get(format!("{b}/api/v1/readiness"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["readiness"]["verdict"], "not_ready");
    let r = http
        .get(format!("{b}/api/v1/readiness"))
        .header("cookie", format!("mcptap_analyzer_token={TOKEN}"))
        .send();
    assert_eq!(status(r.await.unwrap()), 401);
    // The header still works.
    let r = http
        .get(format!("{b}/api/v1/readiness"))
        .bearer_auth(TOKEN)
        .send();
    assert_eq!(status(r.await.unwrap()), 200);

    // Logout clears the cookie.
    let r = http.post(format!("{b}/logout")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}
