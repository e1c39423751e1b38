//! GPUs: what each reports (utilization, memory, power, temperature), from NVIDIA's
//! NVML (loaded at run time through `nvml-wrapper`: no driver, no GPU series and no
//! error) or AMD's `rocm-smi` (as 0.4.0 reads it), and how the samples are named:
//! 0.4.0's `gpu`, `gpu_memory`, `gpu_power` (ours: `gpu_temperature`), with `_0`, `_1`, …
//! when there are several.

use std::process::Command;

/// One GPU's reading; a value the device cannot give is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuSample {
    /// Utilization, %.
    pub utilization: Option<f64>,
    /// Memory used, % of total.
    pub memory_percent: Option<f64>,
    /// Power draw, W.
    pub power_watts: Option<f64>,
    /// Temperature, °C.
    pub temperature: Option<f64>,
}

/// Where GPU readings come from.
pub trait GpuSource: Send + std::fmt::Debug {
    /// One reading per GPU, in device order.
    fn sample(&mut self) -> Vec<GpuSample>;
}

/// Rounds to one decimal, as 0.4.0 rounds GPU memory and power.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The metrics of a reading, named as 0.4.0 names them.
pub fn gpu_metrics(gpus: &[GpuSample]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (i, g) in gpus.iter().enumerate() {
        let suffix = if gpus.len() == 1 { String::new() } else { format!("_{i}") };
        let values = [
            ("gpu", g.utilization),
            ("gpu_memory", g.memory_percent.map(round1)),
            ("gpu_power", g.power_watts.map(round1)),
            ("gpu_temperature", g.temperature),
        ];
        for (name, value) in values {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                out.push((format!("{name}{suffix}"), v));
            }
        }
    }
    out
}

/// NVIDIA GPUs through NVML.
pub struct Nvml(nvml_wrapper::Nvml);

impl std::fmt::Debug for Nvml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nvml")
    }
}

impl Nvml {
    /// NVML, when a driver provides it; why not, otherwise.
    pub fn load() -> Result<Nvml, String> {
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| e.to_string())?;
        match nvml.device_count() {
            Ok(n) if n > 0 => Ok(Nvml(nvml)),
            Ok(_) => Err("NVML reports no GPU".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl GpuSource for Nvml {
    fn sample(&mut self) -> Vec<GpuSample> {
        use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
        let count = self.0.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|i| self.0.device_by_index(i).ok())
            .map(|d| GpuSample {
                utilization: d.utilization_rates().ok().map(|u| f64::from(u.gpu)),
                memory_percent: d
                    .memory_info()
                    .ok()
                    .filter(|m| m.total > 0)
                    .map(|m| m.used as f64 / m.total as f64 * 100.0),
                power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                temperature: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            })
            .collect()
    }
}

/// AMD GPUs through `rocm-smi --json`, read as goodseed 0.4.0 reads it.
#[derive(Debug)]
pub struct RocmSmi {
    program: String,
}

impl RocmSmi {
    /// `rocm-smi` when it runs and reports a GPU.
    pub fn find() -> Option<RocmSmi> {
        let mut smi = RocmSmi { program: "rocm-smi".to_owned() };
        (!smi.sample().is_empty()).then_some(smi)
    }
}

impl GpuSource for RocmSmi {
    fn sample(&mut self) -> Vec<GpuSample> {
        let Ok(out) = Command::new(&self.program)
            .args(["--showuse", "--showmemuse", "--showpower", "--showtemp", "--json"])
            .output()
        else {
            return Vec::new();
        };
        if !out.status.success() {
            return Vec::new();
        }
        parse_rocm_smi(&String::from_utf8_lossy(&out.stdout))
    }
}

/// `rocm-smi --json` output: `{"card0": {"GPU use (%)": "12", …}, …}`, cards in name
/// order, each key among those 0.4.0 knows.
pub fn parse_rocm_smi(json: &str) -> Vec<GpuSample> {
    let Ok(serde_json::Value::Object(cards)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return Vec::new();
    };
    let mut names: Vec<&String> = cards.keys().collect();
    names.sort();
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
        _ => None,
    };
    let first = |card: &serde_json::Map<String, serde_json::Value>, keys: &[&str]| {
        keys.iter().find_map(|k| card.get(*k)).and_then(number)
    };
    names
        .into_iter()
        .filter_map(|name| cards[name].as_object())
        .map(|card| GpuSample {
            utilization: first(card, &["GPU use (%)", "GPU Usage (%)", "GPU use"]),
            memory_percent: first(
                card,
                &[
                    "GPU Memory Allocated (VRAM%)",
                    "GPU memory use (%)",
                    "VRAM Usage (%)",
                    "GPU memory use",
                ],
            ),
            power_watts: first(
                card,
                &[
                    "Current Socket Graphics Package Power (W)",
                    "Average Graphics Package Power (W)",
                ],
            ),
            temperature: first(
                card,
                &["Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)"],
            ),
        })
        .filter(|g| *g != GpuSample::default())
        .collect()
}

/// The GPUs of this machine: NVIDIA's first, else AMD's, else none. What was not found
/// is said once, at debug level (never an error: most machines have no GPU).
pub fn detect() -> Option<Box<dyn GpuSource>> {
    match Nvml::load() {
        Ok(nvml) => return Some(Box::new(nvml)),
        Err(why) => debug(&format!("no NVIDIA GPU series: {why}")),
    }
    match RocmSmi::find() {
        Some(smi) => Some(Box::new(smi)),
        None => {
            debug("no AMD GPU series: rocm-smi is not there or reports no GPU");
            None
        }
    }
}

/// A debug message, shown when `GOODSEED_DEBUG` is set (the SDK logs nothing otherwise).
fn debug(message: &str) {
    if std::env::var_os("GOODSEED_DEBUG").is_some() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "goodseed: {message}");
    }
}

/// A source that reports what it is given, for tests of what a sampler does with GPUs
/// on a machine that has none.
#[derive(Debug, Clone, Default)]
pub struct FakeGpus(pub Vec<GpuSample>);

impl GpuSource for FakeGpus {
    fn sample(&mut self) -> Vec<GpuSample> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(u: f64, m: f64, p: f64, t: f64) -> GpuSample {
        GpuSample {
            utilization: Some(u),
            memory_percent: Some(m),
            power_watts: Some(p),
            temperature: Some(t),
        }
    }

    #[test]
    fn names_and_units_are_0_4_0s() {
        let one = gpu_metrics(&[gpu(87.0, 41.234, 250.06, 71.0)]);
        assert_eq!(
            one,
            [
                ("gpu".to_owned(), 87.0),
                ("gpu_memory".to_owned(), 41.2),
                ("gpu_power".to_owned(), 250.1),
                ("gpu_temperature".to_owned(), 71.0)
            ]
        );
        let mut two = FakeGpus(vec![
            gpu(1.0, 2.0, 3.0, 4.0),
            GpuSample { utilization: Some(5.0), ..GpuSample::default() },
        ]);
        let names: Vec<String> = gpu_metrics(&two.sample()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["gpu_0", "gpu_memory_0", "gpu_power_0", "gpu_temperature_0", "gpu_1"]);
        assert!(gpu_metrics(&[]).is_empty(), "no GPU, no series");
        let nan = GpuSample { utilization: Some(f64::NAN), ..GpuSample::default() };
        assert!(gpu_metrics(&[nan]).is_empty(), "a reading that is not a number is skipped");
    }

    #[test]
    fn reads_rocm_smi_as_0_4_0_does() {
        let json = r#"{"card1": {"GPU use (%)": "7", "GPU Memory Allocated (VRAM%)": "3",
                       "Current Socket Graphics Package Power (W)": "95.04"},
                      "card0": {"GPU use (%)": 55, "GPU memory use (%)": "12%",
                       "Temperature (Sensor edge) (C)": "48.0"},
                      "system": {"Driver version": "6.1"}}"#;
        let gpus = parse_rocm_smi(json);
        assert_eq!(gpus.len(), 2, "cards in name order; entries that are no card are skipped");
        assert_eq!(gpus[0].utilization, Some(55.0));
        assert_eq!(gpus[0].memory_percent, Some(12.0));
        assert_eq!(gpus[0].temperature, Some(48.0));
        assert_eq!((gpus[1].utilization, gpus[1].power_watts), (Some(7.0), Some(95.04)));
        assert!(parse_rocm_smi("not json").is_empty());
        assert!(parse_rocm_smi("[]").is_empty());
    }

    #[test]
    fn no_driver_means_no_gpu_and_no_error() {
        // This machine has no NVIDIA driver: loading fails with a reason, quietly.
        if std::path::Path::new("/proc/driver/nvidia").exists() {
            return;
        }
        assert!(Nvml::load().is_err());
    }
}
