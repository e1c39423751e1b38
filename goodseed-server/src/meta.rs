//! The server's own endpoints, which goodseed 0.4.0 does not have: `GET /api` (where to
//! start), `GET /api/health`,
//! `GET /api/version` and `GET /api/openapi.json`, the description of the whole API
//! (`openapi.json`, served as written; `tests/it/openapi.rs` checks it against the real
//! server so it cannot drift).

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use crate::json::Json;
use crate::state::AppState;

/// The OpenAPI 3.1 document of the whole API.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// What the API calls itself in `GET /api/version`.
pub(crate) const API: &str = "goodseed-0.4.0-compatible";

/// Whether the store can be reached.
fn health_json(available: bool, remote_writers: usize) -> String {
    let mut j = Json::default();
    j.begin_object().key("status").str("ok").key("data_directory").str(match available {
        true => "ok",
        false => "missing",
    });
    j.key("remote_writers").i64(remote_writers as i64);
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

/// `GET /api/health`: the server answers, and whether its store can be reached
/// ([`RunStore::check_available`]: for files, one `stat` of the data directory), on the
/// blocking pool; nothing else is read, and the store is never named. `remote_writers`:
/// how many runs of remote trainers (the cloud API) have their writer open.
///
/// [`RunStore::check_available`]: goodseed_store::RunStore::check_available
pub(crate) async fn health(state: web::Data<AppState>) -> HttpResponse {
    let store = Arc::clone(&state.store);
    // A worker that stopped answers "missing": the store could not be checked.
    let available = web::block(move || store.check_available().is_ok()).await.unwrap_or(false);
    let remote = state.remote.open_count();
    HttpResponse::Ok().content_type(ContentType::json()).body(health_json(available, remote))
}

fn index_json() -> String {
    let mut j = Json::default();
    j.begin_object()
        .key("name")
        .str("goodseed")
        .key("version")
        .str(env!("CARGO_PKG_VERSION"))
        .key("api")
        .str(API)
        .key("openapi")
        .str("/api/openapi.json")
        .key("ui")
        .str("/")
        .end_object();
    j.finish()
}

/// `GET /api` (and `/api/`): where to start, so the link the binary prints answers.
pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(index_json())
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
        assert_eq!(
            health_json(true, 2),
            r#"{"status": "ok", "data_directory": "ok", "remote_writers": 2}"#
        );
        assert_eq!(
            health_json(false, 0),
            r#"{"status": "ok", "data_directory": "missing", "remote_writers": 0}"#
        );
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
