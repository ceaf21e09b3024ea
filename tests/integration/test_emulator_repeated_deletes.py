"""A delete repeated after it succeeded gets AWS's answer from the emulator
(pipeline_local/authz/repeated_deletes.py), which the AWS provider takes as deleted.

Without `repeated_deletes.install()` both tests fail (seen): the second DeleteEventSourceMapping
answers a 404 with the body `{}` and no error code, which boto3 even reads as a success; the
second DeleteVpcEndpoints of a gateway endpoint fails with `InvalidRoute.NotFound`."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local.clients import Clients
from pipeline_local.emulator import Emulator


@pytest.fixture
def clients(emulator: Emulator) -> Clients:
    return Clients(emulator.endpoint)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


def test_a_repeated_event_source_mapping_delete_is_resource_not_found(clients: Clients) -> None:
    iam, lam, sqs = clients("iam"), clients("lambda"), clients("sqs")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="repeat-esm", AssumeRolePolicyDocument=json.dumps(trust))
    lam.create_function(
        FunctionName="repeat-esm",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
    )
    queue = sqs.create_queue(QueueName="repeat-esm")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    uuid = lam.create_event_source_mapping(
        EventSourceArn=arn["QueueArn"], FunctionName="repeat-esm"
    )["UUID"]

    lam.delete_event_source_mapping(UUID=uuid)
    with pytest.raises(ClientError) as again:
        lam.delete_event_source_mapping(UUID=uuid)
    assert again.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_repeated_gateway_endpoint_delete_changes_nothing(clients: Clients) -> None:
    ec2: Any = clients("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName="com.amazonaws.eu-central-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[table],
    )["VpcEndpoint"]["VpcEndpointId"]

    assert ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint]).get("Unsuccessful", []) == []
    assert ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint]).get("Unsuccessful", []) == []
    (gone,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"]
    assert gone["State"].lower() == "deleted"
    routes = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    assert [r for r in routes if r.get("DestinationPrefixListId")] == []
