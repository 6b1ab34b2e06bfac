"""Helpers the integration tests share: wait for a condition, ask the API if it is ready."""
from __future__ import annotations

import time

import requests


def wait_for(check, timeout_s: float = 30.0, what: str = "condition") -> float:
    """Poll `check()` until it is true (exceptions count as not yet); fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return time.monotonic()
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


def ready(stack: dict) -> bool:
    """True when the stack's API answers /ready with 200."""
    return requests.get(stack["api_url"] + "/ready", timeout=2).status_code == 200
