"""One raw AWS request as the request mappers read it: headers, query, form, JSON, common keys.

`Call` carries the request with its principal, resource-owning account, region, operation and the
global condition keys (aws:SecureTransport, aws:RequestedRegion, aws:CurrentTime, aws:EpochTime,
aws:UserAgent); `Call.make` names one AuthzRequest and `Call.unmapped` the error for a request
the model cannot name.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from pipeline_local.authz.engine import AuthzRequest, Principal
from pipeline_local.authz.implied import OPERATION_KEY


class RequestLike(Protocol):
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    service: str
    region: str
    operation: str


class UnmappedRequest(ValueError):
    """A request the model cannot name (unknown service/operation, or missing its resource)."""


@dataclass(frozen=True)
class Call:
    req: RequestLike
    principal: Principal
    account: str
    region: str
    operation: str
    context: Mapping[str, Any]
    aliases: Mapping[str, str]

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.req.headers if k.lower() == lname), None)

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.req.path).query, keep_blank_values=True)

    def form(self) -> dict[str, str]:
        """Query-protocol parameters: the form body, else the query string."""
        params = {k: v[0] for k, v in self.query().items()}
        if self.req.body and b"=" in self.req.body and not self.req.body.lstrip().startswith(b"{"):
            body = parse_qs(self.req.body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({k: v[0] for k, v in body.items()})
        return params

    def json(self) -> dict[str, Any]:
        if not self.req.body:
            return {}
        try:
            doc = json.loads(self.req.body)
        except ValueError as exc:
            raise self.unmapped(f"body is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise self.unmapped("body is not a JSON object")
        return doc

    def params(self) -> dict[str, Any]:
        """JSON body for JSON-protocol requests, form parameters for query-protocol ones."""
        ctype = (self.header("Content-Type") or "").lower()
        if "json" in ctype or self.header("X-Amz-Target"):
            return self.json()
        return self.form()

    @property
    def op(self) -> str:
        """The operation, which every non-REST protocol names."""
        if not self.operation:
            raise self.unmapped("no operation (X-Amz-Target or Action) in the request")
        return self.operation

    def make(self, action: str, resource: str, **extra: Any) -> AuthzRequest:
        ctx = {**self.context, OPERATION_KEY: self.operation, **extra}
        return AuthzRequest(self.principal, action, resource, ctx)

    def unmapped(self, why: str) -> UnmappedRequest:
        return UnmappedRequest(
            f"cannot authorize {self.req.service or '?'} {self.req.method} "
            f"{urlsplit(self.req.path).path} (operation {self.operation or '?'}): {why}"
        )


def operation_of(req: RequestLike) -> str:
    if req.operation:
        return req.operation
    headers = {k.lower(): v for k, v in req.headers}
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    path = urlsplit(req.path).path
    cbor = re.match(r"^/service/[^/]+/operation/([^/]+)$", path)
    if cbor:
        return cbor.group(1)
    query = parse_qs(urlsplit(req.path).query)
    if "Action" in query:
        return query["Action"][0]
    if req.body and "x-www-form-urlencoded" in headers.get("content-type", ""):
        form = parse_qs(req.body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return ""


def common_context(req: RequestLike, region: str, secure: bool) -> dict[str, Any]:
    now = time.time()
    ctx: dict[str, Any] = {
        "aws:SecureTransport": secure,
        "aws:RequestedRegion": region,
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": int(now),
    }
    agent = next((v for k, v in req.headers if k.lower() == "user-agent"), None)
    if agent:
        ctx["aws:UserAgent"] = agent
    return ctx
