//! Host identity recorded in every record: host name, an app-specific machine id, OS, kernel,
//! and pod/namespace/node when running in Kubernetes (from the downward API environment).

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
    Some(hex::encode(id))
}

/// Where Kubernetes mounts the pod's service-account token.
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The service account (`namespace/name`) from the claims of the pod's token. Only the
/// claims are decoded; the token itself (and its signature) is never recorded.
pub fn service_account(token_path: &Path) -> Option<String> {
    use base64::Engine;
    let token = read_small(token_path)?;
    let claims = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let sub = v.get("sub")?.as_str()?;
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    Some(format!("{ns}/{name}"))
}

/// Reads the identity of the host under `host_root`.
pub fn identity(host_root: &Path, hostname: Option<&str>) -> Host {
    let at = |p: &str| host_root.join(p.trim_start_matches('/'));
    // With the host mounted elsewhere (a DaemonSet), the kernel's host name is the pod's:
    // the node's own /etc/hostname, or the node name from the downward API, names the host.
    let mounted = host_root != Path::new("/");
    // A discovered name counts only when `verify` would accept it (a host file can hold
    // anything); the next source is tried otherwise. A configured name was checked at load.
    let usable = |s: String| crate::store::valid_hostname(&s).then_some(s);
    let hostname = hostname
        .map(str::to_string)
        .or_else(|| {
            mounted
                .then(|| read_small(&at("/etc/hostname")).map(|s| s.trim().to_string()))
                .flatten()
                .and_then(usable)
        })
        .or_else(|| {
            mounted
                .then(|| std::env::var("NODE_NAME").ok())
                .flatten()
                .and_then(usable)
        })
        .or_else(|| sysinfo::System::host_name().ok().and_then(usable))
        .or_else(|| read_small(&at("/etc/hostname")).and_then(|s| usable(s.trim().to_string())))
        .unwrap_or_else(|| "unknown".to_string());
    let machine_id = read_small(&at("/etc/machine-id")).and_then(|m| app_specific_id(&m));
    let os = read_small(&at("/etc/os-release")).and_then(|t| {
        evident_collectors::base::os_release::parse(&t)
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
    if !k8s.is_empty()
        && let Some(sa) = service_account(Path::new(SERVICE_ACCOUNT_TOKEN))
    {
        k8s.insert("service_account".to_string(), sa);
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

    #[test]
    fn service_account_comes_from_claims_never_the_token() {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("tempdir");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = b64.encode(br#"{"sub":"system:serviceaccount:payments:evident","aud":["x"]}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2lnbmF0dXJlLXNlY3JldA");
        let p = dir.path().join("token");
        std::fs::write(&p, &token).expect("write");
        let sa = service_account(&p).expect("claims");
        assert_eq!(sa, "payments/evident");
        assert!(!sa.contains("c2ln"));
        std::fs::write(&p, "garbage").expect("write");
        assert_eq!(service_account(&p), None);
    }

    #[test]
    fn a_mounted_host_is_named_by_its_own_hostname_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        std::fs::write(dir.path().join("etc/hostname"), "node-7\n").expect("write");
        assert_eq!(identity(dir.path(), None).hostname, "node-7");
        assert_eq!(identity(dir.path(), Some("override")).hostname, "override");
        // A name verify would refuse (a host file holds anything) is passed over.
        std::fs::write(dir.path().join("etc/hostname"), "bad host/../x\n").expect("write");
        let name = identity(dir.path(), None).hostname;
        assert_ne!(name, "bad host/../x");
        assert!(crate::store::valid_hostname(&name), "{name}");
    }
}
