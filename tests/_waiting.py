"""Waiting for another thread or process without racing it: poll a condition up to a generous deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> None:
    """Return as soon as ``condition()`` holds; fail the test, naming ``what``, if it does not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.005)
