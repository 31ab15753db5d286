//! OpenSSH public keys (`authorized_keys`, `*.pub`): key type, size in bits and the SHA256
//! fingerprint as `ssh-keygen -l` prints it. Key material never leaves this module: only
//! the fingerprint does. Of a key's options only the names are kept (an `environment="..."`
//! or `command="..."` value may hold a secret), plus `from="..."` (source addresses).

use base64::Engine;
use serde::Serialize;

/// One public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    /// 1-based line number.
    pub line: usize,
    /// Key type as written (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Family: `rsa`, `dsa`, `ecdsa`, `ed25519`, `ed448`, `ecdsa-sk`, `ed25519-sk`.
    pub algorithm: String,
    /// Key size in bits (RSA modulus, DSA p, curve size).
    pub bits: u32,
    /// `SHA256:<base64>` (no padding), as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// Whether it is an OpenSSH certificate.
    pub certificate: bool,
    /// Names of the options in front of the key (`no-pty`, `command`, `environment`, ...).
    pub options: Vec<String>,
    /// The `from="..."` source restriction, if any.
    pub from: Option<String>,
}

/// A line that is not a valid key: its number and why (never its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadKey {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

fn family(kind: &str) -> Option<&'static str> {
    let base = kind.strip_suffix("-cert-v01@openssh.com").unwrap_or(kind);
    Some(match base {
        "ssh-rsa" => "rsa",
        "ssh-dss" => "dsa",
        "ssh-ed25519" => "ed25519",
        "ssh-ed448" => "ed448",
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => "ecdsa",
        "sk-ecdsa-sha2-nistp256@openssh.com" => "ecdsa-sk",
        "sk-ssh-ed25519@openssh.com" => "ed25519-sk",
        _ => return None,
    })
}

/// Splits off the options field: everything up to the first unquoted whitespace.
fn split_options(line: &str) -> (Option<&str>, &str) {
    let first = line.split_whitespace().next().unwrap_or_default();
    if family(first).is_some() {
        return (None, line);
    }
    let mut q = false;
    let mut esc = false;
    for (i, c) in line.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '"' => q = !q,
            c if c.is_whitespace() && !q => return (Some(&line[..i]), line[i..].trim_start()),
            _ => {}
        }
    }
    (Some(line), "")
}

fn options(opts: &str) -> (Vec<String>, Option<String>) {
    let mut names = Vec::new();
    let mut from = None;
    let mut cur = String::new();
    let mut q = false;
    let mut parts = Vec::new();
    for c in opts.chars() {
        match c {
            '"' => {
                q = !q;
                cur.push(c);
            }
            ',' if !q => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        let (name, value) = p.split_once('=').unwrap_or((&p, ""));
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if name == "from" {
            from = Some(value.trim_matches('"').to_string());
        }
        names.push(name);
    }
    (names, from)
}

/// Reads SSH wire-format strings from a key blob.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.0.len() < 4 {
            return None;
        }
        let n = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        let rest = &self.0[4..];
        if rest.len() < n {
            return None;
        }
        let (s, tail) = rest.split_at(n);
        self.0 = tail;
        Some(s)
    }
}

/// Bits of a big-endian unsigned integer (mpint without leading zeros).
fn bit_len(n: &[u8]) -> u32 {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros())
}

/// Bits of a key from its blob; `None` when the blob does not match its type.
fn key_bits(kind: &str, blob: &[u8]) -> Option<u32> {
    let mut w = Wire(blob);
    let declared = w.string()?;
    if declared != kind.as_bytes() {
        return None;
    }
    let cert = kind.ends_with("-cert-v01@openssh.com");
    if cert {
        w.string()?; // nonce
    }
    match family(kind)? {
        "rsa" => {
            w.string()?; // e
            Some(bit_len(w.string()?))
        }
        "dsa" => Some(bit_len(w.string()?)),
        "ecdsa" | "ecdsa-sk" => {
            let curve = w.string()?;
            match curve {
                b"nistp256" => Some(256),
                b"nistp384" => Some(384),
                b"nistp521" => Some(521),
                _ => None,
            }
        }
        "ed25519" | "ed25519-sk" => Some(256),
        "ed448" => Some(456),
        _ => None,
    }
}

/// `SHA256:` fingerprint of a key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref())
    )
}

/// Parses one key line (options, type, base64 blob, comment).
pub fn parse_line(n: usize, line: &str) -> Result<Key, BadKey> {
    let bad = |reason: &str| BadKey {
        line: n,
        reason: reason.to_string(),
    };
    let (opts, rest) = split_options(line.trim());
    let mut words = rest.split_whitespace();
    let kind = words.next().ok_or_else(|| bad("no key type"))?;
    let algorithm = family(kind).ok_or_else(|| bad("unknown key type"))?;
    let b64 = words.next().ok_or_else(|| bad("no key data"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("key data is not base64"))?;
    let bits = key_bits(kind, &blob).ok_or_else(|| bad("key data does not match its type"))?;
    let (options, from) = opts.map(options).unwrap_or_default();
    Ok(Key {
        line: n,
        kind: kind.to_string(),
        algorithm: algorithm.to_string(),
        bits,
        fingerprint: fingerprint(&blob),
        certificate: kind.ends_with("-cert-v01@openssh.com"),
        options,
        from,
    })
}

/// Parses an `authorized_keys` file (comments and blank lines skipped).
pub fn authorized_keys(text: &str) -> (Vec<Key>, Vec<BadKey>) {
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match parse_line(i + 1, l) {
            Ok(k) => keys.push(k),
            Err(b) => bad.push(b),
        }
    }
    (keys, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Generated with ssh-keygen for this test; fingerprints from `ssh-keygen -lf`.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINqjiQb8IHOaraRAkWulKGm54XCvoXF+qt07kvcLMp/M alice@laptop";
    const ED25519_FP: &str = "SHA256:aTxz3i9OE98AcozAaLEz5xo1fYsQlhj/7verApZn/v8";

    fn wire(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend((p.len() as u32).to_be_bytes());
            out.extend(*p);
        }
        out
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn ed25519_fingerprint_matches_ssh_keygen() {
        let k = parse_line(1, ED25519).expect("key");
        assert_eq!(k.algorithm, "ed25519");
        assert_eq!(k.bits, 256);
        assert_eq!(k.fingerprint, ED25519_FP);
    }

    #[test]
    fn rsa_and_dsa_sizes_and_options() {
        let mut n = vec![0u8];
        n.extend(vec![0xffu8; 128]); // 1024-bit modulus with the mpint sign byte
        let rsa = wire(&[b"ssh-rsa", &[1, 0, 1], &n]);
        let line = format!(
            "from=\"10.0.0.0/8\",command=\"/bin/backup --token=CANARY\",environment=\"TOKEN=CANARY\",no-pty ssh-rsa {} backup",
            b64(&rsa)
        );
        let (keys, bad) = authorized_keys(&format!("# c\n\n{line}\nssh-rsa !!!notbase64\n"));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
        assert_eq!(keys[0].bits, 1024);
        assert_eq!(keys[0].from.as_deref(), Some("10.0.0.0/8"));
        assert_eq!(
            keys[0].options,
            vec!["from", "command", "environment", "no-pty"]
        );
        assert!(
            !serde_json::to_string(&keys)
                .expect("json")
                .contains("CANARY")
        );
        let dsa = wire(&[b"ssh-dss", &[0x80; 128], &[1; 20], &[2; 128], &[3; 128]]);
        let k = parse_line(1, &format!("ssh-dss {}", b64(&dsa))).expect("dsa");
        assert_eq!((k.algorithm.as_str(), k.bits), ("dsa", 1024));
        let ec = wire(&[b"ecdsa-sha2-nistp384", b"nistp384", &[4; 97]]);
        let k = parse_line(1, &format!("ecdsa-sha2-nistp384 {}", b64(&ec))).expect("ec");
        assert_eq!(k.bits, 384);
    }

    #[test]
    fn mismatched_type_is_refused() {
        let blob = wire(&[b"ssh-ed25519", &[0; 32]]);
        let e = parse_line(1, &format!("ssh-rsa {}", b64(&blob))).expect_err("mismatch");
        assert!(e.reason.contains("does not match"));
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = authorized_keys(&text);
        }

        #[test]
        fn never_panics_on_random_blobs(blob in proptest::collection::vec(any::<u8>(), 0..200),
                                        kind in "(ssh-rsa|ssh-dss|ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa-cert-v01@openssh.com)") {
            let _ = parse_line(1, &format!("{kind} {}", b64(&blob)));
            let mut w = wire(&[kind.as_bytes()]);
            w.extend(&blob);
            let _ = parse_line(1, &format!("{kind} {}", b64(&w)));
        }
    }
}
