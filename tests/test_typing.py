"""The package type-checks: ``mypy src`` with the project's configuration (``[tool.mypy]`` in pyproject.toml:
strict for the application and driver code, gradual for the numerics) finds no error."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    if not (ROOT / "src" / "electrostim").is_dir():
        pytest.skip("needs the source tree (src/electrostim), not an installed package")
    monkeypatch.chdir(ROOT)  # mypy_path = "src" is relative to the working directory
    # a cache of its own: nothing written into the checkout, no race with another mypy run
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"), "src"])
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert status == 0 and not errors, f"mypy found {len(errors)} error(s):\n{stdout}{stderr}"
