"""Proof that the authorization model refuses what AWS refuses (issue 9, item 3).

Each test breaks one permission in the applied stack (or calls the way a misconfigured client
would), runs the pipeline's own calls through the gateway, and checks that the model refuses
the call, naming principal, action, resource and why. Every refusal is expected inside
`gateway.expect_denials()`; the applied policies are restored afterwards.

- `test_the_stack_as_on_main_loses_the_first_dynamodb_write`: the DynamoDB key policy and the
  roles' policies as they were on main before issue 9 (key policy: root delegation + the
  DynamoDB service statement; no role granted anything on the key): the processor's first
  DynamoDB write (the file status's UpdateItem, before any PutItem) is refused because
  DynamoDB's kms:Decrypt with the processor's credentials is not allowed.
- a producer without KMS permissions cannot upload (S3's kms:GenerateDataKey on its behalf);
- an upload over plain HTTP is refused (the bucket policy's DenyInsecureTransport);
- an upload naming a KMS key other than the bucket's is refused (bucket policy Deny), even by a
  producer allowed to use that key;
- an event source mapping whose role lacks sqs:ReceiveMessage is refused;
- every call of the functions' code leaves the VPC through the stack's endpoint for its service
  (issue 13), and an SQS endpoint policy denying SendMessage refuses the processor's DLQ send.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local import samples as sample_files
from pipeline_local.authz.engine import Decision
from pipeline_local.authz.gateway import describe
from pipeline_local.delivery import DrainError
from tests.e2e.conftest import E2E, producer_policy

# The DynamoDB key policy's statements on main before issue 9.
MAIN_DDB_KEY_SIDS = {"EnableRootAccountAccess", "AllowDynamoDBServiceForPipelineTables"}


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    st = doc.get("Statement", [])
    return list(st) if isinstance(st, list) else [st]


def _mentions(statement: dict[str, Any], text: str) -> bool:
    return text in json.dumps(statement)


@contextlib.contextmanager
def managed_policy_version(e2e: E2E, policy_arn: str, document: dict[str, Any]) -> Iterator[None]:
    """The managed policy's default version replaced by `document` for the block."""
    iam = e2e.clients("iam")
    old = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    new = iam.create_policy_version(
        PolicyArn=policy_arn, PolicyDocument=json.dumps(document), SetAsDefault=True
    )["PolicyVersion"]["VersionId"]
    e2e.gateway.store.refresh()
    try:
        yield
    finally:
        iam.set_default_policy_version(PolicyArn=policy_arn, VersionId=old)
        iam.delete_policy_version(PolicyArn=policy_arn, VersionId=new)
        e2e.gateway.store.refresh()


def _policy_document(e2e: E2E, policy_arn: str) -> dict[str, Any]:
    iam = e2e.clients("iam")
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"][
        "Document"
    ]
    return doc if isinstance(doc, dict) else json.loads(doc)


@contextlib.contextmanager
def stack_as_on_main(e2e: E2E) -> Iterator[None]:
    """The DynamoDB key's policy and both roles' permissions on that key as on main before
    issue 9, for the block: key policy = root delegation + the DynamoDB service statement;
    no statement of the roles' policies names the key; no other policy on the roles."""
    iam, kms = e2e.clients("iam"), e2e.clients("kms")
    out = e2e.stack.outputs
    key = str(out["kms_dynamodb_key_arn"])
    saved_key_policy = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    key_doc = json.loads(saved_key_policy)
    key_doc["Statement"] = [s for s in _statements(key_doc) if s.get("Sid") in MAIN_DDB_KEY_SIDS]
    with contextlib.ExitStack() as undo:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(key_doc))
        undo.callback(kms.put_key_policy, KeyId=key, PolicyName="default", Policy=saved_key_policy)
        for role_out, policy_out in (
            ("processor_role_arn", "processor_policy_arn"),
            ("dlq_processor_role_arn", "dlq_processor_policy_arn"),
        ):
            role = str(out[role_out]).rsplit("/", 1)[1]
            policy_arn = str(out[policy_out])
            for att in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                if att["PolicyArn"] != policy_arn:  # added after main
                    iam.detach_role_policy(RoleName=role, PolicyArn=att["PolicyArn"])
                    undo.callback(iam.attach_role_policy, RoleName=role, PolicyArn=att["PolicyArn"])
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                inline = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                iam.delete_role_policy(RoleName=role, PolicyName=name)
                undo.callback(
                    iam.put_role_policy,
                    RoleName=role,
                    PolicyName=name,
                    PolicyDocument=inline if isinstance(inline, str) else json.dumps(inline),
                )
            doc = _policy_document(e2e, policy_arn)
            doc["Statement"] = [s for s in _statements(doc) if not _mentions(s, key)]
            undo.enter_context(managed_policy_version(e2e, policy_arn, doc))
        undo.callback(e2e.gateway.store.refresh)
        e2e.gateway.store.refresh()
        yield


def _refusal_of(refused: list[Decision], action_prefix: str) -> Decision:
    hits = [d for d in refused if d.request.action.startswith(action_prefix)]
    assert hits, [describe(d) for d in refused]
    return hits[0]


def test_the_stack_as_on_main_loses_the_first_dynamodb_write(clean_e2e: E2E) -> None:
    e2e = clean_e2e
    out = e2e.stack.outputs
    small = sample_files.bulk_file(sample_files.PREFIX + "50-old-stack.json", 3, tag="TO")
    e2e.upload([small], sample_files.Ledger())
    dispatcher = e2e.dispatcher()
    with stack_as_on_main(e2e), e2e.gateway.expect_denials() as refused:
        dispatcher.deliver(dispatcher.pending_events())
        processor_refusals = len(refused)
        # The records go to the retry queue; after three receives to the DLQ, whose consumer's
        # PutItem on the errors table is refused too: the messages cycle on the DLQ.
        with pytest.raises(DrainError):
            dispatcher.drain(max_rounds=60)
    first = refused[0]
    print("\nrefused on the stack as on main:\n  " + "\n  ".join(e2e.gateway.summarize(refused)))
    dlq_role = str(out["dlq_processor_role_arn"]).rsplit("/", 1)[1]
    later = refused[processor_refusals:]
    assert any(
        f"assumed-role/{dlq_role}/" in d.request.principal.arn
        and d.request.resource == str(out["kms_dynamodb_key_arn"])
        and str(out["errors_table_name"]) in (d.request.on_behalf_of or "")
        for d in later
    ), e2e.gateway.summarize(later)
    role = str(out["processor_role_arn"]).rsplit("/", 1)[1]
    assert f"assumed-role/{role}/" in first.request.principal.arn
    assert first.request.action.startswith("kms:")
    assert first.request.resource == str(out["kms_dynamodb_key_arn"])
    # The processor's first DynamoDB call is the file status's UpdateItem (contract P27), made
    # before any PutItem: refused the same way, so nothing is written at all.
    assert (first.request.on_behalf_of or "").startswith("dynamodb:UpdateItem")
    assert str(out["file_status_table_name"]) in (first.request.on_behalf_of or "")
    assert not first.allowed and first.request.action in first.reason
    assert e2e.items() == []  # nothing stored
    assert e2e.error_rows() == []  # and no error row either


def test_a_producer_without_kms_permissions_cannot_upload(e2e: E2E) -> None:
    policy = producer_policy(e2e.stack.outputs)
    doc = json.loads(policy) if isinstance(policy, str) else dict(policy)
    doc["Statement"] = [
        s
        for s in _statements(doc)
        if not any(str(a).lower().startswith("kms:") for a in _actions(s))
    ]
    gw = e2e.gateway
    arn = gw.role_with_policy("pipeline-local-producer-no-kms", doc)
    s3 = gw.clients(gw.assume_role(arn, "producer-no-kms"))("s3")
    with gw.expect_denials() as refused, pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=e2e.bucket, Key="incoming/no-kms.csv", Body=b"a\n")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    decision = _refusal_of(refused, "kms:GenerateDataKey")
    assert decision.request.resource == str(e2e.stack.outputs["kms_s3_key_arn"])
    assert (decision.request.on_behalf_of or "").startswith("s3:PutObject")


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def test_an_upload_over_plain_http_is_refused(e2e: E2E) -> None:
    gw = e2e.gateway
    creds = gw.assume_role(f"arn:aws:iam::123456789012:role/{_producer_role()}", "plain-http")
    s3 = gw.clients(creds, secure=False)("s3")
    with gw.expect_denials() as refused, pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=e2e.bucket, Key="incoming/plain.csv", Body=b"a\n")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    (decision,) = refused
    assert decision.request.action == "s3:PutObject"
    assert decision.request.context.get("aws:SecureTransport") is False
    assert "DenyInsecureTransport" in decision.reason
    # The same producer over HTTPS may.
    gw.clients(creds)("s3").put_object(Bucket=e2e.bucket, Key="incoming/tls.txt", Body=b"a\n")
    e2e.clients("s3").delete_object(Bucket=e2e.bucket, Key="incoming/tls.txt")


def _producer_role() -> str:
    from tests.applied_stack import PRODUCER_ROLE

    return PRODUCER_ROLE


def test_an_upload_naming_another_kms_key_is_refused(e2e: E2E) -> None:
    gw = e2e.gateway
    kms = e2e.clients("kms")
    created = kms.create_key(Description="not the bucket's key")["KeyMetadata"]
    other = created["Arn"]
    policy = producer_policy(e2e.stack.outputs)
    doc = json.loads(policy) if isinstance(policy, str) else dict(policy)
    # Allowed to use the other key: only the bucket policy can refuse the upload.
    doc["Statement"] = [
        *_statements(doc),
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": other},
    ]
    arn = gw.role_with_policy("pipeline-local-producer-other-key", doc)
    s3 = gw.clients(gw.assume_role(arn, "producer-other-key"))("s3")

    def upload_encrypted_with(key_arn: str, object_key: str) -> None:
        s3.put_object(
            Bucket=e2e.bucket,
            Key=object_key,
            Body=b"a\n",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_arn,
        )

    try:
        with gw.expect_denials() as refused, pytest.raises(ClientError) as denied:
            upload_encrypted_with(other, "incoming/other-key.csv")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        (decision,) = refused
        assert decision.request.action == "s3:PutObject"
        assert (
            decision.request.context.get("s3:x-amz-server-side-encryption-aws-kms-key-id") == other
        )
        assert "explicit" in decision.reason.lower() or "deny" in decision.reason.lower()
        # Naming the bucket's own key is fine.
        upload_encrypted_with(str(e2e.stack.outputs["kms_s3_key_arn"]), "incoming/own-key.txt")
        e2e.clients("s3").delete_object(Bucket=e2e.bucket, Key="incoming/own-key.txt")
    finally:
        # moto 5.2.1 answers a key-state change naming the key by ARN with HTTP 500 (KeyError).
        kms.schedule_key_deletion(KeyId=created["KeyId"], PendingWindowInDays=7)


def test_a_mapping_whose_role_cannot_receive_is_refused(clean_e2e: E2E) -> None:
    e2e = clean_e2e
    out = e2e.stack.outputs
    e2e.clients("sqs").send_message(QueueUrl=e2e.dlq_url, MessageBody=json.dumps({"x": 1}))
    policy_arn = str(out["dlq_processor_policy_arn"])
    doc = _policy_document(e2e, policy_arn)
    for st in _statements(doc):
        if "sqs:ReceiveMessage" in _actions(st):
            st["Action"] = [a for a in _actions(st) if a != "sqs:ReceiveMessage"]
    dispatcher = e2e.dispatcher()
    with (
        managed_policy_version(e2e, policy_arn, doc),
        e2e.gateway.expect_denials() as refused,
        pytest.raises(ClientError) as denied,
    ):
        dispatcher.drain(max_rounds=3)
    assert denied.value.response["Error"]["Code"].startswith("AccessDenied")
    decision = _refusal_of(refused, "sqs:ReceiveMessage")
    role = str(out["dlq_processor_role_arn"]).rsplit("/", 1)[1]
    assert f"assumed-role/{role}/" in decision.request.principal.arn
    assert decision.request.resource == str(out["dlq_arn"])
    assert dispatcher.records == []  # the function never ran


def _own_calls(
    e2e: E2E, since: Counter[tuple[str, str, str, str]]
) -> dict[str, set[tuple[str, str, str]]]:
    """function name -> (action, resource, endpoint) of the calls its code made since `since`."""
    names = [
        str(e2e.stack.outputs[o])
        for o in ("processor_function_name", "dlq_processor_function_name")
    ]
    out: dict[str, set[tuple[str, str, str]]] = {name: set() for name in names}
    for (principal, action, resource, endpoint), n in (e2e.gateway.paths - since).items():
        for name in names:
            if n and principal.endswith(f"/{name}"):
                out[name].add((action, resource, endpoint))
    return out


def test_every_call_of_the_functions_goes_through_an_endpoint_of_the_vpc(
    clean_e2e: E2E, samples: sample_files.SampleSet
) -> None:
    """Issue 13: the functions run in the private subnets, and each of their own calls reaches
    its service through the stack's VPC endpoint for that service (no other way out)."""
    e2e = clean_e2e
    out = e2e.stack.outputs
    via = {
        "s3": str(out["s3_vpc_endpoint_id"]),
        "dynamodb": str(out["dynamodb_vpc_endpoint_id"]),
        "sqs": str(out["sqs_vpc_endpoint_id"]),
    }
    before = Counter(e2e.gateway.paths)
    errors = samples.by_key()[sample_files.PREFIX + "06-record-errors.csv"]
    e2e.upload([errors], sample_files.Ledger())
    dispatcher = e2e.dispatcher()
    dispatcher.deliver(dispatcher.pending_events())
    dispatcher.drain(max_rounds=60)
    calls = _own_calls(e2e, before)
    processor = calls[str(out["processor_function_name"])]
    dlq_processor = calls[str(out["dlq_processor_function_name"])]
    print("\ncalls of the functions' code and the endpoint that carried each:")
    for action, resource, endpoint in sorted(processor | dlq_processor):
        print(f"  {action} on {resource} via {endpoint or 'NOTHING'}")
    assert processor and dlq_processor
    for action, resource, endpoint in processor | dlq_processor:
        assert endpoint == via[action.split(":")[0]], (action, resource, endpoint)
    actions = {(a, e) for a, _, e in processor}
    # The processor reads the uploaded version: s3:GetObjectVersion.
    assert {("s3:GetObject", via["s3"]), ("s3:GetObjectVersion", via["s3"])} & actions
    assert ("dynamodb:PutItem", via["dynamodb"]) in actions or (
        "dynamodb:BatchWriteItem",
        via["dynamodb"],
    ) in actions
    assert ("sqs:SendMessage", via["sqs"]) in actions
    assert any(e == via["dynamodb"] for _, _, e in dlq_processor)


@contextlib.contextmanager
def endpoint_policy(e2e: E2E, endpoint_id: str, document: dict[str, Any]) -> Iterator[None]:
    """The VPC endpoint's policy replaced by `document` for the block (ec2 ModifyVpcEndpoint)."""
    ec2 = e2e.clients("ec2")
    (found,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
    saved = found["PolicyDocument"]
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, PolicyDocument=json.dumps(document))
    e2e.gateway.store.refresh()
    try:
        yield
    finally:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, PolicyDocument=saved)
        e2e.gateway.store.refresh()


def test_an_sqs_endpoint_policy_denying_send_refuses_the_processors_dlq_send(
    clean_e2e: E2E, samples: sample_files.SampleSet
) -> None:
    e2e = clean_e2e
    out = e2e.stack.outputs
    endpoint_id = str(out["sqs_vpc_endpoint_id"])
    ec2 = e2e.clients("ec2")
    (found,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
    doc = json.loads(found["PolicyDocument"])
    doc["Statement"] = [
        *_statements(doc),
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"},
    ]
    errors = samples.by_key()[sample_files.PREFIX + "06-record-errors.csv"]
    e2e.upload([errors], sample_files.Ledger())
    dispatcher = e2e.dispatcher()
    with endpoint_policy(e2e, endpoint_id, doc), e2e.gateway.expect_denials() as refused:
        dispatcher.deliver(dispatcher.pending_events())
    to_dlq = [
        d
        for d in refused
        if d.request.action == "sqs:SendMessage" and d.request.resource == str(out["dlq_arn"])
    ]
    assert to_dlq, [describe(d) for d in refused]
    decision = to_dlq[0]
    print("\nrefused: " + describe(decision))
    role = str(out["processor_role_arn"]).rsplit("/", 1)[1]
    assert f"assumed-role/{role}/" in decision.request.principal.arn
    assert decision.endpoint == endpoint_id
    assert f"explicit Deny in endpoint policy of {endpoint_id}" in decision.reason
    assert decision.request.context.get("aws:SourceVpc") == str(out["vpc_id"])
    # The same file with the endpoint's own policy back: the DLQ send goes through.
    dispatcher.drain(max_rounds=60)
