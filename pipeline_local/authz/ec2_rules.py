"""Make moto's security group rule changes behave as EC2's do when Terraform destroys in parallel.

Two differences between moto 5.2.1 and EC2 that `terraform destroy -parallelism=20` meets. The
second failed a CI run's demo on 2026-11-30 ("deleting VPC Security Group Rule ...
InvalidPermission.NotFound"): the rule was already gone when the provider revoked it. Why it was
gone then is not known (a client retry of a revoke that had succeeded would do it); against EC2
the provider would have taken it as deleted.

1. Lost updates. moto revokes a rule by rebuilding the group's rule list from a copy
   (`group.egress_rules = [r for r in group.egress_rules if ...]`) in the server's request
   thread, with no lock. Two revokes on one group at once can each write back a list holding the
   other's rule, so a rule that was revoked, and answered as revoked, comes back.
   tests/integration/test_emulator_ec2_rules.py shows it (unpatched, 2 to 10 of 2,500 rules
   came back).
   EC2 applies each call to the group atomically. Here every authorize and revoke of a rule runs
   under one lock.
2. The wrong error for a rule id that is gone. Revoking by `SecurityGroupRuleIds` an id the group
   no longer has makes EC2 answer `InvalidSecurityGroupRuleId.NotFound` ("The specified security
   group rule does not exist",
   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), which the AWS
   provider's delete takes as "already deleted". moto answers `InvalidPermission.NotFound`, which
   the provider reports as a failed destroy. Here the id is checked first and the EC2 code given.

Revoking by rule properties (no ids) keeps moto's own answer, `InvalidPermission.NotFound`, which
is what EC2 gives in a non-default VPC.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

# One lock for every group: rule changes are rare (apply and destroy), so a finer one buys nothing.
_RULE_CHANGES = threading.Lock()

_SERIALISED = (
    "authorize_security_group_ingress",
    "authorize_security_group_egress",
    "revoke_security_group_ingress",
    "revoke_security_group_egress",
    "modify_security_group_rules",
)


def _serialised(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def under_lock(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _RULE_CHANGES:
            if name.startswith("revoke_"):
                _reject_unknown_rule_ids(self, name, kwargs)
            return method(self, *args, **kwargs)

    return under_lock


def _reject_unknown_rule_ids(backend: Any, name: str, kwargs: dict[str, Any]) -> None:
    from moto.ec2.exceptions import InvalidSecurityGroupRuleIdNotFoundError

    rule_ids = kwargs.get("security_rule_ids") or []
    if not rule_ids:
        return
    group = backend.get_security_group_by_name_or_id(
        kwargs.get("group_name_or_id"), kwargs.get("vpc_id")
    )
    if group is None:
        return  # moto's own InvalidGroup.NotFound, as EC2 answers
    rules = group.egress_rules if name.endswith("_egress") else group.ingress_rules
    present = {rule.id for rule in rules}
    for rule_id in rule_ids:
        if rule_id not in present:
            raise InvalidSecurityGroupRuleIdNotFoundError(rule_id)


def install() -> None:
    """Patch moto's EC2 backend in this process (the emulator server calls it at start)."""
    from moto.ec2.models.security_groups import SecurityGroupBackend

    for name in _SERIALISED:
        method = getattr(SecurityGroupBackend, name)
        if getattr(method, "_pipeline_serialised", False):
            continue
        wrapped = _serialised(method, name)
        wrapped._pipeline_serialised = True  # type: ignore[attr-defined]
        setattr(SecurityGroupBackend, name, wrapped)
