//! Goodseed's HTTP server: goodseed 0.4.0's JSON API over a [`RunStore`] handed in by
//! the binary, safe against hostile requests.
//!
//! The routes, parameters and JSON bytes are 0.4.0's (see `api.rs`); before any handler
//! runs, `guard.rs` refuses oversized URLs, foreign `Host` names (DNS rebinding),
//! missing tokens, and state-changing requests from foreign origins, and CORS answers
//! only an allow-list. Identifiers are validated by the core's types before the store
//! sees them, and no answer reveals a filesystem path.
//!
//! ```no_run
//! use std::sync::Arc;
//! use goodseed_server::{ServerOptions, serve};
//! use goodseed_store::{StoreLocation, open_store};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:8765")?;
//! let store = open_store(&StoreLocation::Projects("/home/me/.goodseed/projects".into()));
//! let options = ServerOptions { port: 8765, ..ServerOptions::default() };
//! serve(listener, store, options)?.await
//! # }
//! ```

mod api;
mod body;
mod cache;
mod cloud;
mod columns;
pub mod encode;
mod error;
mod files;
mod filter;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod groups;
mod guard;
mod importance;
pub mod json;
mod live;
mod meta;
mod params;
mod query;
mod routes;
mod runs;
mod series;
mod state;
mod system;
mod ui;
mod ws;

use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Server, Service as _, ServiceResponse};
use actix_web::http::Method;
use actix_web::{App, HttpMessage as _, HttpServer, web};
use goodseed_store::RunStore;
use goodseed_store::tokens::TokenStore;

pub use cloud::remote::DEFAULT_IDLE as DEFAULT_REMOTE_IDLE;
pub use live::StreamLimits;

/// The origin of the hosted goodseed frontend, allowed by default.
pub const GOODSEED_APP_ORIGIN: &str = "https://app.goodseed.ai";

/// How the server checks requests.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The port the server listens on (its own UI's origins use it).
    pub port: u16,
    /// Origins whose browser requests are allowed (CORS, and state-changing requests),
    /// besides the UI's own `http://localhost:<port>` and `http://127.0.0.1:<port>`.
    pub allowed_origins: Vec<String>,
    /// Host names accepted in `Host`, besides loopback names.
    pub allowed_hosts: Vec<String>,
    /// When set, every request but the web UI's static files needs
    /// `Authorization: Bearer <token>` (or the UI's token cookie). For the cloud API
    /// (`/api/v1`) it is a key that reaches every project.
    pub token: Option<String>,
    /// The keys of the cloud API besides `token` (`goodseed token create`), each
    /// reaching one workspace or project. The cloud API needs a key on every call: with
    /// neither, it answers 401.
    pub tokens: Option<Arc<dyn TokenStore>>,
    /// Where requests of interactive control are kept (`POST .../requests`,
    /// `GET /api/requests`); without, those routes answer 404.
    pub requests: Option<Arc<dyn goodseed_store::requests::RequestStore>>,
    /// How long a remote run's writer stays open with nothing from its trainer; after
    /// that the run shows as crashed until its trainer calls again.
    pub remote_idle: std::time::Duration,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Stop gracefully on Ctrl-C and SIGTERM (the binary wants this; tests do not).
    pub handle_signals: bool,
    /// How many live streams (`GET /api/events`) may be open at once.
    pub stream_limits: StreamLimits,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            port: 8765,
            allowed_origins: vec![GOODSEED_APP_ORIGIN.to_owned()],
            allowed_hosts: Vec::new(),
            token: None,
            tokens: None,
            requests: None,
            remote_idle: DEFAULT_REMOTE_IDLE,
            workers: None,
            handle_signals: false,
            stream_limits: StreamLimits::default(),
        }
    }
}

/// Configures the routes and checks on an actix `App`.
fn configure(cfg: &mut web::ServiceConfig, state: web::Data<state::AppState>) {
    cfg.app_data(state)
        .route("/api", web::get().to(meta::index))
        .route("/api/", web::get().to(meta::index))
        .route("/api/projects", web::get().to(api::projects))
        .route("/api/runs", web::get().to(api::runs))
        .route("/api/requests", web::get().to(api::requests))
        .route("/api/saved_configs", web::get().to(api::saved_configs))
        .route("/api/views", web::get().to(api::views))
        .route("/api/views", web::put().to(api::save_view))
        .route("/api/views", web::delete().to(api::delete_view))
        .route("/api/config_keys", web::get().to(api::config_keys))
        .route("/api/importance", web::get().to(api::importance))
        .route("/api/groups", web::get().to(groups::groups))
        .route("/api/events", web::get().to(live::events))
        .route("/api/ws", web::get().to(ws::socket))
        .route("/api/compare", web::get().to(series::compare))
        .route("/api/runs/{tail:.*}", web::get().to(api::run_get))
        .route("/api/runs/{tail:.*}", web::post().to(api::run_post))
        .route("/api/runs/{tail:.*}", web::delete().to(files::delete))
        .route("/api/health", web::get().to(meta::health))
        .route("/api/system/status", web::get().to(system::status))
        .route("/api/system/history", web::get().to(system::history))
        .route("/api/version", web::get().to(meta::version))
        .route("/api/openapi.json", web::get().to(meta::openapi))
        .configure(cloud::configure)
        .route("/", web::get().to(ui::index))
        .route("/index.html", web::get().to(ui::index))
        .route("/assets/{file:.*}", web::get().to(ui::assets))
        .default_service(web::to(api::fallback));
}

/// Starts serving `store` on an already bound listener (bind port 0 in tests). The
/// returned server runs when awaited (or spawned) and stops on its handle.
pub fn serve(
    listener: std::net::TcpListener,
    store: Arc<dyn RunStore>,
    options: ServerOptions,
) -> std::io::Result<Server> {
    let options = Arc::new(options);
    // List the runs once in the background, so the first visitor gets a warm run
    // listing (1,000 runs: ~5 ms warm, ~200 ms cold) rather than waiting for the scan.
    let warm = Arc::clone(&store);
    std::thread::Builder::new().name("goodseed-warm".into()).spawn(move || {
        let _ = warm.list_runs(None);
    })?;
    // One state for every worker: the response cache is shared.
    let state = web::Data::new(state::AppState {
        live: live::LiveHub::new(
            Arc::clone(&store),
            options.requests.clone(),
            options.stream_limits,
        ),
        system: system::SystemMonitor::start(),
        remote: cloud::remote::RemoteRuns::start(Arc::clone(&store), options.remote_idle),
        store,
        cache: Arc::new(cache::ResponseCache::default()),
        columns: Arc::new(columns::ColumnCache::default()),
        listings: Arc::new(cache::ListingCache::default()),
        metrics: Arc::new(runs::MetricsCache::default()),
        series: Arc::new(groups::SeriesCache::default()),
        orders: Arc::new(runs::OrderCache::default()),
        requests: options.requests.clone(),
    });
    let workers = options.workers;
    let handle_signals = options.handle_signals;
    let app_options = Arc::clone(&options);
    let mut server = HttpServer::new(move || {
        let state = state.clone();
        let options = Arc::clone(&app_options);
        App::new()
            .wrap_fn(move |req, srv| {
                let options = Arc::clone(&options);
                // The path the router matches, not the raw one: see `guard::check`.
                let routed_path = req.match_info().as_str().to_owned();
                let refused = guard::check(
                    &options,
                    req.method(),
                    req.uri().path_and_query().map_or(0, |pq| pq.as_str().len()),
                    &routed_path,
                    req.headers(),
                );
                let preflight = req.method() == Method::OPTIONS;
                let request_headers = req.headers().clone();
                let fut = match (refused, preflight) {
                    (Err(refusal), _) => {
                        let response = refusal.response(&routed_path);
                        Err(req.into_response(response.map_into_right_body()))
                    }
                    // CORS preflight: answered here, headers added below.
                    (Ok(_), true) => {
                        let response = actix_web::HttpResponse::NoContent().finish();
                        Err(req.into_response(response.map_into_right_body()))
                    }
                    (Ok(access), false) => {
                        if let Some(access) = access {
                            req.extensions_mut().insert(access);
                        }
                        Ok(srv.call(req))
                    }
                };
                async move {
                    let mut response: ServiceResponse<EitherBody<BoxBody>> = match fut {
                        Ok(call) => call.await?.map_into_left_body(),
                        Err(answered) => answered,
                    };
                    guard::cors_headers(&options, &request_headers, response.headers_mut());
                    // No answer is to be read as anything but its declared type.
                    response.headers_mut().insert(
                        actix_web::http::header::X_CONTENT_TYPE_OPTIONS,
                        actix_web::http::header::HeaderValue::from_static("nosniff"),
                    );
                    Ok(response)
                }
            })
            .configure(|cfg| configure(cfg, state))
    })
    .listen(listener)?;
    if let Some(n) = workers {
        server = server.workers(n);
    }
    if !handle_signals {
        server = server.disable_signals();
    }
    Ok(server.shutdown_timeout(5).run())
}

/// Serves until the server stops (on Ctrl-C or SIGTERM when `handle_signals` is set),
/// on a runtime of its own: the blocking entry point for the binary.
pub fn run(
    listener: std::net::TcpListener,
    store: Arc<dyn RunStore>,
    options: ServerOptions,
) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move { serve(listener, store, options)?.await })
}
