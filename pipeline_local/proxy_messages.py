"""The messages a LoopbackProxy's interceptors read and answer with (AWS-shaped errors too).

`classify` names a request's AWS service and region (from the SigV4 credential scope), its
operation (from `X-Amz-Target`, a query or form `Action`, or the S3 method) and its access key;
`json_error`/`xml_error` build the error answers of the JSON and query/REST protocols.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


# --------------------------------------------------------------------------------------------
# Requests and responses as the interceptors see them


@dataclass
class ProxyRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    service: str = ""
    region: str = ""
    access_key: str = ""
    operation: str = ""
    secure: bool = False  # arrived on a TLS listener (aws:SecureTransport)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def json_body(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}


@dataclass
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def classify(req: ProxyRequest) -> None:
    """Fill in service, region, access key and operation from the request itself."""
    auth = req.header("Authorization") or ""
    match = _SCOPE_RE.search(auth)
    if match:
        req.access_key, req.region, req.service = match.group(1), match.group(2), match.group(3)
    target = req.header("X-Amz-Target")
    if target:
        req.operation = target.rsplit(".", 1)[-1]
        return
    query = parse_qs(urlsplit(req.path).query)
    if "Action" in query:
        req.operation = query["Action"][0]
        return
    ctype = req.header("Content-Type") or ""
    if "x-www-form-urlencoded" in ctype and req.body:
        form = parse_qs(req.body.decode("utf-8", "replace"))
        if "Action" in form:
            req.operation = form["Action"][0]
            return
    if req.service == "s3":
        req.operation = (
            f"{req.method} object"
            if urlsplit(req.path).path.count("/") > 1
            else (f"{req.method} bucket")
        )


def json_error(
    status: int, type_name: str, message: str, *, query_code: str | None = None
) -> ProxyResponse:
    """An AWS JSON-protocol error response (DynamoDB, SQS JSON)."""
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if query_code:
        headers.append(("x-amzn-query-error", query_code))
    body = json.dumps({"__type": type_name, "message": message}).encode()
    return ProxyResponse(status, headers, body)


def xml_error(status: int, code: str, message: str, sender: str = "Receiver") -> ProxyResponse:
    """An AWS query-protocol error response."""
    body = (
        f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return ProxyResponse(status, [("Content-Type", "text/xml")], body.encode())


class Interceptor(Protocol):
    """Looks at a request before it is forwarded: returns a response to answer it locally, a
    (changed) request to forward instead, or None to forward it unchanged. One that is also
    `AnswerWatcher` sees the emulator's answer to each forwarded request."""

    def __call__(self, req: ProxyRequest) -> ProxyResponse | ProxyRequest | None: ...


@runtime_checkable
class AnswerWatcher(Protocol):
    """An interceptor that is called again with the emulator's answer to a forwarded request."""

    def after(self, req: ProxyRequest, resp: ProxyResponse) -> None: ...
