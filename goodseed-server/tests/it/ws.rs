//! `GET /api/ws`: live updates over a WebSocket, in the training-dashboard protocol, fed
//! by the same hub as `/api/events`, under the same Host, Origin and token rules.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::{Message, WebSocket};

use crate::support::{TestServer, sdk_run};

type Socket = WebSocket<TcpStream>;

fn connect(port: u16, query: &str, headers: &[(&str, &str)]) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{port}/api/ws{query}").into_client_request()?;
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
        request.headers_mut().insert(name, v.parse().expect("header value"));
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    tungstenite::client(request, stream).map(|(socket, _)| socket).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("handshake interrupted"),
    })
}

fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).expect("send");
}

/// The next message of `kind` (skipping others), as JSON.
fn next(socket: &mut Socket, kind: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "no {kind} message within {within:?}");
        match socket.read() {
            Ok(Message::Text(text)) => {
                let v: Value = serde_json::from_str(&text).expect("JSON");
                if v["type"] == kind {
                    return v;
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("socket: {e}"),
        }
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_websocket_follows_runs_and_projects_as_the_event_stream_does() {
    let home = tempfile::tempdir().expect("home");
    let run = sdk_run(home.path(), "ws/p", "live", 3);
    run.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    let mut socket = connect(server.port, "", &[]).expect("handshake");
    send(&mut socket, json!({"type": "ping"}));
    next(&mut socket, "pong", WAIT);
    send(&mut socket, json!({"type": "subscribe", "run": "ws/p/live"}));
    assert_eq!(next(&mut socket, "subscribed", WAIT)["run"], "ws/p/live");
    let status = next(&mut socket, "status_change", WAIT);
    assert_eq!(
        (status["data"]["run_id"].clone(), status["data"]["state"].clone()),
        (json!("live"), json!("running"))
    );
    // New points arrive as metric_update, with the same data as the stream's `metrics`.
    run.log_metric("train/loss", 10u32, 0.25).expect("log");
    run.flush().expect("flush");
    let update = next(&mut socket, "metric_update", WAIT);
    assert_eq!(update["data"]["path"], "train/loss");
    assert_eq!(update["data"]["points"][0]["step"], 10.0);
    assert_eq!(update["data"]["points"][0]["value"], 0.25);
    // A checkpoint registered: checkpoint_saved, with its record.
    let file = home.path().join("e10.ckpt");
    std::fs::write(&file, "weights at 10").expect("checkpoint file");
    run.log_checkpoint(&file, 10u32, &[("train/loss", 0.25)]).expect("checkpoint");
    run.wait_for_files().expect("copied");
    run.flush().expect("flush");
    let saved = next(&mut socket, "checkpoint_saved", WAIT);
    assert_eq!(saved["data"]["checkpoint"]["name"], "e10.ckpt");
    assert_eq!(saved["data"]["checkpoint"]["step"], 10.0);
    assert_eq!(saved["data"]["checkpoint"]["metrics"]["train/loss"], 0.25);
    assert_eq!(saved["data"]["checkpoint"]["size"], 13);
    // A project: a new run appears.
    send(&mut socket, json!({"type": "subscribe", "project": "ws/q"}));
    next(&mut socket, "subscribed", WAIT);
    let other = sdk_run(home.path(), "ws/q", "newcomer", 1);
    let created = next(&mut socket, "run_created", WAIT);
    assert_eq!(created["data"]["run_id"], "newcomer");
    other.finish().expect("finish");
    // The end of the followed run.
    run.finish().expect("finish");
    let ended = loop {
        let s = next(&mut socket, "status_change", WAIT);
        if s["data"]["run_id"] == "live" {
            break s;
        }
    };
    assert_eq!(ended["data"]["status"], "finished");
    // Unsubscribed: nothing more of it.
    send(&mut socket, json!({"type": "unsubscribe", "run": "ws/p/live"}));
    next(&mut socket, "unsubscribed", WAIT);
    // Bad messages are answered, never fatal.
    for (message, needle) in [
        (json!({"type": "subscribe", "run": "ws/p/nope"}), "Run not found"),
        (json!({"type": "subscribe", "run": "../x"}), "invalid"),
        (json!({"type": "subscribe"}), "name a run"),
        (json!({"type": "dance"}), "unknown message type"),
    ] {
        send(&mut socket, message);
        let e = next(&mut socket, "error", WAIT);
        assert!(e["message"].as_str().is_some_and(|m| m.contains(needle)), "{e}");
    }
    socket.send(Message::text("not json")).expect("send");
    next(&mut socket, "error", WAIT);
    // URL parameters subscribe at once.
    let mut second = connect(server.port, "?project=ws/q", &[]).expect("handshake");
    assert_eq!(next(&mut second, "subscribed", WAIT)["project"], "ws/q");
    let _ = socket.close(None);
}

#[test]
fn a_websocket_keeps_the_servers_host_origin_and_token_rules() {
    let home = tempfile::tempdir().expect("home");
    sdk_run(home.path(), "ws/p", "r", 1).finish().expect("finish");
    let token = "websocket-token-0123456789";
    let server = TestServer::start_with(&home.path().join("projects"), |o| {
        goodseed_server::ServerOptions { token: Some(token.into()), ..o }
    });
    let status = |r: Result<Socket, tungstenite::Error>| match r {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status(connect(server.port, "", &[])), 401, "no token");
    let bearer = format!("Bearer {token}");
    let cookie = format!("goodseed_token={token}");
    assert_eq!(status(connect(server.port, "", &[("Authorization", &bearer)])), 101);
    assert_eq!(status(connect(server.port, "", &[("Cookie", &cookie)])), 101, "the UI's cookie");
    // A foreign page cannot open one with the user's cookie.
    let foreign = [("Cookie", cookie.as_str()), ("Origin", "http://evil.example")];
    assert_eq!(status(connect(server.port, "", &foreign)), 403);
    let own = format!("http://127.0.0.1:{}", server.port);
    assert_eq!(status(connect(server.port, "", &[("Cookie", &cookie), ("Origin", &own)])), 101);
    assert_eq!(
        status(connect(server.port, "", &[("Authorization", &bearer), ("Host", "evil.example")])),
        403
    );
}
