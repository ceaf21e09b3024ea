"""Check an AWS account and the caller's permissions before `terraform apply` of lib/.

    python -m pipeline_local.preflight [--environment dev] [--region eu-central-1]
        [--processor-reserved 100] [--dlq-processor-reserved 50]

Uses the caller's ordinary AWS credentials (environment, profile or SSO, as boto3 finds them)
and changes nothing. Two things make `terraform apply` fail half-way on a real account, after
it has already created resources:

1. Lambda's account concurrency limit. A function's reserved concurrency comes out of the
   account limit, and AWS always keeps 100 executions unreserved, so the limit must be at least
   the reservations of every function plus 100. New accounts often start at 10; the apply then
   fails at the second function. Read from Lambda GetAccountSettings.
   https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
2. The caller's permissions for every action the apply (and a later destroy) performs, checked
   with IAM SimulatePrincipalPolicy against the caller's own identity, including permission
   boundaries and the organisation's SCPs. The actions are listed per resource type of lib/
   (NEEDS below) with the resource they act on.
   https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html

Prints what is missing and what to request; exit status 1 when anything is, 0 when the apply
can go ahead. Locally (tests/integration/test_preflight.py) AWS_ENDPOINT_URL points boto3 at a
proxy in front of the emulator that answers the two calls moto does not implement.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_local.constants import REGION

if TYPE_CHECKING:  # the stub packages are development tools (requirements-dev.txt)
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_lambda import LambdaClient

# AWS keeps this many executions unreserved in every account.
UNRESERVED_MINIMUM = 100
# Service Quotas: Lambda "Concurrent executions".
CONCURRENCY_QUOTA_CODE = "L-B99A9384"


@dataclass(frozen=True)
class Need:
    """Actions Terraform calls for some resource types of lib/, on one resource (an ARN
    template: {partition} {region} {account} {env}), and why."""

    resource_types: str
    actions: tuple[str, ...]
    resource: str
    why: str


# The KMS statement follows
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html
# Derived from the resource types in lib/main.tf and the calls hashicorp/aws 5.x makes to
# create, read (refresh) and delete each of them; names follow lib/main.tf's locals.names.
NEEDS: tuple[Need, ...] = (
    Need(
        "aws_caller_identity, aws_availability_zones",
        ("sts:GetCallerIdentity", "ec2:DescribeAvailabilityZones"),
        "*",
        "data sources",
    ),
    Need(
        "aws_kms_key, aws_kms_alias",
        ("kms:CreateKey", "kms:ListAliases"),
        "*",
        "CreateKey and ListAliases name no key",
    ),
    Need(
        "aws_kms_key, aws_kms_alias",
        (
            "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
            "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:TagResource",
            "kms:ScheduleKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias",
        ),
        "arn:{partition}:kms:{region}:{account}:key/*",
        "the three keys (ids unknown before the apply)",
    ),
    Need(
        "aws_kms_key (used by aws_dynamodb_table, aws_lambda_function)",
        ("kms:CreateGrant", "kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"),
        "arn:{partition}:kms:{region}:{account}:key/*",
        "DynamoDB (table encryption) and Lambda (environment encryption) use the customer "
        "managed keys with the caller's credentials when they create the table or function "
        "(DynamoDB: encryption.usagenotes.html; Lambda: configuration-envvars-encryption.html)",
    ),
    Need(
        "aws_s3_bucket and its *_configuration, aws_s3_bucket_policy, aws_s3_bucket_notification",
        (
            "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions",
            "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite", "s3:GetBucketLogging",
            "s3:GetAccelerateConfiguration", "s3:GetBucketRequestPayment",
            "s3:GetReplicationConfiguration", "s3:GetBucketObjectLockConfiguration",
            "s3:GetBucketTagging", "s3:PutBucketTagging", "s3:GetBucketVersioning",
            "s3:PutBucketVersioning", "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock", "s3:GetBucketPolicy", "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy", "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration", "s3:GetBucketNotification",
            "s3:PutBucketNotification",
        ),
        "arn:{partition}:s3:::s3-transactions-{env}-{account}",
        "the upload bucket",
    ),
    Need(
        "aws_s3_bucket (force_destroy)",
        ("s3:DeleteObject", "s3:DeleteObjectVersion"),
        "arn:{partition}:s3:::s3-transactions-{env}-{account}/*",
        "destroy empties the bucket first",
    ),
    Need(
        "aws_dynamodb_table",
        (
            "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:DeleteTable",
            "dynamodb:DescribeContinuousBackups", "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive",
            "dynamodb:ListTagsOfResource", "dynamodb:TagResource",
        ),
        "arn:{partition}:dynamodb:{region}:{account}:table/dynamodb-*-{env}",
        "the transactions and errors tables",
    ),
    Need(
        "aws_sqs_queue",
        (
            "sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
            "sqs:ListQueueTags", "sqs:TagQueue", "sqs:DeleteQueue",
        ),
        "arn:{partition}:sqs:{region}:{account}:sqs-transaction-*-{env}",
        "the retry queue and the DLQ",
    ),
    Need(
        "aws_cloudwatch_log_group",
        (
            "logs:CreateLogGroup", "logs:DescribeLogGroups", "logs:PutRetentionPolicy",
            "logs:AssociateKmsKey", "logs:ListTagsForResource", "logs:TagResource",
            "logs:DeleteLogGroup",
        ),
        "arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/lambda-*-{env}",
        "the functions' log groups",
    ),
    Need(
        "aws_iam_role, aws_iam_policy, aws_iam_role_policy_attachment",
        (
            "iam:CreateRole", "iam:GetRole", "iam:TagRole", "iam:DeleteRole",
            "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
            "iam:PassRole",
        ),
        "arn:{partition}:iam::{account}:role/iam-role-*-{env}",
        "the two execution roles; PassRole hands them to Lambda",
    ),
    Need(
        "aws_iam_policy",
        (
            "iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
            "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:TagPolicy",
            "iam:DeletePolicy",
        ),
        "arn:{partition}:iam::{account}:policy/iam-policy-*-{env}",
        "the two least-privilege policies",
    ),
    Need(
        "aws_lambda_function, aws_lambda_permission, aws_lambda_function_event_invoke_config",
        (
            "lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
            "lambda:GetFunctionCodeSigningConfig", "lambda:ListVersionsByFunction",
            "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
            "lambda:PutFunctionConcurrency", "lambda:GetFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency", "lambda:ListTags", "lambda:TagResource",
            "lambda:DeleteFunction", "lambda:AddPermission", "lambda:GetPolicy",
            "lambda:RemovePermission", "lambda:PutFunctionEventInvokeConfig",
            "lambda:GetFunctionEventInvokeConfig", "lambda:DeleteFunctionEventInvokeConfig",
        ),
        "arn:{partition}:lambda:{region}:{account}:function:lambda-*-{env}",
        "the two functions",
    ),
    Need(
        "aws_lambda_event_source_mapping",
        (
            "lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping",
            "lambda:DeleteEventSourceMapping",
        ),
        "*",
        "event source mappings cannot be named in advance",
    ),
    Need(
        "aws_lambda_function (vpc_config)",
        ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"),
        "*",
        "Lambda checks the subnets and security group with the caller's credentials "
        "(https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html)",
    ),
    Need(
        "aws_vpc, aws_subnet, aws_route_table(_association), aws_default_security_group, "
        "aws_security_group, aws_vpc_security_group_*_rule, aws_vpc_endpoint",
        (
            "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:DescribeVpcs", "ec2:DescribeVpcAttribute",
            "ec2:ModifyVpcAttribute", "ec2:CreateTags", "ec2:DeleteTags", "ec2:CreateSubnet",
            "ec2:DeleteSubnet", "ec2:DescribeSubnets", "ec2:CreateRouteTable",
            "ec2:DeleteRouteTable", "ec2:DescribeRouteTables", "ec2:AssociateRouteTable",
            "ec2:DisassociateRouteTable", "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
            "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules",
            "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
            "ec2:CreateVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:DescribeVpcEndpoints",
            "ec2:ModifyVpcEndpoint", "ec2:DescribePrefixLists", "ec2:DescribeNetworkInterfaces",
        ),
        "*",
        "the VPC and its endpoints (ids unknown before the apply)",
    ),
    Need(
        "aws_sns_topic, aws_sns_topic_policy, aws_sns_topic_subscription",
        (
            "sns:CreateTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes",
            "sns:ListTagsForResource", "sns:TagResource", "sns:DeleteTopic", "sns:Subscribe",
            "sns:GetSubscriptionAttributes", "sns:Unsubscribe",
        ),
        "arn:{partition}:sns:{region}:{account}:sns-pipeline-alerts-{env}",
        "the alarm topic and its e-mail subscription",
    ),
    Need(
        "aws_cloudwatch_metric_alarm",
        (
            "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms",
            "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:DeleteAlarms",
        ),
        "arn:{partition}:cloudwatch:{region}:{account}:alarm:cw-alarm-*-{env}",
        "the two alarms",
    ),
    Need(
        "aws_cloudwatch_dashboard",
        ("cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"),
        "arn:{partition}:cloudwatch::{account}:dashboard/cw-dashboard-transactions-{env}",
        "the dashboard",
    ),
)  # fmt: skip


@dataclass
class Finding:
    title: str
    ok: bool
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reservations:
    processor: int = 100
    dlq_processor: int = 50

    @property
    def total(self) -> int:
        return self.processor + self.dlq_processor


def function_names(env: str) -> tuple[str, str]:
    return (f"lambda-transaction-processor-{env}", f"lambda-dlq-processor-{env}")


def check_concurrency(lambda_client: LambdaClient, want: Reservations, env: str) -> Finding:
    """Does the account leave room for the reservations (plus the 100 AWS keeps unreserved)?"""
    title = "Lambda concurrency"
    try:
        limit = lambda_client.get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as err:
        return Finding(title, False, [f"cannot read Lambda GetAccountSettings: {err}"])
    account_limit = int(limit["ConcurrentExecutions"])
    unreserved = int(limit.get("UnreservedConcurrentExecutions", account_limit))
    # On a second apply the pipeline's own reservations are already taken out of `unreserved`.
    already_ours = 0
    for name in function_names(env):
        try:
            got = lambda_client.get_function_concurrency(FunctionName=name)
            already_ours += int(got.get("ReservedConcurrentExecutions") or 0)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                return Finding(title, False, [f"cannot read the concurrency of {name}: {err}"])
    reserved_elsewhere = account_limit - unreserved - already_ours
    needed_limit = want.total + UNRESERVED_MINIMUM + reserved_elsewhere
    lines = [
        f"account limit {account_limit}; reserved by other functions {reserved_elsewhere}; "
        f"this stack reserves {want.total} (processor {want.processor} + DLQ processor "
        f"{want.dlq_processor}); AWS keeps {UNRESERVED_MINIMUM} unreserved",
        f"needed: {want.total} + {UNRESERVED_MINIMUM}"
        + (f" + {reserved_elsewhere}" if reserved_elsewhere else "")
        + f" = {needed_limit}",
    ]
    if account_limit >= needed_limit:
        return Finding(title, True, lines)
    room = account_limit - UNRESERVED_MINIMUM - reserved_elsewhere
    lines += [
        f"MISSING: the account limit is {account_limit}, {needed_limit - account_limit} short.",
        f"  Request it: Service Quotas > AWS Lambda > Concurrent executions "
        f"(quota code {CONCURRENCY_QUOTA_CODE}), desired value {needed_limit}:",
        f"    aws service-quotas request-service-quota-increase --service-code lambda "
        f"--quota-code {CONCURRENCY_QUOTA_CODE} --desired-value {needed_limit} "
        f"--region {lambda_client.meta.region_name}",
    ]
    if room >= 2:
        lines.append(
            f"  or reserve less (at most {room} in all), e.g. "
            f"-var processor_reserved_concurrency={max(1, room * 2 // 3)} "
            f"-var dlq_processor_reserved_concurrency={max(1, room - max(1, room * 2 // 3))}"
        )
    else:
        lines.append(
            f"  (below {UNRESERVED_MINIMUM + 2} no function can reserve anything: "
            "only the increase helps)"
        )
    return Finding(title, False, lines)


def policy_source_arn(caller_arn: str, iam: IAMClient) -> str | None:
    """The IAM identity behind an STS caller ARN (None for the root user)."""
    parts = caller_arn.split(":", 5)
    partition, account, resource = parts[1], parts[4], parts[5]
    if resource == "root":
        return None
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        role_name = resource.split("/")[1]
        try:  # the session ARN drops the role's path; GetRole gives the real ARN
            return str(iam.get_role(RoleName=role_name)["Role"]["Arn"])
        except ClientError:
            return f"arn:{partition}:iam::{account}:role/{role_name}"
    return caller_arn


def check_permissions(
    iam: IAMClient, caller_arn: str, context: Mapping[str, str], needs: Sequence[Need] = NEEDS
) -> Finding:
    """Simulate every action of NEEDS for the caller; list the ones it may not perform."""
    title = "permissions of the caller"
    source = policy_source_arn(caller_arn, iam)
    if source is None:
        return Finding(
            title,
            True,
            ["the root user may do everything (AWS advises against using it for deployments)"],
        )
    missing: list[str] = []
    checked = 0
    for need in needs:
        resource = need.resource.format(**context)
        try:
            results = _simulate(iam, source, list(need.actions), resource)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            return Finding(
                title,
                False,
                [
                    f"MISSING: cannot simulate the caller's permissions ({code}).",
                    f"  Request iam:SimulatePrincipalPolicy on {source} (read-only), or have an "
                    "administrator run `make preflight`.",
                ],
            )
        checked += len(results)
        for action, decision in results:
            if decision != "allowed":
                missing.append(f"  {action:44} on {resource}  ({decision}; {need.resource_types})")
    lines = [f"simulated {checked} actions for {source}"]
    if not missing:
        return Finding(title, True, lines)
    lines.append(f"MISSING: {len(missing)} action(s) the apply or destroy needs:")
    lines += missing
    lines.append(
        "  Request them for this identity (an IAM policy with these actions on these "
        "resources), then run `make preflight` again."
    )
    return Finding(title, False, lines)


def _simulate(
    iam: IAMClient, source: str, actions: list[str], resource: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    marker: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "PolicySourceArn": source,
            "ActionNames": actions,
            "ResourceArns": [resource],
        }
        if marker:
            kwargs["Marker"] = marker
        page = iam.simulate_principal_policy(**kwargs)
        out += [(r["EvalActionName"], r["EvalDecision"]) for r in page["EvaluationResults"]]
        if not page.get("IsTruncated"):
            return out
        marker = page["Marker"]


def run(
    session: Any,
    want: Reservations,
    env: str,
    say: Callable[[str], None] = print,
) -> bool:
    """All checks; True when nothing is missing."""
    findings: list[Finding] = []
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as err:
        say(f"preflight: no usable AWS credentials ({err}); see docs/deploy.md, step 1")
        return False
    account, caller = str(identity["Account"]), str(identity["Arn"])
    region = session.region_name
    say(f"preflight for account {account[:4]}******** in {region}, environment {env}")
    say(f"caller: {caller.split(':', 5)[-1]}")
    findings.append(check_concurrency(session.client("lambda"), want, env))
    context = {"partition": "aws", "region": region, "account": account, "env": env}
    findings.append(check_permissions(session.client("iam"), caller, context))
    for f in findings:
        say(f"\n[{'ok' if f.ok else 'MISSING'}] {f.title}")
        for line in f.lines:
            say(f"    {line}")
    ok = all(f.ok for f in findings)
    say(
        "\npreflight: "
        + ("nothing missing, `make deploy` can go ahead" if ok else "fix the above before apply")
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environment", default="dev")
    parser.add_argument("--region", default=REGION)
    parser.add_argument("--profile", default=None, help="AWS profile (default: boto3's chain)")
    parser.add_argument("--processor-reserved", type=int, default=Reservations.processor)
    parser.add_argument("--dlq-processor-reserved", type=int, default=Reservations.dlq_processor)
    args = parser.parse_args(argv)
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    want = Reservations(args.processor_reserved, args.dlq_processor_reserved)
    return 0 if run(session, want, args.environment) else 1


if __name__ == "__main__":
    sys.exit(main())
