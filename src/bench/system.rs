//! What machine a benchmark ran on, read from Linux's `/proc` and `/sys` (fields are `None`
//! where the system does not say), and the process's peak memory.

use std::path::Path;

/// The machine, as far as a benchmark report needs it to compare boards.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SystemInfo {
    /// `std::env::consts::ARCH` (x86_64, aarch64, arm).
    pub arch: &'static str,
    /// CPU model name (x86 `model name`; on ARM the implementer/part, e.g. `ARM Cortex-A76`).
    pub cpu: Option<String>,
    /// Cores the process may use.
    pub cores: usize,
    /// cpufreq governor of CPU 0 (`performance`, `ondemand`, ...).
    pub governor: Option<String>,
    /// SIMD features the CPU reports, among those tract's kernels select on.
    pub simd: Vec<&'static str>,
    /// Board name from the device tree (Raspberry Pi, Jetson), absent on PCs.
    pub board: Option<String>,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Temperature of thermal zone 0 in °C at the end of the run (throttling shows here).
    pub temperature_c: Option<f64>,
}

impl SystemInfo {
    /// Reads the running machine.
    pub fn probe() -> SystemInfo {
        SystemInfo {
            arch: std::env::consts::ARCH,
            cpu: read("/proc/cpuinfo").and_then(|s| cpu_name(&s)),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            simd: simd_features(),
            board: read("/proc/device-tree/model"),
            os: read("/etc/os-release").and_then(|s| os_name(&s)),
            kernel: read("/proc/sys/kernel/osrelease"),
            temperature_c: read("/sys/class/thermal/thermal_zone0/temp")
                .and_then(|s| s.parse::<f64>().ok())
                .map(|milli| milli / 1000.0),
        }
    }
}

/// A small text file, trimmed (device-tree strings end in NUL); `None` if absent or empty.
fn read(path: impl AsRef<Path>) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

/// The first value of `key` in a `key : value` listing such as `/proc/cpuinfo`.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// x86 names its CPU; ARM gives implementer and part numbers, named here for the cores our
/// boards carry (Pi 4: A72, Pi 5: A76, Jetson Orin: A78AE, Nano: A57, Xavier: Carmel).
fn cpu_name(cpuinfo: &str) -> Option<String> {
    if let Some(name) = field(cpuinfo, "model name") {
        return Some(name.to_string());
    }
    let implementer = field(cpuinfo, "CPU implementer")?;
    let part = field(cpuinfo, "CPU part")?;
    let known = match (implementer, part) {
        ("0x41", "0xd03") => Some("ARM Cortex-A53"),
        ("0x41", "0xd05") => Some("ARM Cortex-A55"),
        ("0x41", "0xd07") => Some("ARM Cortex-A57"),
        ("0x41", "0xd08") => Some("ARM Cortex-A72"),
        ("0x41", "0xd0b") => Some("ARM Cortex-A76"),
        ("0x41", "0xd42") => Some("ARM Cortex-A78AE"),
        ("0x41", "0xd0c") => Some("ARM Neoverse-N1"),
        ("0x4e", "0x004") => Some("NVIDIA Carmel"),
        _ => None,
    };
    Some(known.map_or_else(
        || format!("implementer {implementer} part {part}"),
        str::to_string,
    ))
}

fn os_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let v = line.strip_prefix("PRETTY_NAME=")?;
        Some(v.trim_matches('"').to_string())
    })
}

/// SIMD features detected at run time, the same way tract picks its kernels.
fn simd_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { found.push($f); } )* };
        }
        probe!(
            "sse4.1",
            "avx",
            "fma",
            "f16c",
            "avx2",
            "avx512f",
            "avx512bw",
            "avx512vnni",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($f) { found.push($f); } )* };
        }
        probe!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2");
    }
    found
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM").map(|kb| kb * 1024)
}

/// The process's current resident set (`VmRSS` of `/proc/self/status`), in bytes.
pub fn current_rss_bytes() -> Option<u64> {
    status_kib("VmRSS").map(|kb| kb * 1024)
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    field(&status, key)?.strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_x86_and_arm_cpus() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_name(x86).as_deref(), Some("AMD EPYC 7B13"));
        // A Raspberry Pi 5's /proc/cpuinfo.
        let pi5 = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\n\
                   CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\n";
        assert_eq!(cpu_name(pi5).as_deref(), Some("ARM Cortex-A76"));
        let other = "CPU implementer\t: 0x61\nCPU part\t: 0x022\n";
        assert_eq!(
            cpu_name(other).as_deref(),
            Some("implementer 0x61 part 0x022")
        );
        assert_eq!(cpu_name("flags : fpu"), None);
    }

    #[test]
    fn reads_os_release() {
        let s = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_name(s).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn probes_this_machine() {
        let info = SystemInfo::probe();
        assert!(info.cores >= 1);
        #[cfg(target_arch = "aarch64")]
        assert!(info.simd.contains(&"neon"), "{:?}", info.simd);
        #[cfg(target_os = "linux")]
        assert!(peak_rss_bytes().is_some_and(|b| b > 1 << 20));
    }
}
