"""Authorization model: decide every AWS call the way AWS's policy evaluation logic would.

Modules: `policy` (parse + wildcard matching), `conditions` (condition operators), `engine`
(`authorize`), `implied` (calls AWS makes on the caller's behalf), `requests` (HTTP request ->
`AuthzRequest`). See the interface agreed for issue 9.
"""

from pipeline_local.authz.engine import (
    AuthzRequest,
    Decision,
    PolicySource,
    Principal,
    authorize,
)
from pipeline_local.authz.policy import PolicyError

__all__ = ["AuthzRequest", "Decision", "PolicyError", "PolicySource", "Principal", "authorize"]
