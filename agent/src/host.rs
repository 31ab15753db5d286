//! Host identity recorded in every record: host name, an app-specific machine id, OS, kernel,
//! and pod/namespace/node when running in Kubernetes (from the downward API environment).

use crate::evidence::keys::hex;
use crate::evidence::record::Host;
use std::collections::BTreeMap;
use std::path::Path;

/// Evident's application id for deriving a machine id (as systemd's
/// `sd_id128_get_machine_app_specific`): the raw /etc/machine-id is never recorded.
const APP_ID: [u8; 16] = [
    0x5e, 0x7a, 0x1d, 0x0c, 0x42, 0x9b, 0x4f, 0x61, 0xa3, 0x2e, 0x88, 0x17, 0xc4, 0xd0, 0x3b, 0x96,
];

fn read_small(path: &Path) -> Option<String> {
    evident_collectors::read::text(path, 64 * 1024).ok()
}

/// Derives the app-specific machine id: HMAC-SHA256 keyed by the machine id over Evident's
/// app id, truncated to 128 bits and formatted as a version-4 UUID (as systemd does).
pub fn app_specific_id(machine_id: &str) -> Option<String> {
    let raw = machine_id.trim();
    if raw.len() != 32 || !raw.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..16)
        .filter_map(|i| u8::from_str_radix(&raw[2 * i..2 * i + 2], 16).ok())
        .collect();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &bytes);
    let tag = aws_lc_rs::hmac::sign(&key, &APP_ID);
    let mut id = [0u8; 16];
    id.copy_from_slice(&tag.as_ref()[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Some(hex(&id))
}

/// Reads the identity of the host under `host_root`.
pub fn identity(host_root: &Path, hostname: Option<&str>) -> Host {
    let at = |p: &str| host_root.join(p.trim_start_matches('/'));
    let hostname = hostname
        .map(str::to_string)
        .or_else(|| sysinfo::System::host_name().ok())
        .or_else(|| read_small(&at("/etc/hostname")).map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let machine_id = read_small(&at("/etc/machine-id")).and_then(|m| app_specific_id(&m));
    let os = read_small(&at("/etc/os-release")).and_then(|t| {
        evident_collectors::system::inventory::parse_os_release(&t)
            .get("pretty_name")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    let kernel = sysinfo::System::kernel_version().ok();
    let mut k8s = BTreeMap::new();
    for (var, key) in [
        ("POD_NAME", "pod"),
        ("POD_NAMESPACE", "namespace"),
        ("NODE_NAME", "node"),
    ] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            k8s.insert(key.to_string(), v);
        }
    }
    Host {
        hostname,
        machine_id,
        os,
        kernel,
        kubernetes: (!k8s.is_empty()).then_some(k8s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_is_derived_not_copied() {
        let raw = "0123456789abcdef0123456789abcdef";
        let id = app_specific_id(raw).expect("valid");
        assert_eq!(id.len(), 32);
        assert_ne!(id, raw);
        assert_eq!(app_specific_id(raw), Some(id));
        assert_eq!(app_specific_id("not-an-id"), None);
    }
}
