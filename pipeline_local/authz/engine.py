"""Decide one request the way AWS's policy evaluation logic does, inside one account, KMS included.

Rules (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
1. An explicit Deny in any applicable policy (identity, resource, key or trust policy) wins.
2. KMS key operations (`kms:*` on `arn:aws:kms:...:key/...`): the key policy must allow, either
   naming the principal directly, or naming the account (`arn:aws:iam::ACCOUNT:root` or the
   bare account id), which only delegates to IAM: then an identity-based policy must allow
   too ("Unless the key policy explicitly allows it, you cannot use IAM policies to allow
   access to a KMS key": https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html,
   https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
   `sts:AssumeRole*` follows the same shape with the role's trust policy as the resource
   policy (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html).
3. Anything else: an identity-policy Allow, or a resource-policy Allow naming the principal,
   suffices. A resource-policy statement naming the account only delegates to IAM
   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts):
   it allows nothing by itself.
4. A role ARN in a Principal element matches that role's sessions
   (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`); `"*"` and `{"AWS": "*"}` match every
   principal. Service principals (`{"Service": "s3.amazonaws.com"}`) have no identity
   policies: only resource and key policies can allow them.
5. Nothing allows: implicit deny.
6. A request a function in a VPC sends (`AuthzRequest.network`) reaches its service only
   through a VPC endpoint of that VPC serving the function's subnets; without one (and without
   an internet route) it is refused. The endpoint's policy must also allow the request, and an
   explicit Deny in it wins; it does not replace the identity or resource policies
   (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html). Its
   Principal `{"AWS": ACCOUNT}` means the account's root user only, not a delegation (same
   page, "Principals for gateway endpoints"). The request's context gets aws:SourceVpce and
   aws:SourceVpc; the Decision names the endpoint that carried it (`Decision.endpoint`).
Global condition keys derived from the principal (aws:PrincipalArn -- the role ARN for a
session --, aws:PrincipalAccount, aws:PrincipalServiceName, aws:PrincipalIsAWSService,
kms:CallerAccount for kms:*) are added unless the request already carries them.

Why by hand (library search, 2026-11-30, PyPI and crates.io):
- moto.iam.access_control (already a dependency): identity policies only, no conditions, no
  resource or key policies.
- principalmapper 1.1.5 (PyPI, last release 2022-01, unmaintained): has a local simulator with
  conditions and resource policies, but it is unsound for this use: `StringNotLike` on an
  absent key is false (AWS: true), a resource policy naming the account root allows by itself
  (AWS: delegates), no KMS key-policy rule.
- aws-why 0.5.0 (PyPI): a CLI wrapping AWS's online simulator; needs a real account.
- policyuniverse, parliament, policy-sentry, cloudsplaining (PyPI): parse, lint or generate
  policies; none evaluates a request.
- iam-rs (crates.io): evaluates single policies with conditions, but has no Python binding and
  no multi-policy/KMS/account-delegation logic; aws-iam (crates.io, 0.2.2) is a model with a
  partial offline evaluator and no conditions on absent keys as AWS defines them.
- @cloud-copilot/iam-simulate (npm) is sound but would add a Node runtime to the harness.
Not modelled (the list belongs in docs/security.md): KMS grants, SCPs/RCPs, permission
boundaries, session policies, cross-account access, policy variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal, Protocol

from pipeline_local.authz.conditions import condition_holds, normalize_context, validate_conditions
from pipeline_local.authz.policy import Policy, Statement, parse_policy

__all__ = [
    "AuthzRequest",
    "Decision",
    "NetworkPath",
    "PolicySource",
    "Principal",
    "VpcEndpoint",
    "authorize",
    "effective_context",
    "policy_owner_arn",
]

ContextValue = str | bool | int | Sequence[str]


@dataclass(frozen=True)
class Principal:
    # arn:aws:sts::ACCT:assumed-role/ROLE/SESSION, arn:aws:iam::ACCT:user/NAME, or the service name
    arn: str
    account: str | None  # None for service principals
    service: str | None = None  # "s3.amazonaws.com", "logs.eu-central-1.amazonaws.com", ...
    role_arn: str | None = None  # arn:aws:iam::ACCOUNT:role/ROLE for assumed-role sessions


@dataclass(frozen=True)
class VpcEndpoint:
    endpoint_id: str  # vpce-...
    vpc_id: str
    kind: str  # "Gateway" (S3, DynamoDB: a route in the subnets' route table) or "Interface"
    policy: Mapping[str, Any] | None = None  # None: AWS's default full-access policy


@dataclass(frozen=True)
class NetworkPath:
    """How a request sent from inside a VPC leaves it: through `endpoint`, over an internet
    route, or not at all."""

    caller: str  # the function's name
    vpc_id: str
    subnets: tuple[str, ...]
    service_host: str  # "sqs.eu-central-1.amazonaws.com"
    endpoint: VpcEndpoint | None = None
    internet_route: bool = False  # 0.0.0.0/0 to an internet or NAT gateway in every subnet


@dataclass(frozen=True)
class AuthzRequest:
    principal: Principal
    action: str  # "dynamodb:PutItem", "kms:Decrypt", ...
    resource: str  # full ARN (or "*" for actions without resource-level permissions)
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    on_behalf_of: str | None = None  # why this call exists, for implied calls
    network: NetworkPath | None = None  # sent from inside a VPC (a function's own call)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # one sentence: principal, action, resource, and what decided
    request: AuthzRequest
    endpoint: str | None = None  # the VPC endpoint that carried the request, if any


class PolicySource(Protocol):
    """Where the applied policies come from. A document may be a bare policy or
    {"PolicyName": ..., "PolicyDocument": {...}} (then messages name the policy)."""

    def identity_policies(self, principal: Principal) -> Sequence[Mapping[str, Any]]: ...

    def resource_policy(self, resource_arn: str) -> Mapping[str, Any] | None: ...

    def key_policy(self, key_arn: str) -> Mapping[str, Any] | None: ...


Reach = Literal["direct", "account"]
_KEY_ARN = re.compile(r"^arn:aws[\w-]*:kms:[^:]*:[^:]*:key/")
_ALIAS_ARN = re.compile(r"^arn:aws[\w-]*:kms:[^:]*:[^:]*:alias/")
_ALIAS_ACTIONS = {"kms:createalias", "kms:updatealias", "kms:deletealias", "kms:listaliases"}
_ACCOUNT_ROOT = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):root$")


def policy_owner_arn(resource: str) -> str:
    """The ARN of the resource that carries the resource-based policy for `resource`: the
    bucket of an object, the table of an index or stream, the log group of a stream, the
    function of a version/alias."""
    parts = resource.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return resource
    prefix, service, tail = ":".join(parts[:5]), parts[2], parts[5]
    if service == "s3" and "/" in tail:
        return f"{prefix}:{tail.split('/', 1)[0]}"
    if service == "dynamodb" and tail.startswith("table/"):
        return f"{prefix}:{'/'.join(tail.split('/')[:2])}"
    if service == "logs" and ":log-stream:" in tail:
        return f"{prefix}:{tail.split(':log-stream:', 1)[0]}"
    if service == "lambda" and tail.startswith("function:") and tail.count(":") >= 2:
        return f"{prefix}:{':'.join(tail.split(':')[:2])}"
    return resource


def effective_context(request: AuthzRequest) -> dict[str, Any]:
    """The request's condition keys plus those AWS derives from the principal."""
    principal = request.principal
    derived: dict[str, Any] = {}
    if principal.service:
        derived["aws:PrincipalServiceName"] = principal.service
        derived["aws:PrincipalIsAWSService"] = True
    else:
        derived["aws:PrincipalArn"] = principal.role_arn or principal.arn
        derived["aws:PrincipalIsAWSService"] = False
        if principal.account:
            derived["aws:PrincipalAccount"] = principal.account
            if request.action.lower().startswith("kms:"):
                derived["kms:CallerAccount"] = principal.account
    derived.update(request.context)
    return normalize_context(derived)


@lru_cache(maxsize=1024)
def _parse_cached(text: str, name: str) -> Policy:
    policy = parse_policy(json.loads(text), name)
    for statement in policy.statements:
        validate_conditions(statement.conditions)
    return policy


def _load(document: Mapping[str, Any], default_name: str) -> Policy:
    name = default_name
    body: Any = document
    if "PolicyDocument" in document:
        body = document["PolicyDocument"]
        if document.get("PolicyName"):
            name = f"identity policy {document['PolicyName']}"
    if isinstance(body, str):
        body = json.loads(body)
    return _parse_cached(json.dumps(body, sort_keys=True), name)


def _account_of(value: str) -> str | None:
    if re.fullmatch(r"\d{12}", value):
        return value
    match = _ACCOUNT_ROOT.match(value)
    return match.group(1) if match else None


def _reach_of(block: Mapping[str, tuple[str, ...]], principal: Principal) -> Reach | None:
    """How a Principal block reaches `principal`: by name ("direct"), only through its
    account ("account", i.e. delegation to IAM), or not at all."""
    reach: Reach | None = None
    for kind, values in block.items():
        kind_l = kind.lower()
        for value in values:
            if kind_l == "*" or (kind_l == "aws" and value == "*"):
                return "direct"
            if kind_l == "service":
                if principal.service and value.lower() == principal.service.lower():
                    return "direct"
            elif kind_l == "aws" and principal.service is None:
                if value == principal.arn or (principal.role_arn and value == principal.role_arn):
                    return "direct"
                if principal.account and _account_of(value) == principal.account:
                    reach = "account"
    return reach


@dataclass(frozen=True)
class _Hit:
    policy: Policy
    statement: Statement
    reach: Reach

    @property
    def where(self) -> str:
        return f"{self.policy.name} statement {self.statement.label}"


@dataclass
class _Scan:
    allows: list[_Hit] = field(default_factory=list)
    denies: list[_Hit] = field(default_factory=list)
    condition_misses: list[_Hit] = field(default_factory=list)


def _scan(
    policy: Policy, request: AuthzRequest, ctx: Mapping[str, Any], *, resource_based: bool
) -> _Scan:
    scan = _Scan()
    for statement in policy.statements:
        if not statement.matches_action(request.action):
            continue
        if not statement.matches_resource(request.resource):
            continue
        reach: Reach | None = "direct"
        if resource_based:
            if statement.principals is not None:
                reach = _reach_of(statement.principals, request.principal)
            elif statement.not_principals is not None:
                reach = None if _reach_of(statement.not_principals, request.principal) else "direct"
            else:
                reach = None  # a resource-based statement without Principal applies to no one
        if reach is None:
            continue
        hit = _Hit(policy, statement, reach)
        if not condition_holds(statement.conditions, ctx):
            scan.condition_misses.append(hit)
            continue
        (scan.allows if statement.effect == "Allow" else scan.denies).append(hit)
    return scan


def _who(request: AuthzRequest) -> str:
    base = f"{request.principal.arn} {{verb}} {request.action} on {request.resource}"
    if request.on_behalf_of:
        base += f" (implied by {request.on_behalf_of})"
    return base


def _misses(scans: Sequence[_Scan]) -> str:
    misses = [
        hit for scan in scans for hit in scan.condition_misses if hit.statement.effect == "Allow"
    ]
    if not misses:
        return ""
    names = "; ".join(hit.where for hit in misses[:3])
    return f" ({names} would allow, but its Condition does not hold for this request)"


DEFAULT_ENDPOINT_POLICY: Mapping[str, Any] = {
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]
}


def authorize(source: PolicySource, request: AuthzRequest) -> Decision:
    """Allow or deny `request`, with a one-sentence reason naming principal, action, resource
    and the statement (or the missing permission) that decided; a request sent from inside a
    VPC also needs a VPC endpoint that carries it and whose policy allows it (rule 6)."""
    net = request.network
    if net is None:
        return _authorize_policies(source, request)
    denied = _who(request).format(verb="is denied")
    where = f"{net.caller} runs in {net.vpc_id} (subnets {', '.join(net.subnets)})"
    endpoint = net.endpoint
    if endpoint is None:
        if net.internet_route:
            decision = _authorize_policies(source, request)
            return replace(decision, reason=decision.reason + f" (over {where}'s internet route)")
        why = (
            f": {where} which has no route to {net.service_host}: no VPC endpoint for the "
            "service and no internet route"
        )
        return Decision(False, denied + why, request)
    request = replace(
        request,
        context={
            **request.context,
            "aws:SourceVpce": endpoint.endpoint_id,
            "aws:SourceVpc": endpoint.vpc_id,
        },
    )
    via = f" (through {endpoint.endpoint_id}, the {endpoint.kind.lower()} endpoint of {net.vpc_id})"
    policy = _load(
        endpoint.policy or DEFAULT_ENDPOINT_POLICY, f"endpoint policy of {endpoint.endpoint_id}"
    )
    scan = _scan(policy, request, effective_context(request), resource_based=True)
    if scan.denies:
        why = f"{via}: explicit Deny in {scan.denies[0].where}"
        return Decision(False, denied + why, request, endpoint.endpoint_id)
    decision = _authorize_policies(source, request)
    if decision.allowed and not any(hit.reach == "direct" for hit in scan.allows):
        why = f"{via}: the endpoint policy of {endpoint.endpoint_id} does not allow it"
        return Decision(False, denied + why + _misses([scan]), request, endpoint.endpoint_id)
    return replace(decision, reason=decision.reason + via, endpoint=endpoint.endpoint_id)


def _authorize_policies(source: PolicySource, request: AuthzRequest) -> Decision:
    """Rules 1-5: the identity, resource and key policies."""
    principal = request.principal
    ctx = effective_context(request)
    who = _who(request)

    identity = (
        []
        if principal.service
        else [
            _load(doc, f"identity policy #{i + 1} of {principal.role_arn or principal.arn}")
            for i, doc in enumerate(source.identity_policies(principal))
        ]
    )
    identity_scans = [_scan(p, request, ctx, resource_based=False) for p in identity]

    action_l = request.action.lower()
    if (
        action_l.startswith("kms:")
        and _ALIAS_ARN.match(request.resource)
        and action_l not in _ALIAS_ACTIONS
    ):
        # KMS authorizes a call made through an alias on the key's policy: deciding it on the
        # alias alone would skip the key policy.
        why = ": it names a KMS alias; resolve the alias to its key so the key policy can decide"
        return Decision(False, who.format(verb="is denied") + why, request)
    is_key_op = action_l.startswith("kms:") and bool(_KEY_ARN.match(request.resource))
    is_assume = action_l.startswith("sts:assumerole")
    gatekeeper_kind = (
        "key policy" if is_key_op else "trust policy" if is_assume else "resource policy"
    )
    owner = request.resource if is_key_op else policy_owner_arn(request.resource)
    raw = source.key_policy(request.resource) if is_key_op else source.resource_policy(owner)
    resource_policy = _load(raw, f"{gatekeeper_kind} of {owner}") if raw is not None else None
    resource_scan = (
        _scan(resource_policy, request, ctx, resource_based=True) if resource_policy else _Scan()
    )

    # 1. explicit deny anywhere
    for scan in [*identity_scans, resource_scan]:
        if scan.denies:
            hit = scan.denies[0]
            return Decision(
                False, who.format(verb="is denied") + f": explicit Deny in {hit.where}", request
            )

    identity_allow = next((scan.allows[0] for scan in identity_scans if scan.allows), None)
    direct = next((h for h in resource_scan.allows if h.reach == "direct"), None)
    delegation = next((h for h in resource_scan.allows if h.reach == "account"), None)
    denied = who.format(verb="is denied")
    misses = _misses([*identity_scans, resource_scan])

    # 2. KMS keys and role trust: the key/trust policy must take part.
    if is_key_op or is_assume:
        if direct:
            return Decision(True, who.format(verb="may") + f": allowed by {direct.where}", request)
        if resource_policy is None:
            return Decision(False, denied + f": no {gatekeeper_kind} is known for {owner}", request)
        if delegation and identity_allow:
            return Decision(
                True,
                who.format(verb="may")
                + f": allowed by {identity_allow.where}, which {delegation.where} lets apply",
                request,
            )
        if delegation:
            why = (
                f": no identity-based policy allows {request.action} on {request.resource}, and "
                f"the {gatekeeper_kind} grants the principal nothing directly ({delegation.where} "
                "only delegates to the account's IAM policies)"
            )
            return Decision(False, denied + why + misses, request)
        if identity_allow:
            why = (
                f": {identity_allow.where} allows it, but the {gatekeeper_kind} neither allows "
                "the principal nor delegates to the account's IAM policies"
            )
            return Decision(False, denied + why + misses, request)
        why = f": the {gatekeeper_kind} neither allows the principal nor delegates to the account"
        return Decision(False, denied + why + misses, request)

    # 3. everything else: identity allow or resource-policy allow naming the principal.
    if identity_allow:
        return Decision(
            True, who.format(verb="may") + f": allowed by {identity_allow.where}", request
        )
    if direct:
        return Decision(True, who.format(verb="may") + f": allowed by {direct.where}", request)
    if principal.service:
        why = ": a service principal needs a resource policy allowing it, and " + (
            f"the {gatekeeper_kind} of {owner} does not" if resource_policy else f"{owner} has none"
        )
        return Decision(False, denied + why + misses, request)
    why = f": no identity-based policy allows {request.action} on {request.resource}"
    if delegation:
        why += f", and {delegation.where} only delegates to the account's IAM policies"
    elif resource_policy:
        why += f", and the {gatekeeper_kind} of {owner} does not allow the principal"
    return Decision(False, denied + why + misses, request)
