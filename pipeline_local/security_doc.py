"""List every permission the applied stack grants or denies, as the rows of docs/security.md.

docs/security.md states who may do what (principal, effect, action, resource, condition) and
why. The rows come from the policies as the emulator holds them after `terraform apply`: the
two execution roles (trust and permission policies), the three key policies, the bucket policy,
the topic policy, the processor's function policy, the producer policy the stack outputs, and
the VPC endpoints' policies.
`tests/integration/test_stack.py` compares them with the document, so the document cannot
drift from the configuration; `python -m pipeline_local.security_doc` (after `make up`) prints
the rows for a new version of the document.

Values that change between deployments are replaced by placeholders: the account id by
`<account>`, each key's ARN by `<key:s3>`, `<key:dynamodb>`, `<key:lambda>`, the private
subnets' ids by `<subnet:1>`, `<subnet:2>`, the functions' security group id by `<sg:functions>`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"
TABLE_HEADER = "| principal | effect | actions | resource | condition | why |"


@dataclass(frozen=True, order=True)
class Grant:
    """One statement of an applied policy, in the words of the document."""

    principal: str
    effect: str
    actions: str
    resource: str
    condition: str

    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.principal, self.effect, self.actions, self.resource, self.condition)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _principal(stmt: Mapping[str, Any], owner: str) -> str:
    """The statement's principal; `owner` for identity policies, which have none."""
    principal = stmt.get("Principal")
    if principal is None:
        return owner
    if principal == "*":
        return "anyone (`*`)"
    parts = []
    for kind, values in sorted(principal.items()):
        for value in sorted(_as_list(values)):
            parts.append(f"{kind} {value}")
    return ", ".join(parts)


def _condition(stmt: Mapping[str, Any]) -> str:
    parts = []
    for op, pairs in sorted((stmt.get("Condition") or {}).items()):
        for key, values in sorted(pairs.items()):
            parts.append(f"{op} {key} = {', '.join(str(v) for v in _as_list(values))}")
    return "; ".join(parts) or "-"


def grants_of(
    document: Mapping[str, Any] | str, owner: str, scrub: Callable[[str], str]
) -> list[Grant]:
    doc = json.loads(document) if isinstance(document, str) else document
    out = []
    for stmt in _as_list(doc.get("Statement")):
        resource = stmt.get("Resource", stmt.get("NotResource", "-"))
        out.append(
            Grant(
                principal=scrub(_principal(stmt, owner)),
                effect=stmt["Effect"] + (" (NotAction)" if "NotAction" in stmt else ""),
                actions=", ".join(sorted(_as_list(stmt.get("Action", stmt.get("NotAction"))))),
                resource=scrub(", ".join(str(r) for r in _as_list(resource))),
                condition=scrub(_condition(stmt)),
            )
        )
    return out


def _iam_document(value: Any) -> dict[str, Any]:
    from urllib.parse import unquote

    if isinstance(value, str):
        return dict(json.loads(unquote(value) if value.startswith("%7B") else value))
    return dict(value)


def applied_grants(client: Callable[[str], Any], outputs: Mapping[str, Any]) -> list[Grant]:
    """Every statement of every policy the stack applied, read back from the emulator (or AWS)."""
    account = str(outputs["processor_role_arn"]).split(":")[4]
    keys = {name: str(outputs[f"kms_{name}_key_arn"]) for name in ("s3", "dynamodb", "lambda")}

    # Ids EC2 draws at random per deployment (the network interface statement names them).
    ids = {
        str(subnet): f"<subnet:{n}>"
        for n, subnet in enumerate(outputs.get("private_subnet_ids") or [], 1)
    }
    if outputs.get("functions_security_group_id"):
        ids[str(outputs["functions_security_group_id"])] = "<sg:functions>"

    def scrub(text: str) -> str:
        for name, arn in keys.items():
            text = text.replace(arn, f"<key:{name}>")
        for real, placeholder in ids.items():
            text = text.replace(real, placeholder)
        return text.replace(account, "<account>")

    iam, kms = client("iam"), client("kms")
    found: list[Grant] = []
    for key in ("processor", "dlq_processor"):
        role = str(outputs[f"{key}_role_arn"]).rsplit("/", 1)[-1]
        owner = f"role {role}"
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        found += [
            Grant(g.principal, g.effect, g.actions, f"{owner} (trust policy)", g.condition)
            for g in grants_of(_iam_document(trust), owner, scrub)
        ]
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
            found += grants_of(_iam_document(doc["Document"]), owner, scrub)
    for name, arn in keys.items():
        policy = kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
        found += [
            Grant(g.principal, g.effect, g.actions, f"<key:{name}> (key policy)", g.condition)
            for g in grants_of(policy, "-", scrub)
        ]
    bucket = str(outputs["s3_bucket_name"])
    found += grants_of(client("s3").get_bucket_policy(Bucket=bucket)["Policy"], "-", scrub)
    topic = client("sns").get_topic_attributes(TopicArn=outputs["sns_topic_arn"])["Attributes"]
    found += grants_of(topic["Policy"], "-", scrub)
    function = str(outputs["processor_function_name"])
    found += grants_of(client("lambda").get_policy(FunctionName=function)["Policy"], "-", scrub)
    found += grants_of(
        str(outputs["producer_policy_json"]), "producer (`producer_policy_json`)", scrub
    )
    # VPC endpoint policies: what may pass through each endpoint from inside the VPC.
    for service in ("s3", "dynamodb", "sqs"):
        endpoint_id = outputs.get(f"{service}_vpc_endpoint_id")
        if not endpoint_id:
            continue
        (endpoint,) = client("ec2").describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])[
            "VpcEndpoints"
        ]
        found += [
            Grant(
                g.principal,
                g.effect,
                g.actions,
                f"{g.resource} ({service} endpoint policy)",
                g.condition,
            )
            for g in grants_of(endpoint["PolicyDocument"], "-", scrub)
        ]
    return sorted(set(found))


def _split_row(line: str) -> list[str]:
    return [cell.strip().replace("\\|", "|") for cell in line.strip().strip("|").split(" | ")]


def documented_grants(text: str) -> dict[Grant, str]:
    """The permission table of docs/security.md: grant -> why."""
    lines = text.splitlines()
    try:
        start = lines.index(TABLE_HEADER)
    except ValueError as exc:
        raise ValueError(f"docs/security.md has no table headed {TABLE_HEADER!r}") from exc
    out: dict[Grant, str] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = _split_row(line)
        if len(cells) != 6:
            raise ValueError(f"docs/security.md: a row needs 6 cells: {line}")
        out[Grant(*cells[:5])] = cells[5]
    return out


def render(grants: Iterable[Grant], why: Mapping[Grant, str] | None = None) -> str:
    rows = [TABLE_HEADER, "|---|---|---|---|---|---|"]
    for g in grants:
        reason = (why or {}).get(g, "TODO: why")
        cells = [c.replace("|", "\\|") for c in (*g.cells(), reason)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    from pipeline_local.clients import Clients
    from pipeline_local.constants import BUILD_DIR
    from pipeline_local.emulator import load_state

    outputs = json.loads((BUILD_DIR / "outputs.json").read_text())
    clients = Clients(load_state(BUILD_DIR / "emulator.json").endpoint)
    why = documented_grants(DOC.read_text()) if DOC.exists() else {}
    print(render(applied_grants(clients, outputs), why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
