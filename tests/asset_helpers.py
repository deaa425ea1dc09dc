"""Where the tests find their real assets, and what a missing one does: skip locally, fail on CI (``CI=true``)."""

from __future__ import annotations

import os

import pytest


def on_ci() -> bool:
    """True when ``CI`` is set (``1``/``true``/``yes``)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_asset(message: str) -> None:
    """Skip the calling test locally; fail it on CI, so CI can never pass by skipping everything."""
    if on_ci():
        pytest.fail(f"required test asset missing on CI: {message}")
    pytest.skip(message)
