"""The applied stack's VPC, endpoints and security groups, checked through the AWS APIs.

Collected by test_stack.py, which applies the stack once for all of them."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack
from tests.integration.stack_views import (
    REGION,
    as_list,
    planned_resources,
    statements,
)

# --- VPC ---------------------------------------------------------------------------------


def endpoint_of(stack: Stack, output: str) -> dict[str, Any]:
    (endpoint,) = stack.client("ec2").describe_vpc_endpoints(
        VpcEndpointIds=[stack.outputs[output]]
    )["VpcEndpoints"]
    return endpoint


def test_gateway_endpoints_on_private_route_table(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    out = stack.outputs
    route_table = out["private_route_table_id"]
    for service in ("s3", "dynamodb"):
        endpoint = endpoint_of(stack, f"{service}_vpc_endpoint_id")
        assert endpoint["VpcEndpointType"] == "Gateway"
        assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.{service}"
        assert endpoint["VpcId"] == out["vpc_id"]
        assert endpoint["RouteTableIds"] == [route_table]
    (table,) = ec2.describe_route_tables(RouteTableIds=[route_table])["RouteTables"]
    associated = {a.get("SubnetId") for a in table["Associations"]}
    assert associated == set(out["private_subnet_ids"])
    subnets = ec2.describe_subnets(SubnetIds=out["private_subnet_ids"])["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)


def test_endpoint_policies_allow_only_what_the_functions_do_there(stack: Stack) -> None:
    out = stack.outputs
    processor, dlq_processor = out["processor_role_arn"], out["dlq_processor_role_arn"]

    def allowed(output: str) -> set[tuple[str, str, str]]:
        found = set()
        for stmt in statements(endpoint_of(stack, output)["PolicyDocument"]):
            assert stmt["Effect"] == "Allow" and stmt["Principal"] == "*"
            (principal,) = as_list(stmt["Condition"]["ArnEquals"]["aws:PrincipalArn"])
            for action in as_list(stmt["Action"]):
                for resource in as_list(stmt["Resource"]):
                    found.add((principal, action, resource))
        return found

    objects = f"{out['s3_bucket_arn']}/*"
    assert allowed("s3_vpc_endpoint_id") == {
        (processor, "s3:GetObject", objects),
        (processor, "s3:GetObjectVersion", objects),
    }
    assert allowed("dynamodb_vpc_endpoint_id") == {
        (processor, "dynamodb:PutItem", out["transactions_table_arn"]),
        (processor, "dynamodb:UpdateItem", out["file_status_table_arn"]),
        (dlq_processor, "dynamodb:PutItem", out["errors_table_arn"]),
    }
    assert allowed("sqs_vpc_endpoint_id") == {
        (processor, "sqs:SendMessage", out["main_queue_arn"]),
        (processor, "sqs:SendMessage", out["dlq_arn"]),
    }


def test_sqs_interface_endpoint_in_both_subnets_with_private_dns(stack: Stack) -> None:
    out = stack.outputs
    endpoint = endpoint_of(stack, "sqs_vpc_endpoint_id")
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.sqs"
    assert endpoint["VpcId"] == out["vpc_id"]
    assert endpoint["PrivateDnsEnabled"] is True
    assert sorted(endpoint["SubnetIds"]) == sorted(out["private_subnet_ids"])
    groups = [g["GroupId"] for g in endpoint["Groups"]]
    assert groups == [out["interface_endpoints_security_group_id"]]


def rules_of(stack: Stack, group_id: str) -> list[dict[str, Any]]:
    return stack.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}]
    )["SecurityGroupRules"]


def test_security_groups_allow_https_to_the_endpoints_only(stack: Stack) -> None:
    out = stack.outputs
    functions, endpoints = (
        out["functions_security_group_id"],
        out["interface_endpoints_security_group_id"],
    )
    prefix_lists = {
        endpoint_of(stack, f"{service}_vpc_endpoint_id").get("PrefixListId")
        or stack.state()[f'aws_vpc_endpoint.gateway["{service}"]']["prefix_list_id"]
        for service in ("s3", "dynamodb")
    }

    def shape(rule: dict[str, Any]) -> tuple[Any, ...]:
        target = (
            rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
            or rule.get("CidrIpv4")
            or rule.get("CidrIpv6")
        )
        return (rule["IsEgress"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"], target)

    assert sorted(map(shape, rules_of(stack, functions)), key=str) == sorted(
        [(True, "tcp", 443, 443, pl) for pl in prefix_lists] + [(True, "tcp", 443, 443, endpoints)],
        key=str,
    )
    assert [shape(r) for r in rules_of(stack, endpoints)] == [(False, "tcp", 443, 443, functions)]


def test_no_route_to_the_internet(stack: Stack) -> None:
    """No internet or NAT gateway, and no route table sends anything to 0.0.0.0/0 or ::/0."""
    ec2 = stack.client("ec2")
    vpc = [{"Name": "vpc-id", "Values": [stack.outputs["vpc_id"]]}]
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [stack.outputs["vpc_id"]]}]
    )["InternetGateways"]
    assert gateways == []
    assert ec2.describe_nat_gateways(Filters=vpc)["NatGateways"] == []
    for table in ec2.describe_route_tables(Filters=vpc)["RouteTables"]:
        for route in table["Routes"]:
            assert route.get("DestinationCidrBlock") not in ("0.0.0.0/0",), route
            assert route.get("DestinationIpv6CidrBlock") != "::/0", route
            assert not route.get("GatewayId", "").startswith("igw-"), route
            assert not route.get("NatGatewayId"), route
    planned = {address.split("[")[0].split(".")[0] for address in planned_resources(stack)}
    assert not planned & {"aws_internet_gateway", "aws_nat_gateway", "aws_route", "aws_eip"}
