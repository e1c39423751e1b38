//! Sending a run's pending rows to a server, batch by batch: configs as JSON, points as
//! protobuf, marked uploaded only after the server confirmed them. A batch that could
//! not be sent is kept and sent again first (points are upserts there, so sending part
//! of a batch twice changes nothing).

use goodseed_core::{ProjectName, RunId};
use goodseed_protocol::ingest::ProtobufWriter;
use goodseed_protocol::limits::MAX_CONFIGS_PER_REQUEST;
use goodseed_protocol::{ConfigEntry, RegisterRun};
use goodseed_store::uploads::{Pending, RunUploads};
use goodseed_store::{RunStore, StoreError};

use super::{Client, RemoteError, UploadError};

/// Points read from the file per batch.
const BATCH_POINTS: usize = 100_000;
/// A request body is sent once it passes this size (the server takes 16 MiB).
const BODY_BYTES: usize = 8 * 1024 * 1024;

/// What an upload sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadReport {
    /// Configs the server confirmed.
    pub configs: u64,
    /// Metric and text points the server confirmed.
    pub points: u64,
    /// Requests made.
    pub requests: u64,
    /// Rows still not uploaded at the end (0 when everything is there).
    pub remaining: u64,
    /// Whether the server created the run (it did not have it).
    pub created: bool,
}

/// Where an upload is, after each batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadProgress {
    /// Rows confirmed so far.
    pub sent: u64,
    /// Rows that were pending when the upload started.
    pub total: u64,
}

/// Uploads one run, batch by batch.
#[derive(Debug)]
pub(crate) struct Uploader {
    client: Client,
    uploads: Box<dyn RunUploads>,
    registration: RegisterRun,
    id: Option<String>,
    /// Read but not confirmed yet: sent first next time.
    held: Option<Pending>,
    pub(crate) report: UploadReport,
}

impl Uploader {
    pub(crate) fn new(
        client: Client,
        uploads: Box<dyn RunUploads>,
        registration: RegisterRun,
    ) -> Uploader {
        Uploader {
            client,
            uploads,
            registration,
            id: None,
            held: None,
            report: UploadReport::default(),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The run's id on the server, registering it first.
    pub(crate) fn id(&mut self) -> Result<String, RemoteError> {
        if let Some(id) = &self.id {
            return Ok(id.clone());
        }
        let registered = self.client.register(&self.registration)?;
        self.report.requests += 1;
        self.report.created |= registered.created;
        self.id = Some(registered.id.clone());
        Ok(registered.id)
    }

    /// Sends one batch of pending rows (first the one that could not be sent before).
    /// Returns how many rows were confirmed; 0 when nothing is pending past what was
    /// read.
    pub(crate) fn step(&mut self) -> Result<usize, UploadError> {
        let batch = match self.held.take() {
            Some(b) => b,
            None => self.uploads.pending(BATCH_POINTS)?,
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.send(&batch) {
            self.held = Some(batch);
            return Err(e.into());
        }
        if let Err(e) = self.uploads.mark_uploaded(&batch) {
            // Sent but not marked: sending it again is harmless.
            self.held = Some(batch);
            return Err(e.into());
        }
        self.report.configs += batch.configs.len() as u64;
        self.report.points += (batch.metrics.len() + batch.texts.len()) as u64;
        Ok(batch.len())
    }

    /// Reads from the first row again (rows written again where the upload had read).
    pub(crate) fn rewind(&mut self) {
        if self.held.is_none() {
            self.uploads.rewind();
        }
    }

    /// Rows not uploaded.
    pub(crate) fn count_pending(&mut self) -> Result<u64, StoreError> {
        self.uploads.count_pending()
    }

    fn send(&mut self, batch: &Pending) -> Result<(), RemoteError> {
        let id = self.id()?;
        for chunk in batch.configs.chunks(MAX_CONFIGS_PER_REQUEST) {
            let entries: Vec<ConfigEntry> = chunk
                .iter()
                .map(|c| ConfigEntry {
                    path: c.path.clone(),
                    type_tag: c.type_tag.clone(),
                    value: c.value.clone(),
                })
                .collect();
            self.client.configs(&id, &entries)?;
            self.report.requests += 1;
        }
        let mut body = ProtobufWriter::new();
        for m in &batch.metrics {
            body.metric(&m.path, m.step, m.ts.saturating_mul(1000), m.value);
            if body.byte_len() >= BODY_BYTES {
                self.ingest(&id, &mut body)?;
            }
        }
        for t in &batch.texts {
            body.text(&t.path, t.step, t.ts.saturating_mul(1000), &t.value);
            if body.byte_len() >= BODY_BYTES {
                self.ingest(&id, &mut body)?;
            }
        }
        if !body.is_empty() {
            self.ingest(&id, &mut body)?;
        }
        Ok(())
    }

    fn ingest(&mut self, id: &str, body: &mut ProtobufWriter) -> Result<(), RemoteError> {
        self.client.ingest(id, body.as_bytes())?;
        self.report.requests += 1;
        body.clear();
        Ok(())
    }

    /// A heartbeat, once the run is registered: whether the trainer was asked to stop.
    pub(crate) fn heartbeat(&mut self) -> Option<Result<bool, RemoteError>> {
        let id = self.id.clone()?;
        Some(self.client.heartbeat(&id))
    }

    /// The run, as people name it.
    pub(crate) fn report_name(&self) -> String {
        let r = &self.registration;
        format!("{}/{}/{}", r.workspace, r.project, r.run_id)
    }

    /// Ends the run on the server as the store says it ended.
    pub(crate) fn send_status(&mut self, status: &str) -> Result<(), RemoteError> {
        let id = self.id()?;
        self.client.status(&id, status)?;
        self.report.requests += 1;
        Ok(())
    }
}

/// What registering `run` of `project` says, from its meta.
pub(crate) fn registration(
    project: &ProjectName,
    run_id: &RunId,
    meta: &goodseed_store::RunMeta,
) -> Result<RegisterRun, UploadError> {
    let (workspace, rest) = project
        .as_str()
        .split_once('/')
        .ok_or_else(|| UploadError::NoWorkspace { project: project.to_string() })?;
    Ok(RegisterRun {
        workspace: workspace.to_owned(),
        project: rest.to_owned(),
        run_id: run_id.to_string(),
        experiment_name: meta.name().map(str::to_owned),
        created_at: meta.created_at().map(str::to_owned),
        modified_at: meta.get("modified_at").map(str::to_owned),
    })
}

/// The status a server is told a run has: how it ended, or `running`.
pub(crate) fn status_to_send(stored: Option<&str>) -> &'static str {
    match stored {
        Some("failed") => "failed",
        Some("running") => "running",
        // 0.4.0 sends `finished` for anything else.
        _ => "finished",
    }
}

/// [`super::upload_run`].
pub(crate) fn upload_all(
    store: &dyn RunStore,
    project: &ProjectName,
    run_id: &RunId,
    client: Client,
    progress: &mut dyn FnMut(&UploadProgress),
) -> Result<UploadReport, UploadError> {
    let meta = store.open_run(project, run_id)?.meta()?;
    let registration = registration(project, run_id, &meta)?;
    let mut uploads = store.open_uploads(project, run_id)?;
    let total = uploads.count_pending()?;
    if total == 0 {
        return Ok(UploadReport::default());
    }
    let mut up = Uploader::new(client, uploads, registration);
    let mut sent = 0u64;
    // Once through in the order written, then from the start for rows written again
    // behind the first pass.
    for _pass in 0..2 {
        loop {
            let n = up.step()?;
            if n == 0 {
                break;
            }
            sent += n as u64;
            progress(&UploadProgress { sent, total });
        }
        up.rewind();
    }
    // The status as it is now: the run may have ended while it was sent.
    let status = store.run_summary(project, run_id)?.meta.status().map(str::to_owned);
    up.send_status(status_to_send(status.as_deref()))?;
    let mut report = up.report.clone();
    report.remaining = up.count_pending()?;
    Ok(report)
}
