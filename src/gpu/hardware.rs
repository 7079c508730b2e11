//! A hardware GPU that the system shows but wgpu cannot reach.
//!
//! Many GPU servers and containers expose CUDA and no Vulkan driver: the
//! NVIDIA container toolkit mounts the driver's Vulkan part
//! (`libGLX_nvidia.so`, `nvidia_icd.json`) only when
//! `NVIDIA_DRIVER_CAPABILITIES` includes `graphics`, and compute-only
//! images and hosts often lack it. wgpu then finds no adapter, or only
//! Mesa's software one, and a run meant for an H100 would crawl on the
//! processor without a word. [`unreached`] notices it from the device
//! nodes (`/dev/nvidia0`, AMD's `/dev/kfd`), and [`Unreached`] says what
//! is missing and how to fix it, read from the loader's and the toolkit's
//! variables and the installed driver manifests.
//!
//! The scan looks in `/dev`, or in the folder [`DEV_DIR_VARIABLE`] names:
//! tests put a fake `nvidia0` there to play a GPU machine without Vulkan.

use std::fmt;
use std::path::{Path, PathBuf};

use super::device::AdapterSummary;

/// Names the folder scanned for GPU device nodes instead of `/dev` (for
/// tests: a folder holding an empty file `nvidia0` plays an NVIDIA GPU).
pub const DEV_DIR_VARIABLE: &str = "GPUTRAIN_DEV_DIR";

/// Where the Vulkan loader looks for driver manifests (ICD files) when no
/// variable overrides it, as the loader's documentation lists them.
const MANIFEST_DIRS: [&str; 4] = [
    "/usr/share/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/usr/share/vulkan/icd.d.d",
];

/// Who made a GPU the system shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Nvidia,
    Amd,
}

impl Vendor {
    fn name(self) -> &'static str {
        match self {
            Vendor::Nvidia => "NVIDIA",
            Vendor::Amd => "AMD",
        }
    }

    /// A piece of the driver manifest's file name: `nvidia_icd.json`,
    /// `radeon_icd.x86_64.json`, `amd_icd64.json`.
    fn manifest_marks(self) -> &'static [&'static str] {
        match self {
            Vendor::Nvidia => &["nvidia"],
            Vendor::Amd => &["radeon", "amd"],
        }
    }
}

/// A GPU device node: the GPU is there, whether or not a driver reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisibleGpu {
    pub vendor: Vendor,
    pub node: PathBuf,
}

/// The GPUs whose device nodes are in `/dev` (or [`DEV_DIR_VARIABLE`]'s
/// folder): `nvidia0`, `nvidia1`, ... and AMD's compute node `kfd`, in
/// name order.
pub fn visible_gpus() -> Vec<VisibleGpu> {
    let dir =
        std::env::var_os(DEV_DIR_VARIABLE).map_or_else(|| PathBuf::from("/dev"), PathBuf::from);
    scan(&dir)
}

fn scan(dir: &Path) -> Vec<VisibleGpu> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<VisibleGpu> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let vendor = match name.strip_prefix("nvidia") {
                // nvidiactl, nvidia-uvm and nvidia-modeset are the
                // driver's, not a GPU's.
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Vendor::Nvidia,
                _ if name == "kfd" => Vendor::Amd,
                _ => return None,
            };
            Some(VisibleGpu {
                vendor,
                node: e.path(),
            })
        })
        .collect();
    found.sort_by(|a, b| a.node.cmp(&b.node));
    found
}

/// What the environment says about the Vulkan loader and the container:
/// the inputs of [`Unreached`]'s advice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DriverEnvironment {
    /// `WGPU_BACKEND`, when set.
    pub wgpu_backend: Option<String>,
    /// The loader's override of the driver list: `VK_DRIVER_FILES` (or
    /// the older `VK_ICD_FILENAMES`), with the variable's name.
    pub driver_files: Option<(&'static str, String)>,
    /// `NVIDIA_DRIVER_CAPABILITIES`, which the NVIDIA container toolkit
    /// reads to decide which driver libraries it mounts.
    pub capabilities: Option<String>,
    /// The driver manifests installed in the loader's default folders.
    pub manifests: Vec<PathBuf>,
}

impl DriverEnvironment {
    /// This process's environment and the installed manifests.
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let driver_files = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
            .into_iter()
            .find_map(|name| var(name).map(|v| (name, v)));
        let mut manifests: Vec<PathBuf> = MANIFEST_DIRS
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        manifests.sort();
        Self {
            wgpu_backend: var("WGPU_BACKEND"),
            driver_files,
            capabilities: var("NVIDIA_DRIVER_CAPABILITIES"),
            manifests,
        }
    }
}

/// A GPU the system shows and wgpu does not reach, with the reason and
/// the fix as far as the environment tells them.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreached {
    pub gpu: VisibleGpu,
    /// The adapters wgpu did find (software ones), by name.
    pub found: Vec<String>,
    /// What to do about it.
    pub fix: String,
}

/// The first visible GPU when none of `adapters` is a hardware one, with
/// the advice for it; `None` when a hardware adapter is there or no GPU
/// is visible. Enumerates adapters only when a GPU node is there, so a
/// machine without one pays a folder listing.
pub fn unreached(adapters: impl FnOnce() -> Vec<AdapterSummary>) -> Option<Unreached> {
    let gpu = visible_gpus().into_iter().next()?;
    let adapters = adapters();
    if adapters.iter().any(|a| !a.is_software()) {
        return None;
    }
    let found = adapters.into_iter().map(|a| a.name).collect();
    Some(diagnose(gpu, found, &DriverEnvironment::read()))
}

/// The advice for `gpu`, which wgpu does not reach (it found only
/// `found`), in environment `env`: the first cause that `env` shows.
pub fn diagnose(gpu: VisibleGpu, found: Vec<String>, env: &DriverEnvironment) -> Unreached {
    let vendor = gpu.vendor;
    let names_driver = |list: &str| {
        let list = list.to_lowercase();
        vendor.manifest_marks().iter().any(|m| list.contains(m))
    };
    let manifest = env.manifests.iter().find(|p| {
        p.file_name()
            .is_some_and(|n| names_driver(&n.to_string_lossy()))
    });
    let fix = if let Some(backend) = env
        .wgpu_backend
        .as_ref()
        .filter(|b| !b.to_lowercase().contains("vulkan"))
    {
        format!("WGPU_BACKEND={backend} keeps wgpu off Vulkan: unset it or include vulkan")
    } else if let Some((name, list)) = env.driver_files.as_ref().filter(|(_, l)| !names_driver(l)) {
        format!(
            "{name}={list} leaves the {} driver out of the Vulkan loader's list: unset it, or \
             add the driver's manifest{}",
            vendor.name(),
            manifest.map_or(String::new(), |m| format!(" ({})", m.display()))
        )
    } else if vendor == Vendor::Nvidia
        && env.capabilities.as_ref().is_some_and(|c| {
            let c = c.to_lowercase();
            !c.contains("graphics") && !c.contains("all")
        })
    {
        format!(
            "this looks like a container started with NVIDIA_DRIVER_CAPABILITIES={}, which \
             leaves out the driver's Vulkan part: start it with \
             NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or all); with Docker: \
             --gpus all -e NVIDIA_DRIVER_CAPABILITIES=all",
            env.capabilities.as_deref().unwrap_or_default()
        )
    } else if let Some(manifest) = manifest {
        format!(
            "the driver's manifest {} is installed but the Vulkan loader does not open it: \
             `VK_LOADER_DEBUG=error,driver vulkaninfo --summary` says why (often the \
             library it names is missing or from another driver version than the kernel \
             module's)",
            manifest.display()
        )
    } else {
        match vendor {
            Vendor::Nvidia => "no NVIDIA Vulkan driver is installed (no nvidia_icd.json in \
                 /usr/share/vulkan/icd.d or /etc/vulkan/icd.d): install the driver's Vulkan \
                 part (Debian/Ubuntu: libnvidia-gl-<driver version>, the version nvidia-smi \
                 shows); in a container, start it with NVIDIA_DRIVER_CAPABILITIES=all"
                .to_string(),
            Vendor::Amd => "no AMD Vulkan driver is installed: install Mesa's RADV \
                 (Debian/Ubuntu: apt-get install mesa-vulkan-drivers) or AMDVLK; in a \
                 container, pass /dev/dri as well as /dev/kfd"
                .to_string(),
        }
    };
    Unreached { gpu, found, fix }
}

impl fmt::Display for Unreached {
    /// "an NVIDIA GPU is visible (/dev/nvidia0) but wgpu finds no Vulkan
    /// driver for it (adapters found: llvmpipe ..., a software one). Fix: ..."
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an {} GPU is visible ({}) but wgpu finds no Vulkan driver for it ({}). \
             Fix: {}",
            self.gpu.vendor.name(),
            self.gpu.node.display(),
            if self.found.is_empty() {
                "no adapter at all".to_string()
            } else {
                format!("only the software adapter {}", self.found.join(", "))
            },
            self.fix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nvidia() -> VisibleGpu {
        VisibleGpu {
            vendor: Vendor::Nvidia,
            node: PathBuf::from("/dev/nvidia0"),
        }
    }

    #[test]
    fn the_scan_finds_gpus_and_not_the_drivers_control_nodes() {
        let dir = std::env::temp_dir().join(format!("gputrain-dev-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "nvidia1",
            "nvidia0",
            "nvidiactl",
            "nvidia-uvm",
            "nvidia-modeset",
            "kfd",
            "null",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = scan(&dir);
        let names: Vec<(Vendor, String)> = found
            .iter()
            .map(|g| {
                (
                    g.vendor,
                    g.node.file_name().unwrap().to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (Vendor::Amd, "kfd".to_string()),
                (Vendor::Nvidia, "nvidia0".to_string()),
                (Vendor::Nvidia, "nvidia1".to_string())
            ]
        );
        assert!(scan(&dir.join("absent")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_cause_gets_its_own_fix() {
        let none = DriverEnvironment::default();
        let fix = |env: &DriverEnvironment| diagnose(nvidia(), vec![], env).fix;
        assert!(fix(&none).contains("libnvidia-gl-"), "{}", fix(&none));

        let gl = DriverEnvironment {
            wgpu_backend: Some("gl".into()),
            ..none.clone()
        };
        assert!(
            fix(&gl).starts_with("WGPU_BACKEND=gl keeps wgpu off Vulkan"),
            "{}",
            fix(&gl)
        );

        let files = DriverEnvironment {
            driver_files: Some((
                "VK_DRIVER_FILES",
                "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json".into(),
            )),
            manifests: vec!["/usr/share/vulkan/icd.d/nvidia_icd.json".into()],
            ..none.clone()
        };
        let text = fix(&files);
        assert!(
            text.starts_with("VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd"),
            "{text}"
        );
        assert!(
            text.contains("(/usr/share/vulkan/icd.d/nvidia_icd.json)"),
            "{text}"
        );
        // A list that names the driver is not the cause.
        let listed = DriverEnvironment {
            driver_files: Some((
                "VK_ICD_FILENAMES",
                "/etc/vulkan/icd.d/nvidia_icd.json".into(),
            )),
            manifests: vec!["/etc/vulkan/icd.d/nvidia_icd.json".into()],
            ..none.clone()
        };
        assert!(
            fix(&listed).contains("installed but the Vulkan loader does not open it"),
            "{}",
            fix(&listed)
        );

        let compute_only = DriverEnvironment {
            capabilities: Some("compute,utility".into()),
            ..none.clone()
        };
        let text = fix(&compute_only);
        assert!(
            text.contains("NVIDIA_DRIVER_CAPABILITIES=compute,utility, which"),
            "{text}"
        );
        assert!(text.contains("compute,utility,graphics"), "{text}");
        for enough in ["all", "compute,utility,graphics"] {
            let env = DriverEnvironment {
                capabilities: Some(enough.into()),
                ..none.clone()
            };
            assert!(
                fix(&env).contains("libnvidia-gl-"),
                "{enough}: {}",
                fix(&env)
            );
        }

        let amd = diagnose(
            VisibleGpu {
                vendor: Vendor::Amd,
                node: "/dev/kfd".into(),
            },
            vec!["llvmpipe (LLVM 15.0.6, 256 bits)".into()],
            &compute_only,
        );
        // The NVIDIA toolkit's variable says nothing about an AMD GPU.
        assert!(amd.fix.contains("RADV"), "{}", amd.fix);
        assert_eq!(
            amd.to_string(),
            format!(
                "an AMD GPU is visible (/dev/kfd) but wgpu finds no Vulkan driver for it (only \
                 the software adapter llvmpipe (LLVM 15.0.6, 256 bits)). Fix: {}",
                amd.fix
            )
        );
    }
}
