"""Shared helpers: build programs from a few numbers."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import electrostim as es

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True, derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pad(site: str = "quadriceps", w: float = 5.0, h: float = 5.0, side: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"site": site, "shape": "rectangle", "width_cm": w, "height_cm": h}
    if side:
        d["side"] = side
    return d


def make_program(
    pulse: dict[str, Any],
    *,
    amplitude_ma: float = 20.0,
    max_ma: float | None = None,
    duration_s: float = 10.0,
    channels: int = 1,
    modality: str = "nmes",
    pads: list[dict[str, Any]] | None = None,
    **stimulus: Any,
) -> es.Program:
    """A validated program with ``channels`` identical channels."""
    max_ma = amplitude_ma if max_ma is None else max_ma
    n_pads = 4 if pulse.get("shape") == "interferential" and pulse.get("mode", "quadripolar") == "quadripolar" else 2
    data = {
        "id": "test-program",
        "name": "test program",
        "modality": modality,
        "session_duration_s": duration_s,
        "stimulus": {"pulse": pulse, "amplitude": {"default_ma": amplitude_ma, "max_ma": max_ma}, **stimulus},
        "channels": [
            {"label": f"ch{i + 1}", "electrodes": pads or [pad() for _ in range(n_pads)]} for i in range(channels)
        ],
    }
    return es.validate_program(data)


@pytest.fixture
def programs_dir(tmp_path, monkeypatch):
    """An empty user-program folder on the search path."""
    d = tmp_path / "programs"
    d.mkdir()
    monkeypatch.setenv("ELECTROSTIM_PROGRAM_PATH", str(d))
    return d
