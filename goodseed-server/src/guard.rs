//! Request checks that run before any handler: URL size, `Host` (DNS rebinding), bearer
//! token, `Origin` of state-changing requests (cross-site request forgery), and the CORS
//! allow-list. goodseed 0.4.0 does none of these (it answers `*` to every origin).

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};

use crate::ServerOptions;

/// The longest request target (path and query) accepted.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// Why a request is refused before reaching a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal { status, message: message.into() }
}

/// The host part of a `Host` header value: `[::1]:8765` → `[::1]`, `a:1` → `a`.
fn host_part(value: &str) -> &str {
    if value.starts_with('[') {
        return value.find(']').map_or(value, |i| &value[..=i]);
    }
    value.rsplit_once(':').map_or(value, |(h, _)| h)
}

/// Loopback names a browser can only reach on this machine.
fn is_loopback_name(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a request. `Ok` carries nothing; the CORS headers are added separately.
pub(crate) fn check(
    options: &ServerOptions,
    method: &Method,
    uri_len: usize,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    if uri_len > MAX_URI_BYTES {
        return Err(refuse(
            StatusCode::URI_TOO_LONG,
            format!("request URL longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());

    // DNS rebinding: a page from a foreign site that renamed itself to our address
    // still sends its own name as Host. With a token, the token protects instead.
    if options.token.is_none()
        && let Some(host) = header(header::HOST)
    {
        let name = host_part(host);
        let allowed = is_loopback_name(name)
            || options.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name));
        if !allowed {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!("host {name:?} is not allowed (serve with --allow-host to add it)"),
            ));
        }
    }

    if let Some(token) = &options.token
        && path.starts_with("/api/")
        && method != Method::OPTIONS
    {
        // The bearer header, or the web UI's cookie: a browser cannot put a header on an
        // EventSource, and the page sets the cookie (SameSite=Strict) from `/?token=`.
        let given = header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get_all(header::COOKIE).find_map(token_cookie));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return Err(refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"));
        }
    }

    // Forged requests: a foreign page can make a browser POST here (even a "simple"
    // text/plain request needs no preflight), but it cannot hide its Origin.
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        if let Some(origin) = header(header::ORIGIN)
            && !origin_allowed(options, origin)
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!("requests that change data are not accepted from origin {origin:?}"),
            ));
        }
        if header(header::ORIGIN).is_none() && header_is(headers, "sec-fetch-site", "cross-site") {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "cross-site requests that change data are refused",
            ));
        }
    }
    Ok(())
}

fn header_is(headers: &HeaderMap, name: &str, value: &str) -> bool {
    headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case(value))
}

/// Whether an origin is on the allow-list: the UI's own origins on this port, the
/// goodseed.ai app, and what the user added.
pub(crate) fn origin_allowed(options: &ServerOptions, origin: &str) -> bool {
    options.allowed_origins.iter().any(|o| o == origin) || own_origin(options, origin)
}

fn own_origin(options: &ServerOptions, origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p),
        _ => return false,
    };
    port.parse::<u16>().is_ok_and(|p| p == options.port) && is_loopback_name(host)
}

/// CORS headers for a response: the origin echoed when allowed, never `*`.
pub(crate) fn cors_headers(options: &ServerOptions, request: &HeaderMap, response: &mut HeaderMap) {
    response.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = request.get(header::ORIGIN) else {
        return;
    };
    if !origin.to_str().is_ok_and(|o| origin_allowed(options, o)) {
        return;
    }
    response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    response.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    response.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    response.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
}

/// The name of the cookie the web UI keeps the token in.
pub(crate) const TOKEN_COOKIE: &str = "goodseed_token";

/// The value of [`TOKEN_COOKIE`] in one `Cookie` header, if there.
fn token_cookie(value: &actix_web::http::header::HeaderValue) -> Option<&str> {
    value.to_str().ok()?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == TOKEN_COOKIE).then_some(value)
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        for (value, host) in [
            ("localhost:8765", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]:8765", "[::1]"),
            ("evil.example:80", "evil.example"),
        ] {
            assert_eq!(host_part(value), host);
        }
        for (host, loopback) in [
            ("localhost", true),
            ("LOCALHOST", true),
            ("app.localhost", true),
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("[::1]", true),
            ("localhost.evil.example", false),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
        ] {
            assert_eq!(is_loopback_name(host), loopback, "{host}");
        }
    }

    #[test]
    fn origins() {
        let options = ServerOptions {
            port: 8765,
            allowed_origins: vec!["https://app.goodseed.ai".into(), "http://my.box:9000".into()],
            ..ServerOptions::default()
        };
        for (origin, ok) in [
            ("http://127.0.0.1:8765", true),
            ("http://localhost:8765", true),
            ("http://[::1]:8765", true),
            ("https://app.goodseed.ai", true),
            ("http://my.box:9000", true),
            ("http://127.0.0.1:9999", false),
            ("https://localhost:8765", false),
            ("http://evil.example", false),
            ("null", false),
            ("http://localhost.evil.example:8765", false),
        ] {
            assert_eq!(origin_allowed(&options, origin), ok, "{origin}");
        }
    }
}
