"""Run moto server with its own bucket-policy check switched off: the authorization model decides.

moto applies a bucket policy to object requests even with its IAM enforcement off, and ignores
every condition while doing so (emulator-notes: with the bucket's `DenyInsecureTransport`
statement in place every GetObject/PutObject is 403). The stack keeps its Deny statements in the
emulator; `pipeline_local.authz.gateway` evaluates them with their conditions, in front of this
server, for every request that reaches it through the gateway. moto itself then decides no
authorization at all (IAM enforcement stays off, bucket policies are stored, never applied).

It also makes moto's security group rule changes atomic and answer a vanished rule id as EC2
does (`ec2_rules`), and a repeated event-source-mapping or VPC-endpoint delete as AWS does
(`repeated_deletes`), which `terraform destroy` against it relies on.

Run exactly like moto_server: `python -m pipeline_local.authz.moto_server -H 127.0.0.1 -p PORT`.
"""

from __future__ import annotations

import sys
from typing import Any


def _no_bucket_policy_check(self: Any, action: str, resource: str) -> Any:
    from moto.iam.access_control import PermissionResult

    return PermissionResult.NEUTRAL


def main(argv: list[str] | None = None) -> None:
    from moto.s3.models import FakeBucket
    from moto.server import main as moto_main

    from pipeline_local.authz import ec2_rules, repeated_deletes

    ec2_rules.install()
    repeated_deletes.install()
    # Replaced on purpose (the authorization model decides), which mypy reports for any method.
    FakeBucket.get_permission = _no_bucket_policy_check  # type: ignore[method-assign]
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
