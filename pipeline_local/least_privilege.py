"""Build AccessDenied answers in each AWS service's own error shape, for the authorization gateway.

The authorization model (pipeline_local.authz) decides every request of the pipeline's
principals; `pipeline_local.authz.gateway` answers a refused request with `access_denied()`,
which an SDK parses exactly as it parses AWS's own refusal:

- S3 (REST-XML): HTTP 403, `<Error><Code>AccessDenied</Code>...`;
- SQS: the JSON protocol (X-Amz-Target AmazonSQS.*) answers HTTP 403 with
  `com.amazonaws.sqs#AccessDeniedException` and `x-amzn-query-error: AccessDenied;Sender`,
  the query protocol HTTP 403 `<ErrorResponse>` with code AccessDenied;
- DynamoDB, KMS, CloudWatch Logs, X-Ray and the other JSON-1.x services: HTTP 400
  `AccessDeniedException`;
- Lambda (REST-JSON): HTTP 403 `AccessDeniedException`;
- SNS, CloudWatch (query protocol), STS, IAM: HTTP 403 `<ErrorResponse>` with code AccessDenied.

The message follows AWS's: "User: <principal> is not authorized to perform: <action> on
resource: <resource> <why>".

(Before issue 9 this module split the decision between moto's IAM enforcement and moto's own
policy evaluator; the model in pipeline_local.authz replaces both.)
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from pipeline_local.faults import ProxyRequest, ProxyResponse, json_error, xml_error

QUERY_PROTOCOL = {"sns", "sts", "iam", "monitoring", "ec2", "elasticloadbalancing"}
REST_JSON_403 = {"lambda"}


def access_denied(
    req: ProxyRequest, who: str, action: str, resource: str, why: str
) -> ProxyResponse:
    """The service's own AccessDenied response to `req`."""
    message = f"User: {who} is not authorized to perform: {action} on resource: {resource} {why}"
    target = req.header("X-Amz-Target") or ""
    if req.service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
        )
        return ProxyResponse(403, [("Content-Type", "application/xml")], body.encode())
    if req.service == "sqs":
        if target.startswith("AmazonSQS."):
            return json_error(
                403,
                "com.amazonaws.sqs#AccessDeniedException",
                message,
                query_code="AccessDenied;Sender",
            )
        return xml_error(403, "AccessDenied", escape(message), sender="Sender")
    if req.service in QUERY_PROTOCOL and not target:
        return xml_error(403, "AccessDenied", escape(message), sender="Sender")
    if req.service in REST_JSON_403:
        resp = json_error(403, "AccessDeniedException", message)
        resp.headers.append(("x-amzn-ErrorType", "AccessDeniedException"))
        return resp
    return json_error(400, "com.amazon.coral.service#AccessDeniedException", message)
