//! A local RFC 3161 timestamp authority for the tests: its own CA and TSA certificate made
//! at test time with the openssl CLI (extendedKeyUsage = critical, timeStamping), answering
//! with `openssl ts -reply` behind tests/tooling/tsa.py on 127.0.0.1; and the independent
//! verifiers of its tokens (`openssl ts -verify`, PyPI `rfc3161-client`).

use crate::services::{Server, openssl_ok, venv_python_with};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA and the TSA certificate it issued, with an `openssl ts` config.
pub struct Authority {
    /// Directory holding everything.
    pub dir: PathBuf,
    /// The CA certificate (PEM): what an auditor puts in the trust policy.
    pub ca: PathBuf,
    /// The TSA's own certificate (PEM).
    pub cert: PathBuf,
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run openssl");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Authority {
    /// Makes a CA and a TSA certificate under `dir` (`key`: `rsa` or `ec` for P-256), or
    /// None outside CI when the openssl CLI is missing (in CI: a failure).
    pub fn new(dir: &Path, name: &str, key: &str) -> Option<Authority> {
        Authority::make(dir, name, key, false)
    }

    /// As [`Authority::new`], but the TSA certificate is issued by an intermediate CA under
    /// the root, and the tokens carry the intermediate (as public TSAs' tokens do).
    pub fn with_intermediate(dir: &Path, name: &str) -> Option<Authority> {
        Authority::make(dir, name, "rsa", true)
    }

    fn make(dir: &Path, name: &str, key: &str, intermediate: bool) -> Option<Authority> {
        if !openssl_ok() {
            return None;
        }
        std::fs::create_dir_all(dir).expect("tsa dir");
        let p = |n: &str| dir.join(n);
        let newkey: &[&str] = match key {
            "ec" => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => &["-newkey", "rsa:2048"],
        };
        sh(Command::new("openssl")
            .args(["req", "-x509", "-nodes"])
            .args(newkey)
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem"))
            .args([
                "-days",
                "30",
                "-subj",
                &format!("/CN={name} Root CA"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]));
        // The issuer of the TSA certificate: the root, or an intermediate CA under it.
        let (issuer, issuer_key) = if intermediate {
            sh(Command::new("openssl")
                .args(["req", "-new", "-nodes"])
                .args(newkey)
                .arg("-keyout")
                .arg(p("inter.key"))
                .arg("-out")
                .arg(p("inter.csr"))
                .args(["-subj", &format!("/CN={name} Intermediate CA")]));
            std::fs::write(
                p("inter.cnf"),
                "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
            )
            .expect("inter ext");
            sh(Command::new("openssl")
                .args(["x509", "-req", "-days", "30", "-CAcreateserial"])
                .arg("-in")
                .arg(p("inter.csr"))
                .arg("-CA")
                .arg(p("ca.pem"))
                .arg("-CAkey")
                .arg(p("ca.key"))
                .arg("-out")
                .arg(p("inter.pem"))
                .arg("-extfile")
                .arg(p("inter.cnf")));
            (p("inter.pem"), p("inter.key"))
        } else {
            (p("ca.pem"), p("ca.key"))
        };
        sh(Command::new("openssl")
            .args(["req", "-new", "-nodes"])
            .args(newkey)
            .arg("-keyout")
            .arg(p("tsa.key"))
            .arg("-out")
            .arg(p("tsa.csr"))
            .args(["-subj", &format!("/CN={name} TSA")]));
        std::fs::write(
            p("ext.cnf"),
            "extendedKeyUsage=critical,timeStamping\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .expect("ext");
        sh(Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-CAcreateserial"])
            .arg("-in")
            .arg(p("tsa.csr"))
            .arg("-CA")
            .arg(&issuer)
            .arg("-CAkey")
            .arg(&issuer_key)
            .arg("-out")
            .arg(p("tsa.pem"))
            .arg("-extfile")
            .arg(p("ext.cnf")));
        std::fs::write(p("serial"), "01\n").expect("serial");
        std::fs::write(
            p("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config1\n\n[ tsa_config1 ]\ndir = {d}\nserial = $dir/serial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.pem\n{certs}signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.3.6.1.4.1.99999.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:500\nclock_precision_digits = 3\nordering = no\ntsa_name = yes\n{ess}",
                d = dir.display(),
                // Both forms of the ESS signing-certificate attribute are exercised: V2
                // (SHA-256) by the plain authority, V1 (SHA-1, with the chain) by this one.
                ess = if intermediate {
                    "ess_cert_id_chain = yes\ness_cert_id_alg = sha1\n"
                } else {
                    "ess_cert_id_chain = no\ness_cert_id_alg = sha256\n"
                },
                certs = if intermediate {
                    "certs = $dir/inter.pem\n"
                } else {
                    ""
                }
            ),
        )
        .expect("tsa.cnf");
        Some(Authority {
            dir: dir.to_path_buf(),
            ca: p("ca.pem"),
            cert: p("tsa.pem"),
        })
    }

    /// Serves RFC 3161 over HTTP on 127.0.0.1:`port` (tests/tooling/tsa.py), or None outside
    /// CI when the test venv is missing.
    pub fn serve(&self, port: u16) -> Option<Server> {
        let python = venv_python_with("http.server", "the test venv (python)")?;
        let script = crate::manifest_dir().join("tooling/tsa.py");
        Some(Server::start(
            &python,
            &[
                script.to_str().expect("utf8"),
                &port.to_string(),
                self.dir.to_str().expect("utf8"),
            ],
            port,
            "tsa.py",
        ))
    }

    /// Requests handled by the HTTP responder so far.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(self.dir.join("log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// A token over a SHA-256 digest straight from `openssl ts` (no HTTP): the DER reply.
    pub fn stamp(&self, digest_hex: &str) -> Vec<u8> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let q = tmp.path().join("q.tsq");
        let r = tmp.path().join("r.tsr");
        sh(Command::new("openssl")
            .args(["ts", "-query", "-sha256", "-cert", "-digest", digest_hex])
            .arg("-out")
            .arg(&q));
        sh(Command::new("openssl")
            .args(["ts", "-reply", "-config"])
            .arg(self.dir.join("tsa.cnf"))
            .arg("-queryfile")
            .arg(&q)
            .arg("-out")
            .arg(&r));
        std::fs::read(&r).expect("reply")
    }

    /// `openssl ts -verify` of a stored reply against this CA: (ok, output).
    pub fn openssl_verify(&self, reply: &Path, digest_hex: &str) -> (bool, String) {
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-digest", digest_hex, "-in"])
            .arg(reply)
            .arg("-CAfile")
            .arg(&self.ca)
            .output()
            .expect("openssl ts -verify");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// PyPI `rfc3161-client` checks each `(reply, message)` against the root `ca`
/// (tests/tooling/verify_tsr.py): Some(output) when every one verifies, panics when one
/// does not; None outside CI when the package is missing.
pub fn rfc3161_client_verify(ca: &Path, pairs: &[(PathBuf, PathBuf)]) -> Option<String> {
    let python = venv_python_with("rfc3161_client", "rfc3161-client")?;
    let script = crate::manifest_dir().join("tooling/verify_tsr.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(ca);
    for (r, m) in pairs {
        cmd.arg(r).arg(m);
    }
    let out = cmd.output().expect("verify_tsr.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "rfc3161-client refused a token: {text}"
    );
    Some(text)
}
