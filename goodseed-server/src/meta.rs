//! The server's own endpoints, which goodseed 0.4.0 does not have: `GET /api/health`,
//! `GET /api/version` and `GET /api/openapi.json`, the description of the whole API
//! (`openapi.json`, served as written; `tests/it/openapi.rs` checks it against the real
//! server so it cannot drift).

use std::path::PathBuf;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use crate::json::Json;

/// The OpenAPI 3.1 document of the whole API.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// What the API calls itself in `GET /api/version`.
pub(crate) const API: &str = "goodseed-0.4.0-compatible";

/// The data directory `GET /api/health` reports on (never by its path); `None` when
/// whoever embeds the server did not say.
#[derive(Debug, Clone, Default)]
pub(crate) struct DataDir(pub(crate) Option<PathBuf>);

/// Whether the data directory is there: `None` when unknown.
fn health_json(data_directory: Option<bool>) -> String {
    let mut j = Json::default();
    j.begin_object().key("status").str("ok").key("data_directory").str(match data_directory {
        Some(true) => "ok",
        Some(false) => "missing",
        None => "unknown",
    });
    j.end_object();
    j.finish()
}

fn version_json() -> String {
    let mut j = Json::default();
    j.begin_object()
        .key("name")
        .str("goodseed")
        .key("version")
        .str(env!("CARGO_PKG_VERSION"))
        .key("api")
        .str(API)
        .end_object();
    j.finish()
}

/// `GET /api/health`: the server answers, and whether its data directory exists (one
/// `stat`, on the blocking pool; nothing else is read).
pub(crate) async fn health(dir: Option<web::Data<DataDir>>) -> HttpResponse {
    let exists = match dir.and_then(|d| d.0.clone()) {
        // A worker that stopped answers "missing": the directory could not be checked.
        Some(path) => Some(web::block(move || path.is_dir()).await.unwrap_or(false)),
        None => None,
    };
    HttpResponse::Ok().content_type(ContentType::json()).body(health_json(exists))
}

/// `GET /api/version`
pub(crate) async fn version() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(version_json())
}

/// `GET /api/openapi.json`
pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(OPENAPI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_answers() {
        assert_eq!(health_json(Some(true)), r#"{"status": "ok", "data_directory": "ok"}"#);
        assert_eq!(health_json(Some(false)), r#"{"status": "ok", "data_directory": "missing"}"#);
        assert_eq!(health_json(None), r#"{"status": "ok", "data_directory": "unknown"}"#);
    }

    #[test]
    fn version_answer() {
        assert_eq!(
            version_json(),
            format!(
                r#"{{"name": "goodseed", "version": "{}", "api": "goodseed-0.4.0-compatible"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn the_openapi_document_names_this_version() {
        // Parsed (and checked against the server) in tests/it/openapi.rs; here only that
        // its version is the crate's, which a release would otherwise forget.
        let needle = format!(r#""version": "{}""#, env!("CARGO_PKG_VERSION"));
        assert!(OPENAPI.contains(&needle), "openapi.json's info.version must be {needle}");
    }
}
