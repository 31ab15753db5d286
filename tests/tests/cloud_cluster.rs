//! Cloud and cluster evidence end to end, through the real binary: `encryption.s3_buckets`
//! against moto's S3 server (buckets set up compliant and non-compliant with boto3), and
//! `access.kubernetes` against tests/tooling/k8s_api.py, a local HTTPS server that serves
//! fixture answers in the shapes of the Kubernetes API reference (no live cluster here).

use evident_tests::services::{Mode, Proxy, Server, k8s_api, moto, pki, s3py};
use evident_tests::{AWS_ENV, Run, evident_with};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

// ---------------------------------------------------------------------------------------
// access.kubernetes against tests/tooling/k8s_api.py (fixture answers, not a live cluster).

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.TOKEN-CANARY-3f7a.signature";

/// The fixture API server and the files the agent needs (CA, token).
struct Cluster {
    dir: tempfile::TempDir,
    server: Server,
    ca: PathBuf,
    token: PathBuf,
}

fn cluster(extra: &[&str]) -> Option<Cluster> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, ca, token) = k8s_api(dir.path(), TOKEN, extra)?;
    Some(Cluster {
        dir,
        server,
        ca,
        token,
    })
}

impl Cluster {
    fn options(&self, extra: &str) -> String {
        format!(
            "api_server = \"https://127.0.0.1:{}\"\ntoken_file = \"{}\"\nca_file = \"{}\"\nnamespace = \"evident\"\n{extra}",
            self.server.port,
            self.token.display(),
            self.ca.display()
        )
    }

    fn collect(&self, extra: &str) -> (Run, Value) {
        let config = write_config(self.dir.path(), "access.kubernetes", &self.options(extra));
        collect(self.dir.path(), &config, "access.kubernetes", &[])
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn kubernetes_rbac_service_accounts_and_pods() {
    let Some(c) = cluster(&[]) else { return };
    // Two items a page: every list is paged through `continue`.
    let (r, rec) = c.collect("page_size = 2\n");
    let o = &rec["observation"];
    let st = statuses(&rec);
    assert_eq!(st.len(), 8, "{st:#?}");
    let expect = [
        ("reachable", "pass"),
        ("agent_least_privilege", "pass"),
        ("admin_bindings", "fail"),
        ("no_automounted_tokens", "fail"),
        ("pods_not_privileged", "fail"),
        ("pods_non_root", "fail"),
        ("pods_no_host_access", "fail"),
        ("pods_resource_limits", "fail"),
    ];
    for (id, want) in expect {
        assert_eq!(
            st[&format!("access.kubernetes.{id}")],
            want,
            "{id}: {st:#?}\n{o:#}"
        );
    }
    // Own permissions, read through SelfSubjectRulesReview.
    assert_eq!(o["self"]["wildcard"], false);
    assert_eq!(
        o["self"]["resource_rules"].as_array().expect("rules").len(),
        3
    );
    // Paged lists arrived whole (5 cluster role bindings at 2 a page, 3 pods).
    assert_eq!(o["binding_count"], 7, "{o:#}");
    assert_eq!(o["pod_count"], 3);
    assert_eq!(o["truncated"], serde_json::json!([]));
    // The 403 on cluster-wide rolebindings is a recorded fact; the namespace's were read.
    assert_eq!(
        o["denied"][0]["resource"], "rolebindings (all namespaces)",
        "{o:#}"
    );
    assert_eq!(o["denied"][0]["status"], 403);
    assert!(
        o["denied"][0]["message"]
            .as_str()
            .expect("msg")
            .contains("forbidden")
    );
    assert_eq!(o["role_bindings_listed"], true);
    // Admin grants: cluster-admin to alice, a wildcard ClusterRole to ci:deployer, a
    // wildcard Role to bob; system:masters is allowed.
    let unexpected: Vec<String> = o["unexpected_admin_bindings"]
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        unexpected,
        ["ops-admin", "deployer-everything", "dev-everything"],
        "{o:#}"
    );
    assert_eq!(o["admin_bindings"].as_array().expect("list").len(), 4);
    assert_eq!(names(&o["automounting_service_accounts"]), ["default"]);
    assert_eq!(names(&o["privileged_pods"]), ["legacy-agent"]);
    assert_eq!(names(&o["root_pods"]), ["legacy-agent"]);
    assert_eq!(names(&o["host_access_pods"]), ["legacy-agent"]);
    assert_eq!(
        names(&o["unlimited_pods"]),
        ["legacy-agent", "batch-job-abc12"]
    );
    let legacy = &o["pods"][1];
    assert_eq!(legacy["host_paths"][0], "/var/run/docker.sock");
    assert_eq!(names(&legacy["secrets"]), ["db-credentials", "legacy-env"]);
    assert_eq!(names(&o["pods"][0]["secrets"]), ["evident-signing-key"]);
    // Never recorded: the token, environment values, annotations.
    let all = format!("{}{}", r.stdout, r.stderr);
    for canary in ["TOKEN-CANARY", "ENV-VALUE-CANARY", "ANNOTATION-CANARY"] {
        assert!(!all.contains(canary), "{canary} leaked");
    }
    let controls = rec["controls"].to_string();
    for c in [
        "A.8.2", "A.8.3", "A.5.15", "A.5.18", "A.8.9", "A.8.22", "A.8.31",
    ] {
        assert!(
            controls.contains(&format!("\"ISO27001:2022/{c}\"")),
            "{c} in {controls}"
        );
    }
}

#[test]
fn kubernetes_wrong_token_untrusted_ca_and_limits_are_recorded() {
    let Some(c) = cluster(&[]) else { return };
    // A wrong token: every call answers 401, recorded as denied; checks fail, no crash.
    let bad = c.dir.path().join("bad-token");
    std::fs::write(&bad, "not-the-token").expect("token");
    let opts = format!(
        "api_server = \"https://127.0.0.1:{}\"\ntoken_file = \"{}\"\nca_file = \"{}\"\nnamespace = \"evident\"\n",
        c.server.port,
        bad.display(),
        c.ca.display()
    );
    let config = write_config(c.dir.path(), "access.kubernetes", &opts);
    let (_, rec) = collect(c.dir.path(), &config, "access.kubernetes", &[]);
    let o = &rec["observation"];
    assert!(o["denied"].as_array().expect("denied").len() >= 6, "{o:#}");
    assert!(
        o["denied"]
            .as_array()
            .expect("denied")
            .iter()
            .all(|d| d["status"] == 401)
    );
    let st = statuses(&rec);
    assert_eq!(st["access.kubernetes.agent_least_privilege"], "fail");
    assert_eq!(
        st["access.kubernetes.pods_not_privileged"], "fail",
        "not listed is not a pass"
    );

    // A CA that did not sign the server's certificate: connection errors, recorded.
    let other = c.dir.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let (other_ca, _, _) = pki(&other);
    let opts = format!(
        "api_server = \"https://127.0.0.1:{}\"\ntoken_file = \"{}\"\nca_file = \"{}\"\nnamespace = \"evident\"\n",
        c.server.port,
        c.token.display(),
        other_ca.display()
    );
    let config = write_config(c.dir.path(), "access.kubernetes", &opts);
    let (_, rec) = collect(c.dir.path(), &config, "access.kubernetes", &[]);
    let errs = rec["observation"]["errors"]
        .as_array()
        .expect("errors")
        .clone();
    assert!(!errs.is_empty());
    assert!(errs.iter().all(|e| e["kind"] == "connect"), "{errs:#?}");
    assert_eq!(statuses(&rec)["access.kubernetes.reachable"], "fail");

    // Bounded: a small answer limit and one page per list.
    let (_, rec) = c.collect("max_response_bytes = 1000\npage_size = 1\nmax_pages = 1\n");
    let o = &rec["observation"];
    assert!(
        o["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["kind"] == "too_large"),
        "{o:#}"
    );
    assert!(
        !o["truncated"].as_array().expect("truncated").is_empty(),
        "{o:#}"
    );
}

#[test]
fn s3_buckets_are_read_in_their_own_region() {
    let Some(server) = moto() else { return };
    let endpoint = server.url();
    s3py(
        &endpoint,
        &[
            "create-bucket",
            "eu-data",
            "--region",
            "eu-west-1",
            "+",
            "put-versioning",
            "eu-data",
            "Enabled",
            "+",
            "create-bucket",
            "us-data",
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // The endpoint from the AWS environment (as on AWS: no `endpoint` option), so the
    // collector looks up each bucket's region.
    let mut env = AWS_ENV.to_vec();
    env.push(("AWS_ENDPOINT_URL", &endpoint));
    for opts in [
        "force_path_style = true\nbuckets = [\"eu-data\", \"us-data\"]\n",
        "force_path_style = true\n",
    ] {
        let config = write_config(dir.path(), "encryption.s3_buckets", opts);
        let (_, rec) = collect(dir.path(), &config, "encryption.s3_buckets", &env);
        let o = &rec["observation"];
        let eu = bucket(o, "eu-data");
        assert_eq!(eu["region"], "eu-west-1", "{opts}: {eu:#}");
        assert_eq!(eu["versioning"]["status"], "Enabled", "{eu:#}");
        assert_eq!(eu["errors"], serde_json::json!([]), "{eu:#}");
        assert_eq!(bucket(o, "us-data")["region"], "us-east-1", "{o:#}");
    }
}

/// An S3 endpoint that refuses everything with 403 AccessDenied (as S3 does for
/// credentials without the permissions), on 127.0.0.1.
fn deny_all() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 65536];
                let _ = c.read(&mut buf);
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>TEST</RequestId></Error>";
                let _ = write!(
                    c,
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

#[test]
fn s3_access_denied_is_recorded_as_what_was_not_seen() {
    let port = deny_all();
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("http://127.0.0.1:{port}");
    // Listing denied: recorded, and the `listed` check fails.
    let config = write_config(
        dir.path(),
        "encryption.s3_buckets",
        &format!("endpoint = \"{endpoint}\"\nforce_path_style = true\n"),
    );
    let (_, rec) = collect(dir.path(), &config, "encryption.s3_buckets", AWS_ENV);
    let o = &rec["observation"];
    assert_eq!(o["list_denied"], true, "{o:#}");
    assert_eq!(o["list_error"]["code"], "AccessDenied");
    assert_eq!(statuses(&rec)["encryption.s3_buckets.listed"], "fail");
    // A named bucket whose every setting is denied: seven denied reads, every check fails.
    let config = write_config(
        dir.path(),
        "encryption.s3_buckets",
        &format!(
            "endpoint = \"{endpoint}\"\nforce_path_style = true\nbuckets = [\"secret-bucket\"]\n"
        ),
    );
    let (_, rec) = collect(dir.path(), &config, "encryption.s3_buckets", AWS_ENV);
    let b = bucket(&rec["observation"], "secret-bucket");
    let denied: Vec<&str> = b["denied"]
        .as_array()
        .expect("denied")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(denied.len(), 7, "{b:#}");
    assert!(denied.contains(&"GetBucketPolicy") && denied.contains(&"GetBucketEncryption"));
    assert_eq!(b["errors"], serde_json::json!([]));
    assert_eq!(b["policy"]["known"], false);
    let st = statuses(&rec);
    for id in ["encrypted", "versioned", "not_public", "tls_only"] {
        assert_eq!(
            st[&format!("encryption.s3_buckets.{id}")],
            "fail",
            "{id}: {st:#?}"
        );
    }
}

#[test]
fn kubernetes_api_server_from_the_pod_environment() {
    let Some(c) = cluster(&[]) else { return };
    // No api_server: the address comes from KUBERNETES_SERVICE_HOST/PORT, as in a pod.
    let opts = format!(
        "token_file = \"{}\"\nca_file = \"{}\"\nnamespace = \"evident\"\n",
        c.token.display(),
        c.ca.display()
    );
    let config = write_config(c.dir.path(), "access.kubernetes", &opts);
    let port = c.server.port.to_string();
    let env = [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
    ];
    let (_, rec) = collect(c.dir.path(), &config, "access.kubernetes", &env);
    let o = &rec["observation"];
    assert_eq!(o["in_cluster"], true);
    assert_eq!(o["api_server"], format!("https://127.0.0.1:{port}"));
    assert_eq!(o["pod_count"], 3, "{o:#}");
    // Outside a pod and with no api_server: the collection fails with a clear reason.
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return; // these tests themselves run in a pod
    }
    let r = evident_with(
        c.dir.path(),
        &["--config", &config, "collect", "access.kubernetes"],
        &[],
    );
    assert!(r.all().contains("KUBERNETES_SERVICE_HOST"), "{}", r.all());
}

#[test]
fn kubernetes_from_a_kubeconfig() {
    let Some(c) = cluster(&[]) else { return };
    let ca = std::fs::read(&c.ca).expect("ca");
    let ca_data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ca);
    let kubeconfig = c.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\ncontexts:\n- name: test\n  context:\n    cluster: local\n    user: evident\n    namespace: evident\n- name: other\n  context:\n    cluster: nowhere\nclusters:\n- name: local\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {ca_data}\nusers:\n- name: evident\n  user:\n    tokenFile: {}\n",
            c.server.port,
            c.token.display()
        ),
    )
    .expect("kubeconfig");
    let config = write_config(
        c.dir.path(),
        "access.kubernetes",
        &format!("kubeconfig = \"{}\"\n", kubeconfig.display()),
    );
    let (_, rec) = collect(c.dir.path(), &config, "access.kubernetes", &[]);
    let st = statuses(&rec);
    assert_eq!(
        st["access.kubernetes.reachable"], "pass",
        "{:#}",
        rec["observation"]
    );
    assert_eq!(st["access.kubernetes.pods_not_privileged"], "fail");
    let text = rec.to_string();
    assert!(!text.contains(TOKEN), "the token is never recorded");
    // A context whose cluster does not exist is a recorded error, not a crash.
    let config = write_config(
        c.dir.path(),
        "access.kubernetes",
        &format!(
            "kubeconfig = \"{}\"\ncontext = \"other\"\n",
            kubeconfig.display()
        ),
    );
    let (_, rec) = collect(c.dir.path(), &config, "access.kubernetes", &[]);
    assert!(
        rec["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no cluster `nowhere`")),
        "{rec:#}"
    );
}
