//! A real server on port 0 over a temp directory, and a raw HTTP/1.1 client that sends
//! request targets exactly as written (no normalisation of `..` or `%2e`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use goodseed_sdk::Run;
use goodseed_server::{ServerOptions, serve};
use goodseed_store::{SqliteStore, StoreLocation};

/// The store of a projects directory as `goodseed serve` opens it: watched, listing from
/// its index.
pub(crate) fn watched(projects: &Path) -> Arc<dyn goodseed_store::RunStore> {
    Arc::new(SqliteStore::new(projects).watched())
}

/// A running server; stopped on drop.
pub(crate) struct TestServer {
    pub(crate) port: u16,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub(crate) fn start(projects: &Path) -> TestServer {
        TestServer::start_with(projects, |o| o)
    }

    /// A server over `projects`, keeping requests of interactive control beside its runs
    /// as `goodseed serve` does.
    pub(crate) fn start_with(
        projects: &Path,
        tweak: impl FnOnce(ServerOptions) -> ServerOptions,
    ) -> TestServer {
        let requests =
            goodseed_store::open_request_store(&StoreLocation::Projects(projects.to_owned()));
        TestServer::start_on(watched(projects), |o| {
            tweak(ServerOptions { requests: Some(requests), ..o })
        })
    }

    /// A server over `projects` on a given port (0: any), as a restarted server is.
    pub(crate) fn start_at(
        projects: &Path,
        port: u16,
        tweak: impl FnOnce(ServerOptions) -> ServerOptions,
    ) -> TestServer {
        let store = watched(projects);
        let requests =
            goodseed_store::open_request_store(&StoreLocation::Projects(projects.to_owned()));
        TestServer::start_listening(store, port, |o| {
            tweak(ServerOptions { requests: Some(requests), ..o })
        })
    }

    /// A server over any store (the test kit's in-memory one, say).
    pub(crate) fn start_on(
        catalog: Arc<dyn goodseed_store::RunStore>,
        tweak: impl FnOnce(ServerOptions) -> ServerOptions,
    ) -> TestServer {
        TestServer::start_listening(catalog, 0, tweak)
    }

    fn start_listening(
        catalog: Arc<dyn goodseed_store::RunStore>,
        port: u16,
        tweak: impl FnOnce(ServerOptions) -> ServerOptions,
    ) -> TestServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        let port = listener.local_addr().expect("addr").port();
        let options = tweak(ServerOptions { port, workers: Some(2), ..ServerOptions::default() });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = serve(listener, catalog, options).expect("serve");
                tx.send(server.handle()).expect("handle");
                server.await.expect("server ran");
            });
        });
        let handle = rx.recv().expect("server started");
        TestServer { port, handle, thread: Some(thread) }
    }

    pub(crate) fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[], "")
    }

    pub(crate) fn post(&self, target: &str) -> Response {
        self.request("POST", target, &[], "")
    }

    pub(crate) fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        request(self.port, method, target, headers, body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        actix_web::rt::System::new().block_on(stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    /// The body's bytes (`body` holds them as text).
    pub(crate) bytes: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request on a fresh connection. `Host: 127.0.0.1:<port>` is sent unless
/// `headers` has its own.
pub(crate) fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    request_bytes(port, method, target, headers, body.as_bytes())
}

/// [`request`] with a body of any bytes.
pub(crate) fn request_bytes(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(req.as_bytes()).expect("send");
    // A server may answer (413) and close before reading all of a large body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    Response { status, headers, body: text, bytes: body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).expect("hex").trim(), 16)
                .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A small run written through the SDK.
pub(crate) fn sdk_run(home: &Path, project: &str, run_id: &str, steps: u32) -> Run {
    let run = Run::builder()
        .monitoring(false)
        .home(home)
        .project(project)
        .run_id(run_id)
        .name(format!("{run_id} name"))
        .tags(["t1"])
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .create()
        .expect("create");
    for step in 0..steps {
        run.log_metrics(
            step,
            [("train/loss", 1.0 / f64::from(step + 1)), ("train/acc", f64::from(step) / 10.0)],
        )
        .expect("log");
    }
    run.log_text("logs/stdout", 0u32, "hello").expect("text");
    run.set_config("lr", 0.001).expect("config");
    run
}
