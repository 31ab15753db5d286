//! `encryption.disks`: which filesystems and swap areas sit on encrypted block devices.
//!
//! Reads (under the host root): `/proc/mounts`, `/proc/swaps`, `/sys/block/*/dm/{name,uuid}`
//! and `/sys/block/*/slaves` (device-mapper stacks: a dm-crypt device has a uuid starting
//! with `CRYPT-`; LVM on LUKS is found through the slaves), and the first 32 KiB of the
//! devices under a dm-crypt mapping for the LUKS header (version, cipher, key size) where
//! readable.
//! Records: every mounted filesystem with its device, whether it is a data filesystem (a
//! block device with a data filesystem type, outside the excluded mount points), whether it
//! is encrypted and how; every swap area (encrypted, or in memory like zram); the
//! device-mapper devices; the options under `policy`.
//! Evidences: ISO27001:2022 A.8.24 (use of cryptography), A.7.10 (storage media), A.8.1
//! (user endpoint devices).
//! Never collects: keys, keyslots or anything of a LUKS header beyond version, cipher and
//! key size; file contents of the filesystems.

mod parse;

use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use parse as storage;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Registration of `encryption.disks`.
pub const REGISTRATION: Registration = Registration {
    kind: "encryption.disks",
    summary: "mounted filesystems and swap on dm-crypt/LUKS devices",
    multiple: false,
    build,
    controls: &[
        "ISO27001:2022/A.8.24", // Use of cryptography
        "ISO27001:2022/A.7.10", // Storage media
        "ISO27001:2022/A.8.1",  // User endpoint devices
    ],
    checks: crate::builtin_checks!("encryption/disks"),
    default: true,
    host: true,
};

/// `encryption.disks` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Filesystem types that hold data (mounts of other types are not data filesystems).
    #[serde(default = "default_fs")]
    data_fs_types: Vec<String>,
    /// Mount points never counted as data filesystems (boot partitions).
    #[serde(default = "default_exclude")]
    exclude_mount_points: Vec<String>,
    /// Read LUKS headers (needs read access to the block devices).
    #[serde(default = "yes")]
    luks_headers: bool,
}

fn yes() -> bool {
    true
}
fn default_fs() -> Vec<String> {
    [
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "bcachefs", "ntfs",
        "ntfs3", "exfat",
    ]
    .map(String::from)
    .to_vec()
}
fn default_exclude() -> Vec<String> {
    ["/boot", "/boot/efi", "/efi"].map(String::from).to_vec()
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Disks { config }))
}

struct Disks {
    config: Config,
}

impl Collector for Disks {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { blocking(move || observe(&ctx, &config)).await })
    }
}

/// A device-mapper device.
struct Dm {
    name: String,
    uuid: String,
    slaves: Vec<String>,
}

struct Devices {
    dm: BTreeMap<String, Dm>,
    by_name: BTreeMap<String, String>,
}

fn small(ctx: &Context, path: &str) -> Option<String> {
    crate::read::host_text_within(ctx, path, 4096)
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
}

fn devices(ctx: &Context, errors: &mut Errors) -> Devices {
    let mut dm = BTreeMap::new();
    let mut by_name = BTreeMap::new();
    let list = errors
        .take("/sys/block", crate::read::host_dir(ctx, "/sys/block", 4096))
        .flatten();
    for dev in list.map(|(n, _)| n).unwrap_or_default() {
        let Some(uuid) = small(ctx, &format!("/sys/block/{dev}/dm/uuid")) else {
            continue;
        };
        let name = small(ctx, &format!("/sys/block/{dev}/dm/name")).unwrap_or_default();
        let slaves = crate::read::host_dir(ctx, &format!("/sys/block/{dev}/slaves"), 64)
            .ok()
            .flatten()
            .map(|(n, _)| n)
            .unwrap_or_default();
        by_name.insert(name.clone(), dev.clone());
        dm.insert(dev, Dm { name, uuid, slaves });
    }
    Devices { dm, by_name }
}

/// The kernel name of the block device behind a mount source, if it is one.
fn kernel_name(ctx: &Context, devs: &Devices, source: &str) -> Option<String> {
    if let Some(name) = source.strip_prefix("/dev/mapper/")
        && let Some(d) = devs.by_name.get(name)
    {
        return Some(d.clone());
    }
    if !source.starts_with("/dev/") {
        return None;
    }
    // /dev/disk/by-uuid/... and /dev/mapper/x are symlinks to ../dm-0 and the like.
    let resolved = crate::read::resolve(&ctx.host_root, source).ok()?;
    let base = resolved.file_name()?.to_string_lossy().into_owned();
    if let Some(d) = devs.by_name.get(&base) {
        return Some(d.clone());
    }
    Some(base)
}

/// Encryption of a device: (crypt device, its dm uuid type) found in it or below it.
fn crypt_of(devs: &Devices, dev: &str, depth: usize) -> Option<(String, String)> {
    if depth > 8 {
        return None;
    }
    let d = devs.dm.get(dev)?;
    if let Some(rest) = d.uuid.strip_prefix("CRYPT-") {
        let kind = rest.split('-').next().unwrap_or_default().to_string();
        // dm-verity and dm-integrity are not encryption.
        if kind != "VERITY" && kind != "INTEGRITY" {
            return Some((dev.to_string(), kind));
        }
    }
    // Every slave must be encrypted for the device to be (a linear LV across two PVs).
    let found: Vec<_> = d
        .slaves
        .iter()
        .map(|s| crypt_of(devs, s, depth + 1))
        .collect();
    if !found.is_empty() && found.iter().all(Option::is_some) {
        return found.into_iter().flatten().next();
    }
    None
}

fn describe(
    ctx: &Context,
    config: &Config,
    devs: &Devices,
    dev: Option<&str>,
    headers: &mut BTreeMap<String, Value>,
    errors: &mut Errors,
) -> Value {
    let Some(dev) = dev else {
        return json!({"device": null, "encrypted": false, "method": null});
    };
    match crypt_of(devs, dev, 0) {
        Some((crypt_dev, kind)) => {
            let mut luks = Value::Null;
            if config.luks_headers && kind.starts_with("LUKS") {
                let slaves = devs
                    .dm
                    .get(&crypt_dev)
                    .map(|d| d.slaves.clone())
                    .unwrap_or_default();
                if let Some(slave) = slaves.first() {
                    luks = headers
                        .entry(slave.clone())
                        .or_insert_with(|| {
                            let path = format!("/dev/{slave}");
                            match crate::read::host_head(ctx, &path, 32 * 1024) {
                                Ok(Some(h)) => storage::luks(&h)
                                    .map(|l| serde_json::to_value(l).unwrap_or_default())
                                    .unwrap_or(Value::Null),
                                Ok(None) => Value::Null,
                                Err(e) => {
                                    errors.push(&path, &e);
                                    Value::Null
                                }
                            }
                        })
                        .clone();
                }
            }
            json!({
                "device": dev,
                "encrypted": true,
                "method": format!("dm-crypt/{}", kind.to_ascii_lowercase()),
                "crypt_device": crypt_dev,
                "crypt_name": devs.dm.get(&crypt_dev).map(|d| d.name.clone()),
                "luks": luks,
            })
        }
        None => json!({"device": dev, "encrypted": false, "method": null}),
    }
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    // What decides whether a device is encrypted (the device-mapper tree) makes every
    // judged field incomplete when it cannot be read; an unreadable LUKS header (any agent
    // not running as root) only leaves that header's details out.
    let devs = devices(ctx, &mut errors);
    errors.incomplete_since(
        0,
        &[
            "mounts",
            "data_mount_count",
            "unencrypted_data_mounts",
            "swaps",
            "device_mapper",
        ],
    );
    let mut header_errors = Errors::default();
    let mut headers = BTreeMap::new();
    let mounts_text = match crate::read::host_text(ctx, "/proc/mounts") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(CollectError::Unavailable(
                "no /proc/mounts under the host root".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    let mounts = storage::mounts(&mounts_text);
    let mut out_mounts = Vec::new();
    for m in &mounts {
        let dev = kernel_name(ctx, &devs, &m.source);
        let mut v = describe(
            ctx,
            config,
            &devs,
            dev.as_deref(),
            &mut headers,
            &mut header_errors,
        );
        let data = m.source.starts_with("/dev/")
            && config.data_fs_types.contains(&m.fs_type)
            && !config.exclude_mount_points.contains(&m.mount_point);
        v["mount_point"] = json!(m.mount_point);
        v["source"] = json!(m.source);
        v["fs_type"] = json!(m.fs_type);
        v["data"] = json!(data);
        out_mounts.push(v);
    }
    let before_swaps = errors.len();
    let swaps_text = errors
        .take("/proc/swaps", crate::read::host_text(ctx, "/proc/swaps"))
        .flatten();
    errors.incomplete_since(before_swaps, &["swaps"]);
    let mut out_swaps = Vec::new();
    for s in swaps_text.map(|t| storage::swaps(&t)).unwrap_or_default() {
        let in_memory = s.source.starts_with("/dev/zram");
        let mut v = if s.kind == "file" {
            // A swap file is as encrypted as the filesystem holding it.
            let holder = out_mounts
                .iter()
                .filter(|m| {
                    let mp = m["mount_point"].as_str().unwrap_or("/");
                    s.source.starts_with(mp) && (mp == "/" || s.source[mp.len()..].starts_with('/'))
                })
                .max_by_key(|m| m["mount_point"].as_str().map_or(0, str::len))
                .cloned()
                .unwrap_or_else(|| json!({"encrypted": false, "method": null}));
            json!({"encrypted": holder["encrypted"], "method": holder["method"], "on_mount": holder["mount_point"]})
        } else {
            let dev = kernel_name(ctx, &devs, &s.source);
            describe(
                ctx,
                config,
                &devs,
                dev.as_deref(),
                &mut headers,
                &mut header_errors,
            )
        };
        v["source"] = json!(s.source);
        v["kind"] = json!(s.kind);
        v["in_memory"] = json!(in_memory);
        out_swaps.push(v);
    }
    let dm: Vec<Value> = devs
        .dm
        .iter()
        .map(|(dev, d)| {
            json!({
                "device": dev,
                "name": d.name,
                "type": d.uuid.split('-').next().unwrap_or_default(),
                "subtype": d.uuid.strip_prefix("CRYPT-").and_then(|r| r.split('-').next()),
                "slaves": d.slaves,
            })
        })
        .collect();
    let data_count = out_mounts.iter().filter(|m| m["data"] == true).count();
    let unencrypted_data: Vec<&Value> = out_mounts
        .iter()
        .filter(|m| m["data"] == true && m["encrypted"] != true)
        .map(|m| &m["mount_point"])
        .collect();
    let mut obs = json!({
        "mounts": out_mounts,
        "data_mount_count": data_count,
        "unencrypted_data_mounts": unencrypted_data,
        "swaps": out_swaps,
        "device_mapper": dm,
        "policy": {
            "data_fs_types": config.data_fs_types,
            "exclude_mount_points": config.exclude_mount_points,
        },
    });
    errors.0.extend(header_errors.0);
    let (errs, incomplete) = errors.finish();
    obs["errors"] = errs;
    obs["incomplete"] = incomplete;
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(uuid: &str, slaves: &[&str]) -> Dm {
        Dm {
            name: String::new(),
            uuid: uuid.into(),
            slaves: slaves.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn lvm_is_encrypted_only_when_every_slave_is() {
        let mut devs = Devices {
            dm: BTreeMap::new(),
            by_name: BTreeMap::new(),
        };
        devs.dm
            .insert("dm-0".into(), dm("CRYPT-LUKS2-u-x", &["sda2"]));
        devs.dm.insert("dm-1".into(), dm("LVM-a", &["dm-0"]));
        devs.dm
            .insert("dm-2".into(), dm("LVM-b", &["dm-0", "sdb1"]));
        devs.dm
            .insert("dm-3".into(), dm("CRYPT-VERITY-x", &["sdc"]));
        devs.dm.insert("dm-4".into(), dm("LVM-loop", &["dm-4"]));
        assert_eq!(
            crypt_of(&devs, "dm-1", 0),
            Some(("dm-0".into(), "LUKS2".into()))
        );
        assert_eq!(crypt_of(&devs, "dm-2", 0), None, "one plain PV");
        assert_eq!(crypt_of(&devs, "dm-3", 0), None, "verity is not encryption");
        assert_eq!(crypt_of(&devs, "dm-4", 0), None, "a loop ends");
        assert_eq!(crypt_of(&devs, "sda1", 0), None);
    }
}
