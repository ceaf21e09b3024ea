"""`make preflight` against the emulator, through a proxy that plays the parts moto lacks.

moto implements neither Lambda GetAccountSettings nor IAM SimulatePrincipalPolicy. A
`LoopbackProxy` in front of the emulator answers GetAccountSettings with a chosen account limit,
and SimulatePrincipalPolicy by evaluating the caller's real policies as the emulator holds them
with moto's own identity-policy evaluator (`evaluate` below: SimulatePrincipalPolicy without
resource policies evaluates identity policies only, which is what moto's evaluator does).
Everything else (STS GetCallerIdentity, Lambda GetFunctionConcurrency, IAM) is the emulator's
answer; preflight itself reaches the proxy only through the standard AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import boto3
import pytest

from pipeline_local import preflight
from pipeline_local.clients import Clients
from pipeline_local.constants import BUILD_DIR
from pipeline_local.emulator import Emulator, start_emulator
from pipeline_local.faults import LoopbackProxy, ProxyRequest, ProxyResponse

REGION = "eu-central-1"


def evaluate(documents: list[dict[str, Any]], action: str, resource: str) -> str:
    """ "allowed", "explicit deny" or "implicit deny" from identity policies alone
    (moto.iam.access_control.IAMPolicy, called with the real action and resource)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for doc in documents:
        result = IAMPolicy(json.dumps(doc)).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return "explicit deny"
        if result == PermissionResult.PERMITTED:
            permitted = True
    return "allowed" if permitted else "implicit deny"


ALL_BUT_GRANTS_AND_PASSROLE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "NotAction": ["kms:CreateGrant", "iam:PassRole"], "Resource": "*"}
    ],
}
EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


class AccountAnswers:
    """Interceptor: the account's Lambda settings, and IAM's policy simulation."""

    def __init__(self, endpoint: str, concurrency_limit: int) -> None:
        self.limit = concurrency_limit
        self.iam = Clients(endpoint)("iam")
        self.simulated: list[tuple[str, str, str]] = []

    def __call__(self, req: ProxyRequest) -> ProxyResponse | None:
        if req.service == "lambda" and req.path.rstrip("/").endswith("/account-settings"):
            body = {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": self.limit,
                    "UnreservedConcurrentExecutions": self.limit,
                },
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
            }
            return ProxyResponse(
                200, [("Content-Type", "application/json")], json.dumps(body).encode()
            )
        if req.service == "iam" and req.operation == "SimulatePrincipalPolicy":
            return self.simulate(parse_qs(req.body.decode()))
        return None

    def documents(self, user_arn: str) -> list[dict[str, Any]]:
        user = user_arn.rsplit("/", 1)[-1]
        docs: list[dict[str, Any]] = []
        for name in self.iam.list_user_policies(UserName=user)["PolicyNames"]:
            doc = self.iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
            docs.append(json.loads(doc) if isinstance(doc, str) else doc)
        return docs

    def simulate(self, form: dict[str, list[str]]) -> ProxyResponse:
        source = form["PolicySourceArn"][0]
        actions = [v[0] for k, v in sorted(form.items()) if k.startswith("ActionNames.member.")]
        (resource,) = [v[0] for k, v in form.items() if k.startswith("ResourceArns.member.")]
        docs = self.documents(source)
        members = []
        for action in actions:
            decision = {
                "allowed": "allowed",
                "explicit deny": "explicitDeny",
                "implicit deny": "implicitDeny",
            }[evaluate(docs, action, resource)]
            self.simulated.append((action, resource, decision))
            members.append(
                f"<member><EvalActionName>{escape(action)}</EvalActionName>"
                f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
                f"<EvalDecision>{decision}</EvalDecision>"
                "<MatchedStatements/><MissingContextValues/></member>"
            )
        body = (
            '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
            f"<EvaluationResults>{''.join(members)}</EvaluationResults>"
            "</SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>preflight-test</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        )
        return ProxyResponse(200, [("Content-Type", "text/xml")], body.encode())


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = start_emulator(log_path=BUILD_DIR / "tf-test-preflight-emulator.log")
    try:
        yield emu
    finally:
        emu.stop()


def deployer(emulator: Emulator, name: str, policy: dict[str, Any]) -> boto3.Session:
    """An IAM user in the emulator with one inline policy, as a boto3 session."""
    iam = Clients(emulator.endpoint)("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="deploy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )


def run_preflight(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    session: boto3.Session,
    limit: int,
) -> tuple[bool, str, AccountAnswers]:
    answers = AccountAnswers(emulator.endpoint, limit)
    lines: list[str] = []
    with LoopbackProxy(emulator.endpoint, [answers]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        ok = preflight.run(session, preflight.Reservations(100, 50), "dev", lines.append)
    print("\n".join(lines))
    return ok, "\n".join(lines), answers


def test_too_small_account_and_missing_permissions_are_named_with_what_to_request(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = deployer(emulator, "new-account-deployer", ALL_BUT_GRANTS_AND_PASSROLE)
    ok, out, answers = run_preflight(emulator, monkeypatch, session, limit=10)
    assert not ok
    assert "[MISSING] Lambda concurrency" in out
    assert "MISSING: the account limit is 10, 240 short." in out
    assert "quota code L-B99A9384" in out
    assert "--quota-code L-B99A9384 --desired-value 250 --region eu-central-1" in out
    assert "only the increase helps" in out
    assert "[MISSING] permissions of the caller" in out
    missing = [line.split()[0] for line in out.splitlines() if " on arn:" in line]
    assert sorted(set(missing)) == ["iam:PassRole", "kms:CreateGrant"]
    assert "iam:PassRole" in out and "role/iam-role-*-dev" in out
    # Every action of NEEDS was simulated, each against its own resource.
    assert len(answers.simulated) == sum(len(n.actions) for n in preflight.NEEDS)


@pytest.mark.parametrize(
    ("user", "limit", "passes", "says"),
    [
        # an account with room and a caller with every permission passes
        ("admin-deployer", 1000, True, ["needed: 150 + 100 = 250", "nothing missing"]),
        # a limit just short suggests smaller reservations
        ("short-deployer", 249, False, ["1 short", "or reserve less (at most 149 in all)"]),
    ],
    ids=["room-passes", "just-short-suggests-less"],
)
def test_a_caller_with_every_permission_is_judged_by_the_account_limit(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    limit: int,
    passes: bool,
    says: list[str],
) -> None:
    session = deployer(emulator, user, EVERYTHING)
    ok, out, _ = run_preflight(emulator, monkeypatch, session, limit=limit)
    assert ok is passes, out
    for text in says:
        assert text in out


def test_the_command_exits_non_zero_when_something_is_missing(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = deployer(emulator, "cli-deployer", ALL_BUT_GRANTS_AND_PASSROLE)
    creds = session.get_credentials()
    answers = AccountAnswers(emulator.endpoint, 10)
    with LoopbackProxy(emulator.endpoint, [answers]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_key)
        assert preflight.main([]) == 1
