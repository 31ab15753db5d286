"""Independent check of Evident's RFC 3161 tokens with PyPI rfc3161-client.

Usage: verify_tsr.py ROOT_PEM REPLY MESSAGE [REPLY MESSAGE ...]
Each REPLY is a stored DER TimeStampResp; MESSAGE the file whose SHA-256 it must stamp (the
checkpoint envelope). Prints one line per token; exits 1 on the first that does not verify.
"""

import sys

import cryptography.x509
from rfc3161_client import VerifierBuilder, decode_timestamp_response

root = cryptography.x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
verifier = VerifierBuilder().add_root_certificate(root).build()
args = sys.argv[2:]
for reply_path, message_path in zip(args[0::2], args[1::2]):
    reply = decode_timestamp_response(open(reply_path, "rb").read())
    message = open(message_path, "rb").read()
    try:
        verifier.verify_message(reply, message)
    except Exception as e:  # noqa: BLE001 - report any refusal
        print(f"FAIL {reply_path}: {e}")
        sys.exit(1)
    print(f"ok {reply_path} genTime={reply.tst_info.gen_time.isoformat()} serial={reply.tst_info.serial_number}")
