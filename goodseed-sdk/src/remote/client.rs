//! The calls of goodseed's cloud API (`/api/v1`), over HTTP with `ureq`: what goodseed
//! 0.4.0's sync client sends, with protobuf point bodies.

use std::time::Duration;

use goodseed_protocol::{
    ArtifactEntry, ArtifactsBody, BlobState, ConfigEntry, ConfigsBody, ErrorBody, HeartbeatAnswer,
    Me, PROTOBUF_CONTENT_TYPE, RegisterRun, Registered, StatusBody,
};

use super::{Remote, RemoteError};

/// Bodies larger than this are sent gzip-compressed (level 1: a fraction of the CPU of
/// 0.4.0's level 6, most of the saving), unless the server is on this machine.
const GZIP_FROM: usize = 32 * 1024;

/// A client of one server with one key.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    remote: Remote,
    agent: ureq::Agent,
    /// The server is on this machine (a loopback address): compressing costs CPU and
    /// saves nothing.
    local: bool,
}

/// Whether a server's address names this machine: `localhost`, `127.x.x.x`, `[::1]`.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']').map_or("", |(h, _)| h)
    } else {
        rest.split(['/', ':']).next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What an answer says.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Client {
    pub(crate) fn new(remote: &Remote, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .build()
            .into();
        Client { remote: remote.clone(), agent, local: is_loopback(&remote.url) }
    }

    pub(crate) fn remote(&self) -> &Remote {
        &self.remote
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.remote.url)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Unreachable { url: self.remote.url.clone(), message: e.to_string() }
    }

    fn answer(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, RemoteError> {
        let mut resp = resp.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        Ok(Answer { status, body })
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Answer, RemoteError> {
        let auth = format!("Bearer {}", self.remote.api_key);
        let req = self
            .agent
            .post(self.url(path))
            .header("Authorization", &auth)
            .header("Content-Type", content_type);
        let resp = if body.len() >= GZIP_FROM && !self.local {
            let packed = goodseed_protocol::gzip::compress(body, 1);
            req.header("Content-Encoding", "gzip").send(&packed[..])
        } else {
            req.send(body)
        };
        self.answer(resp)
    }

    /// A `PUT` of raw bytes (never compressed: files sent are mostly packed already).
    fn put(&self, path: &str, body: &[u8]) -> Result<Answer, RemoteError> {
        let auth = format!("Bearer {}", self.remote.api_key);
        let req = self
            .agent
            .put(self.url(path))
            .header("Authorization", &auth)
            .header("Content-Type", "application/octet-stream");
        self.answer(req.send(body))
    }

    fn get(&self, path: &str) -> Result<Answer, RemoteError> {
        let auth = format!("Bearer {}", self.remote.api_key);
        self.answer(self.agent.get(self.url(path)).header("Authorization", &auth).call())
    }

    /// The answer's body as `T` when its status is `ok`, else the server's error.
    fn expect<T: serde::de::DeserializeOwned>(
        &self,
        a: Answer,
        ok: u16,
        call: &str,
    ) -> Result<T, RemoteError> {
        self.check(&a, ok, call)?;
        serde_json::from_slice(&a.body).map_err(|e| RemoteError::Protocol {
            url: self.remote.url.clone(),
            message: format!("{call}: the answer is not what the protocol says ({e})"),
        })
    }

    fn check(&self, a: &Answer, ok: u16, call: &str) -> Result<(), RemoteError> {
        if a.status == ok {
            return Ok(());
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&a.body).ok();
        let (code, message) = match parsed {
            Some(e) => {
                let text = match (e.title, e.detail) {
                    (Some(t), Some(d)) => format!("{t}: {d}"),
                    (Some(t), None) => t,
                    (None, Some(d)) => d,
                    (None, None) => e.error,
                };
                (e.error_code, text)
            }
            None => (None, String::from_utf8_lossy(&a.body).chars().take(300).collect()),
        };
        Err(RemoteError::Refused {
            url: self.remote.url.clone(),
            call: call.to_owned(),
            status: a.status,
            code,
            message,
        })
    }

    /// `GET /auth/me`.
    pub(crate) fn me(&self) -> Result<Me, RemoteError> {
        let a = self.get("/auth/me")?;
        self.expect(a, 200, "GET /api/v1/auth/me")
    }

    /// `POST /runs`.
    pub(crate) fn register(&self, body: &RegisterRun) -> Result<Registered, RemoteError> {
        let json = serde_json::to_vec(body).expect("a registration serializes");
        let a = self.post("/runs", "application/json", &json)?;
        self.expect(a, 200, "POST /api/v1/runs")
    }

    /// `POST /runs/{id}/configs`.
    pub(crate) fn configs(&self, id: &str, configs: &[ConfigEntry]) -> Result<(), RemoteError> {
        let json = serde_json::to_vec(&ConfigsBody { configs: configs.to_vec() })
            .expect("configs serialize");
        let a = self.post(&format!("/runs/{id}/configs"), "application/json", &json)?;
        self.check(&a, 204, "POST /api/v1/runs/{id}/configs")
    }

    /// `POST /runs/{id}/ingest` with a protobuf body.
    pub(crate) fn ingest(&self, id: &str, protobuf: &[u8]) -> Result<(), RemoteError> {
        let a = self.post(&format!("/runs/{id}/ingest"), PROTOBUF_CONTENT_TYPE, protobuf)?;
        self.check(&a, 200, "POST /api/v1/runs/{id}/ingest")
    }

    /// `POST /runs/{id}/status`.
    pub(crate) fn status(
        &self,
        id: &str,
        status: &str,
        ended_by: Option<&str>,
    ) -> Result<(), RemoteError> {
        let body = StatusBody { status: status.to_owned(), ended_by: ended_by.map(str::to_owned) };
        let json = serde_json::to_vec(&body).expect("a status serializes");
        let a = self.post(&format!("/runs/{id}/status"), "application/json", &json)?;
        // 0.4.0's backend answers 200 or 204; either is done.
        if a.status == 200 {
            return Ok(());
        }
        self.check(&a, 204, "POST /api/v1/runs/{id}/status")
    }

    /// Ours: `GET /runs/{id}/blobs/{sha256}`, how much of a file the server holds.
    pub(crate) fn blob_state(&self, id: &str, sha256: &str) -> Result<BlobState, RemoteError> {
        let a = self.get(&format!("/runs/{id}/blobs/{sha256}"))?;
        self.expect(a, 200, "GET /api/v1/runs/{id}/blobs/{sha256}")
    }

    /// Ours: `PUT /runs/{id}/blobs/{sha256}?offset=&size=`, the next chunk of a file.
    pub(crate) fn blob_chunk(
        &self,
        id: &str,
        sha256: &str,
        offset: u64,
        size: u64,
        bytes: &[u8],
    ) -> Result<BlobState, RemoteError> {
        let a =
            self.put(&format!("/runs/{id}/blobs/{sha256}?offset={offset}&size={size}"), bytes)?;
        self.expect(a, 200, "PUT /api/v1/runs/{id}/blobs/{sha256}")
    }

    /// Ours: `POST /runs/{id}/artifacts`, records whose files the server holds.
    pub(crate) fn artifacts(&self, id: &str, entries: &[ArtifactEntry]) -> Result<(), RemoteError> {
        let json = serde_json::to_vec(&ArtifactsBody { artifacts: entries.to_vec() })
            .expect("records serialize");
        let a = self.post(&format!("/runs/{id}/artifacts"), "application/json", &json)?;
        self.check(&a, 200, "POST /api/v1/runs/{id}/artifacts")
    }

    /// `POST /runs/{id}/heartbeat`: whether the trainer was asked to stop.
    pub(crate) fn heartbeat(&self, id: &str) -> Result<bool, RemoteError> {
        let a = self.post(&format!("/runs/{id}/heartbeat"), "application/json", b"")?;
        self.check(&a, 200, "POST /api/v1/runs/{id}/heartbeat")?;
        // A server that answers without our field (0.4.0's backend) asks nothing.
        Ok(serde_json::from_slice::<HeartbeatAnswer>(&a.body).is_ok_and(|h| h.stop_requested))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_servers_are_told_apart() {
        for (url, local) in [
            ("http://127.0.0.1:8765", true),
            ("http://127.8.0.1", true),
            ("http://localhost:8765/x", true),
            ("https://LOCALHOST", true),
            ("http://[::1]:8765", true),
            ("http://gpu-box:8765", false),
            ("http://10.0.0.1:8765", false),
            ("http://[2001:db8::1]:80", false),
            ("http://localhost.example", false),
        ] {
            assert_eq!(super::is_loopback(url), local, "{url}");
        }
    }
}
