"""Make a repeated delete in moto answer as AWS does, so a retried `terraform destroy` call passes.

A client that loses a delete's answer sends the delete again (the AWS SDK retries connection
errors); the resource is then already gone, and the provider takes AWS's not-found answer as
"deleted". A CI run's destroy on 2026-11-30 failed on such a repeat of a security-group rule
revoke (`ec2_rules`). moto 5.2.1 answers two more of the deletes in lib/'s destroy otherwise
than AWS, which the provider reports as a failed destroy:

1. DeleteEventSourceMapping of a UUID it no longer has: moto answers 404 with the body `{}` and
   no error type (boto3 reads it as a success, the provider's Go SDK as an error without a
   code, not as not-found). Lambda answers
   `ResourceNotFoundException` (https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html),
   which the provider's delete takes as deleted. Here the answer is moto's own
   GetEventSourceMapping not-found answer, which is Lambda's.
2. DeleteVpcEndpoints of a gateway endpoint already deleted: moto keeps the endpoint (state
   `deleted`) and removes its routes again, which raises `InvalidRoute.NotFound` for the whole
   call. EC2 deletes an endpoint once; a repeat changes nothing. Here endpoints already in state
   `deleted` are left out of the call (the provider then reads the endpoint as deleted).

A CI run's destroy on 2026-12-02 failed with its error lost (tests/integration/test_stack.py
test_destroy_leaves_nothing); these two are what moto's delete paths hold that could make a
repeat fail, not a cause seen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def _not_found_as_lambda(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def delete_event_source_mapping(self: Any) -> Any:
        status, headers, body = method(self)
        if status == 404 and "x-amzn-errortype" not in headers:
            # moto's GetEventSourceMapping answers an unknown UUID as Lambda does.
            return self.get_event_source_mapping()
        return status, headers, body

    return delete_event_source_mapping


def _deleted_endpoints_left_out(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> Any:
        live = []
        for vpce_id in vpce_ids or []:
            endpoint = self.vpc_end_points.get(vpce_id)
            if endpoint is None or endpoint.state != "deleted":
                live.append(vpce_id)
        return method(self, live)

    return delete_vpc_endpoints


def install() -> None:
    """Patch moto in this process (the emulator server calls it once, at start; a second call
    would wrap again, which changes no answer: both wrappers pass on what is already right)."""
    from moto.awslambda.responses import LambdaResponse
    from moto.ec2.models.vpcs import VPCBackend

    for owner, name, patch in (
        (LambdaResponse, "delete_event_source_mapping", _not_found_as_lambda),
        (VPCBackend, "delete_vpc_endpoints", _deleted_endpoints_left_out),
    ):
        setattr(owner, name, patch(getattr(owner, name)))
