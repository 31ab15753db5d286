//! `encryption.tls`: what TLS the configured endpoints negotiate, and the certificates they
//! and the configured certificate files present.
//!
//! Reads: a TLS handshake (rustls, aws-lc-rs) with every configured endpoint (`host:port`,
//! optional SNI), bounded by a connect and handshake timeout, closed right after the
//! handshake (no application data is sent); when rustls refuses the handshake (a key it
//! deems too weak, no common version or suite), the chain it had received, or else the
//! Certificate message of a hand-written TLS 1.2/1.1/1.0 ClientHello
//! (`certificate_source`), so that a certificate rustls refuses is still judged; a
//! ClientHello offering only TLS 1.0, then 1.1 (`legacy_protocols`); certificate files matching the configured
//! globs under the host root (PEM `CERTIFICATE` blocks or DER; other PEM blocks such as
//! private keys are skipped unread). Trust: the configured CA file, else the host's system
//! bundle (`/etc/ssl/certs/ca-certificates.crt`, `/etc/pki/tls/certs/ca-bundle.crt`, ...).
//! Records: per endpoint the protocol version, cipher suite, the chain (subject, issuer,
//! SANs, validity, key type and size, signature algorithm, SHA-256 of the certificate),
//! whether the chain is valid against the trust roots (and why not), whether the name
//! matches, whether the leaf is self-signed; per certificate file the same fields; a flat
//! `certificates` list of leaf certificates for the checks, and the thresholds under
//! `policy`.
//! Evidences: ISO27001:2022 A.8.24 (use of cryptography), A.8.21 (security of network
//! services), A.8.20 (networks security).
//! Never collects: private keys (PEM blocks other than certificates are never parsed),
//! application data, session keys.

use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Registration of `encryption.tls`.
pub const REGISTRATION: Registration = Registration {
    kind: "encryption.tls",
    summary: "TLS endpoints (protocol, cipher, chain, trust, hostname) and certificate files",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.8.24", // Use of cryptography
        "ISO27001:2022/A.8.21", // Security of network services
        "ISO27001:2022/A.8.20", // Networks security
    ],
    checks: crate::builtin_checks!("encryption/tls"),
    default: false,
    host: true,
};

/// One endpoint: `"host:port"` or `{ address = "host:port", sni = "name" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Endpoint {
    Plain(String),
    Full {
        /// `host:port`.
        address: String,
        /// Server name sent (SNI) and checked against the certificate; default: the host.
        #[serde(default)]
        sni: Option<String>,
    },
}

/// `encryption.tls` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Endpoints to probe.
    #[serde(default)]
    endpoints: Vec<Endpoint>,
    /// Certificate files on the host (globs: `*` and `?` within a path component).
    #[serde(default = "default_globs")]
    cert_files: Vec<String>,
    /// PEM bundle of trusted CAs (a path for the agent, not under the host root); default:
    /// the host's system bundle.
    #[serde(default)]
    ca_file: Option<String>,
    /// Warn this many days before a certificate expires.
    #[serde(default = "default_warn")]
    expiry_warn_days: i64,
    /// Smallest accepted RSA key in bits.
    #[serde(default = "default_rsa")]
    min_rsa_bits: u64,
    /// Smallest accepted EC key in bits.
    #[serde(default = "default_ec")]
    min_ec_bits: u64,
    /// Accepted protocol versions.
    #[serde(default = "default_protocols")]
    allowed_protocols: Vec<String>,
    /// Connect plus handshake time limit per endpoint, in milliseconds.
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    /// Also offer each endpoint TLS 1.0 and TLS 1.1 alone and record whether it accepts them
    /// (`legacy_protocols`): the negotiated version only shows the best one. Off, the
    /// `no_legacy_protocols` check is an error (not probed is not evidenced).
    #[serde(default = "default_probe_legacy")]
    probe_legacy: bool,
}

fn default_probe_legacy() -> bool {
    true
}

fn default_globs() -> Vec<String> {
    vec!["/etc/letsencrypt/live/*/cert.pem".into()]
}
fn default_warn() -> i64 {
    30
}
fn default_rsa() -> u64 {
    2048
}
fn default_ec() -> u64 {
    256
}
fn default_protocols() -> Vec<String> {
    vec!["TLSv1.2".into(), "TLSv1.3".into()]
}
fn default_timeout() -> u64 {
    5000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Tls { config }))
}

struct Tls {
    config: Config,
}

impl Collector for Tls {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(async move { blocking(move || observe(&ctx, &config)).await })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Accepts any chain during the handshake (so that a bad certificate is recorded, not just
/// refused) and keeps it; the chain is verified afterwards against the trust roots.
#[derive(Debug)]
struct Capture {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut c) = self.chain.lock() {
            c.clear();
            c.push(end_entity.clone().into_owned());
            c.extend(intermediates.iter().map(|i| i.clone().into_owned()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Trust anchors: the configured CA file, or the host's system bundle.
fn roots(
    ctx: &Context,
    config: &Config,
    errors: &mut Errors,
) -> (Vec<rustls::pki_types::TrustAnchor<'static>>, Value) {
    let (source, pem) = match &config.ca_file {
        Some(f) => (
            f.clone(),
            errors.take(f, crate::read::bytes(std::path::Path::new(f), 16 << 20)),
        ),
        None => match SYSTEM_BUNDLES
            .iter()
            .find(|p| matches!(crate::read::host_file(ctx, p), Ok(Some(_))))
        {
            Some(p) => (
                p.to_string(),
                errors.take(
                    p,
                    crate::read::host_bytes(ctx, p).map(Option::unwrap_or_default),
                ),
            ),
            None => {
                errors.note(
                    "trust roots",
                    "missing",
                    "no system CA bundle under the host root",
                );
                (String::new(), None)
            }
        },
    };
    let mut anchors = Vec::new();
    for der in CertificateDer::pem_slice_iter(pem.as_deref().unwrap_or_default()).flatten() {
        if let Ok(a) = webpki::anchor_from_trusted_cert(&der) {
            anchors.push(a.to_owned());
        }
    }
    let info = json!({"source": source, "count": anchors.len()});
    (anchors, info)
}

fn bit_len(n: &[u8]) -> u64 {
    match n.iter().position(|&b| b != 0) {
        Some(i) => (n.len() - i) as u64 * 8 - u64::from(n[i].leading_zeros()),
        None => 0,
    }
}

/// Facts of one certificate (public data only).
fn describe(der: &[u8]) -> Value {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return json!({"error": "not a parseable X.509 certificate"});
    };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IPAddress(ip) => {
                    let s = match ip.len() {
                        4 => std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
                        16 => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(ip);
                            std::net::Ipv6Addr::from(b).to_string()
                        }
                        _ => "?".into(),
                    };
                    sans.push(format!("IP:{s}"));
                }
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                GeneralName::RFC822Name(e) => sans.push(format!("email:{e}")),
                _ => {}
            }
        }
    }
    let spki = cert.public_key();
    let alg_oid = spki.algorithm.algorithm.to_id_string();
    let (key_type, key_bits) = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => ("rsa", bit_len(rsa.modulus)),
        // The curve's size (P-521 is 521 bits; its points are 528 bits wide).
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let bits = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => 256, // P-256
                Some("1.3.132.0.34") => 384,        // P-384
                Some("1.3.132.0.35") => 521,        // P-521
                Some("1.3.132.0.10") => 256,        // secp256k1
                _ => ec.key_size() as u64,
            };
            ("ec", bits)
        }
        Ok(x509_parser::public_key::PublicKey::DSA(_)) => {
            ("dsa", spki.parsed().map_or(0, |k| k.key_size() as u64))
        }
        _ => match alg_oid.as_str() {
            "1.3.101.112" => ("ed25519", 256),
            "1.3.101.113" => ("ed448", 456),
            _ => ("unknown", 0),
        },
    };
    let sig = cert.signature_algorithm.algorithm.clone();
    let sig_name = x509_parser::objects::oid2sn(&sig, x509_parser::objects::oid_registry())
        .map(String::from)
        .unwrap_or_else(|_| sig.to_id_string());
    let ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    json!({
        "subject": cert.subject().to_string(),
        "issuer": cert.issuer().to_string(),
        "serial": cert.raw_serial_as_string(),
        "sans": sans,
        "not_before_unix": cert.validity().not_before.timestamp(),
        "not_after_unix": cert.validity().not_after.timestamp(),
        "key_type": key_type,
        "key_bits": key_bits,
        "signature_algorithm": sig_name,
        "ca": ca,
        "self_signed": cert.subject().as_raw() == cert.issuer().as_raw(),
        "sha256": hex::encode(digest.as_ref()),
    })
}

/// Verifies a chain against the anchors for TLS server use: `None` when valid, else why.
fn verify_chain(
    chain: &[CertificateDer<'static>],
    anchors: &[rustls::pki_types::TrustAnchor<'static>],
    provider: &CryptoProvider,
) -> Option<String> {
    let leaf = chain.first()?;
    let ee = match webpki::EndEntityCert::try_from(leaf) {
        Ok(e) => e,
        Err(e) => return Some(format!("{e:?}")),
    };
    match ee.verify_for_usage(
        provider.signature_verification_algorithms.all,
        anchors,
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    ) {
        Ok(_) => None,
        Err(e) => Some(format!("{e:?}")),
    }
}

fn name_matches(leaf: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    webpki::EndEntityCert::try_from(leaf)
        .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(name).is_ok())
}

fn split_host(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// Whether the server accepts a ClientHello offering only `version` (0x0301 TLS 1.0,
/// 0x0302 TLS 1.1) with the usual legacy cipher suites: `Ok(true)` when it answers with a
/// ServerHello of that version, `Ok(false)` on an alert, a close or another version.
fn accepts_legacy(
    address: &str,
    sni: &str,
    version: u16,
    timeout: Duration,
) -> Result<bool, String> {
    raw_hello(address, sni, version, timeout, false).map(|(ok, _)| ok)
}

/// The certificates a server sends in answer to a plain ClientHello offering `version`
/// (TLS 1.2 and below send them unencrypted): how a chain rustls refuses to complete a
/// handshake with (no common suite, TLS 1.0 only) is still recorded.
fn raw_certificates(
    address: &str,
    sni: &str,
    version: u16,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let (_, certs) = raw_hello(address, sni, version, timeout, true)?;
    Ok(certs.into_iter().map(CertificateDer::from).collect())
}

/// Handshake bytes read at most while looking for the Certificate message.
const MAX_RAW_HANDSHAKE: usize = 256 * 1024;

/// Sends a hand-written ClientHello offering only `version` and reads the answer: whether
/// a ServerHello of that version came back, and (`want_certs`) the DER certificates of the
/// server's Certificate message. rustls cannot speak TLS 1.0/1.1, so the probe writes the
/// hello itself and never goes on to a key exchange.
fn raw_hello(
    address: &str,
    sni: &str,
    version: u16,
    timeout: Duration,
    want_certs: bool,
) -> Result<(bool, Vec<Vec<u8>>), String> {
    use std::io::{Read, Write};
    let (host, port) = split_host(address).ok_or("address must be host:port")?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let [vh, vl] = version.to_be_bytes();
    // ECDHE/RSA with AES-CBC-SHA: what TLS 1.0/1.1 servers offer; AES-GCM for TLS 1.2.
    let suites: [u16; 14] = [
        0xc014, 0xc013, 0xc00a, 0xc009, 0x0035, 0x002f, 0x000a, 0x0039, 0xc02f, 0xc030, 0xc02b,
        0xc02c, 0x009c, 0x009d,
    ];
    let mut ext = Vec::new();
    let name = sni.as_bytes();
    if !name.is_empty() && name.len() < 256 && sni.parse::<std::net::IpAddr>().is_err() {
        let n = name.len() as u16;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(n + 5).to_be_bytes());
        ext.extend_from_slice(&(n + 3).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&n.to_be_bytes());
        ext.extend_from_slice(name);
    }
    // supported_groups (x25519, P-256, P-384) and ec_point_formats (uncompressed).
    ext.extend_from_slice(&[0, 10, 0, 8, 0, 6, 0, 29, 0, 23, 0, 24]);
    ext.extend_from_slice(&[0, 11, 0, 2, 1, 0]);
    // renegotiation_info (empty).
    ext.extend_from_slice(&[0xff, 0x01, 0, 1, 0]);
    if version >= 0x0303 {
        // signature_algorithms: RSA-PSS, RSA-PKCS1, ECDSA with SHA-256/384/512, SHA-1.
        let algs: [u16; 11] = [
            0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0201, 0x0203,
        ];
        ext.extend_from_slice(&[0, 13]);
        ext.extend_from_slice(&((algs.len() * 2 + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&((algs.len() * 2) as u16).to_be_bytes());
        for a in algs {
            ext.extend_from_slice(&a.to_be_bytes());
        }
    }
    let mut body = vec![vh, vl];
    // The client random needs no secrecy here (no key exchange follows): the clock will do.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_be_bytes();
    body.extend((0..32).map(|i| seed[i % seed.len()] ^ (i as u8).wrapping_mul(151)));
    body.push(0); // no session id
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for c in suites {
        body.extend_from_slice(&c.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression only
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    let started = Instant::now();
    let mut sock =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    // Every read and write gets only what is left of `timeout`, so a server answering a
    // byte at a time cannot stretch the probe.
    let left = || {
        let rest = timeout.saturating_sub(started.elapsed());
        (!rest.is_zero()).then_some(rest)
    };
    let expired = || format!("no answer within {timeout:?}");
    sock.set_write_timeout(Some(left().ok_or_else(expired)?))
        .map_err(|e| e.to_string())?;
    sock.write_all(&record).map_err(|e| format!("write: {e}"))?;
    // Reads exactly `buf.len()` bytes; `Ok(false)` on a close or reset.
    let read_exact = |sock: &mut TcpStream, buf: &mut [u8]| -> Result<bool, String> {
        let mut got = 0;
        while got < buf.len() {
            sock.set_read_timeout(Some(left().ok_or_else(expired)?))
                .map_err(|e| e.to_string())?;
            match sock.read(&mut buf[got..]) {
                Ok(0) => return Ok(false),
                Ok(n) => got += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err(expired());
                }
                Err(_) => return Ok(false), // reset: refused
            }
        }
        Ok(true)
    };
    // Handshake messages arrive in records of type 22; anything else (an alert) ends it.
    let mut hs = Vec::new();
    let mut accepted = None;
    loop {
        // Parse what is complete so far.
        let mut at = 0;
        while hs.len() >= at + 4 {
            let len = usize::from(hs[at + 1]) << 16
                | usize::from(hs[at + 2]) << 8
                | usize::from(hs[at + 3]);
            if accepted.is_none() && hs.len() >= at + 6 && hs[at] == 2 {
                accepted = Some(hs[at + 4] == vh && hs[at + 5] == vl);
                if !want_certs || accepted == Some(false) {
                    return Ok((accepted == Some(true), Vec::new()));
                }
            }
            if hs.len() < at + 4 + len {
                break;
            }
            let msg = &hs[at + 4..at + 4 + len];
            match hs[at] {
                11 => return Ok((accepted == Some(true), certificate_list(msg))),
                14 => return Ok((accepted == Some(true), Vec::new())), // ServerHelloDone
                _ => {}
            }
            at += 4 + len;
        }
        if accepted.is_some() && !want_certs {
            return Ok((accepted == Some(true), Vec::new()));
        }
        let mut head = [0u8; 5];
        if !read_exact(&mut sock, &mut head)? || head[0] != 0x16 {
            return Ok((accepted == Some(true), Vec::new()));
        }
        let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
        if hs.len() + len > MAX_RAW_HANDSHAKE {
            return Err(format!("handshake larger than {MAX_RAW_HANDSHAKE} bytes"));
        }
        let mut rec = vec![0u8; len];
        if !read_exact(&mut sock, &mut rec)? {
            return Ok((accepted == Some(true), Vec::new()));
        }
        hs.extend_from_slice(&rec);
    }
}

/// The DER certificates of a TLS 1.0-1.2 Certificate message body (a malformed one gives
/// those read before the fault).
fn certificate_list(msg: &[u8]) -> Vec<Vec<u8>> {
    let len3 = |b: &[u8]| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
    let mut out = Vec::new();
    let Some(total) = msg.get(..3).map(len3) else {
        return out;
    };
    let list = &msg[3..msg.len().min(3 + total)];
    let mut at = 0;
    while let Some(l) = list.get(at..at + 3).map(len3) {
        let Some(der) = list.get(at + 3..at + 3 + l) else {
            break;
        };
        out.push(der.to_vec());
        at += 3 + l;
    }
    out
}

/// A handshake that failed: why, and the chain if the server had sent it (rustls refuses a
/// key it deems too weak only after the Certificate message, so the chain is still known).
type Failed = (String, Vec<CertificateDer<'static>>);

/// Connects and completes a handshake; returns (protocol, cipher suite, chain).
fn handshake(
    address: &str,
    sni: &str,
    timeout: Duration,
    provider: &Arc<CryptoProvider>,
) -> Result<(String, String, Vec<CertificateDer<'static>>), Failed> {
    let capture = Arc::new(Capture {
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
    });
    let r = handshake_with(address, sni, timeout, provider, &capture);
    let chain = capture.chain.lock().map(|c| c.clone()).unwrap_or_default();
    match r {
        Ok((protocol, suite)) => Ok((protocol, suite, chain)),
        Err(e) => Err((e, chain)),
    }
}

fn handshake_with(
    address: &str,
    sni: &str,
    timeout: Duration,
    provider: &Arc<CryptoProvider>,
    capture: &Arc<Capture>,
) -> Result<(String, String), String> {
    let (host, port) = split_host(address).ok_or("address must be host:port")?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let name =
        ServerName::try_from(sni.to_string()).map_err(|e| format!("bad server name {sni}: {e}"))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut sock =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(10));
    sock.set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    sock.set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        if started.elapsed() > timeout {
            return Err(format!("handshake timed out after {timeout:?}"));
        }
        conn.complete_io(&mut sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".into(),
    };
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    Ok((protocol, suite))
}

fn observe(ctx: &Context, config: &Config) -> Result<Observation, CollectError> {
    let mut errors = Errors::default();
    let provider = provider();
    let files = {
        let mut v = Vec::new();
        for g in &config.cert_files {
            match crate::read::host_glob(ctx, g, 1000) {
                Ok(found) => v.extend(found),
                Err(e) => {
                    errors.mark(&["certificates", "files"], format!("{g}: {e}"));
                    errors.push(g, &e);
                }
            }
        }
        v.sort();
        v.dedup();
        v
    };
    let (anchors, roots_info) = if config.endpoints.is_empty() && files.is_empty() {
        (Vec::new(), Value::Null)
    } else {
        roots(ctx, config, &mut errors)
    };
    let timeout = Duration::from_millis(config.timeout_ms).min(ctx.timeout);
    let mut certificates = Vec::new();
    let mut endpoints = Vec::new();
    let mut legacy_protocols = Vec::new();
    for ep in &config.endpoints {
        let (address, sni) = match ep {
            Endpoint::Plain(a) => (a.clone(), None),
            Endpoint::Full { address, sni } => (address.clone(), sni.clone()),
        };
        let host = split_host(&address).map(|(h, _)| h).unwrap_or_default();
        let sni = sni.unwrap_or(host);
        let mut e = json!({
            "address": address, "sni": sni, "error": null, "protocol": null, "cipher_suite": null,
            "chain": [], "chain_valid": false, "chain_error": null, "hostname_match": false,
            "self_signed": false,
        });
        let shaken = handshake(&address, &sni, timeout, &provider);
        // Legacy protocols, probed apart (rustls cannot speak them); not when the endpoint
        // could not even be reached (each probe would wait the whole timeout again).
        let unreachable = shaken
            .as_ref()
            .err()
            .map(|(m, _)| m)
            .filter(|m| m.starts_with("connect:") || m.starts_with("cannot resolve"));
        let mut legacy = serde_json::Map::new();
        legacy.insert("address".into(), Value::from(address.clone()));
        for (name, v) in [("TLSv1.0", 0x0301u16), ("TLSv1.1", 0x0302)] {
            let r = match (config.probe_legacy, unreachable) {
                (false, _) => Err("not probed (probe_legacy = false)".to_string()),
                (true, Some(m)) => Err(format!("not probed: {m}")),
                (true, None) => accepts_legacy(&address, &sni, v, timeout),
            };
            if let Err(msg) = &r {
                errors.mark(&["legacy_protocols"], format!("{address}: {name}: {msg}"));
            }
            legacy.insert(name.into(), r.map_or(Value::Null, Value::from));
        }
        legacy_protocols.push(Value::Object(legacy));
        // A handshake rustls refused: the chain it saw, or else the Certificate message of a
        // plain TLS 1.2 (then 1.1, 1.0) hello, so the certificate checks judge what is served.
        let (handshake_error, chain) = match shaken {
            Ok((protocol, suite, chain)) => {
                e["protocol"] = json!(protocol);
                e["cipher_suite"] = json!(suite);
                (None, chain)
            }
            Err((msg, chain)) if !chain.is_empty() || unreachable.is_some() => (Some(msg), chain),
            Err((msg, _)) => {
                let raw = [0x0303u16, 0x0302, 0x0301].iter().find_map(|v| {
                    raw_certificates(&address, &sni, *v, timeout)
                        .ok()
                        .filter(|c| !c.is_empty())
                });
                if raw.is_some() {
                    e["certificate_source"] = json!("raw handshake (Certificate message)");
                }
                (Some(msg), raw.unwrap_or_default())
            }
        };
        if !chain.is_empty() {
            let described: Vec<Value> = chain.iter().map(|c| describe(c)).collect();
            let chain_error = match &handshake_error {
                None => verify_chain(&chain, &anchors, &provider),
                Some(m) => Some(format!("handshake refused: {m}")),
            };
            let name = ServerName::try_from(sni.clone()).ok();
            let matches = chain
                .first()
                .zip(name.as_ref())
                .is_some_and(|(leaf, n)| name_matches(leaf, n));
            e["chain_valid"] = json!(chain_error.is_none());
            e["chain_error"] = json!(chain_error);
            e["hostname_match"] = json!(matches);
            if let Some(leaf) = described.first() {
                e["self_signed"] = leaf["self_signed"].clone();
                let mut c = leaf.clone();
                c["source"] = json!(format!("endpoint:{address}"));
                certificates.push(c);
            }
            e["chain"] = json!(described);
        }
        if let Some(msg) = handshake_error {
            if chain.is_empty() {
                // No certificate seen: checks over certificates must not pass on nothing.
                errors.mark(
                    &["certificates"],
                    format!("{address}: handshake failed before the certificate was seen: {msg}"),
                );
            }
            e["error"] = json!(msg);
        }
        endpoints.push(e);
    }
    let mut file_out = Vec::new();
    for f in &files {
        let bytes = match crate::read::host_bytes(ctx, f) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                errors.mark(&["certificates", "files"], format!("{f}: {e}"));
                errors.push(f, &e);
                continue;
            }
        };
        // PEM certificates; other PEM blocks (keys) are skipped without being decoded.
        let mut ders: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&bytes).flatten().collect();
        if ders.is_empty() && bytes.first() == Some(&0x30) {
            ders.push(CertificateDer::from(bytes.clone()));
        }
        if ders.is_empty() {
            errors.note(f, "invalid", "no certificate in the file");
            continue;
        }
        let described: Vec<Value> = ders.iter().map(|d| describe(d)).collect();
        let leaf_is_ca = described.first().is_some_and(|d| d["ca"] == true);
        let chain_error = if leaf_is_ca {
            None
        } else {
            verify_chain(&ders, &anchors, &provider)
        };
        for d in described
            .iter()
            .filter(|d| d["ca"] != true && d.get("error").is_none())
        {
            let mut c = d.clone();
            c["source"] = json!(format!("file:{f}"));
            certificates.push(c);
        }
        file_out.push(json!({
            "path": f,
            "certificates": described,
            "chain_valid": chain_error.is_none(),
            "chain_error": chain_error,
        }));
    }
    let now = crate::util::now();
    for c in &mut certificates {
        if let Some(na) = c["not_after_unix"].as_i64() {
            c["days_left"] = json!((na - now).div_euclid(86400));
        }
    }
    let mut obs = json!({
        "endpoints": endpoints,
        "legacy_protocols": legacy_protocols,
        "files": file_out,
        "certificates": certificates,
        "trust_roots": roots_info,
        "policy": {
            "expiry_warn_days": config.expiry_warn_days,
            "min_rsa_bits": config.min_rsa_bits,
            "min_ec_bits": config.min_ec_bits,
            "allowed_protocols": config.allowed_protocols,
        },
    });
    let (errs, incomplete) = errors.finish();
    obs["errors"] = errs;
    obs["incomplete"] = incomplete;
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_messages_are_bounded_by_their_lengths() {
        // Two certificates of 2 and 1 bytes.
        let msg = [0, 0, 9, 0, 0, 2, 0xaa, 0xbb, 0, 0, 1, 0xcc];
        assert_eq!(certificate_list(&msg), vec![vec![0xaa, 0xbb], vec![0xcc]]);
        // A length past the end: what was whole before it.
        let msg = [0, 0, 9, 0, 0, 2, 0xaa, 0xbb, 0, 0, 9, 0xcc];
        assert_eq!(certificate_list(&msg), vec![vec![0xaa, 0xbb]]);
        assert!(certificate_list(&[0, 1]).is_empty());
        assert!(certificate_list(&[]).is_empty());
    }
}
