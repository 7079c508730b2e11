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
use std::time::Duration;

use crate::error::Error;
use crate::gpu::options::DEVICE_WAIT_FLOOR;
use crate::gpu::quirks::AdapterQuirks;

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
    /// What the adapter does beyond its limits (llvmpipe's loop cap).
    pub quirks: AdapterQuirks,
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

impl AdapterSummary {
    /// A software adapter (wgpu device type Cpu: lavapipe/llvmpipe, WARP,
    /// SwiftShader), which runs the shaders on the processor.
    pub fn is_software(&self) -> bool {
        self.device_type == format!("{:?}", wgpu::DeviceType::Cpu)
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
        quirks: AdapterQuirks::detect(&adapter.get_info()),
    }
}

/// Environment variables through which a user configures Mesa's
/// device-selection layer; when any is set, the layer stays on.
pub const DEVICE_SELECT_SETTINGS: [&str; 3] =
    ["NODEVICE_SELECT", "MESA_VK_DEVICE_SELECT", "DRI_PRIME"];

/// Turns off Mesa's device-selection layer (`VK_LAYER_MESA_device_select`)
/// for this process, unless the user configured it.
///
/// Why: wgpu enables the window-system surface extensions on every Vulkan
/// instance (xlib, xcb, wayland). Seeing them, that implicit layer looks
/// for the display's GPU during `vkEnumeratePhysicalDevices` by connecting
/// to the Wayland compositor, and libwayland-client prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` once
/// per enumeration (six times a run) on every headless machine: cron,
/// Slurm, containers, CI. The layer only reorders adapters to put the
/// display's first; gputrain chooses its adapter itself ([`AdapterChoice`]),
/// so the order it lists is the same with or without a display session.
/// `NODEVICE_SELECT=1` is the layer manifest's own off switch.
///
/// # Safety
/// Sets an environment variable: call it before the process starts other
/// threads (the first line of `main`), as [`std::env::set_var`] requires.
pub unsafe fn quiet_display_probe() {
    if DEVICE_SELECT_SETTINGS
        .iter()
        .all(|name| std::env::var_os(name).is_none())
    {
        // SAFETY: the caller guarantees no other thread is running.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

/// The backend names wgpu reads from `WGPU_BACKEND` (a comma list).
const WGPU_BACKEND_NAMES: [&str; 10] = [
    "vulkan", "vk", "dx12", "d3d12", "metal", "mtl", "opengl", "gles", "gl", "webgpu",
];

/// Refuses a `WGPU_BACKEND` or `WGPU_POWER_PREF` that wgpu would ignore
/// (it only logs a warning no one sees, then searches every backend or
/// none). Checked by every command that may open a GPU, whatever
/// `--backend` says, so a misspelling is never silent.
pub fn check_environment() -> Result<(), Error> {
    check_wgpu_backend(std::env::var("WGPU_BACKEND").ok().as_deref())?;
    check_power_pref(std::env::var("WGPU_POWER_PREF").ok().as_deref())
}

fn check_wgpu_backend(value: Option<&str>) -> Result<(), Error> {
    let Some(value) = value else { return Ok(()) };
    let known = |name: &str| WGPU_BACKEND_NAMES.contains(&name) || name == "noop";
    let names: Vec<String> = value.split(',').map(|b| b.trim().to_lowercase()).collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|b| !b.is_empty() && !known(b))
        .collect();
    if unknown.is_empty() && names.iter().any(|b| !b.is_empty()) {
        return Ok(());
    }
    let what = match unknown.as_slice() {
        [] => "names no backend".to_string(),
        [one] => format!("names an unknown backend '{one}'"),
        many => format!(
            "names unknown backends {}",
            many.iter()
                .map(|b| format!("'{b}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(Error::Config(format!(
        "WGPU_BACKEND={value} {what}: wgpu knows {} (a comma list); unset it to search \
         every backend",
        WGPU_BACKEND_NAMES.join(", ")
    )))
}

fn check_power_pref(value: Option<&str>) -> Result<(), Error> {
    match value.map(str::to_lowercase).as_deref() {
        None | Some("low" | "high" | "none") => Ok(()),
        Some(_) => Err(Error::Config(format!(
            "WGPU_POWER_PREF={} is not low, high or none; unset it for wgpu's preference \
             (high)",
            value.unwrap_or_default()
        ))),
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

/// The adapter `choice` picks, described without opening a device.
pub fn chosen_adapter(choice: &AdapterChoice) -> Result<AdapterSummary, Error> {
    pick(&instance(), choice).map(|(_, summary)| summary)
}

/// The adapter `choice` picks and its summary (with its index in
/// [`list_adapters`]'s order).
fn pick(
    instance: &wgpu::Instance,
    choice: &AdapterChoice,
) -> Result<(wgpu::Adapter, AdapterSummary), Error> {
    let adapter = select(instance, choice)?;
    let index = enumerate(instance)
        .iter()
        .position(|a| a.get_info() == adapter.get_info())
        .unwrap_or(0);
    let summary = summarize(index, &adapter);
    Ok((adapter, summary))
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
    /// This adapter's quirks: the kernels and the submission sizes keep
    /// within them.
    pub quirks: AdapterQuirks,
    lost: Arc<AtomicBool>,
}

impl GpuContext {
    /// Opens a device on the chosen adapter, asking for the adapter's full
    /// buffer and dispatch limits (large populations need them).
    pub fn open(choice: &AdapterChoice) -> Result<Self, Error> {
        let (adapter, summary) = pick(&instance(), choice)?;
        let supported = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            max_buffer_size: supported.max_buffer_size,
            max_compute_workgroups_per_dimension: supported.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: supported
                .max_storage_buffers_per_shader_stage
                .min(8),
            // The fused kernel's schedule table (fused::schedule_epochs).
            max_uniform_buffer_binding_size: supported.max_uniform_buffer_binding_size.min(1 << 16),
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
            quirks: summary.quirks,
            adapter: summary,
            limits,
            timestamp_queries,
            lost,
        })
    }

    /// Blocks until all submitted work is done, at most
    /// [`DEVICE_WAIT_FLOOR`]; device loss, a driver error or the timeout
    /// becomes an [`Error`], never a hang.
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_at_most(DEVICE_WAIT_FLOOR, None)
    }

    /// Blocks until all submitted work is done, or fails with
    /// [`Error::DeviceTimeout`] after `timeout` (`expected`, the time the
    /// work should take, goes into the message).
    pub fn wait_at_most(&self, timeout: Duration, expected: Option<Duration>) -> Result<(), Error> {
        let wait = wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(timeout),
        };
        match self.device.poll(wait) {
            Ok(_) => {}
            Err(wgpu::PollError::Timeout) => {
                return Err(Error::DeviceTimeout {
                    adapter: self.adapter.name.clone(),
                    waited: timeout.as_secs_f64(),
                    expected: expected.map(|e| e.as_secs_f64()),
                });
            }
            Err(e) => return Err(Error::DeviceLost(e.to_string())),
        }
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::DeviceLost(format!(
                "adapter '{}' stopped responding",
                self.adapter.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgpu_backend_names_wgpu_reads_pass_and_others_are_refused() {
        for ok in [
            None,
            Some("vulkan"),
            Some("VK"),
            Some("gl, vulkan"),
            Some("noop"),
        ] {
            assert!(check_wgpu_backend(ok).is_ok(), "{ok:?}");
        }
        let message = |v| check_wgpu_backend(Some(v)).unwrap_err().to_string();
        assert_eq!(
            message("vulkn"),
            "WGPU_BACKEND=vulkn names an unknown backend 'vulkn': wgpu knows vulkan, vk, dx12, \
             d3d12, metal, mtl, opengl, gles, gl, webgpu (a comma list); unset it to search \
             every backend"
        );
        assert!(message("vulkan,metl,dx13").contains("unknown backends 'metl', 'dx13'"));
        assert!(message("").contains("names no backend"));
        assert!(message(" , ").contains("names no backend"));
    }

    #[test]
    fn power_preference_is_low_high_or_none() {
        for ok in [None, Some("low"), Some("HIGH"), Some("none")] {
            assert!(check_power_pref(ok).is_ok(), "{ok:?}");
        }
        let e = check_power_pref(Some("fast")).unwrap_err().to_string();
        assert!(
            e.starts_with("WGPU_POWER_PREF=fast is not low, high or none"),
            "{e}"
        );
    }
}
