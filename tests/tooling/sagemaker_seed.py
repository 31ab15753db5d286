#!/usr/bin/env python3
"""Seeds moto's SageMaker Model Registry for Evident's tests, with boto3 (a client that is not
Evident's own), in region us-east-1 with moto's test credentials.

Usage: sagemaker_seed.py ENDPOINT STAGE, STAGE one of:
  first   group `fraud-detector`: version 1 created pending, then approved (UpdateModelPackage,
          so SageMaker records who modified it) with owner, intended use, risk level, impact
          assessment, model card `fraud-card` (Approved, documenting version 1) and a
          model-quality report; version 2 pending, with the same metadata and metrics.
          Group `churn`: version 1 created Approved, with nothing else (no metadata, no
          metrics, no card, no modifier).
  second  `fraud-detector` version 2 approved (with an approval description), version 1
          rejected; `churn` version 1 given an owner (a metadata change); a new group
          `ranker` whose version 1 is created Approved (nobody approved it).
  pages N M   N groups `bench-NNNNN` with M pending versions each (pagination)
Only loopback endpoints are accepted.
"""
import json
import sys
from urllib.parse import urlparse

import boto3

ENDPOINT, STAGE = sys.argv[1], sys.argv[2]
if urlparse(ENDPOINT).hostname not in ("127.0.0.1", "localhost"):
    sys.exit("sagemaker_seed.py: only loopback endpoints")
sm = boto3.client(
    "sagemaker",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)

META = {
    "owner": "risk-ml-team",
    "intended_use": "Score card transactions for fraud review",
    "risk_level": "high",
    "impact_assessment": "https://wiki.internal/ai/fraud-impact",
    "model_card": "fraud-card",
    # Not whitelisted: must never be recorded.
    "db_password": "evident-canary-metadata-51",
}
METRICS = {
    "ModelQuality": {
        "Statistics": {
            "ContentType": "application/json",
            "S3Uri": "s3://ml-reports/fraud/quality.json",
            "ContentDigest": "sha256:5d41402abc4b2a76",
        }
    }
}
INFERENCE = {
    "Containers": [
        {
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1",
            "Environment": {"API_KEY": "evident-canary-env-77"},
        }
    ],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


def arn(group, version):
    return f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"


def first():
    sm.create_model_package_group(ModelPackageGroupName="fraud-detector", ModelPackageGroupDescription="Card fraud scoring")
    for _ in (1, 2):
        sm.create_model_package(
            ModelPackageGroupName="fraud-detector",
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties=META,
            ModelMetrics=METRICS,
            InferenceSpecification=INFERENCE,
        )
    sm.update_model_package(
        ModelPackageArn=arn("fraud-detector", 1),
        ModelApprovalStatus="Approved",
        ApprovalDescription="approved by the model risk board",
        CustomerMetadataProperties=META,
    )
    content = {
        "model_overview": {"model_owner": "risk-ml-team", "model_description": "evident-canary-card-text-33"},
        "model_package_details": {"model_package_arn": arn("fraud-detector", 1)},
        "intended_uses": {"intended_uses": "fraud review queue", "risk_rating": "High"},
    }
    sm.create_model_card(ModelCardName="fraud-card", Content=json.dumps(content), ModelCardStatus="Approved")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    sm.create_model_package(ModelPackageGroupName="churn", ModelApprovalStatus="Approved", InferenceSpecification=INFERENCE)


def second():
    sm.update_model_package(
        ModelPackageArn=arn("fraud-detector", 2),
        ModelApprovalStatus="Approved",
        ApprovalDescription="v2 passed validation",
        CustomerMetadataProperties=META,
    )
    sm.update_model_package(
        ModelPackageArn=arn("fraud-detector", 1),
        ModelApprovalStatus="Rejected",
        ApprovalDescription="superseded by v2",
        CustomerMetadataProperties=META,
    )
    sm.update_model_package(
        ModelPackageArn=arn("churn", 1),
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"owner": "growth-team"},
    )
    sm.create_model_package_group(ModelPackageGroupName="ranker")
    sm.create_model_package(ModelPackageGroupName="ranker", ModelApprovalStatus="Approved", InferenceSpecification=INFERENCE)


def pages(groups, versions):
    for i in range(groups):
        name = f"bench-{i:05d}"
        sm.create_model_package_group(ModelPackageGroupName=name)
        for _ in range(versions):
            sm.create_model_package(ModelPackageGroupName=name, ModelApprovalStatus="PendingManualApproval", InferenceSpecification=INFERENCE)


if STAGE == "first":
    first()
elif STAGE == "second":
    second()
elif STAGE == "pages":
    pages(int(sys.argv[3]), int(sys.argv[4]))
else:
    sys.exit(f"sagemaker_seed.py: unknown stage {STAGE}")
