//! The web UI, embedded: `GET /` is the application's page, `GET /assets/<file>` its
//! scripts and styles (content-hashed names, so cached for a year). The files are built
//! from `web/` by `build.rs` and compiled into the binary, so the UI needs nothing at
//! run time. Every answer carries a Content-Security-Policy that allows only this
//! origin's scripts and the API, and forbids framing.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::{ApiError, not_found};

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// What the page may load: its own scripts, styles and API; no framing, no plugins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// The page served when the binary was built without npm.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Goodseed</title>\
<h1>Goodseed</h1><p>This goodseed binary was built without its web UI: npm was not \
installed when it was compiled. Install Node.js 20 or newer with npm and build again \
(<code>cargo build --release -p goodseed-cli</code>).</p><p>The JSON API works: see \
<a href=/api/openapi.json>/api/openapi.json</a>.</p>";

fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn respond(body: &'static [u8], ctype: &'static str, immutable: bool) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(ctype)))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        ));
    res.body(body)
}

/// `GET /` (and `/index.html`): the application. Its state is in the query string.
pub(crate) async fn index() -> HttpResponse {
    match asset("index.html") {
        Some(page) if BUILT => respond(page, "text/html; charset=utf-8", false),
        _ => respond(NOT_BUILT.as_bytes(), "text/html; charset=utf-8", false),
    }
}

/// `GET /assets/<file>`: a built script, style or image.
pub(crate) async fn assets(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.uri().path().trim_start_matches('/');
    // Only names Vite gave: no decoding, no `..`; anything else is simply not there.
    if !path.starts_with("assets/") || path.contains("..") {
        return Err(not_found());
    }
    let body = asset(path).ok_or_else(not_found)?;
    Ok(respond(body, content_type(path), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ui_is_embedded_with_its_assets() {
        assert!(BUILT, "build.rs built no UI: is npm installed?");
        let page = std::str::from_utf8(asset("index.html").expect("index.html embedded"))
            .expect("index.html is UTF-8");
        // Every script and style the page names is embedded.
        let mut named = 0;
        for attr in ["src=\"/", "href=\"/"] {
            for (i, _) in page.match_indices(attr) {
                let rest = &page[i + attr.len()..];
                let name = &rest[..rest.find('"').expect("closing quote")];
                if name.starts_with("assets/") {
                    assert!(asset(name).is_some(), "{name} named by index.html but not embedded");
                    named += 1;
                }
            }
        }
        assert!(named >= 2, "index.html names its script and style: {page}");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("assets/a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("assets/a"), "application/octet-stream");
    }
}
