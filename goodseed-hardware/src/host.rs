//! Hardware readings: the host's CPU and memory, the trainer's process tree, and its
//! GPUs, named as goodseed 0.4.0 names them (`cpu`, `memory`, `gpu…`) with ours beside
//! them (`process_cpu`, `host_memory`, `host_memory_percent`, `gpu_temperature`).
//!
//! - `cpu`: the host's CPU use, % of all cores, since the last reading (0.4.0's
//!   `psutil.cpu_percent()`, one decimal);
//! - `memory`: the resident memory of this process and all its descendants, GB (2^30
//!   bytes), two decimals (0.4.0's);
//! - `process_cpu`: the CPU use of the process tree since the last reading, % of one core
//!   (a trainer using three cores reads 300), one decimal;
//! - `host_memory`, `host_memory_percent`: memory in use on the host, GB and %.

use std::collections::HashSet;

use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::gpu::{GpuSample, GpuSource, gpu_metrics};

/// Which readings to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// `cpu`, `host_memory`, `host_memory_percent`.
    pub host: bool,
    /// `memory`, `process_cpu`.
    pub process: bool,
    /// `gpu*`.
    pub gpu: bool,
}

/// Takes readings; the first CPU figures cover the time since it was made. The process
/// tree is this process's.
pub struct Hardware {
    system: System,
    parts: Parts,
    gpus: Option<Box<dyn GpuSource>>,
    me: Pid,
}

impl std::fmt::Debug for Hardware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hardware")
            .field("parts", &self.parts)
            .field("gpus", &self.gpus)
            .finish_non_exhaustive()
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

const GIB: f64 = (1u64 << 30) as f64;

impl Hardware {
    /// Readings of `parts`, GPUs from `gpus` (see [`crate::detect`]).
    pub fn new(parts: Parts, gpus: Option<Box<dyn GpuSource>>) -> Hardware {
        // sysinfo keeps each process's stat file open unless told not to: a trainer's
        // descriptors are its own.
        sysinfo::set_open_files_limit(0);
        let mut hardware = Hardware {
            system: System::new(),
            parts,
            gpus: if parts.gpu { gpus } else { None },
            me: Pid::from_u32(std::process::id()),
        };
        // CPU use is measured between two readings: this is the first.
        if parts.host {
            hardware.system.refresh_cpu_usage();
        }
        if parts.process {
            hardware.refresh_tree();
        }
        hardware
    }

    /// This process and its descendants, refreshed (CPU and memory only).
    fn refresh_tree(&mut self) -> Vec<Pid> {
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory().without_tasks();
        let tree = match descendants_from_proc(self.me) {
            Some(tree) => {
                self.system.refresh_processes_specifics(ProcessesToUpdate::Some(&tree), true, kind);
                tree
            }
            // No `/proc/<pid>/task/*/children` here: every process, then the parents.
            None => {
                self.system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
                let mut tree = vec![self.me];
                let mut seen: HashSet<Pid> = tree.iter().copied().collect();
                let mut grew = true;
                while grew {
                    grew = false;
                    for (pid, p) in self.system.processes() {
                        if !seen.contains(pid) && p.parent().is_some_and(|pp| seen.contains(&pp)) {
                            seen.insert(*pid);
                            tree.push(*pid);
                            grew = true;
                        }
                    }
                }
                tree
            }
        };
        // Processes that left the tree are forgotten, so a reused pid starts afresh.
        let keep: HashSet<Pid> = tree.iter().copied().collect();
        let gone: Vec<Pid> =
            self.system.processes().keys().filter(|p| !keep.contains(p)).copied().collect();
        if !gone.is_empty() {
            self.system.refresh_processes_specifics(ProcessesToUpdate::Some(&gone), true, kind);
        }
        tree
    }

    /// One reading of every part that is on.
    pub fn read(&mut self) -> Reading {
        let mut reading = Reading::default();
        if self.parts.host {
            self.system.refresh_cpu_usage();
            reading.cpu = Some(round(f64::from(self.system.global_cpu_usage()), 1));
            reading.cores = Some(self.system.cpus().len());
        }
        if self.parts.process {
            let tree = self.refresh_tree();
            let (mut rss, mut cpu) = (0u64, 0f64);
            for pid in &tree {
                if let Some(p) = self.system.process(*pid) {
                    rss += p.memory();
                    cpu += f64::from(p.cpu_usage());
                }
            }
            reading.process_memory_gb = Some(round(rss as f64 / GIB, 2));
            reading.process_cpu = Some(round(cpu, 1));
        }
        if self.parts.host {
            self.system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
            let (used, total) = (self.system.used_memory(), self.system.total_memory());
            reading.host_memory_gb = Some(round(used as f64 / GIB, 2));
            reading.host_memory_total_gb = Some(round(total as f64 / GIB, 2));
            if total > 0 {
                reading.host_memory_percent = Some(round(used as f64 / total as f64 * 100.0, 1));
            }
        }
        if let Some(gpus) = &mut self.gpus {
            reading.gpus = gpus.sample();
        }
        reading
    }

    /// One reading of every part that is on, as (name, value), named as a run's
    /// monitoring series are (see the module's documentation).
    pub fn sample(&mut self) -> Vec<(String, f64)> {
        self.read().metrics()
    }
}

/// One reading; a part that is off (or cannot be read) is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// The host's CPU use, % of all cores, since the last reading.
    pub cpu: Option<f64>,
    /// The host's CPU cores.
    pub cores: Option<usize>,
    /// The process tree's resident memory, GB.
    pub process_memory_gb: Option<f64>,
    /// The process tree's CPU use, % of one core.
    pub process_cpu: Option<f64>,
    /// Memory in use on the host, GB.
    pub host_memory_gb: Option<f64>,
    /// The host's memory, GB.
    pub host_memory_total_gb: Option<f64>,
    /// Memory in use on the host, %.
    pub host_memory_percent: Option<f64>,
    /// Each GPU's reading.
    pub gpus: Vec<GpuSample>,
}

impl Reading {
    /// The reading as (name, value), named as 0.4.0 names its series, ours beside.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let mut push = |name: &str, v: Option<f64>| {
            if let Some(v) = v {
                out.push((name.to_owned(), v));
            }
        };
        push("cpu", self.cpu);
        push("memory", self.process_memory_gb);
        push("process_cpu", self.process_cpu);
        push("host_memory", self.host_memory_gb);
        push("host_memory_percent", self.host_memory_percent);
        out.extend(gpu_metrics(&self.gpus));
        out
    }
}

/// This process and its descendants, from `/proc/<pid>/task/<tid>/children` (Linux);
/// `None` where that is not there.
fn descendants_from_proc(me: Pid) -> Option<Vec<Pid>> {
    let children_of = |pid: Pid| -> Option<Vec<Pid>> {
        let mut out = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()).map(Pid::from_u32),
            );
        }
        Some(out)
    };
    // The file is there when the kernel has it; a process that just exited has none.
    if !std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists() {
        return None;
    }
    let mut tree = vec![me];
    let mut i = 0;
    while i < tree.len() {
        let pid = tree[i];
        for child in children_of(pid).unwrap_or_default() {
            if !tree.contains(&child) {
                tree.push(child);
            }
        }
        i += 1;
    }
    Some(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::FakeGpus;

    #[test]
    fn readings_are_named_and_rounded_as_0_4_0s() {
        let gpus = FakeGpus(vec![
            GpuSample { utilization: Some(50.0), ..GpuSample::default() },
            GpuSample { utilization: Some(60.0), ..GpuSample::default() },
        ]);
        let parts = Parts { host: true, process: true, gpu: true };
        let mut hw = Hardware::new(parts, Some(Box::new(gpus)));
        let sample = hw.sample();
        let names: Vec<&str> = sample.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "memory",
                "process_cpu",
                "host_memory",
                "host_memory_percent",
                "gpu_0",
                "gpu_1"
            ]
        );
        let value = |name: &str| sample.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let memory = value("memory").expect("memory");
        assert!((0.0..64.0).contains(&memory), "the test process's RSS in GB: {memory}");
        assert_eq!(memory, round(memory, 2), "two decimals");
        let cpu = value("cpu").expect("cpu");
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        assert!(value("host_memory_percent").is_some_and(|p| (0.0..=100.0).contains(&p)));
        // Parts switched off are not read.
        let mut none = Hardware::new(Parts { host: false, process: false, gpu: false }, None);
        assert!(none.sample().is_empty());
    }

    #[test]
    fn the_process_tree_includes_children() {
        let Some(before) = descendants_from_proc(Pid::from_u32(std::process::id())) else {
            return; // no /proc children files on this machine
        };
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("spawn sleep");
        let with_child = descendants_from_proc(Pid::from_u32(std::process::id())).expect("tree");
        let _ = child.kill();
        let _ = child.wait();
        assert!(with_child.contains(&Pid::from_u32(child.id())), "{before:?} then {with_child:?}");
    }
}
