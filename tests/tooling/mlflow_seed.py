#!/usr/bin/env python3
"""Seeds a local MLflow tracking server through its REST API (2.0), for Evident's tests.

Independent of Evident: plain HTTP with the standard library, as any MLflow client would.

  mlflow_seed.py URL first    two models: `fraud-detector` (complete: owner, intended use, risk
                              level, impact assessment, description, a run with metrics and a
                              dataset; version 1 in stage Production with alias `champion`)
                              and `churn` (alias `production` -> 1, nothing else)
  mlflow_seed.py URL second   `fraud-detector`: version 2 approved, alias `champion` 1 -> 2,
                              stage Production -> version 2, tag `risk_level` changed;
                              `churn`: version 2, alias `production` 1 -> 2 without approver;
                              a new model `ranker`
  mlflow_seed.py URL bench M V  M models with V versions each (one run per model)
Only loopback URLs are accepted.
"""
import json
import sys
import time
import urllib.request
from urllib.parse import urlparse

BASE = ""


def call(path, body):
    req = urllib.request.Request(
        f"{BASE}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def now_ms():
    return int(time.time() * 1000)


def run(experiment_id, metrics, datasets):
    r = call("runs/create", {"experiment_id": experiment_id, "start_time": now_ms()})["run"]
    run_id = r["info"]["run_id"]
    for k, v in metrics.items():
        call("runs/log-metric", {"run_id": run_id, "key": k, "value": v, "timestamp": now_ms(), "step": 0})
    if datasets:
        call("runs/log-inputs", {"run_id": run_id, "datasets": [
            {"tags": [{"key": "mlflow.data.context", "value": "training"}],
             "dataset": {"name": n, "digest": d, "source_type": "s3", "source": json.dumps({"uri": f"s3://data/{n}"}),
                         "schema": "", "profile": ""}}
            for n, d in datasets]})
    call("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": now_ms()})
    return run_id


def experiment(name):
    try:
        return call("experiments/create", {"name": name})["experiment_id"]
    except urllib.error.HTTPError:
        return call_get_experiment(name)


def call_get_experiment(name):
    req = urllib.request.Request(f"{BASE}/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["experiment"]["experiment_id"]


def version(model, run_id, tags=None, description=""):
    body = {"name": model, "source": f"runs:/{run_id}/model", "run_id": run_id, "description": description,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    return call("model-versions/create", body)["model_version"]["version"]


def first():
    exp = experiment("evident-test")
    r1 = run(exp, {"auc": 0.91, "f1": 0.84}, [("transactions-2026q3", "a1b2c3d4")])
    call("registered-models/create", {"name": "fraud-detector", "description": "Scores card transactions for fraud.",
         "tags": [{"key": "owner", "value": "risk-ml-team"},
                  {"key": "intended_use", "value": "flag card transactions for manual review"},
                  {"key": "risk_level", "value": "high"},
                  {"key": "impact_assessment", "value": "AIIA-2026-014"}]})
    v1 = version("fraud-detector", r1, {"approved_by": "head-of-risk"})
    call("model-versions/transition-stage", {"name": "fraud-detector", "version": v1, "stage": "Production",
                                             "archive_existing_versions": False})
    call("registered-models/alias", {"name": "fraud-detector", "alias": "champion", "version": v1})
    r2 = run(exp, {}, [])
    call("registered-models/create", {"name": "churn"})
    c1 = version("churn", r2)
    call("registered-models/alias", {"name": "churn", "alias": "production", "version": c1})


def second():
    exp = experiment("evident-test")
    r = run(exp, {"auc": 0.93}, [("transactions-2026q4", "e5f6a7b8")])
    v2 = version("fraud-detector", r, {"approved_by": "head-of-risk"}, "retrained on Q4")
    call("registered-models/alias", {"name": "fraud-detector", "alias": "champion", "version": v2})
    call("model-versions/transition-stage", {"name": "fraud-detector", "version": v2, "stage": "Production",
                                             "archive_existing_versions": True})
    call("registered-models/set-tag", {"name": "fraud-detector", "key": "risk_level", "value": "limited"})
    c2 = version("churn", run(exp, {}, []))
    call("registered-models/alias", {"name": "churn", "alias": "production", "version": c2})
    call("registered-models/create", {"name": "ranker"})


def bench(models, versions):
    exp = experiment("evident-bench")
    for i in range(models):
        name = f"bench-model-{i:05d}"
        r = run(exp, {"auc": 0.5 + (i % 50) / 100}, [(f"data-{i}", f"{i:08x}")])
        call("registered-models/create", {"name": name, "tags": [{"key": "owner", "value": f"team-{i % 7}"}]})
        for _ in range(versions):
            v = version(name, r)
        call("registered-models/alias", {"name": name, "alias": "champion", "version": v})


def main():
    global BASE
    BASE = sys.argv[1].rstrip("/")
    host = urlparse(BASE).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing a non-loopback server: {host}")
    what = sys.argv[2]
    if what == "first":
        first()
    elif what == "second":
        second()
    elif what == "bench":
        bench(int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown step {what}")


if __name__ == "__main__":
    main()
