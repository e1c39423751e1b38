//! Remote mode: a run written locally exactly as always (the local file is the durable
//! queue, as in goodseed 0.4.0) and uploaded to a team server (`goodseed serve`, or
//! anything that speaks goodseed's cloud API) by a sync thread that marks rows uploaded
//! only after the server answered. Training never waits for the network: when the
//! server is down the rows wait in the file and go when it answers again.
//!
//! [`upload_run`] sends what a server lacks of any run of a store (ours or goodseed
//! 0.4.0's): `goodseed sync` is built on it.

mod client;
pub(crate) mod thread;
mod upload;

use std::time::Duration;

use goodseed_core::{ProjectName, RunId};
use goodseed_store::{RunStore, StoreError};

pub(crate) use client::Client;
pub use upload::{UploadProgress, UploadReport};
pub(crate) use upload::{Uploader, registration};

/// Environment variables of remote mode, as goodseed 0.4.0 reads them.
pub mod env {
    /// `cloud` turns remote mode on (with [`API_URL`] and [`API_KEY`]).
    pub const STORAGE: &str = "GOODSEED_STORAGE";
    /// The server, e.g. `http://gpu-box:8765`.
    pub const API_URL: &str = "GOODSEED_API_URL";
    /// The key (`goodseed token create` on the server).
    pub const API_KEY: &str = "GOODSEED_API_KEY";
}

/// goodseed 0.4.0's server when `GOODSEED_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.goodseed.ai";

/// A server and the key to log into it with.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote {
    /// The server's address, `http(s)://host[:port]`, without a trailing `/`.
    pub url: String,
    /// The key (`Authorization: Bearer`).
    pub api_key: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Remote").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Remote {
    /// A server and a key, checked: the address is `http://` or `https://`, the key is
    /// not empty and fits in a header.
    pub fn new(url: impl Into<String>, api_key: impl Into<String>) -> crate::Result<Remote> {
        let url = url.into().trim_end_matches('/').to_owned();
        let api_key = api_key.into();
        let setting = |name: &str, message: String| crate::SdkError::Setting {
            name: name.to_owned(),
            message,
        };
        let rest =
            url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).ok_or_else(
                || setting(env::API_URL, format!("{url:?} is not an http:// or https:// address")),
            )?;
        if rest.is_empty() || rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(setting(env::API_URL, format!("{url:?} names no server")));
        }
        if api_key.is_empty() || !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(setting(
                env::API_KEY,
                "the key is empty or holds characters a header cannot carry".to_owned(),
            ));
        }
        Ok(Remote { url, api_key })
    }

    /// Remote mode as 0.4.0 configures it: `GOODSEED_STORAGE=cloud`, with
    /// `GOODSEED_API_URL` (default [`DEFAULT_API_URL`]) and `GOODSEED_API_KEY`
    /// (required). `None` for any other storage mode.
    pub fn from_env() -> crate::Result<Option<Remote>> {
        if std::env::var(env::STORAGE).ok().as_deref() != Some("cloud") {
            return Ok(None);
        }
        let url = std::env::var(env::API_URL)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let key = std::env::var(env::API_KEY).ok().filter(|k| !k.is_empty()).ok_or_else(|| {
            crate::SdkError::Setting {
                name: env::API_KEY.to_owned(),
                message: "GOODSEED_STORAGE=cloud needs a key: make one with `goodseed token \
                          create` on the server"
                    .to_owned(),
            }
        })?;
        Remote::new(url, key).map(Some)
    }
}

/// A call to the server that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No answer: the server is down, or the network is cut.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The server.
        url: String,
        /// Why.
        message: String,
    },
    /// The server answered with an error.
    #[error("{url} refused {call} ({status}): {message}")]
    Refused {
        /// The server.
        url: String,
        /// The call.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The server's error code (`Auth.InvalidKey`, …), when it gave one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The server answered something the protocol does not say.
    #[error("{url}: {message}")]
    Protocol {
        /// The server.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl RemoteError {
    /// Whether trying again later may work: no answer, a busy or failing server, a run
    /// held by another writer there. A refused key or request will not work by waiting.
    pub fn is_retryable(&self) -> bool {
        match self {
            RemoteError::Unreachable { .. } => true,
            RemoteError::Refused { status, .. } => {
                *status >= 500 || matches!(status, 408 | 409 | 429)
            }
            RemoteError::Protocol { .. } => false,
        }
    }
}

/// What can stop an upload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The server.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run's project has no workspace: a server keeps runs under
    /// `workspace/project`.
    #[error("project {project} has no workspace: a server keeps runs under workspace/project")]
    NoWorkspace {
        /// The project.
        project: String,
    },
}

impl UploadError {
    /// Whether trying again later may work.
    pub fn is_retryable(&self) -> bool {
        match self {
            UploadError::Remote(e) => e.is_retryable(),
            UploadError::Store(e) => e.is_busy(),
            UploadError::NoWorkspace { .. } => false,
        }
    }
}

/// Sends what `remote` lacks of one run of `store` (every row not marked uploaded, 0.4.0's
/// and ours alike), marking rows as the server confirms them, then the run's status.
/// Resumable (a second call starts where the marks say) and idempotent (with nothing
/// pending it sends nothing). `progress` hears after every batch.
pub fn upload_run(
    store: &dyn RunStore,
    project: &ProjectName,
    run_id: &RunId,
    remote: &Remote,
    progress: &mut dyn FnMut(&UploadProgress),
) -> Result<UploadReport, UploadError> {
    let client = Client::new(remote, Duration::from_secs(60));
    upload::upload_all(store, project, run_id, client, progress)
}
