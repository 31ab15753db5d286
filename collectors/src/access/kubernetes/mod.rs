//! `access.kubernetes`: who may do what in the cluster the agent runs in, and how the pods of
//! its namespace run.
//!
//! Reads, through the Kubernetes API (HTTPS with reqwest + rustls, trusting only the
//! configured CA; bearer token from the service account's token file): in a pod, the API
//! server from `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` and the token, CA and
//! namespace under `/var/run/secrets/kubernetes.io/serviceaccount/`; else the `api_server`,
//! `token_file`, `ca_file` and `namespace` options. Calls: the agent's own permissions
//! (`SelfSubjectRulesReview`, POST authorization.k8s.io/v1), ClusterRoles, ClusterRoleBindings
//! and RoleBindings (cluster-wide, else the namespace's) and the namespace's Roles (RBAC v1),
//! the namespace's ServiceAccounts and Pods (core v1). Lists are paged (`limit` +
//! `continue`, at most `max_pages` pages), every answer is read with a byte limit, every call
//! has a time limit.
//! Records: the agent's rules and whether they hold wildcards; bindings that grant
//! `cluster-admin` (or another configured admin role) or a role with wildcard verbs and
//! resources, with their subjects; service accounts that automount their token; per pod and
//! container: privileged, may run as root (runAsUser 0, or no runAsNonRoot), host network /
//! PID / IPC, hostPath volumes, missing CPU/memory limits, added capabilities, the names of
//! mounted or referenced secrets. A 403 is recorded as a `denied` fact (what the agent was
//! not allowed to see), other failures as `errors`.
//! Evidences: ISO27001:2022 A.8.2 (privileged access rights), A.8.3 (information access
//! restriction), A.5.15 (access control), A.5.18 (access rights), A.8.9 (configuration
//! management), A.8.22 (segregation of networks), A.8.31 (separation of development, test
//! and production environments).
//! Never collects: the token (sent in a header marked sensitive, never logged or recorded),
//! secret data (Secrets are never read, only names referenced by pod specs), environment
//! variable values, annotations.

use crate::base::http::BodyError;
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Registration of `access.kubernetes`.
pub const REGISTRATION: Registration = Registration {
    kind: "access.kubernetes",
    summary: "Kubernetes RBAC (own rules, admin and wildcard bindings), service account tokens, pod security",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.8.2",  // Privileged access rights
        "ISO27001:2022/A.8.3",  // Information access restriction
        "ISO27001:2022/A.5.15", // Access control
        "ISO27001:2022/A.5.18", // Access rights
        "ISO27001:2022/A.8.9",  // Configuration management
        "ISO27001:2022/A.8.22", // Segregation of networks
        "ISO27001:2022/A.8.31", // Separation of development, test and production environments
    ],
    checks: crate::builtin_checks!("access/kubernetes"),
    default: false,
    host: false,
};

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `access.kubernetes` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A kubeconfig file to take the API server, CA, bearer token and namespace from (its
    /// `current-context`, or `context`); explicit options below override it.
    #[serde(default)]
    kubeconfig: Option<String>,
    /// Context of the kubeconfig to use; default: its `current-context`.
    #[serde(default)]
    context: Option<String>,
    /// API server URL; default: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    #[serde(default)]
    api_server: Option<String>,
    /// Bearer token file; default: the pod's service account token.
    #[serde(default)]
    token_file: Option<String>,
    /// PEM CA bundle of the API server; default: the pod's service account `ca.crt`.
    #[serde(default)]
    ca_file: Option<String>,
    /// Namespace whose pods, roles and service accounts are read; default: the pod's.
    #[serde(default)]
    namespace: Option<String>,
    /// Roles whose bindings count as administrator grants.
    #[serde(default = "default_admin_roles")]
    admin_roles: Vec<String>,
    /// Subjects (user, group or `namespace:serviceaccount`) allowed to hold admin grants.
    #[serde(default = "default_allowed_admins")]
    allowed_admin_subjects: Vec<String>,
    /// Items per page (`limit`).
    #[serde(default = "default_page_size")]
    page_size: u32,
    /// Pages per list at most (the rest is recorded as truncated).
    #[serde(default = "default_max_pages")]
    max_pages: usize,
    /// Largest answer read, in bytes.
    #[serde(default = "default_max_response")]
    max_response_bytes: u64,
    /// Time limit of one call, in milliseconds.
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
}

fn default_admin_roles() -> Vec<String> {
    vec!["cluster-admin".into()]
}
fn default_allowed_admins() -> Vec<String> {
    vec!["system:masters".into()]
}
fn default_page_size() -> u32 {
    250
}
fn default_max_pages() -> usize {
    100
}
fn default_max_response() -> u64 {
    16 * 1024 * 1024
}
fn default_timeout() -> u64 {
    10_000
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    Ok(Box::new(Kubernetes { config }))
}

struct Kubernetes {
    config: Config,
}

impl Collector for Kubernetes {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(
        &'a self,
        _ctx: &'a Context,
    ) -> BoxFuture<'a, Result<Observation, CollectError>> {
        Box::pin(observe(&self.config))
    }
}

/// Reads a small local file (token, CA, namespace) with a size limit.
fn read_small(path: &str, what: &str) -> Result<Vec<u8>, CollectError> {
    let meta = std::fs::metadata(path).map_err(|e| CollectError::Io {
        path: path.into(),
        message: e.to_string(),
    })?;
    if meta.len() > 1024 * 1024 {
        return Err(CollectError::TooLarge {
            what: what.into(),
            limit: 1024 * 1024,
        });
    }
    std::fs::read(path).map_err(|e| CollectError::Io {
        path: path.into(),
        message: e.to_string(),
    })
}

/// The API connection: base URL, client, token header.
struct Api {
    base: String,
    client: reqwest::Client,
    auth: reqwest::header::HeaderValue,
    max_bytes: u64,
}

/// Why one call gave no answer.
enum CallError {
    Denied(u16, String),
    Failed(String, String),
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| CallError::Failed("connect".into(), crate::base::http::error_chain(&e)))?;
        let status = resp.status().as_u16();
        let bytes = crate::base::http::read_body(&mut resp, self.max_bytes)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(max) => CallError::Failed(
                    "too_large".into(),
                    format!("answer exceeds the limit of {max} bytes"),
                ),
                BodyError::Read(e) => {
                    CallError::Failed("read".into(), crate::base::http::error_chain(&e))
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = value["message"].as_str().unwrap_or_default().to_string();
        match status {
            200..=299 if value.is_object() => Ok(value),
            200..=299 => Err(CallError::Failed(
                "invalid".into(),
                "the answer is not a JSON object".into(),
            )),
            401 | 403 => Err(CallError::Denied(status, message)),
            _ => Err(CallError::Failed(format!("http_{status}"), message)),
        }
    }

    /// Every item of a list, page by page; (items, truncated).
    async fn list(
        &self,
        path: &str,
        page_size: u32,
        max_pages: usize,
    ) -> Result<(Vec<Value>, bool), CallError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..max_pages.max(1) {
            let mut url = format!("{path}?limit={page_size}");
            if let Some(t) = &token {
                url.push_str("&continue=");
                url.push_str(&crate::base::http::query_value(t));
            }
            let mut page = self.call(reqwest::Method::GET, &url, None).await?;
            if let Some(Value::Array(a)) = page.get_mut("items").map(Value::take) {
                items.extend(a);
            }
            token = page["metadata"]["continue"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from);
            if token.is_none() {
                return Ok((items, false));
            }
        }
        Ok((items, true))
    }
}

/// Denied calls and errors met on the way.
#[derive(Default)]
struct Trail {
    denied: Vec<Value>,
    errors: Vec<Value>,
}

impl Trail {
    fn take<T>(&mut self, resource: &str, r: Result<T, CallError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(CallError::Denied(status, message)) => {
                self.denied
                    .push(json!({"resource": resource, "status": status, "message": message}));
                None
            }
            Err(CallError::Failed(kind, message)) => {
                self.errors
                    .push(json!({"resource": resource, "kind": kind, "message": message}));
                None
            }
        }
    }
}

/// What a kubeconfig says for one context (only what the collector uses).
#[derive(Default)]
struct FromKubeconfig {
    server: Option<String>,
    ca: Option<Vec<u8>>,
    token: Option<Vec<u8>>,
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct KubeConfig {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: KubeContext,
}

#[derive(Deserialize)]
struct KubeContext {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: KubeCluster,
}

#[derive(Deserialize)]
struct KubeCluster {
    server: String,
    #[serde(rename = "certificate-authority", default)]
    certificate_authority: Option<String>,
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    user: KubeUser,
}

#[derive(Deserialize)]
struct KubeUser {
    #[serde(default)]
    token: Option<String>,
    #[serde(rename = "tokenFile", default)]
    token_file: Option<String>,
}

/// Reads the context of a kubeconfig: server, CA, bearer token, namespace. Client
/// certificates and exec plugins are not supported (an error says so).
fn kubeconfig(path: &str, context: Option<&str>) -> Result<FromKubeconfig, CollectError> {
    use base64::Engine;
    let bad = |m: String| CollectError::Invalid(format!("{path}: {m}"));
    let text =
        String::from_utf8(read_small(path, "kubeconfig")?).map_err(|_| bad("not UTF-8".into()))?;
    let kc: KubeConfig =
        serde_saphyr::from_str(&text).map_err(|e| bad(format!("not a kubeconfig: {e}")))?;
    let name = context
        .map(str::to_string)
        .or(kc.current_context)
        .ok_or_else(|| bad("no current-context and no `context` option".into()))?;
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| bad(format!("no context `{name}`")))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.context.cluster)
        .ok_or_else(|| bad(format!("no cluster `{}`", ctx.context.cluster)))?;
    let ca = match (
        &cluster.cluster.certificate_authority_data,
        &cluster.cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| bad("certificate-authority-data is not base64".into()))?,
        ),
        (None, Some(file)) => Some(read_small(file, "certificate-authority")?),
        (None, None) => None,
    };
    let user = ctx
        .context
        .user
        .as_ref()
        .and_then(|u| kc.users.iter().find(|x| &x.name == u));
    let token = match user.map(|u| &u.user) {
        Some(KubeUser { token: Some(t), .. }) => Some(t.clone().into_bytes()),
        Some(KubeUser {
            token_file: Some(f),
            ..
        }) => Some(read_small(f, "tokenFile")?),
        Some(_) => {
            return Err(bad(format!(
                "user of context `{name}` has no token or tokenFile (client certificates and exec plugins are not supported)"
            )));
        }
        None => None,
    };
    Ok(FromKubeconfig {
        server: Some(cluster.cluster.server.clone()),
        ca,
        token,
        namespace: ctx.context.namespace.clone(),
    })
}

fn connect(config: &Config) -> Result<(Api, String, bool), CollectError> {
    let kc = match &config.kubeconfig {
        Some(path) => kubeconfig(path, config.context.as_deref())?,
        None => FromKubeconfig::default(),
    };
    let in_cluster = config.api_server.is_none() && kc.server.is_none();
    let base = match config.api_server.as_ref().or(kc.server.as_ref()) {
        Some(s) => s.trim_end_matches('/').to_string(),
        None => {
            let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
                CollectError::Unavailable(
                    "not in a pod (no KUBERNETES_SERVICE_HOST) and no api_server or kubeconfig configured".into(),
                )
            })?;
            let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
            if host.contains(':') {
                format!("https://[{host}]:{port}")
            } else {
                format!("https://{host}:{port}")
            }
        }
    };
    let namespace = match config.namespace.as_ref().or(kc.namespace.as_ref()) {
        Some(n) => n.clone(),
        None => read_small(&format!("{SA_DIR}/namespace"), "namespace file")
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into()),
    };
    let (token, token_src) = match (&config.token_file, kc.token) {
        (Some(f), _) => (read_small(f, "token file")?, f.clone()),
        (None, Some(t)) => (t, "kubeconfig token".to_string()),
        (None, None) => {
            let f = format!("{SA_DIR}/token");
            (read_small(&f, "token file")?, f)
        }
    };
    let token = String::from_utf8(token)
        .map_err(|_| CollectError::Invalid(format!("{token_src}: token is not UTF-8")))?;
    crate::base::redact::secret(token.trim());
    let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| CollectError::Invalid(format!("{token_src}: token is not a header value")))?;
    auth.set_sensitive(true);
    let (ca, ca_src) = match (&config.ca_file, kc.ca) {
        (Some(f), _) => (read_small(f, "CA file")?, f.clone()),
        (None, Some(c)) => (c, "kubeconfig certificate authority".to_string()),
        (None, None) => {
            let f = format!("{SA_DIR}/ca.crt");
            (read_small(&f, "CA file")?, f)
        }
    };
    let certs = reqwest::Certificate::from_pem_bundle(&ca)
        .map_err(|e| CollectError::Invalid(format!("{ca_src}: {e}")))?;
    if certs.is_empty() {
        return Err(CollectError::Invalid(format!("{ca_src}: no certificate")));
    }
    let timeout = Duration::from_millis(config.timeout_ms.max(1));
    let client = reqwest::Client::builder()
        .tls_certs_only(certs)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| {
            CollectError::Invalid(format!(
                "HTTP client: {}",
                crate::base::http::error_chain(&e)
            ))
        })?;
    Ok((
        Api {
            base,
            client,
            auth,
            max_bytes: config.max_response_bytes,
        },
        namespace,
        in_cluster,
    ))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether an RBAC rule grants every verb on every resource (or `*` on non-resource URLs).
fn wildcard_rule(rule: &Value) -> bool {
    let verbs = strs(&rule["verbs"]);
    let resources = strs(&rule["resources"]);
    let urls = strs(&rule["nonResourceURLs"]);
    verbs.contains(&"*") && (resources.contains(&"*") || urls.contains(&"*"))
}

/// `namespace/name` of an object.
fn name_of(o: &Value) -> (String, String) {
    (
        o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// A subject as the `allowed_admin_subjects` option names it.
fn subject_id(s: &Value) -> String {
    let name = s["name"].as_str().unwrap_or_default();
    match s["kind"].as_str() {
        Some("ServiceAccount") => format!("{}:{name}", s["namespace"].as_str().unwrap_or_default()),
        _ => name.to_string(),
    }
}

async fn observe(config: &Config) -> Result<Observation, CollectError> {
    let (api, ns, in_cluster) = connect(config)?;
    let mut t = Trail::default();
    let (page, pages) = (config.page_size.max(1), config.max_pages);
    let mut truncated = Vec::new();

    // The agent's own rules.
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": ns},
    });
    let own = t.take(
        "selfsubjectrulesreviews",
        api.call(
            reqwest::Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            Some(&review),
        )
        .await,
    );
    let own = own.map(|r| {
        let status = &r["status"];
        let resource_rules: Vec<Value> = status["resourceRules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let non_resource: Vec<Value> = status["nonResourceRules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let wildcard = resource_rules
            .iter()
            .chain(&non_resource)
            .any(wildcard_rule);
        let secrets = resource_rules.iter().any(|r| {
            let res = strs(&r["resources"]);
            let verbs = strs(&r["verbs"]);
            (res.contains(&"secrets") || res.contains(&"*"))
                && verbs
                    .iter()
                    .any(|v| matches!(*v, "get" | "list" | "watch" | "*"))
        });
        json!({
            "resource_rules": resource_rules,
            "non_resource_rules": non_resource,
            "incomplete": status["incomplete"].as_bool().unwrap_or(false),
            "evaluation_error": status["evaluationError"],
            "wildcard": wildcard,
            "can_read_secrets": secrets,
        })
    });

    // RBAC: roles with wildcard rules, bindings to admin or wildcard roles.
    const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
    let mut wildcard_roles: BTreeSet<(String, String, String)> = BTreeSet::new();
    let cluster_roles = t.take(
        "clusterroles",
        api.list(&format!("{RBAC}/clusterroles"), page, pages).await,
    );
    let roles = t.take(
        "roles",
        api.list(&format!("{RBAC}/namespaces/{ns}/roles"), page, pages)
            .await,
    );
    for (kind, items) in [("ClusterRole", &cluster_roles), ("Role", &roles)] {
        if let Some((items, trunc)) = items {
            if *trunc {
                truncated.push(kind);
            }
            for r in items {
                if r["rules"]
                    .as_array()
                    .is_some_and(|rules| rules.iter().any(wildcard_rule))
                {
                    let (n, name) = name_of(r);
                    wildcard_roles.insert((kind.to_string(), n, name));
                }
            }
        }
    }
    let crbs = t.take(
        "clusterrolebindings",
        api.list(&format!("{RBAC}/clusterrolebindings"), page, pages)
            .await,
    );
    let rbs = match api.list(&format!("{RBAC}/rolebindings"), page, pages).await {
        Ok(v) => Some(v),
        Err(e) => {
            t.take::<()>("rolebindings (all namespaces)", Err(e));
            t.take(
                "rolebindings",
                api.list(&format!("{RBAC}/namespaces/{ns}/rolebindings"), page, pages)
                    .await,
            )
        }
    };
    let mut admin_bindings = Vec::new();
    let mut binding_count = 0;
    for (kind, items) in [("ClusterRoleBinding", &crbs), ("RoleBinding", &rbs)] {
        let Some((items, trunc)) = items else {
            continue;
        };
        if *trunc {
            truncated.push(kind);
        }
        binding_count += items.len();
        for b in items {
            let (bns, name) = name_of(b);
            let role_kind = b["roleRef"]["kind"].as_str().unwrap_or_default();
            let role = b["roleRef"]["name"].as_str().unwrap_or_default();
            let role_ns = if role_kind == "Role" {
                bns.clone()
            } else {
                String::new()
            };
            let reason = if config.admin_roles.iter().any(|r| r == role)
                && role_kind == "ClusterRole"
            {
                "admin_role"
            } else if wildcard_roles.contains(&(role_kind.to_string(), role_ns, role.to_string())) {
                "wildcard_role"
            } else {
                continue;
            };
            let subjects: Vec<Value> = b["subjects"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|s| json!({"kind": s["kind"], "name": s["name"], "namespace": s["namespace"], "id": subject_id(s)}))
                        .collect()
                })
                .unwrap_or_default();
            let unexpected: Vec<Value> = subjects
                .iter()
                .filter(|s| {
                    !config
                        .allowed_admin_subjects
                        .iter()
                        .any(|a| Some(a.as_str()) == s["id"].as_str())
                })
                .map(|s| s["id"].clone())
                .collect();
            admin_bindings.push(json!({
                "kind": kind,
                "namespace": if bns.is_empty() { Value::Null } else { Value::String(bns) },
                "name": name,
                "role_kind": role_kind,
                "role": role,
                "reason": reason,
                "subjects": subjects,
                "unexpected_subjects": unexpected,
            }));
        }
    }

    // Service accounts of the namespace.
    let sas = t.take(
        "serviceaccounts",
        api.list(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            page,
            pages,
        )
        .await,
    );
    let service_accounts: Vec<Value> = sas
        .as_ref()
        .map(|(items, trunc)| {
            if *trunc {
                truncated.push("ServiceAccount");
            }
            items
                .iter()
                .map(|sa| {
                    let automount = &sa["automountServiceAccountToken"];
                    json!({
                        "name": sa["metadata"]["name"],
                        "automount_setting": automount,
                        "automounts": automount.as_bool() != Some(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();

    // Pods of the namespace.
    let pods = t.take(
        "pods",
        api.list(&format!("/api/v1/namespaces/{ns}/pods"), page, pages)
            .await,
    );
    let pods_listed = pods.is_some();
    let pods: Vec<Value> = pods
        .map(|(items, trunc)| {
            if trunc {
                truncated.push("Pod");
            }
            items.iter().map(pod).collect()
        })
        .unwrap_or_default();

    let denied_resources: Vec<Value> = t.denied.iter().map(|d| d["resource"].clone()).collect();
    let names = |f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        pods.iter()
            .filter(|p| f(p))
            .map(|p| p["name"].clone())
            .collect()
    };
    let privileged = names(&|p| p["privileged"] == true);
    let root = names(&|p| p["may_run_as_root"] == true);
    let host = names(&|p| {
        p["host_network"] == true
            || p["host_pid"] == true
            || p["host_ipc"] == true
            || p["host_paths"].as_array().is_some_and(|a| !a.is_empty())
    });
    let unlimited = names(&|p| p["missing_limits"] == true);
    let automounting: Vec<Value> = service_accounts
        .iter()
        .filter(|s| s["automounts"] == true)
        .map(|s| s["name"].clone())
        .collect();
    let unexpected_admin: Vec<Value> = admin_bindings
        .iter()
        .filter(|b| b["unexpected_subjects"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|b| json!({"kind": b["kind"], "namespace": b["namespace"], "name": b["name"], "role": b["role"]}))
        .collect();
    Ok(json!({
        "api_server": api.base,
        "in_cluster": in_cluster,
        "namespace": ns,
        "self": own,
        "cluster_roles_listed": cluster_roles.is_some(),
        "bindings_listed": crbs.is_some(),
        "role_bindings_listed": rbs.is_some(),
        "binding_count": binding_count,
        "wildcard_roles": wildcard_roles.iter().map(|(k, n, name)| json!({"kind": k, "namespace": n, "name": name})).collect::<Vec<_>>(),
        "admin_bindings": admin_bindings,
        "unexpected_admin_bindings": unexpected_admin,
        "service_accounts_listed": sas.is_some(),
        "service_accounts": service_accounts,
        "automounting_service_accounts": automounting,
        "pods_listed": pods_listed,
        "pod_count": pods.len(),
        "pods": pods,
        "privileged_pods": privileged,
        "root_pods": root,
        "host_access_pods": host,
        "unlimited_pods": unlimited,
        "truncated": truncated,
        "denied": t.denied,
        "denied_resources": denied_resources,
        "errors": t.errors,
        "policy": {
            "admin_roles": config.admin_roles,
            "allowed_admin_subjects": config.allowed_admin_subjects,
            "page_size": page,
            "max_pages": pages,
            "max_response_bytes": config.max_response_bytes,
        },
    }))
}

/// The security-relevant facts of one pod (no env values, no annotations).
fn pod(p: &Value) -> Value {
    let spec = &p["spec"];
    let psc = &spec["securityContext"];
    let mut secrets = BTreeSet::new();
    let mut host_paths = Vec::new();
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(s) = v["secret"]["secretName"].as_str() {
            secrets.insert(s.to_string());
        }
        if let Some(h) = v["hostPath"]["path"].as_str() {
            host_paths.push(h.to_string());
        }
        for src in v["projected"]["sources"].as_array().into_iter().flatten() {
            if let Some(s) = src["secret"]["name"].as_str() {
                secrets.insert(s.to_string());
            }
        }
    }
    let mut containers = Vec::new();
    for (kind, list) in [
        ("container", &spec["containers"]),
        ("init", &spec["initContainers"]),
        ("ephemeral", &spec["ephemeralContainers"]),
    ] {
        for c in list.as_array().into_iter().flatten() {
            let sc = &c["securityContext"];
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(s) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    secrets.insert(s.to_string());
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(s) = e["secretRef"]["name"].as_str() {
                    secrets.insert(s.to_string());
                }
            }
            let run_as_user = sc["runAsUser"]
                .as_i64()
                .or_else(|| psc["runAsUser"].as_i64());
            let non_root = sc["runAsNonRoot"]
                .as_bool()
                .or_else(|| psc["runAsNonRoot"].as_bool())
                .unwrap_or(false);
            let root = match run_as_user {
                Some(0) => true,
                Some(_) => false,
                None => !non_root,
            };
            let limits = &c["resources"]["limits"];
            let has_limits = limits.get("cpu").is_some() && limits.get("memory").is_some();
            containers.push(json!({
                "name": c["name"],
                "kind": kind,
                "image": c["image"],
                "privileged": sc["privileged"].as_bool().unwrap_or(false),
                "allow_privilege_escalation": sc["allowPrivilegeEscalation"],
                "run_as_user": run_as_user,
                "run_as_non_root": non_root,
                "may_run_as_root": root,
                "has_limits": has_limits,
                "capabilities_added": c["securityContext"]["capabilities"]["add"],
            }));
        }
    }
    let any = |k: &str| containers.iter().any(|c| c[k] == true);
    json!({
        "name": p["metadata"]["name"],
        "namespace": p["metadata"]["namespace"],
        "service_account": spec["serviceAccountName"],
        "automount_token": spec["automountServiceAccountToken"],
        "host_network": spec["hostNetwork"].as_bool().unwrap_or(false),
        "host_pid": spec["hostPID"].as_bool().unwrap_or(false),
        "host_ipc": spec["hostIPC"].as_bool().unwrap_or(false),
        "host_paths": host_paths,
        "privileged": any("privileged"),
        "may_run_as_root": any("may_run_as_root"),
        "missing_limits": containers.iter().any(|c| c["kind"] == "container" && c["has_limits"] != true),
        "secrets": secrets,
        "containers": containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_spec_is_judged_per_container() {
        let p = json!({
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "securityContext": {"runAsNonRoot": true},
                "hostPID": true,
                "volumes": [{"name": "t", "secret": {"secretName": "tls"}},
                            {"name": "h", "hostPath": {"path": "/var/run/docker.sock"}}],
                "containers": [
                    {"name": "a", "image": "a:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                     "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]},
                    {"name": "b", "image": "b:1", "securityContext": {"runAsUser": 0, "privileged": true}}
                ]
            }
        });
        let v = pod(&p);
        assert_eq!(v["privileged"], true);
        assert_eq!(v["may_run_as_root"], true);
        assert_eq!(v["containers"][0]["may_run_as_root"], false);
        assert_eq!(v["missing_limits"], true);
        assert_eq!(v["host_pid"], true);
        assert_eq!(v["host_paths"][0], "/var/run/docker.sock");
        assert_eq!(v["secrets"], json!(["db", "tls"]));
        assert!(!v.to_string().contains("\"pw\""));
    }

    #[test]
    fn wildcard_rules() {
        assert!(wildcard_rule(
            &json!({"verbs": ["*"], "resources": ["*"], "apiGroups": ["*"]})
        ));
        assert!(wildcard_rule(
            &json!({"verbs": ["*"], "nonResourceURLs": ["*"]})
        ));
        assert!(!wildcard_rule(
            &json!({"verbs": ["get"], "resources": ["*"]})
        ));
        assert!(!wildcard_rule(
            &json!({"verbs": ["*"], "resources": ["pods"]})
        ));
    }
}
