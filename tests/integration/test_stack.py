"""The applied Terraform configuration, resource by resource, checked through the AWS APIs.

Runs the real terraform binary and the real hashicorp/aws provider against a moto server.
The tests run in file order: the last one destroys the stack and checks nothing is left.
Applying the stack takes a while, so this module applies it once (the `stack` fixture of
conftest.py) and collects the checks of stack_checks_*.py, one module per subject, by importing
them here, ahead of its own; they are named test_* only here, so each runs once.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from pipeline_local import security_doc
from tests.integration import stack_views as views
from tests.integration.conftest import Stack
from tests.integration.stack_checks_compute import (  # noqa: F401 (collected here)
    test_event_source_mappings,
    test_functions_configuration,
    test_functions_wait_for_roles_and_policy_attachments,
    test_role_is_least_privilege,
    test_s3_may_invoke_the_processor_from_the_bucket_only,
)
from tests.integration.stack_checks_data import (  # noqa: F401 (collected here)
    test_file_status_table,
    test_queues,
    test_tables,
)
from tests.integration.stack_checks_network import (  # noqa: F401 (collected here)
    test_endpoint_policies_allow_only_what_the_functions_do_there,
    test_gateway_endpoints_on_private_route_table,
    test_no_route_to_the_internet,
    test_security_groups_allow_https_to_the_endpoints_only,
    test_sqs_interface_endpoint_in_both_subnets_with_private_dns,
)
from tests.integration.stack_checks_storage import (  # noqa: F401 (collected here)
    test_at_least_40_outputs_all_present_and_described,
    test_bucket_policy_root_first_then_denies_insecure_and_unencrypted,
    test_bucket_versioning_encryption_and_public_access_block,
    test_kms_aliases_exist,
    test_kms_keys_rotate_and_start_with_root_access,
    test_lifecycle_moves_objects_to_glacier_after_90_days,
    test_logs_key_statement_names_both_log_groups,
    test_names_follow_the_client_pattern,
    test_notifications_only_for_csv_and_json,
    test_plan_uses_only_the_allowed_data_sources,
    test_producer_policy_is_put_object_and_the_bucket_key_through_s3_only,
)

# --- CloudWatch and SNS ------------------------------------------------------------------


def test_log_groups(stack: Stack) -> None:
    logs = stack.client("logs")
    for output in ("processor_log_group_name", "dlq_processor_log_group_name"):
        (group,) = logs.describe_log_groups(logGroupNamePrefix=stack.outputs[output])["logGroups"]
        assert group["logGroupName"] == stack.outputs[output]
        assert group["retentionInDays"] == 30
        assert group["kmsKeyId"] == stack.outputs["kms_lambda_key_arn"]


def test_alarms(stack: Stack) -> None:
    cw = stack.client("cloudwatch")
    topic = stack.outputs["sns_topic_arn"]
    names = [stack.outputs["error_rate_alarm_name"], stack.outputs["dlq_depth_alarm_name"]]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    for alarm in alarms.values():
        assert alarm["EvaluationPeriods"] == 2
        assert alarm["DatapointsToAlarm"] == 2
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [topic]
    rate = alarms[names[0]]
    assert rate["Threshold"] == 1
    queries = {q["Id"]: q for q in rate["Metrics"]}
    assert (
        queries["error_rate"]["Expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
    )
    assert queries["error_rate"]["ReturnData"] is True
    for metric_id, metric_name in (("errors", "Errors"), ("invocations", "Invocations")):
        stat = queries[metric_id]["MetricStat"]
        assert stat["Metric"]["MetricName"] == metric_name
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "FunctionName", "Value": stack.outputs["processor_function_name"]}
        ]
        assert stat["Period"] == 300 and stat["Stat"] == "Sum"
    depth = alarms[names[1]]
    assert depth["Threshold"] == 100
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert depth["Period"] == 300
    assert depth["Dimensions"] == [
        {"Name": "QueueName", "Value": stack.outputs["dlq_arn"].split(":")[-1]}
    ]


def test_dashboard_shows_every_requested_metric(stack: Stack) -> None:
    cw = stack.client("cloudwatch")
    body = json.loads(
        cw.get_dashboard(DashboardName=stack.outputs["dashboard_name"])["DashboardBody"]
    )
    widgets = body["widgets"]
    assert all(w["properties"]["period"] == 300 for w in widgets)
    metric_names = {
        (m[0], m[1]) for w in widgets for m in w["properties"]["metrics"] if isinstance(m[0], str)
    }
    ns = stack.outputs["metric_namespace"]
    required = {
        (ns, "RecordsProcessed"),
        (ns, "RecordsInvalid"),
        (ns, "RecordsDuplicate"),
        (ns, "RecordsRetried"),
        (ns, "FilesFailed"),
        (ns, "FileProcessingTime"),
        (ns, "ErrorsStored"),
        ("AWS/Lambda", "Invocations"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/DynamoDB", "ConsumedWriteCapacityUnits"),
        ("AWS/DynamoDB", "ConsumedReadCapacityUnits"),
    }
    assert required <= metric_names
    titles = " | ".join(w["properties"]["title"].lower() for w in widgets)
    for words in ("processing rate", "invocations", "error rate", "depth", "capacity", "latency"):
        assert words in titles
    expressions = [
        m[0]["expression"]
        for w in widgets
        for m in w["properties"]["metrics"]
        if isinstance(m[0], dict)
    ]
    assert len(expressions) == 2  # one error-rate expression per function


def test_topic_policy_and_subscription(stack: Stack) -> None:
    sns = stack.client("sns")
    topic = stack.outputs["sns_topic_arn"]
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attrs["KmsMasterKeyId"] == stack.outputs["kms_lambda_key_arn"]
    policy = views.statements(attrs["Policy"])
    assert policy[0]["Principal"] == {"AWS": f"arn:aws:iam::{views.ACCOUNT}:root"}
    assert policy[0]["Action"] == "sns:*"
    assert policy[1]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert policy[1]["Action"] == "sns:Publish"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [
        ("email", "devops-alerts@example.com")
    ]


# --- docs/security.md --------------------------------------------------------------------


def test_security_doc_lists_every_applied_permission(stack: Stack) -> None:
    """docs/security.md's table is the applied policies, row for row, each with a reason."""
    applied = set(security_doc.applied_grants(stack.client, stack.outputs))
    documented = security_doc.documented_grants(security_doc.DOC.read_text())
    missing = sorted(applied - set(documented))
    extra = sorted(set(documented) - applied)
    assert not missing, "applied but not in docs/security.md:\n" + security_doc.render(missing)
    assert not extra, "in docs/security.md but not applied:\n" + security_doc.render(extra)
    unexplained = [g for g, why in documented.items() if not why or why.startswith("TODO")]
    assert not unexplained, security_doc.render(unexplained)


# --- plan stability and destroy ----------------------------------------------------------


def test_second_plan_shows_no_changes(stack: Stack) -> None:
    assert stack.workdir.plan_has_changes() is False


def test_smoke_run_accounts_for_every_record(stack: Stack) -> None:
    """`make smoke`'s code against the emulator: the local dispatcher does Lambda's work.

    The functions run with the operator's identity here (this test is about smoke's waiting and
    accounting; the authorization model is exercised by the conformance suite, the e2e tests and
    the demo). The bucket policy stays as applied: the emulator does not enforce it
    (pipeline_local/authz/moto_server.py), the model does where it runs."""
    from pipeline_local import samples, smoke
    from pipeline_local.clients import Clients
    from pipeline_local.constants import BUILD_DIR
    from pipeline_local.dispatcher import Dispatcher
    from pipeline_local.stores import empty_bucket
    from pipeline_local.terraform_wiring import dead_letter_targets_from_terraform
    from pipeline_local.wiring import read_wiring

    clients = Clients(stack.emulator.endpoint)
    bucket = str(stack.outputs["s3_bucket_name"])
    wiring = read_wiring(
        clients, dead_letter_fallback=dead_letter_targets_from_terraform(stack.workdir.path)
    )
    dispatcher = Dispatcher(clients, wiring, log_dir=BUILD_DIR / "tf-test-stack-smoke-logs")

    def lambda_work() -> None:
        # S3 notifications once (the uploads are done by then), then whatever the queues hold.
        dispatcher.deliver(dispatcher.pending_events())
        dispatcher.drain()

    try:
        ok = smoke.run(
            clients,
            clients,
            stack.outputs,
            samples.generate(scale=0.02),
            timeout_s=120,
            poll_s=0.5,
            between_polls=lambda_work,
        )
    finally:
        dispatcher.close()
        empty_bucket(clients("s3"), bucket)
    assert ok


def test_destroy_leaves_nothing(stack: Stack) -> None:
    out = stack.outputs
    stack.workdir.destroy()
    stack.destroyed = True
    assert stack.workdir.state_resources() == []

    assert stack.client("s3").list_buckets()["Buckets"] == []
    assert stack.client("lambda").list_functions()["Functions"] == []
    assert stack.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert stack.client("dynamodb").list_tables()["TableNames"] == []
    assert stack.client("sqs").list_queues().get("QueueUrls", []) == []
    assert stack.client("sns").list_topics()["Topics"] == []
    assert stack.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert stack.client("cloudwatch").list_dashboards()["DashboardEntries"] == []
    groups = stack.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == []
    roles = stack.client("iam").list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].endswith(f"-{views.ENV}")]
    policies = stack.client("iam").list_policies(Scope="Local")["Policies"]
    assert policies == []
    kms = stack.client("kms")
    for key in ("kms_s3_key_id", "kms_dynamodb_key_id", "kms_lambda_key_id"):
        assert kms.describe_key(KeyId=out[key])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert not [
        a for a in kms.list_aliases()["Aliases"] if a["AliasName"].endswith(f"-{views.ENV}")
    ]
    ec2 = stack.client("ec2")
    try:
        remaining = ec2.describe_vpcs(VpcIds=[out["vpc_id"]])["Vpcs"]
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidVpcID.NotFound"
        remaining = []
    assert remaining == []
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert [e for e in endpoints if e["State"] not in ("deleted", "Deleted")] == []
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].endswith(f"-{views.ENV}")]
