//! `system.inventory`: what this host is.
//!
//! Reads: hostname, OS release (`/etc/os-release` under the host root), kernel version,
//! architecture, uptime and boot time, CPU model and count, memory and swap totals, and the
//! mounted filesystems with their type, size and free space (sysinfo; only the memory, CPU
//! list and disk list are refreshed — never a full process scan).
//! Evidences: ISO27001:2022 A.5.9 (inventory of assets), A.8.9 (configuration management);
//! ISO42001:2023 A.4.5 (system and computing resources).
//! Never collects: machine-id (the agent records only an app-specific derivation of it),
//! serial numbers, user names, process lists, environment variables, file contents.

use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

/// Registration of `system.inventory`.
pub const REGISTRATION: Registration = Registration {
    kind: "system.inventory",
    summary: "host identity, OS, kernel, CPU, memory and filesystems",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.5.9", // Inventory of information and other associated assets
        "ISO27001:2022/A.8.9", // Configuration management
        "ISO42001:2023/A.4.5", // System and computing resources
    ],
    checks: crate::builtin_checks!("system/inventory"),
    default: true,
    host: false,
};

/// `system.inventory` options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Filesystem types left out of the list (pseudo filesystems by default).
    #[serde(default = "default_skip_fs")]
    skip_fs_types: Vec<String>,
}

fn default_skip_fs() -> Vec<String> {
    [
        "tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup2",
    ]
    .map(String::from)
    .to_vec()
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Inventory { config }))
}

/// The `system.inventory` collector.
struct Inventory {
    config: Config,
}

impl Collector for Inventory {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let skip = self.config.skip_fs_types.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || observe(&ctx, &skip))
                .await
                .map_err(|e| CollectError::Invalid(format!("inventory task failed: {e}")))?
        })
    }
}

fn observe(ctx: &Context, skip_fs: &[String]) -> Result<Observation, CollectError> {
    let os_release =
        crate::read::optional_text(&ctx.host_path("/etc/os-release"), ctx.max_file_bytes)?
            .map(|s| crate::base::os_release::parse(&s))
            .unwrap_or(Value::Null);
    let machine_id_present = crate::read::optional_text(&ctx.host_path("/etc/machine-id"), 4096)
        .ok()
        .flatten()
        .is_some_and(|s| !s.trim().is_empty());

    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::everything())
            .with_cpu(CpuRefreshKind::nothing()),
    )
    .map_err(|e| CollectError::Unavailable(format!("system information: {e}")))?;
    let cpus = sys.cpus();
    let brand = cpus.first().map(|c| c.brand().trim().to_string());

    let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
        .map_err(|e| CollectError::Unavailable(format!("disk list: {e}")))?;
    let mut filesystems: Vec<Value> = disks
        .iter()
        .filter(|d| {
            let fs = d.file_system().to_string_lossy();
            !skip_fs.iter().any(|s| s == fs.as_ref())
        })
        .map(|d| {
            json!({
                "mount_point": d.mount_point().to_string_lossy(),
                "device": d.name().to_string_lossy(),
                "fs_type": d.file_system().to_string_lossy(),
                "total_bytes": d.total_space(),
                "available_bytes": d.available_space(),
                "read_only": d.is_read_only(),
                "removable": d.is_removable(),
            })
        })
        .collect();
    filesystems.sort_by(|a, b| a["mount_point"].as_str().cmp(&b["mount_point"].as_str()));

    Ok(json!({
        "hostname": System::host_name().ok(),
        "os": os_release,
        "kernel": System::kernel_version().ok(),
        "arch": System::cpu_arch(),
        "uptime_seconds": System::uptime().ok(),
        "boot_time": System::boot_time().ok(),
        "machine_id_present": machine_id_present,
        "cpu": {
            "logical_count": cpus.len(),
            "physical_count": System::physical_core_count().ok(),
            "brand": brand,
        },
        "memory": {
            "total_bytes": sys.total_memory(),
            "available_bytes": sys.available_memory(),
            "swap_total_bytes": sys.total_swap(),
        },
        "filesystems": filesystems,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn observes_this_host() {
        let c = build(toml::Spanned::new(
            0..0,
            toml::de::DeValue::Table(Default::default()),
        ))
        .expect("defaults");
        let obs = c.collect(&Context::default()).await.expect("collect");
        assert!(obs["memory"]["total_bytes"].as_u64().unwrap_or(0) > 0);
        assert!(obs["cpu"]["logical_count"].as_u64().unwrap_or(0) >= 1);
        assert!(obs["filesystems"].is_array());
    }
}
