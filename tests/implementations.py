"""The implementations the suites run, and the `lambda_runtime` each applies lib/ with."""

from __future__ import annotations

LAMBDA_RUNTIME: dict[str, str] = {"python": "python3.11", "rust": "rust"}
IMPLEMENTATIONS: tuple[str, ...] = tuple(LAMBDA_RUNTIME)
