//! `GET /api/ws`: live updates over a WebSocket, in the training-dashboard protocol,
//! fed by the same hub as `/api/events` (`live.rs`), under the same Host, Origin and
//! token rules (a WebSocket is opened by a GET, so the guard checks its Origin as for a
//! request that changes data: a foreign page cannot open one with the user's cookie).
//!
//! The client sends JSON messages:
//!
//! - `{"type": "subscribe", "run": "<project>/<run_id>"}` (or `"project"` with
//!   `"run_id"`): the run's new points and status changes;
//! - `{"type": "subscribe", "project": "<project>"}`: runs appearing, changing status and
//!   going away in the project;
//! - `{"type": "unsubscribe", …}` with the same fields; `{"type": "ping"}`.
//!
//! The server answers `{"type": "subscribed" | "unsubscribed", …}`, `{"type": "pong"}`,
//! `{"type": "error", "message"}`, and sends `{"type": "metric_update" | "status_change"
//! | "run_created" | "run_removed" | "request_update" | "checkpoint_saved" | "ping",
//! "data": …}` with the data of the matching Server-Sent Event. `?run=` and
//! `?project=` on the URL subscribe at once, as for `/api/events`.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use bytes::Bytes;
use goodseed_core::ProjectName;
use serde::Deserialize;

use crate::error::{ApiError, store_error};
use crate::json::Json;
use crate::live::{Follow, LiveHub, QUEUED_EVENTS};
use crate::params::run_spec;
use crate::query::Query;
use crate::state::AppState;

/// The largest message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;

/// A message from the client.
#[derive(Debug, Deserialize)]
struct Command {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    run: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
}

fn reply(kind: &str, fields: &[(&str, &str)]) -> String {
    let mut j = Json::default();
    j.begin_object().key("type").str(kind);
    for (k, v) in fields {
        j.key(k).str(v);
    }
    j.end_object();
    j.finish()
}

fn error(message: &str) -> String {
    reply("error", &[("message", message)])
}

/// What a `subscribe` or `unsubscribe` names.
fn target(c: &Command) -> Result<Follow, String> {
    match (&c.run, &c.project, &c.run_id) {
        (Some(run), None, None) => run_spec(run).map(Follow::Run).map_err(|e| e.message),
        (None, Some(p), Some(r)) => {
            run_spec(&format!("{p}/{r}")).map(Follow::Run).map_err(|e| e.message)
        }
        (None, Some(p), None) => {
            ProjectName::parse(p).map(Follow::Project).map_err(|e| format!("project: {e}"))
        }
        _ => Err("name a run (\"run\": \"<project>/<run_id>\") or a project (\"project\")".into()),
    }
}

fn describe(f: &Follow) -> (&'static str, String) {
    match f {
        Follow::Run(r) => ("run", format!("{}/{}", r.project, r.run_id)),
        Follow::Project(p) => ("project", p.to_string()),
    }
}

/// Carries out one client message; the answer to send.
async fn command(hub: &LiveHub, state: &AppState, id: u64, text: &str) -> String {
    let c: Command = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => return error(&format!("not a message of this protocol: {e}")),
    };
    match c.kind.as_str() {
        "ping" => reply("pong", &[]),
        "subscribe" | "unsubscribe" => {
            let what = match target(&c) {
                Ok(w) => w,
                Err(e) => return error(&e),
            };
            let (key, name) = describe(&what);
            if c.kind == "unsubscribe" {
                hub.unfollow(id, &what);
                return reply("unsubscribed", &[(key, &name)]);
            }
            let (hub, store) = (hub.clone(), Arc::clone(&state.store));
            let follow = what.clone();
            let done = web::block(move || {
                if let Follow::Run(run) = &follow {
                    store
                        .open_run(&run.project, &run.run_id)
                        .map_err(|e| store_error(run.project.as_str(), run.run_id.as_str(), e))?;
                }
                hub.follow(id, follow);
                Ok::<(), ApiError>(())
            })
            .await;
            match done {
                Ok(Ok(())) => reply("subscribed", &[(key, &name)]),
                Ok(Err(e)) => error(&e.message),
                Err(_) => error("the server's worker stopped"),
            }
        }
        other => error(&format!("unknown message type {other:?} (subscribe, unsubscribe, ping)")),
    }
}

/// `GET /api/ws`
pub(crate) async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (runs, projects) = crate::live::follows(&Query::parse(req.query_string()))?;
    let client = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let hub = state.live.clone();
    hub.admit_client(client)?;
    let (response, session, messages) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("not a WebSocket handshake: {e}"))
    })?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_EVENTS);
    let id = hub.connect(tx, client, true, Vec::new(), Vec::new())?;

    // What the hub sends, out.
    let mut out = session.clone();
    actix_web::rt::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            let Ok(text) = String::from_utf8(chunk.to_vec()) else { continue };
            if out.text(text).await.is_err() {
                break;
            }
        }
        let _ = out.close(None).await;
    });

    // What the client says, in; the connection goes when it closes.
    let state = state.into_inner();
    let mut answers = session;
    actix_web::rt::spawn(async move {
        let mut messages = messages.max_frame_size(MAX_MESSAGE);
        for run in runs {
            let text = reply_json_subscribe(&Follow::Run(run));
            let _ = answers.text(command(&hub, &state, id, &text).await).await;
        }
        for p in projects {
            let text = reply_json_subscribe(&Follow::Project(p));
            let _ = answers.text(command(&hub, &state, id, &text).await).await;
        }
        while let Some(Ok(message)) = messages.recv().await {
            let sent = match message {
                Message::Text(text) => answers.text(command(&hub, &state, id, &text).await).await,
                Message::Ping(bytes) => answers.pong(&bytes).await,
                Message::Close(_) => break,
                Message::Binary(_) => answers.text(error("messages are JSON text")).await,
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
        hub.disconnect(id);
        let _ = answers.close(None).await;
    });
    Ok(response)
}

/// The `subscribe` message a URL parameter stands for.
fn reply_json_subscribe(f: &Follow) -> String {
    let (key, name) = describe(f);
    reply("subscribe", &[(key, &name)])
}
