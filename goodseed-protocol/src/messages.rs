//! The small JSON bodies: registration, configs, status, heartbeat, who am I, errors.
//! Fields a client does not know are ignored, so either side may add some.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/runs`: make sure a run exists (the same workspace, project and run id
/// again is the same run) and learn the id the other calls address it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRun {
    /// The project's first part (`workspace/project`).
    pub workspace: String,
    /// The project's name within the workspace.
    pub project: String,
    /// The run id (0.4.0's rules: letters, digits, `-`, `_`).
    pub run_id: String,
    /// The run's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_name: Option<String>,
    /// When the run was created (ISO 8601), for a run uploaded after the fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// 0.4.0 sends it for imported runs; kept as the run's `modified_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
}

/// The answer to [`RegisterRun`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The id the run is addressed by in `/api/v1/runs/{id}/…`: opaque to clients.
    pub id: String,
    /// Whether this call created the run (ours).
    #[serde(default)]
    pub created: bool,
}

/// One config as 0.4.0 keeps it: the path, the type tag and the value's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// The config's path.
    pub path: String,
    /// 0.4.0's type tag (`int`, `float`, `str`, `bool`, `datetime`, `null`, `string_set`,
    /// or one this version does not know, kept as it is).
    pub type_tag: String,
    /// The value as 0.4.0 stores it (`None` only where the file holds NULL).
    pub value: Option<String>,
}

/// `POST /api/v1/runs/{id}/configs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigsBody {
    /// At most [`crate::limits::MAX_CONFIGS_PER_REQUEST`].
    pub configs: Vec<ConfigEntry>,
}

/// `POST /api/v1/runs/{id}/status`: how the run ended (`finished` or `failed`), or
/// `running` again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// Ours, beside an end: how the run ended (`completed` or `stopped` with
    /// `finished`, `failed` or `killed` with `failed`); 0.4.0 sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

/// The answer to `POST /api/v1/runs/{id}/heartbeat` (0.4.0 reads none; ours reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// Always true.
    pub ok: bool,
    /// Whether someone asked the run's trainer to stop (the UI's Stop, `POST
    /// /api/runs/…/stop`).
    #[serde(default)]
    pub stop_requested: bool,
}

/// The answer to `GET /api/v1/auth/me`: whose key this is. 0.4.0 reads `name` as the
/// workspace a project without one goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The key's workspace.
    pub name: String,
    /// The one project the key is limited to, if it is.
    #[serde(default)]
    pub project: Option<String>,
    /// Whether the key may only read.
    #[serde(default)]
    pub read_only: bool,
}

/// One entry of `GET /api/v1/runs/{id}/paths`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathEntry {
    /// The series' path.
    pub path: String,
    /// `metric` or `string`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// An error answer: `error` as every answer of this server has it, and the fields
/// goodseed 0.4.0's client reads (`error_code`, `title`, `detail`; it shows `title` and
/// `detail` joined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The whole message.
    #[serde(default)]
    pub error: String,
    /// A code a program can test, such as `Run.NotFound` or `Request.Invalid`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// What went wrong, in a few words.
    #[serde(default)]
    pub title: Option<String>,
    /// Which part of the request, and why.
    #[serde(default)]
    pub detail: Option<String>,
}

/// Ours: how much of a file a server holds, `GET` or `PUT
/// /api/v1/runs/{id}/blobs/{sha256}`. A client uploads from `received` on, in chunks
/// (`PUT …?offset=<received>&size=<total>`); the server checks the whole file's SHA-256
/// when the last chunk arrives and keeps it only then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobState {
    /// The file's SHA-256 (64 lowercase hex digits).
    pub sha256: String,
    /// Bytes of an unfinished upload kept so far (the whole size once complete).
    pub received: u64,
    /// Whether the run holds the whole file.
    pub complete: bool,
}

/// Ours: one checkpoint, artifact or file of a run, as a client registers it once its
/// bytes are there (`POST /api/v1/runs/{id}/artifacts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    /// `checkpoint`, `artifact` or `file`.
    pub kind: String,
    /// Its name (a file series' path for files).
    pub name: String,
    /// Its step (`None` for artifacts).
    #[serde(default)]
    pub step: Option<f64>,
    /// The file's SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type as the trainer told it (the server tells it again from the bytes,
    /// and takes this one only where the bytes alone say nothing, such as a CSV file's).
    #[serde(default)]
    pub media_type: Option<String>,
    /// A checkpoint's metrics (non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`).
    #[serde(default)]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Whether it is the run's best checkpoint.
    #[serde(default)]
    pub best: bool,
    /// Where a file registered in place is on the trainer's machine (no bytes are sent).
    #[serde(default)]
    pub in_place: Option<String>,
}

/// Ours: `POST /api/v1/runs/{id}/artifacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactsBody {
    /// The records, registered in order.
    pub artifacts: Vec<ArtifactEntry>,
}
