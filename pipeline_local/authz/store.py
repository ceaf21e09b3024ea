"""Read the applied policies and encryption facts from the emulator, for the authorization model.

`EmulatorPolicyStore` implements the engine's `PolicySource` (identity policies of a principal,
resource policies, key policies) and the `ResourceFacts` that `implied.py` needs (which KMS key
protects a bucket's objects, a queue, a topic, a table, a log group, a function's environment),
read from the emulator's own APIs with the operator's (account admin's) credentials, straight
to the emulator (never through the gateway):

- IAM: a role's or user's attached policies (default version) and inline policies;
- KMS: GetKeyPolicy (policy name `default`), aliases resolved with ListAliases/DescribeKey;
- S3: GetBucketPolicy and GetBucketEncryption (the default SSE-KMS key);
- SQS: the queue's `Policy` and `KmsMasterKeyId` attributes;
- SNS: the topic's `Policy` and `KmsMasterKeyId` attributes;
- Lambda: GetPolicy (the function's resource policy) and `KMSKeyArn`;
- DynamoDB: DescribeTable's `SSEDescription.KMSMasterKeyArn`;
- CloudWatch Logs: DescribeLogGroups' `kmsKeyId`;
- EC2: the network path of a function's own calls (`network_path`): its VpcConfig
  (GetFunctionConfiguration), the subnets' VPC and route tables (DescribeSubnets,
  DescribeRouteTables) and the VPC's endpoints with their policies (DescribeVpcEndpoints).

moto 5.2.1 drops a function's KMSKeyArn (and DeadLetterConfig): those come from the Terraform
working copy the emulator was applied from (`dispatcher.function_arns_from_terraform`), and
`source()` says where each fact came from.

Everything read is cached; `refresh()` forgets it (call it after changing a policy in the
emulator). Lookups are thread-safe: the gateway decides requests from many threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from botocore.exceptions import ClientError

from pipeline_local.authz.engine import NetworkPath, Principal, VpcEndpoint
from pipeline_local.authz.implied import FunctionFacts, KmsProtection
from pipeline_local.clients import Clients
from pipeline_local.constants import ACCOUNT_ID, REGION
from pipeline_local.terraform_wiring import function_arns_from_terraform

T = TypeVar("T")
_MISSING_CODES = {
    "NoSuchEntity",
    "NoSuchBucketPolicy",
    "NoSuchBucket",
    "ServerSideEncryptionConfigurationNotFoundError",
    "ResourceNotFoundException",
    "NotFoundException",
    "NotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}


def _doc(value: Any) -> dict[str, Any]:
    """A policy document as IAM returns it (URL-encoded JSON, JSON, or already parsed)."""
    if isinstance(value, str):
        text = unquote(value) if value.lstrip().startswith("%7B") else value
        return dict(json.loads(text))
    return dict(value)


def _missing(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    return err.get("Code") in _MISSING_CODES or str(err.get("Code", "")).startswith("NoSuch")


class EmulatorPolicyStore:
    """PolicySource + ResourceFacts of one emulator (see the module docstring)."""

    def __init__(
        self,
        clients: Clients,
        *,
        terraform_workdir: Path | None = None,
        account: str = ACCOUNT_ID,
        region: str = REGION,
    ) -> None:
        self.clients = clients
        self.terraform_workdir = terraform_workdir
        self.account = account
        self.region = region
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        self.sources: dict[str, str] = {}  # resource ARN -> where its key fact came from

    # -- cache --------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Forget everything read so far (policies or encryption changed in the emulator)."""
        with self._lock:
            self._cache.clear()
            self.sources.clear()

    def _cached(self, kind: str, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            if (kind, key) in self._cache:
                return cast(T, self._cache[(kind, key)])  # what load() gave for this kind
        value = load()
        with self._lock:
            self._cache[(kind, key)] = value
        return value

    @staticmethod
    def _read(call: Callable[[], T], missing: T) -> T:
        """`call()`'s answer, or `missing` when the emulator says the thing does not exist
        (every other error propagates): the one shape of every read below."""
        try:
            return call()
        except ClientError as exc:
            if _missing(exc):
                return missing
            raise

    # -- PolicySource ---------------------------------------------------------------------------

    def identity_policies(self, principal: Principal) -> Sequence[Mapping[str, Any]]:
        """The attached and inline policies of the principal's role or user, each as
        {"PolicyName", "PolicyDocument"} (the engine names them in its reasons); [] for
        services."""
        if principal.service:
            return []
        arn = principal.role_arn or principal.arn
        if ":role/" in arn:
            name = arn.rsplit("/", 1)[-1]
            return self._cached("role", name, lambda: self._policies_of("role", name))
        if ":user/" in arn:
            name = arn.rsplit("/", 1)[-1]
            return self._cached("user", name, lambda: self._policies_of("user", name))
        return []

    def _policies_of(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Attached (default version) and inline policies of a role or user (`kind`)."""
        iam = self.clients("iam")
        arg = {f"{kind.capitalize()}Name": name}

        def load() -> list[dict[str, Any]]:
            docs: list[dict[str, Any]] = []
            for page in iam.get_paginator(f"list_attached_{kind}_policies").paginate(**arg):
                for att in page["AttachedPolicies"]:
                    pol = iam.get_policy(PolicyArn=att["PolicyArn"])["Policy"]
                    version = iam.get_policy_version(
                        PolicyArn=att["PolicyArn"], VersionId=pol["DefaultVersionId"]
                    )["PolicyVersion"]["Document"]
                    docs.append({"PolicyName": att["PolicyName"], "PolicyDocument": _doc(version)})
            get_inline = getattr(iam, f"get_{kind}_policy")
            for page in iam.get_paginator(f"list_{kind}_policies").paginate(**arg):
                for policy in page["PolicyNames"]:
                    got = get_inline(PolicyName=policy, **arg)["PolicyDocument"]
                    docs.append({"PolicyName": policy, "PolicyDocument": _doc(got)})
            return docs

        return self._read(load, [])

    def resource_policy(self, resource_arn: str) -> Mapping[str, Any] | None:
        """The bucket, queue, topic or function policy governing `resource_arn` (None if none)."""
        parts = resource_arn.split(":", 5)
        if len(parts) < 6:
            return None
        service, resource = parts[2], parts[5]
        if service == "s3":
            bucket = resource.split("/", 1)[0]
            return self._cached("bucket-policy", bucket, lambda: self._bucket_policy(bucket))
        if service in ("sqs", "sns"):
            policy = self._attributes(service, resource_arn).get("Policy")
            return _doc(policy) if policy else None
        if service == "lambda" and resource.startswith("function:"):
            name = resource.split(":")[1]
            return self._cached("function-policy", name, lambda: self._function_policy(name))
        return None

    def _bucket_policy(self, bucket: str) -> dict[str, Any] | None:
        s3 = self.clients("s3")
        return self._read(lambda: _doc(s3.get_bucket_policy(Bucket=bucket)["Policy"]), None)

    def _queue_url(self, arn: str) -> str:
        _, _, _, _, account, name = arn.split(":", 5)
        sqs = self.clients("sqs")
        return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])

    def _attributes(self, service: str, arn: str) -> dict[str, str]:
        """Every attribute of an SQS queue (`service` "sqs") or SNS topic ("sns"); {} when it
        does not exist."""

        def load() -> dict[str, str]:
            if service == "sqs":
                answer = self.clients("sqs").get_queue_attributes(
                    QueueUrl=self._queue_url(arn), AttributeNames=["All"]
                )
            else:
                answer = self.clients("sns").get_topic_attributes(TopicArn=arn)
            return dict(answer["Attributes"])

        return self._cached(f"{service}-attributes", arn, lambda: self._read(load, {}))

    def _function_policy(self, name: str) -> dict[str, Any] | None:
        lam = self.clients("lambda")
        return self._read(lambda: _doc(lam.get_policy(FunctionName=name)["Policy"]), None)

    def key_policy(self, key_arn: str) -> Mapping[str, Any] | None:
        """The key policy of a KMS key (ARN, key id or alias); None when there is no such key."""
        arn = self.resolve_key(key_arn)
        if arn is None:
            return None

        def load() -> dict[str, Any] | None:
            raw = self.clients("kms").get_key_policy(KeyId=arn, PolicyName="default")
            return _doc(raw["Policy"])

        return self._cached("key-policy", arn, lambda: self._read(load, None))

    # -- ResourceFacts ------------------------------------------------------------------------

    def resolve_key(self, key: str | None) -> str | None:
        """A KMS key's ARN from its ARN, key id, alias name or alias ARN (None: no such key)."""
        if not key:
            return None
        if key.startswith("arn:") and ":key/" in key:
            return key

        def load() -> str | None:
            return str(self.clients("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])

        return self._cached("key-arn", key, lambda: self._read(load, None))

    def aliases(self) -> dict[str, str]:
        """alias ARN -> key ARN, for every alias of the account (KMS calls through an alias are
        decided on the key's policy)."""

        def load() -> dict[str, str]:
            kms = self.clients("kms")
            out: dict[str, str] = {}
            for page in kms.get_paginator("list_aliases").paginate():
                for alias in page.get("Aliases", []):
                    if alias.get("TargetKeyId") and alias.get("AliasArn"):
                        key = f"arn:aws:kms:{self.region}:{self.account}:key/{alias['TargetKeyId']}"
                        out[str(alias["AliasArn"])] = key
            return out

        return self._cached("aliases", "", load)

    def kms_key_for(self, resource_arn: str) -> KmsProtection | None:
        """The customer-managed KMS key protecting a resource's data at rest (an S3 bucket or
        object: the bucket's default SSE-KMS key and whether its Bucket Key is on -- an
        object's own key, named at upload, is not looked up; an SQS queue; an SNS topic; a
        DynamoDB table or index; a log group; a Lambda function's environment), or None."""
        parts = resource_arn.split(":", 5)
        if len(parts) < 6:
            return None
        service, resource = parts[2], parts[5]
        key = self._cached(
            "key-for", resource_arn, lambda: self._key_for(service, resource, resource_arn)
        )
        if key is None:
            return None
        bucket_key = service == "s3" and self._bucket_encryption(resource.split("/", 1)[0])[1]
        return KmsProtection(key, bucket_key)

    def function(self, function_arn: str) -> FunctionFacts | None:
        """Execution role, environment key and dead-letter target of a function (the last two
        from the Terraform working copy when moto dropped them)."""
        name = function_arn.split(":")[6] if function_arn.count(":") >= 6 else function_arn

        def load() -> FunctionFacts | None:
            conf = self._function_configuration(name)
            if conf is None:
                return None
            arn = ":".join(str(conf["FunctionArn"]).split(":")[:7])
            key, _ = self._function_key(name)
            return FunctionFacts(
                function_arn=arn,
                role_arn=str(conf["Role"]),
                env_key_arn=self.resolve_key(key),
                dead_letter_arn=self.dead_letter_target(name),
            )

        return self._cached("function", name, load)

    def functions_notified_by(self, bucket_arn: str) -> Sequence[str]:
        """The functions the bucket's notifications invoke on object creation."""
        bucket = bucket_arn.split(":::", 1)[-1].split("/", 1)[0]

        def load() -> list[str]:
            conf = self.clients("s3").get_bucket_notification_configuration(Bucket=bucket)
            return [
                ":".join(str(entry["LambdaFunctionArn"]).split(":")[:7])
                for entry in conf.get("LambdaFunctionConfigurations", [])
                if any(e.startswith("s3:ObjectCreated") for e in entry.get("Events", []))
            ]

        return self._cached("notified", bucket, lambda: self._read(load, []))

    def network_path(self, principal: Principal, service: str) -> NetworkPath | None:
        """How a request of `principal` to `service` ("s3", "sqs", ...) leaves its network:
        set when the principal is a function's own session (the dispatcher names it after the
        function) and the function has a VpcConfig; None for everyone else (services, the
        producer, the operator, and the Lambda service acting with a function's role: its
        pollers and dead-letter sends run outside the function's VPC)."""
        if principal.service or not principal.role_arn:
            return None
        session = principal.arn.rsplit("/", 1)[-1]
        placed = self._cached(
            "function-vpc", session, lambda: self._function_vpc(session, str(principal.role_arn))
        )
        if placed is None:
            return None
        vpc, subnets = placed
        endpoint, internet = self._cached(
            "endpoint-for",
            f"{vpc}|{','.join(subnets)}|{service}",
            lambda: self._endpoint_for(vpc, subnets, service),
        )
        return NetworkPath(
            caller=session,
            vpc_id=vpc,
            subnets=subnets,
            service_host=f"{service}.{self.region}.amazonaws.com",
            endpoint=endpoint,
            internet_route=internet,
        )

    def _function_configuration(self, name: str) -> dict[str, Any] | None:
        """GetFunctionConfiguration of `name`, None when there is no such function."""
        lam = self.clients("lambda")
        return self._read(lambda: dict(lam.get_function_configuration(FunctionName=name)), None)

    def _function_vpc(self, name: str, role_arn: str) -> tuple[str, tuple[str, ...]] | None:
        """(VPC, subnets) of the function `name` run by `role_arn`, None when it is not in a
        VPC (or no such function runs with that role). The VPC comes from DescribeSubnets:
        moto 5.2.1 answers VpcConfig.VpcId with a constant ("vpc-123abc")."""
        conf = self._function_configuration(name)
        if conf is None:
            return None
        subnets = tuple(sorted((conf.get("VpcConfig") or {}).get("SubnetIds") or ()))
        if conf.get("Role") != role_arn or not subnets:
            return None
        found = self.clients("ec2").describe_subnets(SubnetIds=list(subnets))["Subnets"]
        return str(found[0]["VpcId"]), subnets

    def _route_tables(self, vpc: str, subnets: Sequence[str]) -> list[dict[str, Any]]:
        """The route table of each subnet (its explicit association, else the VPC's main)."""
        ec2 = self.clients("ec2")
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
            "RouteTables"
        ]
        main = next((t for t in tables for a in t.get("Associations", []) if a.get("Main")), None)
        out = []
        for subnet in subnets:
            explicit = next(
                (
                    t
                    for t in tables
                    for a in t.get("Associations", [])
                    if a.get("SubnetId") == subnet
                ),
                main,
            )
            if explicit is not None:
                out.append(explicit)
        return out

    def _endpoint_for(
        self, vpc: str, subnets: Sequence[str], service: str
    ) -> tuple[VpcEndpoint | None, bool]:
        """(the endpoint that carries `service` from every one of `subnets`, whether every
        subnet has an internet route). A gateway endpoint carries it when it is associated with
        each subnet's route table; an interface endpoint with private DNS does from anywhere in
        its VPC (the service's public name resolves to its network interfaces there)."""
        tables = self._route_tables(vpc, subnets)
        table_ids = {t["RouteTableId"] for t in tables}
        internet = len(tables) == len(subnets) and all(
            any(
                r.get("DestinationCidrBlock") == "0.0.0.0/0"
                and (str(r.get("GatewayId", "")).startswith("igw-") or r.get("NatGatewayId"))
                for r in t.get("Routes", [])
            )
            for t in tables
        )
        found = self.clients("ec2").describe_vpc_endpoints(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "service-name", "Values": [f"com.amazonaws.{self.region}.{service}"]},
            ]
        )["VpcEndpoints"]
        for ep in found:
            if ep.get("State", "available").lower() != "available":
                continue
            kind = str(ep.get("VpcEndpointType", "Gateway"))
            if kind == "Gateway":
                serves = len(tables) == len(subnets) and table_ids <= set(ep["RouteTableIds"])
            else:
                serves = bool(ep.get("PrivateDnsEnabled"))
            if serves:
                policy = _doc(ep["PolicyDocument"]) if ep.get("PolicyDocument") else None
                return VpcEndpoint(str(ep["VpcEndpointId"]), vpc, kind, policy), internet
        return None, internet

    def _key_for(self, service: str, resource: str, arn: str) -> str | None:
        key: str | None = None
        source = ""
        if service == "s3":
            bucket = resource.split("/", 1)[0]
            key, source = self._bucket_key(bucket), "GetBucketEncryption"
        elif service == "sqs":
            key, source = self._attributes("sqs", arn).get("KmsMasterKeyId"), "GetQueueAttributes"
        elif service == "sns":
            key, source = self._attributes("sns", arn).get("KmsMasterKeyId"), "GetTopicAttributes"
        elif service == "dynamodb" and resource.startswith("table/"):
            table = resource.split("/")[1]
            key, source = self._table_key(table), "DescribeTable"
        elif service == "logs" and resource.startswith("log-group:"):
            group = resource.removeprefix("log-group:").split(":log-stream:")[0].removesuffix(":*")
            key, source = self._log_group_key(group), "DescribeLogGroups"
        elif service == "lambda" and resource.startswith("function:"):
            key, source = self._function_key(resource.split(":")[1])
        resolved = self.resolve_key(key)
        if resolved:
            with self._lock:
                self.sources[arn] = source
        return resolved

    def _bucket_key(self, bucket: str) -> str | None:
        return self._bucket_encryption(bucket)[0]

    def _bucket_encryption(self, bucket: str) -> tuple[str | None, bool]:
        """(default SSE-KMS key, Bucket Key enabled) of a bucket."""

        def load() -> tuple[str | None, bool]:
            rules = self.clients("s3").get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"
            ]["Rules"]
            for rule in rules:
                default = rule.get("ApplyServerSideEncryptionByDefault", {})
                if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse"):
                    key = default.get("KMSMasterKeyID") or None
                    return key, bool(rule.get("BucketKeyEnabled"))
            return None, False

        absent: tuple[str | None, bool] = (None, False)
        return self._cached("bucket-encryption", bucket, lambda: self._read(load, absent))

    def _table_key(self, table: str) -> str | None:
        ddb = self.clients("dynamodb")
        desc = self._read(lambda: ddb.describe_table(TableName=table)["Table"], None)
        if desc is None:
            return None
        sse = desc.get("SSEDescription") or {}
        if sse.get("SSEType") == "KMS" or sse.get("KMSMasterKeyArn"):
            return sse.get("KMSMasterKeyArn") or None
        return None

    def _log_group_key(self, group: str) -> str | None:
        logs = self.clients("logs")
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group):
            for found in page.get("logGroups", []):
                if found.get("logGroupName") == group:
                    return found.get("kmsKeyId") or None
        return None

    def _function_key(self, name: str) -> tuple[str | None, str]:
        conf = self._function_configuration(name)
        if conf is None:
            return None, ""
        if conf.get("KMSKeyArn"):
            return str(conf["KMSKeyArn"]), "GetFunctionConfiguration"
        workdir = self.terraform_workdir
        if workdir is not None:
            from_tf = self._cached(
                "tf-function-keys",
                "",
                lambda: function_arns_from_terraform(workdir, "kms_key_arn"),
            )
            if name in from_tf:
                return from_tf[name], "Terraform working copy: moto 5.2.1 drops KMSKeyArn"
        return None, ""

    def dead_letter_target(self, function_name: str) -> str | None:
        """The function's asynchronous dead-letter target (from the Terraform working copy when
        moto dropped it)."""
        conf = self.clients("lambda").get_function_configuration(FunctionName=function_name)
        target = conf.get("DeadLetterConfig", {}).get("TargetArn")
        if target or self.terraform_workdir is None:
            return target or None
        return function_arns_from_terraform(
            self.terraform_workdir, "target_arn", within="dead_letter_config"
        ).get(function_name)
