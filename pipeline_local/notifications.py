"""Find the S3 notifications S3 would send: one event per new object version that matches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from pipeline_local.delivery import s3_event_for_object
from pipeline_local.wiring import Notification, Wiring


@dataclass
class PendingEvent:
    """An S3 notification S3 would have sent: one object version, one matching configuration."""

    notification: Notification
    key: str
    version_id: str | None
    event: dict[str, Any]


def pending_events(
    s3: Any, wiring: Wiring, dispatched: Set[tuple[str, str, str]]
) -> list[PendingEvent]:
    """A notification for every object version not in `dispatched` (bucket, key, version) that
    matches a bucket notification, oldest first (LastModified, then key, then version age).

    The emulator sends no notification that Python can see, so the bucket's object versions
    are listed and one `ObjectCreated:Put` event is built for each (pipeline_local.delivery:
    keys URL-encoded as S3 does, with the versionId)."""
    found: list[tuple[Any, str, int, PendingEvent]] = []
    for bucket in wiring.buckets:
        notifications = [n for n in wiring.notifications if n.bucket == bucket]
        versions: list[dict[str, Any]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            versions += page.get("Versions", [])
        age: Counter[str] = Counter(v["Key"] for v in versions)
        for v in versions:  # newest first per key
            age[v["Key"]] -= 1
            vid = v.get("VersionId")
            ident = (bucket, v["Key"], str(vid))
            if ident in dispatched:
                continue
            for n in notifications:
                if not n.matches(v["Key"]):
                    continue
                event = s3_event_for_object(
                    s3,
                    bucket,
                    v["Key"],
                    vid if vid and vid != "null" else None,
                    configuration_id=n.config_id,
                )
                pending = PendingEvent(n, v["Key"], vid, event)
                found.append((v["LastModified"], v["Key"], age[v["Key"]], pending))
    found.sort(key=lambda x: (x[0], x[1], x[2]))
    return [p for *_, p in found]
