//! RFC 3161 time anchoring: the agent asks a timestamp authority (TSA) to stamp each
//! checkpoint's envelope digest; `verify` checks the tokens offline against the TSA
//! certificates of the auditor's trust policy.
//!
//! A checkpoint's envelope carries `previous`, the digest of the record before it, and so
//! on back to the chain start: a token over checkpoint N proves that records 0..=N of that
//! chain existed at the token's `genTime`. A history fabricated today and dated last March
//! has tokens from today (or none), which `verify --require-timestamps MAXLAG` reports.
//!
//! ASN.1 and CMS come from RustCrypto's `x509-tsp`, `cms` and `der` (formats only, no
//! cryptography); signatures and certificate paths are checked with `rustls-webpki` on
//! aws-lc-rs, the one crypto stack of the agent. `TSTInfo` is decoded with our own
//! struct only because `der`'s GeneralizedTime refuses fractional seconds, which many
//! TSAs put in `genTime`.
//!
//! Store layout: `timestamps/<agent>/<chain>-<sequence:012>.tsr`, each the DER
//! `TimeStampResp` exactly as the TSA answered (what `openssl ts -verify -in` reads).
//! The agent side (its durable outbox of requests and tokens) is [`outbox`]; the checks of
//! a store are in [`check`].

pub mod check;
pub mod outbox;

use chrono::{DateTime, NaiveDateTime, Utc};
use cms::cert::x509::Certificate;
use cms::cert::x509::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Int, ObjectIdentifier, OctetString};
use der::{
    Any, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag,
    Writer,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

/// Largest timestamp reply read (from a TSA or from a store).
pub const MAX_TOKEN_BYTES: u64 = 256 * 1024;

const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const EKU_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// DER value of the timeStamping key purpose (1.3.6.1.5.5.7.3.8), for webpki.
const EKU_TIME_STAMPING_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// Why a timestamp request could not be built, or why a TSA's reply or a stored token is not
/// accepted. The variants say what a caller can do: retry later ([`TokenError::Refused`],
/// [`TokenError::NoRandom`]), distrust the token ([`TokenError::Altered`],
/// [`TokenError::BadSignature`], [`TokenError::Untrusted`]), or report it as not a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The system gave no random numbers for the request's nonce.
    #[error("no random numbers for a nonce")]
    NoRandom,
    /// A DER structure does not decode or encode; `what` names it.
    #[error("{what}: {source}")]
    Der {
        /// The structure (as the message names it).
        what: String,
        /// What the DER codec said.
        #[source]
        source: der::Error,
    },
    /// The request's digest cannot be encoded.
    #[error("{0}")]
    Digest(#[source] der::Error),
    /// The TSA answered but did not grant a token.
    #[error(
        "the TSA refused: status {status}{}{}",
        if text.is_empty() { "" } else { ": " },
        text.join("; ")
    )]
    Refused {
        /// The PKIStatus.
        status: String,
        /// The TSA's status strings.
        text: Vec<String>,
    },
    /// The reply or token decodes but is not an RFC 3161 token as the RFC wants it.
    #[error("{0}")]
    Malformed(String),
    /// The token stamps another hash algorithm than SHA-256.
    #[error("the token stamps a {0} hash, not SHA-256")]
    OtherHash(ObjectIdentifier),
    /// The token stamps another digest than the checkpoint's.
    #[error("the token stamps digest {stamped}, not the checkpoint's {expected}")]
    OtherDigest {
        /// The stamped digest (hex).
        stamped: String,
        /// The checkpoint's digest (hex).
        expected: String,
    },
    /// The reply does not carry the request's nonce.
    #[error("the reply does not carry the nonce of the request (a replayed or foreign reply)")]
    Nonce,
    /// The signed attributes do not match what they sign or name (the token was altered or
    /// its signer swapped).
    #[error("{0}")]
    Altered(&'static str),
    /// The signature is not by the signer certificate's key.
    #[error("bad signature: the token was not signed by the key of {signer}")]
    BadSignature {
        /// The signer certificate's subject.
        signer: String,
    },
    /// The signer is not (or was not at genTime) a TSA of the trust policy.
    #[error("{0}")]
    Untrusted(String),
    /// An algorithm the verifier does not support.
    #[error("{0}")]
    Unsupported(String),
}

/// A [`TokenError::Der`] for `what`.
fn der_err(what: impl Into<String>) -> impl FnOnce(der::Error) -> TokenError {
    let what = what.into();
    move |source| TokenError::Der { what, source }
}

/// Why the `[[tsa]]` entries of a trust policy are not usable.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    /// A `pem_file` cannot be read.
    #[error("{entry}: {}: {source}", path.display())]
    Read {
        /// The entry (`tsa[N]`).
        entry: String,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: evident_collectors::CollectError,
    },
    /// The entry names both or neither of `pem_file` and `pem`.
    #[error("{0}: name exactly one of `pem_file` or `pem`")]
    Source(String),
    /// The PEM does not parse.
    #[error("{entry}: not a PEM certificate: {source}")]
    Pem {
        /// The entry (`tsa[N]`).
        entry: String,
        /// What the PEM reader said.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM CERTIFICATE is not an X.509 certificate.
    #[error("{entry}: not an X.509 certificate: {source}")]
    NotX509 {
        /// The entry (`tsa[N]`).
        entry: String,
        /// What the DER decoder said.
        #[source]
        source: der::Error,
    },
    /// The PEM holds no certificate.
    #[error("{0}: no CERTIFICATE in the PEM")]
    Empty(String),
    /// A loaded certificate does not decode.
    #[error("TSA certificate: {0}")]
    Certificate(#[source] der::Error),
}

/// `genTime`: a GeneralizedTime that may carry fractional seconds (RFC 3161 allows them).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct GenTime {
    raw: Vec<u8>,
    /// The time.
    pub at: DateTime<Utc>,
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let raw = reader.read_vec(header.length)?;
        let bad = || der::Error::from(der::ErrorKind::DateTime);
        let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let body = text.strip_suffix('Z').ok_or_else(bad)?;
        let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
        if whole.len() != 14
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && fraction.is_empty())
        {
            return Err(bad());
        }
        let t = NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").map_err(|_| bad())?;
        let nanos: u32 = format!("{:0<9}", fraction.get(..9).unwrap_or(fraction))
            .parse()
            .map_err(|_| bad())?;
        let at = t
            .and_utc()
            .checked_add_signed(chrono::Duration::nanoseconds(i64::from(nanos)))
            .ok_or_else(bad)?;
        Ok(GenTime { raw, at })
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.raw.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.raw)
    }
}

/// `TSTInfo` (RFC 3161 section 2.4.2), as `x509_tsp::TstInfo` but with [`GenTime`].
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TstInfo {
    /// v1.
    pub version: TspVersion,
    /// The TSA's policy.
    pub policy: ObjectIdentifier,
    /// Hash of the stamped data.
    pub message_imprint: MessageImprint,
    /// The TSA's serial number of this token.
    pub serial_number: Int,
    /// When the TSA stamped it.
    pub gen_time: GenTime,
    /// How exact `gen_time` is.
    #[asn1(optional = "true")]
    pub accuracy: Option<Accuracy>,
    /// Ordering (ignored).
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    /// The requester's nonce.
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    /// The TSA's name (GeneralName).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<Any>,
    /// Extensions.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<cms::cert::x509::ext::Extensions>,
}

/// `ESSCertIDv2` (RFC 5035): the hash of a signer's certificate.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    /// Default SHA-256.
    #[asn1(optional = "true")]
    hash_algorithm: Option<cms::cert::x509::spki::AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// `SigningCertificateV2` (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// `ESSCertID` (RFC 2634): the SHA-1 hash of a signer's certificate.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// `SigningCertificate` (RFC 2634).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// RFC 3161 section 2.4.1 and RFC 5816: the signed attributes name the signer's certificate
/// (signingCertificate or signingCertificateV2), so the signer cannot be swapped for another
/// certificate of the same key.
fn check_ess(
    attrs: &cms::signed_data::SignedAttributes,
    signer_der: &[u8],
) -> Result<(), TokenError> {
    let value = |oid: ObjectIdentifier| {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.get(0))
    };
    let first = |n: usize| {
        if n == 0 {
            Err(TokenError::Malformed(
                "the signing-certificate attribute names no certificate".to_string(),
            ))
        } else {
            Ok(())
        }
    };
    if let Some(v2) = value(ID_AA_SIGNING_CERTIFICATE_V2) {
        let sc: SigningCertificateV2 = v2
            .decode_as()
            .map_err(der_err("signingCertificateV2 attribute"))?;
        first(sc.certs.len())?;
        let id = &sc.certs[0];
        let alg = id.hash_algorithm.as_ref().map_or(ID_SHA256, |a| a.oid);
        let hash = digest_alg(&alg)?;
        if aws_lc_rs::digest::digest(hash, signer_der).as_ref() != id.cert_hash.as_bytes() {
            return Err(TokenError::Altered(
                "the signingCertificateV2 attribute names another certificate than the signer's",
            ));
        }
        return Ok(());
    }
    if let Some(v1) = value(ID_AA_SIGNING_CERTIFICATE) {
        let sc: SigningCertificate = v1
            .decode_as()
            .map_err(der_err("signingCertificate attribute"))?;
        first(sc.certs.len())?;
        let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, signer_der);
        if h.as_ref() != sc.certs[0].cert_hash.as_bytes() {
            return Err(TokenError::Altered(
                "the signingCertificate attribute names another certificate than the signer's",
            ));
        }
        return Ok(());
    }
    Err(TokenError::Malformed("the signed attributes name no signing certificate (RFC 3161 wants signingCertificate or signingCertificateV2)".into()))
}

/// A random positive nonce for a request.
pub fn nonce() -> Result<Int, TokenError> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| TokenError::NoRandom)?;
    int_of(&b)
}

/// A non-negative INTEGER from big-endian bytes, minimally encoded.
fn int_of(bytes: &[u8]) -> Result<Int, TokenError> {
    let start = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let mut v = Vec::with_capacity(bytes.len() + 1);
    if bytes.get(start).is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(bytes.get(start..).unwrap_or(&[0]));
    Int::new(&v).map_err(der_err("nonce"))
}

fn sha256_id() -> cms::cert::x509::spki::AlgorithmIdentifier<Any> {
    cms::cert::x509::spki::AlgorithmIdentifier {
        oid: ID_SHA256,
        parameters: None,
    }
}

/// A DER `TimeStampReq` for a SHA-256 digest, asking for the TSA's certificate in the token.
pub fn request(digest: &[u8], nonce: &Int) -> Result<Vec<u8>, TokenError> {
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: sha256_id(),
            hashed_message: OctetString::new(digest).map_err(TokenError::Digest)?,
        },
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: true,
        extensions: None,
    };
    req.to_der().map_err(der_err("cannot encode the request"))
}

/// What a token says, once read (and, from [`Anchors::verify`], verified).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// When the TSA stamped the digest.
    pub gen_time: DateTime<Utc>,
    /// The token's serial number (hex).
    pub serial: String,
    /// The signer's certificate subject (empty when not checked).
    pub signer: String,
}

/// The token inside a reply, and its TSTInfo, without checking the signature.
fn open(reply: &[u8]) -> Result<(SignedData, Vec<u8>, TstInfo), TokenError> {
    let resp =
        TimeStampResp::from_der(reply).map_err(der_err("not a DER RFC 3161 TimeStampResp"))?;
    use cmpv2::status::PkiStatus;
    match resp.status.status {
        PkiStatus::Accepted | PkiStatus::GrantedWithMods => {}
        other => {
            let text = resp
                .status
                .status_string
                .iter()
                .flat_map(|s| s.iter())
                .map(|s| s.as_str().to_string())
                .collect();
            return Err(TokenError::Refused {
                status: format!("{other:?}"),
                text,
            });
        }
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| TokenError::Malformed("the reply is granted but holds no token".into()))?;
    token_parts(&token)
}

fn token_parts(token: &ContentInfo) -> Result<(SignedData, Vec<u8>, TstInfo), TokenError> {
    if token.content_type != ID_SIGNED_DATA {
        return Err(TokenError::Malformed(format!(
            "the token is not CMS SignedData (content type {})",
            token.content_type
        )));
    }
    let sd: SignedData = token
        .content
        .decode_as()
        .map_err(der_err("the token's SignedData does not decode"))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(TokenError::Malformed(format!(
            "the token does not hold a TSTInfo (content type {})",
            sd.encap_content_info.econtent_type
        )));
    }
    let octets: OctetString = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| TokenError::Malformed("the token holds no TSTInfo".into()))?
        .decode_as()
        .map_err(der_err("the token's content is not an OCTET STRING"))?;
    let raw = octets.as_bytes().to_vec();
    let tst = TstInfo::from_der(&raw).map_err(der_err("the token's TSTInfo does not decode"))?;
    Ok((sd, raw, tst))
}

fn check_imprint(tst: &TstInfo, digest: &[u8]) -> Result<(), TokenError> {
    let imprint = &tst.message_imprint;
    if imprint.hash_algorithm.oid != ID_SHA256 {
        return Err(TokenError::OtherHash(imprint.hash_algorithm.oid));
    }
    if imprint.hashed_message.as_bytes() != digest {
        return Err(TokenError::OtherDigest {
            stamped: hex::encode(imprint.hashed_message.as_bytes()),
            expected: hex::encode(digest),
        });
    }
    Ok(())
}

/// Checks a TSA's reply to our request (agent side, before the token is kept): granted,
/// over our digest, with our nonce. The signature is checked by `verify`, offline.
pub fn accept_reply(reply: &[u8], digest: &[u8], nonce: &Int) -> Result<TokenInfo, TokenError> {
    let (_, _, tst) = open(reply)?;
    check_imprint(&tst, digest)?;
    if tst.nonce.as_ref().map(|n| n.as_bytes()) != Some(nonce.as_bytes()) {
        return Err(TokenError::Nonce);
    }
    Ok(TokenInfo {
        gen_time: tst.gen_time.at,
        serial: hex::encode(tst.serial_number.as_bytes()),
        signer: String::new(),
    })
}

/// `[[tsa]]` of a trust policy: a timestamp authority the auditor believes, by its
/// certificate or the CA certificate that issues its TSA certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaEntry {
    /// A name for messages (default: the certificate's subject).
    #[serde(default)]
    pub name: Option<String>,
    /// PEM file with one or more certificates (relative to the policy file).
    #[serde(default)]
    pub pem_file: Option<PathBuf>,
    /// The same, inline.
    #[serde(default)]
    pub pem: Option<String>,
    /// The certificates (DER), read by [`load_certs`].
    #[serde(skip)]
    pub certs: Vec<Vec<u8>>,
}

/// Reads the certificates of every `[[tsa]]` entry (`pem_file` relative to `base`). Each entry
/// must name exactly one of `pem_file` or `pem` and hold at least one certificate.
pub fn load_certs(entries: &mut [TsaEntry], base: Option<&Path>) -> Result<(), TsaError> {
    for (i, e) in entries.iter_mut().enumerate() {
        let what = format!("tsa[{i}]");
        let text = match (&e.pem_file, &e.pem) {
            (Some(f), None) => {
                let path = match base {
                    Some(b) if f.is_relative() => b.join(f),
                    _ => f.clone(),
                };
                match crate::config::read_config_file(&path) {
                    Ok(text) => text,
                    Err(source) => {
                        return Err(TsaError::Read {
                            entry: what,
                            path,
                            source,
                        });
                    }
                }
            }
            (None, Some(p)) => p.clone(),
            _ => return Err(TsaError::Source(what)),
        };
        let mut certs = Vec::new();
        for c in CertificateDer::pem_slice_iter(text.as_bytes()) {
            let c = c.map_err(|source| TsaError::Pem {
                entry: what.clone(),
                source,
            })?;
            Certificate::from_der(c.as_ref()).map_err(|source| TsaError::NotX509 {
                entry: what.clone(),
                source,
            })?;
            certs.push(c.as_ref().to_vec());
        }
        if certs.is_empty() {
            return Err(TsaError::Empty(what));
        }
        e.certs = certs;
    }
    Ok(())
}

/// The TSA certificates of a trust policy, ready to check tokens with.
pub struct Anchors {
    /// Every configured certificate: (DER, parsed, name).
    certs: Vec<(Vec<u8>, Certificate, String)>,
    /// Those webpki accepts as path anchors...
    anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    /// ...and their names.
    anchor_names: Vec<String>,
    /// Certificate paths already validated: sha256(signer and token certificates) -> (the
    /// span of time every certificate on the path is valid in, the anchor's name). A token
    /// whose genTime falls in the span needs no second path validation.
    paths: std::sync::Mutex<std::collections::HashMap<[u8; 32], (u64, u64, String)>>,
}

impl Anchors {
    /// From the `[[tsa]]` entries of a policy (their certificates already loaded).
    pub fn new(entries: &[TsaEntry]) -> Result<Anchors, TsaError> {
        let (mut certs, mut anchors, mut anchor_names) = (Vec::new(), Vec::new(), Vec::new());
        for e in entries {
            for der in &e.certs {
                let cert = Certificate::from_der(der).map_err(TsaError::Certificate)?;
                let name = e
                    .name
                    .clone()
                    .unwrap_or_else(|| cert.tbs_certificate.subject.to_string());
                // A certificate webpki cannot use as an anchor still pins a signer.
                if let Ok(a) =
                    webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                {
                    anchors.push(a.to_owned());
                    anchor_names.push(name.clone());
                }
                certs.push((der.clone(), cert, name));
            }
        }
        Ok(Anchors {
            certs,
            anchors,
            anchor_names,
            paths: Default::default(),
        })
    }

    /// Whether any certificate is configured.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Verifies a stored reply offline: a granted reply whose token stamps `digest` (SHA-256),
    /// signed (CMS SignedData, signed attributes with content type and message digest) by a
    /// certificate with the timeStamping key purpose that is one of the configured
    /// certificates or chains to one of them, valid at the token's `genTime`.
    pub fn verify(&self, reply: &[u8], digest: &[u8]) -> Result<TokenInfo, TokenError> {
        let (sd, econtent, tst) = open(reply)?;
        check_imprint(&tst, digest)?;
        let gen_time = tst.gen_time.at;
        let signers: Vec<&SignerInfo> = sd.signer_infos.0.iter().collect();
        let [si] = signers.as_slice() else {
            return Err(TokenError::Malformed(format!(
                "the token has {} signatures; RFC 3161 allows exactly the TSA's",
                signers.len()
            )));
        };
        // Signed attributes: content type and the digest of the TSTInfo.
        let attrs = si.signed_attrs.as_ref().ok_or_else(|| {
            TokenError::Malformed("the token's signature has no signed attributes".into())
        })?;
        let attr = |oid: ObjectIdentifier| -> Result<&Any, TokenError> {
            let a: Vec<_> = attrs.iter().filter(|a| a.oid == oid).collect();
            match a.as_slice() {
                [one] if one.values.len() == 1 => one
                    .values
                    .get(0)
                    .ok_or_else(|| TokenError::Malformed(format!("attribute {oid} is empty"))),
                _ => Err(TokenError::Malformed(format!(
                    "the signed attributes must hold attribute {oid} exactly once"
                ))),
            }
        };
        let ct: ObjectIdentifier = attr(ID_CONTENT_TYPE)?
            .decode_as()
            .map_err(der_err("content-type attribute"))?;
        if ct != ID_CT_TST_INFO {
            return Err(TokenError::Malformed(format!(
                "the signed content type is {ct}, not TSTInfo"
            )));
        }
        let md: OctetString = attr(ID_MESSAGE_DIGEST)?
            .decode_as()
            .map_err(der_err("message-digest attribute"))?;
        let hash = digest_alg(&si.digest_alg.oid)?;
        if aws_lc_rs::digest::digest(hash, &econtent).as_ref() != md.as_bytes() {
            return Err(TokenError::Altered(
                "the signed message digest does not match the TSTInfo (the token was altered)",
            ));
        }
        let signed = attrs.to_der().map_err(der_err("signed attributes"))?;

        // The signer's certificate: in the token, or one of the configured ones.
        let mut in_token: Vec<(Vec<u8>, Certificate)> = Vec::new();
        for c in sd.certificates.iter().flat_map(|s| s.0.iter()) {
            if let CertificateChoices::Certificate(cert) = c {
                let der = cert.to_der().map_err(der_err("certificate in the token"))?;
                in_token.push((der, cert.clone()));
            }
        }
        let candidates = in_token
            .iter()
            .map(|(d, c)| (d, c))
            .chain(self.certs.iter().map(|(d, c, _)| (d, c)));
        let (signer_der, signer) = candidates
            .into_iter()
            .find(|(_, c)| identifies(&si.sid, c))
            .ok_or_else(|| {
                TokenError::Untrusted(
                    "the signer's certificate is neither in the token nor in the trust policy"
                        .into(),
                )
            })?;
        check_ess(attrs, signer_der)?;
        let cert_der = CertificateDer::from(signer_der.as_slice());
        let ee = webpki::EndEntityCert::try_from(&cert_der).map_err(|e| {
            TokenError::Untrusted(format!("the signer's certificate is unusable: {e:?}"))
        })?;
        let algs = signature_algs(&si.signature_algorithm.oid, &si.digest_alg.oid)?;
        if !algs.iter().any(|a| {
            ee.verify_signature(*a, &signed, si.signature.as_bytes())
                .is_ok()
        }) {
            return Err(TokenError::BadSignature {
                signer: signer.tbs_certificate.subject.to_string(),
            });
        }

        // Trust: a configured certificate itself, or a path to one, valid at genTime.
        let subject = signer.tbs_certificate.subject.to_string();
        let secs = u64::try_from(gen_time.timestamp())
            .map_err(|_| TokenError::Malformed("genTime is before 1970".into()))?;
        let pinned = self.certs.iter().find(|(d, _, _)| d == signer_der);
        let name = match pinned {
            Some((_, cert, name)) => {
                valid_at(cert, secs)?;
                tsa_purpose(cert)?;
                name.clone()
            }
            None => {
                let intermediates: Vec<CertificateDer<'_>> = in_token
                    .iter()
                    .filter(|(d, _)| d != signer_der)
                    .map(|(d, _)| CertificateDer::from(d.as_slice()))
                    .collect();
                let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                h.update(signer_der);
                for c in &intermediates {
                    h.update(&(c.len() as u64).to_be_bytes());
                    h.update(c);
                }
                let mut id = [0u8; 32];
                id.copy_from_slice(h.finish().as_ref());
                let cached = self
                    .paths
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .filter(|(from, until, _)| (*from..=*until).contains(&secs))
                    .map(|(_, _, n)| n.clone());
                match cached {
                    Some(name) => name,
                    None => {
                        let path = ee
                            .verify_for_usage(
                                webpki::ALL_VERIFICATION_ALGS,
                                &self.anchors,
                                &intermediates,
                                UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
                                // webpki applies this to every certificate on the path:
                                // CAs may have no EKU; the signer's own is checked below.
                                webpki::KeyUsage::required_if_present(EKU_TIME_STAMPING_DER),
                                None,
                                None,
                            )
                            .map_err(|e| {
                                TokenError::Untrusted(format!(
                                    "the signer {subject} does not chain to a TSA certificate of the trust policy at genTime {}: {e:?}",
                                    gen_time.to_rfc3339()
                                ))
                            })?;
                        tsa_purpose(signer)?;
                        let anchor = path.anchor();
                        let name = self
                            .anchors
                            .iter()
                            .position(|a| {
                                a.subject_public_key_info == anchor.subject_public_key_info
                            })
                            .and_then(|i| self.anchor_names.get(i))
                            .map_or_else(|| subject.clone(), Clone::clone);
                        // The span in which every certificate of this path is valid.
                        let mut span = validity(signer);
                        for c in path.intermediate_certificates() {
                            let Ok(cert) = Certificate::from_der(c.der().as_ref()) else {
                                span = (1, 0);
                                break;
                            };
                            let (f, u) = validity(&cert);
                            span = (span.0.max(f), span.1.min(u));
                        }
                        self.paths
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(id, (span.0, span.1, name.clone()));
                        name
                    }
                }
            }
        };
        Ok(TokenInfo {
            gen_time,
            serial: hex::encode(tst.serial_number.as_bytes()),
            signer: if name == subject {
                subject
            } else {
                format!("{subject} (via {name})")
            },
        })
    }
}

fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer,
            serial_number,
        }) => {
            cert.tbs_certificate.issuer == *issuer
                && cert.tbs_certificate.serial_number == *serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == <SubjectKeyIdentifier as der::oid::AssociatedOid>::OID)
            .any(|e| {
                SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).is_ok_and(|k| k == *ski)
            }),
    }
}

/// RFC 3161 section 2.3: the TSA's certificate has one critical extended key usage
/// extension, with timeStamping as its only purpose (as `openssl ts -verify` checks).
fn tsa_purpose(cert: &Certificate) -> Result<(), TokenError> {
    let subject = &cert.tbs_certificate.subject;
    let eku: Vec<_> = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == <ExtendedKeyUsage as der::oid::AssociatedOid>::OID)
        .collect();
    let [ext] = eku.as_slice() else {
        return Err(TokenError::Untrusted(format!(
            "the TSA certificate {subject} has no (or more than one) extended key usage extension"
        )));
    };
    let usage = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()).map_err(der_err(format!(
        "the TSA certificate {subject}: extended key usage"
    )))?;
    if !ext.critical || usage.0 != [EKU_TIME_STAMPING] {
        return Err(TokenError::Untrusted(format!(
            "the TSA certificate {subject} is not for timestamping only (RFC 3161 wants a critical extended key usage of timeStamping alone)"
        )));
    }
    Ok(())
}

/// `(notBefore, notAfter)` in Unix seconds.
fn validity(cert: &Certificate) -> (u64, u64) {
    let v = &cert.tbs_certificate.validity;
    (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    )
}

fn valid_at(cert: &Certificate, secs: u64) -> Result<(), TokenError> {
    let (from, until) = validity(cert);
    if secs < from || secs > until {
        return Err(TokenError::Untrusted(format!(
            "the TSA certificate {} was not valid at genTime",
            cert.tbs_certificate.subject
        )));
    }
    Ok(())
}

fn digest_alg(oid: &ObjectIdentifier) -> Result<&'static aws_lc_rs::digest::Algorithm, TokenError> {
    match *oid {
        ID_SHA256 => Ok(&aws_lc_rs::digest::SHA256),
        ID_SHA384 => Ok(&aws_lc_rs::digest::SHA384),
        ID_SHA512 => Ok(&aws_lc_rs::digest::SHA512),
        other => Err(TokenError::Unsupported(format!(
            "the token's digest algorithm {other} is not SHA-256, SHA-384 or SHA-512"
        ))),
    }
}

/// The webpki algorithms a SignerInfo's (signature, digest) algorithms may mean; the
/// certificate's key decides among them.
fn signature_algs(
    sig: &ObjectIdentifier,
    digest: &ObjectIdentifier,
) -> Result<Vec<&'static dyn SignatureVerificationAlgorithm>, TokenError> {
    use webpki::aws_lc_rs as a;
    let hash = match *sig {
        SHA256_WITH_RSA | ECDSA_SHA256 => ID_SHA256,
        SHA384_WITH_RSA | ECDSA_SHA384 => ID_SHA384,
        SHA512_WITH_RSA | ECDSA_SHA512 => ID_SHA512,
        _ => *digest,
    };
    let rsa = matches!(
        *sig,
        RSA_ENCRYPTION | SHA256_WITH_RSA | SHA384_WITH_RSA | SHA512_WITH_RSA
    );
    let ecdsa = matches!(
        *sig,
        EC_PUBLIC_KEY | ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512
    );
    Ok(match (rsa, ecdsa, hash) {
        (true, _, ID_SHA256) => vec![a::RSA_PKCS1_2048_8192_SHA256],
        (true, _, ID_SHA384) => vec![a::RSA_PKCS1_2048_8192_SHA384],
        (true, _, ID_SHA512) => vec![a::RSA_PKCS1_2048_8192_SHA512],
        (_, true, ID_SHA256) => vec![a::ECDSA_P256_SHA256, a::ECDSA_P384_SHA256],
        (_, true, ID_SHA384) => vec![a::ECDSA_P384_SHA384, a::ECDSA_P256_SHA384],
        (_, true, ID_SHA512) => vec![a::ECDSA_P521_SHA512, a::ECDSA_P384_SHA512],
        _ if *sig == ED25519 => vec![a::ED25519],
        _ => {
            return Err(TokenError::Unsupported(format!(
                "the token's signature algorithm {sig} (digest {digest}) is not supported (RSA PKCS#1 v1.5, ECDSA or Ed25519)"
            )));
        }
    })
}

/// The store key of a token.
pub fn token_key(agent: &str, chain: &str, sequence: u64) -> String {
    format!(
        "timestamps/{}/{}-{sequence:012}.tsr",
        crate::store::segment(agent),
        crate::store::segment(chain)
    )
}

/// Decodes a hex digest.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_time_accepts_fractions_and_refuses_garbage() {
        let t = |s: &str| GenTime::from_der(&[&[0x18, s.len() as u8][..], s.as_bytes()].concat());
        assert_eq!(
            t("20261203061500Z").expect("plain").at.to_rfc3339(),
            "2026-12-03T06:15:00+00:00"
        );
        assert_eq!(
            t("20261203061500.25Z")
                .expect("fraction")
                .at
                .timestamp_subsec_millis(),
            250
        );
        for bad in [
            "20261203061500",
            "2026120306150Z",
            "20261303061500Z",
            "20261203061500.Z",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let ok = t("20261203061500.123Z").expect("ok");
        assert_eq!(
            GenTime::from_der(&ok.to_der().expect("encode")).expect("again"),
            ok
        );
    }

    #[test]
    fn requests_are_der_with_a_positive_nonce() {
        let n = nonce().expect("nonce");
        assert!(n.as_bytes()[0] & 0x80 == 0);
        let d = [7u8; 32];
        let der = request(&d, &n).expect("request");
        let back = TimeStampReq::from_der(&der).expect("decode");
        assert_eq!(back.message_imprint.hashed_message.as_bytes(), &d);
        assert!(back.cert_req);
        assert_eq!(int_of(&[0, 0, 0xff]).expect("int").as_bytes(), &[0, 0xff]);
        assert_eq!(int_of(&[0, 0]).expect("int").as_bytes(), &[0]);
    }

    #[test]
    fn garbage_replies_are_clear_errors() {
        assert!(
            accept_reply(b"not der", &[0; 32], &nonce().expect("nonce")).is_err_and(|e| matches!(
                e,
                TokenError::Der { .. }
            ) && e
                .to_string()
                .contains("TimeStampResp"))
        );
        let anchors = Anchors::new(&[]).expect("anchors");
        assert!(anchors.verify(&[0x30, 0x00], &[0; 32]).is_err());
        assert_eq!(unhex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn policy_entries_need_one_source_and_a_certificate() {
        let mut e = vec![TsaEntry::default()];
        assert!(load_certs(&mut e, None).is_err_and(|m| m.to_string().contains("exactly one")));
        let mut e = vec![TsaEntry {
            pem: Some("nothing here".into()),
            ..TsaEntry::default()
        }];
        assert!(load_certs(&mut e, None).is_err_and(
            |m| matches!(m, TsaError::Empty(_)) && m.to_string().contains("no CERTIFICATE")
        ));
    }
}
