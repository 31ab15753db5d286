"""A second, independent S3 client for the tests (boto3, installed with moto).

Usage: s3.py ENDPOINT COMMAND ARGS...
  create-bucket BUCKET [--object-lock] [--region REGION]
  list BUCKET PREFIX                 -> one key per line
  get BUCKET KEY                     -> object bytes on stdout
  put BUCKET KEY FILE                -> overwrite an object
  checksum BUCKET KEY                -> the stored x-amz-checksum-sha256 (or "none")
  delete-versions BUCKET KEY         -> tries to delete every version; prints "denied N" / "deleted N"
  delete BUCKET KEY                  -> a plain DeleteObject (no version id: a delete marker when versioned)
  create-buckets PREFIX N [--configured]
                                     -> creates PREFIX-00000 .. PREFIX-(N-1); with
                                        --configured, every second one gets SSE-S3,
                                        versioning, a public access block, a TLS-only policy
Bucket settings (for encryption.s3_buckets):
  put-encryption BUCKET AES256|aws:kms [KEY_ID]
  put-versioning BUCKET Enabled|Suspended
  put-object-lock BUCKET GOVERNANCE|COMPLIANCE DAYS
  put-public-access-block BUCKET true|false    -> all four settings
  put-policy BUCKET JSON
  put-lifecycle BUCKET EXPIRATION_DAYS
  put-logging BUCKET TARGET_BUCKET PREFIX
Several commands may be given in one run, separated by "+".
"""

import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main() -> int:
    endpoint, rest = sys.argv[1], sys.argv[2:]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    commands, current = [], []
    for a in rest:
        if a == "+":
            commands.append(current)
            current = []
        else:
            current.append(a)
    commands.append(current)
    for c in commands:
        code = run(s3, c[0], c[1:])
        if code:
            return code
    return 0


def run(s3, cmd, args) -> int:
    if cmd == "create-bucket":
        extra = {}
        if "--region" in args:
            region = args[args.index("--region") + 1]
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(Bucket=args[0], ObjectLockEnabledForBucket="--object-lock" in args, **extra)
    elif cmd == "list":
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1]):
            for o in page.get("Contents", []):
                print(o["Key"])
    elif cmd == "get":
        sys.stdout.buffer.write(s3.get_object(Bucket=args[0], Key=args[1])["Body"].read())
    elif cmd == "put":
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
    elif cmd == "put-dir":
        # put-dir BUCKET PREFIX DIR: every file under DIR, at PREFIX/<path relative to DIR>.
        for base, _, names in os.walk(args[2]):
            for n in names:
                path = os.path.join(base, n)
                key = args[1].rstrip("/") + "/" + os.path.relpath(path, args[2])
                with open(path, "rb") as f:
                    s3.put_object(Bucket=args[0], Key=key, Body=f.read())
    elif cmd == "checksum":
        h = s3.head_object(Bucket=args[0], Key=args[1], ChecksumMode="ENABLED")
        print(h.get("ChecksumSHA256", "none"))
    elif cmd == "delete-versions":
        denied = deleted = 0
        for v in s3.list_object_versions(Bucket=args[0], Prefix=args[1]).get("Versions", []):
            try:
                s3.delete_object(Bucket=args[0], Key=args[1], VersionId=v["VersionId"])
                deleted += 1
            except ClientError:
                denied += 1
        print(f"denied {denied} deleted {deleted}")
    elif cmd == "delete":
        s3.delete_object(Bucket=args[0], Key=args[1])
    elif cmd == "create-buckets":
        for i in range(int(args[1])):
            name = f"{args[0]}-{i:05d}"
            s3.create_bucket(Bucket=name)
            if "--configured" in args and i % 2 == 0:
                run(s3, "put-encryption", [name, "AES256"])
                run(s3, "put-versioning", [name, "Enabled"])
                run(s3, "put-public-access-block", [name, "true"])
                policy = (
                    '{"Version":"2012-10-17","Statement":[{"Sid":"TlsOnly","Effect":"Deny","Principal":"*",'
                    '"Action":"s3:*","Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"],'
                    '"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}' % (name, name)
                )
                run(s3, "put-policy", [name, policy])
    elif cmd == "put-encryption":
        default = {"SSEAlgorithm": args[1]}
        if len(args) > 2:
            default["KMSMasterKeyID"] = args[2]
        s3.put_bucket_encryption(
            Bucket=args[0],
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]},
        )
    elif cmd == "put-versioning":
        s3.put_bucket_versioning(Bucket=args[0], VersioningConfiguration={"Status": args[1]})
    elif cmd == "put-object-lock":
        s3.put_object_lock_configuration(
            Bucket=args[0],
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": args[1], "Days": int(args[2])}},
            },
        )
    elif cmd == "put-public-access-block":
        on = args[1] == "true"
        s3.put_public_access_block(
            Bucket=args[0],
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": on,
                "IgnorePublicAcls": on,
                "BlockPublicPolicy": on,
                "RestrictPublicBuckets": on,
            },
        )
    elif cmd == "put-policy":
        s3.put_bucket_policy(Bucket=args[0], Policy=args[1])
    elif cmd == "put-lifecycle":
        s3.put_bucket_lifecycle_configuration(
            Bucket=args[0],
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "expire",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Expiration": {"Days": int(args[1])},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": int(args[1])},
                    }
                ]
            },
        )
    elif cmd == "put-logging":
        delivery = 'uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'
        owner = s3.get_bucket_acl(Bucket=args[1])["Owner"]["ID"]
        s3.put_bucket_acl(
            Bucket=args[1],
            GrantWrite=delivery,
            GrantReadACP=delivery,
            GrantFullControl=f'id="{owner}"',
        )
        s3.put_bucket_logging(
            Bucket=args[0],
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": args[1], "TargetPrefix": args[2]}},
        )
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
