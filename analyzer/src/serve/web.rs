//! The web page: `analyzer/web/*` embedded in the binary (no CDN, no build step).
//! `GET /` → `index.html`, `/app.js`, `/app.css`. The page holds no data; it reads the API of
//! the same origin, authenticated by the cookie that `POST /login` sets.
//!
//! - `POST /login` (form field `token`, at most [`LOGIN_BODY_MAX`] bytes): the right token
//!   sets the cookie [`api::TOKEN_COOKIE`] (`HttpOnly; SameSite=Strict; Path=/`, `Secure` when
//!   `--external-url` is `https://`; its value is the token in hex) and answers `303` to `./`;
//!   a wrong one `401`.
//! - `POST /logout` clears it.
//! - A token in the URL (`/?token=…`, the old way) is refused with `400`: URLs end up in
//!   proxy logs, history and `Referer` headers.

use super::{App, api};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// Largest `POST /login` body, bytes.
pub const LOGIN_BODY_MAX: usize = 4096;

/// How long the login cookie lasts, seconds (12 h).
const COOKIE_MAX_AGE_S: u32 = 12 * 3600;

const INDEX: &str = include_str!("../../web/index.html");
const JS: &str = include_str!("../../web/app.js");
const CSS: &str = include_str!("../../web/app.css");

/// Content-Security-Policy of the page: own origin only.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// Whether a raw query string has a `token` parameter.
fn has_token_param(q: Option<&str>) -> bool {
    q.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.split('=').next().is_some_and(|k| k == "token"))
    })
}

async fn index(RawQuery(q): RawQuery) -> Response {
    if has_token_param(q.as_deref()) {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "tokens in URLs are refused (they end up in logs and history): open the page \
             without ?token= and use its login form, or send Authorization: Bearer\n",
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX,
    )
        .into_response()
}

/// The `POST /login` form.
#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

fn cookie(app: &App, value: &str, max_age_s: u32) -> String {
    let secure = if app.cfg.external_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}",
        api::TOKEN_COOKIE
    )
}

fn see_page(set_cookie: String) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "./".to_string()),
            (header::SET_COOKIE, set_cookie),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

async fn login(State(app): State<Arc<App>>, Form(f): Form<Login>) -> Response {
    match app.cfg.bearer_token.as_deref() {
        Some(t) if api::ct_eq(f.token.trim().as_bytes(), t.as_bytes()) => {
            see_page(cookie(&app, &api::hex(t.as_bytes()), COOKIE_MAX_AGE_S))
        }
        Some(_) => (StatusCode::UNAUTHORIZED, "wrong token\n").into_response(),
        None => see_page(cookie(&app, "", 0)),
    }
}

async fn logout(State(app): State<Arc<App>>) -> Response {
    see_page(cookie(&app, "", 0))
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

/// The page routes (open: they carry no data) and the login form's endpoints.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/app.js", get(js))
        .route("/app.css", get(css))
        .route(
            "/login",
            post(login).layer(DefaultBodyLimit::max(LOGIN_BODY_MAX)),
        )
        .route("/logout", post(logout))
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_param() {
        assert!(super::has_token_param(Some("token=x")));
        assert!(super::has_token_param(Some("since=1h&token=")));
        assert!(!super::has_token_param(Some("since=1h&tokens=x")));
        assert!(!super::has_token_param(None));
    }
}
