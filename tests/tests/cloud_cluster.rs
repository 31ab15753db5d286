//! Cloud and cluster evidence end to end, through the real binary: `encryption.s3_buckets`
//! against moto's S3 server (buckets set up compliant and non-compliant with boto3), and
//! `access.kubernetes` against tests/tooling/k8s_api.py, a local HTTPS server that serves
//! fixture answers in the shapes of the Kubernetes API reference (no live cluster here).

use evident_tests::services::{Mode, Proxy, moto, s3py};
use evident_tests::{AWS_ENV, Run, evident_with};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn write_config(dir: &Path, collector: &str, options: &str) -> String {
    let path = dir.join("evident.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nstate_dir = \"{}\"\n\n[[collectors]]\nname = \"{collector}\"\ntimeout = \"60s\"\n{options}\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dir.join("state").display(),
            dir.join("store").display()
        ),
    )
    .expect("config");
    path.display().to_string()
}

/// `evident collect KIND` with the config: the printed record.
fn collect(dir: &Path, config: &str, kind: &str, env: &[(&str, &str)]) -> (Run, Value) {
    let r = evident_with(dir, &["--config", config, "collect", kind], env);
    assert_eq!(r.code, 0, "collect {kind}: {}", r.all());
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("collect {kind} printed no JSON record ({e}): {}", r.all()));
    (r, v)
}

fn statuses(record: &Value) -> BTreeMap<String, String> {
    record["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn bucket<'a>(obs: &'a Value, name: &str) -> &'a Value {
    obs["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("bucket {name} in {obs:#}"))
}

fn tls_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"TlsOnly","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"],"Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
    )
}

fn public_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

#[test]
fn s3_buckets_compliant_and_not() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    let tls = tls_policy("locked");
    let public = public_policy("open");
    s3py(
        &endpoint,
        &[
            "create-bucket",
            "access-logs",
            "+",
            "create-bucket",
            "locked",
            "--object-lock",
            "+",
            "put-encryption",
            "locked",
            "aws:kms",
            "alias/evidence",
            "+",
            "put-versioning",
            "locked",
            "Enabled",
            "+",
            "put-object-lock",
            "locked",
            "COMPLIANCE",
            "400",
            "+",
            "put-public-access-block",
            "locked",
            "true",
            "+",
            "put-policy",
            "locked",
            &tls,
            "+",
            "put-lifecycle",
            "locked",
            "800",
            "+",
            "put-logging",
            "locked",
            "access-logs",
            "locked/",
            "+",
            "create-bucket",
            "open",
            "+",
            "put-policy",
            "open",
            &public,
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = format!("endpoint = \"{endpoint}\"\nforce_path_style = true\n");

    // Only the compliant bucket: every check passes.
    let config = write_config(
        dir.path(),
        "encryption.s3_buckets",
        &format!("{opts}buckets = [\"locked\"]\n"),
    );
    let (_, rec) = collect(dir.path(), &config, "encryption.s3_buckets", AWS_ENV);
    let st = statuses(&rec);
    assert_eq!(st.len(), 5, "{st:#?}");
    assert!(st.values().all(|s| s == "pass"), "{st:#?}\n{rec:#}");
    let o = &rec["observation"];
    let b = bucket(o, "locked");
    assert_eq!(b["encryption"]["algorithm"], "aws:kms", "{b:#}");
    assert_eq!(b["encryption"]["kms_key_id"], "alias/evidence");
    assert_eq!(b["versioning"]["status"], "Enabled");
    assert_eq!(b["object_lock"]["enabled"], true);
    assert_eq!(b["object_lock"]["default_mode"], "COMPLIANCE");
    assert_eq!(b["object_lock"]["default_days"], 400);
    assert_eq!(b["public_access_block"]["all"], true);
    assert_eq!(b["policy"]["tls_only"], true);
    assert_eq!(b["policy"]["public_allow"], false);
    assert_eq!(b["lifecycle"]["rules"][0]["expiration_days"], 800);
    assert_eq!(b["logging"]["target_bucket"], "access-logs");
    assert_eq!(b["denied"], serde_json::json!([]));
    assert_eq!(b["errors"], serde_json::json!([]), "{b:#}");
    let controls = rec["controls"].to_string();
    for c in ["A.8.24", "A.8.13", "A.5.23", "A.8.15", "A.5.33"] {
        assert!(controls.contains(c), "{c} in {controls}");
    }

    // Every listable bucket: the open one fails for visible reasons.
    let config = write_config(dir.path(), "encryption.s3_buckets", &opts);
    let (_, rec) = collect(dir.path(), &config, "encryption.s3_buckets", AWS_ENV);
    let st = statuses(&rec);
    assert_eq!(st["encryption.s3_buckets.listed"], "pass", "{st:#?}");
    for id in ["encrypted", "versioned", "not_public", "tls_only"] {
        assert_eq!(
            st[&format!("encryption.s3_buckets.{id}")],
            "fail",
            "{id}: {st:#?}"
        );
    }
    let o = &rec["observation"];
    assert_eq!(o["bucket_count"], 3, "{o:#}");
    let open = bucket(o, "open");
    assert_eq!(open["policy"]["public_allow"], true, "{open:#}");
    assert_eq!(open["policy"]["public_statements"][0]["sid"], "PublicRead");
    assert_eq!(open["public_access_block"]["all"], false);
    assert_eq!(open["object_lock"]["enabled"], false);
    assert_eq!(open["logging"]["enabled"], false);
    assert!(
        o["public"]
            .as_array()
            .expect("public")
            .contains(&"open".into())
    );
    assert!(
        o["unversioned"]
            .as_array()
            .expect("list")
            .contains(&"open".into())
    );
    assert!(
        !o["public"]
            .as_array()
            .expect("public")
            .contains(&"locked".into())
    );
    // The policy document itself is never recorded, only what the analysis found.
    assert!(!rec.to_string().contains("arn:aws:s3:::open/*"));
}

#[test]
fn s3_errors_are_recorded_per_bucket_never_a_crash() {
    let Some(server) = moto() else { return };
    let proxy = Proxy::start(server.port);
    proxy.set(Mode::Unavailable, server.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "encryption.s3_buckets",
        &format!(
            "endpoint = \"{}\"\nforce_path_style = true\nbuckets = [\"a\", \"b\"]\ncall_timeout_ms = 2000\n",
            proxy.url()
        ),
    );
    let (_, rec) = collect(dir.path(), &config, "encryption.s3_buckets", AWS_ENV);
    let o = &rec["observation"];
    assert_eq!(o["bucket_count"], 2, "{o:#}");
    for name in ["a", "b"] {
        let b = bucket(o, name);
        let errs = b["errors"].as_array().expect("errors");
        assert_eq!(errs.len(), 7, "{b:#}");
        assert!(errs.iter().all(|e| e["status"] == 503), "{b:#}");
        assert_eq!(b["encryption"]["known"], false);
    }
    let st = statuses(&rec);
    assert_eq!(st["encryption.s3_buckets.encrypted"], "fail", "{st:#?}");
    assert_eq!(st["encryption.s3_buckets.not_public"], "fail", "{st:#?}");
}
