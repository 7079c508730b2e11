//! What an adapter does that its reported limits do not say, detected per
//! adapter from its driver name and device type, so that one driver's
//! workaround never caps another adapter.

/// Known behaviour of one adapter beyond its [`wgpu::Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterQuirks {
    /// Loop iterations one invocation may run, counted over all of its
    /// loops together, after which the driver ends them without a word;
    /// `None` where no such cap is known.
    pub max_loop_iterations: Option<u32>,
}

impl AdapterQuirks {
    /// An adapter with no known quirks.
    pub const NONE: Self = Self {
        max_loop_iterations: None,
    };

    /// llvmpipe (Mesa's software rasteriser behind lavapipe) counts an
    /// invocation's loop iterations, over all its loops, and past 65,535
    /// ends every loop and carries on with wrong results. Measured
    /// (Mesa 22.3.6): the fused kernel on 100 buffered samples, whose
    /// epoch loop holds a sample loop, trains correctly with 640 epochs per
    /// submission (640 x 102 iterations = 65,280) and wrongly with 648
    /// (66,096); see tests/gpu_fused.rs.
    pub const LLVMPIPE: Self = Self {
        max_loop_iterations: Some(65_535),
    };

    /// The quirks of the adapter `info` describes: llvmpipe's loop cap for
    /// a CPU-type adapter whose driver or name says llvmpipe.
    pub fn detect(info: &wgpu::AdapterInfo) -> Self {
        let says_llvmpipe = [&info.driver, &info.name]
            .iter()
            .any(|s| s.to_lowercase().contains("llvmpipe"));
        if says_llvmpipe && info.device_type == wgpu::DeviceType::Cpu {
            Self::LLVMPIPE
        } else {
            Self::NONE
        }
    }

    /// Most loop iterations one invocation may run on this adapter: the cap
    /// where one is known, else what a `u32` loop counter reaches.
    pub fn loop_limit(&self) -> u32 {
        self.max_loop_iterations.unwrap_or(u32::MAX)
    }

    /// A line for `gputrain adapters`, when there is anything to say.
    pub fn describe(&self) -> Option<String> {
        self.max_loop_iterations
            .map(|n| format!("an invocation's loops end after {n} iterations in all (llvmpipe)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, driver: &str, device_type: wgpu::DeviceType) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            vendor: 0,
            device: 0,
            device_type,
            device_pci_bus_id: String::new(),
            driver: driver.into(),
            driver_info: String::new(),
            backend: wgpu::Backend::Vulkan,
            subgroup_min_size: 4,
            subgroup_max_size: 128,
            transient_saves_memory: None,
            limit_bucket: None,
        }
    }

    #[test]
    fn only_llvmpipe_gets_the_loop_cap() {
        let lavapipe = info(
            "llvmpipe (LLVM 15.0.6, 256 bits)",
            "llvmpipe",
            wgpu::DeviceType::Cpu,
        );
        assert_eq!(AdapterQuirks::detect(&lavapipe), AdapterQuirks::LLVMPIPE);
        assert_eq!(AdapterQuirks::detect(&lavapipe).loop_limit(), 65_535);
        let h100 = info(
            "NVIDIA H100 80GB HBM3",
            "NVIDIA",
            wgpu::DeviceType::DiscreteGpu,
        );
        assert_eq!(AdapterQuirks::detect(&h100), AdapterQuirks::NONE);
        assert_eq!(AdapterQuirks::detect(&h100).loop_limit(), u32::MAX);
        // Another software adapter is not llvmpipe.
        let swiftshader = info(
            "SwiftShader Device (Subzero)",
            "SwiftShader driver",
            wgpu::DeviceType::Cpu,
        );
        assert_eq!(AdapterQuirks::detect(&swiftshader), AdapterQuirks::NONE);
        // A GPU whose name happens to mention llvmpipe is not a CPU adapter.
        let odd = info(
            "llvmpipe-named GPU",
            "vendor",
            wgpu::DeviceType::IntegratedGpu,
        );
        assert_eq!(AdapterQuirks::detect(&odd), AdapterQuirks::NONE);
    }
}
