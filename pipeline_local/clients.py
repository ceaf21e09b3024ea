"""boto3 clients for one emulator endpoint, with one set of credentials (operator or role)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from pipeline_local.constants import REGION

# The service name is a run-time string here, which boto3-stubs' per-service overloads of
# boto3.client cannot type: every client is used as Any.
_new_client: Callable[..., Any] = boto3.client


@dataclass
class Clients:
    """boto3 clients for one emulator endpoint (the operator's own, not a function's)."""

    endpoint: str
    access_key: str = "test"
    secret_key: str = "test"
    session_token: str | None = None
    region: str = REGION
    verify: str | bool | None = None  # CA bundle for an HTTPS endpoint (the authz gateway)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = _new_client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                aws_session_token=self.session_token,
                verify=self.verify,
                config=BotoConfig(
                    retries={"mode": "standard", "max_attempts": 5},
                    # moto server mis-handles gzip-compressed PutMetricData bodies.
                    disable_request_compression=True,
                ),
            )
        return self._cache[service]
