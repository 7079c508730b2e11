//! Adapter discovery and selection, and the device every GPU kernel runs on.
//!
//! Selection honours wgpu's environment conventions: `WGPU_BACKEND` limits
//! the backends searched, `WGPU_ADAPTER_NAME` picks an adapter by name
//! substring, `WGPU_POWER_PREF` (low / high) steers the default choice. An
//! explicit [`AdapterChoice`] from the library or the command line wins.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// Which adapter to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    /// `WGPU_ADAPTER_NAME` if set, else wgpu's preference (high performance
    /// unless `WGPU_POWER_PREF` says otherwise).
    #[default]
    Auto,
    /// Position in [`list_adapters`]'s order.
    Index(usize),
    /// Case-insensitive substring of the adapter's name.
    Name(String),
}

impl FromStr for AdapterChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => AdapterChoice::Auto,
            _ => match s.parse::<usize>() {
                Ok(i) => AdapterChoice::Index(i),
                Err(_) => AdapterChoice::Name(s.to_string()),
            },
        })
    }
}

/// What a user needs to know about one adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub timestamp_queries: bool,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {})",
            self.name,
            self.backend,
            self.device_type,
            if self.driver.is_empty() {
                "?"
            } else {
                &self.driver
            }
        )
    }
}

fn summarize(index: usize, adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterSummary {
        index,
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver, info.driver_info]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        timestamp_queries: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Every adapter wgpu finds, in a stable order (the index used by
/// [`AdapterChoice::Index`]).
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = instance();
    enumerate(&instance)
        .iter()
        .enumerate()
        .map(|(i, a)| summarize(i, a))
        .collect()
}

fn by_name(adapters: Vec<wgpu::Adapter>, wanted: &str) -> Result<wgpu::Adapter, Error> {
    let needle = wanted.to_lowercase();
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    adapters
        .into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        .ok_or_else(|| Error::AdapterNotFound {
            wanted: wanted.to_string(),
            available: describe_names(&names),
        })
}

fn describe_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("[{i}] {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn select(instance: &wgpu::Instance, choice: &AdapterChoice) -> Result<wgpu::Adapter, Error> {
    let adapters = enumerate(instance);
    match choice {
        AdapterChoice::Index(i) => {
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            adapters
                .into_iter()
                .nth(*i)
                .ok_or_else(|| Error::AdapterNotFound {
                    wanted: format!("index {i}"),
                    available: describe_names(&names),
                })
        }
        AdapterChoice::Name(name) => by_name(adapters, name),
        AdapterChoice::Auto => {
            if adapters.is_empty() {
                return Err(Error::NoAdapter {
                    detail: match std::env::var("WGPU_BACKEND") {
                        Ok(b) => format!(" (WGPU_BACKEND={b})"),
                        Err(_) => String::new(),
                    },
                });
            }
            if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
                return by_name(adapters, &name);
            }
            let options = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env()
                    .unwrap_or(wgpu::PowerPreference::HighPerformance),
                ..Default::default()
            };
            pollster::block_on(instance.request_adapter(&options)).or_else(|_| {
                // request_adapter may refuse software adapters; fall back to
                // the first one enumerated.
                adapters.into_iter().next().ok_or(Error::NoAdapter {
                    detail: String::new(),
                })
            })
        }
    }
}

/// An open device with the limits gputrain asked for.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub timestamp_queries: bool,
    lost: Arc<AtomicBool>,
}

impl GpuContext {
    /// Opens a device on the chosen adapter, asking for the adapter's full
    /// buffer and dispatch limits (large populations need them).
    pub fn open(choice: &AdapterChoice) -> Result<Self, Error> {
        let instance = instance();
        let adapter = select(&instance, choice)?;
        let index = enumerate(&instance)
            .iter()
            .position(|a| a.get_info() == adapter.get_info())
            .unwrap_or(0);
        let summary = summarize(index, &adapter);
        let supported = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            max_buffer_size: supported.max_buffer_size,
            max_compute_workgroups_per_dimension: supported.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: supported
                .max_storage_buffers_per_shader_stage
                .min(8),
            ..wgpu::Limits::downlevel_defaults()
        };
        let timestamp_queries = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let required_features = if timestamp_queries {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gputrain"),
            required_features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::RequestDevice {
            adapter: summary.name.clone(),
            message: e.to_string(),
        })?;
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        device.set_device_lost_callback(move |_reason, _message| {
            flag.store(true, Ordering::SeqCst);
        });
        Ok(Self {
            device,
            queue,
            adapter: summary,
            limits,
            timestamp_queries,
            lost,
        })
    }

    /// Blocks until all submitted work is done; device loss or a driver
    /// error becomes an [`Error`], never a hang.
    pub fn wait(&self) -> Result<(), Error> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::DeviceLost(e.to_string()))?;
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::DeviceLost(format!(
                "adapter '{}' stopped responding",
                self.adapter.name
            )));
        }
        Ok(())
    }
}
