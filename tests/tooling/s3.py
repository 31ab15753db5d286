"""A second, independent S3 client for the tests (boto3, installed with moto).

Usage: s3.py ENDPOINT COMMAND ARGS...
  create-bucket BUCKET [--object-lock]
  list BUCKET PREFIX                 -> one key per line
  get BUCKET KEY                     -> object bytes on stdout
  put BUCKET KEY FILE                -> overwrite an object
  checksum BUCKET KEY                -> the stored x-amz-checksum-sha256 (or "none")
  delete-versions BUCKET KEY         -> tries to delete every version; prints "denied N" / "deleted N"
"""

import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main() -> int:
    endpoint, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    if cmd == "create-bucket":
        s3.create_bucket(Bucket=args[0], ObjectLockEnabledForBucket="--object-lock" in args)
    elif cmd == "list":
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1]):
            for o in page.get("Contents", []):
                print(o["Key"])
    elif cmd == "get":
        sys.stdout.buffer.write(s3.get_object(Bucket=args[0], Key=args[1])["Body"].read())
    elif cmd == "put":
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
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
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
