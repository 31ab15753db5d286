#!/usr/bin/env python3
"""Recomputes the SigV4 signature of requests Evident sent, with botocore (AWS's own Python
signer), for Evident's tests.

Usage: sigv4_check.py ACCESS_KEY SECRET_KEY REGION SERVICE < requests.json
requests.json: [{"url": ..., "headers": {name: value}, "body": text}], each as received on
the wire. For each request, the headers its Authorization header names as signed are given
to botocore with the request's own X-Amz-Date; prints one line per request: the signature
botocore computes.
"""
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

access, secret, region, service = sys.argv[1:5]
for r in json.load(sys.stdin):
    headers = {k.lower(): v for k, v in r["headers"].items()}
    auth = headers["authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    req = AWSRequest(
        method="POST",
        url=r["url"],
        data=r["body"].encode(),
        headers={h: headers[h] for h in signed},
    )
    signer = SigV4Auth(Credentials(access, secret, headers.get("x-amz-security-token")), service, region)
    req.context["timestamp"] = headers["x-amz-date"]
    canonical = signer.canonical_request(req)
    print(signer.signature(signer.string_to_sign(req, canonical), req))
