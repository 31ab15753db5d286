//! `/proc/mounts`, `/proc/swaps`, device-mapper uuids and LUKS headers.
//!
//! A LUKS header is read for its version and cipher only: keyslot material and digests are
//! never looked at beyond the fixed-size fields named here.

use serde::Serialize;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Device or source (`/dev/mapper/root`, `tmpfs`).
    pub source: String,
    /// Mount point.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
}

/// Undoes the octal escapes of /proc/mounts (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/mounts` (or `/proc/self/mounts`).
pub fn mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Mount {
                source: unescape(f.next()?),
                mount_point: unescape(f.next()?),
                fs_type: f.next()?.to_string(),
            })
        })
        .collect()
}

/// One swap area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swap {
    /// Device or file.
    pub source: String,
    /// `partition` or `file`.
    pub kind: String,
}

/// Parses `/proc/swaps` (header line skipped).
pub fn swaps(text: &str) -> Vec<Swap> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Swap {
                source: unescape(f.next()?),
                kind: f.next()?.to_string(),
            })
        })
        .collect()
}

/// What a LUKS header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Luks {
    /// 1 or 2.
    pub version: u16,
    /// Cipher, e.g. `aes-xts-plain64`.
    pub cipher: Option<String>,
    /// Volume key size in bits (LUKS1: from the header; LUKS2: from the first segment's
    /// keyslot when given).
    pub key_bits: Option<u32>,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end])
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect()
}

/// Parses the start of a LUKS device (at least 592 bytes for LUKS1; the LUKS2 JSON area
/// starts at 4096). `None` when it is not LUKS.
pub fn luks(head: &[u8]) -> Option<Luks> {
    if head.len() < 8 || &head[..6] != b"LUKS\xba\xbe" {
        return None;
    }
    let version = u16::from_be_bytes([head[6], head[7]]);
    match version {
        1 => {
            if head.len() < 112 {
                return Some(Luks {
                    version,
                    cipher: None,
                    key_bits: None,
                });
            }
            let name = cstr(&head[8..40]);
            let mode = cstr(&head[40..72]);
            let key_bytes = head
                .get(108..112)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            Some(Luks {
                version,
                cipher: Some(format!("{name}-{mode}")),
                key_bits: key_bytes.map(|k| k.saturating_mul(8)),
            })
        }
        2 => {
            let json = head.get(4096..).map(|j| {
                let end = j.iter().position(|&c| c == 0).unwrap_or(j.len());
                &j[..end]
            });
            let parsed: Option<serde_json::Value> =
                json.and_then(|j| serde_json::from_slice(j).ok());
            let segment = parsed
                .as_ref()
                .and_then(|v| v.get("segments"))
                .and_then(|s| s.as_object())
                .and_then(|s| s.values().next());
            let cipher = segment
                .and_then(|s| s.get("encryption"))
                .and_then(|c| c.as_str())
                .map(String::from);
            let key_bits = parsed
                .as_ref()
                .and_then(|v| v.get("keyslots"))
                .and_then(|k| k.as_object())
                .and_then(|k| k.values().next())
                .and_then(|k| k.get("key_size"))
                .and_then(|k| k.as_u64())
                .map(|b| u32::try_from(b.saturating_mul(8)).unwrap_or(u32::MAX));
            Some(Luks {
                version,
                cipher,
                key_bits,
            })
        }
        _ => Some(Luks {
            version,
            cipher: None,
            key_bits: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn proc_mounts_and_swaps() {
        let m = mounts(
            "/dev/mapper/vg-root / ext4 rw,relatime 0 0\n/dev/sda1 /boot ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n",
        );
        assert_eq!(m.len(), 4);
        assert_eq!(m[3].mount_point, "/mnt/my disk");
        let s = swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1                               partition\t1003516\t\t0\t\t-2\n/swapfile file 1000 0 -3\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].source, "/dev/dm-1");
        assert_eq!(s[1].kind, "file");
    }

    fn luks1_header() -> Vec<u8> {
        let mut h = vec![0u8; 592];
        h[..6].copy_from_slice(b"LUKS\xba\xbe");
        h[7] = 1;
        h[8..11].copy_from_slice(b"aes");
        h[40..51].copy_from_slice(b"xts-plain64");
        h[108..112].copy_from_slice(&64u32.to_be_bytes());
        h
    }

    #[test]
    fn luks_headers() {
        let l = luks(&luks1_header()).expect("luks1");
        assert_eq!(l.version, 1);
        assert_eq!(l.cipher.as_deref(), Some("aes-xts-plain64"));
        assert_eq!(l.key_bits, Some(512));
        let mut h = vec![0u8; 4096];
        h[..6].copy_from_slice(b"LUKS\xba\xbe");
        h[7] = 2;
        h.extend(br#"{"keyslots":{"0":{"type":"luks2","key_size":64}},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"}}}"#);
        h.push(0);
        let l = luks(&h).expect("luks2");
        assert_eq!(
            (l.version, l.cipher.as_deref(), l.key_bits),
            (2, Some("aes-xts-plain64"), Some(512))
        );
        assert!(luks(b"not luks at all").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = mounts(&text);
            let _ = swaps(&text);
            let mut h = b"LUKS\xba\xbe".to_vec();
            h.extend(&bytes);
            let _ = luks(&h);
            let _ = luks(&bytes);
        }
    }
}
