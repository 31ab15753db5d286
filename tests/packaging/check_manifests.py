"""Checks the security and wiring of Evident's Kubernetes manifests (plain and rendered
from the Helm chart). Prints one "ok - ..." or "FAIL - ..." line per assertion.

    python check_manifests.py OUTDIR MODE=FILE [MODE=FILE ...]

MODE is "sidecar" or "daemonset". Each ConfigMap's evident.toml is written to
OUTDIR/<file stem>.toml so that the caller can run `evident config check` on it.
"""
import pathlib
import sys
import tomllib

import yaml

results = []


def check(desc, cond):
    results.append(bool(cond))
    print(("ok - " if cond else "FAIL - ") + desc)


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def main():
    outdir = pathlib.Path(sys.argv[1])
    for arg in sys.argv[2:]:
        mode, path = arg.split("=", 1)
        name = pathlib.Path(path).name
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
        kinds = {d["kind"] for d in docs}
        workload = "DaemonSet" if mode == "daemonset" else "Deployment"
        check(f"{name}: has a ConfigMap and a {workload}", {"ConfigMap", workload} <= kinds)
        cms = [d for d in docs if d["kind"] == "ConfigMap"]
        wls = [d for d in docs if d["kind"] == workload]
        if not cms or not wls:
            continue
        cm, wl = cms[0], wls[0]
        toml_text = cm["data"]["evident.toml"]
        (outdir / (pathlib.Path(path).stem + ".toml")).write_text(toml_text)
        cfg = tomllib.loads(toml_text)
        listen = cfg.get("health", {}).get("listen", "")
        check(f"{name}: config health listen is 0.0.0.0:9464", listen == "0.0.0.0:9464")
        want_root = "/host" if mode == "daemonset" else "/"
        check(f"{name}: config agent.host_root = {want_root!r}", cfg["agent"].get("host_root") == want_root)

        spec = pod_spec(wl)
        psc = spec.get("securityContext", {})
        containers = spec["containers"]
        ev = [c for c in containers if c["name"] == "evident"]
        check(f"{name}: has an evident container", len(ev) == 1)
        if not ev:
            continue
        ev = ev[0]
        sc = ev.get("securityContext", {})
        check(f"{name}: no service-account token mounted", spec.get("automountServiceAccountToken") is False)
        check(f"{name}: no host network/PID/IPC", not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
        check(f"{name}: pod seccompProfile RuntimeDefault", psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
        for c in containers:
            csc = c.get("securityContext", {})
            cn = c["name"]
            check(f"{name}: {cn}: readOnlyRootFilesystem", csc.get("readOnlyRootFilesystem") is True)
            check(f"{name}: {cn}: allowPrivilegeEscalation false", csc.get("allowPrivilegeEscalation") is False)
            check(f"{name}: {cn}: drops ALL capabilities", csc.get("capabilities", {}).get("drop") == ["ALL"])
            check(f"{name}: {cn}: not privileged", not csc.get("privileged"))
            res = c.get("resources", {})
            check(f"{name}: {cn}: cpu/memory requests and limits",
                  all(k in res.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")))
        added = sc.get("capabilities", {}).get("add", [])
        if mode == "daemonset":
            check(f"{name}: evident adds only DAC_READ_SEARCH", added == ["DAC_READ_SEARCH"])
            mounts = {m["mountPath"]: m for m in ev.get("volumeMounts", [])}
            host = mounts.get("/host", {})
            check(f"{name}: host root mounted read-only at /host", host.get("readOnly") is True)
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            check(f"{name}: /host is the node's root (hostPath /)",
                  vols.get(host.get("name"), {}).get("hostPath", {}).get("path") == "/")
            writable = [m["mountPath"] for m in ev.get("volumeMounts", []) if not m.get("readOnly")
                        and "hostPath" in vols.get(m["name"], {})]
            check(f"{name}: the only writable host path is the state directory", writable == ["/var/lib/evident"])
        else:
            check(f"{name}: evident adds no capability", added == [])
            check(f"{name}: pod runAsNonRoot", psc.get("runAsNonRoot") is True)
            check(f"{name}: evident runAsNonRoot", sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True)
            state = [v for v in spec.get("volumes", []) if v["name"] == "evident-state"]
            check(f"{name}: state on an emptyDir or a PVC",
                  state and ("emptyDir" in state[0] or "persistentVolumeClaim" in state[0]))
        env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in ev.get("env", [])}
        check(f"{name}: POD_NAME/POD_NAMESPACE/NODE_NAME from the downward API",
              env.get("POD_NAME") == "metadata.name" and env.get("POD_NAMESPACE") == "metadata.namespace"
              and env.get("NODE_NAME") == "spec.nodeName")
        port = next((p["containerPort"] for p in ev.get("ports", []) if p.get("name") == "evident-health"), None)
        check(f"{name}: health port 9464", port == 9464)
        lp = ev.get("livenessProbe", {}).get("httpGet", {})
        rp = ev.get("readinessProbe", {}).get("httpGet", {})
        check(f"{name}: liveness probe GET /healthz on the health port",
              lp.get("path") == "/healthz" and lp.get("port") in ("evident-health", 9464))
        check(f"{name}: readiness probe GET /readyz on the health port",
              rp.get("path") == "/readyz" and rp.get("port") in ("evident-health", 9464))
        mounts = {m["mountPath"]: m for m in ev.get("volumeMounts", [])}
        check(f"{name}: config mounted read-only from the ConfigMap at /etc/evident",
              mounts.get("/etc/evident", {}).get("readOnly") is True)
        check(f"{name}: args run the daemon with /etc/evident/evident.toml",
              ev.get("args") == ["run", "--config", "/etc/evident/evident.toml"])
        key = cfg.get("signing", {}).get("key")
        if key:
            d = str(pathlib.PurePosixPath(key).parent)
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            m = mounts.get(d, {})
            check(f"{name}: signing key {key} comes read-only from a Secret",
                  m.get("readOnly") is True and "secret" in vols.get(m.get("name"), {}))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
