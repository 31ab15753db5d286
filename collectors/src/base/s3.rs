//! The S3 connection every S3 user in Evident shares (the `encryption.s3_buckets` collector,
//! the agent's S3 sink and `verify s3://`): one credential chain, one set of options, the
//! same timeouts.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use std::time::Duration;

/// How to reach S3 (or an S3-compatible store).
#[derive(Debug, Clone, Default)]
pub struct S3Access<'a> {
    /// Region; default from the AWS chain, else us-east-1.
    pub region: Option<&'a str>,
    /// Endpoint of an S3-compatible store (checksums then only when required).
    pub endpoint: Option<&'a str>,
    /// Path-style addressing.
    pub force_path_style: bool,
    /// Static credentials `(access key id, secret)`; default: the standard AWS chain.
    pub static_keys: Option<(&'a str, &'a str)>,
    /// Per-call time limit (the operation gets three times it).
    pub call_timeout: Option<Duration>,
    /// Finer limits, when set (they replace `call_timeout`).
    pub timeouts: Option<Timeouts>,
}

/// The time limits of every S3 call: a stalled endpoint (one that accepts connections and
/// never answers) fails the call instead of holding its caller.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Duration,
    /// One attempt, until the response is read.
    pub attempt: Duration,
    /// The whole call with its retries.
    pub operation: Duration,
}

/// Builds an S3 client from the standard credential chain (environment, profile, web
/// identity / IRSA, ECS, IMDSv2) and the options.
pub async fn client(a: &S3Access<'_>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = a.region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared);
    let timeouts = a.timeouts.or(a.call_timeout.map(|call| Timeouts {
        connect: call,
        attempt: call,
        operation: call.saturating_mul(3),
    }));
    if let Some(t) = timeouts {
        b = b.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(t.connect)
                .read_timeout(t.attempt)
                .operation_attempt_timeout(t.attempt)
                .operation_timeout(t.operation)
                .build(),
        );
    }
    if shared.region().is_none() {
        b = b.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(endpoint) = a.endpoint {
        b = b
            .endpoint_url(endpoint)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    if a.force_path_style {
        b = b.force_path_style(true);
    }
    if let Some((id, secret)) = a.static_keys {
        b = b.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "evident-config",
        ));
    }
    Client::from_conf(b.build())
}
