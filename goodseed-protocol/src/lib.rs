//! goodseed's cloud protocol: the bodies a trainer and a team server exchange, as
//! goodseed 0.4.0's sync client (`goodseed/sync.py`) sends and reads them, with their
//! limits. The team server (`goodseed serve`) decodes them; the SDK's remote mode and
//! `goodseed sync` encode them. No HTTP and no storage here: bytes in, values out.
//!
//! The calls, all under `/api/v1` with `Authorization: Bearer <key>`:
//!
//! | call | body | answer |
//! | --- | --- | --- |
//! | `GET auth/me` | | [`Me`] |
//! | `POST runs` | [`RegisterRun`] | 200 [`Registered`] |
//! | `POST runs/{id}/configs` | [`ConfigsBody`], gzip | 204 |
//! | `POST runs/{id}/ingest` | [`ingest`] points, JSON or protobuf, gzip | 200 |
//! | `POST runs/{id}/status` | [`StatusBody`] | 204 |
//! | `POST runs/{id}/heartbeat` | none | 200 [`HeartbeatAnswer`] |
//!
//! Errors are [`ErrorBody`]: 0.4.0's client reads `error_code`, `title` and `detail`.
//!
//! ```
//! use goodseed_protocol::ingest::{self, IngestPoint, PointValue};
//!
//! // What goodseed 0.4.0's client sends (json.dumps writes NaN bare, as Python does).
//! let body = br#"{"points": [{"path": "loss", "step": 3, "timestampMs": 1700000000000, "number": NaN}]}"#;
//! let mut scratch = Vec::new();
//! let points = ingest::decode_json(body, &mut scratch)?;
//! assert_eq!(points[0].path, "loss");
//! assert!(matches!(points[0].value, PointValue::Number(v) if v.is_nan()));
//!
//! // The same point in protobuf, and back.
//! let mut pb = Vec::new();
//! ingest::encode_protobuf(&points, &mut pb);
//! assert_eq!(ingest::decode_protobuf(&pb)?[0].step, 3.0);
//! # Ok::<(), goodseed_protocol::WireError>(())
//! ```

mod error;
pub mod gzip;
pub mod ingest;
mod messages;
mod python_json;

pub use error::WireError;
pub use messages::{
    ArtifactEntry, ArtifactsBody, BlobState, ConfigEntry, ConfigsBody, ErrorBody, HeartbeatAnswer,
    Me, PathEntry, RegisterRun, Registered, StatusBody,
};
pub use python_json::strict_json;

/// The limits of one request, as goodseed 0.4.0's client keeps to them and the server
/// enforces them (413 beyond).
pub mod limits {
    /// The largest request body, before and after gzip (16 MiB).
    pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
    /// The most points in one ingest request.
    pub const MAX_POINTS_PER_INGEST: usize = 2_000_000;
    /// The most configs in one configs request.
    pub const MAX_CONFIGS_PER_REQUEST: usize = 1000;
    /// The longest config value 0.4.0's client sends (it cuts longer ones).
    pub const MAX_CONFIG_VALUE_CHARS: usize = 10_000;
    /// The largest chunk of a file upload (ours): under the body limit.
    pub const MAX_BLOB_CHUNK_BYTES: usize = 8 * 1024 * 1024;
    /// The most records in one artifacts request (ours).
    pub const MAX_ARTIFACTS_PER_REQUEST: usize = 1000;
}

/// `Content-Type` of a protobuf ingest body.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/protobuf";
