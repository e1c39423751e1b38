//! Request checks that run before any handler: URL size, `Host` (DNS rebinding), bearer
//! token (the server's own, or for the cloud API under `/api/v1` any key the server
//! knows), `Origin` of state-changing requests (cross-site request forgery), and the CORS
//! allow-list. goodseed 0.4.0 does none of these (it answers `*` to every origin).

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};

use crate::ServerOptions;
use crate::cloud::{self, Caller, CloudError};

/// The longest request target (path and query) accepted.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// Why a request is refused before reaching a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// The cloud API's answer, when the cloud API's key check refused the request.
    pub(crate) cloud: Option<CloudError>,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal { status, message: message.into(), cloud: None }
}

impl Refusal {
    /// The answer: `{"error": …}`, or under `/api/v1` the cloud API's error shape, which
    /// goodseed 0.4.0's client reads.
    pub(crate) fn response(self, routed_path: &str) -> actix_web::HttpResponse {
        use actix_web::ResponseError as _;
        match self.cloud {
            Some(c) => c.error_response(),
            None if cloud::is_cloud_path(routed_path) => {
                let (code, title) = match self.status.as_u16() {
                    400 => ("Request.Invalid", "Invalid request"),
                    403 => ("Request.Forbidden", "Request refused"),
                    414 => ("Request.TooLarge", "Request too large"),
                    _ => ("Request.Refused", "Request refused"),
                };
                CloudError::new(self.status, code, title, self.message).error_response()
            }
            None => crate::error::error_response(self.status, &self.message),
        }
    }
}

/// The host part of a `Host` header value (`[::1]:8765` → `[::1]`, `a:1` → `a`), or
/// why the value is not `host [":" port]` as RFC 9110 defines it. We are stricter than
/// the RFC on one point: a `:` must be followed by a port (an empty port is refused).
fn host_part(value: &str) -> Result<&str, &'static str> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']').ok_or("an IPv6 address without its closing `]`")?;
        let (host, rest) = value.split_at(end + 1);
        if host[1..end].parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not an IPv6 address between `[` and `]`");
        }
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return Err("text after the `]` of an IPv6 address"),
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !host.starts_with('[') && (host.is_empty() || !host.chars().all(name_char)) {
        return Err("a host name holds only letters, digits, `-`, `.` and `_`");
    }
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().map_or(true, |p| p > u32::from(u16::MAX)) {
            return Err("the port must be a number from 0 to 65535");
        }
    }
    Ok(host)
}

/// Loopback names a browser can only reach on this machine.
fn is_loopback_name(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a path is one of the UI's static files, the only answers a token does not
/// guard: the page and its assets hold no data (the page asks for the token).
fn is_public(routed_path: &str) -> bool {
    routed_path == "/" || routed_path == "/index.html" || routed_path.starts_with("/assets/")
}

/// Checks a request. `routed_path` is the path exactly as the router matches it
/// (percent-decoded but for `%`, `/` and `+`), so what is protected is decided on the
/// same text that picks the handler: `/%61pi/runs` is `/api/runs` here too.
/// `Ok` carries the caller's access for a cloud call (every one needs a key, even on
/// loopback), `None` for the rest; the CORS headers are added separately.
pub(crate) fn check(
    options: &ServerOptions,
    method: &Method,
    uri_len: usize,
    routed_path: &str,
    headers: &HeaderMap,
) -> Result<Option<Caller>, Refusal> {
    if uri_len > MAX_URI_BYTES {
        return Err(refuse(
            StatusCode::URI_TOO_LONG,
            format!("request URL longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    check_host(options, headers)?;

    let mut access = None;
    if cloud::is_cloud_path(routed_path) {
        if method != Method::OPTIONS {
            let resolved =
                cloud::identify(headers, options.token.as_deref(), options.tokens.as_ref())
                    .map_err(|e| Refusal {
                        status: e.status,
                        message: e.to_string(),
                        cloud: Some(e),
                    })?;
            access = Some(resolved);
        }
    } else if let Some(token) = &options.token
        && method != Method::OPTIONS
        && !is_public(routed_path)
    {
        // The bearer header, or the web UI's cookie: a browser cannot put a header on an
        // EventSource, and the page sets the cookie (SameSite=Strict) from `/?token=`.
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or_else(|| headers.get_all(header::COOKIE).find_map(token_cookie));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return Err(refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"));
        }
    }

    // Forged requests: a foreign page can make a browser POST here (even a "simple"
    // text/plain request needs no preflight), but it cannot hide its Origin. Every
    // Origin header counts: a second one, or one that is not text, is refused.
    // A WebSocket is opened by a GET, but a foreign page must not open one with the
    // user's cookie (cross-site WebSocket hijacking): its Origin is checked the same way.
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || routed_path == "/api/ws";
    if changes_state {
        let mut origins = headers.get_all(header::ORIGIN);
        match (origins.next(), origins.next()) {
            (Some(_), Some(_)) => {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "requests that change data must carry at most one Origin header",
                ));
            }
            (Some(origin), None) => {
                let text = origin.to_str().unwrap_or("");
                if !origin_allowed(options, text) {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        format!(
                            "requests that change data are not accepted from origin {:?}",
                            String::from_utf8_lossy(origin.as_bytes())
                        ),
                    ));
                }
            }
            (None, _) => {
                if header_is(headers, "sec-fetch-site", "cross-site") {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "cross-site requests that change data are refused",
                    ));
                }
            }
        }
    }
    Ok(access)
}

/// DNS rebinding: a page from a foreign site that renamed itself to our address still
/// sends its own name as `Host`. Checked in every mode, a token's too: exactly one
/// well-formed `Host` naming loopback or a name the server was told to accept.
fn check_host(options: &ServerOptions, headers: &HeaderMap) -> Result<(), Refusal> {
    let mut values = headers.get_all(header::HOST);
    let value = match (values.next(), values.next()) {
        (None, _) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "a Host header is required (HTTP/1.0 requests must send one too)",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(refuse(StatusCode::BAD_REQUEST, "more than one Host header"));
        }
        (Some(value), None) => value,
    };
    let text = value
        .to_str()
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "the Host header is not plain ASCII text"))?;
    let name = host_part(text).map_err(|why| {
        refuse(StatusCode::BAD_REQUEST, format!("bad Host header {text:?}: {why}"))
    })?;
    let allowed = is_loopback_name(name)
        || options.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name));
    if !allowed {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("host {name:?} is not allowed (serve with --allow-host to add it)"),
        ));
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
    let mut origins = request.get_all(header::ORIGIN);
    let (Some(origin), None) = (origins.next(), origins.next()) else {
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

/// The value of [`TOKEN_COOKIE`] in one `Cookie` header, if there, percent-decoded
/// (the page stores it with `encodeURIComponent`).
fn token_cookie(value: &actix_web::http::header::HeaderValue) -> Option<String> {
    value.to_str().ok()?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == TOKEN_COOKIE).then(|| crate::query::percent_decode(value, false))
    })
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
            ("[::1]", "[::1]"),
            ("evil.example:80", "evil.example"),
            ("my_box:0", "my_box"),
            ("a:65535", "a"),
        ] {
            assert_eq!(host_part(value), Ok(host), "{value}");
        }
        for value in [
            "127.0.0.1:8765@evil.com",
            "127.0.0.1:99999",
            "127.0.0.1:",
            "127.0.0.1:+80",
            "127.0.0.1:8765:1",
            ":8765",
            "",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[evil.com]:80",
            "user@127.0.0.1",
            "127.0.0.1 ",
            "127.0.0.1/x",
        ] {
            assert!(host_part(value).is_err(), "{value:?} was accepted");
        }
        for (path, public) in [
            ("/", true),
            ("/index.html", true),
            ("/assets/index.js", true),
            ("/api/runs", false),
            ("/assets", false),
            ("//", false),
            ("/index.html/x", false),
            ("", false),
        ] {
            assert_eq!(is_public(path), public, "{path}");
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
