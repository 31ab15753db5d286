"""Independent verification of Evident envelopes with securesystemslib (not our code).

Usage: verify_dsse.py PUBLIC_KEY_PEM ENVELOPE...

For each envelope: the keyid is recomputed as hex(sha256(SPKI DER)) with `cryptography`,
the DSSE signature is verified by securesystemslib (its own PAE), and the payload must be an
in-toto Statement v1 whose subject digest is the sha256 of the predicate content.
Prints "ok N" and exits 0 when all pass; prints the failure and exits 1 otherwise.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main() -> int:
    pem_path, envelopes = sys.argv[1], sys.argv[2:]
    with open(pem_path, "rb") as f:
        public = serialization.load_pem_public_key(f.read())
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    keyid = hashlib.sha256(spki).hexdigest()
    key = SSlibKey.from_crypto(public, keyid=keyid)
    for path in envelopes:
        with open(path, "rb") as f:
            raw = json.load(f)
        env = Envelope.from_dict(raw)
        if [s.keyid for s in env.signatures.values()] != [keyid]:
            print(f"{path}: keyid {list(env.signatures)} != sha256(SPKI) {keyid}")
            return 1
        try:
            env.verify([key], 1)
        except Exception as e:  # noqa: BLE001 - report any verification failure
            print(f"{path}: signature rejected by securesystemslib: {e}")
            return 1
        statement = json.loads(base64.b64decode(raw["payload"]))
        if statement["_type"] != "https://in-toto.io/Statement/v1" or env.payload_type != "application/vnd.in-toto+json":
            print(f"{path}: not an in-toto Statement v1")
            return 1
        pred = statement["predicate"]
        content = {
            "observation": pred.get("observation"),
            "checkpoint": pred.get("checkpoint"),
            "chain_start": pred.get("chain_start"),
            "gap": pred.get("gap"),
        }[pred["kind"]]
        digest = hashlib.sha256(json.dumps(content, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        if statement["subject"][0]["digest"]["sha256"] != digest:
            print(f"{path}: subject digest does not match the {pred['kind']} content")
            return 1
    print(f"ok {len(envelopes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
