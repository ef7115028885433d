//! Who may see the dashboard and who may command through it.
//!
//! - **Access**: on loopback, anyone who can reach the port. With
//!   `--token` every request needs it: `Authorization: Bearer TOKEN`, or
//!   the cookie set by opening any page once with `?token=TOKEN` (the
//!   dashboard answers with the cookie, `HttpOnly; SameSite=Strict`, and
//!   a redirect to the same page without the token in its address). The
//!   token is never written into a page.
//! - **CSRF**: a command form carries a random per-process value, and a
//!   command is refused unless it comes back, and unless the browser says
//!   the request is same-origin (`Origin` matches `Host`, `Sec-Fetch-Site`
//!   is `same-origin` when sent).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::Read;

/// The cookie that carries the access token.
pub const COOKIE: &str = "geolb_dashboard";

/// Compares two secrets in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A random secret of 32 bytes from the kernel, hex encoded.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // Never reached on Linux; still better than a constant.
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token a request carries (bearer header or cookie).
pub fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// What to do with a request when the dashboard has `token`.
pub enum Access {
    /// Serve it.
    Allowed,
    /// Set the cookie and send the browser to `location`.
    SetCookie {
        /// Where to.
        location: String,
    },
    /// Refuse it.
    Denied,
}

/// Decides on a request to `path` with `query` and `headers`.
pub fn check(token: &str, path: &str, query: Option<&str>, headers: &HeaderMap) -> Access {
    if presented(headers).is_some_and(|t| same(&t, token)) {
        return Access::Allowed;
    }
    let given = query.and_then(|q| {
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(
            &format!("/?{q}").parse().ok()?,
        )
        .ok()
        .and_then(|q| q.0.get("token").cloned())
    });
    match given {
        Some(t) if same(&t, token) => Access::SetCookie {
            location: path.to_string(),
        },
        _ => Access::Denied,
    }
}

/// The answer that sets the cookie and redirects.
pub fn set_cookie(token: &str, location: &str) -> Response {
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether a state-changing request is same-origin and carries `csrf`.
pub fn csrf_ok(headers: &HeaderMap, form_value: &str, csrf: &str) -> Result<(), &'static str> {
    if !same(form_value, csrf) {
        return Err("the form's CSRF value is missing or stale; reload the page and try again");
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err("a command must come from the dashboard's own page");
        }
    }
    if let (Some(origin), Some(host)) = (text(header::ORIGIN), text(header::HOST)) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin_host != host {
            return Err("a command must come from the dashboard's own page");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn secrets_compare_and_differ() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "ab"));
        let (a, b) = (secret(), secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn the_token_comes_by_header_cookie_or_once_by_query() {
        let t = "s3cret";
        assert!(matches!(
            check(
                t,
                "/",
                None,
                &headers(&[("authorization", "Bearer s3cret")])
            ),
            Access::Allowed
        ));
        assert!(matches!(
            check(
                t,
                "/",
                None,
                &headers(&[("cookie", "a=b; geolb_dashboard=s3cret")])
            ),
            Access::Allowed
        ));
        assert!(
            matches!(check(t, "/runs", Some("token=s3cret"), &HeaderMap::new()), Access::SetCookie { location } if location == "/runs")
        );
        assert!(matches!(
            check(t, "/", Some("token=nope"), &HeaderMap::new()),
            Access::Denied
        ));
        assert!(matches!(
            check(t, "/", None, &headers(&[("cookie", "geolb_dashboard=x")])),
            Access::Denied
        ));
    }

    #[test]
    fn commands_must_be_same_origin_with_the_form_value() {
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(csrf_ok(&ok, "v", "v").is_ok());
        assert!(csrf_ok(&ok, "w", "v").is_err());
        assert!(csrf_ok(&ok, "", "v").is_err());
        let cross = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(csrf_ok(&cross, "v", "v").is_err());
        let site = headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]);
        assert!(csrf_ok(&site, "v", "v").is_err());
    }
}
