//! Ours: the machine the server runs on, often the training box itself.
//! `GET /api/system/status` is a reading taken now (host CPU and memory, this server
//! process, every GPU); `GET /api/system/history` the readings a sampler thread took
//! every [`EVERY`] over the last hour (kept in memory, started with the server).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use actix_web::{HttpRequest, HttpResponse, web};
use goodseed_core::parse_python_int;
use goodseed_core::time::UtcMicros;
use goodseed_hardware::{Hardware, Parts, Reading};

use crate::body::{blocking, json_response};
use crate::error::ApiError;
use crate::json::Json;
use crate::query::Query;
use crate::state::AppState;

/// Time between the history's readings.
pub(crate) const EVERY: Duration = Duration::from_secs(5);
/// Readings kept: an hour's.
pub(crate) const KEPT: usize = 720;

/// The machine's readings: the sampler's hardware and its history.
#[derive(Debug)]
pub(crate) struct SystemMonitor {
    hardware: Mutex<Hardware>,
    history: Mutex<VecDeque<(SystemTime, Reading)>>,
}

impl SystemMonitor {
    /// The monitor, with its sampler thread (which ends when the monitor is dropped).
    pub(crate) fn start() -> Arc<SystemMonitor> {
        let parts = Parts { host: true, process: true, gpu: true };
        let monitor = Arc::new(SystemMonitor {
            hardware: Mutex::new(Hardware::new(parts, goodseed_hardware::detect())),
            history: Mutex::new(VecDeque::with_capacity(KEPT)),
        });
        let weak = Arc::downgrade(&monitor);
        let _ = std::thread::Builder::new().name("goodseed-system".into()).spawn(move || {
            loop {
                let Some(monitor) = weak.upgrade() else { return };
                let reading = monitor.read();
                let mut history = monitor.history.lock().unwrap_or_else(PoisonError::into_inner);
                if history.len() == KEPT {
                    history.pop_front();
                }
                history.push_back((SystemTime::now(), reading));
                drop(history);
                drop(monitor);
                std::thread::sleep(EVERY);
            }
        });
        monitor
    }

    fn read(&self) -> Reading {
        self.hardware.lock().unwrap_or_else(PoisonError::into_inner).read()
    }
}

fn opt(j: &mut Json, key: &str, v: Option<f64>) {
    j.key(key);
    match v {
        Some(v) => j.f64(v),
        None => j.null(),
    };
}

fn reading_fields(j: &mut Json, r: &Reading) {
    opt(j, "cpu", r.cpu);
    j.key("memory").begin_object();
    opt(j, "used_gb", r.host_memory_gb);
    opt(j, "total_gb", r.host_memory_total_gb);
    opt(j, "percent", r.host_memory_percent);
    j.end_object();
    j.key("gpus").begin_array();
    for (i, g) in r.gpus.iter().enumerate() {
        j.begin_object().key("index").i64(i as i64);
        opt(j, "utilization", g.utilization);
        opt(j, "memory_percent", g.memory_percent);
        opt(j, "power_watts", g.power_watts);
        opt(j, "temperature", g.temperature);
        j.end_object();
    }
    j.end_array();
}

fn iso(t: SystemTime) -> String {
    UtcMicros::from(t).to_iso8601()
}

/// `GET /api/system/status`
pub(crate) async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let monitor = Arc::clone(&state.system);
    let reading = blocking(move || Ok(monitor.read())).await?;
    let mut j = Json::with_capacity(512);
    j.begin_object();
    j.key("hostname").str(&goodseed_store::host_name());
    j.key("time").str(&iso(SystemTime::now()));
    match reading.cores {
        Some(n) => j.key("cores").i64(n as i64),
        None => j.key("cores").null(),
    };
    reading_fields(&mut j, &reading);
    j.key("server").begin_object();
    opt(&mut j, "memory_gb", reading.process_memory_gb);
    opt(&mut j, "cpu", reading.process_cpu);
    j.end_object();
    j.end_object();
    Ok(json_response(j))
}

/// `GET /api/system/history[?limit=N]`: the newest `limit` readings (all kept by default),
/// oldest first.
pub(crate) async fn history(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string());
    let limit = match query.get("limit") {
        None => KEPT,
        Some(text) => parse_python_int(text)
            .filter(|n| (1..=KEPT as i64).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be an integer from 1 to {KEPT}, got {text:?}"
                ))
            })?,
    };
    let history = state.system.history.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut j = Json::with_capacity(256 + history.len() * 160);
    j.begin_object();
    j.key("hostname").str(&goodseed_store::host_name());
    j.key("interval_seconds").f64(EVERY.as_secs_f64());
    j.key("samples").begin_array();
    for (t, r) in history.iter().skip(history.len().saturating_sub(limit)) {
        j.begin_object().key("time").str(&iso(*t));
        reading_fields(&mut j, r);
        j.end_object();
    }
    j.end_array().end_object();
    Ok(json_response(j))
}
