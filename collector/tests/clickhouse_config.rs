//! Malformed or wrong ClickHouse configuration gives a clear message: a bad URL,
//! an unreachable endpoint, wrong credentials, a missing table.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};
use support::*;

#[test]
fn bad_url_is_rejected_before_reading() {
    let tmp = TempDir::new("cfg-url");
    for (url, want) in [
        ("not a url", "is not a URL: expected http://HOST:PORT"),
        ("http://:8123", "no host"),
        ("http://h:70000", "bad port"),
    ] {
        let (code, _, err) = run(collector()
            .arg("--pcap")
            .arg(fixture("cutover.pcap"))
            .args(["--clickhouse-url", url])
            .arg("--spool-dir")
            .arg(tmp.path()));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want), "{url}: {err}");
    }
    let (code, _, err) = run(collector().args(["schema", "--clickhouse-url", "not a url"]));
    assert_eq!(code, 1);
    assert!(err.contains("is not a URL"), "{err}");
}

#[test]
fn unreachable_endpoint_is_retried_then_spooled_and_reported() {
    let tmp = TempDir::new("cfg-down");
    let port = free_port(); // nothing listens there any more
    let url = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    let (code, _, err) = run(collector()
        .arg("--pcap")
        .arg(fixture("cutover.pcap"))
        .args([
            "--clickhouse-url",
            &url,
            "--shutdown-grace",
            "1.5",
            "--no-summary",
        ])
        .arg("--spool-dir")
        .arg(tmp.path()));
    assert!(t.elapsed() < Duration::from_secs(20));
    // Exit 4: not delivered; the spans wait in the spool for the next run.
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("ClickHouse not reachable now"), "{err}");
    assert!(err.contains("67 spans queued, 0 sent"), "{err}");
    assert!(err.contains("67 spooled, 0 dropped"), "{err}");
    assert!(
        err.contains("NOT everything was delivered") && err.contains("kept in the spool"),
        "{err}"
    );
    let files = spool_files(&tmp.path().join("clickhouse"));
    assert_eq!(files, 1);
    let retries: u64 = err
        .split(" retries")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(retries >= 2, "{err}");

    // The schema subcommand says where it failed.
    let (code, _, err) = run(collector().args(["schema", "--clickhouse-url", &url]));
    assert_eq!(code, 1);
    assert!(
        err.contains("Connection refused") && err.contains("is ClickHouse running"),
        "{err}"
    );
}

#[test]
fn wrong_credentials_and_missing_table_are_fatal_and_clear() {
    let (front, user, good) = match std::env::var("CLICKHOUSE_URL") {
        Ok(u) if !u.is_empty() => (
            Front::start(),
            std::env::var("CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
            std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default(),
        ),
        _ => (
            Front::start_own(&["--user", "mcptap", "--password", "s3cret"]),
            "mcptap".to_owned(),
            "s3cret".to_owned(),
        ),
    };
    let tmp = TempDir::new("cfg-auth");
    let db = unique_db("auth");

    // Schema with the right credentials works.
    let (code, out, err) = run(collector().args([
        "schema",
        "--clickhouse-url",
        &front.url,
        "--database",
        &db,
        "--user",
        &user,
        "--password",
        &good,
    ]));
    assert_eq!(code, 0, "{out}{err}");

    // Wrong password: refused at start-up with the server's code and a hint; no retry loop.
    let t = Instant::now();
    let (code, _, err) = run(
        replay_into(&front.url, &db, &fixture("cutover.pcap"), tmp.path()).args([
            "--clickhouse-user",
            &user,
            "--clickhouse-password",
            "wrong",
        ]),
    );
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Code: 516") && err.contains("AUTHENTICATION_FAILED"),
        "{err}"
    );
    assert!(
        err.contains("check --clickhouse-user/--clickhouse-password"),
        "{err}"
    );
    // The same through the environment, for the schema subcommand.
    let (code, _, err) = run(collector()
        .args(["schema", "--clickhouse-url", &front.url, "--database", &db])
        .env("CLICKHOUSE_USER", &user)
        .env("CLICKHOUSE_PASSWORD", "wrong"));
    assert_eq!(code, 1);
    assert!(err.contains("516"), "{err}");

    // Missing table: fatal at start-up, pointing at the schema subcommand.
    let (code, _, err) = run(
        replay_into(&front.url, &db, &fixture("cutover.pcap"), tmp.path())
            .args(["--clickhouse-table", "nope"])
            .args(["--clickhouse-user", &user, "--clickhouse-password", &good]),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("does not exist: run `mcptap-collector schema"),
        "{err}"
    );

    // Right credentials, through the environment: every span delivered.
    let (code, _, err) = run(collector()
        .arg("--pcap")
        .arg(fixture("cutover.pcap"))
        .arg("--no-summary")
        .arg("--spool-dir")
        .arg(tmp.path())
        .env("CLICKHOUSE_URL", &front.url)
        .env("CLICKHOUSE_DATABASE", &db)
        .env("CLICKHOUSE_USER", &user)
        .env("CLICKHOUSE_PASSWORD", &good));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("67 sent"), "{err}");
    let (status, body) = http_query(
        &front.url,
        &format!("SELECT count() FROM {db}.otel_traces"),
        Some((&user, &good)),
    );
    assert_eq!((status, body.as_str()), (200, "67\n"));
    if front.external {
        http_query(
            &front.url,
            &format!("DROP DATABASE IF EXISTS {db}"),
            Some((&user, &good)),
        );
    }
}
