//! Hostile requests: traversal in every encoding, symlinks out of the data directory,
//! DNS rebinding, cross-site requests, CORS, tokens and bad parameters. Nothing outside
//! the data directory may be read, changed, or named in an answer.

use crate::support::{TestServer, request, sdk_run};

/// A data directory with one run, and a secret run outside it (plus a symlink to it).
struct Fixture {
    _home: tempfile::TempDir,
    outside: tempfile::TempDir,
    server: TestServer,
}

fn fixture() -> Fixture {
    let home = tempfile::tempdir().expect("temp");
    let outside = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r1", 2).finish().expect("finish");
    sdk_run(outside.path(), "secret", "leak", 2).finish().expect("finish");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        let projects = home.path().join("projects");
        symlink(outside.path().join("projects/secret"), projects.join("linked")).expect("symlink");
        symlink(
            outside.path().join("projects/secret/runs/leak.sqlite"),
            projects.join("p/runs/alias.sqlite"),
        )
        .expect("symlink");
    }
    let server = TestServer::start(&home.path().join("projects"));
    Fixture { _home: home, outside, server }
}

fn outside_text(f: &Fixture) -> String {
    f.outside.path().display().to_string()
}

#[test]
fn traversal_is_refused_in_every_encoding() {
    let f = fixture();
    let targets = [
        "/api/runs/../secret/leak/configs",
        "/api/runs/p/../../secret/leak/configs",
        "/api/runs/%2e%2e/secret/leak/configs",
        "/api/runs/p/%2e%2e%2f%2e%2e%2fsecret/leak/configs",
        "/api/runs/%252e%252e/secret/leak/configs",
        "/api/runs/..%5c..%5csecret/leak/configs",
        "/api/runs/p%00/r1/configs",
        "/api/runs//etc/passwd/configs",
        "/api/runs/%2Fetc/passwd/configs",
        "/api/runs/p/..%2fr1/configs",
        "/api/runs/linked/leak/configs",
        "/api/runs/p/alias/configs",
        "/api/runs/linked/leak/metrics",
        "/api/runs/p/r1%2f..%2f..%2fx/configs",
    ];
    for target in targets {
        let r = f.server.get(target);
        assert!(matches!(r.status, 400 | 404), "{target}: {} {}", r.status, r.body);
        assert!(r.json()["error"].is_string(), "{target}: errors are JSON");
        assert!(!r.body.contains(&outside_text(&f)), "{target} leaked a path: {}", r.body);
        assert!(
            !r.body.contains("leak name") && !r.body.contains("train/"),
            "{target} leaked data: {}",
            r.body
        );
    }
    for target in ["/api/runs/linked/leak/trash", "/api/runs/%2e%2e/secret/leak/trash"] {
        assert!(matches!(f.server.post(target).status, 400 | 404), "{target}");
    }
    let listing = f.server.get("/api/runs").body;
    assert!(!listing.contains("leak") && !listing.contains(&outside_text(&f)), "{listing}");
    // The outside run was never touched.
    let outside = goodseed_store::SqliteStore::new(f.outside.path().join("projects"));
    use goodseed_store::RunStore as _;
    assert!(!outside.list_runs(None).expect("list").runs[0].meta.trashed());
}

#[test]
fn foreign_hosts_are_refused() {
    let f = fixture();
    for host in ["evil.example", "evil.example:8765", "localhost.evil.example", "10.0.0.1:8765"] {
        let r = f.server.request("GET", "/api/runs", &[("Host", host)], "");
        assert_eq!(r.status, 403, "{host}");
        assert!(r.json()["error"].as_str().expect("error").contains("not allowed"));
    }
    for host in ["localhost:1", "127.0.0.1", "[::1]:8765", "app.localhost"] {
        assert_eq!(
            f.server.request("GET", "/api/runs", &[("Host", host)], "").status,
            200,
            "{host}"
        );
    }
}

#[test]
fn cross_site_writes_are_refused_and_cors_is_an_allow_list() {
    let f = fixture();
    let port = f.server.port;
    let own = format!("http://127.0.0.1:{port}");
    for (origin, content_type) in [
        ("http://evil.example", "application/json"),
        ("http://evil.example", "text/plain"),
        ("null", "text/plain"),
    ] {
        let r = f.server.request(
            "POST",
            "/api/runs/p/r1/trash",
            &[("Origin", origin), ("Content-Type", content_type)],
            "x",
        );
        assert_eq!(r.status, 403, "{origin} {content_type}");
        assert!(r.header("access-control-allow-origin").is_none());
    }
    let r =
        f.server.request("POST", "/api/runs/p/r1/trash", &[("Sec-Fetch-Site", "cross-site")], "");
    assert_eq!(r.status, 403);
    assert_eq!(
        f.server.get("/api/runs").json()["runs"][0]["trashed"],
        false,
        "nothing was trashed"
    );
    for origin in [own.as_str(), "https://app.goodseed.ai"] {
        let r = f.server.request("POST", "/api/runs/p/r1/trash/restore", &[("Origin", origin)], "");
        assert_eq!(r.status, 200, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    }
    let r = f.server.request("GET", "/api/runs", &[("Origin", "http://evil.example")], "");
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none(), "no CORS for foreign sites");
    let pre = f.server.request(
        "OPTIONS",
        "/api/runs/p/r1/trash",
        &[("Origin", "https://app.goodseed.ai"), ("Access-Control-Request-Method", "POST")],
        "",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://app.goodseed.ai"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("GET, POST, OPTIONS"));
    let pre = f.server.request("OPTIONS", "/api/runs", &[("Origin", "http://evil.example")], "");
    assert!(pre.header("access-control-allow-origin").is_none());
}

#[test]
fn a_token_guards_everything() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r1", 1).finish().expect("finish");
    let server =
        TestServer::start_with(&home.path().join("projects"), |o| goodseed_server::ServerOptions {
            token: Some("s3cret".into()),
            allowed_hosts: vec!["team.box".into()],
            ..o
        });
    assert_eq!(server.get("/api/runs").status, 401);
    assert_eq!(
        server.request("GET", "/api/runs", &[("Authorization", "Bearer wrong")], "").status,
        401
    );
    // The token does not turn off the Host check (DNS rebinding).
    let foreign = server.request(
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer s3cret"), ("Host", "my.box:8765")],
        "",
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let ok = server.request(
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer s3cret"), ("Host", "team.box:8765")],
        "",
    );
    assert_eq!(ok.status, 200, "an allowed host with the token: {}", ok.body);
    assert_eq!(server.post("/api/runs/p/r1/trash").status, 401);
    // The web UI's cookie (EventSource cannot send a header): the right one only.
    let with_cookie = |cookie: &str| {
        server.request("GET", "/api/events?project=p", &[("Cookie", cookie)], "").status
    };
    assert_eq!(with_cookie("a=1; goodseed_token=wrong"), 401);
    assert_eq!(with_cookie("goodseed_token="), 401);
    assert_eq!(with_cookie("other_token=s3cret"), 401);
    let r = server.request("GET", "/api/runs", &[("Cookie", "a=1; goodseed_token=s3cret")], "");
    assert_eq!(r.status, 200, "{}", r.body);
    // The page stores it with encodeURIComponent.
    let r = server.request("GET", "/api/runs", &[("Cookie", "goodseed_token=s3%63ret")], "");
    assert_eq!(r.status, 200, "{}", r.body);
    // The UI's page itself needs no token (it holds no data), and says how to pass one.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    // Paths that reach no handler are guarded too: nothing tells what exists.
    for target in ["/nothing", "/api", "/assets", "/index.html/x", "//api/runs"] {
        assert_eq!(server.get(target).status, 401, "{target}");
    }
}

/// Every spelling of `/api/` that the router reads as `/api/`: each percent-encoded
/// letter, in either case of hex digit, alone and together.
fn encoded_api_prefixes() -> Vec<String> {
    let mut out = Vec::new();
    for mask in 1u8..8 {
        for upper in [false, true] {
            let mut prefix = String::from("/");
            for (i, c) in "api".chars().enumerate() {
                if mask & (1 << i) != 0 {
                    let hex = format!("%{:02x}", c as u8);
                    prefix.push_str(&if upper { hex.to_uppercase() } else { hex });
                } else {
                    prefix.push(c);
                }
            }
            prefix.push('/');
            out.push(prefix);
        }
    }
    out
}

#[test]
fn an_encoded_path_does_not_get_past_the_token() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r1", 1).finish().expect("finish");
    let server = TestServer::start_with(&home.path().join("projects"), |o| {
        goodseed_server::ServerOptions { token: Some("s3cret".into()), ..o }
    });
    let prefixes = encoded_api_prefixes();
    assert_eq!(prefixes.len(), 14);
    for prefix in &prefixes {
        for tail in [
            "runs",
            "projects",
            "events?project=p",
            "runs/p/r1/configs",
            "runs/p/r1/metrics",
            "compare?path=train/loss&run=p/r1",
            "openapi.json",
            "health",
        ] {
            let target = format!("{prefix}{tail}");
            let r = server.get(&target);
            assert_eq!(r.status, 401, "{target} answered without the token: {}", r.body);
            assert!(!r.body.contains("r1 name"), "{target} leaked data");
        }
        for tail in ["runs/p/r1/trash", "runs/p/r1/stop", "runs/p/r1/trash/restore"] {
            let target = format!("{prefix}{tail}");
            assert_eq!(server.post(&target).status, 401, "{target}");
        }
        // Encoded letters of the rest of the path too.
        let target = format!("{prefix}%72uns");
        assert_eq!(server.get(&target).status, 401, "{target}");
    }
    let r = server.request("GET", "/api/runs", &[("Authorization", "Bearer s3cret")], "");
    assert_eq!(r.json()["runs"][0]["trashed"], false, "nothing was trashed: {}", r.body);
    // The router really does read those spellings as the API (so the test means
    // something): with the token, an encoded path answers like the plain one.
    let r = server.request("GET", "/%61pi/runs", &[("Authorization", "Bearer s3cret")], "");
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn malformed_hosts_and_missing_hosts_are_refused() {
    let f = fixture();
    for host in [
        "127.0.0.1:8765@evil.com",
        "127.0.0.1:99999",
        "127.0.0.1:",
        "localhost:80:80",
        "[::1",
        "",
        "evil.com@127.0.0.1",
    ] {
        let r = f.server.request("GET", "/api/runs", &[("Host", host)], "");
        assert_eq!(r.status, 400, "{host:?}: {}", r.body);
        assert!(r.json()["error"].as_str().expect("error").contains("Host"), "{}", r.body);
    }
    // HTTP/1.0 without a Host, and two Hosts.
    let r = raw(f.server.port, "GET /api/runs HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.0 400") || r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(!r.contains("r1 name"), "{r}");
    let r = raw(
        f.server.port,
        "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n",
    );
    assert!(r.contains(" 400 "), "{r}");
}

#[test]
fn a_second_origin_header_is_not_ignored() {
    let f = fixture();
    let own = format!("http://127.0.0.1:{}", f.server.port);
    for origins in [[own.as_str(), "http://evil.example"], ["http://evil.example", own.as_str()]] {
        let r = f.server.request(
            "POST",
            "/api/runs/p/r1/trash",
            &[("Origin", origins[0]), ("Origin", origins[1])],
            "",
        );
        assert_eq!(r.status, 403, "{origins:?}: {}", r.body);
        assert!(r.header("access-control-allow-origin").is_none());
    }
    assert_eq!(f.server.get("/api/runs").json()["runs"][0]["trashed"], false);
}

/// Sends `text` as is and returns the whole answer.
fn raw(port: u16, text: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    stream.write_all(text.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn bad_parameters_are_400_at_once() {
    let f = fixture();
    let base = "/api/runs/p/r1";
    let cases = [
        ("metrics?path=train/loss&pointCount=0", "pointCount must be at least 1, got 0"),
        ("metrics?path=train/loss&pointCount=-1", "pointCount must be at least 1, got -1"),
        ("metrics?path=train/loss&pointCount=99999999999", "pointCount must be at most"),
        ("metrics?path=train/loss&pointCount=ten", "pointCount must be an integer"),
        ("metrics?pointCount=10", "pointCount requires a path parameter"),
        (
            "metrics?path=x&pointCount=10&firstPointIndex=a",
            "firstPointIndex and lastPointIndex must be integers",
        ),
        ("string_series?limit=-1", "limit must not be negative, got -1"),
        ("string_series?tail=-5", "tail must not be negative, got -5"),
        ("string_series?limit=1&offset=-2", "offset must not be negative, got -2"),
        ("string_series?offset=-5", "offset must not be negative, got -5"),
        ("string_series?level=loud", "level must be one of error, warn, info, debug, trace"),
        ("string_series?limit=x", "limit, offset, and tail must be integers"),
    ];
    for (query, want) in cases {
        let r = f.server.get(&format!("{base}/{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let error = r.json()["error"].as_str().expect("error").to_owned();
        assert!(error.contains(want), "{query}: {error}");
    }
    let long = format!("{base}/configs?x={}", "a".repeat(9000));
    let r = f.server.get(&long);
    assert_eq!(r.status, 414);
    let r = request(f.server.port, "GET", "/api/runs/p/-bad-/configs", &[], "");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().expect("error").contains("run id"));
}

#[test]
fn answers_are_never_sniffed() {
    let f = fixture();
    for target in [
        "/api/runs",
        "/api/runs/p/r1/configs",
        "/api/nothing",
        "/api/runs/p/r1/metrics?pointCount=x",
        "/",
    ] {
        let r = f.server.get(target);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{target} ({})", r.status);
    }
    let refused = f.server.request("GET", "/api/runs", &[("Host", "evil.example")], "");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"), "refusals too");
}
