//! Hostile requests to the real server (`goodseed_server::run` on port 0, over runs
//! written by the store's writer, one closed and one still being written), with and
//! without a token: any method, target (raw, or a run route with fuzzed parts), `Host`,
//! `Origin`, credentials and body. What must hold for every answer:
//!
//! - no 5xx but a 503 that says when to come back (`Retry-After`);
//! - a JSON answer parses, and an error is `{"error": "..."}`;
//! - without the token, no data (JSON or a live stream) is served and no `POST`
//!   succeeds; with it, a `POST` from a foreign `Origin` does not succeed either.

#![no_main]

use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};

use goodseed_fuzz::{Answer, Client, sample_run, write_closed_run};
use goodseed_server::{ServerOptions, StreamLimits};
use goodseed_store::{SqliteRunWriter, SqliteStore};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "fuzz-token-0123456789abcdef";

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Method {
    Get,
    Post,
    Head,
    Options,
    Put,
    Delete,
}

#[derive(Arbitrary, Debug)]
enum Target<'a> {
    /// `/api/runs/<project>/<run>/<what>?<query>`
    Run {
        project: &'a str,
        run: &'a str,
        what: &'a str,
        query: &'a str,
    },
    /// `/api/<tail>?<query>`
    Api {
        tail: &'a str,
        query: &'a str,
    },
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Host<'a> {
    Own,
    Localhost,
    Missing,
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Auth<'a> {
    None,
    Bearer,
    Cookie,
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Request<'a> {
    method: Method,
    target: Target<'a>,
    host: Host<'a>,
    origin: Option<&'a str>,
    auth: Auth<'a>,
    fetch_site: Option<&'a str>,
    http10: bool,
    body: &'a [u8],
}

struct Server {
    port: u16,
    client: Client,
    token: bool,
}

struct Servers {
    servers: Vec<Server>,
    /// Kept: the data, and the writer of the run still being written.
    _dir: tempfile::TempDir,
    _live: SqliteRunWriter,
}

fn servers() -> &'static Mutex<Servers> {
    static SERVERS: OnceLock<Mutex<Servers>> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        write_closed_run(dir.path(), "p", "r");
        write_closed_run(dir.path(), "ws/p", "r2");
        let live = SqliteRunWriter::create(
            &dir.path().join("p/runs/live.sqlite"),
            &sample_run("live", "p"),
        )
        .expect("create");
        let mut servers = Vec::new();
        for token in [false, true] {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let store = Arc::new(SqliteStore::new(dir.path()));
            let options = ServerOptions {
                port: addr.port(),
                token: token.then(|| TOKEN.to_owned()),
                workers: Some(1),
                stream_limits: StreamLimits::default(),
                ..ServerOptions::default()
            };
            std::thread::spawn(move || goodseed_server::run(listener, store, options));
            servers.push(Server { port: addr.port(), client: Client::new(addr), token });
        }
        Mutex::new(Servers { servers, _dir: dir, _live: live })
    })
}

/// Percent-encodes what cannot stand in a request line (the rest, `%` included, goes
/// as the fuzzer wrote it).
fn target_text(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_graphic() && !b"#\"<>\\^`{|}".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// A header value as it can be sent (no line breaks).
fn value(text: &str) -> String {
    text.replace(['\r', '\n', '\0'], " ")
}

fn request(r: &Request<'_>, server: &Server) -> Vec<u8> {
    let method = match r.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Head => "HEAD",
        Method::Options => "OPTIONS",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
    };
    let mut target = String::new();
    match &r.target {
        Target::Run { project, run, what, query } => {
            target.push_str("/api/runs/");
            target_text(project, &mut target);
            target.push('/');
            target_text(run, &mut target);
            target.push('/');
            target_text(what, &mut target);
            if !query.is_empty() {
                target.push('?');
                target_text(query, &mut target);
            }
        }
        Target::Api { tail, query } => {
            target.push_str("/api/");
            target_text(tail, &mut target);
            if !query.is_empty() {
                target.push('?');
                target_text(query, &mut target);
            }
        }
        Target::Raw(raw) => {
            if !raw.starts_with('/') {
                target.push('/');
            }
            target_text(raw, &mut target);
        }
    }
    let version = if r.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut head = format!("{method} {target} {version}\r\n");
    match &r.host {
        Host::Own => head.push_str(&format!("Host: 127.0.0.1:{}\r\n", server.port)),
        Host::Localhost => head.push_str(&format!("Host: localhost:{}\r\n", server.port)),
        Host::Missing => {}
        Host::Raw(h) => head.push_str(&format!("Host: {}\r\n", value(h))),
    }
    if let Some(o) = r.origin {
        head.push_str(&format!("Origin: {}\r\n", value(o)));
    }
    if let Some(s) = r.fetch_site {
        head.push_str(&format!("Sec-Fetch-Site: {}\r\n", value(s)));
    }
    match &r.auth {
        Auth::None => {}
        Auth::Bearer => head.push_str(&format!("Authorization: Bearer {TOKEN}\r\n")),
        Auth::Cookie => head.push_str(&format!("Cookie: goodseed_token={TOKEN}\r\n")),
        Auth::Raw(a) => head.push_str(&format!("Authorization: {}\r\n", value(a))),
    }
    if !r.body.is_empty() || r.method == Method::Post {
        head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The origins a state-changing request may come from (docs/SECURITY.md): the goodseed
/// app, and the UI's own, `http://` a loopback name on the server's port.
fn origin_allowed(origin: &str, port: u16) -> bool {
    if origin == goodseed_server::GOODSEED_APP_ORIGIN {
        return true;
    }
    let Some((host, p)) = origin.strip_prefix("http://").and_then(|r| r.rsplit_once(':')) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let loopback = host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    loopback && p.parse::<u16>() == Ok(port)
}

fn check(r: &Request<'_>, server: &Server, a: &Answer) {
    let what = || format!("{r:?} → {} {:?}", a.status, String::from_utf8_lossy(&a.body));
    assert!(
        a.status < 500 || (a.status == 503 && a.header("retry-after").is_some()),
        "server error: {}",
        what()
    );
    let kind = a.header("content-type").unwrap_or("");
    if kind.starts_with("application/json") && r.method != Method::Head {
        let v: serde_json::Value = serde_json::from_slice(&a.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", what()));
        if a.status >= 400 {
            assert!(v.get("error").is_some_and(serde_json::Value::is_string), "{}", what());
        }
    }
    let ok = (200..300).contains(&a.status);
    let authorized = match r.auth {
        Auth::Bearer | Auth::Cookie => true,
        Auth::Raw(a) => a.contains(TOKEN),
        Auth::None => false,
    };
    if server.token && !authorized && ok {
        assert!(r.method != Method::Post, "a POST without the token succeeded: {}", what());
        assert!(
            !kind.starts_with("application/json") && !kind.starts_with("text/event-stream"),
            "data without the token: {}",
            what()
        );
    }
    if ok && r.method == Method::Post {
        if let Some(origin) = r.origin {
            assert!(origin_allowed(origin, server.port), "a POST from {origin:?}: {}", what());
        }
    }
}

fuzz_target!(|r: Request<'_>| {
    let mut servers = servers().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for server in &mut servers.servers {
        let head = request(&r, server);
        if let Some(answer) = server.client.send(&head, r.body) {
            check(&r, server, &answer);
        }
    }
});
