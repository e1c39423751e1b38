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
