"""Decide every AWS request of the local pipeline as AWS would, in front of the emulator.

A `Gateway` sits in front of the emulator (moto server, whose own IAM enforcement stays off and
whose bucket-policy check is switched off by `pipeline_local.authz.moto_server`) and listens
twice on 127.0.0.1: an HTTPS listener (`https_endpoint`, TLS with a certificate authority
generated at start) and a plain-HTTP one (`http_endpoint`). For every request it

1. names the caller: the access key of the SigV4 `Authorization` header -> a registered
   `Principal` (a role session created by `assume_role`, e.g. a function's execution role or
   the producer role; or a user). The operator's keys (`operator_keys`, default the emulator's
   `test` key) are the account admin: allowed everything, never evaluated, counted in
   `operator_calls`. An unknown key is refused (AWS: InvalidClientTokenId);
2. classifies it (`authz.requests`: IAM action, resource ARN, condition keys; the listener sets
   `aws:SecureTransport`: true on HTTPS, false on HTTP);
3. decides the primary request(s) and the calls AWS makes on the caller's behalf
   (`authz.implied`, e.g. kms:Decrypt through DynamoDB), each with `authz.engine.authorize`
   against the applied policies (`authz.store.EmulatorPolicyStore`);
4. records every Decision (`allowed`: a Counter by (principal, action, resource,
   on_behalf_of); `denials`: every refusal, in order; `paths`: a Counter by (principal,
   action, resource, VPC endpoint or "") of the calls principals made themselves -- a
   function's own calls leave its VPC through an endpoint, `EmulatorPolicyStore.network_path`);
5. answers a refusal with the service's own AccessDenied error (HTTP status, protocol and
   error code of that service, message naming principal, action, resource and why), or
   forwards the request re-signed with the operator's credentials.

The gateway is a `pipeline_local.faults.LoopbackProxy` (`proxy`) whose first interceptor is the
authorizer: fault injectors and crash counters added with `proxy.add_interceptor` run after it
on the requests it allowed (they see `req.access_key` of the original caller).

API (for the dispatcher, the e2e tests, the demo and the conformance suite):

    store = EmulatorPolicyStore(Clients(emulator.endpoint), terraform_workdir=workdir)
    with Gateway(emulator.endpoint, store) as gw:          # or gw = Gateway(...).start()
        creds = gw.assume_role(role_arn, "session-name")   # AWS_ACCESS_KEY_ID, ... (env names)
        gw.client_env(creds)          # env for a handler: AWS_ENDPOINT_URL (HTTPS listener),
                                      # AWS_CA_BUNDLE (boto3), SSL_CERT_FILE (aws-sdk-rust), creds
        gw.clients(creds, secure=False)   # clients.Clients through the gateway (HTTP listener)
        gw.role_with_policy("producer", policy_doc)  # an IAM role in the emulator -> its ARN
        # Calls no client sends, decided as the service (or Lambda with the role) makes them,
        # each with what it implies (implied.py); every one returns the first refusal or the
        # Decision of the call itself, and is recorded like a request:
        gw.s3_invokes(bucket, function_arn)         # S3 notification -> lambda:InvokeFunction
        gw.function_init(function_arn)              # cold start: env decryption with the role
        gw.mapping_polls(function_arn, queue_arn)   # event source mapping with the role
        gw.alarm_publishes(alarm_arn, topic_arn)    # alarm action -> sns:Publish
        gw.service_call(service, action, resource, context)   # any other service principal call
        gw.decide_as(creds, action, resource, context)        # a registered principal, no request
        gw.decide(authz_request)                              # any AuthzRequest
        with gw.expect_denials() as refused:   # denials inside are expected (listed in refused)
            ...
        gw.unexpected_denials()  # refusals nobody expected (and forgets them)
        Gateway.summarize(refused)   # grouped lines: count, principal, action, resource, why
        gw.allowed / gw.allowed_by("assumed-role/ROLE/")   # what was allowed
        gw.proxy.add_interceptor(i) / remove_interceptor(i)  # faults after the authorizer
        gw.store.refresh()       # after changing a policy in the emulator

The dispatcher does all of this when given `gateway=` (pipeline_local.dispatcher.Dispatcher):
each function runs with `assume_role(fn.role, fn.name)` credentials and `client_env(...)`.
`describe(decision)` gives "principal: action on resource [for X]: why" for one Decision.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pipeline_local.authz import implied as implied_calls
from pipeline_local.authz import requests as request_model
from pipeline_local.authz.engine import AuthzRequest, Decision, Principal, authorize
from pipeline_local.authz.store import EmulatorPolicyStore
from pipeline_local.authz.tls import TlsFiles, make_tls
from pipeline_local.clients import Clients
from pipeline_local.constants import ACCOUNT_ID, REGION
from pipeline_local.faults import Interceptor, LoopbackProxy, ProxyRequest, ProxyResponse
from pipeline_local.least_privilege import access_denied

OPERATOR_KEYS = ("test",)
OPERATOR_SECRET = "test"


# --------------------------------------------------------------------------------------------
# The gateway


def describe(decision: Decision) -> str:
    """One line: principal, action, resource, on whose behalf, and why."""
    req = decision.request
    behalf = f" [for {req.on_behalf_of}]" if req.on_behalf_of else ""
    verdict = "allowed" if decision.allowed else "DENIED"
    return (
        f"{verdict}: {req.principal.arn}: {req.action} on {req.resource}{behalf}: {decision.reason}"
    )


class Gateway:
    """See the module docstring."""

    def __init__(
        self,
        upstream: str,
        store: EmulatorPolicyStore,
        *,
        interceptors: Sequence[Interceptor] = (),
        operator_keys: Sequence[str] = OPERATOR_KEYS,
        operator_secret: str = OPERATOR_SECRET,
        account: str = ACCOUNT_ID,
        region: str = REGION,
        tls_dir: Path | None = None,
    ) -> None:
        self.upstream = upstream
        self.store = store
        self.operator_keys = set(operator_keys)
        self._operator_key = operator_keys[0]
        self.operator_secret = operator_secret
        self.account = account
        self.region = region
        self.proxy = LoopbackProxy(upstream, [self._authorize, *interceptors])
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tls_dir = tls_dir
        self.tls: TlsFiles | None = None
        self._principals: dict[str, Principal] = {}
        self._lock = threading.Lock()
        self.allowed: Counter[tuple[str, str, str, str]] = Counter()
        # (principal, action, resource, VPC endpoint or "") of every call a principal made
        # itself (allowed or not): which calls left a VPC through which endpoint.
        self.paths: Counter[tuple[str, str, str, str]] = Counter()
        self.denials: list[Decision] = []
        self._unexpected: list[Decision] = []
        self._expecting: list[list[Decision]] = []
        self.operator_calls: Counter[tuple[str, str]] = Counter()
        self._operator = Clients(
            upstream, access_key=self._operator_key, secret_key=operator_secret, region=region
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Gateway:
        if self._tls_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="authz-gateway-")
            self._tls_dir = Path(self._tmp.name)
        self.tls = make_tls(self._tls_dir)
        self.proxy.start(tls=self.tls.server_context())
        return self

    def stop(self) -> None:
        self.proxy.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def https_endpoint(self) -> str:
        return self.proxy.tls_endpoint

    @property
    def http_endpoint(self) -> str:
        return self.proxy.endpoint

    @property
    def ca_bundle(self) -> str:
        if self.tls is None:
            raise RuntimeError("gateway not started")
        return str(self.tls.ca_bundle)

    # -- identities ---------------------------------------------------------------------------

    def register(self, access_key: str, principal: Principal) -> None:
        with self._lock:
            self._principals[access_key] = principal

    def principal_for(self, access_key: str) -> Principal | None:
        with self._lock:
            return self._principals.get(access_key)

    def assume_role(self, role_arn: str, session: str) -> dict[str, str]:
        """Credentials of a role session (from the emulator's STS, as Lambda gets them for a
        function), registered as that session's principal."""
        got = self._operator("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)
        creds = got["Credentials"]
        self.register(
            creds["AccessKeyId"],
            Principal(
                arn=got["AssumedRoleUser"]["Arn"],
                account=role_arn.split(":")[4],
                role_arn=role_arn,
            ),
        )
        return {
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }

    def role_with_policy(
        self, name: str, policy: Mapping[str, Any] | str, *, trusted: str | None = None
    ) -> str:
        """Create (or update) an IAM role in the emulator whose only policy is `policy` (inline,
        named after the role), assumable by `trusted` (default: the account); its ARN."""
        iam = self._operator("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": trusted or f"arn:aws:iam::{self.account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        try:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
                "Role"
            ]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        document = policy if isinstance(policy, str) else json.dumps(policy)
        iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=document)
        self.store.refresh()
        return str(arn)

    def client_env(self, credentials: Mapping[str, str], *, secure: bool = True) -> dict[str, str]:
        """The environment a handler (boto3 or aws-sdk-rust) needs to reach AWS through the
        gateway with `credentials`."""
        return {
            "AWS_ENDPOINT_URL": self.https_endpoint if secure else self.http_endpoint,
            "AWS_CA_BUNDLE": self.ca_bundle,  # botocore
            "SSL_CERT_FILE": self.ca_bundle,  # aws-sdk-rust: rustls-native-certs reads it
            **credentials,
        }

    def clients(self, credentials: Mapping[str, str], *, secure: bool = True) -> Clients:
        """boto3 clients through the gateway with `credentials`."""
        return Clients(
            endpoint=self.https_endpoint if secure else self.http_endpoint,
            access_key=credentials["AWS_ACCESS_KEY_ID"],
            secret_key=credentials["AWS_SECRET_ACCESS_KEY"],
            session_token=credentials.get("AWS_SESSION_TOKEN") or None,
            region=self.region,
            verify=self.ca_bundle,
        )

    # -- decisions ------------------------------------------------------------------------------

    def _record(self, decision: Decision) -> None:
        req = decision.request
        with self._lock:
            if req.on_behalf_of is None and req.principal.service is None:
                path = (req.principal.arn, req.action, req.resource, decision.endpoint or "")
                self.paths[path] += 1
            if decision.allowed:
                key = (req.principal.arn, req.action, req.resource, req.on_behalf_of or "")
                self.allowed[key] += 1
                return
            self.denials.append(decision)
            if self._expecting:
                self._expecting[-1].append(decision)
            else:
                self._unexpected.append(decision)

    def decide(self, request: AuthzRequest) -> Decision:
        """The request and every call AWS makes on its behalf, each decided and recorded; the
        first refusal, or the request's own Decision when everything is allowed."""
        decision = authorize(self.store, request)
        self._record(decision)
        if not decision.allowed:
            return decision
        calls = implied_calls.implied_requests(request, self.store)
        later: list[AuthzRequest] = []
        if request.principal.service != "s3.amazonaws.com":
            # An upload's notification invokes the function afterwards, asynchronously: S3's
            # invocation (and the function's init) cannot refuse the upload. The dispatcher
            # decides them when it delivers the event (`s3_invokes`).
            for call in calls:
                if call.action == "lambda:InvokeFunction" and call.principal.service:
                    later += [call, *implied_calls.implied_requests(call, self.store)]
        for call in calls:
            if call in later:
                continue
            implied = authorize(self.store, call)
            self._record(implied)
            if not implied.allowed:
                return implied
        return decision

    def service_call(
        self,
        service: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        on_behalf_of: str | None = None,
    ) -> Decision:
        """Decide a call an AWS service makes as its service principal (S3 invoking a function,
        CloudWatch publishing an alarm to SNS, ...), with what it implies."""
        principal = Principal(arn=service, account=None, service=service)
        return self.decide(
            AuthzRequest(principal, action, resource, dict(context or {}), on_behalf_of)
        )

    def decide_as(
        self,
        credentials: Mapping[str, str],
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        on_behalf_of: str | None = None,
    ) -> Decision:
        """Decide a call a registered principal makes without an HTTP request (what Lambda does
        with a function's execution role, e.g. decrypting its environment at init)."""
        principal = self.principal_for(credentials["AWS_ACCESS_KEY_ID"])
        if principal is None:
            raise KeyError("credentials of no registered principal")
        ctx = {
            "aws:PrincipalArn": principal.role_arn or principal.arn,
            "aws:PrincipalAccount": principal.account or self.account,
            **(context or {}),
        }
        return self.decide(AuthzRequest(principal, action, resource, ctx, on_behalf_of))

    def function_init(self, function_arn: str) -> Decision | None:
        """What a cold start needs before the function's code runs (implied.py's
        lambda-env-decrypt-at-init: Lambda decrypts the environment variables with the
        function's key and execution role). None when nothing is needed."""
        lam = Principal(arn="lambda.amazonaws.com", account=None, service="lambda.amazonaws.com")
        start = AuthzRequest(lam, "lambda:InvokeFunction", function_arn, {}, "a cold start")
        decision: Decision | None = None
        for call in implied_calls.implied_requests(start, self.store):
            decision = authorize(self.store, call)
            self._record(decision)
            if not decision.allowed:
                return decision
        return decision

    def s3_invokes(self, bucket: str, function_arn: str) -> Decision:
        """S3 delivering an event notification of `bucket` to the function (implied.py's
        s3-notification-invokes-function, with the init decryption it implies)."""
        return self.decide(
            implied_calls.s3_invokes_function(f"arn:aws:s3:::{bucket}", function_arn, self.account)
        )

    def alarm_publishes(self, alarm_arn: str, topic_arn: str) -> Decision:
        """CloudWatch publishing an alarm action to an SNS topic (implied.py's
        alarm-publishes-to-topic, with the topic key's KMS calls)."""
        return self.decide(implied_calls.alarm_publishes(alarm_arn, topic_arn))

    def mapping_polls(self, function_arn: str, queue_arn: str) -> Decision | None:
        """What an SQS event source mapping needs of the execution role (implied.py's
        event-source-mapping-poll); the first refusal, else the last Decision."""
        facts = self.store.function(function_arn)
        if facts is None:
            return None
        decision: Decision | None = None
        for call in implied_calls.event_source_poll(facts, queue_arn):
            decision = self.decide(call)
            if not decision.allowed:
                return decision
        return decision

    @contextlib.contextmanager
    def expect_denials(self) -> Iterator[list[Decision]]:
        """Refusals recorded inside the block are expected: collected in the yielded list,
        not reported by `unexpected_denials()`."""
        got: list[Decision] = []
        with self._lock:
            self._expecting.append(got)
        try:
            yield got
        finally:
            with self._lock:
                self._expecting.remove(got)

    def unexpected_denials(self, *, clear: bool = True) -> list[Decision]:
        with self._lock:
            out = list(self._unexpected)
            if clear:
                self._unexpected.clear()
        return out

    @staticmethod
    def summarize(refused: Sequence[Decision], limit: int = 20) -> list[str]:
        """Refusals grouped by principal, action, resource and cause, most frequent first: one
        line each with the count and the engine's reason."""
        groups: Counter[tuple[str, str, str, str]] = Counter()
        reasons: dict[tuple[str, str, str, str], str] = {}
        for d in refused:
            r = d.request
            key = (r.principal.arn, r.action, r.resource, (r.on_behalf_of or "").split(" [")[0])
            groups[key] += 1
            reasons.setdefault(key, d.reason)
        lines = []
        for key, n in groups.most_common(limit):
            who, action, resource, behalf = key
            via = f" (for {behalf})" if behalf else ""
            lines.append(f"{n}x {who}: {action} on {resource}{via}: {reasons[key]}")
        if len(groups) > limit:
            lines.append(f"... and {len(groups) - limit} more distinct refusals")
        return lines

    def allowed_by(self, principal_arn_part: str) -> set[tuple[str, str, str]]:
        """(action, resource, on_behalf_of) allowed for principals whose ARN contains the text."""
        with self._lock:
            return {(a, r, b) for (p, a, r, b) in self.allowed if principal_arn_part in p}

    # -- the interceptor -------------------------------------------------------------------------

    def _authorize(self, req: ProxyRequest) -> ProxyResponse | ProxyRequest | None:
        if req.access_key in self.operator_keys:
            with self._lock:
                self.operator_calls[(req.service, req.operation)] += 1
            return None
        principal = self.principal_for(req.access_key)
        if principal is None:
            anonymous = Principal(arn=f"access key {req.access_key or '(none)'}", account=None)
            refused = Decision(
                False,
                "the access key belongs to no principal the gateway knows (InvalidClientTokenId)",
                AuthzRequest(anonymous, f"{req.service}:{req.operation}", "*", {}),
            )
            self._record(refused)
            return self._refusal(req, refused)
        try:
            primaries = request_model.primary_requests(
                req,
                principal,
                secure=req.secure,
                account=self.account,
                aliases=self.store.aliases() if req.service == "kms" else None,
            )
        except Exception as exc:  # an unclassifiable request is refused, never waved through
            refused = Decision(
                False,
                f"the authorization model cannot classify this request ({exc})",
                AuthzRequest(principal, f"{req.service}:{req.operation}", "*", {}),
            )
            self._record(refused)
            return self._refusal(req, refused)
        for primary in primaries:
            try:
                # A function's own call leaves its VPC through an endpoint (or not at all).
                network = self.store.network_path(principal, primary.action.split(":", 1)[0])
                if network is not None:
                    primary = replace(primary, network=network)
                decision = self.decide(primary)
            except Exception as exc:  # a malformed applied policy (PolicyError), a store error
                decision = Decision(False, f"the model could not decide ({exc})", primary)
                self._record(decision)
            if not decision.allowed:
                return self._refusal(req, decision)
        return self._resign(req)

    def _refusal(self, req: ProxyRequest, decision: Decision) -> ProxyResponse:
        r = decision.request
        behalf = f" (needed by {r.on_behalf_of})" if r.on_behalf_of else ""
        return access_denied(
            req, r.principal.arn, r.action, r.resource, f"{behalf}: {decision.reason}"
        )

    def _resign(self, req: ProxyRequest) -> ProxyRequest:
        """The same request signed by the operator (the emulator decides nothing itself). The
        payload hash header stays as the client sent it (unsigned and streaming payloads)."""
        drop = {"authorization", "x-amz-date", "x-amz-security-token", "content-length"}
        headers = {k: v for k, v in req.headers if k.lower() not in drop}
        host = req.header("Host") or "localhost"
        aws_req = AWSRequest(
            method=req.method, url=f"http://{host}{req.path}", data=req.body, headers=headers
        )
        creds = Credentials(self._operator_key, self.operator_secret)
        SigV4Auth(creds, req.service, req.region or self.region).add_auth(aws_req)
        return ProxyRequest(
            method=req.method,
            path=req.path,
            headers=[(k, str(v)) for k, v in aws_req.headers.items()],
            body=req.body,
            service=req.service,
            region=req.region,
            access_key=req.access_key,  # the caller, for the interceptors after this one
            operation=req.operation,
            secure=req.secure,
        )
