"""A small HTTPS server answering like the Kubernetes API, for the access.kubernetes tests.

Usage: k8s_api.py PORT CERT KEY TOKEN FIXTURES_DIR [--pods N]

Serves the fixture JSON files in FIXTURES_DIR (shapes of the Kubernetes API reference:
RBAC v1 ClusterRoleList / ClusterRoleBindingList / RoleList / RoleBindingList, core v1
PodList / ServiceAccountList, authorization v1 SelfSubjectRulesReview). Every request must
carry `Authorization: Bearer TOKEN` (else 401, a v1 Status). Lists are paged like the API
server: `limit` items per answer, `metadata.continue` set while more remain, the token sent
back as `continue`. Listing rolebindings across all namespaces answers 403 (a v1 Status),
as an API server does for a namespaced service account. With `--pods N` the pod list holds
N generated pods (for the bench). Binds 127.0.0.1 only.
"""

import base64
import copy
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT, CERT, KEY, TOKEN, FIXTURES = sys.argv[1:6]
GENERATED_PODS = int(sys.argv[sys.argv.index("--pods") + 1]) if "--pods" in sys.argv else None


def load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def generated_pods(n):
    pods = load("pods.json")
    template = pods["items"][0]
    items = []
    for i in range(n):
        p = copy.deepcopy(template)
        p["metadata"]["name"] = f"gen-{i:05d}"
        p["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
        items.append(p)
    pods["items"] = items
    return pods


def status(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {},
        "code": code,
    }


RBAC = "/apis/rbac.authorization.k8s.io/v1"
LISTS = {
    f"{RBAC}/clusterroles": "clusterroles.json",
    f"{RBAC}/clusterrolebindings": "clusterrolebindings.json",
    f"{RBAC}/namespaces/evident/roles": "roles.json",
    f"{RBAC}/namespaces/evident/rolebindings": "rolebindings.json",
    "/api/v1/namespaces/evident/serviceaccounts": "serviceaccounts.json",
    "/api/v1/namespaces/evident/pods": "pods.json",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self.send(401, status(401, "Unauthorized", "Unauthorized"))
        return False

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.authorized():
            return
        if urlparse(self.path).path != "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews":
            self.send(404, status(404, "NotFound", "the server could not find the requested resource"))
            return
        review = load("selfsubjectrulesreview.json")
        review["spec"] = body.get("spec", {})
        self.send(201, review)

    def do_GET(self):
        if not self.authorized():
            return
        url = urlparse(self.path)
        if url.path == f"{RBAC}/rolebindings":
            self.send(
                403,
                status(
                    403,
                    "Forbidden",
                    'rolebindings.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:evident:evident" '
                    'cannot list resource "rolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope',
                ),
            )
            return
        name = LISTS.get(url.path)
        if name is None:
            self.send(404, status(404, "NotFound", "the server could not find the requested resource"))
            return
        full = generated_pods(GENERATED_PODS) if name == "pods.json" and GENERATED_PODS is not None else load(name)
        q = parse_qs(url.query)
        token = q.get("continue", [""])[0]
        start = json.loads(base64.b64decode(token))["start"] if token else 0
        limit = int(q.get("limit", ["0"])[0] or "0")
        items = full["items"]
        end = len(items) if limit <= 0 else min(len(items), start + limit)
        page = dict(full)
        page["items"] = items[start:end]
        page["metadata"] = dict(full.get("metadata", {}))
        if end < len(items):
            # Opaque to clients, like the API server's (base64, so it needs URL-encoding).
            page["metadata"]["continue"] = base64.b64encode(json.dumps({"start": end, "rv": 1006}).encode()).decode()
            page["metadata"]["remainingItemCount"] = len(items) - end
        self.send(200, page)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
