"""The package type-checks and lints: ``mypy src`` with the project's configuration (``[tool.mypy]`` in
pyproject.toml: strict for the application and driver code, gradual for the numerics) finds no error, and
``ruff check`` (``[tool.ruff]``) finds nothing in the package and the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mypy import api  # a test dependency (pyproject [test])

    assert (ROOT / "src" / "electrostim").is_dir(), "the checks read the source tree (src/electrostim)"
    monkeypatch.chdir(ROOT)  # mypy_path = "src" is relative to the working directory
    # a cache of its own: nothing written into the checkout, no race with another mypy run
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"), "src"])
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert status == 0 and not errors, f"mypy found {len(errors)} error(s):\n{stdout}{stderr}"


@pytest.mark.slow
def test_ruff_finds_nothing() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
