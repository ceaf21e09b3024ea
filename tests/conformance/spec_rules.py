"""design.md's rules for amounts, record hashes and error ids, computed apart from both handlers."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any


def canonical_amount(value: Decimal) -> str:
    """Amount in canonical form: plain notation, no trailing fraction zeros (design.md s. 2)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def spec_record_hash(item: dict[str, Any]) -> str:
    """record_hash by design.md section 2: SHA-256 of the validated fields in table order.

    Fields joined with U+001F: transaction_id, account_id, amount (canonical), currency,
    transaction_type, timestamp (epoch ms as stored), merchant_id, description (absent = "").
    """
    parts = [
        item["transaction_id"],
        item["account_id"],
        canonical_amount(Decimal(str(item["amount"]))),
        item["currency"],
        item["transaction_type"],
        str(int(item["timestamp"])),
        item.get("merchant_id") or "",
        item.get("description") or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def spec_error_id(row: dict[str, Any]) -> str:
    """error_id of a row from a message in our format (design.md section 4).

    SHA-256 of source bucket, key, version id, line and error code; joined with U+001F, with ""
    for a null version id or line (DLQ processor decision D4, which both implementations share).
    """
    parts = [
        str(row.get("source_bucket") or ""),
        str(row.get("source_key") or ""),
        str(row.get("source_version_id") or ""),
        "" if row.get("source_line") is None else str(int(row["source_line"])),
        str(row.get("error_code") or ""),
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
